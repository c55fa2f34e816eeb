//! The ZRANGE family (ZRANGE, ZRANGESTORE, ZREVRANGE, Z[REV]RANGEBYSCORE,
//! Z[REV]RANGEBYLEX) and ZREMRANGEBY{RANK,SCORE,LEX}, which select ranks the same ways.

use super::args::{clamp_ranks, parse_lex_range, parse_score_range};
use super::{drop_if_empty, read_zset, reply_entries, store_result, zset_of_mut, Entries};
use crate::ctx::{int_arg, is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::types::zset::{LexRange, RangeSpec, ScoreRange, ZSet};

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
