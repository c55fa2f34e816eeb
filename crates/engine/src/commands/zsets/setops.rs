//! The set operations: ZUNION, ZINTER, ZDIFF, their STORE forms, and ZINTERCARD.

use super::args::{positive_arg, score_arg};
use super::{reply_entries, store_result, Entries};
use crate::ctx::{int_arg, is, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_keyspace::types::zset::cmp_entry;
use ferrokv_keyspace::Value;
use std::collections::HashMap;

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
