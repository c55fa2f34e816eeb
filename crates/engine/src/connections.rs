//! The engine's side of connections: registering and forgetting them, what their parser
//! may accept, handing their output to the I/O layer, and bounding the memory they hold.
//!
//! Memory bounds, as in Redis 7.0:
//! - `client-output-buffer-limit <class> <hard> <soft> <seconds>`: a client whose pending
//!   output (the engine's buffer plus the bytes its connection took and has not written)
//!   reaches the hard limit, or stays at or above the soft limit for longer than the
//!   seconds, is closed asynchronously. The hard limit is also a cap inside the reply
//!   writer ([`ferrokv_resp::ReplyBuf::set_cap`]), so one reply cannot grow past it even
//!   before the command ends. Replicas are bounded separately, by their lag in the
//!   shared replication buffer (`replication/master.rs`).
//! - `maxmemory-clients`: when the memory of all normal and pub/sub clients reaches it,
//!   the biggest are evicted first until the total is below it (never masters, replicas
//!   or clients that asked for `CLIENT NO-EVICT on`).

use crate::client::{Client, ClientClass, ClientId, ConnInfo, Waker};
use crate::engine::Engine;
use ferrokv_resp::Limits;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// Redis never lets `maxmemory-clients` go below this (a tiny limit would leave no client
/// able to talk to the server).
const MIN_CLIENT_EVICTION_LIMIT: u64 = 128 * 1024;

impl Engine {
    /// Registers a new connection. On refusal, returns the error line to send before
    /// closing (maxclients, protected mode). `out_in_flight` is where the connection
    /// keeps the number of output bytes it took and has not yet written.
    pub fn connect(
        &mut self,
        conn: ConnInfo,
        waker: Arc<dyn Waker>,
        out_in_flight: Arc<AtomicUsize>,
        now_ms: i64,
    ) -> Result<ClientId, Vec<u8>> {
        self.stats.total_connections_received += 1;
        if self.clients.len() >= self.hot.maxclients {
            self.stats.rejected_connections += 1;
            return Err(b"-ERR max number of clients reached\r\n".to_vec());
        }
        if self.hot.protected_mode && self.acl.default_needs_no_auth() && !conn.local {
            self.stats.rejected_connections += 1;
            return Err(crate::commands::connection::PROTECTED_MODE_DENIED.as_bytes().to_vec());
        }
        let id = self.next_client_id;
        self.next_client_id += 1;
        let mut c = Client::new(id, conn, now_ms, waker);
        c.out = ferrokv_resp::ReplyBuf::with_in_flight(false, out_in_flight);
        c.authenticated = self.acl.default_needs_no_auth();
        self.refresh_output_cap(&mut c, now_ms);
        self.track_client_memory(&mut c);
        self.clients.insert(c);
        Ok(id)
    }

    /// Forgets a connection and everything it registered.
    pub fn disconnect(&mut self, id: ClientId) {
        let Some(mut c) = self.clients.remove(id) else {
            return;
        };
        self.unblock(&mut c);
        self.abandon_migrate(&mut c);
        for ch in &c.channels {
            self.pubsub.unsubscribe(ch, id);
        }
        for p in &c.patterns {
            self.pubsub.punsubscribe(p, id);
        }
        for ch in &c.shard_channels {
            self.pubsub.sunsubscribe(ch, id);
        }
        for (db, key, _) in &c.watched {
            self.watched.unwatch(*db, key, id);
        }
        self.monitors.retain(|&m| m != id);
        self.paused_clients.retain(|&m| m != id);
        if c.tracking.on {
            self.tracking_disable(&mut c);
        }
        self.clients_memory -= c.memory_tracked;
        if c.repl_role == Some(crate::client::ReplRole::Replica) {
            self.replica_gone(id, self.now_ms);
        }
    }

    /// Parser limits for a client's next requests.
    pub fn limits(&self, id: ClientId) -> Limits {
        let authenticated = self.clients.get(id).is_none_or(|c| c.authenticated);
        Limits {
            max_bulk_len: self.hot.proto_max_bulk_len,
            max_query_buffer: self.hot.query_buffer_limit,
            authenticated,
        }
    }

    /// Moves a client's pending output into `buf` (which is cleared first). The
    /// connection must have written everything it took before: the bytes moved are its
    /// in-flight output from now on. Returns true if the connection must be closed once
    /// `buf` is written.
    pub fn take_output(&mut self, id: ClientId, buf: &mut Vec<u8>) -> bool {
        // A script suspended under sync-replicas: its reply (an EXEC's may be half
        // written) is held whole when the run ends, so nothing leaves before.
        let held = self.scripts.busy.as_ref().is_some_and(|b| b.client == id && b.sync_hold.is_some());
        let Some(c) = self.clients.get_mut(id) else {
            buf.clear();
            return true;
        };
        if held {
            buf.clear();
            return c.close_asap || c.close_after_reply;
        }
        c.out.swap_out(buf);
        c.net_out += buf.len() as u64;
        self.stats.net_output_bytes += buf.len() as u64;
        c.close_asap || c.close_after_reply
    }

    /// Whether the engine holds output the connection has not taken yet.
    pub fn has_output(&self, id: ClientId) -> bool {
        self.clients.get(id).is_some_and(|c| !c.out.is_empty())
    }

    /// Whether the connection must close now (killed) without sending more.
    pub fn must_close(&self, id: ClientId) -> bool {
        self.clients.get(id).is_none_or(|c| c.close_asap)
    }

    /// Reports bytes read from a client and the size of its read buffer (INFO stats,
    /// CLIENT LIST, `maxmemory-clients`).
    pub fn note_input(&mut self, id: ClientId, bytes: usize, qbuf: usize, qbuf_capacity: usize) {
        self.stats.net_input_bytes += bytes as u64;
        self.stats.total_reads_processed += 1;
        let Some(c) = self.clients.get_mut(id) else {
            return;
        };
        c.net_in += bytes as u64;
        c.qbuf = qbuf;
        c.qbuf_capacity = qbuf_capacity;
        if self.hot.maxmemory_clients != 0 {
            track_memory(&mut self.clients_memory, c);
            self.evict_clients_if_needed();
        }
    }

    /// Ends a connection with a protocol error: the error follows the replies already
    /// queued, then the connection closes.
    pub fn protocol_error(&mut self, id: ClientId, msg: &str) {
        if let Some(c) = self.clients.get_mut(id) {
            c.out.error(msg);
            c.close_after_reply = true;
        }
    }

    // ---- output-buffer limits ----------------------------------------------------

    /// The limits of a client's class; masters (our master's stream) have none, since
    /// nothing is ever replied to them.
    fn output_limit(&self, c: &Client) -> Option<ferrokv_config::ObufLimit> {
        match c.class() {
            ClientClass::Master => None,
            class => Some(self.hot.obuf[class.obuf_index()]),
        }
    }

    /// Sets the cap the reply writer enforces while a command runs: the hard limit, or
    /// the soft limit once it has been exceeded for longer than its seconds.
    pub(crate) fn refresh_output_cap(&self, c: &mut Client, now_ms: i64) {
        let Some(limit) = self.output_limit(c) else {
            c.out.set_cap(0);
            return;
        };
        let soft_expired =
            limit.soft > 0 && c.obuf_soft_since.is_some_and(|since| now_ms - since > limit.soft_seconds as i64 * 1000);
        let mut cap = limit.hard;
        if soft_expired && (cap == 0 || limit.soft < cap) {
            cap = limit.soft;
        }
        c.out.set_cap(cap as usize);
    }

    /// Enforces `client-output-buffer-limit` for a client's pending output: closes it
    /// (asynchronously, as Redis) when it is doomed or over a limit, and keeps the soft
    /// limit's clock. Returns true when the client is being closed.
    pub(crate) fn check_output_limits(&mut self, c: &mut Client, now_ms: i64) -> bool {
        if c.close_asap {
            return true;
        }
        let Some(limit) = self.output_limit(c) else {
            return false;
        };
        let used = c.out.pending() as u64;
        let mut over = c.out.doomed() || (limit.hard > 0 && used >= limit.hard);
        if limit.soft > 0 && used >= limit.soft {
            match c.obuf_soft_since {
                None => c.obuf_soft_since = Some(now_ms),
                Some(t) if now_ms - t > (limit.soft_seconds as i64) * 1000 => over = true,
                Some(_) => {}
            }
        } else {
            c.obuf_soft_since = None;
        }
        if over {
            let info = crate::commands::client_cmd::info_line(c, false, now_ms);
            log::warn!("Client {info} scheduled to be closed ASAP for overcoming of output buffer limits.");
            self.stats.client_output_buffer_limit_disconnections += 1;
            self.detach(c);
            return true;
        }
        self.refresh_output_cap(c, now_ms);
        false
    }

    /// Schedules a client to be closed: from now on it receives nothing (subscriptions,
    /// MONITOR and WATCH are dropped at once, pending output discarded), and its connection
    /// task is woken to close the socket — even if it is stuck writing to a peer that does
    /// not read.
    pub(crate) fn detach(&mut self, c: &mut Client) {
        self.unblock(c);
        for ch in c.channels.drain() {
            self.pubsub.unsubscribe(&ch, c.id);
        }
        for p in c.patterns.drain() {
            self.pubsub.punsubscribe(&p, c.id);
        }
        for ch in c.shard_channels.drain() {
            self.pubsub.sunsubscribe(&ch, c.id);
        }
        for (db, key, _) in c.watched.drain(..) {
            self.watched.unwatch(db, &key, c.id);
        }
        if c.monitor {
            c.monitor = false;
            self.monitors.retain(|&m| m != c.id);
        }
        if c.tracking.on {
            self.tracking_disable(c);
        }
        c.close_asap = true;
        c.out.doom();
        // What it still holds is freed when its connection closes, in a moment.
        self.clients_memory -= c.memory_tracked;
        c.memory_tracked = 0;
        c.waker.wake();
    }

    /// [`Engine::detach`] for a client in the table (not the one running a command).
    pub(crate) fn detach_id(&mut self, id: ClientId) {
        if let Some(mut c) = self.clients.take(id) {
            self.detach(&mut c);
            self.clients.put(c);
        }
    }

    /// Checks the output limits of clients holding output (data that arrived without a
    /// command of theirs, soft limits whose seconds ran out) and refreshes what their
    /// memory counts for.
    pub(crate) fn check_all_output_limits(&mut self, now_ms: i64) {
        let ids: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|c| c.out.pending() > 0 || c.obuf_soft_since.is_some() || c.memory_tracked > 0)
            .map(|c| c.id)
            .collect();
        for id in ids {
            if let Some(mut c) = self.clients.take(id) {
                if !self.check_output_limits(&mut c, now_ms) {
                    self.track_client_memory(&mut c);
                }
                self.clients.put(c);
            }
        }
        self.evict_clients_if_needed();
    }

    /// Checks the limits of a client other than the running one after output was added
    /// to it (a pub/sub message, a MONITOR line). Cheap unless it holds a lot.
    pub(crate) fn check_receiver(&mut self, id: ClientId) {
        const TRACKING_STEP: usize = 16 * 1024;
        let needs_check = self.clients.get(id).is_some_and(|c| {
            // A running soft clock is checked at every append, so that a client that
            // drained below the soft limit meanwhile starts a new one, as in Redis.
            c.out.doomed()
                || c.obuf_soft_since.is_some()
                || self.output_limit(c).is_some_and(|l| l.soft > 0 && c.out.pending() as u64 >= l.soft)
                || (self.hot.maxmemory_clients != 0 && c.memory_usage() > c.memory_tracked + TRACKING_STEP)
        });
        if !needs_check {
            return;
        }
        if let Some(mut c) = self.clients.take(id) {
            if !self.check_output_limits(&mut c, self.now_ms) {
                self.track_client_memory(&mut c);
            }
            self.clients.put(c);
        }
        self.evict_clients_if_needed();
    }

    // ---- client eviction (maxmemory-clients) --------------------------------------

    /// The effective `maxmemory-clients` in bytes (0: off). A percentage applies to
    /// `maxmemory` (and means off while maxmemory is 0).
    pub fn client_eviction_limit(&self) -> u64 {
        let setting = self.hot.maxmemory_clients;
        let bytes = if setting < 0 {
            if self.hot.maxmemory == 0 {
                return 0;
            }
            (self.hot.maxmemory as f64 * (-setting) as f64 / 100.0) as u64
        } else {
            setting as u64
        };
        if bytes == 0 {
            0
        } else {
            bytes.max(MIN_CLIENT_EVICTION_LIMIT)
        }
    }

    /// Updates the total of normal and pub/sub clients' memory with what this client holds
    /// now. Only `maxmemory-clients` needs the total kept up to date, so without it this
    /// costs nothing (INFO counts on demand).
    pub(crate) fn track_client_memory(&mut self, c: &mut Client) {
        if self.hot.maxmemory_clients != 0 {
            track_memory(&mut self.clients_memory, c);
        }
    }

    /// Counts every client afresh (`maxmemory-clients` was just set, or is about to act).
    pub(crate) fn recount_clients_memory(&mut self) {
        let mut total = 0;
        for c in self.clients.iter_mut() {
            c.memory_tracked = c.evictable_memory();
            total += c.memory_tracked;
        }
        self.clients_memory = total;
    }

    /// Memory of all normal and pub/sub clients (INFO `mem_clients_normal`), `caller`
    /// being the client running a command (out of the table meanwhile).
    pub fn clients_memory_now(&self, caller: Option<&Client>) -> usize {
        self.clients.iter().chain(caller).map(Client::evictable_memory).sum()
    }

    /// Evicts the biggest evictable clients until the total is below `maxmemory-clients`.
    pub(crate) fn evict_clients_if_needed(&mut self) {
        let limit = self.client_eviction_limit() as usize;
        if limit == 0 || self.clients_memory < limit {
            return;
        }
        // Connections write outside the engine's lock, so what a client was last counted
        // for may be stale: count everyone afresh before evicting anybody.
        self.recount_clients_memory();
        if self.clients_memory < limit {
            return;
        }
        let mut candidates: Vec<(usize, ClientId)> = self
            .clients
            .iter()
            .filter(|c| !c.no_evict && c.memory_tracked > 0)
            .map(|c| (c.memory_tracked, c.id))
            .collect();
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        for (_, id) in candidates {
            if self.clients_memory < limit {
                return;
            }
            if let Some(mut c) = self.clients.take(id) {
                let info = crate::commands::client_cmd::info_line(&c, false, self.now_ms);
                log::info!("Evicting client: {info}");
                self.stats.evicted_clients += 1;
                self.detach(&mut c);
                self.clients.put(c);
            }
        }
        if self.clients_memory >= limit {
            log::warn!("Over client maxmemory after evicting all evictable clients");
        }
    }
}

/// Moves a client's share of `total` to what it holds now.
fn track_memory(total: &mut usize, c: &mut Client) {
    let now = c.evictable_memory();
    *total = *total - c.memory_tracked + now;
    c.memory_tracked = now;
}
