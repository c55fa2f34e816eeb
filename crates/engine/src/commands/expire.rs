//! Expiry commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (NX|XX|GT|LT), TTL, PTTL,
//! EXPIRETIME, PEXPIRETIME, PERSIST. Every TTL change is propagated as an absolute
//! PEXPIREAT, and a TTL already in the past as a DEL, so replicas agree on the instant.

use crate::ctx::{int_arg, is, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_config::notify;

const NX: u8 = 1;
const XX: u8 = 2;
const GT: u8 = 4;
const LT: u8 = 8;

fn parse_flags(c: &Ctx) -> Result<u8, CmdError> {
    let mut f = 0;
    for i in 3..c.argc() {
        let a = c.arg(i);
        f |= if is(a, "NX") {
            NX
        } else if is(a, "XX") {
            XX
        } else if is(a, "GT") {
            GT
        } else if is(a, "LT") {
            LT
        } else {
            return Err(CmdError::msg(format!("ERR Unsupported option {}", String::from_utf8_lossy(a))));
        };
    }
    if f & NX != 0 && f & (XX | GT | LT) != 0 {
        return Err(CmdError::err("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if f & GT != 0 && f & LT != 0 {
        return Err(CmdError::err("ERR GT and LT options at the same time are not compatible"));
    }
    Ok(f)
}

/// `base` is the time relative values start from (now, or 0 for the *AT forms).
fn expire_generic(c: &mut Ctx, relative: bool, seconds: bool) -> CmdResult {
    let key = c.arg(1);
    let flags = parse_flags(c)?;
    let mut when = int_arg(c.arg(2))?;
    let invalid =
        || CmdError::msg(format!("ERR invalid expire time in '{}' command", c.eng.commands.get(c.cmd).fullname()));
    if seconds {
        when = when.checked_mul(1000).ok_or_else(invalid)?;
    }
    if relative {
        when = when.checked_add(c.now).ok_or_else(invalid)?;
    }
    let db = c.client.db;
    if c.eng.lookup_write(db, key, c.now).is_none() {
        c.out().int(0);
        return Ok(());
    }
    if flags != 0 {
        let current = c.eng.dbs[db].expire_at(key);
        let refused = (flags & NX != 0 && current.is_some())
            || (flags & XX != 0 && current.is_none())
            || (flags & GT != 0 && current.is_none_or(|cur| when <= cur))
            || (flags & LT != 0 && current.is_some_and(|cur| when >= cur));
        if refused {
            c.out().int(0);
            return Ok(());
        }
    }
    if when <= c.now && !c.eng.is_replica() && !c.eng.is_loading() {
        c.eng.dbs[db].remove(key);
        c.rewrite_as(vec![b"DEL".to_vec(), key.to_vec()]);
        c.modified(key);
        c.notify(notify::GENERIC, "del", key);
    } else {
        c.eng.dbs[db].set_expire(key, when);
        let mut args: Vec<Vec<u8>> = c.argv.iter().map(<[u8]>::to_vec).collect();
        args[0] = b"PEXPIREAT".to_vec();
        args[2] = when.to_string().into_bytes();
        c.rewrite_as(args);
        c.modified(key);
        c.notify(notify::GENERIC, "expire", key);
    }
    c.out().int(1);
    Ok(())
}

pub fn expire(c: &mut Ctx) -> CmdResult {
    expire_generic(c, true, true)
}

pub fn pexpire(c: &mut Ctx) -> CmdResult {
    expire_generic(c, true, false)
}

pub fn expireat(c: &mut Ctx) -> CmdResult {
    expire_generic(c, false, true)
}

pub fn pexpireat(c: &mut Ctx) -> CmdResult {
    expire_generic(c, false, false)
}

/// -2 if the key is missing, -1 without TTL, else the expiry time (absolute or
/// remaining, in ms or s).
fn ttl_generic(c: &mut Ctx, ms: bool, absolute: bool) -> CmdResult {
    let key = c.arg(1);
    let db = c.client.db;
    let clock = c.eng.clock(c.now);
    if c.eng.dbs[db].lookup(key, clock).is_none() {
        c.eng.stats.keyspace_misses += 1;
        c.out().int(-2);
        return Ok(());
    }
    c.eng.stats.keyspace_hits += 1;
    let reply = match c.eng.dbs[db].expire_at(key) {
        None => -1,
        Some(at) if absolute => {
            if ms {
                at
            } else {
                at / 1000
            }
        }
        Some(at) => {
            let left = (at - c.now).max(0);
            if ms {
                left
            } else {
                (left + 500) / 1000
            }
        }
    };
    c.out().int(reply);
    Ok(())
}

pub fn ttl(c: &mut Ctx) -> CmdResult {
    ttl_generic(c, false, false)
}

pub fn pttl(c: &mut Ctx) -> CmdResult {
    ttl_generic(c, true, false)
}

pub fn expiretime(c: &mut Ctx) -> CmdResult {
    ttl_generic(c, false, true)
}

pub fn pexpiretime(c: &mut Ctx) -> CmdResult {
    ttl_generic(c, true, true)
}

pub fn persist(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let db = c.client.db;
    if c.eng.lookup_write(db, key, c.now).is_none() {
        c.out().int(0);
        return Ok(());
    }
    if c.eng.dbs[db].remove_expire(key) {
        c.modified(key);
        c.notify(notify::GENERIC, "persist", key);
        c.out().int(1);
    } else {
        c.out().int(0);
    }
    Ok(())
}
