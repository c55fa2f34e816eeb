//! The `redis` table: `redis.call`, `redis.pcall`, the reply helpers, logging, RESP and
//! replication settings, and Redis's `pcall`, with Redis 7.0's behaviour and texts.

use crate::lua::{push_bytes, raise_top, rawset_str, to_bytes, State};
use crate::sandbox::{push_closure, slot_upvalue, RunSlot};
use crate::CallOptions;
use ferrokv_resp::Argv;
use mlua_sys as ffi;
use std::ffi::c_int;

/// Redis's log levels (`LL_DEBUG` … `LL_WARNING`).
pub(crate) const LOG_LEVELS: [(&str, f64); 4] =
    [("LOG_DEBUG", 0.0), ("LOG_VERBOSE", 1.0), ("LOG_NOTICE", 2.0), ("LOG_WARNING", 3.0)];

/// Creates the `redis` global, fields in Redis's insertion order (it decides the order
/// `pairs(redis)` walks them in), and replaces `pcall` with Redis's.
///
/// # Safety
/// Called during state setup, in protected mode.
pub unsafe fn open_redis(l: State, slot: *mut RunSlot, version: &str) {
    ffi::lua_newtable(l);
    let t = ffi::lua_gettop(l);
    let fields: [(&str, ffi::lua_CFunction); 2] = [("call", redis_call), ("pcall", redis_pcall)];
    for (name, f) in fields {
        push_closure(l, slot, f, 0);
        rawset_str(l, t, name);
    }
    push_closure(l, slot, redis_log, 0);
    rawset_str(l, t, "log");
    for (name, level) in LOG_LEVELS {
        ffi::lua_pushnumber(l, level);
        rawset_str(l, t, name);
    }
    ffi::lua_pushnumber(l, version_num(version) as f64);
    rawset_str(l, t, "REDIS_VERSION_NUM");
    push_bytes(l, version.as_bytes());
    rawset_str(l, t, "REDIS_VERSION");
    let fields: [(&str, ffi::lua_CFunction); 5] = [
        ("setresp", redis_setresp),
        ("sha1hex", redis_sha1hex),
        ("error_reply", redis_error_reply),
        ("status_reply", redis_status_reply),
        ("set_repl", redis_set_repl),
    ];
    for (name, f) in fields {
        push_closure(l, slot, f, 0);
        rawset_str(l, t, name);
    }
    for (name, v) in [("REPL_NONE", 0), ("REPL_AOF", 1), ("REPL_SLAVE", 2), ("REPL_REPLICA", 2), ("REPL_ALL", 3)] {
        ffi::lua_pushnumber(l, v as f64);
        rawset_str(l, t, name);
    }
    let fields: [(&str, ffi::lua_CFunction); 4] = [
        ("acl_check_cmd", redis_acl_check_cmd),
        ("breakpoint", redis_breakpoint),
        ("debug", redis_debug),
        ("replicate_commands", redis_replicate_commands),
    ];
    for (name, f) in fields {
        push_closure(l, slot, f, 0);
        rawset_str(l, t, name);
    }
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"redis".as_ptr());
    ffi::lua_pushcfunction(l, redis_style_pcall);
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"pcall".as_ptr());
    ffi::lua_pushcfunction(l, xpcall_after_unwinding);
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"xpcall".as_ptr());
}

/// `7.0.15` → 0x07000f.
pub(crate) fn version_num(v: &str) -> u32 {
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (a, b, c) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (a << 16) | (b << 8) | c
}

/// Pushes Redis's error table `{err = "<CODE> <message>"}` for `text`, which is either
/// `-CODE message` or a bare message (code `ERR`); trailing CR/LF are trimmed.
///
/// # Safety
/// `l` valid with room for 3 values.
pub unsafe fn push_error_table(l: State, text: &[u8]) {
    let (code, msg): (&[u8], &[u8]) = match text.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&b| b == b' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", text),
    };
    let msg = trim_crlf(msg);
    ffi::lua_createtable(l, 0, 1);
    push_bytes(l, code);
    push_bytes(l, b" ");
    push_bytes(l, msg);
    ffi::lua_concat(l, 3);
    ffi::lua_setfield(l, -2, c"err".as_ptr());
}

/// `msg` without CR/LF at either end (Redis's sdstrim).
fn trim_crlf(mut m: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = m {
        m = rest;
    }
    while let [rest @ .., b'\r' | b'\n'] = m {
        m = rest;
    }
    m
}

/// Marks the error table on top as already counted in the error statistics.
unsafe fn mark_counted(l: State) {
    ffi::lua_pushboolean(l, 1);
    ffi::lua_setfield(l, -2, c"ignore_error_stats_update".as_ptr());
}

unsafe extern "C-unwind" fn redis_call(l: State) -> c_int {
    generic_call(l, true)
}

unsafe extern "C-unwind" fn redis_pcall(l: State) -> c_int {
    generic_call(l, false)
}

/// Why collecting a call's arguments failed.
enum ArgsError {
    None,
    NotStringOrNumber,
}

/// Reads the arguments on the stack as Redis does: numbers as `%.17g`, strings as is,
/// anything else an error. Raises nothing.
unsafe fn collect_args(l: State) -> Result<Argv, ArgsError> {
    let n = ffi::lua_gettop(l);
    if n == 0 {
        return Err(ArgsError::None);
    }
    let mut numbers: Vec<(c_int, String)> = Vec::new();
    for i in 1..=n {
        match ffi::lua_type(l, i) {
            ffi::LUA_TNUMBER => numbers.push((i, ferrokv_resp::num::fmt_g(ffi::lua_tonumber(l, i), 17))),
            ffi::LUA_TSTRING => {}
            _ => return Err(ArgsError::NotStringOrNumber),
        }
    }
    // Most calls have a few arguments: their slices stay on the stack (a heap Vec here
    // was one allocation per redis.call).
    const ON_STACK: usize = 16;
    let mut stack_parts: [&[u8]; ON_STACK] = [&[]; ON_STACK];
    let mut heap_parts: Vec<&[u8]> = Vec::new();
    let parts: &mut [&[u8]] = if n as usize <= ON_STACK {
        &mut stack_parts[..n as usize]
    } else {
        heap_parts.resize(n as usize, &[]);
        &mut heap_parts
    };
    let mut next_number = numbers.iter().peekable();
    for (i, part) in (1..=n).zip(parts.iter_mut()) {
        *part = match next_number.peek() {
            Some((j, s)) if *j == i => {
                next_number.next();
                s.as_bytes()
            }
            // A string argument: lua_tolstring does not convert (or allocate) strings.
            _ => to_bytes(l, i).unwrap_or_default(),
        };
    }
    Ok(Argv::from_slices(parts))
}

/// What the Rust half of a call produced, for the half that talks to Lua.
enum CallResult {
    NoScript,
    Recursive,
    Args(ArgsError),
    /// Refused: the message is in the slot.
    Refused,
    /// The reply is in the slot.
    Replied,
}

/// Everything that owns memory happens here, before any Lua error can be raised.
unsafe fn call_phase(l: State, slot: &mut RunSlot) -> CallResult {
    let Some(handler) = slot.handler else { return CallResult::NoScript };
    if slot.calling {
        return CallResult::Recursive;
    }
    let argv = match collect_args(l) {
        Ok(a) => a,
        Err(e) => return CallResult::Args(e),
    };
    slot.calling = true;
    slot.reply.clear();
    let opts = CallOptions { resp3: slot.resp3, repl: slot.repl };
    // SAFETY: the handler outlives the run (see `run::run`), which is in progress.
    let result = (*handler).call(&argv, opts, &mut slot.reply);
    slot.calling = false;
    match result {
        Ok(()) => CallResult::Replied,
        Err(msg) => {
            slot.refusal = msg;
            CallResult::Refused
        }
    }
}

unsafe fn generic_call(l: State, raise: bool) -> c_int {
    let slot = &mut *slot_upvalue(l);
    let result = call_phase(l, slot);
    let n = ffi::lua_gettop(l);
    ffi::lua_pop(l, n);
    match result {
        CallResult::NoScript => {
            push_error_table(l, b"redis.call/pcall can only be called inside a script invocation");
            raise_top(l);
        }
        CallResult::Recursive => {
            log::warn!(
                "luaRedisGenericCommand() recursive call detected. Are you doing funny stuff with Lua debug hooks?"
            );
            push_error_table(
                l,
                b"luaRedisGenericCommand() recursive call detected. Are you doing funny stuff with Lua debug hooks?",
            );
            return 1;
        }
        CallResult::Args(e) => {
            let text: &[u8] = match e {
                ArgsError::None => b"Please specify at least one argument for this redis lib call",
                ArgsError::NotStringOrNumber => b"Lua redis lib command arguments must be strings or integers",
            };
            push_error_table(l, text);
        }
        CallResult::Refused => {
            push_error_table(l, slot.refusal.as_bytes());
            mark_counted(l);
        }
        CallResult::Replied => {
            let is_error = slot.reply.first() == Some(&b'-');
            crate::convert::push_reply(l, &slot.reply);
            if !is_error {
                return 1;
            }
        }
    }
    if raise {
        raise_top(l)
    } else {
        1
    }
}

/// Redis's `pcall`: like Lua's, but an error table with an `err` field comes back as
/// its message (scripts written for Redis 6 expect a string).
pub(crate) unsafe extern "C-unwind" fn redis_style_pcall(l: State) -> c_int {
    let argc = ffi::lua_gettop(l);
    ffi::lua_pushboolean(l, 1);
    ffi::lua_insert(l, 1);
    if ffi::lua_pcall(l, argc - 1, ffi::LUA_MULTRET, 0) != 0 {
        ffi::lua_remove(l, 1);
        if ffi::lua_istable(l, -1) != 0 {
            ffi::lua_getfield(l, -1, c"err".as_ptr());
            if ffi::lua_isstring(l, -1) != 0 {
                ffi::lua_replace(l, -2);
            } else {
                ffi::lua_pop(l, 1);
            }
        }
        ffi::lua_pushboolean(l, 0);
        ffi::lua_insert(l, 1);
    }
    ffi::lua_gettop(l)
}

/// How many times in a row an `xpcall` handler may fail on its own errors before the
/// result is `error in error handling` (Lua gives up near its C-call depth limit, 200).
const HANDLER_DEPTH: usize = 200;

/// `xpcall(f, handler)` with the handler called after `f`'s frames are unwound, not
/// inside the error. Lua runs the handler from inside the raise, where hooks are off
/// when the error came from a hook: a handler that loops after SCRIPT KILL's error would
/// never be stopped (Redis 7.0 stays stuck there). Here the handler runs with hooks on,
/// so the kill stops it too. Results are Lua's: `true, ...` or `false` and the handler's
/// first result; a failing handler gets its own error, up to [`HANDLER_DEPTH`] times;
/// memory errors and `error in error handling` skip the handler. Without a `debug`
/// library a script can tell the difference only through `getfenv`/`error` levels.
unsafe extern "C-unwind" fn xpcall_after_unwinding(l: State) -> c_int {
    ffi::luaL_checkany(l, 2);
    ffi::lua_settop(l, 2);
    ffi::lua_pushvalue(l, 1);
    let status = ffi::lua_pcall(l, 0, ffi::LUA_MULTRET, 0);
    if status == 0 {
        ffi::lua_pushboolean(l, 1);
        ffi::lua_replace(l, 2);
        return ffi::lua_gettop(l) - 1;
    }
    // Stack: f, handler, error; then the handler's result in the error's place.
    if status != ffi::LUA_ERRMEM && status != ffi::LUA_ERRERR {
        let mut handled = false;
        for _ in 0..HANDLER_DEPTH {
            ffi::lua_pushvalue(l, 2);
            ffi::lua_insert(l, 3);
            match ffi::lua_pcall(l, 1, 1, 0) {
                0 => handled = true,
                ffi::LUA_ERRMEM => handled = true,
                _ => continue,
            }
            break;
        }
        if !handled {
            ffi::lua_settop(l, 2);
            push_bytes(l, b"error in error handling");
        }
    }
    ffi::lua_pushboolean(l, 0);
    ffi::lua_replace(l, 1);
    ffi::lua_replace(l, 2);
    2
}

unsafe extern "C-unwind" fn redis_sha1hex(l: State) -> c_int {
    if ffi::lua_gettop(l) != 1 {
        push_error_table(l, b"wrong number of arguments");
        raise_top(l);
    }
    let digest = match to_bytes(l, 1) {
        Some(b) => crate::sha1hex(b),
        // Redis hashes whatever lua_tolstring gives, NULL included (as an empty string).
        None => crate::sha1hex(b""),
    };
    push_bytes(l, &digest);
    1
}

unsafe extern "C-unwind" fn redis_error_reply(l: State) -> c_int {
    if ffi::lua_gettop(l) != 1 || ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
        push_error_table(l, b"wrong number or type of arguments");
        return 1;
    }
    // A message without a leading '-' gets one: its first word becomes the code.
    let msg = to_bytes(l, -1).unwrap_or_default();
    if msg.first() == Some(&b'-') {
        push_error_table(l, msg);
    } else {
        push_bytes(l, b"-");
        ffi::lua_insert(l, -2);
        ffi::lua_concat(l, 2);
        let msg = to_bytes(l, -1).unwrap_or_default();
        push_error_table(l, msg);
    }
    1
}

unsafe extern "C-unwind" fn redis_status_reply(l: State) -> c_int {
    if ffi::lua_gettop(l) != 1 || ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
        push_error_table(l, b"wrong number or type of arguments");
        return 1;
    }
    ffi::lua_createtable(l, 0, 1);
    ffi::lua_pushvalue(l, -2);
    ffi::lua_setfield(l, -2, c"ok".as_ptr());
    1
}

/// Raises `msg` as Redis's error table unless a script is running; returns the slot.
unsafe fn require_run(l: State, msg: &[u8]) -> *mut RunSlot {
    let slot = slot_upvalue(l);
    if (*slot).handler.is_none() {
        push_error_table(l, msg);
        raise_top(l);
    }
    slot
}

unsafe extern "C-unwind" fn redis_setresp(l: State) -> c_int {
    let slot = &mut *require_run(l, b"redis.setresp can only be called inside a script invocation");
    if ffi::lua_gettop(l) != 1 {
        push_error_table(l, b"redis.setresp() requires one argument.");
        raise_top(l);
    }
    let resp = crate::lua::c_double_to_int(ffi::lua_tonumber(l, 1));
    if resp != 2 && resp != 3 {
        push_error_table(l, b"RESP version must be 2 or 3.");
        raise_top(l);
    }
    slot.resp3 = resp == 3;
    0
}

unsafe extern "C-unwind" fn redis_set_repl(l: State) -> c_int {
    let slot = &mut *require_run(l, b"redis.set_repl can only be called inside a script invocation");
    if ffi::lua_gettop(l) != 1 {
        push_error_table(l, b"redis.set_repl() requires two arguments.");
        raise_top(l);
    }
    let flags = crate::lua::c_double_to_int(ffi::lua_tonumber(l, -1));
    if flags & !(crate::REPL_ALL as i32) != 0 {
        push_error_table(l, b"Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.");
        raise_top(l);
    }
    slot.repl = flags as u8;
    0
}

unsafe extern "C-unwind" fn redis_acl_check_cmd(l: State) -> c_int {
    let slot = &mut *require_run(l, b"redis.acl_check_cmd can only be called inside a script invocation");
    let verdict = match collect_args(l) {
        Err(ArgsError::None) => Err(&b"Please specify at least one argument for this redis lib call"[..]),
        Err(ArgsError::NotStringOrNumber) => Err(&b"Lua redis lib command arguments must be strings or integers"[..]),
        Ok(argv) => match slot.handler {
            // SAFETY: the handler outlives the run in progress.
            Some(h) => (*h).acl_check(&argv).ok_or(&b"Invalid command passed to redis.acl_check_cmd()"[..]),
            None => Err(&b"redis.acl_check_cmd can only be called inside a script invocation"[..]),
        },
    };
    let n = ffi::lua_gettop(l);
    ffi::lua_pop(l, n);
    match verdict {
        Ok(allowed) => {
            ffi::lua_pushboolean(l, allowed as c_int);
            1
        }
        Err(msg) => {
            push_error_table(l, msg);
            raise_top(l)
        }
    }
}

pub(crate) unsafe extern "C-unwind" fn redis_log(l: State) -> c_int {
    let argc = ffi::lua_gettop(l);
    if argc < 2 {
        push_error_table(l, b"redis.log() requires two arguments or more.");
        raise_top(l);
    }
    if ffi::lua_isnumber(l, 1) == 0 {
        push_error_table(l, b"First argument must be a number (log level).");
        raise_top(l);
    }
    let level = crate::lua::c_double_to_int(ffi::lua_tonumber(l, 1));
    if !(0..=3).contains(&level) {
        push_error_table(l, b"Invalid debug level.");
        raise_top(l);
    }
    let slot = &mut *slot_upvalue(l);
    // Arguments that are neither strings nor numbers are skipped; numbers convert in
    // place (a Lua allocation), so every conversion happens before any Rust buffer.
    for i in 2..=argc {
        if ffi::lua_isstring(l, i) != 0 {
            ffi::lua_tolstring(l, i, std::ptr::null_mut());
        }
    }
    log_phase(l, slot, level, argc);
    0
}

unsafe fn log_phase(l: State, slot: &mut RunSlot, level: c_int, argc: c_int) {
    let mut msg = Vec::new();
    let mut first = true;
    for i in 2..=argc {
        if let Some(b) = to_bytes(l, i).filter(|_| ffi::lua_isstring(l, i) != 0) {
            if !first {
                msg.push(b' ');
            }
            first = false;
            msg.extend_from_slice(b);
        }
    }
    match slot.handler {
        // SAFETY: the handler outlives the run in progress.
        Some(h) => (*h).log(level, &msg),
        None => log::warn!("{}", String::from_utf8_lossy(&msg)),
    }
}

/// The debugger's entry points: without an active debugging session (ferrokv has no
/// Lua debugger), `redis.breakpoint()` is false and `redis.debug()` does nothing.
unsafe extern "C-unwind" fn redis_breakpoint(l: State) -> c_int {
    ffi::lua_pushboolean(l, 0);
    1
}

unsafe extern "C-unwind" fn redis_debug(_l: State) -> c_int {
    0
}

/// Deprecated since effects replication is the only mode: always true.
unsafe extern "C-unwind" fn redis_replicate_commands(l: State) -> c_int {
    ffi::lua_pushboolean(l, 1);
    1
}
