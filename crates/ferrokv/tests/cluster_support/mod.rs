//! Shared by the cluster tests (tests/cluster.rs, tests/cluster_rust_client.rs): ferrokv
//! (and Debian redis-server) cluster nodes on ephemeral ports, each with an explicit
//! `cluster-port` that was free, assembled by Debian's `redis-cli --cluster create`
//! exactly as users do it, and one-shot queries to a node by port.

#![allow(dead_code)]

use crate::common::{self, redis_tool, wait_until, Server, FREE_PORT};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Short, so failure detection and failover fit in a test (the default is 15 s).
pub const NODE_TIMEOUT_MS: u64 = 2000;

pub fn node_args(bus: &str) -> Vec<String> {
    let timeout = NODE_TIMEOUT_MS.to_string();
    ["--cluster-enabled", "yes", "--cluster-port", bus, "--cluster-node-timeout", &timeout]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// A ferrokv cluster node with a bus port of its own.
pub fn ferrokv_node(extra: &[&str]) -> Server {
    let mut args = node_args(FREE_PORT);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&refs)
}

/// A Debian redis-server cluster node, or None when it is not installed (skipped).
pub fn redis_node() -> Option<Server> {
    let args = node_args(FREE_PORT);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start_redis(&refs)
}

pub fn query(port: u16, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut c = client.get_connection_with_timeout(Duration::from_secs(5))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut c)
}

pub fn text(port: u16, args: &[&str]) -> String {
    match query(port, args) {
        Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        Ok(redis::Value::SimpleString(s)) => s,
        Ok(redis::Value::VerbatimString { text, .. }) => text,
        Ok(redis::Value::Int(n)) => n.to_string(),
        Ok(redis::Value::Okay) => "OK".to_string(),
        Ok(other) => format!("{other:?}"),
        Err(e) => format!("ERROR {e}"),
    }
}

pub fn error_of(port: u16, args: &[&str]) -> String {
    match query(port, args) {
        Err(e) => {
            let code = e.code().unwrap_or("").to_string();
            let detail = e.detail().unwrap_or("").to_string();
            format!("{code} {detail}").trim().to_string()
        }
        Ok(v) => panic!("{args:?} succeeded with {v:?}"),
    }
}

pub fn config_get(port: u16, name: &str) -> String {
    let Ok(redis::Value::Array(items)) = query(port, &["CONFIG", "GET", name]) else { panic!("CONFIG GET {name}") };
    match items.get(1) {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("CONFIG GET {name}: {other:?}"),
    }
}

/// Starts a node again as itself: same port, bus port and directory (so its nodes.conf).
pub fn restart_node(old: &Server, port: u16, bus_port: &str) -> Server {
    let (port, timeout) = (port.to_string(), NODE_TIMEOUT_MS.to_string());
    let dir = old.dir.path().to_str().expect("utf8").to_string();
    Server::start(&[
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        bus_port,
        "--cluster-node-timeout",
        &timeout,
        "--port",
        &port,
        "--dir",
        &dir,
    ])
}

pub fn cluster_field(port: u16, field: &str) -> String {
    text(port, &["CLUSTER", "INFO"])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

pub fn wait_state_ok(ports: &[u16], limit: Duration) {
    let ok = wait_until(limit, || ports.iter().all(|&p| cluster_field(p, "cluster_state") == "ok"));
    let states: Vec<String> = ports.iter().map(|&p| format!("{p}: {}", text(p, &["CLUSTER", "INFO"]))).collect();
    assert!(ok, "cluster_state is not ok everywhere after {limit:?}:\n{}", states.join("\n"));
}

/// Runs a redis tool with a time bound; returns (success, stdout + stderr).
pub fn run_tool(program: &str, args: &[String], limit: Duration) -> (bool, String) {
    let bin = redis_tool(program).unwrap_or_else(|| panic!("{program} is required for the cluster tests"));
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis tool");
    let common::Finished { exited, status, out, err } = common::finish_child(&mut child, limit);
    (exited && status.success(), format!("{out}{err}"))
}

pub fn create_cluster(ports: &[u16], replicas: usize) {
    let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
    args.extend(ports.iter().map(|p| format!("127.0.0.1:{p}")));
    args.extend(["--cluster-replicas".into(), replicas.to_string(), "--cluster-yes".into()]);
    let (ok, out) = run_tool("redis-cli", &args, Duration::from_secs(60));
    assert!(ok && out.contains("[OK] All 16384 slots covered"), "redis-cli --cluster create failed:\n{out}");
}

pub fn check_cluster(port: u16) {
    let args = vec!["--cluster".into(), "check".into(), format!("127.0.0.1:{port}")];
    let (ok, out) = run_tool("redis-cli", &args, Duration::from_secs(30));
    assert!(ok && !out.contains("[ERR]") && !out.contains("[WARNING]"), "redis-cli --cluster check:\n{out}");
}

/// Which port serves a slot, from CLUSTER SLOTS as `port` sees it.
pub fn slot_map(port: u16) -> Vec<(u16, u16, u16)> {
    let Ok(redis::Value::Array(ranges)) = query(port, &["CLUSTER", "SLOTS"]) else { panic!("CLUSTER SLOTS") };
    let mut map = Vec::new();
    for range in ranges {
        let redis::Value::Array(items) = range else { continue };
        let (Some(redis::Value::Int(start)), Some(redis::Value::Int(end)), Some(redis::Value::Array(master))) =
            (items.first(), items.get(1), items.get(2))
        else {
            continue;
        };
        if let Some(redis::Value::Int(p)) = master.get(1) {
            map.push((*start as u16, *end as u16, *p as u16));
        }
    }
    map
}

pub fn owner_port(map: &[(u16, u16, u16)], slot: u16) -> u16 {
    map.iter().find(|(s, e, _)| (*s..=*e).contains(&slot)).map(|r| r.2).expect("slot covered")
}

pub fn key_slot(port: u16, key: &str) -> u16 {
    match query(port, &["CLUSTER", "KEYSLOT", key]) {
        Ok(redis::Value::Int(n)) => n as u16,
        other => panic!("KEYSLOT: {other:?}"),
    }
}

/// Writes then reads `n` keys, each on the node CLUSTER SLOTS names, following a MOVED
/// (a failover may move slots meanwhile) at most a few times.
pub fn write_and_read(entry: u16, n: usize, tag: &str) {
    let map = slot_map(entry);
    for i in 0..n {
        let key = format!("{tag}:{i}");
        let slot = key_slot(entry, &key);
        let port = owner_port(&map, slot);
        assert_eq!(text(port, &["SET", &key, &i.to_string()]), "OK", "SET {key} on {port}");
    }
    for i in 0..n {
        let key = format!("{tag}:{i}");
        let port = owner_port(&map, key_slot(entry, &key));
        assert_eq!(text(port, &["GET", &key]), i.to_string(), "GET {key} on {port}");
    }
}

/// The replica of `master_port` (a node whose CLUSTER NODES says it replicates it).
pub fn replica_of(ports: &[u16], master_port: u16) -> u16 {
    let id = text(master_port, &["CLUSTER", "MYID"]);
    ports
        .iter()
        .copied()
        .find(|&p| text(p, &["CLUSTER", "NODES"]).lines().any(|l| l.contains("myself,slave") && l.contains(&id)))
        .expect("a replica")
}

pub fn is_master(port: u16) -> bool {
    text(port, &["CLUSTER", "NODES"]).lines().any(|l| l.contains("myself,master"))
}
