//! BITFIELD and BITFIELD_RO: signed and unsigned integers of 1 to 64 bits (unsigned up to
//! 63, as Redis: a reply cannot carry an unsigned 64-bit value) at any bit offset of a
//! string, with Redis's overflow rules. Bit 0 is the most significant bit of the first
//! byte, as for SETBIT.
//!
//! The whole argument list is parsed before anything runs, so a bad operation anywhere
//! leaves the string untouched; then the operations run in order and reply one element
//! each (nil for an overflow under `OVERFLOW FAIL`, which writes nothing).

use super::strings::string_value;
use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use ferrokv_config::notify;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Action {
    Get,
    Set(i64),
    IncrBy(i64),
}

#[derive(Clone, Copy, Debug)]
struct FieldOp {
    action: Action,
    signed: bool,
    bits: u32,
    offset: u64,
    overflow: Overflow,
}

const TYPE_ERR: &str =
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
const OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";
const RO_ERR: &str = "ERR BITFIELD_RO only supports the GET subcommand";

/// `i1`..`i64` or `u1`..`u63`.
fn parse_type(arg: &[u8]) -> Result<(bool, u32), CmdError> {
    let err = || CmdError::err(TYPE_ERR);
    let (signed, digits) = match arg.split_first() {
        Some((b'i', rest)) => (true, rest),
        Some((b'u', rest)) => (false, rest),
        _ => return Err(err()),
    };
    let bits = ferrokv_resp::parse_i64(digits).ok_or_else(err)?;
    let widest = if signed { 64 } else { 63 };
    if !(1..=widest).contains(&bits) {
        return Err(err());
    }
    Ok((signed, bits as u32))
}

/// A bit offset, or `#N` meaning N fields of this width in. Redis multiplies in 64-bit
/// arithmetic that wraps, so a huge `#N` wraps the same way here.
fn parse_offset(arg: &[u8], bits: u32, max_bulk_len: u64) -> Result<u64, CmdError> {
    let err = || CmdError::err(OFFSET_ERR);
    let (fields, digits) = match arg.split_first() {
        Some((b'#', rest)) => (true, rest),
        _ => (false, arg),
    };
    let mut offset = ferrokv_resp::parse_i64(digits).ok_or_else(err)?;
    if fields {
        offset = offset.wrapping_mul(bits as i64);
    }
    if offset < 0 || (offset as u64 >> 3) >= max_bulk_len {
        return Err(err());
    }
    Ok(offset as u64)
}

fn parse_ops(c: &Ctx) -> Result<Vec<FieldOp>, CmdError> {
    let argc = c.argc();
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while j < argc {
        let remaining = argc - j - 1;
        let sub = c.arg(j);
        let takes_value = if sub.eq_ignore_ascii_case(b"get") && remaining >= 2 {
            false
        } else if (sub.eq_ignore_ascii_case(b"set") || sub.eq_ignore_ascii_case(b"incrby")) && remaining >= 3 {
            true
        } else if sub.eq_ignore_ascii_case(b"overflow") && remaining >= 1 {
            let kind = c.arg(j + 1);
            overflow = if kind.eq_ignore_ascii_case(b"wrap") {
                Overflow::Wrap
            } else if kind.eq_ignore_ascii_case(b"sat") {
                Overflow::Sat
            } else if kind.eq_ignore_ascii_case(b"fail") {
                Overflow::Fail
            } else {
                return Err(CmdError::err("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (signed, bits) = parse_type(c.arg(j + 1))?;
        let offset = parse_offset(c.arg(j + 2), bits, c.eng.hot.proto_max_bulk_len)?;
        let action = if takes_value {
            let n = ferrokv_resp::parse_i64(c.arg(j + 3)).ok_or(CmdError::NotInteger)?;
            if sub.eq_ignore_ascii_case(b"set") {
                Action::Set(n)
            } else {
                Action::IncrBy(n)
            }
        } else {
            Action::Get
        };
        ops.push(FieldOp { action, signed, bits, offset, overflow });
        j += if takes_value { 4 } else { 3 };
    }
    Ok(ops)
}

pub fn bitfield(c: &mut Ctx) -> CmdResult {
    run(c, false)
}

pub fn bitfield_ro(c: &mut Ctx) -> CmdResult {
    run(c, true)
}

fn run(c: &mut Ctx, read_only_command: bool) -> CmdResult {
    let ops = parse_ops(c)?;
    let key = c.arg(1);
    let db = c.client.db;
    let highest_write_bit =
        ops.iter().filter(|op| op.action != Action::Get).map(|op| op.offset + op.bits as u64 - 1).max();
    let Some(highest_write_bit) = highest_write_bit else {
        // Only GETs: read without creating, zeros past the end of the string.
        let bytes = match c.eng.lookup_read(db, key, c.now) {
            None => Vec::new(),
            Some(o) => string_value(&o.value)?.to_vec(),
        };
        let out = c.out();
        out.array(ops.len());
        for op in &ops {
            out.int(read_field(&bytes, op));
        }
        return Ok(());
    };
    if read_only_command {
        return Err(CmdError::err(RO_ERR));
    }
    let needed_len = (highest_write_bit >> 3) as usize + 1;
    let s = super::bits::string_for_write(c, db, key)?;
    let mut replies: Vec<Option<i64>> = Vec::with_capacity(ops.len());
    let (grew, changes) = s.with_vec(|v| {
        let grew = v.len() < needed_len;
        if grew {
            v.resize(needed_len, 0);
        }
        let mut changes = 0u64;
        for op in &ops {
            let (reply, changed) = apply(v, op, grew);
            changes += changed as u64;
            replies.push(reply);
        }
        (grew, changes)
    });
    if changes > 0 {
        c.modified_in(db, key, changes);
        c.notify(notify::STRING, "setbit", key);
    } else if grew {
        // Every write failed under OVERFLOW FAIL but the string was created or padded.
        // Redis keeps that change off the AOF and replicas (they diverge); here it counts
        // as a change so they get the same string, without the "setbit" event Redis
        // does not send either.
        c.modified_in(db, key, 1);
    }
    let out = c.out();
    out.array(replies.len());
    for reply in replies {
        match reply {
            Some(n) => out.int(n),
            None => out.null(),
        }
    }
    Ok(())
}

/// Runs one operation on a string long enough for it; returns the reply (None: failed
/// under OVERFLOW FAIL) and whether it counts as a change (Redis counts a write that
/// left the bits as they were when the string was created or padded).
fn apply(bytes: &mut [u8], op: &FieldOp, grew: bool) -> (Option<i64>, bool) {
    let increment = match op.action {
        Action::Get => return (Some(read_field(bytes, op)), false),
        Action::Set(_) => 0,
        Action::IncrBy(n) => n,
    };
    let old_bits = get_bits(bytes, op.offset, op.bits);
    let (new_bits, reply, overflowed) = if op.signed {
        let old = sign_extend(old_bits, op.bits);
        match op.action {
            Action::Set(v) => {
                let (limited, overflowed) = signed_overflow(v, 0, op.bits, op.overflow);
                (limited.unwrap_or(v) as u64, old, overflowed)
            }
            _ => {
                let (limited, overflowed) = signed_overflow(old, increment, op.bits, op.overflow);
                let new = limited.unwrap_or(old.wrapping_add(increment));
                (new as u64, new, overflowed)
            }
        }
    } else {
        match op.action {
            Action::Set(v) => {
                let (limited, overflowed) = unsigned_overflow(v as u64, 0, op.bits, op.overflow);
                (limited.unwrap_or(v as u64), old_bits as i64, overflowed)
            }
            _ => {
                let (limited, overflowed) = unsigned_overflow(old_bits, increment, op.bits, op.overflow);
                let new = limited.unwrap_or(old_bits.wrapping_add(increment as u64));
                (new, new as i64, overflowed)
            }
        }
    };
    if overflowed && op.overflow == Overflow::Fail {
        return (None, false);
    }
    set_bits(bytes, op.offset, op.bits, new_bits);
    let stored = get_bits(bytes, op.offset, op.bits);
    (Some(reply), grew || stored != old_bits)
}

fn read_field(bytes: &[u8], op: &FieldOp) -> i64 {
    let raw = get_bits(bytes, op.offset, op.bits);
    if op.signed {
        sign_extend(raw, op.bits)
    } else {
        raw as i64
    }
}

fn sign_extend(raw: u64, bits: u32) -> i64 {
    if bits < 64 && raw & (1 << (bits - 1)) != 0 {
        (raw | (u64::MAX << bits)) as i64
    } else {
        raw as i64
    }
}

/// The 72 bits (9 bytes, zero past the end) starting at the byte holding `offset`.
fn window(bytes: &[u8], byte: usize) -> u128 {
    (0..9).fold(0u128, |w, i| (w << 8) | *bytes.get(byte + i).unwrap_or(&0) as u128)
}

/// `bits` bits at bit `offset`, most significant first; zeros past the end of `bytes`.
pub fn get_bits(bytes: &[u8], offset: u64, bits: u32) -> u64 {
    let byte = (offset >> 3) as usize;
    let shift = 72 - (offset & 7) as u32 - bits;
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    ((window(bytes, byte) >> shift) as u64) & mask
}

/// Stores the low `bits` bits of `value` at bit `offset`; `bytes` must reach the last one.
pub fn set_bits(bytes: &mut [u8], offset: u64, bits: u32, value: u64) {
    let byte = (offset >> 3) as usize;
    let shift = 72 - (offset & 7) as u32 - bits;
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    let w = (window(bytes, byte) & !((mask as u128) << shift)) | (((value & mask) as u128) << shift);
    let last = ((offset + bits as u64 - 1) >> 3) as usize;
    for (i, slot) in bytes[byte..=last].iter_mut().enumerate() {
        *slot = (w >> (64 - 8 * i as u32)) as u8;
    }
}

/// Whether `value + increment` leaves the unsigned `bits`-bit range, and the value to
/// store instead under WRAP (the sum modulo 2^bits) or SAT (the bound it crossed). For SET
/// the increment is 0 and `value` is the argument's two's-complement bits, so a negative
/// argument counts as above the maximum, as in Redis.
pub fn unsigned_overflow(value: u64, increment: i64, bits: u32, mode: Overflow) -> (Option<u64>, bool) {
    let max = (1u64 << bits) - 1;
    let room_up = max.wrapping_sub(value) as i64;
    let room_down = (value as i64).wrapping_neg();
    let wrapped = || value.wrapping_add(increment as u64) & max;
    if value > max || (increment > 0 && increment > room_up) {
        match mode {
            Overflow::Wrap => (Some(wrapped()), true),
            Overflow::Sat => (Some(max), true),
            Overflow::Fail => (None, true),
        }
    } else if increment < 0 && increment < room_down {
        match mode {
            Overflow::Wrap => (Some(wrapped()), true),
            Overflow::Sat => (Some(0), true),
            Overflow::Fail => (None, true),
        }
    } else {
        (None, false)
    }
}

/// The signed counterpart of [`unsigned_overflow`]. The range tests keep Redis's exact
/// arithmetic, 64-bit and wrapping, including its one oddity: SET of a value far below
/// the minimum of a 63-bit field saturates to the maximum.
pub fn signed_overflow(value: i64, increment: i64, bits: u32, mode: Overflow) -> (Option<i64>, bool) {
    let max = if bits == 64 { i64::MAX } else { (1i64 << (bits - 1)) - 1 };
    let min = -max - 1;
    let room_up = (max as u64).wrapping_sub(value as u64) as i64;
    let room_down = min.wrapping_sub(value);
    let wrapped = || {
        let sum = (value as u64).wrapping_add(increment as u64);
        sign_extend(if bits == 64 { sum } else { sum & ((1u64 << bits) - 1) }, bits)
    };
    let up = value > max || (bits != 64 && increment > room_up) || (value >= 0 && increment > 0 && increment > room_up);
    let down =
        value < min || (bits != 64 && increment < room_down) || (value < 0 && increment < 0 && increment < room_down);
    let limit = match (up, down) {
        (true, _) => max,
        (false, true) => min,
        (false, false) => return (None, false),
    };
    match mode {
        Overflow::Wrap => (Some(wrapped()), true),
        Overflow::Sat => (Some(limit), true),
        Overflow::Fail => (None, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-by-bit reference: bit 0 is the most significant bit of byte 0.
    fn reference_get(bytes: &[u8], offset: u64, bits: u32) -> u64 {
        (0..bits as u64).fold(0, |v, j| {
            let pos = offset + j;
            let bit = bytes.get((pos >> 3) as usize).map_or(0, |b| (b >> (7 - (pos & 7))) & 1);
            (v << 1) | bit as u64
        })
    }

    #[test]
    fn fields_at_any_offset_round_trip_and_leave_neighbours_alone() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let bits = (next() % 64) as u32 + 1;
            let offset = next() % 100;
            let mut bytes: Vec<u8> = (0..24).map(|_| next() as u8).collect();
            assert_eq!(get_bits(&bytes, offset, bits), reference_get(&bytes, offset, bits));
            let before = bytes.clone();
            let value = next();
            set_bits(&mut bytes, offset, bits, value);
            let mask = if bits == 64 { u64::MAX } else { (1 << bits) - 1 };
            assert_eq!(get_bits(&bytes, offset, bits), value & mask);
            for pos in (0..offset).chain(offset + bits as u64..24 * 8) {
                assert_eq!(reference_get(&bytes, pos, 1), reference_get(&before, pos, 1), "bit {pos}");
            }
        }
    }

    #[test]
    fn reads_past_the_end_are_zero() {
        assert_eq!(get_bits(&[0xff], 4, 8), 0xf0);
        assert_eq!(get_bits(&[], 1000, 64), 0);
        // Redis's documented example: u5 = 23 at offset 7 gives 00000001 01110000.
        let mut b = [0u8; 2];
        set_bits(&mut b, 7, 5, 23);
        assert_eq!(b, [0b0000_0001, 0b0111_0000]);
    }

    #[test]
    fn overflow_rules() {
        use Overflow::*;
        assert_eq!(unsigned_overflow(250, 10, 8, Wrap), (Some(4), true));
        assert_eq!(unsigned_overflow(250, 10, 8, Sat), (Some(255), true));
        assert_eq!(unsigned_overflow(250, 10, 8, Fail), (None, true));
        assert_eq!(unsigned_overflow(5, -10, 8, Sat), (Some(0), true));
        assert_eq!(unsigned_overflow(5, -10, 8, Wrap), (Some(251), true));
        assert_eq!(unsigned_overflow(-1i64 as u64, 0, 8, Sat), (Some(255), true));
        assert_eq!(unsigned_overflow(5, 250, 8, Wrap), (None, false));
        assert_eq!(signed_overflow(120, 10, 8, Wrap), (Some(-126), true));
        assert_eq!(signed_overflow(120, 10, 8, Sat), (Some(127), true));
        assert_eq!(signed_overflow(-120, -10, 8, Sat), (Some(-128), true));
        assert_eq!(signed_overflow(-200, 0, 8, Sat), (Some(-128), true));
        assert_eq!(signed_overflow(i64::MAX, 1, 64, Wrap), (Some(i64::MIN), true));
        assert_eq!(signed_overflow(i64::MIN, -1, 64, Sat), (Some(i64::MIN), true));
        assert_eq!(signed_overflow(-1, 1, 64, Fail), (None, false));
        // Redis's arithmetic: a value far below a 63-bit field's minimum reads as above.
        assert_eq!(signed_overflow(i64::MIN, 0, 63, Sat), (Some((1 << 62) - 1), true));
    }

    #[test]
    fn types_and_offsets() {
        assert_eq!(parse_type(b"i64").ok(), Some((true, 64)));
        assert_eq!(parse_type(b"u63").ok(), Some((false, 63)));
        for bad in [&b"u64"[..], b"i0", b"i65", b"x8", b"", b"i", b"i08", b"u-1", b"i+8"] {
            assert!(parse_type(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_offset(b"#3", 8, 512 << 20).ok(), Some(24));
        assert_eq!(parse_offset(b"17", 8, 512 << 20).ok(), Some(17));
        assert!(parse_offset(b"-1", 8, 512 << 20).is_err());
        assert!(parse_offset(b"#-1", 8, 512 << 20).is_err());
        assert!(parse_offset(b"4294967296", 8, 512 << 20).is_err());
        // 2^61 + 1 fields of 8 bits wrap to bit 8, as in Redis's 64-bit multiply.
        assert_eq!(parse_offset(b"#2305843009213693953", 8, 512 << 20).ok(), Some(8));
    }
}
