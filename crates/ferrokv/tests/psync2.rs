//! PSYNC2: every way Redis 7.0 lets a replica continue a history with `+CONTINUE` after a
//! restart or a change of topology, each asserting that the replica continued (the
//! master's `sync_partial_ok` moved, its `sync_full` did not) and that the datasets are
//! equal afterwards; and the sequences where Redis itself must fall back to a full sync,
//! which must converge the same way. Where practical the same scenario runs with
//! redis-server on either side.

mod common;
mod repl_support;
use common::*;
use redis::Commands;
use repl_support::*;
use std::time::Duration;

/// Which program a node of a scenario runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Imp {
    Ferrokv,
    Redis,
}

/// Starts a node, or None when redis-server is wanted but not installed (the test skips).
/// A `--port` among `args` wins over the harness's own, so the handle is told about it.
fn start(imp: Imp, args: &[&str]) -> Option<Server> {
    let mut s = match imp {
        Imp::Ferrokv => Server::start(args),
        Imp::Redis => Server::start_redis(args)?,
    };
    if let Some(port) = args.iter().position(|a| *a == "--port").and_then(|i| args.get(i + 1)) {
        s.port = port.parse().expect("port");
    }
    Some(s)
}

/// Arguments that pin a node to a port and a directory, so it restarts as itself.
fn pinned(port: u16, dir: &TempDir, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec!["--port".into(), port.to_string(), "--dir".into(), path(dir)];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn path(dir: &TempDir) -> String {
    dir.path().to_str().expect("utf8 path").to_string()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn stat(c: &mut redis::Connection, name: &str) -> i64 {
    field(c, "stats", name).parse().unwrap_or(-1)
}

/// SHUTDOWN (with its arguments) and wait for the process to go.
fn shutdown(s: &mut Server, c: &mut redis::Connection, args: &[&str]) {
    let _ = redis::cmd("SHUTDOWN").arg(args).query::<()>(c);
    assert!(s.wait_exit(Duration::from_secs(20)).is_some(), "did not exit: {}", s.log_text());
}

/// Waits until the last change was saved by a save point (and that save is finished).
fn wait_saved(c: &mut redis::Connection) {
    let ok = wait_until(Duration::from_secs(20), || {
        field(c, "persistence", "rdb_changes_since_last_save") == "0"
            && field(c, "persistence", "rdb_bgsave_in_progress") == "0"
    });
    assert!(ok, "no save: {}", info(c, "persistence"));
}

/// The master continued the replica's history: one more partial resync, no full sync.
fn assert_continued(m: &mut redis::Connection, partial_before: i64, full_before: i64, log: &dyn Fn() -> String) {
    let ok = wait_until(Duration::from_secs(20), || stat(m, "sync_partial_ok") > partial_before);
    assert!(ok, "no partial resync\nmaster: {}\nreplica log:\n{}", info(m, "stats"), log());
    assert_eq!(stat(m, "sync_full"), full_before, "a full sync happened\nreplica log:\n{}", log());
}

/// A master restarted from the RDB that SHUTDOWN SAVE wrote continues its replicas:
/// the RDB carries the replication ID and offset, the replicas (which SHUTDOWN waited
/// for) ask to continue from exactly there.
fn master_restart_after_shutdown_save(master_imp: Imp, replica_imp: Imp) {
    let dir = TempDir::new("psync-mrestart");
    let port = free_port();
    let margs = pinned(port, &dir, FAST);
    let Some(mut master) = start(master_imp, &refs(&margs)) else { return };
    let Some(replica) = start(replica_imp, &refs(&replica_args(port))) else { return };
    let (mut m, mut r) = (master.conn(), replica.conn());
    fill(&mut m, "pre");
    live_writes(&mut m, "live", 100);
    assert_converged(&mut m, &mut r);
    // Writes right before the shutdown reach the replica before the master exits.
    for i in 0..200 {
        let _: () = m.set(format!("last:{i}"), i).unwrap();
    }
    shutdown(&mut master, &mut m, &["SAVE"]);
    let master = start(master_imp, &refs(&margs)).expect("restart");
    let mut m = wait_loaded(&master);
    assert_continued(&mut m, 0, 0, &|| replica.log_text());
    live_writes(&mut m, "after", 50);
    assert_converged(&mut m, &mut r);
}

#[test]
fn ferrokv_master_restarted_after_shutdown_save_continues_its_replica() {
    master_restart_after_shutdown_save(Imp::Ferrokv, Imp::Ferrokv);
}

#[test]
fn ferrokv_master_restarted_after_shutdown_save_continues_a_redis_replica() {
    master_restart_after_shutdown_save(Imp::Ferrokv, Imp::Redis);
}

#[test]
fn redis_master_restarted_after_shutdown_save_continues_a_ferrokv_replica() {
    master_restart_after_shutdown_save(Imp::Redis, Imp::Ferrokv);
}

/// The same from a save point's RDB: the master is killed (-9) after the save, with no
/// write after it, and restarts from that file.
#[test]
fn master_restarted_from_a_save_point_continues_its_replica() {
    let dir = TempDir::new("psync-savepoint");
    let port = free_port();
    let margs = pinned(port, &dir, &["--repl-diskless-sync-delay", "0", "--save", "1 1"]);
    let mut master = start(Imp::Ferrokv, &refs(&margs)).expect("ferrokv");
    let replica = start_replica(port, &[]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    fill(&mut m, "pre");
    live_writes(&mut m, "live", 100);
    wait_saved(&mut m);
    assert_converged(&mut m, &mut r);
    master.kill9();
    let master = start(Imp::Ferrokv, &refs(&margs)).expect("ferrokv");
    let mut m = wait_loaded(&master);
    assert_continued(&mut m, 0, 0, &|| replica.log_text());
    live_writes(&mut m, "after", 50);
    assert_converged(&mut m, &mut r);
}

/// Keys that expired while the master was down are dropped when it loads, and the replicas
/// that continue get their DELs (Redis feeds them to the new backlog while loading).
#[test]
fn keys_expired_while_the_master_was_down_are_deleted_on_the_continuing_replica() {
    let dir = TempDir::new("psync-expired");
    let port = free_port();
    let margs = pinned(port, &dir, FAST);
    let mut master = start(Imp::Ferrokv, &refs(&margs)).expect("ferrokv");
    let replica = start_replica(port, &[]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    fill(&mut m, "pre");
    let _: () = redis::cmd("SELECT").arg(2).query(&mut m).unwrap();
    for i in 0..20 {
        let _: () = redis::cmd("SET").arg(format!("short:{i}")).arg(i).arg("PX").arg(300).query(&mut m).unwrap();
    }
    let _: () = redis::cmd("SELECT").arg(0).query(&mut m).unwrap();
    wait_synced(&mut m, &mut r);
    shutdown(&mut master, &mut m, &["SAVE"]);
    // Down for longer than the keys live.
    std::thread::sleep(Duration::from_millis(400));
    let master = start(Imp::Ferrokv, &refs(&margs)).expect("ferrokv");
    let mut m = wait_loaded(&master);
    assert_continued(&mut m, 0, 0, &|| replica.log_text());
    let _: () = redis::cmd("SELECT").arg(2).query(&mut r).unwrap();
    let gone = wait_until(Duration::from_secs(10), || redis::cmd("DBSIZE").query::<i64>(&mut r).unwrap() == 0);
    let _: () = redis::cmd("SELECT").arg(0).query(&mut r).unwrap();
    assert!(gone, "the replica kept keys the master expired at load\n{}\n{}", master.log_text(), replica.log_text());
    assert_converged(&mut m, &mut r);
}

/// A replica restarted from its own RDB continues, and the stream goes on in the database
/// it had selected (the master sends no new SELECT): the RDB's repl-stream-db.
fn replica_restart_from_its_rdb(master_imp: Imp, replica_imp: Imp) {
    let Some(master) = start(master_imp, FAST) else { return };
    let mut m = master.conn();
    fill(&mut m, "pre");
    let dir = TempDir::new("psync-rrestart");
    let rport = free_port();
    let mut rargs = pinned(rport, &dir, &[]);
    rargs.extend(replica_args(master.port));
    let Some(mut replica) = start(replica_imp, &refs(&rargs)) else { return };
    let mut r = replica.conn();
    let _: () = redis::cmd("SELECT").arg(5).query(&mut m).unwrap();
    let _: () = m.set("in-five", 1).unwrap();
    assert_converged(&mut m, &mut r);
    shutdown(&mut replica, &mut r, &["SAVE"]);
    // Still database 5 on the master's stream: no SELECT precedes these.
    for i in 0..50 {
        let _: () = m.set(format!("while-down:{i}"), i).unwrap();
    }
    let _: () = redis::cmd("SELECT").arg(0).query(&mut m).unwrap();
    let replica = start(replica_imp, &refs(&rargs)).expect("restart");
    let mut r = wait_loaded(&replica);
    assert_continued(&mut m, 0, 1, &|| replica.log_text());
    assert_converged(&mut m, &mut r);
    let _: () = redis::cmd("SELECT").arg(5).query(&mut r).unwrap();
    let n: i64 = redis::cmd("DBSIZE").query(&mut r).unwrap();
    assert_eq!(n, 51, "the continued stream went to another database");
}

#[test]
fn ferrokv_replica_restarted_from_its_rdb_continues_in_the_streams_database() {
    replica_restart_from_its_rdb(Imp::Ferrokv, Imp::Ferrokv);
}

#[test]
fn ferrokv_replica_of_redis_restarted_from_its_rdb_continues() {
    replica_restart_from_its_rdb(Imp::Redis, Imp::Ferrokv);
}

#[test]
fn redis_replica_of_ferrokv_restarted_from_its_rdb_continues() {
    replica_restart_from_its_rdb(Imp::Ferrokv, Imp::Redis);
}

/// A replica killed after a save point restarts from an RDB older than what it had
/// applied: it continues from the RDB's offset, which the master's backlog still holds.
#[test]
fn replica_killed_after_a_save_point_continues_from_the_older_offset() {
    let master = Server::start(FAST);
    let mut m = master.conn();
    let dir = TempDir::new("psync-rsave");
    let rport = free_port();
    let mut rargs = pinned(rport, &dir, &["--save", "1 1"]);
    rargs.extend(replica_args(master.port));
    let mut replica = start(Imp::Ferrokv, &refs(&rargs)).expect("ferrokv");
    let mut r = replica.conn();
    fill(&mut m, "pre");
    live_writes(&mut m, "live", 50);
    assert_converged(&mut m, &mut r);
    wait_saved(&mut r);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("save").arg("").query(&mut r).unwrap();
    live_writes(&mut m, "after-save", 50);
    wait_synced(&mut m, &mut r);
    replica.kill9();
    let replica = start(Imp::Ferrokv, &refs(&rargs)).expect("ferrokv");
    let mut r = wait_loaded(&replica);
    assert_continued(&mut m, 0, 1, &|| replica.log_text());
    assert_converged(&mut m, &mut r);
}

/// A promoted replica keeps the old history as replid2: its former master, demoted
/// without a restart, and its sibling continue with it.
#[test]
fn former_master_and_sibling_continue_with_a_promoted_replica() {
    let master = Server::start(FAST);
    let r1 = start_replica(master.port, FAST);
    let r2 = start_replica(master.port, &[]);
    let (mut m, mut c1, mut c2) = (master.conn(), r1.conn(), r2.conn());
    fill(&mut m, "pre");
    live_writes(&mut m, "live", 50);
    assert_converged(&mut m, &mut c1);
    assert_converged(&mut m, &mut c2);
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut c1).unwrap();
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(r1.port).query(&mut m).unwrap();
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(r1.port).query(&mut c2).unwrap();
    let ok = wait_until(Duration::from_secs(20), || stat(&mut c1, "sync_partial_ok") == 2);
    assert!(ok, "{}\n{}\n{}", info(&mut c1, "stats"), master.log_text(), r2.log_text());
    assert_eq!(stat(&mut c1, "sync_full"), 0);
    live_writes(&mut c1, "promoted", 50);
    assert_converged(&mut c1, &mut m);
    assert_converged(&mut c1, &mut c2);
}

/// A chain A → B → C shares one offset space: B's link cut and resumed leaves C alone, C
/// moved up to A continues, and when B is promoted C continues with B.
#[test]
fn chained_replicas_continue_through_topology_changes() {
    let a = Server::start(FAST);
    let b = start_replica(a.port, FAST);
    let c = start_replica(b.port, &[]);
    let (mut ca, mut cb, mut cc) = (a.conn(), b.conn(), c.conn());
    fill(&mut ca, "pre");
    assert_converged(&mut ca, &mut cb);
    assert_converged(&mut cb, &mut cc);
    // B's link cut: B continues, C is not resynced.
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("master").query(&mut cb).unwrap();
    assert_eq!(killed, 1);
    live_writes(&mut ca, "cut", 30);
    assert_continued(&mut ca, 0, 1, &|| b.log_text());
    assert_converged(&mut ca, &mut cb);
    assert_converged(&mut cb, &mut cc);
    assert_eq!(stat(&mut cb, "sync_full"), 1, "C was resynced fully: {}", c.log_text());
    // C moves up to A.
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(a.port).query(&mut cc).unwrap();
    assert_continued(&mut ca, 1, 1, &|| c.log_text());
    live_writes(&mut ca, "moved", 30);
    assert_converged(&mut ca, &mut cc);
    // B is promoted; C follows it and continues under B's new ID.
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut cb).unwrap();
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(b.port).query(&mut cc).unwrap();
    assert_continued(&mut cb, 0, 1, &|| c.log_text());
    live_writes(&mut cb, "promoted", 30);
    assert_converged(&mut cb, &mut cc);
}

/// SHUTDOWN waits (up to shutdown-timeout, writes paused) for a replica that lags behind
/// by more than the sockets hold, so the restarted master can still continue it.
fn shutdown_waits_for_a_lagging_replica(master_imp: Imp) {
    let dir = TempDir::new("psync-lagging");
    let port = free_port();
    let margs = pinned(port, &dir, FAST);
    let Some(mut master) = start(master_imp, &refs(&margs)) else { return };
    let replica = start_replica(port, &[]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    fill(&mut m, "pre");
    assert_converged(&mut m, &mut r);
    replica.signal("STOP");
    let payload = "w".repeat(10_000);
    for batch in 0..20 {
        let mut p = redis::pipe();
        for i in 0..100 {
            p.cmd("SET").arg(format!("lag:{batch}:{i}")).arg(&payload).ignore();
        }
        let _: () = p.query(&mut m).unwrap();
    }
    let url = master.url();
    let shutdown = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        redis::cmd("SHUTDOWN").arg("SAVE").query::<()>(&mut c).is_err()
    });
    let waiting = wait_until(Duration::from_secs(10), || {
        master.log_text().contains("Waiting for replicas before shutting down.")
    });
    replica.signal("CONT");
    assert!(waiting, "{master_imp:?}: SHUTDOWN did not wait: {}", master.log_text());
    assert!(shutdown.join().unwrap(), "SHUTDOWN replied");
    assert!(master.wait_exit(Duration::from_secs(20)).is_some(), "{}", master.log_text());
    assert!(master.log_text().contains("1 of 1 replicas are in sync when shutting down."), "{}", master.log_text());
    let master = start(master_imp, &refs(&margs)).expect("restart");
    let mut m = wait_loaded(&master);
    assert_continued(&mut m, 0, 0, &|| replica.log_text());
    assert_converged(&mut m, &mut r);
}

#[test]
fn ferrokv_shutdown_waits_for_a_lagging_replica() {
    shutdown_waits_for_a_lagging_replica(Imp::Ferrokv);
}

#[test]
fn redis_shutdown_waits_for_a_lagging_replica() {
    shutdown_waits_for_a_lagging_replica(Imp::Redis);
}

/// SHUTDOWN ABORT ends the wait: the waiting SHUTDOWN gets an error, writes resume, the
/// server goes on (as redis-server does).
fn shutdown_abort_cancels_the_wait(master_imp: Imp) {
    let Some(master) = start(master_imp, FAST) else { return };
    let replica = start_replica(master.port, &[]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    let _: () = m.set("k", 1).unwrap();
    wait_synced(&mut m, &mut r);
    replica.signal("STOP");
    let _: () = m.set("k", 2).unwrap();
    let mut waiting_client = master.raw();
    waiting_client.send(b"SHUTDOWN\r\n");
    let waiting = wait_until(Duration::from_secs(10), || {
        master.log_text().contains("Waiting for replicas before shutting down.")
    });
    assert!(waiting, "{master_imp:?}: {}", master.log_text());
    let mut raw = master.raw();
    assert_eq!(raw.cmd(&[b"SHUTDOWN", b"ABORT", b"NOW"]), b"-ERR syntax error\r\n");
    assert_eq!(raw.cmd(&[b"SHUTDOWN", b"ABORT"]), b"+OK\r\n");
    assert_eq!(waiting_client.read_reply().unwrap(), b"-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    assert_eq!(raw.cmd(&[b"SET", b"k", b"3"]), b"+OK\r\n");
    assert_eq!(raw.cmd(&[b"SHUTDOWN", b"ABORT"]), b"-ERR No shutdown in progress.\r\n");
    assert!(master.log_text().contains("Shutdown manually aborted."));
    replica.signal("CONT");
    assert_converged(&mut m, &mut r);
}

#[test]
fn ferrokv_shutdown_abort_cancels_the_wait() {
    shutdown_abort_cancels_the_wait(Imp::Ferrokv);
}

#[test]
fn redis_shutdown_abort_cancels_the_wait() {
    shutdown_abort_cancels_the_wait(Imp::Redis);
}

/// Where Redis cannot continue, neither may we: a master restarted from an RDB older than
/// its replica's offset (killed after writes that followed its last save), and one whose
/// RDB is newer than the replica's offset (the replica fell behind and the restarted
/// master's backlog is empty). Both end in a full sync, with Redis as with ferrokv.
fn restart_with_offsets_apart(imp: Imp) {
    // The master's RDB is behind the replica.
    let dir = TempDir::new("psync-behind");
    let port = free_port();
    let margs = pinned(port, &dir, &["--repl-diskless-sync-delay", "0", "--save", "1 1"]);
    let Some(mut master) = start(imp, &refs(&margs)) else { return };
    let replica = start_replica(port, &[]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    fill(&mut m, "pre");
    wait_saved(&mut m);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("save").arg("").query(&mut m).unwrap();
    live_writes(&mut m, "unsaved", 20);
    assert_converged(&mut m, &mut r);
    // Frozen while the master restarts without those writes and then writes more than
    // them: the replica's offset lies inside the new backlog, but its bytes are not the
    // master's, so continuing would be wrong.
    replica.signal("STOP");
    master.kill9();
    let master = start(imp, &refs(&margs)).expect("restart");
    let mut m = wait_loaded(&master);
    live_writes(&mut m, "reborn", 60);
    replica.signal("CONT");
    let ok = wait_until(Duration::from_secs(20), || stat(&mut m, "sync_full") == 1);
    assert!(ok, "{imp:?}: no full sync: {}", replica.log_text());
    assert_eq!(stat(&mut m, "sync_partial_ok"), 0);
    assert_converged(&mut m, &mut r);
    drop((master, replica));

    // The master's RDB is ahead of the replica.
    let dir = TempDir::new("psync-ahead");
    let margs = pinned(port, &dir, FAST);
    let Some(mut master) = start(imp, &refs(&margs)) else { return };
    let replica = start_replica(port, &[]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    fill(&mut m, "pre");
    assert_converged(&mut m, &mut r);
    // The replica is frozen and its link cut: what follows never reaches it.
    replica.signal("STOP");
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("replica").query(&mut m).unwrap();
    assert_eq!(killed, 1);
    live_writes(&mut m, "missed", 20);
    shutdown(&mut master, &mut m, &["SAVE", "NOW"]);
    let master = start(imp, &refs(&margs)).expect("restart");
    let mut m = wait_loaded(&master);
    replica.signal("CONT");
    let ok = wait_until(Duration::from_secs(30), || stat(&mut m, "sync_full") == 1);
    assert!(ok, "{imp:?}: no full sync: {}", replica.log_text());
    assert_eq!(stat(&mut m, "sync_partial_ok"), 0);
    assert_converged(&mut m, &mut r);
}

#[test]
fn restarted_ferrokv_master_with_offsets_apart_resyncs_fully_as_redis_does() {
    restart_with_offsets_apart(Imp::Ferrokv);
}

#[test]
fn restarted_redis_master_with_offsets_apart_resyncs_fully() {
    restart_with_offsets_apart(Imp::Redis);
}

/// A master that freed its backlog (repl-backlog-ttl) and wrote on without one starts a
/// new history when a replica makes it create a backlog again: a replica returning with
/// the old history is resynced fully (the writes made meanwhile were never counted).
fn replica_returning_after_the_backlog_was_freed(imp: Imp) {
    let Some(master) = start(imp, &["--repl-diskless-sync-delay", "0", "--repl-backlog-ttl", "1"]) else { return };
    let mut m = master.conn();
    fill(&mut m, "pre");
    let dir = TempDir::new("psync-ttl");
    let mut rargs = pinned(free_port(), &dir, &[]);
    rargs.extend(replica_args(master.port));
    let mut replica = start(Imp::Ferrokv, &refs(&rargs)).expect("ferrokv");
    let mut r = replica.conn();
    assert_converged(&mut m, &mut r);
    shutdown(&mut replica, &mut r, &["SAVE"]);
    let freed = wait_until(Duration::from_secs(20), || field(&mut m, "replication", "repl_backlog_active") == "0");
    assert!(freed, "{imp:?}: the backlog was not freed");
    live_writes(&mut m, "no-backlog", 20);
    let other = start_replica(master.port, &[]);
    let mut o = other.conn();
    assert_converged(&mut m, &mut o);
    let replica = start(Imp::Ferrokv, &refs(&rargs)).expect("ferrokv");
    let mut r = wait_loaded(&replica);
    assert_converged(&mut m, &mut r);
    assert_eq!(stat(&mut m, "sync_partial_ok"), 0, "{imp:?}: {}", replica.log_text());
}

#[test]
fn ferrokv_master_that_freed_its_backlog_starts_a_new_history() {
    replica_returning_after_the_backlog_was_freed(Imp::Ferrokv);
}

#[test]
fn redis_master_that_freed_its_backlog_starts_a_new_history() {
    replica_returning_after_the_backlog_was_freed(Imp::Redis);
}

/// Redis 7.0 does not restore replication info from an AOF: a master restarted from its
/// AOF gives its replicas a full sync (with ferrokv as with redis-server).
fn master_restart_from_aof(imp: Imp) {
    let dir = TempDir::new("psync-aof");
    let port = free_port();
    let margs = pinned(port, &dir, &["--repl-diskless-sync-delay", "0", "--appendonly", "yes"]);
    let Some(mut master) = start(imp, &refs(&margs)) else { return };
    let replica = start_replica(port, &[]);
    let (mut m, mut r) = (master.conn(), replica.conn());
    fill(&mut m, "pre");
    assert_converged(&mut m, &mut r);
    shutdown(&mut master, &mut m, &[]);
    let master = start(imp, &refs(&margs)).expect("restart");
    let mut m = wait_loaded(&master);
    let ok = wait_until(Duration::from_secs(20), || stat(&mut m, "sync_full") == 1);
    assert!(ok, "{imp:?}: no full sync: {}", replica.log_text());
    assert_converged(&mut m, &mut r);
    let _: i64 = m.incr("after", 1).unwrap();
    assert_converged(&mut m, &mut r);
}

#[test]
fn ferrokv_master_restarted_from_its_aof_resyncs_fully_as_redis_does() {
    master_restart_from_aof(Imp::Ferrokv);
}

#[test]
fn redis_master_restarted_from_its_aof_resyncs_fully() {
    master_restart_from_aof(Imp::Redis);
}

/// A scripted master on a raw socket: answers a replica's handshake and sends what the
/// test says, so a link can be cut at a precise byte.
struct FakeMaster {
    stream: std::net::TcpStream,
    buf: Vec<u8>,
}

impl FakeMaster {
    fn accept(listener: &std::net::TcpListener) -> FakeMaster {
        let (stream, _) = listener.accept().expect("the replica connects");
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        FakeMaster { stream, buf: Vec::new() }
    }

    /// The replica's next command, as strings.
    fn command(&mut self) -> Vec<String> {
        use std::io::Read;
        loop {
            if let Ok(Some((frame, n))) = ferrokv_resp::Frame::decode(&self.buf) {
                self.buf.drain(..n);
                let ferrokv_resp::Frame::Array(items) = frame else { panic!("not a command: {frame:?}") };
                return items
                    .iter()
                    .map(|f| match f {
                        ferrokv_resp::Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                        other => panic!("not a bulk: {other:?}"),
                    })
                    .collect();
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).expect("read from the replica");
            assert!(n > 0, "the replica closed the link");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).unwrap();
    }

    /// Answers the handshake up to PSYNC, whose arguments it returns.
    fn handshake(&mut self) -> (String, String) {
        loop {
            let cmd = self.command();
            match cmd[0].to_ascii_uppercase().as_str() {
                "PING" => self.send(b"+PONG\r\n"),
                "REPLCONF" => self.send(b"+OK\r\n"),
                "PSYNC" => return (cmd[1].clone(), cmd[2].clone()),
                other => panic!("unexpected {other}"),
            }
        }
    }
}

fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    ferrokv_resp::encode_command(&mut out, args.iter().map(|a| a.as_bytes()));
    out
}

/// A link cut inside a MULTI: the transaction's first half is not applied, not counted
/// and not acknowledged, so the replica asks to continue from before the MULTI and the
/// master's resent transaction applies whole (Redis's replica does the same: its applied
/// offset only moves outside a transaction).
#[test]
fn a_link_cut_inside_a_transaction_resumes_before_its_multi() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let replica = start_replica(port, &[]);
    let mut master = FakeMaster::accept(&listener);
    let (replid, offset) = master.handshake();
    assert_eq!((replid.as_str(), offset.as_str()), ("?", "-1"));
    let id = "f".repeat(40);
    master.send(format!("+FULLRESYNC {id} 0\r\n").as_bytes());
    // An empty RDB (version 10, no checksum).
    let rdb = b"REDIS0010\xff\x00\x00\x00\x00\x00\x00\x00\x00";
    master.send(format!("${}\r\n", rdb.len()).as_bytes());
    master.send(rdb);
    let mut before = encode(&["SELECT", "0"]);
    before.extend(encode(&["SET", "a", "1"]));
    let mut tx_head = encode(&["MULTI"]);
    tx_head.extend(encode(&["SET", "b", "2"]));
    master.send(&before);
    let mut r = replica.conn();
    assert!(wait_until(Duration::from_secs(10), || r.get::<_, Option<String>>("a").unwrap().is_some()));
    master.send(&tx_head);
    drop(master);

    let mut master = FakeMaster::accept(&listener);
    let (replid, offset) = master.handshake();
    assert_eq!(replid, id);
    assert_eq!(offset, (before.len() + 1).to_string(), "the replica counted part of a transaction");
    master.send(format!("+CONTINUE {id}\r\n").as_bytes());
    let mut tx = tx_head.clone();
    tx.extend(encode(&["EXEC"]));
    master.send(&tx);
    assert!(wait_until(Duration::from_secs(10), || r.get::<_, Option<String>>("b").unwrap().as_deref() == Some("2")));
    let applied = (before.len() + tx.len()).to_string();
    assert!(wait_until(Duration::from_secs(10), || field(&mut r, "replication", "slave_repl_offset") == applied));
}
