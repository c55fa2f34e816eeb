//! Queries by position: the rank of an entry, the entry at a rank, where a monotone
//! predicate stops holding, and the removal of a range of ranks.

use super::node::{cmp_key, locate, Node};
use super::rebalance::{fix_seam, remove_range_in, take_all};
use super::ScoreTree;
use crate::smallbytes::SmallBytes;
use std::mem;

impl ScoreTree {
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
}
