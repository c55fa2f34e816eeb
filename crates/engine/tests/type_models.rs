//! Model tests: random command sequences against hashes and sets, checked after every
//! step against std collections, across encoding conversions.

mod common;
use common::*;
use ferrokv_resp::Frame;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn strings(f: &Frame) -> Vec<String> {
    match f {
        Frame::Array(v) | Frame::Set(v) => {
            v.iter().map(|x| String::from_utf8_lossy(x.as_bytes().unwrap()).into_owned()).collect()
        }
        other => panic!("not an array: {other:?}"),
    }
}

#[derive(Debug, Clone)]
enum HashOp {
    Set(u8, u16),
    Del(u8),
    Incr(u8, i8),
}

fn hash_op() -> impl Strategy<Value = HashOp> {
    prop_oneof![
        (0u8..40, any::<u16>()).prop_map(|(f, v)| HashOp::Set(f, v)),
        (0u8..40).prop_map(HashOp::Del),
        (0u8..40, any::<i8>()).prop_map(|(f, d)| HashOp::Incr(f, d)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn hash_matches_model(ops in prop::collection::vec(hash_op(), 1..120)) {
        let mut h = Harness::new();
        let c = h.client();
        h.cmd(c, &["config", "set", "hash-max-listpack-entries", "16"]);
        let mut model: BTreeMap<String, String> = BTreeMap::new();
        for op in ops {
            match op {
                HashOp::Set(f, v) => {
                    let (f, v) = (format!("f{f}"), v.to_string());
                    let new = !model.contains_key(&f);
                    prop_assert_eq!(h.cmd(c, &["hset", "h", &f, &v]), int(new as i64));
                    model.insert(f, v);
                }
                HashOp::Del(f) => {
                    let f = format!("f{f}");
                    let had = model.remove(&f).is_some();
                    prop_assert_eq!(h.cmd(c, &["hdel", "h", &f]), int(had as i64));
                }
                HashOp::Incr(f, d) => {
                    let f = format!("f{f}");
                    let cur: i64 = model.get(&f).map_or(0, |v| v.parse().unwrap());
                    let next = cur + d as i64;
                    prop_assert_eq!(h.cmd(c, &["hincrby", "h", &f, &d.to_string()]), int(next));
                    model.insert(f, next.to_string());
                }
            }
            prop_assert_eq!(h.cmd(c, &["hlen", "h"]), int(model.len() as i64));
        }
        let mut got: Vec<String> = if model.is_empty() { Vec::new() } else { strings(&h.cmd(c, &["hkeys", "h"])) };
        got.sort();
        prop_assert_eq!(got, model.keys().cloned().collect::<Vec<_>>());
        for (f, v) in &model {
            prop_assert_eq!(h.cmd(c, &["hget", "h", f]), bulk(v));
        }
    }

    #[test]
    fn set_matches_model(ops in prop::collection::vec((any::<bool>(), 0u16..60, any::<bool>()), 1..150)) {
        let mut h = Harness::new();
        let c = h.client();
        h.cmd(c, &["config", "set", "set-max-intset-entries", "20"]);
        let mut model: BTreeSet<String> = BTreeSet::new();
        for (add, m, as_word) in ops {
            let m = if as_word { format!("w{m}") } else { m.to_string() };
            if add {
                prop_assert_eq!(h.cmd(c, &["sadd", "s", &m]), int(model.insert(m.clone()) as i64));
            } else {
                prop_assert_eq!(h.cmd(c, &["srem", "s", &m]), int(model.remove(&m) as i64));
            }
            prop_assert_eq!(h.cmd(c, &["scard", "s"]), int(model.len() as i64));
        }
        let mut got = strings(&h.cmd(c, &["smembers", "s"]));
        got.sort();
        prop_assert_eq!(got, model.iter().cloned().collect::<Vec<_>>());
    }
}
