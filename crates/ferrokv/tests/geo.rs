//! Geo writes leaving the server: what GEOADD and the STORE searches put in the AOF and
//! send to replicas must be what Redis 7.0 writes (GEOADD as the ZADD it ran, with the
//! options as typed; GEORADIUS … STORE and GEOSEARCHSTORE as received), and replicas of
//! either server must end with the same geo sets. The commands' replies are covered by
//! the differential scripts (tests/diff/geo.txt, random_geo_commands).

mod common;
use common::*;
use redis::Connection;
use std::path::Path;
use std::time::Duration;

/// GEOADDs with options (including ones that change nothing), searches with and without
/// STORE, and a store with an empty result over an existing destination.
fn geo_writes(c: &mut Connection) {
    let run = |c: &mut Connection, args: &str| {
        let parts: Vec<&str> = args.split(' ').collect();
        let _: redis::Value = redis::cmd(parts[0]).arg(&parts[1..]).query(c).unwrap();
    };
    run(c, "GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania");
    run(c, "GEOADD Sicily Nx cH 13.361389 38.115556 Palermo 12.5 37.8 Marsala");
    run(c, "GEOADD Sicily NX 13.361389 38.115556 Palermo");
    run(c, "GEOADD Sicily xx CH 13.5 38.1 Palermo");
    run(c, "GEORADIUS Sicily 15 37 200 km WITHDIST");
    run(c, "GEORADIUS Sicily 15 37 200 km STORE near");
    run(c, "GEORADIUSBYMEMBER Sicily Palermo 300 km STOREDIST fromPalermo");
    run(c, "GEOSEARCHSTORE box Sicily FROMLONLAT 14 37.8 BYBOX 400 200 km STOREDIST");
    run(c, "GEOSEARCHSTORE near Sicily FROMLONLAT 0 0 BYRADIUS 1 km");
    run(c, "GEOSEARCHSTORE never Sicily FROMLONLAT 0 0 BYRADIUS 1 km");
    run(c, "GEOSEARCH Sicily FROMMEMBER Catania BYRADIUS 100 km");
}

const KEYS: &[&str] = &["Sicily", "fromPalermo", "box", "near"];

/// Every geo key's members and scores (a missing key reads as empty).
fn contents(c: &mut Connection) -> Vec<Vec<(String, String)>> {
    KEYS.iter().map(|k| redis::cmd("ZRANGE").arg(*k).arg(0).arg(-1).arg("WITHSCORES").query(c).unwrap()).collect()
}

/// The commands of the newest incremental AOF file under `dir`, lower-cased names.
fn aof_commands(dir: &Path) -> Vec<Vec<String>> {
    let aof = dir.join("appendonlydir");
    let mut incr: Vec<_> = std::fs::read_dir(&aof)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .collect();
    incr.sort();
    let bytes = std::fs::read(incr.last().expect("an incremental AOF file")).unwrap();
    let mut commands = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let (frame, used) = ferrokv_resp::Frame::decode(rest).expect("valid RESP").expect("complete command");
        rest = &rest[used..];
        let ferrokv_resp::Frame::Array(parts) = frame else { panic!("an AOF command is an array") };
        let mut args: Vec<String> = parts
            .iter()
            .map(|p| match p {
                ferrokv_resp::Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        args[0] = args[0].to_ascii_lowercase();
        commands.push(args);
    }
    commands
}

#[test]
fn geo_writes_reach_the_aof_as_redis_writes_them() {
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let Some(redis) = Server::start_redis(&args) else { return };
    let ferrokv = Server::start(&args);
    let (mut rc, mut fc) = (redis.conn(), ferrokv.conn());
    geo_writes(&mut rc);
    geo_writes(&mut fc);
    assert_eq!(contents(&mut fc), contents(&mut rc));
    let theirs = aof_commands(redis.dir.path());
    let ours = aof_commands(ferrokv.dir.path());
    assert_eq!(ours, theirs);
    // GEOADD went out as ZADD with integer geohash scores, the no-op GEOADD not at all.
    assert_eq!(theirs.iter().filter(|c| c[0] == "zadd").count(), 3, "{theirs:?}");
    assert_eq!(theirs[2], ["zadd", "Sicily", "Nx", "cH", "3479099956230698", "Palermo", "3478922452344708", "Marsala"]);
    assert!(theirs.iter().any(|c| c[0] == "georadius" && c.contains(&"STORE".to_string())));
    assert_eq!(theirs.iter().filter(|c| c[0] == "geosearchstore").count(), 2, "{theirs:?}");

    // And the AOF loads back into the same sets.
    drop(fc);
    let mut restarted = ferrokv;
    restarted.kill9();
    let again = Server::start(&["--appendonly", "yes", "--dir", &restarted.dir.path().to_string_lossy()]);
    let mut c = wait_loaded(&again);
    assert_eq!(contents(&mut c), contents(&mut rc));
}

fn wait_for(c: &mut Connection, expected: &[Vec<(String, String)>]) -> bool {
    wait_until(Duration::from_secs(20), || contents(c) == expected)
}

#[test]
fn geo_sets_replicate_both_ways_with_redis() {
    let Some(redis) = Server::start_redis(&[]) else { return };
    let ferrokv = Server::start(&["--repl-diskless-sync-delay", "0"]);
    let redis_port = redis.port.to_string();
    let ferrokv_port = ferrokv.port.to_string();
    let our_replica = Server::start(&["--replicaof", "127.0.0.1", &redis_port]);
    let Some(their_replica) = Server::start_redis(&["--replicaof", "127.0.0.1", &ferrokv_port]) else { return };
    for (master, replica) in [(&redis, &our_replica), (&ferrokv, &their_replica)] {
        let mut r = replica.conn();
        let ok =
            wait_until(Duration::from_secs(20), || info_field(&mut r, "replication", "master_link_status") == "up");
        assert!(ok, "replica link did not come up");
        let mut m = master.conn();
        geo_writes(&mut m);
        let expected = contents(&mut m);
        assert!(!expected[0].is_empty() && !expected[1].is_empty() && !expected[2].is_empty());
        assert!(wait_for(&mut r, &expected), "the replica's geo sets differ: {:?} vs {expected:?}", contents(&mut r));
    }
}
