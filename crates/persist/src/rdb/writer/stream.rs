//! Streams as Redis 7.0 saves them (`RDB_TYPE_STREAM_LISTPACKS_2`): every node as a
//! listpack under its 16-byte big-endian master ID, the stream's counters, then each
//! consumer group with its PEL (IDs, delivery times and counts) and consumers (name, seen
//! time, the IDs they hold).
//!
//! A node's listpack: the master entry `count deleted num-fields field… 0`, then per
//! entry `flags ms-diff seq-diff [num-fields] (field value…|value…) lp-count`, where the
//! diffs are against the master ID and `lp-count` is the entry's element count less one
//! (what lets Redis walk a node backwards).

use super::{Elem, Encoder, ErrorKind, RdbError};
use ferrokv_keyspace::types::stream::{Stream, StreamId, FLAG_SAME_FIELDS};
use std::io::Write;

pub(crate) fn id_key(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

impl<W: Write> Encoder<W> {
    pub(crate) fn stream_body(&mut self, s: &Stream) -> Result<(), RdbError> {
        self.len(s.node_count() as u64)?;
        for node in s.nodes() {
            let mid = node.master_id;
            self.lp.clear();
            self.lp.push(Elem::Int(node.live() as i64));
            self.lp.push(Elem::Int(node.deleted() as i64));
            let master = node.master_fields();
            self.lp.push(Elem::Int(master.len() as i64));
            for f in master {
                self.lp.push(Elem::Bytes(f));
            }
            self.lp.push(Elem::Int(0));
            for (id, flags, fields) in node.entries() {
                self.lp.push(Elem::Int(flags as i64));
                self.lp.push(Elem::Int(id.ms.wrapping_sub(mid.ms) as i64));
                self.lp.push(Elem::Int(id.seq.wrapping_sub(mid.seq) as i64));
                let n = fields.len();
                let same = flags & FLAG_SAME_FIELDS != 0;
                if !same {
                    self.lp.push(Elem::Int(n as i64));
                }
                for (f, v) in fields {
                    if !same {
                        self.lp.push(Elem::Bytes(f));
                    }
                    self.lp.push(Elem::Bytes(v));
                }
                let lp_count = if same { n + 3 } else { 2 * n + 4 };
                self.lp.push(Elem::Int(lp_count as i64));
            }
            self.string(&id_key(mid))?;
            self.take_listpack()?;
            self.write_blob()?;
        }
        self.len(s.len())?;
        self.len(s.last_id.ms)?;
        self.len(s.last_id.seq)?;
        self.len(s.first_id.ms)?;
        self.len(s.first_id.seq)?;
        self.len(s.max_deleted_entry_id.ms)?;
        self.len(s.max_deleted_entry_id.seq)?;
        self.len(s.entries_added)?;
        self.len(s.groups.len() as u64)?;
        for (name, g) in &s.groups {
            self.string(name)?;
            self.len(g.last_id.ms)?;
            self.len(g.last_id.seq)?;
            // -1 (unknown) is stored as its 64-bit two's complement, as Redis does.
            self.len(g.entries_read as u64)?;
            self.len(g.pel.len() as u64)?;
            for (id, nack) in &g.pel {
                self.out.put(&id_key(*id))?;
                self.out.put(&nack.delivery_time.to_le_bytes())?;
                self.len(nack.delivery_count)?;
            }
            self.len(g.consumers.len() as u64)?;
            for (cname, c) in &g.consumers {
                self.string(cname)?;
                self.out.put(&c.seen_time.to_le_bytes())?;
                self.len(c.pel.len() as u64)?;
                for id in &c.pel {
                    self.out.put(&id_key(*id))?;
                }
            }
        }
        if s.node_count() == 0 && !s.is_empty() {
            return Err(self.err(ErrorKind::InvalidInput("stream without nodes")));
        }
        Ok(())
    }
}
