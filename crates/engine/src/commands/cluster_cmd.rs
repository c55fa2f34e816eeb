//! CLUSTER, READONLY, READWRITE and ASKING outside cluster mode: Redis 7.0 answers every
//! one of them (after the usual arity and subcommand checks) with the same error, which
//! is how client libraries and tools tell a standalone server from a cluster node.
//! Cluster mode itself is issue 17 (crates/cluster).

use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};

pub const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";

pub fn cluster_disabled(_c: &mut Ctx) -> CmdResult {
    Err(CmdError::Msg(CLUSTER_DISABLED.into()))
}
