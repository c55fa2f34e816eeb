//! The master's side: replicas attaching (PSYNC, SYNC), full syncs started from the
//! fork-less snapshot, the stream handed to each replica's sender, acknowledgements and
//! WAIT.

use super::{Replica, ReplicaState};
use crate::blocking::TimeoutReply;
use crate::client::{Client, ClientId, ReplRole};
use crate::engine::Engine;
use crate::persistence::Purpose;
use bytes::Bytes;
use ferrokv_config::pid;

/// What a replica's sender gets when it asks for more.
pub enum Fetch {
    /// Stream bytes to send now.
    Data(Vec<Bytes>),
    /// Nothing yet: wait for the offset to move.
    Wait,
    /// The connection is no longer a replica, or fell too far behind: close it.
    Close,
}

/// How a PSYNC was answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Psync {
    Continue,
    FullResync,
}

impl Engine {
    /// PSYNC (and SYNC, with `replid` "?"): attaches the client as a replica, continuing
    /// from the backlog when its history allows, else scheduling a full sync.
    pub(crate) fn psync(&mut self, client: &mut Client, replid: &str, from: i64, now_ms: i64) -> Psync {
        let conf = client.replconf.take().unwrap_or_default();
        let ip = conf.ip.clone().unwrap_or_else(|| peer_ip(&client.conn.addr));
        let name = format!("{ip}:{}", conf.listening_port);
        let mut replica = Replica {
            id: client.id,
            ip,
            listening_port: conf.listening_port,
            state: ReplicaState::WaitBgsave,
            cursor: 0,
            ack_offset: 0,
            ack_ms: now_ms,
            capa_eof: conf.capa_eof,
            eof_transfer: false,
            fack_offset: -1,
            capa_psync2: conf.capa_psync2,
            sync_offset: 0,
            legacy: conf.legacy,
            rdb_sent: false,
            preamble: None,
            soft_since: None,
            proof_mono: 0,
        };
        client.repl_role = Some(ReplRole::Replica);
        self.repl.no_replicas_since_ms = None;
        // Every write already executed belongs to what this replica gets, either way.
        self.flush_feed();
        if from >= 0 && self.repl.can_continue(replid, from as u64) {
            let from = from as u64;
            let bytes = self.repl.offset + 1 - from;
            log::info!(
                "Partial resynchronization request from {name} accepted. Sending {bytes} bytes of backlog starting from offset {from}."
            );
            if replica.capa_psync2 {
                client.out.raw(format!("+CONTINUE {}\r\n", self.repl.replid).as_bytes());
            } else {
                client.out.raw(b"+CONTINUE\r\n");
            }
            replica.state = ReplicaState::Online;
            replica.cursor = from;
            replica.ack_offset = from - 1;
            self.repl.sync_partial_ok += 1;
            self.repl.replicas.push(replica);
            return Psync::Continue;
        }
        if replid != "?" {
            self.repl.sync_partial_err += 1;
            if replid != self.repl.replid && replid != self.repl.replid2 {
                log::info!(
                    "Partial resynchronization not accepted: Replication ID mismatch (Replica asked for '{replid}', my replication IDs are '{}' and '{}')",
                    self.repl.replid,
                    self.repl.replid2
                );
            } else {
                log::info!(
                    "Unable to partial resync with replica {name} for lack of backlog (Replica request was: {from})."
                );
            }
        } else {
            log::info!("Full resync requested by replica {name}");
        }
        self.repl.sync_full += 1;
        if self.repl.backlog.is_none() && self.is_master_role() {
            self.repl.new_history(&mut self.rng);
            self.repl.ensure_backlog(self.cfg.int(pid("repl-backlog-size")) as u64);
            log::info!(
                "Replication backlog created, my new replication IDs are '{}' and '{}'",
                self.repl.replid,
                self.repl.replid2
            );
        }
        self.repl.ensure_backlog(self.cfg.int(pid("repl-backlog-size")) as u64);
        self.update_feed_enabled();
        self.repl.replicas.push(replica);
        if self.repl.full_sync_wanted_since.is_none() {
            self.repl.full_sync_wanted_since = Some(now_ms);
        }
        if self.cfg.int(pid("repl-diskless-sync-delay")) <= 0 {
            self.maybe_start_full_sync(now_ms);
        }
        Psync::FullResync
    }

    /// Starts the snapshot for the replicas waiting for one, once the diskless delay has
    /// passed (or enough replicas wait) and no other snapshot runs.
    pub(crate) fn maybe_start_full_sync(&mut self, now_ms: i64) {
        let Some(since) = self.repl.full_sync_wanted_since else { return };
        let waiting = self.repl.replicas.iter().filter(|r| r.state == ReplicaState::WaitBgsave).count();
        if waiting == 0 {
            self.repl.full_sync_wanted_since = None;
            return;
        }
        let delay_ms = self.cfg.int(pid("repl-diskless-sync-delay")) * 1000;
        let max = self.cfg.int(pid("repl-diskless-sync-max-replicas"));
        let due = now_ms - since >= delay_ms || (max > 0 && waiting as i64 >= max);
        if !due || self.persist.in_progress().is_some() {
            return;
        }
        if let Err(e) = self.request_snapshot(Purpose::Replication, now_ms) {
            log::warn!("Can't start the full synchronization snapshot: {e}");
        }
    }

    /// Called when a replication snapshot starts: its replicas learn the offset it
    /// corresponds to (+FULLRESYNC) and will stream from the next byte.
    pub(crate) fn attach_full_sync_replicas(&mut self) -> Vec<ClientId> {
        self.repl.full_sync_wanted_since = None;
        // A new replica must be told which database the stream writes to.
        self.feed.reset_db();
        let offset = self.repl.offset;
        let replid = self.repl.replid.clone();
        let diskless = self.cfg.bool(pid("repl-diskless-sync"));
        let mut ids = Vec::new();
        for r in self.repl.replicas.iter_mut().filter(|r| r.state == ReplicaState::WaitBgsave) {
            r.state = ReplicaState::SendBulk;
            r.eof_transfer = diskless && r.capa_eof;
            r.sync_offset = offset;
            r.cursor = offset + 1;
            r.ack_offset = offset;
            if !r.legacy {
                r.preamble = Some(format!("+FULLRESYNC {replid} {offset}\r\n"));
            }
            ids.push(r.id);
        }
        for &id in &ids {
            // The client running PSYNC is not in the table right now; it looks anyway.
            if let Some(c) = self.clients.get(id) {
                c.waker.wake();
            }
        }
        log::info!("Starting BGSAVE for SYNC with target: {}", if diskless { "replicas sockets" } else { "disk" });
        ids
    }

    /// The replica's sender finished sending the RDB. A length-prefixed transfer streams
    /// at once; an `$EOF:` one waits for the replica's first ACK.
    pub fn replica_rdb_sent(&mut self, id: ClientId, now_ms: i64) {
        if let Some(r) = self.repl.replica_mut(id) {
            r.rdb_sent = true;
            r.ack_ms = now_ms;
            if !r.eof_transfer {
                r.state = ReplicaState::Online;
                log::info!("Synchronization with replica {}:{} succeeded", r.ip, r.listening_port);
            }
        }
    }

    /// The line to send before the RDB (`+FULLRESYNC <replid> <offset>`), once.
    pub fn replica_take_preamble(&mut self, id: ClientId) -> Option<String> {
        self.repl.replica_mut(id).and_then(|r| r.preamble.take())
    }

    /// Whether a connection became a replica, and how its sync began.
    pub fn replica_state(&self, id: ClientId) -> Option<(ReplicaState, bool)> {
        self.repl.replica(id).map(|r| (r.state, r.eof_transfer))
    }

    /// The next stream bytes for a replica (at most `max`), from its cursor. The cursor
    /// moves when the sender reports them written ([`Engine::replica_sent`]), so bytes
    /// stuck in a slow replica's socket count against its output-buffer limit.
    pub fn replica_fetch(&mut self, id: ClientId, max: usize) -> Fetch {
        if self.must_close(id) {
            return Fetch::Close;
        }
        let Some(r) = self.repl.replicas.iter().find(|r| r.id == id) else { return Fetch::Close };
        if r.state != ReplicaState::Online {
            return Fetch::Wait;
        }
        let Some(b) = self.repl.backlog.as_ref() else { return Fetch::Close };
        match b.read(r.cursor, max) {
            None => Fetch::Close,
            Some(chunks) if chunks.is_empty() => Fetch::Wait,
            Some(chunks) => Fetch::Data(chunks),
        }
    }

    /// The sender wrote `n` more bytes to the replica's socket.
    pub fn replica_sent(&mut self, id: ClientId, n: u64) {
        if let Some(r) = self.repl.replica_mut(id) {
            r.cursor += n;
        }
        self.repl.trim();
    }

    /// Drops replicas whose unsent stream exceeds `client-output-buffer-limit replica`
    /// (hard at once, soft after its seconds), as Redis closes such clients.
    pub(crate) fn enforce_replica_buffer_limits(&mut self, now_ms: i64) {
        let limit = self.hot.obuf[crate::client::ClientClass::Replica.obuf_index()];
        let (mut hard, soft, soft_secs) = (limit.hard, limit.soft, limit.soft_seconds);
        // As in Redis: a hard limit below the backlog would drop replicas that a partial
        // resync would take right back, and costs no memory since the buffer is shared.
        let backlog_size = self.repl.backlog.as_ref().map_or(0, |b| b.size);
        if hard > 0 && hard < backlog_size {
            hard = backlog_size;
        }
        let end = self.repl.offset + 1;
        let mut drop_ids = Vec::new();
        for r in self.repl.replicas.iter_mut().filter(|r| r.state != ReplicaState::WaitBgsave) {
            let lag = end.saturating_sub(r.cursor);
            let over_soft = soft > 0 && lag > soft;
            let soft_expired = over_soft && now_ms - *r.soft_since.get_or_insert(now_ms) >= soft_secs as i64 * 1000;
            if !over_soft {
                r.soft_since = None;
            }
            if (hard > 0 && lag > hard) || soft_expired {
                log::warn!(
                    "Client id={} addr={}:{} scheduled to be closed ASAP for overcoming of output buffer limits.",
                    r.id,
                    r.ip,
                    r.listening_port
                );
                drop_ids.push(r.id);
            }
        }
        for id in drop_ids {
            self.detach_id(id);
            self.replica_gone(id, now_ms);
        }
    }

    /// REPLCONF ACK from a replica (with FACK, the offset its AOF fsynced).
    pub(crate) fn replica_ack(&mut self, id: ClientId, offset: u64, fack: Option<i64>, now_ms: i64) {
        if let Some(r) = self.repl.replica_mut(id) {
            if offset > r.ack_offset {
                r.ack_offset = offset;
            }
            if let Some(f) = fack {
                r.fack_offset = f;
            }
            r.ack_ms = now_ms;
            if r.state == ReplicaState::SendBulk && r.rdb_sent {
                r.state = ReplicaState::Online;
                log::info!("Synchronization with replica {}:{} succeeded", r.ip, r.listening_port);
            }
            // A replica follows us (it loaded our dataset, or continues our history): our
            // history is established, not that of a master restarted without its data.
            if r.state == ReplicaState::Online {
                self.repl.started_empty = false;
            }
        }
        self.sync_acked(id, offset);
        self.serve_waiters(now_ms);
        self.failover_tick(now_ms);
    }

    /// Replicas that acknowledged `offset`.
    pub fn replicas_acked(&self, offset: u64) -> usize {
        self.repl.replicas.iter().filter(|r| r.state == ReplicaState::Online && r.ack_offset >= offset).count()
    }

    /// Replicas whose AOF fsynced replication offset `offset` (WAITAOF).
    pub fn replicas_fsynced(&self, offset: u64) -> usize {
        self.repl.replicas.iter().filter(|r| r.state == ReplicaState::Online && r.fack_offset >= offset as i64).count()
    }

    /// The feed offset of the last byte handed to the AOF.
    pub fn aof_end(&self) -> u64 {
        self.host.aof_fsync_state().0
    }

    /// WAITAOF's local part: the AOF holds feed offset `ticket`, fsynced.
    pub fn aof_fsynced(&self, ticket: u64) -> bool {
        self.persist.aof.enabled && self.host.aof_fsync_state().1.is_some_and(|synced| synced >= ticket)
    }

    /// WAITAOF's reply: `[local, replicas]`.
    pub(crate) fn reply_aof_count(&self, c: &mut Client, ticket: u64, offset: u64) {
        c.out.array(2);
        c.out.int(self.aof_fsynced(ticket) as i64);
        c.out.int(self.replicas_fsynced(offset) as i64);
    }

    /// Clients blocked in WAIT or WAITAOF.
    fn replication_waiters(&self) -> Vec<ClientId> {
        let waits = |b: &crate::blocking::Blocked| {
            matches!(b.timeout_reply, TimeoutReply::ReplicaCount { .. } | TimeoutReply::AofCount { .. })
        };
        self.clients.iter().filter(|c| c.blocked.as_ref().is_some_and(waits)).map(|c| c.id).collect()
    }

    /// Answers the WAIT and WAITAOF clients now satisfied.
    pub(crate) fn serve_waiters(&mut self, _now_ms: i64) {
        if self.blocking.blocked == 0 {
            return;
        }
        let waiting = self.replication_waiters();
        for id in waiting {
            let Some(mut c) = self.clients.take(id) else { continue };
            match c.blocked.as_ref().map(|b| b.timeout_reply) {
                Some(TimeoutReply::ReplicaCount { offset, needed }) => {
                    let acked = self.replicas_acked(offset);
                    if acked >= needed {
                        self.unblock(&mut c);
                        c.out.int(acked as i64);
                        c.waker.wake();
                    }
                }
                Some(TimeoutReply::AofCount { ticket, offset, numlocal, needed }) => {
                    if !self.persist.aof.enabled && numlocal {
                        // The AOF was switched off under a local wait (as Redis, an error).
                        self.unblock(&mut c);
                        c.out.error(WAITAOF_NO_AOF);
                        c.waker.wake();
                    } else if (!numlocal || self.aof_fsynced(ticket)) && self.replicas_fsynced(offset) >= needed {
                        self.unblock(&mut c);
                        self.reply_aof_count(&mut c, ticket, offset);
                        c.waker.wake();
                    }
                }
                _ => {}
            }
            self.clients.put(c);
        }
    }

    /// Clients waiting for replicas (WAIT, WAITAOF) when this master becomes a replica:
    /// what they wait for can no longer happen here.
    pub(crate) fn unblock_replication_waiters(&mut self) {
        let waiting = self.replication_waiters();
        for id in waiting {
            let Some(mut c) = self.clients.take(id) else { continue };
            self.unblock(&mut c);
            c.out.error("UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)");
            c.waker.wake();
            self.clients.put(c);
        }
    }

    /// A replica connection went away.
    pub(crate) fn replica_gone(&mut self, id: ClientId, now_ms: i64) {
        let before = self.repl.replicas.len();
        self.repl.replicas.retain(|r| {
            if r.id == id {
                log::info!("Connection with replica {}:{} lost.", r.ip, r.listening_port);
            }
            r.id != id
        });
        if before != self.repl.replicas.len() {
            self.repl.trim();
            if self.repl.replicas.is_empty() {
                self.repl.no_replicas_since_ms = Some(now_ms);
            }
        }
    }

    /// The replication part of serverCron: pings through the stream, the backlog's time to
    /// live, delayed full syncs, stuck replicas.
    pub(crate) fn replication_cron(&mut self, now_ms: i64) {
        self.maybe_start_full_sync(now_ms);
        if self.repl.aof_waiters {
            // The AOF's fsyncs happen off the engine: look for WAITAOF clients they freed.
            self.serve_waiters(now_ms);
            self.repl.aof_waiters = self
                .clients
                .iter()
                .any(|c| c.blocked.as_ref().is_some_and(|b| matches!(b.timeout_reply, TimeoutReply::AofCount { .. })));
        }
        self.failover_tick(now_ms);
        self.shutdown_cron(now_ms);
        if self.repl.want_acks {
            self.request_acks();
        }
        self.enforce_replica_buffer_limits(now_ms);
        if !self.is_master_role() {
            return;
        }
        let period = self.cfg.int(pid("repl-ping-replica-period")).max(1) * 1000;
        if !self.repl.replicas.is_empty() && now_ms - self.repl.last_ping_ms >= period && self.pause.is_none() {
            self.repl.last_ping_ms = now_ms;
            self.feed.push_replication_only([&b"PING"[..]]);
        }
        let ttl = self.cfg.int(pid("repl-backlog-ttl")) * 1000;
        if let Some(since) = self.repl.no_replicas_since_ms {
            if ttl > 0
                && now_ms - since > ttl
                && self.repl.backlog.is_some()
                && self.repl.replicas.is_empty()
                && self.is_master_role()
            {
                log::info!("Replication backlog freed after {} seconds without connected replicas.", ttl / 1000);
                self.repl.new_history(&mut self.rng);
                self.repl.backlog = None;
                self.update_feed_enabled();
            }
        }
    }

    /// WAIT asked for acknowledgements: ask every replica for one through the stream.
    pub(crate) fn request_acks(&mut self) {
        // While writes are paused nothing enters the stream (a FAILOVER waits for the
        // offset to stand still); the request goes out after the pause.
        if self.pause.is_some() {
            return;
        }
        if self.repl.want_acks && !self.repl.replicas.is_empty() {
            self.feed.push_replication_only([&b"REPLCONF"[..], b"GETACK", b"*"]);
        }
        self.repl.want_acks = false;
    }
}

pub(crate) const WAITAOF_NO_AOF: &str = "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.";

/// The IP part of `ip:port` (IPv6 addresses keep their colons).
fn peer_ip(addr: &str) -> String {
    match addr.rfind(':') {
        Some(i) => addr[..i].trim_start_matches('[').trim_end_matches(']').to_string(),
        None => addr.to_string(),
    }
}
