//! What the replication tests share: INFO fields, waiting for a replica to catch up,
//! proving two servers hold the same data, datasets and write mixes to replicate, and
//! starting replicas.

#![allow(dead_code)]

use crate::common::*;
use redis::Commands;
use std::time::Duration;

pub fn info(c: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(c).expect("INFO")
}

pub fn field(c: &mut redis::Connection, section: &str, name: &str) -> String {
    info(c, section)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// Waits until the replica's link is up and it has applied everything the master wrote.
pub fn wait_synced(m: &mut redis::Connection, r: &mut redis::Connection) {
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
pub fn assert_converged(m: &mut redis::Connection, r: &mut redis::Connection) {
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
pub fn fill(c: &mut redis::Connection, tag: &str) {
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
pub fn live_writes(c: &mut redis::Connection, tag: &str, n: usize) {
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

pub fn replica_args(master_port: u16) -> Vec<String> {
    vec!["--replicaof".into(), "127.0.0.1".into(), master_port.to_string()]
}

pub fn start_replica(master_port: u16, extra: &[&str]) -> Server {
    let mut args = replica_args(master_port);
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&refs)
}

pub const FAST: &[&str] = &["--repl-diskless-sync-delay", "0"];
