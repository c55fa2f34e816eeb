//! The replication buffer: the write stream's recent history, by offset.
//!
//! One buffer serves two purposes, as Redis 7's shared replication buffer does: it is the
//! backlog a reconnecting replica continues from (`repl-backlog-size`), and it is every
//! connected replica's output queue — each replica only holds a cursor into it. Bytes are
//! kept while any replica still needs them (up to its output-buffer limit, beyond which
//! the replica is dropped) and at least `repl-backlog-size` of them for partial resyncs.
//! Chunks are reference-counted, so handing bytes to a sender copies nothing.
//!
//! Offsets follow Redis: the stream's bytes are numbered from 1, `end()` is the offset of
//! the last byte written (`master_repl_offset`), and a replica asking for `end() + 1` is
//! fully caught up.

use bytes::Bytes;
use std::collections::VecDeque;

pub struct Backlog {
    chunks: VecDeque<Bytes>,
    /// Offset of each chunk's first byte (a reader finds its chunk by binary search).
    starts: VecDeque<u64>,
    /// Offset of the first byte of `chunks[0]`.
    first: u64,
    /// Bytes held.
    len: u64,
    /// `repl-backlog-size`.
    pub size: u64,
}

impl Backlog {
    /// A backlog whose next byte will have offset `next`.
    pub fn new(size: u64, next: u64) -> Backlog {
        Backlog { chunks: VecDeque::new(), starts: VecDeque::new(), first: next, len: 0, size }
    }

    /// Offset of the last byte appended (0 if none ever was).
    pub fn end(&self) -> u64 {
        self.first + self.len - 1
    }

    /// Offset of the oldest byte held (`repl_backlog_first_byte_offset`).
    pub fn first_byte(&self) -> u64 {
        self.first
    }

    /// Bytes held (`repl_backlog_histlen`).
    pub fn histlen(&self) -> u64 {
        self.len
    }

    pub fn append(&mut self, bytes: Bytes) {
        if bytes.is_empty() {
            return;
        }
        self.starts.push_back(self.first + self.len);
        self.len += bytes.len() as u64;
        self.chunks.push_back(bytes);
    }

    /// Whether a replica can continue from offset `from` (the first byte it lacks).
    pub fn can_continue_from(&self, from: u64) -> bool {
        from >= self.first && from <= self.end() + 1
    }

    /// Up to `max` bytes starting at offset `from`, as chunks (sharing memory with the
    /// backlog). Empty when `from` is past the end; None when it was already dropped.
    pub fn read(&self, from: u64, max: usize) -> Option<Vec<Bytes>> {
        if from < self.first {
            return None;
        }
        let mut out = Vec::new();
        if from > self.end() {
            return Some(out);
        }
        // The chunk holding `from`: the last one starting at or before it.
        let i = self.starts.partition_point(|&s| s <= from) - 1;
        let mut skip = (from - self.starts[i]) as usize;
        let mut left = max;
        for c in self.chunks.iter().skip(i) {
            if left == 0 {
                break;
            }
            let take = (c.len() - skip).min(left);
            out.push(c.slice(skip..skip + take));
            left -= take;
            skip = 0;
        }
        Some(out)
    }

    /// Drops whole chunks that are both older than `keep_from` (what the slowest replica
    /// still needs) and outside the last `size` bytes.
    pub fn trim(&mut self, keep_from: u64) {
        while let Some(c) = self.chunks.front() {
            let n = c.len() as u64;
            let after = self.len - n;
            let needed_by_replica = self.first + n > keep_from;
            if needed_by_replica || after < self.size {
                break;
            }
            self.chunks.pop_front();
            self.starts.pop_front();
            self.first += n;
            self.len -= n;
        }
    }

    /// Resizes (`CONFIG SET repl-backlog-size`): takes effect at the next trim.
    pub fn set_size(&mut self, size: u64) {
        self.size = size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(chunks: Vec<Bytes>) -> Vec<u8> {
        chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn offsets_reads_and_trimming() {
        let mut b = Backlog::new(10, 1);
        assert_eq!(b.end(), 0);
        assert!(b.can_continue_from(1));
        b.append(Bytes::from_static(b"hello"));
        b.append(Bytes::from_static(b" world"));
        b.append(Bytes::from_static(b"!!!!!"));
        assert_eq!(b.end(), 16);
        assert_eq!(collect(b.read(3, 100).unwrap()), b"llo world!!!!!");
        assert_eq!(collect(b.read(3, 4).unwrap()), b"llo ");
        assert!(b.read(17, 10).unwrap().is_empty());
        // A replica still at offset 2 keeps everything.
        b.trim(2);
        assert_eq!(b.first_byte(), 1);
        // Nobody behind: keep the last 10 bytes' chunks only.
        b.trim(17);
        assert_eq!(b.first_byte(), 6);
        assert_eq!(b.histlen(), 11);
        assert!(b.read(1, 10).is_none());
        assert!(!b.can_continue_from(5));
        assert!(b.can_continue_from(6));
        assert!(b.can_continue_from(17));
        assert!(!b.can_continue_from(18));
    }
}
