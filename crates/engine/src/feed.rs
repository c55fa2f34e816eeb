//! The write feed: every write command, after it executes and in execution order, is
//! encoded here once as the RESP byte stream that the AOF and replicas consume — the
//! single point where "what happened to the dataset" leaves the engine.
//!
//! Commands are collected per execution unit (one top-level command, or one EXEC) and
//! appended as a whole when the unit ends: a transaction is wrapped in MULTI/EXEC so a
//! replica or an AOF reload applies it atomically, and a SELECT is emitted whenever the
//! target database changes. Nothing is encoded while no consumer is attached.

use ferrokv_resp::encode_command;

/// The "database" of stream commands outside any database.
const NO_DB: usize = usize::MAX;

#[derive(Default)]
pub struct Feed {
    /// True when something consumes the stream (AOF on, replicas or a backlog).
    pub enabled: bool,
    /// The current unit's commands, already encoded (with their SELECTs).
    unit: Vec<u8>,
    unit_commands: usize,
    /// Length of the SELECT that opens the unit, if it opens with one: a transaction's
    /// MULTI goes after it, as Redis propagates MULTI in the first command's database.
    unit_select: usize,
    stream: Vec<u8>,
    /// Ranges of `stream` for replicas only (PING, REPLCONF GETACK): not for the AOF.
    replication_only: Vec<(usize, usize)>,
    cur_db: Option<usize>,
    /// Total bytes ever fed (the replication offset once replication exists).
    pub offset: u64,
    /// A single command propagated several writes (SPOP count → SREMs): wrap the unit.
    pub atomic_hint: bool,
}

impl Feed {
    /// Queues one write of the current execution unit.
    pub fn push<'a, I>(&mut self, db: usize, args: I)
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: ExactSizeIterator,
    {
        if !self.enabled {
            return;
        }
        // Encoded at once: a write costs one copy into the stream, not an allocation per
        // argument.
        if db != NO_DB && self.cur_db != Some(db) {
            let n = itoa::Buffer::new().format(db).to_owned();
            encode_command(&mut self.unit, [&b"SELECT"[..], n.as_bytes()]);
            if self.unit_commands == 0 {
                self.unit_select = self.unit.len();
            }
            self.cur_db = Some(db);
        }
        encode_command(&mut self.unit, args);
        self.unit_commands += 1;
    }

    /// Queues a stream command that belongs to no database (PING, REPLCONF GETACK): no
    /// SELECT precedes it.
    pub fn push_without_db<'a, I>(&mut self, args: I)
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: ExactSizeIterator,
    {
        self.push(NO_DB, args);
    }

    /// Appends a stream command meant for replicas only (keepalive PINGs, GETACK requests),
    /// outside any execution unit: replicas count it in their offset, the AOF never sees
    /// it (Redis writes these with replicationFeedSlaves only). While a unit is open (a
    /// suspended script's) it goes before the unit's writes, which are not in the stream.
    pub fn push_replication_only<'a, I>(&mut self, args: I)
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: ExactSizeIterator,
    {
        if !self.enabled {
            return;
        }
        let start = self.stream.len();
        encode_command(&mut self.stream, args);
        self.replication_only.push((start, self.stream.len()));
        self.offset += (self.stream.len() - start) as u64;
    }

    /// A command for replicas that belongs to no database (PUBLISH): on its own it is for
    /// replicas only; inside a unit (EXEC, a script) it goes with the unit's writes, which
    /// keeps the transaction's order (the AOF then carries it too, harmless on reload:
    /// nobody is subscribed yet).
    pub fn push_for_replicas<'a, I>(&mut self, args: I)
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: ExactSizeIterator,
    {
        if self.unit_commands == 0 {
            self.push_replication_only(args);
        } else {
            self.push_without_db(args);
        }
    }

    /// True if nothing was fed since the last take.
    pub fn is_empty(&self) -> bool {
        self.stream.is_empty()
    }

    /// Ends the execution unit: encodes its writes, in a MULTI/EXEC block if `atomic` and
    /// there is more than one.
    pub fn end_unit(&mut self, atomic: bool) {
        if self.unit_commands == 0 {
            self.atomic_hint = false;
            return;
        }
        let before = self.stream.len();
        let wrap = (atomic || std::mem::take(&mut self.atomic_hint)) && self.unit_commands > 1;
        let select = std::mem::take(&mut self.unit_select);
        if wrap {
            self.stream.extend_from_slice(&self.unit[..select]);
            encode_command(&mut self.stream, [&b"MULTI"[..]]);
            self.stream.extend_from_slice(&self.unit[select..]);
            self.unit.clear();
            encode_command(&mut self.stream, [&b"EXEC"[..]]);
        } else if self.stream.is_empty() {
            std::mem::swap(&mut self.stream, &mut self.unit);
        } else {
            self.stream.extend_from_slice(&self.unit);
            self.unit.clear();
        }
        self.unit_commands = 0;
        self.offset += (self.stream.len() - before) as u64;
    }

    /// Commands queued in the current unit so far.
    pub fn unit_commands(&self) -> usize {
        self.unit_commands
    }

    /// Bytes fed since the last call, and the ranges of them that are for replicas only.
    pub fn take(&mut self) -> (Vec<u8>, Vec<(usize, usize)>) {
        (std::mem::take(&mut self.stream), std::mem::take(&mut self.replication_only))
    }

    /// The database the stream's last SELECT chose (None: the next write selects one).
    pub fn selected_db(&self) -> Option<usize> {
        self.cur_db
    }

    /// Forgets the current database so the next write starts with a SELECT (a new
    /// consumer attached mid-stream).
    pub fn reset_db(&mut self) {
        self.cur_db = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_and_wraps_transactions() {
        let mut f = Feed { enabled: true, ..Feed::default() };
        f.push(0, [&b"SET"[..], b"a", b"1"]);
        f.end_unit(true);
        f.push(1, [&b"INCR"[..], b"b"]);
        f.push(1, [&b"DEL"[..], b"c"]);
        f.end_unit(true);
        let s = String::from_utf8(f.take().0).unwrap();
        assert_eq!(
            s,
            "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n\
             *2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nb\r\n*2\r\n$3\r\nDEL\r\n$1\r\nc\r\n*1\r\n$4\r\nEXEC\r\n"
        );
        assert_eq!(f.offset as usize, s.len());
    }

    #[test]
    fn replication_only_commands_are_marked_for_the_aof_to_skip() {
        let mut f = Feed { enabled: true, ..Feed::default() };
        f.push(0, [&b"SET"[..], b"a", b"1"]);
        f.end_unit(false);
        f.push_replication_only([&b"PING"[..]]);
        f.push(0, [&b"DEL"[..], b"a"]);
        f.end_unit(false);
        let (bytes, skip) = f.take();
        assert_eq!(skip.len(), 1);
        let (a, b) = skip[0];
        assert_eq!(&bytes[a..b], b"*1\r\n$4\r\nPING\r\n");
        assert_eq!(f.offset as usize, bytes.len(), "replicas count every byte");
    }

    #[test]
    fn disabled_feed_records_nothing() {
        let mut f = Feed::default();
        f.push(0, [&b"SET"[..], b"a", b"1"]);
        f.end_unit(false);
        assert!(f.take().0.is_empty());
        assert_eq!(f.offset, 0);
    }
}
