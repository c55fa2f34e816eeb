//! Snapshot formats: how recorded keys become bytes in a sink.

use super::{Purpose, SnapshotSink};
use crate::engine::Engine;
use ferrokv_config::pid;
use ferrokv_keyspace::{Obj, SmallBytes};
use ferrokv_persist::aof::rewrite::CommandEncoder;
use std::io::{self, Write};

/// Encodes a snapshot's keys, in any database order, into a sink.
pub trait SnapshotFormat: Send {
    fn key(&mut self, db: usize, key: &SmallBytes, obj: &Obj, expire_ms: Option<i64>) -> io::Result<()>;
    /// Writes the trailer and hands the sink back for committing.
    fn finish(self: Box<Self>) -> io::Result<Box<dyn SnapshotSink>>;
    fn abort(self: Box<Self>);
    fn backlog(&self) -> usize;
}

/// Writes are combined into chunks of this size before reaching the sink.
const CHUNK: usize = 64 * 1024;

/// An AOF base file made of commands (`aof-use-rdb-preamble no`).
pub struct CommandsFormat {
    enc: CommandEncoder,
    buf: Vec<u8>,
    sink: Box<dyn SnapshotSink>,
}

impl CommandsFormat {
    /// Starts the file with a FUNCTION LOAD per library, as Redis's rewrite does.
    pub fn new<'a>(sink: Box<dyn SnapshotSink>, libraries: impl Iterator<Item = &'a [u8]>) -> CommandsFormat {
        let mut buf = Vec::with_capacity(CHUNK);
        for code in libraries {
            ferrokv_resp::encode_command(&mut buf, [&b"FUNCTION"[..], b"LOAD", code]);
        }
        CommandsFormat { enc: CommandEncoder::new(), buf, sink }
    }
}

impl SnapshotFormat for CommandsFormat {
    fn key(&mut self, db: usize, key: &SmallBytes, obj: &Obj, expire_ms: Option<i64>) -> io::Result<()> {
        self.enc.key(&mut self.buf, db, key, obj, expire_ms);
        if self.buf.len() >= CHUNK {
            self.sink.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<Box<dyn SnapshotSink>> {
        self.sink.write_all(&self.buf)?;
        self.sink.flush()?;
        Ok(self.sink)
    }

    fn abort(self: Box<Self>) {
        self.sink.abort();
    }

    fn backlog(&self) -> usize {
        self.sink.backlog()
    }
}

impl Engine {
    /// The format a snapshot for `purpose` is written in.
    pub(crate) fn snapshot_format(
        &self,
        purpose: Purpose,
        sink: Box<dyn SnapshotSink>,
        now_ms: i64,
    ) -> io::Result<Box<dyn SnapshotFormat>> {
        let aof_base = matches!(purpose, Purpose::AofRewrite | Purpose::AofBase);
        if aof_base && !self.cfg.bool(pid("aof-use-rdb-preamble")) {
            let libraries = self.scripts.functions().libraries().map(|l| &l.code[..]);
            return Ok(Box::new(CommandsFormat::new(sink, libraries)));
        }
        Ok(Box::new(super::rdb::RdbFormat::start(self, sink, purpose, now_ms)?))
    }
}
