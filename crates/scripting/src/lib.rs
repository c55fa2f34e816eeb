//! The scripting host: the one Lua interpreter a ferrokv server embeds, as Redis 7.0 does.
//!
//! - [`Scripting`] owns a Lua 5.1 state set up like Redis's: the libraries it preloads
//!   (base, table, string, math, `cjson`, `struct`, `cmsgpack`, `bit`), the `redis` table,
//!   and Redis's sandbox (no `os`/`io`/`loadfile`/`dofile`/`print`, globals and library
//!   tables read-only, reads of unknown globals refused, no bytecode loading).
//! - It keeps the EVAL script cache (SHA1 of the body → compiled function and flags).
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
mod rand48;
mod register;
mod run;
mod sandbox;
mod vm;

pub use flags::{parse_shebang, ScriptFlags};
pub use functions::{Function, Functions, Library, RestorePolicy, LOAD_TIMEOUT};
pub use run::RunMode;

use ferrokv_resp::Argv;
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

/// A cached EVAL script. Its body is not kept: once compiled nothing needs it (Redis
/// keeps it for its debugger), and at a few hundred bytes it was the largest part of a
/// cached script outside the Lua heap.
pub struct Script {
    pub flags: ScriptFlags,
    /// The compiled function, in the Lua registry.
    func: c_int,
}

/// What the cache is keyed by: the SHA1 in binary, half the bytes of its hex name in
/// each of the table's slots.
type Key = [u8; 20];

/// Each byte's value as a hex digit (either case), or 0xff.
static NIBBLES: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = match c as u8 {
            b'0'..=b'9' => c as u8 - b'0',
            b'a'..=b'f' => c as u8 - b'a' + 10,
            b'A'..=b'F' => c as u8 - b'A' + 10,
            _ => 0xff,
        };
        c += 1;
    }
    t
};

/// The binary SHA1 of a hex name (either case); None if `sha` is not one. Every EVALSHA
/// decodes one: a table and one check at the end cost a third of a digit-by-digit
/// `match` with an early exit (about 580 instructions a lookup before).
fn key(sha: &[u8]) -> Option<Key> {
    let sha: &[u8; 40] = sha.try_into().ok()?;
    let mut k = [0u8; 20];
    let mut bad = 0u8;
    for (out, pair) in k.iter_mut().zip(sha.chunks_exact(2)) {
        let (hi, lo) = (NIBBLES[pair[0] as usize], NIBBLES[pair[1] as usize]);
        bad |= hi | lo;
        *out = hi << 4 | lo;
    }
    (bad < 16).then_some(k)
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
    vm: vm::LuaVm,
    scripts: ahash::AHashMap<Key, Script>,
}

// SAFETY: the Lua state is only ever touched through `&mut Scripting` (or `&Scripting`
// for read-only queries that do not run Lua code), so it is never used from two threads
// at once; moving it between threads is fine for Lua.
unsafe impl Send for Scripting {}

impl Scripting {
    /// A fresh interpreter. `version` is what scripts see as `redis.REDIS_VERSION`.
    pub fn new(version: &'static str) -> Scripting {
        Scripting { vm: vm::LuaVm::new(version, sandbox::new_state), scripts: Default::default() }
    }

    /// The cached script named `sha` (hex).
    pub fn get(&self, sha: &Sha) -> Option<&Script> {
        self.scripts.get(&key(sha)?)
    }

    pub fn contains(&self, sha: &[u8]) -> bool {
        key(sha).is_some_and(|k| self.scripts.contains_key(&k))
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
        let k = key(&sha).expect("sha1hex is hex");
        if self.scripts.contains_key(&k) {
            return Ok(sha);
        }
        let (flags, shebang_len) = parse_shebang(body)?;
        let func = run::compile(self.vm.state(), &body[shebang_len..], "@user_script")
            .map_err(|e| format!("Error compiling script (new function): {e}"))?;
        self.scripts.insert(k, Script { flags, func });
        Ok(sha)
    }

    /// SCRIPT FLUSH: forgets every script and starts a fresh interpreter (as Redis does),
    /// so nothing a script did to the Lua state survives. The random generator's state
    /// is kept (Redis's is a process global).
    pub fn flush(&mut self) {
        self.scripts = Default::default();
        self.vm.reset();
    }

    /// Memory used by the interpreter (INFO `used_memory_lua`, Redis's KB granularity).
    pub fn lua_memory(&self) -> usize {
        // SAFETY: LUA_GCCOUNT only reads a counter.
        unsafe { ffi::lua_gc(self.vm.state(), ffi::LUA_GCCOUNT, 0) as usize * 1024 }
    }

    /// Memory held by the script cache (INFO `used_memory_scripts_eval`).
    pub fn scripts_memory(&self) -> usize {
        // The table's slots and their control bytes (hashbrown's layout); the compiled
        // functions are in the Lua heap.
        let cap = self.scripts.capacity();
        let slots = if cap == 0 { 0 } else { (cap * 8 / 7).next_power_of_two() };
        slots * (std::mem::size_of::<(Key, Script)>() + 1)
    }

    /// Runs the cached script `sha` (it must be cached: see [`Scripting::load`]) with
    /// `keys` and `args`, writing its result (or error) to `out`. With `yield_after` the
    /// run may hand control back once that instant has passed: false then (continue it
    /// with [`Scripting::resume`]); true once it finished.
    pub fn run_eval(
        &mut self,
        sha: &Sha,
        keys: &[&[u8]],
        args: &[&[u8]],
        handler: &mut dyn CallHandler,
        out: &mut ferrokv_resp::ReplyBuf,
        yield_after: Option<std::time::Instant>,
    ) -> bool {
        let Some(script) = self.get(sha) else {
            out.error("NOSCRIPT No matching script. Please use EVAL.");
            return true;
        };
        let inv = run::Invocation { func: script.func, mode: RunMode::Eval, name: sha, keys, args };
        self.vm.run(&inv, handler, out, yield_after)
    }

    /// Runs the suspended script for one more slice; true once it finished.
    pub fn resume(&mut self, handler: &mut dyn CallHandler, out: &mut ferrokv_resp::ReplyBuf) -> bool {
        self.vm.resume(handler, out)
    }

    /// SCRIPT KILL: the suspended script raises Redis's error at its next hook.
    pub fn kill(&mut self) {
        self.vm.kill();
    }
}
