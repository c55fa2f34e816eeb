//! XADD, XTRIM, XDEL, XLEN, XSETID.

use super::{create_stream, node_limits, parse_id, read_stream, write_stream, IdForm, IdText};
use crate::ctx::{int_arg, is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::types::stream::{StreamId, TrimTo};

/// Bytes of field names and values one XADD may store (Redis: a listpack's 32-bit size).
const MAX_ENTRY_BYTES: usize = (1 << 32) - 1024;

/// The trimming options of XADD and XTRIM.
struct TrimArgs {
    to: Option<TrimTo>,
    approx: bool,
    /// Entries approximate trimming may remove (0: no limit).
    limit: u64,
    /// Argument index of the threshold (rewritten for propagation).
    threshold_at: usize,
    nomkstream: bool,
    /// XADD: the explicit ID, and whether its sequence was given (`<ms>-*` has not).
    id: Option<(StreamId, bool)>,
    /// Index of the first argument after the options (XADD: the ID).
    end: usize,
}

/// Parses the options from argument `from`, as Redis's streamParseAddOrTrimArgsOrReply.
fn parse_trim_args(c: &Ctx, from: usize, xadd: bool) -> Result<TrimArgs, CmdError> {
    let mut a = TrimArgs { to: None, approx: false, limit: 0, threshold_at: 0, nomkstream: false, id: None, end: 0 };
    let mut limit_given = false;
    let argc = c.argc();
    let mut i = from;
    while i < argc {
        let more = argc - 1 - i;
        let opt = c.arg(i);
        if xadd && opt == b"*" {
            break;
        } else if (is(opt, "maxlen") || is(opt, "minid")) && more > 0 {
            if a.to.is_some() {
                return fail("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
            }
            a.approx = false;
            let next = c.arg(i + 1);
            if more >= 2 && (next == b"~" || next == b"=") {
                a.approx = next == b"~";
                i += 1;
            }
            let v = c.arg(i + 1);
            a.to = Some(if is(opt, "maxlen") {
                let n = int_arg(v)?;
                if n < 0 {
                    return fail("ERR The MAXLEN argument must be >= 0.");
                }
                TrimTo::MaxLen(n as u64)
            } else {
                TrimTo::MinId(parse_id(v, 0, IdForm::Strict)?)
            });
            i += 1;
            a.threshold_at = i;
        } else if is(opt, "limit") && more > 0 {
            let n = int_arg(c.arg(i + 1))?;
            if n < 0 {
                return fail("ERR The LIMIT argument must be >= 0.");
            }
            a.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            let seq_star = opt.len() > 2 && opt.ends_with(b"-*");
            let id = if seq_star {
                parse_id(&opt[..opt.len() - 2], 0, IdForm::Strict).and_then(|id| {
                    // `-*` itself, or a second dash, is not an ID.
                    if opt[..opt.len() - 2].contains(&b'-') {
                        Err(CmdError::err(super::INVALID_ID))
                    } else {
                        Ok(id)
                    }
                })?
            } else {
                parse_id(opt, 0, IdForm::Strict)?
            };
            a.id = Some((id, !seq_star));
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    a.end = i;
    if a.limit != 0 && a.to.is_none() {
        return fail("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
    }
    if !xadd && a.to.is_none() {
        return fail("ERR syntax error, XTRIM must be called with a trimming strategy");
    }
    if super::must_obey(c) {
        a.limit = 0;
    } else if limit_given {
        if !a.approx {
            return fail("ERR syntax error, LIMIT cannot be used without the special ~ option");
        }
    } else if a.approx {
        let per_node = c.eng.cfg.int(super::NODE_MAX_ENTRIES);
        a.limit = if per_node > 0 { 100u64.saturating_mul(per_node as u64) } else { 10_000 };
    } else {
        a.limit = 0;
    }
    Ok(a)
}

/// Propagates an approximate threshold made exact (`=` and the value trimming reached),
/// so a replica or the AOF trims exactly as much.
fn propagate_exact_trim(c: &mut Ctx, a: &TrimArgs, len: u64, first: StreamId) {
    c.replace_arg(a.threshold_at - 1, b"=".to_vec());
    let threshold = match a.to {
        Some(TrimTo::MinId(_)) => first.to_bytes(),
        _ => len.to_string().into_bytes(),
    };
    c.replace_arg(a.threshold_at, threshold);
}

pub fn xadd(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let a = parse_trim_args(c, 2, true)?;
    let field_pos = a.end + 1;
    let argc = c.argc();
    if argc < field_pos + 2 || !(argc - field_pos).is_multiple_of(2) {
        return Err(CmdError::msg(format!("ERR wrong number of arguments for '{}' command", "xadd")));
    }
    if let Some((id, true)) = a.id {
        if id.is_zero() {
            return fail("ERR The ID specified in XADD must be greater than 0-0");
        }
    }
    let limits = node_limits(c);
    let argv = c.argv;
    let now = c.now;
    let mut exists = true;
    let s = match write_stream(c, key)? {
        Some(s) => s,
        None if a.nomkstream => {
            c.out().null();
            return Ok(());
        }
        None => {
            exists = false;
            create_stream(c, key);
            let Some(s) = write_stream(c, key)? else { return Ok(()) };
            s
        }
    };
    if s.last_id == StreamId::MAX {
        return fail("ERR The stream has exhausted the last possible ID, unable to add more items");
    }
    let id = match a.id {
        Some((id, true)) => Some(id),
        Some((id, false)) if id.ms == s.last_id.ms => {
            if s.last_id.seq == u64::MAX {
                None
            } else {
                Some(StreamId::new(id.ms, s.last_id.seq + 1))
            }
        }
        Some((id, false)) => Some(id),
        None => {
            let ms = now.max(0) as u64;
            if ms > s.last_id.ms {
                Some(StreamId::new(ms, 0))
            } else {
                s.last_id.incr()
            }
        }
    };
    let id = match id {
        Some(id) if id > s.last_id => id,
        _ => {
            drop_if_created(c, key, exists);
            return fail("ERR The ID specified in XADD is equal or smaller than the target stream top item");
        }
    };
    // On the stack for the usual few fields: this runs once per XADD.
    let pairs: smallvec::SmallVec<[(&[u8], &[u8]); 4]> =
        (field_pos..argc).step_by(2).map(|i| (argv.get(i), argv.get(i + 1))).collect();
    if pairs.iter().map(|(f, v)| f.len() + v.len()).sum::<usize>() > MAX_ENTRY_BYTES {
        drop_if_created(c, key, exists);
        return fail("ERR Elements are too large to be stored");
    }
    s.append(id, &pairs, limits);
    let mut trimmed = 0;
    if let Some(to) = a.to {
        trimmed = s.trim(to, a.approx, a.limit);
    }
    let exact_trim = a.to.is_some() && a.approx;
    // Only an approximate trim made exact needs the first ID (a B-tree range walk).
    let (len, first) = (s.len(), if exact_trim { s.first().map_or(StreamId::MAX, |e| e.id) } else { StreamId::MAX });
    c.out().bulk(IdText::new(id).as_bytes());
    c.modified(key);
    c.notify(notify::STREAM, "xadd", key);
    if trimmed > 0 {
        c.notify(notify::STREAM, "xtrim", key);
    }
    // The generated ID, and an approximate trim made exact, reach the replicas.
    if exact_trim && c.propagating() {
        propagate_exact_trim(c, &a, len, first);
    }
    if !matches!(a.id, Some((_, true))) && c.propagating() {
        c.replace_arg(field_pos - 1, id.to_bytes());
    }
    c.signal_ready(key);
    Ok(())
}

/// Removes a stream this failed command created (Redis checks before creating).
fn drop_if_created(c: &mut Ctx, key: &[u8], existed: bool) {
    if !existed {
        c.eng.dbs[c.client.db].remove(key);
    }
}

pub fn xtrim(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    if write_stream(c, key)?.is_none() {
        c.out().int(0);
        return Ok(());
    }
    let a = parse_trim_args(c, 2, false)?;
    let Some(to) = a.to else { return Err(CmdError::Syntax) };
    let Some(s) = write_stream(c, key)? else { return Ok(()) };
    let removed = s.trim(to, a.approx, a.limit);
    let (len, first) = (s.len(), s.first().map_or(StreamId::MAX, |e| e.id));
    if removed > 0 {
        c.notify(notify::STREAM, "xtrim", key);
        if a.approx {
            propagate_exact_trim(c, &a, len, first);
        }
        c.modified_in(c.client.db, key, removed);
    }
    c.out().int(removed as i64);
    Ok(())
}

pub fn xdel(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    if write_stream(c, key)?.is_none() {
        c.out().int(0);
        return Ok(());
    }
    let ids = (2..c.argc()).map(|i| parse_id(c.arg(i), 0, IdForm::Strict)).collect::<Result<Vec<_>, _>>()?;
    let Some(s) = write_stream(c, key)? else { return Ok(()) };
    let deleted = ids.iter().filter(|&&id| s.delete(id)).count() as u64;
    if deleted > 0 {
        c.modified_in(c.client.db, key, deleted);
        c.notify(notify::STREAM, "xdel", key);
    }
    c.out().int(deleted as i64);
    Ok(())
}

pub fn xlen(c: &mut Ctx) -> CmdResult {
    let n = read_stream(c, c.argv.get(1))?.map_or(0, |s| s.len());
    c.out().int(n as i64);
    Ok(())
}

pub fn xsetid(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let id = parse_id(c.arg(2), 0, IdForm::Strict)?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < c.argc() {
        let more = c.argc() - 1 - i;
        let opt = c.arg(i);
        if is(opt, "entriesadded") && more > 0 {
            let n = int_arg(c.arg(i + 1))?;
            if n < 0 {
                return fail("ERR entries_added must be positive");
            }
            entries_added = Some(n as u64);
        } else if is(opt, "maxdeletedid") && more > 0 {
            max_deleted = parse_id(c.arg(i + 1), 0, IdForm::Strict)?;
            if id < max_deleted {
                return fail("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let Some(s) = write_stream(c, key)? else { return Err(CmdError::NoSuchKey) };
    if !s.is_empty() {
        if id < s.max_deleted_entry_id {
            return fail("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id");
        }
        if s.last().is_some_and(|e| id < e.id) {
            return fail("ERR The ID specified in XSETID is smaller than the target stream top item");
        }
        if entries_added.is_some_and(|n| s.len() > n) {
            return fail("ERR The entries_added specified in XSETID is smaller than the target stream length");
        }
    }
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if !max_deleted.is_zero() {
        s.max_deleted_entry_id = max_deleted;
    }
    c.modified(key);
    c.notify(notify::STREAM, "xsetid", key);
    c.out().ok();
    Ok(())
}
