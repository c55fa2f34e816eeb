//! The Redis RDB file format: a streaming [`RdbReader`], an [`RdbWriter`], and the DUMP /
//! RESTORE payloads ([`dump_payload`], [`restore_payload`]).
//!
//! # The format
//!
//! A file is `REDIS` + a four-digit version, then a sequence of records each introduced
//! by one byte: an opcode (244..=255: select a database, resize hint, auxiliary field,
//! expire time, LRU idle time, LFU frequency, end of file) or a value type (0..=25)
//! followed by a key and the value. After the EOF opcode, files of version 5 and later
//! carry a little-endian CRC-64 of everything before it (0 = "not computed").
//!
//! Lengths use a prefix code on the first byte: `00xxxxxx` (6 bits), `01xxxxxx xxxxxxxx`
//! (14 bits, big-endian), `0x80` + u32 BE, `0x81` + u64 BE. `11xxxxxx` marks a specially
//! encoded *string*: an 8/16/32-bit little-endian integer whose decimal form is the
//! string, or an LZF-compressed string (compressed length, real length, data).
//!
//! Compact aggregates are stored as one string holding the in-memory blob Redis used:
//! listpacks (Redis 7), ziplists (Redis 3.2..6.2), intsets, and zipmaps (Redis < 2.6).
//! Each has its own module here with the byte layout in its docs.
//!
//! # What this module reads
//!
//! Every RDB version from 1 to 11, and 12 where it adds nothing but the cluster
//! slot-info opcode (which is skipped). Value types: strings, lists (plain, ziplist,
//! quicklist of ziplists, quicklist of listpacks with plain and packed nodes), sets (plain,
//! intset, listpack), sorted sets (text and binary scores, ziplist, listpack), hashes
//! (plain, zipmap, ziplist, listpack). Whatever the encoding in the file, values come out
//! as plain element vectors ([`RdbValue`]): choosing an in-memory encoding is the
//! loader's business.
//!
//! Refused with a clear [`RdbError`]: modules, functions, streams, hashes with field
//! expiration (RDB 12), unknown types, and anything malformed — every blob is validated
//! the way Redis's deep sanitization does (bounds, back-lengths, counts, intset order), so
//! no input can panic the reader or make it allocate much beyond the input's own size.
//! Like Redis, empty aggregates in a file are skipped ([`RdbReader::skipped_empty_keys`]).
//! Duplicate members inside one set/hash/zset are passed through: the loader's
//! insert-or-replace decides (Redis refuses some of them, only under sanitization).
//!
//! # What this module writes
//!
//! RDB version 10, as Redis 7.0 does, with the encodings Redis 7.0 would choose for the
//! same data under its default thresholds ([`WriteOptions`]): integer strings as integers,
//! LZF for compressible strings over 20 bytes, lists as quicklists of ~8 KiB listpacks,
//! small integer sets as intsets, small hashes and sorted sets as listpacks. So a file
//! written here loads into Redis with the same `OBJECT ENCODING`s a Redis save would.

mod crc64;
mod dump;
mod error;
pub mod intset;
pub mod listpack;
pub mod lzf;
mod num;
mod reader;
mod writer;
pub mod ziplist;
pub mod zipmap;

pub use crc64::crc64;
pub use dump::{
    dump_payload, dump_payload_with, functions_from_payload, functions_payload, quicklist_shape, restore_payload,
    restore_payload_checked, sanitize, serialized_len, RestoreChecks,
};
pub use error::{ErrorKind, RdbError};
pub use reader::RdbReader;
pub use writer::{AsElem, Elems, PairLike, Pairs, RdbWriter, Scored, ScoredLike, ValueRef, Visit, WriteOptions};

use ferrokv_keyspace::SmallBytes;

/// The RDB version this library writes (Redis 7.0's).
pub const RDB_VERSION: u32 = 10;
/// The newest RDB version the reader accepts.
pub const MAX_READ_VERSION: u32 = 12;

/// Value types and opcodes (the byte before each record).
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
    /// 22..=25: hashes with field expiration (RDB 12).
    pub const HASH_METADATA_PRE_GA: u8 = 22;
    pub const HASH_LISTPACK_EX: u8 = 25;

    pub const OPCODE_SLOT_INFO: u8 = 244;
    pub const OPCODE_FUNCTION2: u8 = 245;
    pub const OPCODE_FUNCTION_PRE_GA: u8 = 246;
    pub const OPCODE_MODULE_AUX: u8 = 247;
    pub const OPCODE_IDLE: u8 = 248;
    pub const OPCODE_FREQ: u8 = 249;
    pub const OPCODE_AUX: u8 = 250;
    pub const OPCODE_RESIZEDB: u8 = 251;
    pub const OPCODE_EXPIRETIME_MS: u8 = 252;
    pub const OPCODE_EXPIRETIME: u8 = 253;
    pub const OPCODE_SELECTDB: u8 = 254;
    pub const OPCODE_EOF: u8 = 255;

    /// Quicklist node containers (LIST_QUICKLIST_2).
    pub const QUICKLIST_NODE_PLAIN: u64 = 1;
    pub const QUICKLIST_NODE_PACKED: u64 = 2;
}

/// One record of an RDB file, in file order.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// An auxiliary field (`redis-ver`, `ctime`, `repl-id`, …). Unknown ones must be ignored.
    Aux {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// The following keys belong to this database.
    SelectDb(u64),
    /// Sizing hint for the current database.
    ResizeDb {
        keys: u64,
        expires: u64,
    },
    Key(KeyRecord),
    /// A functions library: its code, shebang included (`RDB_OPCODE_FUNCTION2`).
    Function(Vec<u8>),
}

/// A key, its value and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub key: SmallBytes,
    /// The value's type byte in the file (its encoding: listpack, intset, plain…), for
    /// the checks that depend on it ([`sanitize`]).
    pub type_byte: u8,
    /// Absolute expiry, Unix time in milliseconds (EXPIRETIME records are converted).
    pub expire_ms: Option<i64>,
    /// LRU idle time in seconds, if the file recorded it (maxmemory-policy *lru).
    pub idle_secs: Option<u64>,
    /// LFU counter, if the file recorded it (maxmemory-policy *lfu).
    pub freq: Option<u8>,
    pub value: RdbValue,
}

/// A value, decoded to plain elements whatever its encoding in the file. Integers stored
/// in compact encodings come back as their decimal strings.
#[derive(Debug, Clone, PartialEq)]
pub enum RdbValue {
    String(SmallBytes),
    List(Vec<SmallBytes>),
    Set(Vec<SmallBytes>),
    Hash(Vec<(SmallBytes, SmallBytes)>),
    /// Members with their scores, in file order (not necessarily sorted).
    ZSet(Vec<(SmallBytes, f64)>),
    Stream(Box<ferrokv_keyspace::types::stream::Stream>),
}

impl RdbValue {
    /// The Redis type name (`TYPE` command).
    pub fn type_name(&self) -> &'static str {
        match self {
            RdbValue::String(_) => "string",
            RdbValue::List(_) => "list",
            RdbValue::Set(_) => "set",
            RdbValue::Hash(_) => "hash",
            RdbValue::ZSet(_) => "zset",
            RdbValue::Stream(_) => "stream",
        }
    }
}

/// One element of an aggregate: bytes, or an integer standing for its decimal string.
/// Compact encodings store integers natively; keeping them as `Int` on both the reading
/// and the writing side avoids formatting and re-parsing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// The element's bytes (integers in decimal).
    pub fn to_vec(&self) -> Vec<u8> {
        match *self {
            Elem::Bytes(b) => b.to_vec(),
            Elem::Int(v) => v.to_string().into_bytes(),
        }
    }

    /// The element as a `SmallBytes` (no heap allocation for integers and short strings).
    pub fn to_small_bytes(&self) -> SmallBytes {
        match *self {
            Elem::Bytes(b) => SmallBytes::from(b),
            Elem::Int(v) => {
                let mut buf = [0u8; 20];
                SmallBytes::from(num::fmt_i64(v, &mut buf))
            }
        }
    }

    /// Length of the element as a string.
    pub fn str_len(&self) -> usize {
        match *self {
            Elem::Bytes(b) => b.len(),
            Elem::Int(v) => {
                let mut buf = [0u8; 20];
                num::fmt_i64(v, &mut buf).len()
            }
        }
    }
}

/// A structural error inside a blob, before it is placed in the file (see
/// [`ErrorKind::Corrupt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bad {
    pub structure: &'static str,
    pub at: usize,
    pub what: &'static str,
}

impl Bad {
    pub(crate) fn kind(self) -> ErrorKind {
        ErrorKind::Corrupt { structure: self.structure, at: self.at, what: self.what }
    }
}
