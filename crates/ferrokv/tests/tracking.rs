//! Client-side caching with real clients: redis-py 8's client-side cache (never a stale
//! read after another client's write, FLUSHALL empties it, a cache on a replica follows
//! its master's writes), RESP2 redirection and BCAST compared byte for byte with
//! redis-server, invalidations from expiry (lazy and active) and eviction, and the
//! tracking table's size limit. The Python scenarios are in tests/tracking_clients/.

mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tracking_clients/redis_py_cache.py");

fn has_redis_py_cache() -> bool {
    let found = Command::new("python3")
        .args(["-c", "from redis.cache import CacheConfig"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if interop_required() {
            panic!("python3 with redis-py >= 5.1 (client-side cache) is required (FERROKV_REQUIRE_INTEROP=1)");
        }
        eprintln!("SKIPPED: python3 with redis-py's client-side cache is not installed (pip install redis)");
    }
    found
}

#[test]
fn redis_py_cache_never_serves_a_stale_value_after_another_clients_write() {
    if !has_redis_py_cache() {
        return;
    }
    let s = Server::start(&[]);
    run_scenario(&["cache".into(), s.port.to_string()]);
    run_scenario(&["flush".into(), s.port.to_string()]);
}

#[test]
fn redis_py_cache_on_a_replica_follows_the_masters_writes() {
    if !has_redis_py_cache() {
        return;
    }
    let master = Server::start(&[]);
    let replica = Server::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut r = replica.conn();
    assert!(
        wait_until(Duration::from_secs(20), || info_field(&mut r, "replication", "master_link_status") == "up"),
        "the replica did not connect"
    );
    run_scenario(&["replica".into(), master.port.to_string(), replica.port.to_string()]);
}

/// Reads replies until one equals `want` (bounded by the connection's 5 s read timeout).
fn expect_reply(c: &mut Raw, want: &[u8]) {
    let got = c.read_reply().expect("reply");
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

fn push(keys: &[&str]) -> Vec<u8> {
    let mut v = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len()).into_bytes();
    for k in keys {
        v.extend_from_slice(format!("${}\r\n{k}\r\n", k.len()).as_bytes());
    }
    v
}

fn client_id(c: &mut Raw) -> String {
    let r = c.cmd(&[b"CLIENT", b"ID"]);
    String::from_utf8_lossy(&r[1..r.len() - 2]).into_owned()
}

/// A RESP2 client redirecting to a RESP2 subscriber of `__redis__:invalidate`, then BCAST
/// with prefixes, NOLOOP and a broken redirect: what the subscriber receives is compared
/// byte for byte with redis-server's.
fn redirect_session(s: &Server) -> Vec<Vec<u8>> {
    let mut seen = Vec::new();
    let (mut tracker, mut writer, mut sub) = (s.raw(), s.raw(), s.raw());
    let sub_id = client_id(&mut sub);
    seen.push(sub.cmd(&[b"SUBSCRIBE", b"__redis__:invalidate"]));
    let id = sub_id.as_bytes();
    seen.push(tracker.cmd(&[b"CLIENT", b"TRACKING", b"on", b"REDIRECT", id]));
    seen.push(tracker.cmd(&[b"GET", b"k1"]));
    seen.push(tracker.cmd(&[b"MGET", b"k2", b"k3"]));
    seen.push(writer.cmd(&[b"MSET", b"k1", b"1", b"k3", b"3"]));
    seen.push(sub.read_reply().expect("k1"));
    seen.push(sub.read_reply().expect("k3"));
    // The tracker's own write, and a flush (the null in the tracker's RESP2).
    seen.push(tracker.cmd(&[b"SET", b"k2", b"2"]));
    seen.push(sub.read_reply().expect("k2"));
    seen.push(tracker.cmd(&[b"GET", b"k4"]));
    seen.push(writer.cmd(&[b"FLUSHDB"]));
    seen.push(sub.read_reply().expect("flush"));
    // BCAST with two prefixes: one message per prefix, keys sorted.
    seen.push(tracker.cmd(&[b"CLIENT", b"TRACKING", b"off"]));
    seen.push(tracker.cmd(&[
        b"CLIENT",
        b"TRACKING",
        b"on",
        b"REDIRECT",
        id,
        b"BCAST",
        b"PREFIX",
        b"user:",
        b"PREFIX",
        b"item:",
    ]));
    seen.push(writer.cmd(&[b"MSET", b"user:2", b"a", b"other", b"b", b"item:9", b"c", b"user:1", b"d"]));
    seen.push(sub.read_reply().expect("item: message"));
    seen.push(sub.read_reply().expect("user: message"));
    seen.push(tracker.cmd(&[b"CLIENT", b"TRACKINGINFO"]));
    // NOLOOP: the tracker's own writes are left out, another client's are not.
    seen.push(tracker.cmd(&[b"CLIENT", b"TRACKING", b"off"]));
    seen.push(tracker.cmd(&[b"CLIENT", b"TRACKING", b"on", b"REDIRECT", id, b"BCAST", b"NOLOOP", b"PREFIX", b"n:"]));
    seen.push(tracker.cmd(&[b"SET", b"n:mine", b"1"]));
    seen.push(writer.cmd(&[b"SET", b"n:theirs", b"1"]));
    seen.push(sub.read_reply().expect("n:theirs"));
    // The redirect client goes away: the redirect breaks (RESP2 hears nothing of it).
    drop(sub);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list = String::from_utf8_lossy(&writer.cmd(&[b"CLIENT", b"LIST"])).into_owned();
        if !list.contains(&format!("id={sub_id} ")) || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    seen.push(writer.cmd(&[b"SET", b"n:again", b"1"]));
    // BCAST is flushed after the writer's batch; TRACKINGINFO then shows the break.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut info = tracker.cmd(&[b"CLIENT", b"TRACKINGINFO"]);
    while !String::from_utf8_lossy(&info).contains("broken_redirect") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        info = tracker.cmd(&[b"CLIENT", b"TRACKINGINFO"]);
    }
    seen.push(info);
    seen.into_iter()
        .map(|r| String::from_utf8_lossy(&r).replace(&format!(":{sub_id}\r\n"), ":<id>\r\n").into_bytes())
        .collect()
}

#[test]
fn resp2_redirect_and_bcast_messages_match_redis() {
    let Some(redis) = Server::start_redis(&[]) else {
        return;
    };
    let fk = Server::start(&[]);
    let theirs = redirect_session(&redis);
    let ours = redirect_session(&fk);
    for (i, (a, b)) in theirs.iter().zip(&ours).enumerate() {
        assert_eq!(String::from_utf8_lossy(b), String::from_utf8_lossy(a), "step {i}");
    }
    assert_eq!(theirs.len(), ours.len());
}

#[test]
fn expiry_lazy_and_active_invalidates() {
    let s = Server::start(&[]);
    let (mut reader, mut writer) = (s.raw(), s.raw());
    reader.cmd(&[b"HELLO", b"3"]);
    assert_eq!(reader.cmd(&[b"CLIENT", b"TRACKING", b"on"]), b"+OK\r\n");
    assert_eq!(writer.cmd(&[b"DEBUG", b"SET-ACTIVE-EXPIRE", b"0"]), b"+OK\r\n");
    // Lazy: another client's read finds the key expired and deletes it.
    writer.cmd(&[b"SET", b"lazy", b"1", b"PX", b"100"]);
    assert_eq!(reader.cmd(&[b"GET", b"lazy"]), b"$1\r\n1\r\n");
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(writer.cmd(&[b"GET", b"lazy"]), b"$-1\r\n");
    expect_reply(&mut reader, &push(&["lazy"]));
    // Lazy, by the tracking client itself: the invalidation follows its reply, and the
    // key is tracked again by that read.
    writer.cmd(&[b"SET", b"own", b"1", b"PX", b"100"]);
    assert_eq!(reader.cmd(&[b"GET", b"own"]), b"$1\r\n1\r\n");
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(reader.cmd(&[b"GET", b"own"]), b"_\r\n");
    expect_reply(&mut reader, &push(&["own"]));
    writer.cmd(&[b"SET", b"own", b"2"]);
    expect_reply(&mut reader, &push(&["own"]));
    // Active expiry: the cron deletes it, the push comes by itself.
    assert_eq!(writer.cmd(&[b"DEBUG", b"SET-ACTIVE-EXPIRE", b"1"]), b"+OK\r\n");
    writer.cmd(&[b"SET", b"active", b"1", b"PX", b"100"]);
    assert_eq!(reader.cmd(&[b"GET", b"active"]), b"$1\r\n1\r\n");
    expect_reply(&mut reader, &push(&["active"]));
}

#[test]
fn eviction_invalidates() {
    let s = Server::start(&["--maxmemory-policy", "allkeys-random"]);
    let (mut reader, mut writer) = (s.raw(), s.raw());
    reader.cmd(&[b"HELLO", b"3"]);
    reader.cmd(&[b"CLIENT", b"TRACKING", b"on"]);
    let value = vec![b'x'; 10_000];
    for i in 0..200 {
        writer.cmd(&[b"SET", format!("big:{i}").as_bytes(), &value]);
    }
    for i in 0..200 {
        reader.cmd(&[b"STRLEN", format!("big:{i}").as_bytes()]);
    }
    let used: u64 = {
        let mut c = s.conn();
        info_field(&mut c, "memory", "used_memory").parse().expect("used_memory")
    };
    // Half the dataset must go: invalidations for evicted keys arrive by themselves.
    let max = (used - 1_000_000).to_string();
    assert_eq!(writer.cmd(&[b"CONFIG", b"SET", b"maxmemory", max.as_bytes()]), b"+OK\r\n");
    writer.cmd(&[b"SET", b"trigger", b"1"]);
    let got = reader.read_reply().expect("an invalidation");
    assert!(got.starts_with(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$"), "{:?}", String::from_utf8_lossy(&got));
    let mut c = s.conn();
    let evicted: u64 = info_field(&mut c, "stats", "evicted_keys").parse().expect("evicted_keys");
    assert!(evicted > 0);
    writer.cmd(&[b"CONFIG", b"SET", b"maxmemory", b"0"]);
}

#[test]
fn table_size_limit_invalidates_random_keys() {
    let s = Server::start(&[]);
    let mut reader = s.raw();
    reader.cmd(&[b"HELLO", b"3"]);
    reader.cmd(&[b"CLIENT", b"TRACKING", b"on"]);
    let mut c = s.conn();
    for i in 0..50 {
        reader.cmd(&[b"GET", format!("t:{i}").as_bytes()]);
    }
    assert_eq!(info_field(&mut c, "stats", "tracking_total_keys"), "50");
    assert_eq!(info_field(&mut c, "clients", "tracking_clients"), "1");
    let _: () = redis::cmd("CONFIG").arg("SET").arg("tracking-table-max-keys").arg(10).query(&mut c).unwrap();
    // The next command (or the cron before it) brings the table back to the limit, each
    // dropped key with its invalidation.
    reader.send(b"*1\r\n$4\r\nPING\r\n");
    let mut pushes = 0;
    loop {
        let r = reader.read_reply().expect("reply");
        if r == b"+PONG\r\n" {
            break;
        }
        assert!(r.starts_with(b">2\r\n$10\r\ninvalidate\r\n*1\r\n$"), "{:?}", String::from_utf8_lossy(&r));
        pushes += 1;
    }
    assert_eq!(pushes, 40);
    assert_eq!(info_field(&mut c, "stats", "tracking_total_keys"), "10");
    assert_eq!(info_field(&mut c, "stats", "tracking_total_items"), "10");
}

/// Runs one scenario of redis_py_cache.py; returns its "OK …" line.
fn run_scenario(args: &[String]) -> String {
    run_python_scenario(SCENARIOS, args, String::new)
}
