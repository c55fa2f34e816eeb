//! List commands against a model: random sequences of LPUSH/RPUSH/LPOP/RPOP (with and
//! without a count), LINSERT, LREM, LTRIM, LSET, LRANGE, LINDEX and LLEN run on the engine
//! and on a `VecDeque<Vec<u8>>`, and every reply and the final contents must agree. An
//! empty model stands for a missing key: the engine must delete emptied lists.
//!
//! Also here, deterministic engine-level checks of what the harness can see and the
//! socket tests cannot: what list commands put in the write feed (blocking commands
//! propagated as their non-blocking twins, no-op trims not propagated) and blocking with
//! time moved by hand.

mod common;
use common::*;
use ferrokv_resp::Frame;
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Clone, Debug)]
enum Op {
    Push { left: bool, items: Vec<Vec<u8>> },
    Pop { left: bool, count: Option<i64> },
    Insert { after: bool, pivot: Vec<u8>, item: Vec<u8> },
    Rem { count: i64, item: Vec<u8> },
    Trim { start: i64, end: i64 },
    Set { index: i64, item: Vec<u8> },
    Range { start: i64, end: i64 },
    Index { index: i64 },
    Len,
}

/// A small alphabet so that pivots and LREM targets often match; "" and integers check
/// that no element is special.
fn elem() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec!["a", "b", "c", "", "17", "-3"]).prop_map(|s| s.as_bytes().to_vec())
}

/// Mostly indexes near the list's size, sometimes the extremes.
fn index() -> impl Strategy<Value = i64> {
    prop_oneof![8 => -12i64..12, 1 => Just(i64::MIN), 1 => Just(i64::MAX)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), prop::collection::vec(elem(), 1..5)).prop_map(|(left, items)| Op::Push { left, items }),
        3 => (any::<bool>(), prop::option::of(0i64..6)).prop_map(|(left, count)| Op::Pop { left, count }),
        2 => (any::<bool>(), elem(), elem()).prop_map(|(after, pivot, item)| Op::Insert { after, pivot, item }),
        2 => (prop_oneof![-3i64..4, Just(i64::MIN)], elem()).prop_map(|(count, item)| Op::Rem { count, item }),
        1 => (index(), index()).prop_map(|(start, end)| Op::Trim { start, end }),
        2 => (index(), elem()).prop_map(|(index, item)| Op::Set { index, item }),
        2 => (index(), index()).prop_map(|(start, end)| Op::Range { start, end }),
        1 => index().prop_map(|index| Op::Index { index }),
        1 => Just(Op::Len),
    ]
}

fn b(v: &[u8]) -> Frame {
    Frame::Bulk(v.to_vec().into())
}

fn s(v: &[u8]) -> String {
    String::from_utf8(v.to_vec()).expect("alphabet is ASCII")
}

/// The model's index for a Redis index (negative counts from the tail), if in range.
fn model_index(len: usize, i: i64) -> Option<usize> {
    let len = len as i128;
    let i = i as i128;
    let i = if i < 0 { len + i } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

/// Whether position `i` lies in Redis's inclusive [start, end] range over `len` elements,
/// written as a membership test rather than Redis's clamping arithmetic.
fn in_range(i: usize, len: usize, start: i64, end: i64) -> bool {
    let norm = |x: i64| if x < 0 { len as i128 + x as i128 } else { x as i128 };
    let i = i as i128;
    i >= norm(start).max(0) && i <= norm(end)
}

/// Applies `op` to the model and returns the reply Redis gives, plus the command line.
fn apply(m: &mut VecDeque<Vec<u8>>, op: &Op) -> (Vec<String>, Frame) {
    match op {
        Op::Push { left, items } => {
            for it in items {
                if *left {
                    m.push_front(it.clone());
                } else {
                    m.push_back(it.clone());
                }
            }
            let mut cmd = vec![if *left { "lpush" } else { "rpush" }.to_string(), "k".into()];
            cmd.extend(items.iter().map(|i| s(i)));
            (cmd, int(m.len() as i64))
        }
        Op::Pop { left, count } => {
            let mut cmd = vec![if *left { "lpop" } else { "rpop" }.to_string(), "k".into()];
            let pop = |m: &mut VecDeque<Vec<u8>>| if *left { m.pop_front() } else { m.pop_back() };
            let reply = match count {
                None => pop(m).map_or(Frame::Null, |v| b(&v)),
                Some(n) => {
                    cmd.push(n.to_string());
                    if m.is_empty() {
                        Frame::Null
                    } else {
                        Frame::Array((0..*n).map_while(|_| pop(m)).map(|v| b(&v)).collect())
                    }
                }
            };
            (cmd, reply)
        }
        Op::Insert { after, pivot, item } => {
            let cmd =
                vec!["linsert".into(), "k".into(), if *after { "after" } else { "before" }.into(), s(pivot), s(item)];
            let reply = if m.is_empty() {
                int(0)
            } else {
                match m.iter().position(|x| x == pivot) {
                    None => int(-1),
                    Some(p) => {
                        m.insert(if *after { p + 1 } else { p }, item.clone());
                        int(m.len() as i64)
                    }
                }
            };
            (cmd, reply)
        }
        Op::Rem { count, item } => {
            let cmd = vec!["lrem".into(), "k".into(), count.to_string(), s(item)];
            // Remove one match at a time from the chosen end, the way the command is
            // described, rather than with the engine's single pass.
            let limit = if *count == 0 { usize::MAX } else { count.unsigned_abs().min(usize::MAX as u64) as usize };
            let mut removed = 0;
            while removed < limit {
                let at = if *count < 0 { m.iter().rposition(|x| x == item) } else { m.iter().position(|x| x == item) };
                let Some(at) = at else { break };
                m.remove(at);
                removed += 1;
            }
            (cmd, int(removed as i64))
        }
        Op::Trim { start, end } => {
            let len = m.len();
            let kept: VecDeque<Vec<u8>> =
                m.iter().enumerate().filter(|(i, _)| in_range(*i, len, *start, *end)).map(|(_, v)| v.clone()).collect();
            *m = kept;
            (vec!["ltrim".into(), "k".into(), start.to_string(), end.to_string()], simple("OK"))
        }
        Op::Set { index, item } => {
            let cmd = vec!["lset".into(), "k".into(), index.to_string(), s(item)];
            let reply = if m.is_empty() {
                err("ERR no such key")
            } else {
                match model_index(m.len(), *index) {
                    None => err("ERR index out of range"),
                    Some(i) => {
                        m[i] = item.clone();
                        simple("OK")
                    }
                }
            };
            (cmd, reply)
        }
        Op::Range { start, end } => {
            let len = m.len();
            let items = m.iter().enumerate().filter(|(i, _)| in_range(*i, len, *start, *end)).map(|(_, v)| b(v));
            (vec!["lrange".into(), "k".into(), start.to_string(), end.to_string()], Frame::Array(items.collect()))
        }
        Op::Index { index } => {
            let reply = model_index(m.len(), *index).map_or(Frame::Null, |i| b(&m[i]));
            (vec!["lindex".into(), "k".into(), index.to_string()], reply)
        }
        Op::Len => (vec!["llen".into(), "k".into()], int(m.len() as i64)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn list_commands_match_a_deque(ops in prop::collection::vec(op(), 1..60)) {
        let mut h = Harness::new();
        let c = h.client();
        let mut model = VecDeque::new();
        for op in &ops {
            let (cmd, want) = apply(&mut model, op);
            let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
            prop_assert_eq!(h.cmd(c, &args), want, "{:?}", cmd);
            // Redis never keeps an empty list.
            prop_assert_eq!(h.cmd(c, &["exists", "k"]), int(!model.is_empty() as i64), "after {:?}", cmd);
        }
        let all = Frame::Array(model.iter().map(|v| b(v)).collect());
        prop_assert_eq!(h.cmd(c, &["lrange", "k", "0", "-1"]), all);
    }
}

#[test]
fn blocking_commands_that_find_data_propagate_as_their_non_blocking_twins() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let c = h.client();
    h.cmd(c, &["rpush", "k", "a", "b", "c", "d", "e"]);
    assert_eq!(h.cmd(c, &["blpop", "nokey", "k", "0"]), arr(vec![bulk("k"), bulk("a")]));
    assert_eq!(h.cmd(c, &["brpop", "k", "1.5"]), arr(vec![bulk("k"), bulk("e")]));
    assert_eq!(
        h.cmd(c, &["blmpop", "0", "1", "k", "left", "count", "2"]),
        arr(vec![bulk("k"), arr(vec![bulk("b"), bulk("c")])])
    );
    assert_eq!(h.cmd(c, &["blmove", "k", "dst", "Left", "RIGHT", "0"]), bulk("d"));
    h.cmd(c, &["rpush", "k", "x", "y", "z"]);
    assert_eq!(h.cmd(c, &["brpoplpush", "k", "dst", "0"]), bulk("z"));
    // LMPOP's count is propagated as what was actually popped.
    assert_eq!(
        h.cmd(c, &["lmpop", "2", "nokey", "k", "right", "count", "10"]),
        arr(vec![bulk("k"), arr(vec![bulk("y"), bulk("x")])])
    );
    assert_eq!(
        feed(&mut h),
        cmds(&[
            &["rpush", "k", "a", "b", "c", "d", "e"],
            &["LPOP", "k"],
            &["RPOP", "k"],
            &["LPOP", "k", "2"],
            &["LMOVE", "k", "dst", "Left", "RIGHT"],
            &["rpush", "k", "x", "y", "z"],
            &["RPOPLPUSH", "k", "dst"],
            &["RPOP", "k", "2"],
        ])
    );
}

#[test]
fn commands_that_change_nothing_are_not_propagated() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let c = h.client();
    h.cmd(c, &["rpush", "k", "a", "b"]);
    h.eng.feed.take();
    assert_eq!(h.cmd(c, &["ltrim", "k", "0", "-1"]), simple("OK"));
    assert_eq!(h.cmd(c, &["lrem", "k", "0", "zz"]), int(0));
    assert_eq!(h.cmd(c, &["linsert", "k", "before", "zz", "v"]), int(-1));
    assert_eq!(h.cmd(c, &["lpop", "k", "0"]), arr(vec![]));
    assert_eq!(h.cmd(c, &["rpushx", "nokey", "v"]), int(0));
    assert_eq!(h.cmd(c, &["lmove", "nokey", "k", "left", "left"]), Frame::Null);
    assert_eq!(h.cmd(c, &["lmpop", "1", "nokey", "left"]), Frame::Null);
    assert_eq!(feed(&mut h), Vec::<Vec<String>>::new());
    assert_eq!(h.cmd(c, &["ltrim", "k", "1", "-1"]), simple("OK"));
    assert_eq!(feed(&mut h), cmds(&[&["ltrim", "k", "1", "-1"]]));
}

#[test]
fn a_blocked_pop_is_served_by_a_push_and_propagated_after_it() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let (a, b) = (h.client(), h.client());
    assert_eq!(h.raw(a, &["blmpop", "0", "2", "k1", "k2", "right", "count", "5"]), b"");
    assert_eq!(h.cmd(b, &["rpush", "k2", "x", "y"]), int(2));
    assert_eq!(h.pending(a), vec![arr(vec![bulk("k2"), arr(vec![bulk("y"), bulk("x")])])]);
    assert_eq!(h.cmd(b, &["exists", "k2"]), int(0));
    assert_eq!(feed(&mut h), cmds(&[&["rpush", "k2", "x", "y"], &["RPOP", "k2", "2"]]));
}

#[test]
fn a_blocked_pop_times_out_with_its_null_reply() {
    let mut h = Harness::new();
    let (a, b) = (h.client(), h.client());
    assert_eq!(h.raw(a, &["blpop", "k", "0.25"]), b"");
    assert_eq!(h.raw(b, &["blmove", "k", "d", "left", "left", "0.0001"]), b"");
    // Redis rounds a timeout up to whole milliseconds: 0.0001 s waits 1 ms, not forever.
    assert_eq!(h.eng.block_deadline(b), Some(Some(h.now + 1)));
    h.now += 249;
    assert!(!h.eng.block_timeout(a, h.now));
    assert!(h.eng.block_timeout(b, h.now));
    // A timed-out BLMOVE answers the null *array*, as in Redis 7.0.
    assert_eq!(h.raw(b, &["ping"]), b"*-1\r\n+PONG\r\n");
    h.now += 1;
    assert!(h.eng.block_timeout(a, h.now));
    assert_eq!(h.raw(a, &["ping"]), b"*-1\r\n+PONG\r\n");
    // A negative fraction that rounds to zero waits forever, like Redis.
    assert_eq!(h.raw(a, &["blpop", "k", "-0.0001"]), b"");
    assert_eq!(h.eng.block_deadline(a), Some(None));
}

#[test]
fn a_served_blmove_wakes_the_clients_blocked_on_its_destination() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let (a, b, c) = (h.client(), h.client(), h.client());
    assert_eq!(h.raw(a, &["brpoplpush", "src", "mid", "0"]), b"");
    assert_eq!(h.raw(b, &["blpop", "mid", "0"]), b"");
    assert_eq!(h.cmd(c, &["lpush", "src", "v"]), int(1));
    assert_eq!(h.pending(a), vec![bulk("v")]);
    assert_eq!(h.pending(b), vec![arr(vec![bulk("mid"), bulk("v")])]);
    assert_eq!(feed(&mut h), cmds(&[&["lpush", "src", "v"], &["RPOPLPUSH", "src", "mid"], &["LPOP", "mid"]]));
}
