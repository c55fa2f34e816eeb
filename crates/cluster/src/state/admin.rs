//! The administrative inputs CLUSTER commands make that change the configuration: slots
//! removed or assigned by hand, epochs set or bumped, counting failure reports, RESET.
//! Each returns the same [`Output`]s as the other inputs (a save first, then messages).
//! Error texts are Redis 7.0's; checks that need the dataset (keys in a slot, an empty
//! database) are the caller's, which passes what it found.

use super::{random_name, Cluster, Election, Output};
use crate::bus::NodeName;
use crate::nodes_conf::flags;
use crate::slot::SLOTS;

impl Cluster {
    /// CLUSTER DELSLOTS/DELSLOTSRANGE once the caller checked every slot is assigned:
    /// unassigns them, whoever serves them, and drops an import in progress.
    pub fn del_slots(&mut self, slots: &[u16]) -> Vec<Output> {
        for &slot in slots {
            self.importing.remove(&slot);
            self.set_owner(slot, None);
        }
        self.save_pending = true;
        self.update_state();
        self.finish()
    }

    /// CLUSTER FLUSHSLOTS: this node gives up every slot it serves.
    pub fn flush_my_slots(&mut self) -> Vec<Output> {
        let me = self.myself;
        self.clear_slots_of(&me);
        self.save_pending = true;
        self.update_state();
        self.finish()
    }

    /// CLUSTER SETSLOT <slot> NODE <id>. `keys_in_slot` is how many keys this node holds
    /// in the slot. A master left without slots becomes a replica of the new owner when
    /// cluster-allow-replica-migration is yes, as Redis does; closing an import on
    /// ourselves bumps our config epoch so the cluster adopts the change.
    pub fn set_slot_node(&mut self, slot: u16, owner: &NodeName, keys_in_slot: usize) -> Result<Vec<Output>, String> {
        let Some(target) = self.node(owner) else {
            return Err(format!("ERR Unknown node {}", crate::bus::name_to_string(owner)));
        };
        if target.is_replica() {
            return Err("ERR Target node is not a master".into());
        }
        let me = self.myself;
        let was_mine = self.slot_owner(slot) == Some(me);
        if was_mine && *owner != me && keys_in_slot != 0 {
            return Err(format!(
                "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
            ));
        }
        if keys_in_slot == 0 {
            self.migrating.remove(&slot);
        }
        self.set_owner(slot, Some(*owner));
        if was_mine && *owner != me && self.slot_count(&me) == 0 && self.settings.allow_replica_migration {
            self.set_my_master(*owner);
        }
        if *owner == me && self.importing.remove(&slot).is_some() {
            self.bump_epoch_without_consensus();
            self.broadcast_pong(false);
        }
        self.save_pending = true;
        self.update_state();
        Ok(self.finish())
    }

    /// The highest config epoch known, ours included (clusterGetMaxEpoch).
    fn max_epoch(&self) -> u64 {
        self.nodes.iter().map(|n| n.config_epoch).max().unwrap_or(0).max(self.current_epoch)
    }

    /// clusterBumpConfigEpochWithoutConsensus: a new epoch for this node unless it already
    /// has the highest. True when bumped.
    pub(super) fn bump_epoch_without_consensus(&mut self) -> bool {
        let max = self.max_epoch();
        let mine = self.myself().config_epoch;
        if mine != 0 && mine == max {
            return false;
        }
        self.current_epoch += 1;
        let epoch = self.current_epoch;
        let me = self.myself;
        if let Some(node) = self.node_mut(&me) {
            node.config_epoch = epoch;
        }
        self.save_pending = true;
        true
    }

    /// CLUSTER BUMPEPOCH: (bumped, our config epoch afterwards).
    pub fn bump_epoch(&mut self) -> (bool, u64, Vec<Output>) {
        let bumped = self.bump_epoch_without_consensus();
        let epoch = self.myself().config_epoch;
        (bumped, epoch, self.finish())
    }

    /// CLUSTER SET-CONFIG-EPOCH: only on a node that knows no other and has no epoch yet.
    pub fn set_config_epoch(&mut self, epoch: u64) -> Result<Vec<Output>, String> {
        if self.nodes.len() > 1 {
            return Err(
                "ERR The user can assign a config epoch only when the node does not know any other node.".into()
            );
        }
        if self.myself().config_epoch != 0 {
            return Err("ERR Node config epoch is already non-zero".into());
        }
        let me = self.myself;
        if let Some(node) = self.node_mut(&me) {
            node.config_epoch = epoch;
        }
        if self.current_epoch < epoch {
            self.current_epoch = epoch;
        }
        self.save_pending = true;
        self.update_state();
        Ok(self.finish())
    }

    /// CLUSTER COUNT-FAILURE-REPORTS: the valid reports about a node (None: unknown node).
    pub fn failure_reports(&mut self, now: u64, name: &NodeName) -> Option<usize> {
        self.node(name)?;
        Some(self.fail_report_count(now, name))
    }

    /// CLUSTER RESET [HARD]: a master again (the caller stops replicating and empties the
    /// dataset when we were a replica), no slots, no open slots, no other node; a hard
    /// reset also zeroes the epochs and takes a new node id.
    pub fn reset(&mut self, hard: bool) -> Vec<Output> {
        let me = self.myself;
        let was_replica = self.myself().is_replica();
        if let Some(node) = self.node_mut(&me) {
            node.flags = (node.flags & !flags::REPLICA) | flags::MASTER;
            node.replica_of = None;
        }
        self.election = Election::default();
        self.migrating.clear();
        self.importing.clear();
        for slot in 0..SLOTS as u16 {
            self.set_owner(slot, None);
        }
        self.nodes.retain(|n| n.name == me);
        if let Some(node) = self.node_mut(&me) {
            node.fail_reports.clear();
        }
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            let name = random_name(&mut self.rng);
            if let Some(node) = self.node_mut(&me) {
                node.config_epoch = 0;
                node.name = name;
            }
            self.myself = name;
        }
        if was_replica {
            self.out.push(Output::BecomeMaster);
        }
        self.save_pending = true;
        self.update_state();
        self.finish()
    }

    /// SPUBLISH in cluster mode: the message goes to the other nodes of this node's shard
    /// (its master and that master's replicas).
    pub fn publish_shard(&mut self, channel: &[u8], message: &[u8]) -> Vec<Output> {
        let me = self.myself();
        let master = if me.is_replica() { me.replica_of } else { Some(self.myself) };
        let body = crate::bus::Body::PublishShard { channel: channel.to_vec(), message: message.to_vec() };
        if let Some(master) = master {
            self.broadcast(body, |n| n.name == master || n.replica_of == Some(master));
        }
        self.finish()
    }

    /// The nodes replicating `master` (CLUSTER REPLICAS), in table order.
    pub fn replicas_of(&self, master: &NodeName) -> Vec<NodeName> {
        self.nodes.iter().filter(|n| n.is_replica() && n.replica_of.as_ref() == Some(master)).map(|n| n.name).collect()
    }

    /// How many masters serve at least one slot (CLUSTER INFO's cluster_size).
    pub fn size(&self) -> usize {
        self.voting_masters().len()
    }
}
