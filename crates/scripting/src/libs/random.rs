//! Redis's `math.random` and `math.randomseed`: Lua's own algorithm over the `lrand48`
//! generator (see [`crate::rand48`]), so every platform draws the same numbers.

use crate::lua::{raise_where, State};
use crate::sandbox::{push_closure, slot_upvalue, RunSlot};
use mlua_sys as ffi;
use std::ffi::c_int;

/// Replaces `math.random` and `math.randomseed`.
///
/// # Safety
/// During state setup, in protected mode.
pub unsafe fn install(l: State, slot: *mut RunSlot) {
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"math".as_ptr());
    push_closure(l, slot, random, 0);
    ffi::lua_setfield(l, -2, c"random".as_ptr());
    push_closure(l, slot, randomseed, 0);
    ffi::lua_setfield(l, -2, c"randomseed".as_ptr());
    ffi::lua_pop(l, 1);
}

const LRAND48_MAX: i32 = i32::MAX;

unsafe fn int_arg(l: State, n: c_int) -> i32 {
    ffi::luaL_checkinteger(l, n) as i32
}

unsafe extern "C-unwind" fn random(l: State) -> c_int {
    let slot = &mut *slot_upvalue(l);
    if slot.handler.is_none() {
        raise_where(l, "math.random can only be called inside a script invocation");
    }
    let r = (slot.rand.next() % LRAND48_MAX) as f64 / LRAND48_MAX as f64;
    match ffi::lua_gettop(l) {
        0 => ffi::lua_pushnumber(l, r),
        1 => {
            let u = int_arg(l, 1);
            if u < 1 {
                ffi::luaL_argerror(l, 1, c"interval is empty".as_ptr());
            }
            ffi::lua_pushnumber(l, (r * u as f64).floor() + 1.0);
        }
        2 => {
            let lo = int_arg(l, 1);
            let u = int_arg(l, 2);
            if lo > u {
                ffi::luaL_argerror(l, 2, c"interval is empty".as_ptr());
            }
            let span = u.wrapping_sub(lo).wrapping_add(1);
            ffi::lua_pushnumber(l, (r * span as f64).floor() + lo as f64);
        }
        _ => raise_where(l, "wrong number of arguments"),
    }
    1
}

unsafe extern "C-unwind" fn randomseed(l: State) -> c_int {
    let slot = &mut *slot_upvalue(l);
    if slot.handler.is_none() {
        raise_where(l, "math.randomseed can only be called inside a script invocation");
    }
    slot.rand.seed(int_arg(l, 1));
    0
}
