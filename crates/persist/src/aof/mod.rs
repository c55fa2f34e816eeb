//! The append-only file, Redis 7 style.
//!
//! An AOF is a directory (`appenddirname`) holding a **manifest** and the files it lists:
//! at most one **base** file (a snapshot: an RDB file, or commands), then **incremental**
//! files with the commands executed since, in sequence order, plus **history** files
//! (superseded by a rewrite, deleted once the new manifest is durable). See [`manifest`].
//!
//! Commands are stored in the RESP multi-bulk form clients send (`*3\r\n$3\r\nSET…`), with
//! optional `#…` annotation lines (Redis's `aof-timestamp-enabled` writes `#TS:<unix>`).
//! See [`stream`] for the parser and the truncation rules.

pub mod manifest;
pub mod rewrite;
pub mod stream;

pub use manifest::{AofFile, FileKind, Manifest, ManifestError};
pub use stream::{next_record, Record};
