//! Replication, the engine's half: replication IDs and offsets, the backlog every replica
//! reads from, the replicas attached to this server, and the decisions of the protocol
//! (PSYNC: continue or full sync; who may write; when WAIT is satisfied). Sockets, the RDB
//! transfer and the link to our own master are driven by the server, which calls in here.
//!
//! The write stream is the engine's write feed: on a master, every byte it produces is
//! appended to the backlog (and the AOF) and `master_repl_offset` counts them. A replica
//! does not re-encode what it executes for its own replicas: it appends the bytes its
//! master sent, verbatim, so a chain of replicas shares one offset space (PSYNC2).

pub mod backlog;
pub mod failover;
pub mod guards;
pub mod link;
pub mod master;
pub mod replica;
pub mod shutdown;
pub mod sync;

use crate::client::ClientId;
use crate::engine::Engine;
use backlog::Backlog;
use bytes::Bytes;
use ferrokv_config::{pid, Val};

/// A replica's progress through synchronization, as INFO names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaState {
    /// Waiting for a snapshot to start (diskless sync delay, or another snapshot running).
    WaitBgsave,
    /// Receiving the RDB.
    SendBulk,
    /// Streaming.
    Online,
}

impl ReplicaState {
    pub fn name(self) -> &'static str {
        match self {
            ReplicaState::WaitBgsave => "wait_bgsave",
            ReplicaState::SendBulk => "send_bulk",
            ReplicaState::Online => "online",
        }
    }
}

/// A connection that became one of our replicas (PSYNC/SYNC).
#[derive(Clone, Debug)]
pub struct Replica {
    pub id: ClientId,
    pub ip: String,
    pub listening_port: u16,
    pub state: ReplicaState,
    /// Offset of the next byte to send.
    pub cursor: u64,
    /// Last offset the replica acknowledged, and when.
    pub ack_offset: u64,
    pub ack_ms: i64,
    /// Speaks `$EOF:` diskless transfers and `+CONTINUE <replid>`.
    pub capa_eof: bool,
    pub capa_psync2: bool,
    /// This full sync goes out as `$EOF:` (diskless, replica capable), not `$<len>`.
    pub eof_transfer: bool,
    /// The offset up to which the replica's AOF is fsynced (`REPLCONF ACK … FACK n`);
    /// -1 until it says (no AOF, or a replica that predates WAITAOF).
    pub fack_offset: i64,
    /// Full sync: the offset the snapshot corresponds to.
    pub sync_offset: u64,
    /// SYNC rather than PSYNC: no +FULLRESYNC line before the RDB.
    pub legacy: bool,
    /// The RDB went out; streaming starts at the replica's first ACK (it then has loaded
    /// it, and the end of an `$EOF:` transfer cannot be confused with stream bytes).
    pub rdb_sent: bool,
    /// The `+FULLRESYNC` line, for the sender to write before the RDB.
    pub preamble: Option<String>,
    /// Since when the unsent stream has been over the soft output-buffer limit.
    pub soft_since: Option<i64>,
    /// Synchronous replication: when (monotonic ms) the newest GETACK this replica's
    /// acknowledgements cover was sent (0: none yet). See [`sync`].
    pub proof_mono: i64,
}

impl Replica {
    /// Whole seconds since the last ACK: the elapsed time truncated. Redis subtracts two
    /// unix-second stamps instead (`unixtime - repl_ack_time`), which reads 2 whenever an
    /// ACK sent once a second arrives a few milliseconds late across a second boundary, so
    /// `min-replicas-max-lag 1` there refuses writes now and then with a healthy replica;
    /// truncating the elapsed time keeps a replica that ACKs every second at 0 or 1 as
    /// long as no gap between ACKs reaches two seconds.
    pub fn lag_secs(&self, now_ms: i64) -> i64 {
        (now_ms - self.ack_ms).max(0) / 1000
    }

    /// INFO's `lag=`: seconds since the last acknowledgement, 0 until the replica streams.
    pub fn info_lag_secs(&self, now_ms: i64) -> i64 {
        if self.state == ReplicaState::Online {
            self.lag_secs(now_ms)
        } else {
            0
        }
    }
}

/// What REPLCONF told us before PSYNC, kept on the client until it becomes a replica.
#[derive(Clone, Debug, Default)]
pub struct ReplConf {
    pub listening_port: u16,
    pub ip: Option<String>,
    pub capa_eof: bool,
    pub capa_psync2: bool,
    /// SYNC (pre-PSYNC protocol): no +FULLRESYNC line, length-prefixed RDB.
    pub legacy: bool,
}

/// The link to our own master, as INFO and ROLE report it. The server's link driver
/// updates it.
#[derive(Clone, Debug)]
pub struct MasterLink {
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    pub last_io_ms: i64,
    pub down_since_ms: i64,
    /// Bytes of the master's stream received (`slave_read_repl_offset`).
    pub read_offset: u64,
    pub transfer_size: i64,
    pub transfer_read: u64,
    /// The client our master's stream runs as, while the link is streaming (it is in the
    /// clients table then: CLIENT LIST shows it with flag `M`, CLIENT KILL closes it).
    pub client: Option<ClientId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Connect,
    Connecting,
    Handshake,
    Transfer,
    Connected,
}

impl LinkState {
    /// ROLE's name for the state.
    pub fn role_name(self) -> &'static str {
        match self {
            LinkState::Connect => "connect",
            LinkState::Connecting => "connecting",
            LinkState::Handshake => "handshake",
            LinkState::Transfer => "sync",
            LinkState::Connected => "connected",
        }
    }
}

pub struct Replication {
    pub replid: String,
    pub replid2: String,
    pub second_offset: i64,
    /// `master_repl_offset`: the offset of the last byte of the write stream.
    pub offset: u64,
    pub backlog: Option<Backlog>,
    pub replicas: Vec<Replica>,
    /// Set while this server is a replica.
    pub master: Option<MasterLink>,
    /// When the last replica went away (the backlog is freed after `repl-backlog-ttl`).
    pub no_replicas_since_ms: Option<i64>,
    /// Replicas waiting since then for a full-sync snapshot to start.
    pub full_sync_wanted_since: Option<i64>,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    /// WAIT is pending: ask replicas for an ACK before the next command boundary.
    pub want_acks: bool,
    /// WAITAOF clients may be blocked: the cron checks the AOF's fsync progress for them.
    pub aof_waiters: bool,
    /// On a replica with an AOF: (feed offset, replication offset) of applied stream
    /// batches not yet known to be fsynced, oldest first (for `REPLCONF ACK … FACK`).
    pub fsync_marks: std::collections::VecDeque<(u64, u64)>,
    /// The replication offset up to which this replica's AOF is fsynced.
    pub fsynced_offset: u64,
    /// Last time the master pinged its replicas through the stream.
    pub last_ping_ms: i64,
    /// A coordinated switchover (FAILOVER) in progress.
    pub failover: Option<failover::Failover>,
    /// Synchronous replication's bookkeeping (`sync-replicas`).
    pub sync: sync::SyncState,
    /// REPLFREEZE: the link to our master stays down until then (unix ms).
    pub frozen_until: Option<i64>,
    /// The last full resynchronization offered was refused (empty-master guard).
    pub empty_master_refused: bool,
    /// Our dataset began empty when this process started, we have followed no master and
    /// no replica has followed us since: as a master, we may be one that restarted without
    /// its data, even after taking writes. Full syncs say so (RDB aux
    /// `ferrokv-started-empty`) so that replicas holding another history's data refuse
    /// them (empty-master guard). A master that served replicas keeps serving returning
    /// ones after a new history (its backlog freed), as before.
    pub started_empty: bool,
    /// The master (host, port) whose history our dataset continues: set when a sync with
    /// it succeeds, forgotten when we become a master.
    pub history_from: Option<(String, u16)>,
    /// The master client of a link that went down (Redis's cached master): a partial
    /// resync resurrects it, with its id, age and the database the stream had selected
    /// (the stream continues without a new SELECT); a full sync discards it.
    pub cached_master: Option<Box<crate::client::Client>>,
    /// A command of our master's stream is running (keys do not expire for it).
    pub applying_master_stream: bool,
    /// A SHUTDOWN waiting for lagging replicas.
    pub shutdown: Option<shutdown::ShutdownWait>,
}

pub fn random_replid(rng: &mut fastrand::Rng) -> String {
    (0..40).map(|_| char::from(b"0123456789abcdef"[rng.usize(0..16)])).collect()
}

impl Replication {
    pub fn new(rng: &mut fastrand::Rng) -> Replication {
        Replication {
            replid: random_replid(rng),
            replid2: "0".repeat(40),
            second_offset: -1,
            offset: 0,
            backlog: None,
            replicas: Vec::new(),
            master: None,
            no_replicas_since_ms: None,
            full_sync_wanted_since: None,
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
            want_acks: false,
            aof_waiters: false,
            fsync_marks: std::collections::VecDeque::new(),
            fsynced_offset: 0,
            last_ping_ms: 0,
            cached_master: None,
            applying_master_stream: false,
            shutdown: None,
            failover: None,
            sync: Default::default(),
            frozen_until: None,
            empty_master_refused: false,
            started_empty: false,
            history_from: None,
        }
    }

    pub fn replica(&self, id: ClientId) -> Option<&Replica> {
        self.replicas.iter().find(|r| r.id == id)
    }

    pub fn replica_mut(&mut self, id: ClientId) -> Option<&mut Replica> {
        self.replicas.iter_mut().find(|r| r.id == id)
    }

    /// PSYNC2's rule: a replica that followed history `replid` up to `offset` (the first
    /// byte it lacks) can continue here if that history is ours (or was, before a
    /// promotion, up to `second_offset`) and the backlog still holds the bytes.
    pub fn can_continue(&self, replid: &str, from: u64) -> bool {
        let same_history = replid == self.replid || (replid == self.replid2 && from as i64 <= self.second_offset);
        same_history && self.backlog.as_ref().is_some_and(|b| b.can_continue_from(from))
    }

    /// A new history starts here (promotion): the old ID stays valid up to this point so
    /// the other replicas of the old master can continue with us.
    pub fn shift_replid(&mut self, rng: &mut fastrand::Rng) {
        self.replid2 = std::mem::replace(&mut self.replid, random_replid(rng));
        self.second_offset = self.offset as i64 + 1;
    }

    /// A history without a past (Redis's changeReplicationId + clearReplicationId2): when
    /// a master creates a backlog from scratch or frees it, no replica may continue what
    /// it had before, since the offset did not count the writes made without a backlog.
    pub fn new_history(&mut self, rng: &mut fastrand::Rng) {
        self.replid = random_replid(rng);
        self.replid2 = "0".repeat(40);
        self.second_offset = -1;
    }

    /// Appends stream bytes to the backlog (if there is one) and advances the offset.
    pub fn append(&mut self, bytes: Bytes) {
        if let Some(b) = self.backlog.as_mut() {
            self.offset += bytes.len() as u64;
            b.append(bytes);
        }
        self.trim();
    }

    /// Creates the backlog if missing (first replica, or a replica syncing).
    pub fn ensure_backlog(&mut self, size: u64) {
        if self.backlog.is_none() {
            self.backlog = Some(Backlog::new(size, self.offset + 1));
        }
    }

    /// Frees what no replica needs beyond the backlog size.
    pub fn trim(&mut self) {
        let keep = self.replicas.iter().map(|r| r.cursor).min().unwrap_or(u64::MAX);
        if let Some(b) = self.backlog.as_mut() {
            b.trim(keep);
        }
    }
}

impl Engine {
    pub fn is_master_role(&self) -> bool {
        self.repl.master.is_none()
    }

    /// Online replicas whose lag is at most `min-replicas-max-lag` seconds
    /// (`min_slaves_good_slaves`). Redis caches this count once a second; it is computed
    /// here when asked, so a replica that stops acknowledging stops counting as soon as its
    /// lag passes the setting, not up to a second later.
    pub fn good_replicas(&self, now_ms: i64) -> usize {
        let max_lag = self.hot.min_replicas_max_lag;
        self.repl.replicas.iter().filter(|r| r.state == ReplicaState::Online && r.lag_secs(now_ms) <= max_lag).count()
    }

    /// Why a write must be refused because of replication, if it must (Redis's checks in
    /// processCommand, in its order).
    pub(crate) fn replication_write_guard(&self, from_master: bool, now_ms: i64) -> Option<&'static str> {
        if from_master {
            return None;
        }
        if self.is_master_role() {
            let min = self.hot.min_replicas_to_write;
            if min > 0 && self.hot.min_replicas_max_lag > 0 && (self.good_replicas(now_ms) as i64) < min {
                return Some("NOREPLICAS Not enough good replicas to write.");
            }
            return None;
        }
        if self.hot.replica_read_only {
            return Some("READONLY You can't write against a read only replica.");
        }
        None
    }

    /// Whether commands without the `stale` flag are refused: a replica whose link is down
    /// with `replica-serve-stale-data no`.
    pub(crate) fn master_down(&self) -> bool {
        match &self.repl.master {
            Some(m) => m.state != LinkState::Connected && !self.hot.replica_serve_stale_data,
            None => false,
        }
    }

    /// The configured master, if any.
    pub fn configured_master(&self) -> Option<(String, u16)> {
        match self.cfg.get(pid("replicaof")) {
            Val::ReplicaOf(Some((h, p))) => Some((h.clone(), *p)),
            _ => None,
        }
    }

    /// Keeps the write feed on while something consumes it.
    pub(crate) fn update_feed_enabled(&mut self) {
        let on = self.persist.aof.enabled || (self.is_master_role() && self.repl.backlog.is_some());
        if on && !self.feed.enabled {
            self.feed.reset_db();
        }
        self.feed.enabled = on;
    }

    /// INFO replication.
    pub fn info_replication(&self, now_ms: i64) -> String {
        use std::fmt::Write;
        let r = &self.repl;
        let mut s = String::from("# Replication\r\n");
        match &r.master {
            None => s.push_str("role:master\r\n"),
            Some(m) => {
                let connected = m.state == LinkState::Connected;
                let _ = write!(
                    s,
                    "role:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
                    m.host,
                    m.port,
                    if connected { "up" } else { "down" },
                    if connected { (now_ms - m.last_io_ms) / 1000 } else { -1 },
                    (m.state == LinkState::Transfer) as i32,
                    m.read_offset.max(1),
                    r.offset.max(1),
                );
                if m.state == LinkState::Transfer {
                    let perc =
                        if m.transfer_size > 0 { m.transfer_read as f64 * 100.0 / m.transfer_size as f64 } else { 0.0 };
                    let _ = write!(
                        s,
                        "master_sync_total_bytes:{}\r\nmaster_sync_read_bytes:{}\r\nmaster_sync_left_bytes:{}\r\nmaster_sync_perc:{perc:.2}\r\nmaster_sync_last_io_seconds_ago:{}\r\n",
                        m.transfer_size,
                        m.transfer_read,
                        m.transfer_size - m.transfer_read as i64,
                        (now_ms - m.last_io_ms) / 1000
                    );
                }
                if !connected {
                    let since = if m.down_since_ms > 0 { (now_ms - m.down_since_ms) / 1000 } else { -1 };
                    let _ = write!(s, "master_link_down_since_seconds:{since}\r\n");
                }
                let _ = write!(
                    s,
                    "slave_priority:{}\r\nslave_read_only:{}\r\nreplica_announced:{}\r\n",
                    self.cfg.int(pid("replica-priority")),
                    self.cfg.bool(pid("replica-read-only")) as i32,
                    self.cfg.bool(pid("replica-announced")) as i32
                );
            }
        }
        let _ = write!(s, "connected_slaves:{}\r\n", r.replicas.len());
        if self.cfg.int(pid("min-replicas-to-write")) > 0 && self.cfg.int(pid("min-replicas-max-lag")) > 0 {
            let _ = write!(s, "min_slaves_good_slaves:{}\r\n", self.good_replicas(now_ms));
        }
        for (i, rep) in r.replicas.iter().enumerate() {
            let lag = rep.info_lag_secs(now_ms);
            let _ = write!(
                s,
                "slave{i}:ip={},port={},state={},offset={},lag={lag}\r\n",
                rep.ip,
                rep.listening_port,
                rep.state.name(),
                rep.ack_offset
            );
        }
        let (active, first, hist) = match &r.backlog {
            Some(b) => (1, b.first_byte(), b.histlen()),
            None => (0, 0, 0),
        };
        let _ = write!(
            s,
            "master_failover_state:{}\r\nmaster_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\nrepl_backlog_active:{active}\r\nrepl_backlog_size:{}\r\nrepl_backlog_first_byte_offset:{first}\r\nrepl_backlog_histlen:{hist}\r\n",
            self.failover_state_name(),
            r.replid,
            r.replid2,
            r.offset,
            r.second_offset,
            self.cfg.int(pid("repl-backlog-size")),
        );
        self.info_sync(&mut s);
        s
    }
}
