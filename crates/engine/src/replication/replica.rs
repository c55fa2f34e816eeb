//! The replica's side: following a master (REPLICAOF), adopting its history after a full
//! or partial resync, executing its stream as the master client, and promotion.

use super::{LinkState, MasterLink};
use crate::client::{Client, ClientId, ConnInfo, NoWaker, ReplRole, Transport, Waker};
use crate::engine::Engine;
use bytes::Bytes;
use ferrokv_config::{pid, Val};
use ferrokv_keyspace::Db;
use ferrokv_resp::Argv;
use std::sync::Arc;

/// Where a replica is told to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterChange {
    /// Follow this master (connect, handshake, sync).
    Follow(String, u16),
    /// Stop following: we are a master now.
    Stop,
}

impl Engine {
    /// REPLICAOF host port (and `replicaof` at startup): follow a master. Our own
    /// replicas are disconnected so they resync with us under the new history.
    pub fn follow_master(&mut self, host: &str, port: u16, now_ms: i64) {
        if self.is_master_role() {
            // A master's cached master (if any) is the one the RDB loaded at startup
            // restored, with the stream's database: the link resurrects it.
            log::info!("Before turning into a replica, using my own master parameters to synthesize a cached master: I may be able to synchronize with the new master with just a partial transfer.");
        } else if let Some(id) = self.repl.master.as_ref().and_then(|m| m.client) {
            // Switching masters: the current master client is cached, as when a link
            // drops, so a partial resync with the new master resurrects it.
            self.cache_master_client(id);
        }
        self.repl.master = Some(MasterLink {
            host: host.to_string(),
            port,
            state: LinkState::Connect,
            last_io_ms: now_ms,
            down_since_ms: now_ms,
            read_offset: self.repl.offset,
            transfer_size: -1,
            transfer_read: 0,
            client: None,
        });
        self.hot.replica = true;
        // From now on our history is our master's; a refusal was about the previous one
        // (left set, a sentinel would take it for a refusal of the new master).
        self.repl.started_empty = false;
        self.repl.empty_master_refused = false;
        self.cfg.set_internal(pid("replicaof"), Val::ReplicaOf(Some((host.to_string(), port))));
        self.unblock_replication_waiters();
        self.sync_reset();
        self.repl.frozen_until = None;
        self.repl.fsync_marks.clear();
        self.disconnect_replicas();
        self.update_feed_enabled();
        self.host.master_changed(MasterChange::Follow(host.to_string(), port));
    }

    /// REPLICAOF NO ONE: become a master, starting a new history that keeps the old one's
    /// ID as `replid2` so the other replicas of the old master continue with us.
    pub fn promote(&mut self) {
        if !self.forget_master() {
            return;
        }
        self.repl.shift_replid(&mut self.rng);
        self.sync_reset();
        self.repl.frozen_until = None;
        self.repl.empty_master_refused = false;
        self.repl.history_from = None;
        self.hot.replica = false;
        self.cfg.set_internal(pid("replicaof"), Val::ReplicaOf(None));
        self.repl.ensure_backlog(self.cfg.int(pid("repl-backlog-size")) as u64);
        // Sub-replicas learn the new ID by reconnecting (they continue partially).
        self.disconnect_replicas();
        self.update_feed_enabled();
        self.feed.reset_db();
        self.host.master_changed(MasterChange::Stop);
    }

    /// Stops following our master: its client (streaming or cached) goes away with the
    /// link. False if we were not following anyone.
    pub(crate) fn forget_master(&mut self) -> bool {
        let Some(link) = self.repl.master.take() else {
            return false;
        };
        if let Some(id) = link.client {
            self.clients.remove(id);
        }
        self.repl.cached_master = None;
        true
    }

    fn disconnect_replicas(&mut self) {
        for id in self.repl.replicas.iter().map(|r| r.id).collect::<Vec<_>>() {
            self.detach_id(id);
        }
    }

    /// Replication info read from the RDB loaded at startup (its `repl-id`, `repl-offset`
    /// and `repl-stream-db`), as Redis restores it. A replica asks its master to continue
    /// that history, and the master client it resurrects on `+CONTINUE` starts in the
    /// database the stream had selected (the master sends no new SELECT). A master starts
    /// a new history at that offset, keeping the saved one as `replid2` up to it: its
    /// replicas continue, and one that is ahead of the file (it got writes the file
    /// missed) cannot be taken for one of its own.
    pub fn restore_replication_info(&mut self, replid: &str, offset: u64, stream_db: usize, now_ms: i64) {
        if replid.len() != 40 {
            return;
        }
        self.repl.offset = offset;
        self.repl.backlog = None;
        if self.configured_master().is_some() {
            self.repl.replid = replid.to_string();
            // Not connected yet: the link gives it its socket's addresses when it resumes it.
            let unconnected =
                ConnInfo { addr: String::new(), laddr: String::new(), fd: -1, transport: Transport::Tcp, local: false };
            let mut cached = self.new_master_client(unconnected, Arc::new(NoWaker), now_ms);
            cached.db = stream_db.min(self.dbs.len().saturating_sub(1));
            self.repl.cached_master = Some(Box::new(cached));
        } else {
            self.repl.replid2 = replid.to_string();
            self.repl.second_offset = offset as i64 + 1;
            // Without replicas the backlog goes after repl-backlog-ttl, as Redis's does.
            self.repl.no_replicas_since_ms = Some(now_ms);
        }
        self.repl.ensure_backlog(self.cfg.int(pid("repl-backlog-size")) as u64);
        self.update_feed_enabled();
        log::info!("Restored replication ID and offset from the RDB: {replid}:{offset}");
    }

    /// The database the replication stream has selected (the RDB's `repl-stream-db`): on
    /// a master the last SELECT fed out, on a replica its master client's.
    pub fn replication_stream_db(&self) -> usize {
        if self.is_master_role() {
            return self.feed.selected_db().unwrap_or(0);
        }
        let live = self.repl.master.as_ref().and_then(|m| m.client).and_then(|id| self.clients.get(id));
        live.or(self.repl.cached_master.as_deref()).map_or(0, |c| c.db)
    }

    /// PSYNC's arguments for the next handshake: our history if we have one.
    pub fn psync_args(&self) -> (String, i64) {
        if self.repl.backlog.is_some() || self.repl.offset > 0 {
            (self.repl.replid.clone(), self.repl.offset as i64 + 1)
        } else {
            ("?".into(), -1)
        }
    }

    /// The link driver reports the link's state.
    pub fn link_state(&mut self, state: LinkState, now_ms: i64) {
        if let Some(m) = self.repl.master.as_mut() {
            if m.state == LinkState::Connected && state != LinkState::Connected {
                m.down_since_ms = now_ms;
                log::info!("Connection with master lost.");
            }
            m.state = state;
            m.last_io_ms = now_ms;
        }
    }

    /// Bytes arrived from the master.
    pub fn link_io(&mut self, now_ms: i64, transfer_read: Option<(i64, u64)>) {
        if let Some(m) = self.repl.master.as_mut() {
            m.last_io_ms = now_ms;
            if let Some((size, read)) = transfer_read {
                m.transfer_size = size;
                m.transfer_read = read;
            }
        }
    }

    /// +CONTINUE: the stream goes on from our offset, possibly under a new ID (the master
    /// was promoted meanwhile).
    pub fn link_continued(&mut self, new_replid: Option<String>, now_ms: i64) {
        if let Some(id) = new_replid.filter(|id| *id != self.repl.replid) {
            log::info!("Master replication ID changed to {id}");
            self.repl.replid2 = std::mem::replace(&mut self.repl.replid, id);
            self.repl.second_offset = self.repl.offset as i64 + 1;
            self.disconnect_replicas();
        }
        self.repl.ensure_backlog(self.cfg.int(pid("repl-backlog-size")) as u64);
        self.repl.empty_master_refused = false;
        self.repl.history_from = self.repl.master.as_ref().map(|m| (m.host.clone(), m.port));
        self.link_state(LinkState::Connected, now_ms);
        log::info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
        self.failover_link_up();
    }

    /// A full resync finished loading: the new dataset replaces the old one at once, and
    /// our history becomes the master's from `offset`.
    pub fn link_full_sync_done(
        &mut self,
        dbs: Vec<Db>,
        functions: Vec<Vec<u8>>,
        replid: String,
        offset: u64,
        now_ms: i64,
    ) {
        log::info!("MASTER <-> REPLICA sync: Flushing old data");
        // The master's libraries replace ours, as its keys replace our keys.
        if let Err(e) = self.scripts.functions_mut().restore(&functions, ferrokv_scripting::RestorePolicy::Flush) {
            log::warn!("MASTER <-> REPLICA sync: the master's functions did not load: {e}");
        }
        let mut dbs = dbs;
        for (i, db) in dbs.iter_mut().enumerate() {
            db.id = i;
        }
        self.dataset_replacing();
        let old = std::mem::replace(&mut self.dbs, dbs);
        self.host.free_later(Box::new(old));
        if self.cluster.is_some() {
            self.dbs[0].enable_slot_index(ferrokv_cluster::slot::key_slot);
        }
        self.touch_all_watched();
        if self.tracking.active() {
            self.tracking_flush(None);
        }
        self.repl.replid = replid;
        self.repl.replid2 = "0".repeat(40);
        self.repl.second_offset = -1;
        self.repl.offset = offset;
        self.repl.backlog = None;
        self.repl.cached_master = None;
        self.repl.ensure_backlog(self.cfg.int(pid("repl-backlog-size")) as u64);
        self.disconnect_replicas();
        self.dirty += 1;
        self.dataset_replaced(now_ms);
        self.repl.empty_master_refused = false;
        self.repl.started_empty = false;
        self.repl.history_from = self.repl.master.as_ref().map(|m| (m.host.clone(), m.port));
        self.link_state(LinkState::Connected, now_ms);
        log::info!("MASTER <-> REPLICA sync: Finished with success");
        self.failover_link_up();
    }

    /// The link is streaming: the master's commands run as the master client, which joins
    /// the clients table (CLIENT LIST flag `M`, `user=(superuser)`, counted in
    /// connected_clients; CLIENT KILL closes the link, which then reconnects). After a
    /// partial resync this is the cached client of the previous link; after a full sync a
    /// new one, in database 0 (the master's stream selects the database it writes to).
    pub fn connect_master_client(&mut self, conn: ConnInfo, waker: Arc<dyn Waker>, now_ms: i64) -> ClientId {
        let client = match self.repl.cached_master.take() {
            Some(mut cached) => {
                cached.conn = conn;
                cached.waker = waker;
                cached.last_interaction_ms = now_ms;
                *cached
            }
            None => self.new_master_client(conn, waker, now_ms),
        };
        let id = client.id;
        self.clients.insert(client);
        if let Some(m) = self.repl.master.as_mut() {
            m.client = Some(id);
        }
        id
    }

    fn new_master_client(&mut self, conn: ConnInfo, waker: Arc<dyn Waker>, now_ms: i64) -> Client {
        let id = self.next_client_id;
        self.next_client_id += 1;
        let mut c = Client::new(id, conn, now_ms, waker);
        c.authenticated = true;
        c.set_user("(superuser)".into()); // no ACL user: it may run anything
        c.superuser = true;
        c.repl_role = Some(ReplRole::Master);
        c
    }

    /// The link that ran as client `id` went down (lost, or killed): the client leaves the
    /// table and is kept for a partial resync, with what it was in the middle of
    /// discarded (an unfinished MULTI: its bytes were not counted as applied, so the
    /// master sends the transaction again).
    pub fn cache_master_client(&mut self, id: ClientId) {
        let Some(mut client) = self.clients.remove(id) else {
            return;
        };
        match self.repl.master.as_mut() {
            Some(m) if m.client == Some(id) => m.client = None,
            _ => return, // a link we no longer follow
        }
        log::info!("Caching the disconnected master state.");
        client.multi = None;
        client.dirty_exec = false;
        client.close_asap = false;
        client.out.clear();
        self.repl.cached_master = Some(client);
    }

    /// Runs one command of the master's stream as the master client. `offset_after` is
    /// the stream offset after this command (what a GETACK is answered with). Returns what
    /// must be written back to the master. Call [`Engine::master_stream_applied`] with the
    /// commands' exact bytes afterwards.
    pub fn master_command(&mut self, mc: &mut Client, argv: Argv, offset_after: u64, now_ms: i64) -> Option<Vec<u8>> {
        let getack = argv.len() >= 2
            && argv.get(0).eq_ignore_ascii_case(b"replconf")
            && argv.get(1).eq_ignore_ascii_case(b"getack");
        if getack {
            mc.last_cmd = "replconf";
            mc.last_interaction_ms = now_ms;
            return Some(self.ack_command(offset_after));
        }
        self.repl.applying_master_stream = true;
        self.process(mc, argv, now_ms);
        self.repl.applying_master_stream = false;
        mc.out.clear();
        let _ = mc.out.take_errors();
        None
    }

    /// The master's bytes just applied: proxied verbatim to our own replicas and backlog
    /// (what the master client ran goes to the AOF only — flush_feed knows we are a
    /// replica).
    pub fn master_stream_applied(&mut self, raw: Bytes, now_ms: i64) {
        if self.tracking.bcast_pending() {
            self.tracking_broadcast();
        }
        let ticket = self.flush_feed();
        self.repl.append(raw);
        if let Some(ticket) = ticket {
            let marks = &mut self.repl.fsync_marks;
            // Bounded: dropping the oldest mark only makes the FACK more conservative.
            if marks.len() >= 4096 {
                marks.pop_front();
            }
            marks.push_back((ticket, self.repl.offset));
        }
        self.host.replication_advanced(self.repl.offset);
        if let Some(m) = self.repl.master.as_mut() {
            m.last_io_ms = now_ms;
            m.read_offset = self.repl.offset;
        }
    }

    /// The ACK a replica sends every second: `REPLCONF ACK <offset>`, and with an AOF
    /// `FACK <offset fsynced>` as Redis 7.2 replicas send (older masters ignore it).
    pub fn replica_ack_command(&mut self) -> Vec<u8> {
        self.ack_command(self.repl.offset)
    }

    fn ack_command(&mut self, offset: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let off = offset.to_string();
        match self.fsynced_replication_offset() {
            Some(f) => {
                let f = f.min(offset).to_string();
                ferrokv_resp::encode_command(
                    &mut out,
                    [&b"REPLCONF"[..], b"ACK", off.as_bytes(), b"FACK", f.as_bytes()],
                );
            }
            None => ferrokv_resp::encode_command(&mut out, [&b"REPLCONF"[..], b"ACK", off.as_bytes()]),
        }
        out
    }

    /// The replication offset up to which the AOF is fsynced: the newest applied batch
    /// whose AOF bytes are fsynced, or everything applied when no AOF bytes are pending
    /// (PINGs and GETACKs never reach the AOF). `None` without an AOF.
    fn fsynced_replication_offset(&mut self) -> Option<u64> {
        if !self.persist.aof.enabled {
            self.repl.fsync_marks.clear();
            return None;
        }
        let Some(durable) = self.host.aof_fsync_state().1 else {
            // A first rewrite has not made the AOF whole yet: what was fsynced before stands.
            return Some(self.repl.fsynced_offset);
        };
        while let Some(&(ticket, offset)) = self.repl.fsync_marks.front() {
            if ticket > durable {
                break;
            }
            self.repl.fsynced_offset = offset;
            self.repl.fsync_marks.pop_front();
        }
        if self.repl.fsync_marks.is_empty() {
            self.repl.fsynced_offset = self.repl.offset;
        }
        Some(self.repl.fsynced_offset)
    }
}
