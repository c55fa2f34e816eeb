//! SORT and SORT_RO: the elements of a list, set or sorted set, sorted numerically or
//! bytewise (ALPHA), optionally by the values of other keys (`BY weight_*`, or a hash
//! field with `BY h_*->field`), with LIMIT, GET patterns (`#` is the element itself) and
//! STORE into a list, as Redis 7.0 does it.
//!
//! What Redis leaves to chance stays unspecified here: the order of a set under `BY
//! nosort`, and of elements whose ALPHA `BY` values are equal. Not copied: Redis reads
//! strtod's errno without clearing it, so after one out-of-range number its numeric SORTs
//! keep failing for a while.

use super::zsets::strtod_whole;
use crate::ctx::{int_arg, is, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::types::list::List;
use ferrokv_keyspace::{Obj, SmallBytes, Value};
use std::cmp::Ordering;

pub fn sort(c: &mut Ctx) -> CmdResult {
    sort_generic(c, false)
}

pub fn sort_ro(c: &mut Ctx) -> CmdResult {
    sort_generic(c, true)
}

struct Options<'a> {
    desc: bool,
    alpha: bool,
    /// LIMIT offset and count; a negative count means "to the end".
    limit: (i64, i64),
    by: Option<&'a [u8]>,
    /// `BY` a pattern without `*`: keep the container's own order.
    dontsort: bool,
    gets: Vec<&'a [u8]>,
    store: Option<&'a [u8]>,
}

fn parse_options<'a>(c: &Ctx<'a>, readonly: bool) -> Result<Options<'a>, CmdError> {
    let mut o =
        Options { desc: false, alpha: false, limit: (0, -1), by: None, dontsort: false, gets: Vec::new(), store: None };
    let mut j = 2;
    while j < c.argc() {
        let (a, left) = (c.arg(j), c.argc() - j - 1);
        if is(a, "ASC") {
            o.desc = false;
        } else if is(a, "DESC") {
            o.desc = true;
        } else if is(a, "ALPHA") {
            o.alpha = true;
        } else if is(a, "LIMIT") && left >= 2 {
            o.limit = (int_arg(c.arg(j + 1))?, int_arg(c.arg(j + 2))?);
            j += 2;
        } else if !readonly && is(a, "STORE") && left >= 1 {
            o.store = Some(c.arg(j + 1));
            j += 1;
        } else if is(a, "BY") && left >= 1 {
            let pattern = c.arg(j + 1);
            o.by = Some(pattern);
            o.dontsort = !pattern.contains(&b'*');
            j += 1;
        } else if is(a, "GET") && left >= 1 {
            o.gets.push(c.arg(j + 1));
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// What an element is compared by.
enum SortBy {
    Score(f64),
    /// ALPHA with BY: the looked-up value, None when the key (or field) is missing.
    Text(Option<Vec<u8>>),
    /// ALPHA without BY: the element itself.
    Element,
}

fn sort_generic(c: &mut Ctx, readonly: bool) -> CmdResult {
    let mut o = parse_options(c, readonly)?;
    let (db, now, key) = (c.client.db, c.now, c.arg(1));
    let write = o.store.is_some();
    let found = if write { c.eng.lookup_write(db, key, now).map(|o| &*o) } else { c.eng.lookup_read(db, key, now) };
    let mut packed_zset = false;
    let (kind, mut elems): (Kind, Vec<Vec<u8>>) = match found.map(|obj| &obj.value) {
        None => (Kind::List, Vec::new()),
        Some(Value::List(l)) => (Kind::List, l.items.iter().map(|s| s.to_vec()).collect()),
        Some(Value::Set(s)) => (Kind::Set, s.members()),
        Some(Value::ZSet(z)) => {
            packed_zset = z.is_packed();
            (Kind::ZSet, z.iter().map(|(m, _)| m.to_vec()).collect())
        }
        Some(_) => return Err(CmdError::WrongType),
    };
    if packed_zset {
        // Redis converts a sorted set it sorts to a skiplist for good (OBJECT ENCODING).
        if let Some(Value::ZSet(z)) = c.eng.dbs[db].get_mut_unchecked(key).map(|o| &mut o.value) {
            z.convert_to_tree();
        }
    }
    // A set has no order of its own: what is stored (or replicated) must not depend on
    // the hash table, so BY nosort with STORE sorts bytewise instead.
    if o.dontsort && kind == Kind::Set && o.store.is_some() {
        (o.dontsort, o.alpha, o.by) = (false, true, None);
    }
    let len = elems.len() as i64;
    let (offset, count) = o.limit;
    let mut start = offset.max(0);
    let mut end = if count < 0 { len - 1 } else { start.saturating_add(count) - 1 };
    if start >= len {
        (start, end) = (len - 1, len - 2);
    }
    end = end.min(len - 1);
    if o.dontsort {
        // Lists and sorted sets keep their order, read from the tail under DESC.
        if o.desc && kind != Kind::Set {
            elems.reverse();
        }
    } else {
        let keys = sort_keys(c, &o, &elems, write)?;
        let mut order: Vec<usize> = (0..elems.len()).collect();
        order.sort_by(|&a, &b| {
            let cmp = compare(&keys[a], &elems[a], &keys[b], &elems[b]);
            if o.desc {
                cmp.reverse()
            } else {
                cmp
            }
        });
        let mut sorted: Vec<Vec<u8>> = Vec::with_capacity(elems.len());
        for i in order {
            sorted.push(std::mem::take(&mut elems[i]));
        }
        elems = sorted;
    }
    let picked: &[Vec<u8>] = if end >= start { &elems[start as usize..=end as usize] } else { &[] };
    let per = if o.gets.is_empty() { 1 } else { o.gets.len() };
    let outputlen = picked.len() * per;
    let Some(dst) = o.store else {
        c.out().array(outputlen);
        for e in picked {
            if o.gets.is_empty() {
                c.out().bulk(e);
            }
            for &pattern in &o.gets {
                let v = lookup_by_pattern(c, pattern, e, false);
                c.out().bulk_opt(v.as_deref());
            }
        }
        return Ok(());
    };
    let mut list = List::new();
    for e in picked {
        if o.gets.is_empty() {
            list.items.push_back(SmallBytes::from(e.as_slice()));
        }
        for &pattern in &o.gets {
            let v = lookup_by_pattern(c, pattern, e, true).unwrap_or_default();
            list.items.push_back(SmallBytes::from(v.as_slice()));
        }
    }
    let existed = c.eng.lookup_write(db, dst, now).is_some();
    if outputlen > 0 {
        if existed {
            c.eng.dbs[db].remove(dst);
        }
        c.eng.dbs[db].add(dst, Obj::new(Value::List(Box::new(list)), now));
        c.modified_in(db, dst, outputlen as u64);
        c.notify(notify::LIST, "sortstore", dst);
        // Like Redis's dbAdd: a new list wakes clients blocked on it; an overwrite does not.
        if !existed {
            c.signal_ready(dst);
        }
    } else if existed {
        c.eng.dbs[db].remove(dst);
        c.modified(dst);
        c.notify(notify::GENERIC, "del", dst);
    }
    c.out().int(outputlen as i64);
    Ok(())
}

/// What each element sorts by; an error if a numeric sort meets a value that is not a
/// number (checked over all elements, as Redis does before replying).
fn sort_keys(c: &mut Ctx, o: &Options, elems: &[Vec<u8>], write: bool) -> Result<Vec<SortBy>, CmdError> {
    let mut keys = Vec::with_capacity(elems.len());
    let mut bad_number = false;
    for e in elems {
        let by = match o.by {
            Some(pattern) => lookup_by_pattern(c, pattern, e, write),
            None => None,
        };
        keys.push(match (o.alpha, o.by.is_some()) {
            (true, true) => SortBy::Text(by),
            (true, false) => SortBy::Element,
            // A missing BY key sorts as 0.
            (false, true) => SortBy::Score(by.map_or(Some(0.0), |v| sort_score(&v)).unwrap_or_else(|| {
                bad_number = true;
                0.0
            })),
            (false, false) => SortBy::Score(sort_score(e).unwrap_or_else(|| {
                bad_number = true;
                0.0
            })),
        });
    }
    if bad_number {
        return Err(CmdError::err("ERR One or more scores can't be converted into double"));
    }
    Ok(keys)
}

/// Redis's sortCompare: numbers, ties broken bytewise by the element; ALPHA compares
/// bytes (the C locale's collation); ALPHA BY values put missing ones first and leave
/// ties unbroken.
fn compare(ka: &SortBy, a: &[u8], kb: &SortBy, b: &[u8]) -> Ordering {
    match (ka, kb) {
        (SortBy::Score(x), SortBy::Score(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal).then_with(|| a.cmp(b)),
        (SortBy::Text(x), SortBy::Text(y)) => x.cmp(y),
        _ => a.cmp(b),
    }
}

/// A number as SORT reads one: all of the value through strtod (leading spaces, hex
/// floats, and an empty string as 0 accepted), refusing NaN and what strtod reports out
/// of range (a decimal overflowing to infinity or underflowing to zero).
fn sort_score(v: &[u8]) -> Option<f64> {
    let x = strtod_whole(v)?;
    let t = v.trim_ascii_start();
    let hex = t.strip_prefix(b"-").or_else(|| t.strip_prefix(b"+")).unwrap_or(t);
    let decimal = !t.is_empty() && !hex.get(..2).is_some_and(|p| p.eq_ignore_ascii_case(b"0x"));
    if decimal && ferrokv_resp::num::parse_f64(t).is_none() {
        return None;
    }
    Some(x)
}

/// The value a GET or BY pattern names for `elem`: `#` is the element itself; otherwise
/// the first `*` is replaced by the element to form a key, whose string value (or, after
/// `->`, hash field) is the answer. None for a missing key or field, or a pattern without
/// `*`.
fn lookup_by_pattern(c: &mut Ctx, pattern: &[u8], elem: &[u8], write: bool) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(elem.to_vec());
    }
    let star = pattern.iter().position(|&b| b == b'*')?;
    let after = &pattern[star + 1..];
    let (suffix, field) = match after.windows(2).position(|w| w == b"->") {
        Some(i) if i + 2 < after.len() => (&after[..i], Some(&after[i + 2..])),
        _ => (after, None),
    };
    let key = [&pattern[..star], elem, suffix].concat();
    let (db, now) = (c.client.db, c.now);
    let obj = if write { c.eng.lookup_write(db, &key, now).map(|o| &*o) } else { c.eng.lookup_read(db, &key, now) }?;
    match (field, &obj.value) {
        (Some(f), Value::Hash(h)) => h.get(f).map(<[u8]>::to_vec),
        (Some(_), _) => None,
        (None, v) => v.as_string().map(|s| s.to_vec()),
    }
}
