//! Sorted set commands: ZADD, ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZCOUNT, ZLEXCOUNT,
//! the ZRANGE family (ZRANGE, ZRANGESTORE, ZREVRANGE, Z[REV]RANGEBYSCORE,
//! Z[REV]RANGEBYLEX), ZRANK, ZREVRANK, ZREMRANGEBY{RANK,SCORE,LEX}, the pops (ZPOPMIN,
//! ZPOPMAX, ZMPOP and their blocking forms), ZRANDMEMBER, the set operations (ZUNION,
//! ZINTER, ZDIFF, their STORE forms, ZINTERCARD) and ZSCAN.
//!
//! Propagation follows Redis 7.0: ZADD/ZINCRBY go out as received (float addition is
//! deterministic); ZMPOP and every blocking pop go out as the ZPOPMIN/ZPOPMAX they did.
//! Argument checks run in Redis's order, since that decides which error a client sees.

use super::keys::{parse_cursor, parse_scan_opts, reply_scan};
use crate::blocking::{BlockRequest, TimeoutReply};
use crate::ctx::{int_arg, is, timeout_arg, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::types::zset::{
    cmp_entry, packed_score_text, LexBound, LexRange, Limits, RangeSpec, ScoreRange, ZSet,
};
use ferrokv_keyspace::{Obj, SmallBytes, Value, ValueType};
use ferrokv_resp::ReplyBuf;
use std::collections::{HashMap, HashSet};

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
// Argument parsing

/// C's `strtod` over the whole argument (up to a NUL, as C strings end there): leading
/// whitespace allowed, overflow to ±inf accepted, and an empty string reads as 0 — which
/// is what Redis's range parser accepts. NaN is refused.
pub(crate) fn strtod_whole(arg: &[u8]) -> Option<f64> {
    let s = &arg[..arg.iter().position(|&b| b == 0).unwrap_or(arg.len())];
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))?;
    let text = std::str::from_utf8(&s[start..]).ok()?;
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let lower = body.to_ascii_lowercase();
    let magnitude = if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else if body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
        body.parse::<f64>().ok()?
    } else {
        return None;
    };
    Some(if neg { -magnitude } else { magnitude })
}

/// The part after `0x` of a C hexadecimal float (`1.8p3`), as strtod reads it.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = match s.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for ch in int.chars() {
        v = v * 16.0 + f64::from(ch.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for ch in frac.chars() {
        v += f64::from(ch.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    Some(v * 2f64.powi(exp))
}

/// A score, weight or increment argument (Redis's `string2d`): `strtod` with no leading
/// space, no trailing bytes, no overflow and no NaN. strtod also reads C99 hex floats.
fn score_arg(a: &[u8], err: CmdError) -> Result<f64, CmdError> {
    if let Some(v) = ferrokv_resp::num::parse_f64(a) {
        return Ok(v);
    }
    let text = std::str::from_utf8(a).map_err(|_| err.clone())?.to_ascii_lowercase();
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, &text[..]),
    };
    let v = body.strip_prefix("0x").and_then(parse_hex_float).filter(|v| v.is_finite()).ok_or(err)?;
    Ok(if neg { -v } else { v })
}

/// One score bound: `(x` is exclusive.
fn score_bound(arg: &[u8]) -> Option<(f64, bool)> {
    let (rest, ex) = match arg.first() {
        Some(b'(') => (&arg[1..], true),
        _ => (arg, false),
    };
    strtod_whole(rest).map(|v| (v, ex))
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    let bad = || CmdError::err("ERR min or max is not a float");
    let (min, minex) = score_bound(min).ok_or_else(bad)?;
    let (max, maxex) = score_bound(max).ok_or_else(bad)?;
    Ok(ScoreRange { min, max, minex, maxex })
}

/// One lex bound: `-`, `+`, `[x` or `(x`. A lone `-`/`+` means the C string ends there.
fn lex_bound(arg: &[u8]) -> Option<LexBound> {
    let alone = arg.get(1).is_none_or(|&b| b == 0);
    match arg.first()? {
        b'+' if alone => Some(LexBound::Max),
        b'-' if alone => Some(LexBound::Min),
        b'(' => Some(LexBound::Value { bytes: arg[1..].to_vec(), exclusive: true }),
        b'[' => Some(LexBound::Value { bytes: arg[1..].to_vec(), exclusive: false }),
        _ => None,
    }
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
    let bad = || CmdError::err("ERR min or max not valid string range item");
    Ok(LexRange { min: lex_bound(min).ok_or_else(bad)?, max: lex_bound(max).ok_or_else(bad)? })
}

/// A count that must be 0 or more; one message for both failures (Redis's
/// `getPositiveLongFromObjectOrReply`).
fn positive_arg(a: &[u8], msg: &'static str) -> Result<i64, CmdError> {
    ferrokv_resp::parse_i64(a).filter(|&n| n >= 0).ok_or(CmdError::err(msg))
}

/// Redis's clamping of a rank range `start..=end` (negative counts from the end) to
/// `0..len`; None if it is empty.
fn clamp_ranks(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let end = if end < 0 { len + end } else { end };
    start = start.max(0);
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
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
fn store_result(c: &mut Ctx, dst: &[u8], entries: Entries, event: &str) -> CmdResult {
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

// ---------------------------------------------------------------------------------------
// ZADD, ZINCRBY, ZREM

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

// ---------------------------------------------------------------------------------------
// Point reads

pub fn zcard(c: &mut Ctx) -> CmdResult {
    let n = read_zset(c, c.arg(1))?.map_or(0, ZSet::len);
    c.out().int(n as i64);
    Ok(())
}

pub fn zscore(c: &mut Ctx) -> CmdResult {
    let member = c.arg(2);
    let score = read_zset(c, c.arg(1))?.and_then(|z| z.score(member));
    match score {
        Some(s) => c.out().double(s),
        None => c.out().null(),
    }
    Ok(())
}

pub fn zmscore(c: &mut Ctx) -> CmdResult {
    let argv = c.argv;
    let scores: Vec<Option<f64>> = match read_zset(c, argv.get(1))? {
        None => vec![None; argv.len() - 2],
        Some(z) => (2..argv.len()).map(|i| z.score(argv.get(i))).collect(),
    };
    let out = c.out();
    out.array(scores.len());
    for s in scores {
        match s {
            Some(s) => out.double(s),
            None => out.null(),
        }
    }
    Ok(())
}

/// ZRANK/ZREVRANK, with Redis 7.2's WITHSCORE as an extension (any other fourth argument
/// is the arity error Redis 7.0 gives).
fn zrank_generic(c: &mut Ctx, rev: bool) -> CmdResult {
    let withscore = match c.argc() {
        3 => false,
        4 if is(c.arg(3), "withscore") => true,
        _ => return Err(arity_error(c)),
    };
    let argv = c.argv;
    let found = match read_zset(c, argv.get(1))? {
        None => None,
        Some(z) => z.rank(argv.get(2)).map(|r| {
            let score = z.score(argv.get(2)).unwrap_or(0.0);
            (if rev { z.len() - 1 - r } else { r }, score)
        }),
    };
    let out = c.out();
    match (found, withscore) {
        (Some((r, _)), false) => out.int(r as i64),
        (Some((r, s)), true) => {
            out.array(2);
            out.int(r as i64);
            out.double(s);
        }
        (None, false) => out.null(),
        (None, true) => out.null_array(),
    }
    Ok(())
}

pub fn zrank(c: &mut Ctx) -> CmdResult {
    zrank_generic(c, false)
}

pub fn zrevrank(c: &mut Ctx) -> CmdResult {
    zrank_generic(c, true)
}

fn count_generic(c: &mut Ctx, range: &impl RangeSpec) -> CmdResult {
    let n = read_zset(c, c.arg(1))?.map_or(0, |z| z.range_ranks(range).len());
    c.out().int(n as i64);
    Ok(())
}

pub fn zcount(c: &mut Ctx) -> CmdResult {
    let range = parse_score_range(c.arg(2), c.arg(3))?;
    count_generic(c, &range)
}

pub fn zlexcount(c: &mut Ctx) -> CmdResult {
    let range = parse_lex_range(c.arg(2), c.arg(3))?;
    count_generic(c, &range)
}

// ---------------------------------------------------------------------------------------
// The ZRANGE family

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Auto,
    Rank,
    Score,
    Lex,
}

/// A parsed range request.
enum Bounds {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

struct RangeOpts {
    kind: RangeKind,
    rev: bool,
    withscores: bool,
    offset: i64,
    /// Negative: no limit.
    limit: i64,
}

/// Parses the options after `<src> <min> <max>`. `rev` is None when REV may be given.
fn parse_range_opts(
    c: &Ctx,
    from: usize,
    store: bool,
    kind: RangeKind,
    rev: Option<bool>,
) -> Result<RangeOpts, CmdError> {
    let mut o = RangeOpts { kind, rev: rev.unwrap_or(false), withscores: false, offset: 0, limit: -1 };
    let mut limit_given = false;
    let mut j = from;
    while j < c.argc() {
        let a = c.arg(j);
        let left = c.argc() - j - 1;
        if !store && is(a, "withscores") {
            o.withscores = true;
        } else if is(a, "limit") && left >= 2 {
            o.offset = int_arg(c.arg(j + 1))?;
            o.limit = int_arg(c.arg(j + 2))?;
            limit_given = true;
            j += 2;
        } else if rev.is_none() && !o.rev && is(a, "rev") {
            o.rev = true;
        } else if kind == RangeKind::Auto && o.kind == RangeKind::Auto && is(a, "bylex") {
            o.kind = RangeKind::Lex;
        } else if kind == RangeKind::Auto && o.kind == RangeKind::Auto && is(a, "byscore") {
            o.kind = RangeKind::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if o.kind == RangeKind::Auto {
        o.kind = RangeKind::Rank;
    }
    // Redis tests `limit != -1`, so `LIMIT 0 -1` passes for a rank range.
    if limit_given && o.limit != -1 && o.kind == RangeKind::Rank {
        return fail("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    }
    if o.withscores && o.kind == RangeKind::Lex {
        return fail("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    Ok(o)
}

fn parse_bounds(c: &Ctx, o: &RangeOpts, src: usize) -> Result<Bounds, CmdError> {
    let (mut lo, mut hi) = (c.arg(src + 1), c.arg(src + 2));
    // Reversed score and lex ranges are given as max then min.
    if o.rev && o.kind != RangeKind::Rank {
        std::mem::swap(&mut lo, &mut hi);
    }
    Ok(match o.kind {
        RangeKind::Score => Bounds::Score(parse_score_range(lo, hi)?),
        RangeKind::Lex => Bounds::Lex(parse_lex_range(lo, hi)?),
        _ => Bounds::Rank(int_arg(lo)?, int_arg(hi)?),
    })
}

fn collect_by_rank(z: &ZSet, start: i64, end: i64, rev: bool) -> Entries {
    let Some((start, end)) = clamp_ranks(start, end, z.len()) else { return Vec::new() };
    let from = if rev { z.len() - 1 - start } else { start };
    z.iter_from(from, rev).take(end - start + 1).map(|(m, s)| (m.to_vec(), s)).collect()
}

/// Entries of a score or lex range as Redis walks them: from the first (or, reversed,
/// the last) entry in range, skip `offset` entries, then take up to `limit` while in range.
fn collect_by_range(z: &ZSet, r: &impl RangeSpec, rev: bool, offset: i64, limit: i64) -> Entries {
    // A negative offset makes Redis's skip loop run off the end.
    if offset < 0 || (offset > 0 && offset as u64 >= z.len() as u64) {
        return Vec::new();
    }
    let start = if rev { z.last_in_range(r) } else { z.first_in_range(r) };
    let Some(start) = start else { return Vec::new() };
    let limit = if limit < 0 { usize::MAX } else { limit as usize };
    z.iter_from(start, rev)
        .skip(offset as usize)
        .take(limit)
        .take_while(|(m, s)| if rev { r.gte_min(*s, m) } else { r.lte_max(*s, m) })
        .map(|(m, s)| (m.to_vec(), s))
        .collect()
}

fn collect(z: &ZSet, bounds: &Bounds, o: &RangeOpts) -> Entries {
    match bounds {
        Bounds::Rank(start, end) => collect_by_rank(z, *start, *end, o.rev),
        Bounds::Score(r) => collect_by_range(z, r, o.rev, o.offset, o.limit),
        Bounds::Lex(r) => collect_by_range(z, r, o.rev, o.offset, o.limit),
    }
}

/// ZRANGE and friends. `src` is the index of the source key; `dst` is ZRANGESTORE's.
fn zrange_generic(c: &mut Ctx, src: usize, dst: Option<&[u8]>, kind: RangeKind, rev: Option<bool>) -> CmdResult {
    let o = parse_range_opts(c, src + 3, dst.is_some(), kind, rev)?;
    let bounds = parse_bounds(c, &o, src)?;
    let entries = match read_zset(c, c.arg(src))? {
        None => Vec::new(),
        Some(z) => collect(z, &bounds, &o),
    };
    match dst {
        Some(dst) => store_result(c, dst, entries, "zrangestore"),
        None => {
            reply_entries(c.out(), &entries, o.withscores);
            Ok(())
        }
    }
}

pub fn zrange(c: &mut Ctx) -> CmdResult {
    zrange_generic(c, 1, None, RangeKind::Auto, None)
}

pub fn zrangestore(c: &mut Ctx) -> CmdResult {
    zrange_generic(c, 2, Some(c.arg(1)), RangeKind::Auto, None)
}

pub fn zrevrange(c: &mut Ctx) -> CmdResult {
    zrange_generic(c, 1, None, RangeKind::Rank, Some(true))
}

pub fn zrangebyscore(c: &mut Ctx) -> CmdResult {
    zrange_generic(c, 1, None, RangeKind::Score, Some(false))
}

pub fn zrevrangebyscore(c: &mut Ctx) -> CmdResult {
    zrange_generic(c, 1, None, RangeKind::Score, Some(true))
}

pub fn zrangebylex(c: &mut Ctx) -> CmdResult {
    zrange_generic(c, 1, None, RangeKind::Lex, Some(false))
}

pub fn zrevrangebylex(c: &mut Ctx) -> CmdResult {
    zrange_generic(c, 1, None, RangeKind::Lex, Some(true))
}

// ---------------------------------------------------------------------------------------
// ZREMRANGEBY*

/// Removes the ranks a parsed range selects from the set at `key`; replies the count.
fn zremrange_generic(c: &mut Ctx, bounds: Bounds, event: &str) -> CmdResult {
    let key = c.arg(1);
    let db = c.client.db;
    let Some(o) = c.eng.lookup_write(db, key, c.now) else {
        c.out().int(0);
        return Ok(());
    };
    let z = zset_of_mut(&mut o.value)?;
    let ranks = match &bounds {
        Bounds::Rank(start, end) => clamp_ranks(*start, *end, z.len()).map(|(s, e)| s..e + 1),
        Bounds::Score(r) => Some(z.range_ranks(r)),
        Bounds::Lex(r) => Some(z.range_ranks(r)),
    };
    let deleted = match ranks {
        Some(r) if !r.is_empty() => z.remove_ranks(r.start, r.end - 1).len() as u64,
        _ => 0,
    };
    if deleted > 0 {
        c.notify(notify::ZSET, event, key);
        drop_if_empty(c, key);
        c.modified_in(db, key, deleted);
    }
    c.out().int(deleted as i64);
    Ok(())
}

pub fn zremrangebyrank(c: &mut Ctx) -> CmdResult {
    let (start, end) = (int_arg(c.arg(2))?, int_arg(c.arg(3))?);
    zremrange_generic(c, Bounds::Rank(start, end), "zremrangebyrank")
}

pub fn zremrangebyscore(c: &mut Ctx) -> CmdResult {
    let r = parse_score_range(c.arg(2), c.arg(3))?;
    zremrange_generic(c, Bounds::Score(r), "zremrangebyscore")
}

pub fn zremrangebylex(c: &mut Ctx) -> CmdResult {
    let r = parse_lex_range(c.arg(2), c.arg(3))?;
    zremrange_generic(c, Bounds::Lex(r), "zremrangebylex")
}

// ---------------------------------------------------------------------------------------
// Pops

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

// ---------------------------------------------------------------------------------------
// ZRANDMEMBER

fn zrandmember_count_arg(c: &Ctx) -> Result<Option<(i64, bool)>, CmdError> {
    if c.argc() < 3 {
        return Ok(None);
    }
    let n = int_arg(c.arg(2))?;
    if n == i64::MIN {
        return Err(CmdError::msg(format!(
            "ERR value is out of range, value must between {} and {}",
            -i64::MAX,
            i64::MAX
        )));
    }
    if c.argc() > 4 || (c.argc() == 4 && !is(c.arg(3), "withscores")) {
        return Err(CmdError::Syntax);
    }
    let withscores = c.argc() == 4;
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
        return fail("ERR value is out of range");
    }
    Ok(Some((n, withscores)))
}

/// Up to `count` random entries: repeats allowed when `distinct` is false; otherwise
/// distinct ones, or the whole set (highest first) when it is not bigger than `count`.
fn random_entries(z: &ZSet, count: u64, distinct: bool, rng: &mut fastrand::Rng) -> Entries {
    let len = z.len();
    let pick = |rng: &mut fastrand::Rng| z.random(rng).map(|(m, s)| (m.to_vec(), s));
    if !distinct || count == 1 {
        return (0..count).filter_map(|_| pick(rng)).collect();
    }
    if count >= len as u64 {
        // Redis walks sorted sets from the highest entry down here.
        return z.iter_from(len - 1, true).map(|(m, s)| (m.to_vec(), s)).collect();
    }
    let mut ranks = HashSet::new();
    let mut out = Vec::with_capacity(count as usize);
    while out.len() < count as usize {
        let r = rng.usize(0..len);
        if ranks.insert(r) {
            if let Some((m, s)) = z.get(r) {
                out.push((m.to_vec(), s));
            }
        }
    }
    out
}

pub fn zrandmember(c: &mut Ctx) -> CmdResult {
    let arg = zrandmember_count_arg(c)?;
    let mut rng = c.eng.rng.fork();
    let Some((n, withscores)) = arg else {
        let member = read_zset(c, c.arg(1))?.and_then(|z| z.random(&mut rng).map(|e| e.0.to_vec()));
        match member {
            Some(m) => c.out().bulk(&m),
            None => c.out().null(),
        }
        return Ok(());
    };
    if n < 0 {
        // That many draws, repeats allowed, written as they are drawn (the count may be up
        // to 2^63: nothing is collected first, and the loop ends once the reply has doomed
        // the client at its output limit).
        let db = c.client.db;
        let out = &mut c.client.out;
        let Some(o) = c.eng.lookup_read(db, c.argv.get(1), c.now) else {
            out.array(0);
            return Ok(());
        };
        let z = zset_of(&o.value)?;
        let draws = n.unsigned_abs() as usize;
        let flat = withscores && !out.resp3();
        out.array(if flat { draws * 2 } else { draws });
        for _ in 0..draws {
            if out.doomed() {
                break;
            }
            let Some((m, score)) = z.random(&mut rng) else { break };
            if withscores && !flat {
                out.array(2);
            }
            out.bulk(m);
            if withscores {
                out.double(score);
            }
        }
        return Ok(());
    }
    let picked = match read_zset(c, c.arg(1))? {
        None => Vec::new(),
        Some(_) if n == 0 => Vec::new(),
        Some(z) => random_entries(z, n.unsigned_abs(), true, &mut rng),
    };
    reply_entries(c.out(), &picked, withscores);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, acc: &mut f64, v: f64) {
        match self {
            Aggregate::Sum => {
                *acc += v;
                // inf + -inf: Redis keeps the convention of 0.
                if acc.is_nan() {
                    *acc = 0.0;
                }
            }
            Aggregate::Min => *acc = if v < *acc { v } else { *acc },
            Aggregate::Max => *acc = if v > *acc { v } else { *acc },
        }
    }
}

/// One input: its entries (sets score 1), a member index, and its weight.
struct Source {
    entries: Entries,
    index: HashMap<Vec<u8>, f64>,
    weight: f64,
}

impl Source {
    fn new(entries: Entries) -> Source {
        let index = entries.iter().cloned().collect();
        Source { entries, index, weight: 1.0 }
    }
}

struct SetOpArgs {
    sources: Vec<Source>,
    aggregate: Aggregate,
    withscores: bool,
    limit: usize,
}

/// Reads the input keys (missing ones are empty; sets count with score 1).
fn read_sources(c: &mut Ctx, first: usize, n: usize) -> Result<Vec<Source>, CmdError> {
    let argv = c.argv;
    let mut out = Vec::with_capacity(n);
    for i in first..first + n {
        let entries = match c.eng.lookup_read(c.client.db, argv.get(i), c.now) {
            None => Vec::new(),
            Some(o) => match &o.value {
                Value::ZSet(z) => z.entries(),
                Value::Set(s) => s.members().into_iter().map(|m| (m, 1.0)).collect(),
                _ => return Err(CmdError::WrongType),
            },
        };
        out.push(Source::new(entries));
    }
    Ok(out)
}

fn parse_setop_opts(c: &Ctx, mut j: usize, args: &mut SetOpArgs, op: SetOp, store: bool, card: bool) -> CmdResult {
    let n = args.sources.len();
    while j < c.argc() {
        let remaining = c.argc() - j;
        let a = c.arg(j);
        if op != SetOp::Diff && !card && remaining > n && is(a, "weights") {
            for (i, src) in args.sources.iter_mut().enumerate() {
                src.weight = score_arg(c.arg(j + 1 + i), CmdError::err("ERR weight value is not a float"))?;
            }
            j += n + 1;
        } else if op != SetOp::Diff && !card && remaining >= 2 && is(a, "aggregate") {
            args.aggregate = match c.arg(j + 1) {
                x if is(x, "sum") => Aggregate::Sum,
                x if is(x, "min") => Aggregate::Min,
                x if is(x, "max") => Aggregate::Max,
                _ => return Err(CmdError::Syntax),
            };
            j += 2;
        } else if !store && !card && is(a, "withscores") {
            args.withscores = true;
            j += 1;
        } else if card && remaining >= 2 && is(a, "limit") {
            args.limit = positive_arg(c.arg(j + 1), "ERR LIMIT can't be negative")? as usize;
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(())
}

/// A weighted score; NaN (0 × inf) counts as 0, as in Redis.
fn weighted(score: f64, weight: f64) -> f64 {
    let v = score * weight;
    if v.is_nan() {
        0.0
    } else {
        v
    }
}

/// Members of every source, walking the smallest (sources are sorted by size).
fn inter(args: &SetOpArgs) -> Entries {
    let Some((first, rest)) = args.sources.split_first() else { return Vec::new() };
    let mut out = Vec::new();
    'members: for (m, s) in &first.entries {
        let mut score = weighted(*s, first.weight);
        for src in rest {
            let Some(v) = src.index.get(m) else { continue 'members };
            args.aggregate.apply(&mut score, *v * src.weight);
        }
        out.push((m.clone(), score));
        if args.limit > 0 && out.len() >= args.limit {
            break;
        }
    }
    out
}

fn union(args: &SetOpArgs) -> Entries {
    let mut acc: HashMap<&[u8], f64> = HashMap::new();
    for src in &args.sources {
        for (m, s) in &src.entries {
            let v = weighted(*s, src.weight);
            acc.entry(m.as_slice()).and_modify(|a| args.aggregate.apply(a, v)).or_insert(v);
        }
    }
    acc.into_iter().map(|(m, s)| (m.to_vec(), s)).collect()
}

fn diff(args: &SetOpArgs) -> Entries {
    let Some((first, rest)) = args.sources.split_first() else { return Vec::new() };
    first.entries.iter().filter(|(m, _)| !rest.iter().any(|r| r.index.contains_key(m))).cloned().collect()
}

/// The shared body of the seven commands. `numkeys_at` is the index of numkeys.
fn setop_generic(c: &mut Ctx, dst: Option<&[u8]>, numkeys_at: usize, op: SetOp, card: bool) -> CmdResult {
    let setnum = int_arg(c.arg(numkeys_at))?;
    if setnum < 1 {
        return Err(CmdError::msg(format!(
            "ERR at least 1 input key is needed for '{}' command",
            c.eng.commands.get(c.cmd).fullname()
        )));
    }
    if setnum as u64 > (c.argc() - numkeys_at - 1) as u64 {
        return Err(CmdError::Syntax);
    }
    let n = setnum as usize;
    let sources = read_sources(c, numkeys_at + 1, n)?;
    let mut args = SetOpArgs { sources, aggregate: Aggregate::Sum, withscores: false, limit: 0 };
    parse_setop_opts(c, numkeys_at + 1 + n, &mut args, op, dst.is_some(), card)?;
    if op != SetOp::Diff {
        // Stable, like the merge sort behind glibc's qsort: equal sizes keep their order.
        args.sources.sort_by_key(|s| s.entries.len());
    }
    let mut result = match op {
        SetOp::Inter => inter(&args),
        SetOp::Union => union(&args),
        SetOp::Diff => diff(&args),
    };
    if card {
        c.out().int(result.len() as i64);
        return Ok(());
    }
    if let Some(dst) = dst {
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        return store_result(c, dst, result, event);
    }
    result.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
    reply_entries(c.out(), &result, args.withscores);
    Ok(())
}

pub fn zunion(c: &mut Ctx) -> CmdResult {
    setop_generic(c, None, 1, SetOp::Union, false)
}

pub fn zinter(c: &mut Ctx) -> CmdResult {
    setop_generic(c, None, 1, SetOp::Inter, false)
}

pub fn zdiff(c: &mut Ctx) -> CmdResult {
    setop_generic(c, None, 1, SetOp::Diff, false)
}

pub fn zintercard(c: &mut Ctx) -> CmdResult {
    setop_generic(c, None, 1, SetOp::Inter, true)
}

pub fn zunionstore(c: &mut Ctx) -> CmdResult {
    setop_generic(c, Some(c.arg(1)), 2, SetOp::Union, false)
}

pub fn zinterstore(c: &mut Ctx) -> CmdResult {
    setop_generic(c, Some(c.arg(1)), 2, SetOp::Inter, false)
}

pub fn zdiffstore(c: &mut Ctx) -> CmdResult {
    setop_generic(c, Some(c.arg(1)), 2, SetOp::Diff, false)
}

// ---------------------------------------------------------------------------------------
// ZSCAN

pub fn zscan(c: &mut Ctx) -> CmdResult {
    let cursor = parse_cursor(c.arg(2))?;
    // Redis validates the options only once the key exists.
    if read_zset(c, c.arg(1))?.is_none() {
        reply_scan(c.out(), 0, &[]);
        return Ok(());
    }
    let opts = parse_scan_opts(c, 3, false)?;
    let mut elems = Vec::new();
    let z = read_zset(c, c.arg(1))?.expect("checked above");
    // A listpack holds scores as text (integral ones as integers), shown as stored.
    let fmt: fn(f64) -> String = if z.is_packed() { packed_score_text } else { ferrokv_resp::num::fmt_double };
    let mut cur = cursor;
    let mut iterations = opts.count.saturating_mul(10);
    loop {
        cur = z.scan(cur, |m, s| {
            if opts.matches(m) {
                elems.push(m.to_vec());
                elems.push(fmt(s).into_bytes());
            }
        });
        iterations -= 1;
        if cur == 0 || iterations <= 0 || elems.len() as i64 >= opts.count.saturating_mul(2) {
            break;
        }
    }
    reply_scan(c.out(), cur, &elems);
    Ok(())
}
