//! Redis Cluster (7.0), the part without I/O: which slot a key hashes to, the nodes.conf
//! file, the cluster bus messages byte for byte, and the state machine that gossips,
//! detects failures and fails over.
//!
//! Nothing here opens a socket or reads a clock: time comes in as milliseconds of a
//! monotonic clock with every call, messages come in decoded and go out as values, the
//! config to persist goes out as an output. The server drives it (a later step), the
//! deterministic simulation in `sim` drives it in tests.

pub mod bus;
pub mod nodes_conf;
pub mod slot;
pub mod state;

#[cfg(test)]
mod sim;
