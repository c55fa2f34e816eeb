//! ZADD, ZINCRBY and ZREM.

use super::args::score_arg;
use super::{drop_if_empty, limits, zset_of, zset_of_mut};
use crate::ctx::{is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::types::zset::{Limits, ZSet};
use ferrokv_keyspace::{Obj, Value};

#[derive(Default, Clone, Copy)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

/// What adding one member did.
enum AddOutcome {
    Added(f64),
    Updated(f64),
    /// Present with the same score (or a zero increment): processed, nothing changed.
    Same(f64),
    /// Skipped by NX/XX/GT/LT.
    Nop,
    Nan,
}

/// Parses ZADD's leading options; returns them and the index of the first score.
fn parse_add_flags(c: &Ctx, incr: bool) -> (AddFlags, usize) {
    let mut f = AddFlags { incr, ..AddFlags::default() };
    let mut i = 2;
    while i < c.argc() {
        let a = c.arg(i);
        match () {
            _ if is(a, "nx") => f.nx = true,
            _ if is(a, "xx") => f.xx = true,
            _ if is(a, "ch") => f.ch = true,
            _ if is(a, "incr") => f.incr = true,
            _ if is(a, "gt") => f.gt = true,
            _ if is(a, "lt") => f.lt = true,
            _ => break,
        }
        i += 1;
    }
    (f, i)
}

fn check_add_flags(f: &AddFlags, pairs: usize) -> CmdResult {
    if f.nx && f.xx {
        return fail("ERR XX and NX options at the same time are not compatible");
    }
    if ((f.gt || f.lt) && f.nx) || (f.gt && f.lt) {
        return fail("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && pairs > 1 {
        return fail("ERR INCR option supports a single increment-element pair");
    }
    Ok(())
}

/// Redis's `zsetAdd`: one member under the ZADD flags.
fn add_one(z: &mut ZSet, member: &[u8], score: f64, f: AddFlags, lim: Limits) -> AddOutcome {
    match z.score(member) {
        Some(cur) => {
            if f.nx {
                return AddOutcome::Nop;
            }
            let new = if f.incr { score + cur } else { score };
            if new.is_nan() {
                return AddOutcome::Nan;
            }
            if (f.lt && new >= cur) || (f.gt && new <= cur) {
                return AddOutcome::Nop;
            }
            if new == cur {
                return AddOutcome::Same(new);
            }
            z.update(member, new);
            AddOutcome::Updated(new)
        }
        None if !f.xx => {
            z.insert(member, score, lim);
            AddOutcome::Added(score)
        }
        None => AddOutcome::Nop,
    }
}

fn zadd_generic(c: &mut Ctx, incr: bool) -> CmdResult {
    let key = c.arg(1);
    let (f, first) = parse_add_flags(c, incr);
    let elements = c.argc() - first;
    if elements == 0 || elements % 2 == 1 {
        return Err(CmdError::Syntax);
    }
    check_add_flags(&f, elements / 2)?;
    let scores = (first..c.argc())
        .step_by(2)
        .map(|i| score_arg(c.arg(i), CmdError::NotFloat))
        .collect::<Result<Vec<f64>, _>>()?;
    let db = c.client.db;
    let lim = limits(c);
    match c.eng.lookup_write(db, key, c.now) {
        Some(o) => {
            zset_of(&o.value)?;
        }
        None if f.xx => {
            if f.incr {
                c.out().null();
            } else {
                c.out().int(0);
            }
            return Ok(());
        }
        None => {
            let z = ZSet::for_first_member(c.arg(first + 1).len(), lim);
            c.eng.dbs[db].add(key, Obj::new(Value::ZSet(Box::new(z)), c.now));
        }
    }
    let argv = c.argv;
    let o = c.eng.dbs[db].get_mut_unchecked(key).expect("looked up or added above");
    let z = zset_of_mut(&mut o.value)?;
    let (mut added, mut updated, mut last) = (0u64, 0u64, None);
    let mut nan = false;
    for (j, &score) in scores.iter().enumerate() {
        match add_one(z, argv.get(first + 1 + 2 * j), score, f, lim) {
            AddOutcome::Added(s) => (added, last) = (added + 1, Some(s)),
            AddOutcome::Updated(s) => (updated, last) = (updated + 1, Some(s)),
            AddOutcome::Same(s) => last = Some(s),
            AddOutcome::Nop => {}
            AddOutcome::Nan => {
                nan = true;
                break;
            }
        }
    }
    if added + updated > 0 {
        c.modified_in(db, key, added + updated);
        c.notify(notify::ZSET, if f.incr { "zincr" } else { "zadd" }, key);
        c.signal_ready(key);
    }
    if nan {
        drop_if_empty(c, key);
        return fail("ERR resulting score is not a number (NaN)");
    }
    match (f.incr, last) {
        (true, Some(s)) => c.out().double(s),
        (true, None) => c.out().null(),
        (false, _) => c.out().int((if f.ch { added + updated } else { added }) as i64),
    }
    Ok(())
}

pub fn zadd(c: &mut Ctx) -> CmdResult {
    zadd_generic(c, false)
}

pub fn zincrby(c: &mut Ctx) -> CmdResult {
    zadd_generic(c, true)
}

pub fn zrem(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let db = c.client.db;
    let argv = c.argv;
    let Some(o) = c.eng.lookup_write(db, key, c.now) else {
        c.out().int(0);
        return Ok(());
    };
    let z = zset_of_mut(&mut o.value)?;
    let mut deleted = 0u64;
    for i in 2..argv.len() {
        if z.remove(argv.get(i)).is_some() {
            deleted += 1;
        }
        if z.is_empty() {
            break;
        }
    }
    if deleted > 0 {
        c.notify(notify::ZSET, "zrem", key);
        drop_if_empty(c, key);
        c.modified_in(db, key, deleted);
    }
    c.out().int(deleted as i64);
    Ok(())
}
