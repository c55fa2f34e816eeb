//! `Packed`: a compact sequence of byte strings in one buffer — ferrokv's counterpart of
//! Redis's listpack, used for small hashes and sorted sets. Each entry is a LEB128 length
//! followed by its bytes, so a 10-byte field costs 11 bytes and the whole value is one
//! allocation. Lookups scan linearly, which is what the small-size thresholds
//! (`hash-max-listpack-entries`, `zset-max-listpack-entries`…) keep cheap.

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Packed {
    buf: Vec<u8>,
    len: usize,
}

fn put_len(out: &mut Vec<u8>, mut n: usize) {
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

fn len_size(mut n: usize) -> usize {
    let mut size = 1;
    while n >= 0x80 {
        n >>= 7;
        size += 1;
    }
    size
}

/// Decodes the entry at byte offset `pos`: (content start, content end).
fn read_at(buf: &[u8], pos: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut shift = 0;
    let mut p = pos;
    loop {
        let b = buf[p];
        n |= ((b & 0x7f) as usize) << shift;
        p += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    (p, p + n)
}

/// Iterates the entries of a [`Packed`] with their byte offsets.
#[derive(Clone)]
pub struct Entries<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Entries<'a> {
    /// (offset of the entry, its bytes)
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let at = self.pos;
        let (s, e) = read_at(self.buf, at);
        self.pos = e;
        Some((at, &self.buf[s..e]))
    }
}

impl Packed {
    pub fn new() -> Packed {
        Packed::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// Bytes allocated.
    pub fn heap_size(&self) -> usize {
        self.buf.capacity()
    }

    pub fn entries(&self) -> Entries<'_> {
        Entries { buf: &self.buf, pos: 0 }
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.entries().map(|(_, e)| e)
    }

    pub fn push(&mut self, entry: &[u8]) {
        put_len(&mut self.buf, entry.len());
        self.buf.extend_from_slice(entry);
        self.len += 1;
    }

    /// Inserts `entry` before the entry at byte offset `at` (or at the end if `at` is the
    /// buffer length).
    pub fn insert_at(&mut self, at: usize, entry: &[u8]) {
        let mut bytes = Vec::with_capacity(len_size(entry.len()) + entry.len());
        put_len(&mut bytes, entry.len());
        bytes.extend_from_slice(entry);
        self.buf.splice(at..at, bytes);
        self.len += 1;
    }

    /// Removes `count` consecutive entries starting at byte offset `at`.
    pub fn remove_at(&mut self, at: usize, count: usize) {
        let mut end = at;
        for _ in 0..count {
            end = read_at(&self.buf, end).1;
        }
        self.buf.drain(at..end);
        self.len -= count;
    }

    /// Replaces the entry at byte offset `at` with `entry`.
    pub fn replace_at(&mut self, at: usize, entry: &[u8]) {
        let (_, end) = read_at(&self.buf, at);
        let mut bytes = Vec::with_capacity(len_size(entry.len()) + entry.len());
        put_len(&mut bytes, entry.len());
        bytes.extend_from_slice(entry);
        self.buf.splice(at..end, bytes);
    }

    /// Byte offset just past the entry at `at`.
    pub fn next_offset(&self, at: usize) -> usize {
        read_at(&self.buf, at).1
    }

    pub fn shrink_to_fit(&mut self) {
        self.buf.shrink_to_fit();
    }
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter().map(String::from_utf8_lossy)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_entries_intact() {
        let mut p = Packed::new();
        let long = vec![b'x'; 300];
        p.push(b"a");
        p.push(&long);
        p.push(b"");
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![&b"a"[..], &long[..], &b""[..]]);
        let offs: Vec<usize> = p.entries().map(|(o, _)| o).collect();
        p.replace_at(offs[1], b"short");
        p.insert_at(0, b"first");
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![&b"first"[..], b"a", b"short", b""]);
        let second = p.entries().nth(1).unwrap().0;
        p.remove_at(second, 2);
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![&b"first"[..], b""]);
        assert_eq!(p.len(), 2);
    }
}
