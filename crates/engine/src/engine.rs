//! The engine: the whole server state and the path every command takes.
//!
//! ```text
//! execute(client, argv)            the I/O layer hands over parsed requests
//!   └─ process()                   lookup, arity, auth, MULTI queueing, pause…  (processCommand)
//!        └─ call()                 run the handler, then account for it:          (call)
//!             ├─ stats, slowlog, MONITOR
//!             ├─ expired keys found on the way → DEL in the feed, `expired` events
//!             └─ if the dataset changed → the command (or its rewrite) into the feed
//! ```
//!
//! The engine never touches sockets, files or the clock: time comes in as an argument,
//! output goes to per-client buffers the I/O layer drains, and everything that needs the
//! outside world goes through [`Host`].

use crate::client::{Client, ClientClass, ClientId, Clients, ReplyMode};
use crate::commands::{spec::flags, CmdId, CommandTable, Lookup};
use crate::ctx::Ctx;
use crate::feed::Feed;
use crate::host::Host;
use crate::prefetch::NOT_LOOKED_UP;
use crate::pubsub::PubSub;
use crate::slowlog::Slowlog;
use crate::stats::{CmdStats, Stats};
use crate::watch::WatchTable;
use ferrokv_acl::Context;
use ferrokv_config::{notify, pid, Config, Pid, Val};
use ferrokv_keyspace::db::Clock;
use ferrokv_keyspace::Db;
use ferrokv_resp::Argv;
use std::collections::VecDeque;
use std::time::Instant;

/// What the server knows about itself that INFO reports.
#[derive(Clone, Debug, Default)]
pub struct ServerInfo {
    pub executable: String,
    pub pid: u32,
    pub tcp_port: u16,
}

/// What the connection should do after [`Engine::execute`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All requests ran; send the output and read more.
    Continue,
    /// Send the output, then close the connection.
    Close,
    /// Clients are paused: keep the remaining requests and call again once woken (or at
    /// the given time).
    Paused { until_ms: i64 },
    /// A MIGRATE waits for its network part (`Engine::take_migrate_job`).
    Migrating,
}

/// `CLIENT PAUSE` in effect.
#[derive(Clone, Copy, Debug)]
pub struct Pause {
    pub until_ms: i64,
    pub all: bool,
}

/// Configuration values read on hot paths, refreshed whenever the config changes.
#[derive(Clone, Debug, Default)]
pub struct Hot {
    pub requirepass: Option<Vec<u8>>,
    pub notify: u32,
    pub protected_mode: bool,
    pub maxclients: usize,
    pub idle_timeout_s: i64,
    pub slowlog_slower_than: i64,
    pub slowlog_max_len: usize,
    pub proto_max_bulk_len: u64,
    pub query_buffer_limit: usize,
    pub databases: usize,
    pub debug_allowed: i64,
    pub module_allowed: i64,
    pub obuf: [ferrokv_config::ObufLimit; 3],
    pub hz: i64,
    pub latency_tracking: bool,
    pub latency_monitor_threshold: i64,
    pub active_expire_effort: i64,
    /// `replicaof` is set: expired keys are hidden, not deleted.
    pub replica: bool,
    pub maxmemory: u64,
    /// `maxmemory-clients`: bytes, or a negated percentage of maxmemory.
    pub maxmemory_clients: i64,
    pub policy: crate::evict::Policy,
    pub maxmemory_samples: usize,
    pub lfu_log_factor: i64,
    pub lfu_decay_time: i64,
    /// Write guards checked on every write: persistence errors and replication.
    pub stop_writes_on_bgsave_err: bool,
    pub save_points: bool,
    pub min_replicas_to_write: i64,
    pub min_replicas_max_lag: i64,
    /// `sync-replicas`, `sync-replicas-lease`, `sync-replicas-timeout` (ms).
    pub sync_replicas: i64,
    pub sync_lease_ms: i64,
    pub sync_timeout_ms: i64,
    pub replica_read_only: bool,
    pub replica_serve_stale_data: bool,
    /// The compact-encoding thresholds (`*-max-listpack-*`, `set-max-intset-entries`),
    /// read by every write to a hash, set or sorted set.
    pub encoding_limits: crate::persistence::rdb::LoadLimits,
    /// `tracking-table-max-keys` (0: no limit).
    pub tracking_max_keys: usize,
}

impl Hot {
    fn from_config(cfg: &Config) -> Hot {
        let requirepass = match cfg.str(pid("requirepass")) {
            "" => None,
            s => Some(s.as_bytes().to_vec()),
        };
        let obuf = match cfg.get(pid("client-output-buffer-limit")) {
            Val::Obuf(l) => *l,
            _ => Default::default(),
        };
        let notify = match cfg.get(pid("notify-keyspace-events")) {
            Val::Notify(n) => *n,
            _ => 0,
        };
        Hot {
            requirepass,
            notify,
            protected_mode: cfg.bool(pid("protected-mode")),
            maxclients: cfg.int(pid("maxclients")) as usize,
            idle_timeout_s: cfg.int(pid("timeout")),
            slowlog_slower_than: cfg.int(pid("slowlog-log-slower-than")),
            slowlog_max_len: cfg.int(pid("slowlog-max-len")) as usize,
            proto_max_bulk_len: cfg.int(pid("proto-max-bulk-len")) as u64,
            query_buffer_limit: cfg.int(pid("client-query-buffer-limit")) as usize,
            databases: cfg.int(pid("databases")) as usize,
            debug_allowed: cfg.int(pid("enable-debug-command")),
            module_allowed: cfg.int(pid("enable-module-command")),
            obuf,
            hz: cfg.int(pid("hz")).clamp(1, 500),
            latency_tracking: cfg.bool(pid("latency-tracking")),
            latency_monitor_threshold: cfg.int(pid("latency-monitor-threshold")),
            active_expire_effort: cfg.int(pid("active-expire-effort")),
            replica: matches!(cfg.get(pid("replicaof")), Val::ReplicaOf(Some(_))),
            maxmemory: cfg.int(pid("maxmemory")).max(0) as u64,
            maxmemory_clients: cfg.int(pid("maxmemory-clients")),
            policy: crate::evict::Policy::from_config(cfg.int(pid("maxmemory-policy"))),
            maxmemory_samples: cfg.int(pid("maxmemory-samples")).max(1) as usize,
            lfu_log_factor: cfg.int(pid("lfu-log-factor")),
            lfu_decay_time: cfg.int(pid("lfu-decay-time")),
            stop_writes_on_bgsave_err: cfg.bool(pid("stop-writes-on-bgsave-error")),
            save_points: matches!(cfg.get(pid("save")), Val::Save(v) if !v.is_empty()),
            min_replicas_to_write: cfg.int(pid("min-replicas-to-write")),
            min_replicas_max_lag: cfg.int(pid("min-replicas-max-lag")),
            sync_replicas: cfg.int(pid("sync-replicas")),
            sync_lease_ms: cfg.int(pid("sync-replicas-lease")),
            sync_timeout_ms: cfg.int(pid("sync-replicas-timeout")),
            replica_read_only: cfg.bool(pid("replica-read-only")),
            replica_serve_stale_data: cfg.bool(pid("replica-serve-stale-data")),
            encoding_limits: crate::persistence::rdb::LoadLimits::from_config(cfg),
            tracking_max_keys: cfg.int(pid("tracking-table-max-keys")).max(0) as usize,
        }
    }
}

pub struct Engine {
    pub cfg: Config,
    pub hot: Hot,
    pub dbs: Vec<Db>,
    pub clients: Clients,
    pub(crate) next_client_id: ClientId,
    pub commands: CommandTable,
    pub cmd_stats: Vec<CmdStats>,
    pub pubsub: PubSub,
    pub watched: WatchTable,
    /// Keys a MIGRATE is moving, and whether they changed since (`commands/migrate.rs`).
    pub migrating: crate::commands::migrate::MigratingKeys,
    /// Client-side caching: who may cache which keys, BCAST prefixes.
    pub tracking: crate::tracking::Tracking,
    pub stats: Stats,
    pub feed: Feed,
    /// Changes since the last successful save (`rdb_changes_since_last_save`).
    pub dirty: u64,
    pub rng: fastrand::Rng,
    pub run_id: String,
    pub started_ms: i64,
    pub started: Instant,
    pub host: Box<dyn Host>,
    pub server: ServerInfo,
    pub pause: Option<Pause>,
    pub monitors: Vec<ClientId>,
    pub slowlog: Slowlog,
    pub latency: crate::latency::LatencyMonitor,
    pub lastsave_ms: i64,
    /// Next database the active expiry cycle looks at.
    expire_db_cursor: usize,
    /// True while the previous active expiry cycle ran out of time (run a fast cycle).
    pub expire_timed_out: bool,
    /// Clients waiting for a pause to end.
    pub(crate) paused_clients: Vec<ClientId>,
    /// Replication IDs, offsets, backlog, replicas, the link to our master.
    pub repl: crate::replication::Replication,
    /// Allocator usage right after startup (INFO `used_memory_startup`).
    pub used_memory_startup: u64,
    /// DEBUG SET-ACTIVE-EXPIRE.
    pub active_expire_enabled: bool,
    /// When the previous command ended: the next one's start, so each command costs one
    /// clock read rather than two.
    pub(crate) clock_mark: Instant,
    /// Clients blocked on keys.
    pub blocking: crate::blocking::BlockingTable,
    /// Inside EXEC: blocking commands must not block.
    pub in_exec: bool,
    pub(crate) eviction_pool: crate::evict::EvictionPool,
    pub(crate) evict_db_cursor: usize,
    /// Snapshots, save points, AOF status, loading state.
    pub persist: crate::persistence::Persistence,
    /// The time of the command running or last run (or of the last cron), for work done
    /// on behalf of other clients (soft output limits of a subscriber, say).
    pub(crate) now_ms: i64,
    /// Memory of all normal and pub/sub clients (`maxmemory-clients`, INFO
    /// `mem_clients_normal`), kept up to date client by client.
    pub clients_memory: usize,
    /// Memory was over `maxmemory` (after evicting) when the current command started
    /// (Redis's pre_command_oom_state, which scripts consult).
    pub(crate) pre_command_oom: bool,
    /// The Lua interpreter, its script cache and the client scripts run commands as.
    pub scripts: crate::commands::scripting::ScriptState,
    /// Users and their permissions, the ACL LOG.
    pub acl: ferrokv_acl::Acl,
    /// Cluster mode (`cluster-enabled yes`): the cluster state and the driver's queue.
    pub cluster: Option<Box<crate::cluster::ClusterMode>>,
}

/// Milliseconds since the Unix epoch.
pub fn unix_ms(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Engine {
    pub fn new(cfg: Config, host: Box<dyn Host>, server: ServerInfo, now_ms: i64) -> Result<Engine, String> {
        let commands = CommandTable::build(&cfg.renames)?;
        let mut host = host;
        let acl_path = cfg.str(pid("aclfile")).to_string();
        let acl_file = if acl_path.is_empty() { None } else { Some(host.read_acl_file(&acl_path)?) };
        let acl = crate::acl::build_acl(&commands, &cfg, acl_file.as_deref())?;
        let hot = Hot::from_config(&cfg);
        ferrokv_keyspace::value::LFU_MODE.store(hot.policy.is_lfu(), std::sync::atomic::Ordering::Relaxed);
        let dbs = (0..hot.databases).map(Db::new).collect();
        let mut rng = fastrand::Rng::new();
        let run_id: String = (0..40).map(|_| char::from(b"0123456789abcdef"[rng.usize(0..16)])).collect();
        let repl = crate::replication::Replication::new(&mut rng);
        let used_memory_startup = host.memory().used;
        let cmd_stats = vec![CmdStats::default(); commands.cmds.len()];
        Ok(Engine {
            cfg,
            hot,
            dbs,
            clients: Clients::default(),
            next_client_id: 1,
            commands,
            cmd_stats,
            pubsub: PubSub::default(),
            watched: WatchTable::default(),
            migrating: Default::default(),
            tracking: Default::default(),
            stats: Stats::default(),
            feed: Feed::default(),
            dirty: 0,
            rng,
            run_id,
            started_ms: now_ms,
            started: Instant::now(),
            host,
            server,
            pause: None,
            monitors: Vec::new(),
            slowlog: Slowlog::default(),
            latency: Default::default(),
            lastsave_ms: now_ms,
            expire_db_cursor: 0,
            expire_timed_out: false,
            paused_clients: Vec::new(),
            repl,
            used_memory_startup,
            active_expire_enabled: true,
            clock_mark: Instant::now(),
            blocking: Default::default(),
            in_exec: false,
            eviction_pool: Default::default(),
            evict_db_cursor: 0,
            persist: Default::default(),
            now_ms,
            clients_memory: 0,
            pre_command_oom: false,
            scripts: Default::default(),
            acl,
            cluster: None,
        })
    }

    /// Re-reads the hot configuration values after a change.
    pub fn config_changed(&mut self, changed: &[Pid]) {
        self.hot = Hot::from_config(&self.cfg);
        ferrokv_keyspace::value::LFU_MODE.store(self.hot.policy.is_lfu(), std::sync::atomic::Ordering::Relaxed);
        if changed.contains(&pid("appendonly")) {
            self.appendonly_changed();
        }
        if changed.contains(&pid("sync-replicas")) {
            // Replies waiting under the old setting are not acknowledged as it promised.
            self.sync_reset();
        }
        if changed.contains(&pid("maxmemory-clients")) {
            self.recount_clients_memory();
        }
        self.cluster_config_changed(changed);
        if changed.contains(&pid("acl-pubsub-default")) {
            self.acl.set_pubsub_default(crate::acl::pubsub_default_all(&self.cfg));
        }
        if changed.contains(&pid("requirepass")) {
            self.acl.set_default_password(self.hot.requirepass.as_deref());
            if self.acl.default_needs_no_auth() {
                // Dropping the password authenticates everyone, as in Redis.
                for c in self.clients.iter_mut().filter(|c| c.user == "default") {
                    c.authenticated = true;
                }
            }
        }
    }

    /// True when this server is a replica (expired keys are hidden, not deleted).
    pub fn is_replica(&self) -> bool {
        self.hot.replica
    }

    pub fn clock(&self, now_ms: i64) -> Clock {
        // Nothing expires while loading (keys are judged once the dataset is whole), nor
        // for our master's commands: it decides what expired and sends the DELs, which
        // must find the keys (Redis's expireIfNeeded for the master client).
        if self.persist.loading.is_some() || self.repl.applying_master_stream {
            return Clock { now_ms: i64::MIN, master: false };
        }
        Clock { now_ms, master: !self.is_replica() }
    }

    // ---- command execution ---------------------------------------------------------

    /// Runs up to `limit` queued requests of one client, in order. Requests not run
    /// (limit reached, clients paused) stay queued.
    pub fn execute(&mut self, id: ClientId, reqs: &mut VecDeque<Argv>, now_ms: i64, limit: usize) -> Outcome {
        let Some(mut client) = self.clients.take(id) else {
            return Outcome::Close;
        };
        let mut outcome = Outcome::Continue;
        let mut ran = 0;
        self.now_ms = now_ms;
        self.refresh_output_cap(&mut client, now_ms);
        let found = self.prefetch_keys(client.db, reqs, limit);
        self.clock_mark = Instant::now();
        while let Some(argv) = reqs.front() {
            if ran == limit || client.blocked.is_some() || client.script_blocked || client.migrating.is_some() {
                break;
            }
            ran += 1;
            // A client being closed runs nothing more (an output limit may have doomed
            // it in the middle of the batch).
            if client.close_after_reply || client.close_asap || client.out.doomed() {
                reqs.clear();
                break;
            }
            if let Some(until_ms) = self.postponed(&client, argv, now_ms) {
                if !self.paused_clients.contains(&id) {
                    self.paused_clients.push(id);
                }
                outcome = Outcome::Paused { until_ms };
                break;
            }
            let argv = reqs.pop_front().expect("front exists");
            let top = found.get(ran - 1).filter(|&&id| id != NOT_LOOKED_UP).map(|&id| usize::from(id));
            self.process_found(&mut client, argv, top, now_ms);
        }
        if !self.check_output_limits(&mut client, now_ms) {
            self.track_client_memory(&mut client);
        }
        if client.migrating.as_ref().is_some_and(|m| m.needs_server()) {
            outcome = Outcome::Migrating;
        }
        if client.close_asap || client.close_after_reply {
            outcome = Outcome::Close;
        }
        self.clients.put(client);
        self.evict_clients_if_needed();
        if self.tracking.bcast_pending() {
            self.tracking_broadcast();
        }
        outcome
    }

    /// If clients are paused and this request must wait, the time the pause ends.
    fn postponed(&mut self, client: &Client, argv: &Argv, now_ms: i64) -> Option<i64> {
        let pause = self.pause?;
        if now_ms >= pause.until_ms {
            self.end_pause();
            return None;
        }
        if pause.all {
            return Some(pause.until_ms);
        }
        let id = match self.commands.lookup(argv) {
            Lookup::Found(id) => id,
            _ => return None,
        };
        let c = self.commands.get(id);
        let mut f = c.flags();
        if c.name == "exec" {
            f |= client.multi.as_ref().map_or(0, |m| m.flags);
        }
        if client.multi.is_some() && !matches!(c.name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset") {
            return None; // queueing is not a write
        }
        (f & (flags::WRITE | flags::MAY_REPLICATE) != 0).then_some(pause.until_ms)
    }

    /// True while a client's next request waits for CLIENT PAUSE to end (Redis blocks such
    /// a client, so CLIENT LIST shows it with the `b` flag).
    pub fn is_postponed(&self, id: ClientId) -> bool {
        self.paused_clients.contains(&id)
    }

    /// Ends CLIENT PAUSE and wakes the clients that waited.
    pub fn end_pause(&mut self) {
        self.pause = None;
        for id in std::mem::take(&mut self.paused_clients) {
            if let Some(c) = self.clients.get(id) {
                c.waker.wake();
            }
        }
    }

    /// Refuses a command with `msg` (Redis's rejectCommand). A refused EXEC ends the
    /// transaction whatever the reason (`-EXECABORT Transaction discarded because of: …`),
    /// so the client is never left queueing after EXEC answered.
    fn reject(&mut self, client: &mut Client, argv: &Argv, cmd: Option<CmdId>, msg: &str) {
        // Redis aborts "the transaction" of a refused EXEC even when there is none.
        let refused_exec = cmd.is_some_and(|id| self.commands.get(id).name == "exec");
        if client.multi.is_some() {
            client.dirty_exec = true;
        }
        if let Some(id) = cmd {
            self.cmd_stats[id].rejected_calls += 1;
        }
        if refused_exec {
            crate::commands::transactions::discard_transaction(self, client);
            // Redis formats these reasons without the `ERR ` it would otherwise prefix.
            let reason = msg.strip_prefix("ERR ").unwrap_or(msg);
            client.out.error(&format!("EXECABORT Transaction discarded because of: {reason}"));
            // MONITOR saw MULTI; EXEC tells it the transaction is over.
            if !self.monitors.is_empty() {
                self.feed_monitors(client, argv, client.last_interaction_ms);
            }
        } else {
            client.out.error(msg);
        }
        for e in client.out.take_errors() {
            self.stats.record_error(&e);
        }
    }

    /// Processes one request, then applies CLIENT REPLY OFF/SKIP to whatever it answered
    /// (unless it blocked: that waits for the reply it gets when served).
    pub(crate) fn process(&mut self, client: &mut Client, argv: Argv, now_ms: i64) {
        self.process_found(client, argv, None, now_ms);
    }

    /// [`Engine::process`] of a request whose name was already looked up (`top`: the
    /// top-level command it names).
    fn process_found(&mut self, client: &mut Client, argv: Argv, top: Option<CmdId>, now_ms: i64) {
        let out_before = client.out.len();
        // (Only CLIENT REPLY itself turns the mode from ON, and it is no subscription.)
        let subscription = client.reply_mode != ReplyMode::On && crate::reply_mode::is_subscription(argv.get(0));
        // (CLIENT CACHING applies to the next command: any CLIENT subcommand keeps it.)
        let client_cmd = self.tracking.active() && argv.get(0).eq_ignore_ascii_case(b"client");
        if self.tracking.active() {
            self.tracking.processing = client.id;
        }
        // ASKING is good for the next command only (or a whole transaction), as in Redis.
        let asking_cmd = self.cluster.is_some() && argv.get(0).eq_ignore_ascii_case(b"asking");
        self.process_command(client, argv, top, now_ms);
        if client.asking && !asking_cmd && client.multi.is_none() {
            client.asking = false;
        }
        if client.reply_mode != ReplyMode::On && client.blocked.is_none() && client.migrating.is_none() {
            crate::reply_mode::settle(client, out_before, subscription);
        }
        if self.tracking.active() {
            self.tracking_after_command(client, client_cmd);
        }
    }

    /// Redis's processCommand: every check before a command may run.
    fn process_command(&mut self, client: &mut Client, argv: Argv, top: Option<CmdId>, now_ms: i64) {
        client.last_interaction_ms = now_ms;
        client.commands_processed += 1;
        let looked_up = match top {
            Some(id) => self.commands.lookup_sub(id, &argv),
            None => self.commands.lookup(&argv),
        };
        let cmd = match looked_up {
            Lookup::Found(id) => id,
            Lookup::Unknown => {
                let msg = unknown_command_error(&argv);
                self.reject(client, &argv, None, &msg);
                return;
            }
            Lookup::UnknownSub(parent) => {
                let msg = format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    sanitize(argv.get(1), 128),
                    self.commands.get(parent).name.to_ascii_uppercase()
                );
                self.reject(client, &argv, Some(parent), &msg);
                return;
            }
        };
        let c = self.commands.get(cmd);
        if !c.arity_ok(argv.len()) || c.handler.is_none() {
            let msg = format!("ERR wrong number of arguments for '{}' command", c.fullname());
            self.reject(client, &argv, Some(cmd), &msg);
            return;
        }
        let cflags = c.flags();
        if cflags & flags::PROTECTED != 0 {
            if let Some(refusal) = self.protected_refusal(client, c.name) {
                self.reject(client, &argv, Some(cmd), refusal);
                return;
            }
        }
        if !client.authenticated && cflags & flags::NO_AUTH == 0 {
            self.reject(client, &argv, Some(cmd), "NOAUTH Authentication required.");
            return;
        }
        if client.multi.is_some() && cflags & flags::NO_MULTI != 0 {
            self.reject(client, &argv, Some(cmd), "ERR Command not allowed inside a transaction");
            return;
        }
        let name = c.name;
        let is_parent_level = c.parent.is_none();
        let acl_context = if client.multi.is_some() { Context::Multi } else { Context::Toplevel };
        if let Err(reason) = self.acl_check(client, cmd, &argv, acl_context) {
            let msg = crate::acl::noperm_message(reason, self.commands.get(cmd).fullname());
            self.reject(client, &argv, Some(cmd), &msg);
            return;
        }
        if self.cluster.is_some()
            && client.repl_role != Some(crate::client::ReplRole::Master)
            && self.cluster_redirect(client, cmd, &argv)
        {
            return;
        }
        // A suspended script: Redis's BUSY check comes later, after checks that may evict
        // keys, which must not happen while the script is between slices.
        if let Some(busy) = self.scripts.busy.as_ref().filter(|_| cflags & flags::ALLOW_BUSY == 0) {
            let msg = busy.busy_error();
            self.reject(client, &argv, Some(cmd), msg);
            return;
        }
        self.pre_command_oom = self.hot.maxmemory > 0 && !self.perform_evictions(now_ms);
        if self.pre_command_oom {
            let queued_denyoom = name == "exec" && client.multi.as_ref().is_some_and(|m| m.flags & flags::DENYOOM != 0);
            let queueing = client.multi.is_some() && !matches!(name, "exec" | "discard" | "quit" | "reset");
            if cflags & flags::DENYOOM != 0 || queueing || queued_denyoom {
                self.reject(client, &argv, Some(cmd), "OOM command not allowed when used memory > 'maxmemory'.");
                return;
            }
        }
        if self.tracking.clients() > 0 {
            self.tracking_limit(Some(client));
        }
        let queued_flags = if name == "exec" { client.multi.as_ref().map_or(0, |m| m.flags) } else { 0 };
        if (cflags | queued_flags) & flags::WRITE != 0 || name == "ping" {
            if let Some(msg) = self.disk_error() {
                self.reject(client, &argv, Some(cmd), &msg);
                return;
            }
        }
        let from_master = client.repl_role == Some(crate::client::ReplRole::Master);
        if (cflags | queued_flags) & flags::WRITE != 0 {
            if let Some(msg) = self.replication_write_guard(from_master, now_ms) {
                self.reject(client, &argv, Some(cmd), msg);
                return;
            }
        }
        if !from_master && (cflags | queued_flags) & (flags::WRITE | flags::READONLY) != 0 && self.sync_fenced() {
            let msg = self.fenced_error();
            self.reject(client, &argv, Some(cmd), &msg);
            return;
        }
        let queued_deny_stale = || {
            name == "exec"
                && client
                    .multi
                    .as_ref()
                    .is_some_and(|m| m.queue.iter().any(|(id, _)| self.commands.get(*id).flags() & flags::STALE == 0))
        };
        if !from_master && self.master_down() && (cflags & flags::STALE == 0 || queued_deny_stale()) {
            self.reject(
                client,
                &argv,
                Some(cmd),
                "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
            );
            return;
        }
        if self.persist.loading.is_some() {
            let queued_deny = name == "exec"
                && client.multi.as_ref().is_some_and(|m| {
                    m.queue.iter().any(|(id, _)| self.commands.get(*id).flags() & flags::LOADING == 0)
                });
            if cflags & flags::LOADING == 0 || queued_deny {
                self.reject(client, &argv, Some(cmd), "LOADING Redis is loading the dataset in memory");
                return;
            }
        }
        if client.is_pubsub()
            && !client.resp3()
            && !(is_parent_level
                && matches!(
                    name,
                    "ping"
                        | "subscribe"
                        | "unsubscribe"
                        | "psubscribe"
                        | "punsubscribe"
                        | "ssubscribe"
                        | "sunsubscribe"
                        | "quit"
                        | "reset"
                ))
        {
            let msg = format!(
                "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                self.commands.get(cmd).fullname()
            );
            self.reject(client, &argv, Some(cmd), &msg);
            return;
        }
        let runs_now = is_parent_level && matches!(name, "exec" | "discard" | "multi" | "watch" | "quit" | "reset");
        if let Some(m) = client.multi.as_mut().filter(|_| !runs_now) {
            m.flags |= cflags;
            m.queue.push((cmd, argv));
            client.out.simple("QUEUED");
            return;
        }
        if self.tracking.active() {
            // Invalidations of this client's own keys now wait for its reply.
            self.tracking.current = client.id;
        }
        self.call(client, cmd, &argv, now_ms);
        if self.scripts.busy.is_some() {
            // A suspended script's writes stay in the open unit until it ends, and nothing
            // else may touch the dataset meanwhile (Engine::resume_script finishes here).
            return;
        }
        self.after_command(now_ms);
    }

    /// What follows every command a client ran (also a script that was suspended, when it
    /// ends: see `busy.rs`): close its unit in the write feed, then start the snapshot,
    /// GETACK or wake-ups it may have asked for.
    #[inline]
    pub(crate) fn after_command(&mut self, now_ms: i64) {
        self.feed.end_unit(false);
        if self.persist.has_pending() {
            self.start_pending_snapshot(now_ms);
        }
        if self.repl.want_acks {
            self.request_acks();
        }
        if self.blocking.has_ready() {
            self.serve_ready_keys(now_ms);
        }
    }

    /// DEBUG and MODULE's loading subcommands run only where `enable-debug-command` /
    /// `enable-module-command` allow them (`yes`, or `local` for a local connection).
    fn protected_refusal(&self, client: &Client, name: &str) -> Option<&'static str> {
        let (setting, refusal) = if name == "debug" {
            (
                self.hot.debug_allowed,
                "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
            )
        } else {
            (
                self.hot.module_allowed,
                "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
            )
        };
        let allowed = match setting {
            1 => true,
            2 => client.conn.local,
            _ => false,
        };
        (!allowed).then_some(refusal)
    }

    /// Runs one command and does its accounting (Redis's `call`). Also used by EXEC.
    pub(crate) fn call(&mut self, client: &mut Client, cmd: CmdId, argv: &Argv, now_ms: i64) {
        self.call_inner(client, cmd, argv, now_ms, None);
    }

    /// `served` is the ready key when a blocked command is re-run to serve it (see
    /// [`crate::blocking`]): it was already counted and shown to MONITOR when first issued,
    /// and Redis logs a blocking command's duration to SLOWLOG when it is served rather
    /// than when it blocks.
    pub(crate) fn call_inner(
        &mut self,
        client: &mut Client,
        cmd: CmdId,
        argv: &Argv,
        now_ms: i64,
        served: Option<ferrokv_keyspace::SmallBytes>,
    ) {
        let reprocess = served.is_some();
        let c = self.commands.get(cmd);
        let handler = c.handler.expect("dispatch checks for a handler");
        let cflags = c.flags();
        client.last_cmd = c.fullname();
        let dirty_before = self.dirty;
        let out_before = client.out.len();
        let started = self.clock_mark;
        let mut ctx = Ctx::new(self, client, argv, cmd, now_ms).serving(served);
        let result = handler(&mut ctx);
        let rewritten = ctx.take_rewrite();
        let replaced_args = ctx.take_replaced_args();
        let block = ctx.take_block();
        let forced = ctx.propagation_forced();
        if let Err(e) = result {
            client.out.error(e.text());
        }
        let ended = Instant::now();
        self.clock_mark = ended;
        let us = ended.duration_since(started).as_micros() as u64;

        let blocked_now = block.is_some();
        // A served blocked command answers now: CLIENT REPLY OFF/SKIP apply to this reply
        // (`process` applies them to every other command).
        if reprocess && !blocked_now {
            crate::reply_mode::settle(client, out_before, false);
        }
        if let Some(req) = block {
            self.block_client(client, *req, cmd, argv);
        }
        let stats = &mut self.cmd_stats[cmd];
        if !reprocess {
            stats.calls += 1;
            self.stats.total_commands_processed += 1;
        }
        stats.usec += us;
        // A command that blocked is measured when it is served (as Redis does).
        if self.hot.latency_tracking && !blocked_now {
            stats.latency.record(us);
        }
        if client.out.has_errors() {
            stats.failed_calls += 1;
            for e in client.out.take_errors() {
                self.stats.record_error(&e);
            }
        }
        if cflags & flags::SKIP_SLOWLOG == 0
            && !blocked_now
            && self.hot.slowlog_slower_than >= 0
            && us as i64 >= self.hot.slowlog_slower_than
        {
            self.slowlog.add(client, argv, us, now_ms, self.hot.slowlog_max_len);
        }
        if self.hot.latency_monitor_threshold > 0 && us as i64 / 1000 >= self.hot.latency_monitor_threshold {
            let event = if cflags & flags::FAST != 0 { "fast-command" } else { "command" };
            self.latency.add(event, now_ms, (us / 1000) as i64);
        }
        if !reprocess && !self.monitors.is_empty() && cflags & (flags::SKIP_MONITOR | flags::ADMIN) == 0 {
            self.feed_monitors(client, argv, now_ms);
        }
        self.flush_expired(Some(client));
        if self.tracking.active() && cflags & flags::READONLY != 0 {
            self.tracking_remember(client, cmd, argv);
        }
        // A forced propagation goes out whatever the flags: PFCOUNT (read-only) stores the
        // cardinality it computed in the string, and replicas must hold the same bytes.
        let wrote = (self.dirty != dirty_before && cflags & flags::WRITE != 0) || forced;
        if self.sync_active() && client.repl_role.is_none() && self.persist.loading.is_none() {
            self.sync_after_command(client, cmd, argv, wrote, out_before);
        }
        if wrote {
            match rewritten {
                Some(cmds) => {
                    if cmds.len() > 1 {
                        self.feed.atomic_hint = true;
                    }
                    for args in cmds {
                        self.feed.push(client.db, args.iter().map(Vec::as_slice));
                    }
                }
                None if replaced_args.is_empty() => self.feed.push(client.db, argv.iter()),
                None => {
                    let args = argv.iter().enumerate().map(|(i, arg)| {
                        replaced_args.iter().rev().find(|(at, _)| *at == i).map_or(arg, |(_, v)| v.as_slice())
                    });
                    self.feed.push(client.db, args)
                }
            }
        }
    }

    /// Propagates and announces keys that expired during the last command or cycle.
    pub(crate) fn flush_expired(&mut self, mut current: Option<&mut Client>) {
        if !ferrokv_keyspace::db::any_expired_pending() {
            return;
        }
        for db in 0..self.dbs.len() {
            if !self.dbs[db].has_expired_pending() {
                continue;
            }
            for key in self.dbs[db].take_expired() {
                self.stats.expired_keys += 1;
                self.feed.push(db, [&b"DEL"[..], &key]);
                self.touch_watched(current.as_deref_mut(), db, &key);
                if self.tracking.active() {
                    self.tracking_invalidate(current.as_deref_mut(), &key, 0, true);
                }
                self.notify(current.as_deref_mut(), notify::EXPIRED, "expired", &key, db);
            }
        }
    }

    // ---- keyspace helpers ----------------------------------------------------------

    // WATCH bookkeeping (touch_watched & co) lives in watch.rs.

    // ---- background work -----------------------------------------------------------

    /// Periodic housekeeping (Redis's serverCron), called `hz` times per second.
    pub fn cron(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
        self.stats.sample(now_ms);
        // While a script is suspended the dataset stays exactly as it leaves it between
        // slices (Redis runs no cron while a script is busy either).
        if self.scripts.busy.is_some() {
            return;
        }
        if let Some(p) = self.pause {
            if now_ms >= p.until_ms {
                self.end_pause();
            }
        }
        if self.hot.idle_timeout_s > 0 {
            let limit = self.hot.idle_timeout_s * 1000;
            let idle: Vec<ClientId> = self
                .clients
                .iter()
                .filter(|c| {
                    now_ms - c.last_interaction_ms > limit
                        && !c.is_pubsub()
                        && c.class() == ClientClass::Normal
                        && !c.monitor
                })
                .map(|c| c.id)
                .collect();
            for id in idle {
                self.detach_id(id);
            }
        }
        self.check_all_output_limits(now_ms);
        if self.tracking.clients() > 0 {
            self.tracking_limit(None);
        }
        self.persistence_cron(now_ms);
        self.replication_cron(now_ms);
        let start = Instant::now();
        for db in self.dbs.iter_mut() {
            db.cron_resize(&|| start.elapsed().as_micros() > 1000);
        }
        if self.tracking.bcast_pending() {
            self.tracking_broadcast();
        }
    }

    /// One slice of active expiry (Redis's activeExpireCycle): samples volatile keys in
    /// each database and deletes expired ones, repeating on a database while more than
    /// ~10% of its sample was stale, until `budget_us` is spent. Returns true if it ran out
    /// of time (more may be due).
    pub fn active_expire(&mut self, now_ms: i64, budget_us: u64) -> bool {
        if self.is_replica() || !self.active_expire_enabled {
            return false;
        }
        let effort = self.hot.active_expire_effort.clamp(1, 10) as usize;
        let per_loop = 20 + 20 * (effort - 1) / 4;
        let acceptable_stale = (10 - (effort - 1)) as f64;
        let started = Instant::now();
        let ndb = self.dbs.len();
        let mut timed_out = false;
        let (mut sampled_total, mut expired_total) = (0usize, 0usize);
        'dbs: for _ in 0..ndb {
            let db = self.expire_db_cursor % ndb;
            self.expire_db_cursor = self.expire_db_cursor.wrapping_add(1);
            loop {
                if self.dbs[db].expires_len() == 0 {
                    break;
                }
                let step = self.dbs[db].active_expire_step(now_ms, per_loop);
                sampled_total += step.sampled;
                expired_total += step.expired;
                self.flush_expired(None);
                if started.elapsed().as_micros() as u64 >= budget_us {
                    timed_out = true;
                    self.stats.expired_time_cap_reached_count += 1;
                    break 'dbs;
                }
                let stale = if step.sampled == 0 { 0.0 } else { step.expired as f64 * 100.0 / step.sampled as f64 };
                if stale <= acceptable_stale || step.sampled == 0 {
                    break;
                }
            }
        }
        if sampled_total > 0 {
            let perc = expired_total as f64 / sampled_total as f64;
            self.stats.expired_stale_perc = perc * 0.05 + self.stats.expired_stale_perc * 0.95;
        }
        self.stats.expire_cycle_cpu_ms += started.elapsed().as_millis() as u64;
        self.expire_timed_out = timed_out;
        self.feed.end_unit(false);
        if self.tracking.bcast_pending() {
            self.tracking_broadcast();
        }
        timed_out
    }

    /// The database a command-less caller (tests, tools) may inspect.
    pub fn db(&self, i: usize) -> &Db {
        &self.dbs[i]
    }

    /// Memory was over `maxmemory` when the current command started.
    pub(crate) fn over_maxmemory(&self) -> bool {
        self.pre_command_oom
    }
}

/// Redis's "unknown command" error, quoting up to 128 bytes of arguments.
fn unknown_command_error(argv: &Argv) -> String {
    let mut args = String::new();
    for a in argv.iter().skip(1) {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        args.push('\'');
        args.push_str(&sanitize(&a[..a.len().min(room)], room));
        args.push_str("' ");
    }
    format!("ERR unknown command '{}', with args beginning with: {args}", sanitize(argv.get(0), 128))
}

/// Lossy text of at most `max` bytes with CR/LF replaced, for error messages.
pub(crate) fn sanitize(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(max)]).replace(['\r', '\n'], " ")
}
