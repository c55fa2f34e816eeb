//! HyperLogLogs moving between ferrokv and redis-server: built on one, carried to the
//! other by replication and by RDB file, they must keep the same bytes and the same
//! PFCOUNT (the differential scripts cover the commands themselves); and the estimate's
//! error at a million elements.

mod common;
use common::*;
use redis::Connection;
use std::time::Duration;

const KEYS: &[&str] = &["small", "mid", "big", "merged", "cached"];

/// Sparse, near the sparse limit, dense, a merge of both and one whose cache was filled.
fn build(c: &mut Connection) {
    let add = |c: &mut Connection, key: &str, range: std::ops::Range<u32>| {
        let elements: Vec<String> = range.map(|i| format!("visitor:{i}")).collect();
        for chunk in elements.chunks(500) {
            let _: i64 = redis::cmd("PFADD").arg(key).arg(chunk).query(c).unwrap();
        }
    };
    add(c, "small", 0..20);
    add(c, "mid", 100..700);
    add(c, "big", 0..30_000);
    let _: () = redis::cmd("PFMERGE").arg("merged").arg("small").arg("mid").arg("big").query(c).unwrap();
    add(c, "cached", 5..300);
    let _: i64 = redis::cmd("PFCOUNT").arg("cached").query(c).unwrap();
}

/// Each key's bytes and count (PFCOUNT of a key with a stale cache rewrites it, so the
/// counts are read from the union form, which caches nothing).
fn snapshot(c: &mut Connection) -> Vec<(Vec<u8>, i64)> {
    KEYS.iter()
        .map(|k| {
            let bytes: Vec<u8> = redis::cmd("GET").arg(*k).query(c).unwrap();
            let count: i64 = redis::cmd("PFCOUNT").arg(*k).arg("no-such-key").query(c).unwrap();
            (bytes, count)
        })
        .collect()
}

fn save(c: &mut Connection) {
    let _: () = redis::cmd("SAVE").query(c).unwrap();
}

fn wait_for_keys(c: &mut Connection) {
    let ok = wait_until(Duration::from_secs(20), || {
        let n: i64 = redis::cmd("EXISTS").arg(KEYS).query(c).unwrap_or(0);
        n == KEYS.len() as i64
    });
    assert!(ok, "the replica did not receive the HyperLogLogs");
}

#[test]
fn hyperloglogs_cross_replication_and_rdb_files_both_ways() {
    let Some(redis) = Server::start_redis(&[]) else { return };
    let ferrokv = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let (mut rc, mut fc) = (redis.conn(), ferrokv.conn());
    build(&mut rc);
    build(&mut fc);
    let theirs = snapshot(&mut rc);
    assert_eq!(snapshot(&mut fc), theirs, "the same commands built different values");
    for (key, (bytes, _)) in KEYS.iter().zip(&theirs) {
        let encoding: String = redis::cmd("PFDEBUG").arg("ENCODING").arg(*key).query(&mut rc).unwrap();
        assert_eq!(encoding, if bytes.len() == 12304 { "dense" } else { "sparse" });
    }

    // Redis master -> ferrokv replica, and ferrokv master -> Redis replica.
    let redis_port = redis.port.to_string();
    let ferrokv_port = ferrokv.port.to_string();
    let our_replica = Server::start(&["--replicaof", "127.0.0.1", &redis_port]);
    let Some(their_replica) = Server::start_redis(&["--replicaof", "127.0.0.1", &ferrokv_port]) else { return };
    for replica in [&our_replica, &their_replica] {
        let mut c = replica.conn();
        wait_for_keys(&mut c);
        assert_eq!(snapshot(&mut c), theirs);
    }
    // A PFCOUNT that refreshes the cache reaches the replicas, so the bytes stay equal.
    for c in [&mut rc, &mut fc] {
        let _: i64 = redis::cmd("PFADD").arg("cached").arg("late-visitor").query(c).unwrap();
        let _: i64 = redis::cmd("PFCOUNT").arg("cached").query(c).unwrap();
    }
    let master_bytes: Vec<u8> = redis::cmd("GET").arg("cached").query(&mut fc).unwrap();
    for replica in [&our_replica, &their_replica] {
        let mut c = replica.conn();
        let ok = wait_until(Duration::from_secs(10), || {
            redis::cmd("GET").arg("cached").query::<Vec<u8>>(&mut c).ok().as_ref() == Some(&master_bytes)
        });
        assert!(ok, "the refreshed cache did not reach the replica on port {}", replica.port);
    }

    // RDB files: each server loads the other's.
    save(&mut rc);
    save(&mut fc);
    let redis_dir = redis.dir.path().to_str().unwrap().to_string();
    let ferrokv_dir = ferrokv.dir.path().to_str().unwrap().to_string();
    let f2 = Server::start(&["--dir", &redis_dir]);
    let mut f2c = wait_loaded(&f2);
    assert_eq!(snapshot(&mut f2c), snapshot(&mut rc), "ferrokv loading redis's RDB");
    let Some(r2) = Server::start_redis(&["--dir", &ferrokv_dir]) else { return };
    let mut r2c = wait_loaded(&r2);
    assert_eq!(snapshot(&mut r2c), snapshot(&mut fc), "redis loading ferrokv's RDB");
}

/// The standard error of Redis's HyperLogLog is 0.81 %; a million distinct elements must
/// count within 1 %, and (when redis-server is here) exactly as Redis counts them.
#[test]
fn a_million_elements_count_within_one_percent() {
    const N: u32 = 1_000_000;
    let ferrokv = Server::start(&[]);
    let redis = Server::start_redis(&[]);
    let mut counts = Vec::new();
    for server in std::iter::once(&ferrokv).chain(redis.as_ref()) {
        let mut c = server.conn();
        let mut pipe = redis::pipe();
        for start in (0..N).step_by(1000) {
            pipe.cmd("PFADD")
                .arg("visitors")
                .arg((start..start + 1000).map(|i| format!("user:{i}")).collect::<Vec<_>>())
                .ignore();
            if start % 100_000 == 99_000 {
                let _: () = pipe.query(&mut c).unwrap();
                pipe = redis::pipe();
            }
        }
        let count: i64 = redis::cmd("PFCOUNT").arg("visitors").query(&mut c).unwrap();
        counts.push(count);
    }
    let error = (counts[0] - N as i64).abs() as f64 / N as f64;
    assert!(error < 0.01, "PFCOUNT {} for {N} elements: error {:.3} %", counts[0], error * 100.0);
    if counts.len() == 2 {
        assert_eq!(counts[0], counts[1], "ferrokv and redis-server count differently");
    }
}
