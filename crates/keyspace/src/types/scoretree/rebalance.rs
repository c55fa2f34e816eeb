//! Changing the tree below a node while keeping every node at least half full: inserting
//! (spilling to a neighbour or splitting a full node), removing (merging or evening out an
//! underfull node), and cutting out a range of ranks, then repairing the nodes along the cut.

use super::node::{cmp_entry, cmp_key, locate, route, Child, Edge, Entry, Node, INNER_CAP, LEAF_CAP, SPILL_ROOM};
use crate::smallbytes::SmallBytes;
use std::cmp::Ordering;
use std::mem;

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

/// Inserts `entry` below `node`; returns a new right sibling if `node` had to split.
pub(super) fn insert_into(node: &mut Node, entry: Entry, edge: Edge) -> Option<Node> {
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
pub(super) fn remove_from(node: &mut Node, score: f64, member: &[u8]) -> Option<SmallBytes> {
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
pub(super) fn take_all(node: Node, out: &mut Vec<Entry>) {
    match node {
        Node::Leaf(mut leaf) => out.append(&mut leaf),
        Node::Inner(children) => children.into_iter().for_each(|c| take_all(c.node, out)),
    }
}

/// Moves the entries with ranks `start..end` (within `node`, `start < end <= count`) to
/// `out`, dropping children that are wholly inside the range. Children cut at either end
/// may be left underfull; `fix_seam` repairs them.
pub(super) fn remove_range_in(node: &mut Node, start: usize, end: usize, out: &mut Vec<Entry>) {
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
pub(super) fn fix_seam(node: &mut Node, seam: usize) {
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
