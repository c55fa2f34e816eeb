//! Encodings of aggregate values.
//!
//! - [`scoretree`]: the order-statistic B+tree behind large sorted sets.

pub mod scoretree;
