//! What the engine needs from the outside world, implemented by the server's I/O layer
//! (and by a fake in tests). Keeping these behind a trait is what keeps the engine free
//! of sockets, files and clocks.

use crate::persistence::{Purpose, SnapshotSink};
use ferrokv_config::{Config, Pid};
use std::time::Duration;

/// SHUTDOWN's options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownRequest {
    pub save: bool,
    pub nosave: bool,
    pub now: bool,
    pub force: bool,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryInfo {
    /// Bytes currently allocated by the process's allocator.
    pub used: u64,
    /// Highest `used` seen.
    pub peak: u64,
    /// Resident set size.
    pub rss: u64,
    /// Physical memory of the machine.
    pub total_system: u64,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct CpuInfo {
    pub sys: f64,
    pub user: f64,
}

pub trait Host: Send {
    /// Applies changed directives that involve the outside world (listening sockets,
    /// working directory, log level). An error rolls the CONFIG SET back.
    fn apply_config(&mut self, cfg: &Config, changed: &[Pid]) -> Result<(), String>;
    /// Writes the configuration back to its file (CONFIG REWRITE).
    fn rewrite_config(&mut self, cfg: &Config) -> Result<(), String>;
    /// Stops the server. An error is replied to the client that asked.
    fn shutdown(&mut self, req: ShutdownRequest) -> Result<(), String>;
    /// Blocks the server (DEBUG SLEEP).
    fn sleep(&mut self, d: Duration);
    fn memory(&self) -> MemoryInfo;
    /// Bytes allocated, read cheaply (checked before every command when maxmemory is set).
    fn used_memory(&self) -> u64 {
        self.memory().used
    }
    fn cpu(&self) -> CpuInfo;
    /// Frees a large value off the command path (FLUSHALL ASYNC, UNLINK).
    fn free_later(&mut self, garbage: Box<dyn Send>);
    /// Replaces the cluster config file (nodes.conf) with `text`: a temporary file
    /// (fsynced when `fsync`) renamed over it, so a crash leaves the old file or the new.
    fn write_cluster_config(&mut self, path: &str, text: &str, fsync: bool) -> Result<(), String> {
        use std::io::Write;
        let tmp = format!("{path}.tmp-{}", std::process::id());
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            if fsync {
                f.sync_all()?;
            }
            Ok(())
        });
        written.and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            e.to_string()
        })
    }
    /// Cluster mode: outputs were queued for the bus driver (`Engine::cluster_take_io`).
    fn cluster_wake(&mut self) {}
    /// The text of the ACL file (`aclfile`): at startup and for ACL LOAD.
    fn read_acl_file(&mut self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| {
            // strerror's text, as Redis prints it: without Rust's " (os error N)".
            let e = e.to_string();
            format!("Error loading ACLs, opening file '{path}': {}", e.split(" (os error").next().unwrap_or(&e))
        })
    }
    /// Replaces the ACL file with `text` (ACL SAVE): written to a temporary file that is
    /// renamed over it, so a crash leaves the old file or the new one, never half of one.
    fn write_acl_file(&mut self, path: &str, text: &str) -> Result<(), String> {
        use std::io::Write;
        let tmp = format!("{path}.tmp-{}", std::process::id());
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        });
        let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
        renamed.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!(
                "There was an error trying to save the ACLs. Please check the server logs for more information: {e}"
            )
        })
    }
    /// The append-only files in load order (base, then incremental files), as (name,
    /// bytes), once everything fed so far is written (DEBUG LOADAOF).
    fn read_aof_files(&mut self, cfg: &Config) -> Result<Vec<(String, Vec<u8>)>, String> {
        let _ = cfg;
        Err("this host does not persist".into())
    }
    /// Opens where a snapshot goes: `dbfilename` (synchronously for SAVE), or the next
    /// AOF base file, switching appends to a new incremental file at this exact point of
    /// the write feed.
    fn open_snapshot(&mut self, purpose: Purpose, cfg: &Config) -> std::io::Result<Box<dyn SnapshotSink>> {
        let _ = (purpose, cfg);
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "this host does not persist"))
    }
    /// A background snapshot started: drive [`crate::Engine::snapshot_step`] until it ends.
    fn snapshot_started(&mut self) {}
    /// Bytes of the write feed, in execution order, for the AOF and replicas. Returns the
    /// feed offset at their end (replies to these writes wait until it is durable).
    fn feed(&mut self, bytes: Vec<u8>) -> u64 {
        bytes.len() as u64
    }
    /// The append-only file was switched on or off.
    fn aof_enabled(&mut self, on: bool, cfg: &Config) {
        let _ = (on, cfg);
    }
    /// The AOF as WAITAOF sees it: the feed offset of the last byte appended, and of the
    /// last byte safely in the AOF (fsynced, and in a file the manifest names: `None` while
    /// a runtime `appendonly yes` waits for its first rewrite, or with the AOF off).
    fn aof_fsync_state(&self) -> (u64, Option<u64>) {
        (0, None)
    }
    /// Where a full-resync snapshot goes: the RDB stream of each replica in `replicas`.
    fn open_replica_sink(
        &mut self,
        replicas: &[crate::ClientId],
        cfg: &Config,
    ) -> std::io::Result<Box<dyn SnapshotSink>> {
        let _ = (replicas, cfg);
        Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "this host does not replicate"))
    }
    /// Synchronous replication: `offset` of history `epoch` is acknowledged by
    /// `sync-replicas` replicas; replies waiting for it may leave.
    fn sync_committed(&mut self, epoch: u64, offset: u64) {
        let _ = (epoch, offset);
    }
    /// REPLFREEZE: stop following the master now (drop the link, whatever its phase)
    /// until the freeze ends.
    fn replication_frozen(&mut self) {}
    /// The replication stream grew to `offset`: wake the replicas' senders.
    fn replication_advanced(&mut self, offset: u64) {
        let _ = offset;
    }
    /// Start or stop following a master (REPLICAOF).
    fn master_changed(&mut self, change: crate::replication::replica::MasterChange) {
        let _ = change;
    }
    /// Connections MIGRATE keeps open to its targets (INFO `migrate_cached_sockets`).
    fn migrate_cached_sockets(&self) -> usize {
        0
    }
    /// MIGRATE inside MULTI/EXEC or a script, where the command cannot wait: talk to the
    /// target now, blocking the caller (and, under the engine lock, every client), as
    /// Redis does for every MIGRATE.
    fn migrate_blocking(&mut self, job: &crate::commands::migrate::MigrateJob) -> crate::commands::migrate::MigrateIo {
        let _ = job;
        crate::commands::migrate::MigrateIo::ConnectFailed
    }
}

/// A host that does nothing: for unit tests and tools.
#[derive(Default)]
pub struct NullHost {
    pub shutdown_requested: Option<ShutdownRequest>,
}

impl Host for NullHost {
    fn apply_config(&mut self, _: &Config, _: &[Pid]) -> Result<(), String> {
        Ok(())
    }
    fn rewrite_config(&mut self, _: &Config) -> Result<(), String> {
        Err("The server is running without a config file".into())
    }
    fn shutdown(&mut self, req: ShutdownRequest) -> Result<(), String> {
        self.shutdown_requested = Some(req);
        Ok(())
    }
    fn sleep(&mut self, _: Duration) {}
    fn memory(&self) -> MemoryInfo {
        MemoryInfo::default()
    }
    fn cpu(&self) -> CpuInfo {
        CpuInfo::default()
    }
    fn free_later(&mut self, garbage: Box<dyn Send>) {
        drop(garbage);
    }
}
