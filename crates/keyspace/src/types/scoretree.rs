//! `ScoreTree`: the ordered index of a large sorted set, an order-statistic B+tree of
//! `(score, member)` entries.
//!
//! Redis keeps big sorted sets in a skiplist, one allocation per member with a backward
//! pointer and on average 1.33 levels of (forward pointer, span). Here entries sit up to
//! 64 to a leaf in plain sorted vectors, 32 bytes each with members of up to 23 bytes
//! inline, so the ordered half of a sorted set costs little more than the entries
//! themselves, and range replies walk contiguous memory.
//!
//! - Order: score ascending (`-0.0 == 0.0`, infinities allowed, never NaN), then member
//!   bytes ascending.
//! - An inner node keeps, per child, the number of entries below it (so rank and get are
//!   O(log n)) and a copy of the child's largest entry (for routing). That copy is always
//!   exact, not merely an upper bound, because `partition_point` runs the caller's
//!   predicate on it and a predicate is only meaningful on entries that exist: a lex bound
//!   is monotone only over the (equal-scored) entries actually in the set.
//! - Nodes stay at least half full: a removal that underfills a node merges it with a
//!   neighbour or evens the two out. A full leaf first hands entries to a neighbour with
//!   room before it splits, and inserting past the last entry (or before the first), as
//!   increasing timestamps do, starts a new leaf instead of halving the full one, so both
//!   random and sequential inserts leave leaves mostly full. Only nodes on the tree's
//!   leftmost and rightmost paths may be less than half full.
//! - `remove_range` cuts whole subtrees out, then repairs just the nodes along the cut.

use crate::smallbytes::SmallBytes;
use std::cmp::Ordering;
use std::mem;

type Entry = (f64, SmallBytes);

/// Entries per leaf at most: a 2 KiB leaf. Inserting shifts at most that much memory, and
/// the per-leaf cost in the parent (one `Child`) is spread over dozens of entries.
const LEAF_CAP: usize = 64;
/// Children per inner node at most. Inner nodes are a small fraction of the memory (one
/// 72-byte `Child` per leaf), so this is chosen for a shallow tree: three levels hold
/// 100k-250k entries, four levels many millions.
const INNER_CAP: usize = 64;
/// A full leaf hands entries to a neighbour only if the neighbour has at least this much
/// room, so that one spill buys several cheap inserts rather than one.
const SPILL_ROOM: usize = LEAF_CAP / 8;

/// Score then member order. Scores compare with `<` so that `-0.0 == 0.0`.
fn cmp_key(score: f64, member: &[u8], other_score: f64, other_member: &[u8]) -> Ordering {
    let by_score = if score < other_score {
        Ordering::Less
    } else if score > other_score {
        Ordering::Greater
    } else {
        Ordering::Equal
    };
    by_score.then_with(|| member.cmp(other_member))
}

fn cmp_entry(a: &Entry, b: &Entry) -> Ordering {
    cmp_key(a.0, &a.1, b.0, &b.1)
}

/// An order-statistic B+tree of unique `(score, member)` pairs.
pub struct ScoreTree {
    root: Node,
    len: usize,
    /// Heap bytes of the members (long members only), kept up to date so that `memory`
    /// walks nodes, not entries.
    member_heap: usize,
}

enum Node {
    Leaf(Vec<Entry>),
    Inner(Vec<Child>),
}

struct Child {
    /// Entries in the subtree.
    count: usize,
    /// A copy of the subtree's largest entry.
    max: Entry,
    node: Node,
}

/// Whether a node lies on the tree's leftmost or rightmost root-to-leaf path.
#[derive(Clone, Copy)]
struct Edge {
    first: bool,
    last: bool,
}

impl Node {
    /// Items held directly: entries of a leaf, children of an inner node.
    fn len(&self) -> usize {
        match self {
            Node::Leaf(leaf) => leaf.len(),
            Node::Inner(children) => children.len(),
        }
    }

    fn cap(&self) -> usize {
        match self {
            Node::Leaf(_) => LEAF_CAP,
            Node::Inner(_) => INNER_CAP,
        }
    }

    fn is_underfull(&self) -> bool {
        self.len() < self.cap() / 2
    }

    /// Entries in the subtree.
    fn count(&self) -> usize {
        match self {
            Node::Leaf(leaf) => leaf.len(),
            Node::Inner(children) => children.iter().map(|c| c.count).sum(),
        }
    }

    fn max(&self) -> &Entry {
        match self {
            Node::Leaf(leaf) => leaf.last(),
            Node::Inner(children) => children.last().map(|c| &c.max),
        }
        .expect("only the root may be empty")
    }
}

impl Child {
    fn new(node: Node) -> Child {
        Child { count: node.count(), max: node.max().clone(), node }
    }

    /// Recomputes count and max after entries moved in or out.
    fn refresh(&mut self) {
        self.count = self.node.count();
        self.sync_max();
    }

    /// Copies the node's largest entry if it changed (cloning a long member allocates, so
    /// an unchanged max is left alone).
    fn sync_max(&mut self) {
        let max = self.node.max();
        if max.0.to_bits() != self.max.0.to_bits() || max.1 != self.max.1 {
            self.max = max.clone();
        }
    }
}

/// Grows `v` for one more item without exceeding `cap`: a small tree's only leaf grows
/// gradually, a full node is exactly `cap`.
fn reserve_one<T>(v: &mut Vec<T>, cap: usize) {
    if v.len() == v.capacity() {
        let want = (v.len() * 2).clamp(4, cap.max(v.len() + 1));
        v.reserve_exact(want - v.len());
    }
}

/// Splits the full `v` while inserting `item` at `pos`, returning the new right sibling.
/// Past the end of the tree's last node it keeps `v` full and starts a new node with the
/// item; before the start of the tree's first leaf it does the mirror image. Anywhere
/// else it halves. (For inner nodes `pos` is never 0, so only the first rule applies.)
fn split_insert<T>(v: &mut Vec<T>, pos: usize, item: T, edge: Edge, cap: usize) -> Vec<T> {
    let mut right = Vec::with_capacity(cap);
    if edge.last && pos == v.len() {
        right.push(item);
    } else if edge.first && pos == 0 {
        right = mem::replace(v, right);
        v.push(item);
    } else {
        let mid = v.len() / 2;
        right.extend(v.drain(mid..));
        if pos <= mid {
            v.insert(pos, item);
        } else {
            right.insert(pos - mid, item);
        }
    }
    right
}

/// Moves items between two adjacent nodes' vectors so their lengths differ by at most one.
fn even_out_vecs<T>(left: &mut Vec<T>, right: &mut Vec<T>) {
    let half = (left.len() + right.len()) / 2;
    if left.len() > half {
        right.splice(0..0, left.drain(half..));
    } else {
        left.extend(right.drain(..half - left.len()));
    }
}

/// Evens out `children[l]` and `children[l + 1]`.
fn even_out(children: &mut [Child], l: usize) {
    let (head, tail) = children.split_at_mut(l + 1);
    let (left, right) = (&mut head[l], &mut tail[0]);
    match (&mut left.node, &mut right.node) {
        (Node::Leaf(a), Node::Leaf(b)) => even_out_vecs(a, b),
        (Node::Inner(a), Node::Inner(b)) => even_out_vecs(a, b),
        _ => unreachable!("siblings are at the same depth"),
    }
    left.refresh();
    right.refresh();
}

/// Moves everything in `children[l + 1]` into `children[l]` and drops the empty node.
fn merge(children: &mut Vec<Child>, l: usize) {
    let right = children.remove(l + 1);
    let left = &mut children[l];
    match (&mut left.node, right.node) {
        (Node::Leaf(a), Node::Leaf(mut b)) => a.append(&mut b),
        (Node::Inner(a), Node::Inner(mut b)) => a.append(&mut b),
        _ => unreachable!("siblings are at the same depth"),
    }
    left.count += right.count;
    left.max = right.max;
}

/// If `children[i]` is less than half full, merges it with a neighbour or, when the two
/// would not fit in one node, evens them out (leaving both at least half full). Returns
/// whether anything changed.
fn fix_underflow(children: &mut Vec<Child>, i: usize) -> bool {
    if children.len() < 2 || !children[i].node.is_underfull() {
        return false;
    }
    let l = if i + 1 < children.len() { i } else { i - 1 };
    if children[l].node.len() + children[l + 1].node.len() <= children[l].node.cap() {
        merge(children, l);
    } else {
        even_out(children, l);
    }
    true
}

/// Before a full leaf `children[i]` splits, evens it out with the neighbour that has the
/// most room, if one has enough. Splitting alone leaves leaves about 70% full under random
/// inserts; spilling first raises that. Returns whether entries moved.
fn spill(children: &mut [Child], i: usize) -> bool {
    if !matches!(&children[i].node, Node::Leaf(leaf) if leaf.len() == LEAF_CAP) {
        return false;
    }
    let room = |j: usize| LEAF_CAP - children[j].node.len();
    let left = i.checked_sub(1).map(|j| (room(j), j));
    let right = (i + 1 < children.len()).then(|| (room(i + 1), i + 1));
    match left.max(right) {
        Some((r, j)) if r >= SPILL_ROOM => {
            even_out(children, i.min(j));
            true
        }
        _ => false,
    }
}

/// The child whose range should hold `key`: the first whose max is not below it, or the
/// last child for a key beyond them all.
fn route(children: &[Child], key: &Entry) -> usize {
    let i = children.partition_point(|c| cmp_entry(&c.max, key) == Ordering::Less);
    i.min(children.len() - 1)
}

/// The child holding the entry at `rank` (counted within this node) and its rank there.
fn locate(children: &[Child], mut rank: usize) -> Option<(usize, usize)> {
    for (i, child) in children.iter().enumerate() {
        if rank < child.count {
            return Some((i, rank));
        }
        rank -= child.count;
    }
    None
}

/// Inserts `entry` below `node`; returns a new right sibling if `node` had to split.
fn insert_into(node: &mut Node, entry: Entry, edge: Edge) -> Option<Node> {
    let children = match node {
        Node::Leaf(leaf) => {
            let pos = leaf.partition_point(|e| cmp_entry(e, &entry) == Ordering::Less);
            if leaf.len() < LEAF_CAP {
                reserve_one(leaf, LEAF_CAP);
                leaf.insert(pos, entry);
                return None;
            }
            return Some(Node::Leaf(split_insert(leaf, pos, entry, edge, LEAF_CAP)));
        }
        Node::Inner(children) => children,
    };
    let mut i = route(children, &entry);
    if spill(children, i) {
        i = route(children, &entry);
    }
    let child_edge = Edge { first: edge.first && i == 0, last: edge.last && i == children.len() - 1 };
    let new_max = cmp_entry(&entry, &children[i].max) == Ordering::Greater;
    let child = &mut children[i];
    let Some(right) = insert_into(&mut child.node, entry, child_edge) else {
        child.count += 1;
        if new_max {
            child.max = child.node.max().clone();
        }
        return None;
    };
    child.refresh();
    let right = Child::new(right);
    if children.len() < INNER_CAP {
        reserve_one(children, INNER_CAP);
        children.insert(i + 1, right);
        return None;
    }
    Some(Node::Inner(split_insert(children, i + 1, right, edge, INNER_CAP)))
}

/// Removes `(score, member)` from below `node`, keeping every child it passes at least
/// half full (or dropping it once empty).
fn remove_from(node: &mut Node, score: f64, member: &[u8]) -> Option<SmallBytes> {
    let children = match node {
        Node::Leaf(leaf) => {
            let pos = leaf.binary_search_by(|e| cmp_key(e.0, &e.1, score, member)).ok()?;
            return Some(leaf.remove(pos).1);
        }
        Node::Inner(children) => children,
    };
    let i = children.partition_point(|c| cmp_key(c.max.0, &c.max.1, score, member).is_lt());
    let child = children.get_mut(i)?;
    let removed = remove_from(&mut child.node, score, member)?;
    child.count -= 1;
    if child.count == 0 {
        // Only a node on the leftmost or rightmost path can get this small.
        children.remove(i);
    } else {
        child.sync_max();
        fix_underflow(children, i);
    }
    Some(removed)
}

/// Moves every entry of `node` to `out`, in order.
fn take_all(node: Node, out: &mut Vec<Entry>) {
    match node {
        Node::Leaf(mut leaf) => out.append(&mut leaf),
        Node::Inner(children) => children.into_iter().for_each(|c| take_all(c.node, out)),
    }
}

/// Moves the entries with ranks `start..end` (within `node`, `start < end <= count`) to
/// `out`, dropping children that are wholly inside the range. Children cut at either end
/// may be left underfull; `fix_seam` repairs them.
fn remove_range_in(node: &mut Node, start: usize, end: usize, out: &mut Vec<Entry>) {
    let children = match node {
        Node::Leaf(leaf) => return out.extend(leaf.drain(start..end)),
        Node::Inner(children) => children,
    };
    let mut lo = 0;
    for child in children.iter_mut() {
        let hi = lo + child.count;
        if lo >= end {
            break;
        }
        if hi > start {
            if start <= lo && hi <= end {
                take_all(mem::replace(&mut child.node, Node::Leaf(Vec::new())), out);
                child.count = 0;
            } else {
                let (from, to) = (start.max(lo) - lo, end.min(hi) - lo);
                remove_range_in(&mut child.node, from, to, out);
                child.count -= to - from;
                child.sync_max();
            }
        }
        lo = hi;
    }
    children.retain(|c| c.count > 0);
}

/// After `remove_range_in`, the nodes that lost entries are exactly those holding the
/// entries either side of the cut, now at ranks `seam - 1` and `seam`; this brings them
/// back to at least half full. Each level is fixed before going down, so that a child
/// left with a single grandchild is first merged into a sibling and the grandchild then
/// has siblings to merge with, and again after coming back up, because merges below can
/// shrink a child under half full.
fn fix_seam(node: &mut Node, seam: usize) {
    let Node::Inner(children) = node else { return };
    fix_around(children, seam);
    let before = seam.checked_sub(1).and_then(|rank| locate(children, rank));
    let after = locate(children, seam);
    match (before, after) {
        (Some((i, _)), Some((j, rank))) if i == j => fix_seam(&mut children[i].node, rank),
        _ => {
            if let Some((i, rank)) = before {
                fix_seam(&mut children[i].node, rank + 1);
            }
            if let Some((j, _)) = after {
                fix_seam(&mut children[j].node, 0);
            }
        }
    }
    fix_around(children, seam);
}

/// Fixes underfull children holding ranks `seam - 1` and `seam` until neither is.
fn fix_around(children: &mut Vec<Child>, seam: usize) {
    loop {
        let around = [seam.checked_sub(1), Some(seam)];
        let fixed = around
            .into_iter()
            .flatten()
            .any(|rank| locate(children, rank).is_some_and(|(i, _)| fix_underflow(children, i)));
        if !fixed {
            return;
        }
    }
}

/// Bytes of the node vectors below `node` and of the heap parts of the max copies.
fn node_memory(node: &Node) -> usize {
    match node {
        Node::Leaf(leaf) => leaf.capacity() * mem::size_of::<Entry>(),
        Node::Inner(children) => {
            children.capacity() * mem::size_of::<Child>()
                + children.iter().map(|c| c.max.1.heap_size() + node_memory(&c.node)).sum::<usize>()
        }
    }
}

impl ScoreTree {
    pub fn new() -> Self {
        ScoreTree { root: Node::Leaf(Vec::new()), len: 0, member_heap: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts `(score, member)`. The caller guarantees the pair is absent and the score
    /// is not NaN (debug builds assert the latter; release builds would misplace a NaN
    /// but not panic).
    pub fn insert(&mut self, score: f64, member: SmallBytes) {
        debug_assert!(!score.is_nan(), "NaN score");
        self.member_heap += member.heap_size();
        self.len += 1;
        let edge = Edge { first: true, last: true };
        if let Some(right) = insert_into(&mut self.root, (score, member), edge) {
            let left = mem::replace(&mut self.root, Node::Leaf(Vec::new()));
            let mut children = Vec::with_capacity(INNER_CAP);
            children.push(Child::new(left));
            children.push(Child::new(right));
            self.root = Node::Inner(children);
        }
    }

    /// Removes `(score, member)`; returns the removed member if it was present.
    pub fn remove(&mut self, score: f64, member: &[u8]) -> Option<SmallBytes> {
        if score.is_nan() {
            return None;
        }
        let removed = remove_from(&mut self.root, score, member)?;
        self.len -= 1;
        self.member_heap -= removed.heap_size();
        self.normalize_root();
        Some(removed)
    }

    /// Lowers the tree while the root has a single child (and empties it if it has none),
    /// so that only the root may be less than half full for lack of siblings.
    fn normalize_root(&mut self) {
        while let Node::Inner(children) = &mut self.root {
            match children.len() {
                0 => self.root = Node::Leaf(Vec::new()),
                1 => self.root = children.pop().expect("one child").node,
                _ => break,
            }
        }
    }

    /// 0-based rank of `(score, member)` if present.
    pub fn rank(&self, score: f64, member: &[u8]) -> Option<usize> {
        if score.is_nan() {
            return None;
        }
        let mut base = 0;
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(leaf) => {
                    let pos = leaf.binary_search_by(|e| cmp_key(e.0, &e.1, score, member)).ok()?;
                    return Some(base + pos);
                }
                Node::Inner(children) => {
                    let i = children.partition_point(|c| cmp_key(c.max.0, &c.max.1, score, member).is_lt());
                    let child = children.get(i)?;
                    base += children[..i].iter().map(|c| c.count).sum::<usize>();
                    node = &child.node;
                }
            }
        }
    }

    /// The entry at 0-based `rank`.
    pub fn get(&self, mut rank: usize) -> Option<(f64, &SmallBytes)> {
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(leaf) => return leaf.get(rank).map(|e| (e.0, &e.1)),
                Node::Inner(children) => {
                    let (i, r) = locate(children, rank)?;
                    node = &children[i].node;
                    rank = r;
                }
            }
        }
    }

    /// The number of leading entries for which `pred(score, member)` holds, given that it
    /// holds for a prefix of the order and fails after it (as `slice::partition_point`).
    /// With a score bound such as `|s, _| s < min` this finds where a score range starts;
    /// with a lex bound such as `|_, m| m < b"abc"` (all scores equal), a lex range.
    pub fn partition_point(&self, mut pred: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let mut base = 0;
        let mut node = &self.root;
        loop {
            match node {
                Node::Leaf(leaf) => return base + leaf.partition_point(|e| pred(e.0, &e.1)),
                Node::Inner(children) => {
                    // A child whose max passes is passed entirely.
                    let i = children.partition_point(|c| pred(c.max.0, &c.max.1));
                    base += children[..i].iter().map(|c| c.count).sum::<usize>();
                    match children.get(i) {
                        Some(child) => node = &child.node,
                        None => return base,
                    }
                }
            }
        }
    }

    /// Iterates forward from `rank` (inclusive) to the end.
    pub fn iter_from(&self, rank: usize) -> Iter<'_> {
        if rank >= self.len {
            return Iter::empty();
        }
        Iter { cursor: Some(Cursor::seek(&self.root, rank)), remaining: self.len - rank, forward: true }
    }

    /// Iterates backward from `rank` (inclusive, clamped to the last entry) to rank 0.
    pub fn iter_rev_from(&self, rank: usize) -> Iter<'_> {
        if self.len == 0 {
            return Iter::empty();
        }
        let rank = rank.min(self.len - 1);
        Iter { cursor: Some(Cursor::seek(&self.root, rank)), remaining: rank + 1, forward: false }
    }

    /// Iterates over all entries in order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0)
    }

    /// Removes and returns the entries with ranks `start..=end` in order (`end` clamped to
    /// the last rank; nothing if `start > end` or `start >= len`). Costs O(log n + k):
    /// subtrees wholly inside the range are moved out as they are, and only the nodes
    /// along the cut are repaired.
    pub fn remove_range(&mut self, start: usize, end: usize) -> Vec<(f64, SmallBytes)> {
        if start > end || start >= self.len {
            return Vec::new();
        }
        let end = end.min(self.len - 1) + 1;
        let mut out = Vec::with_capacity(end - start);
        if start == 0 && end == self.len {
            take_all(mem::replace(&mut self.root, Node::Leaf(Vec::new())), &mut out);
        } else {
            remove_range_in(&mut self.root, start, end, &mut out);
            fix_seam(&mut self.root, start);
            self.normalize_root();
        }
        self.len -= out.len();
        self.member_heap -= out.iter().map(|e| e.1.heap_size()).sum::<usize>();
        out
    }

    /// Approximate bytes held: this struct, the node vectors, and the heap parts of
    /// members and of the max copies in inner nodes. Walks the nodes, not the entries.
    pub fn memory(&self) -> usize {
        mem::size_of::<Self>() + self.member_heap + node_memory(&self.root)
    }
}

impl Default for ScoreTree {
    fn default() -> Self {
        Self::new()
    }
}

/// A position in the tree: the path of (children, index) from the root, and the leaf.
struct Cursor<'a> {
    path: Vec<(&'a [Child], usize)>,
    leaf: &'a [Entry],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Positions at `rank`, which must be below the tree's length.
    fn seek(root: &'a Node, mut rank: usize) -> Self {
        let mut path = Vec::new();
        let mut node = root;
        loop {
            match node {
                Node::Leaf(leaf) => return Cursor { path, leaf, pos: rank },
                Node::Inner(children) => {
                    let (i, r) = locate(children, rank).expect("rank within the tree");
                    path.push((children.as_slice(), i));
                    node = &children[i].node;
                    rank = r;
                }
            }
        }
    }

    fn entry(&self) -> (f64, &'a SmallBytes) {
        let e = &self.leaf[self.pos];
        (e.0, &e.1)
    }

    /// Moves to the next entry, which must exist.
    fn step_forward(&mut self) {
        if self.pos + 1 < self.leaf.len() {
            self.pos += 1;
            return;
        }
        loop {
            let (children, i) = self.path.pop().expect("a next entry exists");
            if i + 1 < children.len() {
                self.path.push((children, i + 1));
                self.descend(&children[i + 1].node, true);
                return;
            }
        }
    }

    /// Moves to the previous entry, which must exist.
    fn step_back(&mut self) {
        if self.pos > 0 {
            self.pos -= 1;
            return;
        }
        loop {
            let (children, i) = self.path.pop().expect("a previous entry exists");
            if i > 0 {
                self.path.push((children, i - 1));
                self.descend(&children[i - 1].node, false);
                return;
            }
        }
    }

    /// Goes down to the first (or last) entry of `node`.
    fn descend(&mut self, mut node: &'a Node, first: bool) {
        loop {
            match node {
                Node::Leaf(leaf) => {
                    self.leaf = leaf;
                    self.pos = if first { 0 } else { leaf.len() - 1 };
                    return;
                }
                Node::Inner(children) => {
                    let i = if first { 0 } else { children.len() - 1 };
                    self.path.push((children, i));
                    node = &children[i].node;
                }
            }
        }
    }
}

/// An iterator over entries, forward or backward from a rank. O(1) amortized per step.
pub struct Iter<'a> {
    cursor: Option<Cursor<'a>>,
    remaining: usize,
    forward: bool,
}

impl Iter<'_> {
    fn empty() -> Self {
        Iter { cursor: None, remaining: 0, forward: true }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (f64, &'a SmallBytes);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let cursor = self.cursor.as_mut()?;
        let item = cursor.entry();
        self.remaining -= 1;
        if self.remaining > 0 {
            if self.forward {
                cursor.step_forward();
            } else {
                cursor.step_back();
            }
        }
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl std::iter::FusedIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::Index;
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
}
