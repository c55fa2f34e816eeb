//! A bus message in: Redis 7.0's clusterProcessPacket.

use super::{Cluster, LinkId, Node, Output};
use crate::bus::{self, Body, Message, NodeName, SlotBitmap};
use crate::nodes_conf::flags;

/// Which link a message came on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A connection the peer opened; `peer_ip` is the address it comes from, `local_ip`
    /// the address it reached (how a node without an announced ip learns its own).
    Inbound { link: LinkId, peer_ip: String, local_ip: String },
    /// Our own link to this node (the name we know it by, maybe a handshake's).
    Outbound { node: NodeName },
}

impl Cluster {
    fn reply(&mut self, origin: &Origin, msg: Message) {
        match origin {
            Origin::Inbound { link, .. } => self.out.push(Output::Reply { link: *link, msg }),
            Origin::Outbound { node } => self.out.push(Output::Send { to: *node, msg }),
        }
    }

    /// One decoded message from the bus.
    pub fn handle(&mut self, now: u64, origin: Origin, msg: Message) -> Vec<Output> {
        self.process(now, &origin, msg);
        self.finish()
    }

    fn process(&mut self, now: u64, origin: &Origin, msg: Message) {
        let h = &msg.header;
        let kind = msg.body.kind();
        // Messages claiming to come from this node (a node met itself, or an id clash) only
        // ever end a handshake; they never change what we know about ourselves.
        let sender = self.node(&h.sender).filter(|n| !n.in_handshake() && n.name != self.myself).map(|n| n.name);
        if let Some(name) = sender {
            let (current_epoch, config_epoch, offset) = (h.current_epoch, h.config_epoch, h.offset);
            if current_epoch > self.current_epoch {
                self.current_epoch = current_epoch;
                self.save_pending = true;
            }
            let is_myself = name == self.myself;
            if let Some(node) = self.node_mut(&name) {
                node.data_received = now;
                node.repl_offset = offset;
                if config_epoch > node.config_epoch && !is_myself {
                    node.config_epoch = config_epoch;
                    self.save_pending = true;
                }
            }
        }
        if let Origin::Outbound { node } = origin {
            if let Some(n) = self.node_mut(node) {
                n.data_received = now;
            }
        }
        if let Some(name) = sender {
            self.note_paused_master(name, &msg.header);
        }
        match &msg.body {
            Body::Ping { .. } | Body::Pong { .. } | Body::Meet { .. } => self.process_ping(now, origin, sender, &msg),
            Body::Fail { about } => {
                if sender.is_some() {
                    self.process_fail(now, about);
                }
            }
            Body::Publish { channel, message } | Body::PublishShard { channel, message } => {
                if sender.is_some() {
                    let shard = kind == bus::kind::PUBLISHSHARD;
                    self.out.push(Output::Publish { channel: channel.clone(), message: message.clone(), shard });
                }
            }
            Body::FailoverAuthRequest => {
                if let Some(name) = sender {
                    self.vote_if_needed(now, name, &msg.header);
                }
            }
            Body::FailoverAuthAck => {
                if let Some(name) = sender {
                    self.count_vote(now, name, msg.header.current_epoch);
                }
            }
            Body::Update { config_epoch, node, slots } => {
                if sender.is_some() {
                    self.process_update(*config_epoch, node, slots);
                }
            }
            Body::MfStart => {
                if let Some(name) = sender {
                    self.process_mfstart(now, name);
                }
            }
            // Module messages and unknown types are ignored, as Redis ignores them.
            Body::Module { .. } | Body::Unknown { .. } => {}
        }
    }

    fn process_ping(&mut self, now: u64, origin: &Origin, sender: Option<NodeName>, msg: &Message) {
        let h = &msg.header;
        let kind = msg.body.kind();
        let Some((gossip, extensions)) = msg.body.ping_data() else { return };
        if kind == bus::kind::PING || kind == bus::kind::MEET {
            if let Origin::Inbound { local_ip, .. } = origin {
                let me = self.myself;
                let learn = self.settings.ip.is_empty() && !local_ip.is_empty();
                if let Some(n) = self.node_mut(&me).filter(|n| learn && (kind == bus::kind::MEET || n.ip.is_empty())) {
                    if n.ip != *local_ip {
                        n.ip = local_ip.clone();
                        self.save_pending = true;
                    }
                }
            }
            if self.node(&h.sender).is_none() && kind == bus::kind::MEET {
                // Someone met us: add it (in handshake, under a name of our own until it
                // answers our PING) at the address it announces or comes from.
                let ip = match (h.myip.is_empty(), origin) {
                    (false, _) => h.myip.clone(),
                    (true, Origin::Inbound { peer_ip, .. }) => peer_ip.clone(),
                    (true, Origin::Outbound { .. }) => String::new(),
                };
                self.start_handshake(now, &ip, h.port, h.cport, false);
                self.save_pending = true;
            }
            let body = self.ping_body(bus::kind::PONG);
            let pong = self.message(body);
            self.reply(origin, pong);
        }
        if let Origin::Outbound { node: link_node } = origin {
            let Some(known) = self.node(link_node) else { return };
            if known.in_handshake() {
                if self.node(&h.sender).is_some() {
                    // We already know this node under its real name (or it is us): drop
                    // the handshake.
                    self.delete_node(link_node);
                    self.out.push(Output::CloseLink(*link_node));
                    return;
                }
                let link_node = *link_node;
                if let Some(n) = self.node_mut(&link_node) {
                    n.name = h.sender;
                    n.flags = (n.flags & !flags::HANDSHAKE) | (h.flags & (flags::MASTER | flags::REPLICA));
                    n.pong_received = now;
                    n.ping_sent = 0;
                }
                self.out.push(Output::CloseLink(link_node));
                if let Some(n) = self.node_mut(&h.sender) {
                    n.link_since = None;
                }
                self.save_pending = true;
                return;
            }
            if *link_node != h.sender {
                // The node at that address has another id now: forget its address.
                if let Some(n) = self.node_mut(link_node) {
                    n.flags |= flags::NOADDR;
                    n.ip.clear();
                    n.port = 0;
                    n.cport = 0;
                    n.link_since = None;
                }
                self.out.push(Output::CloseLink(*link_node));
                self.save_pending = true;
                return;
            }
            if kind == bus::kind::PONG {
                let mut recovered = false;
                if let Some(n) = self.node_mut(link_node) {
                    n.pong_received = now;
                    n.ping_sent = 0;
                    if n.timed_out() {
                        n.flags &= !flags::PFAIL;
                        recovered = true;
                    }
                }
                if recovered {
                    self.update_state();
                } else {
                    self.clear_failure_if_needed(now, link_node);
                }
            }
        }
        let Some(sender) = sender else { return };
        self.update_role(sender, h.replica_of);
        self.update_slots_from(sender, h.config_epoch, &h.myslots);
        if self.node(&sender).is_some_and(Node::is_master)
            && self.myself_is_master()
            && h.config_epoch == self.myself().config_epoch
        {
            self.handle_epoch_collision(sender);
        }
        self.process_gossip(now, sender, gossip);
        // No hostname extension: the sender announces none (any it had is gone).
        let host = extensions
            .iter()
            .find_map(|e| match e {
                bus::Extension::Hostname(h) => Some(h.clone()),
                _ => None,
            })
            .unwrap_or_default();
        if let Some(n) = self.node_mut(&sender).filter(|n| n.hostname != host) {
            n.hostname = host;
            self.save_pending = true;
        }
    }

    /// The sender says it is a master (no replica_of) or a replica of some node.
    fn update_role(&mut self, sender: NodeName, replica_of: Option<NodeName>) {
        let Some(node) = self.node(&sender) else { return };
        let Some(master) = replica_of else {
            if node.is_replica() {
                if let Some(n) = self.node_mut(&sender) {
                    // A replica that took over its master's slots inherits its claim to
                    // replicas (Redis's clusterSetNodeAsMaster).
                    let migrate_to = if n.replica_of.is_some() { flags::MIGRATE_TO } else { 0 };
                    n.flags = (n.flags & !flags::REPLICA) | flags::MASTER | migrate_to;
                    n.replica_of = None;
                }
                self.save_pending = true;
            }
            return;
        };
        if node.is_master() {
            // A master turned replica gives up its slots.
            self.clear_slots_of(&sender);
            if let Some(n) = self.node_mut(&sender) {
                n.flags = (n.flags & !(flags::MASTER | flags::MIGRATE_TO)) | flags::REPLICA;
            }
            self.save_pending = true;
            self.update_state();
        }
        let known_master = self.node(&master).is_some();
        if let Some(n) = self.node_mut(&sender).filter(|n| known_master && n.replica_of != Some(master)) {
            n.replica_of = Some(master);
            self.save_pending = true;
            self.mark_migration_target(&master);
        }
    }

    /// The slots in the sender's header: claimed by a master (or its replica for it).
    fn update_slots_from(&mut self, sender: NodeName, claimed_epoch: u64, claimed: &SlotBitmap) {
        let Some(node) = self.node(&sender) else { return };
        let sender_master = if node.is_master() { Some(sender) } else { node.replica_of };
        let dirty = match sender_master {
            Some(m) => self.bitmap_of(&m) != *claimed,
            None => false,
        };
        if !dirty {
            return;
        }
        if node.is_master() {
            self.update_slots_config_with(sender, claimed_epoch, claimed);
        }
        // The reverse: the sender claims a slot we know is served under a newer epoch.
        for slot in claimed.slots() {
            let Some(owner) = self.slot_owner(slot) else { continue };
            if owner == sender {
                continue;
            }
            let Some(owner_node) = self.node(&owner) else { continue };
            if owner_node.config_epoch > claimed_epoch {
                let update =
                    Body::Update { config_epoch: owner_node.config_epoch, node: owner, slots: self.bitmap_of(&owner) };
                let msg = self.message(update);
                self.out.push(Output::Send { to: sender, msg });
                break;
            }
        }
    }

    /// clusterUpdateSlotsConfigWith: `sender` serves `slots` as of `epoch`; every slot whose
    /// owner we know only under an older epoch moves to it. If our master (or we) lose all
    /// slots that way, we follow the slots: we become a replica of `sender` (with
    /// cluster-allow-replica-migration no, only if it took nothing but our master's slots).
    pub(super) fn update_slots_config_with(&mut self, sender: NodeName, epoch: u64, slots: &SlotBitmap) {
        if sender == self.myself {
            return;
        }
        let me = self.myself();
        let current_master = if me.is_master() { Some(self.myself) } else { me.replica_of };
        let mut lost_ours = 0;
        let mut lost_mine: Vec<u16> = Vec::new();
        let claimed = slots.slots().count();
        for slot in slots.slots() {
            let owner = self.slot_owner(slot);
            // A slot we are importing is being moved here by hand: gossip does not touch it.
            if owner == Some(sender) || self.importing.contains_key(&slot) {
                continue;
            }
            let older = match owner.and_then(|o| self.node(&o)) {
                None => true,
                Some(o) => o.config_epoch < epoch,
            };
            if older {
                if owner.is_some() && owner == current_master {
                    lost_ours += 1;
                }
                if owner == Some(self.myself) {
                    lost_mine.push(slot);
                }
                self.set_owner(slot, Some(sender));
                self.save_pending = true;
            }
        }
        let mut followed = false;
        // Without replica migration, only a sender that took exactly our master's slots
        // (it failed our master over) is followed; a master emptied by resharding stays
        // an empty master, and its replicas stay with it.
        let may_follow = self.settings.allow_replica_migration || claimed == lost_ours;
        if lost_ours > 0 && may_follow {
            if let Some(m) = current_master {
                if self.slot_count(&m) == 0 && self.node(&sender).is_some_and(Node::is_master) {
                    self.set_my_master(sender);
                    followed = true;
                }
            }
        }
        if !followed {
            // A replica whose master turned replica (it lost its last slot) replicates the
            // master's master instead: nothing else would ever move it (Redis's sub-replica
            // safeguard).
            let me = self.myself();
            let master = me.replica_of.filter(|_| me.is_replica()).and_then(|m| self.node(&m));
            let grandmaster = master.filter(|m| m.is_replica()).and_then(|m| m.replica_of);
            if let Some(grandmaster) = grandmaster.filter(|g| *g != self.myself) {
                if self.node(&grandmaster).is_some_and(Node::is_master) {
                    self.set_my_master(grandmaster);
                    followed = true;
                }
            }
        }
        if !followed && !lost_mine.is_empty() {
            // Served elsewhere now while we may still hold keys there (Redis's dirty slots):
            // the server deletes them. A node that follows the slots resyncs anyway.
            self.out.push(Output::DropSlotKeys(lost_mine));
        }
        self.update_state();
    }

    fn process_gossip(&mut self, now: u64, sender: NodeName, gossip: &[bus::Gossip]) {
        let sender_is_master = self.node(&sender).is_some_and(Node::is_master);
        for g in gossip {
            let Some(node) = self.node(&g.name) else {
                // A node we do not know, vouched for by a node we know: added under its
                // real id (no handshake: its address may since belong to another cluster's
                // node, and the id check on our first PONG would catch that).
                if g.flags & flags::NOADDR == 0 && g.name != self.myself && !self.is_forgotten(now, &g.name) {
                    let mut node = Node::new(g.name, g.flags & !(flags::MYSELF | flags::HANDSHAKE), now);
                    node.ip = g.ip.clone();
                    node.port = g.port;
                    node.cport = g.cport;
                    node.pport = g.pport;
                    self.nodes.push(node);
                    self.save_pending = true;
                }
                continue;
            };
            let unreachable_here = node.flags & (flags::FAIL | flags::PFAIL) != 0 && node.link_since.is_none();
            let moved = node.ip != g.ip || node.port != g.port || node.cport != g.cport;
            if sender_is_master && g.name != self.myself {
                if g.flags & (flags::FAIL | flags::PFAIL) != 0 {
                    self.add_fail_report(now, &g.name, sender);
                    self.mark_failing_if_needed(now, &g.name);
                } else {
                    self.remove_fail_report(&g.name, &sender);
                }
            }
            // We cannot reach it, someone who can sees it at another address: use that.
            let reachable_there = g.flags & (flags::NOADDR | flags::FAIL | flags::PFAIL) == 0;
            if unreachable_here && reachable_there && moved && g.name != self.myself {
                if let Some(n) = self.node_mut(&g.name) {
                    n.ip = g.ip.clone();
                    n.port = g.port;
                    n.cport = g.cport;
                    n.pport = g.pport;
                    n.flags &= !flags::NOADDR;
                }
                self.out.push(Output::CloseLink(g.name));
                self.save_pending = true;
            }
        }
    }

    fn process_fail(&mut self, now: u64, about: &NodeName) {
        if *about == self.myself {
            return;
        }
        if let Some(n) = self.node_mut(about) {
            if !n.failing() {
                n.flags = (n.flags | flags::FAIL) & !flags::PFAIL;
                n.fail_time = now;
                self.save_pending = true;
                self.update_state();
            }
        }
    }

    fn process_update(&mut self, epoch: u64, name: &NodeName, slots: &SlotBitmap) {
        let Some(node) = self.node(name) else { return };
        if node.config_epoch >= epoch {
            return;
        }
        let name = *name;
        if let Some(n) = self.node_mut(&name) {
            if n.is_replica() {
                let migrate_to = if n.replica_of.is_some() { flags::MIGRATE_TO } else { 0 };
                n.flags = (n.flags & !flags::REPLICA) | flags::MASTER | migrate_to;
                n.replica_of = None;
            }
            n.config_epoch = epoch;
        }
        self.update_slots_config_with(name, epoch, slots);
        self.save_pending = true;
    }

    /// Two masters with one config epoch: the one with the smaller id takes a new epoch,
    /// so every master ends with its own and slot conflicts always have a winner.
    fn handle_epoch_collision(&mut self, sender: NodeName) {
        if sender <= self.myself {
            return;
        }
        self.current_epoch += 1;
        let epoch = self.current_epoch;
        let me = self.myself;
        if let Some(n) = self.node_mut(&me) {
            n.config_epoch = epoch;
        }
        self.save_pending = true;
    }
}
