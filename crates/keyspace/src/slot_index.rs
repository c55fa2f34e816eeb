//! Cluster mode's per-slot key index: which keys of a database hash to each of the 16384
//! slots, so CLUSTER COUNTKEYSINSLOT and GETKEYSINSLOT (and migrating a slot) cost the
//! slot's size, not a scan of the whole database. Redis threads a list through its dict
//! entries for this; here each slot has a set of its keys.
//!
//! The slot function comes from the caller (crates/cluster's CRC16 with hash tags): the
//! keyspace knows nothing about clusters. A database has an index only in cluster mode;
//! standalone, the hooks in `db.rs` are one null-pointer test per insert or delete.

use crate::smallbytes::SmallBytes;
use ahash::AHashSet;

/// Key → slot (0..16384).
pub type SlotFn = fn(&[u8]) -> u16;

pub const SLOTS: usize = 16384;

pub struct SlotIndex {
    slot_of: SlotFn,
    keys: Vec<AHashSet<SmallBytes>>,
}

impl SlotIndex {
    pub fn new(slot_of: SlotFn) -> SlotIndex {
        SlotIndex { slot_of, keys: (0..SLOTS).map(|_| AHashSet::new()).collect() }
    }

    fn set_of(&mut self, key: &[u8]) -> &mut AHashSet<SmallBytes> {
        let slot = usize::from((self.slot_of)(key)) % SLOTS;
        &mut self.keys[slot]
    }

    pub(crate) fn added(&mut self, key: &[u8]) {
        self.set_of(key).insert(SmallBytes::from(key));
    }

    pub(crate) fn removed(&mut self, key: &[u8]) {
        self.set_of(key).remove(key);
    }

    pub(crate) fn clear(&mut self) {
        for set in &mut self.keys {
            *set = AHashSet::new();
        }
    }

    pub fn count(&self, slot: u16) -> usize {
        self.keys.get(usize::from(slot)).map_or(0, |s| s.len())
    }

    /// The keys in a slot, in no particular order.
    pub fn keys(&self, slot: u16) -> impl Iterator<Item = &SmallBytes> {
        self.keys.get(usize::from(slot)).into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use crate::db::{Clock, Db, DbEntry};
    use crate::value::{Obj, Value};

    /// A stand-in slot function: the first byte.
    fn first_byte(key: &[u8]) -> u16 {
        key.first().map_or(0, |&b| u16::from(b))
    }

    fn assert_index_matches(db: &Db) {
        let index = db.slot_index().expect("enabled");
        let mut by_scan = vec![0usize; super::SLOTS];
        for (key, _) in db.iter(0) {
            by_scan[usize::from(first_byte(key))] += 1;
        }
        for (slot, &n) in by_scan.iter().enumerate() {
            assert_eq!(index.count(slot as u16), n, "slot {slot}");
            assert_eq!(index.keys(slot as u16).count(), n);
        }
    }

    /// Every way a key enters or leaves a database keeps the index equal to a scan.
    #[test]
    fn index_follows_every_insert_and_delete() {
        let mut db = Db::new(0);
        db.set(b"a1", Obj::new(Value::Int(1), 0), false);
        db.enable_slot_index(first_byte);
        assert_index_matches(&db);
        let clock = Clock { now_ms: 10, master: true };
        db.set(b"a2", Obj::new(Value::Int(2), 0), false);
        db.set(b"a2", Obj::new(Value::Int(3), 0), false);
        db.add(b"b1", Obj::new(Value::Int(1), 0));
        if let DbEntry::Vacant(v) = db.entry(b"c1", clock) {
            v.insert(Obj::new(Value::Int(1), 0));
        }
        assert_index_matches(&db);
        assert_eq!(db.slot_index().map(|i| i.count(u16::from(b'a'))), Some(2));
        db.remove(b"a1");
        db.take(b"b1");
        assert_index_matches(&db);
        // Lazy expiry deletes on a master's lookup.
        db.set_expire(b"c1", 5);
        assert!(db.lookup(b"c1", clock).is_none());
        assert_index_matches(&db);
        let _ = db.flush();
        assert_index_matches(&db);
        assert_eq!(db.slot_index().map(|i| i.count(u16::from(b'a'))), Some(0));
    }
}
