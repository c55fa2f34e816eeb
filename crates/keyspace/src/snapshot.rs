//! Point-in-time snapshots without fork: the keyspace half.
//!
//! Redis snapshots by forking and letting the kernel copy pages the parent writes to,
//! which can double memory under a write-heavy load. ferrokv walks its own tables instead,
//! while commands keep running, and keeps the walk consistent with one rule: *a key that
//! existed when the snapshot started is recorded exactly once, with the value it had then.*
//!
//! - A snapshot takes a fresh **epoch** from [`SNAPSHOT_EPOCH`]. Every object carries the
//!   epoch it was created or last recorded in (`Obj::version`), so every object older than
//!   the snapshot has `version < epoch`.
//! - The walk ([`Db::snapshot_step`](crate::Db::snapshot_step)) visits the table with the
//!   SCAN cursor (which tolerates rehashing between steps) and records each object whose
//!   version is older, stamping it with the epoch so a second visit skips it.
//! - Before a command changes, replaces or deletes an older object, the database records
//!   the old value first ([`Preserved`]) and stamps it; keys created during the snapshot are
//!   born with the new epoch and so are never recorded.
//!
//! The cost moves from memory to the writer: a key is serialized at most once whatever
//! the write rate, and memory grows only by the old values of keys written before the
//! walk reached them, waiting in the preserved queue for the serializer.

use crate::dict::Dict;
use crate::smallbytes::SmallBytes;
use crate::value::Obj;
use std::sync::atomic::{AtomicU32, Ordering};

/// The newest snapshot epoch handed out. New objects are stamped with it; a new snapshot
/// takes the next one, so it is greater than every stamp already made (also across the
/// several engines a test process may hold).
pub static SNAPSHOT_EPOCH: AtomicU32 = AtomicU32::new(0);

/// The stamp for an object created now.
#[inline]
pub fn current_epoch() -> u32 {
    SNAPSHOT_EPOCH.load(Ordering::Relaxed)
}

/// Takes the epoch for a new snapshot.
pub fn next_epoch() -> u32 {
    SNAPSHOT_EPOCH.fetch_add(1, Ordering::Relaxed) + 1
}

/// A key's value as it was when the snapshot started, saved just before a command
/// changed it.
#[derive(Debug)]
pub struct Preserved {
    /// The database the key belonged to when the snapshot started (SWAPDB may have moved
    /// it since).
    pub db: usize,
    pub key: SmallBytes,
    pub obj: Obj,
    pub expire: Option<i64>,
}

/// Receives each key a snapshot walk records: (database, key, object, expiry).
pub type RecordFn<'a> = dyn FnMut(usize, &SmallBytes, &Obj, Option<i64>) + 'a;

/// Per-database snapshot progress.
pub(crate) struct DbSnapshot {
    pub epoch: u32,
    /// The database these contents are recorded under: SWAPDB exchanges snapshot states
    /// along with contents, so the file says where each key was at the start.
    pub snap_db: usize,
    pub cursor: u64,
    pub walked: bool,
    /// Tables emptied by FLUSHDB during the snapshot, still to be walked.
    pub retired: Vec<Retired>,
    pub preserved: Vec<Preserved>,
}

pub(crate) struct Retired {
    pub keys: Dict<Obj>,
    pub expires: Dict<i64>,
    pub cursor: u64,
}

impl DbSnapshot {
    pub fn new(epoch: u32, snap_db: usize) -> DbSnapshot {
        DbSnapshot { epoch, snap_db, cursor: 0, walked: false, retired: Vec::new(), preserved: Vec::new() }
    }

    /// Whether `obj` still has to be recorded.
    #[inline]
    pub fn pending(&self, obj: &Obj) -> bool {
        obj.version < self.epoch
    }
}

/// One SCAN step over `keys` recording objects older than `epoch`. Returns the next cursor
/// (0 when the walk is complete) and adds the number of buckets' entries visited to
/// `visited`.
pub(crate) fn walk_step(
    keys: &mut Dict<Obj>,
    expires: &Dict<i64>,
    cursor: u64,
    epoch: u32,
    visited: &mut usize,
    f: &mut dyn FnMut(&SmallBytes, &Obj, Option<i64>),
) -> u64 {
    keys.scan_mut(cursor, |k, obj| {
        *visited += 1;
        if obj.version < epoch {
            obj.version = epoch;
            let expire = if expires.is_empty() { None } else { expires.get(k).copied() };
            f(k, obj, expire);
        }
    })
}
