//! The cluster state machine: what one node knows about the cluster and what it does
//! about it, as Redis 7.0's cluster.c does — gossip, failure detection, replica elections
//! and slot ownership by config epoch — with no I/O.
//!
//! Inputs: [`Cluster::tick`] (every 100 ms, as clusterCron), [`Cluster::handle`] (a decoded
//! bus message and the link it came on), [`Cluster::link_closed`], and the administrative
//! calls (`meet`, `add_slots`, `replicate`, `publish`). Each returns the [`Output`]s to carry
//! out: messages to send, the config to save, replication role changes, PUBLISHes to deliver.
//! Time is milliseconds of a monotonic clock, passed in.
//!
//! The modules follow Redis's split: `receive.rs` (clusterProcessPacket, gossip, UPDATE,
//! config-epoch collisions), `failover.rs` (PFAIL/FAIL, votes, the replica's election).

mod admin;
mod failover;
mod manual;
pub(crate) mod migration;
mod receive;

use crate::bus::{self, Body, Gossip, Header, Message, NodeName, SlotBitmap, NAME_LEN};
use crate::nodes_conf::{flags, NodeLine, NodesConf, OpenSlot};
use crate::slot::SLOTS;
use std::collections::BTreeMap;

pub use receive::Origin;

/// How long CLUSTER FORGET keeps a node out (CLUSTER_BLACKLIST_TTL).
const FORGET_TTL: u64 = 60_000;

/// An inbound connection, as the driver numbers them (replies go back on it).
pub type LinkId = u64;

#[derive(Clone, Debug)]
pub struct Settings {
    /// cluster-node-timeout, ms.
    pub node_timeout: u64,
    /// cluster-require-full-coverage.
    pub require_full_coverage: bool,
    /// cluster-replica-no-failover.
    pub replica_no_failover: bool,
    /// cluster-replica-validity-factor (0: a replica fails over however old its data).
    pub replica_validity_factor: u64,
    /// repl-ping-replica-period, in ms (part of the data-age limit).
    pub repl_ping_replica_period: u64,
    /// cluster-allow-replica-migration: a replica may move to an orphaned master, and a
    /// master left without slots by a SETSLOT or UPDATE follows their new owner.
    pub allow_replica_migration: bool,
    /// cluster-migration-barrier: how many working replicas a master keeps when one of
    /// its replicas migrates away.
    pub migration_barrier: usize,
    /// The address this node announces (an empty ip lets peers use the one they see).
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub pport: u16,
    pub hostname: String,
    /// Seed for the random choices (gossip targets, election delay, new node ids).
    pub seed: u64,
}

impl Settings {
    pub fn new(port: u16, seed: u64) -> Settings {
        Settings {
            node_timeout: 15_000,
            require_full_coverage: true,
            replica_no_failover: false,
            replica_validity_factor: 10,
            repl_ping_replica_period: 10_000,
            allow_replica_migration: true,
            migration_barrier: 1,
            ip: String::new(),
            port,
            cport: port.wrapping_add(10000),
            pport: 0,
            hostname: String::new(),
            seed,
        }
    }
}

/// What the caller must do after an input, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send on the outbound link to this node (connect to its ip:cport first if needed).
    Send { to: NodeName, msg: Message },
    /// Send on the inbound link a message came from.
    Reply { link: LinkId, msg: Message },
    /// Close the outbound link to this node (it looks stuck); the next send reconnects.
    CloseLink(NodeName),
    /// Persist [`Cluster::nodes_conf`] (write it, so a process crash never loses it).
    /// Always first in the list when present, so the driver saves before it sends what the
    /// same input produced. `fsync`: wait for the disk too, because the input changed what
    /// must survive a power loss — an epoch, a vote, a node's role or config epoch — as
    /// Redis 7.0 fsyncs exactly then (slots and open slots are written, not fsynced: the
    /// epochs recover them from the other nodes, and an fsync costs milliseconds, several
    /// per slot when resharding).
    SaveConfig { fsync: bool },
    /// Replicate from this node (its ip and port are in the nodes table).
    BecomeReplicaOf(NodeName),
    /// Stop replicating: this node was promoted.
    BecomeMaster,
    /// Deliver a PUBLISH/SPUBLISH that came over the bus to local subscribers.
    Publish { channel: Vec<u8>, message: Vec<u8>, shard: bool },
    /// Manual failover, master side: hold client writes for this long (CLIENT PAUSE
    /// WRITE) so the replica catches up with a frozen offset.
    PauseWrites { ms: u64 },
    /// The manual failover is over: writes may go on.
    ResumeWrites,
    /// These slots of ours are served by another node now: delete the keys this node
    /// still holds in them.
    DropSlotKeys(Vec<u16>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterState {
    Ok,
    Fail,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub name: NodeName,
    pub flags: u16,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub pport: u16,
    pub hostname: String,
    pub replica_of: Option<NodeName>,
    pub config_epoch: u64,
    /// When the pending PING was sent (0: none pending).
    pub ping_sent: u64,
    pub pong_received: u64,
    pub data_received: u64,
    pub fail_time: u64,
    /// When this node, a master, last had our vote for one of its replicas.
    pub voted_time: u64,
    pub repl_offset: u64,
    /// Masters that said this node is failing, and when they last said so.
    pub fail_reports: Vec<(NodeName, u64)>,
    /// The slots it serves (kept in step with the cluster's slot table) and their count.
    pub slots: SlotBitmap,
    pub numslots: usize,
    pub created: u64,
    /// The outbound link was opened (the first PING or MEET went out on it).
    pub link_since: Option<u64>,
    /// Since when this master has been seen orphaned by the replica-migration check
    /// (Redis's orphaned_time; None: not orphaned when last checked).
    pub orphaned_since: Option<u64>,
}

impl Node {
    fn new(name: NodeName, flags: u16, now: u64) -> Node {
        Node {
            name,
            flags,
            ip: String::new(),
            port: 0,
            cport: 0,
            pport: 0,
            hostname: String::new(),
            replica_of: None,
            config_epoch: 0,
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            voted_time: 0,
            repl_offset: 0,
            fail_reports: Vec::new(),
            slots: SlotBitmap::default(),
            numslots: 0,
            created: now,
            link_since: None,
            orphaned_since: None,
        }
    }

    pub fn is_master(&self) -> bool {
        self.flags & flags::MASTER != 0
    }
    pub fn is_replica(&self) -> bool {
        self.flags & flags::REPLICA != 0
    }
    pub fn in_handshake(&self) -> bool {
        self.flags & flags::HANDSHAKE != 0
    }
    pub fn failing(&self) -> bool {
        self.flags & flags::FAIL != 0
    }
    pub fn timed_out(&self) -> bool {
        self.flags & flags::PFAIL != 0
    }
}

/// The replica's election in progress (Redis's failover_auth_* fields).
#[derive(Clone, Debug)]
struct Election {
    /// When the vote request may go out (or went out). Signed: it starts in the future.
    auth_time: i64,
    auth_count: usize,
    auth_sent: bool,
    auth_rank: usize,
    auth_epoch: u64,
}

impl Default for Election {
    fn default() -> Self {
        // Long ago, whatever the monotonic clock's origin: the first election starts at once.
        Election { auth_time: i64::MIN / 4, auth_count: 0, auth_sent: false, auth_rank: 0, auth_epoch: 0 }
    }
}

pub struct Cluster {
    settings: Settings,
    myself: NodeName,
    nodes: Vec<Node>,
    /// Owner of each slot.
    slots: Vec<Option<NodeName>>,
    /// Open slots of this node (CLUSTER SETSLOT MIGRATING/IMPORTING): slot → the other node.
    migrating: BTreeMap<u16, NodeName>,
    importing: BTreeMap<u16, NodeName>,
    current_epoch: u64,
    last_vote_epoch: u64,
    state: ClusterState,
    election: Election,
    repl_offset: u64,
    /// Since when this replica's link to its master is down (None: up).
    master_link_down_since: Option<u64>,
    /// CLUSTER FORGET: ids not to be re-added from gossip until the time given.
    forgotten: BTreeMap<NodeName, u64>,
    rng: fastrand::Rng,
    out: Vec<Output>,
    save_pending: bool,
    /// What the last fsynced save held of [`Durable`] (None: nothing fsynced yet).
    synced: Option<Durable>,
    ticks: u64,
    mf: manual::ManualFailover,
}

/// The part of nodes.conf that election safety needs after a power loss: the epochs (a
/// vote given twice in one epoch, or a config epoch going back, could elect two masters
/// for the same slots), who we are, and every node's config epoch and role. Slot owners
/// and open slots are not in it: after a restart the other nodes' higher epochs win them
/// back, as in Redis, whose SETSLOT saves without fsync.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Durable {
    current_epoch: u64,
    last_vote_epoch: u64,
    myself: NodeName,
    nodes: Vec<(NodeName, u64, bool, Option<NodeName>)>,
}

fn random_name(rng: &mut fastrand::Rng) -> NodeName {
    let mut name = [0; NAME_LEN];
    for b in &mut name {
        *b = b"0123456789abcdef"[rng.usize(0..16)];
    }
    name
}

impl Cluster {
    /// A new node that knows only itself, a master with no slots (a fresh nodes.conf).
    pub fn new(settings: Settings, now: u64) -> Cluster {
        let mut rng = fastrand::Rng::with_seed(settings.seed);
        let myself = random_name(&mut rng);
        Cluster::with_name(settings, myself, now)
    }

    /// As [`Cluster::new`] with a given node id.
    pub fn with_name(settings: Settings, myself: NodeName, now: u64) -> Cluster {
        let mut me = Node::new(myself, flags::MYSELF | flags::MASTER, now);
        me.ip = settings.ip.clone();
        me.port = settings.port;
        me.cport = settings.cport;
        me.pport = settings.pport;
        me.hostname = settings.hostname.clone();
        Cluster {
            rng: fastrand::Rng::with_seed(settings.seed ^ 0x5eed),
            settings,
            myself,
            nodes: vec![me],
            slots: vec![None; SLOTS],
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
            current_epoch: 0,
            last_vote_epoch: 0,
            state: ClusterState::Fail,
            election: Election::default(),
            repl_offset: 0,
            master_link_down_since: None,
            forgotten: BTreeMap::new(),
            out: Vec::new(),
            save_pending: true,
            synced: None,
            ticks: 0,
            mf: manual::ManualFailover::default(),
        }
    }

    /// A node restarted from its nodes.conf. Times and links start afresh; FAIL flags stay.
    pub fn from_conf(settings: Settings, conf: &NodesConf, now: u64) -> Result<Cluster, String> {
        let me = conf.myself().ok_or("the config has no node flagged myself")?;
        let mut cluster = Cluster::with_name(settings, bus::name_from_str(&me.id), now);
        cluster.nodes.clear();
        for line in &conf.nodes {
            let mut node = Node::new(bus::name_from_str(&line.id), line.flags & !flags::PFAIL, now);
            node.ip = line.ip.clone();
            node.port = line.port;
            node.cport = line.cport;
            node.hostname = line.hostname.clone().unwrap_or_default();
            node.replica_of = line.master.as_deref().map(bus::name_from_str);
            node.config_epoch = line.config_epoch;
            node.pong_received = now;
            if line.flags & flags::MYSELF != 0 {
                for open in &line.open_slots {
                    match open {
                        OpenSlot::Migrating(slot, to) => cluster.migrating.insert(*slot, bus::name_from_str(to)),
                        OpenSlot::Importing(slot, from) => cluster.importing.insert(*slot, bus::name_from_str(from)),
                    };
                }
            }
            cluster.nodes.push(node);
        }
        for line in &conf.nodes {
            let name = bus::name_from_str(&line.id);
            for &(start, end) in &line.slots {
                for slot in start..=end {
                    cluster.set_owner(slot, Some(name));
                }
            }
        }
        let (myself, hostname) = (cluster.myself, cluster.settings.hostname.clone());
        if let Some(me) = cluster.node_mut(&myself) {
            // This run's announced hostname wins over the file's.
            me.hostname = hostname;
        }
        let masters_with_replicas: Vec<NodeName> = cluster.nodes.iter().filter_map(|n| n.replica_of).collect();
        for master in masters_with_replicas {
            cluster.mark_migration_target(&master);
        }
        cluster.current_epoch = conf.current_epoch;
        cluster.last_vote_epoch = conf.last_vote_epoch;
        cluster.update_state();
        Ok(cluster)
    }

    /// What nodes.conf should say now (`now` only for the link-state field).
    pub fn nodes_conf(&self) -> NodesConf {
        let mut nodes = Vec::new();
        for node in self.nodes.iter().filter(|n| !n.in_handshake()) {
            nodes.push(NodeLine {
                id: bus::name_to_string(&node.name),
                ip: node.ip.clone(),
                port: node.port,
                cport: node.cport,
                hostname: (!node.hostname.is_empty()).then(|| node.hostname.clone()),
                flags: node.flags & !flags::MEET & !flags::MIGRATE_TO,
                master: node.replica_of.map(|m| bus::name_to_string(&m)),
                ping_sent: node.ping_sent,
                pong_received: node.pong_received,
                config_epoch: node.config_epoch,
                connected: node.name == self.myself || node.link_since.is_some(),
                // The bitmap is kept with the owner table (`set_owner`).
                slots: if node.numslots > 0 { node.slots.ranges() } else { Vec::new() },
                open_slots: if node.name == self.myself { self.open_slots() } else { Vec::new() },
            });
        }
        NodesConf { nodes, current_epoch: self.current_epoch, last_vote_epoch: self.last_vote_epoch }
    }

    /// In slot order, migrating before importing for one slot, as Redis writes them.
    fn open_slots(&self) -> Vec<OpenSlot> {
        let mut open: Vec<(u16, OpenSlot)> = Vec::new();
        for (&slot, to) in &self.migrating {
            open.push((slot, OpenSlot::Migrating(slot, bus::name_to_string(to))));
        }
        for (&slot, from) in &self.importing {
            if !self.migrating.contains_key(&slot) {
                open.push((slot, OpenSlot::Importing(slot, bus::name_to_string(from))));
            }
        }
        open.sort_by_key(|(slot, _)| *slot);
        open.into_iter().map(|(_, o)| o).collect()
    }

    /// CLUSTER SETSLOT <slot> MIGRATING/IMPORTING/STABLE, the state part (the command's
    /// checks and key counts are the server's).
    pub fn set_slot_open(&mut self, slot: u16, open: Option<OpenSlot>) -> Vec<Output> {
        self.migrating.remove(&slot);
        self.importing.remove(&slot);
        match open {
            Some(OpenSlot::Migrating(_, to)) => {
                self.migrating.insert(slot, bus::name_from_str(&to));
            }
            Some(OpenSlot::Importing(_, from)) => {
                self.importing.insert(slot, bus::name_from_str(&from));
            }
            None => {}
        }
        self.save_pending = true;
        self.finish()
    }

    pub fn importing(&self, slot: u16) -> Option<NodeName> {
        self.importing.get(&slot).copied()
    }

    pub fn migrating(&self, slot: u16) -> Option<NodeName> {
        self.migrating.get(&slot).copied()
    }

    // ---- queries ----

    pub fn myself(&self) -> &Node {
        self.node(&self.myself).expect("myself is always in the table")
    }
    pub fn myself_name(&self) -> NodeName {
        self.myself
    }
    pub fn node(&self, name: &NodeName) -> Option<&Node> {
        self.nodes.iter().find(|n| &n.name == name)
    }
    fn node_mut(&mut self, name: &NodeName) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| &n.name == name)
    }
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    pub fn slot_owner(&self, slot: u16) -> Option<NodeName> {
        self.slots.get(usize::from(slot)).copied().flatten()
    }
    pub fn slot_count(&self, name: &NodeName) -> usize {
        self.node(name).map_or(0, |n| n.numslots)
    }
    pub fn current_epoch(&self) -> u64 {
        self.current_epoch
    }
    pub fn last_vote_epoch(&self) -> u64 {
        self.last_vote_epoch
    }
    pub fn state(&self) -> ClusterState {
        self.state
    }
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    /// CONFIG SET of a cluster directive: the policies (timeouts, coverage, failover and
    /// migration rules) apply from the next input; addresses and the seed are only read
    /// when the node starts.
    pub fn settings_mut(&mut self) -> &mut Settings {
        &mut self.settings
    }
    fn myself_is_master(&self) -> bool {
        self.myself().is_master()
    }
    fn bitmap_of(&self, name: &NodeName) -> SlotBitmap {
        self.node(name).map(|n| n.slots.clone()).unwrap_or_default()
    }

    /// The one way a slot changes hands: the table and both nodes' bitmaps move together.
    fn set_owner(&mut self, slot: u16, owner: Option<NodeName>) {
        let s = usize::from(slot) % SLOTS;
        let old = self.slots[s];
        if old == owner {
            return;
        }
        if let Some(n) = old.and_then(|o| self.nodes.iter_mut().find(|n| n.name == o)) {
            n.slots.set(slot, false);
            n.numslots -= 1;
        }
        let new_node = owner.and_then(|o| self.nodes.iter_mut().find(|n| n.name == o));
        self.slots[s] = match new_node {
            Some(n) => {
                n.slots.set(slot, true);
                n.numslots += 1;
                owner
            }
            None => None,
        };
    }

    /// The slot table and the nodes' bitmaps and counts agree (tests).
    #[cfg(test)]
    pub(crate) fn assert_slot_index(&self) {
        for node in &self.nodes {
            let from_table: Vec<u16> =
                (0..SLOTS as u16).filter(|&s| self.slots[usize::from(s)] == Some(node.name)).collect();
            assert_eq!(node.slots.slots().collect::<Vec<_>>(), from_table);
            assert_eq!(node.numslots, from_table.len());
        }
        assert!(self.slots.iter().flatten().all(|o| self.node(o).is_some()), "a slot owned by an unknown node");
    }

    fn clear_slots_of(&mut self, name: &NodeName) {
        let slots: Vec<u16> = self.bitmap_of(name).slots().collect();
        for slot in slots {
            self.set_owner(slot, None);
        }
    }
    /// Masters serving at least one slot: the electorate (Redis's cluster->size).
    fn voting_masters(&self) -> Vec<NodeName> {
        self.nodes.iter().filter(|n| n.is_master() && self.slot_count(&n.name) > 0).map(|n| n.name).collect()
    }
    fn quorum(&self) -> usize {
        self.voting_masters().len() / 2 + 1
    }

    // ---- administrative inputs ----

    /// CLUSTER MEET: start a handshake with the node at that address.
    pub fn meet(&mut self, now: u64, ip: &str, port: u16, cport: u16) -> Vec<Output> {
        self.start_handshake(now, ip, port, cport, true);
        self.finish()
    }

    /// CLUSTER ADDSLOTS on this node (slots already owned by others are left alone).
    pub fn add_slots(&mut self, slots: impl IntoIterator<Item = u16>) -> Vec<Output> {
        for slot in slots {
            let s = usize::from(slot) % SLOTS;
            if self.slots[s].is_none() {
                self.set_owner(s as u16, Some(self.myself));
            }
        }
        self.save_pending = true;
        self.update_state();
        self.finish()
    }

    /// CLUSTER REPLICATE: become a replica of a known master (this node must own no slots).
    pub fn replicate(&mut self, master: NodeName) -> Result<Vec<Output>, &'static str> {
        let Some(m) = self.node(&master) else { return Err("ERR Unknown node") };
        if !m.is_master() {
            return Err("ERR I can only replicate a master, not a replica.");
        }
        if master == self.myself {
            return Err("ERR Can't replicate myself");
        }
        if self.myself_is_master() && self.slot_count(&self.myself) > 0 {
            return Err("ERR To set a master the node must be empty and without assigned slots.");
        }
        self.set_my_master(master);
        Ok(self.finish())
    }

    /// The replication offset this node has processed (a replica's rank depends on it).
    pub fn set_repl_offset(&mut self, offset: u64) {
        self.repl_offset = offset;
    }

    /// PUBLISH in cluster mode: the message goes to every node.
    pub fn publish(&mut self, channel: &[u8], message: &[u8]) -> Vec<Output> {
        let body = Body::Publish { channel: channel.to_vec(), message: message.to_vec() };
        self.broadcast(body, |_| true);
        self.finish()
    }

    /// The replication link to the master went down at `since` (None: it is up). A replica
    /// whose data is too old (cluster-replica-validity-factor) does not fail over.
    pub fn set_master_link_down_since(&mut self, since: Option<u64>) {
        self.master_link_down_since = since;
    }

    /// CLUSTER FORGET: drop a node and keep gossip from adding it back for 60 s. Refused
    /// for ourselves and for our own master, as Redis refuses them.
    pub fn forget(&mut self, now: u64, name: &NodeName) -> Result<Vec<Output>, &'static str> {
        if self.node(name).is_none() {
            return Err("ERR Unknown node");
        }
        if *name == self.myself {
            return Err("ERR I tried hard but I can't forget myself...");
        }
        if self.myself().is_replica() && self.myself().replica_of == Some(*name) {
            return Err("ERR Can't forget my master!");
        }
        self.forgotten.insert(*name, now + FORGET_TTL);
        self.delete_node(name);
        self.update_state();
        Ok(self.finish())
    }

    pub(crate) fn is_forgotten(&mut self, now: u64, name: &NodeName) -> bool {
        self.forgotten.retain(|_, until| *until > now);
        self.forgotten.contains_key(name)
    }

    /// The driver lost the outbound link to a node; it will be reopened with a PING.
    pub fn link_closed(&mut self, name: &NodeName) {
        if let Some(node) = self.node_mut(name) {
            node.link_since = None;
        }
    }

    // ---- shared helpers ----

    fn finish(&mut self) -> Vec<Output> {
        if self.save_pending {
            // First: what this input changed is saved before anything it caused is sent
            // (a vote is on disk before its ACK leaves, as Redis saves before it writes).
            self.save_pending = false;
            let durable = self.durable();
            let fsync = self.synced.as_ref() != Some(&durable);
            if fsync {
                self.synced = Some(durable);
            }
            self.out.insert(0, Output::SaveConfig { fsync });
        }
        std::mem::take(&mut self.out)
    }

    /// What a save must fsync when it changed (see [`Durable`]).
    fn durable(&self) -> Durable {
        Durable {
            current_epoch: self.current_epoch,
            last_vote_epoch: self.last_vote_epoch,
            myself: self.myself,
            nodes: self
                .nodes
                .iter()
                .filter(|n| !n.in_handshake())
                .map(|n| (n.name, n.config_epoch, n.is_replica(), n.replica_of))
                .collect(),
        }
    }

    fn start_handshake(&mut self, now: u64, ip: &str, port: u16, cport: u16, meet: bool) {
        let pending = self.nodes.iter().any(|n| n.in_handshake() && n.ip == ip && n.port == port && n.cport == cport);
        if pending {
            return;
        }
        let name = random_name(&mut self.rng);
        let mut node = Node::new(name, flags::HANDSHAKE | if meet { flags::MEET } else { 0 }, now);
        node.ip = ip.to_string();
        node.port = port;
        node.cport = cport;
        self.nodes.push(node);
    }

    pub(crate) fn header(&self) -> Header {
        let me = self.myself();
        let (myslots, config_epoch) = match me.replica_of.and_then(|m| self.node(&m)) {
            Some(master) if me.is_replica() => (self.bitmap_of(&master.name), master.config_epoch),
            _ => (self.bitmap_of(&self.myself), me.config_epoch),
        };
        Header {
            port: me.port,
            current_epoch: self.current_epoch,
            config_epoch,
            offset: self.repl_offset,
            sender: self.myself,
            myslots,
            replica_of: if me.is_replica() { me.replica_of } else { None },
            myip: me.ip.clone(),
            pport: me.pport,
            cport: me.cport,
            flags: me.flags,
            state: match self.state {
                ClusterState::Ok => 0,
                ClusterState::Fail => 1,
            },
            mflags: [self.mflags0(), 0, 0],
        }
    }

    fn message(&self, body: Body) -> Message {
        Message { header: self.header(), body }
    }

    fn gossip_entry(node: &Node) -> Gossip {
        Gossip {
            name: node.name,
            ping_sent: (node.ping_sent / 1000) as u32,
            pong_received: (node.pong_received / 1000) as u32,
            ip: node.ip.clone(),
            port: node.port,
            cport: node.cport,
            flags: node.flags,
            pport: node.pport,
        }
    }

    /// A PING, PONG or MEET: a tenth of the known nodes (at least 3) picked at random,
    /// then every node we think is timing out, so failure reports spread fast.
    fn ping_body(&mut self, kind: u16) -> Body {
        let known = self.nodes.len();
        let fresh = known.saturating_sub(2);
        let wanted = (known / 10).max(3).min(fresh);
        let mut gossip: Vec<Gossip> = Vec::new();
        let mut tries = 0;
        while gossip.len() < wanted && tries < wanted * 3 {
            tries += 1;
            let node = &self.nodes[self.rng.usize(0..known)];
            let useless = node.name == self.myself
                || node.timed_out()
                || node.flags & (flags::HANDSHAKE | flags::NOADDR) != 0
                || (node.link_since.is_none() && self.slot_count(&node.name) == 0);
            if useless || gossip.iter().any(|g| g.name == node.name) {
                continue;
            }
            gossip.push(Self::gossip_entry(node));
        }
        for node in self.nodes.iter().filter(|n| n.timed_out()) {
            gossip.push(Self::gossip_entry(node));
        }
        let extensions = if self.settings.hostname.is_empty() {
            Vec::new()
        } else {
            vec![bus::Extension::Hostname(self.settings.hostname.clone())]
        };
        match kind {
            bus::kind::MEET => Body::Meet { gossip, extensions },
            bus::kind::PONG => Body::Pong { gossip, extensions },
            _ => Body::Ping { gossip, extensions },
        }
    }

    fn send_ping(&mut self, now: u64, to: NodeName, kind: u16) {
        let body = self.ping_body(kind);
        let msg = self.message(body);
        if let Some(node) = self.node_mut(&to) {
            if kind != bus::kind::PONG && node.ping_sent == 0 {
                node.ping_sent = now;
            }
        }
        self.out.push(Output::Send { to, msg });
    }

    /// To every node we have handshaken with (not myself) that `filter` accepts.
    fn broadcast(&mut self, body: Body, filter: impl Fn(&Node) -> bool) {
        let msg = self.message(body);
        let targets: Vec<NodeName> = self
            .nodes
            .iter()
            .filter(|n| n.name != self.myself && !n.in_handshake() && n.flags & flags::NOADDR == 0 && filter(n))
            .map(|n| n.name)
            .collect();
        for to in targets {
            self.out.push(Output::Send { to, msg: msg.clone() });
        }
    }

    fn broadcast_pong(&mut self, only_my_masters_replicas: bool) {
        let my_master = self.myself().replica_of;
        let targets: Vec<NodeName> = self
            .nodes
            .iter()
            .filter(|n| n.name != self.myself && !n.in_handshake() && n.flags & flags::NOADDR == 0)
            .filter(|n| !only_my_masters_replicas || (n.is_replica() && n.replica_of == my_master))
            .map(|n| n.name)
            .collect();
        for to in targets {
            let body = self.ping_body(bus::kind::PONG);
            let msg = self.message(body);
            self.out.push(Output::Send { to, msg });
        }
    }

    fn set_my_master(&mut self, master: NodeName) {
        let me = self.myself;
        if let Some(node) = self.node_mut(&me) {
            node.flags = (node.flags & !(flags::MASTER | flags::MIGRATE_TO)) | flags::REPLICA;
            node.replica_of = Some(master);
        }
        self.mark_migration_target(&master);
        self.election = Election::default();
        self.reset_manual_failover();
        self.save_pending = true;
        self.out.push(Output::BecomeReplicaOf(master));
        self.update_state();
    }

    fn delete_node(&mut self, name: &NodeName) {
        self.clear_slots_of(name);
        self.nodes.retain(|n| &n.name != name);
        for node in &mut self.nodes {
            node.fail_reports.retain(|(by, _)| by != name);
        }
        self.save_pending = true;
    }

    /// Redis's clusterUpdateState, without the rejoin delay: FAIL when a slot is unserved
    /// (with require-full-coverage) or when this node sees no majority of the masters.
    fn update_state(&mut self) {
        let mut ok = true;
        if self.settings.require_full_coverage {
            // Every slot's owner is in the table (set_owner keeps it so): the counts say
            // whether all slots are served, and by whom.
            let served: usize = self.nodes.iter().map(|n| n.numslots).sum();
            ok = served == SLOTS && self.nodes.iter().all(|n| n.numslots == 0 || !n.failing());
        }
        let masters = self.voting_masters();
        let reachable =
            masters.iter().filter_map(|m| self.node(m)).filter(|n| n.flags & (flags::FAIL | flags::PFAIL) == 0).count();
        if reachable < masters.len() / 2 + 1 {
            ok = false;
        }
        self.state = if ok { ClusterState::Ok } else { ClusterState::Fail };
    }

    /// clusterCron: every 100 ms.
    pub fn tick(&mut self, now: u64) -> Vec<Output> {
        self.ticks += 1;
        let timeout = self.settings.node_timeout;
        let handshake_timeout = timeout.max(1000);
        let stale: Vec<NodeName> = self
            .nodes
            .iter()
            .filter(|n| n.in_handshake() && now.saturating_sub(n.created) > handshake_timeout)
            .map(|n| n.name)
            .collect();
        for name in stale {
            self.delete_node(&name);
        }
        // Open links that are not open, with a PING (a MEET for nodes being met).
        let unlinked: Vec<(NodeName, bool)> = self
            .nodes
            .iter()
            .filter(|n| n.name != self.myself && n.link_since.is_none() && n.flags & flags::NOADDR == 0)
            .map(|n| (n.name, n.flags & flags::MEET != 0))
            .collect();
        for (name, meet) in unlinked {
            let old_ping_sent = self.node(&name).map_or(0, |n| n.ping_sent);
            self.send_ping(now, name, if meet { bus::kind::MEET } else { bus::kind::PING });
            if let Some(node) = self.node_mut(&name) {
                node.link_since = Some(now);
                node.flags &= !flags::MEET;
                if old_ping_sent != 0 {
                    node.ping_sent = old_ping_sent;
                }
            }
        }
        // Once a second, ping the node (of five random ones) heard from least recently.
        if self.ticks.is_multiple_of(10) {
            let mut best: Option<(u64, NodeName)> = None;
            for _ in 0..5 {
                let node = &self.nodes[self.rng.usize(0..self.nodes.len())];
                let skip = node.name == self.myself
                    || node.link_since.is_none()
                    || node.ping_sent != 0
                    || node.flags & (flags::HANDSHAKE | flags::NOADDR) != 0;
                let older = match best {
                    Some((t, _)) => node.pong_received < t,
                    None => true,
                };
                if !skip && older {
                    best = Some((node.pong_received, node.name));
                }
            }
            if let Some((_, name)) = best {
                self.send_ping(now, name, bus::kind::PING);
            }
        }
        let names: Vec<NodeName> = self.nodes.iter().map(|n| n.name).collect();
        let mut changed = false;
        for name in names {
            let Some(node) = self.node(&name) else { continue };
            if name == self.myself || node.flags & (flags::HANDSHAKE | flags::NOADDR) != 0 {
                continue;
            }
            let (ping_sent, link_since) = (node.ping_sent, node.link_since);
            // A link that carries nothing back for half the timeout is reopened.
            if let Some(since) = link_since {
                if now.saturating_sub(since) > timeout
                    && ping_sent != 0
                    && now.saturating_sub(ping_sent) > timeout / 2
                    && now.saturating_sub(node.data_received) > timeout / 2
                {
                    self.link_closed(&name);
                    self.out.push(Output::CloseLink(name));
                }
            }
            let Some(node) = self.node(&name) else { continue };
            if node.link_since.is_some() && node.ping_sent == 0 && now.saturating_sub(node.pong_received) > timeout / 2
            {
                self.send_ping(now, name, bus::kind::PING);
                continue;
            }
            if node.ping_sent != 0
                && now.saturating_sub(node.ping_sent) > timeout
                && !node.timed_out()
                && !node.failing()
            {
                if let Some(node) = self.node_mut(&name) {
                    node.flags |= flags::PFAIL;
                }
                changed = true;
                self.mark_failing_if_needed(now, &name);
            }
        }
        self.manual_failover_tick(now);
        if !self.myself_is_master() {
            self.handle_replica_failover(now);
            self.handle_replica_migration(now);
        }
        if changed {
            self.update_state();
        }
        self.update_state();
        self.finish()
    }
}
