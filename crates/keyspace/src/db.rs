//! One numbered database: the key table, the table of expiry times for volatile keys, and
//! the expiry rules.
//!
//! Expiry follows Redis: a key past its expiry time is invisible to every read; on a
//! master it is deleted when touched (lazy expiry) or found by the active expiry scan, and
//! every such deletion is queued in [`Db::take_expired`] so the engine can propagate a DEL,
//! fire the `expired` notification and count it. A replica never deletes on its own (its
//! master sends the DEL) but hides expired keys all the same.

use crate::dict::{Dict, Entry, VacantEntry};
use crate::slot_index::{SlotFn, SlotIndex};
use crate::smallbytes::SmallBytes;
use crate::snapshot::{self, DbSnapshot, Preserved, Retired};
use crate::value::Obj;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Keys deleted by expiry in any database of the process and not yet taken. The engine
/// looks at this one word after every command instead of at each of its 16 databases
/// (~150 instructions and a cache line per database, twice per script run). Several
/// servers in one process (tests) only make it over-count for the others: they then
/// look at their databases, as before.
static EXPIRED_PENDING: AtomicUsize = AtomicUsize::new(0);

/// False when no database of the process has expired keys waiting for
/// [`Db::take_expired`].
#[inline]
pub fn any_expired_pending() -> bool {
    EXPIRED_PENDING.load(Ordering::Relaxed) != 0
}

/// The time and role a lookup runs under.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// Unix time in milliseconds (fixed for the duration of one command).
    pub now_ms: i64,
    /// Masters delete expired keys; replicas only hide them.
    pub master: bool,
}

pub struct Db {
    pub id: usize,
    keys: Dict<Obj>,
    /// Absolute expiry (unix ms) of every volatile key.
    expires: Dict<i64>,
    /// Keys deleted because they expired, not yet reported to the engine.
    expired: Vec<SmallBytes>,
    /// Where the active expiry scan resumes in `expires`.
    expires_cursor: u64,
    /// Running average TTL of sampled volatile keys (INFO keyspace `avg_ttl`).
    pub avg_ttl: i64,
    /// Set while a snapshot runs: every change first preserves the old value of a key the
    /// snapshot has not recorded yet (see [`crate::snapshot`]).
    snap: Option<Box<DbSnapshot>>,
    /// Cluster mode: the keys of each hash slot (None standalone).
    slots: Option<Box<SlotIndex>>,
}

/// A key looked up for writing.
pub enum DbEntry<'a> {
    /// Stored. `live` is false for a key a replica hides because it is logically expired
    /// (it stays stored until the master's DEL).
    Occupied {
        obj: &'a mut Obj,
        live: bool,
    },
    Vacant(DbVacant<'a>),
}

/// An absent key, ready to be created with the epoch stamp snapshots rely on.
pub struct DbVacant<'a>(VacantEntry<'a, Obj>, Option<&'a mut SlotIndex>, &'a [u8]);

impl DbVacant<'_> {
    pub fn insert(self, mut obj: Obj) {
        obj.version = snapshot::current_epoch();
        self.0.insert(obj);
        if let Some(index) = self.1 {
            index.added(self.2);
        }
    }
}

/// What one active-expiry step found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireStep {
    pub sampled: usize,
    pub expired: usize,
    /// The scan of the expires table wrapped around.
    pub completed: bool,
}

impl Db {
    pub fn new(id: usize) -> Db {
        Db {
            id,
            keys: Dict::new(),
            expires: Dict::new(),
            expired: Vec::new(),
            expires_cursor: 0,
            avg_ttl: 0,
            snap: None,
            slots: None,
        }
    }

    /// Cluster mode: starts keeping the per-slot index (of the keys already stored, too).
    pub fn enable_slot_index(&mut self, slot_of: SlotFn) {
        let mut index = SlotIndex::new(slot_of);
        for (key, _) in self.keys.iter() {
            index.added(key);
        }
        self.slots = Some(Box::new(index));
    }

    /// The per-slot index, in cluster mode.
    pub fn slot_index(&self) -> Option<&SlotIndex> {
        self.slots.as_deref()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bucket statistics of the key table and of the expires table (DEBUG HTSTATS).
    pub fn table_stats(&self) -> (Vec<crate::dict::TableStats>, Vec<crate::dict::TableStats>) {
        (self.keys.table_stats(), self.expires.table_stats())
    }

    pub fn expires_len(&self) -> usize {
        self.expires.len()
    }

    fn is_expired(&self, key: &[u8], now_ms: i64) -> bool {
        !self.expires.is_empty() && self.expires.get(key).is_some_and(|&when| when < now_ms)
    }

    fn delete_expired(&mut self, key: &[u8]) {
        if let Some((k, obj)) = self.keys.remove_entry(key) {
            if let Some(index) = self.slots.as_deref_mut() {
                index.removed(key);
            }
            let expire = self.expires.remove(key);
            self.retire(&k, obj, expire);
            self.expired.push(k);
            EXPIRED_PENDING.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Called before a stored key is changed in place: a snapshot in progress that has not
    /// recorded it yet gets a copy of its current value.
    #[inline]
    fn before_change(&mut self, key: &[u8]) {
        if self.snap.is_some() {
            self.preserve_copy(key);
        }
    }

    #[cold]
    fn preserve_copy(&mut self, key: &[u8]) {
        let (Some(s), Some(obj)) = (self.snap.as_deref_mut(), self.keys.get_mut(key)) else {
            return;
        };
        if s.pending(obj) {
            obj.version = s.epoch;
            let expire = self.expires.get(key).copied();
            s.preserved.push(Preserved { db: s.snap_db, key: SmallBytes::from(key), obj: obj.clone(), expire });
        }
    }

    /// Disposes of an object just unlinked from the table: a snapshot that still needs it
    /// takes it (the caller gets an empty stand-in), otherwise it goes back to the caller.
    fn retire(&mut self, key: &[u8], obj: Obj, expire: Option<i64>) -> Obj {
        match self.snap.as_deref_mut() {
            Some(s) if s.pending(&obj) => {
                let db = s.snap_db;
                s.preserved.push(Preserved { db, key: SmallBytes::from(key), obj, expire });
                Obj::stand_in()
            }
            _ => obj,
        }
    }

    /// Looks a key up for reading or writing, applying lazy expiry.
    pub fn lookup(&mut self, key: &[u8], clock: Clock) -> Option<&mut Obj> {
        if self.is_expired(key, clock.now_ms) {
            if clock.master {
                self.delete_expired(key);
            }
            return None;
        }
        self.keys.get_mut(key)
    }

    /// Looks a key up to change it in place: [`Db::lookup`], and a snapshot in progress
    /// preserves the current value first.
    pub fn lookup_mut(&mut self, key: &[u8], clock: Clock) -> Option<&mut Obj> {
        if self.snap.is_some() {
            self.lookup(key, clock)?;
            self.preserve_copy(key);
        }
        self.lookup(key, clock)
    }

    /// Looks a key up for a write that may create it (SET and friends): lazy expiry as in
    /// [`Db::lookup`], one hash computation whether the key exists or not.
    pub fn entry<'a>(&'a mut self, key: &'a [u8], clock: Clock) -> DbEntry<'a> {
        if self.is_expired(key, clock.now_ms) && clock.master {
            self.delete_expired(key);
        }
        let live = clock.master || !self.is_expired(key, clock.now_ms);
        self.before_change(key);
        match self.keys.entry(key) {
            Entry::Occupied(obj) => DbEntry::Occupied { obj, live },
            Entry::Vacant(v) => DbEntry::Vacant(DbVacant(v, self.slots.as_deref_mut(), key)),
        }
    }

    /// Starts loading the memory a lookup of a key with hash `h` will touch (first stage:
    /// the bucket; second stage: the node). See [`Dict::prefetch_bucket`].
    pub fn prefetch(&self, h: u64, stage: u8) {
        if stage == 0 {
            self.keys.prefetch_bucket(h);
        } else {
            self.keys.prefetch_node(h);
        }
    }

    /// Reads a key without side effects (expired keys are hidden, not deleted).
    pub fn peek(&self, key: &[u8], now_ms: i64) -> Option<&Obj> {
        if self.is_expired(key, now_ms) {
            return None;
        }
        self.keys.get(key)
    }

    /// Like [`Db::lookup`] but only answers whether the key exists.
    pub fn exists(&mut self, key: &[u8], clock: Clock) -> bool {
        self.lookup(key, clock).is_some()
    }

    /// Stores `obj` under `key`, replacing any value. The TTL is cleared unless
    /// `keep_ttl`. Returns the previous object (a stand-in while a snapshot needs it).
    pub fn set(&mut self, key: &[u8], mut obj: Obj, keep_ttl: bool) -> Option<Obj> {
        obj.version = snapshot::current_epoch();
        let old_expire = if self.snap.is_some() { self.expire_at(key) } else { None };
        if !keep_ttl && !self.expires.is_empty() {
            self.expires.remove(key);
        }
        match self.keys.get_mut(key) {
            Some(slot) => {
                let old = std::mem::replace(slot, obj);
                Some(self.retire(key, old, old_expire))
            }
            None => {
                self.keys.insert_new(SmallBytes::from(key), obj);
                if let Some(index) = self.slots.as_deref_mut() {
                    index.added(key);
                }
                None
            }
        }
    }

    /// Sizes the key and expire tables for a load (RESIZEDB). The counts come from a
    /// file, so they are capped: a hostile file must not reserve gigabytes.
    pub fn reserve(&mut self, keys: u64, expires: u64) {
        const CAP: u64 = 1 << 20;
        self.keys.reserve(keys.min(CAP) as usize);
        self.expires.reserve(expires.min(CAP) as usize);
    }

    /// Adds a key the caller knows to be absent (it just looked it up).
    pub fn add(&mut self, key: &[u8], mut obj: Obj) {
        obj.version = snapshot::current_epoch();
        self.keys.insert_new(SmallBytes::from(key), obj);
        if let Some(index) = self.slots.as_deref_mut() {
            index.added(key);
        }
    }

    /// Deletes a key and its TTL. Returns the object, or an empty stand-in while a
    /// snapshot needs the old value (use [`Db::take`] to move a value elsewhere).
    pub fn remove(&mut self, key: &[u8]) -> Option<Obj> {
        let obj = self.keys.remove(key)?;
        if let Some(index) = self.slots.as_deref_mut() {
            index.removed(key);
        }
        let expire = if self.expires.is_empty() { None } else { self.expires.remove(key) };
        Some(self.retire(key, obj, expire))
    }

    /// Removes `key` and returns it with its object and TTL (RENAME, MOVE).
    pub fn take(&mut self, key: &[u8]) -> Option<(SmallBytes, Obj, Option<i64>)> {
        self.before_change(key);
        let (k, obj) = self.keys.remove_entry(key)?;
        if let Some(index) = self.slots.as_deref_mut() {
            index.removed(key);
        }
        let ttl = self.expires.remove(key);
        Some((k, obj, ttl))
    }

    pub fn expire_at(&self, key: &[u8]) -> Option<i64> {
        if self.expires.is_empty() {
            return None;
        }
        self.expires.get(key).copied()
    }

    /// Sets the absolute expiry of an existing key.
    pub fn set_expire(&mut self, key: &[u8], when_ms: i64) {
        debug_assert!(self.keys.contains_key(key));
        self.before_change(key);
        match self.expires.get_mut(key) {
            Some(w) => *w = when_ms,
            None => self.expires.insert_new(SmallBytes::from(key), when_ms),
        }
    }

    /// Makes a key persistent. Returns true if it had a TTL.
    pub fn remove_expire(&mut self, key: &[u8]) -> bool {
        if self.expires.is_empty() {
            return false;
        }
        self.before_change(key);
        self.expires.remove(key).is_some()
    }

    /// Keys deleted by expiry since the last call, in deletion order.
    pub fn take_expired(&mut self) -> Vec<SmallBytes> {
        EXPIRED_PENDING.fetch_sub(self.expired.len(), Ordering::Relaxed);
        std::mem::take(&mut self.expired)
    }

    pub fn has_expired_pending(&self) -> bool {
        !self.expired.is_empty()
    }

    /// True if `key` was deleted by expiry since the last [`Db::take_expired`] (it may
    /// have been written again since).
    pub fn expired_pending(&self, key: &[u8]) -> bool {
        self.expired.iter().any(|k| k.as_slice() == key)
    }

    /// Empties the database, handing back the old tables so the caller can free them
    /// wherever it likes (another thread for FLUSHALL ASYNC).
    pub fn flush(&mut self) -> (Dict<Obj>, Dict<i64>) {
        self.avg_ttl = 0;
        self.expires_cursor = 0;
        let (keys, expires) = (self.keys.take(), self.expires.take());
        if let Some(index) = self.slots.as_deref_mut() {
            index.clear();
        }
        match self.snap.as_deref_mut() {
            // The snapshot still has to walk the old contents: it keeps them.
            Some(s) if !s.walked => {
                s.retired.push(Retired { keys, expires, cursor: 0 });
                (Dict::new(), Dict::new())
            }
            _ => (keys, expires),
        }
    }

    /// Exchanges contents with another database (SWAPDB); ids stay.
    pub fn swap_contents(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.keys, &mut other.keys);
        std::mem::swap(&mut self.expires, &mut other.expires);
        std::mem::swap(&mut self.avg_ttl, &mut other.avg_ttl);
        std::mem::swap(&mut self.expires_cursor, &mut other.expires_cursor);
        // The contents carry their snapshot progress, so the snapshot still records each key
        // under the database it was in when the snapshot started.
        std::mem::swap(&mut self.snap, &mut other.snap);
        std::mem::swap(&mut self.slots, &mut other.slots);
    }

    /// A random live key (Redis's `dbRandomKey`): expired keys drawn on the way are
    /// deleted on a master; a replica whose keys are all expired gives up after 100 draws
    /// and returns an expired key rather than looping forever.
    pub fn random_key(&mut self, clock: Clock, rng: &mut fastrand::Rng) -> Option<SmallBytes> {
        let mut tries = 0;
        loop {
            let key = self.keys.random_entry(rng)?.0.clone();
            if self.is_expired(&key, clock.now_ms) {
                if !clock.master {
                    tries += 1;
                    if tries >= 100 && self.expires.len() == self.keys.len() {
                        return Some(key);
                    }
                    continue;
                }
                self.delete_expired(&key);
                continue;
            }
            return Some(key);
        }
    }

    /// One SCAN step over the keys. Expired keys are skipped (and deleted on a master).
    pub fn scan(&mut self, cursor: u64, clock: Clock, mut f: impl FnMut(&SmallBytes, &Obj)) -> u64 {
        let mut stale = Vec::new();
        let expires = &self.expires;
        let next = self.keys.scan(cursor, |k, o| {
            if !expires.is_empty() && expires.get(k).is_some_and(|&w| w <= clock.now_ms) {
                stale.push(k.clone());
            } else {
                f(k, o);
            }
        });
        if clock.master {
            for k in stale {
                self.delete_expired(&k);
            }
        }
        next
    }

    /// All live keys and objects (KEYS, DEBUG DIGEST, snapshots).
    pub fn iter(&self, now_ms: i64) -> impl Iterator<Item = (&SmallBytes, &Obj)> {
        let expires = &self.expires;
        self.keys.iter().filter(move |(k, _)| expires.is_empty() || expires.get(k).is_none_or(|&w| w > now_ms))
    }

    /// Mutable access without expiry checks, for commands that already looked the key up
    /// in this same command.
    pub fn get_mut_unchecked(&mut self, key: &[u8]) -> Option<&mut Obj> {
        self.before_change(key);
        self.keys.get_mut(key)
    }

    /// One uniformly random key (of the volatile ones if asked), without expiry checks;
    /// None only if there is none.
    pub fn any_random_key(&self, from_volatile: bool, rng: &mut fastrand::Rng) -> Option<SmallBytes> {
        if from_volatile {
            self.expires.random_entry(rng).map(|(k, _)| k.clone())
        } else {
            self.keys.random_entry(rng).map(|(k, _)| k.clone())
        }
    }

    /// Samples a random key (eviction, RANDOMKEY-like uses) without expiry checks.
    pub fn sample_keys(
        &self,
        count: usize,
        from_volatile: bool,
        rng: &mut fastrand::Rng,
        mut f: impl FnMut(&SmallBytes),
    ) {
        if from_volatile {
            self.expires.sample(count, rng, |k, _| f(k));
        } else {
            self.keys.sample(count, rng, |k, _| f(k));
        }
    }

    /// One step of active expiry: walks the expires table from where the previous step
    /// stopped, checking up to `max_keys` keys, and deletes those past their time.
    pub fn active_expire_step(&mut self, now_ms: i64, max_keys: usize) -> ExpireStep {
        let mut step = ExpireStep::default();
        if self.expires.is_empty() {
            self.expires_cursor = 0;
            step.completed = true;
            return step;
        }
        let mut due = Vec::new();
        let mut ttl_sum = 0i64;
        let mut ttl_n = 0i64;
        let max_buckets = max_keys * 20;
        let mut buckets = 0;
        while step.sampled < max_keys && buckets < max_buckets {
            self.expires_cursor = self.expires.scan(self.expires_cursor, |k, &when| {
                step.sampled += 1;
                if when < now_ms {
                    due.push(k.clone());
                } else {
                    ttl_sum += when - now_ms;
                    ttl_n += 1;
                }
            });
            buckets += 1;
            if self.expires_cursor == 0 {
                step.completed = true;
                break;
            }
        }
        step.expired = due.len();
        for k in due {
            self.delete_expired(&k);
        }
        if ttl_n > 0 {
            // Redis keeps a moving average weighted 2% toward each new sample batch.
            let avg = ttl_sum / ttl_n;
            self.avg_ttl = if self.avg_ttl == 0 { avg } else { (self.avg_ttl / 50) * 49 + avg / 50 };
        }
        step
    }

    /// Cron housekeeping: shrink mostly-empty tables, and move rehashing along for at most
    /// about a millisecond.
    pub fn cron_resize(&mut self, deadline: &dyn Fn() -> bool) {
        self.keys.shrink_if_needed();
        self.expires.shrink_if_needed();
        if !self.keys.rehash_for(deadline) {
            self.expires.rehash_for(deadline);
        }
    }

    /// Starts recording this database in a snapshot taken at `epoch` (from
    /// [`snapshot::next_epoch`]).
    pub fn begin_snapshot(&mut self, epoch: u32) {
        self.snap = Some(Box::new(DbSnapshot::new(epoch, self.id)));
    }

    pub fn snapshot_running(&self) -> bool {
        self.snap.is_some()
    }

    /// Walks on with the snapshot for about `budget` entries, handing each key it records to
    /// `f` with the database it belongs to in the snapshot. Returns true once every key has
    /// been walked (old values preserved by writes are collected by
    /// [`Db::take_preserved`]).
    pub fn snapshot_step(&mut self, budget: usize, f: &mut snapshot::RecordFn) -> bool {
        let Some(s) = self.snap.as_deref_mut() else {
            return true;
        };
        let db = s.snap_db;
        let mut emit = |k: &SmallBytes, o: &Obj, e: Option<i64>| f(db, k, o, e);
        let mut visited = 0;
        while visited < budget {
            if let Some(r) = s.retired.last_mut() {
                r.cursor = snapshot::walk_step(&mut r.keys, &r.expires, r.cursor, s.epoch, &mut visited, &mut emit);
                // Steps over empty buckets count too, so a sparse table cannot stall a step.
                visited += 1;
                if r.cursor == 0 {
                    s.retired.pop();
                }
                continue;
            }
            if s.walked {
                break;
            }
            s.cursor = snapshot::walk_step(&mut self.keys, &self.expires, s.cursor, s.epoch, &mut visited, &mut emit);
            visited += 1;
            if s.cursor == 0 {
                s.walked = true;
            }
        }
        s.walked && s.retired.is_empty()
    }

    /// Old values preserved by writes since the last call.
    pub fn take_preserved(&mut self) -> Vec<Preserved> {
        self.snap.as_deref_mut().map(|s| std::mem::take(&mut s.preserved)).unwrap_or_default()
    }

    /// Stops recording (the snapshot finished or was abandoned).
    pub fn end_snapshot(&mut self) {
        self.snap = None;
    }

    /// Bucket slots and node headers of both tables (for INFO memory's overhead figures).
    pub fn overhead_bytes(&self) -> usize {
        self.keys.overhead_bytes() + self.expires.overhead_bytes()
    }

    /// [`Db::overhead_bytes`] of the key table and of the expires table (MEMORY STATS).
    pub fn overhead_split(&self) -> (usize, usize) {
        (self.keys.overhead_bytes(), self.expires.overhead_bytes())
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        EXPIRED_PENDING.fetch_sub(self.expired.len(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn master(now_ms: i64) -> Clock {
        Clock { now_ms, master: true }
    }

    #[test]
    fn lazy_expiry_deletes_on_master_and_hides_on_replica() {
        let mut db = Db::new(0);
        db.set(b"a", Obj::new(Value::Int(1), 0), false);
        db.set_expire(b"a", 100);
        // Expired once the time is past the expiry (`now > when`), as in Redis.
        assert!(db.lookup(b"a", master(100)).is_some());
        assert!(db.lookup(b"a", Clock { now_ms: 101, master: false }).is_none());
        assert_eq!(db.len(), 1, "replica keeps the key");
        assert!(db.lookup(b"a", master(101)).is_none());
        assert_eq!(db.len(), 0);
        assert_eq!(db.take_expired(), vec![SmallBytes::from("a")]);
        assert_eq!(db.expires_len(), 0);
    }

    #[test]
    fn set_clears_ttl_unless_kept() {
        let mut db = Db::new(0);
        db.set(b"k", Obj::new(Value::Int(1), 0), false);
        db.set_expire(b"k", 1000);
        db.set(b"k", Obj::new(Value::Int(2), 0), true);
        assert_eq!(db.expire_at(b"k"), Some(1000));
        db.set(b"k", Obj::new(Value::Int(3), 0), false);
        assert_eq!(db.expire_at(b"k"), None);
    }

    #[test]
    fn active_expiry_reclaims_untouched_keys() {
        let mut db = Db::new(0);
        for i in 0..1000 {
            let k = format!("k{i}");
            db.set(k.as_bytes(), Obj::new(Value::Int(i), 0), false);
            db.set_expire(k.as_bytes(), if i % 2 == 0 { 10 } else { 1_000_000 });
        }
        let mut total = 0;
        loop {
            let step = db.active_expire_step(20, 50);
            total += step.expired;
            if step.completed {
                break;
            }
        }
        assert_eq!(total, 500);
        assert_eq!(db.len(), 500);
        assert_eq!(db.take_expired().len(), 500);
        assert!(db.avg_ttl > 0);
    }
}
