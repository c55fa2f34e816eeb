//! Reading streams: `STREAM_LISTPACKS_2` (Redis 7.0), `STREAM_LISTPACKS` (5.0 to 6.2,
//! without the 7.0 counters, which are then derived as Redis derives them) and
//! `STREAM_LISTPACKS_3` (7.2: consumers also carry an active time, read and dropped).
//! The layout is described in `writer/stream.rs`. Deleted entries are not kept: the
//! counters say what they must.

use super::{corrupt, listpack, RdbError, Source};
use crate::rdb::types::{STREAM_LISTPACKS, STREAM_LISTPACKS_3};
use crate::rdb::{Bad, Elem};
use ferrokv_keyspace::types::stream::{Group, NodeLimits, Stream, StreamId, FLAG_DELETED, FLAG_SAME_FIELDS};
use ferrokv_keyspace::SmallBytes;
use std::io::Read;

fn bad(what: &'static str) -> Bad {
    Bad { structure: "stream", at: 0, what }
}

fn id_from_key(k: &[u8]) -> Option<StreamId> {
    let ms = u64::from_be_bytes(k.get(..8)?.try_into().ok()?);
    let seq = u64::from_be_bytes(k.get(8..16)?.try_into().ok()?);
    Some(StreamId::new(ms, seq))
}

fn int(e: Option<&Elem<'_>>) -> Result<i64, Bad> {
    match e {
        Some(Elem::Int(v)) => Ok(*v),
        _ => Err(bad("expected an integer in a stream node")),
    }
}

fn bytes(e: Option<&Elem<'_>>) -> Result<SmallBytes, Bad> {
    e.map(Elem::to_small_bytes).ok_or(bad("stream node ends inside an entry"))
}

/// Appends the live entries of one node's listpack to `s`, as one node (deleted entries
/// are dropped; a node of deleted entries only, which Redis never writes, adds none).
fn read_node(s: &mut Stream, master: StreamId, lp: &[u8], last: &mut Option<StreamId>) -> Result<(), Bad> {
    let mut elems = Vec::new();
    listpack::for_each(lp, |e| {
        elems.push(e);
        Ok::<(), Bad>(())
    })?;
    if elems.is_empty() {
        return Err(bad("empty listpack inside stream"));
    }
    let mut it = elems.iter();
    let (live, deleted) = (int(it.next())?, int(it.next())?);
    let nmaster = int(it.next())?;
    if nmaster < 0 || live < 0 || deleted < 0 {
        return Err(bad("negative count in a stream master entry"));
    }
    let master_fields = (0..nmaster).map(|_| bytes(it.next())).collect::<Result<Vec<_>, _>>()?;
    if int(it.next())? != 0 {
        return Err(bad("stream master entry without its terminator"));
    }
    let (mut seen_live, mut seen_deleted) = (0i64, 0i64);
    let mut pairs: Vec<(SmallBytes, SmallBytes)> = Vec::new();
    while let Some(first) = it.next() {
        let flags = int(Some(first))?;
        let id = StreamId::new(
            master.ms.wrapping_add(int(it.next())? as u64),
            master.seq.wrapping_add(int(it.next())? as u64),
        );
        if last.is_some_and(|l| id <= l) {
            return Err(bad("stream IDs out of order"));
        }
        *last = Some(id);
        pairs.clear();
        if flags & FLAG_SAME_FIELDS as i64 != 0 {
            for f in &master_fields {
                pairs.push((f.clone(), bytes(it.next())?));
            }
        } else {
            let n = int(it.next())?;
            if n < 0 {
                return Err(bad("negative field count in a stream entry"));
            }
            for _ in 0..n {
                pairs.push((bytes(it.next())?, bytes(it.next())?));
            }
        }
        int(it.next())?;
        if flags & FLAG_DELETED as i64 != 0 {
            seen_deleted += 1;
        } else {
            seen_live += 1;
            let refs: Vec<(&[u8], &[u8])> = pairs.iter().map(|(f, v)| (f.as_slice(), v.as_slice())).collect();
            if seen_live == 1 {
                s.append_starting_node(id, &refs);
            } else {
                s.append(id, &refs, NodeLimits::UNLIMITED);
            }
        }
    }
    if seen_live != live || seen_deleted != deleted {
        return Err(bad("stream node counts do not match its entries"));
    }
    Ok(())
}

fn id_pair<R: Read>(src: &mut Source<R>) -> Result<StreamId, RdbError> {
    Ok(StreamId::new(src.len()?, src.len()?))
}

fn raw_id<R: Read>(src: &mut Source<R>) -> Result<StreamId, RdbError> {
    let mut k = [0u8; 16];
    src.exact(&mut k)?;
    Ok(id_from_key(&k).unwrap_or_default())
}

fn ms_time<R: Read>(src: &mut Source<R>) -> Result<i64, RdbError> {
    let mut b = [0u8; 8];
    src.exact(&mut b)?;
    Ok(i64::from_le_bytes(b))
}

pub(crate) fn read_stream<R: Read>(src: &mut Source<R>, ty: u8) -> Result<Stream, RdbError> {
    let mut s = Stream::new();
    let nodes = src.len()?;
    let mut last = None;
    for _ in 0..nodes {
        let at = src.offset();
        let key = src.string()?;
        let master = id_from_key(&key)
            .filter(|_| key.len() == 16)
            .ok_or_else(|| corrupt(at)(bad("stream node key is not the size of a stream ID")))?;
        let (at, lp) = src.blob()?;
        read_node(&mut s, master, &lp, &mut last).map_err(corrupt(at))?;
    }
    let at = src.offset();
    let length = src.len()?;
    if length != s.len() {
        return Err(corrupt(at)(bad("stream length does not match its entries")));
    }
    let last_id = id_pair(src)?;
    if s.last().is_some_and(|e| e.id > last_id) {
        return Err(corrupt(at)(bad("stream last ID below its last entry")));
    }
    if ty == STREAM_LISTPACKS {
        let first = s.first().map_or(StreamId::MIN, |e| e.id);
        let added = s.len();
        s.set_counters(last_id, first, StreamId::MIN, added);
    } else {
        let first = id_pair(src)?;
        let max_deleted = id_pair(src)?;
        let added = src.len()?;
        s.set_counters(last_id, first, max_deleted, added);
    }
    let ngroups = src.len()?;
    for _ in 0..ngroups {
        let name = src.small_bytes()?;
        let gid = id_pair(src)?;
        let entries_read =
            if ty == STREAM_LISTPACKS { s.estimate_distance(gid).map_or(-1, |n| n as i64) } else { src.len()? as i64 };
        let mut g = Group::new(gid, entries_read);
        let mut times = std::collections::BTreeMap::new();
        for _ in 0..src.len()? {
            let id = raw_id(src)?;
            let time = ms_time(src)?;
            let count = src.len()?;
            times.insert(id, (time, count));
        }
        for _ in 0..src.len()? {
            let at = src.offset();
            let cname = src.small_bytes()?;
            let seen = ms_time(src)?;
            if ty == STREAM_LISTPACKS_3 {
                ms_time(src)?;
            }
            if !g.create_consumer(&cname, seen) {
                return Err(corrupt(at)(bad("duplicate consumer in a stream group")));
            }
            for _ in 0..src.len()? {
                let at = src.offset();
                let id = raw_id(src)?;
                let Some(&(time, count)) = times.get(&id) else {
                    return Err(corrupt(at)(bad("consumer entry not found in the group's PEL")));
                };
                if g.pel.contains_key(&id) {
                    return Err(corrupt(at)(bad("stream PEL entry owned by two consumers")));
                }
                g.assign(id, &cname, time, count);
            }
        }
        if g.pel.len() != times.len() {
            return Err(corrupt(src.offset())(bad("stream group PEL entry without a consumer")));
        }
        if s.groups.insert(name, g).is_some() {
            return Err(corrupt(src.offset())(bad("duplicate stream consumer group")));
        }
    }
    Ok(s)
}
