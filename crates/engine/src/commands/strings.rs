//! String commands: GET, SET (and SETNX/SETEX/PSETEX), MGET, MSET, MSETNX, GETSET, GETDEL,
//! GETEX, APPEND, STRLEN, INCR/DECR/INCRBY/DECRBY, INCRBYFLOAT, GETRANGE/SUBSTR, SETRANGE,
//! LCS.
//!
//! Writes with a relative expiry are propagated with an absolute `PXAT`, and INCRBYFLOAT
//! as a `SET … KEEPTTL` of its result, so replicas and AOF reloads reach the same state.

use crate::ctx::{int_arg, is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use crate::longdouble;
use ferrokv_config::notify;
use ferrokv_keyspace::{DbEntry, Obj, SmallBytes, Value};
use ferrokv_resp::ReplyBuf;

/// A string value seen through its encoding.
pub enum StrRef<'a> {
    Bytes(&'a [u8]),
    Int(i64),
}

impl StrRef<'_> {
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            StrRef::Bytes(b) => b.to_vec(),
            StrRef::Int(n) => itoa::Buffer::new().format(*n).as_bytes().to_vec(),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            StrRef::Bytes(b) => b.len(),
            StrRef::Int(n) => itoa::Buffer::new().format(*n).len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value as a string, or WRONGTYPE.
pub fn string_value(v: &Value) -> Result<StrRef<'_>, CmdError> {
    match v {
        Value::Str(s) => Ok(StrRef::Bytes(s)),
        Value::Int(n) => Ok(StrRef::Int(*n)),
        _ => Err(CmdError::WrongType),
    }
}

pub fn reply_str(out: &mut ReplyBuf, s: &StrRef) {
    match s {
        StrRef::Bytes(b) => out.bulk(b),
        StrRef::Int(n) => out.bulk_int(*n),
    }
}

/// Replies with the string at `key` (null if missing); WRONGTYPE for other types.
fn reply_get(c: &mut Ctx, key: &[u8]) -> CmdResult {
    match c.eng.lookup_read(c.client.db, key, c.now) {
        None => c.client.out.null(),
        Some(o) => reply_str(&mut c.client.out, &string_value(&o.value)?),
    }
    Ok(())
}

/// Enforces `proto-max-bulk-len` on a string about to reach `total` bytes.
fn check_len(c: &Ctx, total: u64) -> CmdResult {
    if total > c.eng.hot.proto_max_bulk_len {
        return fail("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    Ok(())
}

pub fn get(c: &mut Ctx) -> CmdResult {
    reply_get(c, c.arg(1))
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Expiry {
    #[default]
    None,
    Ex,
    Px,
    ExAt,
    PxAt,
    KeepTtl,
    Persist,
}

#[derive(Default)]
struct SetOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    expiry: Expiry,
    expire_arg: Option<&'a [u8]>,
}

/// Parses SET/GETEX options from argument `from` on (Redis's
/// parseExtendedStringArgumentsOrReply, including which combinations are refused).
fn parse_opts<'a>(c: &Ctx<'a>, from: usize, for_set: bool) -> Result<SetOpts<'a>, CmdError> {
    let mut o = SetOpts::default();
    let mut j = from;
    while j < c.argc() {
        let opt = c.arg(j);
        let next = (j + 1 < c.argc()).then(|| c.arg(j + 1));
        let no_expiry = o.expiry == Expiry::None;
        if for_set && is(opt, "NX") && !o.xx {
            o.nx = true;
        } else if for_set && is(opt, "XX") && !o.nx {
            o.xx = true;
        } else if for_set && is(opt, "GET") {
            o.get = true;
        } else if for_set && is(opt, "KEEPTTL") && (no_expiry || o.expiry == Expiry::KeepTtl) {
            o.expiry = Expiry::KeepTtl;
        } else if !for_set && is(opt, "PERSIST") && (no_expiry || o.expiry == Expiry::Persist) {
            o.expiry = Expiry::Persist;
        } else if let (Some(n), Some(kind)) = (
            next,
            [("EX", Expiry::Ex), ("PX", Expiry::Px), ("EXAT", Expiry::ExAt), ("PXAT", Expiry::PxAt)]
                .iter()
                .find(|(name, _)| is(opt, name))
                .map(|&(_, k)| k),
        ) {
            if !(no_expiry || o.expiry == kind) {
                return Err(CmdError::Syntax);
            }
            o.expiry = kind;
            o.expire_arg = Some(n);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// Converts an EX/PX/EXAT/PXAT argument to an absolute unix time in ms, with Redis's
/// validation ("invalid expire time in 'set' command").
fn expire_ms(c: &Ctx, kind: Expiry, arg: &[u8]) -> Result<i64, CmdError> {
    let v = int_arg(arg)?;
    let invalid =
        || CmdError::msg(format!("ERR invalid expire time in '{}' command", c.eng.commands.get(c.cmd).fullname()));
    let seconds = matches!(kind, Expiry::Ex | Expiry::ExAt);
    if v <= 0 || (seconds && v > i64::MAX / 1000) {
        return Err(invalid());
    }
    let mut ms = if seconds { v * 1000 } else { v };
    if matches!(kind, Expiry::Ex | Expiry::Px) {
        ms = ms.checked_add(c.now).ok_or_else(invalid)?;
    }
    if ms <= 0 {
        return Err(invalid());
    }
    Ok(ms)
}

/// The shared core of SET, SETNX, SETEX and PSETEX.
fn set_generic(c: &mut Ctx, key: &[u8], val: &[u8], opts: SetOpts, ok_reply: Option<i64>) -> CmdResult {
    let when = match (opts.expiry, opts.expire_arg) {
        (k @ (Expiry::Ex | Expiry::Px | Expiry::ExAt | Expiry::PxAt), Some(a)) => Some(expire_ms(c, k, a)?),
        _ => None,
    };
    if opts.get {
        reply_get(c, key)?;
    }
    let db = c.client.db;
    let clock = c.eng.clock(c.now);
    let value = Value::string(val);
    let set = match c.eng.dbs[db].entry(key, clock) {
        DbEntry::Occupied { obj, live } => {
            if opts.nx && live || opts.xx && !live {
                false
            } else {
                *obj = Obj::new(value, c.now);
                true
            }
        }
        DbEntry::Vacant(v) => {
            if opts.xx {
                false
            } else {
                v.insert(Obj::new(value, c.now));
                true
            }
        }
    };
    if !set {
        if !opts.get {
            match ok_reply {
                Some(_) => c.out().int(0),
                None => c.out().null(),
            }
        }
        return Ok(());
    }
    if opts.expiry != Expiry::KeepTtl {
        c.eng.dbs[db].remove_expire(key);
    }
    c.modified(key);
    c.notify(notify::STRING, "set", key);
    if let Some(ms) = when {
        c.eng.dbs[db].set_expire(key, ms);
        c.rewrite_as(vec![b"SET".to_vec(), key.to_vec(), val.to_vec(), b"PXAT".to_vec(), ms.to_string().into_bytes()]);
        c.notify(notify::GENERIC, "expire", key);
    } else if opts.get {
        // Replicas don't need the reply: propagate without GET.
        let args =
            c.argv.iter().enumerate().filter(|&(i, a)| i < 3 || !is(a, "GET")).map(|(_, a)| a.to_vec()).collect();
        c.rewrite_as(args);
    }
    if !opts.get {
        match ok_reply {
            Some(n) => c.out().int(n),
            None => c.out().ok(),
        }
    }
    Ok(())
}

pub fn set(c: &mut Ctx) -> CmdResult {
    let opts = parse_opts(c, 3, true)?;
    set_generic(c, c.arg(1), c.arg(2), opts, None)
}

pub fn setnx(c: &mut Ctx) -> CmdResult {
    let opts = SetOpts { nx: true, ..SetOpts::default() };
    set_generic(c, c.arg(1), c.arg(2), opts, Some(1))
}

pub fn setex(c: &mut Ctx) -> CmdResult {
    let opts = SetOpts { expiry: Expiry::Ex, expire_arg: Some(c.arg(2)), ..SetOpts::default() };
    set_generic(c, c.arg(1), c.arg(3), opts, None)
}

pub fn psetex(c: &mut Ctx) -> CmdResult {
    let opts = SetOpts { expiry: Expiry::Px, expire_arg: Some(c.arg(2)), ..SetOpts::default() };
    set_generic(c, c.arg(1), c.arg(3), opts, None)
}

pub fn mget(c: &mut Ctx) -> CmdResult {
    let db = c.client.db;
    c.client.out.array(c.argc() - 1);
    for i in 1..c.argc() {
        match c.eng.lookup_read(db, c.argv.get(i), c.now).map(|o| string_value(&o.value)) {
            Some(Ok(s)) => reply_str(&mut c.client.out, &s),
            _ => c.client.out.null(),
        }
    }
    Ok(())
}

fn mset_generic(c: &mut Ctx, nx: bool) -> CmdResult {
    if c.argc().is_multiple_of(2) {
        return Err(CmdError::msg(format!(
            "ERR wrong number of arguments for '{}' command",
            c.eng.commands.get(c.cmd).fullname()
        )));
    }
    let db = c.client.db;
    if nx {
        for i in (1..c.argc()).step_by(2) {
            if c.eng.lookup_write(db, c.arg(i), c.now).is_some() {
                c.out().int(0);
                return Ok(());
            }
        }
    }
    for i in (1..c.argc()).step_by(2) {
        let (key, val) = (c.arg(i), c.arg(i + 1));
        c.eng.dbs[db].set(key, Obj::new(Value::string(val), c.now), false);
        c.modified(key);
        c.notify(notify::STRING, "set", key);
    }
    if nx {
        c.out().int(1);
    } else {
        c.out().ok();
    }
    Ok(())
}

pub fn mset(c: &mut Ctx) -> CmdResult {
    mset_generic(c, false)
}

pub fn msetnx(c: &mut Ctx) -> CmdResult {
    mset_generic(c, true)
}

pub fn getset(c: &mut Ctx) -> CmdResult {
    let (key, val) = (c.arg(1), c.arg(2));
    reply_get(c, key)?;
    let db = c.client.db;
    c.eng.dbs[db].set(key, Obj::new(Value::string(val), c.now), false);
    c.modified(key);
    c.notify(notify::STRING, "set", key);
    c.rewrite_as(vec![b"SET".to_vec(), key.to_vec(), val.to_vec()]);
    Ok(())
}

pub fn getdel(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    reply_get(c, key)?;
    let db = c.client.db;
    if c.eng.dbs[db].remove(key).is_some() {
        c.modified(key);
        c.notify(notify::GENERIC, "del", key);
        c.rewrite_as(vec![b"DEL".to_vec(), key.to_vec()]);
    }
    Ok(())
}

pub fn getex(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let opts = parse_opts(c, 2, false)?;
    let db = c.client.db;
    match c.eng.lookup_read(db, key, c.now) {
        None => {
            c.client.out.null();
            return Ok(());
        }
        Some(o) => {
            string_value(&o.value)?;
        }
    }
    let when = match (opts.expiry, opts.expire_arg) {
        (k @ (Expiry::Ex | Expiry::Px | Expiry::ExAt | Expiry::PxAt), Some(a)) => Some(expire_ms(c, k, a)?),
        _ => None,
    };
    reply_get(c, key)?;
    let absolute = matches!(opts.expiry, Expiry::ExAt | Expiry::PxAt);
    match when {
        Some(ms) if absolute && ms <= c.now => {
            c.eng.dbs[db].remove(key);
            c.rewrite_as(vec![b"DEL".to_vec(), key.to_vec()]);
            c.modified(key);
            c.notify(notify::GENERIC, "del", key);
        }
        Some(ms) => {
            c.eng.dbs[db].set_expire(key, ms);
            c.rewrite_as(vec![b"PEXPIREAT".to_vec(), key.to_vec(), ms.to_string().into_bytes()]);
            c.modified(key);
            c.notify(notify::GENERIC, "expire", key);
        }
        None if opts.expiry == Expiry::Persist && c.eng.dbs[db].remove_expire(key) => {
            c.rewrite_as(vec![b"PERSIST".to_vec(), key.to_vec()]);
            c.modified(key);
            c.notify(notify::GENERIC, "persist", key);
        }
        None => {}
    }
    Ok(())
}

pub fn append(c: &mut Ctx) -> CmdResult {
    let (key, more) = (c.arg(1), c.arg(2));
    let db = c.client.db;
    let total = match c.eng.lookup_write(db, key, c.now) {
        None => {
            c.eng.dbs[db].add(key, Obj::new(Value::string(more), c.now));
            more.len()
        }
        Some(o) => {
            let cur_len = string_value(&o.value)?.len();
            let limit = c.eng.hot.proto_max_bulk_len;
            if (cur_len + more.len()) as u64 > limit {
                return fail("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
            }
            let o = c.eng.dbs[db].get_mut_unchecked(key).expect("looked up above");
            raw_string(o).extend_from_slice(more);
            o.mark_raw();
            cur_len + more.len()
        }
    };
    c.modified(key);
    c.notify(notify::STRING, "append", key);
    c.out().int(total as i64);
    Ok(())
}

/// Turns a string value into a mutable byte string (integers are rendered), as Redis's
/// dbUnshareStringValue does before an in-place edit.
fn raw_string(o: &mut Obj) -> &mut SmallBytes {
    if let Value::Int(n) = o.value {
        o.value = Value::Str(SmallBytes::from(itoa::Buffer::new().format(n).as_bytes()));
    }
    match &mut o.value {
        Value::Str(s) => s,
        _ => unreachable!("callers checked the value is a string"),
    }
}

pub fn strlen(c: &mut Ctx) -> CmdResult {
    let n = match c.eng.lookup_read(c.client.db, c.arg(1), c.now) {
        None => 0,
        Some(o) => string_value(&o.value)?.len(),
    };
    c.out().int(n as i64);
    Ok(())
}

fn incr_by(c: &mut Ctx, incr: i64) -> CmdResult {
    let key = c.arg(1);
    let db = c.client.db;
    let cur = match c.eng.lookup_write(db, key, c.now) {
        None => None,
        Some(o) => Some(match string_value(&o.value)? {
            StrRef::Int(n) => n,
            StrRef::Bytes(b) => ferrokv_resp::parse_i64(b).ok_or(CmdError::NotInteger)?,
        }),
    };
    let old = cur.unwrap_or(0);
    let Some(new) = old.checked_add(incr) else {
        return fail("ERR increment or decrement would overflow");
    };
    match c.eng.dbs[db].get_mut_unchecked(key).filter(|_| cur.is_some()) {
        Some(o) => o.value = Value::Int(new),
        None => c.eng.dbs[db].add(key, Obj::new(Value::Int(new), c.now)),
    }
    c.modified(key);
    c.notify(notify::STRING, "incrby", key);
    c.out().int(new);
    Ok(())
}

pub fn incr(c: &mut Ctx) -> CmdResult {
    incr_by(c, 1)
}

pub fn decr(c: &mut Ctx) -> CmdResult {
    incr_by(c, -1)
}

pub fn incrby(c: &mut Ctx) -> CmdResult {
    let n = int_arg(c.arg(2))?;
    incr_by(c, n)
}

pub fn decrby(c: &mut Ctx) -> CmdResult {
    let n = int_arg(c.arg(2))?;
    if n == i64::MIN {
        return fail("ERR decrement would overflow");
    }
    incr_by(c, -n)
}

pub fn incrbyfloat(c: &mut Ctx) -> CmdResult {
    let (key, incr) = (c.arg(1), c.arg(2));
    let db = c.client.db;
    let base = match c.eng.lookup_write(db, key, c.now) {
        None => None,
        Some(o) => Some(string_value(&o.value)?.to_vec()),
    };
    let exists = base.is_some();
    let result = longdouble::add_human(base.as_deref().unwrap_or(b"0"), incr).map_err(|e| match e {
        longdouble::LdError::BadBase | longdouble::LdError::BadIncrement => CmdError::NotFloat,
        longdouble::LdError::NotFinite => CmdError::err("ERR increment would produce NaN or Infinity"),
    })?;
    // Redis stores the result as a plain string, never int-encoded.
    let value = Value::Str(SmallBytes::from(&result[..]));
    match c.eng.dbs[db].get_mut_unchecked(key).filter(|_| exists) {
        Some(o) => o.value = value,
        None => c.eng.dbs[db].add(key, Obj::new(value, c.now)),
    }
    c.modified(key);
    c.notify(notify::STRING, "incrbyfloat", key);
    c.out().bulk(&result);
    c.rewrite_as(vec![b"SET".to_vec(), key.to_vec(), result, b"KEEPTTL".to_vec()]);
    Ok(())
}

/// Resolves a Redis [start, end] byte range (negative = from the end) over `len` bytes.
pub fn byte_range(start: i64, end: i64, len: i64) -> Option<(usize, usize)> {
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    s = s.max(0);
    e = e.max(0);
    if e >= len {
        e = len - 1;
    }
    if s > e || len == 0 {
        return None;
    }
    Some((s as usize, e as usize))
}

pub fn getrange(c: &mut Ctx) -> CmdResult {
    let start = int_arg(c.arg(2))?;
    let end = int_arg(c.arg(3))?;
    let s = match c.eng.lookup_read(c.client.db, c.arg(1), c.now) {
        None => {
            c.client.out.bulk(b"");
            return Ok(());
        }
        Some(o) => string_value(&o.value)?.to_vec(),
    };
    match byte_range(start, end, s.len() as i64) {
        Some((a, b)) => c.out().bulk(&s[a..=b]),
        None => c.out().bulk(b""),
    }
    Ok(())
}

pub fn setrange(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let offset = int_arg(c.arg(2))?;
    let value = c.arg(3);
    if offset < 0 {
        return fail("ERR offset is out of range");
    }
    let db = c.client.db;
    let existing_len = match c.eng.lookup_write(db, key, c.now) {
        None => None,
        Some(o) => Some(string_value(&o.value)?.len()),
    };
    match existing_len {
        None if value.is_empty() => {
            c.out().int(0);
            return Ok(());
        }
        Some(len) if value.is_empty() => {
            c.out().int(len as i64);
            return Ok(());
        }
        _ => {}
    }
    check_len(c, offset as u64 + value.len() as u64)?;
    if existing_len.is_none() {
        let mut o = Obj::new(Value::Str(SmallBytes::new()), c.now);
        o.mark_raw();
        c.eng.dbs[db].add(key, o);
    }
    let o = c.eng.dbs[db].get_mut_unchecked(key).expect("exists now");
    let off = offset as usize;
    let new_len = raw_string(o).with_vec(|v| {
        if v.len() < off + value.len() {
            v.resize(off + value.len(), 0);
        }
        v[off..off + value.len()].copy_from_slice(value);
        v.len()
    });
    o.mark_raw();
    c.modified(key);
    c.notify(notify::STRING, "setrange", key);
    c.out().int(new_len as i64);
    Ok(())
}

pub fn lcs(c: &mut Ctx) -> CmdResult {
    let db = c.client.db;
    let mut fetch = |key: &[u8]| -> Result<Vec<u8>, CmdError> {
        match c.eng.lookup_read(db, key, c.now) {
            None => Ok(Vec::new()),
            Some(o) => string_value(&o.value)
                .map(|s| s.to_vec())
                .map_err(|_| CmdError::err("ERR The specified keys must contain string values")),
        }
    };
    let a = fetch(c.argv.get(1));
    let b = fetch(c.argv.get(2));
    let (a, b) = (a?, b?);
    let (mut idx, mut len, mut withmatchlen, mut minmatchlen) = (false, false, false, 0i64);
    let mut j = 3;
    while j < c.argc() {
        let opt = c.arg(j);
        if is(opt, "IDX") {
            idx = true;
        } else if is(opt, "LEN") {
            len = true;
        } else if is(opt, "WITHMATCHLEN") {
            withmatchlen = true;
        } else if is(opt, "MINMATCHLEN") && j + 1 < c.argc() {
            minmatchlen = int_arg(c.arg(j + 1))?.max(0);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if idx && len {
        return fail("ERR If you want both the length and indexes, please just use IDX.");
    }
    let table_bytes = (a.len() as u64 + 1) * (b.len() as u64 + 1) * 4;
    if table_bytes > c.eng.hot.proto_max_bulk_len {
        return fail("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let r = crate::lcs::lcs(&a, &b, idx || !len);
    let out = c.out();
    if idx {
        let ranges: Vec<_> = r.ranges.iter().filter(|m| minmatchlen == 0 || m.len as i64 >= minmatchlen).collect();
        out.map(2);
        out.bulk(b"matches");
        out.array(ranges.len());
        for m in ranges {
            out.array(2 + withmatchlen as usize);
            out.array(2);
            out.int(m.a.0 as i64);
            out.int(m.a.1 as i64);
            out.array(2);
            out.int(m.b.0 as i64);
            out.int(m.b.1 as i64);
            if withmatchlen {
                out.int(m.len as i64);
            }
        }
        out.bulk(b"len");
        out.int(r.len as i64);
    } else if len {
        out.int(r.len as i64);
    } else {
        out.bulk(&r.common);
    }
    Ok(())
}
