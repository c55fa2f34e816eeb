//! Sorted sets against a model: random ZADD/ZREM/ZINCRBY/ZREMRANGEBYRANK sequences,
//! checked after every step with ZRANGE/ZRANK/ZRANGEBYSCORE/ZCARD against a BTreeMap, with
//! a small `zset-max-listpack-entries` so sets cross between encodings both ways (a
//! packed set grows into a tree; a tree shrinks but stays one; new keys start packed).
//! Also: how pops, blocking pops and ZMPOP reach the write feed.

mod common;
use common::*;
use ferrokv_resp::num::fmt_double;
use ferrokv_resp::Frame;
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Add(u8, i8),
    Rem(u8),
    Incr(u8, i8),
    RemRangeByRank(i8, i8),
    Range(i8, i8, bool),
    Rank(u8, bool),
    ByScore(i8, i8, bool, bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..24, -8i8..8).prop_map(|(m, s)| Op::Add(m, s)),
        2 => (0u8..24).prop_map(Op::Rem),
        2 => (0u8..24, -4i8..4).prop_map(|(m, d)| Op::Incr(m, d)),
        1 => (-12i8..12, -12i8..12).prop_map(|(a, b)| Op::RemRangeByRank(a, b)),
        2 => (-12i8..12, -12i8..12, any::<bool>()).prop_map(|(a, b, r)| Op::Range(a, b, r)),
        2 => (0u8..24, any::<bool>()).prop_map(|(m, r)| Op::Rank(m, r)),
        2 => (-10i8..10, -10i8..10, any::<bool>(), any::<bool>()).prop_map(|(a, b, x, y)| Op::ByScore(a, b, x, y)),
    ]
}

/// The model: member → score, viewed in (score, member) order.
#[derive(Default)]
struct Model(BTreeMap<String, f64>);

impl Model {
    fn sorted(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self.0.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// Redis's clamping of a rank range; None when empty.
    fn clamp(&self, start: i64, stop: i64) -> Option<(usize, usize)> {
        let len = self.0.len() as i64;
        let start = if start < 0 { (len + start).max(0) } else { start };
        let stop = if stop < 0 { len + stop } else { stop };
        if start > stop || start >= len {
            return None;
        }
        Some((start as usize, stop.min(len - 1) as usize))
    }
}

fn member(m: u8) -> String {
    format!("m{m:02}")
}

/// Half-integer scores: ties are common, and every value prints exactly.
fn score(s: i8) -> f64 {
    f64::from(s) / 2.0
}

fn with_scores(entries: &[(String, f64)]) -> Frame {
    arr(entries.iter().flat_map(|(m, s)| [bulk(m), bulk(&fmt_double(*s))]).collect())
}

fn members(entries: &[(String, f64)]) -> Frame {
    arr(entries.iter().map(|(m, _)| bulk(m)).collect())
}

fn bound(v: i8, exclusive: bool) -> String {
    let s = fmt_double(score(v));
    if exclusive {
        format!("({s}")
    } else {
        s
    }
}

/// Runs one operation on both sides and checks its reply.
fn step(h: &mut Harness, c: ferrokv_engine::ClientId, model: &mut Model, op: Op) -> Result<(), TestCaseError> {
    match op {
        Op::Add(m, s) => {
            let (m, s) = (member(m), score(s));
            let new = model.0.insert(m.clone(), s).is_none();
            prop_assert_eq!(h.cmd(c, &["zadd", "z", &fmt_double(s), &m]), int(new as i64));
        }
        Op::Rem(m) => {
            let m = member(m);
            let had = model.0.remove(&m).is_some();
            prop_assert_eq!(h.cmd(c, &["zrem", "z", &m]), int(had as i64));
        }
        Op::Incr(m, d) => {
            let m = member(m);
            let next = model.0.get(&m).copied().unwrap_or(0.0) + score(d);
            model.0.insert(m.clone(), next);
            prop_assert_eq!(h.cmd(c, &["zincrby", "z", &fmt_double(score(d)), &m]), bulk(&fmt_double(next)));
        }
        Op::RemRangeByRank(a, b) => {
            let sorted = model.sorted();
            let gone = model.clamp(a.into(), b.into()).map_or(0, |(s, e)| {
                sorted[s..=e].iter().for_each(|(m, _)| {
                    model.0.remove(m);
                });
                e - s + 1
            });
            let reply = h.cmd(c, &["zremrangebyrank", "z", &a.to_string(), &b.to_string()]);
            prop_assert_eq!(reply, int(gone as i64));
        }
        Op::Range(a, b, rev) => {
            let mut sorted = model.sorted();
            if rev {
                sorted.reverse();
            }
            let want = model.clamp(a.into(), b.into()).map_or(Vec::new(), |(s, e)| sorted[s..=e].to_vec());
            let (a, b) = (a.to_string(), b.to_string());
            let mut args = vec!["zrange", "z", &a, &b, "withscores"];
            if rev {
                args.push("rev");
            }
            prop_assert_eq!(h.cmd(c, &args), with_scores(&want));
        }
        Op::Rank(m, rev) => {
            let m = member(m);
            let sorted = model.sorted();
            let want = match sorted.iter().position(|e| e.0 == m) {
                Some(r) if rev => int((sorted.len() - 1 - r) as i64),
                Some(r) => int(r as i64),
                None => Frame::Null,
            };
            prop_assert_eq!(h.cmd(c, &[if rev { "zrevrank" } else { "zrank" }, "z", &m]), want);
        }
        Op::ByScore(a, b, ax, bx) => {
            let (lo, hi) = (score(a), score(b));
            let want: Vec<(String, f64)> = model
                .sorted()
                .into_iter()
                .filter(|(_, s)| if ax { *s > lo } else { *s >= lo })
                .filter(|(_, s)| if bx { *s < hi } else { *s <= hi })
                .collect();
            let (lo, hi) = (bound(a, ax), bound(b, bx));
            prop_assert_eq!(h.cmd(c, &["zrangebyscore", "z", &lo, &hi]), members(&want));
            prop_assert_eq!(h.cmd(c, &["zcount", "z", &lo, &hi]), int(want.len() as i64));
        }
    }
    prop_assert_eq!(h.cmd(c, &["zcard", "z"]), int(model.0.len() as i64));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn zset_matches_model(ops in prop::collection::vec(op(), 1..160)) {
        let mut h = Harness::new();
        let c = h.client();
        h.cmd(c, &["config", "set", "zset-max-listpack-entries", "8"]);
        let mut model = Model::default();
        for op in ops {
            step(&mut h, c, &mut model, op)?;
        }
        prop_assert_eq!(h.cmd(c, &["zrange", "z", "0", "-1", "withscores"]), with_scores(&model.sorted()));
        for (m, s) in &model.0 {
            prop_assert_eq!(h.cmd(c, &["zscore", "z", m]), bulk(&fmt_double(*s)));
        }
        if model.0.is_empty() {
            prop_assert_eq!(h.cmd(c, &["exists", "z"]), int(0));
        }
    }
}

/// The write feed as text (upper-cased: commands go out as the client spelled them),
/// after the commands run since the last call.
fn feed(h: &mut Harness) -> String {
    String::from_utf8(h.eng.feed.take().0).unwrap().to_ascii_uppercase()
}

#[test]
fn pops_reach_the_feed_as_redis_propagates_them() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let c = h.client();
    h.cmd(c, &["zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d"]);
    feed(&mut h);
    h.cmd(c, &["zmpop", "2", "nokey", "z", "max", "count", "2"]);
    let f = feed(&mut h);
    assert!(f.contains("ZPOPMAX\r\n$1\r\nZ\r\n$1\r\n2\r\n"), "{f:?}");
    assert!(!f.contains("ZMPOP"), "{f:?}");
    h.cmd(c, &["bzpopmin", "z", "0"]);
    let f = feed(&mut h);
    assert!(f.contains("*2\r\n$7\r\nZPOPMIN\r\n$1\r\nZ\r\n"), "{f:?}");
    h.cmd(c, &["bzmpop", "0", "1", "z", "min", "count", "10"]);
    let f = feed(&mut h);
    assert!(f.contains("ZPOPMIN\r\n$1\r\nZ\r\n$1\r\n1\r\n"), "{f:?}");
    // Nothing popped, nothing propagated.
    h.cmd(c, &["zpopmin", "z"]);
    h.cmd(c, &["zmpop", "1", "z", "min"]);
    assert_eq!(feed(&mut h), "");
    // ZINCRBY goes out as received.
    h.cmd(c, &["zincrby", "z", "0.1", "m"]);
    assert!(feed(&mut h).contains("ZINCRBY"));
}

#[test]
fn blocked_pop_is_served_by_a_later_zadd_and_propagated_as_zpopmin() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let waiter = h.client();
    let writer = h.client();
    assert!(h.raw(waiter, &["bzpopmin", "q", "0"]).is_empty(), "blocks without replying");
    h.cmd(writer, &["zadd", "q", "5", "x", "7", "y"]);
    let got = h.pending(waiter);
    assert_eq!(got, vec![arr(vec![bulk("q"), bulk("x"), bulk("5")])]);
    let f = feed(&mut h);
    let zadd = f.find("ZADD").expect("zadd propagated");
    let pop = f.find("ZPOPMIN").expect("pop propagated");
    assert!(zadd < pop, "the pop follows the write that served it: {f:?}");
    assert_eq!(h.cmd(writer, &["zrange", "q", "0", "-1"]), arr(vec![bulk("y")]));
}
