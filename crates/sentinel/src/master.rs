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
            FailoverState::SelectSlave => "select_slave",
            FailoverState::SendSlaveofNoOne => "send_slaveof_noone",
            FailoverState::WaitPromotion => "wait_promotion",
            FailoverState::ReconfSlaves => "reconf_slaves",
            FailoverState::UpdateConfig => "update_config",
        }
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
            replicas: BTreeMap::new(),
            sentinels: BTreeMap::new(),
        }
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
