//! Stream commands (issue 14), split by topic:
//! - `add`: XADD, XTRIM, XDEL, XLEN, XSETID (and the trimming options they share);
//! - `read`: XRANGE, XREVRANGE, XREAD, XREADGROUP;
//! - `groups`: XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM;
//! - `info`: XINFO.
//!
//! Replies and errors are Redis 7.0's. Streams, unlike the other aggregates, may be empty:
//! XDEL and XTRIM never delete the key. Consumer-group changes are propagated as Redis
//! propagates them: XREADGROUP, XCLAIM and XAUTOCLAIM as the XCLAIM … FORCE JUSTID
//! commands (and XGROUP SETID) that reproduce their effect on a replica, never verbatim.

mod add;
mod groups;
mod info;
mod read;

pub use add::{xadd, xdel, xlen, xsetid, xtrim};
pub use groups::{xack, xautoclaim, xclaim, xgroup_create, xgroup_createconsumer, xgroup_delconsumer};
pub use groups::{xgroup_destroy, xgroup_help, xgroup_setid, xpending};
pub use info::{xinfo_consumers, xinfo_groups, xinfo_help, xinfo_stream};
pub use read::{xrange, xread, xreadgroup, xrevrange};

use crate::ctx::Ctx;
use crate::engine::Engine;
use crate::error::CmdError;
use ferrokv_keyspace::types::stream::{EntryRef, Group, NodeLimits, Stream, StreamId};
use ferrokv_keyspace::{Obj, Value};
use ferrokv_resp::ReplyBuf;

pub(crate) const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// Redis's `string2ull`: a canonical non-negative i64, or what C's `strtoull` accepts
/// for the whole string (leading spaces, a sign — a minus negates modulo 2^64 — and
/// digits, without overflow).
fn parse_u64(s: &[u8]) -> Option<u64> {
    if let Some(n) = ferrokv_resp::parse_i64(s) {
        return (n >= 0).then_some(n as u64);
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    if i == s.len() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in &s[i..] {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add((b - b'0') as u64)?;
    }
    Some(if neg { n.wrapping_neg() } else { n })
}

/// How an ID argument is read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdForm {
    /// `-` and `+` allowed (ranges).
    Range,
    /// `-` and `+` refused.
    Strict,
}

/// Parses `<ms>[-<seq>]` (`missing_seq` when the sequence is omitted), or `-`/`+`.
pub(crate) fn parse_id(a: &[u8], missing_seq: u64, form: IdForm) -> Result<StreamId, CmdError> {
    let invalid = || CmdError::err(INVALID_ID);
    if a.len() > 127 {
        return Err(invalid());
    }
    // Redis copies the argument into a C string: it ends at the first NUL.
    let a = a.iter().position(|&b| b == 0).map_or(a, |p| &a[..p]);
    if a == b"-" || a == b"+" {
        if form == IdForm::Strict {
            return Err(invalid());
        }
        return Ok(if a == b"-" { StreamId::MIN } else { StreamId::MAX });
    }
    match a.iter().position(|&b| b == b'-') {
        Some(dash) => {
            let ms = parse_u64(&a[..dash]).ok_or_else(invalid)?;
            let seq = parse_u64(&a[dash + 1..]).ok_or_else(invalid)?;
            Ok(StreamId::new(ms, seq))
        }
        None => Ok(StreamId::new(parse_u64(a).ok_or_else(invalid)?, missing_seq)),
    }
}

/// A range bound: an ID, or `(ID` for an exclusive one (moved inwards here).
pub(crate) fn parse_bound(a: &[u8], start: bool) -> Result<StreamId, CmdError> {
    if a.len() > 1 && a[0] == b'(' {
        let id = parse_id(&a[1..], if start { 0 } else { u64::MAX }, IdForm::Strict)?;
        let moved = if start { id.incr() } else { id.decr() };
        return moved.ok_or_else(|| {
            CmdError::err(if start {
                "ERR invalid start ID for the interval"
            } else {
                "ERR invalid end ID for the interval"
            })
        });
    }
    parse_id(a, if start { 0 } else { u64::MAX }, IdForm::Range)
}

/// An ID as text, without allocating.
pub(crate) struct IdText {
    buf: [u8; 41],
    len: usize,
}

impl IdText {
    pub fn new(id: StreamId) -> IdText {
        let mut buf = [0u8; 41];
        let mut b = itoa::Buffer::new();
        let ms = b.format(id.ms).as_bytes();
        buf[..ms.len()].copy_from_slice(ms);
        let mut len = ms.len();
        buf[len] = b'-';
        len += 1;
        let seq = b.format(id.seq).as_bytes();
        buf[len..len + seq.len()].copy_from_slice(seq);
        len += seq.len();
        IdText { buf, len }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

pub(crate) fn reply_id(out: &mut ReplyBuf, id: StreamId) {
    out.bulk(IdText::new(id).as_bytes());
}

/// `[id, [field, value, …]]`.
pub(crate) fn reply_entry(out: &mut ReplyBuf, e: EntryRef<'_>) {
    out.array(2);
    reply_id(out, e.id);
    out.array(e.fields.len() * 2);
    for (f, v) in e.fields {
        out.bulk(f);
        out.bulk(v);
    }
}

pub(crate) fn stream_of(v: &Value) -> Result<&Stream, CmdError> {
    match v {
        Value::Stream(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

pub(crate) fn stream_of_mut(v: &mut Value) -> Result<&mut Stream, CmdError> {
    match v {
        Value::Stream(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

/// The stream at `key` for reading (None if missing; WRONGTYPE for another type).
pub(crate) fn read_stream<'a>(c: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a Stream>, CmdError> {
    stream_ro(c.eng, c.client.db, key, c.now)
}

/// The stream at `key` for writing (None if missing; WRONGTYPE for another type).
pub(crate) fn write_stream<'a>(c: &'a mut Ctx, key: &[u8]) -> Result<Option<&'a mut Stream>, CmdError> {
    stream_rw(c.eng, c.client.db, key, c.now)
}

/// [`read_stream`] borrowing only the engine (so the reply buffer stays usable).
pub(crate) fn stream_ro<'a>(
    eng: &'a mut Engine,
    db: usize,
    key: &[u8],
    now: i64,
) -> Result<Option<&'a Stream>, CmdError> {
    match eng.lookup_read(db, key, now) {
        None => Ok(None),
        Some(o) => stream_of(&o.value).map(Some),
    }
}

/// [`write_stream`] borrowing only the engine.
pub(crate) fn stream_rw<'a>(
    eng: &'a mut Engine,
    db: usize,
    key: &[u8],
    now: i64,
) -> Result<Option<&'a mut Stream>, CmdError> {
    match eng.lookup_write(db, key, now) {
        None => Ok(None),
        Some(o) => stream_of_mut(&mut o.value).map(Some),
    }
}

/// Creates an empty stream at `key` (which must not exist).
pub(crate) fn create_stream(c: &mut Ctx, key: &[u8]) {
    c.eng.dbs[c.client.db].add(key, Obj::new(Value::Stream(Box::default()), c.now));
}

// Resolved at compile time: `pid` scans the parameter table by name, too slow per XADD.
const NODE_MAX_BYTES: ferrokv_config::Pid = ferrokv_config::pid("stream-node-max-bytes");
pub(crate) const NODE_MAX_ENTRIES: ferrokv_config::Pid = ferrokv_config::pid("stream-node-max-entries");

pub(crate) fn node_limits(c: &Ctx) -> NodeLimits {
    let n = |pid| c.eng.cfg.int(pid).max(0) as usize;
    NodeLimits { max_bytes: n(NODE_MAX_BYTES), max_entries: n(NODE_MAX_ENTRIES) }
}

/// True for commands Redis's `mustObeyClient` covers: our master's stream and the AOF.
pub(crate) fn must_obey(c: &Ctx) -> bool {
    c.client.id == u64::MAX || c.client.repl_role == Some(crate::client::ReplRole::Master)
}

/// The XCLAIM Redis propagates for a pending entry (idempotent on the replica).
pub(crate) fn xclaim_propagation(key: &[u8], group: &[u8], g: &Group, id: StreamId) -> Vec<Vec<u8>> {
    let (consumer, time, count) = match g.pel.get(&id) {
        Some(n) => (n.consumer.to_vec(), n.delivery_time, n.delivery_count),
        None => (Vec::new(), 0, 0),
    };
    vec![
        b"XCLAIM".to_vec(),
        key.to_vec(),
        group.to_vec(),
        consumer,
        b"0".to_vec(),
        id.to_bytes(),
        b"TIME".to_vec(),
        time.to_string().into_bytes(),
        b"RETRYCOUNT".to_vec(),
        count.to_string().into_bytes(),
        b"FORCE".to_vec(),
        b"JUSTID".to_vec(),
        b"LASTID".to_vec(),
        g.last_id.to_bytes(),
    ]
}

/// XGROUP SETID as Redis propagates a group's position.
pub(crate) fn setid_propagation(key: &[u8], group: &[u8], g: &Group) -> Vec<Vec<u8>> {
    vec![
        b"XGROUP".to_vec(),
        b"SETID".to_vec(),
        key.to_vec(),
        group.to_vec(),
        g.last_id.to_bytes(),
        b"ENTRIESREAD".to_vec(),
        g.entries_read.to_string().into_bytes(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_redis() {
        let p = |s: &str| parse_id(s.as_bytes(), 7, IdForm::Range).ok();
        assert_eq!(p("5"), Some(StreamId::new(5, 7)));
        assert_eq!(p("5-3"), Some(StreamId::new(5, 3)));
        assert_eq!(p("-"), Some(StreamId::MIN));
        assert_eq!(p("+"), Some(StreamId::MAX));
        assert_eq!(p("18446744073709551615-18446744073709551615"), Some(StreamId::MAX));
        assert_eq!(p("18446744073709551616"), None);
        assert_eq!(p("+5"), Some(StreamId::new(5, 7)));
        assert_eq!(p("-1"), None);
        assert_eq!(p("1-"), None);
        assert_eq!(p("a"), None);
        assert_eq!(p(""), None);
        assert!(parse_id(b"-", 0, IdForm::Strict).is_err());
        assert_eq!(IdText::new(StreamId::MAX).as_bytes(), b"18446744073709551615-18446744073709551615");
    }
}
