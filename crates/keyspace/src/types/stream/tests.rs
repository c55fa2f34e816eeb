use super::*;
use proptest::prelude::*;

type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

fn add(s: &mut Stream, id: StreamId, pairs: &Pairs, limits: NodeLimits) {
    let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(f, v)| (f.as_slice(), v.as_slice())).collect();
    s.append(id, &refs, limits);
}

fn read(e: EntryRef<'_>) -> (StreamId, Pairs) {
    (e.id, e.fields.map(|(f, v)| (f.to_vec(), v.to_vec())).collect())
}

fn pairs(spec: &[(&str, &str)]) -> Pairs {
    spec.iter().map(|(f, v)| (f.as_bytes().to_vec(), v.as_bytes().to_vec())).collect()
}

#[test]
fn append_range_and_delete() {
    let mut s = Stream::new();
    let lim = NodeLimits { max_bytes: 4096, max_entries: 3 };
    for i in 1..=10u64 {
        let p = if i % 4 == 0 { pairs(&[("other", "x"), ("b", "")]) } else { pairs(&[("a", &i.to_string())]) };
        add(&mut s, StreamId::new(i * 1000, i), &p, lim);
    }
    assert_eq!(s.len(), 10);
    assert_eq!(s.node_count(), 4);
    let all: Vec<_> = s.range(StreamId::MIN, StreamId::MAX).map(read).collect();
    assert_eq!(all.len(), 10);
    assert_eq!(all[3], (StreamId::new(4000, 4), pairs(&[("other", "x"), ("b", "")])));
    assert_eq!(all[4], (StreamId::new(5000, 5), pairs(&[("a", "5")])));
    let back: Vec<_> = s.rev_range(StreamId::new(2000, 0), StreamId::new(5000, 5)).map(|e| e.id.ms).collect();
    assert_eq!(back, vec![5000, 4000, 3000, 2000]);
    assert!(s.delete(StreamId::new(1000, 1)));
    assert!(!s.delete(StreamId::new(1000, 1)));
    assert_eq!(s.first_id, StreamId::new(2000, 2));
    assert_eq!(s.max_deleted_entry_id, StreamId::new(1000, 1));
    assert!(s.delete(StreamId::new(2000, 2)) && s.delete(StreamId::new(3000, 3)));
    assert_eq!(s.node_count(), 3, "an emptied node is dropped");
    assert_eq!(s.len(), 7);
    assert!(s.get(StreamId::new(4000, 4)).is_some());
    assert!(s.get(StreamId::new(4000, 5)).is_none());
}

#[test]
fn trimming_follows_redis() {
    let lim = NodeLimits { max_bytes: 0, max_entries: 10 };
    let mut s = Stream::new();
    for i in 1..=25u64 {
        add(&mut s, StreamId::new(i, 0), &pairs(&[("f", "v")]), lim);
    }
    // Approximate: only whole nodes go.
    assert_eq!(s.trim(TrimTo::MaxLen(12), true, 0), 10);
    assert_eq!(s.len(), 15);
    // LIMIT stops before a node that would exceed it.
    assert_eq!(s.trim(TrimTo::MaxLen(0), true, 5), 0);
    assert_eq!(s.trim(TrimTo::MaxLen(12), false, 0), 3);
    assert_eq!(s.first_id, StreamId::new(14, 0));
    assert_eq!(s.trim(TrimTo::MinId(StreamId::new(22, 0)), false, 0), 8);
    assert_eq!(s.first_id, StreamId::new(22, 0));
    assert_eq!(s.max_deleted_entry_id, StreamId::MIN, "trimming is not deleting");
    assert_eq!(s.trim(TrimTo::MaxLen(0), false, 0), 4);
    assert_eq!((s.len(), s.first_id, s.node_count()), (0, StreamId::MIN, 0));
}

#[test]
fn counters_for_lag() {
    let lim = NodeLimits::default();
    let mut s = Stream::new();
    assert_eq!(s.estimate_distance(StreamId::new(5, 0)), Some(0));
    for i in 1..=5u64 {
        add(&mut s, StreamId::new(i, 0), &pairs(&[("f", "v")]), lim);
    }
    assert_eq!(s.estimate_distance(StreamId::new(5, 0)), Some(5));
    assert_eq!(s.estimate_distance(StreamId::new(1, 0)), Some(1));
    assert_eq!(s.estimate_distance(StreamId::new(0, 5)), Some(0));
    assert_eq!(s.estimate_distance(StreamId::new(3, 0)), None);
    assert_eq!(s.estimate_distance(StreamId::new(6, 0)), None);
    s.delete(StreamId::new(3, 0));
    assert!(s.range_has_tombstones(Some(StreamId::new(2, 0)), None));
    assert!(!s.range_has_tombstones(Some(StreamId::new(4, 0)), None));
    let mut g = Group::new(StreamId::new(2, 0), 2);
    assert_eq!(s.group_lag(&g), None, "a tombstone ahead of the group");
    g.last_id = StreamId::new(4, 0);
    g.entries_read = 4;
    assert_eq!(s.group_lag(&g), Some(1));
}

#[test]
fn groups_keep_both_pels_in_step() {
    let mut g = Group::new(StreamId::MIN, 0);
    assert!(g.create_consumer(b"alice", 10));
    assert!(!g.create_consumer(b"alice", 11));
    g.create_consumer(b"bob", 12);
    g.assign(StreamId::new(1, 0), b"alice", 100, 1);
    g.assign(StreamId::new(2, 0), b"alice", 100, 1);
    g.assign(StreamId::new(1, 0), b"bob", 200, 2);
    assert_eq!(g.consumers[b"alice".as_slice()].pel.len(), 1);
    assert_eq!(g.consumers[b"bob".as_slice()].pel.len(), 1);
    assert_eq!(g.pel[&StreamId::new(1, 0)].delivery_count, 2);
    assert!(g.ack(StreamId::new(1, 0)) && !g.ack(StreamId::new(1, 0)));
    assert!(g.consumers[b"bob".as_slice()].pel.is_empty());
    assert_eq!(g.delete_consumer(b"alice"), Some(1));
    assert!(g.pel.is_empty());
    assert_eq!(g.delete_consumer(b"alice"), None);
}

#[derive(Clone, Debug)]
enum Op {
    Add { gap: u64, fields: u8 },
    Del(u16),
    TrimLen { max: u8, approx: bool, limit: u8 },
    TrimMin { at: u16, approx: bool },
    Read { a: u16, b: u16, rev: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..3, 0u8..4).prop_map(|(gap, fields)| Op::Add { gap, fields }),
        1 => any::<u16>().prop_map(Op::Del),
        1 => (0u8..30, any::<bool>(), 0u8..12).prop_map(|(max, approx, limit)| Op::TrimLen { max, approx, limit }),
        1 => (any::<u16>(), any::<bool>()).prop_map(|(at, approx)| Op::TrimMin { at, approx }),
        2 => (any::<u16>(), any::<u16>(), any::<bool>()).prop_map(|(a, b, rev)| Op::Read { a, b, rev }),
    ]
}

fn model_pairs(kind: u8, n: u64) -> Pairs {
    match kind {
        0 => pairs(&[("f", "v")]),
        1 => pairs(&[("f", &n.to_string())]),
        2 => pairs(&[("g", "x"), ("h", &"y".repeat(n as usize % 40))]),
        _ => vec![],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn behaves_like_an_ordered_map(
        ops in prop::collection::vec(op(), 1..80),
        max_entries in 0usize..6,
        max_bytes in prop_oneof![Just(0usize), Just(40), Just(4096)],
    ) {
        let lim = NodeLimits { max_bytes, max_entries };
        let mut s = Stream::new();
        let mut model: BTreeMap<StreamId, Pairs> = BTreeMap::new();
        let mut next = StreamId::new(1, 0);
        let pick = |model: &BTreeMap<StreamId, Pairs>, i: u16| -> StreamId {
            if model.is_empty() { StreamId::new(i as u64, 0) } else { *model.keys().nth(i as usize % model.len()).unwrap() }
        };
        for op in ops {
            match op {
                Op::Add { gap, fields } => {
                    let id = if gap == 0 { next } else { StreamId::new(next.ms + gap, 0) };
                    let p = model_pairs(fields, id.ms);
                    add(&mut s, id, &p, lim);
                    model.insert(id, p);
                    next = id.incr().unwrap();
                }
                Op::Del(i) => {
                    let id = pick(&model, i);
                    prop_assert_eq!(s.delete(id), model.remove(&id).is_some());
                }
                Op::TrimLen { max, approx, limit } => {
                    let limit = if approx { limit } else { 0 };
                    let removed = s.trim(TrimTo::MaxLen(max as u64), approx, limit as u64);
                    if !approx {
                        prop_assert_eq!(removed, (model.len() as u64).saturating_sub(max as u64));
                    } else {
                        prop_assert!(limit == 0 || removed <= limit as u64);
                    }
                    for _ in 0..removed { model.pop_first(); }
                }
                Op::TrimMin { at, approx } => {
                    let min = pick(&model, at);
                    let removed = s.trim(TrimTo::MinId(min), approx, 0);
                    let below = model.range(..min).count() as u64;
                    if approx { prop_assert!(removed <= below); } else { prop_assert_eq!(removed, below); }
                    for _ in 0..removed { model.pop_first(); }
                }
                Op::Read { a, b, rev } => {
                    let (lo, hi) = (pick(&model, a), pick(&model, b));
                    let got: Vec<_> = if rev { s.rev_range(lo, hi).map(read).collect() } else { s.range(lo, hi).map(read).collect() };
                    let mut want: Vec<_> = if lo <= hi { model.range(lo..=hi).map(|(k, v)| (*k, v.clone())).collect() } else { vec![] };
                    if rev { want.reverse(); }
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert_eq!(s.len(), model.len() as u64);
            prop_assert_eq!(s.first_id, model.keys().next().copied().unwrap_or(StreamId::MIN));
            let all: Vec<_> = s.range(StreamId::MIN, StreamId::MAX).map(|e| e.id).collect();
            prop_assert_eq!(all, model.keys().copied().collect::<Vec<_>>());
            // last() has a shortcut (the last node's last entry) and a walk when it is deleted.
            prop_assert_eq!(s.last().map(read), model.last_key_value().map(|(k, v)| (*k, v.clone())));
            if max_entries > 0 {
                prop_assert!(s.nodes.values().all(|n| n.total as usize <= max_entries && n.live > 0));
            }
        }
    }
}

#[test]
fn reads_start_inside_a_node_past_long_values() {
    // Multi-byte lengths and ID deltas, entries with and without the master's fields: a
    // read that starts mid-node skips them by their lengths.
    let mut s = Stream::new();
    let lim = NodeLimits { max_bytes: 0, max_entries: 50 };
    let long = "v".repeat(300);
    for i in 0..40u64 {
        let p = if i % 3 == 0 { pairs(&[("a", &long), ("b", "x")]) } else { pairs(&[("c", &long)]) };
        add(&mut s, StreamId::new(1000 + i * 200, i * 1000), &p, lim);
    }
    assert_eq!(s.node_count(), 1);
    for i in [1u64, 17, 39] {
        let id = StreamId::new(1000 + i * 200, i * 1000);
        let got: Vec<_> = s.range(id, StreamId::MAX).map(|e| e.id).collect();
        assert_eq!(got.len() as u64, 40 - i);
        assert_eq!(got[0], id);
        assert_eq!(s.get(id).map(|e| e.fields.count()), Some(if i % 3 == 0 { 2 } else { 1 }));
        // Between two entries: the next one.
        let after = s.range(StreamId::new(id.ms, id.seq + 1), StreamId::MAX).next().map(|e| e.id);
        assert_eq!(after, (i < 39).then(|| StreamId::new(1000 + (i + 1) * 200, (i + 1) * 1000)));
        assert!(s.get(StreamId::new(id.ms, id.seq + 1)).is_none());
    }
}
