//! The sentinel's metrics port: `/metrics`, `/health`, the topology page (`/`) and its
//! data (`/api/topology`). The figures come from the state machine the way SENTINEL
//! MASTER/REPLICAS/SENTINELS and CKQUORUM read them, copied under the hub lock and
//! formatted after it; events and failover timings are what the driver saw go out.

use super::hub::Shared;
use crate::instance::{flag, Instance, Role};
use crate::master::Master;
use ferrokv_metrics::sentinel::{EventView, MasterView, PeerView, ReplicaView, SentinelSnapshot};
use ferrokv_metrics::Format;
use ferrokv_server::metrics_http::{Handler, Request, Response};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Events kept for the page.
const EVENTS_KEPT: usize = 200;

#[derive(Default)]
struct FailoverRecord {
    total: u64,
    /// When the master was first seen down (+sdown, or a failover was tried) and no
    /// +switch-master has followed yet.
    started_ms: Option<i64>,
    last_duration_ms: Option<i64>,
}

/// What the driver saw of the state machine's events.
#[derive(Default)]
pub struct Observed {
    events: VecDeque<EventView>,
    failovers: HashMap<String, FailoverRecord>,
}

impl Observed {
    /// Called for every event the state machine emits (in order, under the hub lock).
    pub fn record(&mut self, channel: &str, message: &str, now: i64) {
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(EventView { time_ms: now, kind: channel.to_string(), message: message.to_string() });
        let mut words = message.split(' ');
        match channel {
            // `<name> <old ip> <old port> <new ip> <new port>`
            "+switch-master" => {
                if let Some(name) = words.next() {
                    let rec = self.failovers.entry(name.to_string()).or_default();
                    rec.total += 1;
                    if let Some(start) = rec.started_ms.take() {
                        rec.last_duration_ms = Some(now - start);
                    }
                }
            }
            // `master <name> <ip> <port> …`: the clock starts when this sentinel first sees
            // the master down (a sentinel that is not the leader may learn of the switch
            // before it reaches ODOWN itself), and stops if the master comes back first.
            "+sdown" | "+odown" | "+try-failover" => {
                if let (Some("master"), Some(name)) = (words.next(), words.next()) {
                    let rec = self.failovers.entry(name.to_string()).or_default();
                    rec.started_ms.get_or_insert(now);
                }
            }
            "-sdown" => {
                if let (Some("master"), Some(name)) = (words.next(), words.next()) {
                    if let Some(rec) = self.failovers.get_mut(name) {
                        rec.started_ms = None;
                    }
                }
            }
            _ => {}
        }
    }
}

fn state(i: &Instance) -> &'static str {
    if i.has(flag::O_DOWN) {
        "odown"
    } else if i.has(flag::S_DOWN) {
        "sdown"
    } else {
        "ok"
    }
}

/// `master_repl_offset` from the master's last INFO, as the sentinel saw it.
fn master_offset(m: &Master) -> Option<u64> {
    let info = m.inst.info.as_deref()?;
    info.lines().find_map(|l| l.strip_prefix("master_repl_offset:")).and_then(|v| v.trim().parse().ok())
}

fn master_view(m: &Master, observed: &Observed, hostnames: bool) -> MasterView {
    let offset = master_offset(m);
    let rec = observed.failovers.get(m.name());
    MasterView {
        name: m.name().to_string(),
        ip: m.inst.addr.announced(hostnames).to_string(),
        port: m.inst.addr.port,
        state: state(&m.inst),
        flags: m.inst.flags_text(),
        failover_state: m.failover_state.as_str().to_string(),
        quorum: m.quorum,
        reachable_sentinels: m.usable_sentinels() as u32,
        config_epoch: m.config_epoch,
        failovers_total: rec.map_or(0, |r| r.total),
        last_failover_duration_seconds: rec.and_then(|r| r.last_duration_ms).map(|ms| ms as f64 / 1000.0),
        failover_in_progress: m.in_failover(),
        replicas: m
            .replicas
            .values()
            .map(|r| ReplicaView {
                ip: r.addr.announced(hostnames).to_string(),
                port: r.addr.port,
                flags: r.flags_text(),
                down: r.has(flag::S_DOWN | flag::O_DOWN) || r.link.disconnected,
                link_up: r.replica.master_link_up && r.role_reported == Role::Replica,
                offset: r.replica.repl_offset,
                lag_bytes: offset.map_or(0, |o| o.saturating_sub(r.replica.repl_offset)),
            })
            .collect(),
        sentinels: m
            .sentinels
            .values()
            .map(|p| PeerView {
                ip: p.addr.announced(hostnames).to_string(),
                port: p.addr.port,
                run_id: p.runid.clone().unwrap_or_else(|| p.name.clone()),
                flags: p.flags_text(),
                down: p.has(flag::S_DOWN | flag::O_DOWN),
                thinks_master_down: p.has(flag::MASTER_DOWN),
                leader: p.leader.clone().unwrap_or_default(),
                leader_epoch: p.leader_epoch,
            })
            .collect(),
    }
}

/// The whole view, under the hub lock (copies only).
fn snapshot(shared: &Shared) -> SentinelSnapshot {
    let hub = shared.lock();
    let env = &hub.core.env;
    let hostnames = env.settings.announce_hostnames;
    SentinelSnapshot {
        id: env.myid.clone(),
        port: hub.port,
        current_epoch: env.current_epoch,
        tilt: env.tilt,
        masters: hub.core.masters.values().map(|m| master_view(m, &hub.observed, hostnames)).collect(),
        events: hub.observed.events.iter().cloned().collect(),
    }
}

pub struct SentinelMetrics {
    pub shared: Shared,
}

const PAGE: &str = include_str!("topology.html");

impl Handler for SentinelMetrics {
    fn handle(&self, req: &Request) -> Response {
        match req.path.as_str() {
            "/metrics" => {
                let format = Format::from_accept(req.accept.as_deref());
                let mut snap = snapshot(&self.shared);
                snap.events.clear();
                Response::new(200, format.content_type(), std::sync::Arc::new(snap).render(format))
            }
            "/api/topology" => Response::new(200, "application/json", snapshot(&self.shared).to_json()),
            "/" | "/index.html" => Response::new(200, "text/html; charset=utf-8", PAGE),
            "/health" => match self.shared.try_lock_for(Duration::from_secs(2)) {
                Some(hub) if hub.core.env.tilt => Response::text(200, "ok (tilt)\n"),
                Some(_) => Response::text(200, "ok\n"),
                None => Response::text(503, "busy\n"),
            },
            _ => Response::text(404, "Not Found: try /, /metrics, /api/topology or /health\n"),
        }
    }
}
