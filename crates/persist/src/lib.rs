//! Persistence formats for ferrokv, as pure libraries over `std::io::Read`/`Write`: no
//! engine, no sockets, no clock.
//!
//! - [`rdb`]: the Redis RDB file format — a streaming reader for RDB versions 1..=12
//!   (strings, lists, sets, sorted sets, hashes in every encoding Redis ever saved them),
//!   a writer producing version 10 files that Redis 7.0 loads with the encodings it would
//!   have chosen itself, and the DUMP/RESTORE payload format.
//!
//! Everything read from a file is treated as hostile: structures are validated before use,
//! allocations are bounded by the data actually present, and errors carry the byte offset
//! and key where the problem was found.

pub mod rdb;
