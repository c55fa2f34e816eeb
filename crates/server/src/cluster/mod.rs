//! Cluster mode's I/O: loading or creating nodes.conf, the bus listeners, and the driver
//! task that carries bus messages between sockets and the state machine.
//!
//! The state machine (crates/cluster) lives in the engine (`ferrokv_engine::cluster`),
//! behind the engine's lock. The driver takes the lock for each input — a decoded message
//! from a link, the 100 ms tick (Redis's clusterCron), a wake-up after a CLUSTER command
//! queued outputs — feeds it in, and hands the outputs to the link tasks (`link.rs`)
//! through channels, without waiting on a socket while it holds the lock. The config is
//! saved by the engine itself (before it queues what the same input sends).

mod link;

use crate::{bind_addrs, conn, listener, Shared};
use ferrokv_cluster::bus::{self, NodeName};
use ferrokv_cluster::nodes_conf;
use ferrokv_cluster::state::{Cluster, LinkId, Origin, Output, Settings};
use ferrokv_config::{pid, Config};
use ferrokv_engine::cluster::{BusLink, ClusterMode};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

/// What link tasks report to the driver.
pub(crate) enum Event {
    Accepted { stream: tokio::net::TcpStream },
    Message { from: LinkKey, msg: Box<bus::Message> },
    Closed { from: LinkKey },
}

/// Which link an event is about: inbound by number, outbound by node and generation (a
/// node's link may have been replaced since).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LinkKey {
    Inbound { link: LinkId, peer_ip: String, local_ip: String },
    Outbound { node: NodeName, generation: u64 },
}

/// The state machine's settings from the configuration.
pub fn settings(cfg: &Config) -> Settings {
    let port = cfg.int(pid("port")) as u16;
    let mut s = Settings::new(port, fastrand::u64(..));
    ferrokv_engine::cluster::apply_policy(&mut s, cfg);
    s.ip = cfg.str(pid("cluster-announce-ip")).to_string();
    s.hostname = cfg.str(pid("cluster-announce-hostname")).to_string();
    let announced_port = cfg.int(pid("cluster-announce-port")) as u16;
    if announced_port != 0 {
        s.port = announced_port;
    }
    let announced_bus = cfg.int(pid("cluster-announce-bus-port")) as u16;
    s.cport = if announced_bus != 0 { announced_bus } else { bus_port(cfg) };
    s
}

/// cluster-port, or the client port + 10000.
pub fn bus_port(cfg: &Config) -> u16 {
    match cfg.int(pid("cluster-port")) {
        0 => (cfg.int(pid("port")) as u16).wrapping_add(10000),
        p => p as u16,
    }
}

/// Loads nodes.conf (or starts a new node and writes one) and binds the bus port.
pub fn boot(cfg: &Config) -> Result<(ClusterMode, Vec<std::net::TcpListener>), String> {
    let file = cfg.str(pid("cluster-config-file")).to_string();
    let settings = settings(cfg);
    let now = conn::mono_ms() as u64;
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(format!("Can't open the cluster config file {file}: {e}")),
    };
    let core = match text.filter(|t| !t.trim().is_empty()) {
        Some(text) => {
            let conf = nodes_conf::parse(&file, &text)
                .map_err(|e| format!("Unrecoverable error: corrupted cluster config file {e}"))?;
            let core = Cluster::from_conf(settings, &conf, now)
                .map_err(|e| format!("Unrecoverable error: corrupted cluster config file {file}: {e}"))?;
            log::info!("Node configuration loaded, I'm {}", bus::name_to_string(&core.myself_name()));
            core
        }
        None => {
            let core = Cluster::new(settings, now);
            log::info!("No cluster configuration found, I'm {}", bus::name_to_string(&core.myself_name()));
            core
        }
    };
    let mut mode = ClusterMode::new(core, file.clone());
    mode.mono_ms = now;
    mode.allow_reads_when_down = cfg.bool(pid("cluster-allow-reads-when-down"));
    mode.preferred_endpoint = cfg.int(pid("cluster-preferred-endpoint-type"));
    // The file exists and says who we are before anything else happens (Redis saves at
    // startup too, so a second server on the same file fails rather than shares an id).
    let text = mode.config_text();
    crate::persist::sink::write_atomically(std::path::Path::new(&file), text.as_bytes())
        .map_err(|e| format!("Can't save the cluster config file {file}: {e}"))?;
    mode.saved_text = text;
    mode.saved_durable = true;
    let bound = listener::bind_tcp(&bind_addrs(cfg), bus_port(cfg), cfg.int(pid("tcp-backlog")) as i32)
        .map_err(|e| format!("Could not bind the cluster bus port {}: {e}", bus_port(cfg)))?;
    Ok((mode, bound.into_iter().map(|b| b.listener).collect()))
}

/// The driver: runs until the process ends.
pub async fn run(shared: Arc<Shared>, listeners: Vec<std::net::TcpListener>, wake: Arc<Notify>) {
    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    for l in listeners {
        let Ok(l) = tokio::net::TcpListener::from_std(l) else { continue };
        let tx = events_tx.clone();
        tokio::spawn(async move {
            loop {
                match l.accept().await {
                    Ok((stream, _)) => {
                        if tx.send(Event::Accepted { stream }).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        log::warn!("Error accepting cluster node: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
    }
    let mut driver =
        Driver { inbound: HashMap::new(), outbound: HashMap::new(), next_link: 0, generation: 0, events_tx };
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => driver.tick(&shared),
            Some(event) = events.recv() => driver.event(&shared, event),
            _ = wake.notified() => driver.drain(&shared),
        }
    }
}

struct Driver {
    inbound: HashMap<LinkId, mpsc::UnboundedSender<Vec<u8>>>,
    outbound: HashMap<NodeName, (u64, mpsc::UnboundedSender<Vec<u8>>)>,
    next_link: LinkId,
    generation: u64,
    events_tx: mpsc::UnboundedSender<Event>,
}

impl Driver {
    fn tick(&mut self, shared: &Shared) {
        let mut e = shared.engine.lock();
        e.cluster_tick(conn::mono_ms() as u64, conn::now_ms());
        e.flush_feed();
        self.perform(&mut e);
    }

    fn drain(&mut self, shared: &Shared) {
        let mut e = shared.engine.lock();
        self.perform(&mut e);
    }

    fn event(&mut self, shared: &Shared, event: Event) {
        match event {
            Event::Accepted { stream } => {
                self.next_link += 1;
                let link = self.next_link;
                let peer_ip = stream.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
                let local_ip = stream.local_addr().map(|a| a.ip().to_string()).unwrap_or_default();
                let (tx, rx) = mpsc::unbounded_channel();
                self.inbound.insert(link, tx);
                if let Some(mode) = shared.engine.lock().cluster.as_mut() {
                    mode.links.push(BusLink { inbound: Some(link), node: None, created_ms: conn::now_ms() });
                }
                let key = LinkKey::Inbound { link, peer_ip, local_ip };
                tokio::spawn(link::run(link::Socket::Accepted(stream), rx, key, self.events_tx.clone()));
            }
            Event::Message { from, msg } => {
                let mut e = shared.engine.lock();
                let now = conn::mono_ms() as u64;
                let origin = match from {
                    LinkKey::Inbound { link, peer_ip, local_ip } => {
                        if let Some(mode) = e.cluster.as_mut() {
                            // The peer names itself in every message's header.
                            let sender = msg.header.sender;
                            if let Some(l) = mode.links.iter_mut().find(|l| l.inbound == Some(link)) {
                                l.node = Some(sender);
                            }
                        }
                        Origin::Inbound { link, peer_ip, local_ip }
                    }
                    LinkKey::Outbound { node, generation } => {
                        if self.outbound.get(&node).map(|(g, _)| *g) != Some(generation) {
                            return;
                        }
                        Origin::Outbound { node }
                    }
                };
                e.cluster_handle(now, origin, *msg);
                // Keys deleted for slots taken elsewhere reach the AOF and replicas now.
                e.flush_feed();
                self.perform(&mut e);
            }
            Event::Closed { from } => match from {
                LinkKey::Inbound { link, .. } => {
                    self.inbound.remove(&link);
                    if let Some(mode) = shared.engine.lock().cluster.as_mut() {
                        mode.links.retain(|l| l.inbound != Some(link));
                    }
                }
                LinkKey::Outbound { node, generation } => {
                    if self.outbound.get(&node).map(|(g, _)| *g) == Some(generation) {
                        self.outbound.remove(&node);
                        let mut e = shared.engine.lock();
                        if let Some(mode) = e.cluster.as_mut() {
                            mode.core.link_closed(&node);
                            mode.links.retain(|l| l.inbound.is_some() || l.node != Some(node));
                        }
                    }
                }
            },
        }
    }

    /// Sends what the engine queued. Channel sends never block: the link tasks write.
    fn perform(&mut self, e: &mut ferrokv_engine::Engine) {
        let outputs = e.cluster_take_io();
        let Some(mode) = e.cluster.as_mut() else { return };
        for output in outputs {
            match output {
                Output::Send { to, msg } => {
                    if let Some(n) = mode.sent.get_mut(usize::from(msg.body.kind())) {
                        *n += 1;
                    }
                    let mut bytes = bus::encode(&msg);
                    if let Some((_, tx)) = self.outbound.get(&to) {
                        match tx.send(bytes) {
                            Ok(()) => continue,
                            // The link task ended: open a new link with the same bytes.
                            Err(mpsc::error::SendError(back)) => bytes = back,
                        }
                    }
                    let Some(node) = mode.core.node(&to) else { continue };
                    let addr = format!("{}:{}", bracket(&node.ip), node.cport);
                    let timeout = mode.core.settings().node_timeout;
                    self.generation += 1;
                    let (tx, rx) = mpsc::unbounded_channel();
                    let _ = tx.send(bytes);
                    self.outbound.insert(to, (self.generation, tx));
                    mode.links.retain(|l| l.inbound.is_some() || l.node != Some(to));
                    mode.links.push(BusLink { inbound: None, node: Some(to), created_ms: conn::now_ms() });
                    let key = LinkKey::Outbound { node: to, generation: self.generation };
                    let socket = link::Socket::Connect { addr, timeout: Duration::from_millis(timeout.max(1000)) };
                    tokio::spawn(link::run(socket, rx, key, self.events_tx.clone()));
                }
                Output::Reply { link, msg } => {
                    if let Some(n) = mode.sent.get_mut(usize::from(msg.body.kind())) {
                        *n += 1;
                    }
                    if let Some(tx) = self.inbound.get(&link) {
                        let _ = tx.send(bus::encode(&msg));
                    }
                }
                Output::CloseLink(name) => {
                    // Dropping the sender ends the link task, which closes the socket.
                    self.outbound.remove(&name);
                    mode.links.retain(|l| l.inbound.is_some() || l.node != Some(name));
                }
                // The engine carried out the others already.
                _ => {}
            }
        }
    }
}

/// An IPv6 address in `host:port` form needs brackets.
fn bracket(ip: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    }
}
