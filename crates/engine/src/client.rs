//! Per-connection state the engine keeps: identity, selected db, protocol, auth,
//! transaction queue, watched keys, subscriptions, pending output.
//!
//! The connection's socket lives in the server layer; everything that Redis semantics
//! depend on lives here, so commands like CLIENT LIST/KILL, PUBLISH and blocking wake-ups
//! act on clients without touching I/O.

use crate::commands::CmdId;
use ferrokv_keyspace::SmallBytes;
use ferrokv_resp::{Argv, ReplyBuf};
use std::collections::HashSet;
use std::sync::Arc;

pub type ClientId = u64;

/// How the engine tells a connection task that it has something to do (output to send,
/// it was killed, it was unblocked). Implemented by the server with a tokio `Notify`.
pub trait Waker: Send + Sync {
    fn wake(&self);
}

/// A waker that does nothing (tests, internal clients).
pub struct NoWaker;

impl Waker for NoWaker {
    fn wake(&self) {}
}

/// The connection's transport, as CLIENT LIST and MONITOR show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Unix,
}

/// What the server knows about a new connection.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// `ip:port` of the peer (or the socket path for unix sockets).
    pub addr: String,
    /// `ip:port` of our side.
    pub laddr: String,
    pub fd: i64,
    pub transport: Transport,
    /// The peer is on loopback or a unix socket (protected mode, `enable-debug-command local`).
    pub local: bool,
}

/// CLIENT REPLY modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply to the next command only.
    SkipNext,
    /// Skipping the reply of the current command.
    Skip,
}

#[derive(Debug, Default)]
pub struct MultiState {
    pub queue: Vec<(CmdId, Argv)>,
    /// Union of the queued commands' flags (for OOM/readonly checks of EXEC).
    pub flags: u64,
}

pub struct Client {
    pub id: ClientId,
    pub conn: ConnInfo,
    pub name: Option<Vec<u8>>,
    pub lib_name: Option<Vec<u8>>,
    pub lib_ver: Option<Vec<u8>>,
    pub created_ms: i64,
    pub last_interaction_ms: i64,
    pub db: usize,
    pub out: ReplyBuf,
    pub authenticated: bool,
    pub user: String,
    /// The ACL generation at which `user` was found to be allowed everything, or
    /// [`crate::acl::NOT_FREE`]: the permission check is skipped while it is current.
    pub acl_free_gen: u64,
    /// `user` as the ACL found it, with the ACL generation it was found at: checks of a
    /// restricted user look it up by name only after users changed.
    pub acl_user: Option<(u64, ferrokv_acl::UserHandle)>,
    /// The user's compiled fast path, valid while `acl_fast_gen` is the ACL's generation
    /// (a copy of the handle's: one compare and one call decide the common case).
    pub acl_fast_gen: u64,
    pub acl_fast: ferrokv_acl::FastPath,
    /// Runs anything whatever the users (our master's stream, AOF loading): Redis's
    /// clients without a user.
    pub superuser: bool,
    pub reply_mode: ReplyMode,
    /// Inside MULTI.
    pub multi: Option<MultiState>,
    /// A queued command was rejected: EXEC must abort.
    pub dirty_exec: bool,
    /// Cluster mode: ASKING was sent (good for the next command only).
    pub asking: bool,
    /// Cluster mode: READONLY, reads of our master's slots are served on this replica.
    pub cluster_readonly: bool,
    /// A watched key was modified: EXEC must fail.
    pub dirty_cas: bool,
    /// (db, key, existed-and-was-expired-at-WATCH-time)
    pub watched: Vec<(usize, SmallBytes, bool)>,
    pub channels: HashSet<Vec<u8>>,
    pub patterns: HashSet<Vec<u8>>,
    /// Shard channels (SSUBSCRIBE), counted apart from channels and patterns as in Redis.
    pub shard_channels: HashSet<Vec<u8>>,
    pub monitor: bool,
    pub no_evict: bool,
    /// Send the pending output, then close.
    pub close_after_reply: bool,
    /// Close now (killed, limits exceeded).
    pub close_asap: bool,
    /// The command currently running or last run (CLIENT LIST `cmd=`).
    pub last_cmd: &'static str,
    /// When the output buffer first went over the soft limit.
    pub obuf_soft_since: Option<i64>,
    /// Bytes waiting in the server's read buffer (CLIENT LIST `qbuf=`), reported by the server.
    pub qbuf: usize,
    /// The read buffer's allocated size.
    pub qbuf_capacity: usize,
    /// What this client counts for in the engine's total of clients' memory
    /// (`maxmemory-clients`, INFO `mem_clients_normal`).
    pub memory_tracked: usize,
    pub net_in: u64,
    pub net_out: u64,
    pub commands_processed: u64,
    pub waker: Arc<dyn Waker>,
    /// Waiting in a blocking command.
    pub blocked: Option<crate::blocking::Blocked>,
    /// Its script or function is suspended past `busy-reply-threshold`: it runs nothing
    /// else until the script ends (its connection task resumes it).
    pub script_blocked: bool,
    /// Its MIGRATE waits for the target (see `commands/migrate.rs`): it runs nothing else.
    pub migrating: Option<Box<crate::commands::migrate::MigratePending>>,
    /// This connection is one of our replicas, or our master's stream.
    pub repl_role: Option<ReplRole>,
    /// Synchronous replication: parts of the output that wait for acknowledgements, and
    /// what the command running (or the transaction) needs so far.
    pub sync_spans: Vec<crate::replication::sync::SyncSpan>,
    pub sync_cmd_need: u64,
    /// What REPLCONF said before PSYNC.
    pub replconf: Option<crate::replication::ReplConf>,
    /// Client-side caching (CLIENT TRACKING).
    pub tracking: crate::tracking::ClientTracking,
}

impl Client {
    pub fn new(id: ClientId, conn: ConnInfo, now_ms: i64, waker: Arc<dyn Waker>) -> Client {
        Client {
            id,
            conn,
            name: None,
            lib_name: None,
            lib_ver: None,
            created_ms: now_ms,
            last_interaction_ms: now_ms,
            db: 0,
            out: ReplyBuf::new(false),
            authenticated: false,
            user: "default".into(),
            acl_free_gen: crate::acl::NOT_FREE,
            acl_user: None,
            acl_fast_gen: crate::acl::NOT_FREE,
            acl_fast: ferrokv_acl::FastPath::none(),
            superuser: false,
            reply_mode: ReplyMode::On,
            multi: None,
            dirty_exec: false,
            asking: false,
            cluster_readonly: false,
            dirty_cas: false,
            watched: Vec::new(),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shard_channels: HashSet::new(),
            monitor: false,
            no_evict: false,
            close_after_reply: false,
            close_asap: false,
            last_cmd: "NULL",
            obuf_soft_since: None,
            sync_spans: Vec::new(),
            sync_cmd_need: 0,
            qbuf: 0,
            qbuf_capacity: 0,
            memory_tracked: 0,
            net_in: 0,
            net_out: 0,
            commands_processed: 0,
            waker,
            blocked: None,
            script_blocked: false,
            migrating: None,
            repl_role: None,
            replconf: None,
            tracking: Default::default(),
        }
    }

    /// Logs the client in as `name`: what the ACL knew of its previous user is forgotten.
    pub fn set_user(&mut self, name: String) {
        self.user = name;
        self.acl_free_gen = crate::acl::NOT_FREE;
        self.acl_user = None;
        self.acl_fast_gen = crate::acl::NOT_FREE;
    }

    /// In subscriber mode (Redis's CLIENT_PUBSUB flag).
    pub fn is_pubsub(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty() || !self.shard_channels.is_empty()
    }

    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    pub fn resp3(&self) -> bool {
        self.out.resp3()
    }

    /// Bytes of pending output (CLIENT LIST `omem`): the engine's buffer and what the
    /// connection holds unwritten.
    pub fn output_memory(&self) -> usize {
        self.out.pending()
    }

    /// What the client costs in memory (CLIENT LIST `tot-mem`), as Redis estimates it:
    /// output, input buffer, queued MULTI commands, subscriptions and the client itself.
    pub fn memory_usage(&self) -> usize {
        let multi: usize = self.multi.as_ref().map_or(0, |m| m.queue.iter().map(|(_, a)| a.byte_len() + 64).sum());
        let subscriptions: usize = self
            .channels
            .iter()
            .chain(self.patterns.iter())
            .chain(self.shard_channels.iter())
            .map(|s| s.len() + 48)
            .sum();
        self.out.pending() + self.qbuf_capacity + multi + subscriptions + std::mem::size_of::<Client>()
    }

    /// [`Client::memory_usage`] if this client counts toward `maxmemory-clients` (normal
    /// and pub/sub clients that are not being closed), else 0.
    pub fn evictable_memory(&self) -> usize {
        match self.class() {
            ClientClass::Normal | ClientClass::PubSub if !self.close_asap => self.memory_usage(),
            _ => 0,
        }
    }

    /// The class used for output buffer limits and CLIENT KILL TYPE.
    pub fn class(&self) -> ClientClass {
        if let Some(r) = self.repl_role {
            return match r {
                ReplRole::Replica => ClientClass::Replica,
                ReplRole::Master => ClientClass::Master,
            };
        }
        if self.is_pubsub() {
            ClientClass::PubSub
        } else {
            ClientClass::Normal
        }
    }
}

/// A connection's part in replication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplRole {
    /// It ran PSYNC/SYNC: it is one of our replicas.
    Replica,
    /// It carries our master's stream.
    Master,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientClass {
    Normal,
    Replica,
    PubSub,
    Master,
}

impl ClientClass {
    pub fn parse(s: &[u8]) -> Option<ClientClass> {
        Some(match s.to_ascii_lowercase().as_slice() {
            b"normal" => ClientClass::Normal,
            b"slave" | b"replica" => ClientClass::Replica,
            b"pubsub" => ClientClass::PubSub,
            b"master" => ClientClass::Master,
            _ => return None,
        })
    }

    /// Index into `client-output-buffer-limit`'s classes.
    pub fn obuf_index(self) -> usize {
        match self {
            ClientClass::Normal | ClientClass::Master => 0,
            ClientClass::Replica => 1,
            ClientClass::PubSub => 2,
        }
    }
}

/// The table of connected clients. Slots are reused so that taking a client out for the
/// duration of a command and putting it back does not allocate.
#[derive(Default)]
pub struct Clients {
    slots: Vec<Option<Box<Client>>>,
    index: ahash::AHashMap<ClientId, usize>,
    free: Vec<usize>,
    /// The client looked up last and its slot: a connection asks for its own client
    /// about ten times per lock hold, and hashing its id each time was ~6 % of a GET at
    /// -P 1. A client keeps its slot until removed.
    last: std::cell::Cell<Option<(ClientId, usize)>>,
}

impl Clients {
    #[inline]
    fn slot(&self, id: ClientId) -> Option<usize> {
        if let Some((last, slot)) = self.last.get() {
            if last == id {
                return Some(slot);
            }
        }
        let &slot = self.index.get(&id)?;
        self.last.set(Some((id, slot)));
        Some(slot)
    }

    pub fn insert(&mut self, c: Client) {
        let id = c.id;
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some(Box::new(c));
                s
            }
            None => {
                self.slots.push(Some(Box::new(c)));
                self.slots.len() - 1
            }
        };
        self.index.insert(id, slot);
        if self.last.get().is_some_and(|(last, _)| last == id) {
            self.last.set(None);
        }
    }

    pub fn remove(&mut self, id: ClientId) -> Option<Box<Client>> {
        let slot = self.index.remove(&id)?;
        if self.last.get().is_some_and(|(last, _)| last == id) {
            self.last.set(None);
        }
        self.free.push(slot);
        self.slots[slot].take()
    }

    /// Takes a client out of its slot (the slot stays reserved until [`Clients::put`]).
    pub fn take(&mut self, id: ClientId) -> Option<Box<Client>> {
        let slot = self.slot(id)?;
        self.slots[slot].take()
    }

    pub fn put(&mut self, c: Box<Client>) {
        if let Some(slot) = self.slot(c.id) {
            self.slots[slot] = Some(c);
        }
    }

    pub fn get(&self, id: ClientId) -> Option<&Client> {
        self.slots[self.slot(id)?].as_deref()
    }

    pub fn get_mut(&mut self, id: ClientId) -> Option<&mut Client> {
        let slot = self.slot(id)?;
        self.slots[slot].as_deref_mut()
    }

    /// Number of connected clients (including any currently taken out).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Clients present in their slots (a client taken out for its command is skipped).
    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.slots.iter().filter_map(|s| s.as_deref())
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Client> {
        self.slots.iter_mut().filter_map(|s| s.as_deref_mut())
    }

    pub fn ids(&self) -> Vec<ClientId> {
        let mut v: Vec<ClientId> = self.index.keys().copied().collect();
        v.sort_unstable();
        v
    }
}
