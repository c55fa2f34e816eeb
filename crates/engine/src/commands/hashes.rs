//! Hash commands: HSET, HSETNX, HGET, HMGET, HMSET, HDEL, HLEN, HEXISTS, HGETALL, HKEYS,
//! HVALS, HINCRBY, HINCRBYFLOAT, HSTRLEN, HRANDFIELD, HSCAN.
//!
//! HINCRBYFLOAT is propagated as an HSET of its result, like INCRBYFLOAT as a SET.

use super::keys::{parse_cursor, parse_scan_opts, reply_scan};
use crate::ctx::{int_arg, is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use crate::longdouble::{self, LdError};
use ferrokv_config::notify;
use ferrokv_keyspace::types::hash::{Hash, Limits};
use ferrokv_keyspace::{Obj, Value};
use std::collections::HashSet;

fn hash_of(v: &Value) -> Result<&Hash, CmdError> {
    match v {
        Value::Hash(h) => Ok(h),
        _ => Err(CmdError::WrongType),
    }
}

fn hash_of_mut(v: &mut Value) -> Result<&mut Hash, CmdError> {
    match v {
        Value::Hash(h) => Ok(h),
        _ => Err(CmdError::WrongType),
    }
}

fn limits(c: &Ctx) -> Limits {
    c.eng.hot.encoding_limits.hash
}

/// The hash at `key` for writing, created empty if missing (WRONGTYPE for other types).
fn hash_for_write<'a>(c: &'a mut Ctx, key: &[u8]) -> Result<&'a mut Hash, CmdError> {
    let db = c.client.db;
    if c.eng.lookup_write(db, key, c.now).is_none() {
        c.eng.dbs[db].add(key, Obj::new(Value::Hash(Box::default()), c.now));
    }
    let o = c.eng.dbs[db].get_mut_unchecked(key).expect("present");
    hash_of_mut(&mut o.value)
}

/// Deletes `key` if it holds an empty hash (a failed command may have created one).
fn drop_if_empty(c: &mut Ctx, key: &[u8]) -> bool {
    let db = c.client.db;
    let empty = c.eng.dbs[db].peek(key, c.now).is_some_and(|o| o.value.elements() == 0);
    if empty {
        c.eng.dbs[db].remove(key);
    }
    empty
}

fn hset_generic(c: &mut Ctx, reply_count: bool) -> CmdResult {
    if c.argc() % 2 == 1 {
        return Err(CmdError::msg(format!(
            "ERR wrong number of arguments for '{}' command",
            c.eng.commands.get(c.cmd).fullname()
        )));
    }
    let key = c.arg(1);
    let lim = limits(c);
    let argv = c.argv;
    let h = hash_for_write(c, key)?;
    let mut created = 0;
    for i in (2..argv.len()).step_by(2) {
        if h.set(argv.get(i), argv.get(i + 1), lim) {
            created += 1;
        }
    }
    let pairs = (argv.len() as u64 - 2) / 2;
    c.modified_in(c.client.db, key, pairs);
    c.notify(notify::HASH, "hset", key);
    if reply_count {
        c.out().int(created);
    } else {
        c.out().ok();
    }
    Ok(())
}

pub fn hset(c: &mut Ctx) -> CmdResult {
    hset_generic(c, true)
}

pub fn hmset(c: &mut Ctx) -> CmdResult {
    hset_generic(c, false)
}

pub fn hsetnx(c: &mut Ctx) -> CmdResult {
    let (key, field, value) = (c.arg(1), c.arg(2), c.arg(3));
    let lim = limits(c);
    let h = hash_for_write(c, key)?;
    if h.contains(field) {
        c.out().int(0);
        return Ok(());
    }
    h.set(field, value, lim);
    c.modified(key);
    c.notify(notify::HASH, "hset", key);
    c.out().int(1);
    Ok(())
}

pub fn hget(c: &mut Ctx) -> CmdResult {
    let field = c.arg(2);
    match c.eng.lookup_read(c.client.db, c.argv.get(1), c.now) {
        None => c.client.out.null(),
        Some(o) => {
            let v = hash_of(&o.value)?.get(field);
            c.client.out.bulk_opt(v);
        }
    }
    Ok(())
}

pub fn hmget(c: &mut Ctx) -> CmdResult {
    let argv = c.argv;
    let out = &mut c.client.out;
    match c.eng.lookup_read(c.client.db, argv.get(1), c.now) {
        None => {
            out.array(argv.len() - 2);
            (2..argv.len()).for_each(|_| out.null());
        }
        Some(o) => {
            let h = hash_of(&o.value)?;
            out.array(argv.len() - 2);
            for i in 2..argv.len() {
                out.bulk_opt(h.get(argv.get(i)));
            }
        }
    }
    Ok(())
}

pub fn hdel(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let db = c.client.db;
    let argv = c.argv;
    let Some(o) = c.eng.lookup_write(db, key, c.now) else {
        c.out().int(0);
        return Ok(());
    };
    let h = hash_of_mut(&mut o.value)?;
    let deleted = (2..argv.len()).filter(|&i| h.remove(argv.get(i))).count() as u64;
    if deleted > 0 {
        c.modified_in(db, key, deleted);
        c.notify(notify::HASH, "hdel", key);
        if drop_if_empty(c, key) {
            c.notify(notify::GENERIC, "del", key);
        }
    }
    c.out().int(deleted as i64);
    Ok(())
}

pub fn hlen(c: &mut Ctx) -> CmdResult {
    let n = match c.eng.lookup_read(c.client.db, c.arg(1), c.now) {
        None => 0,
        Some(o) => hash_of(&o.value)?.len(),
    };
    c.out().int(n as i64);
    Ok(())
}

pub fn hexists(c: &mut Ctx) -> CmdResult {
    let field = c.arg(2);
    let found = match c.eng.lookup_read(c.client.db, c.argv.get(1), c.now) {
        None => false,
        Some(o) => hash_of(&o.value)?.contains(field),
    };
    c.out().int(found as i64);
    Ok(())
}

pub fn hstrlen(c: &mut Ctx) -> CmdResult {
    let field = c.arg(2);
    let n = match c.eng.lookup_read(c.client.db, c.argv.get(1), c.now) {
        None => 0,
        Some(o) => hash_of(&o.value)?.get(field).map_or(0, <[u8]>::len),
    };
    c.out().int(n as i64);
    Ok(())
}

enum Part {
    Keys,
    Values,
    Both,
}

fn hgetall_generic(c: &mut Ctx, part: Part) -> CmdResult {
    let out = &mut c.client.out;
    let Some(o) = c.eng.lookup_read(c.client.db, c.argv.get(1), c.now) else {
        match part {
            Part::Both => out.map(0),
            _ => out.array(0),
        }
        return Ok(());
    };
    let h = hash_of(&o.value)?;
    match part {
        Part::Both => out.map(h.len()),
        _ => out.array(h.len()),
    }
    h.for_each(|f, v| match part {
        Part::Keys => out.bulk(f),
        Part::Values => out.bulk(v),
        Part::Both => {
            out.bulk(f);
            out.bulk(v);
        }
    });
    Ok(())
}

pub fn hgetall(c: &mut Ctx) -> CmdResult {
    hgetall_generic(c, Part::Both)
}

pub fn hkeys(c: &mut Ctx) -> CmdResult {
    hgetall_generic(c, Part::Keys)
}

pub fn hvals(c: &mut Ctx) -> CmdResult {
    hgetall_generic(c, Part::Values)
}

pub fn hincrby(c: &mut Ctx) -> CmdResult {
    let (key, field) = (c.arg(1), c.arg(2));
    let incr = int_arg(c.arg(3))?;
    let lim = limits(c);
    let h = hash_for_write(c, key)?;
    let cur = match h.get(field) {
        None => 0,
        Some(v) => match ferrokv_resp::parse_i64(v) {
            Some(n) => n,
            None => {
                drop_if_empty(c, key);
                return fail("ERR hash value is not an integer");
            }
        },
    };
    let Some(new) = cur.checked_add(incr) else {
        drop_if_empty(c, key);
        return fail("ERR increment or decrement would overflow");
    };
    h.set(field, new.to_string().as_bytes(), lim);
    c.modified(key);
    c.notify(notify::HASH, "hincrby", key);
    c.out().int(new);
    Ok(())
}

pub fn hincrbyfloat(c: &mut Ctx) -> CmdResult {
    let (key, field, incr) = (c.arg(1), c.arg(2), c.arg(3));
    // The increment is validated before the key is looked at, as in Redis.
    match longdouble::add_human(b"0", incr) {
        Err(LdError::NotFinite) => return fail("ERR value is NaN or Infinity"),
        Err(_) => return Err(CmdError::NotFloat),
        Ok(_) => {}
    }
    let lim = limits(c);
    let h = hash_for_write(c, key)?;
    let base = h.get(field).map(<[u8]>::to_vec);
    let result = match longdouble::add_human(base.as_deref().unwrap_or(b"0"), incr) {
        Ok(r) => r,
        Err(e) => {
            drop_if_empty(c, key);
            return match e {
                LdError::BadBase => fail("ERR hash value is not a float"),
                LdError::NotFinite => fail("ERR increment would produce NaN or Infinity"),
                LdError::BadIncrement => Err(CmdError::NotFloat),
            };
        }
    };
    h.set(field, &result, lim);
    c.modified(key);
    c.notify(notify::HASH, "hincrbyfloat", key);
    c.out().bulk(&result);
    c.rewrite_as(vec![b"HSET".to_vec(), key.to_vec(), field.to_vec(), result]);
    Ok(())
}

pub fn hrandfield(c: &mut Ctx) -> CmdResult {
    let count = if c.argc() >= 3 {
        let n = crate::ctx::random_count_arg(c.arg(2))?;
        Some(n)
    } else {
        None
    };
    let withvalues = match c.argc() {
        4 if is(c.arg(3), "WITHVALUES") => true,
        2 | 3 => false,
        _ => return Err(CmdError::Syntax),
    };
    if withvalues && count.is_some_and(|n| !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n)) {
        return fail("ERR value is out of range");
    }
    let mut rng = c.eng.rng.fork();
    let resp3 = c.client.resp3();
    let out = &mut c.client.out;
    let Some(o) = c.eng.lookup_read(c.client.db, c.argv.get(1), c.now) else {
        match count {
            Some(_) => out.array(0),
            None => out.null(),
        }
        return Ok(());
    };
    let h = hash_of(&o.value)?;
    let Some(n) = count else {
        let (f, _) = h.random(&mut rng).expect("stored hashes are not empty");
        out.bulk(&f);
        return Ok(());
    };
    if n < 0 {
        // That many draws, repeats allowed, written as they are drawn: the count is the
        // client's to choose (up to 2^63), so nothing may be collected first, and the
        // loop ends early once the reply has doomed the client at its output limit.
        let draws = n.unsigned_abs() as usize;
        out.array(if withvalues && !resp3 { draws * 2 } else { draws });
        for _ in 0..draws {
            if out.doomed() {
                break;
            }
            let Some((f, v)) = h.random(&mut rng) else { break };
            if withvalues && resp3 {
                out.array(2);
            }
            out.bulk(&f);
            if withvalues {
                out.bulk(&v);
            }
        }
        return Ok(());
    }
    let picked: Vec<(Vec<u8>, Vec<u8>)> = if n == 0 {
        Vec::new()
    } else if n as usize >= h.len() {
        h.pairs()
    } else {
        let mut seen = HashSet::new();
        let mut v = Vec::new();
        while v.len() < n as usize {
            if let Some(p) = h.random(&mut rng) {
                if seen.insert(p.0.clone()) {
                    v.push(p);
                }
            }
        }
        v
    };
    if withvalues {
        out.array(if resp3 { picked.len() } else { picked.len() * 2 });
        for (f, v) in &picked {
            if resp3 {
                out.array(2);
            }
            out.bulk(f);
            out.bulk(v);
        }
    } else {
        out.bulks(picked.iter().map(|(f, _)| f.as_slice()));
    }
    Ok(())
}

pub fn hscan(c: &mut Ctx) -> CmdResult {
    let cursor = parse_cursor(c.arg(2))?;
    let opts = parse_scan_opts(c, 3, false)?;
    let mut elems = Vec::new();
    let next = match c.eng.lookup_read(c.client.db, c.argv.get(1), c.now) {
        None => 0,
        Some(o) => {
            let h = hash_of(&o.value)?;
            let mut cur = cursor;
            let mut iterations = opts.count * 10;
            loop {
                cur = h.scan(cur, |f, v| {
                    if opts.matches(f) {
                        elems.push(f.to_vec());
                        elems.push(v.to_vec());
                    }
                });
                iterations -= 1;
                if cur == 0 || iterations <= 0 || elems.len() as i64 >= opts.count * 2 {
                    break;
                }
            }
            cur
        }
    };
    reply_scan(c.out(), next, &elems);
    Ok(())
}
