//! Argument parsing shared by the sorted set commands: scores and weights (C's `strtod`,
//! hex floats included), score and lex range bounds, counts, and rank ranges as Redis
//! clamps them.

use crate::error::CmdError;
use ferrokv_keyspace::types::zset::{LexBound, LexRange, ScoreRange};

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
pub(crate) fn score_arg(a: &[u8], err: CmdError) -> Result<f64, CmdError> {
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

pub(super) fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
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

pub(super) fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, CmdError> {
    let bad = || CmdError::err("ERR min or max not valid string range item");
    Ok(LexRange { min: lex_bound(min).ok_or_else(bad)?, max: lex_bound(max).ok_or_else(bad)? })
}

/// A count that must be 0 or more; one message for both failures (Redis's
/// `getPositiveLongFromObjectOrReply`).
pub(super) fn positive_arg(a: &[u8], msg: &'static str) -> Result<i64, CmdError> {
    ferrokv_resp::parse_i64(a).filter(|&n| n >= 0).ok_or(CmdError::err(msg))
}

/// Redis's clamping of a rank range `start..=end` (negative counts from the end) to
/// `0..len`; None if it is empty.
pub(super) fn clamp_ranks(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let end = if end < 0 { len + end } else { end };
    start = start.max(0);
    if start > end || start >= len {
        return None;
    }
    Some((start as usize, end.min(len - 1) as usize))
}
