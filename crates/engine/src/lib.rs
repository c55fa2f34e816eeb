//! The ferrokv engine: everything a Redis server does between "a request was parsed" and
//! "these bytes go back to the client" — command lookup and checks, the command families,
//! clients' state, pub/sub, transactions, keyspace notifications, statistics, and the
//! write feed that carries every executed write, in order, to the AOF and replicas.
//!
//! It is sans-IO: the server layer owns sockets, files and clocks, passes the current time
//! in, drains each client's output, and implements [`host::Host`] for the few things the
//! engine needs from the outside. That keeps every command deterministic and testable
//! without a network.

pub mod acl;
pub mod blocking;
pub mod busy;
pub mod client;
pub mod cluster;
pub mod commands;
pub mod connections;
pub mod ctx;
pub mod digest;
pub mod engine;
pub mod error;
pub mod evict;
pub mod fanout;
pub mod feed;
pub mod host;
pub mod latency;
pub mod lcs;
pub mod longdouble;
pub mod metrics_snapshot;
pub mod persistence;
mod prefetch;
pub mod pubsub;
pub mod replication;
mod reply_mode;
pub mod slowlog;
pub mod stats;
pub mod tracking;
mod tracking_delivery;
pub mod watch;

pub use client::{ClientId, ConnInfo, Transport, Waker};
pub use engine::{unix_ms, Engine, Outcome, ServerInfo};
pub use host::{CpuInfo, Host, MemoryInfo, NullHost, ShutdownRequest};
