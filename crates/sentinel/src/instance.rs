//! What Sentinel knows about one Redis instance (a master, a replica, another sentinel) and
//! about its links. Timestamps are milliseconds on the clock passed in by the driver; 0
//! means "never".

use crate::addr::Addr;

/// Identifies one connection the driver holds for the state machine.
pub type LinkId = u64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Master,
    Replica,
    Sentinel,
}

impl Kind {
    /// The instance type as events name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Master => "master",
            Kind::Replica => "slave",
            Kind::Sentinel => "sentinel",
        }
    }
}

/// The role an instance reports in INFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Unknown,
    Master,
    Replica,
}

/// Runtime state flags, named as SENTINEL MASTER's `flags` field prints them.
pub mod flag {
    pub const S_DOWN: u32 = 1 << 0;
    pub const O_DOWN: u32 = 1 << 1;
    /// Another sentinel told us it sees the master down.
    pub const MASTER_DOWN: u32 = 1 << 2;
    pub const FAILOVER_IN_PROGRESS: u32 = 1 << 3;
    pub const PROMOTED: u32 = 1 << 4;
    pub const RECONF_SENT: u32 = 1 << 5;
    pub const RECONF_INPROG: u32 = 1 << 6;
    pub const RECONF_DONE: u32 = 1 << 7;
    pub const FORCE_FAILOVER: u32 = 1 << 8;
    pub const SCRIPT_KILL_SENT: u32 = 1 << 9;
    pub const MASTER_REBOOT: u32 = 1 << 10;
}

/// The two connections Sentinel keeps to an instance: commands, and the hello channel
/// subscription (masters and replicas only). A link counts as disconnected while either
/// connection it needs is missing.
#[derive(Clone, Debug)]
pub struct Link {
    pub cmd: Option<LinkId>,
    pub pubsub: Option<LinkId>,
    pub disconnected: bool,
    pub pending_commands: u32,
    pub cmd_conn_time: i64,
    pub pubsub_conn_time: i64,
    pub pubsub_last_activity: i64,
    /// Last acceptable PING reply (PONG, LOADING, MASTERDOWN).
    pub last_avail_time: i64,
    /// When the oldest unanswered PING was sent; 0 when none is pending.
    pub act_ping_time: i64,
    pub last_ping_time: i64,
    /// Last reply of any kind to a PING.
    pub last_pong_time: i64,
    pub last_reconn_time: i64,
    /// Our address on the command connection: what hello messages announce by default.
    pub local_ip: Option<String>,
}

impl Link {
    /// A fresh link counts as "pinged now", so an instance that can never be reached still
    /// goes down after down-after-milliseconds.
    pub fn new(now: i64) -> Link {
        Link {
            cmd: None,
            pubsub: None,
            disconnected: true,
            pending_commands: 0,
            cmd_conn_time: 0,
            pubsub_conn_time: 0,
            pubsub_last_activity: 0,
            last_avail_time: now,
            act_ping_time: now,
            last_ping_time: 0,
            last_pong_time: now,
            last_reconn_time: 0,
            local_ip: None,
        }
    }
}

/// Replication details a replica reports in INFO.
#[derive(Clone, Debug)]
pub struct ReplicaInfo {
    pub master_host: Option<String>,
    pub master_port: i64,
    pub master_link_up: bool,
    pub priority: i64,
    pub repl_offset: u64,
    pub announced: bool,
    pub conf_change_time: i64,
    pub reconf_sent_time: i64,
    /// ferrokv: frozen by REPLFREEZE (`sync_frozen:1`).
    pub sync_frozen: bool,
    /// ferrokv: refusing the full sync of a master that came back empty
    /// (`empty_master_refused:1`).
    pub empty_master_refused: bool,
    /// Its replication id (`master_replid`), when INFO prints it.
    pub replid: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Instance {
    pub kind: Kind,
    /// Masters: the configured name. Replicas: `ip:port`. Sentinels: their run id.
    pub name: String,
    pub addr: Addr,
    pub runid: Option<String>,
    pub flags: u32,
    pub link: Link,
    pub down_after: i64,
    pub s_down_since: i64,
    pub o_down_since: i64,
    pub info: Option<String>,
    pub info_refresh: i64,
    pub role_reported: Role,
    pub role_reported_time: i64,
    pub last_pub_time: i64,
    pub last_hello_time: i64,
    pub last_master_down_reply_time: i64,
    pub master_link_down_time: i64,
    pub replica: ReplicaInfo,
    /// Sentinels: whom this sentinel voted for, and in which epoch.
    pub leader: Option<String>,
    pub leader_epoch: u64,
}

impl Instance {
    pub fn new(kind: Kind, name: String, addr: Addr, down_after: i64, now: i64) -> Instance {
        Instance {
            kind,
            name,
            addr,
            runid: None,
            flags: 0,
            link: Link::new(now),
            down_after,
            s_down_since: 0,
            o_down_since: 0,
            info: None,
            info_refresh: 0,
            role_reported: match kind {
                Kind::Master => Role::Master,
                Kind::Replica => Role::Replica,
                Kind::Sentinel => Role::Unknown,
            },
            role_reported_time: now,
            last_pub_time: now,
            last_hello_time: now,
            last_master_down_reply_time: now,
            master_link_down_time: 0,
            replica: ReplicaInfo {
                master_host: None,
                master_port: 0,
                master_link_up: false,
                priority: 100,
                repl_offset: 0,
                announced: true,
                conf_change_time: now,
                reconf_sent_time: 0,
                sync_frozen: false,
                empty_master_refused: false,
                replid: None,
            },
            leader: None,
            leader_epoch: 0,
        }
    }

    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// No SDOWN or ODOWN seen during the last `ms` milliseconds.
    pub fn no_down_for(&self, ms: i64, now: i64) -> bool {
        let recent = self.s_down_since.max(self.o_down_since);
        recent == 0 || now - recent > ms
    }

    /// The `flags` field of SENTINEL MASTER/REPLICAS/SENTINELS, in Redis's order.
    pub fn flags_text(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if self.has(flag::S_DOWN) {
            parts.push("s_down");
        }
        if self.has(flag::O_DOWN) {
            parts.push("o_down");
        }
        parts.push(self.kind.as_str());
        if self.link.disconnected {
            parts.push("disconnected");
        }
        let named = [
            (flag::MASTER_DOWN, "master_down"),
            (flag::FAILOVER_IN_PROGRESS, "failover_in_progress"),
            (flag::PROMOTED, "promoted"),
            (flag::RECONF_SENT, "reconf_sent"),
            (flag::RECONF_INPROG, "reconf_inprog"),
            (flag::RECONF_DONE, "reconf_done"),
            (flag::FORCE_FAILOVER, "force_failover"),
            (flag::SCRIPT_KILL_SENT, "script_kill_sent"),
        ];
        for (f, name) in named {
            if self.has(f) {
                parts.push(name);
            }
        }
        parts.join(",")
    }
}
