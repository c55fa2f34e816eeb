//! XRANGE, XREVRANGE, XREAD, XREADGROUP.

use super::{
    parse_bound, parse_id, read_stream, reply_entry, reply_id, stream_ro, stream_rw, xclaim_propagation, IdForm,
};
use crate::blocking::{BlockRequest, TimeoutReply};
use crate::ctx::{int_arg, is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::types::stream::{Group, Stream, StreamId, INVALID_ENTRIES_READ};
use ferrokv_keyspace::{SmallBytes, ValueType};

fn range_generic(c: &mut Ctx, rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev { (c.arg(3), c.arg(2)) } else { (c.arg(2), c.arg(3)) };
    let start = parse_bound(start_arg, true)?;
    let end = parse_bound(end_arg, false)?;
    let mut count: i64 = -1;
    let mut j = 4;
    while j < c.argc() {
        if is(c.arg(j), "count") && j + 1 < c.argc() {
            count = int_arg(c.arg(j + 1))?.max(0);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if count == 0 {
        c.out().null_array();
        return Ok(());
    }
    let argv = c.argv;
    let Some(s) = stream_ro(c.eng, c.client.db, argv.get(1), c.now)? else {
        c.client.out.array(0);
        return Ok(());
    };
    let limit = if count < 0 { usize::MAX } else { count as usize };
    let out = &mut c.client.out;
    let entries: Vec<_> =
        if rev { s.rev_range(start, end).take(limit).collect() } else { s.range(start, end).take(limit).collect() };
    out.array(entries.len());
    for e in entries {
        reply_entry(out, e);
    }
    Ok(())
}

pub fn xrange(c: &mut Ctx) -> CmdResult {
    range_generic(c, false)
}

pub fn xrevrange(c: &mut Ctx) -> CmdResult {
    range_generic(c, true)
}

/// What XREAD/XREADGROUP asked for.
struct ReadArgs {
    count: usize,
    /// BLOCK's deadline: None without BLOCK; Some(None) waits forever.
    block: Option<Option<i64>>,
    streams_at: usize,
    n: usize,
    noack: bool,
    /// Argument index of the group name (the consumer's follows it).
    group: Option<usize>,
}

/// A stream's requested position: entries after an ID, or `>` (new to the group).
#[derive(Clone, Copy, PartialEq, Eq)]
enum From {
    After(StreamId),
    New,
}

fn parse_read_args(c: &Ctx, group_cmd: bool) -> Result<ReadArgs, CmdError> {
    let name = if group_cmd { "XREADGROUP" } else { "XREAD" };
    let mut a = ReadArgs { count: 0, block: None, streams_at: 0, n: 0, noack: false, group: None };
    let argc = c.argc();
    let mut i = 1;
    while i < argc {
        let more = argc - i - 1;
        let o = c.arg(i);
        if is(o, "block") && more > 0 {
            if c.eng.scripts.client.is_none() {
                return Err(CmdError::msg(format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(c.arg(0))
                )));
            }
            i += 1;
            let ms = int_arg(c.arg(i)).map_err(|_| CmdError::err("ERR timeout is not an integer or out of range"))?;
            if ms < 0 {
                return fail("ERR timeout is negative");
            }
            if ms > 0 && ms > i64::MAX - c.now {
                return fail("ERR timeout is out of range");
            }
            a.block = Some(if ms == 0 { None } else { Some(c.now + ms) });
        } else if is(o, "count") && more > 0 {
            i += 1;
            a.count = int_arg(c.arg(i))?.max(0) as usize;
        } else if is(o, "streams") && more > 0 {
            a.streams_at = i + 1;
            let left = argc - a.streams_at;
            if !left.is_multiple_of(2) {
                return Err(CmdError::msg(format!(
                    "ERR Unbalanced {name} list of streams: for each stream key an ID or '$' must be specified."
                )));
            }
            a.n = left / 2;
            break;
        } else if is(o, "group") && more >= 2 {
            if !group_cmd {
                return fail("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
            }
            a.group = Some(i + 1);
            i += 2;
        } else if is(o, "noack") {
            if !group_cmd {
                return fail("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
            }
            a.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if a.streams_at == 0 {
        return Err(CmdError::Syntax);
    }
    if group_cmd && a.group.is_none() {
        return fail("ERR Missing GROUP option for XREADGROUP");
    }
    Ok(a)
}

pub fn xread(c: &mut Ctx) -> CmdResult {
    read_generic(c, false)
}

pub fn xreadgroup(c: &mut Ctx) -> CmdResult {
    read_generic(c, true)
}

fn read_generic(c: &mut Ctx, group_cmd: bool) -> CmdResult {
    let mut a = parse_read_args(c, group_cmd)?;
    let argv = c.argv;
    let group = a.group.map(|at| (argv.get(at), argv.get(at + 1)));
    // Resolve keys, groups and IDs first: any error comes before any effect.
    let mut froms = Vec::with_capacity(a.n);
    for k in 0..a.n {
        let key = argv.get(a.streams_at + k);
        let id_arg = argv.get(a.streams_at + a.n + k);
        let s = read_stream(c, key)?;
        if let Some((g, _)) = group {
            if s.is_none_or(|s| !s.groups.contains_key(g)) {
                if c.ready_key() == Some(key) {
                    // Woken by XGROUP DESTROY.
                    return fail("NOGROUP the consumer group this client was blocked on no longer exists");
                }
                return Err(CmdError::msg(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(g)
                )));
            }
        }
        let from = if id_arg == b"$" {
            if group_cmd {
                return fail("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
            }
            From::After(s.map_or(StreamId::MIN, |s| s.last_id))
        } else if id_arg == b">" {
            if !group_cmd {
                return fail("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
            }
            From::New
        } else {
            From::After(parse_id(id_arg, 0, IdForm::Strict)?)
        };
        froms.push(from);
    }
    if c.ready_key().is_some() && a.count == 0 {
        // Served after blocking without COUNT: Redis caps the batch.
        a.count = 1000;
    }
    // Which streams can serve now (serving a blocked client: only the ready key).
    let candidates: Vec<usize> =
        c.blocking_candidates(a.streams_at..a.streams_at + a.n).map(|i| i - a.streams_at).collect();
    let mut served = Vec::new();
    for k in candidates {
        let key = argv.get(a.streams_at + k);
        let Some(s) = read_stream(c, key)? else { continue };
        let serve = match (group, froms[k]) {
            (Some(_), From::After(_)) => true,
            (Some((g, _)), From::New) => match (s.last(), s.groups.get(g)) {
                (Some(last), Some(grp)) => last.id > grp.last_id,
                _ => false,
            },
            (None, From::After(id)) => s.last().is_some_and(|e| e.id > id),
            (None, From::New) => false,
        };
        if serve {
            served.push(k);
        }
    }
    if served.is_empty() {
        return block_or_null(c, &a, &froms);
    }
    if c.client.out.resp3() {
        c.out().map(served.len());
    } else {
        c.out().array(served.len());
    }
    let mut propagate: Vec<Vec<Vec<u8>>> = Vec::new();
    for k in served {
        let key = argv.get(a.streams_at + k);
        if !c.client.out.resp3() {
            c.out().array(2);
        }
        c.out().bulk(key);
        match group {
            None => {
                let From::After(id) = froms[k] else { continue };
                let Some(s) = stream_ro(c.eng, c.client.db, key, c.now)? else { continue };
                let start = id.incr().unwrap_or(StreamId::MAX);
                let limit = if a.count == 0 { usize::MAX } else { a.count };
                let entries: Vec<_> = s.range(start, StreamId::MAX).take(limit).collect();
                let out = &mut c.client.out;
                out.array(entries.len());
                for e in entries {
                    reply_entry(out, e);
                }
            }
            Some((g, consumer)) => {
                group_read(c, key, g, consumer, froms[k], a.count, a.noack, &mut propagate)?;
            }
        }
    }
    if group_cmd {
        c.eng.dirty += 1;
        c.rewrite_as_many(propagate);
    }
    Ok(())
}

/// Nothing to serve: block (BLOCK outside MULTI and scripts) or answer a null array.
fn block_or_null(c: &mut Ctx, a: &ReadArgs, froms: &[From]) -> CmdResult {
    let Some(deadline) = a.block else {
        c.out().null_array();
        return Ok(());
    };
    if !c.can_block() {
        c.out().null_array();
        return Ok(());
    }
    // `$` means "after the last ID now": the command waits with that ID written in.
    let mut args = c.argv.to_vec();
    for (k, f) in froms.iter().enumerate() {
        if let From::After(id) = f {
            args[a.streams_at + a.n + k] = id.to_bytes();
        }
    }
    let keys = (0..a.n).map(|k| SmallBytes::from(c.arg(a.streams_at + k))).collect();
    c.block(BlockRequest {
        keys,
        deadline_ms: deadline,
        wants: ValueType::Stream,
        timeout_reply: TimeoutReply::NullArray,
        argv: Some(ferrokv_resp::Argv::from_slices(&args)),
    });
    Ok(())
}

/// XREADGROUP on one stream: new entries (`>`) or the consumer's own pending history.
#[allow(clippy::too_many_arguments)]
fn group_read(
    c: &mut Ctx,
    key: &[u8],
    gname: &[u8],
    consumer: &[u8],
    from: From,
    count: usize,
    noack: bool,
    propagate: &mut Vec<Vec<Vec<u8>>>,
) -> CmdResult {
    let now = c.now;
    let feeding = c.propagating();
    let Some(s) = stream_rw(c.eng, c.client.db, key, now)? else { return Ok(()) };
    let Some(mut g) = s.groups.remove(gname) else { return Ok(()) };
    let created = g.create_consumer(consumer, now);
    if let Some(cons) = g.consumers.get_mut(consumer) {
        cons.seen_time = now;
    }
    let limit = if count == 0 { usize::MAX } else { count };
    let out = &mut c.client.out;
    match from {
        From::After(id) => {
            // History: the consumer's pending entries after `id`; deleted ones as nil.
            let start = id.incr().unwrap_or(StreamId::MAX);
            let ids: Vec<StreamId> = g
                .consumers
                .get(consumer)
                .map(|cons| cons.pel.range(start..).take(limit).copied().collect())
                .unwrap_or_default();
            out.array(ids.len());
            for id in ids {
                match s.get(id) {
                    Some(e) => {
                        reply_entry(out, e);
                        if let Some(n) = g.pel.get_mut(&id) {
                            n.delivery_time = now;
                            n.delivery_count += 1;
                        }
                    }
                    None => {
                        out.array(2);
                        reply_id(out, id);
                        out.null_array();
                    }
                }
            }
        }
        From::New => {
            let start = g.last_id.incr().unwrap_or(StreamId::MAX);
            let entries: Vec<_> = s.range(start, StreamId::MAX).take(limit).collect();
            out.array(entries.len());
            let ids: Vec<StreamId> = entries.iter().map(|e| e.id).collect();
            for e in entries {
                reply_entry(out, e);
            }
            let mut moved = false;
            for id in ids {
                advance_group(s, &mut g, id);
                moved = true;
                if !noack {
                    g.assign(id, consumer, now, 1);
                    if feeding {
                        propagate.push(xclaim_propagation(key, gname, &g, id));
                    }
                }
            }
            if created && noack && feeding {
                propagate.insert(
                    0,
                    vec![
                        b"XGROUP".to_vec(),
                        b"CREATECONSUMER".to_vec(),
                        key.to_vec(),
                        gname.to_vec(),
                        consumer.to_vec(),
                    ],
                );
            }
            if moved && noack && feeding {
                propagate.push(super::setid_propagation(key, gname, &g));
            }
        }
    }
    s.groups.insert(SmallBytes::from(gname), g);
    if created {
        c.notify(notify::STREAM, "xgroup-createconsumer", key);
    }
    Ok(())
}

/// Moves a group past `id` (delivered by `>`), keeping its read counter as Redis does.
fn advance_group(s: &Stream, g: &mut Group, id: StreamId) {
    if id <= g.last_id {
        return;
    }
    if g.entries_read != INVALID_ENTRIES_READ && !s.range_has_tombstones(Some(id), None) {
        g.entries_read += 1;
    } else if s.entries_added > 0 {
        g.entries_read = s.estimate_distance(id).map_or(INVALID_ENTRIES_READ, |n| n as i64);
    }
    g.last_id = id;
}
