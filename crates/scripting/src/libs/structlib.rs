//! `struct`: Roberto Ierusalimschy's struct library as Redis 7.0 ships it (with Redis's
//! overflow checks) — `pack`, `unpack` and `size` over a format of
//! `>` `<` (endianness, little by default), `!n` (alignment), `x` (a zero byte),
//! `b/B h/H l/L T` (1, 2, 8, 8-byte integers), `i/In` (n-byte integers, n <= 32),
//! `f` `d`, `cn` (n chars; `c0`: the whole string when packing, the previously read
//! number as length when unpacking), `s` (zero-terminated) and spaces. The format ends
//! at its first NUL, as a C string does. Integers are read and written through 64 bits
//! with the C conversions of the original on x86-64.

use super::{owned_upvalue, push_owned};
use crate::lua::State;
use mlua_sys as ffi;
use std::ffi::{c_int, CStr};

const MAX_INT_SIZE: c_int = 32;
/// The alignment of a double in a struct: what `!` alone means.
const MAX_ALIGN: c_int = 8;

/// Sets the `struct` global.
///
/// # Safety
/// During state setup, in protected mode.
pub unsafe fn open(l: State) {
    let funcs: [(&CStr, ffi::lua_CFunction); 3] = [(c"pack", pack), (c"unpack", unpack), (c"size", size)];
    ffi::lua_createtable(l, 0, funcs.len() as c_int);
    // pack's output buffer (packing runs no Lua code, so calls cannot nest).
    push_owned(l, Vec::<u8>::new);
    for (name, f) in funcs {
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushcclosure(l, f, 1);
        ffi::lua_setfield(l, -3, name.as_ptr());
    }
    ffi::lua_pop(l, 1);
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"struct".as_ptr());
}

struct Header {
    little: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Header {
        // x86-64 is little-endian.
        Header { little: true, align: 1 }
    }
}

/// The format string (argument 1) up to its first NUL, and a read position.
struct Format<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Format<'_> {
    unsafe fn from_arg<'a>(l: State) -> Format<'a> {
        let mut len = 0usize;
        let p = ffi::luaL_checklstring(l, 1, &mut len).cast::<u8>();
        let s = std::slice::from_raw_parts(p, len);
        let end = s.iter().position(|&b| b == 0).unwrap_or(len);
        Format { s: &s[..end], pos: 0 }
    }

    fn next(&mut self) -> Option<u8> {
        let b = *self.s.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// The number following an option, or `default`.
    unsafe fn number(&mut self, l: State, default: c_int) -> c_int {
        let mut a: c_int = 0;
        let mut any = false;
        while let Some(&d) = self.s.get(self.pos).filter(|d| d.is_ascii_digit()) {
            let d = (d - b'0') as c_int;
            if a > c_int::MAX / 10 || a * 10 > c_int::MAX - d {
                ffi::luaL_error(l, c"integral size overflow".as_ptr());
            }
            a = a * 10 + d;
            self.pos += 1;
            any = true;
        }
        if any {
            a
        } else {
            default
        }
    }

    /// The size of option `opt` (reading its number if it takes one).
    unsafe fn size(&mut self, l: State, opt: u8) -> usize {
        match opt {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'x' => 1,
            b'c' => self.number(l, 1) as usize,
            b'i' | b'I' => {
                let n = self.number(l, 4);
                if n > MAX_INT_SIZE {
                    ffi::luaL_error(l, c"integral size %d is larger than limit of %d".as_ptr(), n, MAX_INT_SIZE);
                }
                n as usize
            }
            _ => 0,
        }
    }

    /// Endianness, alignment and spaces; anything else is an invalid option.
    unsafe fn control(&mut self, l: State, opt: u8, h: &mut Header) {
        match opt {
            b' ' => {}
            b'>' => h.little = false,
            b'<' => h.little = true,
            b'!' => {
                let a = self.number(l, MAX_ALIGN);
                if a <= 0 || a & (a - 1) != 0 {
                    ffi::luaL_error(l, c"alignment %d is not a power of 2".as_ptr(), a);
                }
                h.align = a as usize;
            }
            _ => {
                // The option is a C `char`: signed, as %c then prints it.
                ffi::lua_pushfstring(l, c"invalid format option '%c'".as_ptr(), opt as i8 as c_int);
                crate::lua::arg_error_top(l, 1);
            }
        }
    }
}

/// Padding needed before an item of `size` bytes at offset `len`.
fn to_align(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size.wrapping_sub(len & size.wrapping_sub(1))) & size.wrapping_sub(1)
}

fn is_integer_option(opt: u8) -> bool {
    matches!(opt, b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I')
}

/// Appends `bytes` (little-endian) in the header's order.
fn put_ordered(buf: &mut Vec<u8>, bytes: &[u8], little: bool) {
    if little {
        buf.extend_from_slice(bytes);
    } else {
        buf.extend(bytes.iter().rev());
    }
}

unsafe extern "C-unwind" fn pack(l: State) -> c_int {
    let mut fmt = Format::from_arg(l);
    // The original marks the end of its arguments with a nil (a missing first value
    // then reads "got nil").
    ffi::lua_pushnil(l);
    let buf: *mut Vec<u8> = owned_upvalue::<Vec<u8>>(l, 1);
    (*buf).clear();
    let mut h = Header::default();
    let mut arg: c_int = 2;
    let mut total = 0usize;
    while let Some(opt) = fmt.next() {
        let mut size = fmt.size(l, opt);
        let pad = to_align(total, &h, opt, size);
        total = total.wrapping_add(pad);
        (*buf).resize((*buf).len() + pad, 0);
        match opt {
            _ if is_integer_option(opt) => {
                let n = ffi::luaL_checknumber(l, arg);
                arg += 1;
                let mut value = if n < 0.0 { crate::lua::c_double_to_i64(n) as u64 } else { super::c_double_to_u64(n) };
                let mut bytes = [0u8; MAX_INT_SIZE as usize];
                for b in bytes.iter_mut().take(size) {
                    *b = value as u8;
                    value = value.checked_shr(8).unwrap_or(0);
                }
                put_ordered(&mut *buf, &bytes[..size], h.little);
            }
            b'x' => (*buf).push(0),
            b'f' => {
                let f = ffi::luaL_checknumber(l, arg) as f32;
                arg += 1;
                put_ordered(&mut *buf, &f.to_le_bytes(), h.little);
            }
            b'd' => {
                let d = ffi::luaL_checknumber(l, arg);
                arg += 1;
                put_ordered(&mut *buf, &d.to_le_bytes(), h.little);
            }
            b'c' | b's' => {
                let mut len = 0usize;
                let s = ffi::luaL_checklstring(l, arg, &mut len).cast::<u8>();
                arg += 1;
                if size == 0 {
                    size = len;
                }
                if len < size {
                    // The original names the argument after the string.
                    ffi::luaL_argerror(l, arg, c"string too short".as_ptr());
                }
                (*buf).extend_from_slice(std::slice::from_raw_parts(s, size));
                if opt == b's' {
                    (*buf).push(0);
                    size += 1;
                }
            }
            _ => fmt.control(l, opt, &mut h),
        }
        total = total.wrapping_add(size);
    }
    ffi::lua_pushlstring(l, (*buf).as_ptr().cast(), (*buf).len());
    1
}

/// The integer of `size` bytes at `b`, through an unsigned 64-bit accumulator (bytes
/// past 8 shift out), sign-extended from its top bit when `signed`.
fn get_integer(b: &[u8], little: bool, signed: bool) -> f64 {
    let size = b.len();
    let mut v = 0u64;
    for i in 0..size {
        let byte = if little { b[size - 1 - i] } else { b[i] };
        v = v << 8 | byte as u64;
    }
    if !signed {
        return v as f64;
    }
    // x86 masks the shift count: size 0 and sizes past 8 shift by 63.
    let mask = u64::MAX.wrapping_shl((size as u32).wrapping_mul(8).wrapping_sub(1));
    if v & mask != 0 {
        v |= mask;
    }
    v as i64 as f64
}

unsafe extern "C-unwind" fn unpack(l: State) -> c_int {
    let mut fmt = Format::from_arg(l);
    let mut ld = 0usize;
    let data = ffi::luaL_checklstring(l, 2, &mut ld).cast::<u8>();
    let data = std::slice::from_raw_parts(data, ld);
    // A size_t: a negative offset wraps and then fails the length check.
    let mut pos = ffi::luaL_optinteger(l, 3, 1) as usize;
    if pos == 0 {
        ffi::luaL_argerror(l, 3, c"offset must be 1 or greater".as_ptr());
    }
    pos -= 1;
    let mut n: c_int = 0;
    let mut h = Header::default();
    let fits = |pos: usize, size: usize| size <= ld && pos <= ld - size;
    while let Some(opt) = fmt.next() {
        let mut size = fmt.size(l, opt);
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if !fits(pos, size) {
            ffi::luaL_argerror(l, 2, c"data string too short".as_ptr());
        }
        super::check_stack(l, 2, c"too many results");
        match opt {
            _ if is_integer_option(opt) => {
                ffi::lua_pushnumber(l, get_integer(&data[pos..pos + size], h.little, opt.is_ascii_lowercase()));
                n += 1;
            }
            b'x' => {}
            b'f' | b'd' => {
                let mut b = [0u8; 8];
                b[..size].copy_from_slice(&data[pos..pos + size]);
                if !h.little {
                    b[..size].reverse();
                }
                let v = if opt == b'f' {
                    f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64
                } else {
                    f64::from_le_bytes(b)
                };
                ffi::lua_pushnumber(l, v);
                n += 1;
            }
            b'c' => {
                if size == 0 {
                    if n == 0 || ffi::lua_isnumber(l, -1) == 0 {
                        ffi::luaL_error(l, c"format 'c0' needs a previous size".as_ptr());
                    }
                    size = super::c_double_to_u64(ffi::lua_tonumber(l, -1)) as usize;
                    ffi::lua_pop(l, 1);
                    n -= 1;
                    if !fits(pos, size) {
                        ffi::luaL_argerror(l, 2, c"data string too short".as_ptr());
                    }
                }
                ffi::lua_pushlstring(l, data[pos..].as_ptr().cast(), size);
                n += 1;
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                    ffi::luaL_error(l, c"unfinished string in data".as_ptr());
                    unreachable!("luaL_error raises");
                };
                size = end + 1;
                ffi::lua_pushlstring(l, data[pos..].as_ptr().cast(), end);
                n += 1;
            }
            _ => fmt.control(l, opt, &mut h),
        }
        pos = pos.wrapping_add(size);
    }
    ffi::lua_pushinteger(l, pos.wrapping_add(1) as ffi::lua_Integer);
    n + 1
}

unsafe extern "C-unwind" fn size(l: State) -> c_int {
    let mut fmt = Format::from_arg(l);
    let mut h = Header::default();
    let mut pos = 0usize;
    while let Some(opt) = fmt.next() {
        let size = fmt.size(l, opt);
        pos = pos.wrapping_add(to_align(pos, &h, opt, size));
        if opt == b's' {
            ffi::luaL_argerror(l, 1, c"option 's' has no fixed size".as_ptr());
        } else if opt == b'c' && size == 0 {
            ffi::luaL_argerror(l, 1, c"option 'c0' has no fixed size".as_ptr());
        }
        // Letters and digits are skipped silently here, even unknown ones.
        if !opt.is_ascii_alphanumeric() {
            fmt.control(l, opt, &mut h);
        }
        pos = pos.wrapping_add(size);
    }
    ffi::lua_pushinteger(l, pos as ffi::lua_Integer);
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_read_like_the_original() {
        assert_eq!(get_integer(&[0xff, 0xfe], false, true), -2.0);
        assert_eq!(get_integer(&[0xfe, 0xff], true, true), -2.0);
        assert_eq!(get_integer(&[0xff, 0xfe], false, false), 65534.0);
        assert_eq!(get_integer(&[], true, true), 0.0);
        assert_eq!(get_integer(&[0xff; 16], false, true), -1.0);
        assert_eq!(get_integer(&[0x80, 0, 0], false, true), -8388608.0);
    }

    #[test]
    fn alignment() {
        let h = Header { little: true, align: 4 };
        assert_eq!(to_align(1, &h, b'i', 4), 3);
        assert_eq!(to_align(1, &h, b'd', 8), 3);
        assert_eq!(to_align(1, &h, b'c', 4), 0);
        assert_eq!(to_align(5, &Header::default(), b'i', 4), 0);
    }
}
