//! The table of every configuration directive ferrokv accepts: the directives of Redis 7.0
//! with their names, old aliases, value kinds, bounds and defaults, so that an existing
//! redis.conf loads unchanged and CONFIG GET answers like Redis. Directives whose feature
//! ferrokv does not have (cluster, TLS, modules…) are still accepted and reported, so
//! configuration management tools keep working; docs/CONFIG.md lists which are inert.

/// How a directive's value is parsed, shown and rewritten.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `yes` / `no`.
    Bool,
    /// An integer within bounds; `fmt` says which spellings are accepted.
    Num {
        min: i64,
        max: i64,
        fmt: u8,
    },
    /// One name out of a list (several names may share a value).
    Enum(&'static [(&'static str, i64)]),
    /// A set of names combined as bit flags (`shutdown-on-sigterm save now`).
    Flags(&'static [(&'static str, i64)]),
    /// A string; with `empty_is_null` an empty value means "unset".
    Str {
        empty_is_null: bool,
    },
    Dir,
    Save,
    ClientOutputBufferLimit,
    OomScoreAdjValues,
    NotifyKeyspaceEvents,
    Bind,
    ReplicaOf,
    Percentiles,
}

/// Numeric format flags.
pub const PLAIN: u8 = 0;
/// Accepts `1kb`, `2mb`, `1g`…; rewritten in the largest exact unit.
pub const MEMORY: u8 = 1;
/// Also accepts `N%` (stored negative).
pub const PERCENT: u8 = 2;
/// Written and read in octal.
pub const OCTAL: u8 = 4;

/// Directive flags.
pub const NONE: u16 = 0;
/// Only settable at startup.
pub const IMMUTABLE: u16 = 1;
/// Redacted from logs and MONITOR.
pub const SENSITIVE: u16 = 2;
/// Not matched by CONFIG GET patterns.
pub const HIDDEN: u16 = 4;
/// Settable at runtime only when `enable-protected-configs` allows it.
pub const PROTECTED: u16 = 8;
/// Not settable while loading data.
pub const DENY_LOADING: u16 = 16;
/// Takes several arguments.
pub const MULTI_ARG: u16 = 32;

const I32MAX: i64 = i32::MAX as i64;
const I32MIN: i64 = i32::MIN as i64;
const U32MAX: i64 = u32::MAX as i64;
const I64MAX: i64 = i64::MAX;

#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    pub flags: u16,
}

const fn p(name: &'static str, alias: Option<&'static str>, kind: Kind, default: &'static str, flags: u16) -> Param {
    Param { name, alias, kind, default, flags }
}

pub const MAXMEMORY_POLICY_ENUM: [(&str, i64); 8] = [
    ("volatile-lru", 0),
    ("volatile-lfu", 1),
    ("volatile-random", 2),
    ("volatile-ttl", 3),
    ("allkeys-lru", 4),
    ("allkeys-lfu", 5),
    ("allkeys-random", 6),
    ("noeviction", 7),
];
pub const SYSLOG_FACILITY_ENUM: [(&str, i64); 9] = [
    ("user", 0),
    ("local0", 1),
    ("local1", 2),
    ("local2", 3),
    ("local3", 4),
    ("local4", 5),
    ("local5", 6),
    ("local6", 7),
    ("local7", 8),
];
pub const LOGLEVEL_ENUM: [(&str, i64); 4] = [("debug", 0), ("verbose", 1), ("notice", 2), ("warning", 3)];
pub const SUPERVISED_MODE_ENUM: [(&str, i64); 4] = [("upstart", 1), ("systemd", 2), ("auto", 3), ("no", 0)];
pub const AOF_FSYNC_ENUM: [(&str, i64); 3] = [("everysec", 1), ("always", 2), ("no", 0)];
pub const SHUTDOWN_ON_SIG_ENUM: [(&str, i64); 5] =
    [("default", 0), ("save", 1), ("nosave", 2), ("now", 4), ("force", 8)];
pub const REPL_DISKLESS_LOAD_ENUM: [(&str, i64); 3] = [("disabled", 0), ("on-empty-db", 1), ("swapdb", 2)];
pub const TLS_AUTH_CLIENTS_ENUM: [(&str, i64); 3] = [("no", 0), ("yes", 1), ("optional", 2)];
pub const OOM_SCORE_ADJ_ENUM: [(&str, i64); 4] = [("no", 0), ("yes", 1), ("relative", 1), ("absolute", 2)];
pub const ACL_PUBSUB_DEFAULT_ENUM: [(&str, i64); 2] = [("allchannels", 1), ("resetchannels", 0)];
pub const SANITIZE_DUMP_PAYLOAD_ENUM: [(&str, i64); 3] = [("no", 0), ("yes", 1), ("clients", 2)];
pub const PROTECTED_ACTION_ENUM: [(&str, i64); 3] = [("no", 0), ("yes", 1), ("local", 2)];
pub const CLUSTER_PREFERRED_ENDPOINT_TYPE_ENUM: [(&str, i64); 3] =
    [("ip", 0), ("hostname", 1), ("unknown-endpoint", 2)];
pub const PROPAGATION_ERROR_BEHAVIOR_ENUM: [(&str, i64); 3] = [("ignore", 0), ("panic", 1), ("panic-on-replicas", 2)];

pub const PARAMS: &[Param] = &[
    p("rdbchecksum", None, Kind::Bool, "yes", IMMUTABLE),
    p("daemonize", None, Kind::Bool, "no", IMMUTABLE),
    p("io-threads-do-reads", None, Kind::Bool, "no", IMMUTABLE),
    p("always-show-logo", None, Kind::Bool, "no", IMMUTABLE),
    p("protected-mode", None, Kind::Bool, "yes", NONE),
    p("rdbcompression", None, Kind::Bool, "yes", NONE),
    p("rdb-del-sync-files", None, Kind::Bool, "no", NONE),
    p("activerehashing", None, Kind::Bool, "yes", NONE),
    p("stop-writes-on-bgsave-error", None, Kind::Bool, "yes", NONE),
    p("set-proc-title", None, Kind::Bool, "yes", IMMUTABLE),
    p("dynamic-hz", None, Kind::Bool, "yes", NONE),
    p("lazyfree-lazy-eviction", None, Kind::Bool, "no", NONE),
    p("lazyfree-lazy-expire", None, Kind::Bool, "no", NONE),
    p("lazyfree-lazy-server-del", None, Kind::Bool, "no", NONE),
    p("lazyfree-lazy-user-del", None, Kind::Bool, "no", NONE),
    p("lazyfree-lazy-user-flush", None, Kind::Bool, "no", NONE),
    p("repl-disable-tcp-nodelay", None, Kind::Bool, "no", NONE),
    p("repl-diskless-sync", None, Kind::Bool, "yes", NONE),
    p("aof-rewrite-incremental-fsync", None, Kind::Bool, "yes", NONE),
    p("no-appendfsync-on-rewrite", None, Kind::Bool, "no", NONE),
    p("cluster-require-full-coverage", None, Kind::Bool, "yes", NONE),
    p("rdb-save-incremental-fsync", None, Kind::Bool, "yes", NONE),
    p("aof-load-truncated", None, Kind::Bool, "yes", NONE),
    p("aof-use-rdb-preamble", None, Kind::Bool, "yes", NONE),
    p("aof-timestamp-enabled", None, Kind::Bool, "no", NONE),
    p("cluster-replica-no-failover", Some("cluster-slave-no-failover"), Kind::Bool, "no", NONE),
    p("replica-lazy-flush", Some("slave-lazy-flush"), Kind::Bool, "no", NONE),
    p("replica-serve-stale-data", Some("slave-serve-stale-data"), Kind::Bool, "yes", NONE),
    p("replica-read-only", Some("slave-read-only"), Kind::Bool, "yes", NONE),
    p("replica-ignore-maxmemory", Some("slave-ignore-maxmemory"), Kind::Bool, "yes", NONE),
    p("jemalloc-bg-thread", None, Kind::Bool, "yes", NONE),
    p("activedefrag", None, Kind::Bool, "no", NONE),
    p("syslog-enabled", None, Kind::Bool, "no", IMMUTABLE),
    p("cluster-enabled", None, Kind::Bool, "no", IMMUTABLE),
    p("appendonly", None, Kind::Bool, "no", DENY_LOADING),
    p("cluster-allow-reads-when-down", None, Kind::Bool, "no", NONE),
    p("cluster-allow-pubsubshard-when-down", None, Kind::Bool, "yes", NONE),
    p("crash-log-enabled", None, Kind::Bool, "yes", NONE),
    p("crash-memcheck-enabled", None, Kind::Bool, "yes", NONE),
    p("use-exit-on-panic", None, Kind::Bool, "no", HIDDEN),
    p("disable-thp", None, Kind::Bool, "yes", IMMUTABLE),
    p("cluster-allow-replica-migration", None, Kind::Bool, "yes", NONE),
    p("replica-announced", None, Kind::Bool, "yes", NONE),
    p("latency-tracking", None, Kind::Bool, "yes", NONE),
    p("aof-disable-auto-gc", None, Kind::Bool, "no", NONE),
    p("replica-ignore-disk-write-errors", None, Kind::Bool, "no", NONE),
    p("aclfile", None, Kind::Str { empty_is_null: false }, "", IMMUTABLE),
    p("unixsocket", None, Kind::Str { empty_is_null: true }, "", IMMUTABLE),
    p("pidfile", None, Kind::Str { empty_is_null: true }, "", IMMUTABLE),
    p("replica-announce-ip", Some("slave-announce-ip"), Kind::Str { empty_is_null: true }, "", NONE),
    p("masteruser", None, Kind::Str { empty_is_null: true }, "", SENSITIVE),
    p("cluster-announce-ip", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("cluster-config-file", None, Kind::Str { empty_is_null: false }, "nodes.conf", IMMUTABLE),
    p("cluster-announce-hostname", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("syslog-ident", None, Kind::Str { empty_is_null: false }, "redis", IMMUTABLE),
    p("dbfilename", None, Kind::Str { empty_is_null: false }, "dump.rdb", PROTECTED),
    p("appendfilename", None, Kind::Str { empty_is_null: false }, "appendonly.aof", IMMUTABLE),
    p("appenddirname", None, Kind::Str { empty_is_null: false }, "appendonlydir", IMMUTABLE),
    p("server_cpulist", None, Kind::Str { empty_is_null: true }, "", IMMUTABLE),
    p("bio_cpulist", None, Kind::Str { empty_is_null: true }, "", IMMUTABLE),
    p("aof_rewrite_cpulist", None, Kind::Str { empty_is_null: true }, "", IMMUTABLE),
    p("bgsave_cpulist", None, Kind::Str { empty_is_null: true }, "", IMMUTABLE),
    p("ignore-warnings", None, Kind::Str { empty_is_null: false }, "", NONE),
    p("proc-title-template", None, Kind::Str { empty_is_null: false }, "{title} {listen-addr} {server-mode}", NONE),
    p("bind-source-addr", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("logfile", None, Kind::Str { empty_is_null: false }, "", IMMUTABLE),
    p("masterauth", None, Kind::Str { empty_is_null: true }, "", SENSITIVE),
    p("requirepass", None, Kind::Str { empty_is_null: true }, "", SENSITIVE),
    p("supervised", None, Kind::Enum(&SUPERVISED_MODE_ENUM), "no", IMMUTABLE),
    p("syslog-facility", None, Kind::Enum(&SYSLOG_FACILITY_ENUM), "local0", IMMUTABLE),
    p("repl-diskless-load", None, Kind::Enum(&REPL_DISKLESS_LOAD_ENUM), "disabled", DENY_LOADING),
    p("loglevel", None, Kind::Enum(&LOGLEVEL_ENUM), "notice", NONE),
    p("maxmemory-policy", None, Kind::Enum(&MAXMEMORY_POLICY_ENUM), "noeviction", NONE),
    p("appendfsync", None, Kind::Enum(&AOF_FSYNC_ENUM), "everysec", NONE),
    p("oom-score-adj", None, Kind::Enum(&OOM_SCORE_ADJ_ENUM), "no", NONE),
    p("acl-pubsub-default", None, Kind::Enum(&ACL_PUBSUB_DEFAULT_ENUM), "resetchannels", NONE),
    p("sanitize-dump-payload", None, Kind::Enum(&SANITIZE_DUMP_PAYLOAD_ENUM), "no", NONE),
    p("enable-protected-configs", None, Kind::Enum(&PROTECTED_ACTION_ENUM), "no", IMMUTABLE),
    p("enable-debug-command", None, Kind::Enum(&PROTECTED_ACTION_ENUM), "no", IMMUTABLE),
    p("enable-module-command", None, Kind::Enum(&PROTECTED_ACTION_ENUM), "no", IMMUTABLE),
    p("cluster-preferred-endpoint-type", None, Kind::Enum(&CLUSTER_PREFERRED_ENDPOINT_TYPE_ENUM), "ip", NONE),
    p("propagation-error-behavior", None, Kind::Enum(&PROPAGATION_ERROR_BEHAVIOR_ENUM), "ignore", NONE),
    p("shutdown-on-sigint", None, Kind::Flags(&SHUTDOWN_ON_SIG_ENUM), "default", MULTI_ARG),
    p("shutdown-on-sigterm", None, Kind::Flags(&SHUTDOWN_ON_SIG_ENUM), "default", MULTI_ARG),
    p("databases", None, Kind::Num { min: 1, max: I32MAX, fmt: PLAIN }, "16", IMMUTABLE),
    p("port", None, Kind::Num { min: 0, max: 65535, fmt: PLAIN }, "6379", NONE),
    p("io-threads", None, Kind::Num { min: 1, max: 128, fmt: PLAIN }, "1", IMMUTABLE),
    p("auto-aof-rewrite-percentage", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "100", NONE),
    p(
        "cluster-replica-validity-factor",
        Some("cluster-slave-validity-factor"),
        Kind::Num { min: 0, max: I32MAX, fmt: PLAIN },
        "10",
        NONE,
    ),
    p(
        "list-max-listpack-size",
        Some("list-max-ziplist-size"),
        Kind::Num { min: I32MIN, max: I32MAX, fmt: PLAIN },
        "-2",
        NONE,
    ),
    p("tcp-keepalive", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "300", NONE),
    p("cluster-migration-barrier", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "1", NONE),
    p("active-defrag-cycle-min", None, Kind::Num { min: 1, max: 99, fmt: PLAIN }, "1", NONE),
    p("active-defrag-cycle-max", None, Kind::Num { min: 1, max: 99, fmt: PLAIN }, "25", NONE),
    p("active-defrag-threshold-lower", None, Kind::Num { min: 0, max: 1000, fmt: PLAIN }, "10", NONE),
    p("active-defrag-threshold-upper", None, Kind::Num { min: 0, max: 1000, fmt: PLAIN }, "100", NONE),
    p("lfu-log-factor", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "10", NONE),
    p("lfu-decay-time", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "1", NONE),
    p("replica-priority", Some("slave-priority"), Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "100", NONE),
    p("repl-diskless-sync-delay", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "5", NONE),
    p("maxmemory-samples", None, Kind::Num { min: 1, max: I32MAX, fmt: PLAIN }, "5", NONE),
    p("maxmemory-eviction-tenacity", None, Kind::Num { min: 0, max: 100, fmt: PLAIN }, "10", NONE),
    p("timeout", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "0", NONE),
    p("replica-announce-port", Some("slave-announce-port"), Kind::Num { min: 0, max: 65535, fmt: PLAIN }, "0", NONE),
    p("tcp-backlog", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "511", IMMUTABLE),
    p("cluster-port", None, Kind::Num { min: 0, max: 65535, fmt: PLAIN }, "0", IMMUTABLE),
    p("cluster-announce-bus-port", None, Kind::Num { min: 0, max: 65535, fmt: PLAIN }, "0", NONE),
    p("cluster-announce-port", None, Kind::Num { min: 0, max: 65535, fmt: PLAIN }, "0", NONE),
    p("cluster-announce-tls-port", None, Kind::Num { min: 0, max: 65535, fmt: PLAIN }, "0", NONE),
    p("repl-timeout", None, Kind::Num { min: 1, max: I32MAX, fmt: PLAIN }, "60", NONE),
    p(
        "repl-ping-replica-period",
        Some("repl-ping-slave-period"),
        Kind::Num { min: 1, max: I32MAX, fmt: PLAIN },
        "10",
        NONE,
    ),
    p("list-compress-depth", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "0", NONE),
    p("rdb-key-save-delay", None, Kind::Num { min: I32MIN, max: I32MAX, fmt: PLAIN }, "0", HIDDEN),
    p("key-load-delay", None, Kind::Num { min: I32MIN, max: I32MAX, fmt: PLAIN }, "0", HIDDEN),
    p("active-expire-effort", None, Kind::Num { min: 1, max: 10, fmt: PLAIN }, "1", NONE),
    p("hz", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "10", NONE),
    p("min-replicas-to-write", Some("min-slaves-to-write"), Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "0", NONE),
    p("min-replicas-max-lag", Some("min-slaves-max-lag"), Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "10", NONE),
    p("watchdog-period", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "0", HIDDEN),
    p("shutdown-timeout", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "10", NONE),
    p("repl-diskless-sync-max-replicas", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "0", NONE),
    p("maxclients", None, Kind::Num { min: 1, max: U32MAX, fmt: PLAIN }, "10000", NONE),
    p("unixsocketperm", None, Kind::Num { min: 0, max: 0o777, fmt: OCTAL }, "0", IMMUTABLE),
    p("socket-mark-id", None, Kind::Num { min: 0, max: U32MAX, fmt: PLAIN }, "0", IMMUTABLE),
    p("active-defrag-max-scan-fields", None, Kind::Num { min: 1, max: I64MAX, fmt: PLAIN }, "1000", NONE),
    p("slowlog-max-len", None, Kind::Num { min: 0, max: I64MAX, fmt: PLAIN }, "128", NONE),
    p("acllog-max-len", None, Kind::Num { min: 0, max: I64MAX, fmt: PLAIN }, "128", NONE),
    p("busy-reply-threshold", Some("lua-time-limit"), Kind::Num { min: 0, max: I64MAX, fmt: PLAIN }, "5000", NONE),
    p("cluster-node-timeout", None, Kind::Num { min: 0, max: I64MAX, fmt: PLAIN }, "15000", NONE),
    p("slowlog-log-slower-than", None, Kind::Num { min: -1, max: I64MAX, fmt: PLAIN }, "10000", NONE),
    p("latency-monitor-threshold", None, Kind::Num { min: 0, max: I64MAX, fmt: PLAIN }, "0", NONE),
    p("proto-max-bulk-len", None, Kind::Num { min: 1048576, max: I64MAX, fmt: MEMORY }, "536870912", NONE),
    p("stream-node-max-entries", None, Kind::Num { min: 0, max: I64MAX, fmt: PLAIN }, "100", NONE),
    p("repl-backlog-size", None, Kind::Num { min: 1, max: I64MAX, fmt: MEMORY }, "1048576", NONE),
    p("maxmemory", None, Kind::Num { min: 0, max: I64MAX, fmt: MEMORY }, "0", NONE),
    p("cluster-link-sendbuf-limit", None, Kind::Num { min: 0, max: I64MAX, fmt: MEMORY }, "0", NONE),
    p(
        "hash-max-listpack-entries",
        Some("hash-max-ziplist-entries"),
        Kind::Num { min: 0, max: I64MAX, fmt: PLAIN },
        "512",
        NONE,
    ),
    p("set-max-intset-entries", None, Kind::Num { min: 0, max: I64MAX, fmt: PLAIN }, "512", NONE),
    p(
        "zset-max-listpack-entries",
        Some("zset-max-ziplist-entries"),
        Kind::Num { min: 0, max: I64MAX, fmt: PLAIN },
        "128",
        NONE,
    ),
    p("active-defrag-ignore-bytes", None, Kind::Num { min: 1, max: I64MAX, fmt: MEMORY }, "104857600", NONE),
    p(
        "hash-max-listpack-value",
        Some("hash-max-ziplist-value"),
        Kind::Num { min: 0, max: I64MAX, fmt: MEMORY },
        "64",
        NONE,
    ),
    p("stream-node-max-bytes", None, Kind::Num { min: 0, max: I64MAX, fmt: MEMORY }, "4096", NONE),
    p(
        "zset-max-listpack-value",
        Some("zset-max-ziplist-value"),
        Kind::Num { min: 0, max: I64MAX, fmt: MEMORY },
        "64",
        NONE,
    ),
    p("hll-sparse-max-bytes", None, Kind::Num { min: 0, max: I64MAX, fmt: MEMORY }, "3000", NONE),
    p("tracking-table-max-keys", None, Kind::Num { min: 0, max: I64MAX, fmt: PLAIN }, "1000000", NONE),
    p("client-query-buffer-limit", None, Kind::Num { min: 1048576, max: I64MAX, fmt: MEMORY }, "1073741824", NONE),
    p("maxmemory-clients", None, Kind::Num { min: -100, max: I64MAX, fmt: MEMORY | PERCENT }, "0", NONE),
    p("repl-backlog-ttl", None, Kind::Num { min: 0, max: I64MAX, fmt: PLAIN }, "3600", NONE),
    p("auto-aof-rewrite-min-size", None, Kind::Num { min: 0, max: I64MAX, fmt: MEMORY }, "67108864", NONE),
    p(
        "loading-process-events-interval-bytes",
        None,
        Kind::Num { min: 1024, max: I32MAX, fmt: PLAIN },
        "2097152",
        HIDDEN,
    ),
    p("tls-port", None, Kind::Num { min: 0, max: 65535, fmt: PLAIN }, "0", NONE),
    p("tls-session-cache-size", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "20480", NONE),
    p("tls-session-cache-timeout", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "300", NONE),
    p("tls-cluster", None, Kind::Bool, "no", NONE),
    p("tls-replication", None, Kind::Bool, "no", NONE),
    p("tls-auth-clients", None, Kind::Enum(&TLS_AUTH_CLIENTS_ENUM), "yes", NONE),
    p("tls-prefer-server-ciphers", None, Kind::Bool, "no", NONE),
    p("tls-session-caching", None, Kind::Bool, "yes", NONE),
    p("tls-cert-file", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("tls-key-file", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("tls-key-file-pass", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("tls-client-cert-file", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("tls-client-key-file", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("tls-client-key-file-pass", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("tls-dh-params-file", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("tls-ca-cert-file", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("tls-ca-cert-dir", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("tls-protocols", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("tls-ciphers", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("tls-ciphersuites", None, Kind::Str { empty_is_null: true }, "", NONE),
    p("dir", None, Kind::Dir, "", PROTECTED | DENY_LOADING),
    p("save", None, Kind::Save, "3600 1 300 100 60 10000", MULTI_ARG),
    p(
        "client-output-buffer-limit",
        None,
        Kind::ClientOutputBufferLimit,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        MULTI_ARG,
    ),
    p("oom-score-adj-values", None, Kind::OomScoreAdjValues, "0 200 800", MULTI_ARG),
    p("notify-keyspace-events", None, Kind::NotifyKeyspaceEvents, "", NONE),
    p("bind", None, Kind::Bind, "* -::*", MULTI_ARG),
    p("replicaof", Some("slaveof"), Kind::ReplicaOf, "", IMMUTABLE | MULTI_ARG),
    p("latency-tracking-info-percentiles", None, Kind::Percentiles, "50 99 99.9", MULTI_ARG),
    // ferrokv's own: synchronous replication and the empty-master guard (docs/FAILOVER.md).
    p("sync-replicas", None, Kind::Num { min: 0, max: I32MAX, fmt: PLAIN }, "0", NONE),
    p("sync-replicas-timeout", None, Kind::Num { min: 1, max: I32MAX, fmt: PLAIN }, "2000", NONE),
    p("sync-replicas-lease", None, Kind::Num { min: 10, max: I32MAX, fmt: PLAIN }, "500", NONE),
    p("empty-master-guard", None, Kind::Bool, "yes", NONE),
    // ferrokv's own: the Prometheus /metrics endpoint (0: off), on the `bind` addresses.
    p("metrics-port", None, Kind::Num { min: 0, max: 65535, fmt: PLAIN }, "0", IMMUTABLE),
    // ferrokv's own: microseconds the command thread may spin before it sleeps (busy_poll.rs).
    p("busy-poll-us", None, Kind::Num { min: 0, max: 1000, fmt: PLAIN }, "50", NONE),
];

/// Index of a directive in [`PARAMS`], resolved at compile time.
pub type Pid = usize;

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Finds a directive by canonical name at compile time (a typo fails the build).
pub const fn pid(name: &str) -> Pid {
    let mut i = 0;
    while i < PARAMS.len() {
        if str_eq(PARAMS[i].name, name) {
            return i;
        }
        i += 1;
    }
    panic!("unknown config parameter")
}
