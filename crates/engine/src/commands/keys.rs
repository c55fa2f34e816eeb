//! Generic keyspace commands: DEL, UNLINK, EXISTS, TYPE, RENAME, RENAMENX, COPY, MOVE,
//! TOUCH, RANDOMKEY, KEYS, SCAN, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB, OBJECT, MEMORY USAGE.
//!
//! A command that puts a value under a key name (RENAME, COPY, MOVE) signals that key to
//! blocked clients, as Redis's `dbAdd` does; SWAPDB signals every key waited on in either
//! db that exists after the swap.

use crate::ctx::{int_arg, is, reply_help, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_config::{notify, pid};
use ferrokv_keyspace::glob::glob_match;
use ferrokv_keyspace::{Obj, SmallBytes, Value, ValueType};

fn del_generic(c: &mut Ctx, lazy: bool) -> CmdResult {
    let db = c.client.db;
    let mut n = 0;
    for i in 1..c.argc() {
        let key = c.arg(i);
        // Expired keys count as absent (and are reclaimed on the way).
        if c.eng.lookup_write(db, key, c.now).is_none() {
            continue;
        }
        if let Some(obj) = c.eng.dbs[db].remove(key) {
            if lazy && obj.value.heap_size() > 64 * 1024 {
                c.eng.host.free_later(Box::new(obj));
            }
            c.modified(key);
            c.notify(notify::GENERIC, "del", key);
            n += 1;
        }
    }
    c.out().int(n);
    Ok(())
}

pub fn del(c: &mut Ctx) -> CmdResult {
    del_generic(c, false)
}

pub fn unlink(c: &mut Ctx) -> CmdResult {
    del_generic(c, true)
}

pub fn exists(c: &mut Ctx) -> CmdResult {
    let db = c.client.db;
    let n = (1..c.argc()).filter(|&i| c.eng.lookup_read(db, c.argv.get(i), c.now).is_some()).count();
    c.out().int(n as i64);
    Ok(())
}

pub fn type_cmd(c: &mut Ctx) -> CmdResult {
    let t = c.key_type(c.arg(1)).map_or("none", ValueType::name);
    c.out().simple(t);
    Ok(())
}

fn db_index(c: &Ctx, arg: &[u8]) -> Result<usize, CmdError> {
    let id = int_arg(arg)?;
    if id < 0 || id as usize >= c.eng.dbs.len() {
        return fail("ERR DB index is out of range");
    }
    Ok(id as usize)
}

fn rename_generic(c: &mut Ctx, nx: bool) -> CmdResult {
    let (src, dst) = (c.arg(1), c.arg(2));
    let db = c.client.db;
    if c.eng.lookup_write(db, src, c.now).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        if nx {
            c.out().int(0);
        } else {
            c.out().ok();
        }
        return Ok(());
    }
    if c.eng.lookup_write(db, dst, c.now).is_some() {
        if nx {
            c.out().int(0);
            return Ok(());
        }
        c.eng.dbs[db].remove(dst);
    }
    let (_, obj, ttl) = c.eng.dbs[db].take(src).expect("looked up above");
    c.eng.dbs[db].add(dst, obj);
    if let Some(t) = ttl {
        c.eng.dbs[db].set_expire(dst, t);
    }
    c.modified(src);
    c.modified_in(db, dst, 0);
    c.signal_ready(dst);
    c.notify(notify::GENERIC, "rename_from", src);
    c.notify(notify::GENERIC, "rename_to", dst);
    if nx {
        c.out().int(1);
    } else {
        c.out().ok();
    }
    Ok(())
}

pub fn rename(c: &mut Ctx) -> CmdResult {
    rename_generic(c, false)
}

pub fn renamenx(c: &mut Ctx) -> CmdResult {
    rename_generic(c, true)
}

pub fn copy(c: &mut Ctx) -> CmdResult {
    let (src, dst) = (c.arg(1), c.arg(2));
    let mut target_db = c.client.db;
    let mut replace = false;
    let mut j = 3;
    while j < c.argc() {
        if is(c.arg(j), "REPLACE") {
            replace = true;
        } else if is(c.arg(j), "DB") && j + 1 < c.argc() {
            target_db = db_index(c, c.arg(j + 1))?;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let db = c.client.db;
    if src == dst && db == target_db {
        return fail("ERR source and destination objects are the same");
    }
    let now = c.now;
    let copy = |o: &mut Obj| {
        let mut obj = Obj::new(o.value.clone(), now);
        // Redis's dupStringObject keeps a raw string raw (an APPENDed "c10" stays raw).
        if o.encoding() == "raw" {
            obj.mark_raw();
        }
        obj
    };
    let Some(obj) = c.eng.lookup_write(db, src, now).map(copy) else {
        c.out().int(0);
        return Ok(());
    };
    let ttl = c.eng.dbs[db].expire_at(src);
    if c.eng.lookup_write(target_db, dst, c.now).is_some() {
        if !replace {
            c.out().int(0);
            return Ok(());
        }
        c.eng.dbs[target_db].remove(dst);
    }
    c.eng.dbs[target_db].add(dst, obj);
    if let Some(t) = ttl {
        c.eng.dbs[target_db].set_expire(dst, t);
    }
    c.modified_in(target_db, dst, 1);
    c.signal_ready_in(target_db, dst);
    c.notify_in(target_db, notify::GENERIC, "copy_to", dst);
    c.out().int(1);
    Ok(())
}

pub fn move_cmd(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let id = ferrokv_resp::parse_i64(c.arg(2))
        .filter(|&v| v >= i32::MIN as i64 && v <= i32::MAX as i64)
        .ok_or(CmdError::NotInteger)?;
    if id < 0 || id as usize >= c.eng.dbs.len() {
        return fail("ERR DB index is out of range");
    }
    let (src, dst) = (c.client.db, id as usize);
    if src == dst {
        return fail("ERR source and destination objects are the same");
    }
    if c.eng.lookup_write(src, key, c.now).is_none() || c.eng.lookup_write(dst, key, c.now).is_some() {
        c.out().int(0);
        return Ok(());
    }
    let (_, obj, ttl) = c.eng.dbs[src].take(key).expect("looked up above");
    c.eng.dbs[dst].add(key, obj);
    if let Some(t) = ttl {
        c.eng.dbs[dst].set_expire(key, t);
    }
    c.modified_in(src, key, 1);
    c.modified_in(dst, key, 0);
    c.signal_ready_in(dst, key);
    c.notify_in(src, notify::GENERIC, "move_from", key);
    c.notify_in(dst, notify::GENERIC, "move_to", key);
    c.out().int(1);
    Ok(())
}

pub fn touch(c: &mut Ctx) -> CmdResult {
    let db = c.client.db;
    let n = (1..c.argc()).filter(|&i| c.eng.lookup_read(db, c.argv.get(i), c.now).is_some()).count();
    c.out().int(n as i64);
    Ok(())
}

pub fn randomkey(c: &mut Ctx) -> CmdResult {
    let clock = c.eng.clock(c.now);
    let db = c.client.db;
    let key = c.eng.dbs[db].random_key(clock, &mut c.eng.rng);
    match key {
        Some(k) => c.out().bulk(&k),
        None => c.out().null(),
    }
    Ok(())
}

pub fn keys(c: &mut Ctx) -> CmdResult {
    let pat = c.arg(1);
    let all = pat == b"*";
    let db = c.client.db;
    let found: Vec<SmallBytes> =
        c.eng.dbs[db].iter(c.now).filter(|(k, _)| all || glob_match(pat, k, false)).map(|(k, _)| k.clone()).collect();
    c.out().bulks(found.iter().map(|k| k.as_slice()));
    Ok(())
}

/// Parses a SCAN cursor (an unsigned 64-bit decimal, as strtoul reads it).
pub fn parse_cursor(a: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::err("ERR invalid cursor");
    let s = std::str::from_utf8(a).map_err(|_| invalid())?;
    if let Some(neg) = s.strip_prefix('-') {
        return neg.parse::<u64>().map(|v| v.wrapping_neg()).map_err(|_| invalid());
    }
    s.strip_prefix('+').unwrap_or(s).parse::<u64>().map_err(|_| invalid())
}

/// SCAN/SSCAN/HSCAN/ZSCAN options: COUNT, MATCH, and (SCAN only) TYPE.
pub struct ScanOpts<'a> {
    pub count: i64,
    pub pattern: Option<&'a [u8]>,
    pub type_name: Option<&'a [u8]>,
}

impl ScanOpts<'_> {
    pub fn matches(&self, s: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob_match(p, s, false))
    }
}

pub fn parse_scan_opts<'a>(c: &Ctx<'a>, from: usize, allow_type: bool) -> Result<ScanOpts<'a>, CmdError> {
    let mut o = ScanOpts { count: 10, pattern: None, type_name: None };
    let mut j = from;
    while j < c.argc() {
        let more = c.argc() - j - 1;
        if is(c.arg(j), "COUNT") && more >= 1 {
            o.count = int_arg(c.arg(j + 1))?;
            if o.count < 1 {
                return Err(CmdError::Syntax);
            }
        } else if is(c.arg(j), "MATCH") && more >= 1 {
            let p = c.arg(j + 1);
            o.pattern = (p != b"*").then_some(p);
        } else if allow_type && is(c.arg(j), "TYPE") && more >= 1 {
            o.type_name = Some(c.arg(j + 1));
        } else {
            return Err(CmdError::Syntax);
        }
        j += 2;
    }
    Ok(o)
}

/// Replies `[cursor, [elements]]`.
pub fn reply_scan(out: &mut ferrokv_resp::ReplyBuf, cursor: u64, elems: &[Vec<u8>]) {
    out.array(2);
    out.bulk(cursor.to_string().as_bytes());
    out.bulks(elems.iter().map(Vec::as_slice));
}

pub fn scan(c: &mut Ctx) -> CmdResult {
    let mut cursor = parse_cursor(c.arg(1))?;
    let ScanOpts { count, pattern, type_name } = parse_scan_opts(c, 2, true)?;
    let want_type = type_name.map(ValueType::from_name);
    let db = c.client.db;
    let clock = c.eng.clock(c.now);
    let mut keys: Vec<SmallBytes> = Vec::new();
    let mut iterations = count * 10;
    loop {
        cursor = c.eng.dbs[db].scan(cursor, clock, |k, o| {
            let type_ok = match want_type {
                None => true,
                Some(None) => false,
                Some(Some(t)) => o.value.value_type() == t,
            };
            if type_ok && pattern.is_none_or(|p| glob_match(p, k, false)) {
                keys.push(k.clone());
            }
        });
        iterations -= 1;
        if cursor == 0 || iterations <= 0 || keys.len() as i64 >= count {
            break;
        }
    }
    let out = c.out();
    out.array(2);
    out.bulk(cursor.to_string().as_bytes());
    out.bulks(keys.iter().map(|k| k.as_slice()));
    Ok(())
}

pub fn dbsize(c: &mut Ctx) -> CmdResult {
    let n = c.eng.dbs[c.client.db].len();
    c.out().int(n as i64);
    Ok(())
}

/// Parses the optional ASYNC|SYNC argument of FLUSHDB/FLUSHALL; true means async.
fn flush_mode(c: &Ctx) -> Result<bool, CmdError> {
    match c.argc() {
        1 => Ok(c.eng.cfg.bool(pid("lazyfree-lazy-user-flush"))),
        2 if is(c.arg(1), "ASYNC") => Ok(true),
        2 if is(c.arg(1), "SYNC") => Ok(false),
        _ => Err(CmdError::Syntax),
    }
}

/// Client-side caching: a flush of any database empties the whole tracking table and
/// sends every tracking client the null invalidation (Redis's signalFlushedDb).
pub(crate) fn flush_tracking(c: &mut Ctx) {
    if c.eng.tracking.active() {
        c.eng.tracking_flush(Some(c.client));
    }
}

/// Empties database `db`, returning how many keys it held.
pub(crate) fn flush_db(c: &mut Ctx, db: usize, lazy: bool) -> u64 {
    c.eng.touch_all_watched_in_db(Some(c.client), db, None, c.now);
    let removed = c.eng.dbs[db].len() as u64;
    let old = c.eng.dbs[db].flush();
    if lazy && removed > 64 {
        c.eng.host.free_later(Box::new(old));
    }
    removed
}

pub fn flushdb(c: &mut Ctx) -> CmdResult {
    let lazy = flush_mode(c)?;
    let removed = flush_db(c, c.client.db, lazy);
    flush_tracking(c);
    // Only removed keys count as changes; an empty database's FLUSHDB still reaches the
    // AOF and replicas.
    c.eng.dirty += removed;
    c.force_propagation();
    c.out().ok();
    Ok(())
}

pub fn flushall(c: &mut Ctx) -> CmdResult {
    let lazy = flush_mode(c)?;
    let mut removed = 0;
    for db in 0..c.eng.dbs.len() {
        removed += flush_db(c, db, lazy);
    }
    flush_tracking(c);
    // As Redis: the snapshot in progress would resurrect the data, and with save points
    // the empty dataset is saved at once.
    if c.eng.persist.bgsave_in_progress() {
        c.eng.abort_snapshot();
    }
    c.eng.dirty += removed;
    if c.eng.save_points_configured() {
        let _ = c.eng.save_sync(c.now);
    }
    c.eng.dirty += 1;
    c.out().ok();
    Ok(())
}

pub fn swapdb(c: &mut Ctx) -> CmdResult {
    let a = ferrokv_resp::parse_i64(c.arg(1)).ok_or(CmdError::err("ERR invalid first DB index"))?;
    let b = ferrokv_resp::parse_i64(c.arg(2)).ok_or(CmdError::err("ERR invalid second DB index"))?;
    let n = c.eng.dbs.len() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return fail("ERR DB index is out of range");
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        c.eng.touch_all_watched_in_db(Some(c.client), a, Some(b), c.now);
        c.eng.touch_all_watched_in_db(Some(c.client), b, Some(a), c.now);
        let (lo, hi) = (a.min(b), a.max(b));
        let (left, right) = c.eng.dbs.split_at_mut(hi);
        left[lo].swap_contents(&mut right[0]);
        // Blocked clients stay in their db number, which now holds other data.
        c.eng.signal_existing_keys(a, c.now);
        c.eng.signal_existing_keys(b, c.now);
    }
    c.eng.dirty += 1;
    c.out().ok();
    Ok(())
}

/// The object at `key` for OBJECT subcommands (no LRU touch, no stats), or a null reply.
fn object_of<'e>(c: &'e mut Ctx) -> Option<&'e mut Obj> {
    let clock = c.eng.clock(c.now);
    c.eng.dbs[c.client.db].lookup(c.argv.get(2), clock)
}

fn maxmemory_lfu(c: &Ctx) -> bool {
    c.eng.hot.policy.is_lfu()
}

pub fn object_encoding(c: &mut Ctx) -> CmdResult {
    match object_of(c).map(|o| o.encoding()) {
        Some(e) => c.out().bulk(e.as_bytes()),
        None => c.out().null(),
    }
    Ok(())
}

pub fn object_refcount(c: &mut Ctx) -> CmdResult {
    let shared = !maxmemory_lfu(c) && !matches!(c.eng.cfg.int(pid("maxmemory-policy")), 0 | 4);
    match object_of(c) {
        // Redis shares the objects of small integers (0..9999) unless an LRU/LFU policy
        // needs per-key metadata; shared objects report INT_MAX.
        Some(o) if shared && matches!(o.value, Value::Int(n) if (0..10000).contains(&n)) => {
            c.out().int(i32::MAX as i64)
        }
        Some(_) => c.out().int(1),
        None => c.out().null(),
    }
    Ok(())
}

pub fn object_idletime(c: &mut Ctx) -> CmdResult {
    if maxmemory_lfu(c) {
        return fail("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    let now = c.now;
    match object_of(c).map(|o| o.idle_ms(now) / 1000) {
        Some(s) => c.out().int(s),
        None => c.out().null(),
    }
    Ok(())
}

pub fn object_freq(c: &mut Ctx) -> CmdResult {
    if !maxmemory_lfu(c) {
        return fail("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.");
    }
    let (now, decay) = (c.now, c.eng.hot.lfu_decay_time);
    match object_of(c).map(|o| o.lfu_count(now, decay) as i64) {
        Some(f) => c.out().int(f),
        None => c.out().null(),
    }
    Ok(())
}

pub fn object_help(c: &mut Ctx) -> CmdResult {
    reply_help(
        c,
        &[
            "ENCODING <key>",
            "    The internal representation of the value at <key>.",
            "FREQ <key>",
            "    The logarithmic access frequency counter of <key> (LFU policies only).",
            "IDLETIME <key>",
            "    Seconds since <key> was last accessed (not with LFU policies).",
            "REFCOUNT <key>",
            "    The number of references to the value at <key>.",
        ],
    )
}

/// Approximate bytes used by a key: its table node, bucket slot, key and value storage.
pub fn key_memory(key: &SmallBytes, obj: &Obj, has_ttl: bool) -> usize {
    const NODE: usize = 64;
    const SLOT: usize = 8;
    const EXPIRE_NODE: usize = 48 + 8;
    NODE + SLOT + key.heap_size() + obj.value.heap_size() + if has_ttl { EXPIRE_NODE } else { 0 }
}

pub fn memory_usage(c: &mut Ctx) -> CmdResult {
    let key = c.arg(2);
    let mut j = 3;
    while j < c.argc() {
        if is(c.arg(j), "SAMPLES") && j + 1 < c.argc() {
            let n = int_arg(c.arg(j + 1))?;
            if n < 0 {
                return Err(CmdError::Syntax);
            }
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let db = c.client.db;
    let has_ttl = c.eng.dbs[db].expire_at(key).is_some();
    let clock = c.eng.clock(c.now);
    let size = c.eng.dbs[db].lookup(key, clock).map(|o| key_memory(&SmallBytes::from(key), o, has_ttl));
    match size {
        Some(n) => c.out().int(n as i64),
        None => c.out().null(),
    }
    Ok(())
}
