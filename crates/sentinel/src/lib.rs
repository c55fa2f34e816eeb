//! Redis Sentinel, compatible with Redis's sentinels and their clients: monitoring of
//! masters and replicas, agreement on failures, leader election, failover, and the
//! SENTINEL command surface.
//!
//! The logic is a sans-IO state machine ([`Sentinel`]): plain data in, plain data out,
//! time passed in, so every scenario (partitions, split votes, clock jumps) runs in unit
//! tests with virtual time. [`driver`] is the thin tokio layer that owns the sockets, the
//! clock and the config file, and serves clients on port 26379.

pub mod acl;
pub mod addr;
mod clock;
pub mod commands;
mod discovery;
pub mod driver;
pub mod election;
pub mod env;
pub mod failover;
pub mod freeze;
pub mod hello;
pub mod info;
pub mod instance;
mod links;
pub mod master;
mod monitor;
pub mod persist;
pub mod selection;
pub mod sentinel;
pub mod settings;

#[cfg(test)]
mod sim;

pub use env::{Level, Output};
pub use sentinel::{MemoryPersist, Persist, Sentinel};
