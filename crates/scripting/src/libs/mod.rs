//! The libraries Redis preloads besides Lua's own: `bit` (LuaBitOp), `cjson`, `struct`
//! and `cmsgpack`, plus Redis's `math.random`/`math.randomseed`. Each is written from
//! its documented behaviour (and checked against redis-server's outputs), as C API
//! functions so that argument errors read exactly like the C originals'.

mod bit;
mod random;

use crate::lua::State;
use crate::sandbox::RunSlot;
use mlua_sys as ffi;
use std::ffi::CStr;

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

/// Opens every library into the globals.
///
/// # Safety
/// During state setup, in protected mode.
pub unsafe fn open_all(l: State, slot: *mut RunSlot) {
    register(l, c"bit", bit::FUNCS);
    random::install(l, slot);
}
