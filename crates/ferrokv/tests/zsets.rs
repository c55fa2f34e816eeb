//! Sorted sets through the `redis` crate and raw RESP: every command end to end, encoding
//! conversions, blocking pops (FIFO among waiters, timeouts, wake-up by a transaction),
//! and RESP3 doubles. Exact reply bytes and errors are the differential tests' job.

mod common;
use common::*;
use redis::Commands;
use std::time::{Duration, Instant};

fn encoding(c: &mut redis::Connection, key: &str) -> String {
    redis::cmd("OBJECT").arg("ENCODING").arg(key).query(c).unwrap()
}

#[test]
fn add_score_rank_and_ranges() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let n: i64 = c.zadd_multiple("z", &[(1.0, "a"), (2.0, "b"), (3.0, "c")]).unwrap();
    assert_eq!(n, 3);
    let ch: i64 = redis::cmd("ZADD").arg("z").arg("CH").arg(5).arg("a").arg(4).arg("d").query(&mut c).unwrap();
    assert_eq!(ch, 2);
    let s1: f64 = c.zscore("z", "a").unwrap();
    assert_eq!(s1, 5.0);
    let missing: Option<f64> = c.zscore("z", "nope").unwrap();
    assert_eq!(missing, None);
    let ms: Vec<Option<f64>> = redis::cmd("ZMSCORE").arg("z").arg("b").arg("x").query(&mut c).unwrap();
    assert_eq!(ms, vec![Some(2.0), None]);
    let inc: f64 = c.zincr("z", "b", 0.5).unwrap();
    assert_eq!(inc, 2.5);
    let incr: f64 = redis::cmd("ZADD").arg("z").arg("INCR").arg(1).arg("c").query(&mut c).unwrap();
    assert_eq!(incr, 4.0);
    assert_eq!(c.zcard::<_, i64>("z").unwrap(), 4);
    assert_eq!(c.zcount::<_, _, _, i64>("z", "(2.5", "+inf").unwrap(), 3);
    assert_eq!(c.zrank::<_, _, Option<i64>>("z", "a").unwrap(), Some(3));
    assert_eq!(c.zrevrank::<_, _, Option<i64>>("z", "a").unwrap(), Some(0));
    let all: Vec<(String, f64)> = c.zrange_withscores("z", 0, -1).unwrap();
    assert_eq!(all, vec![("b".into(), 2.5), ("c".into(), 4.0), ("d".into(), 4.0), ("a".into(), 5.0)]);
    let rev: Vec<String> = c.zrevrange("z", 0, 1).unwrap();
    assert_eq!(rev, vec!["a", "d"]);
    let by: Vec<String> = c.zrangebyscore_limit("z", 3, "+inf", 1, 2).unwrap();
    assert_eq!(by, vec!["d", "a"]);
    let rby: Vec<String> = c.zrevrangebyscore("z", 4, "-inf").unwrap();
    assert_eq!(rby, vec!["d", "c", "b"]);
    let r: Vec<String> =
        redis::cmd("ZRANGE").arg("z").arg("+inf").arg(4).arg("BYSCORE").arg("REV").query(&mut c).unwrap();
    assert_eq!(r, vec!["a", "d", "c"]);
    // Redis 7.2's WITHSCORE, as an extension.
    let rs: (i64, f64) = redis::cmd("ZRANK").arg("z").arg("c").arg("WITHSCORE").query(&mut c).unwrap();
    assert_eq!(rs, (1, 4.0));
    let removed: i64 = c.zrem("z", &["a", "x"]).unwrap();
    assert_eq!(removed, 1);
}

#[test]
fn lex_ranges_and_removals() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let _: () = c.zadd_multiple("l", &[(0, "a"), (0, "b"), (0, "c"), (0, "d"), (0, "e")]).unwrap();
    let r: Vec<String> = c.zrangebylex("l", "[b", "(d").unwrap();
    assert_eq!(r, vec!["b", "c"]);
    let r: Vec<String> = c.zrevrangebylex("l", "+", "(c").unwrap();
    assert_eq!(r, vec!["e", "d"]);
    assert_eq!(c.zlexcount::<_, _, _, i64>("l", "-", "+").unwrap(), 5);
    assert_eq!(c.zrembylex::<_, _, _, i64>("l", "-", "[a").unwrap(), 1);
    assert_eq!(c.zremrangebyrank::<_, i64>("l", 0, 0).unwrap(), 1);
    assert_eq!(c.zrembyscore::<_, _, _, i64>("l", 0, 0).unwrap(), 3);
    assert!(!c.exists::<_, bool>("l").unwrap(), "an emptied sorted set is deleted");
}

#[test]
fn pops_random_members_and_scan() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let _: () = c.zadd_multiple("p", &[(1, "a"), (2, "b"), (3, "c"), (4, "d")]).unwrap();
    let min: Vec<String> = redis::cmd("ZPOPMIN").arg("p").query(&mut c).unwrap();
    assert_eq!(min, vec!["a", "1"]);
    let max: Vec<String> = redis::cmd("ZPOPMAX").arg("p").arg(2).query(&mut c).unwrap();
    assert_eq!(max, vec!["d", "4", "c", "3"]);
    let m: (String, Vec<(String, f64)>) =
        redis::cmd("ZMPOP").arg(2).arg("nokey").arg("p").arg("MIN").query(&mut c).unwrap();
    assert_eq!(m, ("p".into(), vec![("b".into(), 2.0)]));
    assert!(!c.exists::<_, bool>("p").unwrap());

    let members: Vec<String> = (0..50).map(|i| format!("m{i}")).collect();
    for (i, m) in members.iter().enumerate() {
        let _: () = c.zadd("r", m, i).unwrap();
    }
    let one: String = redis::cmd("ZRANDMEMBER").arg("r").query(&mut c).unwrap();
    assert!(members.contains(&one));
    let some: Vec<String> = redis::cmd("ZRANDMEMBER").arg("r").arg(10).query(&mut c).unwrap();
    let distinct: std::collections::HashSet<&String> = some.iter().collect();
    assert_eq!(distinct.len(), 10, "a positive count draws distinct members");
    let many: Vec<String> = redis::cmd("ZRANDMEMBER").arg("r").arg(-100).query(&mut c).unwrap();
    assert_eq!(many.len(), 100);

    let _: () = redis::cmd("CONFIG").arg("SET").arg("zset-max-listpack-entries").arg(16).query(&mut c).unwrap();
    let _: () = c.zadd("r", "m50", 50).unwrap();
    let mut seen = std::collections::HashMap::new();
    let mut cursor = 0u64;
    loop {
        let (next, kv): (u64, Vec<String>) = redis::cmd("ZSCAN").arg("r").arg(cursor).query(&mut c).unwrap();
        for p in kv.chunks(2) {
            seen.insert(p[0].clone(), p[1].clone());
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 51);
    assert_eq!(seen["m7"], "7");
}

#[test]
fn set_operations_and_stores() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let _: () = c.zadd_multiple("a", &[(1, "x"), (2, "y")]).unwrap();
    let _: () = c.zadd_multiple("b", &[(10, "y"), (20, "z")]).unwrap();
    let _: () = c.sadd("s", &["y", "w"]).unwrap();
    let u: Vec<(String, f64)> = redis::cmd("ZUNION").arg(2).arg("a").arg("b").arg("WITHSCORES").query(&mut c).unwrap();
    assert_eq!(u, vec![("x".into(), 1.0), ("y".into(), 12.0), ("z".into(), 20.0)]);
    let i: Vec<String> = redis::cmd("ZINTER").arg(3).arg("a").arg("b").arg("s").query(&mut c).unwrap();
    assert_eq!(i, vec!["y"]);
    let d: Vec<String> = redis::cmd("ZDIFF").arg(2).arg("a").arg("s").query(&mut c).unwrap();
    assert_eq!(d, vec!["x"]);
    let n: i64 = redis::cmd("ZINTERCARD").arg(2).arg("a").arg("b").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let n: i64 = c.zunionstore_weights("u", &[("a", 2.0), ("b", 1.0)]).unwrap();
    assert_eq!(n, 3);
    assert_eq!(c.zscore::<_, _, f64>("u", "y").unwrap(), 14.0);
    let n: i64 = c.zinterstore_max("i", &["a", "b"]).unwrap();
    assert_eq!(n, 1);
    assert_eq!(c.zscore::<_, _, f64>("i", "y").unwrap(), 10.0);
    let n: i64 = redis::cmd("ZDIFFSTORE").arg("d").arg(2).arg("b").arg("a").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let n: i64 = redis::cmd("ZRANGESTORE").arg("rs").arg("u").arg(0).arg(1).query(&mut c).unwrap();
    assert_eq!(n, 2);
    let rs: Vec<String> = c.zrange("rs", 0, -1).unwrap();
    assert_eq!(rs, vec!["x", "y"]);
    let n: i64 = redis::cmd("ZINTERSTORE").arg("rs").arg(2).arg("a").arg("nokey").query(&mut c).unwrap();
    assert_eq!(n, 0);
    assert!(!c.exists::<_, bool>("rs").unwrap(), "an empty result deletes the destination");
}

#[test]
fn encodings_follow_the_thresholds() {
    let s = Server::start(&["--zset-max-listpack-entries", "4", "--zset-max-listpack-value", "8"]);
    let mut c = s.conn();
    for i in 0..4 {
        let _: () = c.zadd("z", format!("m{i}"), i).unwrap();
    }
    assert_eq!(encoding(&mut c, "z"), "listpack");
    let _: () = c.zadd("z", "m4", 4).unwrap();
    assert_eq!(encoding(&mut c, "z"), "skiplist");
    let _: () = c.zrem("z", &["m0", "m1", "m2"]).unwrap();
    assert_eq!(encoding(&mut c, "z"), "skiplist", "removals never convert back");
    let ranked: Vec<String> = c.zrange("z", 0, -1).unwrap();
    assert_eq!(ranked, vec!["m3", "m4"]);
    let _: () = c.zadd("long", "123456789", 1).unwrap();
    assert_eq!(encoding(&mut c, "long"), "skiplist");
    let _: () = redis::cmd("ZRANGESTORE").arg("small").arg("z").arg(0).arg(-1).query(&mut c).unwrap();
    assert_eq!(encoding(&mut c, "small"), "listpack", "built results pick their encoding by size");
    let _: () = redis::cmd("COPY").arg("z").arg("zc").query(&mut c).unwrap();
    assert_eq!(encoding(&mut c, "zc"), "skiplist");
    let copied: Vec<(String, f64)> = c.zrange_withscores("zc", 0, -1).unwrap();
    assert_eq!(copied, vec![("m3".into(), 3.0), ("m4".into(), 4.0)]);
}

/// Waits until `n` clients are blocked in `cmd` (CLIENT LIST shows the command a client
/// runs; a client appears there only once it is registered as blocked).
fn wait_blocked(c: &mut redis::Connection, cmd: &str, n: usize) {
    let ok = wait_until(Duration::from_secs(5), || {
        let list: String = redis::cmd("CLIENT").arg("LIST").query(c).unwrap();
        list.lines().filter(|l| l.contains(&format!("cmd={cmd} "))).count() >= n
    });
    assert!(ok, "{n} clients never blocked in {cmd}");
}

fn send(raw: &mut Raw, args: &[&str]) {
    let mut out = Vec::new();
    ferrokv_resp::encode_command(&mut out, args.iter().map(|a| a.as_bytes()));
    raw.send(&out);
}

fn bulk_reply(parts: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n{p}\r\n", p.len()).as_bytes());
    }
    out
}

#[test]
fn blocked_clients_are_served_first_come_first_served() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut waiters: Vec<Raw> = (0..3).map(|_| s.raw()).collect();
    for (i, w) in waiters.iter_mut().enumerate() {
        send(w, &["BZPOPMIN", "other", "q", "0"]);
        wait_blocked(&mut c, "bzpopmin", i + 1);
    }
    let _: () = c.zadd_multiple("q", &[(1, "a"), (2, "b"), (3, "c")]).unwrap();
    let got: Vec<Vec<u8>> = waiters.iter_mut().map(|w| w.read_reply().expect("served")).collect();
    assert_eq!(got[0], bulk_reply(&["q", "a", "1"]));
    assert_eq!(got[1], bulk_reply(&["q", "b", "2"]));
    assert_eq!(got[2], bulk_reply(&["q", "c", "3"]));
    assert!(!c.exists::<_, bool>("q").unwrap());
}

#[test]
fn blocking_pops_time_out() {
    let s = Server::start(&[]);
    let mut raw = s.raw();
    let started = Instant::now();
    assert_eq!(raw.cmd(&[b"BZPOPMAX", b"nothing", b"0.2"]), b"*-1\r\n");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(190), "returned after {waited:?}");
    assert!(waited < Duration::from_secs(4), "returned after {waited:?}");
    assert_eq!(raw.cmd(&[b"BZMPOP", b"0.05", b"1", b"nothing", b"MIN"]), b"*-1\r\n");
    // The connection is usable again afterwards.
    assert_eq!(raw.cmd(&[b"PING"]), b"+PONG\r\n");
}

#[test]
fn a_transaction_wakes_a_blocked_client_after_exec() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut waiter = s.raw();
    send(&mut waiter, &["BZMPOP", "0", "1", "q", "MAX", "COUNT", "2"]);
    wait_blocked(&mut c, "bzmpop", 1);
    let mut tx = s.raw();
    assert_eq!(tx.cmd(&[b"MULTI"]), b"+OK\r\n");
    assert_eq!(tx.cmd(&[b"ZADD", b"q", b"1", b"a"]), b"+QUEUED\r\n");
    assert_eq!(tx.cmd(&[b"ZADD", b"q", b"2", b"b", b"3", b"c"]), b"+QUEUED\r\n");
    // Blocking commands inside MULTI answer at once, as if timed out.
    assert_eq!(tx.cmd(&[b"BZPOPMIN", b"empty", b"0"]), b"+QUEUED\r\n");
    assert_eq!(tx.cmd(&[b"EXEC"]), b"*3\r\n:1\r\n:2\r\n*-1\r\n");
    let got = waiter.read_reply().expect("served after EXEC");
    assert_eq!(got, b"*2\r\n$1\r\nq\r\n*2\r\n*2\r\n$1\r\nc\r\n$1\r\n3\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    let left: Vec<String> = c.zrange("q", 0, -1).unwrap();
    assert_eq!(left, vec!["a"]);
}

#[test]
fn resp3_replies_doubles() {
    let s = Server::start(&[]);
    let mut raw = s.raw();
    assert!(raw.cmd(&[b"HELLO", b"3"]).starts_with(b"%"));
    assert_eq!(raw.cmd(&[b"ZADD", b"z", b"1.5", b"a", b"inf", b"b", b"0.1", b"c"]), b":3\r\n");
    assert_eq!(raw.cmd(&[b"ZSCORE", b"z", b"a"]), b",1.5\r\n");
    assert_eq!(raw.cmd(&[b"ZSCORE", b"z", b"b"]), b",inf\r\n");
    assert_eq!(raw.cmd(&[b"ZINCRBY", b"z", b"1", b"c"]), b",1.1000000000000001\r\n");
    assert_eq!(raw.cmd(&[b"ZSCORE", b"z", b"nope"]), b"_\r\n");
    assert_eq!(
        raw.cmd(&[b"ZRANGE", b"z", b"0", b"1", b"WITHSCORES"]),
        b"*2\r\n*2\r\n$1\r\nc\r\n,1.1000000000000001\r\n*2\r\n$1\r\na\r\n,1.5\r\n"
    );
    assert_eq!(raw.cmd(&[b"ZPOPMAX", b"z"]), b"*2\r\n$1\r\nb\r\n,inf\r\n");
    assert_eq!(raw.cmd(&[b"ZPOPMIN", b"z", b"1"]), b"*1\r\n*2\r\n$1\r\nc\r\n,1.1000000000000001\r\n");
}
