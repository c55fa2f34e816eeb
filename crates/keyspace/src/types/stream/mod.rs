//! `Stream`: Redis's stream type — entries keyed by a 128-bit ID (milliseconds, sequence),
//! in ID order, plus the stream's counters and its consumer groups.
//!
//! **Layout.** Entries live in [`node`]s: runs of consecutive entries in one buffer,
//! delta-encoded against the node's first (master) entry, whose field names later entries
//! share when they have the same fields (the usual case: a producer writes the same shape
//! of record). A node is closed once it holds `stream-node-max-entries` entries or
//! `stream-node-max-bytes` bytes, as Redis closes a listpack. The nodes are indexed by a
//! `BTreeMap` from the master ID to the node: Redis uses a radix tree over the 16-byte
//! big-endian IDs, which is an ordered map too; a B-tree gives the same O(log n) seek to
//! the node holding an ID and ordered iteration both ways, with ~11 keys per tree node,
//! so its overhead per stream entry is a fraction of a byte at 100 entries per node.
//! Memory per entry is then the listpack's: flags, two small deltas, and the values.
//!
//! **Deletion** (XDEL) marks an entry deleted in place; a node left without live entries
//! is dropped. Trimming drops whole nodes from the front, and, when exact, marks entries
//! of the last node it reaches, as Redis's `streamTrim`.
//!
//! The counters follow Redis 7.0: `entries_added` (every entry ever added),
//! `max_deleted_entry_id` (the greatest ID removed by XDEL), `first_id` (the first live
//! entry, 0-0 when empty), `last_id` (the last ID generated). With them a consumer
//! group's `entries_read` and lag are computed as Redis does ([`Stream::estimate_distance`],
//! [`Stream::range_has_tombstones`]).

mod group;
mod node;
#[cfg(test)]
mod tests;

pub use group::{Consumer, Group, Nack, INVALID_ENTRIES_READ};
pub use node::Fields;

use node::{Header, Node, DELETED};
use std::collections::BTreeMap;
use std::ops::Bound;

/// A stream entry ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, or None after the last possible one.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId { ms: self.ms, seq: self.seq + 1 })
        } else if self.ms < u64::MAX {
            Some(StreamId { ms: self.ms + 1, seq: 0 })
        } else {
            None
        }
    }

    /// The previous ID, or None before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId { ms: self.ms, seq: self.seq - 1 })
        } else if self.ms > 0 {
            Some(StreamId { ms: self.ms - 1, seq: u64::MAX })
        } else {
            None
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// `<ms>-<seq>`, as replies and commands spell it.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut b = itoa::Buffer::new();
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(b.format(self.ms).as_bytes());
        out.push(b'-');
        out.extend_from_slice(b.format(self.seq).as_bytes());
        out
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Node bounds (`stream-node-max-bytes`, `stream-node-max-entries`; 0 = unbounded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeLimits {
    pub max_bytes: usize,
    pub max_entries: usize,
}

impl NodeLimits {
    /// No limit: a node grows as long as entries are appended to it.
    pub const UNLIMITED: NodeLimits = NodeLimits { max_bytes: 0, max_entries: 0 };
}

impl Default for NodeLimits {
    /// Redis's defaults.
    fn default() -> Self {
        NodeLimits { max_bytes: 4096, max_entries: 100 }
    }
}

/// What XTRIM and XADD's trimming keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimTo {
    /// At most this many entries.
    MaxLen(u64),
    /// No entry below this ID.
    MinId(StreamId),
}

/// One entry as read: its ID and its field/value pairs.
pub struct EntryRef<'a> {
    pub id: StreamId,
    pub fields: Fields<'a>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    nodes: BTreeMap<StreamId, Node>,
    length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_entry_id: StreamId,
    pub entries_added: u64,
    /// Consumer groups by name (XINFO GROUPS lists them in name order, as Redis's rax).
    pub groups: BTreeMap<crate::SmallBytes, Group>,
}

impl Stream {
    pub fn new() -> Stream {
        Stream::default()
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Number of nodes (XINFO STREAM's `radix-tree-keys`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Adds an entry. The caller checked that `id` is greater than `last_id`.
    pub fn append(&mut self, id: StreamId, pairs: &[(&[u8], &[u8])], limits: NodeLimits) {
        self.append_in(id, pairs, limits, false);
    }

    /// Adds an entry as the first of a new node: a stream loaded from a file keeps the
    /// file's nodes, as Redis keeps the listpacks it reads (entries of the same file node
    /// follow with [`NodeLimits::UNLIMITED`]).
    pub fn append_starting_node(&mut self, id: StreamId, pairs: &[(&[u8], &[u8])]) {
        self.append_in(id, pairs, NodeLimits::UNLIMITED, true);
    }

    fn append_in(&mut self, id: StreamId, pairs: &[(&[u8], &[u8])], limits: NodeLimits, new_node: bool) {
        debug_assert!(id > self.last_id || (self.last_id.is_zero() && self.entries_added == 0));
        let fits = !new_node
            && self.nodes.last_key_value().is_some_and(|(_, n)| {
                let size = n.buf.len() + 1 + 20 + n.body_size(pairs);
                (limits.max_bytes == 0 || size <= limits.max_bytes)
                    && (limits.max_entries == 0 || (n.total as usize) < limits.max_entries)
            });
        if fits {
            if let Some(mut e) = self.nodes.last_entry() {
                let master = *e.key();
                e.get_mut().push(master, id, pairs);
            }
        } else {
            // The last node is full: it will not grow again, so give back the slack its
            // doubling buffer has (a quarter on average).
            if let Some(mut e) = self.nodes.last_entry() {
                e.get_mut().buf.shrink_to_fit();
            }
            let mut n = Node::new(pairs);
            n.push(id, id, pairs);
            // Size the buffer for a full node of entries like this one, so it does not
            // grow by doubling (which leaves a quarter unused on average).
            let per_entry = n.buf.len() + 2;
            let want = match (limits.max_bytes, limits.max_entries) {
                (0, 0) => 0,
                (0, e) => per_entry.saturating_mul(e),
                (b, 0) => b,
                (b, e) => b.min(per_entry.saturating_mul(e)),
            };
            n.buf.reserve_exact(want.min(1 << 16).saturating_sub(n.buf.len()));
            self.nodes.insert(id, n);
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
        if self.length == 1 {
            self.first_id = id;
        }
    }

    /// The node that would hold `id`: the last one whose master ID is not above it.
    fn node_for(&self, id: StreamId) -> Option<(&StreamId, &Node)> {
        self.nodes.range(..=id).next_back()
    }

    fn find(&self, id: StreamId) -> Option<(StreamId, Header)> {
        let (&mid, node) = self.node_for(id)?;
        if node.last < id {
            return None;
        }
        let h = node.headers_from(mid, node.seek(mid, id)).next()?;
        (h.id == id && h.flags & DELETED == 0).then_some((mid, h))
    }

    pub fn contains(&self, id: StreamId) -> bool {
        self.find(id).is_some()
    }

    pub fn get(&self, id: StreamId) -> Option<EntryRef<'_>> {
        let (mid, h) = self.find(id)?;
        let node = &self.nodes[&mid];
        Some(EntryRef { id: h.id, fields: node.fields(&h) })
    }

    /// Entries with `start <= id <= end`, in ascending order.
    pub fn range(&self, start: StreamId, end: StreamId) -> Range<'_> {
        Range::new(self, start, end, false)
    }

    /// Entries with `start <= id <= end`, in descending order.
    pub fn rev_range(&self, start: StreamId, end: StreamId) -> Range<'_> {
        Range::new(self, start, end, true)
    }

    /// The first or last live entry.
    pub fn first(&self) -> Option<EntryRef<'_>> {
        self.range(StreamId::MIN, StreamId::MAX).next()
    }

    pub fn last(&self) -> Option<EntryRef<'_>> {
        // Usually the last node's last entry; walking backwards lists a whole node first.
        if let Some((&mid, node)) = self.nodes.last_key_value() {
            if let Some(h) = node.last_live(mid) {
                return Some(EntryRef { id: h.id, fields: node.fields(&h) });
            }
        }
        self.rev_range(StreamId::MIN, StreamId::MAX).next()
    }

    fn refresh_first_id(&mut self) {
        self.first_id = self.first().map_or(StreamId::MIN, |e| e.id);
    }

    /// Deletes an entry (XDEL): true if it was there.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((mid, h)) = self.find(id) else { return false };
        let emptied = match self.nodes.get_mut(&mid) {
            Some(node) => {
                node.mark_deleted(h.start);
                node.live == 0
            }
            None => return false,
        };
        if emptied {
            self.nodes.remove(&mid);
        }
        self.length -= 1;
        if id > self.max_deleted_entry_id {
            self.max_deleted_entry_id = id;
        }
        if id == self.first_id {
            self.refresh_first_id();
        }
        true
    }

    /// Trims from the front (XTRIM, XADD's MAXLEN/MINID), as Redis 7.0: whole nodes while
    /// a whole node can go; then, unless `approx`, entries of the next node one by one.
    /// `limit` (approximate trimming only; 0 = none) caps the entries removed, counting
    /// whole nodes. Returns the number of entries removed.
    pub fn trim(&mut self, to: TrimTo, approx: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        loop {
            if let TrimTo::MaxLen(max) = to {
                if self.length <= max {
                    break;
                }
            }
            let Some(mut e) = self.nodes.first_entry() else { break };
            let mid = *e.key();
            let node = e.get_mut();
            let entries = node.live as u64;
            if limit != 0 && removed + entries > limit {
                break;
            }
            let whole = match to {
                TrimTo::MaxLen(max) => self.length - entries >= max,
                TrimTo::MinId(min) => node.last < min,
            };
            if whole {
                e.remove();
                self.length -= entries;
                removed += entries;
                continue;
            }
            if approx {
                break;
            }
            let offsets: Vec<Header> = node.headers(mid).collect();
            for h in offsets {
                if h.flags & DELETED != 0 {
                    continue;
                }
                let stop = match to {
                    TrimTo::MaxLen(max) => self.length <= max,
                    TrimTo::MinId(min) => h.id >= min,
                };
                if stop {
                    break;
                }
                node.mark_deleted(h.start);
                self.length -= 1;
                removed += 1;
            }
            if node.live == 0 {
                e.remove();
            }
            break;
        }
        if removed > 0 {
            self.refresh_first_id();
        }
        removed
    }

    /// Whether an entry between `start` and `end` (inclusive; None = unbounded) may have
    /// been deleted: Redis's `streamRangeHasTombstones`, which looks at the greatest
    /// deleted ID only.
    pub fn range_has_tombstones(&self, start: Option<StreamId>, end: Option<StreamId>) -> bool {
        if self.length == 0 || self.max_deleted_entry_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_entry_id {
            return false;
        }
        let start = start.unwrap_or(StreamId::MIN);
        let end = end.unwrap_or(StreamId::MAX);
        start <= self.max_deleted_entry_id && end >= self.max_deleted_entry_id
    }

    /// How many entries were added up to and including `id`, when that can be known
    /// (Redis's `streamEstimateDistanceFromFirstEverEntry`); None when it cannot.
    pub fn estimate_distance(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.length == 0 && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        if self.max_deleted_entry_id.is_zero() || self.max_deleted_entry_id < self.first_id {
            match id.cmp(&self.first_id) {
                std::cmp::Ordering::Less => return Some(self.entries_added - self.length),
                std::cmp::Ordering::Equal => return Some(self.entries_added - self.length + 1),
                std::cmp::Ordering::Greater => {}
            }
        }
        None
    }

    /// A group's lag (XINFO GROUPS), or None when it cannot be known. Negative when an
    /// ENTRIESREAD set by hand is ahead of the stream, as Redis reports it.
    pub fn group_lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        let added = self.entries_added as i64;
        if g.entries_read != INVALID_ENTRIES_READ && !self.range_has_tombstones(Some(g.last_id), None) {
            return Some(added.wrapping_sub(g.entries_read));
        }
        self.estimate_distance(g.last_id).map(|read| added.wrapping_sub(read as i64))
    }

    /// Bytes allocated for this stream (MEMORY USAGE, accounting).
    pub fn heap_size(&self) -> usize {
        // A B-tree leaf holds up to 11 (key, value) pairs; count them as full.
        let per_node = std::mem::size_of::<StreamId>() + std::mem::size_of::<Node>();
        let nodes: usize = self.nodes.values().map(Node::heap_size).sum();
        let groups: usize = self.groups.iter().map(|(name, g)| name.heap_size() + 64 + g.heap_size()).sum();
        self.nodes.len() * per_node * 12 / 11 + nodes + groups
    }

    /// The nodes in order, deleted entries included: what an RDB writer needs to write
    /// the layout Redis would have (a listpack per node).
    pub fn nodes(&self) -> impl Iterator<Item = NodeRef<'_>> + '_ {
        self.nodes.iter().map(|(&master_id, node)| NodeRef { master_id, node })
    }

    /// Sets the counters read from a file (after the entries were appended).
    pub fn set_counters(&mut self, last_id: StreamId, first_id: StreamId, max_deleted: StreamId, added: u64) {
        self.last_id = last_id;
        self.first_id = first_id;
        self.max_deleted_entry_id = max_deleted;
        self.entries_added = added;
    }
}

/// A node as an RDB writer sees it.
pub struct NodeRef<'a> {
    pub master_id: StreamId,
    node: &'a Node,
}

/// Entry flags, with Redis's values (they are written to RDB files as they are).
pub const FLAG_DELETED: u8 = node::DELETED;
pub const FLAG_SAME_FIELDS: u8 = node::SAME_FIELDS;

impl<'a> NodeRef<'a> {
    pub fn live(&self) -> u32 {
        self.node.live
    }

    pub fn deleted(&self) -> u32 {
        self.node.total - self.node.live
    }

    /// The master entry's field names.
    pub fn master_fields(&self) -> impl ExactSizeIterator<Item = &'a [u8]> + 'a {
        let v: Vec<&'a [u8]> = self.node.master.iter().collect();
        v.into_iter()
    }

    /// Every entry: ID, flags ([`FLAG_DELETED`], [`FLAG_SAME_FIELDS`]) and fields.
    pub fn entries(&self) -> impl Iterator<Item = (StreamId, u8, Fields<'a>)> + 'a {
        let node = self.node;
        node.headers(self.master_id).map(move |h| (h.id, h.flags, node.fields(&h)))
    }
}

/// Iterator over live entries in an ID range, either direction.
pub struct Range<'a> {
    nodes: std::collections::btree_map::Range<'a, StreamId, Node>,
    rev: bool,
    start: StreamId,
    end: StreamId,
    /// The node being read and the headers still to visit in it (in iteration order).
    cur: Option<(&'a Node, Cursor<'a>)>,
}

impl<'a> Range<'a> {
    fn new(s: &'a Stream, start: StreamId, end: StreamId, rev: bool) -> Range<'a> {
        // The node holding `start` may begin before it.
        let from = s.node_for(start).map_or(start, |(&k, _)| k);
        let nodes = if start > end {
            s.nodes.range((Bound::Excluded(StreamId::MAX), Bound::Included(StreamId::MAX)))
        } else {
            s.nodes.range(from..=end)
        };
        Range { nodes, rev, start, end, cur: None }
    }
}

impl<'a> Iterator for Range<'a> {
    type Item = EntryRef<'a>;
    fn next(&mut self) -> Option<EntryRef<'a>> {
        loop {
            if let Some((node, headers)) = &mut self.cur {
                for h in headers.by_ref() {
                    if h.flags & DELETED == 0 && h.id >= self.start && h.id <= self.end {
                        return Some(EntryRef { id: h.id, fields: node.fields(&h) });
                    }
                }
                self.cur = None;
            }
            let (&mid, node) = if self.rev { self.nodes.next_back()? } else { self.nodes.next()? };
            if node.last < self.start {
                continue;
            }
            // Entries decode forwards only: going backwards, a node's headers are listed
            // first (a node holds at most `stream-node-max-entries` of them).
            let cursor = if self.rev {
                let mut hs: Vec<Header> = node.headers(mid).collect();
                hs.reverse();
                Cursor::Back(hs.into_iter())
            } else {
                Cursor::Fwd(node.headers_from(mid, node.seek(mid, self.start)))
            };
            self.cur = Some((node, cursor));
        }
    }
}

enum Cursor<'a> {
    Fwd(node::Headers<'a>),
    Back(std::vec::IntoIter<Header>),
}

impl Iterator for Cursor<'_> {
    type Item = Header;
    fn next(&mut self) -> Option<Header> {
        match self {
            Cursor::Fwd(h) => h.next(),
            Cursor::Back(h) => h.next(),
        }
    }
}
