//! `List`: a double-ended queue of byte strings. Redis 7.0 stores lists as a quicklist
//! (a linked list of listpacks) and reports that encoding; ferrokv keeps a ring buffer of
//! inline strings, which gives O(1) pushes and pops at both ends and O(1) LINDEX/LSET.

use crate::smallbytes::SmallBytes;
use std::collections::VecDeque;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct List {
    pub items: VecDeque<SmallBytes>,
}

impl List {
    pub fn new() -> List {
        List::default()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Resolves a Redis index (negative counts from the tail) to a position.
    pub fn index(&self, i: i64) -> Option<usize> {
        let len = self.items.len() as i64;
        let i = if i < 0 { len + i } else { i };
        (0..len).contains(&i).then_some(i as usize)
    }

    pub fn heap_size(&self) -> usize {
        self.items.capacity() * std::mem::size_of::<SmallBytes>()
            + self.items.iter().map(|s| s.heap_size()).sum::<usize>()
    }
}
