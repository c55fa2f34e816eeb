//! The I/O half of persistence: files, threads and the task that drives snapshots. What
//! to save and when is the engine's business (`ferrokv_engine::persistence`).

pub mod aof;
pub mod load;
pub mod sink;

use crate::Shared;
use aof::{Aof, Fsync};
use ferrokv_config::{pid, Config};
use ferrokv_engine::persistence::{Progress, Purpose, SnapshotSink};
use ferrokv_persist::aof::Manifest;
use parking_lot::Mutex;
use sink::{AfterCommit, BackgroundSink, FileSink};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// Keys walked per engine-lock hold while a background snapshot runs.
const SNAPSHOT_BUDGET: usize = 1000;
/// Bytes a snapshot may get ahead of its writer thread before the walk waits.
const MAX_BACKLOG: usize = 32 << 20;

/// A finished background snapshot, reported by its writer thread.
pub type Completion = (Purpose, Result<(), String>);

/// What the host side of persistence shares between the engine's host, connection tasks
/// and the snapshot driver.
pub struct Persist {
    pub aof: Mutex<Option<Arc<Aof>>>,
    /// Where the next AOF instance starts its tickets (see [`Aof::end`]).
    next_ticket: std::sync::atomic::AtomicU64,
    /// Wakes the snapshot driver.
    pub kick: Notify,
    /// A snapshot writer made progress.
    pub progress: Arc<Notify>,
    done: mpsc::UnboundedSender<Completion>,
}

impl Persist {
    pub fn new() -> (Arc<Persist>, mpsc::UnboundedReceiver<Completion>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let p = Persist {
            aof: Mutex::new(None),
            next_ticket: std::sync::atomic::AtomicU64::new(0),
            kick: Notify::new(),
            progress: Arc::new(Notify::new()),
            done: tx,
        };
        (Arc::new(p), rx)
    }

    /// Reports a finished background snapshot to the engine (through `completions`).
    pub fn report_done(&self, purpose: Purpose, result: Result<(), String>) {
        let _ = self.done.send((purpose, result));
    }

    pub fn aof(&self) -> Option<Arc<Aof>> {
        self.aof.lock().clone()
    }

    pub fn dbfilename(cfg: &Config) -> PathBuf {
        PathBuf::from(cfg.str(pid("dbfilename")))
    }

    pub fn aof_dir(cfg: &Config) -> PathBuf {
        PathBuf::from(cfg.str(pid("appenddirname")))
    }

    /// The engine's `Host::open_snapshot`.
    pub fn open_snapshot(&self, purpose: Purpose, cfg: &Config) -> io::Result<Box<dyn SnapshotSink>> {
        match purpose {
            Purpose::Save => Ok(Box::new(FileSink::create(&Self::dbfilename(cfg), None)?)),
            Purpose::BgSave => {
                let file = FileSink::create(&Self::dbfilename(cfg), None)?;
                Ok(Box::new(self.background(file, purpose)?))
            }
            Purpose::Replication => Err(io::Error::other("replication snapshots go through open_replica_sink")),
            Purpose::AofBase => {
                let aof = self.aof().ok_or_else(|| io::Error::other("AOF is off"))?;
                let rdb = cfg.bool(pid("aof-use-rdb-preamble"));
                let (path, base, incr) = aof.begin_rewrite(rdb)?;
                let finisher = aof.clone();
                let after = Box::new(move || finisher.finish_rewrite(&base, &incr));
                log::info!("Creating AOF base file {} on server start", path.display());
                Ok(Box::new(FileSink::create(&path, Some(after))?))
            }
            Purpose::AofRewrite => {
                let rdb = cfg.bool(pid("aof-use-rdb-preamble"));
                let (path, after): (PathBuf, AfterCommit) = match self.aof() {
                    Some(aof) => {
                        let (path, base, incr) = aof.begin_rewrite(rdb)?;
                        (path, Box::new(move || aof.finish_rewrite(&base, &incr)))
                    }
                    None => {
                        let (dir, prefix) = (Self::aof_dir(cfg), cfg.str(pid("appendfilename")).to_string());
                        let manifest = load::read_manifest(&dir, &prefix).map_err(io::Error::other)?;
                        aof::begin_offline_rewrite(&dir, &prefix, manifest.unwrap_or_default(), rdb)?
                    }
                };
                let file = FileSink::create(&path, Some(after))?;
                Ok(Box::new(self.background(file, purpose)?))
            }
        }
    }

    /// `repl-diskless-sync no`: the replication snapshot is written to `dbfilename` like a
    /// BGSAVE; `after` hands the finished file to the replicas.
    pub fn open_disk_replication(&self, cfg: &Config, after: AfterCommit) -> io::Result<Box<dyn SnapshotSink>> {
        let file = FileSink::create(&Self::dbfilename(cfg), Some(after))?;
        Ok(Box::new(self.background(file, Purpose::Replication)?))
    }

    fn background(&self, file: FileSink, purpose: Purpose) -> io::Result<BackgroundSink> {
        let done = self.done.clone();
        BackgroundSink::spawn(
            file,
            self.progress.clone(),
            Box::new(move |result| {
                let _ = done.send((purpose, result));
            }),
        )
    }

    /// The engine's `Host::feed`: the AOF gets the bytes; the ticket orders replies.
    pub fn feed(&self, bytes: Vec<u8>) -> u64 {
        match self.aof.lock().as_ref() {
            Some(aof) => aof.append(bytes),
            None => 0,
        }
    }

    /// The engine's `Host::aof_enabled`: at runtime, switching on opens a temporary
    /// incremental file that the first rewrite names; switching off closes the files.
    pub fn aof_enabled(&self, on: bool, cfg: &Config) {
        let mut slot = self.aof.lock();
        if on {
            if slot.is_some() {
                return;
            }
            let dir = Self::aof_dir(cfg);
            let prefix = cfg.str(pid("appendfilename")).to_string();
            let manifest = match load::read_manifest(&dir, &prefix) {
                Ok(m) => m.unwrap_or_default(),
                Err(e) => {
                    log::warn!("{e}");
                    Manifest::default()
                }
            };
            let policy = Fsync::from_config(&cfg.get_formatted(pid("appendfsync")));
            let first_ticket = self.next_ticket.load(std::sync::atomic::Ordering::Relaxed);
            match Aof::open(&dir, &prefix, manifest, policy, true, first_ticket) {
                Ok(aof) => {
                    aof.set_timestamps(cfg.bool(pid("aof-timestamp-enabled")));
                    *slot = Some(aof)
                }
                Err(e) => log::warn!("Unable to turn on AOF: {e}"),
            }
        } else if let Some(aof) = slot.take() {
            aof.stop();
            self.next_ticket.store(aof.end(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Waits until the write feed up to `ticket` is as durable as promised.
    pub async fn durable(&self, ticket: u64) {
        let aof = self.aof();
        if let Some(aof) = aof {
            aof.wait(ticket).await;
        }
    }
}

/// Walks background snapshots forward between commands, never letting the serialized
/// bytes run far ahead of the writer thread (the memory a snapshot may add is bounded).
pub async fn snapshot_driver(shared: Arc<Shared>) {
    let persist = shared.persist.clone();
    loop {
        persist.kick.notified().await;
        loop {
            let (progress, delay) = {
                let mut e = shared.engine.lock();
                // `rdb-key-save-delay` (µs per key, a testing aid Redis has too) slows
                // the walk down, outside the lock, so writes can race it.
                let delay = e.cfg.int(pid("rdb-key-save-delay")).max(0) as u64;
                let budget = if delay > 0 { 10 } else { SNAPSHOT_BUDGET };
                (e.snapshot_step(budget), delay)
            };
            if delay > 0 {
                tokio::time::sleep(Duration::from_micros(delay * 10)).await;
            }
            match progress {
                Progress::Idle | Progress::Walked => break,
                Progress::Running { backlog } if backlog > MAX_BACKLOG => {
                    let _ = tokio::time::timeout(Duration::from_millis(10), persist.progress.notified()).await;
                }
                Progress::Running { .. } => tokio::task::yield_now().await,
            }
        }
    }
}

/// Reports finished background snapshots to the engine.
pub async fn completions(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Completion>) {
    while let Some((purpose, result)) = rx.recv().await {
        shared.engine.lock().snapshot_done(purpose, result, crate::conn::now_ms());
    }
}

/// Loads the dataset, then opens the AOF for appending (creating its base from the loaded
/// dataset if it had none). Errors are fatal at startup.
pub fn startup(shared: &Arc<Shared>) -> Result<(), String> {
    let (aof_on, dir, prefix, truncated_ok, policy) = {
        let e = shared.engine.lock();
        let cfg = &e.cfg;
        (
            cfg.bool(pid("appendonly")),
            Persist::aof_dir(cfg),
            cfg.str(pid("appendfilename")).to_string(),
            cfg.bool(pid("aof-load-truncated")),
            Fsync::from_config(&cfg.get_formatted(pid("appendfsync"))),
        )
    };
    let started = std::time::Instant::now();
    remove_stale_temp_files(std::path::Path::new("."));
    remove_stale_temp_files(&dir);
    let loaded = if aof_on {
        let mut manifest = load::read_manifest(&dir, &prefix)?;
        if let Some(upgraded) = upgrade_old_style_aof(&dir, &prefix, manifest.as_ref())? {
            manifest = Some(upgraded);
        }
        if manifest.is_none() {
            refuse_orphaned_aof_files(&dir, &prefix)?;
        }
        let has_files = manifest.as_ref().is_some_and(|m| m.load_order().next().is_some());
        let loaded = match manifest.as_ref().filter(|_| has_files) {
            Some(m) => {
                load::load_aof(shared, &dir, m, truncated_ok)?;
                Some("append only file")
            }
            // No AOF yet (first start with appendonly yes): keep an existing RDB.
            None => load_rdb_if_present(shared)?.then_some("disk"),
        };
        shared.engine.lock().end_loading();
        let aof = Aof::open(&dir, &prefix, manifest.clone().unwrap_or_default(), policy, !has_files, 0)
            .map_err(|e| e.to_string())?;
        aof.set_timestamps(shared.engine.lock().cfg.bool(pid("aof-timestamp-enabled")));
        *shared.persist.aof.lock() = Some(aof);
        let mut e = shared.engine.lock();
        e.aof_opened_at_startup();
        if !has_files {
            // Like Redis's base creation on first start: the AOF must hold the dataset.
            drop(e);
            create_first_base(shared)?;
        }
        loaded
    } else {
        let loaded = load_rdb_if_present(shared)?;
        shared.engine.lock().end_loading();
        loaded.then_some("disk")
    };
    // As Redis: said only when a file was loaded.
    if let Some(source) = loaded {
        log::info!("DB loaded from {source}: {:.3} seconds", started.elapsed().as_secs_f64());
    }
    shared.engine.lock().note_startup_dataset();
    Ok(())
}

/// Temporary files of snapshots that a killed process never finished
/// (`temp-snapshot-<pid>.<name>`, `temp-tmp-<pid>.<name>`, see `sink.rs`) would stay forever,
/// each as big as a dataset. Those of processes that no longer exist are removed; a live
/// process's (another server sharing the directory) are left alone.
fn remove_stale_temp_files(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for name in entries.filter_map(Result::ok).filter_map(|e| e.file_name().into_string().ok()) {
        let Some(rest) = name.strip_prefix("temp-snapshot-").or_else(|| name.strip_prefix("temp-tmp-")) else {
            continue;
        };
        let Some(pid) = rest.split('.').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        match std::fs::remove_file(dir.join(&name)) {
            Ok(()) => log::warn!("Removed the temporary file {name} of an unfinished snapshot"),
            Err(e) => log::warn!("Can't remove the stale temporary file {name}: {e}"),
        }
    }
}

/// An AOF directory holding base or incremental files but no manifest lost its manifest
/// (deleted by hand, a bad restore): starting would create a new AOF whose first base
/// takes the name of the old one and overwrites it. Refuse, and say how to recover.
/// A single-file `appendonly.aof` in `dir` (Redis before 7.0) becomes the base of a
/// multi-part AOF, as Redis 7 upgrades it: the manifest is written first, then the file is
/// moved into the AOF directory under its own name. Done when the directory or its
/// manifest is missing, or when a previous upgrade wrote the manifest but was stopped
/// before the move.
fn upgrade_old_style_aof(
    dir: &std::path::Path,
    prefix: &str,
    manifest: Option<&Manifest>,
) -> Result<Option<Manifest>, String> {
    use ferrokv_persist::aof::manifest::{AofFile, FileKind};
    let old = std::path::Path::new(prefix);
    if !old.is_file() {
        return Ok(None);
    }
    let interrupted = manifest.is_some_and(|m| {
        m.incr.is_empty() && m.base.as_ref().is_some_and(|b| b.name == prefix) && !dir.join(prefix).exists()
    });
    let empty = manifest.is_none_or(|m| m.base.is_none() && m.incr.is_empty());
    if dir.is_dir() && !empty && !interrupted {
        return Ok(None);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("Can't open or create append-only dir {}: {e}", dir.display()))?;
    let upgraded = Manifest {
        base: Some(AofFile { name: prefix.to_string(), seq: 1, kind: FileKind::Base }),
        base_seq: 1,
        ..Manifest::default()
    };
    let path = dir.join(ferrokv_persist::aof::manifest::manifest_name(prefix));
    sink::write_atomically(&path, upgraded.format().as_bytes()).map_err(|e| e.to_string())?;
    std::fs::rename(old, dir.join(prefix))
        .map_err(|e| format!("Error trying to move the old AOF file {prefix} into dir {}: {e}", dir.display()))?;
    log::info!("Successfully migrated an old-style AOF file ({prefix}) into the AOF directory ({}).", dir.display());
    Ok(Some(upgraded))
}

/// Whether `CONFIG SET appendonly yes` may open the AOF: the same refusals as at startup
/// (an unreadable manifest, AOF files a new manifest would overwrite).
pub fn check_aof_can_start(cfg: &Config) -> Result<(), String> {
    let dir = Persist::aof_dir(cfg);
    let prefix = cfg.str(pid("appendfilename"));
    match load::read_manifest(&dir, prefix)? {
        Some(_) => Ok(()),
        None => refuse_orphaned_aof_files(&dir, prefix),
    }
}

fn refuse_orphaned_aof_files(dir: &std::path::Path, prefix: &str) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    let mut found: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            n.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')).is_some_and(|r| {
                let kind = r.trim_start_matches(|c: char| c.is_ascii_digit());
                kind.len() < r.len() && matches!(kind, ".base.rdb" | ".base.aof" | ".incr.aof")
            })
        })
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    Err(format!(
        "The AOF directory {} holds AOF files ({}) but no manifest {}: refusing to open the AOF, since a new one would overwrite them. Restore the manifest (one line per file: file <name> seq <n> type b|i, checked by ferrokv check-aof), or move the files away to go on without them.",
        dir.display(),
        found.join(", "),
        ferrokv_persist::aof::manifest::manifest_name(prefix)
    ))
}

/// An OS error as C's `strerror` words it (Redis puts that in -MISCONF replies): without
/// Rust's " (os error N)".
pub fn strerror_text(s: &str) -> String {
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s.to_string(),
    }
}

/// Loads `dbfilename` if it exists; true if it did.
fn load_rdb_if_present(shared: &Arc<Shared>) -> Result<bool, String> {
    let path = {
        let e = shared.engine.lock();
        Persist::dbfilename(&e.cfg)
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(format!("Fatal error loading the DB, check server logs. Exiting. ({}: {e})", path.display()))
        }
    };
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    shared.engine.lock().begin_loading(size, crate::conn::now_ms());
    let started = std::time::Instant::now();
    let name = path.display().to_string();
    // Redis runs redis-check-rdb on a file it cannot load; the next step here is ours.
    let next_step = || {
        let full = std::env::current_dir().map(|d| d.join(&path)).unwrap_or_else(|_| path.clone());
        format!(
            "Run 'ferrokv check-rdb {}' to see where it is damaged; restore a good copy, or move it away to start with an empty dataset. Exiting.",
            full.display()
        )
    };
    if size == 0 {
        return Err(format!("Fatal error loading the DB ({name}): the file is empty (0 bytes). {}", next_step()));
    }
    let reader = ferrokv_persist::rdb::RdbReader::new(io::BufReader::with_capacity(1 << 20, file))
        .map_err(|e| format!("Fatal error loading the DB ({name}): {e}. {}", next_step()))?;
    load::load_rdb_stream(shared, reader, &name, false)
        .map_err(|e| format!("Fatal error loading the DB ({e}). {}", next_step()))?;
    let e = shared.engine.lock();
    log::info!(
        "Done loading RDB, keys loaded: {}, keys expired: {}.",
        e.persist.rdb_last_load_keys_loaded,
        e.persist.rdb_last_load_keys_expired
    );
    log::debug!("RDB {name} loaded in {:.3} seconds", started.elapsed().as_secs_f64());
    Ok(true)
}

/// Writes the first base of a new AOF synchronously, before clients can write.
fn create_first_base(shared: &Arc<Shared>) -> Result<(), String> {
    let mut e = shared.engine.lock();
    e.aof_base_sync(crate::conn::now_ms()).map_err(|err| format!("Can't create the AOF base file: {err}"))
}

/// The engine lock is not held while replies wait for the disk; this waits for the AOF.
pub fn fsync_policy(cfg: &Config) -> Fsync {
    Fsync::from_config(&cfg.get_formatted(pid("appendfsync")))
}

/// The AOF files the manifest on disk lists, in load order, with their contents (DEBUG
/// LOADAOF; the caller flushed the writer first).
pub fn read_aof_files(cfg: &Config) -> Result<Vec<(String, Vec<u8>)>, String> {
    let dir = Persist::aof_dir(cfg);
    let prefix = cfg.str(pid("appendfilename")).to_string();
    let manifest = load::read_manifest(&dir, &prefix)?.ok_or("The AOF manifest file doesn't exist")?;
    let mut files = Vec::new();
    for f in manifest.load_order() {
        let bytes =
            std::fs::read(dir.join(&f.name)).map_err(|e| format!("The AOF file {} can't be read: {e}", f.name))?;
        files.push((f.name.clone(), bytes));
    }
    if files.is_empty() {
        return Err("The AOF manifest lists no file".into());
    }
    Ok(files)
}
