//! The keyspace: where keys and values live, with no I/O and no clock (time is passed in).
//!
//! - [`smallbytes`]: 24-byte binary strings, inline up to 23 bytes.
//! - [`dict`]: the incrementally rehashed hash table with SCAN's guarantee.
//! - [`value`]: values, their encodings and per-key metadata.
//! - [`db`]: one numbered database: keys, expiry, lazy expiration.
//! - [`glob`]: Redis's glob patterns.
//! - [`geohash`]: the geo commands' arithmetic (52-bit geohash scores, search cells, distance).
//! - [`snapshot`]: fork-less point-in-time snapshots (epochs and preserved old values).
//! - [`types`]: lists, hashes, sets, sorted sets and their compact encodings.

pub mod db;
pub mod dict;
pub mod geohash;
pub mod glob;
pub mod slot_index;
pub mod smallbytes;
pub mod snapshot;
pub mod types;
pub mod value;

pub use db::{Db, DbEntry};
pub use dict::Dict;
pub use smallbytes::SmallBytes;
pub use value::{Obj, Value, ValueType};
