//! Replication's I/O: the master's per-replica senders (RDB transfer, then the stream from
//! the shared backlog) and the replica's link to its master. The protocol's decisions are
//! the engine's (`ferrokv_engine::replication`); this layer moves bytes and keeps time.

pub mod link;
pub mod sender;

use bytes::Bytes;
use ferrokv_engine::persistence::SnapshotSink;
use ferrokv_engine::ClientId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, watch, Notify};

/// One replica's RDB, chunk by chunk, from the snapshot to its sender.
pub enum RdbChunk {
    Data(Bytes),
    /// `repl-diskless-sync no`: the finished file, sent as `$<len>` from disk.
    File(std::fs::File),
    End,
    Abort,
}

pub struct RdbStream {
    pub rx: mpsc::UnboundedReceiver<RdbChunk>,
    /// Bytes queued and not yet written to the socket.
    pub queued: Arc<AtomicUsize>,
}

/// Replication state shared by the host, the senders and the link.
pub struct Repl {
    /// The stream's offset: senders wait for it to move.
    pub advanced: watch::Sender<u64>,
    /// RDB streams waiting for their replica's sender to pick them up.
    pub rdb_streams: Mutex<HashMap<ClientId, RdbStream>>,
    /// Wakes senders waiting for their RDB stream to appear.
    pub rdb_ready: Notify,
    /// The running link to our master, if we are a replica.
    pub link: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Synchronous replication: (epoch, committed offset), for replies waiting on it.
    pub committed: watch::Sender<(u64, u64)>,
    /// REPLFREEZE: the link drops whatever it is doing.
    pub freeze: Notify,
}

impl Repl {
    /// Waits until `need` of history `epoch` is committed, the history changes, or
    /// `timeout` passes. Returns what was reached: (epoch, committed offset).
    pub async fn wait_committed(&self, epoch: u64, need: u64, timeout: std::time::Duration) -> (u64, u64) {
        let mut rx = self.committed.subscribe();
        let done = |&(e, c): &(u64, u64)| e != epoch || c >= need;
        let _ = tokio::time::timeout(timeout, rx.wait_for(done)).await;
        let reached = *rx.borrow();
        reached
    }

    pub fn new() -> Arc<Repl> {
        let (tx, _) = watch::channel(0);
        let (committed, _) = watch::channel((0, 0));
        Arc::new(Repl {
            advanced: tx,
            rdb_streams: Mutex::new(HashMap::new()),
            rdb_ready: Notify::new(),
            link: Mutex::new(None),
            committed,
            freeze: Notify::new(),
        })
    }

    /// One RDB stream per replica, for their senders to pick up.
    pub fn open_streams(&self, ids: &[ClientId]) -> Vec<Target> {
        let mut targets = Vec::new();
        let mut streams = self.rdb_streams.lock();
        for &id in ids {
            let (tx, rx) = mpsc::unbounded_channel();
            let queued = Arc::new(AtomicUsize::new(0));
            streams.insert(id, RdbStream { rx, queued: queued.clone() });
            targets.push((tx, queued));
        }
        drop(streams);
        self.rdb_ready.notify_waiters();
        targets
    }

    /// The engine's `Host::open_replica_sink` for diskless syncs: the snapshot goes
    /// straight to every replica's stream.
    pub fn open_sink(
        &self,
        ids: &[ClientId],
        on_commit: Box<dyn FnOnce() + Send>,
    ) -> io::Result<Box<dyn SnapshotSink>> {
        let targets = self.open_streams(ids);
        Ok(Box::new(FanOut { targets, pending: Vec::with_capacity(CHUNK), on_commit: Some(on_commit) }))
    }
}

/// A replica's RDB stream, seen from the snapshot side.
pub type Target = (mpsc::UnboundedSender<RdbChunk>, Arc<AtomicUsize>);

/// `repl-diskless-sync no`: once the snapshot is safely in `path`, every replica gets its
/// own handle on the file (a later BGSAVE renaming over it does not disturb the transfer).
/// With `delete`, the file goes away at once (`rdb-del-sync-files` with no persistence):
/// the open handles keep its bytes until the last sender is done.
pub fn hand_file_to(targets: Vec<Target>, path: std::path::PathBuf, delete: bool) -> io::Result<()> {
    let file = std::fs::File::open(&path)?;
    for (tx, _) in &targets {
        if tx.send(RdbChunk::File(file.try_clone()?)).is_ok() {
            let _ = tx.send(RdbChunk::End);
        }
    }
    if delete {
        std::fs::remove_file(&path)?;
    }
    Ok(())
}

const CHUNK: usize = 64 * 1024;

/// Writes a snapshot to every replica's stream; a replica that went away is skipped.
struct FanOut {
    targets: Vec<(mpsc::UnboundedSender<RdbChunk>, Arc<AtomicUsize>)>,
    pending: Vec<u8>,
    /// Reports the snapshot finished (the engine waits for it like for a file's fsync).
    on_commit: Option<Box<dyn FnOnce() + Send>>,
}

impl FanOut {
    fn send_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let chunk = Bytes::from(std::mem::take(&mut self.pending));
        for (tx, queued) in &self.targets {
            if tx.send(RdbChunk::Data(chunk.clone())).is_ok() {
                queued.fetch_add(chunk.len(), Ordering::Relaxed);
            }
        }
        self.pending = Vec::with_capacity(CHUNK);
    }
}

impl io::Write for FanOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= CHUNK {
            self.send_pending();
        }
        if self.targets.iter().all(|(tx, _)| tx.is_closed()) {
            return Err(io::Error::other("no replica is waiting for this RDB anymore"));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send_pending();
        Ok(())
    }
}

impl SnapshotSink for FanOut {
    fn commit(mut self: Box<Self>) -> io::Result<()> {
        self.send_pending();
        for (tx, _) in &self.targets {
            let _ = tx.send(RdbChunk::End);
        }
        if let Some(f) = self.on_commit.take() {
            f();
        }
        Ok(())
    }
    fn abort(self: Box<Self>) {
        for (tx, _) in &self.targets {
            let _ = tx.send(RdbChunk::Abort);
        }
    }
    fn backlog(&self) -> usize {
        self.targets.iter().map(|(_, q)| q.load(Ordering::Relaxed)).max().unwrap_or(0)
    }
}
