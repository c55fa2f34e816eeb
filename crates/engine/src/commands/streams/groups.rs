//! XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM.

use super::{
    create_stream, parse_bound, parse_id, read_stream, reply_entry, reply_id, setid_propagation, stream_ro, stream_rw,
    write_stream, xclaim_propagation, IdForm,
};
use crate::ctx::{int_arg, is, reply_help, subcommand_syntax_error, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::types::stream::{Group, Stream, StreamId, INVALID_ENTRIES_READ};
use ferrokv_keyspace::SmallBytes;

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

fn nogroup_for_key(group: &[u8], key: &[u8]) -> CmdError {
    CmdError::msg(format!("NOGROUP No such consumer group '{}' for key name '{}'", lossy(group), lossy(key)))
}

fn nogroup(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::msg(format!("NOGROUP No such key '{}' or consumer group '{}'", lossy(key), lossy(group)))
}

const NEEDS_KEY: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";

/// XGROUP's shared checks: options (CREATE/SETID), key and group existence. Returns
/// (mkstream, entries_read).
fn xgroup_prelude(c: &mut Ctx, create: bool, setid: bool, needs_group: bool) -> Result<(bool, i64), CmdError> {
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    if create || setid {
        let mut i = 5;
        while i < c.argc() {
            if create && is(c.arg(i), "mkstream") {
                mkstream = true;
                i += 1;
            } else if is(c.arg(i), "entriesread") && i + 1 < c.argc() {
                entries_read = int_arg(c.arg(i + 1))?;
                if entries_read < 0 && entries_read != INVALID_ENTRIES_READ {
                    return fail("ERR value for ENTRIESREAD must be positive or -1");
                }
                i += 2;
            } else {
                return Err(subcommand_syntax_error(c));
            }
        }
    }
    let (key, group) = (c.arg(2), c.arg(3));
    let s = write_stream(c, key)?;
    if s.is_none() && !mkstream {
        return fail(NEEDS_KEY);
    }
    if needs_group && s.is_none_or(|s| !s.groups.contains_key(group)) {
        return Err(nogroup_for_key(group, key));
    }
    Ok((mkstream, entries_read))
}

pub fn xgroup_create(c: &mut Ctx) -> CmdResult {
    if c.argc() > 8 {
        return Err(subcommand_syntax_error(c));
    }
    let (_, entries_read) = xgroup_prelude(c, true, false, false)?;
    let (key, group) = (c.arg(2), c.arg(3));
    let id_arg = c.arg(4);
    let id = match write_stream(c, key)? {
        _ if id_arg != b"$" => parse_id(id_arg, 0, IdForm::Strict)?,
        Some(s) => s.last_id,
        None => StreamId::MIN,
    };
    if write_stream(c, key)?.is_none() {
        create_stream(c, key);
        c.modified(key);
    }
    let Some(s) = write_stream(c, key)? else { return Ok(()) };
    if s.groups.contains_key(group) {
        return fail("BUSYGROUP Consumer Group name already exists");
    }
    s.groups.insert(SmallBytes::from(group), Group::new(id, entries_read));
    c.eng.dirty += 1;
    c.out().ok();
    c.notify(notify::STREAM, "xgroup-create", key);
    Ok(())
}

pub fn xgroup_setid(c: &mut Ctx) -> CmdResult {
    if c.argc() != 5 && c.argc() != 7 {
        return Err(subcommand_syntax_error(c));
    }
    let (_, entries_read) = xgroup_prelude(c, false, true, true)?;
    let (key, group, id_arg) = (c.arg(2), c.arg(3), c.arg(4));
    let Some(s) = write_stream(c, key)? else { return Ok(()) };
    let id = if id_arg == b"$" { s.last_id } else { parse_id(id_arg, 0, IdForm::Range)? };
    if let Some(g) = s.groups.get_mut(group) {
        g.last_id = id;
        g.entries_read = entries_read;
    }
    c.eng.dirty += 1;
    c.out().ok();
    c.notify(notify::STREAM, "xgroup-setid", key);
    Ok(())
}

pub fn xgroup_destroy(c: &mut Ctx) -> CmdResult {
    xgroup_prelude(c, false, false, false)?;
    let (key, group) = (c.arg(2), c.arg(3));
    let Some(s) = write_stream(c, key)? else { return Ok(()) };
    if s.groups.remove(group).is_none() {
        c.out().int(0);
        return Ok(());
    }
    c.eng.dirty += 1;
    c.out().int(1);
    c.notify(notify::STREAM, "xgroup-destroy", key);
    // Its blocked readers get an error.
    c.signal_ready(key);
    Ok(())
}

pub fn xgroup_createconsumer(c: &mut Ctx) -> CmdResult {
    xgroup_prelude(c, false, false, true)?;
    let (key, group, name) = (c.arg(2), c.arg(3), c.arg(4));
    let now = c.now;
    let Some(g) = write_stream(c, key)?.and_then(|s| s.groups.get_mut(group)) else { return Ok(()) };
    let created = g.create_consumer(name, now);
    if created {
        c.eng.dirty += 1;
        c.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    c.out().int(created as i64);
    Ok(())
}

pub fn xgroup_delconsumer(c: &mut Ctx) -> CmdResult {
    xgroup_prelude(c, false, false, true)?;
    let (key, group, name) = (c.arg(2), c.arg(3), c.arg(4));
    let Some(g) = write_stream(c, key)?.and_then(|s| s.groups.get_mut(group)) else { return Ok(()) };
    let pending = g.delete_consumer(name);
    if pending.is_some() {
        c.eng.dirty += 1;
        c.notify(notify::STREAM, "xgroup-delconsumer", key);
    }
    c.out().int(pending.unwrap_or(0) as i64);
    Ok(())
}

pub fn xgroup_help(c: &mut Ctx) -> CmdResult {
    reply_help(
        c,
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    )
}

pub fn xack(c: &mut Ctx) -> CmdResult {
    let (key, group) = (c.arg(1), c.arg(2));
    let has_group = read_stream(c, key)?.is_some_and(|s| s.groups.contains_key(group));
    let ids = (3..c.argc()).map(|i| parse_id(c.arg(i), 0, IdForm::Strict)).collect::<Result<Vec<_>, _>>()?;
    if !has_group {
        c.out().int(0);
        return Ok(());
    }
    let Some(g) = write_stream(c, key)?.and_then(|s| s.groups.get_mut(group)) else { return Ok(()) };
    let acked = ids.iter().filter(|&&id| g.ack(id)).count() as u64;
    c.eng.dirty += acked;
    c.out().int(acked as i64);
    Ok(())
}

pub fn xpending(c: &mut Ctx) -> CmdResult {
    let argc = c.argc();
    let (key, group) = (c.arg(1), c.arg(2));
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CmdError::Syntax);
    }
    let mut range = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0;
        if is(c.arg(3), "idle") {
            min_idle = int_arg(c.arg(4))?;
            if argc < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = int_arg(c.arg(at + 2))?.max(0) as usize;
        let start = parse_bound(c.arg(at), true)?;
        let end = parse_bound(c.arg(at + 1), false)?;
        let consumer = (at + 3 < argc).then(|| c.arg(at + 3));
        range = Some((min_idle, start, end, count, consumer));
    }
    let (now, db) = (c.now, c.client.db);
    let g = match stream_ro(c.eng, db, key, now)? {
        Some(s) => s.groups.get(group),
        None => None,
    };
    let Some(g) = g else { return Err(nogroup(key, group)) };
    let out = &mut c.client.out;
    let Some((min_idle, start, end, count, consumer)) = range else {
        out.array(4);
        out.int(g.pel.len() as i64);
        if g.pel.is_empty() {
            out.null();
            out.null();
            out.null_array();
            return Ok(());
        }
        let (first, last) = (g.pel.keys().next(), g.pel.keys().next_back());
        reply_id(out, first.copied().unwrap_or_default());
        reply_id(out, last.copied().unwrap_or_default());
        let holders: Vec<_> = g.consumers.iter().filter(|(_, cons)| !cons.pel.is_empty()).collect();
        out.array(holders.len());
        for (name, cons) in holders {
            out.array(2);
            out.bulk(name);
            out.bulk_int(cons.pel.len() as i64);
        }
        return Ok(());
    };
    let ids: Vec<StreamId> = match consumer {
        Some(name) => match g.consumers.get(name) {
            Some(cons) if start <= end => cons.pel.range(start..=end).copied().collect(),
            Some(_) => Vec::new(),
            None => {
                out.array(0);
                return Ok(());
            }
        },
        None if start <= end => g.pel.range(start..=end).map(|(id, _)| *id).collect(),
        None => Vec::new(),
    };
    let rows: Vec<_> = ids
        .into_iter()
        .filter_map(|id| g.pel.get(&id).map(|n| (id, n)))
        .filter(|(_, n)| min_idle == 0 || now - n.delivery_time >= min_idle)
        .take(count)
        .collect();
    out.array(rows.len());
    for (id, n) in rows {
        out.array(4);
        reply_id(out, id);
        out.bulk(&n.consumer);
        out.int((now - n.delivery_time).max(0));
        out.int(n.delivery_count as i64);
    }
    Ok(())
}

/// Claims `id` for `consumer` (created if missing): the NACK's new owner, time and count.
fn claim_one(g: &mut Group, id: StreamId, consumer: &[u8], now: i64, time: i64, count: Option<u64>) -> bool {
    let created = g.create_consumer(consumer, now);
    if let Some(cons) = g.consumers.get_mut(consumer) {
        cons.seen_time = now;
    }
    let count = count.unwrap_or_else(|| g.pel.get(&id).map_or(1, |n| n.delivery_count));
    g.assign(id, consumer, time, count);
    created
}

pub fn xclaim(c: &mut Ctx) -> CmdResult {
    let argc = c.argc();
    let (key, group, consumer) = (c.arg(1), c.arg(2), c.arg(3));
    let has_group = read_stream(c, key)?.map(|s| s.groups.contains_key(group));
    if has_group != Some(true) {
        return Err(nogroup(key, group));
    }
    let min_idle =
        int_arg(c.arg(4)).map_err(|_| CmdError::err("ERR Invalid min-idle-time argument for XCLAIM"))?.max(0);
    let mut j = 5;
    let mut ids = Vec::new();
    while j < argc {
        match parse_id(c.arg(j), 0, IdForm::Strict) {
            Ok(id) => ids.push((id, j)),
            Err(_) => break,
        }
        j += 1;
    }
    let now = c.now;
    let (mut force, mut justid, mut retry, mut time, mut last_id) = (false, false, None, None, StreamId::MIN);
    while j < argc {
        let more = argc - 1 - j;
        let opt = c.arg(j);
        let num = |c: &Ctx, what: &'static str| int_arg(c.arg(j + 1)).map_err(|_| CmdError::err(what));
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more > 0 {
            time = Some(now - num(c, "ERR Invalid IDLE option argument for XCLAIM")?);
            j += 1;
        } else if is(opt, "time") && more > 0 {
            time = Some(num(c, "ERR Invalid TIME option argument for XCLAIM")?);
            j += 1;
        } else if is(opt, "retrycount") && more > 0 {
            retry = Some(num(c, "ERR Invalid RETRYCOUNT option argument for XCLAIM")?);
            j += 1;
        } else if is(opt, "lastid") && more > 0 {
            last_id = parse_id(c.arg(j + 1), 0, IdForm::Strict)?;
            j += 1;
        } else {
            return Err(CmdError::msg(format!("ERR Unrecognized XCLAIM option '{}'", lossy(opt))));
        }
        j += 1;
    }
    let time = match time {
        Some(t) if (0..=now).contains(&t) => t,
        _ => now,
    };
    let db = c.client.db;
    let Some(s) = stream_rw(c.eng, db, key, now)? else { return Ok(()) };
    let Some(mut g) = s.groups.remove(group) else { return Ok(()) };
    let mut propagate = Vec::new();
    let mut propagate_last_id = false;
    if last_id > g.last_id {
        g.last_id = last_id;
        propagate_last_id = true;
    }
    let mut claimed = Vec::new();
    let mut created = false;
    for (id, _) in ids {
        let pending = g.pel.get(&id).cloned();
        if !s.contains(id) {
            if pending.is_some() {
                propagate.push(xclaim_propagation(key, group, &g, id));
                propagate_last_id = false;
                g.ack(id);
            }
            continue;
        }
        let nack = match pending {
            Some(n) => {
                if min_idle > 0 && now - n.delivery_time < min_idle {
                    continue;
                }
                Some(n.delivery_count)
            }
            None if force => None,
            None => continue,
        };
        // A NACK FORCE creates starts as delivered once, as Redis's streamCreateNACK.
        let base = nack.unwrap_or(1);
        let count = match retry {
            Some(r) if r >= 0 => r as u64,
            _ if justid => base,
            _ => base + 1,
        };
        created |= claim_one(&mut g, id, consumer, now, time, Some(count));
        claimed.push(id);
        propagate.push(xclaim_propagation(key, group, &g, id));
        propagate_last_id = false;
    }
    if propagate_last_id {
        propagate.push(setid_propagation(key, group, &g));
    }
    let dirty = propagate.len() as u64;
    let out = &mut c.client.out;
    out.array(claimed.len());
    for id in claimed {
        reply_claimed_in(out, s, id, justid);
    }
    s.groups.insert(SmallBytes::from(group), g);
    if created {
        c.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    c.eng.dirty += dirty;
    c.rewrite_as_many(propagate);
    Ok(())
}

fn reply_claimed_in(out: &mut ferrokv_resp::ReplyBuf, s: &Stream, id: StreamId, justid: bool) {
    if justid {
        reply_id(out, id);
    } else {
        match s.get(id) {
            Some(e) => reply_entry(out, e),
            None => out.null(),
        }
    }
}

pub fn xautoclaim(c: &mut Ctx) -> CmdResult {
    let argc = c.argc();
    let (key, group, consumer) = (c.arg(1), c.arg(2), c.arg(3));
    let min_idle =
        int_arg(c.arg(4)).map_err(|_| CmdError::err("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?.max(0);
    let start = parse_bound(c.arg(5), true)?;
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < argc {
        let more = argc - 1 - j;
        if is(c.arg(j), "count") && more > 0 {
            let max = i64::MAX / 16;
            count = match int_arg(c.arg(j + 1)) {
                Ok(n) if (1..=max).contains(&n) => n,
                Ok(_) => return fail("ERR COUNT must be > 0"),
                Err(_) => return Err(CmdError::NotInteger),
            };
            j += 1;
        } else if is(c.arg(j), "justid") {
            justid = true;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let has_group = read_stream(c, key)?.map(|s| s.groups.contains_key(group));
    if has_group != Some(true) {
        return Err(nogroup(key, group));
    }
    let (now, db) = (c.now, c.client.db);
    let Some(s) = stream_rw(c.eng, db, key, now)? else { return Ok(()) };
    let Some(mut g) = s.groups.remove(group) else { return Ok(()) };
    let mut attempts = count.saturating_mul(10);
    let mut left = count;
    let mut cursor = Some(start);
    let (mut claimed, mut deleted, mut propagate) = (Vec::new(), Vec::new(), Vec::new());
    let mut created = false;
    while let Some(from) = cursor {
        if attempts == 0 || left == 0 {
            break;
        }
        attempts -= 1;
        let Some((&id, nack)) = g.pel.range(from..).next() else {
            cursor = None;
            break;
        };
        cursor = id.incr();
        if !s.contains(id) {
            propagate.push(xclaim_propagation(key, group, &g, id));
            g.ack(id);
            deleted.push(id);
            left -= 1;
            continue;
        }
        if min_idle > 0 && now - nack.delivery_time < min_idle {
            continue;
        }
        let count = if justid { nack.delivery_count } else { nack.delivery_count + 1 };
        created |= claim_one(&mut g, id, consumer, now, now, Some(count));
        claimed.push(id);
        left -= 1;
        propagate.push(xclaim_propagation(key, group, &g, id));
    }
    // The cursor: the next pending ID after the last one looked at, or 0-0 at the end.
    let next = cursor.and_then(|from| g.pel.range(from..).next().map(|(id, _)| *id)).unwrap_or(StreamId::MIN);
    let out = &mut c.client.out;
    out.array(3);
    reply_id(out, next);
    out.array(claimed.len());
    for id in claimed {
        reply_claimed_in(out, s, id, justid);
    }
    out.array(deleted.len());
    for id in deleted {
        reply_id(out, id);
    }
    s.groups.insert(SmallBytes::from(group), g);
    if created {
        c.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    c.eng.dirty += propagate.len() as u64;
    c.rewrite_as_many(propagate);
    Ok(())
}
