//! `ferrokv cli --cluster create|check` (issue 17: the image has no redis-cli, so its
//! client must assemble clusters). Real nodes on ephemeral ports, each with an explicit
//! cluster bus port that was free: our tool creates clusters of ferrokv nodes and of
//! Debian's redis-server, Debian's redis-cli checks them and reads and writes with -c;
//! our plan is compared with redis-cli's for the same nodes, and our check's output with
//! redis-cli's on the same healthy and broken clusters, byte for byte.

mod common;

use common::{redis_tool, wait_until, Finished, Server, FREE_PORT};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Short, so a cluster forms quickly (the default is 15 s).
const NODE_TIMEOUT_MS: &str = "2000";
/// No tool run may take longer (create waits at most 120 s for the join itself).
const TOOL_LIMIT: Duration = Duration::from_secs(150);

fn node_args(extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["--cluster-enabled", "yes", "--cluster-port", FREE_PORT, "--cluster-node-timeout", NODE_TIMEOUT_MS]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn ferrokv_nodes(n: usize, extra: &[&str]) -> Vec<Server> {
    (0..n)
        .map(|_| {
            let args = node_args(extra);
            Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect()
}

/// Debian's redis-server nodes, or None when it is not installed (skipped).
fn redis_nodes(n: usize) -> Option<Vec<Server>> {
    (0..n)
        .map(|_| {
            let args = node_args(&[]);
            Server::start_redis(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect()
}

fn addrs(nodes: &[Server]) -> Vec<String> {
    nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect()
}

/// Runs a client (`ferrokv cli`, or redis-cli when `redis` is given) with `args` and
/// `stdin`, without colours or the developer's settings, with a time bound.
fn run_client(redis: Option<&std::path::Path>, args: &[String], stdin: &[u8]) -> Finished {
    let mut cmd = match redis {
        Some(bin) => Command::new(bin),
        None => {
            let mut c = Command::new(env!("CARGO_BIN_EXE_ferrokv"));
            c.arg("cli");
            c
        }
    };
    cmd.args(args).env("TERM", "dumb").env("HOME", "/nonexistent-ferrokv-cli-test-home");
    for var in ["REDISCLI_AUTH", "REDISCLI_CLUSTER_YES", "FAKETTY"] {
        cmd.env_remove(var);
    }
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn client");
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(stdin);
    }
    let done = common::finish_child(&mut child, TOOL_LIMIT);
    assert!(done.exited, "{args:?} did not finish in {TOOL_LIMIT:?}:\n{}{}", done.out, done.err);
    done
}

fn ferrokv_cli(args: &[String]) -> Finished {
    run_client(None, args, b"")
}

fn redis_cli(args: &[String]) -> Finished {
    let bin = redis_tool("redis-cli").expect("redis-cli is required for the cluster manager tests");
    run_client(Some(&bin), args, b"")
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn create_args(nodes: &[Server], replicas: usize, yes: bool) -> Vec<String> {
    let mut args = strings(&["--cluster", "create"]);
    args.extend(addrs(nodes));
    args.extend(["--cluster-replicas".to_string(), replicas.to_string()]);
    if yes {
        args.push("--cluster-yes".into());
    }
    args
}

/// CLUSTER NODES as `port` sees it: (id, flags, master id, slot fields) per line.
fn cluster_nodes(port: u16, auth: &[String]) -> Vec<(String, String, String, String)> {
    let mut args = strings(&["-p", &port.to_string()]);
    args.extend(auth.iter().cloned());
    args.extend(strings(&["cluster", "nodes"]));
    let done = ferrokv_cli(&args);
    done.out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.len() >= 8).then(|| (f[0].to_string(), f[2].to_string(), f[3].to_string(), f[8..].join(" ")))
        })
        .collect()
}

/// 3 masters with slots and 3 replicas, each of a different master, as `port` sees it.
fn three_pairs(port: u16, auth: &[String]) -> bool {
    let nodes = cluster_nodes(port, auth);
    let masters: Vec<&String> =
        nodes.iter().filter(|n| n.1.contains("master") && !n.3.is_empty()).map(|n| &n.0).collect();
    let mut followed: Vec<&String> = nodes.iter().filter(|n| n.1.contains("slave")).map(|n| &n.2).collect();
    followed.sort();
    followed.dedup();
    masters.len() == 3 && nodes.len() == 6 && followed.len() == 3 && followed.iter().all(|m| masters.contains(m))
}

fn wait_three_pairs(nodes: &[Server], auth: &[String]) {
    let ok = wait_until(Duration::from_secs(30), || nodes.iter().all(|n| three_pairs(n.port, auth)));
    assert!(ok, "not 3 masters with a replica each:\n{:?}", cluster_nodes(nodes[0].port, auth));
}

/// redis-cli --cluster check exits 0 with no error or warning.
fn redis_check_clean(port: u16, auth: &[String]) -> Finished {
    let mut args = strings(&["--cluster", "check", &format!("127.0.0.1:{port}")]);
    args.extend(auth.iter().cloned());
    let done = redis_cli(&args);
    let clean = done.status.success() && !done.out.contains("[ERR]") && !done.out.contains("[WARNING]");
    assert!(clean, "redis-cli --cluster check:\n{}{}", done.out, done.err);
    done
}

/// Writes keys through one node and reads them through another with `redis-cli -c`,
/// which follows the MOVED redirections to the masters.
fn write_and_read_with_redirections(write_port: u16, read_port: u16, auth: &[String]) {
    for i in 0..8 {
        let key = format!("cc:{i}");
        let mut args = strings(&["-c", "-p", &write_port.to_string()]);
        args.extend(auth.iter().cloned());
        args.extend(strings(&["set", &key, &format!("v{i}")]));
        let done = redis_cli(&args);
        assert_eq!(done.out.trim(), "OK", "set {key} via {write_port}: {}{}", done.out, done.err);
        let mut args = strings(&["-c", "-p", &read_port.to_string()]);
        args.extend(auth.iter().cloned());
        args.extend(strings(&["get", &key]));
        let done = redis_cli(&args);
        assert_eq!(done.out.trim(), format!("v{i}"), "get {key} via {read_port}: {}{}", done.out, done.err);
    }
}

#[test]
fn creates_a_cluster_of_ferrokv_nodes_with_a_password() {
    let nodes = ferrokv_nodes(6, &["--requirepass", "s3cret", "--masterauth", "s3cret"]);
    let auth = strings(&["-a", "s3cret", "--no-auth-warning"]);
    let mut args = create_args(&nodes, 1, true);
    args.extend(auth.iter().cloned());
    let done = ferrokv_cli(&args);
    assert!(done.status.success(), "create failed:\n{}{}", done.out, done.err);
    for want in [
        ">>> Performing hash slots allocation on 6 nodes...",
        "Master[0] -> Slots 0 - 5460\nMaster[1] -> Slots 5461 - 10922\nMaster[2] -> Slots 10923 - 16383\n",
        "Waiting for the cluster to join\n",
        "[OK] All nodes agree about slots configuration.",
        "[OK] All 16384 slots covered.",
    ] {
        assert!(done.out.contains(want), "no {want:?} in:\n{}", done.out);
    }
    wait_three_pairs(&nodes, &auth);
    redis_check_clean(nodes[3].port, &auth);
    write_and_read_with_redirections(nodes[0].port, nodes[4].port, &auth);
    // --user too reaches every node (AUTH default s3cret).
    let mut check = strings(&["--cluster", "check", &format!("127.0.0.1:{}", nodes[5].port), "--user", "default"]);
    check.extend(auth.iter().cloned());
    let done = ferrokv_cli(&check);
    assert!(done.status.success() && done.out.contains("[OK] 8 keys in 3 masters."), "{}{}", done.out, done.err);
    let wrong_user = strings(&["--cluster", "check", &nodes[0].addr(), "--user", "nobody", "-a", "s3cret"]);
    let done = ferrokv_cli(&wrong_user);
    assert!(!done.status.success() && done.out.contains("WRONGPASS"), "{}{}", done.out, done.err);
    // Without the password every node refuses, and create says so.
    let done = ferrokv_cli(&create_args(&nodes, 1, true));
    assert!(!done.status.success() && done.out.contains("NOAUTH"), "{}{}", done.out, done.err);
}

#[test]
fn creates_a_cluster_of_redis_server_nodes() {
    let Some(nodes) = redis_nodes(6) else { return };
    // By name: MEET gets the address our connection to the first node reached.
    let args: Vec<String> =
        create_args(&nodes, 1, true).into_iter().map(|a| a.replace("127.0.0.1:", "localhost:")).collect();
    let done = ferrokv_cli(&args);
    assert!(done.status.success() && done.out.contains("[OK] All 16384 slots covered."), "{}{}", done.out, done.err);
    wait_three_pairs(&nodes, &[]);
    redis_check_clean(nodes[0].port, &[]);
    write_and_read_with_redirections(nodes[2].port, nodes[5].port, &[]);
}

/// The lines of a plan that do not depend on chance: redis-cli then places replicas at
/// random when every node is on one host, where our search keeps its first choice.
fn deterministic_plan(out: &str) -> Vec<&str> {
    out.lines().filter(|l| !l.starts_with("   replicates ")).collect()
}

#[test]
fn the_plan_is_redis_clis() {
    let nodes = ferrokv_nodes(7, &[]);
    // Declined: nothing changes, and redis-cli exits 0 all the same.
    let ours = run_client(None, &create_args(&nodes, 1, false), b"no\n");
    let bin = redis_tool("redis-cli").expect("redis-cli is required for the cluster manager tests");
    let theirs = run_client(Some(&bin), &create_args(&nodes, 1, false), b"no\n");
    assert_eq!(ours.status.code(), theirs.status.code());
    assert_eq!(ours.status.code(), Some(0));
    assert_eq!(
        deterministic_plan(&ours.out),
        deterministic_plan(&theirs.out),
        "ours:\n{}\ntheirs:\n{}",
        ours.out,
        theirs.out
    );
    assert!(ours.out.contains("Adding extra replicas...\n"), "{}", ours.out);
    assert!(ours.out.ends_with("Can I set the above configuration? (type 'yes' to accept): "), "{}", ours.out);
    for n in &nodes {
        assert_eq!(cluster_nodes(n.port, &[]).len(), 1, "a declined plan changed {}", n.port);
    }
    // Too few nodes for 3 masters: the same refusal and status.
    let ours = ferrokv_cli(&create_args(&nodes[..5], 1, true));
    let theirs = redis_cli(&create_args(&nodes[..5], 1, true));
    assert_eq!((ours.status.code(), &ours.out), (theirs.status.code(), &theirs.out));
    assert!(ours.out.contains("*** At least 6 nodes are required."), "{}", ours.out);
}

/// Runs both clients' `--cluster check` until their outputs are equal (the cluster may
/// still be settling between the two runs); returns the last pair.
fn checks_agree(port: u16) -> (Finished, Finished) {
    let args = strings(&["--cluster", "check", &format!("127.0.0.1:{port}")]);
    let mut last = None;
    for _ in 0..20 {
        let (ours, theirs) = (ferrokv_cli(&args), redis_cli(&args));
        if ours.out == theirs.out && ours.status.code() == theirs.status.code() {
            return (ours, theirs);
        }
        last = Some((ours, theirs));
        std::thread::sleep(Duration::from_millis(500));
    }
    let (ours, theirs) = last.expect("ran");
    panic!(
        "check outputs differ:\nours ({:?}):\n{}\ntheirs ({:?}):\n{}",
        ours.status, ours.out, theirs.status, theirs.out
    );
}

#[test]
fn check_reports_like_redis_cli() {
    let nodes = ferrokv_nodes(6, &[]);
    let done = ferrokv_cli(&create_args(&nodes, 1, true));
    assert!(done.status.success(), "{}{}", done.out, done.err);
    wait_three_pairs(&nodes, &[]);
    let (ours, _) = checks_agree(nodes[1].port);
    assert!(ours.status.success() && ours.out.contains("[OK] All 16384 slots covered."), "{}", ours.out);
    follows_redirections_like_redis_cli(&nodes);
    let info = strings(&["--cluster", "info", "127.0.0.1", &nodes[2].port.to_string()]);
    let (ours, theirs) = (ferrokv_cli(&info), redis_cli(&info));
    assert_eq!((ours.status.code(), &ours.out), (theirs.status.code(), &theirs.out));
    assert!(ours.out.contains("keys in 3 masters."), "{}", ours.out);

    // Break it: a master drops 11 slots (uncovered) and opens another one for migration.
    let master = nodes
        .iter()
        .find(|n| cluster_nodes(n.port, &[]).iter().any(|l| l.1.contains("myself,master")))
        .expect("a master");
    let mine = cluster_nodes(master.port, &[]).into_iter().find(|l| l.1.contains("myself")).expect("myself");
    let first: usize = mine.3.split('-').next().and_then(|s| s.parse().ok()).expect("slot range");
    let other = cluster_nodes(master.port, &[])
        .into_iter()
        .find(|l| l.1.contains("master") && !l.1.contains("myself"))
        .expect("another master");
    let cli = |args: &[&str]| {
        let mut a = strings(&["-p", &master.port.to_string()]);
        a.extend(strings(args));
        ferrokv_cli(&a).out.trim().to_string()
    };
    assert_eq!(cli(&["cluster", "delslotsrange", &first.to_string(), &(first + 10).to_string()]), "OK");
    assert_eq!(cli(&["cluster", "setslot", &(first + 20).to_string(), "migrating", &other.0]), "OK");
    let (ours, _) = checks_agree(master.port);
    assert_eq!(ours.status.code(), Some(1), "{}", ours.out);
    for want in [
        "[ERR] Not all 16384 slots are covered by nodes.",
        &format!("[WARNING] The following slots are open: {}.", first + 20),
    ] {
        assert!(ours.out.contains(want), "no {want:?} in:\n{}", ours.out);
    }
}

/// `-c` through a replica (which redirects every key to its master), one-shot and at the
/// piped prompt (where redis-cli announces each redirection): the same output.
fn follows_redirections_like_redis_cli(nodes: &[Server]) {
    let replica = nodes
        .iter()
        .find(|n| cluster_nodes(n.port, &[]).iter().any(|l| l.1.contains("myself,slave")))
        .expect("a replica");
    let bin = redis_tool("redis-cli").expect("redis-cli is required for the cluster manager tests");
    let port = replica.port.to_string();
    let one_shot = strings(&["-c", "-p", &port, "set", "cc:one", "1"]);
    let (ours, theirs) = (ferrokv_cli(&one_shot), redis_cli(&one_shot));
    assert_eq!((ours.status.code(), &ours.out, &ours.err), (theirs.status.code(), &theirs.out, &theirs.err));
    assert_eq!(ours.out, "OK\n");
    let lines = b"get cc:one\nset cc:a 1\nset cc:b 2\nset cc:c 3\nget cc:a\nget cc:b\nget cc:c\nget cc:one\n";
    let prompt = strings(&["-c", "-p", &port]);
    let (ours, theirs) = (run_client(None, &prompt, lines), run_client(Some(&bin), &prompt, lines));
    assert_eq!((ours.status.code(), &ours.out), (theirs.status.code(), &theirs.out));
    assert!(ours.out.starts_with("-> Redirected to slot ["), "{}", ours.out);
    // Without -c the replica's answer is the redirection itself.
    let plain = strings(&["-p", &port, "get", "cc:one"]);
    assert!(ferrokv_cli(&plain).out.starts_with("MOVED "));
}

#[test]
fn refuses_nodes_that_are_not_empty_or_not_clustered() {
    let mut nodes = ferrokv_nodes(3, &[]);
    let plain = Server::start(&[]);
    let mut args = strings(&["--cluster", "create"]);
    args.extend(addrs(&nodes[..2]));
    args.push(plain.addr());
    let done = ferrokv_cli(&args);
    assert_eq!(done.status.code(), Some(1));
    assert!(
        done.out.contains(&format!("[ERR] Node {} is not configured as a cluster node.", plain.addr())),
        "{}",
        done.out
    );
    // A node that serves a slot already is not empty.
    let slot_args = strings(&["-p", &nodes[1].port.to_string(), "cluster", "addslots", "1"]);
    assert_eq!(ferrokv_cli(&slot_args).out.trim(), "OK");
    let done = ferrokv_cli(&create_args(&nodes, 0, true));
    assert_eq!(done.status.code(), Some(1));
    assert!(done.out.contains(&format!("[ERR] Node {} is not empty.", addrs(&nodes)[1])), "{}", done.out);
    // A node that is gone: redis-cli's message on stderr, status 1.
    let gone = addrs(&nodes)[2].clone();
    nodes[2].kill9();
    let done = ferrokv_cli(&strings(&["--cluster", "check", &gone]));
    assert_eq!(done.status.code(), Some(1));
    assert!(done.err.contains(&format!("Could not connect to Redis at {gone}: Connection refused")), "{}", done.err);
    let done = ferrokv_cli(&strings(&["--cluster", "check", "nohost"]));
    assert_eq!(done.status.code(), Some(1));
    assert!(done.err.contains("[ERR] Invalid arguments"), "{}", done.err);
}
