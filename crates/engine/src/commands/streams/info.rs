//! XINFO STREAM [FULL [COUNT n]], XINFO GROUPS, XINFO CONSUMERS, XINFO HELP (Redis 7.0's
//! fields: no active-time or inactive, which came with 7.2).

use super::{reply_entry, reply_id, stream_ro};
use crate::ctx::{int_arg, is, reply_help, subcommand_syntax_error, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_keyspace::types::stream::{Group, Stream, StreamId, INVALID_ENTRIES_READ};
use ferrokv_resp::ReplyBuf;

fn lookup<'a>(c: &'a mut Ctx, key: &[u8]) -> Result<(&'a Stream, &'a mut ReplyBuf), CmdError> {
    match stream_ro(c.eng, c.client.db, key, c.now)? {
        Some(s) => Ok((s, &mut c.client.out)),
        None => Err(CmdError::NoSuchKey),
    }
}

/// Redis's radix tree has one more node than keys for the shapes small streams have;
/// ferrokv has no radix tree, so this field is an estimate.
fn rax_nodes(s: &Stream) -> usize {
    s.node_count() + 1
}

fn reply_entries_read(out: &mut ReplyBuf, g: &Group) {
    if g.entries_read == INVALID_ENTRIES_READ {
        out.null();
    } else {
        out.int(g.entries_read);
    }
}

fn reply_lag(out: &mut ReplyBuf, s: &Stream, g: &Group) {
    match s.group_lag(g) {
        Some(lag) => out.int(lag),
        None => out.null(),
    }
}

fn header(out: &mut ReplyBuf, s: &Stream) {
    out.bulk(b"length");
    out.int(s.len() as i64);
    out.bulk(b"radix-tree-keys");
    out.int(s.node_count() as i64);
    out.bulk(b"radix-tree-nodes");
    out.int(rax_nodes(s) as i64);
    out.bulk(b"last-generated-id");
    reply_id(out, s.last_id);
    out.bulk(b"max-deleted-entry-id");
    reply_id(out, s.max_deleted_entry_id);
    out.bulk(b"entries-added");
    out.int(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    reply_id(out, s.first_id);
}

pub fn xinfo_stream(c: &mut Ctx) -> CmdResult {
    let argc = c.argc();
    let mut full = false;
    let mut count: i64 = 10;
    if argc > 3 {
        if !is(c.arg(3), "full") || (argc != 4 && (argc != 6 || !is(c.arg(4), "count"))) {
            return Err(subcommand_syntax_error(c));
        }
        full = true;
        if argc == 6 {
            count = int_arg(c.arg(5))?;
            if count < 0 {
                count = 10;
            }
        }
    }
    let now = c.now;
    let (s, out) = lookup(c, c.argv.get(2))?;
    let limit = if count == 0 { usize::MAX } else { count as usize };
    if !full {
        out.map(10);
        header(out, s);
        out.bulk(b"groups");
        out.int(s.groups.len() as i64);
        out.bulk(b"first-entry");
        match s.first() {
            Some(e) => reply_entry(out, e),
            None => out.null(),
        }
        out.bulk(b"last-entry");
        match s.last() {
            Some(e) => reply_entry(out, e),
            None => out.null(),
        }
        return Ok(());
    }
    out.map(9);
    header(out, s);
    out.bulk(b"entries");
    let entries: Vec<_> = s.range(StreamId::MIN, StreamId::MAX).take(limit).collect();
    out.array(entries.len());
    for e in entries {
        reply_entry(out, e);
    }
    out.bulk(b"groups");
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk(b"entries-read");
        reply_entries_read(out, g);
        out.bulk(b"lag");
        reply_lag(out, s, g);
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        let pel: Vec<_> = g.pel.iter().take(limit).collect();
        out.array(pel.len());
        for (id, n) in pel {
            out.array(4);
            reply_id(out, *id);
            out.bulk(&n.consumer);
            out.int(n.delivery_time);
            out.int(n.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, cons) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.int(cons.seen_time);
            out.bulk(b"pel-count");
            out.int(cons.pel.len() as i64);
            out.bulk(b"pending");
            let ids: Vec<_> = cons.pel.iter().take(limit).collect();
            out.array(ids.len());
            for id in ids {
                let (time, n) = g.pel.get(id).map_or((0, 0), |n| (n.delivery_time, n.delivery_count));
                out.array(3);
                reply_id(out, *id);
                out.int(time);
                out.int(n as i64);
            }
        }
    }
    let _ = now;
    Ok(())
}

pub fn xinfo_groups(c: &mut Ctx) -> CmdResult {
    let (s, out) = lookup(c, c.argv.get(2))?;
    out.array(s.groups.len());
    for (name, g) in &s.groups {
        out.map(6);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"consumers");
        out.int(g.consumers.len() as i64);
        out.bulk(b"pending");
        out.int(g.pel.len() as i64);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk(b"entries-read");
        reply_entries_read(out, g);
        out.bulk(b"lag");
        reply_lag(out, s, g);
    }
    Ok(())
}

pub fn xinfo_consumers(c: &mut Ctx) -> CmdResult {
    let (key, group) = (c.argv.get(2), c.argv.get(3));
    let now = c.now;
    let (s, out) = lookup(c, key)?;
    let Some(g) = s.groups.get(group) else {
        return Err(CmdError::msg(format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(group),
            String::from_utf8_lossy(key)
        )));
    };
    out.array(g.consumers.len());
    for (name, cons) in &g.consumers {
        out.map(3);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"pending");
        out.int(cons.pel.len() as i64);
        out.bulk(b"idle");
        out.int((now - cons.seen_time).max(0));
    }
    Ok(())
}

pub fn xinfo_help(c: &mut Ctx) -> CmdResult {
    reply_help(
        c,
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    )
}
