//! The state every task shares: the [`Sentinel`] state machine, the outgoing links it
//! asked for, and the clients of our own server with their subscriptions. Whoever feeds
//! the state machine calls [`Hub::dispatch`] right after, under the same lock, so outputs
//! are carried out in order.

use crate::env::{Level, Output};
use crate::instance::LinkId;
use crate::sentinel::Sentinel;
use ferrokv_resp::ReplyBuf;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

pub type ClientId = u64;

/// What the server knows about one connected client (CLIENT LIST, KILL, pub/sub).
pub struct ClientEntry {
    pub addr: String,
    pub laddr: String,
    pub fd: i64,
    pub name: String,
    pub created_ms: i64,
    pub last_cmd: String,
    pub last_interaction_ms: i64,
    pub resp3: bool,
    pub channels: HashSet<Vec<u8>>,
    pub patterns: HashSet<Vec<u8>>,
    /// Pub/sub messages, already encoded for this client's protocol.
    pub push: mpsc::UnboundedSender<Vec<u8>>,
    pub kill: Arc<Notify>,
    pub killed: bool,
    /// The ACL user it is logged in as.
    pub user: String,
}

impl ClientEntry {
    pub fn subscriptions(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

pub struct Hub {
    pub core: Sentinel,
    pub links: HashMap<LinkId, mpsc::UnboundedSender<Vec<u8>>>,
    pub clients: HashMap<ClientId, ClientEntry>,
    pub next_client: ClientId,
    pub stats: Stats,
    pub shutdown: Arc<Notify>,
    /// Users and the ACL LOG (shared with the config file's saver, which writes the users).
    pub acl: Arc<Mutex<crate::acl::Acl>>,
    pub config_file: std::path::PathBuf,
    /// `aclfile` (empty: none), for ACL LOAD and ACL SAVE.
    pub acl_file: String,
    /// This process's run id (INFO); the sentinel id is a different, persistent one.
    pub run_id: String,
    pub port: u16,
    /// `tls-replication yes`: links to instances and sentinels run over TLS.
    pub tls_client: Option<Arc<ferrokv_tls::rustls::ClientConfig>>,
    /// Events and failover timings for the metrics port.
    pub observed: super::observe::Observed,
}

#[derive(Default)]
pub struct Stats {
    pub connections: u64,
    pub commands: u64,
    pub started_ms: i64,
}

pub type Shared = Arc<Mutex<Hub>>;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

fn log_at(level: Level, msg: &str) {
    match level {
        Level::Warning => log::warn!("{msg}"),
        Level::Notice => log::info!("{msg}"),
        Level::Verbose => log::debug!("{msg}"),
        Level::Debug => log::trace!("{msg}"),
    }
}

impl Hub {
    /// Carries out everything the state machine asked for. Must be called with the lock
    /// held by whoever just gave it input, from inside the runtime (links are spawned).
    pub fn dispatch(&mut self, shared: &Shared) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Connect { link, ip, port } => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    self.links.insert(link, tx);
                    tokio::spawn(super::link::run(shared.clone(), link, ip, port, rx));
                }
                Output::Send { link, args } => {
                    if let Some(tx) = self.links.get(&link) {
                        let mut buf = Vec::new();
                        ferrokv_resp::encode_command(&mut buf, args.iter().map(Vec::as_slice));
                        let _ = tx.send(buf);
                    }
                }
                Output::Close { link } => {
                    // Dropping the sender ends the link task.
                    self.links.remove(&link);
                }
                Output::Event { level, channel, message } => {
                    log_at(level, &format!("{channel} {message}"));
                    if level != Level::Debug {
                        self.observed.record(&channel, &message, now_ms());
                        self.publish(channel.as_bytes(), message.as_bytes());
                    }
                }
                Output::Log { level, message } => log_at(level, &message),
                Output::Crash => {
                    log::warn!("Sentinel CRASH because of SENTINEL simulate-failure");
                    std::process::exit(99);
                }
            }
        }
    }

    /// Delivers a message to our subscribers: by channel, then by pattern.
    pub fn publish(&mut self, channel: &[u8], message: &[u8]) -> usize {
        let mut n = 0;
        for c in self.clients.values() {
            if c.channels.contains(channel) {
                let mut r = ReplyBuf::new(c.resp3);
                r.push(3);
                r.bulk(b"message");
                r.bulk(channel);
                r.bulk(message);
                let _ = c.push.send(r.buf);
                n += 1;
            }
            for p in &c.patterns {
                if ferrokv_keyspace::glob::glob_match(p, channel, false) {
                    let mut r = ReplyBuf::new(c.resp3);
                    r.push(4);
                    r.bulk(b"pmessage");
                    r.bulk(p);
                    r.bulk(channel);
                    r.bulk(message);
                    let _ = c.push.send(r.buf);
                    n += 1;
                }
            }
        }
        n
    }
}
