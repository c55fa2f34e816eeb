//! Cluster mode end to end (issue 17): real ferrokv binaries (and Debian's redis-server for
//! the mixed cluster) on ephemeral ports, each with an explicit `cluster-port` that was
//! free, assembled by Debian's `redis-cli --cluster create` exactly as users do it.

mod common;

mod cluster_support;

use cluster_support::*;
use common::{free_port, redis_tool, run_python_scenario, wait_until, Server};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn single_node_commands_and_redirections() {
    let node = ferrokv_node(&[]);
    let port = node.port;
    assert_eq!(cluster_field(port, "cluster_state"), "fail");
    assert_eq!(cluster_field(port, "cluster_known_nodes"), "1");
    let info: String = redis::cmd("INFO").arg("cluster").query(&mut node.conn()).expect("INFO");
    assert!(info.contains("cluster_enabled:1"), "{info}");
    let id = text(port, &["CLUSTER", "MYID"]);
    assert!(id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let conf = std::fs::read_to_string(node.dir.path().join("nodes.conf")).expect("nodes.conf written at startup");
    assert!(conf.contains(&id) && conf.contains("myself,master"), "{conf}");
    assert!(conf.contains("vars currentEpoch 0 lastVoteEpoch 0"), "{conf}");

    assert_eq!(text(port, &["CLUSTER", "KEYSLOT", "foo"]), "12182");
    assert_eq!(text(port, &["CLUSTER", "KEYSLOT", "{user1000}.following"]), "3443");
    assert_eq!(error_of(port, &["CLUSTER", "ADDSLOTS", "16384"]), "ERR Invalid or out of range slot");
    assert_eq!(error_of(port, &["GET", "foo"]), "CLUSTERDOWN Hash slot not served");
    assert_eq!(text(port, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), "OK");
    assert_eq!(error_of(port, &["CLUSTER", "ADDSLOTS", "5"]), "ERR Slot 5 is already busy");
    wait_state_ok(&[port], Duration::from_secs(5));
    assert_eq!(cluster_field(port, "cluster_slots_assigned"), "16384");
    assert_eq!(cluster_field(port, "cluster_size"), "1");

    assert_eq!(text(port, &["SET", "foo", "bar"]), "OK");
    assert_eq!(text(port, &["GET", "foo"]), "bar");
    assert_eq!(error_of(port, &["MSET", "a", "1", "b", "2"]), "CROSSSLOT Keys in request don't hash to the same slot");
    assert_eq!(text(port, &["MSET", "{t}a", "1", "{t}b", "2"]), "OK");
    assert_eq!(error_of(port, &["SELECT", "1"]), "ERR SELECT is not allowed in cluster mode");
    assert_eq!(text(port, &["SELECT", "0"]), "OK");
    let tslot = key_slot(port, "{t}a").to_string();
    assert_eq!(text(port, &["CLUSTER", "COUNTKEYSINSLOT", &tslot]), "2");
    let keys = format!("{:?}", query(port, &["CLUSTER", "GETKEYSINSLOT", &tslot, "10"]).expect("GETKEYSINSLOT"));
    assert!(keys.contains("{t}a") && keys.contains("{t}b"), "{keys}");
    assert_eq!(text(port, &["DEL", "{t}a"]), "1");
    assert_eq!(text(port, &["CLUSTER", "COUNTKEYSINSLOT", &tslot]), "1");
    assert_eq!(error_of(port, &["CLUSTER", "COUNTKEYSINSLOT", "-1"]), "ERR Invalid slot");

    // A slot handed to an unknown node is refused; one taken away stops being served.
    let foo_slot = key_slot(port, "foo").to_string();
    assert_eq!(text(port, &["DEL", "foo"]), "1");
    assert_eq!(text(port, &["CLUSTER", "DELSLOTS", &foo_slot]), "OK");
    assert_eq!(
        error_of(port, &["CLUSTER", "DELSLOTS", &foo_slot]),
        format!("ERR Slot {foo_slot} is already unassigned")
    );
    assert_eq!(error_of(port, &["GET", "foo"]), "CLUSTERDOWN Hash slot not served");
    assert_eq!(cluster_field(port, "cluster_state"), "fail");
    assert_eq!(error_of(port, &["GET", "{t}b"]), "CLUSTERDOWN The cluster is down");
    // CONFIG SET of the cluster policies takes effect at once: reads while down, then no
    // need for full coverage (the state is ok again at the next tick).
    assert_eq!(text(port, &["CONFIG", "SET", "cluster-allow-reads-when-down", "yes"]), "OK");
    assert_eq!(text(port, &["GET", "{t}b"]), "2");
    let read_only = "CLUSTERDOWN The cluster is down and only accepts read commands";
    assert_eq!(error_of(port, &["SET", "{t}b", "3"]), read_only);
    assert_eq!(text(port, &["CONFIG", "SET", "cluster-require-full-coverage", "no"]), "OK");
    wait_state_ok(&[port], Duration::from_secs(5));
    assert_eq!(text(port, &["SET", "{t}b", "3"]), "OK");
    assert_eq!(error_of(port, &["GET", "foo"]), "CLUSTERDOWN Hash slot not served");
    assert_eq!(text(port, &["CLUSTER", "BUMPEPOCH"]), "BUMPED 1");
    assert_eq!(text(port, &["CLUSTER", "BUMPEPOCH"]), "STILL 1");
    assert_eq!(error_of(port, &["CLUSTER", "SET-CONFIG-EPOCH", "5"]), "ERR Node config epoch is already non-zero");
    let conf = std::fs::read_to_string(node.dir.path().join("nodes.conf")).expect("nodes.conf");
    assert!(conf.contains("vars currentEpoch 1 lastVoteEpoch 0"), "{conf}");
}

#[test]
fn bad_nodes_conf_is_a_startup_error_naming_file_and_line() {
    let dir = common::TempDir::new("badconf");
    std::fs::write(dir.path().join("nodes.conf"), "vars currentEpoch 0 lastVoteEpoch 0\nnot a node line\n")
        .expect("write");
    let port = free_port().to_string();
    let bus = free_port().to_string();
    let log = dir.path().join("log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .args(["server", "--port", &port, "--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-port", &bus])
        .args(["--dir", dir.path().to_str().expect("utf8"), "--logfile", log.to_str().expect("utf8")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let exited = wait_until(Duration::from_secs(10), || child.try_wait().is_ok_and(|s| s.is_some()));
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(exited && !status.success(), "started with a corrupt nodes.conf:\n{text}");
    assert!(text.contains("nodes.conf:2:"), "the error names the file and line:\n{text}");
}

#[test]
fn three_masters_three_replicas_created_by_redis_cli() {
    let nodes: Vec<Server> = (0..6).map(|_| ferrokv_node(&[])).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    create_cluster(&ports, 1);
    wait_state_ok(&ports, Duration::from_secs(20));
    check_cluster(ports[0]);
    write_and_read(ports[0], 1000, "k");

    // A node that does not serve a key's slot redirects to the one that does.
    let map = slot_map(ports[0]);
    let slot = key_slot(ports[0], "k:1");
    let owner = owner_port(&map, slot);
    let other = map.iter().map(|r| r.2).find(|&p| p != owner).expect("another master");
    assert_eq!(error_of(other, &["GET", "k:1"]), format!("MOVED {slot} 127.0.0.1:{owner}"));
    assert_eq!(error_of(owner, &["MGET", "k:1", "k:2"]), "CROSSSLOT Keys in request don't hash to the same slot");

    // redis-cli -c follows the redirection.
    let (ok, out) = run_tool(
        "redis-cli",
        &["-c".into(), "-p".into(), other.to_string(), "GET".into(), "k:1".into()],
        Duration::from_secs(10),
    );
    assert!(ok && out.trim() == "1", "redis-cli -c GET k:1: {out}");

    // Replicas answer READONLY reads of their master's slots, and redirect otherwise.
    let owner_id = text(owner, &["CLUSTER", "MYID"]);
    let replica_port = ports
        .iter()
        .copied()
        .find(|&p| text(p, &["CLUSTER", "NODES"]).lines().any(|l| l.contains("myself,slave") && l.contains(&owner_id)))
        .expect("the owner has a replica");
    assert!(
        wait_until(Duration::from_secs(10), || text(replica_port, &["INFO", "replication"])
            .contains("master_link_status:up")),
        "the replica did not sync"
    );
    assert_eq!(error_of(replica_port, &["GET", "k:1"]), format!("MOVED {slot} 127.0.0.1:{owner}"));

    // Sharded pub/sub: a channel is routed like a key; a replica of the channel's master
    // serves SSUBSCRIBE, and SPUBLISH reaches it over the bus.
    let mut subscriber = common::Raw::connect(&format!("127.0.0.1:{replica_port}"));
    let subscribed = String::from_utf8_lossy(&subscriber.cmd(&[b"SSUBSCRIBE", b"k:1"])).into_owned();
    assert!(subscribed.contains("ssubscribe"), "{subscribed}");
    assert_eq!(error_of(other, &["SPUBLISH", "k:1", "hello"]), format!("MOVED {slot} 127.0.0.1:{owner}"));
    assert_eq!(text(owner, &["SPUBLISH", "k:1", "hello"]), "0");
    let message = String::from_utf8_lossy(&subscriber.read_reply().expect("smessage")).into_owned();
    assert!(message.contains("smessage") && message.contains("hello"), "{message}");

    // redis-py's cluster client, across slots.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cluster_clients/redis_py_cluster.py");
    run_python_scenario(script, &[ports[0].to_string()], String::new);

    // kill -9 the master: its replica takes over within node-timeout + 2 s.
    let mut nodes = nodes;
    let owner_index = ports.iter().position(|&p| p == owner).expect("owner");
    let owner_bus = config_get(owner, "cluster-port");
    let killed_at = Instant::now();
    nodes[owner_index].kill9();
    let promoted = wait_until(Duration::from_millis(NODE_TIMEOUT_MS + 2000), || {
        text(replica_port, &["CLUSTER", "NODES"]).lines().any(|l| l.contains("myself,master"))
    });
    assert!(promoted, "replica not promoted within node-timeout + 2 s:\n{}", text(replica_port, &["CLUSTER", "NODES"]));
    eprintln!("failover after kill -9: {:?}", killed_at.elapsed());
    let alive: Vec<u16> = ports.iter().copied().filter(|&p| p != owner).collect();
    wait_state_ok(&alive, Duration::from_secs(10));
    assert_eq!(text(replica_port, &["GET", "k:1"]), "1");
    write_and_read(replica_port, 200, "after");

    // The old master comes back from its nodes.conf and rejoins as the new master's replica.
    let rejoined = restart_node(&nodes[owner_index], owner, &owner_bus);
    let new_master_id = text(replica_port, &["CLUSTER", "MYID"]);
    let demoted = wait_until(Duration::from_secs(20), || {
        text(rejoined.port, &["CLUSTER", "NODES"])
            .lines()
            .any(|l| l.contains("myself,slave") && l.contains(&new_master_id))
    });
    assert!(demoted, "the old master did not rejoin as a replica:\n{}", text(rejoined.port, &["CLUSTER", "NODES"]));
    assert!(
        wait_until(Duration::from_secs(20), || text(rejoined.port, &["INFO", "replication"])
            .contains("master_link_status:up")),
        "the old master does not replicate from the new one"
    );
    check_cluster(replica_port);
}

#[test]
fn nodes_conf_survives_restart() {
    let nodes: Vec<Server> = (0..3).map(|_| ferrokv_node(&[])).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    create_cluster(&ports, 0);
    wait_state_ok(&ports, Duration::from_secs(20));
    let mut nodes = nodes;
    let id = text(ports[2], &["CLUSTER", "MYID"]);
    let epoch = cluster_field(ports[2], "cluster_current_epoch");
    // An import opened just before the kill: nodes.conf had it before the OK left (written,
    // not fsynced: a process crash does not lose it).
    let (start, _, owner) = *slot_map(ports[0]).iter().find(|r| r.2 != ports[2]).expect("a slot of another node");
    let owner_id = text(owner, &["CLUSTER", "MYID"]);
    let slot = start.to_string();
    assert_eq!(text(ports[2], &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &owner_id]), "OK");
    let mut old = nodes.pop().expect("node");
    let bus_port = config_get(ports[2], "cluster-port");
    old.kill9();
    let restarted = restart_node(&old, ports[2], &bus_port);
    assert_eq!(text(restarted.port, &["CLUSTER", "MYID"]), id);
    assert_eq!(cluster_field(restarted.port, "cluster_known_nodes"), "3");
    assert_eq!(cluster_field(restarted.port, "cluster_current_epoch"), epoch);
    let listed = text(restarted.port, &["CLUSTER", "NODES"]);
    assert!(listed.contains(&format!("[{slot}-<-{owner_id}]")), "the import is still open:\n{listed}");
    assert_eq!(text(restarted.port, &["CLUSTER", "SETSLOT", &slot, "STABLE"]), "OK");
    wait_state_ok(&ports, Duration::from_secs(20));
    check_cluster(ports[0]);
    drop(old);
}

#[test]
fn mixed_cluster_with_redis_server_nodes() {
    let Some(redis_master) = redis_node() else { return };
    let Some(redis_replica) = redis_node() else { return };
    let ferro: Vec<Server> = (0..4).map(|_| ferrokv_node(&[])).collect();
    let mut ports: Vec<u16> = vec![redis_master.port];
    ports.extend(ferro.iter().take(2).map(|n| n.port));
    ports.push(redis_replica.port);
    ports.extend(ferro.iter().skip(2).map(|n| n.port));
    create_cluster(&ports, 1);
    wait_state_ok(&ports, Duration::from_secs(20));
    check_cluster(redis_master.port);
    check_cluster(ferro[0].port);
    write_and_read(ferro[0].port, 500, "mixed");
    // CLUSTER LINKS: on either server, one link to and one from each other node.
    for port in [redis_master.port, ferro[0].port] {
        let me = text(port, &["CLUSTER", "MYID"]);
        let mut expected: Vec<(String, String)> = Vec::new();
        for &other in ports.iter().filter(|&&p| p != port) {
            let id = text(other, &["CLUSTER", "MYID"]);
            expected.push(("from".into(), id.clone()));
            expected.push(("to".into(), id));
        }
        expected.sort();
        let mut seen = Vec::new();
        let complete = wait_until(Duration::from_secs(10), || {
            seen = cluster_links(port);
            seen.iter().map(|(d, n, _)| (d.clone(), n.clone())).collect::<Vec<_>>() == expected
        });
        assert!(complete, "CLUSTER LINKS on {port} ({me}): {seen:?}, expected {expected:?}");
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        for (_, _, created) in &seen {
            assert!(now_ms - 120_000 < *created && *created <= now_ms + 1000, "create-time {created} (now {now_ms})");
        }
    }
}

/// CLUSTER LINKS as (direction, node, create-time), sorted.
fn cluster_links(port: u16) -> Vec<(String, String, i64)> {
    let Ok(redis::Value::Array(links)) = query(port, &["CLUSTER", "LINKS"]) else { return Vec::new() };
    let mut out = Vec::new();
    for link in links {
        let redis::Value::Array(fields) = link else { continue };
        let (mut direction, mut node, mut created) = (String::new(), String::new(), 0);
        for pair in fields.chunks(2) {
            match (&pair[0], &pair[1]) {
                (redis::Value::BulkString(k), redis::Value::BulkString(v)) if k == b"direction" => {
                    direction = String::from_utf8_lossy(v).into_owned()
                }
                (redis::Value::BulkString(k), redis::Value::BulkString(v)) if k == b"node" => {
                    node = String::from_utf8_lossy(v).into_owned()
                }
                (redis::Value::BulkString(k), redis::Value::Int(t)) if k == b"create-time" => created = *t,
                _ => {}
            }
        }
        out.push((direction, node, created));
    }
    out.sort();
    out
}

/// `redis-cli --cluster reshard`, its output in a file: it prints a line per slot, more than
/// a pipe holds, so a pipe read only after it exits would stall it.
fn reshard(entry: u16, from: &str, to: &str, slots: usize) {
    let bin = redis_tool("redis-cli").expect("redis-cli is required for the cluster tests");
    let dir = common::TempDir::new("reshard-out");
    let out_path = dir.path().join("out");
    let out = std::fs::File::create(&out_path).expect("create the output file");
    let err = out.try_clone().expect("clone the output file");
    let entry = format!("127.0.0.1:{entry}");
    let slots = slots.to_string();
    let mut child = Command::new(bin)
        .args(["--cluster", "reshard", &entry, "--cluster-from", from, "--cluster-to", to])
        .args(["--cluster-slots", &slots, "--cluster-yes"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn redis-cli");
    let exited = wait_until(Duration::from_secs(180), || child.try_wait().is_ok_and(|s| s.is_some()));
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for redis-cli");
    let text = std::fs::read_to_string(&out_path).unwrap_or_default();
    let tail: String = text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    assert!(
        exited && status.success() && !text.contains("[ERR]"),
        "redis-cli --cluster reshard {from} -> {to}:\n{tail}"
    );
}

fn slots_of(port: u16, entry: u16) -> usize {
    slot_map(entry).iter().filter(|r| r.2 == port).map(|(s, e, _)| usize::from(e - s) + 1).sum()
}

/// Issue 17's acceptance: `redis-cli --cluster reshard` moves 1,000 slots from a
/// redis-server master to a ferrokv master and back (so MIGRATE runs in both directions,
/// with RESTORE-ASKING) while redis-py's RedisCluster writes; no key is lost and the client
/// sees no error it did not absorb as MOVED/ASK.
#[test]
fn reshard_between_redis_server_and_ferrokv_under_load() {
    let Some(redis_master) = redis_node() else { return };
    let ferro: Vec<Server> = (0..2).map(|_| ferrokv_node(&[])).collect();
    let ports = vec![redis_master.port, ferro[0].port, ferro[1].port];
    create_cluster(&ports, 0);
    wait_state_ok(&ports, Duration::from_secs(20));
    write_and_read(ferro[0].port, 2000, "before");
    let redis_id = text(redis_master.port, &["CLUSTER", "MYID"]);
    let ferro_id = text(ferro[0].port, &["CLUSTER", "MYID"]);
    let redis_slots = slots_of(redis_master.port, ferro[0].port);

    let stop = common::TempDir::new("reshard-load");
    let stop_file = stop.path().join("stop");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cluster_clients/reshard_load.py");
    let mut load = Command::new("python3")
        .arg(script)
        .args([ferro[1].port.to_string(), stop_file.to_string_lossy().into_owned(), "150".into()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    // Let the load reach every master before slots start moving.
    let loading = wait_until(Duration::from_secs(20), || {
        ports.iter().all(|&p| text(p, &["DBSIZE"]).parse::<usize>().unwrap_or(0) > 1000)
    });

    reshard(ferro[0].port, &redis_id, &ferro_id, 1000);
    assert_eq!(slots_of(redis_master.port, ferro[0].port), redis_slots - 1000);
    reshard(redis_master.port, &ferro_id, &redis_id, 1000);
    assert_eq!(slots_of(redis_master.port, ferro[0].port), redis_slots);

    std::fs::write(&stop_file, b"stop").expect("write the stop file");
    let common::Finished { exited, status, out, err } = common::finish_child(&mut load, Duration::from_secs(120));
    assert!(loading, "the load did not reach every master:\n{out}\n{err}");
    assert!(exited && status.success() && out.starts_with("OK "), "load: {status}\n{out}\n{err}");
    eprintln!("reshard load: {}", out.trim());

    read_back(ferro[0].port, 2000, "before");
    wait_state_ok(&ports, Duration::from_secs(20));
    check_cluster(redis_master.port);
    check_cluster(ferro[0].port);
}

/// Reads back keys `write_and_read` wrote earlier, each from the node that now serves it.
fn read_back(entry: u16, n: usize, tag: &str) {
    let map = slot_map(entry);
    for i in 0..n {
        let key = format!("{tag}:{i}");
        let port = owner_port(&map, key_slot(entry, &key));
        assert_eq!(text(port, &["GET", &key]), i.to_string(), "GET {key} on {port} after resharding");
    }
}

/// Two masters joined by hand (ADDSLOTSRANGE, MEET): transactions and scripts within one
/// slot, and a slot opened for migration (ASK, ASKING, TRYAGAIN, SETSLOT NODE).
#[test]
fn open_slots_transactions_and_scripts() {
    let a = ferrokv_node(&[]);
    let b = ferrokv_node(&[]);
    assert_eq!(text(a.port, &["CLUSTER", "ADDSLOTSRANGE", "0", "8191"]), "OK");
    assert_eq!(text(b.port, &["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"]), "OK");
    let b_bus = config_get(b.port, "cluster-port");
    assert_eq!(text(a.port, &["CLUSTER", "MEET", "127.0.0.1", &b.port.to_string(), &b_bus]), "OK");
    wait_state_ok(&[a.port, b.port], Duration::from_secs(10));
    let (a_id, b_id) = (text(a.port, &["CLUSTER", "MYID"]), text(b.port, &["CLUSTER", "MYID"]));

    // "{a}" hashes to 15495 (b's), "{b}" to 3300 (a's).
    assert_eq!(key_slot(a.port, "{b}x"), 3300);
    assert_eq!(error_of(b.port, &["SET", "{b}x", "1"]), format!("MOVED 3300 127.0.0.1:{}", a.port));

    // A transaction runs only if all its keys are in one slot.
    let mut c = a.conn();
    redis::cmd("MULTI").query::<()>(&mut c).expect("MULTI");
    redis::cmd("SET").arg("{b}x").arg("1").query::<()>(&mut c).expect("queued");
    redis::cmd("SET").arg("{b}y").arg("2").query::<()>(&mut c).expect("queued");
    let done: Vec<String> = redis::cmd("EXEC").query(&mut c).expect("EXEC");
    assert_eq!(done, vec!["OK", "OK"]);
    let other_slot_key =
        (0..100).map(|i| format!("k{i}")).find(|k| (1..8192).contains(&key_slot(a.port, k))).expect("a key of a's");
    redis::cmd("MULTI").query::<()>(&mut c).expect("MULTI");
    redis::cmd("SET").arg("{b}x").arg("3").query::<()>(&mut c).expect("queued");
    redis::cmd("SET").arg(&other_slot_key).arg("4").query::<()>(&mut c).expect("queued");
    let refused = redis::cmd("EXEC").query::<redis::Value>(&mut c).expect_err("cross-slot EXEC");
    assert_eq!(refused.code(), Some("CROSSSLOT"), "{refused:?}");
    assert_eq!(text(a.port, &["GET", "{b}x"]), "1");

    // Scripts: declared keys are redirected like any command, undeclared ones refused.
    let script = "return redis.call('get', KEYS[1])";
    assert_eq!(text(a.port, &["EVAL", script, "1", "{b}x"]), "1");
    assert_eq!(error_of(a.port, &["EVAL", script, "1", "{a}x"]), format!("MOVED 15495 127.0.0.1:{}", b.port));
    let sneaky = error_of(a.port, &["EVAL", "return redis.call('get', '{a}x')", "0"]);
    assert!(sneaky.contains("Script attempted to access a non local key in a cluster node"), "{sneaky}");
    let two_slots =
        error_of(a.port, &["EVAL", "redis.call('get', KEYS[1]); return redis.call('get', '{c}k')", "1", "{b}x"]);
    assert!(two_slots.contains("Script attempted to access keys that do not hash to the same slot"), "{two_slots}");
    let allowed = "#!lua flags=allow-cross-slot-keys\nredis.call('get', KEYS[1]); return redis.call('get', '{c}k')";
    let cross = query(a.port, &["EVAL", allowed, "1", "{b}x"]);
    assert!(matches!(cross, Ok(redis::Value::Nil)), "allow-cross-slot-keys: {cross:?}");
    assert_eq!(
        error_of(a.port, &["EVAL", "#!lua flags=no-cluster\nreturn 1", "0"]),
        "ERR Can not run script on cluster, 'no-cluster' flag is set."
    );

    // Slot 3300 moves from a to b: a answers ASK for keys it no longer has, b serves
    // them to ASKING clients; multi-key commands over a partial slot get TRYAGAIN.
    assert_eq!(text(b.port, &["CLUSTER", "SETSLOT", "3300", "IMPORTING", &a_id]), "OK");
    assert_eq!(text(a.port, &["CLUSTER", "SETSLOT", "3300", "MIGRATING", &b_id]), "OK");
    assert!(text(a.port, &["CLUSTER", "NODES"]).contains(&format!("[3300->-{b_id}]")));
    assert!(text(b.port, &["CLUSTER", "NODES"]).contains(&format!("[3300-<-{a_id}]")));
    assert_eq!(text(a.port, &["GET", "{b}x"]), "1");
    assert_eq!(error_of(a.port, &["GET", "{b}missing"]), format!("ASK 3300 127.0.0.1:{}", b.port));
    assert_eq!(
        error_of(a.port, &["MGET", "{b}x", "{b}missing"]),
        "TRYAGAIN Multiple keys request during rehashing of slot"
    );
    assert_eq!(error_of(b.port, &["GET", "{b}missing"]), format!("MOVED 3300 127.0.0.1:{}", a.port));
    let mut asking = b.conn();
    redis::cmd("ASKING").query::<()>(&mut asking).expect("ASKING");
    let got: Option<String> = redis::cmd("GET").arg("{b}missing").query(&mut asking).expect("served after ASKING");
    assert_eq!(got, None);
    // ASKING lasts one command, whatever it is.
    redis::cmd("ASKING").query::<()>(&mut asking).expect("ASKING");
    redis::cmd("PING").query::<()>(&mut asking).expect("PING");
    let after_ping = redis::cmd("GET").arg("{b}missing").query::<Option<String>>(&mut asking).expect_err("MOVED");
    assert_eq!(after_ping.code(), Some("MOVED"));
    let again = redis::cmd("GET").arg("{b}missing").query::<Option<String>>(&mut asking).expect_err("MOVED");
    assert_eq!(again.code(), Some("MOVED"));
    assert_eq!(
        error_of(a.port, &["CLUSTER", "SETSLOT", "3300", "NODE", &b_id]),
        "ERR Can't assign hashslot 3300 to a different node while I still hold keys for this hash slot."
    );
    assert_eq!(text(a.port, &["DEL", "{b}x", "{b}y"]), "2");
    assert_eq!(text(b.port, &["CLUSTER", "SETSLOT", "3300", "NODE", &b_id]), "OK");
    assert_eq!(text(a.port, &["CLUSTER", "SETSLOT", "3300", "NODE", &b_id]), "OK");
    assert_eq!(error_of(a.port, &["GET", "{b}x"]), format!("MOVED 3300 127.0.0.1:{}", b.port));
    assert_eq!(text(b.port, &["SET", "{b}x", "moved"]), "OK");
    // b closed its import with a new config epoch, so every node adopts the change.
    let agreed = wait_until(Duration::from_secs(10), || {
        slot_map(a.port).iter().any(|&(s, e, p)| (s..=e).contains(&3300) && p == b.port)
    });
    assert!(agreed, "a still maps 3300 elsewhere: {:?}", slot_map(a.port));
    assert_eq!(text(b.port, &["CLUSTER", "COUNTKEYSINSLOT", "3300"]), "1");

    // A client blocked on a key of a slot that moves away is redirected at once.
    let list = (0..100)
        .map(|i| format!("{{list{i}}}"))
        .find(|k| key_slot(a.port, k) < 8192 && key_slot(a.port, k) != key_slot(a.port, "{c}k"))
        .expect("a key of a's");
    let d_slot = key_slot(a.port, &list);
    let mut blocked = common::Raw::connect(&format!("127.0.0.1:{}", a.port));
    let mut blpop = Vec::new();
    ferrokv_resp::encode_command(&mut blpop, [&b"BLPOP"[..], list.as_bytes(), b"0"]);
    blocked.send(&blpop);
    assert!(
        wait_until(Duration::from_secs(5), || text(a.port, &["INFO", "clients"]).contains("blocked_clients:1")),
        "BLPOP did not block"
    );
    assert_eq!(text(b.port, &["CLUSTER", "SETSLOT", &d_slot.to_string(), "NODE", &b_id]), "OK");
    let redirected = String::from_utf8_lossy(&blocked.read_reply().expect("a reply")).into_owned();
    assert_eq!(redirected.trim_end(), format!("-MOVED {d_slot} 127.0.0.1:{}", b.port));

    // b claims one of a's slots under its newer epoch while a still has a key there: a
    // gives the slot up and deletes the key (Redis's dirty slots).
    let c_slot = key_slot(a.port, "{c}k");
    assert!(c_slot < 8192 && c_slot != 3300, "{c_slot}");
    assert_eq!(text(a.port, &["SET", "{c}k", "v"]), "OK");
    assert_eq!(text(b.port, &["CLUSTER", "SETSLOT", &c_slot.to_string(), "NODE", &b_id]), "OK");
    let dropped = wait_until(Duration::from_secs(10), || {
        text(a.port, &["CLUSTER", "COUNTKEYSINSLOT", &c_slot.to_string()]) == "0"
    });
    assert!(dropped, "a kept its key in a slot b took");
    assert_eq!(error_of(a.port, &["GET", "{c}k"]), format!("MOVED {c_slot} 127.0.0.1:{}", b.port));
}

/// CLUSTER FAILOVER in its three forms, each moving a master's slots to its replica
/// while the old master stays up (and becomes a replica).
/// CLUSTER RESET of a replica empties its dataset as a FLUSHALL does: a client caching
/// its keys (CLIENT TRACKING) is told to drop everything.
#[test]
fn cluster_reset_of_a_replica_invalidates_tracked_keys() {
    let (master, replica) = (ferrokv_node(&[]), ferrokv_node(&[]));
    assert_eq!(text(master.port, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), "OK");
    let bus = config_get(master.port, "cluster-port");
    assert_eq!(text(replica.port, &["CLUSTER", "MEET", "127.0.0.1", &master.port.to_string(), &bus]), "OK");
    let master_id = text(master.port, &["CLUSTER", "MYID"]);
    let met = wait_until(Duration::from_secs(20), || {
        text(replica.port, &["CLUSTER", "NODES"]).contains(&master_id)
            && text(replica.port, &["CLUSTER", "REPLICATE", &master_id]) == "OK"
    });
    assert!(met, "the replica never met its master: {}", text(replica.port, &["CLUSTER", "NODES"]));
    assert_eq!(text(master.port, &["SET", "k", "v"]), "OK");
    let mut probe = replica.raw();
    assert_eq!(probe.cmd(&[b"READONLY"]), b"+OK\r\n");
    let synced = wait_until(Duration::from_secs(10), || probe.cmd(&[b"GET", b"k"]) == b"$1\r\nv\r\n");
    assert!(synced, "the replica never got k");
    let mut r = replica.raw();
    assert!(r.cmd(&[b"HELLO", b"3"]).starts_with(b"%"));
    assert_eq!(r.cmd(&[b"READONLY"]), b"+OK\r\n");
    assert_eq!(r.cmd(&[b"CLIENT", b"TRACKING", b"on"]), b"+OK\r\n");
    assert_eq!(r.cmd(&[b"GET", b"k"]), b"$1\r\nv\r\n");
    assert_eq!(text(replica.port, &["CLUSTER", "RESET"]), "OK");
    assert_eq!(r.read_reply().expect("an invalidation"), b">2\r\n$10\r\ninvalidate\r\n_\r\n");
    assert_eq!(text(replica.port, &["DBSIZE"]), "0");
}

#[test]
fn manual_failover_default_force_and_takeover() {
    let nodes: Vec<Server> = (0..6).map(|_| ferrokv_node(&[])).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    create_cluster(&ports, 1);
    wait_state_ok(&ports, Duration::from_secs(20));
    assert_eq!(error_of(ports[0], &["CLUSTER", "FAILOVER"]), "ERR You should send CLUSTER FAILOVER to a replica");
    assert_eq!(
        error_of(ports[0], &["FAILOVER"]),
        "ERR FAILOVER not allowed in cluster mode. Use CLUSTER FAILOVER command instead."
    );
    write_and_read(ports[0], 100, "mf");
    let masters: Vec<u16> = ports.iter().copied().filter(|&p| is_master(p)).collect();
    assert_eq!(masters.len(), 3);
    for (master, option) in masters.iter().zip([None, Some("FORCE"), Some("TAKEOVER")]) {
        let replica = replica_of(&ports, *master);
        let synced = wait_until(Duration::from_secs(10), || {
            text(replica, &["INFO", "replication"]).contains("master_link_status:up")
        });
        assert!(synced, "replica {replica} not synced");
        let mut args = vec!["CLUSTER", "FAILOVER"];
        args.extend(option);
        assert_eq!(text(replica, &args), "OK", "{option:?}");
        let swapped = wait_until(Duration::from_secs(10), || is_master(replica) && !is_master(*master));
        assert!(
            swapped,
            "CLUSTER FAILOVER {option:?}: roles did not swap\n{}\n{}",
            text(replica, &["CLUSTER", "NODES"]),
            text(*master, &["CLUSTER", "NODES"])
        );
        wait_state_ok(&ports, Duration::from_secs(10));
    }
    write_and_read(ports[0], 100, "mf");
    check_cluster(ports[0]);
}

/// CLUSTER NODES as `port` sees it: (id, client port, is a replica, master id or "-").
fn nodes_table(port: u16) -> Vec<(String, u16, bool, String)> {
    text(port, &["CLUSTER", "NODES"])
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let addr = fields.get(1)?.split('@').next()?;
            let node_port = addr.rsplit(':').next()?.parse().ok()?;
            let replica = fields.get(2)?.split(',').any(|f| f == "slave");
            Some((fields[0].to_string(), node_port, replica, fields.get(3)?.to_string()))
        })
        .collect()
}

/// Replica migration with real processes: 3 masters and 4 replicas (redis-cli gives the
/// seventh node to one master as a second replica). The only replica of another master is
/// killed; while `cluster-migration-barrier` is 2 (set by CONFIG SET) nothing moves; once
/// it is 1 again, the second master's replica with the smallest id moves to the orphan,
/// no sooner than 5 s later.
#[test]
fn replica_migration_gives_an_orphaned_master_a_replica() {
    let mut nodes: Vec<Server> = (0..7).map(|_| ferrokv_node(&[])).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    create_cluster(&ports, 1);
    wait_state_ok(&ports, Duration::from_secs(20));
    // Every node knows every replica's master (a node that never heard from a replica
    // since it was made one could not know whose it was once it dies).
    let roles = |p: u16| {
        let mut replicas: Vec<(String, String)> =
            nodes_table(p).into_iter().filter(|n| n.2).map(|n| (n.0, n.3)).collect();
        replicas.sort();
        replicas
    };
    let roles_known = wait_until(Duration::from_secs(10), || {
        let first = roles(ports[0]);
        first.len() == 4 && ports.iter().all(|&p| roles(p) == first)
    });
    assert!(roles_known, "the replicas are not known as such:\n{}", text(ports[0], &["CLUSTER", "NODES"]));
    let table = nodes_table(ports[0]);
    let replicas_of = |id: &str| -> Vec<(String, u16)> {
        table.iter().filter(|n| n.2 && n.3 == id).map(|n| (n.0.clone(), n.1)).collect()
    };
    let masters: Vec<(String, u16)> = table.iter().filter(|n| !n.2).map(|n| (n.0.clone(), n.1)).collect();
    assert_eq!(masters.len(), 3, "{table:?}");
    let rich = masters.iter().find(|m| replicas_of(&m.0).len() == 2).expect("a master with two replicas");
    let poor = masters.iter().find(|m| replicas_of(&m.0).len() == 1).expect("a master with one replica");
    let mut rich_replicas = replicas_of(&rich.0);
    rich_replicas.sort();
    let (mover, stayer) = (rich_replicas[0].clone(), rich_replicas[1].clone());
    let (orphaning_id, orphaning) = replicas_of(&poor.0)[0].clone();
    let alive: Vec<u16> = ports.iter().copied().filter(|&p| p != orphaning).collect();
    let set_barrier = |barrier: &str| {
        for &p in &alive {
            assert_eq!(text(p, &["CONFIG", "SET", "cluster-migration-barrier", barrier]), "OK");
        }
    };
    let follows =
        |port: u16, id: &str, master: &str| nodes_table(port).iter().any(|n| n.0 == id && n.2 && n.3 == master);

    set_barrier("2");
    let victim = ports.iter().position(|&p| p == orphaning).expect("the poor master's replica");
    nodes[victim].kill9();
    let failed = wait_until(Duration::from_millis(NODE_TIMEOUT_MS + 5000), || {
        let nodes = text(mover.1, &["CLUSTER", "NODES"]);
        let line = nodes.lines().find(|l| l.starts_with(orphaning_id.as_str()));
        line.and_then(|l| l.split(' ').nth(2)).is_some_and(|flags| flags.split(',').any(|f| f == "fail"))
    });
    assert!(failed, "the killed replica is not flagged fail:\n{}", text(mover.1, &["CLUSTER", "NODES"]));
    // The barrier holds: longer than the 5 s delay, nobody moves.
    let moved_anyway = wait_until(Duration::from_millis(6000), || follows(mover.1, &mover.0, &poor.0));
    assert!(!moved_anyway, "a replica migrated although its master would keep fewer than the barrier");

    set_barrier("1");
    let allowed_at = Instant::now();
    let moved = wait_until(Duration::from_secs(12), || follows(mover.1, &mover.0, &poor.0));
    assert!(moved, "replica {} did not migrate to {}:\n{}", mover.1, poor.1, text(mover.1, &["CLUSTER", "NODES"]));
    let took = allowed_at.elapsed();
    assert!(took >= Duration::from_millis(4900), "migrated {took:?} after the barrier allowed it (5 s delay)");
    eprintln!("replica migrated {took:?} after CONFIG SET cluster-migration-barrier 1");
    let synced = wait_until(Duration::from_secs(10), || {
        let info = text(mover.1, &["INFO", "replication"]);
        info.contains(&format!("master_port:{}", poor.1)) && info.contains("master_link_status:up")
    });
    assert!(synced, "the migrated replica does not replicate its new master");
    let agreed = wait_until(Duration::from_secs(10), || alive.iter().all(|&p| follows(p, &mover.0, &poor.0)));
    assert!(agreed, "not every node sees the migration");
    // Only one moves: the rich master keeps its other replica.
    assert!(follows(stayer.1, &stayer.0, &rich.0));
    wait_state_ok(&alive, Duration::from_secs(10));
}
