//! Replica migration, as Redis 7.0's clusterCron and clusterHandleSlaveMigration: a master
//! that serves slots and had replicas but has no working one left (orphaned) gets one from
//! the master with the most working replicas, provided that master keeps more than
//! `cluster-migration-barrier` of them. Among the replicas of the masters with that most,
//! only the one with the smallest node id moves, so the replicas of one cluster agree
//! without talking; and only once the target has been orphaned for a while, so that after
//! a failover the new master's own replicas have time to say they follow it.

use super::{Cluster, ClusterState};
use crate::bus::NodeName;
use crate::nodes_conf::flags;
use std::collections::HashMap;

/// How long a master must stay orphaned before a replica migrates to it, in ms
/// (CLUSTER_SLAVE_MIGRATION_DELAY).
pub(crate) const MIGRATION_DELAY: u64 = 5000;

impl Cluster {
    /// The node is (or was) some replica's master, or took over from a master that had
    /// replicas: one a replica may migrate to when it has none left (Redis's MIGRATE_TO).
    /// Masters that were never given replicas are left alone.
    pub(super) fn mark_migration_target(&mut self, master: &NodeName) {
        if let Some(node) = self.node_mut(master).filter(|n| n.is_master()) {
            node.flags |= flags::MIGRATE_TO;
        }
    }

    /// The replicas of `master` not flagged FAIL (clusterCountNonFailingSlaves: a replica
    /// that is only timing out still counts).
    pub fn working_replicas(&self, master: &NodeName) -> usize {
        self.nodes.iter().filter(|n| n.is_replica() && n.replica_of.as_ref() == Some(master) && !n.failing()).count()
    }

    /// [`Cluster::working_replicas`] of every node that has any, in one pass over the
    /// table (this runs on every tick of every replica).
    fn working_replica_counts(&self) -> HashMap<NodeName, usize> {
        let mut counts = HashMap::new();
        for replica in self.nodes.iter().filter(|n| n.is_replica() && !n.failing()) {
            if let Some(master) = replica.replica_of {
                *counts.entry(master).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Every tick of a replica. Redis's clusterCron survey first: some healthy master is
    /// orphaned, the best-served healthy master has two working replicas or more, and ours
    /// is one of the best served. Then clusterHandleSlaveMigration. The time each master has
    /// been orphaned restarts whenever a migration is not possible at all (Redis keeps the
    /// old time then, so a master orphaned again later could take a replica at once).
    pub(super) fn handle_replica_migration(&mut self, now: u64) {
        let me = self.myself();
        let Some(my_master) = me.replica_of.filter(|_| me.is_replica()) else { return };
        let working = self.working_replica_counts();
        let count = |name: &NodeName| working.get(name).copied().unwrap_or(0);
        let (mut orphans, mut most, mut mine) = (0, 0, 0);
        for node in &self.nodes {
            let skipped = node.name == self.myself
                || node.flags & (flags::NOADDR | flags::HANDSHAKE) != 0
                || !node.is_master()
                || node.failing();
            if skipped {
                continue;
            }
            let replicas = count(&node.name);
            if replicas == 0 && node.numslots > 0 && node.flags & flags::MIGRATE_TO != 0 {
                orphans += 1;
            }
            most = most.max(replicas);
            if node.name == my_master {
                mine = replicas;
            }
        }
        let possible = orphans > 0 && most >= 2 && mine == most && self.settings.allow_replica_migration;
        if !possible || !self.migrate_if_candidate(now, my_master, most, &working) {
            for node in &mut self.nodes {
                node.orphaned_since = None;
            }
        }
    }

    /// clusterHandleSlaveMigration. False when it stopped before looking at the masters
    /// (cluster down, or our master would keep too few replicas).
    fn migrate_if_candidate(
        &mut self,
        now: u64,
        my_master: NodeName,
        most: usize,
        working: &HashMap<NodeName, usize>,
    ) -> bool {
        if self.state != ClusterState::Ok {
            return false;
        }
        // Our master must keep more than the barrier: PFAIL replicas do not count here.
        let staying = self
            .nodes
            .iter()
            .filter(|n| n.is_replica() && n.replica_of == Some(my_master))
            .filter(|n| n.flags & (flags::FAIL | flags::PFAIL) == 0)
            .count();
        if staying <= self.settings.migration_barrier {
            return false;
        }
        let count = |name: &NodeName| working.get(name).copied().unwrap_or(0);
        let mut target: Option<NodeName> = None;
        for node in &mut self.nodes {
            let orphaned =
                node.is_master() && !node.failing() && node.flags & flags::MIGRATE_TO != 0 && count(&node.name) == 0;
            if orphaned {
                if target.is_none() && node.numslots > 0 {
                    target = Some(node.name);
                }
                node.orphaned_since.get_or_insert(now);
            } else {
                node.orphaned_since = None;
            }
        }
        // The replica with the smallest id among those of the best-served masters
        // (failing replicas included, as Redis counts them) is the one that moves.
        let best_served = |master: &NodeName| self.node(master).is_some_and(|m| m.is_master()) && count(master) == most;
        let candidate = self
            .nodes
            .iter()
            .filter(|n| n.is_replica() && n.replica_of.as_ref().is_some_and(best_served))
            .map(|n| n.name)
            .fold(self.myself, |smallest, name| smallest.min(name));
        let Some(target) = target else { return true };
        let waited = self.node(&target).and_then(|n| n.orphaned_since).map_or(0, |since| now.saturating_sub(since));
        if candidate == self.myself && waited > MIGRATION_DELAY {
            self.set_my_master(target);
        }
        true
    }
}
