//! Sentinel end to end: real processes on loopback. Debian's redis-server plays master and
//! replicas; sentinels are ferrokv's, mixed with Debian's redis-sentinel in the interop
//! test. Every wait is bounded and polls for a condition.

mod common;
mod sentinel_support;

use common::{interop_required, optional_binary, redis_tool, wait_until, TempDir};
use sentinel_support::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FAILOVER_WAIT: Duration = Duration::from_secs(30);

fn ferrokv_sentinels(n: usize, master_port: u16) -> Vec<Proc> {
    (0..n).map(|_| sentinel(&SentinelKind::Ferrokv, master_port, "")).collect()
}

fn all_agree(sentinels: &[&Proc], port: u16) -> bool {
    sentinels.iter().all(|s| master_port_from(s.port) == Some(port))
}

/// Waits until every sentinel names the same one of `candidates` as master.
fn agreed_master(sentinels: &[&Proc], candidates: &[u16]) -> Option<u16> {
    let mut found = None;
    wait_until(FAILOVER_WAIT, || {
        found = candidates.iter().copied().find(|&p| all_agree(sentinels, p));
        found.is_some()
    });
    found
}

fn logs(procs: &[&Proc]) -> String {
    procs.iter().map(|p| format!("== port {}\n{}", p.port, p.log_text())).collect::<Vec<_>>().join("\n")
}

#[test]
fn failover_promotes_a_replica_and_the_old_master_rejoins_as_replica() {
    let Some((mut master, replicas)) = replication_group(2) else {
        return;
    };
    let sentinels = ferrokv_sentinels(3, master.port);
    let refs: Vec<&Proc> = sentinels.iter().collect();
    wait_discovery(&refs, 2);
    let events: Vec<Events> = sentinels.iter().map(|s| Events::listen(s.port)).collect();
    let old = master.port;
    master.kill9();
    let switch = events[0].wait_for("+switch-master", FAILOVER_WAIT).unwrap_or_else(|| panic!("{}", logs(&refs)));
    let parts: Vec<&str> = switch.split(' ').collect();
    assert_eq!(parts[..3], [MASTER, "127.0.0.1", &old.to_string()], "{switch}");
    let new: u16 = parts[4].parse().expect("port");
    assert!(replicas.iter().any(|r| r.port == new), "{switch}");
    assert_eq!(role(new).map(|r| r.0).as_deref(), Some("master"));
    let other = replicas.iter().find(|r| r.port != new).expect("other replica").port;
    assert!(wait_until(FAILOVER_WAIT, || role(other) == Some(("slave".into(), Some(new)))), "{}", logs(&refs));
    assert!(wait_until(FAILOVER_WAIT, || all_agree(&refs, new)), "{}", logs(&refs));
    // Every sentinel announced the switch, once.
    assert!(wait_until(FAILOVER_WAIT, || events.iter().all(|e| e.count("+switch-master") == 1)), "{}", logs(&refs));
    // The old master restarts with its old configuration (a master) and is turned into a
    // replica of the new one.
    master.start();
    assert!(wait_until(FAILOVER_WAIT, || role(old) == Some(("slave".into(), Some(new)))), "{}", logs(&refs));
    assert!(
        wait_until(Duration::from_secs(5), || events.iter().any(|e| e.find("+convert-to-slave").is_some())),
        "{}",
        logs(&refs)
    );
    assert!(events.iter().all(|e| e.count("+switch-master") == 1));
}

#[test]
fn mixed_group_with_redis_sentinel_agrees_on_failover() {
    let Some(redis_sentinel) = redis_tool("redis-sentinel") else {
        return;
    };
    let Some((mut master, replicas)) = replication_group(2) else {
        return;
    };
    let mut sentinels = ferrokv_sentinels(2, master.port);
    sentinels.push(sentinel(&SentinelKind::Redis(redis_sentinel), master.port, ""));
    let refs: Vec<&Proc> = sentinels.iter().collect();
    wait_discovery(&refs, 2);
    // Clients parse SENTINEL MASTER by field name: ours has Redis's fields in Redis's order.
    let fields = |port: u16| match query(port, &["SENTINEL", "master", MASTER]) {
        Some(ferrokv_resp::Frame::Array(v)) => v.chunks(2).map(|kv| text(&kv[0])).collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(fields(sentinels[0].port), fields(sentinels[2].port));
    let first_fields = |port: u16, sub: &str| match query(port, &["SENTINEL", sub, MASTER]) {
        Some(ferrokv_resp::Frame::Array(v)) => match v.first() {
            Some(ferrokv_resp::Frame::Array(kv)) => kv.chunks(2).map(|kv| text(&kv[0])).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    for sub in ["replicas", "sentinels"] {
        assert_eq!(first_fields(sentinels[0].port, sub), first_fields(sentinels[2].port, sub), "{sub}");
    }
    let events = Events::listen(sentinels[2].port);
    master.kill9();
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let new = agreed_master(&refs, &ports).unwrap_or_else(|| panic!("no agreement\n{}", logs(&refs)));
    assert_eq!(role(new).map(|r| r.0).as_deref(), Some("master"));
    assert!(events.wait_for("+switch-master", FAILOVER_WAIT).is_some(), "{}", logs(&refs));
}

#[test]
fn sentinel_restart_recovers_state_from_its_config_file() {
    let Some((mut master, replicas)) = replication_group(1) else {
        return;
    };
    let mut sentinels = ferrokv_sentinels(3, master.port);
    {
        let refs: Vec<&Proc> = sentinels.iter().collect();
        wait_discovery(&refs, 1);
    }
    let myid = query(sentinels[2].port, &["SENTINEL", "myid"]).map(|f| text(&f)).expect("myid");
    sentinels[2].stop();
    let saved = std::fs::read_to_string(config_path(&sentinels[2])).expect("config");
    assert!(saved.contains(&format!("sentinel myid {myid}\n")), "{saved}");
    assert!(saved.contains(&format!("sentinel known-replica {MASTER} 127.0.0.1 {}\n", replicas[0].port)), "{saved}");
    assert_eq!(saved.matches("sentinel known-sentinel ").count(), 2, "{saved}");
    assert!(saved.contains("sentinel current-epoch "), "{saved}");
    // A failover happens while it is down: two of three sentinels are a majority.
    master.kill9();
    let new = replicas[0].port;
    {
        let up: Vec<&Proc> = sentinels[..2].iter().collect();
        assert!(wait_until(FAILOVER_WAIT, || all_agree(&up, new)), "{}", logs(&up));
    }
    // Back up, it knows at once who it is and whom it watched, then learns the new master
    // from the others' hellos.
    sentinels[2].start();
    let port = sentinels[2].port;
    assert_eq!(query(port, &["SENTINEL", "myid"]).map(|f| text(&f)), Some(myid));
    assert_eq!(master_field(port, "num-other-sentinels").as_deref(), Some("2"));
    assert!(wait_until(FAILOVER_WAIT, || master_port_from(port) == Some(new)), "{}", sentinels[2].log_text());
}

#[test]
fn password_protected_group_is_monitored_and_failed_over_with_auth_pass() {
    let extra = "requirepass s3cret\nmasterauth s3cret\n";
    let Some((mut master, replicas)) = replication_group_with(1, extra, &["AUTH", "s3cret"]) else {
        return;
    };
    let sentinels: Vec<Proc> =
        (0..3).map(|_| sentinel(&SentinelKind::Ferrokv, master.port, "sentinel auth-pass mymaster s3cret\n")).collect();
    let refs: Vec<&Proc> = sentinels.iter().collect();
    // Discovering the replica and each other needs INFO and hello PUBLISH, which the
    // servers only answer after AUTH.
    wait_discovery(&refs, 1);
    master.kill9();
    let new = replicas[0].port;
    assert!(wait_until(FAILOVER_WAIT, || all_agree(&refs, new)), "{}", logs(&refs));
    let promoted = wait_until(
        FAILOVER_WAIT,
        || matches!(query_as(new, &["AUTH", "s3cret"], &["ROLE"]), Some(ferrokv_resp::Frame::Array(v)) if text(&v[0]) == "master"),
    );
    assert!(promoted, "{}", logs(&refs));
}

#[test]
fn stopped_master_is_demoted_when_it_continues() {
    let Some((master, replicas)) = replication_group(2) else {
        return;
    };
    let sentinels = ferrokv_sentinels(3, master.port);
    let refs: Vec<&Proc> = sentinels.iter().collect();
    wait_discovery(&refs, 2);
    master.signal("STOP");
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let new = agreed_master(&refs, &ports).unwrap_or_else(|| panic!("no failover\n{}", logs(&refs)));
    master.signal("CONT");
    // It wakes up believing it is the master; the sentinels make it a replica.
    let old = master.port;
    assert!(wait_until(FAILOVER_WAIT, || role(old) == Some(("slave".into(), Some(new)))), "{}", logs(&refs));
}

#[test]
fn unwritable_or_missing_config_file_is_refused_at_startup() {
    let bin = env!("CARGO_BIN_EXE_ferrokv");
    let out = Command::new(bin).arg("sentinel").output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Sentinel needs config file on disk to save state. Exiting...")
    );

    let dir = TempDir::new("sentinel-ro");
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(&conf, "port 0\nsentinel monitor m 127.0.0.1 6379 2\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // Root may write anything: run as nobody, as a container would.
    let mut cmd = if unsafe_is_root() {
        let Some(setpriv) = optional_binary("setpriv") else {
            return;
        };
        let mut c = Command::new(setpriv);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
        c
    } else {
        Command::new(bin)
    };
    let out = cmd.args(["sentinel", conf.to_str().expect("utf8")]).stdin(Stdio::null()).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "Sentinel config file {} is not writable: Permission denied. Exiting...",
            conf.display()
        )),
        "{err}"
    );
}

fn unsafe_is_root() -> bool {
    // Without libc in this crate: `id -u` tells.
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

#[test]
fn redis_rs_sentinel_client_follows_failover() {
    use redis::sentinel::{SentinelClient, SentinelServerType};
    let Some((mut master, replicas)) = replication_group(2) else {
        return;
    };
    let sentinels = ferrokv_sentinels(3, master.port);
    let refs: Vec<&Proc> = sentinels.iter().collect();
    wait_discovery(&refs, 2);
    let urls: Vec<String> = sentinels.iter().map(|s| format!("redis://127.0.0.1:{}/", s.port)).collect();
    let mut client =
        SentinelClient::build(urls, MASTER.to_string(), None, SentinelServerType::Master).expect("sentinel client");
    let mut conn = client.get_connection().expect("connection to master");
    redis::cmd("SET").arg("k").arg("before").query::<()>(&mut conn).expect("write");
    master.kill9();
    let started = Instant::now();
    let written = wait_until(FAILOVER_WAIT, || {
        client.get_connection().and_then(|mut c| redis::cmd("SET").arg("k").arg("after").query::<()>(&mut c)).is_ok()
    });
    assert!(written, "{}", logs(&refs));
    let on_new = replicas.iter().any(|r| {
        matches!(query(r.port, &["GET", "k"]), Some(f) if text(&f) == "after")
            && role(r.port).map(|x| x.0).as_deref() == Some("master")
    });
    assert!(on_new, "the write did not reach the promoted replica");
    eprintln!("redis-rs: first write after kill -9 in {:?}", started.elapsed());
}

#[test]
fn redis_py_sentinel_client_follows_failover() {
    let has_redis_py =
        Command::new("python3").args(["-c", "import redis.sentinel"]).output().is_ok_and(|o| o.status.success());
    if !has_redis_py {
        if interop_required() {
            panic!("python3 with redis-py is required (FERROKV_REQUIRE_INTEROP=1): pip install redis");
        }
        eprintln!("SKIPPED: python3 with redis-py is not installed (pip install redis)");
        return;
    }
    let Some((mut master, _replicas)) = replication_group(2) else {
        return;
    };
    let sentinels = ferrokv_sentinels(3, master.port);
    let refs: Vec<&Proc> = sentinels.iter().collect();
    wait_discovery(&refs, 2);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sentinel_clients/redis_py_failover.py");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(MASTER)
        .args(sentinels.iter().map(|s| s.port.to_string()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(ready, format!("READY {}", master.port));
    master.kill9();
    let done = lines.next().and_then(Result::ok).unwrap_or_default();
    let status = child.wait().expect("wait");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success() && done.starts_with("FAILED_OVER "), "{done}\n{err}\n{}", logs(&refs));
    eprintln!("redis-py: {done}");
}

#[test]
fn replies_match_redis_sentinel() {
    let Some(redis_sentinel) = redis_tool("redis-sentinel") else {
        return;
    };
    // Both watch the same (absent) master: everything below is independent of timing.
    let absent = common::free_port();
    let ours = sentinel(&SentinelKind::Ferrokv, absent, "");
    let theirs = sentinel(&SentinelKind::Redis(redis_sentinel), absent, "");
    let port = absent.to_string();
    let commands: Vec<Vec<&str>> = vec![
        vec!["PING"],
        vec!["PING", "hi"],
        vec!["foo", "bar", "baz"],
        vec!["SENTINEL", "foo"],
        vec!["SENTINEL", "masters", "x"],
        vec!["SENTINEL", "myid", "x"],
        vec!["SENTINEL", "get-master-addr-by-name", "nope"],
        vec!["SENTINEL", "get-master-addr-by-name", MASTER],
        vec!["SENTINEL", "master", "nope"],
        vec!["SENTINEL", "replicas", MASTER],
        vec!["SENTINEL", "sentinels", MASTER],
        vec!["SENTINEL", "ckquorum", MASTER],
        vec!["SENTINEL", "failover", MASTER],
        vec!["SENTINEL", "is-master-down-by-addr", "127.0.0.1", &port, "0", "*"],
        vec!["SENTINEL", "is-master-down-by-addr", "127.0.0.1", "x", "0", "*"],
        vec!["SENTINEL", "set", MASTER, "quorum", "0"],
        vec!["SENTINEL", "set", MASTER, "foo", "1"],
        vec!["SENTINEL", "config", "get", "*"],
        vec!["SENTINEL", "config", "set", "foo", "1"],
        vec!["SENTINEL", "config", "set", "announce-port", "99999"],
        vec!["SENTINEL", "debug"],
        vec!["SENTINEL", "simulate-failure", "help"],
        vec!["SENTINEL", "reset", "nomatch"],
        vec!["SENTINEL", "pending-scripts"],
        vec!["SENTINEL", "help"],
        vec!["ROLE"],
        vec!["PUBLISH", "x", "y"],
        vec!["CLIENT", "GETNAME"],
        vec!["AUTH", "x"],
    ];
    for c in &commands {
        let mine = query(ours.port, c);
        assert!(mine.is_some(), "{c:?}: no reply");
        assert_eq!(mine, query(theirs.port, c), "{c:?}");
    }
}
