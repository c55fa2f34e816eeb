//! Reads that reply a count, a score or a rank: ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK,
//! ZCOUNT and ZLEXCOUNT.

use super::args::{parse_lex_range, parse_score_range};
use super::{arity_error, read_zset};
use crate::ctx::{is, Ctx};
use crate::error::CmdResult;
use ferrokv_keyspace::types::zset::{RangeSpec, ZSet};

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
