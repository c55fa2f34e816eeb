//! The libraries Redis preloads besides Lua's own: `bit` (LuaBitOp), `cjson`, `struct`
//! and `cmsgpack`, plus Redis's `math.random`/`math.randomseed`. Each is written from
//! its documented behaviour (and checked against redis-server's outputs), as C API
//! functions so that argument errors read exactly like the C originals'.
//!
//! Buffers the libraries fill while walking Lua values live in userdata they own (an
//! upvalue of their functions), never in a Rust local: a Lua error raised halfway
//! (`luaL_error`, a failed `luaL_checkstack`, a memory error) unwinds with `longjmp`,
//! which would leak a local `Vec`, while a buffer owned by Lua is simply reused by the
//! next call and freed by the collector with the state.

mod bit;
mod cjson;
mod cjson_decode;
mod cmsgpack;
mod random;
mod structlib;

use crate::lua::State;
use crate::sandbox::RunSlot;
use mlua_sys as ffi;
use std::ffi::{c_int, CStr};

/// A library table built like `luaL_register` builds it (same sizing and insertion
/// order, so `pairs` walks it in Redis's order).
///
/// # Safety
/// During state setup, in protected mode.
unsafe fn register(l: State, name: &CStr, funcs: &[(&CStr, ffi::lua_CFunction)]) {
    ffi::lua_createtable(l, 0, funcs.len() as std::ffi::c_int);
    for (n, f) in funcs {
        ffi::lua_pushcfunction(l, *f);
        ffi::lua_setfield(l, -2, n.as_ptr());
    }
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, name.as_ptr());
}

/// Opens every library into the globals, in Redis's loading order.
///
/// # Safety
/// During state setup, in protected mode.
pub unsafe fn open_all(l: State, slot: *mut RunSlot) {
    cjson::open(l);
    structlib::open(l);
    cmsgpack::open(l);
    register(l, c"bit", bit::FUNCS);
    random::install(l, slot);
}

/// Pushes a full userdata owning `T`, dropped by the collector (`__gc`). Returns it.
///
/// # Safety
/// `l` valid with room for two values. `make` must not call into Lua.
pub(crate) unsafe fn push_owned<T>(l: State, make: impl FnOnce() -> T) -> *mut T {
    // Lua 5.1 aligns userdata blocks for double, pointer and long: 8 bytes.
    const { assert!(std::mem::align_of::<T>() <= 8) };
    // Allocated before the value exists, so a memory error here leaks nothing.
    let p = ffi::lua_newuserdata(l, std::mem::size_of::<T>()).cast::<T>();
    p.write(make());
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushcfunction(l, drop_owned::<T>);
    ffi::lua_setfield(l, -2, c"__gc".as_ptr());
    ffi::lua_setmetatable(l, -2);
    p
}

unsafe extern "C-unwind" fn drop_owned<T>(l: State) -> c_int {
    let p = ffi::lua_touserdata(l, 1).cast::<T>();
    if !p.is_null() {
        p.drop_in_place();
    }
    0
}

/// The userdata made by [`push_owned`] that is upvalue `n` of the running function.
///
/// # Safety
/// The running C function must have been created with such an upvalue of type `T`.
pub(crate) unsafe fn owned_upvalue<'a, T>(l: State, n: c_int) -> &'a mut T {
    &mut *ffi::lua_touserdata(l, ffi::lua_upvalueindex(n)).cast::<T>()
}

/// `luaL_checkstack`: the same check and error, raised with room left for the message.
/// At Lua's stack limit the slots `lua_checkstack` refused are the ones `luaL_where`
/// would push into; the API-checked Lua of debug builds aborts on that, so two values
/// of the abandoned call are dropped first.
///
/// # Safety
/// `l` valid; see the raising rule in [`crate::lua`].
pub(crate) unsafe fn check_stack(l: State, n: c_int, msg: &CStr) {
    if ffi::lua_checkstack(l, n) == 0 {
        make_room(l);
        ffi::luaL_error(l, c"stack overflow (%s)".as_ptr(), msg.as_ptr());
    }
}

/// Drops up to two values from the stack top so an error message can be pushed. Only
/// for a call that is about to raise.
///
/// # Safety
/// `l` valid.
pub(crate) unsafe fn make_room(l: State) {
    let top = ffi::lua_gettop(l);
    ffi::lua_settop(l, (top - 2).max(0));
}

/// C's conversion of a double to `int` as x86-64 performs it (`cvttsd2si`): values out
/// of range, and NaN, become `INT_MIN`.
pub(crate) fn c_double_to_i32(d: f64) -> i32 {
    if d.is_nan() || !(-2_147_483_649.0 < d && d < 2_147_483_648.0) {
        i32::MIN
    } else {
        d as i32
    }
}

/// C's conversion of a double to `unsigned long` as GCC compiles it on x86-64: below
/// 2^63 (or NaN) through the signed conversion, above by subtracting 2^63 first.
pub(crate) fn c_double_to_u64(d: f64) -> u64 {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if d >= TWO63 {
        (crate::lua::c_double_to_i64(d - TWO63) as u64) ^ (1 << 63)
    } else {
        crate::lua::c_double_to_i64(d) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_conversions() {
        assert_eq!(c_double_to_i32(5.9), 5);
        assert_eq!(c_double_to_i32(-5.9), -5);
        assert_eq!(c_double_to_i32(2147483648.0), i32::MIN);
        assert_eq!(c_double_to_i32(-2147483648.5), -2147483648);
        assert_eq!(c_double_to_i32(f64::NAN), i32::MIN);
        assert_eq!(c_double_to_u64(f64::NAN), 1 << 63);
        assert_eq!(c_double_to_u64(f64::INFINITY), 0);
        assert_eq!(c_double_to_u64(18446744073709551616.0), 0);
        assert_eq!(c_double_to_u64(13835058055282163712.0), 0xc000_0000_0000_0000);
        assert_eq!(c_double_to_u64(-1.0), u64::MAX);
    }
}
