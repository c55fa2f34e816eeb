//! Tests: an invariant checker, targeted cases (order, ±0, infinities, range cuts at node
//! boundaries, memory per entry) and a property test against a `BTreeSet` model.

use super::node::{cmp_entry, cmp_key, Child, Edge, Entry, Node, INNER_CAP, LEAF_CAP};
use super::*;
use proptest::prelude::*;
use proptest::sample::Index;
use std::cmp::Ordering;
use std::collections::BTreeSet;

/// A model score: `<` semantics (so `-0.0 == 0.0`), made total because tests never use NaN.
#[derive(Clone, Copy, Debug)]
struct Score(f64);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.partial_cmp(&other.0).expect("no NaN in tests")
    }
}

type Model = BTreeSet<(Score, Vec<u8>)>;

fn sb(s: &[u8]) -> SmallBytes {
    SmallBytes::from(s)
}

impl ScoreTree {
    /// Panics unless every invariant holds: order, counts, exact max copies, all leaves
    /// at one depth, no empty node but the root, no root with one child, capacities,
    /// the member heap total, and no node under half full off the two edge paths.
    fn check(&self) {
        let mut walk = Walk { leaf_depth: None, prev: None, heap: 0 };
        let edge = Edge { first: true, last: true };
        assert_eq!(walk.node(&self.root, 0, edge, true), self.len);
        assert_eq!(walk.heap, self.member_heap, "member heap total");
        if let Node::Inner(children) = &self.root {
            assert!(children.len() >= 2, "root with a single child");
        }
    }

    fn to_vec(&self) -> Vec<(u64, Vec<u8>)> {
        self.iter().map(|(s, m)| (s.to_bits(), m.to_vec())).collect()
    }
}

struct Walk<'a> {
    leaf_depth: Option<usize>,
    prev: Option<&'a Entry>,
    heap: usize,
}

impl<'a> Walk<'a> {
    fn node(&mut self, node: &'a Node, depth: usize, edge: Edge, root: bool) -> usize {
        assert!(node.len() <= node.cap(), "overfull node");
        if !root {
            assert!(node.len() > 0, "empty node");
            if !edge.first && !edge.last {
                assert!(!node.is_underfull(), "underfull inner node at depth {depth}");
            }
        }
        match node {
            Node::Leaf(leaf) => {
                assert!(leaf.capacity() <= LEAF_CAP, "leaf over-allocated");
                assert_eq!(*self.leaf_depth.get_or_insert(depth), depth, "leaf depth");
                for e in leaf {
                    if let Some(p) = self.prev {
                        assert_eq!(cmp_entry(p, e), Ordering::Less, "order");
                    }
                    self.prev = Some(e);
                    self.heap += e.1.heap_size();
                }
                leaf.len()
            }
            Node::Inner(children) => {
                assert!(children.capacity() <= INNER_CAP, "inner over-allocated");
                let last = children.len() - 1;
                let mut total = 0;
                for (i, c) in children.iter().enumerate() {
                    let e = Edge { first: edge.first && i == 0, last: edge.last && i == last };
                    let n = self.node(&c.node, depth + 1, e, false);
                    assert_eq!(n, c.count, "count");
                    let max = c.node.max();
                    assert_eq!(max.0.to_bits(), c.max.0.to_bits(), "max score");
                    assert_eq!(max.1, c.max.1, "max member");
                    total += n;
                }
                total
            }
        }
    }
}

fn height(tree: &ScoreTree) -> usize {
    let mut h = 1;
    let mut node = &tree.root;
    while let Node::Inner(children) = node {
        node = &children[0].node;
        h += 1;
    }
    h
}

fn model_vec(model: &Model) -> Vec<(u64, Vec<u8>)> {
    model.iter().map(|(s, m)| (s.0.to_bits(), m.clone())).collect()
}

fn assert_same(tree: &ScoreTree, model: &Model) {
    tree.check();
    assert_eq!(tree.len(), model.len());
    assert_eq!(tree.to_vec(), model_vec(model));
}

/// A tree of `n` entries in random order with 12-byte members, plus its model.
fn random_tree(n: usize, seed: u64) -> (ScoreTree, Model) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tree = ScoreTree::new();
    let mut model = Model::new();
    while tree.len() < n {
        let score = f64::from(rng.i32(-1000..1000)) / 4.0;
        let member = format!("member:{:05}", rng.u32(0..100_000)).into_bytes();
        if model.insert((Score(score), member.clone())) {
            tree.insert(score, SmallBytes::from(member));
        }
    }
    (tree, model)
}

#[test]
fn node_sizes() {
    assert_eq!(mem::size_of::<Entry>(), 32);
    assert_eq!(mem::size_of::<Child>(), 72, "the INNER_CAP doc quotes this");
}

#[test]
fn empty_tree() {
    let mut t = ScoreTree::default();
    assert!(t.is_empty());
    assert_eq!(t.len(), 0);
    assert_eq!(t.get(0), None);
    assert_eq!(t.rank(1.0, b"a"), None);
    assert_eq!(t.partition_point(|_, _| true), 0);
    assert_eq!(t.iter_from(0).count(), 0);
    assert_eq!(t.iter_rev_from(5).count(), 0);
    assert_eq!(t.remove(1.0, b"a"), None);
    assert!(t.remove_range(0, 10).is_empty());
    assert_eq!(t.memory(), mem::size_of::<ScoreTree>());
    t.check();
}

#[test]
fn equal_scores_order_by_member() {
    let mut t = ScoreTree::new();
    for m in ["b", "a", "", "ab", "\u{ff}", "B"] {
        t.insert(1.0, sb(m.as_bytes()));
    }
    t.insert(0.5, sb(b"z"));
    t.insert(2.0, sb(b"a"));
    let order: Vec<&[u8]> = t.iter().map(|(_, m)| &m[..]).collect();
    let want: [&[u8]; 8] = [b"z", b"", b"B", b"a", b"ab", b"b", "\u{ff}".as_bytes(), b"a"];
    assert_eq!(order, want);
    assert_eq!(t.rank(1.0, b"ab"), Some(4));
    assert_eq!(t.rank(1.0, b"c"), None);
    assert_eq!(t.rank(2.0, b"a"), Some(7));
    // A lex bound within the equal scores.
    assert_eq!(t.partition_point(|s, m| s < 1.0 || (s == 1.0 && m < &b"ab"[..])), 4);
    assert_eq!(t.remove(1.0, b"ab").as_deref(), Some(&b"ab"[..]));
    assert_eq!(t.remove(1.0, b"ab"), None);
    t.check();
}

#[test]
fn negative_zero_equals_zero() {
    let mut t = ScoreTree::new();
    t.insert(-0.0, sb(b"b"));
    t.insert(0.0, sb(b"a"));
    t.insert(0.0, sb(b"c"));
    t.insert(-1.0, sb(b"z"));
    let order: Vec<&[u8]> = t.iter().map(|(_, m)| &m[..]).collect();
    assert_eq!(order, [&b"z"[..], b"a", b"b", b"c"]);
    assert_eq!(t.rank(0.0, b"b"), Some(2));
    assert_eq!(t.rank(-0.0, b"a"), Some(1));
    assert_eq!(t.partition_point(|s, _| s < 0.0), 1);
    assert_eq!(t.partition_point(|s, _| s <= -0.0), 4);
    // The stored sign is kept.
    assert!(t.get(2).expect("rank 2").0.is_sign_negative());
    assert_eq!(t.remove(0.0, b"b").as_deref(), Some(&b"b"[..]));
    assert_eq!(t.rank(0.0, b"c"), Some(2));
}

#[test]
fn infinities_sort_at_the_ends() {
    let mut t = ScoreTree::new();
    for (s, m) in [
        (f64::INFINITY, "inf"),
        (f64::MAX, "max"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::MIN, "min"),
        (0.0, "zero"),
        (f64::INFINITY, "inf2"),
    ] {
        t.insert(s, sb(m.as_bytes()));
    }
    let order: Vec<&[u8]> = t.iter().map(|(_, m)| &m[..]).collect();
    assert_eq!(order, [&b"-inf"[..], b"min", b"zero", b"max", b"inf", b"inf2"]);
    assert_eq!(t.rank(f64::NEG_INFINITY, b"-inf"), Some(0));
    assert_eq!(t.rank(f64::INFINITY, b"inf2"), Some(5));
    assert_eq!(t.partition_point(|s, _| s < f64::INFINITY), 4);
    assert_eq!(t.partition_point(|s, _| s <= f64::NEG_INFINITY), 1);
    assert_eq!(t.partition_point(|s, _| s <= f64::INFINITY), 6);
}

#[test]
fn nan_queries_find_nothing() {
    let mut t = ScoreTree::new();
    t.insert(1.0, sb(b"a"));
    assert_eq!(t.rank(f64::NAN, b"a"), None);
    assert_eq!(t.remove(f64::NAN, b"a"), None);
    assert_eq!(t.len(), 1);
}

#[test]
fn rank_and_get_round_trip() {
    let (t, model) = random_tree(20_000, 1);
    assert_same(&t, &model);
    assert!(height(&t) >= 3);
    for (i, (s, m)) in model.iter().enumerate() {
        assert_eq!(t.rank(s.0, m), Some(i));
        let (gs, gm) = t.get(i).expect("in range");
        assert_eq!((gs, &gm[..]), (s.0, &m[..]));
        assert_eq!(t.partition_point(|x, y| cmp_key(x, y, s.0, m).is_lt()), i);
    }
    assert_eq!(t.get(model.len()), None);
    assert_eq!(t.rank(0.25, b"absent"), None);
}

#[test]
fn iterators_start_where_asked() {
    let (t, model) = random_tree(5_000, 2);
    let all = model_vec(&model);
    let n = all.len();
    for start in [0, 1, 63, 64, 65, 2047, 2048, n / 2, n - 1] {
        let fwd: Vec<_> = t.iter_from(start).map(|(s, m)| (s.to_bits(), m.to_vec())).collect();
        assert_eq!(fwd, all[start..]);
        let rev: Vec<_> = t.iter_rev_from(start).map(|(s, m)| (s.to_bits(), m.to_vec())).collect();
        let want: Vec<_> = all[..=start].iter().rev().cloned().collect();
        assert_eq!(rev, want);
    }
    assert_eq!(t.iter_from(n).count(), 0);
    assert_eq!(t.iter_rev_from(n).count(), n);
    assert_eq!(t.iter_rev_from(usize::MAX).next().map(|e| e.1.to_vec()), all.last().map(|e| e.1.clone()));
    assert_eq!(t.iter_from(10).len(), n - 10);
}

#[test]
fn remove_range_edges() {
    let build = || {
        let mut t = ScoreTree::new();
        for i in 0..3000u32 {
            t.insert(f64::from(i), sb(format!("m{i}").as_bytes()));
        }
        t
    };
    let mut t = build();
    assert!(t.remove_range(5, 4).is_empty());
    assert!(t.remove_range(3000, 3000).is_empty());
    assert!(t.remove_range(3000, usize::MAX).is_empty());
    assert_eq!(t.len(), 3000);
    // One entry, at each end and in the middle.
    assert_eq!(t.remove_range(0, 0)[0].0, 0.0);
    assert_eq!(t.remove_range(2998, 2998)[0].0, 2999.0);
    assert_eq!(t.remove_range(1000, 1000)[0].0, 1001.0);
    t.check();
    assert_eq!(t.len(), 2997);
    // End clamped to the last rank.
    let tail = t.remove_range(2000, usize::MAX);
    assert_eq!(tail.len(), 997);
    assert_eq!(tail[0].0, 2002.0);
    assert_eq!(tail.last().map(|e| e.0), Some(2998.0));
    t.check();
    // Everything.
    let all = t.remove_range(0, 1999);
    assert_eq!(all.len(), 2000);
    assert!(t.is_empty());
    t.check();
    // Everything but one entry at either end.
    let mut t = build();
    t.remove_range(1, 2999);
    t.check();
    assert_eq!(t.to_vec(), vec![(0f64.to_bits(), b"m0".to_vec())]);
    let mut t = build();
    t.remove_range(0, 2998);
    t.check();
    assert_eq!(t.get(0).map(|e| e.0), Some(2999.0));
    // The tree keeps working afterwards.
    t.insert(5.0, sb(b"x"));
    assert_eq!(t.rank(2999.0, b"m2999"), Some(1));
}

#[test]
fn sequential_inserts_fill_leaves() {
    for descending in [false, true] {
        let mut t = ScoreTree::new();
        for i in 0..10_000i32 {
            let s = if descending { -i } else { i };
            t.insert(f64::from(s), sb(b"member:00001"));
        }
        t.check();
        let per_entry = t.memory() as f64 / t.len() as f64;
        assert!(per_entry < 36.0, "descending={descending}: {per_entry} bytes/entry");
    }
}

#[test]
fn long_members_are_counted() {
    let mut t = ScoreTree::new();
    let long = vec![b'x'; 100];
    t.insert(1.0, SmallBytes::from(&long[..]));
    assert!(t.memory() >= mem::size_of::<ScoreTree>() + 100 + mem::size_of::<Entry>());
    t.remove(1.0, &long);
    t.check();
}

/// Reports memory per entry for 100k entries with 12-byte members (run with
/// `--nocapture` to see it).
#[test]
fn memory_per_entry() {
    let (random, _) = random_tree(100_000, 3);
    let mut sequential = ScoreTree::new();
    for i in 0..100_000u32 {
        sequential.insert(f64::from(i), sb(format!("member:{i:05}").as_bytes()));
    }
    for (name, t) in [("random", &random), ("sequential", &sequential)] {
        let per_entry = t.memory() as f64 / t.len() as f64;
        eprintln!("{name} inserts: {per_entry:.1} bytes per entry, height {}", height(t));
        assert!(per_entry < 48.0, "{name}: {per_entry}");
    }
}

#[test]
fn large_tree_ranks_and_range_removal() {
    let (mut t, mut model) = random_tree(150_000, 4);
    t.check();
    for (i, (s, m)) in model.iter().enumerate().step_by(7) {
        assert_eq!(t.rank(s.0, m), Some(i));
    }
    // A large range from the middle, then from each end.
    for (start, end) in [(20_000, 119_999), (0, 9_999), (30_000, 49_999)] {
        let removed = t.remove_range(start, end);
        let want: Vec<_> = model.iter().skip(start).take(end - start + 1).cloned().collect();
        assert_eq!(removed.len(), want.len());
        for (got, want) in removed.iter().zip(&want) {
            assert_eq!((got.0.to_bits(), &got.1[..]), (want.0 .0.to_bits(), &want.1[..]));
        }
        for w in &want {
            model.remove(w);
        }
        assert_same(&t, &model);
        for (i, (s, m)) in model.iter().enumerate().step_by(3) {
            assert_eq!(t.rank(s.0, m), Some(i));
        }
    }
}

#[test]
fn removing_a_million_by_rank_is_fast() {
    let mut t = ScoreTree::new();
    for i in 0..1_000_000u32 {
        t.insert(f64::from(i), sb(b"m"));
    }
    let started = std::time::Instant::now();
    let removed = t.remove_range(1, 999_998);
    eprintln!("remove_range of 999,998 entries: {:?}", started.elapsed());
    assert_eq!(removed.len(), 999_998);
    t.check();
    assert_eq!(t.to_vec(), vec![(0f64.to_bits(), b"m".to_vec()), (999_999f64.to_bits(), b"m".to_vec())]);
}

/// Cuts that start and end near leaf and inner-node boundaries of a full three-level
/// tree (64-entry leaves, 64 leaves per inner node). Some leave an inner node with a
/// single tiny leaf, which must be merged into a sibling before its leaf is repaired.
#[test]
fn range_cuts_at_node_boundaries() {
    const NODE: usize = LEAF_CAP * INNER_CAP;
    let starts = [0, 63, 65, NODE - 3, NODE + 10, NODE + 5 * LEAF_CAP + 3, 2 * NODE - 1];
    let ends = [NODE + 100, 2 * NODE - 1, 2 * NODE + 10, 2 * NODE + 2000, 3 * NODE - 5];
    for start in starts {
        for end in ends.into_iter().filter(|&end| end >= start) {
            let mut t = ScoreTree::new();
            let mut model: Vec<f64> = (0..3 * NODE as u32).map(f64::from).collect();
            for &s in &model {
                t.insert(s, sb(b"m"));
            }
            assert_eq!(height(&t), 3);
            let removed: Vec<f64> = t.remove_range(start, end).into_iter().map(|e| e.0).collect();
            assert_eq!(removed, model.drain(start..=end).collect::<Vec<_>>());
            t.check();
            assert_eq!(t.iter().map(|e| e.0).collect::<Vec<_>>(), model);
        }
    }
}

/// Many short range cuts on a three-level tree whose inner nodes are often just over
/// half full: merging leaves along the cut can then push their parent under half
/// full, which only a repair after coming back up catches.
#[test]
fn short_range_cuts_keep_nodes_half_full() {
    let (mut t, mut model) = random_tree(20_000, 6);
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..400 {
        let start = rng.usize(0..t.len());
        let end = start + rng.usize(0..300);
        remove_range_both(&mut t, &mut model, start, end);
        t.check();
        while t.len() < 20_000 {
            let score = f64::from(rng.i32(-1000..1000)) / 4.0;
            let member = format!("member:{:05}", rng.u32(0..100_000)).into_bytes();
            insert_both(&mut t, &mut model, score, member);
        }
    }
    assert_same(&t, &model);
}

/// Range and single removals and inserts on a four-level tree, against a sorted Vec.
#[test]
fn deep_tree_mixed_removals() {
    let mut rng = fastrand::Rng::with_seed(5);
    let mut t = ScoreTree::new();
    let mut model: Vec<f64> = Vec::new();
    for i in 0..600_000u32 {
        t.insert(f64::from(i), sb(b"m"));
        model.push(f64::from(i));
    }
    assert_eq!(height(&t), 4);
    for round in 0..40 {
        let span = [1, 2, 70, 5_000, 70_000][round % 5];
        let start = rng.usize(0..model.len());
        let end = start + rng.usize(0..span);
        let removed: Vec<f64> = t.remove_range(start, end).into_iter().map(|e| e.0).collect();
        let want: Vec<f64> = model.drain(start..(end + 1).min(model.len())).collect();
        assert_eq!(removed, want);
        for _ in 0..200 {
            let i = rng.usize(0..model.len());
            let s = model.remove(i);
            assert!(t.remove(s, b"m").is_some());
            let s = f64::from(rng.u32(0..1_200_000)) + 0.5;
            if let Err(i) = model.binary_search_by(|x| x.total_cmp(&s)) {
                model.insert(i, s);
                t.insert(s, sb(b"m"));
            }
        }
        t.check();
        assert_eq!(t.len(), model.len());
        for _ in 0..100 {
            let i = rng.usize(0..model.len());
            assert_eq!(t.get(i).map(|e| e.0), Some(model[i]));
            assert_eq!(t.rank(model[i], b"m"), Some(i));
        }
    }
    let all: Vec<f64> = t.iter().map(|e| e.0).collect();
    assert_eq!(all, model);
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => (-3i32..3).prop_map(f64::from),
        1 => Just(-0.0),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => any::<f64>().prop_filter("not NaN", |s| !s.is_nan()),
    ]
}

fn member() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(b'a'..=b'c', 0..4),
        1 => prop::collection::vec(any::<u8>(), 20..40),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Insert(f64, Vec<u8>),
    /// `n` random entries from `seed`: grows a tree of several levels quickly.
    InsertMany(u64, usize),
    /// `n` entries past the last one (the append split).
    Append(usize),
    /// `n` entries before the first one (the prepend split).
    Prepend(usize),
    Remove(f64, Vec<u8>),
    RemovePresent(Index),
    /// `n` random present entries, one by one: exercises merging and evening out.
    RemoveMany(u64, usize),
    Rank(f64, Vec<u8>),
    RankPresent(Index),
    Get(Index),
    ScoreBound(f64, bool),
    KeyBound(f64, Vec<u8>),
    IterFrom(Index, usize),
    IterRevFrom(Index, usize),
    RemoveRange(Index, Index),
    RemoveRangeRaw(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (score(), member()).prop_map(|(s, m)| Op::Insert(s, m)),
        2 => (any::<u64>(), 0..4000usize).prop_map(|(seed, n)| Op::InsertMany(seed, n)),
        1 => (0..1500usize).prop_map(Op::Append),
        1 => (0..1500usize).prop_map(Op::Prepend),
        2 => (score(), member()).prop_map(|(s, m)| Op::Remove(s, m)),
        2 => any::<Index>().prop_map(Op::RemovePresent),
        2 => (any::<u64>(), 0..2000usize).prop_map(|(seed, n)| Op::RemoveMany(seed, n)),
        1 => (score(), member()).prop_map(|(s, m)| Op::Rank(s, m)),
        2 => any::<Index>().prop_map(Op::RankPresent),
        2 => any::<Index>().prop_map(Op::Get),
        2 => (score(), any::<bool>()).prop_map(|(s, inclusive)| Op::ScoreBound(s, inclusive)),
        2 => (score(), member()).prop_map(|(s, m)| Op::KeyBound(s, m)),
        2 => (any::<Index>(), 0..200usize).prop_map(|(i, n)| Op::IterFrom(i, n)),
        2 => (any::<Index>(), 0..200usize).prop_map(|(i, n)| Op::IterRevFrom(i, n)),
        3 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Op::RemoveRange(a, b)),
        1 => (0..5000usize, 0..5000usize).prop_map(|(a, b)| Op::RemoveRangeRaw(a, b)),
    ]
}

fn insert_both(tree: &mut ScoreTree, model: &mut Model, score: f64, member: Vec<u8>) {
    if model.insert((Score(score), member.clone())) {
        tree.insert(score, SmallBytes::from(member));
    }
}

/// Runs `op` on both and compares what they return (the caller compares contents).
fn apply(tree: &mut ScoreTree, model: &mut Model, op: Op) {
    let n = model.len();
    let pick = |i: &Index| model.iter().nth(i.index(n)).cloned();
    match op {
        Op::Insert(s, m) => insert_both(tree, model, s, m),
        Op::InsertMany(seed, count) => {
            let mut rng = fastrand::Rng::with_seed(seed);
            for _ in 0..count {
                let score = f64::from(rng.i32(-40..40)) / 2.0;
                let len = rng.usize(1..8);
                let member = (0..len).map(|_| rng.u8(b'a'..=b'z')).collect();
                insert_both(tree, model, score, member);
            }
        }
        Op::Append(count) => {
            let (score, base) = model.last().map_or((0.0, Vec::new()), |(s, m)| (s.0, m.clone()));
            for k in 0..count {
                let mut member = base.clone();
                member.extend_from_slice(format!("{k:06}").as_bytes());
                insert_both(tree, model, score, member);
            }
        }
        Op::Prepend(count) => {
            for _ in 0..count {
                let min = model.first().map_or(0.0, |(s, _)| s.0);
                let below = [min - 1.0, min * 2.0, f64::MAX, -f64::MAX, f64::NEG_INFINITY];
                let Some(score) = below.into_iter().find(|&s| s < min) else {
                    break;
                };
                insert_both(tree, model, score, b"p".to_vec());
            }
        }
        Op::Remove(s, m) => {
            let want = model.remove(&(Score(s), m.clone()));
            assert_eq!(tree.remove(s, &m).is_some(), want);
        }
        Op::RemovePresent(i) if n > 0 => {
            let (s, m) = pick(&i).expect("present");
            model.remove(&(s, m.clone()));
            assert_eq!(tree.remove(s.0, &m).as_deref(), Some(&m[..]));
        }
        Op::RemoveMany(seed, count) => {
            let mut rng = fastrand::Rng::with_seed(seed);
            for _ in 0..count.min(model.len()) {
                let (s, m) = model.iter().nth(rng.usize(0..model.len())).cloned().expect("present");
                model.remove(&(s, m.clone()));
                assert_eq!(tree.remove(s.0, &m).as_deref(), Some(&m[..]));
            }
        }
        Op::Rank(s, m) => {
            let want = model.contains(&(Score(s), m.clone())).then(|| model.range(..(Score(s), m.clone())).count());
            assert_eq!(tree.rank(s, &m), want);
        }
        Op::RankPresent(i) if n > 0 => {
            let i = i.index(n);
            let (s, m) = model.iter().nth(i).expect("present");
            assert_eq!(tree.rank(s.0, m), Some(i));
        }
        Op::Get(i) => {
            let i = i.index(n + 2);
            let want = model.iter().nth(i).map(|(s, m)| (s.0.to_bits(), m.clone()));
            assert_eq!(tree.get(i).map(|(s, m)| (s.to_bits(), m.to_vec())), want);
        }
        Op::ScoreBound(x, inclusive) => {
            let pred = |s: f64| if inclusive { s <= x } else { s < x };
            let want = model.iter().take_while(|(s, _)| pred(s.0)).count();
            assert_eq!(tree.partition_point(|s, _| pred(s)), want);
        }
        Op::KeyBound(x, bound) => {
            let want = model.range(..(Score(x), bound.clone())).count();
            assert_eq!(tree.partition_point(|s, m| cmp_key(s, m, x, &bound).is_lt()), want);
        }
        Op::IterFrom(i, take) => {
            let i = i.index(n + 2);
            let got: Vec<_> = tree.iter_from(i).take(take).map(|(s, m)| (s.to_bits(), m.to_vec())).collect();
            let want: Vec<_> = model.iter().skip(i).take(take).map(|(s, m)| (s.0.to_bits(), m.clone())).collect();
            assert_eq!(got, want);
        }
        Op::IterRevFrom(i, take) => {
            let i = i.index(n + 2);
            let got: Vec<_> = tree.iter_rev_from(i).take(take).map(|(s, m)| (s.to_bits(), m.to_vec())).collect();
            let skip = n.saturating_sub(i + 1);
            let want: Vec<_> =
                model.iter().rev().skip(skip).take(take).map(|(s, m)| (s.0.to_bits(), m.clone())).collect();
            assert_eq!(got, want);
        }
        Op::RemoveRange(a, b) => {
            let (a, b) = (a.index(n + 1), b.index(n + 1));
            remove_range_both(tree, model, a.min(b), a.max(b));
        }
        Op::RemoveRangeRaw(a, b) => remove_range_both(tree, model, a, b),
        Op::RemovePresent(_) | Op::RankPresent(_) => {}
    }
}

fn remove_range_both(tree: &mut ScoreTree, model: &mut Model, start: usize, end: usize) {
    let got: Vec<_> = tree.remove_range(start, end).into_iter().map(|(s, m)| (s.to_bits(), m.to_vec())).collect();
    let want: Vec<_> =
        if start > end { Vec::new() } else { model.iter().skip(start).take(end - start + 1).cloned().collect() };
    for w in &want {
        model.remove(w);
    }
    let want: Vec<_> = want.into_iter().map(|(s, m)| (s.0.to_bits(), m)).collect();
    assert_eq!(got, want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn behaves_like_an_ordered_set(ops in prop::collection::vec(op(), 1..40)) {
        let mut tree = ScoreTree::new();
        let mut model = Model::new();
        for op in ops {
            apply(&mut tree, &mut model, op);
            assert_same(&tree, &model);
        }
    }

    /// With equal scores (here `0.0` and `-0.0`, which are equal), a pure member bound
    /// is monotone, as ZRANGEBYLEX relies on.
    #[test]
    fn lex_bounds_on_equal_scores(
        entries in prop::collection::vec((any::<bool>(), prop::collection::vec(b'a'..=b'd', 0..5)), 0..3000),
        bounds in prop::collection::vec((prop::collection::vec(b'a'..=b'd', 0..5), any::<bool>()), 1..20),
    ) {
        let mut tree = ScoreTree::new();
        let mut model = Model::new();
        for (negative, member) in entries {
            insert_both(&mut tree, &mut model, if negative { -0.0 } else { 0.0 }, member);
        }
        assert_same(&tree, &model);
        for (bound, inclusive) in bounds {
            let pred = |m: &[u8]| if inclusive { m <= &bound[..] } else { m < &bound[..] };
            let want = model.iter().take_while(|(_, m)| pred(m)).count();
            let got = tree.partition_point(|_, m| pred(m));
            prop_assert_eq!(got, want);
            let next = tree.get(got).map(|(_, m)| m.to_vec());
            prop_assert_eq!(next, model.iter().nth(want).map(|(_, m)| m.clone()));
        }
    }
}
