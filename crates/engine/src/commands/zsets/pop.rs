//! The pops: ZPOPMIN, ZPOPMAX, ZMPOP and their blocking forms BZPOPMIN, BZPOPMAX, BZMPOP.
//! ZMPOP and every blocking pop propagate as the ZPOPMIN/ZPOPMAX they did.

use super::args::positive_arg;
use super::{drop_if_empty, zset_of, zset_of_mut};
use crate::blocking::{BlockRequest, TimeoutReply};
use crate::ctx::{is, timeout_arg, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::{SmallBytes, ValueType};
use ferrokv_resp::ReplyBuf;

/// The reply shape of a pop.
#[derive(Clone, Copy)]
struct PopShape {
    /// Lead with the key name (BZPOP*, ZMPOP, BZMPOP).
    emit_key: bool,
    /// Pairs as nested arrays (ZMPOP, BZMPOP; ZPOP* with a count in RESP3).
    nested: bool,
    /// Null array rather than an empty one when nothing is there (ZMPOP, BZMPOP).
    nil_when_empty: bool,
}

/// Redis's `genericZpopCommand`: pops up to `count` (None: the single-pop form) from the
/// first existing key of `keys`, replies, and returns the key and how many it popped.
fn pop_generic(
    c: &mut Ctx,
    keys: &[&[u8]],
    max: bool,
    count: Option<i64>,
    shape: PopShape,
) -> Result<Option<(Vec<u8>, usize)>, CmdError> {
    let db = c.client.db;
    let mut found = None;
    for k in keys {
        if let Some(o) = c.eng.lookup_write(db, k, c.now) {
            zset_of(&o.value)?;
            found = Some(*k);
            break;
        }
    }
    let Some(key) = found else {
        if shape.nil_when_empty {
            c.out().null_array();
        } else {
            c.out().array(0);
        }
        return Ok(None);
    };
    if count == Some(0) {
        c.out().array(0);
        return Ok(None);
    }
    let z = c.eng.dbs[db].get_mut_unchecked(key).and_then(|o| zset_of_mut(&mut o.value).ok()).expect("checked above");
    let want = count.unwrap_or(1).max(1) as u64;
    let n = want.min(z.len() as u64) as usize;
    let mut popped = if max { z.remove_ranks(z.len() - n, z.len() - 1) } else { z.remove_ranks(0, n - 1) };
    if max {
        popped.reverse();
    }
    reply_popped(c.out(), key, &popped, shape);
    c.modified_in(db, key, n as u64);
    c.notify(notify::ZSET, if max { "zpopmax" } else { "zpopmin" }, key);
    drop_if_empty(c, key);
    Ok(Some((key.to_vec(), n)))
}

fn reply_popped(out: &mut ReplyBuf, key: &[u8], popped: &[(SmallBytes, f64)], shape: PopShape) {
    match (shape.emit_key, shape.nested) {
        (false, false) => out.array(popped.len() * 2),
        (false, true) => out.array(popped.len()),
        (true, false) => {
            out.array(popped.len() * 2 + 1);
            out.bulk(key);
        }
        (true, true) => {
            out.array(2);
            out.bulk(key);
            out.array(popped.len());
        }
    }
    for (m, s) in popped {
        if shape.nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(*s);
    }
}

fn pop_command_name(max: bool) -> Vec<u8> {
    if max {
        b"ZPOPMAX".to_vec()
    } else {
        b"ZPOPMIN".to_vec()
    }
}

fn zpop_minmax(c: &mut Ctx, max: bool) -> CmdResult {
    if c.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = match c.argc() {
        3 => Some(positive_arg(c.arg(2), "ERR value is out of range, must be positive")?),
        _ => None,
    };
    let shape = PopShape { emit_key: false, nested: c.client.resp3() && count.is_some(), nil_when_empty: false };
    pop_generic(c, &[c.arg(1)], max, count, shape)?;
    Ok(())
}

pub fn zpopmin(c: &mut Ctx) -> CmdResult {
    zpop_minmax(c, false)
}

pub fn zpopmax(c: &mut Ctx) -> CmdResult {
    zpop_minmax(c, true)
}

/// Blocks on `keys` when allowed; inside MULTI answers as a timeout would.
fn block_or_nil(c: &mut Ctx, keys: &[&[u8]], deadline_ms: Option<i64>) {
    if !c.can_block() {
        c.out().null_array();
        return;
    }
    c.block(BlockRequest {
        keys: keys.iter().map(|k| SmallBytes::from(*k)).collect(),
        deadline_ms,
        wants: ValueType::ZSet,
        timeout_reply: TimeoutReply::NullArray,
        argv: None,
    });
}

fn bzpop_minmax(c: &mut Ctx, max: bool) -> CmdResult {
    let deadline = timeout_arg(c.arg(c.argc() - 1), c.now)?;
    let argv = c.argv;
    let keys: Vec<&[u8]> = (1..argv.len() - 1).map(|i| argv.get(i)).collect();
    let shape = PopShape { emit_key: true, nested: false, nil_when_empty: false };
    if !any_zset(c, &keys)? {
        block_or_nil(c, &keys, deadline);
        return Ok(());
    }
    if let Some((key, _)) = pop_generic(c, &keys, max, None, shape)? {
        c.rewrite_as(vec![pop_command_name(max), key]);
    }
    Ok(())
}

/// Whether one of `keys` holds a sorted set (WRONGTYPE if the first existing key holds
/// something else, as a blocking pop checks keys in order).
fn any_zset(c: &mut Ctx, keys: &[&[u8]]) -> Result<bool, CmdError> {
    let db = c.client.db;
    for k in keys {
        if let Some(o) = c.eng.lookup_write(db, k, c.now) {
            return zset_of(&o.value).map(|_| true);
        }
    }
    Ok(false)
}

pub fn bzpopmin(c: &mut Ctx) -> CmdResult {
    bzpop_minmax(c, false)
}

pub fn bzpopmax(c: &mut Ctx) -> CmdResult {
    bzpop_minmax(c, true)
}

/// ZMPOP/BZMPOP arguments from `numkeys` at `at`: (keys, max, count).
fn parse_mpop<'a>(c: &Ctx<'a>, at: usize) -> Result<(Vec<&'a [u8]>, bool, i64), CmdError> {
    let numkeys = ferrokv_resp::parse_i64(c.arg(at))
        .filter(|&n| n >= 1)
        .ok_or(CmdError::err("ERR numkeys should be greater than 0"))? as u64;
    let where_idx = (at as u64).saturating_add(numkeys).saturating_add(1);
    if where_idx >= c.argc() as u64 {
        return Err(CmdError::Syntax);
    }
    let where_idx = where_idx as usize;
    let max = match c.arg(where_idx) {
        a if is(a, "min") => false,
        a if is(a, "max") => true,
        _ => return Err(CmdError::Syntax),
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < c.argc() {
        if count.is_none() && is(c.arg(j), "count") && j + 1 < c.argc() {
            let n = ferrokv_resp::parse_i64(c.arg(j + 1))
                .filter(|&n| n >= 1)
                .ok_or(CmdError::err("ERR count should be greater than 0"))?;
            count = Some(n);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let keys = (at + 1..where_idx).map(|i| c.arg(i)).collect();
    Ok((keys, max, count.unwrap_or(1)))
}

const MPOP_SHAPE: PopShape = PopShape { emit_key: true, nested: true, nil_when_empty: true };

/// Pops for ZMPOP/BZMPOP and propagates the ZPOPMIN/ZPOPMAX with COUNT that it did.
fn mpop_and_rewrite(c: &mut Ctx, keys: &[&[u8]], max: bool, count: i64) -> CmdResult {
    if let Some((key, n)) = pop_generic(c, keys, max, Some(count), MPOP_SHAPE)? {
        c.rewrite_as(vec![pop_command_name(max), key, n.to_string().into_bytes()]);
    }
    Ok(())
}

pub fn zmpop(c: &mut Ctx) -> CmdResult {
    let (keys, max, count) = parse_mpop(c, 1)?;
    mpop_and_rewrite(c, &keys, max, count)
}

pub fn bzmpop(c: &mut Ctx) -> CmdResult {
    let (keys, max, count) = parse_mpop(c, 2)?;
    let deadline = timeout_arg(c.arg(1), c.now)?;
    if !any_zset(c, &keys)? {
        block_or_nil(c, &keys, deadline);
        return Ok(());
    }
    mpop_and_rewrite(c, &keys, max, count)
}
