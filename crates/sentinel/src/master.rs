//! A monitored master: its own instance record plus what hangs off it (replicas found in its
//! INFO, sentinels found through hello messages), its per-master settings, and the state of
//! a failover of it.

use crate::addr::Addr;
use crate::instance::{flag, Instance, Kind};
use std::collections::BTreeMap;

pub const DEFAULT_DOWN_AFTER: i64 = 30_000;
pub const DEFAULT_FAILOVER_TIMEOUT: i64 = 180_000;
pub const DEFAULT_PARALLEL_SYNCS: i64 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailoverState {
    None,
    WaitStart,
    /// Sync-replication mode only: the replicas are being frozen (REPLFREEZE) and the old
    /// master's lease is running out before one of them may be chosen.
    FreezeReplicas,
    SelectSlave,
    SendSlaveofNoOne,
    WaitPromotion,
    ReconfSlaves,
    UpdateConfig,
}

impl FailoverState {
    /// As SENTINEL MASTER's `failover-state` field shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            FailoverState::None => "none",
            FailoverState::WaitStart => "wait_start",
            FailoverState::FreezeReplicas => "freeze_replicas",
            FailoverState::SelectSlave => "select_slave",
            FailoverState::SendSlaveofNoOne => "send_slaveof_noone",
            FailoverState::WaitPromotion => "wait_promotion",
            FailoverState::ReconfSlaves => "reconf_slaves",
            FailoverState::UpdateConfig => "update_config",
        }
    }
}

/// What a ferrokv master in synchronous-replication mode last said about it in INFO
/// (`sync_replicas:` and the fields after it). Absent on Redis masters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// `sync-replicas`: a write is answered OK once this many replicas acknowledged it.
    pub replicas: u32,
    pub lease_ms: i64,
    pub acking: u32,
    pub committed_offset: u64,
    /// Fewer than `replicas` replicas acknowledged within the lease: the master answers
    /// data commands with -READONLY, and commits nothing.
    pub fenced: bool,
}

/// A replication history as a master prints it: offsets under `replid`, and under
/// `replid2` up to (not including) `second_offset` — the history it continued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History {
    pub replid: String,
    pub replid2: Option<String>,
    pub second_offset: i64,
}

impl History {
    /// Whether a replica at `offset` of `replid` holds a prefix of this history: the test
    /// PSYNC applies before a partial resync (same id, or the previous id up to the point
    /// where the history forked). Only such offsets can be compared with each other.
    pub fn continues(&self, replid: &str, offset: u64) -> bool {
        if replid.eq_ignore_ascii_case(&self.replid) {
            return true;
        }
        let next = i64::try_from(offset).unwrap_or(i64::MAX).saturating_add(1);
        self.replid2.as_deref().is_some_and(|r2| replid.eq_ignore_ascii_case(r2)) && next <= self.second_offset
    }
}

#[derive(Clone, Debug)]
pub struct Master {
    pub inst: Instance,
    pub quorum: u32,
    pub parallel_syncs: i64,
    pub failover_timeout: i64,
    pub reboot_down_after: i64,
    pub reboot_since: i64,
    pub auth_pass: Option<String>,
    pub auth_user: Option<String>,
    pub notification_script: Option<String>,
    pub client_reconfig_script: Option<String>,
    /// `rename-command`: lowercase original name → name to send.
    pub renamed: BTreeMap<String, String>,
    pub config_epoch: u64,
    /// Our vote for the failover leader of this master, and its epoch.
    pub leader: Option<String>,
    pub leader_epoch: u64,
    pub failover_epoch: u64,
    pub failover_state: FailoverState,
    pub failover_state_change_time: i64,
    pub failover_start_time: i64,
    pub failover_delay_logged: i64,
    /// Name of the replica chosen for promotion.
    pub promoted: Option<String>,
    /// A user-requested failover that hands over with the master's own FAILOVER command
    /// (writes paused until the chosen replica has everything) instead of SLAVEOF NO ONE.
    pub coordinated: bool,
    /// The sync-replication fields of its last INFO as a master; None for a Redis master
    /// (or one that never answered INFO).
    pub sync: Option<SyncStatus>,
    /// Its replication history as of its last INFO.
    pub history: Option<History>,
    /// Its history as of its last INFO in sync mode while not fenced: the one under which
    /// writes were last committed (a master that restarted empty starts a new one).
    pub committed_history: Option<History>,
    /// The freeze step of a failover in sync mode (see `freeze.rs`).
    pub sync_failover: Option<crate::freeze::SyncFailover>,
    /// By `ip:port` name.
    pub replicas: BTreeMap<String, Instance>,
    /// By run id.
    pub sentinels: BTreeMap<String, Instance>,
}

impl Master {
    pub fn new(name: &str, addr: Addr, quorum: u32, now: i64) -> Master {
        Master {
            inst: Instance::new(Kind::Master, name.to_string(), addr, DEFAULT_DOWN_AFTER, now),
            quorum,
            parallel_syncs: DEFAULT_PARALLEL_SYNCS,
            failover_timeout: DEFAULT_FAILOVER_TIMEOUT,
            reboot_down_after: 0,
            reboot_since: 0,
            auth_pass: None,
            auth_user: None,
            notification_script: None,
            client_reconfig_script: None,
            renamed: BTreeMap::new(),
            config_epoch: 0,
            leader: None,
            leader_epoch: 0,
            failover_epoch: 0,
            failover_state: FailoverState::None,
            failover_state_change_time: 0,
            failover_start_time: 0,
            failover_delay_logged: 0,
            promoted: None,
            coordinated: false,
            sync: None,
            history: None,
            committed_history: None,
            sync_failover: None,
            replicas: BTreeMap::new(),
            sentinels: BTreeMap::new(),
        }
    }

    /// N when the master last reported `sync_replicas:N` with N > 0.
    pub fn sync_replicas(&self) -> Option<u32> {
        self.sync.as_ref().map(|s| s.replicas).filter(|&n| n > 0)
    }

    pub fn name(&self) -> &str {
        &self.inst.name
    }

    pub fn in_failover(&self) -> bool {
        self.inst.has(flag::FAILOVER_IN_PROGRESS)
    }

    pub fn promoted_replica(&self) -> Option<&Instance> {
        self.promoted.as_ref().and_then(|n| self.replicas.get(n))
    }

    /// Where clients should go: the promoted replica once it has accepted the role (the
    /// failover has reached the reconfiguration of the other replicas), else the master.
    pub fn current_addr(&self) -> &Addr {
        if self.in_failover() && self.failover_state >= FailoverState::ReconfSlaves {
            if let Some(p) = self.promoted_replica() {
                return &p.addr;
            }
        }
        &self.inst.addr
    }

    /// The name of the command to send for `cmd`, after `rename-command`.
    pub fn command_name(&self, cmd: &str) -> String {
        self.renamed.get(&cmd.to_ascii_lowercase()).cloned().unwrap_or_else(|| cmd.to_string())
    }

    /// Sentinels that could vote now: this one and every other not seen down (SENTINEL
    /// CKQUORUM's count, also shown on the metrics port).
    pub fn usable_sentinels(&self) -> usize {
        1 + self.sentinels.values().filter(|s| !s.has(flag::S_DOWN | flag::O_DOWN)).count()
    }

    pub fn find_replica_by_addr(&self, addr: &Addr) -> Option<&str> {
        self.replicas.iter().find(|(_, r)| r.addr.same(addr)).map(|(n, _)| n.as_str())
    }

    /// Master looks healthy enough to reconfigure other instances after it.
    pub fn looks_sane(&self, now: i64, info_period: i64) -> bool {
        self.inst.role_reported == crate::instance::Role::Master
            && !self.inst.has(flag::S_DOWN | flag::O_DOWN)
            && now - self.inst.info_refresh < info_period * 2
    }
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn a_history_continues_its_own_id_and_its_previous_one_up_to_the_fork() {
        let h = History { replid: "new".into(), replid2: Some("old".into()), second_offset: 501 };
        assert!(h.continues("new", 9_999));
        assert!(h.continues("NEW", 0));
        // Offset 500 of the old history is byte 500 of this one; 501 happened elsewhere.
        assert!(h.continues("old", 500));
        assert!(!h.continues("old", 501));
        assert!(!h.continues("other", 1));
        let fresh = History { replid: "new".into(), replid2: None, second_offset: -1 };
        assert!(!fresh.continues("old", 0));
        assert!(!fresh.continues("old", u64::MAX));
    }
}
