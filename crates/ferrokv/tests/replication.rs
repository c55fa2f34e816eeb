//! Replication with real processes on loopback: the classic walk-through, interop with
//! Debian's redis-server in both directions (full sync, live stream, partial resync after
//! the link is cut), failover by hand with PSYNC2, backlog overflow, slow replicas, dead
//! masters, WAIT, min-replicas-to-write, chains. Every scenario ends by proving the
//! keyspaces converged, not assuming it.

mod common;
mod repl_support;
use common::*;
use redis::Commands;
use repl_support::*;
use std::time::{Duration, Instant};

#[test]
fn classic_walkthrough_from_config_files() {
    // Default settings: the master waits repl-diskless-sync-delay (5 s) for more replicas,
    // sending newlines meanwhile.
    let master = Server::start(&[]);
    let dir = TempDir::new("walk");
    let conf = dir.path().join("replica.conf");
    let port = free_port();
    std::fs::write(&conf, format!("replicaof 127.0.0.1 {}\nreplica-read-only yes\nport {port}\n", master.port))
        .unwrap();
    // The harness gives the replica its own ephemeral port on the command line, which wins
    // over the file's `port` as it does for redis-server.
    let replica = Server::start_with_config(&conf, &[]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    let _: () = m.set("a", "123").unwrap();
    let _: () = m.set("w", "yes!").unwrap();
    wait_synced(&mut m, &mut r);
    let mut keys: Vec<String> = r.keys("*").unwrap();
    keys.sort();
    assert_eq!(keys, vec!["a", "w"]);
    let mut raw = replica.raw();
    assert_eq!(raw.cmd(&[b"SET", b"x", b"1"]), b"-READONLY You can't write against a read only replica.\r\n");
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut r).unwrap();
    assert_eq!(role[0], redis::Value::BulkString(b"slave".to_vec()));
    assert_converged(&mut m, &mut r);
}

#[test]
fn ferrokv_replica_of_redis_master() {
    // Default settings, as the walk-through: newlines before +FULLRESYNC.
    let Some(master) = Server::start_redis(&[]) else { return };
    let mut m = master.conn();
    fill(&mut m, "pre");
    let replica = start_replica(master.port, &[]);
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    live_writes(&mut m, "live", 200);
    assert_converged(&mut m, &mut r);
    // Cut the link from the master's side; the replica continues partially.
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica").query(&mut m).unwrap();
    assert_eq!(killed, 1);
    live_writes(&mut m, "after-cut", 50);
    assert_converged(&mut m, &mut r);
    assert_eq!(field(&mut m, "stats", "sync_partial_ok"), "1", "{}", replica.log_text());
    // And from the replica's side.
    let _: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("master").query(&mut r).unwrap();
    live_writes(&mut m, "after-cut2", 50);
    assert_converged(&mut m, &mut r);
    assert_eq!(field(&mut m, "stats", "sync_partial_ok"), "2");
    assert_eq!(field(&mut m, "stats", "sync_full"), "1");
}

#[test]
fn redis_replica_of_ferrokv_master() {
    let master = Server::start(FAST);
    let mut m = master.conn();
    fill(&mut m, "pre");
    let port = master.port.to_string();
    let Some(replica) = Server::start_redis(&["--replicaof", "127.0.0.1", &port]) else { return };
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    live_writes(&mut m, "live", 200);
    assert_converged(&mut m, &mut r);
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica").query(&mut m).unwrap();
    assert_eq!(killed, 1);
    live_writes(&mut m, "after-cut", 50);
    assert_converged(&mut m, &mut r);
    let _: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("master").query(&mut r).unwrap();
    live_writes(&mut m, "after-cut2", 50);
    assert_converged(&mut m, &mut r);
    assert_eq!(field(&mut m, "stats", "sync_partial_ok"), "2", "{}", master.log_text());
    assert_eq!(field(&mut m, "stats", "sync_full"), "1");
}

/// BITFIELD reaches replicas as sent, and a Redis replica replaying it builds the same
/// bytes. A BITFIELD whose only write failed under OVERFLOW FAIL still creates (or pads)
/// the string: ferrokv propagates it, where Redis keeps it off the stream and its
/// replicas lack the key.
#[test]
fn bitfield_writes_reach_ferrokv_and_redis_replicas() {
    let master = Server::start(FAST);
    let mut m = master.conn();
    let ours = start_replica(master.port, &[]);
    let port = master.port.to_string();
    let theirs = Server::start_redis(&["--replicaof", "127.0.0.1", &port]);
    for i in 0..200i64 {
        let _: Vec<Option<i64>> = redis::cmd("BITFIELD")
            .arg(format!("bf{}", i % 7))
            .arg("OVERFLOW")
            .arg(["WRAP", "SAT", "FAIL"][i as usize % 3])
            .arg("INCRBY")
            .arg(format!("i{}", 1 + i % 64))
            .arg(format!("#{}", i % 5))
            .arg(i * 7919 - 500)
            .arg("SET")
            .arg("u8")
            .arg(i * 3)
            .arg(i - 100)
            .query(&mut m)
            .unwrap();
    }
    let failed: Vec<Option<i64>> = redis::cmd("BITFIELD")
        .arg("only-failed")
        .arg("OVERFLOW")
        .arg("FAIL")
        .arg("SET")
        .arg("u8")
        .arg(16)
        .arg(300)
        .query(&mut m)
        .unwrap();
    assert_eq!(failed, vec![None]);
    let bytes: Vec<u8> = m.get("only-failed").unwrap();
    assert_eq!(bytes, vec![0, 0, 0]);
    let mut r = ours.conn();
    assert_converged(&mut m, &mut r);
    if let Some(theirs) = theirs {
        let mut r = theirs.conn();
        assert_converged(&mut m, &mut r);
    }
}

#[test]
fn manual_failover_continues_partially_and_old_master_rejoins() {
    let dir = TempDir::new("failover");
    let d = dir.path().to_str().unwrap();
    let master = Server::start(&["--repl-diskless-sync-delay", "0", "--dir", d, "--appendonly", "yes"]);
    let mut m = master.conn();
    let r1 = start_replica(master.port, FAST);
    let r2 = start_replica(master.port, FAST);
    let (mut c1, mut c2) = (r1.conn(), r2.conn());
    fill(&mut m, "pre");
    live_writes(&mut m, "live", 100);
    assert_converged(&mut m, &mut c1);
    assert_converged(&mut m, &mut c2);
    drop(master); // kill -9
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut c1).unwrap();
    assert_eq!(field(&mut c1, "replication", "role"), "master");
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(r1.port).query(&mut c2).unwrap();
    live_writes(&mut c1, "promoted", 50);
    assert_converged(&mut c1, &mut c2);
    assert_eq!(field(&mut c1, "stats", "sync_partial_ok"), "1", "r2 should continue: {}", r2.log_text());
    assert_eq!(field(&mut c1, "stats", "sync_full"), "0");
    // The old master comes back with its AOF and becomes a replica of the new one.
    let old = Server::start(&["--dir", d, "--appendonly", "yes", "--replicaof", "127.0.0.1", &r1.port.to_string()]);
    let mut o = old.conn();
    assert_converged(&mut c1, &mut o);
}

#[test]
fn restarted_replica_continues_partially_from_its_rdb() {
    let master = Server::start(FAST);
    let mut m = master.conn();
    fill(&mut m, "pre");
    let dir = TempDir::new("restart-replica");
    let d = dir.path().to_str().unwrap();
    let mut args = replica_args(master.port);
    args.extend(["--dir", d, "--save", "3600 1"].iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut replica = Server::start(&refs);
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut r);
    assert!(replica.wait_exit(Duration::from_secs(10)).is_some());
    live_writes(&mut m, "while-down", 20);
    let replica = Server::start(&refs);
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    assert_eq!(field(&mut m, "stats", "sync_partial_ok"), "1", "{}", replica.log_text());
}

#[test]
fn backlog_overflow_forces_a_full_resync_that_converges() {
    let master = Server::start(&["--repl-diskless-sync-delay", "0", "--repl-backlog-size", "16384"]);
    let mut m = master.conn();
    let replica = start_replica(master.port, &[]);
    let mut r = replica.conn();
    fill(&mut m, "pre");
    assert_converged(&mut m, &mut r);
    // Stop the replica, cut the link, write more than the backlog holds.
    replica.signal("STOP");
    let _: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica").query(&mut m).unwrap();
    for i in 0..400 {
        let _: () = m.set(format!("flood:{i}"), "y".repeat(200)).unwrap();
    }
    replica.signal("CONT");
    assert_converged(&mut m, &mut r);
    assert_eq!(field(&mut m, "stats", "sync_full"), "2", "{}", replica.log_text());
}

#[test]
fn a_replica_that_cannot_keep_up_is_dropped_not_buffered_forever() {
    let master =
        Server::start(&["--repl-diskless-sync-delay", "0", "--client-output-buffer-limit", "replica 262144 131072 60"]);
    let mut m = master.conn();
    let replica = start_replica(master.port, &[]);
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    replica.signal("STOP");
    // 40 MB of stream: more than loopback socket buffers absorb, far more than the
    // 256 KB the replica may have pending.
    let payload = "z".repeat(10_000);
    for batch in 0..40 {
        let mut p = redis::pipe();
        for i in 0..100 {
            p.cmd("SET").arg(format!("big:{batch}:{i}")).arg(&payload).ignore();
        }
        let _: () = p.query(&mut m).unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || field(&mut m, "replication", "connected_slaves") == "0"));
    let hist: u64 = field(&mut m, "replication", "repl_backlog_histlen").parse().unwrap();
    assert!(hist <= 1024 * 1024 + 64 * 1024, "backlog kept {hist} bytes for a dropped replica");
    replica.signal("CONT");
    assert_converged(&mut m, &mut r);
}

#[test]
fn replica_notices_a_frozen_master_and_resyncs_when_it_wakes() {
    let master = Server::start(FAST);
    let mut m = master.conn();
    let replica = start_replica(master.port, &["--repl-timeout", "2"]);
    let mut r = replica.conn();
    fill(&mut m, "pre");
    assert_converged(&mut m, &mut r);
    master.signal("STOP");
    let down = wait_until(Duration::from_secs(15), || field(&mut r, "replication", "master_link_status") == "down");
    master.signal("CONT");
    assert!(down, "the replica never noticed: {}", replica.log_text());
    live_writes(&mut m, "after", 20);
    assert_converged(&mut m, &mut r);
}

#[test]
fn wait_counts_acknowledging_replicas() {
    let master = Server::start(FAST);
    let mut m = master.conn();
    let replica = start_replica(master.port, &[]);
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    let _: () = m.set("k", "v").unwrap();
    let n: i64 = redis::cmd("WAIT").arg(1).arg(5000).query(&mut m).unwrap();
    assert_eq!(n, 1);
    let t = Instant::now();
    let n: i64 = redis::cmd("WAIT").arg(2).arg(300).query(&mut m).unwrap();
    assert_eq!(n, 1);
    assert!(t.elapsed() >= Duration::from_millis(290));
    let err = redis::cmd("WAIT").arg(1).arg(10).query::<i64>(&mut r).unwrap_err();
    assert!(err.to_string().contains("WAIT cannot be used with replica instances"), "{err}");
}

/// A master hands each write to its replicas' sockets before it replies, so a write whose
/// OK reached the client survives a kill -9 that follows at once (asynchronous replication
/// still loses writes whose replies have not left; WAIT closes that window).
#[test]
fn a_write_acknowledged_right_before_the_master_dies_reaches_the_replica() {
    for round in 0..3 {
        let mut master = Server::start(FAST);
        let mut m = master.conn();
        let replica = start_replica(master.port, &[]);
        let mut r = replica.conn();
        assert_converged(&mut m, &mut r);
        let mut raw = master.raw();
        for i in 0..50 {
            assert_eq!(raw.cmd(&[b"SET", b"k", i.to_string().as_bytes()]), b"+OK\r\n");
        }
        master.kill9();
        let down = wait_until(Duration::from_secs(10), || field(&mut r, "replication", "master_link_status") == "down");
        assert!(down, "round {round}: the replica did not notice the master's death");
        let got: Option<String> = r.get("k").unwrap();
        assert_eq!(got.as_deref(), Some("49"), "round {round}: the last acknowledged write was lost");
    }
}

#[test]
fn min_replicas_to_write_refuses_writes_without_enough_good_replicas() {
    let master = Server::start(&[
        "--repl-diskless-sync-delay",
        "0",
        "--min-replicas-to-write",
        "1",
        "--min-replicas-max-lag",
        "10",
    ]);
    let mut raw = master.raw();
    assert_eq!(raw.cmd(&[b"SET", b"a", b"1"]), b"-NOREPLICAS Not enough good replicas to write.\r\n");
    let replica = start_replica(master.port, &[]);
    let mut m = master.conn();
    let mut r = replica.conn();
    assert!(wait_until(Duration::from_secs(10), || raw.cmd(&[b"SET", b"a", b"1"]) == b"+OK\r\n"));
    assert_converged(&mut m, &mut r);
}

/// `min-replicas-max-lag 1` (docs/FAILOVER.md's advice) with an in-sync replica refuses
/// nothing: a replica is good while its lag — the time since its last ACK, which it sends
/// once a second, truncated to whole seconds — is at most the setting. (Measured in
/// milliseconds, the check refused writes whenever an ACK came a little over 1000 ms
/// after the previous one: 1–16 refusals per 20 s at this rate; Redis's subtraction of
/// unix seconds refused one in CI when an ACK straddled a second boundary a few ms late.)
/// INFO's `min_slaves_good_slaves` and `lag=` follow the same arithmetic.
#[test]
fn min_replicas_max_lag_1_never_refuses_a_steady_writer_with_a_healthy_replica() {
    let master = Server::start(&[
        "--repl-diskless-sync-delay",
        "0",
        "--min-replicas-to-write",
        "1",
        "--min-replicas-max-lag",
        "1",
    ]);
    let replica = start_replica(master.port, &[]);
    let mut raw = master.raw();
    let mut m = master.conn();
    let mut r = replica.conn();
    assert!(wait_until(Duration::from_secs(10), || raw.cmd(&[b"SET", b"warmup", b"1"]) == b"+OK\r\n"));
    const WRITES: u64 = 30_000; // one per millisecond: 30 s
    let start = std::time::Instant::now();
    let mut refused: Vec<(u128, String)> = Vec::new();
    let mut samples: Vec<(String, String)> = Vec::new();
    let mut next_sample = start;
    for i in 0..WRITES {
        if start.elapsed() > Duration::from_secs(60) {
            panic!("the writer fell far behind its pace ({i} writes in 60 s)");
        }
        if let Some(wait) = (start + Duration::from_millis(i)).checked_duration_since(std::time::Instant::now()) {
            std::thread::sleep(wait);
        }
        let value = i.to_string();
        let reply = raw.cmd(&[b"SET", b"steady", value.as_bytes()]);
        if reply != b"+OK\r\n" {
            refused.push((start.elapsed().as_millis(), String::from_utf8_lossy(&reply).trim_end().to_string()));
        }
        if std::time::Instant::now() >= next_sample {
            next_sample += Duration::from_millis(250);
            let text = info(&mut m, "replication");
            let get = |prefix: &str| text.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or("?").to_string();
            let lag = get("slave0:").rsplit(',').find_map(|kv| kv.strip_prefix("lag=")).unwrap_or("?").to_string();
            samples.push((get("min_slaves_good_slaves:"), lag));
        }
    }
    assert!(
        refused.is_empty(),
        "{} of {WRITES} writes refused (ms since start, reply): {:?}",
        refused.len(),
        &refused[..refused.len().min(20)]
    );
    // A replica that ACKs every second has lag 0 or 1 at any moment, and counts as good.
    let odd: Vec<_> = samples.iter().filter(|(good, lag)| good != "1" || !(lag == "0" || lag == "1")).collect();
    assert!(odd.is_empty(), "INFO (min_slaves_good_slaves, lag) samples off: {odd:?} of {}", samples.len());
    assert_converged(&mut m, &mut r);
}

#[test]
fn chained_replicas_share_the_offset_space() {
    let master = Server::start(FAST);
    let mut m = master.conn();
    let r1 = start_replica(master.port, FAST);
    let r2 = start_replica(r1.port, &[]);
    let (mut c1, mut c2) = (r1.conn(), r2.conn());
    fill(&mut m, "pre");
    live_writes(&mut m, "live", 100);
    assert_converged(&mut m, &mut c1);
    assert_converged(&mut c1, &mut c2);
    assert_eq!(digest(&mut m), digest(&mut c2));
    assert_eq!(field(&mut m, "replication", "master_repl_offset"), field(&mut c2, "replication", "master_repl_offset"));
}

#[test]
fn stale_data_is_refused_when_configured() {
    let master = Server::start(FAST);
    let replica = start_replica(master.port, &["--replica-serve-stale-data", "no", "--repl-timeout", "2"]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    let _: () = m.set("a", "1").unwrap();
    assert_converged(&mut m, &mut r);
    drop(m);
    drop(master);
    let mut raw = replica.raw();
    assert!(wait_until(Duration::from_secs(10), || {
        raw.cmd(&[b"GET", b"a"])
            == b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"
    }));
    // INFO (a stale-allowed command) still answers.
    assert!(String::from_utf8_lossy(&raw.cmd(&[b"INFO", b"replication"])).contains("master_link_status:down"));
}

fn role(c: &mut redis::Connection) -> String {
    field(c, "replication", "role")
}

/// INCRs a counter until stopped, recording the highest value the server acknowledged.
fn counter_writer(url: String, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<i64> {
    std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let mut acked = 0;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
            match c.incr::<_, _, i64>("counter", 1) {
                Ok(v) => acked = v,
                Err(_) => break, // READONLY once the switch is done
            }
        }
        acked
    })
}

#[test]
fn failover_command_switches_roles_without_losing_acknowledged_writes() {
    let master = Server::start(FAST);
    let r1 = start_replica(master.port, FAST);
    let r2 = start_replica(master.port, &[]);
    let (mut m, mut c1, mut c2) = (master.conn(), r1.conn(), r2.conn());
    fill(&mut m, "pre");
    assert_converged(&mut m, &mut c1);
    assert_converged(&mut m, &mut c2);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = counter_writer(master.url(), stop.clone());
    assert!(wait_until(Duration::from_secs(10), || m.get::<_, Option<i64>>("counter").unwrap().unwrap_or(0) > 100));
    let _: () =
        redis::cmd("FAILOVER").arg("TO").arg("127.0.0.1").arg(r1.port).arg("TIMEOUT").arg(5000).query(&mut m).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || role(&mut c1) == "master" && role(&mut m) == "slave"),
        "{}\n{}",
        master.log_text(),
        r1.log_text()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acked = writer.join().unwrap();
    let on_new: i64 = c1.get("counter").unwrap();
    assert!(on_new >= acked, "acknowledged {acked} increments, the new master has {on_new}");
    assert_eq!(field(&mut m, "replication", "master_failover_state"), "no-failover");
    // The old master continued partially from its former replica; the whole group converges.
    assert_eq!(field(&mut c1, "stats", "sync_partial_ok"), "1", "{}", master.log_text());
    live_writes(&mut c1, "after", 20);
    assert_converged(&mut c1, &mut m);
    assert_converged(&mut m, &mut c2);
}

#[test]
fn failover_command_errors() {
    let master = Server::start(FAST);
    let mut raw = master.raw();
    assert_eq!(raw.cmd(&[b"FAILOVER"]), b"-ERR FAILOVER requires connected replicas.\r\n");
    assert_eq!(raw.cmd(&[b"FAILOVER", b"ABORT"]), b"-ERR No failover in progress.\r\n");
    let replica = start_replica(master.port, &[]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    assert_converged(&mut m, &mut r);
    assert_eq!(
        raw.cmd(&[b"FAILOVER", b"FORCE"]),
        b"-ERR FAILOVER with force option requires both a timeout and target HOST and IP.\r\n"
    );
    assert_eq!(
        raw.cmd(&[b"FAILOVER", b"TO", b"127.0.0.1", b"1"]),
        b"-ERR FAILOVER target HOST and PORT is not a replica.\r\n"
    );
    let mut rr = replica.raw();
    assert_eq!(rr.cmd(&[b"FAILOVER"]), b"-ERR FAILOVER is not valid when server is a replica.\r\n");
}

#[test]
fn failover_command_interoperates_with_redis() {
    // A Redis master hands over to a ferrokv replica…
    let Some(master) = Server::start_redis(FAST) else { return };
    let replica = start_replica(master.port, FAST);
    let (mut m, mut r) = (master.conn(), replica.conn());
    fill(&mut m, "pre");
    assert_converged(&mut m, &mut r);
    let _: () = redis::cmd("FAILOVER").query(&mut m).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || role(&mut r) == "master" && role(&mut m) == "slave"),
        "{}",
        replica.log_text()
    );
    live_writes(&mut r, "after", 20);
    assert_converged(&mut r, &mut m);
    // …and back: the ferrokv master hands over to the Redis replica.
    let _: () = redis::cmd("FAILOVER").query(&mut r).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || role(&mut m) == "master" && role(&mut r) == "slave"),
        "{}",
        replica.log_text()
    );
    live_writes(&mut m, "back", 20);
    assert_converged(&mut m, &mut r);
}

fn aof_rewrites(c: &mut redis::Connection) -> i64 {
    field(c, "persistence", "aof_rewrites").parse().unwrap_or(-1)
}

fn keys_like(c: &mut redis::Connection, pattern: &str) -> usize {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg(pattern).query(c).unwrap();
    keys.len()
}

/// A server with an AOF of its own becomes a replica: after the full sync its AOF must
/// describe the master's dataset (a restart must not bring back its old keys, nor mix them
/// with the master's stream); killed while that AOF is being rebuilt, it restarts with its
/// old dataset whole.
#[test]
fn replica_aof_restarts_with_the_new_dataset_after_a_full_sync() {
    let master = Server::start(FAST);
    let mut m = master.conn();
    fill(&mut m, "m");
    let dir = TempDir::new("aof-replica");
    let d = dir.path().to_str().unwrap();
    let own = ["--dir", d, "--appendonly", "yes", "--save", ""];
    let mut replica = Server::start(&own);
    let mut r = replica.conn();
    for i in 0..100 {
        let _: () = r.set(format!("own:{i}"), i).unwrap();
    }
    let before = aof_rewrites(&mut r);
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(master.port).query(&mut r).unwrap();
    assert_converged(&mut m, &mut r);
    assert!(
        wait_until(Duration::from_secs(20), || aof_rewrites(&mut r) > before
            && field(&mut r, "persistence", "aof_rewrite_in_progress") == "0"),
        "{}",
        replica.log_text()
    );
    live_writes(&mut m, "after", 20);
    assert_converged(&mut m, &mut r);
    let expected = digest(&mut m);
    replica.kill9();
    let restarted = Server::start(&own);
    let mut r = restarted.conn();
    assert_eq!(keys_like(&mut r, "own:*"), 0, "{}", restarted.log_text());
    assert_eq!(digest(&mut r), expected, "{}", restarted.log_text());
    drop(restarted);

    // Again from a server of its own, killed while the new dataset's AOF is written: a
    // slow snapshot (rdb-key-save-delay, µs per key) keeps the rewrite in progress.
    let dir = TempDir::new("aof-replica-killed");
    let d = dir.path().to_str().unwrap();
    let own = ["--dir", d, "--appendonly", "yes", "--save", ""];
    let mut replica = Server::start(&own);
    let mut r = replica.conn();
    for i in 0..100 {
        let _: () = r.set(format!("own:{i}"), i).unwrap();
    }
    let own_digest = digest(&mut r);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("rdb-key-save-delay").arg(200_000).query(&mut r).unwrap();
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(master.port).query(&mut r).unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || field(&mut r, "replication", "master_link_status") == "up"
            && field(&mut r, "persistence", "aof_rewrite_in_progress") == "1"),
        "{}",
        replica.log_text()
    );
    live_writes(&mut m, "during", 5);
    wait_synced(&mut m, &mut r);
    assert_eq!(field(&mut r, "persistence", "aof_rewrite_in_progress"), "1", "rewrite ended too soon");
    replica.kill9();
    let restarted = Server::start(&own);
    let mut r = restarted.conn();
    assert_eq!(digest(&mut r), own_digest, "{}", restarted.log_text());
}

const DISK: &[&str] = &["--repl-diskless-sync", "no", "--repl-diskless-sync-delay", "0"];

/// `repl-diskless-sync no`: the master saves to `dbfilename` (a BGSAVE) and sends it as
/// `$<len>`; with the default `repl-diskless-load disabled` the replica keeps what it
/// received as its own `dbfilename`, so even after `kill -9` it restarts with the
/// master's snapshot and continues partially.
#[test]
fn disk_based_sync_and_disk_copy_on_the_replica() {
    let master = Server::start(DISK);
    let mut m = master.conn();
    fill(&mut m, "pre");
    let saves: i64 = field(&mut m, "persistence", "rdb_saves").parse().unwrap();
    let dir = TempDir::new("disk-replica");
    let d = dir.path().to_str().unwrap();
    let mut args = replica_args(master.port);
    args.extend(["--dir", d, "--save", ""].iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut replica = Server::start(&refs);
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    assert!(master.log_text().contains("Starting BGSAVE for SYNC with target: disk"), "{}", master.log_text());
    assert!(master.dir.path().join("dump.rdb").is_file(), "the master saved to disk");
    let now: i64 = field(&mut m, "persistence", "rdb_saves").parse().unwrap();
    assert_eq!(now, saves + 1, "the sync's snapshot counts as a save");
    assert!(dir.path().join("dump.rdb").is_file(), "{}", replica.log_text());
    live_writes(&mut m, "live", 50);
    assert_converged(&mut m, &mut r);
    replica.kill9();
    live_writes(&mut m, "while-down", 20);
    let replica = Server::start(&refs);
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    assert_eq!(field(&mut m, "stats", "sync_partial_ok"), "1", "{}", replica.log_text());
    assert_eq!(field(&mut m, "stats", "sync_full"), "1");
}

/// `repl-diskless-load swapdb` keeps nothing on disk; `rdb-del-sync-files yes` on a master
/// without persistence removes the file it saved for the sync.
#[test]
fn socket_only_load_and_deleted_sync_files() {
    let master = Server::start(&[
        "--repl-diskless-sync",
        "no",
        "--repl-diskless-sync-delay",
        "0",
        "--save",
        "",
        "--rdb-del-sync-files",
        "yes",
    ]);
    let mut m = master.conn();
    fill(&mut m, "pre");
    let replica = start_replica(master.port, &["--repl-diskless-load", "swapdb", "--save", ""]);
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    assert!(!master.dir.path().join("dump.rdb").exists(), "{}", master.log_text());
    assert!(!replica.dir.path().join("dump.rdb").exists(), "{}", replica.log_text());
    let leftovers: Vec<_> = std::fs::read_dir(replica.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("temp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Disk-based syncs between ferrokv and redis-server, both ways.
#[test]
fn disk_based_sync_interoperates_with_redis() {
    let Some(redis_master) = Server::start_redis(DISK) else { return };
    let mut m = redis_master.conn();
    fill(&mut m, "from-redis");
    let replica = start_replica(redis_master.port, &["--repl-diskless-load", "disabled"]);
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    live_writes(&mut m, "live", 20);
    assert_converged(&mut m, &mut r);
    assert!(replica.dir.path().join("dump.rdb").is_file(), "{}", replica.log_text());

    let master = Server::start(DISK);
    let mut m = master.conn();
    fill(&mut m, "from-ferrokv");
    let port = master.port.to_string();
    let Some(replica) = Server::start_redis(&["--replicaof", "127.0.0.1", &port, "--repl-diskless-load", "disabled"])
    else {
        return;
    };
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    live_writes(&mut m, "live", 20);
    assert_converged(&mut m, &mut r);
    assert!(master.log_text().contains("target: disk"));
}

fn waitaof(c: &mut redis::Connection, local: i64, replicas: i64, timeout: i64) -> redis::RedisResult<(i64, i64)> {
    redis::cmd("WAITAOF").arg(local).arg(replicas).arg(timeout).query(c)
}

fn err_text(r: redis::RedisResult<(i64, i64)>) -> String {
    let e = r.expect_err("an error");
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
}

#[test]
fn waitaof_counts_local_and_replica_fsyncs() {
    let master = Server::start(&["--appendonly", "yes", "--appendfsync", "always", "--repl-diskless-sync-delay", "0"]);
    let mut m = master.conn();
    assert_eq!(err_text(waitaof(&mut m, 2, 0, 0)), "ERR value is out of range, value must between 0 and 1");
    assert_eq!(err_text(waitaof(&mut m, 1, -1, 0)), "ERR value is out of range, must be positive");
    assert_eq!(err_text(waitaof(&mut m, 1, 0, -1)), "ERR timeout is negative");
    // always: the write's reply already waited for its fsync.
    let _: i64 = m.incr("foo", 1).unwrap();
    assert_eq!(waitaof(&mut m, 1, 0, 0).unwrap(), (1, 0));
    // everysec: within about a second.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendfsync").arg("everysec").query(&mut m).unwrap();
    let _: i64 = m.incr("foo", 1).unwrap();
    let started = Instant::now();
    assert_eq!(waitaof(&mut m, 1, 0, 5000).unwrap(), (1, 0));
    assert!(started.elapsed() < Duration::from_millis(2500), "{:?}", started.elapsed());
    // no: nothing fsyncs, the timeout answers.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendfsync").arg("no").query(&mut m).unwrap();
    let _: i64 = m.incr("foo", 1).unwrap();
    assert_eq!(waitaof(&mut m, 1, 0, 100).unwrap(), (0, 0));
    // Inside MULTI it answers at once.
    let _: () = redis::cmd("MULTI").query(&mut m).unwrap();
    let _: () = redis::cmd("WAITAOF").arg(1).arg(0).arg(0).query(&mut m).unwrap();
    let (res,): ((i64, i64),) = redis::cmd("EXEC").query(&mut m).unwrap();
    assert_eq!(res, (0, 0));
    // A client waiting on the local AOF gets an error when the AOF is switched off.
    let url = master.url();
    let blocked = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let _: i64 = c.incr("foo", 1).unwrap();
        err_text(waitaof(&mut c, 1, 0, 0))
    });
    assert!(wait_until(Duration::from_secs(10), || field(&mut m, "clients", "blocked_clients") == "1"));
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("no").query(&mut m).unwrap();
    assert_eq!(blocked.join().unwrap(), "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.");
    assert_eq!(
        err_text(waitaof(&mut m, 1, 0, 0)),
        "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."
    );
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("yes").query(&mut m).unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendfsync").arg("always").query(&mut m).unwrap();

    // A replica with an AOF acknowledges its fsyncs (REPLCONF ACK … FACK).
    let replica = start_replica(master.port, &["--appendonly", "yes", "--appendfsync", "everysec"]);
    let mut r = replica.conn();
    wait_synced(&mut m, &mut r);
    let _: i64 = m.incr("foo", 1).unwrap();
    assert_eq!(waitaof(&mut m, 1, 1, 10_000).unwrap(), (1, 1), "{}", replica.log_text());
    assert_eq!(
        err_text(waitaof(&mut r, 0, 0, 0)),
        "ERR WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated."
    );
    // Without an AOF it does not count.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("no").query(&mut r).unwrap();
    let _: i64 = m.incr("foo", 1).unwrap();
    assert!(wait_until(Duration::from_secs(5), || waitaof(&mut m, 1, 1, 100).unwrap() == (1, 0)));
}

#[test]
fn waitaof_on_a_demoted_master_is_unblocked_with_an_error() {
    let other = Server::start(FAST);
    let master = Server::start(&["--appendonly", "yes"]);
    let url = master.url();
    let blocked = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let _: i64 = c.incr("foo", 1).unwrap();
        err_text(waitaof(&mut c, 0, 1, 0))
    });
    let mut m = master.conn();
    assert!(wait_until(Duration::from_secs(10), || field(&mut m, "clients", "blocked_clients") == "1"));
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(other.port).query(&mut m).unwrap();
    let e = blocked.join().unwrap();
    assert!(e.starts_with("UNBLOCKED force unblock from blocking operation"), "{e}");
}

/// One CLIENT LIST line as field → value.
fn client_fields(line: &str) -> std::collections::HashMap<String, String> {
    line.split(' ').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The lines of CLIENT LIST TYPE `kind`.
fn clients_of_type(c: &mut redis::Connection, kind: &str) -> Vec<std::collections::HashMap<String, String>> {
    let text: String = redis::cmd("CLIENT").arg("LIST").arg("TYPE").arg(kind).query(c).unwrap();
    text.lines().map(client_fields).collect()
}

/// The replica's link to its master is a client, as on Redis: CLIENT LIST shows it (flag
/// M, the master's address, the database the stream selected, user `(superuser)`), INFO
/// counts it (and the master does not count its replicas), and CLIENT KILL by address, by
/// id or by type closes it: the link comes back at once with a partial resync, as the same
/// client, still in the stream's database.
#[test]
fn the_master_link_is_a_client_that_can_be_listed_and_killed() {
    let master = Server::start(FAST);
    let replica = start_replica(master.port, &[]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    let _: () = redis::cmd("SELECT").arg(3).query(&mut m).unwrap();
    let _: () = m.set("k", 1).unwrap();
    wait_synced(&mut m, &mut r);
    let links = clients_of_type(&mut r, "master");
    assert_eq!(links.len(), 1, "{links:?}");
    let link = &links[0];
    assert_eq!(link["flags"], "M");
    assert_eq!(link["addr"], master.addr());
    assert_eq!(link["db"], "3");
    assert_eq!(link["user"], "(superuser)");
    assert_eq!(link["cmd"], "set");
    // The master sees that same connection as its replica (flag S).
    let replicas = clients_of_type(&mut m, "replica");
    assert_eq!(replicas.len(), 1);
    assert_eq!(replicas[0]["flags"], "S");
    assert_eq!(replicas[0]["addr"], link["laddr"]);
    assert_eq!(field(&mut r, "clients", "connected_clients"), "2");
    assert_eq!(field(&mut m, "clients", "connected_clients"), "1");

    let id = link["id"].clone();
    let kills: [&[&str]; 4] =
        [&["KILL", "ADDR", &link["addr"]], &["KILL", "ID", &id], &["KILL", &link["addr"]], &["KILL", "TYPE", "master"]];
    for (n, kill) in kills.iter().enumerate() {
        let reply: redis::Value = redis::cmd("CLIENT").arg(*kill).query(&mut r).unwrap();
        assert!(matches!(reply, redis::Value::Int(1) | redis::Value::Okay), "{kill:?}: {reply:?}");
        let back = wait_until(Duration::from_secs(10), || {
            field(&mut m, "stats", "sync_partial_ok") == (n + 1).to_string()
                && field(&mut r, "replication", "master_link_status") == "up"
        });
        assert!(back, "{kill:?}: no partial resync\n{}", replica.log_text());
        // No SELECT precedes this write in the continued stream.
        let _: () = m.set(format!("after-kill-{n}"), n).unwrap();
        wait_synced(&mut m, &mut r);
        let links = clients_of_type(&mut r, "master");
        assert_eq!(links.len(), 1, "{kill:?}: {links:?}");
        assert_eq!(links[0]["id"], id, "{kill:?}: a partial resync resumes the same client");
        assert_eq!(links[0]["db"], "3");
    }
    assert_eq!(field(&mut m, "stats", "sync_full"), "1");
    assert!(replica.log_text().contains("Caching the disconnected master state."));
    assert_converged(&mut m, &mut r);
}

/// Without a link there is no master client: nothing to kill (as on Redis).
#[test]
fn killing_the_master_client_of_an_unconnected_replica_kills_nothing() {
    let unused = free_port();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &unused.to_string()]);
    let mut raw = replica.raw();
    assert_eq!(raw.cmd(&[b"CLIENT", b"KILL", b"TYPE", b"master"]), b":0\r\n");
    assert_eq!(raw.cmd(&[b"CLIENT", b"LIST", b"TYPE", b"master"]), b"$0\r\n\r\n");
}

/// The master link's CLIENT LIST line next to redis-server's, both replicas of one
/// redis-server master: the fields that describe the link agree.
#[test]
fn the_master_link_is_listed_as_redis_lists_it() {
    let Some(master) = Server::start_redis(FAST) else { return };
    let port = master.port.to_string();
    let Some(redis_replica) = Server::start_redis(&["--replicaof", "127.0.0.1", &port]) else { return };
    let replica = start_replica(master.port, &[]);
    let (mut m, mut rr, mut r) = (master.conn(), redis_replica.conn(), replica.conn());
    // Both links up before the write, so each replica's master client runs it (a write
    // that lands before the full sync arrives in the snapshot instead).
    for c in [&mut rr, &mut r] {
        let up = wait_until(Duration::from_secs(20), || field(c, "replication", "master_link_status") == "up");
        assert!(up, "a replica's link did not come up");
    }
    let _: () = redis::cmd("SELECT").arg(4).query(&mut m).unwrap();
    let _: () = m.set("k", 1).unwrap();
    wait_synced(&mut m, &mut rr);
    wait_synced(&mut m, &mut r);
    let theirs = clients_of_type(&mut rr, "master");
    let ours = clients_of_type(&mut r, "master");
    assert_eq!((theirs.len(), ours.len()), (1, 1));
    for f in ["addr", "name", "flags", "db", "sub", "psub", "ssub", "multi", "cmd", "user", "redir", "resp"] {
        assert_eq!(ours[0].get(f), theirs[0].get(f), "field {f}: ours {:?}, redis {:?}", ours[0], theirs[0]);
    }
    assert_eq!(field(&mut r, "clients", "connected_clients"), field(&mut rr, "clients", "connected_clients"));
}

/// A key the master expires reaches the replica as a DEL, which must delete it there even
/// though the replica's own clock already hides it.
#[test]
fn keys_the_master_expires_are_deleted_on_the_replica() {
    let master = Server::start(FAST);
    let replica = start_replica(master.port, &[]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    for i in 0..10 {
        let _: () = redis::cmd("SET").arg(format!("short:{i}")).arg(i).arg("PX").arg(100).query(&mut m).unwrap();
    }
    wait_synced(&mut m, &mut r);
    let gone_on_master =
        wait_until(Duration::from_secs(10), || redis::cmd("DBSIZE").query::<i64>(&mut m).unwrap() == 0);
    assert!(gone_on_master);
    let gone = wait_until(Duration::from_secs(10), || redis::cmd("DBSIZE").query::<i64>(&mut r).unwrap() == 0);
    assert!(gone, "the replica kept keys its master expired");
    assert_converged(&mut m, &mut r);
}

/// A master propagates PUBLISH and SPUBLISH to its replicas (Redis does): a client subscribed on a
/// replica, ferrokv's or Redis's, receives what was published on the master; the AOF does
/// not carry it.
#[test]
fn messages_published_on_the_master_reach_subscribers_of_its_replicas() {
    let master = Server::start(&["--repl-diskless-sync-delay", "0", "--appendonly", "yes"]);
    let replica = start_replica(master.port, &[]);
    let redis_replica = Server::start_redis(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut m = master.conn();
    let mut subscribers = Vec::new();
    for s in std::iter::once(&replica).chain(redis_replica.iter()) {
        let mut c = s.conn();
        wait_synced(&mut m, &mut c);
        let mut raw = Raw::connect(&s.addr());
        raw.cmd(&[b"SUBSCRIBE", b"news"]);
        raw.cmd(&[b"SSUBSCRIBE", b"shard-news"]);
        subscribers.push(raw);
    }
    let _: i64 = redis::cmd("PUBLISH").arg("news").arg("hello").query(&mut m).unwrap();
    // SPUBLISH travels the same way outside cluster mode.
    let _: i64 = redis::cmd("SPUBLISH").arg("shard-news").arg("sharded").query(&mut m).unwrap();
    for raw in subscribers.iter_mut() {
        let msg = raw.read_reply().expect("message");
        assert_eq!(msg, b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
        let msg = raw.read_reply().expect("shard message");
        assert_eq!(msg, b"*3\r\n$8\r\nsmessage\r\n$10\r\nshard-news\r\n$7\r\nsharded\r\n");
    }
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut m).unwrap();
    let dir = master.dir.path().join("appendonlydir");
    let aof: Vec<u8> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".incr.aof"))
        .flat_map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    let text = String::from_utf8_lossy(&aof);
    assert!(text.contains("SET") && !text.contains("PUBLISH") && !text.contains("GETACK"), "{text}");
}
