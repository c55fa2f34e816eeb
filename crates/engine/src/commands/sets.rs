//! Set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SPOP, SRANDMEMBER,
//! SMOVE, SINTER, SINTERCARD, SINTERSTORE, SUNION, SUNIONSTORE, SDIFF, SDIFFSTORE, SSCAN.
//!
//! SPOP is propagated as the SREMs it performed (or a DEL when it emptied the set), so
//! replicas remove the same members rather than drawing their own random ones.

use super::keys::{parse_cursor, parse_scan_opts, reply_scan};
use crate::ctx::{is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::types::set::Set;
use ferrokv_keyspace::{Obj, Value};
use std::collections::HashSet;

fn set_of(v: &Value) -> Result<&Set, CmdError> {
    match v {
        Value::Set(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

fn set_of_mut(v: &mut Value) -> Result<&mut Set, CmdError> {
    match v {
        Value::Set(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

fn max_intset(c: &Ctx) -> usize {
    c.eng.hot.encoding_limits.set_max_intset
}

/// Members of the set at `key` (None if missing), for read-only multi-key commands.
fn read_set(c: &mut Ctx, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>, CmdError> {
    match c.eng.lookup_read(c.client.db, key, c.now) {
        None => Ok(None),
        Some(o) => Ok(Some(set_of(&o.value)?.members())),
    }
}

/// Deletes `key` if its set became empty (Redis never keeps empty aggregates).
fn drop_if_empty(c: &mut Ctx, db: usize, key: &[u8]) {
    let empty = c.eng.dbs[db].peek(key, c.now).is_some_and(|o| o.value.elements() == 0);
    if empty {
        c.eng.dbs[db].remove(key);
        c.notify_in(db, notify::GENERIC, "del", key);
    }
}

pub fn sadd(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let db = c.client.db;
    let max = max_intset(c);
    if c.eng.lookup_write(db, key, c.now).is_none() {
        let first = c.argv.get(2);
        c.eng.dbs[db].add(key, Obj::new(Value::Set(Box::new(Set::for_member(first))), c.now));
    }
    let o = c.eng.dbs[db].get_mut_unchecked(key).expect("present");
    let set = set_of_mut(&mut o.value)?;
    let mut added = 0;
    for i in 2..c.argv.len() {
        if set.insert(c.argv.get(i), max) {
            added += 1;
        }
    }
    if added > 0 {
        c.modified_in(db, key, added);
        c.notify(notify::SET, "sadd", key);
    }
    c.out().int(added as i64);
    Ok(())
}

pub fn srem(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let db = c.client.db;
    let Some(o) = c.eng.lookup_write(db, key, c.now) else {
        c.out().int(0);
        return Ok(());
    };
    let set = set_of_mut(&mut o.value)?;
    let removed = (2..c.argv.len()).filter(|&i| set.remove(c.argv.get(i))).count() as u64;
    if removed > 0 {
        c.modified_in(db, key, removed);
        c.notify(notify::SET, "srem", key);
        drop_if_empty(c, db, key);
    }
    c.out().int(removed as i64);
    Ok(())
}

pub fn smembers(c: &mut Ctx) -> CmdResult {
    let members = read_set(c, c.arg(1))?.unwrap_or_default();
    let out = c.out();
    out.set(members.len());
    for m in &members {
        out.bulk(m);
    }
    Ok(())
}

pub fn sismember(c: &mut Ctx) -> CmdResult {
    let found = match c.eng.lookup_read(c.client.db, c.arg(1), c.now) {
        None => false,
        Some(o) => set_of(&o.value)?.contains(c.argv.get(2)),
    };
    c.out().int(found as i64);
    Ok(())
}

pub fn smismember(c: &mut Ctx) -> CmdResult {
    let flags: Vec<bool> = match c.eng.lookup_read(c.client.db, c.arg(1), c.now) {
        None => vec![false; c.argc() - 2],
        Some(o) => {
            let set = set_of(&o.value)?;
            (2..c.argv.len()).map(|i| set.contains(c.argv.get(i))).collect()
        }
    };
    let out = c.out();
    out.array(flags.len());
    for f in flags {
        out.int(f as i64);
    }
    Ok(())
}

pub fn scard(c: &mut Ctx) -> CmdResult {
    let n = match c.eng.lookup_read(c.client.db, c.arg(1), c.now) {
        None => 0,
        Some(o) => set_of(&o.value)?.len(),
    };
    c.out().int(n as i64);
    Ok(())
}

pub fn spop(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let db = c.client.db;
    if c.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = if c.argc() == 3 {
        // Redis uses one message for both a non-number and a negative count here.
        match ferrokv_resp::parse_i64(c.arg(2)) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return fail("ERR value is out of range, must be positive"),
        }
    } else {
        None
    };
    let mut rng = c.eng.rng.fork();
    let Some(o) = c.eng.lookup_write(db, key, c.now) else {
        match count {
            Some(_) => c.out().set(0),
            None => c.out().null(),
        }
        return Ok(());
    };
    let set = set_of_mut(&mut o.value)?;
    let size = set.len();
    if count == Some(0) {
        c.out().set(0);
        return Ok(());
    }
    // Pop first, then account: the set borrow must end before notifying.
    let (popped, emptied) = match count {
        None => (vec![set.pop_random(&mut rng).expect("stored sets are not empty")], set.is_empty()),
        Some(n) if n >= size => (set.members(), true),
        Some(n) => ((0..n).map(|_| set.pop_random(&mut rng).expect("count < size")).collect(), false),
    };
    c.notify(notify::SET, "spop", key);
    if emptied {
        c.eng.dbs[db].remove(key);
        c.notify(notify::GENERIC, "del", key);
    }
    c.modified_in(db, key, popped.len() as u64);
    match count {
        None => {
            c.rewrite_as(vec![b"SREM".to_vec(), key.to_vec(), popped[0].clone()]);
            c.out().bulk(&popped[0]);
        }
        Some(_) => {
            if emptied {
                c.rewrite_as(vec![b"DEL".to_vec(), key.to_vec()]);
            } else {
                c.rewrite_as_many(popped.iter().map(|m| vec![b"SREM".to_vec(), key.to_vec(), m.clone()]).collect());
            }
            let out = c.out();
            out.set(popped.len());
            for m in &popped {
                out.bulk(m);
            }
        }
    }
    Ok(())
}

pub fn srandmember(c: &mut Ctx) -> CmdResult {
    if c.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = if c.argc() == 3 {
        let n = crate::ctx::random_count_arg(c.arg(2))?;
        Some(n)
    } else {
        None
    };
    let db = c.client.db;
    let mut rng = c.eng.rng.fork();
    let rng = &mut rng;
    let Some(o) = c.eng.lookup_read(db, c.argv.get(1), c.now) else {
        match count {
            Some(_) => c.client.out.array(0),
            None => c.client.out.null(),
        }
        return Ok(());
    };
    let set = set_of(&o.value)?;
    let picked: Vec<Vec<u8>> = match count {
        None => {
            let m = set.random(rng).expect("stored sets are not empty");
            c.client.out.bulk(&m);
            return Ok(());
        }
        Some(0) => Vec::new(),
        // Negative: that many draws, repeats allowed, written as they are drawn (the
        // count may be up to 2^63: nothing is collected first, and the loop ends once the
        // reply has doomed the client at its output limit).
        Some(n) if n < 0 => {
            let draws = n.unsigned_abs() as usize;
            let out = &mut c.client.out;
            out.array(draws);
            for _ in 0..draws {
                if out.doomed() {
                    break;
                }
                let Some(m) = set.random(rng) else { break };
                out.bulk(&m);
            }
            return Ok(());
        }
        Some(n) if n as usize >= set.len() => set.members(),
        Some(n) => {
            // Distinct members: draw until enough unique ones.
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            while out.len() < n as usize {
                if let Some(m) = set.random(rng) {
                    if seen.insert(m.clone()) {
                        out.push(m);
                    }
                }
            }
            out
        }
    };
    c.client.out.bulks(picked.iter().map(Vec::as_slice));
    Ok(())
}

pub fn smove(c: &mut Ctx) -> CmdResult {
    let (src, dst, member) = (c.arg(1), c.arg(2), c.arg(3));
    let db = c.client.db;
    let max = max_intset(c);
    let src_has = match c.eng.lookup_write(db, src, c.now) {
        None => None,
        Some(o) => Some(set_of(&o.value)?.contains(member)),
    };
    // Both keys are looked up (expiring them) before anything is checked, but a missing
    // source answers 0 before the destination's type is looked at, as in Redis.
    let dst_is_set = c.eng.lookup_write(db, dst, c.now).map(|o| set_of(&o.value).map(|_| ()));
    if src_has.is_none() {
        c.out().int(0);
        return Ok(());
    }
    dst_is_set.transpose()?;
    let Some(true) = src_has else {
        c.out().int(0);
        return Ok(());
    };
    if src == dst {
        c.out().int(1);
        return Ok(());
    }
    if let Some(o) = c.eng.dbs[db].get_mut_unchecked(src) {
        set_of_mut(&mut o.value)?.remove(member);
    }
    c.notify(notify::SET, "srem", src);
    drop_if_empty(c, db, src);
    if c.eng.lookup_write(db, dst, c.now).is_none() {
        c.eng.dbs[db].add(dst, Obj::new(Value::Set(Box::new(Set::for_member(member))), c.now));
    }
    c.modified(src);
    let o = c.eng.dbs[db].get_mut_unchecked(dst).expect("present");
    // A destination that already held the member is not modified (no WATCH failure, no
    // `sadd` event, one change counted), as in Redis.
    if set_of_mut(&mut o.value)?.insert(member, max) {
        c.modified(dst);
        c.notify(notify::SET, "sadd", dst);
    }
    c.out().int(1);
    Ok(())
}

enum Op {
    Inter,
    Union,
    Diff,
}

/// Computes an intersection/union/difference of the sets at `keys` (missing keys are
/// empty sets; any non-set is WRONGTYPE). `limit` stops an intersection early (0 = none).
fn combine(c: &mut Ctx, keys: &[&[u8]], op: Op, limit: usize) -> Result<Vec<Vec<u8>>, CmdError> {
    let mut sets = Vec::with_capacity(keys.len());
    for k in keys {
        sets.push(read_set(c, k)?);
    }
    Ok(match op {
        Op::Inter => {
            if sets.iter().any(Option::is_none) {
                return Ok(Vec::new());
            }
            let mut sets: Vec<Vec<Vec<u8>>> = sets.into_iter().flatten().collect();
            // Walk the smallest set and probe the others, as Redis does.
            sets.sort_by_key(Vec::len);
            let others: Vec<HashSet<&[u8]>> = sets[1..].iter().map(|s| s.iter().map(Vec::as_slice).collect()).collect();
            let mut out = Vec::new();
            for m in &sets[0] {
                if others.iter().all(|o| o.contains(m.as_slice())) {
                    out.push(m.clone());
                    if limit > 0 && out.len() >= limit {
                        break;
                    }
                }
            }
            out
        }
        Op::Union => {
            let mut seen = HashSet::new();
            let mut out = Vec::new();
            for m in sets.into_iter().flatten().flatten() {
                if seen.insert(m.clone()) {
                    out.push(m);
                }
            }
            out
        }
        Op::Diff => {
            let mut it = sets.into_iter();
            let Some(Some(first)) = it.next() else { return Ok(Vec::new()) };
            let rest: HashSet<Vec<u8>> = it.flatten().flatten().collect();
            first.into_iter().filter(|m| !rest.contains(m)).collect()
        }
    })
}

fn reply_members(c: &mut Ctx, members: &[Vec<u8>]) {
    let out = c.out();
    out.set(members.len());
    for m in members {
        out.bulk(m);
    }
}

/// Stores `members` as a set at `dst` (deleting it if empty) and replies the count.
fn store(c: &mut Ctx, dst: &[u8], members: Vec<Vec<u8>>, event: &str) -> CmdResult {
    let db = c.client.db;
    let max = max_intset(c);
    let existed = c.eng.dbs[db].remove(dst).is_some();
    let n = members.len();
    if n > 0 {
        let mut set = Set::for_member(&members[0]);
        for m in &members {
            set.insert(m, max);
        }
        c.eng.dbs[db].add(dst, Obj::new(Value::Set(Box::new(set)), c.now));
        c.notify(notify::SET, event, dst);
        c.modified(dst);
    } else if existed {
        c.notify(notify::GENERIC, "del", dst);
        c.modified(dst);
    }
    c.out().int(n as i64);
    Ok(())
}

fn args_from(c: &Ctx, from: usize) -> Vec<Vec<u8>> {
    (from..c.argc()).map(|i| c.arg(i).to_vec()).collect()
}

fn combine_args(c: &mut Ctx, from: usize, op: Op, limit: usize) -> Result<Vec<Vec<u8>>, CmdError> {
    let keys = args_from(c, from);
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    combine(c, &refs, op, limit)
}

pub fn sinter(c: &mut Ctx) -> CmdResult {
    let r = combine_args(c, 1, Op::Inter, 0)?;
    reply_members(c, &r);
    Ok(())
}

pub fn sunion(c: &mut Ctx) -> CmdResult {
    let r = combine_args(c, 1, Op::Union, 0)?;
    reply_members(c, &r);
    Ok(())
}

pub fn sdiff(c: &mut Ctx) -> CmdResult {
    let r = combine_args(c, 1, Op::Diff, 0)?;
    reply_members(c, &r);
    Ok(())
}

pub fn sinterstore(c: &mut Ctx) -> CmdResult {
    let r = combine_args(c, 2, Op::Inter, 0)?;
    store(c, c.arg(1), r, "sinterstore")
}

pub fn sunionstore(c: &mut Ctx) -> CmdResult {
    let r = combine_args(c, 2, Op::Union, 0)?;
    store(c, c.arg(1), r, "sunionstore")
}

pub fn sdiffstore(c: &mut Ctx) -> CmdResult {
    let r = combine_args(c, 2, Op::Diff, 0)?;
    store(c, c.arg(1), r, "sdiffstore")
}

pub fn sintercard(c: &mut Ctx) -> CmdResult {
    let numkeys = ferrokv_resp::parse_i64(c.arg(1))
        .filter(|&n| n >= 1)
        .ok_or(CmdError::err("ERR numkeys should be greater than 0"))? as usize;
    if numkeys > c.argc() - 2 {
        return fail("ERR Number of keys can't be greater than number of args");
    }
    let mut limit = 0usize;
    let mut j = 2 + numkeys;
    while j < c.argc() {
        if is(c.arg(j), "LIMIT") && j + 1 < c.argc() {
            let l = ferrokv_resp::parse_i64(c.arg(j + 1))
                .filter(|&l| l >= 0)
                .ok_or(CmdError::err("ERR LIMIT can't be negative"))?;
            limit = l as usize;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let keys: Vec<Vec<u8>> = (2..2 + numkeys).map(|i| c.arg(i).to_vec()).collect();
    let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
    let r = combine(c, &refs, Op::Inter, limit)?;
    c.out().int(r.len() as i64);
    Ok(())
}

pub fn sscan(c: &mut Ctx) -> CmdResult {
    let cursor = parse_cursor(c.arg(2))?;
    let opts = parse_scan_opts(c, 3, false)?;
    let mut elems = Vec::new();
    let next = match c.eng.lookup_read(c.client.db, c.argv.get(1), c.now) {
        None => 0,
        Some(o) => {
            let set = set_of(&o.value)?;
            let mut cur = cursor;
            let mut iterations = opts.count * 10;
            loop {
                cur = set.scan(cur, |m| {
                    if opts.matches(m) {
                        elems.push(m.to_vec());
                    }
                });
                iterations -= 1;
                if cur == 0 || iterations <= 0 || elems.len() as i64 >= opts.count {
                    break;
                }
            }
            cur
        }
    };
    reply_scan(c.out(), next, &elems);
    Ok(())
}
