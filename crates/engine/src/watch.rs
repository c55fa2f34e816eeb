//! WATCH bookkeeping: which clients watch which (db, key). A write to a watched key marks
//! the watchers' transactions as failed (their EXEC returns a null reply).

use crate::client::ClientId;
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
