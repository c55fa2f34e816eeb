//! `cmsgpack`: lua-cmsgpack 0.4.0 as Redis 7.0 ships it — `pack(...)` (one value after
//! another), `unpack`, `unpack_one`, `unpack_limit`, and the `_NAME`, `_VERSION`,
//! `_COPYRIGHT`, `_DESCRIPTION` strings.
//!
//! Packing: a number that is an exact 64-bit integer uses the smallest integer format,
//! any other number a float32 when that is exact (infinities included), else a float64;
//! a table whose keys are exactly 1..n is an array, any other a map; tables nested 16
//! deep, and values of other types, are nil. Unpacking takes the formats 0.4.0 knows
//! (no bin/ext types), pushes integers through a signed 64-bit `lua_Integer` (so a
//! uint64 above 2^63 reads negative), and is bounded by Lua's stack rather than a depth.

use super::{check_stack, owned_upvalue, push_owned};
use crate::lua::{push_bytes, State};
use mlua_sys as ffi;
use std::ffi::{c_int, CStr};

const MAX_NESTING: c_int = 16;

/// Sets the `cmsgpack` global.
///
/// # Safety
/// During state setup, in protected mode.
pub unsafe fn open(l: State) {
    ffi::lua_createtable(l, 0, 0);
    // The packer's output buffer, shared by every call (packing runs no Lua code, so
    // calls cannot nest).
    push_owned(l, Vec::<u8>::new);
    let funcs: [(&CStr, ffi::lua_CFunction); 4] =
        [(c"pack", pack), (c"unpack", unpack), (c"unpack_one", unpack_one), (c"unpack_limit", unpack_limit)];
    for (name, f) in funcs {
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushcclosure(l, f, 1);
        ffi::lua_setfield(l, -3, name.as_ptr());
    }
    ffi::lua_pop(l, 1);
    let strings: [(&CStr, &[u8]); 4] = [
        (c"_NAME", b"cmsgpack"),
        (c"_VERSION", b"lua-cmsgpack 0.4.0"),
        (c"_COPYRIGHT", b"Copyright (C) 2012, Salvatore Sanfilippo"),
        (c"_DESCRIPTION", b"MessagePack C implementation for Lua"),
    ];
    for (name, value) in strings {
        push_bytes(l, value);
        ffi::lua_setfield(l, -2, name.as_ptr());
    }
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"cmsgpack".as_ptr());
}

// ---- packing ----

/// A header: the one-byte form when `n <= small_max` (`small | n`), else the 16-bit
/// `w16` form, else the 32-bit `w32` form.
fn put_len(buf: &mut Vec<u8>, n: usize, small: u8, small_max: usize, w16: u8, w32: u8) {
    if n <= small_max {
        buf.push(small | n as u8);
    } else if n <= 0xffff {
        buf.push(w16);
        buf.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        buf.push(w32);
        buf.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn put_bytes(buf: &mut Vec<u8>, s: &[u8]) {
    if s.len() >= 32 && s.len() <= 0xff {
        buf.extend_from_slice(&[0xd9, s.len() as u8]);
    } else {
        put_len(buf, s.len(), 0xa0, 31, 0xda, 0xdb);
    }
    buf.extend_from_slice(s);
}

fn put_int(buf: &mut Vec<u8>, n: i64) {
    match n {
        0..=127 => buf.push(n as u8),
        128..=0xff => buf.extend_from_slice(&[0xcc, n as u8]),
        0x100..=0xffff => {
            buf.push(0xcd);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            buf.push(0xce);
            buf.extend_from_slice(&(n as u32).to_be_bytes());
        }
        0x1_0000_0000.. => {
            buf.push(0xcf);
            buf.extend_from_slice(&n.to_be_bytes());
        }
        -32..=-1 => buf.push(n as u8),
        -128..=-33 => buf.extend_from_slice(&[0xd0, n as u8]),
        -32768..=-129 => {
            buf.push(0xd1);
            buf.extend_from_slice(&(n as i16).to_be_bytes());
        }
        -2_147_483_648..=-32769 => {
            buf.push(0xd2);
            buf.extend_from_slice(&(n as i32).to_be_bytes());
        }
        _ => {
            buf.push(0xd3);
            buf.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn put_number(buf: &mut Vec<u8>, n: f64) {
    // An exact int64 (the C test: the truncated value equals the number).
    if !n.is_infinite() && crate::lua::c_double_to_i64(n) as f64 == n {
        put_int(buf, crate::lua::c_double_to_i64(n));
        return;
    }
    let f = n as f32;
    if f as f64 == n {
        buf.push(0xca);
        buf.extend_from_slice(&f.to_be_bytes());
    } else {
        buf.push(0xcb);
        buf.extend_from_slice(&n.to_be_bytes());
    }
}

/// Whether the table on top has exactly the keys 1..n.
unsafe fn is_array(l: State) -> bool {
    let top = ffi::lua_gettop(l);
    let (mut count, mut max) = (0 as c_int, 0 as c_int);
    check_stack(l, 2, c"in function table_is_an_array");
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        ffi::lua_pop(l, 1);
        let n = ffi::lua_tonumber(l, -1);
        if ffi::lua_type(l, -1) != ffi::LUA_TNUMBER || n <= 0.0 || super::c_double_to_i32(n) as f64 != n {
            ffi::lua_settop(l, top);
            return false;
        }
        max = max.max(n as c_int);
        count += 1;
    }
    ffi::lua_settop(l, top);
    max == count
}

/// Encodes the value on top of the stack into `buf` and pops it.
unsafe fn encode(l: State, buf: *mut Vec<u8>, level: c_int) {
    let mut t = ffi::lua_type(l, -1);
    // Cyclic tables end as nil here.
    if t == ffi::LUA_TTABLE && level == MAX_NESTING {
        t = ffi::LUA_TNIL;
    }
    if t == ffi::LUA_TTABLE {
        crate::sandbox::unproxy_top(l);
    }
    match t {
        ffi::LUA_TSTRING => put_bytes(&mut *buf, crate::lua::to_bytes(l, -1).unwrap_or_default()),
        ffi::LUA_TBOOLEAN => (*buf).push(if ffi::lua_toboolean(l, -1) != 0 { 0xc3 } else { 0xc2 }),
        ffi::LUA_TNUMBER => put_number(&mut *buf, ffi::lua_tonumber(l, -1)),
        ffi::LUA_TTABLE if is_array(l) => {
            let len = ffi::lua_objlen(l, -1);
            put_len(&mut *buf, len, 0x90, 15, 0xdc, 0xdd);
            check_stack(l, 1, c"in function mp_encode_lua_table_as_array");
            for j in 1..=len {
                // Keys 1..len all exist, so a raw read sees what a metamethod-aware
                // read would, without running Lua code.
                ffi::lua_pushnumber(l, j as f64);
                ffi::lua_rawget(l, -2);
                encode(l, buf, level + 1);
            }
        }
        ffi::LUA_TTABLE => {
            check_stack(l, 3, c"in function mp_encode_lua_table_as_map");
            let mut len = 0usize;
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, -2) != 0 {
                ffi::lua_pop(l, 1);
                len += 1;
            }
            put_len(&mut *buf, len, 0x80, 15, 0xde, 0xdf);
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, -2) != 0 {
                ffi::lua_pushvalue(l, -2);
                encode(l, buf, level + 1); // the key
                encode(l, buf, level + 1); // the value
            }
        }
        _ => (*buf).push(0xc0),
    }
    ffi::lua_pop(l, 1);
}

unsafe extern "C-unwind" fn pack(l: State) -> c_int {
    let nargs = ffi::lua_gettop(l);
    if nargs == 0 {
        return ffi::luaL_argerror(l, 0, c"MessagePack pack needs input.".as_ptr());
    }
    if ffi::lua_checkstack(l, nargs) == 0 {
        return ffi::luaL_argerror(l, 0, c"Too many arguments for MessagePack pack.".as_ptr());
    }
    let buf: *mut Vec<u8> = owned_upvalue::<Vec<u8>>(l, 1);
    for i in 1..=nargs {
        (*buf).clear();
        check_stack(l, 1, c"in function mp_check");
        ffi::lua_pushvalue(l, i);
        encode(l, buf, 0);
        ffi::lua_pushlstring(l, (*buf).as_ptr().cast(), (*buf).len());
    }
    (*buf).clear();
    ffi::lua_concat(l, nargs);
    1
}

// ---- unpacking ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Not enough data.
    Eof,
    /// A format byte 0.4.0 does not know.
    BadFormat,
}

/// The read position (plain data: errors `longjmp` over it).
struct Cursor {
    p: *const u8,
    left: usize,
    fault: Fault,
}

impl Cursor {
    /// `n` bytes from the current position, if there are that many.
    fn bytes(&self, n: usize) -> Option<&[u8]> {
        // SAFETY: `p` points at `left` readable bytes of the Lua string.
        (n <= self.left).then(|| unsafe { std::slice::from_raw_parts(self.p, n) })
    }

    fn consume(&mut self, n: usize) {
        // SAFETY: callers consume only what `bytes` showed them.
        self.p = unsafe { self.p.add(n) };
        self.left -= n;
    }

    /// The big-endian integer of `n` bytes after the format byte.
    fn be(&mut self, n: usize) -> Option<u64> {
        let b = self.bytes(1 + n)?;
        let v = b[1..].iter().fold(0u64, |acc, &x| acc << 8 | x as u64);
        self.consume(1 + n);
        Some(v)
    }
}

unsafe fn push_int(l: State, v: i64) {
    ffi::lua_pushinteger(l, v as ffi::lua_Integer);
}

/// Decodes one value onto the stack; on a fault, records it and returns (what was
/// pushed so far is dropped with the error the caller raises).
unsafe fn decode(l: State, c: &mut Cursor) {
    let Some(&[b]) = c.bytes(1) else {
        c.fault = Fault::Eof;
        return;
    };
    check_stack(l, 1, c"too many return values at once; use unpack_one or unpack_limit instead.");
    if decode_scalar(l, c, b).is_none() && c.fault == Fault::None {
        c.fault = Fault::Eof;
    }
}

/// Decodes the value whose format byte is `b`. None when the data ran out.
unsafe fn decode_scalar(l: State, c: &mut Cursor, b: u8) -> Option<()> {
    match b {
        0xcc => push_int(l, c.be(1)? as i64),
        0xd0 => push_int(l, c.be(1)? as u8 as i8 as i64),
        0xcd => push_int(l, c.be(2)? as i64),
        0xd1 => push_int(l, c.be(2)? as u16 as i16 as i64),
        0xce => push_int(l, c.be(4)? as i64),
        0xd2 => push_int(l, c.be(4)? as u32 as i32 as i64),
        0xcf => push_int(l, c.be(8)? as i64),
        0xd3 => ffi::lua_pushnumber(l, c.be(8)? as i64 as f64),
        0xc0 => {
            ffi::lua_pushnil(l);
            c.consume(1);
        }
        0xc2 | 0xc3 => {
            ffi::lua_pushboolean(l, (b == 0xc3) as c_int);
            c.consume(1);
        }
        0xca => ffi::lua_pushnumber(l, f32::from_bits(c.be(4)? as u32) as f64),
        0xcb => ffi::lua_pushnumber(l, f64::from_bits(c.be(8)?)),
        0xd9 => {
            let n = c.bytes(2)?[1] as usize;
            push_raw(l, c, 2, n)?;
        }
        0xda => {
            let n = c.be(2)? as usize;
            push_raw(l, c, 0, n)?;
        }
        0xdb => {
            let n = c.be(4)? as usize;
            push_raw(l, c, 0, n)?;
        }
        0xdc => {
            let n = c.be(2)? as usize;
            decode_array(l, c, n);
        }
        0xdd => {
            let n = c.be(4)? as usize;
            decode_array(l, c, n);
        }
        0xde => {
            let n = c.be(2)? as usize;
            decode_map(l, c, n);
        }
        0xdf => {
            let n = c.be(4)? as usize;
            decode_map(l, c, n);
        }
        0x00..=0x7f => {
            push_int(l, b as i64);
            c.consume(1);
        }
        0xe0..=0xff => {
            push_int(l, b as i8 as i64);
            c.consume(1);
        }
        0xa0..=0xbf => push_raw(l, c, 1, (b & 0x1f) as usize)?,
        0x90..=0x9f => {
            c.consume(1);
            decode_array(l, c, (b & 0xf) as usize);
        }
        0x80..=0x8f => {
            c.consume(1);
            decode_map(l, c, (b & 0xf) as usize);
        }
        _ => c.fault = Fault::BadFormat,
    }
    Some(())
}

/// Pushes the `n` bytes that follow a `head`-byte header (`head` 0: already consumed).
unsafe fn push_raw(l: State, c: &mut Cursor, head: usize, n: usize) -> Option<()> {
    let s = c.bytes(head.checked_add(n)?)?;
    ffi::lua_pushlstring(l, s[head..].as_ptr().cast(), n);
    c.consume(head + n);
    Some(())
}

unsafe fn decode_array(l: State, c: &mut Cursor, n: usize) {
    ffi::lua_createtable(l, 0, 0);
    check_stack(l, 1, c"in function mp_decode_to_lua_array");
    for i in 1..=n {
        ffi::lua_pushnumber(l, i as f64);
        decode(l, c);
        if c.fault != Fault::None {
            return;
        }
        ffi::lua_settable(l, -3);
    }
}

unsafe fn decode_map(l: State, c: &mut Cursor, n: usize) {
    ffi::lua_createtable(l, 0, 0);
    for _ in 0..n {
        decode(l, c);
        if c.fault != Fault::None {
            return;
        }
        decode(l, c);
        if c.fault != Fault::None {
            return;
        }
        // A nil or NaN key raises Lua's own error, as in the original.
        ffi::lua_settable(l, -3);
    }
}

/// Decodes from `offset`, at most `limit` values (all when both are 0, and then no next
/// offset is returned first).
unsafe fn unpack_full(l: State, limit: i64, offset: i64) -> c_int {
    let mut len = 0usize;
    let s = ffi::luaL_checklstring(l, 1, &mut len).cast::<u8>();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // The original prints the input length where it says "limit".
        return ffi::luaL_error(
            l,
            c"Invalid request to unpack with offset of %d and limit of %d.".as_ptr(),
            offset as c_int,
            len as c_int,
        );
    }
    if offset as u64 > len as u64 {
        return ffi::luaL_error(
            l,
            c"Start offset %d greater than input length %d.".as_ptr(),
            offset as c_int,
            len as c_int,
        );
    }
    let limit = if decode_all { c_int::MAX as i64 } else { limit };
    let mut c = Cursor { p: s.add(offset as usize), left: len - offset as usize, fault: Fault::None };
    let mut count: c_int = 0;
    while c.left > 0 && (count as i64) < limit {
        decode(l, &mut c);
        match c.fault {
            Fault::Eof => return ffi::luaL_error(l, c"Missing bytes in input.".as_ptr()),
            Fault::BadFormat => return ffi::luaL_error(l, c"Bad data format in input.".as_ptr()),
            Fault::None => {}
        }
        count += 1;
    }
    if !decode_all {
        check_stack(l, 1, c"in function mp_unpack_full");
        let next = if c.left == 0 { -1 } else { (len - c.left) as ffi::lua_Integer };
        ffi::lua_pushinteger(l, next);
        ffi::lua_insert(l, 2);
        count += 1;
    }
    count
}

unsafe extern "C-unwind" fn unpack(l: State) -> c_int {
    unpack_full(l, 0, 0)
}

unsafe extern "C-unwind" fn unpack_one(l: State) -> c_int {
    let offset = ffi::luaL_optinteger(l, 2, 0) as i64;
    // Drops all but the first argument (none stays none: "got no value").
    if ffi::lua_gettop(l) > 1 {
        ffi::lua_settop(l, 1);
    }
    unpack_full(l, 1, offset)
}

unsafe extern "C-unwind" fn unpack_limit(l: State) -> c_int {
    let limit = ffi::luaL_checkinteger(l, 2) as i64;
    let offset = ffi::luaL_optinteger(l, 3, 0) as i64;
    ffi::lua_settop(l, 1);
    unpack_full(l, limit, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(n: f64) -> Vec<u8> {
        let mut b = Vec::new();
        put_number(&mut b, n);
        b
    }

    #[test]
    fn numbers_pick_the_smallest_format() {
        assert_eq!(packed(5.0), [5]);
        assert_eq!(packed(-1.0), [0xff]);
        assert_eq!(packed(-33.0), [0xd0, 0xdf]);
        assert_eq!(packed(200.0), [0xcc, 200]);
        assert_eq!(packed(65536.0), [0xce, 0, 1, 0, 0]);
        assert_eq!(packed(-0.0), [0]);
        assert_eq!(packed(0.5), [0xca, 0x3f, 0, 0, 0]);
        assert_eq!(packed(0.1)[0], 0xcb);
        assert_eq!(packed(f64::INFINITY), [0xca, 0x7f, 0x80, 0, 0]);
        assert_eq!(packed(f64::NAN)[0], 0xcb);
        // 2^63 is not an int64: a float32 holds it exactly.
        assert_eq!(packed(9_223_372_036_854_775_808.0), [0xca, 0x5f, 0, 0, 0]);
        assert_eq!(packed(-9_223_372_036_854_775_808.0)[0], 0xd3);
    }

    #[test]
    fn string_headers() {
        let mut b = Vec::new();
        put_bytes(&mut b, &[b'x'; 31]);
        assert_eq!(b[0], 0xbf);
        b.clear();
        put_bytes(&mut b, &[b'x'; 32]);
        assert_eq!(&b[..2], [0xd9, 32]);
        b.clear();
        put_bytes(&mut b, &[b'x'; 256]);
        assert_eq!(&b[..3], [0xda, 1, 0]);
    }
}
