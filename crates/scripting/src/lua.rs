//! Small helpers over the Lua 5.1 C API (`mlua_sys`).
//!
//! Why the raw C API rather than a safe wrapper: Redis's observable behaviour is C API
//! behaviour. Error messages carry the position `luaL_where` finds (the *caller* of a C
//! function), argument errors name the function as the call site spelled it, error
//! objects are tables raised with `lua_error`, and a count hook decides when a script
//! is interrupted. Library functions written as `lua_CFunction`s here therefore produce
//! byte-identical errors to Redis's C libraries.
//!
//! The rule every C function in this crate keeps: a Lua call that may raise an error
//! (`luaL_error`, `luaL_argerror`, `lua_error`, `luaL_check*`) runs only while no Rust
//! value that owns memory is alive in the function's frame (errors unwind with
//! `longjmp`, which skips destructors). Work that needs owned buffers is done in a
//! helper that returns, and the error is raised after its values are dropped.

use mlua_sys as ffi;
use std::ffi::c_int;

pub type State = *mut ffi::lua_State;

/// Pushes a byte string.
///
/// # Safety
/// `l` must be a valid state with room for one more value.
pub unsafe fn push_bytes(l: State, b: &[u8]) {
    ffi::lua_pushlstring(l, b.as_ptr().cast(), b.len());
}

/// The bytes of the string (or number, converted in place) at `idx`, if it is one.
///
/// # Safety
/// `l` must be valid; the slice lives as long as the value stays on the stack.
pub unsafe fn to_bytes<'a>(l: State, idx: c_int) -> Option<&'a [u8]> {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        None
    } else {
        Some(std::slice::from_raw_parts(p.cast::<u8>(), len))
    }
}

/// Sets `t[key] = <top of stack>` without metamethods (pops the value).
///
/// # Safety
/// The table must be at `t` (an absolute index) and a value on top.
pub unsafe fn rawset_str(l: State, t: c_int, key: &str) {
    push_bytes(l, key.as_bytes());
    ffi::lua_insert(l, -2);
    ffi::lua_rawset(l, t);
}

/// Pushes `t[key]` without metamethods.
///
/// # Safety
/// The table must be at `t` (an absolute or negative index not disturbed by the push).
pub unsafe fn rawget_str(l: State, t: c_int, key: &str) -> c_int {
    let t = ffi::lua_absindex(l, t);
    push_bytes(l, key.as_bytes());
    ffi::lua_rawget(l, t);
    ffi::lua_type(l, -1)
}

/// Raises `msg` as a plain string error, without a position (what `luaG_runerror`
/// produces inside a C function).
///
/// # Safety
/// See the module rule: no owned Rust values may be alive in the calling frame.
pub unsafe fn raise_plain(l: State, msg: &'static str) -> ! {
    push_bytes(l, msg.as_bytes());
    ffi::lua_error(l)
}

/// Raises `msg` prefixed with the position of the calling Lua code (`luaL_error`).
///
/// # Safety
/// See the module rule.
pub unsafe fn raise_where(l: State, msg: &'static str) -> ! {
    ffi::luaL_where(l, 1);
    push_bytes(l, msg.as_bytes());
    ffi::lua_concat(l, 2);
    ffi::lua_error(l)
}

/// Raises the error value on top of the stack.
///
/// # Safety
/// See the module rule.
pub unsafe fn raise_top(l: State) -> ! {
    ffi::lua_error(l)
}

/// `luaL_argerror` with a message that is already on the stack top (so no Rust string
/// needs to outlive the call).
///
/// # Safety
/// See the module rule.
pub unsafe fn arg_error_top(l: State, narg: c_int) -> ! {
    let msg = ffi::lua_tostring(l, -1);
    ffi::luaL_argerror(l, narg, msg);
    unreachable!("luaL_argerror raises")
}

/// C's `(long long)` cast of a double as x86-64 performs it: values that do not fit
/// (and NaN) become `LLONG_MIN`. Redis converts Lua numbers to integer replies this way.
pub fn c_double_to_i64(d: f64) -> i64 {
    if d.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// C's `(int)` of a `lua_Integer` as `luaL_checkint` yields it: the double is converted
/// to 64 bits (x86-64 semantics), then truncated to 32.
pub fn c_double_to_int(d: f64) -> i32 {
    c_double_to_i64(d) as i32
}
