//! One node of a stream: a run of consecutive entries in one buffer, delta-encoded against
//! the node's *master entry* (its first entry) as Redis's listpack nodes are.
//!
//! Layout of an entry in `buf`:
//! - a flags byte ([`DELETED`], [`SAME_FIELDS`]);
//! - the ID as two LEB128 numbers: milliseconds minus the master's, then the sequence
//!   (minus the master's when the milliseconds are equal, the common case in a burst);
//! - with `SAME_FIELDS` (the entry has exactly the master's field names, in order) only the
//!   values, each a LEB128 length and its bytes; otherwise the number of fields and then
//!   field, value, field, value… in the same length-prefixed form.
//!
//! Deleting marks the flag and leaves the bytes in place (as Redis does): IDs stay
//! addressable by offset, and a node whose entries are all deleted is dropped whole.

use super::StreamId;
use crate::types::packed::Packed;

pub(super) const DELETED: u8 = 1;
pub(super) const SAME_FIELDS: u8 = 2;

pub(super) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

pub(super) fn varint_size(mut n: u64) -> usize {
    let mut size = 1;
    while n >= 0x80 {
        n >>= 7;
        size += 1;
    }
    size
}

/// Reads a LEB128 number at `*p`, advancing it. The buffers are written by this module
/// only, so they are well formed.
#[inline]
fn get_varint(buf: &[u8], p: &mut usize) -> u64 {
    // Lengths and ID deltas are mostly below 128: one byte.
    let first = buf[*p];
    if first < 0x80 {
        *p += 1;
        return first as u64;
    }
    let mut n = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*p];
        *p += 1;
        n |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

fn get_bytes<'a>(buf: &'a [u8], p: &mut usize) -> &'a [u8] {
    let len = get_varint(buf, p) as usize;
    let s = &buf[*p..*p + len];
    *p += len;
    s
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Node {
    /// The master entry's field names.
    pub master: Packed,
    pub buf: Vec<u8>,
    /// Entries not deleted.
    pub live: u32,
    /// Entries in `buf`, deleted ones included.
    pub total: u32,
    /// ID of the last entry in `buf` (deleted or not): trimming by MINID looks at it.
    pub last: StreamId,
    /// Offset of the last entry in `buf`: entries decode forwards only, and the stream's
    /// last entry is wanted by every XREAD and XREADGROUP (is there anything new?).
    pub last_start: usize,
}

/// A decoded entry header.
#[derive(Clone, Copy, Debug)]
pub(super) struct Header {
    pub id: StreamId,
    pub flags: u8,
    /// Offset of the entry (its flags byte).
    pub start: usize,
    /// Offset of the entry's body (values or field count).
    pub body: usize,
    /// Offset of the next entry.
    pub next: usize,
}

impl Node {
    pub fn new(pairs: &[(&[u8], &[u8])]) -> Node {
        let mut master = Packed::new();
        for (f, _) in pairs {
            master.push(f);
        }
        Node { master, ..Node::default() }
    }

    fn same_fields(&self, pairs: &[(&[u8], &[u8])]) -> bool {
        self.master.len() == pairs.len() && self.master.iter().zip(pairs).all(|(m, (f, _))| m == *f)
    }

    /// Bytes `pairs` would take as an entry of this node (ID and flags excluded).
    pub fn body_size(&self, pairs: &[(&[u8], &[u8])]) -> usize {
        let item = |b: &[u8]| varint_size(b.len() as u64) + b.len();
        if self.same_fields(pairs) {
            pairs.iter().map(|(_, v)| item(v)).sum()
        } else {
            varint_size(pairs.len() as u64) + pairs.iter().map(|(f, v)| item(f) + item(v)).sum::<usize>()
        }
    }

    /// Appends an entry; `id` is greater than every ID in the node, `master_id` the node's.
    pub fn push(&mut self, master_id: StreamId, id: StreamId, pairs: &[(&[u8], &[u8])]) {
        let same = self.same_fields(pairs);
        self.last_start = self.buf.len();
        self.buf.push(if same { SAME_FIELDS } else { 0 });
        let ms_delta = id.ms - master_id.ms;
        put_varint(&mut self.buf, ms_delta);
        put_varint(&mut self.buf, if ms_delta == 0 { id.seq - master_id.seq } else { id.seq });
        let item = |b: &[u8], buf: &mut Vec<u8>| {
            put_varint(buf, b.len() as u64);
            buf.extend_from_slice(b);
        };
        if same {
            for (_, v) in pairs {
                item(v, &mut self.buf);
            }
        } else {
            put_varint(&mut self.buf, pairs.len() as u64);
            for (f, v) in pairs {
                item(f, &mut self.buf);
                item(v, &mut self.buf);
            }
        }
        self.live += 1;
        self.total += 1;
        self.last = id;
    }

    /// The header of the entry at `off` (which must start an entry).
    pub fn header(&self, master_id: StreamId, off: usize) -> Header {
        let buf = &self.buf;
        let flags = buf[off];
        let mut p = off + 1;
        let ms_delta = get_varint(buf, &mut p);
        let seq = get_varint(buf, &mut p);
        let id = if ms_delta == 0 {
            StreamId { ms: master_id.ms, seq: master_id.seq + seq }
        } else {
            StreamId { ms: master_id.ms + ms_delta, seq }
        };
        let body = p;
        if flags & SAME_FIELDS != 0 {
            for _ in 0..self.master.len() {
                get_bytes(buf, &mut p);
            }
        } else {
            let n = get_varint(buf, &mut p);
            for _ in 0..2 * n {
                get_bytes(buf, &mut p);
            }
        }
        Header { id, flags, start: off, body, next: p }
    }

    /// The field/value pairs of the entry whose header is `h`.
    pub fn fields(&self, h: &Header) -> Fields<'_> {
        if h.flags & SAME_FIELDS != 0 {
            Fields { buf: &self.buf, pos: h.body, master: Some(self.master.entries()), left: self.master.len() }
        } else {
            let mut p = h.body;
            let n = get_varint(&self.buf, &mut p) as usize;
            Fields { buf: &self.buf, pos: p, master: None, left: n }
        }
    }

    /// Headers of every entry, deleted ones included, in order.
    pub fn headers(&self, master_id: StreamId) -> Headers<'_> {
        self.headers_from(master_id, 0)
    }

    /// Headers from offset `off` (which starts an entry, or is the buffer's end) on.
    pub fn headers_from(&self, master_id: StreamId, off: usize) -> Headers<'_> {
        Headers { node: self, master_id, off }
    }

    /// Offset of the first entry whose ID is `start` or above (the buffer's end if none).
    /// A range read starts inside a node (XREADGROUP's `>` continues where the group
    /// stopped), so the entries before are skipped reading only their IDs and lengths.
    pub fn seek(&self, master_id: StreamId, start: StreamId) -> usize {
        if start <= master_id {
            return 0;
        }
        let buf = &self.buf;
        let same_fields = self.master.len();
        let mut p = 0;
        while p < buf.len() {
            let flags = buf[p];
            let mut q = p + 1;
            let ms_delta = get_varint(buf, &mut q);
            let seq = get_varint(buf, &mut q);
            let id = if ms_delta == 0 {
                StreamId { ms: master_id.ms, seq: master_id.seq + seq }
            } else {
                StreamId { ms: master_id.ms + ms_delta, seq }
            };
            if id >= start {
                return p;
            }
            let items = if flags & SAME_FIELDS != 0 { same_fields } else { 2 * get_varint(buf, &mut q) as usize };
            for _ in 0..items {
                let len = get_varint(buf, &mut q) as usize;
                q += len;
            }
            p = q;
        }
        buf.len()
    }

    /// The header of the last entry, if it is not deleted.
    pub fn last_live(&self, master_id: StreamId) -> Option<Header> {
        let flags = *self.buf.get(self.last_start)?;
        (flags & DELETED == 0).then(|| self.header(master_id, self.last_start))
    }

    pub fn mark_deleted(&mut self, off: usize) {
        self.buf[off] |= DELETED;
        self.live -= 1;
    }

    pub fn heap_size(&self) -> usize {
        self.buf.capacity() + self.master.heap_size()
    }
}

pub(super) struct Headers<'a> {
    node: &'a Node,
    master_id: StreamId,
    off: usize,
}

impl Iterator for Headers<'_> {
    type Item = Header;
    fn next(&mut self) -> Option<Header> {
        if self.off >= self.node.buf.len() {
            return None;
        }
        let h = self.node.header(self.master_id, self.off);
        self.off = h.next;
        Some(h)
    }
}

/// The field/value pairs of one entry, decoded as they are read.
#[derive(Clone)]
pub struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    master: Option<crate::types::packed::Entries<'a>>,
    left: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let field = match &mut self.master {
            Some(m) => m.next()?.1,
            None => get_bytes(self.buf, &mut self.pos),
        };
        let value = get_bytes(self.buf, &mut self.pos);
        Some((field, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Fields<'_> {}
