//! The aggregate data types and their compact encodings.

pub mod hash;
pub mod intset;
pub mod list;
pub mod packed;
pub mod set;
