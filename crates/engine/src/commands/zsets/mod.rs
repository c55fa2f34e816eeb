//! Sorted set commands: ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT,
//! the ZRANGE family (ZRANGE, ZRANGESTORE, ZREVRANGE, Z[REV]RANGEBYSCORE,
//! Z[REV]RANGEBYLEX), ZRANK, ZREVRANK, ZREMRANGEBY{RANK,SCORE,LEX}, the pops (ZPOPMIN,
//! ZPOPMAX, ZMPOP and their blocking forms), ZRANDMEMBER, the set operations (ZUNION,
//! ZINTER, ZDIFF, their STORE forms, ZINTERCARD) and ZSCAN.
//!
//! Propagation follows Redis 7.0: ZADD/ZINCRBY go out as received (float addition is
//! deterministic); ZMPOP and every blocking pop go out as the ZPOPMIN/ZPOPMAX they did.
//! Argument checks run in Redis's order, since that decides which error a client sees.
//!
//! Files: `args` (argument parsing), `add` (ZADD, ZINCRBY, ZREM), `reads` (counts, scores,
//! ranks), `range` (the ZRANGE family, ZREMRANGEBY*), `pop` (the pops, blocking or not),
//! `randmember`, `setops` (ZUNION, ZINTER, ZDIFF & co), `scan`. This file holds the
//! plumbing they share.

mod add;
mod args;
mod pop;
mod randmember;
mod range;
mod reads;
mod scan;
mod setops;

pub use add::{zadd, zincrby, zrem};
pub(crate) use args::{score_arg, strtod_whole};
pub use pop::{bzmpop, bzpopmax, bzpopmin, zmpop, zpopmax, zpopmin};
pub use randmember::zrandmember;
pub use range::{
    zrange, zrangebylex, zrangebyscore, zrangestore, zremrangebylex, zremrangebyrank, zremrangebyscore, zrevrange,
    zrevrangebylex, zrevrangebyscore,
};
pub use reads::{zcard, zcount, zlexcount, zmscore, zrank, zrevrank, zscore};
pub use scan::zscan;
pub use setops::{zdiff, zdiffstore, zinter, zintercard, zinterstore, zunion, zunionstore};

use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::types::zset::{Limits, ZSet};
use ferrokv_keyspace::{Obj, Value};
use ferrokv_resp::ReplyBuf;

type Entries = Vec<(Vec<u8>, f64)>;

fn zset_of(v: &Value) -> Result<&ZSet, CmdError> {
    match v {
        Value::ZSet(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

fn zset_of_mut(v: &mut Value) -> Result<&mut ZSet, CmdError> {
    match v {
        Value::ZSet(z) => Ok(z),
        _ => Err(CmdError::WrongType),
    }
}

fn limits(c: &Ctx) -> Limits {
    c.eng.hot.encoding_limits.zset
}

/// Redis's arity error, for forms Redis 7.0 rejects by arity that ferrokv's table admits.
fn arity_error(c: &Ctx) -> CmdError {
    CmdError::msg(format!("ERR wrong number of arguments for '{}' command", c.eng.commands.get(c.cmd).fullname()))
}

// ---------------------------------------------------------------------------------------
// Shared plumbing

/// Replies a list of entries: members only, or with scores (flat in RESP2, pairs in RESP3).
fn reply_entries(out: &mut ReplyBuf, entries: &[(Vec<u8>, f64)], withscores: bool) {
    let flat = withscores && !out.resp3();
    out.array(if flat { entries.len() * 2 } else { entries.len() });
    for (m, s) in entries {
        if withscores && !flat {
            out.array(2);
        }
        out.bulk(m);
        if withscores {
            out.double(*s);
        }
    }
}

/// Deletes `key` once its sorted set is empty (Redis keeps no empty aggregates).
fn drop_if_empty(c: &mut Ctx, key: &[u8]) -> bool {
    let db = c.client.db;
    let empty = c.eng.dbs[db].peek(key, c.now).is_some_and(|o| o.value.elements() == 0);
    if empty {
        c.eng.dbs[db].remove(key);
        c.notify(notify::GENERIC, "del", key);
    }
    empty
}

/// Stores a computed result at `dst` (replacing any value and TTL) or, if it is empty,
/// deletes `dst`; replies the result's size. Encoding by size, as Redis picks it.
pub(crate) fn store_result(c: &mut Ctx, dst: &[u8], entries: Entries, event: &str) -> CmdResult {
    let db = c.client.db;
    let existed = c.eng.dbs[db].remove(dst).is_some();
    let n = entries.len();
    if n > 0 {
        let z = ZSet::from_entries(entries, limits(c));
        c.eng.dbs[db].add(dst, Obj::new(Value::ZSet(Box::new(z)), c.now));
        c.modified(dst);
        c.notify(notify::ZSET, event, dst);
        c.signal_ready(dst);
    } else if existed {
        c.modified(dst);
        c.notify(notify::GENERIC, "del", dst);
    }
    c.out().int(n as i64);
    Ok(())
}

/// The sorted set at `key` for reading (None if missing; WRONGTYPE for other types).
fn read_zset<'c>(c: &'c mut Ctx, key: &[u8]) -> Result<Option<&'c ZSet>, CmdError> {
    match c.eng.lookup_read(c.client.db, key, c.now) {
        None => Ok(None),
        Some(o) => zset_of(&o.value).map(Some),
    }
}
