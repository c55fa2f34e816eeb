//! Cluster mode's place in the engine: the [`Cluster`] state machine (crates/cluster) lives
//! here, behind the engine's lock, so CLUSTER commands, the redirect check before every
//! command and the bus driver all see one consistent state.
//!
//! The driver (crates/server/src/cluster) feeds it bus messages and ticks under the lock
//! and gets back the outputs that need I/O (sends, replies, link closes, saves); outputs
//! that change the engine itself (become a replica, promotion, a PUBLISH from the bus) are
//! carried out here, at once. A CLUSTER command's outputs are queued the same way and the
//! driver is woken through [`crate::Host::cluster_wake`].

pub mod redirect;

use crate::engine::Engine;
use ferrokv_cluster::bus::{self, NodeName};
use ferrokv_cluster::nodes_conf;
use ferrokv_cluster::state::{Cluster, Output, Settings};
use ferrokv_config::{pid, Config, Pid};

/// Message types counted in CLUSTER INFO (Redis's CLUSTERMSG_TYPE_COUNT).
pub const MESSAGE_TYPES: usize = 11;

/// The directives [`apply_policy`] reads: CONFIG SET of one of them takes effect at once.
const POLICY_DIRECTIVES: [&str; 8] = [
    "cluster-node-timeout",
    "cluster-require-full-coverage",
    "cluster-replica-no-failover",
    "cluster-replica-validity-factor",
    "repl-ping-replica-period",
    "cluster-allow-replica-migration",
    "cluster-migration-barrier",
    "cluster-allow-reads-when-down",
];

/// The state machine's policies from the configuration (at startup, and again after a
/// CONFIG SET): timeouts, coverage, failover and replica migration rules.
pub fn apply_policy(s: &mut Settings, cfg: &Config) {
    s.node_timeout = cfg.int(pid("cluster-node-timeout")).max(1) as u64;
    s.require_full_coverage = cfg.bool(pid("cluster-require-full-coverage"));
    s.replica_no_failover = cfg.bool(pid("cluster-replica-no-failover"));
    s.replica_validity_factor = cfg.int(pid("cluster-replica-validity-factor")).max(0) as u64;
    s.repl_ping_replica_period = cfg.int(pid("repl-ping-replica-period")).max(1) as u64 * 1000;
    s.allow_replica_migration = cfg.bool(pid("cluster-allow-replica-migration"));
    s.migration_barrier = usize::try_from(cfg.int(pid("cluster-migration-barrier"))).unwrap_or(0);
}

pub struct ClusterMode {
    pub core: Cluster,
    /// Outputs waiting for the driver: Send, Reply, CloseLink, SaveConfig.
    pub io: Vec<Output>,
    /// The monotonic clock (ms) as the driver last set it: CLUSTER commands that need a
    /// time (MEET, FORGET) use it.
    pub mono_ms: u64,
    /// Bus messages sent and received, by type (CLUSTER INFO).
    pub sent: [u64; MESSAGE_TYPES],
    pub received: [u64; MESSAGE_TYPES],
    /// cluster-allow-reads-when-down.
    pub allow_reads_when_down: bool,
    /// cluster-preferred-endpoint-type: 0 ip, 1 hostname, 2 unknown-endpoint.
    pub preferred_endpoint: i64,
    /// The file the driver saves to (relative to `dir`).
    pub config_file: String,
    /// What the file holds, as far as we know (empty: unknown), and whether that text is
    /// fsynced: a save that would write the same text again is skipped (on a reshard most
    /// SETSLOT NODEs only repeat what the target's PONG already told this node).
    pub saved_text: String,
    pub saved_durable: bool,
    /// An fsync asked for failed: the next save fsyncs whatever it is asked.
    pub fsync_owed: bool,
    /// The bus links the driver holds, as CLUSTER LINKS shows them (the driver keeps
    /// this table; the engine only reads it).
    pub links: Vec<BusLink>,
}

/// One cluster bus connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusLink {
    /// Accepted (`Some`, the driver's link number) or opened by us (`None`).
    pub inbound: Option<ferrokv_cluster::state::LinkId>,
    /// The node at the other end: known from the start for a link we opened, from the
    /// first message's sender for an accepted one.
    pub node: Option<NodeName>,
    /// When it was created (wall clock, ms).
    pub created_ms: i64,
}

impl ClusterMode {
    pub fn new(core: Cluster, config_file: String) -> ClusterMode {
        ClusterMode {
            core,
            io: Vec::new(),
            mono_ms: 1,
            sent: [0; MESSAGE_TYPES],
            received: [0; MESSAGE_TYPES],
            allow_reads_when_down: false,
            preferred_endpoint: 0,
            config_file,
            saved_text: String::new(),
            saved_durable: false,
            fsync_owed: false,
            links: Vec::new(),
        }
    }

    /// The text nodes.conf should hold now.
    pub fn config_text(&self) -> String {
        nodes_conf::render(&self.core.nodes_conf())
    }

    /// The node's address as clients reach it: its announced ip (or the one peers see).
    pub fn endpoint(&self, name: &NodeName) -> Option<(String, u16)> {
        self.core.node(name).map(|n| (n.ip.clone(), n.port))
    }
}

impl Engine {
    pub fn cluster_enabled(&self) -> bool {
        self.cluster.is_some()
    }

    /// Carries out a state machine input's outputs: role changes and bus PUBLISHes here,
    /// the rest queued for the driver (woken if anything was queued).
    pub fn cluster_apply(&mut self, outputs: Vec<Output>) {
        let mut queued = false;
        // A save that had to reach the disk (a vote, an epoch, a role) failed: nothing this
        // input caused goes out, so no peer hears of a vote a restart could forget (Redis
        // exits there). The state retries: the next save fsyncs whatever it writes.
        let mut hold_messages = false;
        for output in outputs {
            if hold_messages && matches!(output, Output::Send { .. } | Output::Reply { .. }) {
                continue;
            }
            match output {
                Output::BecomeReplicaOf(master) => {
                    let Some((ip, port)) = self.cluster.as_ref().and_then(|c| c.endpoint(&master)) else { continue };
                    let same = self.repl.master.as_ref().is_some_and(|m| m.host == ip && m.port == port);
                    if !same && !ip.is_empty() {
                        log::info!("Cluster: replicating {} at {ip}:{port}", bus::name_to_string(&master));
                        let now = self.now_ms;
                        self.follow_master(&ip, port, now);
                    }
                }
                Output::BecomeMaster => {
                    if !self.is_master_role() {
                        log::warn!("Cluster: promoted, this node is a master now");
                        self.promote();
                    }
                }
                Output::PauseWrites { ms } => {
                    let until = self.now_ms.saturating_add(ms as i64);
                    let pause = match self.pause {
                        Some(old) => crate::engine::Pause { until_ms: old.until_ms.max(until), all: old.all },
                        None => crate::engine::Pause { until_ms: until, all: false },
                    };
                    log::warn!("Manual failover requested by a replica: pausing writes");
                    self.pause = Some(pause);
                }
                Output::ResumeWrites => {
                    log::info!("Manual failover over: resuming writes");
                    self.end_pause();
                }
                Output::DropSlotKeys(slots) => self.drop_slot_keys(&slots),
                Output::SaveConfig { fsync } => {
                    // Before anything the same input sends, as Redis saves in beforeSleep
                    // before its writes go out. A failure is logged there.
                    hold_messages = self.save_cluster_config(fsync).is_err() && fsync;
                }
                Output::Publish { channel, message, shard } => {
                    if shard {
                        self.publish_shard(None, &channel, &message);
                    } else {
                        self.publish(None, &channel, &message);
                    }
                }
                other => {
                    if let Some(c) = self.cluster.as_mut() {
                        c.io.push(other);
                        queued = true;
                    }
                }
            }
        }
        if queued {
            self.host.cluster_wake();
        }
    }

    /// Writes nodes.conf if its text changed (or must be fsynced and is not yet): `fsync`
    /// waits for the disk, for what must survive a power loss (the state machine says
    /// which saves those are); every save replaces the file whole, before the caller
    /// replies or sends anything.
    pub fn save_cluster_config(&mut self, fsync: bool) -> Result<(), String> {
        let Some(c) = self.cluster.as_mut() else { return Ok(()) };
        let text = c.config_text();
        let fsync = fsync || c.fsync_owed;
        if text == c.saved_text && (c.saved_durable || !fsync) {
            return Ok(());
        }
        match self.host.write_cluster_config(&c.config_file, &text, fsync) {
            Ok(()) => {
                c.saved_text = text;
                c.saved_durable = fsync;
                c.fsync_owed = false;
                Ok(())
            }
            Err(e) => {
                c.saved_text.clear();
                c.fsync_owed |= fsync;
                log::warn!("Could not save the cluster config {}: {e}", c.config_file);
                Err(e)
            }
        }
    }

    /// clusterCron's part in the engine, every 100 ms: the replication facts the state
    /// needs, its tick, and (as Redis's cron) a replica that is not replicating yet — it
    /// loaded itself as one from nodes.conf — starts following its master.
    pub fn cluster_tick(&mut self, mono_ms: u64, wall_ms: i64) {
        let offset = self.repl.offset;
        let down_since = self
            .repl
            .master
            .as_ref()
            .filter(|m| m.state != crate::replication::LinkState::Connected)
            .map(|m| mono_ms.saturating_sub((wall_ms - m.down_since_ms).max(0) as u64));
        let following = self.repl.master.is_some();
        let Some(mode) = self.cluster.as_mut() else { return };
        mode.mono_ms = mono_ms;
        mode.core.set_repl_offset(offset);
        mode.core.set_master_link_down_since(down_since);
        let mut outputs = mode.core.tick(mono_ms);
        let me = mode.core.myself();
        if me.is_replica() && !following {
            if let Some(master) = me.replica_of {
                outputs.push(Output::BecomeReplicaOf(master));
            }
        }
        self.now_ms = wall_ms;
        self.cluster_apply(outputs);
        self.redirect_blocked_clients();
    }

    /// A bus message in, with the replication offset as of now (a paused master tells
    /// its replica the exact offset to reach).
    pub fn cluster_handle(&mut self, mono_ms: u64, origin: ferrokv_cluster::state::Origin, msg: bus::Message) {
        let offset = self.repl.offset;
        let Some(mode) = self.cluster.as_mut() else { return };
        if let Some(n) = mode.received.get_mut(usize::from(msg.body.kind())) {
            *n += 1;
        }
        mode.mono_ms = mono_ms;
        mode.core.set_repl_offset(offset);
        let outputs = mode.core.handle(mono_ms, origin, msg);
        self.cluster_apply(outputs);
    }

    /// CONFIG SET changed these directives: the cluster policies among them apply now.
    pub(crate) fn cluster_config_changed(&mut self, changed: &[Pid]) {
        let Some(mode) = self.cluster.as_mut() else { return };
        if POLICY_DIRECTIVES.iter().any(|d| changed.contains(&pid(d))) {
            apply_policy(mode.core.settings_mut(), &self.cfg);
            mode.allow_reads_when_down = self.cfg.bool(pid("cluster-allow-reads-when-down"));
        }
    }

    /// Turns cluster mode on: the state, and the per-slot index of db 0 (the only
    /// database a cluster node serves).
    pub fn attach_cluster(&mut self, mode: ClusterMode) {
        self.cluster = Some(Box::new(mode));
        self.dbs[0].enable_slot_index(ferrokv_cluster::slot::key_slot);
    }

    /// delKeysInSlot for slots another node took while we held keys there: each key is
    /// deleted as a DEL would, and the DELs go to the AOF and the replicas.
    fn drop_slot_keys(&mut self, slots: &[u16]) {
        let mut deleted = 0usize;
        for &slot in slots {
            for key in self.keys_in_slot(slot, usize::MAX) {
                if let Some(obj) = self.dbs[0].remove(&key) {
                    self.host.free_later(Box::new(obj));
                    deleted += 1;
                    self.dirty += 1;
                    self.feed.push(0, [&b"DEL"[..], &key]);
                    self.touch_watched(None, 0, &key);
                    if self.tracking.active() {
                        self.tracking_invalidate(None, &key, 0, true);
                    }
                    self.notify(None, ferrokv_config::notify::GENERIC, "del", &key, 0);
                }
            }
        }
        if deleted > 0 {
            log::warn!("Deleted {deleted} keys from slots now served by another node");
            self.feed.end_unit(false);
        }
    }

    /// Keys of db 0 in a slot (stored ones: a key past its TTL counts until deleted, as
    /// in Redis).
    pub fn count_keys_in_slot(&self, slot: u16) -> usize {
        self.dbs[0].slot_index().map_or(0, |index| index.count(slot))
    }

    /// Up to `max` keys of db 0 in a slot.
    pub fn keys_in_slot(&self, slot: u16, max: usize) -> Vec<Vec<u8>> {
        let Some(index) = self.dbs[0].slot_index() else { return Vec::new() };
        index.keys(slot).take(max).map(|k| k.to_vec()).collect()
    }

    /// The driver takes the queued I/O outputs.
    pub fn cluster_take_io(&mut self) -> Vec<Output> {
        self.cluster.as_mut().map(|c| std::mem::take(&mut c.io)).unwrap_or_default()
    }
}
