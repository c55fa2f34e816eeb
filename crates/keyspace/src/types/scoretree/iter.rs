//! Iteration in order, forward or backward from a rank, with a cursor that walks the
//! leaves through the path of inner nodes above them.

use super::node::{locate, Child, Entry, Node};
use super::ScoreTree;
use crate::smallbytes::SmallBytes;

impl ScoreTree {
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
