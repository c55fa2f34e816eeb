//! Bitmap commands over string values: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP.
//! Bit 0 is the most significant bit of the first byte, as in Redis.

use super::strings::{byte_range, string_value};
use crate::ctx::{int_arg, is, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_config::notify;
use ferrokv_keyspace::{Obj, SmallBytes, Value};

/// Parses a bit offset, refusing offsets beyond `proto-max-bulk-len` bytes.
fn bit_offset(c: &Ctx, arg: &[u8]) -> Result<u64, CmdError> {
    let err = || CmdError::err("ERR bit offset is not an integer or out of range");
    let off = ferrokv_resp::parse_i64(arg).ok_or_else(err)?;
    if off < 0 || (off as u64 >> 3) >= c.eng.hot.proto_max_bulk_len {
        return Err(err());
    }
    Ok(off as u64)
}

/// The bytes of a string value (integers rendered), or empty if the key is missing.
fn read_bytes(c: &mut Ctx, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    match c.eng.lookup_read(c.client.db, key, c.now) {
        None => Ok(None),
        Some(o) => Ok(Some(string_value(&o.value)?.to_vec())),
    }
}

/// The string at `key` opened for an in-place bit write: created empty if missing, an
/// integer-encoded value turned into its digits, and marked raw as Redis's in-place
/// writes leave it (SETBIT and BITFIELD share this).
pub(crate) fn string_for_write<'a>(c: &'a mut Ctx, db: usize, key: &[u8]) -> Result<&'a mut SmallBytes, CmdError> {
    let exists = match c.eng.lookup_write(db, key, c.now) {
        None => false,
        Some(o) => {
            string_value(&o.value)?;
            true
        }
    };
    if !exists {
        c.eng.dbs[db].add(key, Obj::new(Value::Str(SmallBytes::new()), c.now));
    }
    let o = c.eng.dbs[db].get_mut_unchecked(key).expect("present");
    if let Value::Int(n) = o.value {
        o.value = Value::Str(SmallBytes::from(itoa::Buffer::new().format(n).as_bytes()));
    }
    o.mark_raw();
    let Value::Str(s) = &mut o.value else { unreachable!("string checked above") };
    Ok(s)
}

pub fn setbit(c: &mut Ctx) -> CmdResult {
    let key = c.arg(1);
    let offset = bit_offset(c, c.arg(2))?;
    let on = ferrokv_resp::parse_i64(c.arg(3))
        .filter(|v| v & !1 == 0)
        .ok_or(CmdError::err("ERR bit is not an integer or out of range"))?;
    let db = c.client.db;
    let byte = (offset >> 3) as usize;
    let s = string_for_write(c, db, key)?;
    let (old, grew) = s.with_vec(|v| {
        let grew = v.len() <= byte;
        if grew {
            v.resize(byte + 1, 0);
        }
        let mask = 1u8 << (7 - (offset & 7));
        let old = v[byte] & mask != 0;
        if on == 1 {
            v[byte] |= mask;
        } else {
            v[byte] &= !mask;
        }
        (old, grew)
    });
    if grew || old != (on == 1) {
        c.modified(key);
        c.notify(notify::STRING, "setbit", key);
    }
    c.out().int(old as i64);
    Ok(())
}

pub fn getbit(c: &mut Ctx) -> CmdResult {
    let offset = bit_offset(c, c.arg(2))?;
    let bytes = read_bytes(c, c.arg(1))?.unwrap_or_default();
    let byte = (offset >> 3) as usize;
    let bit = bytes.get(byte).is_some_and(|b| b & (1 << (7 - (offset & 7))) != 0);
    c.out().int(bit as i64);
    Ok(())
}

/// A range over a string in bytes, with masks for the partial first/last bytes when the
/// range was given in bits.
struct Span {
    start: usize,
    end: usize,
    first_mask: u8,
    last_mask: u8,
}

/// Resolves BITCOUNT/BITPOS range arguments. `end` None means "to the end".
fn resolve(start: i64, end: Option<i64>, len: usize, in_bits: bool) -> Option<Span> {
    let total = if in_bits { (len as i64) << 3 } else { len as i64 };
    let end = end.unwrap_or(if in_bits { ((len as i64) << 3) + 7 } else { len as i64 - 1 });
    let mut s = if start < 0 { total + start } else { start };
    let mut e = if end < 0 { total + end } else { end };
    s = s.max(0);
    e = e.max(0);
    if e >= total {
        e = total - 1;
    }
    if s > e {
        return None;
    }
    if in_bits {
        let first_mask = !((1u16 << (8 - (s & 7))) - 1) as u8;
        let last_mask = ((1u16 << (7 - (e & 7))) - 1) as u8;
        Some(Span { start: (s >> 3) as usize, end: (e >> 3) as usize, first_mask, last_mask })
    } else {
        Some(Span { start: s as usize, end: e as usize, first_mask: 0, last_mask: 0 })
    }
}

fn unit_is_bit(a: &[u8]) -> Result<bool, CmdError> {
    if is(a, "BIT") {
        Ok(true)
    } else if is(a, "BYTE") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

pub fn bitcount(c: &mut Ctx) -> CmdResult {
    // Redis looks the key up before parsing the range: a missing key answers 0 whatever
    // the arguments.
    let Some(bytes) = read_bytes(c, c.arg(1))? else {
        c.out().int(0);
        return Ok(());
    };
    let span = match c.argc() {
        2 => byte_range(0, -1, bytes.len() as i64).map(|(s, e)| Span { start: s, end: e, first_mask: 0, last_mask: 0 }),
        4 | 5 => {
            let start = int_arg(c.arg(2))?;
            let end = int_arg(c.arg(3))?;
            if start < 0 && end < 0 && start > end {
                c.out().int(0);
                return Ok(());
            }
            let in_bits = if c.argc() == 5 { unit_is_bit(c.arg(4))? } else { false };
            resolve(start, Some(end), bytes.len(), in_bits)
        }
        _ => return Err(CmdError::Syntax),
    };
    let n = match span {
        None => 0,
        Some(sp) => {
            let mut n: u64 = bytes[sp.start..=sp.end].iter().map(|b| b.count_ones() as u64).sum();
            n -= (bytes[sp.start] & sp.first_mask).count_ones() as u64;
            n -= (bytes[sp.end] & sp.last_mask).count_ones() as u64;
            n
        }
    };
    c.out().int(n as i64);
    Ok(())
}

/// Position of the first `bit` in `bytes`; for 0 bits past the end, the first bit after
/// the buffer; for 1 bits not found, -1 (Redis's redisBitpos).
fn first_bit(bytes: &[u8], bit: bool) -> i64 {
    for (i, &b) in bytes.iter().enumerate() {
        let b = if bit { b } else { !b };
        if b != 0 {
            return (i as i64) * 8 + b.leading_zeros() as i64;
        }
    }
    if bit {
        -1
    } else {
        bytes.len() as i64 * 8
    }
}

pub fn bitpos(c: &mut Ctx) -> CmdResult {
    let bit = int_arg(c.arg(2))?;
    if bit != 0 && bit != 1 {
        return fail("ERR The bit argument must be 1 or 0.");
    }
    let bit = bit == 1;
    let Some(bytes) = read_bytes(c, c.arg(1))? else {
        c.out().int(if bit { -1 } else { 0 });
        return Ok(());
    };
    let (span, end_given) = match c.argc() {
        3 => (
            byte_range(0, -1, bytes.len() as i64).map(|(s, e)| Span { start: s, end: e, first_mask: 0, last_mask: 0 }),
            false,
        ),
        4..=6 => {
            let start = int_arg(c.arg(3))?;
            let in_bits = if c.argc() == 6 { unit_is_bit(c.arg(5))? } else { false };
            let end = if c.argc() >= 5 { Some(int_arg(c.arg(4))?) } else { None };
            (resolve(start, end, bytes.len(), in_bits), end.is_some())
        }
        _ => return Err(CmdError::Syntax),
    };
    let Some(sp) = span else {
        c.out().int(-1);
        return Ok(());
    };
    // Bits outside the range are forced to the value we are not looking for.
    let mut window = bytes[sp.start..=sp.end].to_vec();
    let last = window.len() - 1;
    if bit {
        window[0] &= !sp.first_mask;
        window[last] &= !sp.last_mask;
    } else {
        window[0] |= sp.first_mask;
        window[last] |= sp.last_mask;
    }
    let pos = first_bit(&window, bit);
    // With an explicit end, clear bits past the window do not count as found.
    let past_end = end_given && !bit && pos == window.len() as i64 * 8;
    let pos = if past_end || pos == -1 { -1 } else { pos + (sp.start as i64) * 8 };
    c.out().int(pos);
    Ok(())
}

pub fn bitop(c: &mut Ctx) -> CmdResult {
    let op = c.arg(1);
    let dest = c.arg(2);
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = if is(op, "AND") {
        Op::And
    } else if is(op, "OR") {
        Op::Or
    } else if is(op, "XOR") {
        Op::Xor
    } else if is(op, "NOT") {
        Op::Not
    } else {
        return Err(CmdError::Syntax);
    };
    if matches!(op, Op::Not) && c.argc() != 4 {
        return fail("ERR BITOP NOT must be called with a single source key.");
    }
    let mut sources = Vec::with_capacity(c.argc() - 3);
    for i in 3..c.argc() {
        sources.push(read_bytes(c, c.argv.get(i))?.unwrap_or_default());
    }
    let maxlen = sources.iter().map(Vec::len).max().unwrap_or(0);
    let mut res = vec![0u8; maxlen];
    for (i, out) in res.iter_mut().enumerate() {
        let byte = |s: &Vec<u8>| s.get(i).copied().unwrap_or(0);
        *out = match op {
            Op::Not => !byte(&sources[0]),
            Op::And => sources.iter().map(byte).fold(0xff, |a, b| a & b),
            Op::Or => sources.iter().map(byte).fold(0, |a, b| a | b),
            Op::Xor => sources.iter().map(byte).fold(0, |a, b| a ^ b),
        };
    }
    let db = c.client.db;
    if maxlen == 0 {
        if c.eng.dbs[db].remove(dest).is_some() {
            c.modified(dest);
            c.notify(notify::GENERIC, "del", dest);
        }
    } else {
        let mut o = Obj::new(Value::Str(SmallBytes::from(res)), c.now);
        o.mark_raw();
        c.eng.dbs[db].set(dest, o, false);
        c.modified(dest);
        c.notify(notify::STRING, "set", dest);
    }
    c.out().int(maxlen as i64);
    Ok(())
}
