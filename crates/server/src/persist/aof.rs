//! The append-only file on disk: the manifest, the incremental file being appended to,
//! and the threads that write and fsync it.
//!
//! Connection tasks append the write feed under the engine lock (so the file has the
//! execution order) and then wait, outside the lock, until their bytes are written
//! (`everysec`, `no`) or fsynced (`always`) before replying: an acknowledged write is on
//! the disk as promised. One writer thread drains everything appended meanwhile in one
//! `write` (and one `fdatasync` with `always`), so the cost is shared by all the clients
//! of a round — Redis's group commit, without stalling the event loop during the fsync.
//! With `everysec` a second thread fsyncs once a second, so a slow disk delays no write.

use super::sink::write_atomically;
use ferrokv_persist::aof::manifest::{manifest_name, Manifest};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Condvar};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fsync {
    No = 0,
    Always = 1,
    Everysec = 2,
}

impl Fsync {
    pub fn from_config(name: &str) -> Fsync {
        match name {
            "always" => Fsync::Always,
            "no" => Fsync::No,
            _ => Fsync::Everysec,
        }
    }
}

enum Item {
    Bytes(Vec<u8>),
    /// Later bytes go to this file (a rewrite started here).
    Switch(File),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Ticket of the last byte appended.
    end: u64,
    stop: bool,
}

/// Files and manifest, changed by the main thread (rewrite start) and the snapshot
/// writer (rewrite end).
struct Files {
    manifest: Manifest,
    /// The incremental file receiving appends, by name.
    current_incr: String,
    /// While a runtime `appendonly yes` waits for its first rewrite, appends go to a
    /// temporary incremental file not yet in the manifest.
    waiting_first_rewrite: bool,
}

pub struct Aof {
    pub dir: PathBuf,
    pub prefix: String,
    files: parking_lot::Mutex<Files>,
    queue: std::sync::Mutex<Queue>,
    wake: Condvar,
    written: AtomicU64,
    synced: AtomicU64,
    durable: tokio::sync::Notify,
    policy: AtomicU8,
    error: Mutex<Option<String>>,
    pub current_size: AtomicU64,
    pub base_size: AtomicU64,
    /// A file handle for the fsync thread (replaced on switch).
    sync_handle: Mutex<Option<File>>,
    stopped: AtomicBool,
    /// `aof-timestamp-enabled`: a `#TS:<unix seconds>` line before the first write of each
    /// second (and of each incremental file), for `check-aof --truncate-to-timestamp`.
    timestamps: AtomicBool,
    last_timestamp: std::sync::atomic::AtomicI64,
    /// Durations of the fsyncs of appends (`always` and `everysec`), for /metrics.
    pub fsync_latency: ferrokv_metrics::histogram::AtomicHistogram,
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn temp_incr_name(prefix: &str) -> String {
    format!("temp-{prefix}.incr")
}

impl Aof {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Opens the AOF for appending after loading (or when it is switched on at runtime):
    /// appends go to the last incremental file, or a new one.
    pub fn open(
        dir: &Path,
        prefix: &str,
        manifest: Manifest,
        policy: Fsync,
        first_rewrite: bool,
        first_ticket: u64,
    ) -> io::Result<Arc<Aof>> {
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(e.kind(), format!("Can't open or create append-only dir {}: {e}", dir.display()))
        })?;
        let mut manifest = manifest;
        let (name, created) = if first_rewrite {
            (temp_incr_name(prefix), true)
        } else {
            match manifest.last_incr() {
                Some(f) => (f.name.clone(), false),
                None => (manifest.new_incr(prefix), true),
            }
        };
        let path = dir.join(&name);
        let file = open_append(&path)
            .map_err(|e| io::Error::new(e.kind(), format!("Can't open the append-only file {name}: {e}")))?;
        if first_rewrite {
            file.set_len(0)?;
        }
        let incr_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if !first_rewrite {
            write_atomically(&dir.join(manifest_name(prefix)), manifest.format().as_bytes())?;
            if created {
                log::info!("Creating AOF incr file {name} on server start");
            } else {
                log::info!("Opening AOF incr file {name} on server start");
            }
        }
        let base_size =
            manifest.base.as_ref().and_then(|b| std::fs::metadata(dir.join(&b.name)).ok()).map_or(0, |m| m.len());
        let other_incr: u64 = manifest
            .incr
            .iter()
            .filter(|f| f.name != name)
            .filter_map(|f| std::fs::metadata(dir.join(&f.name)).ok())
            .map(|m| m.len())
            .sum();
        let aof = Arc::new(Aof {
            dir: dir.to_path_buf(),
            prefix: prefix.to_string(),
            files: parking_lot::Mutex::new(Files {
                manifest,
                current_incr: name,
                waiting_first_rewrite: first_rewrite,
            }),
            queue: std::sync::Mutex::new(Queue { end: first_ticket, ..Queue::default() }),
            wake: Condvar::new(),
            written: AtomicU64::new(first_ticket),
            synced: AtomicU64::new(first_ticket),
            durable: tokio::sync::Notify::new(),
            policy: AtomicU8::new(policy as u8),
            error: Mutex::new(None),
            current_size: AtomicU64::new(base_size + other_incr + incr_len),
            base_size: AtomicU64::new(base_size),
            sync_handle: Mutex::new(file.try_clone().ok()),
            stopped: AtomicBool::new(false),
            timestamps: AtomicBool::new(false),
            last_timestamp: std::sync::atomic::AtomicI64::new(-1),
            fsync_latency: Default::default(),
        });
        let writer = aof.clone();
        std::thread::Builder::new().name("aof-writer".into()).spawn(move || writer.write_loop(file, incr_len))?;
        let syncer = aof.clone();
        std::thread::Builder::new().name("aof-fsync".into()).spawn(move || syncer.fsync_loop())?;
        Ok(aof)
    }

    pub fn set_policy(&self, p: Fsync) {
        let old = self.policy.swap(p as u8, Ordering::AcqRel);
        if p == Fsync::Always && old != Fsync::Always as u8 {
            // Clients already waiting now wait for an fsync: give them one rather than
            // leave them until the next write (the fsync thread catches any straggler).
            self.sync_written();
        }
    }

    /// Fsyncs what is written and publishes it as synced.
    fn sync_written(&self) {
        let target = self.written.load(Ordering::Acquire);
        if target <= self.synced.load(Ordering::Acquire) {
            return;
        }
        let handle = self.sync_handle.lock().as_ref().and_then(|f| f.try_clone().ok());
        if let Some(f) = handle {
            let started = Instant::now();
            match f.sync_data() {
                Ok(()) => {
                    self.fsync_latency.record_us(started.elapsed().as_micros() as u64);
                    self.synced.fetch_max(target, Ordering::AcqRel);
                    self.durable.notify_waiters();
                }
                Err(e) => {
                    log::warn!("Fsync error on the AOF file: {e}");
                    *self.error.lock() = Some(e.to_string());
                }
            }
        }
    }

    fn policy(&self) -> Fsync {
        match self.policy.load(Ordering::Relaxed) {
            1 => Fsync::Always,
            0 => Fsync::No,
            _ => Fsync::Everysec,
        }
    }

    /// The last write or fsync error, until a write succeeds again.
    pub fn error(&self) -> Option<String> {
        self.error.lock().clone()
    }

    /// The ticket of the last byte appended. A later instance (the AOF switched off and on)
    /// starts its tickets here, so a client still holding an older ticket is not kept
    /// waiting for bytes the new instance will never count.
    pub fn end(&self) -> u64 {
        self.queue.lock().map(|q| q.end).unwrap_or(0)
    }

    /// The ticket up to which appends are fsynced into a file the manifest names (`None`
    /// while the first rewrite has not named the incremental file yet).
    pub fn fsynced(&self) -> Option<u64> {
        if self.files.lock().waiting_first_rewrite {
            return None;
        }
        Some(self.synced.load(Ordering::Acquire))
    }

    /// Bytes appended but not yet written.
    pub fn buffered(&self) -> u64 {
        let end = self.queue.lock().map(|q| q.end).unwrap_or(0);
        end.saturating_sub(self.written.load(Ordering::Relaxed))
    }

    pub fn set_timestamps(&self, on: bool) {
        self.timestamps.store(on, Ordering::Relaxed);
    }

    /// Appends write-feed bytes. Returns the ticket to wait on before replying.
    pub fn append(&self, bytes: Vec<u8>) -> u64 {
        let bytes = self.with_timestamp(bytes);
        let Ok(mut q) = self.queue.lock() else { return 0 };
        q.end += bytes.len() as u64;
        match q.items.back_mut() {
            Some(Item::Bytes(b)) => b.extend_from_slice(&bytes),
            _ => q.items.push_back(Item::Bytes(bytes)),
        }
        let end = q.end;
        drop(q);
        self.wake.notify_one();
        end
    }

    /// Prefixes `#TS:<now>` when timestamps are on and the second changed. Appends come
    /// in feed order (under the engine's lock), so the annotations are ordered too.
    fn with_timestamp(&self, bytes: Vec<u8>) -> Vec<u8> {
        if !self.timestamps.load(Ordering::Relaxed) {
            return bytes;
        }
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        if self.last_timestamp.swap(now, Ordering::Relaxed) == now {
            return bytes;
        }
        let mut out = format!("#TS:{now}\r\n").into_bytes();
        out.extend_from_slice(&bytes);
        out
    }

    fn reached(&self, ticket: u64) -> bool {
        let always = self.policy() == Fsync::Always;
        let done = if always { &self.synced } else { &self.written };
        // While writes fail (disk full), `everysec` and `no` reply anyway, as Redis does:
        // the bytes stay queued and are retried, and new writes are refused with -MISCONF
        // meanwhile. `always` keeps the reply until the bytes are on disk (Redis exits
        // instead); its clients wait for the disk to recover.
        done.load(Ordering::Acquire) >= ticket
            || self.stopped.load(Ordering::Acquire)
            || (!always && self.error.lock().is_some())
    }

    /// Waits until the bytes up to `ticket` are as durable as `appendfsync` promises.
    pub async fn wait(&self, ticket: u64) {
        loop {
            let notified = self.durable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.reached(ticket) {
                return;
            }
            notified.await;
        }
    }

    /// Blocking form of [`Aof::wait`], for shutdown.
    pub fn flush_and_sync(&self) {
        let ticket = self.queue.lock().map(|q| q.end).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.written.load(Ordering::Acquire) < ticket && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(f) = self.sync_handle.lock().as_ref() {
            let _ = f.sync_data();
        }
    }

    /// Stops the threads once everything appended is written.
    pub fn stop(&self) {
        self.flush_and_sync();
        if let Ok(mut q) = self.queue.lock() {
            q.stop = true;
        }
        self.wake.notify_all();
        self.stopped.store(true, Ordering::Release);
        self.durable.notify_waiters();
    }

    fn write_loop(self: Arc<Self>, mut file: File, mut file_len: u64) {
        let mut failing_since: Option<Instant> = None;
        loop {
            let (items, end) = {
                let Ok(mut q) = self.queue.lock() else { return };
                while q.items.is_empty() && !q.stop {
                    q = match self.wake.wait(q) {
                        Ok(q) => q,
                        Err(_) => return,
                    };
                }
                if q.items.is_empty() && q.stop {
                    return;
                }
                (std::mem::take(&mut q.items), q.end)
            };
            for item in items {
                match item {
                    Item::Bytes(bytes) => loop {
                        match file.write_all(&bytes) {
                            Ok(()) => {
                                file_len += bytes.len() as u64;
                                self.current_size.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                                if failing_since.take().is_some() {
                                    log::warn!("AOF write error looks solved, Redis can write again.");
                                    *self.error.lock() = None;
                                }
                                break;
                            }
                            Err(e) => {
                                // Never leave half a command behind: cut back to the last
                                // whole write and try again (the data stays queued).
                                let _ = file.set_len(file_len);
                                if failing_since.is_none() {
                                    log::warn!("Error writing to the AOF file: {e}");
                                    failing_since = Some(Instant::now());
                                }
                                *self.error.lock() = Some(e.to_string());
                                self.durable.notify_waiters();
                                std::thread::sleep(Duration::from_millis(100));
                            }
                        }
                    },
                    Item::Switch(next) => {
                        let _ = file.sync_data();
                        file_len = next.metadata().map(|m| m.len()).unwrap_or(0);
                        *self.sync_handle.lock() = next.try_clone().ok();
                        file = next;
                    }
                }
            }
            if self.policy() == Fsync::Always {
                let mut started = Instant::now();
                while let Err(e) = file.sync_data() {
                    log::warn!("Fsync error on the AOF file: {e}");
                    *self.error.lock() = Some(e.to_string());
                    std::thread::sleep(Duration::from_millis(100));
                    started = Instant::now();
                }
                self.fsync_latency.record_us(started.elapsed().as_micros() as u64);
                self.synced.fetch_max(end, Ordering::AcqRel);
            }
            self.written.store(end, Ordering::Release);
            self.durable.notify_waiters();
        }
    }

    /// `everysec`: one fsync a second, off the write path. With `always` the writer
    /// fsyncs itself; this only catches bytes written just as the policy changed.
    fn fsync_loop(self: Arc<Self>) {
        while !self.stopped.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1000));
            if self.policy() != Fsync::No {
                self.sync_written();
            }
        }
    }

    /// A rewrite starts: later appends go to a new incremental file, listed in the
    /// manifest at once (unless the AOF is waiting for its first rewrite). Returns the
    /// path the new base is to be written to.
    pub fn begin_rewrite(&self, rdb: bool) -> io::Result<(PathBuf, String, String)> {
        let mut files = self.files.lock();
        let mut next = files.manifest.clone();
        let incr = if files.waiting_first_rewrite {
            // Appends keep going to the temporary file; it is named at the end.
            files.current_incr.clone()
        } else {
            let name = next.new_incr(&self.prefix);
            let f = open_append(&self.path(&name))?;
            write_atomically(&self.path(&manifest_name(&self.prefix)), next.format().as_bytes())?;
            files.manifest = next.clone();
            files.current_incr = name.clone();
            self.last_timestamp.store(-1, Ordering::Relaxed);
            if let Ok(mut q) = self.queue.lock() {
                q.items.push_back(Item::Switch(f));
            }
            self.wake.notify_one();
            name
        };
        let base = next.new_base(&self.prefix, rdb);
        Ok((self.path(&base), base, incr))
    }

    /// The new base is in place: it replaces the old base and every incremental file before
    /// `incr`, which become history and are deleted once the manifest says so.
    pub fn finish_rewrite(&self, base: &str, incr: &str) -> io::Result<()> {
        let mut files = self.files.lock();
        let mut next = files.manifest.clone();
        let rdb = base.ends_with(".rdb");
        let named = next.new_base(&self.prefix, rdb);
        if named != base {
            return Err(io::Error::other(format!("AOF rewrite produced {base}, expected {named}")));
        }
        let mut rename_temp = None;
        if files.waiting_first_rewrite {
            let name = next.new_incr(&self.prefix);
            rename_temp = Some((incr.to_string(), name));
        }
        next.retire_incr_before_last();
        if let Some((from, to)) = &rename_temp {
            std::fs::rename(self.path(from), self.path(to))?;
            files.current_incr = to.clone();
        }
        commit_manifest(&self.dir, &self.prefix, &mut next)?;
        files.manifest = next;
        files.waiting_first_rewrite = false;
        let base_size = std::fs::metadata(self.path(base)).map(|m| m.len()).unwrap_or(0);
        let incr_size = std::fs::metadata(self.path(&files.current_incr)).map(|m| m.len()).unwrap_or(0);
        self.base_size.store(base_size, Ordering::Relaxed);
        self.current_size.store(base_size + incr_size, Ordering::Relaxed);
        Ok(())
    }
}

/// Writes the manifest after a rewrite, then deletes the files it retired (history) and,
/// as Redis does, writes it again without them.
fn commit_manifest(dir: &Path, prefix: &str, next: &mut Manifest) -> io::Result<()> {
    let path = dir.join(manifest_name(prefix));
    write_atomically(&path, next.format().as_bytes())?;
    if next.history.is_empty() {
        return Ok(());
    }
    for h in std::mem::take(&mut next.history) {
        if let Err(e) = std::fs::remove_file(dir.join(&h.name)) {
            log::warn!("Failed to remove the AOF history file {}: {e}", h.name);
        } else {
            log::info!("Removing the history file {} in the background", h.name);
        }
    }
    write_atomically(&path, next.format().as_bytes())
}

/// BGREWRITEAOF with the AOF off, as Redis 7.0 runs it: a new base in `dir` (created if
/// missing) that the manifest names in place of the old base and of every incremental
/// file (no incremental file is opened: nothing is appended). Returns where the base is
/// written and what to run once it is in place.
pub fn begin_offline_rewrite(
    dir: &Path,
    prefix: &str,
    manifest: Manifest,
    rdb: bool,
) -> io::Result<(PathBuf, super::sink::AfterCommit)> {
    std::fs::create_dir_all(dir).map_err(|e| {
        log::warn!("Can't open or create append-only dir {}: {e}", dir.display());
        e
    })?;
    let mut next = manifest;
    let base = next.new_base(prefix, rdb);
    next.retire_all_incr();
    let (dir, prefix) = (dir.to_path_buf(), prefix.to_string());
    Ok((dir.join(&base), Box::new(move || commit_manifest(&dir, &prefix, &mut next))))
}
