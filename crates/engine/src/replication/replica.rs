//! The replica's side: following a master (REPLICAOF), adopting its history after a full
//! or partial resync, executing its stream as the master client, and promotion.

use super::{LinkState, MasterLink};
use crate::client::{Client, ConnInfo, ReplRole, Transport, Waker};
use crate::engine::Engine;
use bytes::Bytes;
use ferrokv_config::{pid, Val};
use ferrokv_keyspace::Db;
use ferrokv_resp::Argv;
use std::sync::Arc;

struct NoWaker;

impl Waker for NoWaker {
    fn wake(&self) {}
}

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
            log::info!("Before turning into a replica, using my own master parameters to synthesize a cached master: I may be able to synchronize with the new master with just a partial transfer.");
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
        });
        self.hot.replica = true;
        self.cfg.set_internal(pid("replicaof"), Val::ReplicaOf(Some((host.to_string(), port))));
        self.unblock_replication_waiters();
        self.repl.fsync_marks.clear();
        self.disconnect_replicas();
        self.update_feed_enabled();
        self.host.master_changed(MasterChange::Follow(host.to_string(), port));
    }

    /// REPLICAOF NO ONE: become a master, starting a new history that keeps the old one's
    /// ID as `replid2` so the other replicas of the old master continue with us.
    pub fn promote(&mut self) {
        if self.repl.master.take().is_none() {
            return;
        }
        self.repl.shift_replid(&mut self.rng);
        self.hot.replica = false;
        self.cfg.set_internal(pid("replicaof"), Val::ReplicaOf(None));
        self.repl.ensure_backlog(self.cfg.int(pid("repl-backlog-size")) as u64);
        // Sub-replicas learn the new ID by reconnecting (they continue partially).
        self.disconnect_replicas();
        self.update_feed_enabled();
        self.feed.reset_db();
        self.host.master_changed(MasterChange::Stop);
    }

    fn disconnect_replicas(&mut self) {
        for id in self.repl.replicas.iter().map(|r| r.id).collect::<Vec<_>>() {
            self.detach_id(id);
        }
    }

    /// Replication info read from the RDB loaded at startup: a master keeps serving that
    /// history (its replicas may continue), a replica asks its master to continue it.
    pub fn restore_replication_info(&mut self, replid: &str, offset: u64) {
        if replid.len() != 40 {
            return;
        }
        self.repl.replid = replid.to_string();
        self.repl.offset = offset;
        self.repl.backlog = None;
        if self.configured_master().is_none() {
            self.repl.replid2 = replid.to_string();
            self.repl.second_offset = offset as i64 + 1;
        }
        self.repl.ensure_backlog(self.cfg.int(pid("repl-backlog-size")) as u64);
        self.update_feed_enabled();
        log::info!("Restored replication ID and offset from the RDB: {replid}:{offset}");
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
        self.link_state(LinkState::Connected, now_ms);
        log::info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
        self.failover_link_up();
    }

    /// A full resync finished loading: the new dataset replaces the old one at once, and
    /// our history becomes the master's from `offset`.
    pub fn link_full_sync_done(&mut self, dbs: Vec<Db>, replid: String, offset: u64, now_ms: i64) {
        log::info!("MASTER <-> REPLICA sync: Flushing old data");
        let mut dbs = dbs;
        for (i, db) in dbs.iter_mut().enumerate() {
            db.id = i;
        }
        self.dataset_replacing();
        let old = std::mem::replace(&mut self.dbs, dbs);
        self.host.free_later(Box::new(old));
        self.touch_all_watched();
        self.repl.replid = replid;
        self.repl.replid2 = "0".repeat(40);
        self.repl.second_offset = -1;
        self.repl.offset = offset;
        self.repl.backlog = None;
        self.repl.master_db = 0;
        self.repl.ensure_backlog(self.cfg.int(pid("repl-backlog-size")) as u64);
        self.disconnect_replicas();
        self.dirty += 1;
        self.dataset_replaced(now_ms);
        self.link_state(LinkState::Connected, now_ms);
        log::info!("MASTER <-> REPLICA sync: Finished with success");
        self.failover_link_up();
    }

    /// The client the master's stream runs as.
    pub fn master_client(&self, now_ms: i64) -> Client {
        let conn =
            ConnInfo { addr: String::new(), laddr: String::new(), fd: -1, transport: Transport::Tcp, local: false };
        let mut c = Client::new(u64::MAX - 1, conn, now_ms, Arc::new(NoWaker));
        c.authenticated = true;
        c.repl_role = Some(ReplRole::Master);
        c.db = self.repl.master_db.min(self.dbs.len().saturating_sub(1));
        c
    }

    /// Runs one command of the master's stream as the master client. `offset_before` is
    /// the stream offset before this command (what a GETACK is answered with). Returns what
    /// must be written back to the master. Call [`Engine::master_stream_applied`] with the
    /// commands' exact bytes afterwards.
    pub fn master_command(&mut self, mc: &mut Client, argv: Argv, offset_before: u64, now_ms: i64) -> Option<Vec<u8>> {
        let getack = argv.len() >= 2
            && argv.get(0).eq_ignore_ascii_case(b"replconf")
            && argv.get(1).eq_ignore_ascii_case(b"getack");
        if getack {
            return Some(self.ack_command(offset_before));
        }
        self.process(mc, argv, now_ms);
        self.repl.master_db = mc.db;
        mc.out.clear();
        let _ = mc.out.take_errors();
        None
    }

    /// The master's bytes just applied: proxied verbatim to our own replicas and backlog
    /// (what the master client ran goes to the AOF only — flush_feed knows we are a
    /// replica).
    pub fn master_stream_applied(&mut self, raw: Bytes, now_ms: i64) {
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
