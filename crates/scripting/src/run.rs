//! Compiling and running scripts: the protected call, Redis's error handler (which
//! turns any error into `{err=…, source=…, line=…}`), and the error reply built from it.

use crate::lua::{push_bytes, rawset_str, to_bytes, State};
use crate::sandbox::{RunSlot, HANDLER_KEY, REAL_GLOBALS_KEY, TOSTRING_KEY};
use crate::CallHandler;
use ferrokv_resp::ReplyBuf;
use mlua_sys as ffi;
use std::ffi::{c_int, c_void};

/// How a script receives its keys and arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    /// EVAL: as the globals `KEYS` and `ARGV`.
    Eval,
    /// FCALL: as the function's two arguments.
    Function,
}

/// Compiles `code` into a function kept in the registry; returns its reference or the
/// Lua error message. Chunks are always parsed as text, as Redis's Lua does (it reads no
/// bytecode): a chunk starting with ESC is parsed behind a space, which keeps the
/// parser's message and line numbers.
pub fn compile(l: State, code: &[u8], chunkname: &str) -> Result<c_int, String> {
    let owned;
    let code = if code.first() == Some(&0x1b) {
        owned = [b" ", code].concat();
        &owned[..]
    } else {
        code
    };
    let name = std::ffi::CString::new(chunkname).map_err(|_| "bad chunk name".to_string())?;
    struct Compile<'a> {
        code: &'a [u8],
        name: &'a std::ffi::CStr,
        result: Result<c_int, Vec<u8>>,
    }
    unsafe extern "C-unwind" fn trampoline(l: State) -> c_int {
        let c = &mut *ffi::lua_touserdata(l, 1).cast::<Compile>();
        ffi::lua_settop(l, 0);
        if ffi::luaL_loadbuffer(l, c.code.as_ptr().cast(), c.code.len(), c.name.as_ptr()) != 0 {
            c.result = Err(to_bytes(l, -1).unwrap_or_default().to_vec());
            return 0;
        }
        c.result = Ok(ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX));
        0
    }
    let mut c = Compile { code, name: &name, result: Ok(0) };
    // SAFETY: the trampoline follows the C API; `c` outlives the call.
    let rc = unsafe { ffi::lua_cpcall(l, trampoline, (&mut c as *mut Compile).cast::<c_void>()) };
    if rc != 0 {
        // SAFETY: the error message is on the stack.
        let msg = unsafe { to_bytes(l, -1).map(|b| String::from_utf8_lossy(b).into_owned()) };
        unsafe { ffi::lua_pop(l, 1) };
        return Err(msg.unwrap_or_else(|| "not enough memory".into()));
    }
    c.result.map_err(|m| String::from_utf8_lossy(&m).into_owned())
}

/// Installs the error handler every run uses, also as the global
/// `__redis__err__handler` (scripts can see it on Redis).
///
/// # Safety
/// During state setup, in protected mode.
pub unsafe fn register_error_handler(l: State) {
    ffi::lua_pushcfunction(l, read_error_trampoline);
    ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, (&READ_ERROR_KEY as *const u8).cast());
    ffi::lua_pushcfunction(l, error_handler);
    ffi::lua_pushvalue(l, -1);
    ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, (&HANDLER_KEY as *const u8).cast());
    ffi::lua_setfield(l, ffi::LUA_GLOBALSINDEX, c"__redis__err__handler".as_ptr());
}

/// Turns the error into Redis's table: a non-table error `e` becomes
/// `{err = "ERR " .. tostring(e)}`; then `source` and `line` name where it happened:
/// the function that raised it, or its caller when that function is a C function (an
/// error in `redis.call` is reported at the script line that called it).
unsafe extern "C-unwind" fn error_handler(l: State) -> c_int {
    ffi::lua_settop(l, 1);
    annotate_error(l);
    1
}

/// Turns the error value at index 1 of `l` into Redis's error table, located at the
/// function that raised it, or its caller when that is a C function.
///
/// # Safety
/// `l` has the error value at index 1 and room for a few values.
unsafe fn annotate_error(l: State) {
    let mut ar: ffi::lua_Debug = std::mem::zeroed();
    let mut found = ffi::lua_getstack(l, 1, &mut ar) != 0 && ffi::lua_getinfo(l, c"nSl".as_ptr(), &mut ar) != 0;
    if found && !ar.what.is_null() && *ar.what == b'C' as std::ffi::c_char {
        found = ffi::lua_getstack(l, 2, &mut ar) != 0 && ffi::lua_getinfo(l, c"nSl".as_ptr(), &mut ar) != 0;
    }
    if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
        ffi::lua_createtable(l, 0, 0);
        push_bytes(l, b"ERR ");
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, (&TOSTRING_KEY as *const u8).cast());
        ffi::lua_pushvalue(l, 1);
        ffi::lua_call(l, 1, 1);
        ffi::lua_concat(l, 2);
        ffi::lua_setfield(l, -2, c"err".as_ptr());
        ffi::lua_replace(l, 1);
    }
    if found {
        ffi::lua_pushstring(l, ar.source);
        ffi::lua_setfield(l, 1, c"source".as_ptr());
        ffi::lua_pushnumber(l, ar.currentline as f64);
        ffi::lua_setfield(l, 1, c"line".as_ptr());
    }
}

/// What a failed run left for the error reply.
#[derive(Default)]
pub(crate) struct ErrorInfo {
    msg: Option<Vec<u8>>,
    source: Option<Vec<u8>>,
    line: Option<Vec<u8>>,
    counted: bool,
}

/// What a run executes: a compiled function, how it takes its keys and arguments, and
/// the name its errors mention (the SHA for EVAL, the function's name for FCALL).
pub struct Invocation<'a> {
    pub func: c_int,
    pub mode: RunMode,
    /// Bytes, not text: EVALSHA's name is the client's argument (hex checked), and
    /// validating it as UTF-8 on every run only matters to an error reply.
    pub name: &'a [u8],
    pub keys: &'a [&'a [u8]],
    pub args: &'a [&'a [u8]],
}

/// Registry key of [`read_error_trampoline`].
static READ_ERROR_KEY: u8 = 0;

/// How a run ended: its reply is in the output, or it failed with Redis's error table,
/// or it could not report: out of memory, or an error table whose metamethods raise.
pub(crate) enum Outcome {
    Replied,
    Failed(ErrorInfo),
    Aborted(String),
}

/// Lends `handler` to the C functions for a run (or a slice of one) and resets what a
/// run starts with. The caller clears `slot.handler` before the borrow ends.
pub(crate) fn lend_handler(slot: &mut RunSlot, handler: &mut dyn CallHandler) {
    let handler: *mut (dyn CallHandler + '_) = handler;
    // SAFETY: the callers clear the pointer before `handler`'s borrow ends; the C
    // functions only use it while the run is in progress.
    slot.handler = Some(unsafe { std::mem::transmute::<*mut (dyn CallHandler + '_), *mut dyn CallHandler>(handler) });
}

/// Pushes `inv`'s function and arguments onto `l` (EVAL's go into the KEYS and ARGV
/// globals); returns how many arguments to call it with.
///
/// # Safety
/// Room for four values on `l`'s stack; in protected mode or with the allocations'
/// failure acceptable as an abort.
unsafe fn push_invocation(l: State, inv: &Invocation) -> c_int {
    ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, inv.func as _);
    match inv.mode {
        RunMode::Eval => {
            ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, (&REAL_GLOBALS_KEY as *const u8).cast());
            let globals = ffi::lua_gettop(l);
            push_array(l, inv.keys);
            rawset_str(l, globals, "KEYS");
            push_array(l, inv.args);
            rawset_str(l, globals, "ARGV");
            ffi::lua_pop(l, 1);
            0
        }
        RunMode::Function => {
            push_array(l, inv.keys);
            push_array(l, inv.args);
            2
        }
    }
}

/// Runs `inv` to completion and writes its reply (or error) to `out`.
pub fn run(l: State, slot: &mut RunSlot, inv: &Invocation, handler: &mut dyn CallHandler, out: &mut ReplyBuf) {
    lend_handler(slot, handler);
    slot.resp3 = false;
    slot.repl = crate::REPL_ALL;
    let before = out.len();
    slot.out = Some(out as *mut ReplyBuf);
    // SAFETY: the slot's handler and output are set for the whole call.
    let outcome = unsafe { execute(l, slot, inv) };
    slot.handler = None;
    slot.out = None;
    settle(out, before, inv.name, outcome);
}

/// The body of every run: push the invocation, call it with Redis's error handler,
/// convert its result into `slot.out`. As in Redis, only the script's call is
/// protected: pushing the arguments and converting the result read tables raw and can
/// fail only on an allocation failure, which aborts the server as it does Redis. Reading
/// the error table may run the script's metamethods, so that is protected.
///
/// # Safety
/// `slot` is the state's run slot with its handler and output set (for every slice of
/// a suspended run); `inv` is valid until the script's function starts; the state is
/// idle (room for LUA_MINSTACK values).
pub(crate) unsafe fn execute(l: State, slot: *mut RunSlot, inv: &Invocation) -> Outcome {
    ffi::lua_settop(l, 0);
    ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, (&HANDLER_KEY as *const u8).cast());
    let nargs = push_invocation(l, inv);
    let outcome = match ffi::lua_pcall(l, nargs, 1, 1) {
        0 => {
            // Stack: handler, result — the depth Redis converts from. The output is the
            // one of the slice the script ended in.
            let slot = &*slot;
            if let Some(out) = slot.out {
                crate::convert::reply_from_lua(l, &mut *out, slot.resp3);
            }
            Outcome::Replied
        }
        ffi::LUA_ERRMEM => Outcome::Aborted(
            to_bytes(l, -1).map_or_else(|| "not enough memory".into(), |b| String::from_utf8_lossy(b).into_owned()),
        ),
        _ => read_error(l),
    };
    ffi::lua_settop(l, 0);
    outcome
}

/// The error value on top of `l` as Redis's error fields, read in protected mode.
unsafe fn read_error(l: State) -> Outcome {
    let mut info: Option<ErrorInfo> = None;
    ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, (&READ_ERROR_KEY as *const u8).cast());
    ffi::lua_insert(l, -2);
    ffi::lua_pushlightuserdata(l, (&mut info as *mut Option<ErrorInfo>).cast::<c_void>());
    if ffi::lua_pcall(l, 2, 0, 0) != 0 {
        // The error table's own metamethods raised.
        let msg = to_bytes(l, -1).map(|b| String::from_utf8_lossy(b).into_owned());
        return Outcome::Aborted(msg.unwrap_or_else(|| "not enough memory".into()));
    }
    match info {
        Some(e) => Outcome::Failed(e),
        None => Outcome::Aborted("not enough memory".into()),
    }
}

unsafe extern "C-unwind" fn read_error_trampoline(l: State) -> c_int {
    let info = &mut *ffi::lua_touserdata(l, 2).cast::<Option<ErrorInfo>>();
    ffi::lua_settop(l, 1);
    *info = Some(extract_error(l));
    0
}

/// Writes a finished run's error reply, if it failed; `before` is where the output
/// stood when the run's last slice started (a conversion cut short is dropped).
pub(crate) fn settle(out: &mut ReplyBuf, before: usize, name: &[u8], outcome: Outcome) {
    match outcome {
        Outcome::Replied => {}
        Outcome::Failed(e) => error_reply(out, name, e),
        Outcome::Aborted(msg) => {
            out.truncate(before);
            out.error(&format!("ERR Error running script {}, {msg}", String::from_utf8_lossy(name)));
        }
    }
}

/// Redis's reply for a failed script: `-<err> script: <name>, on <source>:<line>.`
fn error_reply(out: &mut ReplyBuf, name: &[u8], e: ErrorInfo) {
    let mut line = e.msg.unwrap_or_else(|| b"ERR Error running script (the error object had no message)".to_vec());
    if let (Some(source), Some(n)) = (e.source, e.line) {
        line.extend_from_slice(b" script: ");
        line.extend_from_slice(name);
        line.extend_from_slice(b", on ");
        line.extend_from_slice(&source);
        line.push(b':');
        line.extend_from_slice(&n);
        line.push(b'.');
    }
    out.error_verbatim(&line, !e.counted);
}

pub(crate) unsafe fn push_array(l: State, items: &[&[u8]]) {
    ffi::lua_createtable(l, items.len() as c_int, 0);
    for (i, item) in items.iter().enumerate() {
        push_bytes(l, item);
        ffi::lua_rawseti(l, -2, (i + 1) as _);
    }
}

/// Reads Redis's error table (on top) into owned bytes.
unsafe fn extract_error(l: State) -> ErrorInfo {
    let mut e = ErrorInfo::default();
    if ffi::lua_type(l, -1) != ffi::LUA_TTABLE {
        e.msg = to_bytes(l, -1).map(|m| [b"ERR ", m].concat());
        return e;
    }
    let field = |name: &std::ffi::CStr| -> Option<Vec<u8>> {
        ffi::lua_getfield(l, -1, name.as_ptr());
        let v = if ffi::lua_isstring(l, -1) != 0 { to_bytes(l, -1).map(<[u8]>::to_vec) } else { None };
        ffi::lua_pop(l, 1);
        v
    };
    e.msg = field(c"err");
    e.source = field(c"source");
    e.line = field(c"line");
    ffi::lua_getfield(l, -1, c"ignore_error_stats_update".as_ptr());
    e.counted = ffi::lua_type(l, -1) == ffi::LUA_TBOOLEAN && ffi::lua_toboolean(l, -1) != 0;
    ffi::lua_pop(l, 1);
    e
}
