//! maxmemory: -OOM under noeviction, and each policy's choice of victims when writes push
//! memory over the limit.

mod common;
use common::*;
use redis::Commands;

fn used_memory(c: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query(c).unwrap();
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap()
}

/// Fills with `n` keys of 1 KiB, each optionally with a TTL of base+i seconds.
fn fill(c: &mut redis::Connection, prefix: &str, n: usize, ttl_base: Option<u64>) {
    let val = vec![b'v'; 1024];
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let mut p = redis::pipe();
        for &i in chunk {
            match ttl_base {
                Some(b) => p.cmd("SET").arg(format!("{prefix}{i}")).arg(&val).arg("EX").arg(b + i as u64).ignore(),
                None => p.cmd("SET").arg(format!("{prefix}{i}")).arg(&val).ignore(),
            };
        }
        let _: () = p.query(c).unwrap();
    }
}

#[test]
fn noeviction_refuses_writes_but_serves_reads() {
    let s = Server::start(&["--maxmemory-policy", "noeviction"]);
    let mut c = s.conn();
    fill(&mut c, "k", 100, None);
    let limit = used_memory(&mut c) + 64 * 1024;
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut c).unwrap();
    let big = vec![b'x'; 256 * 1024];
    let r: redis::RedisResult<()> = c.set("big", &big);
    let e = r.unwrap_err();
    assert!(e.to_string().contains("command not allowed when used memory > 'maxmemory'."), "{e}");
    assert_eq!(e.code(), Some("OOM"));
    let v: Option<Vec<u8>> = c.get("k1").unwrap();
    assert!(v.is_some(), "reads still work");
    let d: i64 = c.del("k1").unwrap();
    assert_eq!(d, 1, "DEL is not denyoom");
}

#[test]
fn volatile_ttl_evicts_the_soonest_expiring() {
    let s = Server::start(&["--maxmemory-policy", "volatile-ttl", "--maxmemory-samples", "10"]);
    let mut c = s.conn();
    fill(&mut c, "persistent", 200, None);
    fill(&mut c, "soon", 100, Some(1000));
    fill(&mut c, "late", 100, Some(100_000));
    let limit = used_memory(&mut c) - 30 * 1024;
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut c).unwrap();
    fill(&mut c, "new", 20, None);
    let info: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert!(!info.contains("evicted_keys:0\r"), "{info}");
    let late: usize = (0..100).filter(|i| c.exists::<_, bool>(format!("late{i}")).unwrap()).count();
    let soon: usize = (0..100).filter(|i| c.exists::<_, bool>(format!("soon{i}")).unwrap()).count();
    let persistent: usize = (0..200).filter(|i| c.exists::<_, bool>(format!("persistent{i}")).unwrap()).count();
    assert_eq!(persistent, 200, "keys without TTL are never volatile-ttl victims");
    assert_eq!(late, 100, "the latest-expiring keys survive");
    assert!(soon < 100, "soonest-expiring keys were evicted");
}

#[test]
fn allkeys_lru_keeps_a_recently_read_hot_set() {
    let s = Server::start(&["--maxmemory-policy", "allkeys-lru", "--maxmemory-samples", "10"]);
    let mut c = s.conn();
    fill(&mut c, "hot", 50, None);
    fill(&mut c, "cold", 500, None);
    // Age the cold keys: the LRU clock has one-second resolution.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    for i in 0..50 {
        let _: Option<Vec<u8>> = c.get(format!("hot{i}")).unwrap();
    }
    let limit = used_memory(&mut c);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut c).unwrap();
    fill(&mut c, "fresh", 300, None);
    let hot: usize = (0..50).filter(|i| c.exists::<_, bool>(format!("hot{i}")).unwrap()).count();
    let cold: usize = (0..500).filter(|i| c.exists::<_, bool>(format!("cold{i}")).unwrap()).count();
    assert!(hot >= 45, "hot set kept: {hot}/50");
    assert!(cold < 400, "cold keys evicted: {cold}/500 left");
    assert!(used_memory(&mut c) <= limit + 64 * 1024);
}

#[test]
fn lfu_counts_accesses() {
    let s = Server::start(&["--maxmemory-policy", "allkeys-lfu"]);
    let mut c = s.conn();
    let _: () = c.set("k", "v").unwrap();
    let start: i64 = redis::cmd("OBJECT").arg("FREQ").arg("k").query(&mut c).unwrap();
    for _ in 0..200 {
        let _: String = c.get("k").unwrap();
    }
    let after: i64 = redis::cmd("OBJECT").arg("FREQ").arg("k").query(&mut c).unwrap();
    assert_eq!(start, 5, "LFU_INIT_VAL");
    assert!(after > start, "{after}");
    let r: redis::RedisResult<i64> = redis::cmd("OBJECT").arg("IDLETIME").arg("k").query(&mut c);
    assert!(r.is_err());
}

#[test]
fn evictions_are_notified() {
    let s = Server::start(&["--maxmemory-policy", "allkeys-random", "--notify-keyspace-events", "Ee"]);
    let client = redis::Client::open(s.url()).unwrap();
    let mut sub = client.get_connection().unwrap();
    let mut ps = sub.as_pubsub();
    ps.subscribe("__keyevent@0__:evicted").unwrap();
    ps.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    let mut c = s.conn();
    fill(&mut c, "k", 1000, None);
    // Well below current use: the allocator's counters are batched per thread (tens of KB).
    let limit = used_memory(&mut c) - 400 * 1024;
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(limit).query(&mut c).unwrap();
    let _: () = c.set("trigger", "x").unwrap();
    let m = ps.get_message().unwrap();
    let key: String = m.get_payload().unwrap();
    assert!(key.starts_with('k'), "{key}");
}
