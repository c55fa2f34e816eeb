//! Persistence formats for ferrokv, as pure libraries over bytes and `std::io::Read`/
//! `Write`: no engine, no sockets, no clock. The engine decides what to save and when; the
//! server moves the bytes to and from files.
//!
//! - [`rdb`]: the Redis RDB file format — a streaming reader for RDB versions 1..=12
//!   (strings, lists, sets, sorted sets, hashes in every encoding Redis ever saved them),
//!   a writer producing version 10 files that Redis 7.0 loads with the encodings it would
//!   have chosen itself, and the DUMP/RESTORE payload format.
//! - [`aof`]: Redis 7's multi-part append-only file: the manifest, the command stream and
//!   the command form of a snapshot.
//!
//! Everything read from a file is treated as hostile: structures are validated before use,
//! allocations are bounded by the data actually present, and errors carry the byte offset
//! (and key) where the problem was found.

pub mod aof;
pub mod rdb;
