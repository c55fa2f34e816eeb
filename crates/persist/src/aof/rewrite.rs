//! A snapshot written as commands: the base file of an AOF rewrite when
//! `aof-use-rdb-preamble` is off (Redis's `rewriteAppendOnlyFileRio`).
//!
//! Each key becomes the command that recreates it — aggregates in batches of
//! [`ITEMS_PER_CMD`] elements so no single command is huge — followed by a `PEXPIREAT`
//! for volatile keys. A `SELECT` precedes the first key of each database run.

use ferrokv_keyspace::types::stream::StreamId;
use ferrokv_keyspace::{Obj, Value};
use ferrokv_resp::encode_command;
use ferrokv_resp::num::fmt_double;

/// Elements per RPUSH/SADD/HMSET/ZADD, as Redis's `AOF_REWRITE_ITEMS_PER_CMD`.
pub const ITEMS_PER_CMD: usize = 64;

/// Encodes keys as commands, tracking the selected database.
#[derive(Default)]
pub struct CommandEncoder {
    db: Option<usize>,
}

impl CommandEncoder {
    pub fn new() -> CommandEncoder {
        CommandEncoder::default()
    }

    /// Appends the commands recreating `key` in database `db`.
    pub fn key(&mut self, out: &mut Vec<u8>, db: usize, key: &[u8], obj: &Obj, expire_ms: Option<i64>) {
        if self.db != Some(db) {
            encode_command(out, [&b"SELECT"[..], db.to_string().as_bytes()]);
            self.db = Some(db);
        }
        match &obj.value {
            Value::Str(s) => encode_command(out, [&b"SET"[..], key, s]),
            Value::Int(n) => encode_command(out, [&b"SET"[..], key, itoa::Buffer::new().format(*n).as_bytes()]),
            Value::List(l) => batched(out, b"RPUSH", key, l.items.len(), |f| l.items.iter().for_each(|e| f(e))),
            Value::Set(s) => batched(out, b"SADD", key, s.len(), |f| s.for_each(f)),
            Value::Hash(h) => batched(out, b"HMSET", key, h.len() * 2, |f| {
                h.for_each(|k, v| {
                    f(k);
                    f(v);
                })
            }),
            Value::ZSet(z) => batched(out, b"ZADD", key, z.len() * 2, |f| {
                for (m, s) in z.iter() {
                    f(fmt_double(s).as_bytes());
                    f(m);
                }
            }),
            Value::Stream(st) => stream(out, key, st),
        }
        if let Some(t) = expire_ms {
            encode_command(out, [&b"PEXPIREAT"[..], key, t.to_string().as_bytes()]);
        }
    }
}

/// A stream as Redis 7.0 rewrites one: an XADD per entry (or, when empty, an XADD of 0-1
/// with MAXLEN 0 that leaves the stream existing), XSETID with the counters, then per group an
/// XGROUP CREATE with its read counter, an XCLAIM … FORCE per pending entry of each
/// consumer with one, XGROUP CREATECONSUMER for consumers without.
fn stream(out: &mut Vec<u8>, key: &[u8], st: &ferrokv_keyspace::types::stream::Stream) {
    let last = st.last_id.to_bytes();
    if st.is_empty() {
        // 0-1 is valid whatever the last ID (0-0 is not); XSETID then restores it.
        encode_command(out, [&b"XADD"[..], key, b"MAXLEN", b"0", b"0-1", b"x", b"y"]);
    } else {
        for e in st.range(StreamId::MIN, StreamId::MAX) {
            let id = e.id.to_bytes();
            let mut args: Vec<&[u8]> = vec![b"XADD", key, &id];
            for (f, v) in e.fields {
                args.push(f);
                args.push(v);
            }
            encode_command(out, args);
        }
    }
    let added = st.entries_added.to_string();
    let maxdel = st.max_deleted_entry_id.to_bytes();
    encode_command(out, [&b"XSETID"[..], key, &last, b"ENTRIESADDED", added.as_bytes(), b"MAXDELETEDID", &maxdel]);
    for (name, g) in &st.groups {
        let read = g.entries_read.to_string();
        let gid = g.last_id.to_bytes();
        encode_command(out, [&b"XGROUP"[..], b"CREATE", key, name, &gid, b"ENTRIESREAD", read.as_bytes()]);
        for (cname, c) in &g.consumers {
            if c.pel.is_empty() {
                encode_command(out, [&b"XGROUP"[..], b"CREATECONSUMER", key, name, cname]);
                continue;
            }
            for id in &c.pel {
                let Some(nack) = g.pel.get(id) else { continue };
                let (idb, time, count) =
                    (id.to_bytes(), nack.delivery_time.to_string(), nack.delivery_count.to_string());
                encode_command(
                    out,
                    [
                        &b"XCLAIM"[..],
                        key,
                        name,
                        cname,
                        b"0",
                        &idb,
                        b"TIME",
                        time.as_bytes(),
                        b"RETRYCOUNT",
                        count.as_bytes(),
                        b"JUSTID",
                        b"FORCE",
                    ],
                );
            }
        }
    }
}

/// Emits `cmd key item…` commands of at most [`ITEMS_PER_CMD`] elements (hash and sorted
/// set pairs count as one element and are never split).
fn batched(out: &mut Vec<u8>, cmd: &[u8], key: &[u8], items: usize, visit: impl FnOnce(&mut dyn FnMut(&[u8]))) {
    let per_cmd = if cmd == b"HMSET" || cmd == b"ZADD" { ITEMS_PER_CMD * 2 } else { ITEMS_PER_CMD };
    let head = [cmd.to_vec(), key.to_vec()];
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(2 + per_cmd.min(items));
    batch.extend(head.iter().cloned());
    let flush = |batch: &mut Vec<Vec<u8>>, out: &mut Vec<u8>| {
        if batch.len() > 2 {
            encode_command(out, batch.iter().map(Vec::as_slice));
            batch.truncate(2);
        }
    };
    visit(&mut |e: &[u8]| {
        batch.push(e.to_vec());
        if batch.len() == 2 + per_cmd {
            flush(&mut batch, out);
        }
    });
    flush(&mut batch, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aof::stream::{next_record, Record};
    use ferrokv_keyspace::types::list::List;

    fn commands(buf: &[u8]) -> Vec<Vec<String>> {
        let mut rest = buf;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let Record::Command { args, len } = next_record(rest) else { panic!("bad stream") };
            out.push(args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect());
            rest = &rest[len..];
        }
        out
    }

    #[test]
    fn strings_lists_and_expiry() {
        let mut enc = CommandEncoder::new();
        let mut out = Vec::new();
        enc.key(&mut out, 0, b"n", &Obj::new(Value::Int(7), 0), Some(1234));
        let mut l = List::new();
        for i in 0..130 {
            l.items.push_back(i.to_string().as_str().into());
        }
        enc.key(&mut out, 2, b"l", &Obj::new(Value::List(Box::new(l)), 0), None);
        let cmds = commands(&out);
        assert_eq!(cmds[0], ["SELECT", "0"]);
        assert_eq!(cmds[1], ["SET", "n", "7"]);
        assert_eq!(cmds[2], ["PEXPIREAT", "n", "1234"]);
        assert_eq!(cmds[3], ["SELECT", "2"]);
        assert_eq!(cmds[4].len(), 2 + 64);
        assert_eq!(cmds[5].len(), 2 + 64);
        assert_eq!(cmds[6], ["RPUSH", "l", "128", "129"]);
    }
}
