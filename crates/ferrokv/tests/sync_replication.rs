//! Synchronous replication (`sync-replicas`), REPLFREEZE and the empty-master guard with
//! real processes on loopback. The failover scenarios with sentinels are in
//! `tests/zero_loss.rs`.

mod common;
mod repl_support;
use common::*;
use repl_support::*;
use std::time::{Duration, Instant};

const FAST: &[&str] = &["--repl-diskless-sync-delay", "0"];

fn master(extra: &[&str]) -> Server {
    let mut args = vec!["--sync-replicas", "1"];
    args.extend_from_slice(FAST);
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Waits until the master counts `n` replicas acknowledging within the lease.
fn wait_acking(m: &mut redis::Connection, n: usize) {
    let ok = wait_until(Duration::from_secs(20), || field(m, "replication", "sync_replicas_acking") == n.to_string());
    assert!(ok, "{}", info(m, "replication"));
}

fn set(c: &mut redis::Connection, k: &str, v: &str) -> redis::RedisResult<String> {
    redis::cmd("SET").arg(k).arg(v).query(c)
}

/// SET's call count (INFO commandstats: not a data command, so never held nor fenced).
fn set_calls(c: &mut redis::Connection) -> u64 {
    let stats = info(c, "commandstats");
    let line = stats.lines().find(|l| l.starts_with("cmdstat_set:")).unwrap_or("");
    line.split(['=', ',']).nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn error_code(r: &redis::RedisResult<String>) -> String {
    match r {
        Ok(v) => format!("OK:{v}"),
        Err(e) => e.code().unwrap_or("?").to_string(),
    }
}

#[test]
fn writes_are_acknowledged_by_a_replica_before_ok_and_the_lease_is_reported() {
    let m = master(&[]);
    let r1 = start_replica(m.port, &[]);
    let r2 = start_replica(m.port, &[]);
    let mut mc = m.conn();
    wait_acking(&mut mc, 2);
    assert_eq!(field(&mut mc, "replication", "sync_replicas"), "1");
    assert_eq!(field(&mut mc, "replication", "sync_fenced"), "0");
    // Each OK'd write is already on a replica when the OK arrives.
    let (mut c1, mut c2) = (r1.conn(), r2.conn());
    for i in 0..200 {
        assert_eq!(set(&mut mc, &format!("k{i}"), "v").unwrap(), "OK");
        let on1: Option<String> = redis::cmd("GET").arg(format!("k{i}")).query(&mut c1).unwrap();
        let on2: Option<String> = redis::cmd("GET").arg(format!("k{i}")).query(&mut c2).unwrap();
        assert!(on1.is_some() || on2.is_some(), "write {i} answered OK before any replica had it");
    }
    let committed: u64 = field(&mut mc, "replication", "sync_committed_offset").parse().unwrap();
    assert!(committed > 0);
}

#[test]
fn one_replica_down_writes_go_on_both_down_none_is_answered_ok() {
    let m = master(&["--sync-replicas-timeout", "1500"]);
    let r1 = start_replica(m.port, &[]);
    let mut r2 = start_replica(m.port, &[]);
    let mut mc = m.conn();
    wait_acking(&mut mc, 2);
    r2.kill9();
    for i in 0..50 {
        assert_eq!(set(&mut mc, &format!("a{i}"), "v").unwrap(), "OK", "one replica is enough");
    }
    r1.signal("STOP");
    // A write now is never OK: held, then -UNACKED; after the lease the master is fenced.
    let started = Instant::now();
    let first = set(&mut mc, "held", "v");
    assert_eq!(error_code(&first), "UNACKED", "{first:?}");
    assert!(started.elapsed() >= Duration::from_millis(1400), "answered after the timeout, not before");
    let later = set(&mut mc, "fenced", "v");
    assert_eq!(error_code(&later), "READONLY", "{later:?}");
    let read: redis::RedisResult<Option<String>> = redis::cmd("GET").arg("a0").query(&mut mc);
    assert!(read.is_err(), "a fenced master serves no data: {read:?}");
    let pong: String = redis::cmd("PING").query(&mut mc).unwrap();
    assert_eq!(pong, "PONG");
    r1.signal("CONT");
    wait_acking(&mut mc, 1);
    assert_eq!(set(&mut mc, "after", "v").unwrap(), "OK");
}

#[test]
fn a_read_of_an_unacknowledged_write_waits_for_it_and_fails_with_it() {
    let m = master(&["--sync-replicas-timeout", "1500", "--sync-replicas-lease", "5000"]);
    let r = start_replica(m.port, &[]);
    let mut mc = m.conn();
    wait_acking(&mut mc, 1);
    assert_eq!(set(&mut mc, "k", "old").unwrap(), "OK");
    let sets_before = set_calls(&mut mc);
    r.signal("STOP");
    let port = m.port;
    let writer = std::thread::spawn(move || {
        let mut w = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap();
        error_code(&set(&mut w, "k", "new"))
    });
    // The reader must not see "new" (it may be lost in a failover) nor "old" (the write
    // is in the dataset): it waits with the write and fails with it.
    let mut reader = m.conn();
    let ran = wait_until(Duration::from_secs(5), || set_calls(&mut reader) > sets_before);
    assert!(ran, "the writer's SET never ran");
    let read: redis::RedisResult<Option<String>> = redis::cmd("GET").arg("k").query(&mut reader);
    assert_eq!(writer.join().unwrap(), "UNACKED");
    assert_eq!(read.map_err(|e| e.code().map(str::to_string)), Err(Some("UNACKED".to_string())));
    let clean: Option<String> = redis::cmd("GET").arg("other").query(&mut reader).unwrap();
    assert_eq!(clean, None, "a clean key is served while the write waits (lease still valid)");
    r.signal("CONT");
}

#[test]
fn replfreeze_stops_a_replica_acknowledging_and_thaws() {
    let m = master(&["--sync-replicas-lease", "300"]);
    let r = start_replica(m.port, &[]);
    let (mut mc, mut rc) = (m.conn(), r.conn());
    wait_acking(&mut mc, 1);
    assert_eq!(set(&mut mc, "k", "v").unwrap(), "OK");
    let (replid, offset): (String, i64) = redis::cmd("REPLFREEZE").arg(60_000).query(&mut rc).unwrap();
    assert_eq!(replid, field(&mut mc, "replication", "master_replid"));
    assert!(offset > 0);
    assert_eq!(field(&mut rc, "replication", "sync_frozen"), "1");
    assert!(wait_until(Duration::from_secs(5), || field(&mut mc, "replication", "sync_fenced") == "1"));
    assert_eq!(error_code(&set(&mut mc, "k2", "v")), "READONLY");
    let (_, still): (String, i64) = redis::cmd("REPLFREEZE").arg(60_000).query(&mut rc).unwrap();
    assert_eq!(still, offset, "a frozen replica's offset stands still");
    let master_err: redis::RedisResult<(String, i64)> = redis::cmd("REPLFREEZE").arg(1).query(&mut mc);
    assert!(master_err.unwrap_err().to_string().contains("only valid on a replica"));
    let _: (String, i64) = redis::cmd("REPLFREEZE").arg(0).query(&mut rc).unwrap();
    wait_acking(&mut mc, 1);
    assert_eq!(set(&mut mc, "k3", "v").unwrap(), "OK");
    assert!(r.log_text().contains("Replication frozen for 60000 ms"));
}

#[test]
fn a_redis_replica_can_be_the_acknowledging_replica() {
    let m = master(&[]);
    let Some(redis) = Server::start_redis(&["--replicaof", "127.0.0.1", &m.port.to_string()]) else { return };
    let mut mc = m.conn();
    wait_acking(&mut mc, 1);
    for i in 0..100 {
        assert_eq!(set(&mut mc, &format!("k{i}"), "v").unwrap(), "OK");
    }
    let mut rc = redis.conn();
    let n: i64 = redis::cmd("DBSIZE").query(&mut rc).unwrap();
    assert!(n >= 99, "acknowledged writes are on the Redis replica: {n}");
}

#[test]
fn a_replica_refuses_the_empty_dataset_of_a_master_that_restarted_without_its_data() {
    let dir = TempDir::new("empty-master");
    let port = free_port().to_string();
    let pinned = ["--port", port.as_str(), "--dir", dir.path().to_str().unwrap(), "--repl-diskless-sync-delay", "0"];
    let mut m = Server::start(&pinned);
    let r = start_replica(m.port, &[]);
    let (mut mc, mut rc) = (m.conn(), r.conn());
    for i in 0..100 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").query(&mut mc).unwrap();
    }
    wait_synced(&mut mc, &mut rc);
    m.kill9();
    // The same address, no persistence: it comes back empty, with a new history.
    let m2 = Server::start(&pinned);
    let refused = wait_until(Duration::from_secs(20), || field(&mut rc, "replication", "empty_master_refused") == "1");
    assert!(refused, "{}", r.log_text());
    let n: i64 = redis::cmd("DBSIZE").query(&mut rc).unwrap();
    assert_eq!(n, 100, "the replica kept its data");
    assert!(r.log_text().contains("Refusing to replace our 100 keys with the EMPTY dataset of MASTER"));
    // With the guard off it follows the master (the operator said so).
    let _: () = redis::cmd("CONFIG").arg("SET").arg("empty-master-guard").arg("no").query(&mut rc).unwrap();
    let mut m2c = m2.conn();
    wait_synced(&mut m2c, &mut rc);
    let n: i64 = redis::cmd("DBSIZE").query(&mut rc).unwrap();
    assert_eq!(n, 0);
    drop(m);
}

#[test]
fn a_replica_refuses_a_master_that_restarted_empty_even_after_it_took_writes() {
    let dir = TempDir::new("restarted-master");
    let port = free_port().to_string();
    let pinned = ["--port", port.as_str(), "--dir", dir.path().to_str().unwrap(), "--repl-diskless-sync-delay", "0"];
    let mut m = Server::start(&pinned);
    let r = start_replica(m.port, &[]);
    let (mut mc, mut rc) = (m.conn(), r.conn());
    for i in 0..100 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").query(&mut mc).unwrap();
    }
    wait_synced(&mut mc, &mut rc);
    // Stopped, the replica reconnects only once the restarted master took writes, as it
    // does under load (it retries every second; clients are faster).
    r.signal("STOP");
    m.kill9();
    let m2 = Server::start(&pinned);
    let mut m2c = m2.conn();
    for i in 0..10 {
        let _: () = redis::cmd("SET").arg(format!("new{i}")).arg("v").query(&mut m2c).unwrap();
    }
    r.signal("CONT");
    let refused = wait_until(Duration::from_secs(20), || field(&mut rc, "replication", "empty_master_refused") == "1");
    assert!(refused, "{}", r.log_text());
    let n: i64 = redis::cmd("DBSIZE").query(&mut rc).unwrap();
    assert_eq!(n, 100, "the replica kept its data");
    assert!(r.log_text().contains("Refusing to replace our 100 keys with the 10 keys of MASTER"), "{}", r.log_text());
    // The refusal was about that master: pointed elsewhere, INFO no longer shows it (a
    // sentinel would take it for a refusal of the new master and fail that one over).
    let nowhere = free_port();
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(nowhere).query(&mut rc).unwrap();
    assert_eq!(field(&mut rc, "replication", "empty_master_refused"), "0");
    drop(m);
}

#[test]
fn a_replica_restarted_with_its_data_refuses_a_master_that_restarted_empty_and_took_writes() {
    // A whole group restarts: the replica comes back from its RDB, the master (no
    // persistence) comes back empty and takes writes before the replica connects.
    let mdir = TempDir::new("restarted-group-master");
    let port = free_port().to_string();
    let pinned = ["--port", port.as_str(), "--dir", mdir.path().to_str().unwrap(), "--repl-diskless-sync-delay", "0"];
    let mut m = Server::start(&pinned);
    let rdir = TempDir::new("restarted-group-replica");
    let rport = free_port().to_string();
    let rargs = ["--port", rport.as_str(), "--dir", rdir.path().to_str().unwrap()];
    let mut r = start_replica(m.port, &rargs);
    let (mut mc, mut rc) = (m.conn(), r.conn());
    for i in 0..100 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").query(&mut mc).unwrap();
    }
    wait_synced(&mut mc, &mut rc);
    let _: () = redis::cmd("SAVE").query(&mut rc).unwrap();
    r.kill9();
    m.kill9();
    let m2 = Server::start(&pinned);
    let mut m2c = m2.conn();
    for i in 0..10 {
        let _: () = redis::cmd("SET").arg(format!("new{i}")).arg("v").query(&mut m2c).unwrap();
    }
    let r2 = start_replica(m2.port, &rargs);
    let mut rc = r2.conn();
    let refused = wait_until(Duration::from_secs(20), || field(&mut rc, "replication", "empty_master_refused") == "1");
    assert!(refused, "{}", r2.log_text());
    let n: i64 = redis::cmd("DBSIZE").query(&mut rc).unwrap();
    assert_eq!(n, 100, "the replica kept its data");
    drop(m);
}

#[test]
fn a_replica_follows_a_master_that_restarted_with_its_data_under_a_new_history() {
    let dir = TempDir::new("aof-master");
    let port = free_port().to_string();
    let dirs = dir.path().to_str().unwrap();
    let pinned = ["--port", port.as_str(), "--dir", dirs, "--appendonly", "yes", "--repl-diskless-sync-delay", "0"];
    let mut m = Server::start(&pinned);
    let r = start_replica(m.port, &[]);
    let (mut mc, mut rc) = (m.conn(), r.conn());
    for i in 0..100 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").query(&mut mc).unwrap();
    }
    wait_synced(&mut mc, &mut rc);
    let old_id = field(&mut mc, "replication", "master_replid");
    m.kill9();
    // Back from its AOF with a new replication ID: not a master that lost its data.
    let m2 = Server::start(&pinned);
    let mut m2c = wait_loaded(&m2);
    assert_ne!(field(&mut m2c, "replication", "master_replid"), old_id);
    let _: () = redis::cmd("SET").arg("after").arg("v").query(&mut m2c).unwrap();
    wait_synced(&mut m2c, &mut rc);
    assert_eq!(field(&mut rc, "replication", "empty_master_refused"), "0");
    assert_eq!(digest(&mut rc), digest(&mut m2c));
    drop(m);
}

#[test]
fn flushall_keeps_the_history_so_a_restarted_replica_still_follows_the_empty_master() {
    let m = Server::start(FAST);
    let rdir = TempDir::new("flush-replica");
    let rport = free_port().to_string();
    let rargs = ["--port", rport.as_str(), "--dir", rdir.path().to_str().unwrap(), "--save", "1 1"];
    let mut r = start_replica(m.port, &rargs);
    let (mut mc, mut rc) = (m.conn(), r.conn());
    for i in 0..50 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg("v").query(&mut mc).unwrap();
    }
    wait_synced(&mut mc, &mut rc);
    let _: () = redis::cmd("SAVE").query(&mut rc).unwrap();
    r.kill9();
    let _: () = redis::cmd("FLUSHALL").query(&mut mc).unwrap();
    // Force a full resync: the backlog is replaced by a new, tiny one.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("repl-backlog-size").arg("16384").query(&mut mc).unwrap();
    for i in 0..200 {
        let _: () = redis::cmd("SET").arg(format!("pad{i}")).arg(vec![b'x'; 1000]).query(&mut mc).unwrap();
    }
    let _: () = redis::cmd("FLUSHALL").query(&mut mc).unwrap();
    let r2 = start_replica(m.port, &rargs);
    let mut rc = r2.conn();
    wait_synced(&mut mc, &mut rc);
    let n: i64 = redis::cmd("DBSIZE").query(&mut rc).unwrap();
    assert_eq!(n, 0, "the replica followed its master's FLUSHALL");
    assert_eq!(field(&mut rc, "replication", "empty_master_refused"), "0");
}

#[test]
fn a_looping_script_under_sync_replicas_gets_busy_and_script_kill() {
    let m = master(&["--busy-reply-threshold", "100"]);
    let r = start_replica(m.port, &[]);
    let (mut mc, mut rc) = (m.conn(), r.conn());
    wait_acking(&mut mc, 1);
    let mut looping = m.raw();
    m.start_long_script(&mut looping, &[b"EVAL", b"while true do end", b"0"]);
    let mut other = m.raw();
    let busy = String::from_utf8_lossy(&other.cmd(&[b"SET", b"k", b"v"])).into_owned();
    assert!(busy.starts_with("-BUSY Redis is busy running a script."), "{busy}");
    assert_eq!(other.cmd(&[b"SCRIPT", b"KILL"]), b"+OK\r\n");
    let killed = String::from_utf8_lossy(&looping.read_reply().expect("the looping client's reply")).into_owned();
    assert!(killed.starts_with("-ERR Script killed by user with SCRIPT KILL..."), "{killed}");
    // The master serves again, and a write is answered once the replica has it.
    assert_eq!(set(&mut mc, "after", "v").unwrap(), "OK");
    let on_replica: Option<String> = redis::cmd("GET").arg("after").query(&mut rc).unwrap();
    assert_eq!(on_replica.as_deref(), Some("v"));
}

#[test]
fn a_long_script_that_writes_is_answered_only_once_the_replica_has_its_write() {
    let m = master(&["--busy-reply-threshold", "50", "--sync-replicas-timeout", "30000"]);
    let r = start_replica(m.port, &[]);
    let (mut mc, mut rc) = (m.conn(), r.conn());
    wait_acking(&mut mc, 1);
    // Stopped first, so the reply cannot be acknowledged early whatever the timing; the
    // script writes at once, while the lease (500 ms) still holds.
    r.signal("STOP");
    let script = b"redis.call('SET', KEYS[1], 'v')
local start = redis.call('TIME')
while true do
  local now = redis.call('TIME')
  if (now[1] - start[1]) * 1000000 + (now[2] - start[2]) > 300000 then break end
end
return 'done'";
    let mut looping = m.raw();
    m.start_long_script(&mut looping, &[b"EVAL", script, b"1", b"k"]);
    let mut probe = m.raw();
    let ended = wait_until(Duration::from_secs(10), || probe.cmd(&[b"PING"]) == b"+PONG\r\n");
    assert!(ended, "the script did not end");
    // Ended, and its reply waits for the stopped replica's acknowledgement.
    looping.stream.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let mut byte = [0u8; 1];
    let early = loop {
        match std::io::Read::read(&mut looping.stream, &mut byte) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break None,
            other => break Some(format!("{other:?} {:?}", byte)),
        }
    };
    assert_eq!(early, None, "the reply left before any replica acknowledged the script's write");
    looping.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    r.signal("CONT");
    assert_eq!(looping.read_reply().expect("the script's reply"), b"$4\r\ndone\r\n");
    let on_replica: Option<String> = redis::cmd("GET").arg("k").query(&mut rc).unwrap();
    assert_eq!(on_replica.as_deref(), Some("v"), "answered before the replica had the write");
}
