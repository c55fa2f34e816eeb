//! Command metadata types: flags, ACL categories and the raw spec rows of
//! [`super::spec_data`].

/// Command flags, as Redis 7.0 defines them.
pub mod flags {
    pub const WRITE: u64 = 1 << 0;
    pub const READONLY: u64 = 1 << 1;
    pub const DENYOOM: u64 = 1 << 2;
    pub const MODULE: u64 = 1 << 3;
    pub const ADMIN: u64 = 1 << 4;
    pub const PUBSUB: u64 = 1 << 5;
    pub const NOSCRIPT: u64 = 1 << 6;
    pub const BLOCKING: u64 = 1 << 8;
    pub const LOADING: u64 = 1 << 9;
    pub const STALE: u64 = 1 << 10;
    pub const SKIP_MONITOR: u64 = 1 << 11;
    pub const SKIP_SLOWLOG: u64 = 1 << 12;
    pub const ASKING: u64 = 1 << 13;
    pub const FAST: u64 = 1 << 14;
    pub const NO_AUTH: u64 = 1 << 15;
    pub const MAY_REPLICATE: u64 = 1 << 16;
    pub const SENTINEL: u64 = 1 << 17;
    pub const ONLY_SENTINEL: u64 = 1 << 18;
    pub const NO_MANDATORY_KEYS: u64 = 1 << 19;
    pub const PROTECTED: u64 = 1 << 20;
    pub const MOVABLE_KEYS: u64 = 1 << 22;
    pub const NO_ASYNC_LOADING: u64 = 1 << 23;
    pub const NO_MULTI: u64 = 1 << 24;
    pub const ALLOW_BUSY: u64 = 1 << 26;
    pub const TOUCHES_ARBITRARY_KEYS: u64 = 1 << 28;

    /// Names COMMAND INFO shows, in Redis's order (some flags are hidden on purpose).
    pub const NAMES: &[(u64, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (MODULE, "module"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (ASKING, "asking"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// ACL categories.
pub mod cats {
    pub const C_KEYSPACE: u64 = 1 << 0;
    pub const C_READ: u64 = 1 << 1;
    pub const C_WRITE: u64 = 1 << 2;
    pub const C_SET: u64 = 1 << 3;
    pub const C_SORTEDSET: u64 = 1 << 4;
    pub const C_LIST: u64 = 1 << 5;
    pub const C_HASH: u64 = 1 << 6;
    pub const C_STRING: u64 = 1 << 7;
    pub const C_BITMAP: u64 = 1 << 8;
    pub const C_HYPERLOGLOG: u64 = 1 << 9;
    pub const C_GEO: u64 = 1 << 10;
    pub const C_STREAM: u64 = 1 << 11;
    pub const C_PUBSUB: u64 = 1 << 12;
    pub const C_ADMIN: u64 = 1 << 13;
    pub const C_FAST: u64 = 1 << 14;
    pub const C_SLOW: u64 = 1 << 15;
    pub const C_BLOCKING: u64 = 1 << 16;
    pub const C_DANGEROUS: u64 = 1 << 17;
    pub const C_CONNECTION: u64 = 1 << 18;
    pub const C_TRANSACTION: u64 = 1 << 19;
    pub const C_SCRIPTING: u64 = 1 << 20;

    pub const NAMES: &[(u64, &str)] = &[
        (C_KEYSPACE, "keyspace"),
        (C_READ, "read"),
        (C_WRITE, "write"),
        (C_SET, "set"),
        (C_SORTEDSET, "sortedset"),
        (C_LIST, "list"),
        (C_HASH, "hash"),
        (C_STRING, "string"),
        (C_BITMAP, "bitmap"),
        (C_HYPERLOGLOG, "hyperloglog"),
        (C_GEO, "geo"),
        (C_STREAM, "stream"),
        (C_PUBSUB, "pubsub"),
        (C_ADMIN, "admin"),
        (C_FAST, "fast"),
        (C_SLOW, "slow"),
        (C_BLOCKING, "blocking"),
        (C_DANGEROUS, "dangerous"),
        (C_CONNECTION, "connection"),
        (C_TRANSACTION, "transaction"),
        (C_SCRIPTING, "scripting"),
    ];

    /// The categories Redis adds from a command's flags (`setImplicitACLCategories`).
    pub fn implicit(flags: u64, mut c: u64) -> u64 {
        use super::flags::*;
        if flags & WRITE != 0 {
            c |= C_WRITE;
        }
        if flags & READONLY != 0 && c & C_SCRIPTING == 0 {
            c |= C_READ;
        }
        if flags & ADMIN != 0 {
            c |= C_ADMIN | C_DANGEROUS;
        }
        if flags & PUBSUB != 0 {
            c |= C_PUBSUB;
        }
        if flags & FAST != 0 {
            c |= C_FAST;
        }
        if flags & BLOCKING != 0 {
            c |= C_BLOCKING;
        }
        if c & C_FAST == 0 {
            c |= C_SLOW;
        }
        c
    }
}

pub use cats::{
    C_ADMIN, C_BITMAP, C_BLOCKING, C_CONNECTION, C_DANGEROUS, C_FAST, C_GEO, C_HASH, C_HYPERLOGLOG, C_KEYSPACE, C_LIST,
    C_PUBSUB, C_READ, C_SCRIPTING, C_SET, C_SLOW, C_SORTEDSET, C_STREAM, C_STRING, C_TRANSACTION, C_WRITE,
};
pub use flags::{
    ADMIN, ALLOW_BUSY, ASKING, BLOCKING, DENYOOM, FAST, LOADING, MAY_REPLICATE, MODULE, MOVABLE_KEYS, NOSCRIPT,
    NO_ASYNC_LOADING, NO_AUTH, NO_MANDATORY_KEYS, NO_MULTI, ONLY_SENTINEL, PROTECTED, PUBSUB, READONLY, SENTINEL,
    SKIP_MONITOR, SKIP_SLOWLOG, STALE, TOUCHES_ARBITRARY_KEYS, WRITE,
};

/// One row of the command metadata table.
#[derive(Debug)]
pub struct RawSpec {
    /// `get`, or `config|get` for a subcommand.
    pub fullname: &'static str,
    /// Positive: exact argument count (name included); negative: at least `-arity`.
    pub arity: i32,
    pub flags: u64,
    pub cats: u64,
    /// Legacy key positions (first, last, step); last is negative to count from the end.
    pub keys: (i32, i32, i32),
    pub group: &'static str,
    pub since: &'static str,
}

#[allow(clippy::too_many_arguments)]
pub(crate) const fn s(
    fullname: &'static str,
    arity: i32,
    flags: u64,
    cats: u64,
    keys: (i32, i32, i32),
    group: &'static str,
    since: &'static str,
) -> RawSpec {
    RawSpec { fullname, arity, flags, cats, keys, group, since }
}

/// Key specification flags (Redis 7.0's `CMD_KEY_*`): how a command uses a key.
pub mod kflags {
    pub const RO: u64 = 1 << 0;
    pub const RW: u64 = 1 << 1;
    pub const OW: u64 = 1 << 2;
    pub const RM: u64 = 1 << 3;
    pub const ACCESS: u64 = 1 << 4;
    pub const UPDATE: u64 = 1 << 5;
    pub const INSERT: u64 = 1 << 6;
    pub const DELETE: u64 = 1 << 7;
    pub const NOT_KEY: u64 = 1 << 8;
    pub const INCOMPLETE: u64 = 1 << 9;
    pub const VARIABLE_FLAGS: u64 = 1 << 10;

    /// Names COMMAND INFO and GETKEYSANDFLAGS show, in Redis's order.
    pub const NAMES: &[(u64, &str)] = &[
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];
}

/// Where the search for a key specification's keys starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BeginSearch {
    /// At this argument index.
    Index(i32),
    /// After the first argument equal (ignoring case) to the keyword, searched from
    /// `startfrom` towards the end, or from the end backwards if `startfrom` is negative.
    Keyword(&'static str, i32),
    /// Not expressible: the command's own rule ([`GetKeys`]) finds the keys.
    BeginUnknown,
}

/// Which arguments, from where the search began, are keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindKeys {
    /// `(lastkey, step, limit)`: keys up to `lastkey` (relative to the start; negative
    /// counts from the end of the arguments), every `step`; with a negative `lastkey`, a
    /// non-zero `limit` keeps only the first 1/limit of the remaining arguments.
    Range(i32, i32, i32),
    /// `(keynumidx, firstkey, step)`: the argument at `keynumidx` (relative to the start)
    /// says how many keys follow, the first at `firstkey` (relative to the start).
    Keynum(i32, i32, i32),
    FindUnknown,
}

/// One key specification, as Redis 7.0 declares it.
#[derive(Clone, Copy, Debug)]
pub struct KeySpec {
    pub notes: Option<&'static str>,
    pub flags: u64,
    pub begin: BeginSearch,
    pub find: FindKeys,
}

pub(crate) const fn k(notes: Option<&'static str>, flags: u64, begin: BeginSearch, find: FindKeys) -> KeySpec {
    KeySpec { notes, flags, begin, find }
}

/// A command's own key-extraction rule (Redis's `getkeys_proc`), used when its key
/// specifications cannot answer: unknown or incomplete specs, keys whose flags depend on
/// the arguments, or a numkeys argument that is not a valid count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GetKeys {
    /// `numkeys key [key ...]` with numkeys at `count` and the first key at `first`,
    /// plus a destination at `store` (0: none), reported after the other keys.
    Numkeys {
        store: usize,
        count: usize,
        first: usize,
    },
    Sort,
    SortRo,
    Migrate,
    Set,
    Bitfield,
    Georadius,
    Xread,
}

/// The parts of a command's metadata kept in [`super::spec_keys`].
#[derive(Debug)]
pub struct CmdMeta {
    pub fullname: &'static str,
    pub key_specs: &'static [KeySpec],
    pub tips: &'static [&'static str],
    pub getkeys: Option<GetKeys>,
}

pub(crate) const fn m(
    fullname: &'static str,
    key_specs: &'static [KeySpec],
    tips: &'static [&'static str],
    getkeys: Option<GetKeys>,
) -> CmdMeta {
    CmdMeta { fullname, key_specs, tips, getkeys }
}

/// Flags of a command's documentation and of its arguments (COMMAND DOCS).
pub mod doc_flags {
    pub const DOC_DEPRECATED: u8 = 1 << 0;
    pub const DOC_SYSCMD: u8 = 1 << 1;
    pub const OPTIONAL: u8 = 1 << 0;
    pub const MULTIPLE: u8 = 1 << 1;
    pub const MULTIPLE_TOKEN: u8 = 1 << 2;

    /// Names in the order Redis lists them.
    pub const DOC_NAMES: &[(u8, &str)] = &[(DOC_DEPRECATED, "deprecated"), (DOC_SYSCMD, "syscmd")];
    pub const ARG_NAMES: &[(u8, &str)] =
        &[(OPTIONAL, "optional"), (MULTIPLE, "multiple"), (MULTIPLE_TOKEN, "multiple_token")];
}

/// The type of a documented argument, named as COMMAND DOCS names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    Str,
    Int,
    Double,
    Key,
    Pattern,
    UnixTime,
    PureToken,
    OneOf,
    Block,
}

impl ArgKind {
    pub fn name(self) -> &'static str {
        match self {
            ArgKind::Str => "string",
            ArgKind::Int => "integer",
            ArgKind::Double => "double",
            ArgKind::Key => "key",
            ArgKind::Pattern => "pattern",
            ArgKind::UnixTime => "unix-time",
            ArgKind::PureToken => "pure-token",
            ArgKind::OneOf => "oneof",
            ArgKind::Block => "block",
        }
    }
}

/// One argument of a command's documentation (`spec_docs`).
pub struct DocArg {
    pub name: &'static str,
    pub kind: ArgKind,
    /// The key specification this key argument is described by (-1: none).
    pub key_spec_index: i8,
    pub token: Option<&'static str>,
    pub summary: Option<&'static str>,
    pub since: Option<&'static str>,
    pub deprecated_since: Option<&'static str>,
    pub flags: u8,
    /// The arguments of a `oneof` or `block`.
    pub args: &'static [DocArg],
}

/// A command's documentation (`spec_docs`); summary, since and group as Redis 7.0 has them.
pub struct CmdDoc {
    pub fullname: &'static str,
    pub summary: Option<&'static str>,
    pub complexity: Option<&'static str>,
    pub doc_flags: u8,
    pub deprecated_since: Option<&'static str>,
    pub replaced_by: Option<&'static str>,
    pub history: &'static [(&'static str, &'static str)],
    pub args: &'static [DocArg],
}

#[allow(clippy::too_many_arguments)]
pub(crate) const fn a(
    name: &'static str,
    kind: ArgKind,
    key_spec_index: i8,
    token: Option<&'static str>,
    summary: Option<&'static str>,
    since: Option<&'static str>,
    deprecated_since: Option<&'static str>,
    flags: u8,
    args: &'static [DocArg],
) -> DocArg {
    DocArg { name, kind, key_spec_index, token, summary, since, deprecated_since, flags, args }
}

#[allow(clippy::too_many_arguments)]
pub(crate) const fn d(
    fullname: &'static str,
    summary: Option<&'static str>,
    complexity: Option<&'static str>,
    doc_flags: u8,
    deprecated_since: Option<&'static str>,
    replaced_by: Option<&'static str>,
    history: &'static [(&'static str, &'static str)],
    args: &'static [DocArg],
) -> CmdDoc {
    CmdDoc { fullname, summary, complexity, doc_flags, deprecated_since, replaced_by, history, args }
}
