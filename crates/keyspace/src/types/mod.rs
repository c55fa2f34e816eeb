//! The aggregate data types and their compact encodings.
//!
//! - [`list`]: lists (a ring buffer of inline strings).
//! - [`hash`], [`set`]: hashes and sets, compact until Redis's thresholds.
//! - [`packed`], [`intset`]: the compact encodings (listpack-like, intset).
//! - [`zset`]: sorted sets, packed until Redis's thresholds, then a dict plus a [`scoretree`].
//! - [`scoretree`]: the order-statistic B+tree behind large sorted sets.
//! - [`stream`]: streams (delta-encoded nodes indexed by ID) and their consumer groups.

pub mod hash;
pub mod hll;
pub mod intset;
pub mod list;
pub mod packed;
pub mod scoretree;
pub mod set;
pub mod stream;
pub mod zset;
