//! A `pcall` through which a long script can still hand control back.
//!
//! A run yields from its count hook (see [`crate::coroutine`]), but Lua 5.1 cannot yield
//! across the C call of its own `pcall`: a script looping inside `pcall(function() …
//! end)` would keep the server to itself, deaf to SCRIPT KILL. So, in yielding runs, the
//! global `pcall` runs the protected function in a coroutine of its own (a *transparent*
//! coroutine) and is itself Lua code, which can yield. When the hook fires inside the
//! innermost transparent coroutine and every coroutine from it up to the run's own is at
//! a point where yielding is allowed, the hook yields it; each `pcall` wrapper on the way
//! sees its coroutine suspended and yields its own thread in turn, up to the run's
//! coroutine, and resuming goes back down the same chain. Errors come back as from
//! Lua's `pcall` (and an error table's `err` as its message, as in Redis).
//!
//! Scripts cannot tell: `coroutine.yield` and `coroutine.running` treat the run's
//! coroutine and the transparent ones as the main thread they stand for (yielding raises
//! Redis's "attempt to yield across metamethod/C-call boundary", `running` returns nil).
//! Outside yielding runs, inside a script's own coroutines and under C calls (a sort
//! comparator, a metamethod) `pcall` is the plain one.
//!
//! `xpcall` is wrapped the same way: its function runs in a transparent coroutine, and
//! when that dies of an error the handler runs, in a transparent coroutine too, with the
//! raw error value; an error inside the handler goes to the handler again, and past
//! [`HANDLER_DEPTH`] of those the result is Lua's `error in error handling`. Lua runs the
//! handler before the stack unwinds; the sandbox has no `debug` library, so a handler
//! can tell only through `getfenv`/`error` levels, which no script uses for that.

use crate::lua::{raise_plain, State};
use crate::sandbox::{push_closure, slot_upvalue, RunSlot};
use mlua_sys as ffi;
use std::ffi::c_int;

/// Finished coroutines kept for reuse (a clean, finished 5.1 coroutine takes a new function).
const POOL_SIZE: usize = 8;

/// The `pcall` wrapper, given its helpers as chunk arguments.
const WRAPPER: &[u8] = b"local enter, settle, plain, resume, status, yield, select = ...
local function finish(co, ...)
  if status(co) == 'suspended' then
    yield()
    return finish(co, resume(co))
  end
  return settle(co, ...)
end
return function(...)
  local co = enter(...)
  if co == nil then return plain(...) end
  return finish(co, resume(co, select(2, ...)))
end";

/// The `xpcall` wrapper, given its helpers as chunk arguments. `settle` here keeps error
/// values as they are (Redis changes only `pcall`'s). A missing handler is reported at
/// the caller's line, as Lua reports the C function's argument error; a script that
/// tail-calls it (`return xpcall(f)`) or calls it through another name loses that line or
/// name, which Lua keeps for C functions.
const XWRAPPER: &[u8] = b"local enter, settle, xpcall, resume, status, yield, select, depth_limit, error = ...
local function finish(co, ...)
  if status(co) == 'suspended' then
    yield()
    return finish(co, resume(co))
  end
  return settle(co, ...)
end
local function identity(e) return e end
local function run_handler(handler, e)
  local co = enter(handler)
  if co == nil then return xpcall(function() return handler(e) end, identity) end
  return finish(co, resume(co, e))
end
local function handled(handler, depth, ok, ...)
  if ok then return false, (...) end
  if depth >= depth_limit then return false, 'error in error handling' end
  return handled(handler, depth + 1, run_handler(handler, (...)))
end
local function after(handler, ok, ...)
  if ok then return true, ... end
  return handled(handler, 1, run_handler(handler, (...)))
end
return function(...)
  if select('#', ...) < 2 then error(\"bad argument #2 to 'xpcall' (value expected)\", 2) end
  local f, handler = ...
  local co = enter(f)
  if co == nil then return xpcall(f, handler) end
  return after(handler, finish(co, resume(co)))
end";

/// How many times in a row an `xpcall` handler may fail on its own errors before the
/// result is `error in error handling` (Lua gives up at its C-call depth limit, 200).
const HANDLER_DEPTH: f64 = 200.0;

/// The wrapper's chunk name: what Lua shows for C functions, which Redis's `pcall` is.
const WRAPPER_CHUNK: &std::ffi::CStr = c"=[C]";

/// True when `source` (a `lua_Debug` field) is the wrappers' chunk.
///
/// # Safety
/// `source` is null or a C string.
pub unsafe fn is_wrapper_source(source: *const std::ffi::c_char) -> bool {
    !source.is_null() && std::ffi::CStr::from_ptr(source) == WRAPPER_CHUNK
}

/// True when the hook event `ar` of `co` is in the wrapper's own code (a Lua function
/// standing for a C one: it has no lines a kill should be raised at).
///
/// # Safety
/// `ar` is the hook's activation record for `co`.
pub unsafe fn in_wrapper(co: State, ar: *mut ffi::lua_Debug) -> bool {
    ffi::lua_getinfo(co, c"S".as_ptr(), ar) != 0
        && !(*ar).source.is_null()
        && std::ffi::CStr::from_ptr((*ar).source) == WRAPPER_CHUNK
}

/// Replaces the global `pcall` with the wrapper and `coroutine.yield`/`running` with
/// their guarded versions. The original `coroutine.yield` stays inside the wrapper.
///
/// # Safety
/// Called during state setup, in protected mode, after the base library and `pcall`
/// (Redis's, in `plain`) are in place.
pub unsafe fn open_pcall(l: State, slot: *mut RunSlot, plain: ffi::lua_CFunction) {
    let rc = ffi::luaL_loadbuffer(l, WRAPPER.as_ptr().cast(), WRAPPER.len(), WRAPPER_CHUNK.as_ptr());
    assert!(rc == 0, "the pcall wrapper does not compile");
    push_closure(l, slot, enter, 0);
    push_closure(l, slot, settle, 0);
    ffi::lua_pushcfunction(l, plain);
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"coroutine".as_ptr());
    let co_lib = ffi::lua_gettop(l);
    ffi::lua_getfield(l, co_lib, c"resume".as_ptr());
    ffi::lua_getfield(l, co_lib, c"status".as_ptr());
    ffi::lua_getfield(l, co_lib, c"yield".as_ptr());
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"select".as_ptr());
    ffi::lua_remove(l, co_lib);
    ffi::lua_call(l, 7, 1);
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"pcall".as_ptr());
    let rc = ffi::luaL_loadbuffer(l, XWRAPPER.as_ptr().cast(), XWRAPPER.len(), WRAPPER_CHUNK.as_ptr());
    assert!(rc == 0, "the xpcall wrapper does not compile");
    push_closure(l, slot, enter, 0);
    push_closure(l, slot, settle_raw, 0);
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"xpcall".as_ptr());
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"coroutine".as_ptr());
    let co_lib = ffi::lua_gettop(l);
    ffi::lua_getfield(l, co_lib, c"resume".as_ptr());
    ffi::lua_getfield(l, co_lib, c"status".as_ptr());
    ffi::lua_getfield(l, co_lib, c"yield".as_ptr());
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"select".as_ptr());
    ffi::lua_remove(l, co_lib);
    ffi::lua_pushnumber(l, HANDLER_DEPTH);
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"error".as_ptr());
    ffi::lua_call(l, 9, 1);
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"xpcall".as_ptr());
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"coroutine".as_ptr());
    push_closure(l, slot, guarded_yield, 0);
    ffi::lua_setfield(l, -2, c"yield".as_ptr());
    push_closure(l, slot, guarded_running, 0);
    ffi::lua_setfield(l, -2, c"running".as_ptr());
    ffi::lua_pop(l, 1);
}

/// True when `l` stands for the script's main thread: the run's coroutine or one of the
/// transparent ones.
fn is_run_thread(slot: &RunSlot, l: State) -> bool {
    slot.running_co == Some(l) || slot.transparent.iter().any(|&(c, _)| c == l)
}

/// The coroutine the count hook may yield right now, if any: the innermost of the chain,
/// when every coroutine of the chain can yield.
pub fn yieldable_innermost(slot: &RunSlot) -> Option<State> {
    let run = slot.running_co?;
    let chain_ok = unsafe { crate::coroutine::may_yield(run) }
        && slot.transparent.iter().all(|&(c, _)| unsafe { crate::coroutine::may_yield(c) });
    chain_ok.then(|| slot.transparent.last().map_or(run, |&(c, _)| c))
}

/// Releases the transparent coroutines left by a run that ended inside a `pcall` (an
/// error raised in the wrapper itself, or a kill).
///
/// # Safety
/// `l` is the state the coroutines belong to.
pub unsafe fn forget_transparent(l: State, slot: &mut RunSlot) {
    for (_, r) in slot.transparent.drain(..) {
        ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r);
    }
}

/// `enter(f, ...)`: a transparent coroutine holding `f`, or nothing when this `pcall`
/// must be the plain one.
unsafe extern "C-unwind" fn enter(l: State) -> c_int {
    let slot = &mut *slot_upvalue(l);
    let Some(run) = slot.running_co else { return 0 };
    let innermost = slot.transparent.last().map_or(run, |&(c, _)| c);
    if ffi::lua_gettop(l) == 0 || slot.yield_after.is_none() || innermost != l || !crate::coroutine::may_yield(l) {
        return 0;
    }
    let (co, co_ref) = match slot.pcall_pool.pop() {
        Some(pooled) => pooled,
        None => {
            let co = ffi::lua_newthread(l);
            (co, ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX))
        }
    };
    if slot.kill {
        // A kill is under way (an `xpcall` handler caught it): this code stops at its
        // first line too.
        crate::coroutine::set_kill_hook(co);
    } else {
        crate::coroutine::set_hook(co);
    }
    ffi::lua_pushvalue(l, 1);
    ffi::lua_xmove(l, co, 1);
    slot.transparent.push((co, co_ref));
    ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, co_ref as _);
    1
}

/// `settle(co, ok, ...)`: the coroutine leaves the chain (and goes back to the pool if it
/// finished cleanly); returns `ok, ...` with an error table's `err` as the message.
unsafe extern "C-unwind" fn settle(l: State) -> c_int {
    settle_as(l, true)
}

/// `xpcall`'s `settle`: the error value stays as raised (the handler gets it).
unsafe extern "C-unwind" fn settle_raw(l: State) -> c_int {
    settle_as(l, false)
}

unsafe fn settle_as(l: State, err_as_message: bool) -> c_int {
    let slot = &mut *slot_upvalue(l);
    let co = ffi::lua_tothread(l, 1);
    if let Some(at) = slot.transparent.iter().rposition(|&(c, _)| c == co) {
        let mut left = slot.transparent.split_off(at);
        let (_, co_ref) = left.remove(0);
        let clean = ffi::lua_status(co) == 0 && ffi::lua_gettop(co) == 0;
        if clean && slot.pcall_pool.len() < POOL_SIZE {
            slot.pcall_pool.push((co, co_ref));
        } else {
            ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, co_ref);
        }
        for (_, r) in left {
            ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r);
        }
    }
    ffi::lua_remove(l, 1);
    if err_as_message && ffi::lua_toboolean(l, 1) == 0 && ffi::lua_istable(l, 2) != 0 {
        ffi::lua_getfield(l, 2, c"err".as_ptr());
        if ffi::lua_isstring(l, -1) != 0 {
            ffi::lua_replace(l, 2);
        } else {
            ffi::lua_pop(l, 1);
        }
    }
    ffi::lua_gettop(l)
}

unsafe extern "C-unwind" fn guarded_yield(l: State) -> c_int {
    if is_run_thread(&*slot_upvalue(l), l) {
        raise_plain(l, "attempt to yield across metamethod/C-call boundary");
    }
    ffi::lua_yield(l, ffi::lua_gettop(l))
}

unsafe extern "C-unwind" fn guarded_running(l: State) -> c_int {
    if is_run_thread(&*slot_upvalue(l), l) || ffi::lua_pushthread(l) == 1 {
        ffi::lua_pushnil(l);
    }
    1
}
