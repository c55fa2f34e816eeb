//! Synchronous replication: `sync-replicas N` (ferrokv's own; docs/FAILOVER.md).
//!
//! With N > 0 a master holds every reply that contains or observes a write until N
//! replicas have acknowledged the replication offset of that write. The state here is
//! pure bookkeeping; the connection task waits (outside the engine's lock) for the
//! committed offset the engine publishes through [`crate::Host::sync_committed`].
//!
//! - **Group commit.** Acknowledgements are asked for with `REPLCONF GETACK *` in the
//!   stream: after a flush that carried writes (at most one request in flight, or one a
//!   millisecond), again as soon as the acknowledgements of the last one arrived if writes
//!   came meanwhile, and every 100 ms for the lease. Every reply waiting for an offset the
//!   acknowledgements pass is released at once, whoever wrote it.
//! - **Committed offset.** The N-th highest offset acknowledged by online replicas.
//! - **Dirty reads.** Keys written since the committed offset are remembered with the
//!   offset of their write; a command that reads one (or, without keys, reads the whole
//!   keyspace: KEYS, SCAN, DBSIZE…) waits for that offset too. Clean keys are not delayed.
//! - **Lease and fencing.** A replica's acknowledgement of offset ≥ the end of a GETACK
//!   proves it was following us when that request was sent. The lease runs from the send
//!   time of the N-th most recent such proof (monotonic clock); once it has passed, the
//!   master answers data commands with an error (fenced), so a paused or partitioned
//!   master can neither acknowledge writes nor serve data once a sentinel may have
//!   promoted a replica (the sentinel waits out the lease after freezing the replicas).
//! - **Timeouts.** A reply not acknowledged within `sync-replicas-timeout` has each
//!   waiting part replaced by an `-UNACKED` error: its outcome is unknown, never OK.

use crate::client::{Client, ClientId};
use crate::commands::{spec::flags, CmdId};
use crate::engine::Engine;
use crate::replication::ReplicaState;
use ahash::AHashMap;
use ferrokv_keyspace::SmallBytes;
use ferrokv_resp::Argv;
use std::collections::VecDeque;

/// A reply's need while its write has not been flushed yet: resolved to the offset at the
/// end of the flush.
pub const PENDING: u64 = u64::MAX;

/// Lease renewal: a GETACK at least this often (ms) while the mode is on.
pub const RENEW_EVERY_MS: i64 = 100;

/// Part of a client's output that may leave only once `need` is committed.
#[derive(Clone, Copy, Debug)]
pub struct SyncSpan {
    pub start: usize,
    pub end: usize,
    pub need: u64,
    /// The history the need belongs to: after a promotion or demotion it can no longer be
    /// met here, and the span is failed.
    pub epoch: u64,
}

/// Keys written and not yet committed, with the offset that commits them.
#[derive(Default)]
struct DirtyKeys {
    latest: AHashMap<(usize, SmallBytes), u64>,
    /// The same writes in offset order, for pruning as the committed offset advances.
    order: VecDeque<(u64, usize, SmallBytes)>,
    /// A write of the whole keyspace (FLUSHALL, SWAPDB…) or of keys we cannot name.
    global: u64,
    max: u64,
}

impl DirtyKeys {
    /// A key written by a command not flushed yet: readers wait for whatever offset the
    /// flush gives it ([`PENDING`] until then).
    fn insert_pending(&mut self, db: usize, key: SmallBytes) {
        self.max = PENDING;
        self.latest.insert((db, key), PENDING);
    }

    /// The flush put the pending write of `key` at `offset`.
    fn resolve(&mut self, db: usize, key: SmallBytes, offset: u64) {
        let k = (db, key);
        if let Some(v) = self.latest.get_mut(&k) {
            if *v == PENDING {
                *v = offset;
            }
        }
        self.order.push_back((offset, k.0, k.1));
    }

    fn resolve_max(&mut self, offset: u64) {
        if self.max == PENDING {
            self.max = offset;
        }
        if self.global == PENDING {
            self.global = offset;
        }
    }

    fn observe(&self, db: usize, key: &[u8]) -> u64 {
        let key = SmallBytes::from(key);
        self.latest.get(&(db, key)).copied().unwrap_or(0).max(self.global)
    }

    fn prune(&mut self, committed: u64) {
        while self.order.front().is_some_and(|(off, _, _)| *off <= committed) {
            let Some((off, db, key)) = self.order.pop_front() else { break };
            let k = (db, key);
            if self.latest.get(&k) == Some(&off) {
                self.latest.remove(&k);
            }
        }
        if self.global <= committed {
            self.global = 0;
        }
        if self.latest.is_empty() && self.global == 0 {
            self.max = 0;
        }
    }

    fn is_clean(&self) -> bool {
        self.latest.is_empty() && self.global == 0
    }

    fn clear(&mut self) {
        *self = DirtyKeys::default();
    }
}

#[derive(Default)]
pub struct SyncState {
    /// GETACK requests in the stream: (offset of the request's last byte, monotonic ms it
    /// was sent), oldest first.
    requests: VecDeque<(u64, i64)>,
    /// A request pushed into the feed and not yet flushed: when it was asked for.
    unflushed_request: Option<i64>,
    last_request_mono: i64,
    /// The highest offset acknowledged by N online replicas (this history).
    pub committed: u64,
    /// Bumped when the history changes under waiting replies (promotion, demotion): a
    /// reply from before can no longer be committed here.
    pub epoch: u64,
    dirty: DirtyKeys,
    /// Keys written since the last flush (their offset is the flush's).
    pending_keys: Vec<(usize, SmallBytes)>,
    pending_global: bool,
    /// Clients holding a span whose need is [`PENDING`].
    pending_clients: Vec<ClientId>,
    /// The monotonic clock, as the server last passed it in (ms).
    pub mono_ms: i64,
    /// Some client got a span since startup: until then connections need not ask.
    spans_exist: bool,
    /// Round trips of GETACK requests: from the send to the first acknowledgement of each
    /// replica that covers it (µs, at the monotonic clock's ms resolution). For /metrics.
    pub ack_latency: crate::stats::LatencyHistogram,
}

impl SyncState {
    /// The last request: (the offset just before it, the offset of its last byte). A
    /// replica that acknowledged the first has everything the request asked about.
    fn last_request(&self) -> Option<(u64, u64)> {
        self.requests.back().map(|&(end, _)| (end.saturating_sub(GETACK_LEN), end))
    }
}

/// The bytes of `REPLCONF GETACK *` as the stream carries it.
const GETACK_LEN: u64 = b"*3\r\n$8\r\nREPLCONF\r\n$6\r\nGETACK\r\n$1\r\n*\r\n".len() as u64;

impl Engine {
    /// True while this server is a master in synchronous mode.
    #[inline]
    pub fn sync_active(&self) -> bool {
        self.hot.sync_replicas > 0 && self.is_master_role()
    }

    /// The server passes its monotonic clock in before running commands, acknowledgements
    /// and ticks (the lease is measured on it, never on the wall clock).
    /// True when `sync-replicas` is set (master or not): only then does the engine read
    /// the monotonic clock, so connections pass it in only then. (A CONFIG SET that turns
    /// the mode on sees the clock from the next batch or tick on, within 25 ms.)
    #[inline]
    pub fn sync_configured(&self) -> bool {
        self.hot.sync_replicas > 0
    }

    pub fn set_monotonic_now(&mut self, mono_ms: i64) {
        self.repl.sync.mono_ms = mono_ms;
    }

    /// When the lease ends: N replicas' most recent proofs (see the module doc). None:
    /// fewer than N replicas ever proved anything.
    pub fn sync_lease_until(&self) -> Option<i64> {
        let n = self.hot.sync_replicas as usize;
        let mut proofs: Vec<i64> = self
            .repl
            .replicas
            .iter()
            .filter(|r| r.state == ReplicaState::Online && r.proof_mono > 0)
            .map(|r| r.proof_mono)
            .collect();
        if n == 0 || proofs.len() < n {
            return None;
        }
        proofs.sort_unstable_by(|a, b| b.cmp(a));
        Some(proofs[n - 1] + self.hot.sync_lease_ms)
    }

    /// Replicas whose proof is within the lease (INFO `sync_replicas_acking`).
    pub fn sync_acking(&self) -> usize {
        let now = self.repl.sync.mono_ms;
        self.repl
            .replicas
            .iter()
            .filter(|r| {
                r.state == ReplicaState::Online && r.proof_mono > 0 && now <= r.proof_mono + self.hot.sync_lease_ms
            })
            .count()
    }

    /// A master in sync mode whose lease ran out answers no data command.
    #[inline]
    pub(crate) fn sync_fenced(&self) -> bool {
        // Asked for every data command: inlined so asynchronous mode pays one compare.
        self.sync_active() && self.sync_lease_expired()
    }

    fn sync_lease_expired(&self) -> bool {
        self.sync_lease_until().is_none_or(|until| self.repl.sync.mono_ms > until)
    }

    pub(crate) fn fenced_error(&self) -> String {
        format!(
            "READONLY Fenced master: fewer than {} replica(s) acknowledged it within sync-replicas-lease ({} ms); a failover may be under way, retry against the current master",
            self.hot.sync_replicas, self.hot.sync_lease_ms
        )
    }

    /// After a command ran (top level or inside EXEC): what its reply must wait for.
    /// `wrote`: it changed the dataset.
    pub(crate) fn sync_after_command(
        &mut self,
        client: &mut Client,
        cmd: CmdId,
        argv: &Argv,
        wrote: bool,
        out_before: usize,
    ) {
        let c = self.commands.get(cmd);
        let cflags = c.flags();
        let db = client.db;
        // Most commands have one key, first: no need to run the key specs for them.
        let key_positions = |c: &crate::commands::Cmd| -> Vec<usize> {
            if c.spec.keys == (1, 1, 1) && argv.len() >= 2 && c.getkeys.is_none() {
                vec![1]
            } else {
                crate::commands::getkeys::command_keys(c, argv).into_iter().map(|k| k.pos).collect()
            }
        };
        let need = if wrote {
            let keys = key_positions(c);
            let cross_db = matches!(c.name, "move" | "copy" | "swapdb" | "flushdb" | "flushall");
            let s = &mut self.repl.sync;
            if keys.is_empty() || cross_db {
                s.pending_global = true;
                s.dirty.global = PENDING;
                s.dirty.max = PENDING;
            }
            for pos in keys {
                let key = SmallBytes::from(argv.get(pos));
                s.dirty.insert_pending(db, key.clone());
                s.pending_keys.push((db, key));
            }
            PENDING
        } else if self.repl.sync.dirty.is_clean() {
            0
        } else {
            let keys = key_positions(c);
            if keys.is_empty() && cflags & (flags::READONLY | flags::WRITE) != 0 {
                self.repl.sync.dirty.max
            } else {
                keys.iter().map(|&pos| self.repl.sync.dirty.observe(db, argv.get(pos))).max().unwrap_or(0)
            }
        };
        let need = if need == PENDING || need > self.repl.sync.committed { need } else { 0 };
        client.sync_cmd_need = client.sync_cmd_need.max(need);
        if self.in_exec {
            return; // EXEC's own span covers the transaction's replies
        }
        if let Some(busy) = self.scripts.busy.as_mut().filter(|b| b.client == client.id) {
            // Its script was suspended: the reply is not whole yet and the script's writes
            // are still to come. The need stays on the client until the run ends.
            let held = client.out.len().saturating_sub(out_before);
            busy.sync_hold = Some(crate::busy::SyncHold { held, epoch: self.repl.sync.epoch });
            return;
        }
        let need = std::mem::take(&mut client.sync_cmd_need);
        if need == 0 {
            return;
        }
        if need == PENDING && !self.repl.sync.pending_clients.contains(&client.id) {
            self.repl.sync.pending_clients.push(client.id);
        }
        let epoch = self.repl.sync.epoch;
        self.repl.sync.spans_exist = true;
        client.sync_spans.push(SyncSpan { start: out_before, end: client.out.len(), need, epoch });
    }

    /// A suspended script's run ended (with the rest of its EXEC, if any): the reply, from
    /// `start` to the end of the output, waits for what its commands need. `epoch`: the
    /// history the command started in (a reply from an older one is failed).
    pub(crate) fn sync_after_script(&mut self, client: &mut Client, start: usize, epoch: u64) {
        let need = std::mem::take(&mut client.sync_cmd_need);
        if need == 0 {
            return;
        }
        if need == PENDING && !self.repl.sync.pending_clients.contains(&client.id) {
            self.repl.sync.pending_clients.push(client.id);
        }
        self.repl.sync.spans_exist = true;
        client.sync_spans.push(SyncSpan { start, end: client.out.len(), need, epoch });
    }

    /// Before the feed is flushed: asks for acknowledgements if the flush carries writes
    /// and no request is in flight (or the last went out a millisecond ago).
    pub(crate) fn sync_before_flush(&mut self, feed_has_bytes: bool) {
        if !feed_has_bytes || !self.sync_active() || self.repl.replicas.is_empty() {
            return;
        }
        let s = &self.repl.sync;
        let in_flight = s.last_request().is_some_and(|(before, _)| s.committed < before);
        if !in_flight || s.mono_ms - s.last_request_mono >= 1 {
            self.sync_push_request();
        }
    }

    fn sync_push_request(&mut self) {
        // A FAILOVER waits for the offset to stand still: nothing enters the stream.
        // A request must really be in the stream to prove anything when answered.
        if self.repl.sync.unflushed_request.is_some() || self.repl.failover.is_some() || !self.feed.enabled {
            return;
        }
        // The only open unit at a flush is a suspended script's: the request goes before
        // its writes and asks about nothing in them, and keeps the lease while it runs.
        debug_assert!(self.feed.unit_commands() == 0 || self.scripts.busy.is_some(), "inside an execution unit");
        self.feed.push_replication_only([&b"REPLCONF"[..], b"GETACK", b"*"]);
        self.repl.sync.unflushed_request = Some(self.repl.sync.mono_ms);
        self.repl.sync.last_request_mono = self.repl.sync.mono_ms;
    }

    /// After the feed was flushed (the replication offset is final for what ran): the
    /// writes' offset becomes known to the keys and replies that waited for it.
    #[inline]
    pub(crate) fn sync_after_flush(&mut self) {
        // Every flush of every connection passes here: in asynchronous mode (nothing
        // pending) it must cost a few compares, not the walk below.
        let s = &self.repl.sync;
        if s.unflushed_request.is_some()
            || s.pending_global
            || !s.pending_keys.is_empty()
            || !s.pending_clients.is_empty()
            || s.dirty.max == PENDING
            || s.dirty.global == PENDING
        {
            self.sync_resolve_flushed();
        }
    }

    fn sync_resolve_flushed(&mut self) {
        let offset = self.repl.offset;
        let s = &mut self.repl.sync;
        if let Some(sent) = s.unflushed_request.take() {
            s.requests.push_back((offset, sent));
        }
        if self.feed.unit_commands() == 0 {
            self.sync_resolve_keys(offset);
        }
        // Else a suspended script's writes wait in the open unit, not in this flush: the
        // keys stay pending until the flush after it ends (those written before it get
        // that later offset too, which only makes their readers wait longer, and nobody
        // reads meanwhile). Replies are resolved now: a span is recorded only once its
        // command's unit is closed.
        for id in self.repl.sync.pending_clients.drain(..) {
            if let Some(c) = self.clients.get_mut(id) {
                for span in c.sync_spans.iter_mut().filter(|s| s.need == PENDING) {
                    span.need = offset;
                }
            }
        }
    }

    fn sync_resolve_keys(&mut self, offset: u64) {
        let s = &mut self.repl.sync;
        s.pending_global = false;
        // drain, not take: the vectors keep their capacity from flush to flush.
        for (db, key) in s.pending_keys.drain(..) {
            s.dirty.resolve(db, key, offset);
        }
        s.dirty.resolve_max(offset);
    }

    /// A replica acknowledged `offset`: its proof of life, and maybe a new committed offset.
    pub(crate) fn sync_acked(&mut self, replica: ClientId, offset: u64) {
        let proof = self.repl.sync.requests.iter().rev().find(|&&(end, _)| end <= offset).map(|&(_, sent)| sent);
        let mut answered = None;
        if let (Some(sent), Some(r)) = (proof, self.repl.replica_mut(replica)) {
            if sent > r.proof_mono {
                answered = Some(sent);
            }
            r.proof_mono = r.proof_mono.max(sent);
        }
        if let Some(sent) = answered {
            let ms = (self.repl.sync.mono_ms - sent).max(0) as u64;
            self.repl.sync.ack_latency.record(ms * 1000);
        }
        let n = self.hot.sync_replicas as usize;
        if n == 0 {
            return;
        }
        let mut acked: Vec<u64> =
            self.repl.replicas.iter().filter(|r| r.state == ReplicaState::Online).map(|r| r.ack_offset).collect();
        if acked.len() < n {
            return;
        }
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let committed = acked[n - 1].min(self.repl.offset);
        if committed <= self.repl.sync.committed {
            return;
        }
        self.repl.sync.committed = committed;
        self.repl.sync.dirty.prune(committed);
        // Requests every replica answered are no longer needed for proofs.
        let slowest = self.repl.replicas.iter().map(|r| r.ack_offset).min().unwrap_or(0);
        while self.repl.sync.requests.len() > 1 && self.repl.sync.requests[1].0 <= slowest {
            self.repl.sync.requests.pop_front();
        }
        while self.repl.sync.requests.len() > 4096 {
            self.repl.sync.requests.pop_front();
        }
        self.host.sync_committed(self.repl.sync.epoch, committed);
        // Writes arrived after the last request: ask again now rather than at the next
        // flush, so they do not wait for other clients' traffic.
        let s = &self.repl.sync;
        if self.sync_active()
            && s.last_request().is_some_and(|(start, end)| s.committed >= start && self.repl.offset > end)
        {
            self.sync_push_request();
        }
    }

    /// The server's sync timer (every few tens of ms): a request every
    /// [`RENEW_EVERY_MS`] keeps the lease while there are no writes. The caller flushes.
    pub fn sync_tick(&mut self) {
        if self.sync_active()
            && !self.repl.replicas.is_empty()
            && self.repl.sync.mono_ms - self.repl.sync.last_request_mono >= RENEW_EVERY_MS
        {
            self.sync_push_request();
        }
    }

    /// What a client's output must wait for before it may leave: (offset, epoch, timeout
    /// in ms), or None when nothing it holds waits.
    #[inline]
    pub fn sync_requirement(&mut self, id: ClientId) -> Option<(u64, u64, i64)> {
        // Called after every batch of every connection: inlined so asynchronous mode pays
        // one compare.
        if !self.repl.sync.spans_exist {
            return None;
        }
        self.sync_requirement_of(id)
    }

    fn sync_requirement_of(&mut self, id: ClientId) -> Option<(u64, u64, i64)> {
        let (committed, epoch) = (self.repl.sync.committed, self.repl.sync.epoch);
        let c = self.clients.get(id)?;
        if c.sync_spans.is_empty() {
            return None;
        }
        if c.sync_spans.iter().any(|s| s.epoch != epoch) {
            // Waited for in a history that is gone (promotion, demotion): failed now.
            self.fail_spans(id, |s| s.epoch != epoch);
        }
        let c = self.clients.get_mut(id)?;
        let need = c.sync_spans.iter().map(|s| s.need).max().unwrap_or(0);
        if need <= committed {
            c.sync_spans.clear();
            return None;
        }
        Some((need, self.repl.sync.epoch, self.hot.sync_timeout_ms))
    }

    /// The wait for a client's output is over: `committed` is what was reached in `epoch`.
    /// Every part still waiting is replaced by the `-UNACKED` error.
    pub fn sync_finish(&mut self, id: ClientId, epoch: u64, committed: u64) {
        let current = self.repl.sync.epoch;
        self.fail_spans(id, |s| epoch != current || s.epoch != current || s.need > committed);
        if let Some(c) = self.clients.get_mut(id) {
            c.sync_spans.clear();
        }
    }

    /// Replaces the spans of a client's output that `failed` selects with the `-UNACKED`
    /// error, and forgets them.
    fn fail_spans(&mut self, id: ClientId, failed: impl Fn(&SyncSpan) -> bool) {
        let n = self.hot.sync_replicas;
        let timeout = self.hot.sync_timeout_ms;
        let Some(c) = self.clients.get_mut(id) else { return };
        let (bad, kept): (Vec<SyncSpan>, Vec<SyncSpan>) = c.sync_spans.iter().partition(|s| failed(s));
        if bad.is_empty() {
            return;
        }
        let error = format!(
            "-UNACKED Not acknowledged by {n} replica(s) within sync-replicas-timeout ({timeout} ms): the outcome of the writes this reply contains or observes is unknown\r\n"
        );
        let ranges: Vec<(usize, usize)> = bad.iter().map(|s| (s.start, s.end)).collect();
        let before = c.out.len();
        c.out.replace_spans(&ranges, error.as_bytes());
        // Later spans moved with the replacement.
        let mut kept = kept;
        let shift = |pos: usize| -> isize {
            ranges.iter().filter(|&&(_, end)| end <= pos).map(|&(a, b)| error.len() as isize - (b - a) as isize).sum()
        };
        for s in kept.iter_mut() {
            let d = shift(s.start);
            s.start = (s.start as isize + d) as usize;
            s.end = (s.end as isize + d) as usize;
        }
        debug_assert!(c.out.len() as isize - before as isize == shift(usize::MAX));
        c.sync_spans = kept;
        self.stats.sync_unacked_replies += bad.len() as u64;
    }

    /// The history changed (promotion, demotion, a full resync): replies waiting for
    /// acknowledgements of the old one are failed, and the new one starts committed at
    /// what the dataset holds now.
    pub(crate) fn sync_reset(&mut self) {
        let s = &mut self.repl.sync;
        s.epoch += 1;
        s.committed = self.repl.offset;
        s.requests.clear();
        s.unflushed_request = None;
        s.dirty.clear();
        s.pending_keys.clear();
        s.pending_global = false;
        self.host.sync_committed(s.epoch, s.committed);
        // Waiting replies are failed when their connections look (their span epochs are old).
    }

    /// ferrokv's INFO replication fields for this mode.
    pub(crate) fn info_sync(&self, s: &mut String) {
        use std::fmt::Write;
        if !self.is_master_role() {
            let _ = write!(
                s,
                "sync_frozen:{}\r\nempty_master_refused:{}\r\n",
                self.repl.frozen_until.is_some() as i32,
                self.repl.empty_master_refused as i32
            );
        } else {
            let _ = write!(
                s,
                "sync_replicas:{}\r\nsync_replicas_lease_ms:{}\r\nsync_replicas_acking:{}\r\nsync_committed_offset:{}\r\nsync_fenced:{}\r\n",
                self.hot.sync_replicas,
                self.hot.sync_lease_ms,
                self.sync_acking(),
                self.repl.sync.committed,
                self.sync_fenced() as i32
            );
            let _ = write!(s, "sync_unacked_replies:{}\r\n", self.stats.sync_unacked_replies);
        }
    }
}
