//! Failure detection and failover: PFAIL → FAIL by a majority of masters' reports, the
//! votes masters give, and a replica's election (rank delay, vote request, promotion).

use super::{Cluster, Election, Node, Output};
use crate::bus::{Body, Header, NodeName};
use crate::nodes_conf::flags;

/// A failure report counts for this many node timeouts (CLUSTER_FAIL_REPORT_VALIDITY_MULT).
const REPORT_VALIDITY_MULT: u64 = 2;
/// A master with slots back from FAIL is cleared after this many node timeouts, giving its
/// replicas time to fail over first (CLUSTER_FAIL_UNDO_TIME_MULT).
const FAIL_UNDO_MULT: u64 = 2;

impl Cluster {
    pub(super) fn add_fail_report(&mut self, now: u64, about: &NodeName, by: NodeName) {
        if let Some(node) = self.node_mut(about) {
            match node.fail_reports.iter_mut().find(|(who, _)| *who == by) {
                Some(report) => report.1 = now,
                None => node.fail_reports.push((by, now)),
            }
        }
    }

    pub(super) fn remove_fail_report(&mut self, about: &NodeName, by: &NodeName) {
        if let Some(node) = self.node_mut(about) {
            node.fail_reports.retain(|(who, _)| who != by);
        }
    }

    /// Valid reports about a node (old ones are dropped on the way).
    pub(super) fn fail_report_count(&mut self, now: u64, about: &NodeName) -> usize {
        let validity = self.settings.node_timeout * REPORT_VALIDITY_MULT;
        match self.node_mut(about) {
            Some(node) => {
                node.fail_reports.retain(|(_, when)| now.saturating_sub(*when) <= validity);
                node.fail_reports.len()
            }
            None => 0,
        }
    }

    /// markNodeAsFailingIfNeeded: PFAIL becomes FAIL when a majority of the masters that
    /// serve slots (this node included, if it is one) report it; the FAIL is broadcast.
    pub(super) fn mark_failing_if_needed(&mut self, now: u64, name: &NodeName) {
        let quorum = self.quorum();
        let Some(node) = self.node(name) else { return };
        if !node.timed_out() || node.failing() {
            return;
        }
        let mut failures = self.fail_report_count(now, name);
        if self.myself_is_master() {
            failures += 1;
        }
        if failures < quorum {
            return;
        }
        if let Some(node) = self.node_mut(name) {
            node.flags = (node.flags | flags::FAIL) & !flags::PFAIL;
            node.fail_time = now;
        }
        self.broadcast(Body::Fail { about: *name }, |_| true);
        self.save_pending = true;
        self.update_state();
    }

    /// A FAIL node that answers again: replicas and slotless masters are cleared at once,
    /// a master with slots only after a while (its replicas may be failing it over).
    pub(super) fn clear_failure_if_needed(&mut self, now: u64, name: &NodeName) {
        let undo_after = self.settings.node_timeout * FAIL_UNDO_MULT;
        let serving = self.slot_count(name) > 0;
        let Some(node) = self.node_mut(name) else { return };
        if !node.failing() {
            return;
        }
        let clear = node.is_replica() || !serving || now.saturating_sub(node.fail_time) > undo_after;
        if clear {
            node.flags &= !flags::FAIL;
            self.save_pending = true;
            self.update_state();
        }
    }

    /// clusterSendFailoverAuthIfNeeded: a master serving slots votes for a replica of a
    /// failed master, once per epoch, once per 2 node timeouts per master, and never for
    /// slots that it knows are served under a newer config epoch.
    pub(super) fn vote_if_needed(&mut self, now: u64, candidate: NodeName, request: &Header) {
        if !self.myself_is_master() || self.slot_count(&self.myself) == 0 {
            return;
        }
        if request.current_epoch < self.current_epoch || self.last_vote_epoch == self.current_epoch {
            return;
        }
        let Some(node) = self.node(&candidate) else { return };
        let force = request.mflags[0] & crate::bus::mflags0::FORCEACK != 0;
        let Some(master) = node.replica_of.filter(|_| node.is_replica()).and_then(|m| self.node(&m)) else {
            return;
        };
        if !master.failing() && !force {
            return;
        }
        if now.saturating_sub(master.voted_time) < self.settings.node_timeout * 2 && master.voted_time != 0 {
            return;
        }
        for slot in request.myslots.slots() {
            if let Some(owner) = self.slot_owner(slot).and_then(|o| self.node(&o)) {
                if owner.config_epoch > request.config_epoch {
                    return;
                }
            }
        }
        let master = master.name;
        self.last_vote_epoch = self.current_epoch;
        if let Some(m) = self.node_mut(&master) {
            m.voted_time = now;
        }
        self.save_pending = true;
        let ack = self.message(Body::FailoverAuthAck);
        self.out.push(Output::Send { to: candidate, msg: ack });
    }

    pub(super) fn count_vote(&mut self, now: u64, voter: NodeName, voter_epoch: u64) {
        let is_voting_master = self.node(&voter).is_some_and(Node::is_master) && self.slot_count(&voter) > 0;
        if is_voting_master && voter_epoch >= self.election.auth_epoch && self.election.auth_sent {
            self.election.auth_count += 1;
            self.handle_replica_failover(now);
        }
    }

    /// How many replicas of our master have a better replication offset than ours.
    fn my_rank(&self) -> usize {
        let me = self.myself();
        let Some(master) = me.replica_of else { return 0 };
        self.nodes
            .iter()
            .filter(|n| n.name != self.myself && n.is_replica() && n.replica_of == Some(master))
            .filter(|n| n.flags & flags::NOFAILOVER == 0 && n.repl_offset > self.repl_offset)
            .count()
    }

    /// clusterHandleSlaveFailover, without manual failover.
    pub(super) fn handle_replica_failover(&mut self, now: u64) {
        let me = self.myself();
        let Some(master_name) = me.replica_of.filter(|_| me.is_replica()) else { return };
        let Some(master) = self.node(&master_name) else { return };
        let manual = self.manual_failover_ready();
        if (!master.failing() && !manual)
            || self.slot_count(&master_name) == 0
            || (self.settings.replica_no_failover && !manual)
        {
            return;
        }
        // Data too old to be worth promoting: the link has been down longer than the node
        // timeout (which any failure takes anyway) plus validity factor × timeout + the
        // replication ping period.
        if let Some(since) = self.master_link_down_since.filter(|_| !manual) {
            let age = now.saturating_sub(since).saturating_sub(self.settings.node_timeout);
            let limit = self.settings.repl_ping_replica_period
                + self.settings.node_timeout * self.settings.replica_validity_factor;
            if self.settings.replica_validity_factor > 0 && age > limit {
                return;
            }
        }
        let now_i = now as i64;
        let timeout = self.settings.node_timeout as i64;
        let auth_timeout = (timeout * 2).max(2000);
        let auth_retry = auth_timeout * 2;
        if now_i - self.election.auth_time > auth_retry {
            let rank = self.my_rank();
            let delay = 500 + self.rng.i64(0..500) + rank as i64 * 1000;
            self.election = Election { auth_time: now_i + delay, auth_rank: rank, ..Election::default() };
            if manual {
                // A manual failover starts its election at once.
                self.election.auth_time = now_i;
                self.election.auth_rank = 0;
            }
            // Let the other replicas see our offset, so they rank themselves right.
            self.broadcast_pong(true);
            return;
        }
        if !self.election.auth_sent && !manual {
            let rank = self.my_rank();
            if rank > self.election.auth_rank {
                self.election.auth_time += (rank - self.election.auth_rank) as i64 * 1000;
                self.election.auth_rank = rank;
            }
        }
        if now_i < self.election.auth_time || now_i - self.election.auth_time > auth_timeout {
            return;
        }
        if !self.election.auth_sent {
            self.current_epoch += 1;
            self.election.auth_epoch = self.current_epoch;
            self.election.auth_sent = true;
            if manual {
                self.broadcast_forced_auth_request();
            } else {
                self.broadcast(Body::FailoverAuthRequest, |_| true);
            }
            self.save_pending = true;
            return;
        }
        if self.election.auth_count < self.quorum() {
            return;
        }
        // Elected: take over the master's slots under the new epoch.
        let epoch = self.election.auth_epoch;
        let me = self.myself;
        if let Some(n) = self.node_mut(&me) {
            n.flags = (n.flags & !flags::REPLICA) | flags::MASTER;
            n.replica_of = None;
            if n.config_epoch < epoch {
                n.config_epoch = epoch;
            }
        }
        let taken: Vec<u16> = self.bitmap_of(&master_name).slots().collect();
        for slot in taken {
            self.set_owner(slot, Some(me));
        }
        self.election = Election::default();
        self.reset_manual_failover();
        self.out.push(Output::BecomeMaster);
        self.save_pending = true;
        self.update_state();
        self.broadcast_pong(false);
    }
}
