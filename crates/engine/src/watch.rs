//! WATCH bookkeeping: which clients watch which (db, key). A write to a watched key marks
//! the watchers' transactions as failed (their EXEC returns a null reply).

use crate::client::{Client, ClientId};
use crate::engine::Engine;
use ahash::AHashMap as HashMap;
use ferrokv_keyspace::SmallBytes;

#[derive(Default)]
pub struct WatchTable {
    keys: HashMap<(usize, SmallBytes), Vec<ClientId>>,
}

impl WatchTable {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn watch(&mut self, db: usize, key: &[u8], id: ClientId) {
        let v = self.keys.entry((db, SmallBytes::from(key))).or_default();
        if !v.contains(&id) {
            v.push(id);
        }
    }

    pub fn unwatch(&mut self, db: usize, key: &[u8], id: ClientId) {
        let k = (db, SmallBytes::from(key));
        if let Some(v) = self.keys.get_mut(&k) {
            v.retain(|&c| c != id);
            if v.is_empty() {
                self.keys.remove(&k);
            }
        }
    }

    /// Clients watching `key` in `db`.
    pub fn watchers(&self, db: usize, key: &[u8]) -> &[ClientId] {
        if self.keys.is_empty() {
            return &[];
        }
        self.keys.get(&(db, SmallBytes::from(key))).map_or(&[], Vec::as_slice)
    }

    /// Every (key, watchers) in `db` (FLUSHDB, SWAPDB).
    pub fn in_db(&self, db: usize) -> Vec<(SmallBytes, Vec<ClientId>)> {
        self.keys.iter().filter(|((d, _), _)| *d == db).map(|((_, k), v)| (k.clone(), v.clone())).collect()
    }
}

/// Touching watched keys: Redis 7.0's `touchWatchedKey` and `touchAllWatchedKeysInDb`.
///
/// A key that was already logically expired when WATCHed is flagged (the `bool` of
/// `Client::watched`): its later removal by expiry, or by a FLUSHDB/SWAPDB that empties it,
/// changes nothing logically, so it clears the flag instead of failing the transaction.
impl Engine {
    /// Marks the watchers of a modified key (Redis's `signalModifiedKey`); a watcher marked
    /// dirty stops watching (EXEC will fail anyway).
    pub(crate) fn touch_watched(&mut self, mut current: Option<&mut Client>, db: usize, key: &[u8]) {
        if !self.migrating.is_empty() {
            self.migrating.touch(db, key);
        }
        if self.watched.is_empty() {
            return;
        }
        let ids = self.watched.watchers(db, key).to_vec();
        if ids.is_empty() {
            return;
        }
        let present = self.dbs[db].peek(key, i64::MIN).is_some();
        // Redis removes an expired key (and touches it) before the command that found it
        // writes it again; here the expiry touch comes after the command, so a key expired
        // and rewritten by this command counts as removed first, then modified.
        let rewritten_after_expiry = present && self.dbs[db].expired_pending(key);
        let cur_id = current.as_ref().map(|c| c.id);
        for id in ids {
            let client = if Some(id) == cur_id { current.as_deref_mut() } else { self.clients.get_mut(id) };
            let Some(client) = client else {
                continue;
            };
            let entry = client.watched.iter_mut().find(|(d, k, _)| *d == db && k.as_slice() == key);
            if let Some(entry) = entry.filter(|e| e.2) {
                if !present {
                    // The stale key is gone: logically nothing changed.
                    entry.2 = false;
                    continue;
                }
                if !rewritten_after_expiry {
                    // Redis 7.0 stops at such a watcher without marking it or any watcher
                    // after it (its loop `break`s); kept so EXEC answers as Redis's does.
                    break;
                }
            }
            client.dirty_cas = true;
            for (d, k, _) in client.watched.drain(..) {
                self.watched.unwatch(d, &k, id);
            }
        }
    }

    /// Fails every transaction watching anything (a replica's dataset was replaced).
    pub(crate) fn touch_all_watched(&mut self) {
        self.migrating.reset_all();
        for db in 0..self.dbs.len() {
            for (_, ids) in self.watched.in_db(db) {
                for id in ids {
                    if let Some(c) = self.clients.get_mut(id) {
                        c.dirty_cas = true;
                    }
                }
            }
        }
    }

    /// FLUSHDB/FLUSHALL (`replacement` None) and SWAPDB (`replacement` the db whose
    /// contents `db` gets), called before `db` changes: a watcher is marked dirty when its
    /// key exists on either side, unless the key is logically absent on both (expired).
    pub(crate) fn touch_all_watched_in_db(
        &mut self,
        mut current: Option<&mut Client>,
        db: usize,
        replacement: Option<usize>,
        now_ms: i64,
    ) {
        self.migrating.reset_all();
        if self.watched.is_empty() {
            return;
        }
        let cur_id = current.as_ref().map(|c| c.id);
        for (key, ids) in self.watched.in_db(db) {
            let in_emptied = self.dbs[db].peek(&key, i64::MIN).is_some();
            let in_replacement = replacement.is_some_and(|o| self.dbs[o].peek(&key, i64::MIN).is_some());
            if !in_emptied && !in_replacement {
                continue;
            }
            let replacement_expired =
                replacement.is_some_and(|o| self.dbs[o].expire_at(&key).is_some_and(|t| t < now_ms));
            for id in ids {
                let client = if Some(id) == cur_id { current.as_deref_mut() } else { self.clients.get_mut(id) };
                let Some(client) = client else {
                    continue;
                };
                if let Some(entry) = client.watched.iter_mut().find(|(d, k, _)| *d == db && *k == key) {
                    if entry.2 {
                        if !in_replacement {
                            entry.2 = false; // the stale key is gone
                            continue;
                        }
                        if replacement_expired {
                            continue; // stale before, stale after
                        }
                    } else if !in_emptied && replacement_expired {
                        entry.2 = true; // absent before, a stale key after
                        continue;
                    }
                }
                client.dirty_cas = true;
            }
        }
    }
}
