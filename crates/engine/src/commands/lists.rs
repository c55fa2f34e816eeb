//! List commands: LPUSH/RPUSH (and the X variants), LPOP/RPOP (with count), LLEN,
//! LRANGE, LINDEX, LSET, LINSERT, LREM, LTRIM, LPOS, LMOVE/RPOPLPUSH, LMPOP, and the
//! blocking BLPOP/BRPOP, BLMOVE/BRPOPLPUSH, BLMPOP.
//!
//! Rules shared by the family, all Redis's:
//! - a list is never left empty: the command that removes the last element deletes the
//!   key and also fires a `del` keyspace event;
//! - the change count (`dirty`) moves by the number of elements added or removed, so a
//!   command that changed nothing (LTRIM keeping everything, LREM finding nothing) is not
//!   propagated, although LTRIM still fails WATCHers as Redis's does;
//! - a blocking command that finds data behaves exactly like its non-blocking twin and is
//!   propagated as that twin (BLPOP as `LPOP key`, BLMPOP as `LPOP key count`, BLMOVE as
//!   `LMOVE`, BRPOPLPUSH as `RPOPLPUSH`); one that finds none blocks (a timeout answers
//!   `*-1`, even for BLMOVE), or inside MULTI/EXEC answers at once with the null of its
//!   non-blocking twin. The engine re-runs the command when one of its keys receives
//!   data, restricted to that key (`Ctx::blocking_candidates`), so the handlers only
//!   decide "serve now or block".

use crate::blocking::{BlockRequest, TimeoutReply};
use crate::ctx::{int_arg, is, timeout_arg, Ctx};
use crate::engine::Engine;
use crate::error::{CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::types::list::List;
use ferrokv_keyspace::{Obj, SmallBytes, Value, ValueType};

/// Which end of a list a command works on (LEFT = head, RIGHT = tail).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

impl End {
    /// Parses LEFT/RIGHT, case-insensitively (anything else is a syntax error).
    fn parse(a: &[u8]) -> Result<End, CmdError> {
        if is(a, "left") {
            Ok(End::Left)
        } else if is(a, "right") {
            Ok(End::Right)
        } else {
            Err(CmdError::Syntax)
        }
    }

    fn push_event(self) -> &'static str {
        match self {
            End::Left => "lpush",
            End::Right => "rpush",
        }
    }

    fn pop_event(self) -> &'static str {
        match self {
            End::Left => "lpop",
            End::Right => "rpop",
        }
    }

    /// The non-blocking pop a blocking pop is propagated as.
    fn pop_command(self) -> &'static [u8] {
        match self {
            End::Left => b"LPOP",
            End::Right => b"RPOP",
        }
    }

    /// The direction word Redis writes when it propagates a BLMOVE it served after
    /// blocking (its own `left`/`right` objects, whatever case the client used).
    fn word(self) -> &'static [u8] {
        match self {
            End::Left => b"left",
            End::Right => b"right",
        }
    }
}

fn as_list(v: &Value) -> Result<&List, CmdError> {
    match v {
        Value::List(l) => Ok(l),
        _ => Err(CmdError::WrongType),
    }
}

fn as_list_mut(v: &mut Value) -> Result<&mut List, CmdError> {
    match v {
        Value::List(l) => Ok(l),
        _ => Err(CmdError::WrongType),
    }
}

/// The list at `key` for a read (counts a keyspace hit or miss): None if the key is
/// missing, WRONGTYPE if it holds something else.
fn read_list<'e>(eng: &'e mut Engine, db: usize, key: &[u8], now: i64) -> Result<Option<&'e List>, CmdError> {
    eng.lookup_read(db, key, now).map(|o| as_list(&o.value)).transpose()
}

/// The list at `key` for a write (no hit/miss accounting, as Redis's lookupKeyWrite).
fn write_list<'e>(eng: &'e mut Engine, db: usize, key: &[u8], now: i64) -> Result<Option<&'e mut List>, CmdError> {
    eng.lookup_write(db, key, now).map(|o| as_list_mut(&mut o.value)).transpose()
}

/// Stores a new list under `key`, which the caller found missing. `set` rather than `add`:
/// a replica keeps logically expired keys stored until its master's DEL, so "missing"
/// does not guarantee the slot is free.
fn create_list(c: &mut Ctx, key: &[u8], list: List) {
    let db = c.db();
    c.eng.dbs[db].set(key, Obj::new(Value::List(Box::new(list)), c.now), false);
}

fn push_end(l: &mut List, end: End, item: SmallBytes) {
    match end {
        End::Left => l.items.push_front(item),
        End::Right => l.items.push_back(item),
    }
}

fn pop_end(l: &mut List, end: End) -> Option<SmallBytes> {
    match end {
        End::Left => l.items.pop_front(),
        End::Right => l.items.pop_back(),
    }
}

/// Pops up to `n` elements from one end, in pop order.
fn pop_many(l: &mut List, end: End, n: usize) -> Vec<SmallBytes> {
    let n = n.min(l.len());
    match end {
        End::Left => l.items.drain(..n).collect(),
        End::Right => {
            let at = l.len() - n;
            let mut tail: Vec<SmallBytes> = l.items.drain(at..).collect();
            tail.reverse();
            tail
        }
    }
}

/// Bookkeeping after elements were popped from `key`: the pop event, deletion of an
/// emptied list (with its `del` event), and the change count.
fn popped(c: &mut Ctx, key: &[u8], end: End, n: usize, emptied: bool) {
    c.notify(notify::LIST, end.pop_event(), key);
    if emptied {
        let db = c.db();
        c.eng.dbs[db].remove(key);
        c.notify(notify::GENERIC, "del", key);
    }
    c.modified_in(c.db(), key, n as u64);
}

/// Parses an integer argument that must lie in `min..=i64::MAX`; both a non-integer and
/// an out-of-range value get `msg` (Redis's getRangeLongFromObjectOrReply with a message).
fn ranged_arg(a: &[u8], min: i64, msg: &'static str) -> Result<i64, CmdError> {
    ferrokv_resp::parse_i64(a).filter(|&v| v >= min).ok_or(CmdError::err(msg))
}

/// Redis's reply when a command got a valid arity but an argument count it rejects.
fn arity_error(c: &Ctx) -> CmdError {
    CmdError::msg(format!("ERR wrong number of arguments for '{}' command", c.eng.commands.get(c.cmd).fullname()))
}

/// Resolves an inclusive [start, end] range with negative indexes counting from the tail,
/// clamped to the list (LRANGE, LTRIM). None if the range selects nothing.
fn resolve_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    // Adding a negative index to a non-negative length cannot overflow.
    let start = if start < 0 { len + start } else { start }.max(0);
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}

// ---- pushes --------------------------------------------------------------------------

fn push_generic(c: &mut Ctx, end: End, only_existing: bool) -> CmdResult {
    let key = c.arg(1);
    let (db, now) = (c.db(), c.now);
    let argv = c.argv;
    let items = || argv.iter().skip(2).map(SmallBytes::from);
    let len = match write_list(c.eng, db, key, now)? {
        Some(l) => {
            items().for_each(|it| push_end(l, end, it));
            l.len()
        }
        None if only_existing => {
            c.out().int(0);
            return Ok(());
        }
        None => {
            let mut l = List::new();
            items().for_each(|it| push_end(&mut l, end, it));
            let len = l.len();
            create_list(c, key, l);
            len
        }
    };
    c.out().int(len as i64);
    c.modified_in(db, key, (c.argc() - 2) as u64);
    c.notify(notify::LIST, end.push_event(), key);
    c.signal_ready(key);
    Ok(())
}

pub fn lpush(c: &mut Ctx) -> CmdResult {
    push_generic(c, End::Left, false)
}

pub fn rpush(c: &mut Ctx) -> CmdResult {
    push_generic(c, End::Right, false)
}

pub fn lpushx(c: &mut Ctx) -> CmdResult {
    push_generic(c, End::Left, true)
}

pub fn rpushx(c: &mut Ctx) -> CmdResult {
    push_generic(c, End::Right, true)
}

// ---- pops ----------------------------------------------------------------------------

fn pop_generic(c: &mut Ctx, end: End) -> CmdResult {
    // The spec's arity (-2) admits any length; the optional count is the only extra.
    if c.argc() > 3 {
        return Err(arity_error(c));
    }
    let count = match c.argc() {
        3 => Some(ranged_arg(c.arg(2), 0, "ERR value is out of range, must be positive")?),
        _ => None,
    };
    let key = c.arg(1);
    let (db, now) = (c.db(), c.now);
    let Some(l) = write_list(c.eng, db, key, now)? else {
        // With a count the reply is an array, so "nothing" is the null array.
        match count {
            Some(_) => c.client.out.null_array(),
            None => c.client.out.null(),
        }
        return Ok(());
    };
    let n = match count {
        Some(0) => {
            c.client.out.array(0);
            return Ok(());
        }
        // A count beyond the list's length pops everything.
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
        None => 1,
    };
    let items = pop_many(l, end, n);
    let emptied = l.is_empty();
    match count {
        Some(_) => c.client.out.bulks(items.iter().map(|s| s.as_slice())),
        None => c.client.out.bulk_opt(items.first().map(|s| s.as_slice())),
    }
    popped(c, key, end, items.len(), emptied);
    Ok(())
}

pub fn lpop(c: &mut Ctx) -> CmdResult {
    pop_generic(c, End::Left)
}

pub fn rpop(c: &mut Ctx) -> CmdResult {
    pop_generic(c, End::Right)
}

/// Where LMPOP/BLMPOP's arguments say to pop.
struct MpopArgs {
    /// Argument positions of the keys.
    keys: std::ops::Range<usize>,
    end: End,
    count: usize,
}

/// Parses `numkeys key [key ...] LEFT|RIGHT [COUNT count]` starting at `numkeys_at`.
fn parse_mpop(c: &Ctx, numkeys_at: usize) -> Result<MpopArgs, CmdError> {
    let numkeys = ranged_arg(c.arg(numkeys_at), 1, "ERR numkeys should be greater than 0")?;
    // A numkeys larger than the arguments present leaves no room for the direction.
    let where_at = usize::try_from(numkeys).ok().and_then(|n| (numkeys_at + 1).checked_add(n));
    let Some(where_at) = where_at.filter(|&w| w < c.argc()) else {
        return Err(CmdError::Syntax);
    };
    let end = End::parse(c.arg(where_at))?;
    let mut count = None;
    let mut j = where_at + 1;
    while j < c.argc() {
        // COUNT may be given once, and needs its value.
        if count.is_none() && is(c.arg(j), "count") && j + 1 < c.argc() {
            count = Some(ranged_arg(c.arg(j + 1), 1, "ERR count should be greater than 0")?);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let count = usize::try_from(count.unwrap_or(1)).unwrap_or(usize::MAX);
    Ok(MpopArgs { keys: numkeys_at + 1..where_at, end, count })
}

/// Pops from the first non-empty list among `keys` (WRONGTYPE stops the search), replies
/// `[key, [elements]]` when `nested` or `[key, element]` otherwise, and propagates the
/// pop as `LPOP|RPOP key [count]`. Returns false (nothing replied) if all were empty.
/// Serving a blocked client, only the key that became ready is looked at.
fn pop_first_of(
    c: &mut Ctx,
    keys: std::ops::Range<usize>,
    end: End,
    count: usize,
    nested: bool,
) -> Result<bool, CmdError> {
    let (db, now) = (c.db(), c.now);
    for i in c.blocking_candidates(keys) {
        let key = c.arg(i);
        let Some(l) = write_list(c.eng, db, key, now)? else { continue };
        let items = pop_many(l, end, count);
        if items.is_empty() {
            continue;
        }
        let emptied = l.is_empty();
        let out = &mut c.client.out;
        out.array(2);
        out.bulk(key);
        if nested {
            out.bulks(items.iter().map(|s| s.as_slice()));
        } else {
            out.bulk(&items[0]);
        }
        popped(c, key, end, items.len(), emptied);
        let mut rewrite = vec![end.pop_command().to_vec(), key.to_vec()];
        if nested {
            rewrite.push(items.len().to_string().into_bytes());
        }
        c.rewrite_as(rewrite);
        return Ok(true);
    }
    Ok(false)
}

pub fn lmpop(c: &mut Ctx) -> CmdResult {
    let a = parse_mpop(c, 1)?;
    if !pop_first_of(c, a.keys, a.end, a.count, true)? {
        c.out().null_array();
    }
    Ok(())
}

// ---- reads ---------------------------------------------------------------------------

pub fn llen(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let len = read_list(c.eng, c.client.db, key, c.now)?.map_or(0, List::len);
    c.out().int(len as i64);
    Ok(())
}

pub fn lindex(c: &mut Ctx) -> CmdResult {
    let (key, index) = (c.arg(1), c.arg(2));
    // A missing key answers null before the index is even parsed, as in Redis.
    let Some(l) = read_list(c.eng, c.client.db, key, c.now)? else {
        c.client.out.null();
        return Ok(());
    };
    let index = int_arg(index)?;
    c.client.out.bulk_opt(l.index(index).map(|i| l.items[i].as_slice()));
    Ok(())
}

pub fn lrange(c: &mut Ctx) -> CmdResult {
    let start = int_arg(c.arg(2))?;
    let end = int_arg(c.arg(3))?;
    let key = c.arg(1);
    let l = read_list(c.eng, c.client.db, key, c.now)?;
    match l.and_then(|l| resolve_range(start, end, l.len()).map(|r| (l, r))) {
        Some((l, (s, e))) => c.client.out.bulks(l.items.range(s..=e).map(|x| x.as_slice())),
        None => c.client.out.array(0),
    }
    Ok(())
}

/// LPOS's options.
struct LposOpts {
    /// Which match to start from (negative: counting from the tail).
    rank: i64,
    /// None: reply with one index; Some(0): all matches; Some(n): up to n.
    count: Option<i64>,
    /// How many elements to compare at most (0: all).
    maxlen: i64,
}

fn parse_lpos(c: &Ctx) -> Result<LposOpts, CmdError> {
    let mut o = LposOpts { rank: 1, count: None, maxlen: 0 };
    let mut j = 3;
    while j < c.argc() {
        let opt = c.arg(j);
        let has_value = j + 1 < c.argc();
        if is(opt, "rank") && has_value {
            o.rank = int_arg(c.arg(j + 1))?;
            if o.rank == 0 {
                return Err(CmdError::err(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(opt, "count") && has_value {
            o.count = Some(ranged_arg(c.arg(j + 1), 0, "ERR COUNT can't be negative")?);
        } else if is(opt, "maxlen") && has_value {
            o.maxlen = ranged_arg(c.arg(j + 1), 0, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 2;
    }
    Ok(o)
}

pub fn lpos(c: &mut Ctx) -> CmdResult {
    let o = parse_lpos(c)?;
    let (key, ele) = (c.arg(1), c.arg(2));
    let Some(l) = read_list(c.eng, c.client.db, key, c.now)? else {
        match o.count {
            Some(_) => c.client.out.array(0),
            None => c.client.out.null(),
        }
        return Ok(());
    };
    let from_tail = o.rank < 0;
    // Redis negates the rank in C long arithmetic: RANK -9223372036854775808 stays
    // negative, so every match qualifies. Wrapping keeps that observable behaviour.
    let rank = if from_tail { o.rank.wrapping_neg() } else { o.rank };
    let len = l.len();
    let scan = if o.maxlen == 0 { len } else { len.min(usize::try_from(o.maxlen).unwrap_or(usize::MAX)) };
    let mut matches: i64 = 0;
    let mut found = Vec::new();
    for step in 0..scan {
        let pos = if from_tail { len - 1 - step } else { step };
        if l.items[pos].as_slice() != ele {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        found.push(pos as i64);
        match o.count {
            None => break,
            Some(n) if n != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= n => break,
            Some(_) => {}
        }
    }
    let out = &mut c.client.out;
    match o.count {
        Some(_) => {
            out.array(found.len());
            found.iter().for_each(|&p| out.int(p));
        }
        None => match found.first() {
            Some(&p) => out.int(p),
            None => out.null(),
        },
    }
    Ok(())
}

// ---- in-place edits ------------------------------------------------------------------

pub fn lset(c: &mut Ctx) -> CmdResult {
    let (key, index, value) = (c.arg(1), c.arg(2), c.arg(3));
    let (db, now) = (c.db(), c.now);
    let l = write_list(c.eng, db, key, now)?.ok_or(CmdError::NoSuchKey)?;
    let index = int_arg(index)?;
    let slot = l.index(index).ok_or(CmdError::OutOfRange)?;
    l.items[slot] = SmallBytes::from(value);
    c.out().ok();
    c.modified(key);
    c.notify(notify::LIST, "lset", key);
    Ok(())
}

pub fn linsert(c: &mut Ctx) -> CmdResult {
    let after = if is(c.arg(2), "after") {
        true
    } else if is(c.arg(2), "before") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let (key, pivot, value) = (c.arg(1), c.arg(3), c.arg(4));
    let (db, now) = (c.db(), c.now);
    let Some(l) = write_list(c.eng, db, key, now)? else {
        c.client.out.int(0);
        return Ok(());
    };
    let Some(at) = l.items.iter().position(|x| x.as_slice() == pivot) else {
        c.client.out.int(-1);
        return Ok(());
    };
    l.items.insert(at + after as usize, SmallBytes::from(value));
    let len = l.len();
    c.modified(key);
    c.notify(notify::LIST, "linsert", key);
    c.out().int(len as i64);
    Ok(())
}

pub fn lrem(c: &mut Ctx) -> CmdResult {
    let count = int_arg(c.arg(2))?;
    let (key, ele) = (c.arg(1), c.arg(3));
    let (db, now) = (c.db(), c.now);
    let Some(l) = write_list(c.eng, db, key, now)? else {
        c.client.out.int(0);
        return Ok(());
    };
    let total = l.items.iter().filter(|x| x.as_slice() == ele).count();
    // 0 removes every match; otherwise at most |count| of them, from the head for a
    // positive count and from the tail for a negative one.
    let limit = match count.unsigned_abs() {
        0 => total,
        n => total.min(usize::try_from(n).unwrap_or(usize::MAX)),
    };
    // From the tail, the matches to remove are the last `limit` ones, i.e. those whose
    // ordinal among all matches (from the head) is at least total - limit.
    let first_removed = if count < 0 { total - limit } else { 0 };
    let mut seen = 0;
    l.items.retain(|x| {
        if x.as_slice() != ele {
            return true;
        }
        seen += 1;
        let ordinal = seen - 1;
        !(ordinal >= first_removed && ordinal < first_removed + limit)
    });
    let emptied = l.is_empty();
    if limit > 0 {
        c.modified_in(db, key, limit as u64);
        c.notify(notify::LIST, "lrem", key);
    }
    if emptied {
        c.eng.dbs[db].remove(key);
        c.notify(notify::GENERIC, "del", key);
    }
    c.out().int(limit as i64);
    Ok(())
}

pub fn ltrim(c: &mut Ctx) -> CmdResult {
    let start = int_arg(c.arg(2))?;
    let end = int_arg(c.arg(3))?;
    let key = c.arg(1);
    let (db, now) = (c.db(), c.now);
    let Some(l) = write_list(c.eng, db, key, now)? else {
        c.client.out.ok();
        return Ok(());
    };
    let len = l.len();
    let removed = match resolve_range(start, end, len) {
        // Keep [s, e]: drop the tail first so the head's indexes stay valid.
        Some((s, e)) => {
            l.items.truncate(e + 1);
            l.items.drain(..s);
            len - (e + 1 - s)
        }
        None => {
            l.items.clear();
            len
        }
    };
    let emptied = l.is_empty();
    c.notify(notify::LIST, "ltrim", key);
    if emptied {
        c.eng.dbs[db].remove(key);
        c.notify(notify::GENERIC, "del", key);
    }
    // Redis signals the key even when nothing was trimmed (WATCH fails), but only a
    // removal counts as a change to propagate.
    c.modified_in(db, key, removed as u64);
    c.out().ok();
    Ok(())
}

// ---- moves ---------------------------------------------------------------------------

/// Moves one element from `from` end of list `src` to `to` end of list `dst` and replies
/// with it; replies null if `src` is missing. Returns whether an element moved.
fn move_generic(c: &mut Ctx, src: &[u8], dst: &[u8], from: End, to: End) -> Result<bool, CmdError> {
    let (db, now) = (c.db(), c.now);
    if write_list(c.eng, db, src, now)?.is_none() {
        c.client.out.null();
        return Ok(false);
    }
    // Both types are checked before anything changes.
    write_list(c.eng, db, dst, now)?;
    let popped = write_list(c.eng, db, src, now)?.and_then(|s| pop_end(s, from).map(|v| (v, s.is_empty())));
    let Some((value, src_left_empty)) = popped else {
        // Unreachable in practice: src was just found, and empty lists are never stored.
        c.client.out.null();
        return Ok(false);
    };
    // A rotation (src == dst) pushes back into the list it popped from (so it never
    // empties): the destination lookup finds it even when it is momentarily empty.
    let src_emptied = src_left_empty && src != dst;
    match write_list(c.eng, db, dst, now)? {
        Some(d) => push_end(d, to, value.clone()),
        None => {
            let mut l = List::new();
            push_end(&mut l, to, value.clone());
            create_list(c, dst, l);
        }
    }
    c.modified_in(db, dst, 0);
    c.notify(notify::LIST, to.push_event(), dst);
    c.signal_ready(dst);
    c.out().bulk(&value);
    c.notify(notify::LIST, from.pop_event(), src);
    if src_emptied {
        c.eng.dbs[db].remove(src);
        c.notify(notify::GENERIC, "del", src);
    }
    c.modified(src);
    Ok(true)
}

pub fn lmove(c: &mut Ctx) -> CmdResult {
    let from = End::parse(c.arg(3))?;
    let to = End::parse(c.arg(4))?;
    move_generic(c, c.arg(1), c.arg(2), from, to).map(drop)
}

pub fn rpoplpush(c: &mut Ctx) -> CmdResult {
    move_generic(c, c.arg(1), c.arg(2), End::Right, End::Left).map(drop)
}

// ---- blocking variants ---------------------------------------------------------------

/// What a blocking list command answers when it cannot block (inside MULTI/EXEC).
#[derive(Clone, Copy)]
enum Unblockable {
    /// BLPOP, BRPOP, BLMPOP: `*-1`.
    NullArray,
    /// BLMOVE, BRPOPLPUSH: `$-1`, as their non-blocking twins.
    NullBulk,
}

/// Blocks on `keys` for a non-empty list, or, where blocking is not allowed (inside
/// MULTI/EXEC), answers at once with the command's null.
fn block_or_answer(c: &mut Ctx, keys: std::ops::Range<usize>, deadline_ms: Option<i64>, unblockable: Unblockable) {
    if !c.can_block() {
        match unblockable {
            Unblockable::NullArray => c.out().null_array(),
            Unblockable::NullBulk => c.out().null(),
        }
        return;
    }
    let keys = keys.map(|i| SmallBytes::from(c.arg(i))).collect();
    // Redis 7.0 answers *every* list block that times out with the null array, BLMOVE
    // and BRPOPLPUSH included (replyToBlockedClientTimedOut), unlike the MULTI case.
    c.block(BlockRequest {
        keys,
        deadline_ms,
        wants: ValueType::List,
        timeout_reply: TimeoutReply::NullArray,
        argv: None,
    });
}

/// BLPOP/BRPOP: `key [key ...] timeout`.
fn bpop_generic(c: &mut Ctx, end: End) -> CmdResult {
    let last = c.argc() - 1;
    let deadline = timeout_arg(c.arg(last), c.now)?;
    if !pop_first_of(c, 1..last, end, 1, false)? {
        block_or_answer(c, 1..last, deadline, Unblockable::NullArray);
    }
    Ok(())
}

pub fn blpop(c: &mut Ctx) -> CmdResult {
    bpop_generic(c, End::Left)
}

pub fn brpop(c: &mut Ctx) -> CmdResult {
    bpop_generic(c, End::Right)
}

pub fn blmpop(c: &mut Ctx) -> CmdResult {
    // Redis validates numkeys, direction and COUNT before the timeout.
    let a = parse_mpop(c, 2)?;
    let deadline = timeout_arg(c.arg(1), c.now)?;
    if !pop_first_of(c, a.keys.clone(), a.end, a.count, true)? {
        block_or_answer(c, a.keys, deadline, Unblockable::NullArray);
    }
    Ok(())
}

/// BLMOVE/BRPOPLPUSH once the arguments are parsed: `rewrite` is what a call that moved
/// an element is propagated as. The source is the only key waited on, so a served call
/// (see [`crate::blocking`]) necessarily takes from the ready key.
fn bmove_generic(c: &mut Ctx, from: End, to: End, deadline: Option<i64>, rewrite: Vec<Vec<u8>>) -> CmdResult {
    let (src, dst) = (c.arg(1), c.arg(2));
    let (db, now) = (c.db(), c.now);
    if write_list(c.eng, db, src, now)?.is_none() {
        // Only the source is waited on; the destination's type is checked when served.
        block_or_answer(c, 1..2, deadline, Unblockable::NullBulk);
        return Ok(());
    }
    if move_generic(c, src, dst, from, to)? {
        c.rewrite_as(rewrite);
    }
    Ok(())
}

pub fn blmove(c: &mut Ctx) -> CmdResult {
    let from = End::parse(c.arg(3))?;
    let to = End::parse(c.arg(4))?;
    let deadline = timeout_arg(c.arg(5), c.now)?;
    // Redis propagates the client's own words when it moves at once, and its lowercase
    // `left`/`right` when it serves the client after blocking.
    let (w3, w4) = match c.ready_key() {
        Some(_) => (from.word(), to.word()),
        None => (c.arg(3), c.arg(4)),
    };
    let rewrite = vec![b"LMOVE".to_vec(), c.arg(1).to_vec(), c.arg(2).to_vec(), w3.to_vec(), w4.to_vec()];
    bmove_generic(c, from, to, deadline, rewrite)
}

pub fn brpoplpush(c: &mut Ctx) -> CmdResult {
    let deadline = timeout_arg(c.arg(3), c.now)?;
    let rewrite = vec![b"RPOPLPUSH".to_vec(), c.arg(1).to_vec(), c.arg(2).to_vec()];
    bmove_generic(c, End::Right, End::Left, deadline, rewrite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_clamp_like_redis() {
        assert_eq!(resolve_range(0, -1, 3), Some((0, 2)));
        assert_eq!(resolve_range(-100, 100, 3), Some((0, 2)));
        assert_eq!(resolve_range(2, 1, 3), None);
        assert_eq!(resolve_range(3, 5, 3), None);
        assert_eq!(resolve_range(-1, -2, 3), None);
        assert_eq!(resolve_range(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(resolve_range(0, 0, 0), None);
    }

    #[test]
    fn pop_many_keeps_pop_order() {
        let mut l = List::new();
        for s in ["a", "b", "c", "d"] {
            l.items.push_back(SmallBytes::from(s));
        }
        assert_eq!(pop_many(&mut l, End::Right, 2), vec![SmallBytes::from("d"), SmallBytes::from("c")]);
        assert_eq!(pop_many(&mut l, End::Left, 5), vec![SmallBytes::from("a"), SmallBytes::from("b")]);
        assert!(l.is_empty());
    }
}
