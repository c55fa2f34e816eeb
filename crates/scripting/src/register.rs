//! The load phase of FUNCTION LOAD: the globals a library's top-level code sees (only a
//! `redis` table with `register_function`, `log`, the `LOG_*` levels and the version
//! fields, as Redis 7.0), `redis.register_function` with both its forms, and the hook
//! that cancels a load running past its time budget.
//!
//! The functions state is built like the EVAL state (see [`crate::sandbox`]); loading a
//! library points the globals proxy's `__index` at the load table for the duration of
//! the library's top-level code, then back at the real globals, so functions run later
//! see the full sandbox while the loading code sees almost nothing (Redis swaps the
//! `__index` of its globals metatable the same way).

use crate::flags::ScriptFlags;
use crate::lua::{push_bytes, raise_top, rawset_str, to_bytes, State};
use crate::sandbox::{push_closure, slot_upvalue, RunSlot, PROXIES_KEY, REAL_GLOBALS_KEY};
use mlua_sys as ffi;
use std::ffi::c_int;
use std::time::{Duration, Instant};

/// Registry key of the load-phase globals table.
pub static LOAD_GLOBALS_KEY: u8 = 0;
/// Registry key of the current [`LoadCtx`] (light userdata), for the timeout hook.
static LOAD_CTX_KEY: u8 = 0;

/// A function registered by a library's top-level code.
pub struct Registered {
    pub name: Box<[u8]>,
    pub desc: Option<Box<[u8]>>,
    pub flags: ScriptFlags,
    /// The callback, in the Lua registry.
    pub func: c_int,
}

/// One library load in progress.
pub struct LoadCtx {
    pub functions: Vec<Registered>,
    start: Instant,
    /// None: no limit (a load from the master, the AOF or an RDB file).
    timeout: Option<Duration>,
}

/// Builds the load-phase globals and stores them in the registry.
///
/// # Safety
/// During state setup, in protected mode, after the sandbox is in place.
pub unsafe fn install_load_api(l: State, slot: *mut RunSlot) {
    ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, (&PROXIES_KEY as *const u8).cast());
    let proxies = ffi::lua_gettop(l);
    // The load-time `redis` table: unknown fields are errors, as for globals.
    ffi::lua_newtable(l);
    let t = ffi::lua_gettop(l);
    push_closure(l, slot, register_function, 0);
    rawset_str(l, t, "register_function");
    push_closure(l, slot, crate::api::redis_log, 0);
    rawset_str(l, t, "log");
    for (name, level) in crate::api::LOG_LEVELS {
        ffi::lua_pushnumber(l, level);
        rawset_str(l, t, name);
    }
    let version = (*slot).version;
    push_bytes(l, version.as_bytes());
    rawset_str(l, t, "REDIS_VERSION");
    ffi::lua_pushnumber(l, crate::api::version_num(version) as f64);
    rawset_str(l, t, "REDIS_VERSION_NUM");
    push_error_metatable(l, t);
    crate::sandbox::make_proxy(l, proxies);
    // The load-time globals: just `redis`.
    ffi::lua_newtable(l);
    let g = ffi::lua_gettop(l);
    ffi::lua_pushvalue(l, -2);
    rawset_str(l, g, "redis");
    push_error_metatable(l, g);
    ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, (&LOAD_GLOBALS_KEY as *const u8).cast());
    ffi::lua_settop(l, proxies - 1);
}

unsafe fn push_error_metatable(l: State, t: c_int) {
    ffi::lua_newtable(l);
    ffi::lua_pushcfunction(l, crate::sandbox::nonexistent_global);
    ffi::lua_setfield(l, -2, c"__index".as_ptr());
    ffi::lua_setmetatable(l, t);
}

/// Points the globals proxy at the load table (`load`) or back at the real globals.
///
/// # Safety
/// `l` valid, outside any protected call that may be running Lua code.
unsafe fn switch_globals(l: State, load: bool) {
    if ffi::lua_getmetatable(l, ffi::LUA_GLOBALSINDEX) == 0 {
        return;
    }
    let key: *const u8 = if load { &LOAD_GLOBALS_KEY } else { &REAL_GLOBALS_KEY };
    ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key.cast());
    ffi::lua_setfield(l, -2, c"__index".as_ptr());
    ffi::lua_pop(l, 1);
}

/// Runs a library's top-level code (compiled as `func`, a registry reference that is
/// released here) in the load environment. Returns the functions it registered, or
/// Redis's message (`ERR …`) for the error it raised.
pub fn run_load(
    l: State,
    slot: &mut RunSlot,
    func: c_int,
    timeout: Option<Duration>,
) -> Result<Vec<Registered>, String> {
    let mut ctx = LoadCtx { functions: Vec::new(), start: Instant::now(), timeout };
    struct Call {
        func: c_int,
        error: Option<Vec<u8>>,
    }
    unsafe extern "C-unwind" fn trampoline(l: State) -> c_int {
        let c = &mut *ffi::lua_touserdata(l, 1).cast::<Call>();
        ffi::lua_settop(l, 0);
        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, c.func as _);
        if ffi::lua_pcall(l, 0, 0, 0) != 0 {
            // A string error is reported as "ERR <text>", a table as its `err` field.
            let msg = if ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
                ffi::lua_getfield(l, -1, c"err".as_ptr());
                let m = if ffi::lua_isstring(l, -1) != 0 { to_bytes(l, -1).map(<[u8]>::to_vec) } else { None };
                m.unwrap_or_default()
            } else {
                to_bytes(l, -1).map(|m| [b"ERR ", m].concat()).unwrap_or_default()
            };
            c.error = Some(msg);
        }
        ffi::lua_settop(l, 0);
        0
    }
    slot.loading = Some(&mut ctx);
    let mut call = Call { func, error: None };
    // SAFETY: the state is ours and idle; the hook and the trampoline follow the C API;
    // `ctx` and `call` outlive the protected call, and both pointers are cleared after it.
    let rc = unsafe {
        switch_globals(l, true);
        ffi::lua_pushlightuserdata(l, (&mut ctx as *mut LoadCtx).cast());
        ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, (&LOAD_CTX_KEY as *const u8).cast());
        ffi::lua_sethook(l, Some(load_hook), ffi::LUA_MASKCOUNT, 100_000);
        let rc = ffi::lua_cpcall(l, trampoline, (&mut call as *mut Call).cast());
        ffi::lua_sethook(l, None, 0, 0);
        ffi::lua_pushnil(l);
        ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, (&LOAD_CTX_KEY as *const u8).cast());
        switch_globals(l, false);
        ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, func);
        rc
    };
    slot.loading = None;
    let error = if rc != 0 {
        // SAFETY: cpcall left its error on the stack (only an allocation failure).
        unsafe { ffi::lua_settop(l, 0) };
        Some(b"ERR not enough memory".to_vec())
    } else {
        call.error
    };
    match error {
        None => Ok(ctx.functions),
        Some(msg) => {
            release(l, ctx.functions);
            Err(format!("Error registering functions: {}", String::from_utf8_lossy(&msg)))
        }
    }
}

/// Releases the callbacks of functions that will not be kept.
pub fn release(l: State, functions: Vec<Registered>) {
    for f in functions {
        // SAFETY: each reference was taken by register_function in this state.
        unsafe { ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, f.func) };
    }
}

/// Cancels a load past its time budget, then keeps raising on every line so that
/// `pcall` cannot swallow the cancellation.
unsafe extern "C-unwind" fn load_hook(l: State, _ar: *mut ffi::lua_Debug) {
    ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, (&LOAD_CTX_KEY as *const u8).cast());
    let ctx = ffi::lua_touserdata(l, -1).cast::<LoadCtx>();
    ffi::lua_pop(l, 1);
    if ctx.is_null() {
        return;
    }
    let expired = match (*ctx).timeout {
        Some(t) => (*ctx).start.elapsed() > t,
        None => false,
    };
    if expired {
        ffi::lua_sethook(l, Some(load_hook), ffi::LUA_MASKLINE, 0);
        crate::api::push_error_table(l, b"FUNCTION LOAD timeout");
        raise_top(l);
    }
}

/// `redis.register_function(name, callback)` or `redis.register_function{function_name=,
/// callback=, flags=, description=}`.
unsafe extern "C-unwind" fn register_function(l: State) -> c_int {
    let slot = &mut *slot_upvalue(l);
    let Some(ctx) = slot.loading else {
        crate::api::push_error_table(l, b"redis.register_function can only be called on FUNCTION LOAD command");
        raise_top(l);
    };
    if let Err(msg) = register_phase(l, &mut *ctx) {
        crate::api::push_error_table(l, msg.as_bytes());
        raise_top(l);
    }
    0
}

/// Reads the arguments and records the function; nothing raises in here.
unsafe fn register_phase(l: State, ctx: &mut LoadCtx) -> Result<(), &'static str> {
    let argc = ffi::lua_gettop(l);
    let f = match argc {
        1 => named_args(l)?,
        2 => {
            let Some(name) = string_arg(l, 1) else {
                return Err("first argument to redis.register_function must be a string");
            };
            if ffi::lua_isfunction(l, 2) == 0 {
                return Err("second argument to redis.register_function must be a function");
            }
            ffi::lua_settop(l, 2);
            let func = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
            Registered { name, desc: None, flags: ScriptFlags(0), func }
        }
        _ => return Err("wrong number of arguments to redis.register_function"),
    };
    let msg = if !crate::functions::valid_name(&f.name) {
        "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
    } else if ctx.functions.iter().any(|g| g.name == f.name) {
        "Function already exists in the library"
    } else {
        ctx.functions.push(f);
        return Ok(());
    };
    ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, f.func);
    Err(msg)
}

/// A string (or number, as its text) at `idx`, copied.
unsafe fn string_arg(l: State, idx: c_int) -> Option<Box<[u8]>> {
    if ffi::lua_isstring(l, idx) == 0 {
        return None;
    }
    ffi::lua_pushvalue(l, idx);
    let v = to_bytes(l, -1).map(Box::from);
    ffi::lua_pop(l, 1);
    v
}

unsafe fn named_args(l: State) -> Result<Registered, &'static str> {
    if ffi::lua_istable(l, 1) == 0 {
        return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
    }
    let mut name = None;
    let mut desc = None;
    let mut func: Option<c_int> = None;
    let mut flags = 0u8;
    let release = |func: Option<c_int>| {
        if let Some(r) = func {
            ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r);
        }
    };
    ffi::lua_pushnil(l);
    while ffi::lua_next(l, 1) != 0 {
        // Stack: table, key, value.
        let key = match ffi::lua_type(l, -2) {
            ffi::LUA_TSTRING | ffi::LUA_TNUMBER => string_arg(l, -2).unwrap_or_default(),
            _ => {
                release(func);
                return Err("named argument key given to redis.register_function is not a string");
            }
        };
        let failure = if key.eq_ignore_ascii_case(b"function_name") {
            name = string_arg(l, -1);
            name.is_none().then_some("function_name argument given to redis.register_function must be a string")
        } else if key.eq_ignore_ascii_case(b"description") {
            desc = string_arg(l, -1);
            desc.is_none().then_some("description argument given to redis.register_function must be a string")
        } else if key.eq_ignore_ascii_case(b"callback") {
            if ffi::lua_isfunction(l, -1) == 0 {
                Some("callback argument given to redis.register_function must be a function")
            } else {
                release(func.take());
                func = Some(ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX));
                continue;
            }
        } else if key.eq_ignore_ascii_case(b"flags") {
            if ffi::lua_istable(l, -1) == 0 {
                Some("flags argument to redis.register_function must be a table representing function flags")
            } else {
                match read_flags(l) {
                    Some(f) => {
                        flags = f;
                        None
                    }
                    None => Some("unknown flag given"),
                }
            }
        } else {
            Some("unknown argument given to redis.register_function")
        };
        if let Some(msg) = failure {
            release(func);
            return Err(msg);
        }
        ffi::lua_pop(l, 1);
    }
    let Some(name) = name else {
        release(func);
        return Err("redis.register_function must get a function name argument");
    };
    let Some(func) = func else {
        return Err("redis.register_function must get a callback argument");
    };
    Ok(Registered { name, desc, flags: ScriptFlags(flags), func })
}

/// The flags table on top: names in its array part, case-insensitive.
unsafe fn read_flags(l: State) -> Option<u8> {
    let mut flags = 0u8;
    for i in 1.. {
        ffi::lua_rawgeti(l, -1, i);
        let t = ffi::lua_type(l, -1);
        if t == ffi::LUA_TNIL {
            ffi::lua_pop(l, 1);
            break;
        }
        let name = string_arg(l, -1);
        ffi::lua_pop(l, 1);
        let f = ScriptFlags::NAMES
            .iter()
            .find(|(_, n)| name.as_deref().is_some_and(|s| n.as_bytes().eq_ignore_ascii_case(s)))?;
        flags |= f.0;
    }
    Some(flags)
}
