//! Clients blocked on keys (BLPOP, BLMOVE, BZPOPMIN…).
//!
//! A blocking command that finds nothing to serve asks to block ([`Ctx::block`]). The
//! client then waits, its later pipelined requests queued behind it, until one of:
//! - a write makes one of its keys ready ([`Ctx::signal_ready`]: pushes, and every command
//!   that puts a value under a key name — RENAME, COPY, MOVE — as Redis's `dbAdd` does;
//!   SWAPDB signals every waited-on key that exists after the swap);
//! - its timeout passes (the connection task calls [`Engine::block_timeout`]);
//! - it is killed or disconnects.
//!
//! **Serving.** After every top-level command (or EXEC) the ready keys are taken in the
//! order they were signalled. For each key, the clients blocked on it are visited in
//! arrival order (first blocked, first served); a client waiting for another type is
//! skipped, and the round for that key ends once it is empty or gone. A served client
//! re-runs its own command with the key that became ready attached to its [`Ctx`]
//! ([`Ctx::ready_key`]). That is how ferrokv reproduces Redis 7.0, which serves a waiter
//! *from the ready key*: the command then looks at that key only
//! ([`Ctx::blocking_candidates`]), so another of its keys that now holds the wrong type,
//! or that also received data but was signalled later, plays no part. Because the command
//! itself runs, the pop is replied, counted and propagated (as the non-blocking twin)
//! exactly as on a first call. Serving may make further keys ready (BLMOVE pushes); those
//! are served in the same round.
//!
//! **Adopting it in a command family** (sorted sets: BZPOPMIN/BZPOPMAX/BZMPOP):
//! 1. when nothing is available and [`Ctx::can_block`], call [`Ctx::block`] with the
//!    keys and `wants` = the type the keys must hold (non-empty) to serve;
//! 2. iterate the keys with [`Ctx::blocking_candidates`] rather than over all of them;
//! 3. have the pushes of the family (ZADD, ZUNIONSTORE creating a key…) call
//!    [`Ctx::signal_ready`];
//! 4. if the propagated form differs when served (BLMOVE's lowercase direction words),
//!    test [`Ctx::ready_key`].
//!
//! A key that is deleted or changes type does not wake anyone: clients keep waiting for a
//! value of the type they want, as in Redis 7.0.
//!
//! **Streams** (XREAD, XREADGROUP with BLOCK) wait for entries after an ID, so a served
//! reader may find nothing new (an XADD below its ID) and block again: it keeps its first
//! deadline and its place in each key's queue, as Redis leaves it blocked in place. An
//! XREAD waits with the IDs its `$` stood for written into the command it re-runs
//! ([`BlockRequest::argv`]).
//!
//! [`Ctx`]: crate::ctx::Ctx
//! [`Ctx::block`]: crate::ctx::Ctx::block
//! [`Ctx::signal_ready`]: crate::ctx::Ctx::signal_ready
//! [`Ctx::ready_key`]: crate::ctx::Ctx::ready_key
//! [`Ctx::blocking_candidates`]: crate::ctx::Ctx::blocking_candidates
//! [`Ctx::can_block`]: crate::ctx::Ctx::can_block

use crate::client::{Client, ClientId};
use crate::commands::CmdId;
use crate::engine::Engine;
use ferrokv_keyspace::{SmallBytes, ValueType};
use ferrokv_resp::Argv;
use std::collections::{HashMap, HashSet, VecDeque};

/// What a client gets when its blocking command times out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutReply {
    /// `*-1` (BLPOP, BRPOP, BLMPOP, BZPOPMIN…).
    NullArray,
    /// `$-1` (BLMOVE, BRPOPLPUSH).
    NullBulk,
    /// WAIT: the number of replicas that acknowledged `offset` (also the early answer once
    /// `needed` of them did).
    ReplicaCount { offset: u64, needed: usize },
    /// WAITAOF: `[local, replicas]` — whether the local AOF fsynced feed offset `ticket`,
    /// and how many replicas fsynced replication offset `offset`.
    AofCount { ticket: u64, offset: u64, numlocal: bool, needed: usize },
    /// SHUTDOWN waiting for replicas: no timeout of its own (the shutdown's wait ends it).
    Shutdown,
}

/// Why and until when a client is blocked.
#[derive(Clone, Debug)]
pub struct Blocked {
    pub db: usize,
    pub keys: Vec<SmallBytes>,
    /// Unix ms; None waits forever.
    pub deadline_ms: Option<i64>,
    /// The type a key must hold (non-empty) for the command to proceed.
    pub wants: ValueType,
    pub cmd: CmdId,
    pub argv: Argv,
    pub timeout_reply: TimeoutReply,
}

/// A block requested by a command handler, registered by the engine after it returns.
#[derive(Clone, Debug)]
pub struct BlockRequest {
    pub keys: Vec<SmallBytes>,
    pub deadline_ms: Option<i64>,
    pub wants: ValueType,
    pub timeout_reply: TimeoutReply,
    /// The command to re-run when served, if not the one received (XREAD waits with the
    /// IDs its `$` stood for when it blocked).
    pub argv: Option<Argv>,
}

#[derive(Default)]
pub struct BlockingTable {
    /// Clients waiting on each (db, key), in arrival order.
    waiting: HashMap<(usize, SmallBytes), VecDeque<ClientId>>,
    /// Keys that received data since the last serving round, in signal order.
    ready: VecDeque<(usize, SmallBytes)>,
    ready_set: HashSet<(usize, SmallBytes)>,
    /// Clients blocked now (on keys, WAIT, WAITAOF…): lets the replication path skip
    /// looking for WAIT clients at every acknowledgement when there are none.
    pub(crate) blocked: usize,
}

impl BlockingTable {
    pub fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Number of keys with at least one client blocked on them.
    pub fn keys(&self) -> usize {
        self.waiting.len()
    }

    fn add(&mut self, db: usize, keys: &[SmallBytes], id: ClientId) {
        for k in keys {
            let q = self.waiting.entry((db, k.clone())).or_default();
            if !q.contains(&id) {
                q.push_back(id);
            }
        }
    }

    fn remove(&mut self, db: usize, keys: &[SmallBytes], id: ClientId) {
        for k in keys {
            let slot = (db, k.clone());
            if let Some(q) = self.waiting.get_mut(&slot) {
                q.retain(|&c| c != id);
                if q.is_empty() {
                    self.waiting.remove(&slot);
                }
            }
        }
    }

    /// Notes that `key` may now serve blocked clients.
    pub fn signal(&mut self, db: usize, key: &[u8]) {
        if self.waiting.is_empty() {
            return;
        }
        let slot = (db, SmallBytes::from(key));
        if self.waiting.contains_key(&slot) && self.ready_set.insert(slot.clone()) {
            self.ready.push_back(slot);
        }
    }

    /// Where client `id` stands in the queue of each of `keys`.
    fn places(&self, db: usize, keys: &[SmallBytes], id: ClientId) -> Vec<(SmallBytes, usize)> {
        keys.iter()
            .filter_map(|k| {
                let q = self.waiting.get(&(db, k.clone()))?;
                Some((k.clone(), q.iter().position(|&c| c == id)?))
            })
            .collect()
    }

    /// Puts client `id` back where [`BlockingTable::places`] found it.
    fn restore_places(&mut self, db: usize, places: &[(SmallBytes, usize)], id: ClientId) {
        for (k, at) in places {
            if let Some(q) = self.waiting.get_mut(&(db, k.clone())) {
                q.retain(|&c| c != id);
                q.insert((*at).min(q.len()), id);
            }
        }
    }

    /// The clients blocked on (db, key), in arrival order.
    fn waiters(&self, db: usize, key: &SmallBytes) -> Vec<ClientId> {
        self.waiting.get(&(db, key.clone())).map(|q| q.iter().copied().collect()).unwrap_or_default()
    }

    /// The keys of `db` that clients wait on, sorted so that rescans are reproducible.
    fn keys_in_db(&self, db: usize) -> Vec<SmallBytes> {
        let mut keys: Vec<SmallBytes> = self.waiting.keys().filter(|(d, _)| *d == db).map(|(_, k)| k.clone()).collect();
        keys.sort_unstable_by(|a, b| a.as_slice().cmp(b.as_slice()));
        keys
    }
}

impl Engine {
    /// Registers a client as blocked (called after its command asked to block).
    pub(crate) fn block_client(&mut self, client: &mut Client, req: BlockRequest, cmd: CmdId, argv: &Argv) {
        self.blocking.add(client.db, &req.keys, client.id);
        if client.blocked.is_none() {
            self.blocking.blocked += 1;
        }
        client.blocked = Some(Blocked {
            db: client.db,
            keys: req.keys,
            deadline_ms: req.deadline_ms,
            wants: req.wants,
            cmd,
            argv: req.argv.unwrap_or_else(|| argv.clone()),
            timeout_reply: req.timeout_reply,
        });
    }

    /// Forgets a client's block without replying.
    pub(crate) fn unblock(&mut self, client: &mut Client) -> Option<Blocked> {
        let b = client.blocked.take()?;
        self.blocking.blocked -= 1;
        self.blocking.remove(b.db, &b.keys, client.id);
        Some(b)
    }

    /// Times a client out if its deadline has passed: the timeout reply is written and the
    /// client may run its queued requests again. Returns true if it was unblocked.
    pub fn block_timeout(&mut self, id: ClientId, now_ms: i64) -> bool {
        let Some(mut c) = self.clients.take(id) else { return false };
        let due = c.blocked.as_ref().is_some_and(|b| b.deadline_ms.is_some_and(|d| d <= now_ms));
        if due {
            let out_before = c.out.len();
            if let Some(b) = self.unblock(&mut c) {
                self.reply_timed_out(&mut c, b.timeout_reply);
                crate::reply_mode::settle(&mut c, out_before, false);
            }
        }
        self.clients.put(c);
        due
    }

    fn reply_timed_out(&mut self, c: &mut Client, reply: TimeoutReply) {
        match reply {
            TimeoutReply::NullArray => c.out.null_array(),
            TimeoutReply::NullBulk => c.out.null(),
            TimeoutReply::ReplicaCount { offset, .. } => c.out.int(self.replicas_acked(offset) as i64),
            TimeoutReply::AofCount { ticket, offset, .. } => self.reply_aof_count(c, ticket, offset),
            TimeoutReply::Shutdown => {}
        }
    }

    /// CLIENT UNBLOCK: ends client `id`'s block as if it timed out, or with an error.
    /// Returns false if it is not blocked or is a SHUTDOWN waiting for its replicas, which
    /// has no timeout to fake (Redis 7.0 cannot unblock it either).
    pub(crate) fn unblock_on_request(&mut self, id: ClientId, as_error: bool) -> bool {
        let Some(mut c) = self.clients.take(id) else { return false };
        let unblockable = c.blocked.as_ref().is_some_and(|b| b.timeout_reply != TimeoutReply::Shutdown);
        if unblockable {
            let out_before = c.out.len();
            if let Some(b) = self.unblock(&mut c) {
                if as_error {
                    c.out.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
                } else {
                    self.reply_timed_out(&mut c, b.timeout_reply);
                }
                crate::reply_mode::settle(&mut c, out_before, false);
            }
            c.waker.wake();
        }
        self.clients.put(c);
        unblockable
    }

    /// The deadline of a blocked client (None: not blocked or no timeout).
    pub fn block_deadline(&self, id: ClientId) -> Option<Option<i64>> {
        self.clients.get(id).and_then(|c| c.blocked.as_ref().map(|b| b.deadline_ms))
    }

    /// Signals every key of `db` that clients wait on and that now exists (SWAPDB, as
    /// Redis's scanDatabaseForReadyKeys): the swap may have brought their data.
    pub(crate) fn signal_existing_keys(&mut self, db: usize, now_ms: i64) {
        for key in self.blocking.keys_in_db(db) {
            if self.dbs[db].peek(&key, now_ms).is_some() {
                self.blocking.signal(db, &key);
            }
        }
    }

    /// The type of the value at `key` if it could serve a waiter: non-empty, or a stream
    /// (whose group may have gone, which a waiting XREADGROUP is told).
    fn ready_type(&self, db: usize, key: &[u8], now_ms: i64) -> Option<ValueType> {
        self.dbs[db]
            .peek(key, now_ms)
            .filter(|o| o.value.elements() > 0 || o.value.value_type() == ValueType::Stream)
            .map(|o| o.value.value_type())
    }

    /// Serves clients blocked on keys that became ready, in key-signal order and, per key,
    /// in blocking order (see the module documentation).
    pub(crate) fn serve_ready_keys(&mut self, now_ms: i64) {
        while let Some((db, key)) = self.blocking.ready.pop_front() {
            self.blocking.ready_set.remove(&(db, key.clone()));
            // Serving never blocks anyone new, so the queue cannot grow meanwhile; a
            // snapshot lets a client waiting for another type be skipped, not stop the round.
            for id in self.blocking.waiters(db, &key) {
                let Some(ty) = self.ready_type(db, &key, now_ms) else { break };
                let Some(mut c) = self.clients.take(id) else {
                    // A client that vanished without unregistering: drop it from the queue.
                    self.blocking.remove(db, std::slice::from_ref(&key), id);
                    continue;
                };
                if c.blocked.as_ref().is_none_or(|b| b.wants != ty) {
                    self.clients.put(c);
                    continue;
                }
                // A blocked client runs nothing else, so it is still in the db it blocked in.
                let places = self.blocking.places(db, c.blocked.as_ref().map_or(&[], |b| &b.keys[..]), id);
                if let Some(b) = self.unblock(&mut c) {
                    self.call_inner(&mut c, b.cmd, &b.argv, now_ms, Some(key.clone()));
                    // A stream reader served nothing new blocks again: its timeout still
                    // runs from when it first blocked, and it keeps its place in line.
                    if let Some(again) = c.blocked.as_mut() {
                        again.deadline_ms = b.deadline_ms;
                        self.blocking.restore_places(db, &places, id);
                    }
                    self.feed.end_unit(false);
                    c.waker.wake();
                }
                self.clients.put(c);
            }
        }
    }

    /// Clients blocked on keys or postponed by CLIENT PAUSE (INFO `blocked_clients`; Redis
    /// counts both), and those of them with a timeout (`clients_in_timeout_table`).
    pub fn blocked_counts(&self) -> (usize, usize) {
        let (mut blocked, mut timed) = (0, 0);
        for c in self.clients.iter() {
            if let Some(b) = &c.blocked {
                blocked += 1;
                timed += b.deadline_ms.is_some() as usize;
            } else if self.is_postponed(c.id) {
                blocked += 1;
            }
        }
        (blocked, timed)
    }
}
