//! Manual failover (CLUSTER FAILOVER [FORCE|TAKEOVER]), Redis 7.0's mf_* state.
//!
//! Default: the replica sends MFSTART to its master; the master pauses writes and pings
//! the replica continuously with the PAUSED flag and its replication offset; once the
//! replica has processed that offset it runs an election at once, its vote requests
//! flagged FORCEACK so masters vote although the master is not failing. FORCE skips the
//! offset agreement; TAKEOVER skips the election (a new epoch without consensus). Either
//! side gives up after five seconds; the master then resumes writes.

use super::{Cluster, Output};
use crate::bus::{mflags0, Body, Header, NodeName};

/// CLUSTER_MF_TIMEOUT.
pub(super) const MF_TIMEOUT: u64 = 5000;

#[derive(Clone, Debug, Default)]
pub(super) struct ManualFailover {
    /// When it gives up (0: none in progress).
    pub end: u64,
    /// Replica side: the election may start.
    pub can_start: bool,
    /// Replica side: the offset the paused master announced.
    pub master_offset: Option<u64>,
    /// Master side: the replica taking over (writes are paused for it).
    pub replica: Option<NodeName>,
}

impl Cluster {
    /// CLUSTER FAILOVER on this node.
    pub fn manual_failover(&mut self, now: u64, force: bool, takeover: bool) -> Result<Vec<Output>, &'static str> {
        let me = self.myself();
        if me.is_master() {
            return Err("ERR You should send CLUSTER FAILOVER to a replica");
        }
        let Some(master) = me.replica_of.and_then(|m| self.node(&m)) else {
            return Err("ERR I'm a replica but my master is unknown to me");
        };
        if !force && (master.failing() || master.link_since.is_none()) {
            return Err("ERR Master is down or failed, please use CLUSTER FAILOVER FORCE");
        }
        let master = master.name;
        self.reset_manual_failover();
        self.mf.end = now + MF_TIMEOUT;
        if takeover {
            self.bump_epoch_without_consensus();
            self.replace_my_master(master);
        } else if force {
            self.mf.can_start = true;
        } else {
            let msg = self.message(Body::MfStart);
            self.out.push(Output::Send { to: master, msg });
        }
        Ok(self.finish())
    }

    /// resetManualFailover: a master that paused writes for a replica resumes them.
    pub(super) fn reset_manual_failover(&mut self) {
        if self.mf.replica.is_some() {
            self.out.push(Output::ResumeWrites);
        }
        self.mf = ManualFailover::default();
    }

    /// An MFSTART from one of our replicas: pause writes and tell it our offset.
    pub(super) fn process_mfstart(&mut self, now: u64, sender: NodeName) {
        let mine = self.node(&sender).is_some_and(|n| n.is_replica() && n.replica_of == Some(self.myself));
        if !mine || !self.myself_is_master() {
            return;
        }
        self.reset_manual_failover();
        self.mf.end = now + MF_TIMEOUT;
        self.mf.replica = Some(sender);
        self.out.push(Output::PauseWrites { ms: MF_TIMEOUT * 2 });
        self.send_ping(now, sender, crate::bus::kind::PING);
    }

    /// A message from our master while a manual failover waits: the offset it froze at.
    pub(super) fn note_paused_master(&mut self, sender: NodeName, header: &Header) {
        let from_master = self.myself().replica_of == Some(sender) && self.myself().is_replica();
        if from_master && self.mf.end != 0 && self.mf.master_offset.is_none() && header.mflags[0] & mflags0::PAUSED != 0
        {
            self.mf.master_offset = Some(header.offset);
        }
    }

    /// The PAUSED flag a master's headers carry while a replica takes over from it.
    pub(super) fn mflags0(&self) -> u8 {
        if self.mf.end != 0 && self.myself_is_master() {
            mflags0::PAUSED
        } else {
            0
        }
    }

    /// Manual failover while an election runs: no delay, votes forced.
    pub(super) fn manual_failover_ready(&self) -> bool {
        self.mf.end != 0 && self.mf.can_start
    }

    /// clusterCron's part: time out, keep pinging the replica (master), or allow the
    /// election once the master's offset is reached (replica).
    pub(super) fn manual_failover_tick(&mut self, now: u64) {
        if self.mf.end == 0 {
            return;
        }
        if now > self.mf.end {
            self.reset_manual_failover();
            return;
        }
        if let Some(replica) = self.mf.replica.filter(|_| self.myself_is_master()) {
            self.send_ping(now, replica, crate::bus::kind::PING);
            return;
        }
        if !self.mf.can_start && self.mf.master_offset.is_some_and(|o| o <= self.repl_offset) {
            self.mf.can_start = true;
        }
    }

    /// A vote request that asks masters to vote though our master is not failing.
    pub(super) fn broadcast_forced_auth_request(&mut self) {
        let mut msg = self.message(Body::FailoverAuthRequest);
        msg.header.mflags[0] |= mflags0::FORCEACK;
        let me = self.myself;
        let targets: Vec<NodeName> = self
            .nodes
            .iter()
            .filter(|n| n.name != me && !n.in_handshake() && n.flags & crate::nodes_conf::flags::NOADDR == 0)
            .map(|n| n.name)
            .collect();
        for to in targets {
            self.out.push(Output::Send { to, msg: msg.clone() });
        }
    }

    /// clusterFailoverReplaceYourMaster: this replica takes its master's slots under its
    /// config epoch and tells everyone.
    pub(super) fn replace_my_master(&mut self, master: NodeName) {
        let me = self.myself;
        if let Some(n) = self.node_mut(&me) {
            n.flags = (n.flags & !crate::nodes_conf::flags::REPLICA) | crate::nodes_conf::flags::MASTER;
            n.replica_of = None;
        }
        let taken: Vec<u16> = self.bitmap_of(&master).slots().collect();
        for slot in taken {
            self.set_owner(slot, Some(me));
        }
        self.election = super::Election::default();
        self.reset_manual_failover();
        self.out.push(Output::BecomeMaster);
        self.save_pending = true;
        self.update_state();
        self.broadcast_pong(false);
    }
}
