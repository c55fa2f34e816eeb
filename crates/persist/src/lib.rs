//! Persistence formats, as pure libraries over bytes: the engine decides what to save and
//! when, the server moves the bytes to and from files.
//!
//! - [`aof`]: Redis 7's multi-part append-only file: the manifest and the command stream.

pub mod aof;
