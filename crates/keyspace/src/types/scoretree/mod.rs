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
//!
//! Files: `node` (entry order, node layout, capacities), `rebalance` (inserting, removing
//! and cutting ranges below a node while keeping nodes half full), `rank` (rank queries,
//! removal by rank), `iter` (ordered iteration), `tests` (invariant checks, a model-based
//! property test).

mod iter;
mod node;
mod rank;
mod rebalance;
#[cfg(test)]
mod tests;

pub use iter::Iter;

use crate::smallbytes::SmallBytes;
use node::{node_memory, Child, Edge, Node, INNER_CAP};
use rebalance::{insert_into, remove_from};
use std::mem;

/// An order-statistic B+tree of unique `(score, member)` pairs.
pub struct ScoreTree {
    root: Node,
    len: usize,
    /// Heap bytes of the members (long members only), kept up to date so that `memory`
    /// walks nodes, not entries.
    member_heap: usize,
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
