//! Building the Lua state the way Redis 7.0 builds it, and its sandbox.
//!
//! Redis patches its Lua with *read-only tables* and marks the globals table and every
//! table reachable from it read-only. Stock Lua 5.1 has no such flag, so the same
//! observable behaviour is built from metatables:
//!
//! - The state's globals table (what scripts see as `_G`) is an empty *proxy*: its
//!   metatable's `__index` is the real globals table, its `__newindex` raises
//!   `Attempt to modify a readonly table` at the assigning line. Every library table
//!   (`string`, `math`, `table`, `redis`, `cjson`, …) is likewise an empty proxy of the
//!   real one, so `string.x = 1` fails as on Redis while lookups cost one extra table hop
//!   (no function call).
//! - The real globals table has a metatable whose `__index` raises
//!   `Script attempted to access nonexistent global variable '<name>'`.
//! - The builtins that see through metatables (`rawget`, `rawset`, `next`, `pairs`,
//!   `getmetatable`, `setmetatable`) and the `table` functions that modify tables in place
//!   are wrapped: they look at the real table behind a proxy, and refuse to modify a
//!   read-only one. A wrapper runs the original C function *in its own activation
//!   record*, so argument errors name the function and the position exactly as Lua's
//!   own would.
//!
//! Known differences from Redis's patched VM, all outside what scripts normally do: the
//! string hash of Redis's Lua uses every character of strings of 32 bytes or more (stock
//! Lua samples them), which changes `pairs` order for tables keyed by such strings; and a
//! proxy can be told from a table with `#`/`ipairs` only in that it is empty.

use crate::lua::{push_bytes, raise_plain, raise_where, rawset_str, State};
use crate::rand48::Rand48;
use mlua_sys as ffi;
use std::ffi::{c_int, c_void, CStr};

/// State the C functions need during a run, reached through their first upvalue.
#[derive(Default)]
pub struct RunSlot {
    /// The engine's side of the current run; None between runs.
    pub handler: Option<*mut (dyn crate::CallHandler + 'static)>,
    pub resp3: bool,
    pub repl: u8,
    pub rand: Rand48,
    /// A `redis.call` is in progress (hooks must not start another).
    pub calling: bool,
    /// Reused buffer for command replies.
    pub reply: Vec<u8>,
    /// Reused buffer for a refusal message.
    pub refusal: String,
    /// The Redis version scripts see (`redis.REDIS_VERSION`).
    pub version: &'static str,
    /// FUNCTION LOAD in progress: where `redis.register_function` records functions.
    pub loading: Option<*mut crate::register::LoadCtx>,
    /// A yielding run: when its count hook starts handing control back (see
    /// [`crate::coroutine`]); None for runs that must finish in one go.
    pub yield_after: Option<std::time::Instant>,
    /// SCRIPT KILL / FUNCTION KILL asked the running script to stop.
    pub kill: bool,
    /// The yielding run in progress: the yielder of its side stack, through which the
    /// count hook suspends the whole run.
    pub yielder: Option<*const crate::coroutine::RunYielder>,
    /// Where the run in progress writes its reply (the caller's buffer of this slice).
    pub out: Option<*mut ferrokv_resp::ReplyBuf>,
}

/// Registry keys (addresses of these statics are unique light userdata).
pub static PROXIES_KEY: u8 = 0;
pub static HANDLER_KEY: u8 = 0;
pub static REAL_GLOBALS_KEY: u8 = 0;
pub static TOSTRING_KEY: u8 = 0;
/// The run slot, for hooks (which have no upvalues).
pub static SLOT_KEY: u8 = 0;

/// The globals Redis keeps after loading its libraries (its allow lists); anything else
/// a library registers (`print`, `dofile`, `loadfile`, `module`, `require`…) is dropped.
const ALLOWED_GLOBALS: &[&str] = &[
    "string",
    "cjson",
    "bit",
    "cmsgpack",
    "math",
    "table",
    "struct",
    "redis",
    "__redis__err__handler",
    "xpcall",
    "tostring",
    "getfenv",
    "setmetatable",
    "next",
    "assert",
    "tonumber",
    "rawequal",
    "collectgarbage",
    "getmetatable",
    "rawset",
    "pcall",
    "coroutine",
    "type",
    "_G",
    "select",
    "unpack",
    "gcinfo",
    "pairs",
    "rawget",
    "loadstring",
    "ipairs",
    "_VERSION",
    "setfenv",
    "load",
    "error",
    "newproxy",
];

/// The library tables that become read-only proxies.
const LIBRARIES: &[&str] = &["string", "table", "math", "coroutine", "redis", "cjson", "struct", "cmsgpack", "bit"];

pub fn slot_upvalue(l: State) -> *mut RunSlot {
    // SAFETY: every C function that calls this was created with the slot as upvalue 1.
    unsafe { ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)).cast() }
}

/// Pushes a C closure whose first upvalue is the run slot (plus `extra` upvalues already
/// on the stack, which become upvalues 2…).
///
/// # Safety
/// `l` valid, `extra` values on the stack.
pub unsafe fn push_closure(l: State, slot: *mut RunSlot, f: ffi::lua_CFunction, extra: c_int) {
    ffi::lua_pushlightuserdata(l, slot.cast());
    if extra > 0 {
        ffi::lua_insert(l, -1 - extra);
    }
    ffi::lua_pushcclosure(l, f, 1 + extra);
}

/// Creates and sets up a state. Setup runs in protected mode; a failure here is a bug
/// (nothing user-controlled happens), so it aborts with the Lua message.
pub fn new_state(slot: &mut RunSlot, version: &'static str) -> State {
    slot.version = version;
    // SAFETY: a fresh state; `setup` follows the C API contract.
    unsafe {
        let l = ffi::lua_newstate(lua_alloc, std::ptr::null_mut());
        assert!(!l.is_null(), "cannot allocate the Lua state");
        ffi::lua_atpanic(l, lua_panic);
        let rc = ffi::lua_cpcall(l, setup, (slot as *mut RunSlot).cast::<c_void>());
        if rc != 0 {
            let msg = crate::lua::to_bytes(l, -1).map(|b| String::from_utf8_lossy(b).into_owned());
            panic!("Lua setup failed: {msg:?}");
        }
        l
    }
}

/// The Lua heap's allocator: mimalloc, called directly. Many small blocks make a cached
/// script (prototype, code, constants, line info); the C library's malloc, which stock
/// Lua uses, added ~70 bytes of RSS per cached script over Redis's (whose Lua gets
/// jemalloc). Direct calls also keep the heap out of the Rust allocator's count, as
/// Redis keeps it out of `used_memory` (INFO reports it as `used_memory_vm_*`).
unsafe extern "C-unwind" fn lua_alloc(_ud: *mut c_void, ptr: *mut c_void, osize: usize, nsize: usize) -> *mut c_void {
    if nsize == 0 {
        libmimalloc_sys::mi_free(ptr);
        std::ptr::null_mut()
    } else if ptr.is_null() {
        // Most of Lua's requests are new blocks: mi_realloc would get there too, later.
        libmimalloc_sys::mi_malloc(nsize)
    } else if nsize < osize && libmimalloc_sys::mi_good_size(nsize) < libmimalloc_sys::mi_usable_size(ptr) {
        // Lua's parser grows a function's arrays (code, line info, constants, locals) by
        // doubling, then shrinks them to their size. mi_realloc leaves a block that stays
        // at least half used where it is, so each cached script kept up to twice the
        // arrays it needs; moved to a block of the right size class they cost what they
        // do under Redis's jemalloc. Shrinks are rare once scripts run.
        let moved = libmimalloc_sys::mi_malloc(nsize);
        if moved.is_null() {
            // The old block still holds the data and is big enough.
            return ptr;
        }
        std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), moved.cast::<u8>(), nsize);
        libmimalloc_sys::mi_free(ptr);
        moved
    } else {
        libmimalloc_sys::mi_realloc(ptr, nsize)
    }
}

/// An error outside any protected call (none are expected: every run and setup is
/// protected): stop with Lua's message, as `luaL_newstate`'s panic function does.
unsafe extern "C-unwind" fn lua_panic(l: State) -> c_int {
    let msg = crate::lua::to_bytes(l, -1).map(|b| String::from_utf8_lossy(b).into_owned());
    log::error!("PANIC: unprotected error in call to Lua API ({})", msg.unwrap_or_default());
    std::process::abort()
}

unsafe extern "C-unwind" fn setup(l: State) -> c_int {
    let slot = ffi::lua_touserdata(l, 1).cast::<RunSlot>();
    ffi::lua_settop(l, 0);
    ffi::lua_pushlightuserdata(l, slot.cast());
    ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, (&SLOT_KEY as *const u8).cast());
    open_lib(l, c"", ffi::luaopen_base);
    open_lib(l, c"table", ffi::luaopen_table);
    open_lib(l, c"string", ffi::luaopen_string);
    open_lib(l, c"math", ffi::luaopen_math);
    crate::libs::open_all(l, slot);
    crate::api::open_redis(l, slot, (*slot).version);
    // The original tostring, for the error handler (the global may be replaced later).
    ffi::lua_getfield(l, ffi::LUA_GLOBALSINDEX, c"tostring".as_ptr());
    ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, (&TOSTRING_KEY as *const u8).cast());
    crate::run::register_error_handler(l);
    wrap_builtins(l, slot);
    protect_globals(l);
    0
}

unsafe fn open_lib(l: State, name: &CStr, f: ffi::lua_CFunction) {
    ffi::lua_pushcfunction(l, f);
    ffi::lua_pushstring(l, name.as_ptr());
    ffi::lua_call(l, 1, 0);
}

/// Replaces `holder[name]` (holder at absolute index `holder`) with `wrapper`, a closure
/// whose upvalues are the slot, the original C function and the original's own first
/// upvalue (the iterator `pairs`/`ipairs` return) or nil.
unsafe fn wrap(l: State, slot: *mut RunSlot, holder: c_int, name: &CStr, wrapper: ffi::lua_CFunction) {
    ffi::lua_getfield(l, holder, name.as_ptr());
    if ffi::lua_getupvalue(l, -1, 1).is_null() {
        ffi::lua_pushnil(l);
    }
    push_closure(l, slot, wrapper, 2);
    ffi::lua_setfield(l, holder, name.as_ptr());
}

unsafe fn wrap_builtins(l: State, slot: *mut RunSlot) {
    // proxy → real table, weak keys.
    ffi::lua_newtable(l);
    ffi::lua_newtable(l);
    push_bytes(l, b"k");
    ffi::lua_setfield(l, -2, c"__mode".as_ptr());
    ffi::lua_setmetatable(l, -2);
    ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, (&PROXIES_KEY as *const u8).cast());

    let g = ffi::LUA_GLOBALSINDEX;
    for name in [c"rawget", c"next", c"getmetatable"] {
        wrap(l, slot, g, name, see_through);
    }
    wrap(l, slot, g, c"pairs", pairs_through);
    wrap(l, slot, g, c"ipairs", ipairs_through);
    for name in [c"rawset", c"setmetatable"] {
        wrap(l, slot, g, name, refuse_readonly);
    }
    ffi::lua_getfield(l, g, c"table".as_ptr());
    let t = ffi::lua_gettop(l);
    for name in [c"insert", c"remove", c"sort"] {
        wrap(l, slot, t, name, refuse_readonly);
    }
    for name in [c"getn", c"maxn", c"concat", c"foreach", c"foreachi"] {
        wrap(l, slot, t, name, see_through);
    }
    ffi::lua_pop(l, 1);
    for name in [c"loadstring", c"load"] {
        ffi::lua_getfield(l, g, c"loadstring".as_ptr());
        ffi::lua_pushnil(l);
        push_closure(l, slot, if name == c"load" { load_text } else { loadstring_text }, 2);
        ffi::lua_setfield(l, g, name.as_ptr());
    }
}

/// Replaces the table on top of the stack by the real table behind it if it is a proxy
/// (serializers walk a library table's contents, as Redis's do, not an empty proxy).
///
/// # Safety
/// A table is on top of `l`'s stack.
pub unsafe fn unproxy_top(l: State) {
    if ffi::lua_checkstack(l, 2) == 0 {
        return;
    }
    ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, (&PROXIES_KEY as *const u8).cast());
    ffi::lua_pushvalue(l, -2);
    ffi::lua_rawget(l, -2);
    if ffi::lua_istable(l, -1) != 0 {
        ffi::lua_replace(l, -3);
        ffi::lua_pop(l, 1);
    } else {
        ffi::lua_pop(l, 2);
    }
}

/// Replaces argument 1 by the real table behind it if it is a proxy. Returns true if it
/// was one (it is then read-only).
unsafe fn unproxy_arg1(l: State) -> bool {
    if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
        return false;
    }
    ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, (&PROXIES_KEY as *const u8).cast());
    ffi::lua_pushvalue(l, 1);
    ffi::lua_rawget(l, -2);
    if ffi::lua_isnil(l, -1) != 0 {
        ffi::lua_pop(l, 2);
        return false;
    }
    ffi::lua_replace(l, 1);
    ffi::lua_pop(l, 1);
    true
}

/// Runs the wrapped original (upvalue 2) in this activation record, so its errors name
/// the function and the position as the original's would.
unsafe fn call_original(l: State) -> c_int {
    match ffi::lua_tocfunction(l, ffi::lua_upvalueindex(2)) {
        Some(f) => f(l),
        None => raise_plain(l, "wrapped builtin missing"),
    }
}

/// `pairs`/`ipairs` keep their iterator in their own upvalue 1, which a wrapper cannot
/// lend them; their body is three pushes, done here with the iterator we kept.
unsafe fn iterate_through(l: State, start: Option<ffi::lua_Integer>) -> c_int {
    unproxy_arg1(l);
    ffi::luaL_checktype(l, 1, ffi::LUA_TTABLE);
    ffi::lua_pushvalue(l, ffi::lua_upvalueindex(3));
    ffi::lua_pushvalue(l, 1);
    match start {
        Some(i) => ffi::lua_pushinteger(l, i),
        None => ffi::lua_pushnil(l),
    }
    3
}

unsafe extern "C-unwind" fn pairs_through(l: State) -> c_int {
    iterate_through(l, None)
}

unsafe extern "C-unwind" fn ipairs_through(l: State) -> c_int {
    iterate_through(l, Some(0))
}

unsafe extern "C-unwind" fn see_through(l: State) -> c_int {
    unproxy_arg1(l);
    call_original(l)
}

unsafe extern "C-unwind" fn refuse_readonly(l: State) -> c_int {
    if unproxy_arg1(l) || is_real_globals(l, 1) {
        raise_plain(l, "Attempt to modify a readonly table");
    }
    call_original(l)
}

unsafe fn is_real_globals(l: State, idx: c_int) -> bool {
    ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, (&REAL_GLOBALS_KEY as *const u8).cast());
    let same = ffi::lua_rawequal(l, idx, -1) != 0;
    ffi::lua_pop(l, 1);
    same
}

/// `loadstring` that never loads bytecode: Redis's Lua parses every chunk as text, so a
/// chunk starting with ESC fails to parse. Parsing it behind a space gives the very
/// error (and line numbers) text parsing gives.
unsafe extern "C-unwind" fn loadstring_text(l: State) -> c_int {
    let mut len = 0usize;
    let s = ffi::luaL_checklstring(l, 1, &mut len);
    if len > 0 && *s == 0x1b {
        if ffi::lua_isnoneornil(l, 2) != 0 {
            ffi::lua_settop(l, 1);
            ffi::lua_pushvalue(l, 1);
        }
        ffi::lua_settop(l, 2);
        push_bytes(l, b" ");
        ffi::lua_pushvalue(l, 1);
        ffi::lua_concat(l, 2);
        ffi::lua_replace(l, 1);
    }
    call_original(l)
}

/// `load(reader [, name])`: the pieces are gathered first and parsed as text like
/// [`loadstring_text`] (Redis's Lua reads no bytecode whichever way it is given).
unsafe extern "C-unwind" fn load_text(l: State) -> c_int {
    ffi::luaL_checktype(l, 1, ffi::LUA_TFUNCTION);
    let name_given = ffi::lua_isnoneornil(l, 2) == 0;
    ffi::lua_settop(l, 2);
    let mut pieces = 0;
    loop {
        ffi::luaL_checkstack(l, 2, c"too many pieces".as_ptr());
        ffi::lua_pushvalue(l, 1);
        ffi::lua_call(l, 0, 1);
        if ffi::lua_isnil(l, -1) != 0 {
            ffi::lua_pop(l, 1);
            break;
        }
        if ffi::lua_isstring(l, -1) == 0 {
            raise_where(l, "reader function must return a string");
        }
        if ffi::lua_objlen(l, -1) == 0 {
            ffi::lua_pop(l, 1);
            break;
        }
        pieces += 1;
    }
    ffi::lua_concat(l, pieces);
    ffi::lua_replace(l, 1);
    if !name_given {
        push_bytes(l, b"=(load)");
        ffi::lua_replace(l, 2);
    }
    loadstring_text(l)
}

/// Turns the real globals and library tables into proxies (see the module docs).
unsafe fn protect_globals(l: State) {
    let g = ffi::LUA_GLOBALSINDEX;
    // The real globals: a fresh table with the allowed entries.
    ffi::lua_newtable(l);
    let real = ffi::lua_gettop(l);
    for name in ALLOWED_GLOBALS {
        ffi::lua_getfield(l, g, format_c(name).as_ptr());
        rawset_str(l, real, name);
    }
    // Library tables become proxies (their metatable hides the real table).
    ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, (&PROXIES_KEY as *const u8).cast());
    let proxies = ffi::lua_gettop(l);
    for name in LIBRARIES {
        if crate::lua::rawget_str(l, real, name) != ffi::LUA_TTABLE {
            ffi::lua_pop(l, 1);
            continue;
        }
        make_proxy(l, proxies);
        if *name == "string" {
            // Methods on strings ("x"):upper() go through the same proxy.
            push_bytes(l, b"");
            if ffi::lua_getmetatable(l, -1) != 0 {
                ffi::lua_pushvalue(l, -3);
                ffi::lua_setfield(l, -2, c"__index".as_ptr());
                ffi::lua_pop(l, 1);
            }
            ffi::lua_pop(l, 1);
        }
        rawset_str(l, real, name);
    }
    // Empty the state's globals table: it becomes the proxy of `real`.
    loop {
        ffi::lua_pushnil(l);
        if ffi::lua_next(l, g) == 0 {
            break;
        }
        ffi::lua_pop(l, 1);
        ffi::lua_pushnil(l);
        ffi::lua_rawset(l, g);
    }
    ffi::lua_pushvalue(l, g);
    rawset_str(l, real, "_G");
    // Unknown globals: an error on read.
    ffi::lua_newtable(l);
    ffi::lua_pushcfunction(l, nonexistent_global);
    ffi::lua_setfield(l, -2, c"__index".as_ptr());
    ffi::lua_setmetatable(l, real);
    // The globals proxy.
    ffi::lua_newtable(l);
    ffi::lua_pushvalue(l, real);
    ffi::lua_setfield(l, -2, c"__index".as_ptr());
    ffi::lua_pushcfunction(l, readonly_newindex);
    ffi::lua_setfield(l, -2, c"__newindex".as_ptr());
    ffi::lua_setmetatable(l, g);
    ffi::lua_pushvalue(l, g);
    ffi::lua_pushvalue(l, real);
    ffi::lua_rawset(l, proxies);
    ffi::lua_pushvalue(l, real);
    ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, (&REAL_GLOBALS_KEY as *const u8).cast());
    ffi::lua_settop(l, real - 1);
}

fn format_c(name: &str) -> std::ffi::CString {
    std::ffi::CString::new(name).expect("global names have no NUL")
}

/// Replaces the table on top with a read-only proxy of it, recording the pair.
pub(crate) unsafe fn make_proxy(l: State, proxies: c_int) {
    let real = ffi::lua_gettop(l);
    ffi::lua_newtable(l);
    let proxy = ffi::lua_gettop(l);
    ffi::lua_newtable(l);
    ffi::lua_pushvalue(l, real);
    ffi::lua_setfield(l, -2, c"__index".as_ptr());
    ffi::lua_pushcfunction(l, readonly_newindex);
    ffi::lua_setfield(l, -2, c"__newindex".as_ptr());
    ffi::lua_setmetatable(l, proxy);
    ffi::lua_pushvalue(l, proxy);
    ffi::lua_pushvalue(l, real);
    ffi::lua_rawset(l, proxies);
    ffi::lua_replace(l, real);
}

/// `__newindex` of every read-only proxy: the error Redis's VM raises, at the line of
/// the assignment.
unsafe extern "C-unwind" fn readonly_newindex(l: State) -> c_int {
    raise_where(l, "Attempt to modify a readonly table")
}

/// `__index` of the real globals: reading an unknown global is an error in Redis.
pub(crate) unsafe extern "C-unwind" fn nonexistent_global(l: State) -> c_int {
    ffi::lua_settop(l, 2);
    let t = ffi::lua_type(l, 2);
    if t != ffi::LUA_TSTRING && t != ffi::LUA_TNUMBER {
        raise_where(l, "Second argument to luaProtectedTableError must be a string or number");
    }
    ffi::luaL_where(l, 1);
    push_bytes(l, b"Script attempted to access nonexistent global variable '");
    ffi::lua_pushvalue(l, 2);
    push_bytes(l, b"'");
    ffi::lua_concat(l, 4);
    ffi::lua_error(l)
}
