//! [`Sentinel`]: the whole monitoring and failover logic as a deterministic state machine.
//! It opens no sockets and reads no clock. The driver feeds it time and what arrived, and
//! carries out what it asks for:
//!
//! - inputs: [`Sentinel::tick`] (about ten times a second), [`Sentinel::on_connected`],
//!   [`Sentinel::on_frame`] (a reply or a pub/sub message on a link),
//!   [`Sentinel::on_closed`], and client commands ([`Sentinel::command`]);
//! - outputs: [`Sentinel::poll_output`] — connections to open, commands to send, events to
//!   publish — and the state to persist, handed to a [`Persist`] after every step that
//!   changed it.
//!
//! Time must not go backwards between calls except to model a clock jump, which is exactly
//! what TILT mode guards against.

use crate::addr::{Addr, Resolver};
use crate::env::{Env, Expect, Level, Output, Target};
use crate::instance::LinkId;
use crate::links::inst_mut;
use crate::master::{FailoverState, Master};
use crate::{discovery, failover, freeze, monitor};
use ferrokv_resp::Frame;
use std::collections::BTreeMap;

/// Where the sentinel state goes: the driver rewrites the config file with these
/// `sentinel …` lines; tests keep them in memory.
pub trait Persist: Send {
    fn save(&mut self, lines: &[String]) -> Result<(), String>;
}

/// Keeps the last saved lines (tests, and sentinels started without a file).
#[derive(Default, Clone)]
pub struct MemoryPersist(pub std::sync::Arc<parking_lot::Mutex<Vec<String>>>);

impl Persist for MemoryPersist {
    fn save(&mut self, lines: &[String]) -> Result<(), String> {
        *self.0.lock() = lines.to_vec();
        Ok(())
    }
}

pub struct Sentinel {
    pub masters: BTreeMap<String, Master>,
    pub env: Env,
    persist: Box<dyn Persist>,
}

impl Sentinel {
    pub fn new(now: i64, seed: u64, persist: Box<dyn Persist>) -> Sentinel {
        Sentinel { masters: BTreeMap::new(), env: Env::new(String::new(), now, seed), persist }
    }

    pub fn set_resolver(&mut self, r: Box<dyn Resolver + Send>) {
        self.env.resolver = r;
    }

    /// Call once the configuration is loaded: picks a run id if the config had none (and
    /// saves it, so it survives restarts) and announces the monitored masters.
    pub fn start(&mut self, now: i64) {
        self.env.previous_time = now;
        if self.env.myid.is_empty() {
            self.env.myid = (0..40).map(|_| char::from(b"0123456789abcdef"[self.env.rng.usize(0..16)])).collect();
            self.env.flush_pending = true;
        }
        let id = self.env.myid.clone();
        self.env.log(Level::Warning, format!("Sentinel ID is {id}"));
        for m in self.masters.values() {
            let desc = self.env.describe(&m.inst, None);
            self.env.event(Level::Warning, "+monitor", format!("{desc} quorum {}", m.quorum));
        }
        self.finish();
    }

    pub fn myid(&self) -> &str {
        &self.env.myid
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.env.outputs.pop_front()
    }

    /// Adds a master to monitor (config `sentinel monitor`, SENTINEL MONITOR).
    pub fn add_master(&mut self, name: &str, host: &str, port: i64, quorum: i64, now: i64) -> Result<(), String> {
        if quorum <= 0 {
            return Err("Quorum must be 1 or greater.".into());
        }
        let addr = Addr::new(host, port, self.env.settings.resolve_hostnames, false, self.env.resolver.as_ref())
            .map_err(|e| e.message().to_string())?;
        if self.masters.contains_key(name) {
            return Err("Duplicate master name.".into());
        }
        let mut m = Master::new(name, addr, quorum as u32, now);
        m.inst.down_after = self.env.timing.default_down_after;
        m.failover_timeout = self.env.timing.default_failover_timeout;
        self.masters.insert(name.to_string(), m);
        Ok(())
    }

    /// Removes a master and drops its connections.
    pub fn remove_master(&mut self, name: &str) -> bool {
        let Some(mut m) = self.masters.remove(name) else {
            return false;
        };
        self.env.close_instance_links(&mut m.inst);
        for r in m.replicas.values_mut().chain(m.sentinels.values_mut()) {
            self.env.close_instance_links(r);
        }
        true
    }

    /// One run of Sentinel's timer: TILT check, then for every master: links, periodic
    /// commands, down checks, failover; then for its replicas and sentinels.
    pub fn tick(&mut self, now: i64) {
        self.check_tilt(now);
        let names: Vec<String> = self.masters.keys().cloned().collect();
        let mut switch_to_promoted = None;
        for name in names {
            let Some(m) = self.masters.get_mut(&name) else {
                continue;
            };
            handle_instance(&mut self.env, m, &Target::Master, now);
            let replicas: Vec<Target> = m.replicas.keys().map(|k| Target::Replica(k.clone())).collect();
            let sentinels: Vec<Target> = m.sentinels.keys().map(|k| Target::Sentinel(k.clone())).collect();
            for t in replicas.iter().chain(sentinels.iter()) {
                handle_instance(&mut self.env, m, t, now);
            }
            if m.failover_state == FailoverState::UpdateConfig {
                switch_to_promoted = Some(name);
            }
        }
        if let Some(name) = switch_to_promoted {
            if let Some(m) = self.masters.get_mut(&name) {
                failover::switch_to_promoted(&mut self.env, m, now);
            }
        }
        self.finish();
    }

    /// A timer that fires late or a clock that jumps means our timeouts are meaningless
    /// for a while: enter TILT, keep observing, act again only after the TILT period.
    fn check_tilt(&mut self, now: i64) {
        let delta = now - self.env.previous_time;
        if delta < 0 || delta > self.env.timing.tilt_trigger {
            self.env.tilt = true;
            self.env.tilt_start = now;
            self.env.event(Level::Warning, "+tilt", "#tilt mode entered".into());
        }
        self.env.previous_time = now;
    }

    pub fn on_connected(&mut self, link: LinkId, local_ip: Option<String>, _now: i64) {
        let Some(owner) = self.env.links.get(&link) else {
            return;
        };
        let (master, target, pubsub) = (owner.master.clone(), owner.target.clone(), owner.pubsub);
        if let Some(i) = self.masters.get_mut(&master).and_then(|m| inst_mut(m, &target)) {
            if !pubsub {
                i.link.local_ip = local_ip;
            }
        }
    }

    pub fn on_closed(&mut self, link: LinkId, _now: i64) {
        let Some(owner) = self.env.links.remove(&link) else {
            return;
        };
        if let Some(i) = self.masters.get_mut(&owner.master).and_then(|m| inst_mut(m, &owner.target)) {
            if i.link.cmd == Some(link) {
                i.link.cmd = None;
                i.link.pending_commands = 0;
                i.link.disconnected = true;
            }
            if i.link.pubsub == Some(link) {
                i.link.pubsub = None;
                i.link.disconnected = true;
            }
        }
        self.finish();
    }

    pub fn on_frame(&mut self, link: LinkId, frame: Frame, now: i64) {
        let Some(owner) = self.env.links.get_mut(&link) else {
            return;
        };
        let (master, target, pubsub) = (owner.master.clone(), owner.target.clone(), owner.pubsub);
        if pubsub {
            if let Some(i) = self.masters.get_mut(&master).and_then(|m| inst_mut(m, &target)) {
                i.link.pubsub_last_activity = now;
            }
            if let Some(text) = hello_payload(&frame) {
                if !text.contains(&self.env.myid) {
                    discovery::process_hello(&mut self.env, &mut self.masters, &text, now);
                }
            }
            self.finish();
            return;
        }
        let expect = owner.expect.pop_front().unwrap_or(Expect::Discard);
        let Some(m) = self.masters.get_mut(&master) else {
            return;
        };
        if let Some(i) = inst_mut(m, &target) {
            i.link.pending_commands = i.link.pending_commands.saturating_sub(1);
        }
        match expect {
            Expect::Discard => {}
            Expect::Ping => monitor::on_ping_reply(&mut self.env, m, &target, &frame, now),
            Expect::Publish => monitor::on_publish_reply(m, &target, &frame, now),
            Expect::IsMasterDown => monitor::on_is_master_down_reply(&mut self.env, m, &target, &frame, now),
            Expect::Freeze { epoch } => freeze::on_reply(&mut self.env, m, &target, &frame, epoch, now),
            Expect::Info => {
                if let Frame::Bulk(b) | Frame::Verbatim { text: b, .. } = &frame {
                    let text = String::from_utf8_lossy(b).into_owned();
                    discovery::refresh_info(&mut self.env, m, &target, &text, now);
                }
            }
        }
        self.finish();
    }

    /// Saves the state now; the error is what SENTINEL commands report.
    pub fn flush_config(&mut self) -> Result<(), String> {
        self.env.flush_pending = false;
        let lines = crate::persist::state_lines(self);
        match self.persist.save(&lines) {
            Ok(()) => {
                self.env.log(Level::Notice, "Sentinel new configuration saved on disk".into());
                Ok(())
            }
            Err(e) => {
                self.env.log(
                    Level::Warning,
                    format!("WARNING: Sentinel was not able to save the new configuration on disk!!!: {e}"),
                );
                Err(e)
            }
        }
    }

    /// Ends every entry point: state that changed during the step reaches the disk before
    /// anything else happens.
    pub(crate) fn finish(&mut self) {
        if self.env.flush_pending {
            let _ = self.flush_config();
        }
    }
}

fn handle_instance(env: &mut Env, m: &mut Master, t: &Target, now: i64) {
    crate::links::reconnect(env, m, t, now);
    monitor::send_periodic(env, m, t, now);
    if env.tilt {
        if now - env.tilt_start < env.timing.tilt_period {
            return;
        }
        env.tilt = false;
        env.event(Level::Warning, "-tilt", "#tilt mode exited".into());
    }
    monitor::check_sdown(env, m, t, now);
    if *t == Target::Master {
        monitor::check_odown(env, m, now);
        if failover::start_if_needed(env, m, now) {
            monitor::ask_other_sentinels(env, m, true, now);
        }
        failover::step(env, m, now);
        monitor::ask_other_sentinels(env, m, false, now);
    }
}

/// The payload of a `message` on the hello channel.
fn hello_payload(frame: &Frame) -> Option<String> {
    let (Frame::Array(items) | Frame::Push(items)) = frame else {
        return None;
    };
    if items.len() != 3 || items[0].as_bytes() != Some(b"message") {
        return None;
    }
    items[2].as_bytes().map(|b| String::from_utf8_lossy(b).into_owned())
}
