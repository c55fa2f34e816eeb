//! `cjson`: Lua CJSON 2.1.0 as Redis 7.0 ships it — `encode`, `decode`, the settings
//! functions, `new` (an independent copy with its own settings), `null`, `_NAME` and
//! `_VERSION`.
//!
//! Encoding: numbers as `%.14g` (settable precision 1..14), NaN/Inf refused unless
//! allowed, every control byte, `"`, `\`, `/` and DEL escaped, a table is an array when
//! all its keys are positive integers and it is not excessively sparse (more than twice
//! as many slots as items past index 10 is an error by default), otherwise an object,
//! whose number keys are written as strings; an empty table is `{}`. Nesting is limited
//! (1000 by default, and by Lua's stack). Decoding is in [`super::cjson_decode`].
//!
//! The settings live in a userdata shared by the module's functions (an upvalue), so
//! they persist between scripts until SCRIPT FLUSH, as on Redis.

use super::{owned_upvalue, push_owned};
use crate::lua::{push_bytes, State};
use mlua_sys as ffi;
use std::ffi::{c_char, c_int, CStr};

/// One module's settings and buffers.
pub(super) struct Config {
    sparse_convert: c_int,
    sparse_ratio: c_int,
    sparse_safe: c_int,
    encode_max_depth: c_int,
    pub(super) decode_max_depth: c_int,
    /// 0 refuse, 1 allow (`nan`, `inf`), 2 write `null`.
    encode_invalid_numbers: c_int,
    pub(super) decode_invalid_numbers: c_int,
    encode_keep_buffer: c_int,
    precision: c_int,
    /// The encoder's output.
    buf: Vec<u8>,
    /// The decoder's current string.
    pub(super) tmp: Vec<u8>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            sparse_convert: 0,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: 1,
            encode_keep_buffer: 1,
            precision: 14,
            buf: Vec::new(),
            tmp: Vec::new(),
        }
    }
}

const FUNCS: &[(&CStr, ffi::lua_CFunction)] = &[
    (c"encode", encode),
    (c"decode", super::cjson_decode::decode),
    (c"encode_sparse_array", encode_sparse_array),
    (c"encode_max_depth", encode_max_depth),
    (c"decode_max_depth", decode_max_depth),
    (c"encode_number_precision", encode_number_precision),
    (c"encode_keep_buffer", encode_keep_buffer),
    (c"encode_invalid_numbers", encode_invalid_numbers),
    (c"decode_invalid_numbers", decode_invalid_numbers),
    (c"new", new),
];

/// Sets the `cjson` global.
///
/// # Safety
/// During state setup, in protected mode.
pub unsafe fn open(l: State) {
    push_module(l);
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"cjson".as_ptr());
}

/// Pushes a new module table with fresh settings.
unsafe fn push_module(l: State) {
    ffi::lua_createtable(l, 0, 0);
    push_owned(l, Config::default);
    for (name, f) in FUNCS {
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushcclosure(l, *f, 1);
        ffi::lua_setfield(l, -3, name.as_ptr());
    }
    ffi::lua_pop(l, 1);
    ffi::lua_pushlightuserdata(l, std::ptr::null_mut());
    ffi::lua_setfield(l, -2, c"null".as_ptr());
    push_bytes(l, b"cjson");
    ffi::lua_setfield(l, -2, c"_NAME".as_ptr());
    push_bytes(l, b"2.1.0");
    ffi::lua_setfield(l, -2, c"_VERSION".as_ptr());
}

unsafe extern "C-unwind" fn new(l: State) -> c_int {
    push_module(l);
    1
}

pub(super) unsafe fn config<'a>(l: State) -> &'a mut Config {
    owned_upvalue::<Config>(l, 1)
}

/// At most `n` arguments (else an argument error on the first extra one), padded with
/// nils to `n`.
unsafe fn arg_init<'a>(l: State, n: c_int) -> &'a mut Config {
    if ffi::lua_gettop(l) > n {
        ffi::luaL_argerror(l, n + 1, c"found too many arguments".as_ptr());
    }
    while ffi::lua_gettop(l) < n {
        ffi::lua_pushnil(l);
    }
    config(l)
}

/// An integer setting: set from argument `idx` unless nil (within `min..=max`), then
/// pushed. The range error names argument 1 whatever `idx` is, as the original does.
unsafe fn integer_option(l: State, idx: c_int, setting: &mut c_int, min: c_int, max: c_int) {
    if ffi::lua_isnil(l, idx) == 0 {
        let value = ffi::luaL_checkinteger(l, idx) as c_int;
        if !(min <= value && value <= max) {
            ffi::lua_pushfstring(l, c"expected integer between %d and %d".as_ptr(), min, max);
            crate::lua::arg_error_top(l, 1);
        }
        *setting = value;
    }
    ffi::lua_pushinteger(l, *setting as ffi::lua_Integer);
}

const ON_OFF: [*const c_char; 3] = [c"off".as_ptr(), c"on".as_ptr(), std::ptr::null()];
const OFF_ON_NULL: [*const c_char; 4] = [c"off".as_ptr(), c"on".as_ptr(), c"null".as_ptr(), std::ptr::null()];

/// An enumerated setting given as a boolean or one of `options`; pushed back as a
/// boolean when it is off/on, else as its name.
unsafe fn enum_option(l: State, idx: c_int, setting: &mut c_int, options: &[*const c_char]) {
    if ffi::lua_isnil(l, idx) == 0 {
        *setting = if ffi::lua_type(l, idx) == ffi::LUA_TBOOLEAN {
            ffi::lua_toboolean(l, idx)
        } else {
            ffi::luaL_checkoption(l, idx, std::ptr::null(), options.as_ptr())
        };
    }
    if *setting == 0 || *setting == 1 {
        ffi::lua_pushboolean(l, *setting);
    } else {
        ffi::lua_pushstring(l, options[*setting as usize]);
    }
}

unsafe extern "C-unwind" fn encode_sparse_array(l: State) -> c_int {
    let cfg = arg_init(l, 3);
    enum_option(l, 1, &mut cfg.sparse_convert, &ON_OFF);
    integer_option(l, 2, &mut cfg.sparse_ratio, 0, c_int::MAX);
    integer_option(l, 3, &mut cfg.sparse_safe, 0, c_int::MAX);
    3
}

unsafe extern "C-unwind" fn encode_max_depth(l: State) -> c_int {
    let cfg = arg_init(l, 1);
    integer_option(l, 1, &mut cfg.encode_max_depth, 1, c_int::MAX);
    1
}

unsafe extern "C-unwind" fn decode_max_depth(l: State) -> c_int {
    let cfg = arg_init(l, 1);
    integer_option(l, 1, &mut cfg.decode_max_depth, 1, c_int::MAX);
    1
}

unsafe extern "C-unwind" fn encode_number_precision(l: State) -> c_int {
    let cfg = arg_init(l, 1);
    integer_option(l, 1, &mut cfg.precision, 1, 14);
    1
}

unsafe extern "C-unwind" fn encode_keep_buffer(l: State) -> c_int {
    let cfg = arg_init(l, 1);
    enum_option(l, 1, &mut cfg.encode_keep_buffer, &ON_OFF);
    if cfg.encode_keep_buffer == 0 {
        cfg.buf = Vec::new();
    }
    1
}

unsafe extern "C-unwind" fn encode_invalid_numbers(l: State) -> c_int {
    let cfg = arg_init(l, 1);
    enum_option(l, 1, &mut cfg.encode_invalid_numbers, &OFF_ON_NULL);
    1
}

unsafe extern "C-unwind" fn decode_invalid_numbers(l: State) -> c_int {
    let cfg = arg_init(l, 1);
    enum_option(l, 1, &mut cfg.decode_invalid_numbers, &ON_OFF);
    1
}

// ---- encoding ----

unsafe extern "C-unwind" fn encode(l: State) -> c_int {
    let cfg: *mut Config = config(l);
    if ffi::lua_gettop(l) != 1 {
        ffi::luaL_argerror(l, 1, c"expected 1 argument".as_ptr());
    }
    // An encode that failed half-way left its output behind.
    release_if_large(&mut (*cfg).buf);
    (*cfg).buf.clear();
    append_value(l, cfg, 0);
    let out = &mut (*cfg).buf;
    ffi::lua_pushlstring(l, out.as_ptr().cast(), out.len());
    if (*cfg).encode_keep_buffer == 0 {
        *out = Vec::new();
    } else {
        release_if_large(out);
    }
    1
}

/// The most a scratch buffer keeps between calls: one huge document must not hold its
/// size in the server for good (it is not Lua memory, so no GC would see it).
const SCRATCH_KEPT: usize = 64 * 1024;

pub(super) fn release_if_large(buf: &mut Vec<u8>) {
    if buf.capacity() > SCRATCH_KEPT {
        *buf = Vec::new();
    }
}

/// `Cannot serialise <type of the value at idx>: <reason>`.
unsafe fn exception(l: State, idx: c_int, reason: &CStr) -> ! {
    let tname = ffi::lua_typename(l, ffi::lua_type(l, idx));
    ffi::luaL_error(l, c"Cannot serialise %s: %s".as_ptr(), tname, reason.as_ptr());
    unreachable!("luaL_error raises")
}

/// Appends the value on top of the stack (left there).
unsafe fn append_value(l: State, cfg: *mut Config, depth: c_int) {
    match ffi::lua_type(l, -1) {
        ffi::LUA_TSTRING => append_string(l, &mut (*cfg).buf, -1),
        ffi::LUA_TNUMBER => append_number(l, cfg, -1),
        ffi::LUA_TBOOLEAN => {
            let b: &[u8] = if ffi::lua_toboolean(l, -1) != 0 { b"true" } else { b"false" };
            (*cfg).buf.extend_from_slice(b);
        }
        ffi::LUA_TTABLE => {
            let depth = depth + 1;
            // Room for a key, a value and an error message at every level.
            if depth > (*cfg).encode_max_depth || ffi::lua_checkstack(l, 3) == 0 {
                super::make_room(l);
                ffi::luaL_error(l, c"Cannot serialise, excessive nesting (%d)".as_ptr(), depth);
            }
            crate::sandbox::unproxy_top(l);
            let len = array_length(l, cfg);
            if len > 0 {
                append_array(l, cfg, depth, len);
            } else {
                append_object(l, cfg, depth);
            }
        }
        ffi::LUA_TNIL => (*cfg).buf.extend_from_slice(b"null"),
        ffi::LUA_TLIGHTUSERDATA if ffi::lua_touserdata(l, -1).is_null() => (*cfg).buf.extend_from_slice(b"null"),
        _ => exception(l, -1, c"type not supported"),
    }
}

/// The JSON escape of each byte, where one is needed.
fn escape(b: u8) -> Option<&'static [u8]> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    static CONTROL: [[u8; 6]; 32] = {
        let mut t = [[0u8; 6]; 32];
        let mut i = 0;
        while i < 32 {
            t[i] = [b'\\', b'u', b'0', b'0', HEX[i >> 4], HEX[i & 15]];
            i += 1;
        }
        t
    };
    Some(match b {
        0x08 => b"\\b",
        b'\t' => b"\\t",
        b'\n' => b"\\n",
        0x0c => b"\\f",
        b'\r' => b"\\r",
        0..=0x1f => &CONTROL[b as usize],
        b'"' => b"\\\"",
        b'/' => b"\\/",
        b'\\' => b"\\\\",
        0x7f => b"\\u007f",
        _ => return None,
    })
}

unsafe fn append_string(l: State, buf: &mut Vec<u8>, idx: c_int) {
    let s = crate::lua::to_bytes(l, idx).unwrap_or_default();
    buf.reserve(s.len() + 2);
    buf.push(b'"');
    for &b in s {
        match escape(b) {
            Some(e) => buf.extend_from_slice(e),
            None => buf.push(b),
        }
    }
    buf.push(b'"');
}

unsafe fn append_number(l: State, cfg: *mut Config, idx: c_int) {
    let n = ffi::lua_tonumber(l, idx);
    let cfg = &mut *cfg;
    if !n.is_finite() {
        match cfg.encode_invalid_numbers {
            0 => exception(l, idx, c"must not be NaN or Inf"),
            1 if n.is_nan() => return cfg.buf.extend_from_slice(b"nan"),
            1 => {}
            _ => return cfg.buf.extend_from_slice(b"null"),
        }
    }
    // The formatted text is dropped before anything can raise.
    let text = ferrokv_resp::num::fmt_g(n, cfg.precision as usize);
    cfg.buf.extend_from_slice(text.as_bytes());
}

/// The array length of the table on top, or -1 when it must be an object (a key that
/// is not a positive integer, or too sparse with conversion allowed). A too sparse
/// array without conversion is an error.
unsafe fn array_length(l: State, cfg: *mut Config) -> c_int {
    let (mut max, mut items) = (0 as c_int, 0 as c_int);
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        let k = if ffi::lua_type(l, -2) == ffi::LUA_TNUMBER { ffi::lua_tonumber(l, -2) } else { 0.0 };
        if k != 0.0 && k.floor() == k && k >= 1.0 {
            // The original keeps the maximum in an int: huge keys wrap it negative.
            if k > max as f64 {
                max = super::c_double_to_i32(k);
            }
            items += 1;
            ffi::lua_pop(l, 1);
            continue;
        }
        ffi::lua_pop(l, 2);
        return -1;
    }
    let cfg = &*cfg;
    if cfg.sparse_ratio > 0 && max > items.wrapping_mul(cfg.sparse_ratio) && max > cfg.sparse_safe {
        if cfg.sparse_convert == 0 {
            exception(l, -1, c"excessively sparse array");
        }
        return -1;
    }
    max
}

unsafe fn append_array(l: State, cfg: *mut Config, depth: c_int, len: c_int) {
    (*cfg).buf.push(b'[');
    for i in 1..=len {
        if i > 1 {
            (*cfg).buf.push(b',');
        }
        ffi::lua_rawgeti_(l, -1, i);
        append_value(l, cfg, depth);
        ffi::lua_pop(l, 1);
    }
    (*cfg).buf.push(b']');
}

unsafe fn append_object(l: State, cfg: *mut Config, depth: c_int) {
    (*cfg).buf.push(b'{');
    let mut first = true;
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, -2) != 0 {
        if !first {
            (*cfg).buf.push(b',');
        }
        first = false;
        match ffi::lua_type(l, -2) {
            ffi::LUA_TNUMBER => {
                (*cfg).buf.push(b'"');
                append_number(l, cfg, -2);
                (*cfg).buf.extend_from_slice(b"\":");
            }
            ffi::LUA_TSTRING => {
                append_string(l, &mut (*cfg).buf, -2);
                (*cfg).buf.push(b':');
            }
            _ => exception(l, -2, c"table key must be a number or string"),
        }
        append_value(l, cfg, depth);
        ffi::lua_pop(l, 1);
    }
    (*cfg).buf.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes() {
        assert_eq!(escape(0), Some(&b"\\u0000"[..]));
        assert_eq!(escape(0x1f), Some(&b"\\u001f"[..]));
        assert_eq!(escape(b'\n'), Some(&b"\\n"[..]));
        assert_eq!(escape(b'/'), Some(&b"\\/"[..]));
        assert_eq!(escape(0x7f), Some(&b"\\u007f"[..]));
        assert_eq!(escape(b'a'), None);
        assert_eq!(escape(0xc3), None);
    }
}
