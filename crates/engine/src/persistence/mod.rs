//! Persistence decisions: when to snapshot, what a snapshot contains, what INFO and the
//! write guards say about it. The bytes go to sinks the host provides (files, sockets),
//! so everything here runs on plain values and is testable without a disk.
//!
//! A snapshot is a walk of the keyspace in epochs (see `ferrokv_keyspace::snapshot`): it
//! starts at a command boundary, the host drives it with [`Engine::snapshot_step`] between
//! commands, and every key is recorded as it was at the start, whatever the commands do
//! meanwhile. One snapshot runs at a time, like Redis's one child process.

mod aof_reload;
pub mod format;
pub mod load;
pub mod rdb;

use crate::engine::Engine;
use ferrokv_config::{pid, Val};
use ferrokv_keyspace::snapshot::next_epoch;
use std::io;

pub use format::SnapshotFormat;

/// What a snapshot is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// SAVE, SHUTDOWN, DEBUG RELOAD: written synchronously to `dbfilename`.
    Save,
    /// BGSAVE and save points: `dbfilename`, in the background.
    BgSave,
    /// BGREWRITEAOF: the new base file of the append-only file.
    AofRewrite,
    /// A full resync: the RDB streamed to the replicas waiting for one.
    Replication,
    /// The first base of a new AOF, written synchronously before any write is accepted
    /// (so no acknowledged write depends on a rewrite still to come).
    AofBase,
}

/// Where a snapshot's bytes go. Writing may queue; [`SnapshotSink::commit`] makes the
/// result durable and visible (a file: fsync, rename over the old one, fsync the
/// directory), or — for a background sink — hands that off and reports later through
/// [`Engine::snapshot_done`].
pub trait SnapshotSink: io::Write + Send {
    fn commit(self: Box<Self>) -> io::Result<()>;
    /// Gives up: no trace left (temporary files removed).
    fn abort(self: Box<Self>);
    /// Bytes accepted but not yet written out (the driver slows down above a bound).
    fn backlog(&self) -> usize {
        0
    }
}

/// How a background snapshot is going, for the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// No snapshot is being walked.
    Idle,
    /// More to walk; `backlog` bytes wait for the writer.
    Running { backlog: usize },
    /// Walk complete, output handed to the sink.
    Walked,
}

struct Job {
    purpose: Purpose,
    started_ms: i64,
    format: Option<Box<dyn SnapshotFormat>>,
    keys_done: u64,
    /// Set when the format failed; reported when the walk ends.
    error: Option<String>,
}

/// Everything INFO persistence reports, and the pending work.
pub struct Persistence {
    job: Option<Job>,
    /// A snapshot requested inside a transaction starts once the unit is complete, so the
    /// snapshot never splits a transaction.
    pending: Option<Purpose>,
    /// The walk ended; the sink is finishing in the background.
    committing: Option<(Purpose, i64)>,
    /// The replication snapshot in progress goes to `dbfilename` first
    /// (`repl-diskless-sync no`): it is also a BGSAVE.
    replication_to_disk: bool,
    pub keys_total: u64,
    pub keys_processed: u64,
    pub lastbgsave_ok: bool,
    pub last_bgsave_try_ms: i64,
    pub rdb_save_time_last: i64,
    pub rdb_saves: u64,
    pub dirty_before_bgsave: u64,
    pub bgsave_scheduled: bool,
    pub loading: Option<Loading>,
    pub rdb_last_load_keys_loaded: u64,
    pub rdb_last_load_keys_expired: u64,
    pub aof: AofStatus,
    /// DEBUG QUICKLIST-PACKED-THRESHOLD: list elements of at least this many bytes get a
    /// quicklist node of their own, stored plain (Redis's default: 1 GiB).
    pub list_packed_threshold: usize,
    /// DEBUG SET-SKIP-CHECKSUM-VALIDATION: RESTORE and a replica's full sync skip the CRC-64
    /// check.
    pub skip_checksum_validation: bool,
    /// INFO `dump_payload_sanitizations`: payloads deep-sanitized (sanitize-dump-payload).
    pub dump_payload_sanitizations: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Loading {
    pub start_s: i64,
    pub total_bytes: u64,
    pub loaded_bytes: u64,
}

/// The append-only file as INFO and the write guard see it. The host owns the files and
/// reports sizes and write errors here.
#[derive(Clone, Debug)]
pub struct AofStatus {
    pub enabled: bool,
    pub rewrite_scheduled: bool,
    pub rewrite_time_last: i64,
    pub last_rewrite_ok: bool,
    pub rewrites: u64,
    pub rewrite_failures: u64,
    /// The last write or fsync error, `None` when writes succeed.
    pub write_error: Option<String>,
    pub current_size: u64,
    pub base_size: u64,
    pub buffer_length: u64,
    pub delayed_fsync: u64,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            job: None,
            pending: None,
            committing: None,
            replication_to_disk: false,
            keys_total: 0,
            keys_processed: 0,
            lastbgsave_ok: true,
            last_bgsave_try_ms: 0,
            rdb_save_time_last: -1,
            rdb_saves: 0,
            dirty_before_bgsave: 0,
            bgsave_scheduled: false,
            list_packed_threshold: 1 << 30,
            skip_checksum_validation: false,
            dump_payload_sanitizations: 0,
            loading: None,
            rdb_last_load_keys_loaded: 0,
            rdb_last_load_keys_expired: 0,
            aof: AofStatus {
                enabled: false,
                rewrite_scheduled: false,
                rewrite_time_last: -1,
                last_rewrite_ok: true,
                rewrites: 0,
                rewrite_failures: 0,
                write_error: None,
                current_size: 0,
                base_size: 0,
                buffer_length: 0,
                delayed_fsync: 0,
            },
        }
    }
}

/// How Redis words a background start.
pub enum Started {
    Now,
    Scheduled,
}

impl Persistence {
    /// The purpose of the snapshot in progress (walking or committing).
    pub fn in_progress(&self) -> Option<Purpose> {
        self.job.as_ref().map(|j| j.purpose).or(self.committing.map(|c| c.0)).or(self.pending)
    }

    /// An RDB is being produced in the background, for BGSAVE or for replicas (Redis
    /// reports both as `rdb_bgsave_in_progress`, and FLUSHALL stops both).
    pub fn bgsave_in_progress(&self) -> bool {
        matches!(self.in_progress(), Some(Purpose::BgSave | Purpose::Replication))
    }

    pub fn aof_rewrite_in_progress(&self) -> bool {
        self.in_progress() == Some(Purpose::AofRewrite)
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn started_ms(&self) -> Option<i64> {
        self.job.as_ref().map(|j| j.started_ms).or(self.committing.map(|c| c.1))
    }
}

impl Engine {
    pub fn save_points_configured(&self) -> bool {
        !self.save_params().is_empty()
    }

    /// Save points from the `save` directive.
    fn save_params(&self) -> &[(i64, i64)] {
        match self.cfg.get(pid("save")) {
            Val::Save(v) => v,
            _ => &[],
        }
    }

    /// The reason writes are refused because persistence is failing, if any (Redis's
    /// `writeCommandsDeniedByDiskError`).
    pub fn disk_error(&self) -> Option<String> {
        if !self.persist.lastbgsave_ok && self.hot.stop_writes_on_bgsave_err && self.hot.save_points {
            return Some("MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.".into());
        }
        if self.persist.aof.enabled {
            if let Some(e) = &self.persist.aof.write_error {
                return Some(format!("MISCONF Errors writing to the AOF file: {e}"));
            }
        }
        None
    }

    /// Turns the append-only file on (a rewrite creates its base; writes are recorded from
    /// that snapshot on) or off, after `CONFIG SET appendonly` or at startup.
    pub(crate) fn appendonly_changed(&mut self) {
        let on = self.cfg.bool(pid("appendonly"));
        if on == self.persist.aof.enabled {
            return;
        }
        self.flush_feed();
        self.persist.aof.enabled = on;
        self.host.aof_enabled(on, &self.cfg);
        self.update_feed_enabled();
        if !on {
            // WAITAOF clients waiting on the local AOF get their error now.
            self.serve_waiters(self.now_ms);
        }
        if on {
            // A rewrite started with the AOF off does not collect the writes since its
            // snapshot: it gives way to one that does (Redis kills that child too).
            if self.persist.aof_rewrite_in_progress() {
                self.abort_snapshot();
            }
            if self.persist.in_progress().is_some() {
                self.persist.aof.rewrite_scheduled = true;
            } else if let Err(e) = self.request_snapshot(Purpose::AofRewrite, self.now_ms) {
                log::warn!("Unable to turn on AOF: {e}");
            }
        } else {
            if self.persist.aof_rewrite_in_progress() {
                self.abort_snapshot();
            }
        }
    }

    /// A full sync is about to replace the dataset. A snapshot being walked describes data
    /// that is going away (Redis kills its child here too): drop it.
    pub(crate) fn dataset_replacing(&mut self) {
        if self.persist.job.is_some() || self.persist.pending.is_some() {
            self.abort_snapshot();
        }
    }

    /// A full sync replaced the dataset. The AOF's files describe the old one, so the AOF
    /// restarts as `CONFIG SET appendonly yes` starts it: appends go to a fresh temporary
    /// file until a rewrite of the new dataset names it in the manifest. A crash before that
    /// loads the old files whole — never old data followed by the new master's stream.
    pub(crate) fn dataset_replaced(&mut self, now_ms: i64) {
        if !self.persist.aof.enabled {
            return;
        }
        self.flush_feed();
        self.host.aof_enabled(false, &self.cfg);
        self.host.aof_enabled(true, &self.cfg);
        if self.persist.in_progress().is_some() {
            self.persist.aof.rewrite_scheduled = true;
        } else if let Err(e) = self.request_snapshot(Purpose::AofRewrite, now_ms) {
            log::warn!("Can't rewrite the AOF after the full sync: {e}");
        }
    }

    /// The server opened the AOF it loaded at startup: record writes from now on.
    pub fn aof_opened_at_startup(&mut self) {
        self.persist.aof.enabled = true;
        self.update_feed_enabled();
    }

    /// Hands the write feed's pending bytes to the host (AOF, replicas). Returns the
    /// offset the host must reach before replies to these writes may leave.
    pub fn flush_feed(&mut self) -> Option<u64> {
        self.sync_before_flush(!self.feed.is_empty());
        let (bytes, replication_only) = self.feed.take();
        if bytes.is_empty() {
            self.sync_after_flush();
            return None;
        }
        // A replica's own replicas get its master's bytes verbatim, not these.
        if self.is_master_role() && self.repl.backlog.is_some() {
            let shared = bytes::Bytes::copy_from_slice(&bytes);
            self.repl.append(shared);
            if !self.repl.replicas.is_empty() {
                self.enforce_replica_buffer_limits(self.now_ms);
            }
            self.host.replication_advanced(self.repl.offset);
        }
        self.sync_after_flush();
        if !self.persist.aof.enabled {
            return None;
        }
        let for_aof = if replication_only.is_empty() { bytes } else { without_ranges(&bytes, &replication_only) };
        (!for_aof.is_empty()).then(|| self.host.feed(for_aof))
    }

    /// SAVE: writes the whole dataset now, blocking, to `dbfilename`.
    pub fn save_sync(&mut self, now_ms: i64) -> Result<(), String> {
        if self.persist.job.is_some() || self.persist.committing.is_some() {
            return Err("ERR Background save already in progress".into());
        }
        let dirty = self.dirty;
        let result = self.write_all_sync(now_ms);
        match &result {
            Ok(()) => {
                log::info!("DB saved on disk");
                self.dirty -= dirty.min(self.dirty);
                self.lastsave_ms = now_ms;
                self.persist.lastbgsave_ok = true;
                self.persist.rdb_saves += 1;
            }
            Err(e) => {
                log::warn!("Error saving DB on disk: {e}");
            }
        }
        result.map_err(|_| "ERR".into())
    }

    /// Writes the first base of a new AOF now (startup with `appendonly yes` and no AOF).
    pub fn aof_base_sync(&mut self, now_ms: i64) -> Result<(), String> {
        self.write_all_sync_for(Purpose::AofBase, now_ms)
    }

    fn write_all_sync(&mut self, now_ms: i64) -> Result<(), String> {
        self.write_all_sync_for(Purpose::Save, now_ms)
    }

    fn write_all_sync_for(&mut self, purpose: Purpose, now_ms: i64) -> Result<(), String> {
        let sink = self.host.open_snapshot(purpose, &self.cfg).map_err(|e| e.to_string())?;
        let mut format = self.snapshot_format(purpose, sink, now_ms).map_err(|e| e.to_string())?;
        // Nothing runs while SAVE does: a plain walk is a point-in-time snapshot.
        let mut result = Ok(());
        'dbs: for db in &self.dbs {
            for (k, o) in db.iter(i64::MIN) {
                if let Err(e) = format.key(db.id, k, o, db.expire_at(k)) {
                    result = Err(e);
                    break 'dbs;
                }
            }
        }
        let sink = match result.and_then(|()| format.finish()) {
            Ok(sink) => sink,
            Err(e) => return Err(e.to_string()),
        };
        sink.commit().map_err(|e| e.to_string())
    }

    /// BGSAVE [SCHEDULE].
    pub fn bgsave(&mut self, now_ms: i64, schedule: bool) -> Result<Started, String> {
        match self.persist.in_progress() {
            Some(Purpose::BgSave | Purpose::Save | Purpose::Replication) => {
                return Err("ERR Background save already in progress".into())
            }
            Some(Purpose::AofRewrite | Purpose::AofBase) => {
                if schedule {
                    self.persist.bgsave_scheduled = true;
                    return Ok(Started::Scheduled);
                }
                return Err("ERR Another child process is active (AOF?): can't BGSAVE right now. Use BGSAVE SCHEDULE in order to schedule a BGSAVE whenever possible.".into());
            }
            None => {}
        }
        self.request_snapshot(Purpose::BgSave, now_ms)?;
        Ok(Started::Now)
    }

    /// BGREWRITEAOF. It runs with the AOF off too (Redis 7.0 does): a new base and
    /// manifest in `appenddirname`, ready for a later `appendonly yes`.
    pub fn bgrewriteaof(&mut self, now_ms: i64) -> Result<Started, String> {
        match self.persist.in_progress() {
            Some(Purpose::AofRewrite) => Err("ERR Background append only file rewriting already in progress".into()),
            // Inside EXEC too, as Redis: the cron starts it.
            Some(_) => self.schedule_aof_rewrite(),
            None if self.in_exec => self.schedule_aof_rewrite(),
            None => {
                self.start_snapshot(Purpose::AofRewrite, now_ms).map_err(|_| {
                    "ERR Can't execute an AOF background rewriting. Please check the server logs for more information."
                })?;
                Ok(Started::Now)
            }
        }
    }

    fn schedule_aof_rewrite(&mut self) -> Result<Started, String> {
        self.persist.aof.rewrite_scheduled = true;
        // A rewrite asked for by hand runs even after failed automatic ones.
        self.persist.aof.rewrite_failures = 0;
        Ok(Started::Scheduled)
    }

    /// Starts a background snapshot now, or after the current transaction.
    pub(crate) fn request_snapshot(&mut self, purpose: Purpose, now_ms: i64) -> Result<(), String> {
        if self.in_exec {
            self.persist.pending = Some(purpose);
            return Ok(());
        }
        self.start_snapshot(purpose, now_ms)
    }

    /// Runs a snapshot deferred to the end of a transaction. Called at unit boundaries.
    pub(crate) fn start_pending_snapshot(&mut self, now_ms: i64) {
        if let Some(purpose) = self.persist.pending.take() {
            if let Err(e) = self.start_snapshot(purpose, now_ms) {
                log::warn!("Can't start the deferred snapshot: {e}");
            }
        }
    }

    fn start_snapshot(&mut self, purpose: Purpose, now_ms: i64) -> Result<(), String> {
        // Writes already executed belong before the snapshot point in every consumer.
        self.flush_feed();
        if purpose == Purpose::BgSave {
            self.persist.last_bgsave_try_ms = now_ms;
        }
        let opened = if purpose == Purpose::Replication {
            self.persist.replication_to_disk = !self.cfg.bool(pid("repl-diskless-sync"));
            let ids = self.attach_full_sync_replicas();
            self.host.open_replica_sink(&ids, &self.cfg)
        } else {
            self.host.open_snapshot(purpose, &self.cfg)
        };
        let sink = opened.map_err(|e| {
            self.snapshot_failed(purpose, &e.to_string());
            format!("ERR {e}")
        })?;
        if matches!(purpose, Purpose::AofRewrite | Purpose::AofBase) {
            // Appends now go to a new incremental file: its first write needs a SELECT,
            // or loading it would apply that write to database 0.
            self.feed.reset_db();
        }
        let format = self.snapshot_format(purpose, sink, now_ms).map_err(|e| format!("ERR {e}"))?;
        let epoch = next_epoch();
        for db in self.dbs.iter_mut() {
            db.begin_snapshot(epoch);
        }
        self.persist.keys_total = self.dbs.iter().map(|d| d.len() as u64).sum();
        self.persist.keys_processed = 0;
        self.persist.dirty_before_bgsave = self.dirty;
        match purpose {
            Purpose::AofRewrite => log::info!("Background append only file rewriting started"),
            Purpose::Replication => log::info!("Background RDB transfer started"),
            _ => log::info!("Background saving started"),
        }
        self.persist.job = Some(Job { purpose, started_ms: now_ms, format: Some(format), keys_done: 0, error: None });
        self.host.snapshot_started();
        Ok(())
    }

    /// Walks the background snapshot on for about `budget` keys.
    pub fn snapshot_step(&mut self, budget: usize) -> Progress {
        let Some(job) = self.persist.job.as_mut() else {
            return Progress::Idle;
        };
        let Some(format) = job.format.as_mut() else {
            return Progress::Idle;
        };
        let mut error: Option<io::Error> = None;
        let mut recorded = 0u64;
        let mut record = |db: usize, k: &ferrokv_keyspace::SmallBytes, o: &ferrokv_keyspace::Obj, e: Option<i64>| {
            if error.is_none() {
                recorded += 1;
                if let Err(err) = format.key(db, k, o, e) {
                    error = Some(err);
                }
            }
        };
        for db in self.dbs.iter_mut() {
            for p in db.take_preserved() {
                record(p.db, &p.key, &p.obj, p.expire);
            }
        }
        let mut walked = true;
        for db in self.dbs.iter_mut() {
            if !db.snapshot_step(budget, &mut record) {
                walked = false;
                break;
            }
        }
        if walked {
            // Values preserved during this very step.
            for db in self.dbs.iter_mut() {
                for p in db.take_preserved() {
                    record(p.db, &p.key, &p.obj, p.expire);
                }
            }
        }
        job.keys_done += recorded;
        self.persist.keys_processed = job.keys_done;
        if let Some(e) = error {
            job.error.get_or_insert(e.to_string());
            walked = true;
        }
        if !walked {
            return Progress::Running { backlog: format.backlog() };
        }
        self.finish_walk();
        Progress::Walked
    }

    fn finish_walk(&mut self) {
        for db in self.dbs.iter_mut() {
            db.end_snapshot();
        }
        let Some(mut job) = self.persist.job.take() else {
            return;
        };
        let Some(format) = job.format.take() else {
            return;
        };
        let result = match job.error.take() {
            Some(e) => Err(e),
            None => format.finish().map_err(|e| e.to_string()),
        };
        match result.and_then(|sink| sink.commit().map_err(|e| e.to_string())) {
            Ok(()) => self.persist.committing = Some((job.purpose, job.started_ms)),
            Err(e) => self.snapshot_failed(job.purpose, &e),
        }
    }

    fn snapshot_failed(&mut self, purpose: Purpose, error: &str) {
        match purpose {
            Purpose::Replication => {
                log::warn!("Background transfer error: {error}");
                // The replicas waiting on it cannot be synced: they reconnect and retry.
                let ids: Vec<_> = self
                    .repl
                    .replicas
                    .iter()
                    .filter(|r| r.state == crate::replication::ReplicaState::SendBulk)
                    .map(|r| r.id)
                    .collect();
                for id in ids {
                    self.detach_id(id);
                }
            }
            Purpose::AofRewrite => {
                log::warn!("Background AOF rewrite terminated with error: {error}");
                self.persist.aof.last_rewrite_ok = false;
                self.persist.aof.rewrite_failures += 1;
            }
            _ => {
                log::warn!("Background saving error: {error}");
                self.persist.lastbgsave_ok = false;
            }
        }
    }

    /// Abandons the snapshot being walked (FLUSHALL, SHUTDOWN): nothing of it stays on disk.
    pub fn abort_snapshot(&mut self) {
        for db in self.dbs.iter_mut() {
            db.end_snapshot();
        }
        self.persist.pending = None;
        if let Some(mut job) = self.persist.job.take() {
            if let Some(f) = job.format.take() {
                f.abort();
            }
            log::warn!("Background snapshot aborted");
        }
    }

    /// The host finished writing a background snapshot.
    pub fn snapshot_done(&mut self, purpose: Purpose, result: Result<(), String>, now_ms: i64) {
        let started = self.persist.started_ms().unwrap_or(now_ms);
        self.persist.committing = None;
        let secs = (now_ms - started) / 1000;
        // A disk-based replication snapshot is a BGSAVE too (Redis runs one for it).
        let purpose = match purpose {
            Purpose::Replication if self.persist.replication_to_disk => {
                if let Err(e) = &result {
                    self.snapshot_failed(Purpose::Replication, e);
                }
                Purpose::BgSave
            }
            p => p,
        };
        match (&result, purpose) {
            (Ok(()), Purpose::Replication) => log::info!("Background RDB transfer terminated with success"),
            (Ok(()), Purpose::AofRewrite) => {
                log::info!("Background AOF rewrite terminated with success");
                log::info!("Background AOF rewrite finished successfully");
                self.persist.aof.last_rewrite_ok = true;
                self.persist.aof.rewrites += 1;
                self.persist.aof.rewrite_failures = 0;
                self.persist.aof.rewrite_time_last = secs;
            }
            (Ok(()), _) => {
                log::info!("Background saving terminated with success");
                self.dirty -= self.persist.dirty_before_bgsave.min(self.dirty);
                self.lastsave_ms = now_ms;
                self.persist.lastbgsave_ok = true;
                self.persist.rdb_saves += 1;
                self.persist.rdb_save_time_last = secs;
            }
            (Err(e), p) => {
                self.snapshot_failed(p, e);
                if p == Purpose::Save || p == Purpose::BgSave {
                    self.persist.rdb_save_time_last = secs;
                }
            }
        }
        self.run_scheduled_snapshots(now_ms);
    }

    fn run_scheduled_snapshots(&mut self, now_ms: i64) {
        if self.persist.in_progress().is_some() {
            return;
        }
        // Replicas waiting for a full sync go before scheduled saves.
        self.maybe_start_full_sync(now_ms);
        if self.persist.in_progress().is_some() {
            return;
        }
        if self.persist.aof.rewrite_scheduled {
            self.persist.aof.rewrite_scheduled = false;
            if let Err(e) = self.start_snapshot(Purpose::AofRewrite, now_ms) {
                log::warn!("Can't start the scheduled AOF rewrite: {e}");
            }
        } else if self.persist.bgsave_scheduled {
            self.persist.bgsave_scheduled = false;
            if let Err(e) = self.start_snapshot(Purpose::BgSave, now_ms) {
                log::warn!("Can't start the scheduled BGSAVE: {e}");
            }
        }
    }

    /// serverCron's persistence part: save points, scheduled snapshots, automatic AOF
    /// rewrites.
    pub(crate) fn persistence_cron(&mut self, now_ms: i64) {
        if self.persist.loading.is_some() {
            return;
        }
        self.run_scheduled_snapshots(now_ms);
        if self.persist.in_progress().is_some() {
            return;
        }
        let since_save = (now_ms - self.lastsave_ms) / 1000;
        let since_try = (now_ms - self.persist.last_bgsave_try_ms) / 1000;
        // After a failed save, retry only every 5 seconds (CONFIG_BGSAVE_RETRY_DELAY).
        let retry_ok = self.persist.lastbgsave_ok || since_try > 5;
        let due = self
            .save_params()
            .iter()
            .find(|&&(secs, changes)| self.dirty >= changes as u64 && since_save > secs && retry_ok);
        if let Some(&(secs, changes)) = due {
            log::info!("{changes} changes in {secs} seconds. Saving...");
            if let Err(e) = self.start_snapshot(Purpose::BgSave, now_ms) {
                log::warn!("Can't save in background: {e}");
            }
            return;
        }
        let aof = &self.persist.aof;
        let pct = self.cfg.int(pid("auto-aof-rewrite-percentage"));
        let min = self.cfg.int(pid("auto-aof-rewrite-min-size")) as u64;
        if aof.enabled && pct > 0 && aof.current_size > min {
            let base = aof.base_size.max(1);
            let growth = (aof.current_size.saturating_sub(base)) * 100 / base;
            if growth >= pct as u64 {
                log::info!("Starting automatic rewriting of AOF on {growth}% growth");
                if let Err(e) = self.start_snapshot(Purpose::AofRewrite, now_ms) {
                    log::warn!("Can't rewrite the AOF in background: {e}");
                }
            }
        }
    }

    /// SHUTDOWN's and SIGTERM's persistence: drop the background snapshot, save if save
    /// points are configured (or SAVE was given) unless NOSAVE. An error aborts the
    /// shutdown unless FORCE.
    pub fn prepare_shutdown(&mut self, save: bool, nosave: bool, force: bool, now_ms: i64) -> Result<(), String> {
        if self.persist.job.is_some() {
            log::warn!("There is a child saving an .rdb. Killing it!");
            self.abort_snapshot();
        }
        self.flush_feed();
        if (!self.save_params().is_empty() && !nosave) || save {
            log::info!("Saving the final RDB snapshot before exiting.");
            match self.save_sync(now_ms) {
                Ok(()) => {}
                Err(_) if force => log::warn!("Error trying to save the DB, but FORCE was given: exiting anyway."),
                Err(_) => {
                    log::warn!("Error trying to save the DB, can't exit.");
                    return Err("Errors trying to SHUTDOWN. Check logs.".into());
                }
            }
        }
        Ok(())
    }

    /// INFO persistence.
    pub fn info_persistence(&self, now_ms: i64) -> String {
        use std::fmt::Write;
        let p = &self.persist;
        let bg = p.bgsave_in_progress();
        let rw = p.aof_rewrite_in_progress();
        let current = |on: bool| if on { p.started_ms().map_or(-1, |s| (now_ms - s) / 1000) } else { -1 };
        let ok = |b: bool| if b { "ok" } else { "err" };
        let mut s = String::new();
        let _ = write!(
            s,
            "# Persistence\r\nloading:{}\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:{}\r\ncurrent_save_keys_total:{}\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\naof_enabled:{}\r\naof_rewrite_in_progress:{}\r\naof_rewrite_scheduled:{}\r\naof_last_rewrite_time_sec:{}\r\naof_current_rewrite_time_sec:{}\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
            p.loading.is_some() as i32,
            if p.in_progress().is_some() { p.keys_processed } else { 0 },
            if p.in_progress().is_some() { p.keys_total } else { 0 },
            self.dirty,
            bg as i32,
            self.lastsave_ms / 1000,
            ok(p.lastbgsave_ok),
            p.rdb_save_time_last,
            current(bg),
            p.rdb_saves,
            p.rdb_last_load_keys_expired,
            p.rdb_last_load_keys_loaded,
            p.aof.enabled as i32,
            rw as i32,
            p.aof.rewrite_scheduled as i32,
            p.aof.rewrite_time_last,
            current(rw),
            ok(p.aof.last_rewrite_ok),
            p.aof.rewrites,
            p.aof.rewrite_failures,
            ok(p.aof.write_error.is_none()),
        );
        if p.aof.enabled {
            let _ = write!(
                s,
                "aof_current_size:{}\r\naof_base_size:{}\r\naof_pending_rewrite:{}\r\naof_buffer_length:{}\r\naof_pending_bio_fsync:0\r\naof_delayed_fsync:{}\r\n",
                p.aof.current_size,
                p.aof.base_size,
                p.aof.rewrite_scheduled as i32,
                p.aof.buffer_length,
                p.aof.delayed_fsync
            );
        }
        if let Some(l) = &p.loading {
            let elapsed = now_ms / 1000 - l.start_s;
            let perc = if l.total_bytes > 0 { l.loaded_bytes as f64 * 100.0 / l.total_bytes as f64 } else { 0.0 };
            let remaining = l.total_bytes.saturating_sub(l.loaded_bytes).max(1);
            let eta = if elapsed <= 0 { 1 } else { elapsed as u64 * remaining / (l.loaded_bytes + 1) };
            let _ = write!(
                s,
                "loading_start_time:{}\r\nloading_total_bytes:{}\r\nloading_rdb_used_mem:0\r\nloading_loaded_bytes:{}\r\nloading_loaded_perc:{perc:.2}\r\nloading_eta_seconds:{eta}\r\n",
                l.start_s, l.total_bytes, l.loaded_bytes
            );
        }
        s
    }
}

/// `bytes` without the given (sorted, disjoint) ranges.
fn without_ranges(bytes: &[u8], ranges: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut from = 0;
    for &(a, b) in ranges {
        out.extend_from_slice(&bytes[from..a]);
        from = b;
    }
    out.extend_from_slice(&bytes[from..]);
    out
}
