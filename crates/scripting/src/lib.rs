//! The scripting host: the one Lua interpreter a ferrokv server embeds, as Redis 7.0 does.
//!
//! - [`Scripting`] owns a Lua 5.1 state set up like Redis's: the libraries it preloads
//!   (base, table, string, math, `cjson`, `struct`, `cmsgpack`, `bit`), the `redis` table,
//!   and Redis's sandbox (no `os`/`io`/`loadfile`/`dofile`/`print`, globals and library
//!   tables read-only, reads of unknown globals refused, no bytecode loading).
//! - It keeps the EVAL script cache (SHA1 of the body → compiled function, flags, body).
//! - It runs a script: the engine passes the keys and arguments, a [`CallHandler`]
//!   through which `redis.call` runs commands, and the caller's reply buffer, which
//!   receives the script's result converted from Lua as Redis converts it.
//!
//! - [`Functions`] is the functions engine (FUNCTION LOAD, FCALL): a second Lua state with
//!   the same sandbox, holding the loaded libraries.
//!
//! The engine sees only this narrow interface (bytes in, RESP out): no Lua type leaks.
//! How Redis's read-only tables are obtained from a stock Lua is explained in
//! [`sandbox`]; why the C API is used directly, in [`lua`].

mod api;
mod convert;
mod coroutine;
mod flags;
mod functions;
mod libs;
mod lua;
mod pcall;
mod rand48;
mod register;
mod run;
mod sandbox;

pub use flags::{parse_shebang, ScriptFlags};
pub use functions::{Function, Functions, Library, RestorePolicy, LOAD_TIMEOUT};
pub use run::RunMode;

use ferrokv_resp::Argv;
use lua::State;
use mlua_sys as ffi;
use std::ffi::c_int;

/// A script's SHA1 in lowercase hex (the EVALSHA name).
pub type Sha = [u8; 40];

/// `redis.set_repl` flags: where the script's writes are propagated.
pub const REPL_AOF: u8 = 1;
pub const REPL_REPLICA: u8 = 2;
pub const REPL_ALL: u8 = REPL_AOF | REPL_REPLICA;

/// How a command called from a script must run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallOptions {
    /// The protocol the script asked for with `redis.setresp` (RESP2 by default).
    pub resp3: bool,
    /// `redis.set_repl`'s choice for this command's writes.
    pub repl: u8,
}

/// What a running script needs from the server. The engine implements it for the
/// duration of one script run.
pub trait CallHandler {
    /// Runs `argv` on behalf of the script (`redis.call`/`redis.pcall`), writing the
    /// reply as RESP (RESP3 if `opts.resp3`) into `reply`. `Err` is a refusal before the
    /// command ran (unknown command, arity, not allowed from scripts, read-only replica,
    /// OOM…): Redis's text, either `"-CODE message"` or a bare message (code `ERR`).
    fn call(&mut self, argv: &Argv, opts: CallOptions, reply: &mut Vec<u8>) -> Result<(), String>;
    /// `redis.acl_check_cmd`: whether the script's user may run `argv`; None when no
    /// such command exists.
    fn acl_check(&mut self, argv: &Argv) -> Option<bool>;
    /// `redis.log` at Redis's level numbers (0 debug … 3 warning).
    fn log(&mut self, level: i32, msg: &[u8]);
}

/// A cached EVAL script.
pub struct Script {
    pub body: Box<[u8]>,
    pub flags: ScriptFlags,
    /// The compiled function, in the Lua registry.
    func: c_int,
}

/// Lowercase hex SHA1 of `data` (script names, `redis.sha1hex`).
pub fn sha1hex(data: &[u8]) -> Sha {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(data);
    let mut out = [0u8; 40];
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = b"0123456789abcdef"[(b >> 4) as usize];
        out[2 * i + 1] = b"0123456789abcdef"[(b & 15) as usize];
    }
    out
}

/// The interpreter and the script cache.
pub struct Scripting {
    l: State,
    /// Per-run state the C functions reach through an upvalue (stable address).
    slot: Box<sandbox::RunSlot>,
    scripts: ahash::AHashMap<Sha, Script>,
    /// Bytes of cached bodies (INFO `used_memory_scripts_eval`).
    scripts_bytes: usize,
    /// Runs since the last incremental GC step (Redis steps the collector every 50).
    gc_countdown: u32,
    /// A run handed control back past its deadline (see [`Scripting::start_eval`]).
    suspended: Option<coroutine::Suspended>,
}

// SAFETY: the Lua state is only ever touched through `&mut Scripting` (or `&Scripting`
// for read-only queries that do not run Lua code), so it is never used from two threads
// at once; moving it between threads is fine for Lua.
unsafe impl Send for Scripting {}

impl Scripting {
    /// A fresh interpreter. `version` is what scripts see as `redis.REDIS_VERSION`.
    pub fn new(version: &'static str) -> Scripting {
        let mut slot = Box::new(sandbox::RunSlot::default());
        let l = sandbox::new_state(&mut slot, version);
        Scripting { l, slot, scripts: Default::default(), scripts_bytes: 0, gc_countdown: 50, suspended: None }
    }

    /// The cached script named `sha` (lowercase hex).
    pub fn get(&self, sha: &Sha) -> Option<&Script> {
        self.scripts.get(sha)
    }

    pub fn contains(&self, sha: &[u8]) -> bool {
        <&Sha>::try_from(sha).is_ok_and(|s| self.scripts.contains_key(s))
    }

    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    /// Compiles and caches `body` unless cached already; returns its SHA. The error is
    /// Redis's text without the `ERR ` code (shebang errors, compile errors).
    pub fn load(&mut self, body: &[u8]) -> Result<Sha, String> {
        let sha = sha1hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, shebang_len) = parse_shebang(body)?;
        let func = run::compile(self.l, &body[shebang_len..], "@user_script")
            .map_err(|e| format!("Error compiling script (new function): {e}"))?;
        self.scripts_bytes += body.len() + sha.len();
        self.scripts.insert(sha, Script { body: body.into(), flags, func });
        Ok(sha)
    }

    /// SCRIPT FLUSH: forgets every script and starts a fresh interpreter (as Redis does),
    /// so nothing a script did to the Lua state survives. The random generator's state
    /// is kept (Redis's is a process global).
    pub fn flush(&mut self) {
        let rand = std::mem::take(&mut self.slot.rand);
        // SAFETY: the state is ours and no run is in progress (`&mut self`).
        unsafe { ffi::lua_close(self.l) };
        self.scripts.clear();
        self.scripts_bytes = 0;
        self.slot.rand = rand;
        self.slot.spare = None;
        self.slot.pcall_pool.clear();
        self.slot.transparent.clear();
        let version = self.slot.version;
        self.l = sandbox::new_state(&mut self.slot, version);
    }

    /// Memory used by the interpreter (INFO `used_memory_lua`, Redis's KB granularity).
    pub fn lua_memory(&self) -> usize {
        // SAFETY: LUA_GCCOUNT only reads a counter.
        unsafe { ffi::lua_gc(self.l, ffi::LUA_GCCOUNT, 0) as usize * 1024 }
    }

    /// Memory held by the script cache (INFO `used_memory_scripts_eval`).
    pub fn scripts_memory(&self) -> usize {
        self.scripts_bytes + self.scripts.len() * (std::mem::size_of::<Script>() + 48)
    }

    /// Runs the cached script `sha` (it must be cached: see [`Scripting::load`]) with
    /// `keys` and `args`, writing its result (or error) to `out`. `name` is the name
    /// errors mention (the SHA for EVAL).
    pub fn run_eval(
        &mut self,
        sha: &Sha,
        keys: &[&[u8]],
        args: &[&[u8]],
        handler: &mut dyn CallHandler,
        out: &mut ferrokv_resp::ReplyBuf,
    ) {
        let Some(script) = self.scripts.get(sha) else {
            out.error("NOSCRIPT No matching script. Please use EVAL.");
            return;
        };
        let func = script.func;
        let name = std::str::from_utf8(sha).unwrap_or("?");
        run::run(self.l, &mut self.slot, func, RunMode::Eval, name, keys, args, handler, out);
        self.after_run();
    }

    /// Like [`Scripting::run_eval`], but the run may hand control back once `yield_after`
    /// has passed: true if it finished (its reply is in `out`), false if it is suspended
    /// (continue it with [`Scripting::resume`]).
    pub fn start_eval(
        &mut self,
        sha: &Sha,
        keys: &[&[u8]],
        args: &[&[u8]],
        handler: &mut dyn CallHandler,
        out: &mut ferrokv_resp::ReplyBuf,
        yield_after: std::time::Instant,
    ) -> bool {
        let Some(script) = self.scripts.get(sha) else {
            out.error("NOSCRIPT No matching script. Please use EVAL.");
            return true;
        };
        let func = script.func;
        let name = std::str::from_utf8(sha).unwrap_or("?");
        self.slot.yield_after = Some(yield_after);
        let step = coroutine::start(self.l, &mut self.slot, func, RunMode::Eval, name, keys, args, handler, out);
        self.settle(step)
    }

    /// Runs the suspended script for one more slice; true once it finished.
    pub fn resume(&mut self, handler: &mut dyn CallHandler, out: &mut ferrokv_resp::ReplyBuf) -> bool {
        match self.suspended.take() {
            Some(s) => {
                let step = coroutine::resume(self.l, &mut self.slot, s, handler, out);
                self.settle(step)
            }
            None => true,
        }
    }

    /// SCRIPT KILL: the suspended script raises Redis's error at its next hook.
    pub fn kill(&mut self) {
        self.slot.kill = true;
    }

    fn settle(&mut self, step: coroutine::Step) -> bool {
        match step {
            coroutine::Step::Suspended(s) => {
                self.suspended = Some(s);
                false
            }
            coroutine::Step::Done => {
                self.slot.yield_after = None;
                self.slot.kill = false;
                self.after_run();
                true
            }
        }
    }

    /// Redis steps the collector every 50 runs rather than letting a full cycle land in
    /// one script.
    fn after_run(&mut self) {
        self.gc_countdown -= 1;
        if self.gc_countdown == 0 {
            self.gc_countdown = 50;
            // SAFETY: a GC step runs no Lua code we did not write (no __gc metamethods
            // are reachable: scripts cannot create userdata with finalizers).
            unsafe { ffi::lua_gc(self.l, ffi::LUA_GCSTEP, 50) };
        }
    }
}

impl Drop for Scripting {
    fn drop(&mut self) {
        // SAFETY: the state is ours; nothing uses it after this.
        unsafe { ffi::lua_close(self.l) };
    }
}
