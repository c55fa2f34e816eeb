//! What every part of the state machine shares besides the masters: identity and epoch,
//! settings, timing, TILT, the table of links handed to the driver, and the queue of
//! outputs (connections to open, commands to send, events to publish).

use crate::addr::{NoResolver, Resolver};
use crate::instance::{Instance, LinkId};
use crate::settings::{Settings, Timing};
use std::collections::{HashMap, VecDeque};

/// Log levels of Sentinel's events, as Redis's verbosity levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Verbose,
    Notice,
    Warning,
}

/// What the state machine asks its driver to do, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Open a connection to `ip:port`; report it with `on_connected` or `on_closed`.
    /// Commands sent before it is established are queued by the driver.
    Connect { link: LinkId, ip: String, port: u16 },
    /// Send one command; its reply comes back through `on_frame`, in order.
    Send { link: LinkId, args: Vec<Vec<u8>> },
    /// Drop a connection. No further input is expected for it.
    Close { link: LinkId },
    /// Log the event and, unless it is a debug event, publish it on the sentinel's own
    /// pub/sub under `channel`.
    Event { level: Level, channel: String, message: String },
    /// A plain log line.
    Log { level: Level, message: String },
    /// SENTINEL SIMULATE-FAILURE asked for a crash at this point: exit now (code 99).
    Crash,
}

/// Which instance a link belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Master,
    Replica(String),
    Sentinel(String),
}

/// What the reply to a command sent on a link means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Discard,
    Ping,
    Info,
    Publish,
    IsMasterDown,
    /// A REPLFREEZE reply in the sync-mode failover of this epoch.
    Freeze {
        epoch: u64,
    },
}

#[derive(Debug)]
pub struct LinkOwner {
    pub master: String,
    pub target: Target,
    pub pubsub: bool,
    pub expect: VecDeque<Expect>,
}

pub struct Env {
    pub myid: String,
    pub current_epoch: u64,
    pub settings: Settings,
    pub timing: Timing,
    pub tilt: bool,
    pub tilt_start: i64,
    pub previous_time: i64,
    /// SENTINEL SIMULATE-FAILURE flags.
    pub simfailure: u32,
    pub resolver: Box<dyn Resolver + Send>,
    pub rng: fastrand::Rng,
    /// Set when the on-disk state is stale; the entry point that set it saves it.
    pub flush_pending: bool,
    next_link: LinkId,
    pub links: HashMap<LinkId, LinkOwner>,
    pub outputs: VecDeque<Output>,
}

pub const SIMFAILURE_CRASH_AFTER_ELECTION: u32 = 1;
pub const SIMFAILURE_CRASH_AFTER_PROMOTION: u32 = 2;

impl Env {
    pub fn new(myid: String, now: i64, seed: u64) -> Env {
        Env {
            myid,
            current_epoch: 0,
            settings: Settings::default(),
            timing: Timing::default(),
            tilt: false,
            tilt_start: 0,
            previous_time: now,
            simfailure: 0,
            resolver: Box::new(NoResolver),
            rng: fastrand::Rng::with_seed(seed),
            flush_pending: false,
            next_link: 1,
            links: HashMap::new(),
            outputs: VecDeque::new(),
        }
    }

    pub fn log(&mut self, level: Level, message: String) {
        self.outputs.push_back(Output::Log { level, message });
    }

    pub fn event(&mut self, level: Level, channel: &str, message: String) {
        self.outputs.push_back(Output::Event { level, channel: channel.to_string(), message });
    }

    /// `<type> <name> <ip> <port>`, plus `@ <master-name> <master-ip> <master-port>` for
    /// replicas and sentinels: the detail format of every instance event.
    pub fn describe(&self, inst: &Instance, master: Option<&Instance>) -> String {
        let h = self.settings.announce_hostnames;
        let mut s = format!("{} {} {} {}", inst.kind.as_str(), inst.name, inst.addr.announced(h), inst.addr.port);
        if let Some(m) = master {
            s.push_str(&format!(" @ {} {} {}", m.name, m.addr.announced(h), m.addr.port));
        }
        s
    }

    pub fn open_link(&mut self, master: &str, target: Target, pubsub: bool, ip: &str, port: u16) -> LinkId {
        let link = self.next_link;
        self.next_link += 1;
        self.links.insert(link, LinkOwner { master: master.to_string(), target, pubsub, expect: VecDeque::new() });
        self.outputs.push_back(Output::Connect { link, ip: ip.to_string(), port });
        link
    }

    pub fn close_link(&mut self, link: LinkId) {
        if self.links.remove(&link).is_some() {
            self.outputs.push_back(Output::Close { link });
        }
    }

    /// Closes both connections of an instance.
    pub fn close_instance_links(&mut self, inst: &mut Instance) {
        if let Some(l) = inst.link.cmd.take() {
            self.close_link(l);
        }
        if let Some(l) = inst.link.pubsub.take() {
            self.close_link(l);
        }
        inst.link.pending_commands = 0;
        inst.link.disconnected = true;
    }

    pub fn send(&mut self, link: LinkId, args: Vec<Vec<u8>>, expect: Expect) {
        if let Some(owner) = self.links.get_mut(&link) {
            owner.expect.push_back(expect);
            self.outputs.push_back(Output::Send { link, args });
        }
    }

    /// A random delay in [0, 1000) ms that keeps sentinels from acting in lockstep.
    pub fn desync(&mut self) -> i64 {
        self.rng.i64(0..1000)
    }
}
