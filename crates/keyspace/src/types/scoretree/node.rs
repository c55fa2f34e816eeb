//! The node layout: entries and their order, leaves and inner nodes, the per-child count
//! and max copy, and the capacities that decide when nodes split and merge.

use crate::smallbytes::SmallBytes;
use std::cmp::Ordering;
use std::mem;

pub(super) type Entry = (f64, SmallBytes);

/// Entries per leaf at most: a 2 KiB leaf. Inserting shifts at most that much memory, and
/// the per-leaf cost in the parent (one `Child`) is spread over dozens of entries.
pub(super) const LEAF_CAP: usize = 64;
/// Children per inner node at most. Inner nodes are a small fraction of the memory (one
/// 72-byte `Child` per leaf), so this is chosen for a shallow tree: three levels hold
/// 100k-250k entries, four levels many millions.
pub(super) const INNER_CAP: usize = 64;
/// A full leaf hands entries to a neighbour only if the neighbour has at least this much
/// room, so that one spill buys several cheap inserts rather than one.
pub(super) const SPILL_ROOM: usize = LEAF_CAP / 8;

/// Score then member order. Scores compare with `<` so that `-0.0 == 0.0`.
pub(super) fn cmp_key(score: f64, member: &[u8], other_score: f64, other_member: &[u8]) -> Ordering {
    let by_score = if score < other_score {
        Ordering::Less
    } else if score > other_score {
        Ordering::Greater
    } else {
        Ordering::Equal
    };
    by_score.then_with(|| member.cmp(other_member))
}

pub(super) fn cmp_entry(a: &Entry, b: &Entry) -> Ordering {
    cmp_key(a.0, &a.1, b.0, &b.1)
}

pub(super) enum Node {
    Leaf(Vec<Entry>),
    Inner(Vec<Child>),
}

pub(super) struct Child {
    /// Entries in the subtree.
    pub(super) count: usize,
    /// A copy of the subtree's largest entry.
    pub(super) max: Entry,
    pub(super) node: Node,
}

/// Whether a node lies on the tree's leftmost or rightmost root-to-leaf path.
#[derive(Clone, Copy)]
pub(super) struct Edge {
    pub(super) first: bool,
    pub(super) last: bool,
}

impl Node {
    /// Items held directly: entries of a leaf, children of an inner node.
    pub(super) fn len(&self) -> usize {
        match self {
            Node::Leaf(leaf) => leaf.len(),
            Node::Inner(children) => children.len(),
        }
    }

    pub(super) fn cap(&self) -> usize {
        match self {
            Node::Leaf(_) => LEAF_CAP,
            Node::Inner(_) => INNER_CAP,
        }
    }

    pub(super) fn is_underfull(&self) -> bool {
        self.len() < self.cap() / 2
    }

    /// Entries in the subtree.
    pub(super) fn count(&self) -> usize {
        match self {
            Node::Leaf(leaf) => leaf.len(),
            Node::Inner(children) => children.iter().map(|c| c.count).sum(),
        }
    }

    pub(super) fn max(&self) -> &Entry {
        match self {
            Node::Leaf(leaf) => leaf.last(),
            Node::Inner(children) => children.last().map(|c| &c.max),
        }
        .expect("only the root may be empty")
    }
}

impl Child {
    pub(super) fn new(node: Node) -> Child {
        Child { count: node.count(), max: node.max().clone(), node }
    }

    /// Recomputes count and max after entries moved in or out.
    pub(super) fn refresh(&mut self) {
        self.count = self.node.count();
        self.sync_max();
    }

    /// Copies the node's largest entry if it changed (cloning a long member allocates, so
    /// an unchanged max is left alone).
    pub(super) fn sync_max(&mut self) {
        let max = self.node.max();
        if max.0.to_bits() != self.max.0.to_bits() || max.1 != self.max.1 {
            self.max = max.clone();
        }
    }
}

/// The child whose range should hold `key`: the first whose max is not below it, or the
/// last child for a key beyond them all.
pub(super) fn route(children: &[Child], key: &Entry) -> usize {
    let i = children.partition_point(|c| cmp_entry(&c.max, key) == Ordering::Less);
    i.min(children.len() - 1)
}

/// The child holding the entry at `rank` (counted within this node) and its rank there.
pub(super) fn locate(children: &[Child], mut rank: usize) -> Option<(usize, usize)> {
    for (i, child) in children.iter().enumerate() {
        if rank < child.count {
            return Some((i, rank));
        }
        rank -= child.count;
    }
    None
}

/// Bytes of the node vectors below `node` and of the heap parts of the max copies.
pub(super) fn node_memory(node: &Node) -> usize {
    match node {
        Node::Leaf(leaf) => leaf.capacity() * mem::size_of::<Entry>(),
        Node::Inner(children) => {
            children.capacity() * mem::size_of::<Child>()
                + children.iter().map(|c| c.max.1.heap_size() + node_memory(&c.node)).sum::<usize>()
        }
    }
}
