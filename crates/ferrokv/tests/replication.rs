//! Replication with real processes on loopback: the classic walk-through, interop with
//! Debian's redis-server in both directions (full sync, live stream, partial resync after
//! the link is cut), failover by hand with PSYNC2, backlog overflow, slow replicas, dead
//! masters, WAIT, min-replicas-to-write, chains. Every scenario ends by proving the
//! keyspaces converged, not assuming it.

mod common;
use common::*;
use redis::Commands;
use std::time::{Duration, Instant};

fn info(c: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(c).expect("INFO")
}

fn field(c: &mut redis::Connection, section: &str, name: &str) -> String {
    info(c, section)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn digest(c: &mut redis::Connection) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(c).expect("DEBUG DIGEST")
}

/// Waits until the replica's link is up and it has applied everything the master wrote.
fn wait_synced(m: &mut redis::Connection, r: &mut redis::Connection) {
    let ok = wait_until(Duration::from_secs(30), || {
        let up = field(r, "replication", "master_link_status") == "up";
        let mo = field(m, "replication", "master_repl_offset");
        let ro = field(r, "replication", "slave_repl_offset");
        up && !mo.is_empty() && mo == ro
    });
    assert!(ok, "replica did not catch up:\nmaster: {}\nreplica: {}", info(m, "replication"), info(r, "replication"));
}

/// Proves master and replica hold the same data: dataset digests, and on a mismatch the
/// first keys that differ (type, value digest, TTL within a second).
fn assert_converged(m: &mut redis::Connection, r: &mut redis::Connection) {
    wait_synced(m, r);
    let (dm, dr) = (digest(m), digest(r));
    if dm == dr {
        return;
    }
    let mut diffs = Vec::new();
    for db in 0..16 {
        let _: () = redis::cmd("SELECT").arg(db).query(m).unwrap();
        let _: () = redis::cmd("SELECT").arg(db).query(r).unwrap();
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(m).unwrap();
        for k in keys {
            let a: Vec<String> = redis::cmd("DEBUG").arg("DIGEST-VALUE").arg(&k).query(m).unwrap();
            let b: Vec<String> = redis::cmd("DEBUG").arg("DIGEST-VALUE").arg(&k).query(r).unwrap();
            let (ta, tb): (i64, i64) = (m.pttl(&k).unwrap(), r.pttl(&k).unwrap());
            if a != b || (ta - tb).abs() > 1000 {
                diffs.push(format!("db{db} {:?}: {a:?}/{ta} vs {b:?}/{tb}", String::from_utf8_lossy(&k)));
            }
        }
        let n_m: i64 = redis::cmd("DBSIZE").query(m).unwrap();
        let n_r: i64 = redis::cmd("DBSIZE").query(r).unwrap();
        if n_m != n_r {
            diffs.push(format!("db{db}: {n_m} keys vs {n_r}"));
        }
    }
    let _: () = redis::cmd("SELECT").arg(0).query(m).unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(r).unwrap();
    panic!("master and replica differ ({dm} vs {dr}): {:?}", &diffs[..diffs.len().min(10)]);
}

/// A mix of every type and encoding, expiries and several databases.
fn fill(c: &mut redis::Connection, tag: &str) {
    let _: () = c.set(format!("{tag}:str"), "hello").unwrap();
    let _: () = c.set(format!("{tag}:int"), 42).unwrap();
    let _: () = c.set(format!("{tag}:big"), "x".repeat(100_000)).unwrap();
    let _: () = c.set_ex(format!("{tag}:ttl"), "v", 3000).unwrap();
    let list: Vec<String> = (0..2000).map(|i| format!("e{i}")).collect();
    let _: () = c.rpush(format!("{tag}:list"), &list).unwrap();
    let fields: Vec<(String, String)> = (0..600).map(|i| (format!("f{i}"), format!("v{i}"))).collect();
    let _: () = c.hset_multiple(format!("{tag}:hash"), &fields).unwrap();
    let _: () = c.hset(format!("{tag}:smallhash"), "a", "b").unwrap();
    let _: () = c.sadd(format!("{tag}:intset"), &[1, 2, 3]).unwrap();
    let members: Vec<String> = (0..700).map(|i| format!("m{i}")).collect();
    let _: () = c.sadd(format!("{tag}:set"), &members).unwrap();
    let scored: Vec<(f64, String)> = (0..300).map(|i| (i as f64 * 1.5, format!("z{i}"))).collect();
    let _: () = c.zadd_multiple(format!("{tag}:zset"), &scored).unwrap();
    let _: () = c.zadd(format!("{tag}:smallzset"), "a", 1).unwrap();
    let _: () = redis::cmd("SELECT").arg(3).query(c).unwrap();
    let _: () = c.set(format!("{tag}:db3"), "three").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
}

/// Writes of every kind, through the stream.
fn live_writes(c: &mut redis::Connection, tag: &str, n: usize) {
    for i in 0..n {
        let _: () = c.incr(format!("{tag}:counter"), 1).unwrap();
        let _: () = c.lpush(format!("{tag}:list"), i).unwrap();
        let _: () = c.hincr(format!("{tag}:hash"), "f1", 1).unwrap();
        let _: () = c.zincr(format!("{tag}:zset"), "z1", 1).unwrap();
        let _: () = c.set(format!("{tag}:live:{i}"), i).unwrap();
        if i % 10 == 0 {
            let _: () = c.pexpire(format!("{tag}:live:{i}"), 60_000).unwrap();
            let _: () = redis::cmd("SPOP").arg(format!("{tag}:set")).query(c).unwrap();
            let _: () = redis::cmd("SELECT").arg(3).query(c).unwrap();
            let _: () = c.incr("db3counter", 1).unwrap();
            let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
        }
    }
    let _: () = redis::cmd("MULTI").query(c).unwrap();
    let _: () = redis::cmd("INCR").arg(format!("{tag}:tx")).query(c).unwrap();
    let _: () = redis::cmd("SET").arg(format!("{tag}:tx2")).arg("y").query(c).unwrap();
    let _: () = redis::cmd("EXEC").query(c).unwrap();
}

fn replica_args(master_port: u16) -> Vec<String> {
    vec!["--replicaof".into(), "127.0.0.1".into(), master_port.to_string()]
}

fn start_replica(master_port: u16, extra: &[&str]) -> Server {
    let mut args = replica_args(master_port);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&refs)
}

const FAST: &[&str] = &["--repl-diskless-sync-delay", "0"];

#[test]
fn classic_walkthrough_from_config_files() {
    let master = Server::start(FAST);
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

/// With Redis's default repl-diskless-sync-delay the master keeps the replica waiting, and
/// sends newlines meanwhile, before +FULLRESYNC: the replica must skip them.
#[test]
fn replica_waits_through_the_masters_sync_delay() {
    let master = Server::start(&["--repl-diskless-sync-delay", "3"]);
    let mut m = master.conn();
    let _: () = m.set("k", "v").unwrap();
    let replica = start_replica(master.port, &[]);
    let mut r = replica.conn();
    wait_synced(&mut m, &mut r);
    let v: Option<String> = r.get("k").unwrap();
    assert_eq!(v.as_deref(), Some("v"), "{}", replica.log_text());
    assert_eq!(field(&mut m, "stats", "sync_full"), "1", "{}", replica.log_text());
}

#[test]
fn ferrokv_replica_of_redis_master() {
    let Some(master) = Server::start_redis(FAST) else { return };
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
