//! Functions (FUNCTION LOAD, FCALL): libraries of named Lua functions, as Redis 7.0 keeps
//! them.
//!
//! Redis runs functions in a Lua state of their own, apart from EVAL's, with the same
//! sandbox; every library lives in that one state. A library is its code (which starts
//! with `#!lua name=<lib>`), loaded by running its top-level code once in a restricted
//! environment (see [`crate::register`]); the functions it registers are kept as registry
//! references. Function names are unique across libraries, compared without case (as
//! Redis's function dictionary does); library names are compared exactly.

use crate::flags::ScriptFlags;
use crate::lua::State;
use crate::register::{self, Registered};
use crate::run::RunMode;
use crate::sandbox::RunSlot;
use crate::CallHandler;
use mlua_sys as ffi;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a library's top-level code may run on FUNCTION LOAD (Redis's
/// LOAD_TIMEOUT_MS).
pub const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

/// A registered function.
pub struct Function {
    pub name: Box<[u8]>,
    pub desc: Option<Box<[u8]>>,
    pub flags: ScriptFlags,
    func: std::ffi::c_int,
}

/// A loaded library.
pub struct Library {
    pub name: Box<[u8]>,
    /// The code as given to FUNCTION LOAD, shebang included (FUNCTION LIST WITHCODE,
    /// DUMP, RDB files and AOF rewrites carry exactly this).
    pub code: Box<[u8]>,
    /// In registration order.
    pub functions: Vec<Function>,
}

impl Library {
    /// Bookkeeping bytes, as counted in INFO `used_memory_functions`.
    fn overhead(&self) -> usize {
        64 + 2 * self.name.len()
            + self.code.len()
            + self
                .functions
                .iter()
                .map(|f| 64 + 2 * f.name.len() + f.desc.as_ref().map_or(0, |d| d.len()))
                .sum::<usize>()
    }
}

/// Libraries and the function index over them.
#[derive(Default)]
struct LibSet {
    libs: BTreeMap<Box<[u8]>, Library>,
    /// Lowercase function name → what FCALL needs of it, so a call is one hash lookup
    /// (through the library map it was three lookups, ~320 instructions, done twice per
    /// FCALL).
    index: ahash::AHashMap<Box<[u8]>, Indexed>,
    /// The libraries' bookkeeping bytes (INFO `used_memory_functions`), kept as they
    /// come and go: every script run saves the INFO figures, and a sum over the
    /// libraries there cost a walk of them all per FCALL.
    overhead: usize,
}

/// A function as FCALL finds it.
struct Indexed {
    /// The name as registered (what errors mention).
    name: Box<[u8]>,
    flags: ScriptFlags,
    func: std::ffi::c_int,
}

impl LibSet {
    fn link(&mut self, lib: Library) {
        for f in &lib.functions {
            let entry = Indexed { name: f.name.clone(), flags: f.flags, func: f.func };
            self.index.insert(f.name.to_ascii_lowercase().into(), entry);
        }
        self.overhead += lib.overhead();
        self.libs.insert(lib.name.clone(), lib);
    }

    fn unlink(&mut self, name: &[u8]) -> Option<Library> {
        let lib = self.libs.remove(name)?;
        self.overhead -= lib.overhead();
        for f in &lib.functions {
            self.index.remove(&*f.name.to_ascii_lowercase());
        }
        Some(lib)
    }

    fn has_function(&self, name: &[u8]) -> bool {
        self.index.contains_key(&*name.to_ascii_lowercase())
    }

    /// The function called `name` (any case). The index is keyed by lowercase names: a
    /// name already in lowercase, as most callers write it, is looked up without a copy.
    fn get(&self, name: &[u8]) -> Option<&Indexed> {
        match name.iter().any(u8::is_ascii_uppercase) {
            false => self.index.get(name),
            true => self.index.get(&*name.to_ascii_lowercase()),
        }
    }
}

/// How FUNCTION RESTORE treats the libraries already loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestorePolicy {
    Flush,
    Append,
    Replace,
}

/// The functions engine: its Lua state and the loaded libraries.
pub struct Functions {
    vm: crate::vm::LuaVm,
    set: LibSet,
}

// SAFETY: as for `Scripting`: the state is only used through `&mut Functions`.
unsafe impl Send for Functions {}

/// `[a-zA-Z0-9_]+`: what Redis accepts as a library or function name.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The library name and the start of the code proper (the shebang's newline) from a
/// library's first line, with Redis's error texts.
fn parse_metadata(code: &[u8]) -> Result<(Box<[u8]>, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let parts = match ferrokv_resp::args::split_args(&code[..end]) {
        Ok(p) if !p.is_empty() => p,
        _ => return Err("Invalid library metadata".into()),
    };
    let mut name: Option<Box<[u8]>> = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err("Invalid metadata value, name argument was given multiple times".into());
            }
            name = Some(part[5..].into());
            continue;
        }
        return Err(format!("Invalid metadata value given: {}", String::from_utf8_lossy(part)));
    }
    let Some(name) = name else { return Err("Library name was not given".into()) };
    if !valid_name(&name) {
        return Err(
            "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"
                .into(),
        );
    }
    let engine = parts[0].get(2..).unwrap_or_default();
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!("Engine '{}' not found", String::from_utf8_lossy(engine)));
    }
    Ok((name, end))
}

impl Functions {
    pub fn new(version: &'static str) -> Functions {
        Functions { vm: crate::vm::LuaVm::new(version, new_functions_state), set: LibSet::default() }
    }

    /// FUNCTION LOAD: compiles `code` and loads its library (replacing one of the same
    /// name if `replace`). `timeout` None lifts the load-time limit. Returns the library
    /// name, or Redis's message without the `ERR ` code.
    pub fn load(&mut self, code: &[u8], replace: bool, timeout: Option<Duration>) -> Result<Box<[u8]>, String> {
        let mut set = std::mem::take(&mut self.set);
        let r = self.create(code, replace, timeout, &mut set);
        self.set = set;
        r
    }

    /// Loads one library into `set`.
    fn create(
        &mut self,
        code: &[u8],
        replace: bool,
        timeout: Option<Duration>,
        set: &mut LibSet,
    ) -> Result<Box<[u8]>, String> {
        let (name, body_at) = parse_metadata(code)?;
        if set.libs.contains_key(&name) && !replace {
            return Err(format!("Library '{}' already exists", String::from_utf8_lossy(&name)));
        }
        let l = self.vm.state();
        let chunk = crate::run::compile(l, &code[body_at..], "@user_function")
            .map_err(|e| format!("Error compiling function: {e}"))?;
        let registered = register::run_load(l, self.vm.slot_mut(), chunk, timeout)?;
        if registered.is_empty() {
            return Err("No functions registered".into());
        }
        let old = set.unlink(&name);
        if let Some(clash) = registered.iter().find(|f| set.has_function(&f.name)) {
            let msg = format!("Function {} already exists", String::from_utf8_lossy(&clash.name));
            register::release(l, registered);
            if let Some(old) = old {
                set.link(old);
            }
            return Err(msg);
        }
        if let Some(old) = old {
            self.release_lib(old);
        }
        let functions = registered
            .into_iter()
            .map(|Registered { name, desc, flags, func }| Function { name, desc, flags, func })
            .collect();
        set.link(Library { name: name.clone(), code: code.into(), functions });
        Ok(name)
    }

    fn release_lib(&mut self, lib: Library) {
        for f in lib.functions {
            // SAFETY: the reference was taken in this state and is no longer indexed.
            unsafe { ffi::luaL_unref(self.vm.state(), ffi::LUA_REGISTRYINDEX, f.func) };
        }
    }

    /// FUNCTION RESTORE: loads every library of `codes` (the payload's, in order), then
    /// joins them to the loaded ones according to `policy`. All or nothing.
    pub fn restore(&mut self, codes: &[Vec<u8>], policy: RestorePolicy) -> Result<(), String> {
        let mut incoming = LibSet::default();
        for code in codes {
            if let Err(e) = self.create(code, false, None, &mut incoming) {
                self.drop_set(incoming);
                return Err(e);
            }
        }
        if policy == RestorePolicy::Flush {
            let old = std::mem::replace(&mut self.set, incoming);
            self.drop_set(old);
            return Ok(());
        }
        let mut set = std::mem::take(&mut self.set);
        let mut replaced = Vec::new();
        let mut failure = None;
        for name in incoming.libs.keys() {
            if set.libs.contains_key(name) {
                if policy != RestorePolicy::Replace {
                    failure = Some(format!("Library {} already exists", String::from_utf8_lossy(name)));
                    break;
                }
                replaced.extend(set.unlink(name));
            }
        }
        if failure.is_none() {
            failure = incoming
                .libs
                .values()
                .flat_map(|lib| lib.functions.iter())
                .find(|f| set.has_function(&f.name))
                .map(|f| format!("Function {} already exists", String::from_utf8_lossy(&f.name)));
        }
        if let Some(msg) = failure {
            for lib in replaced {
                set.link(lib);
            }
            self.set = set;
            self.drop_set(incoming);
            return Err(msg);
        }
        for lib in replaced {
            self.release_lib(lib);
        }
        for (_, lib) in std::mem::take(&mut incoming.libs) {
            set.link(lib);
        }
        self.set = set;
        Ok(())
    }

    fn drop_set(&mut self, set: LibSet) {
        for (_, lib) in set.libs {
            self.release_lib(lib);
        }
    }

    /// FUNCTION DELETE; false if no such library.
    pub fn delete(&mut self, name: &[u8]) -> bool {
        match self.set.unlink(name) {
            Some(lib) => {
                self.release_lib(lib);
                true
            }
            None => false,
        }
    }

    /// FUNCTION FLUSH: no libraries and a fresh Lua state (as Redis recreates its engine).
    pub fn flush(&mut self) {
        self.set = LibSet::default();
        self.vm.reset();
    }

    /// Libraries in name order.
    pub fn libraries(&self) -> impl Iterator<Item = &Library> {
        self.set.libs.values()
    }

    /// The flags of the function called `name` (any case), if there is one.
    pub fn flags(&self, name: &[u8]) -> Option<ScriptFlags> {
        self.set.get(name).map(|f| f.flags)
    }

    pub fn library_count(&self) -> usize {
        self.set.libs.len()
    }

    pub fn function_count(&self) -> usize {
        self.set.index.len()
    }

    /// INFO `used_memory_vm_functions`: the functions state's Lua memory.
    pub fn vm_memory(&self) -> usize {
        // SAFETY: LUA_GCCOUNT/GCCOUNTB only read counters.
        unsafe {
            let l = self.vm.state();
            ffi::lua_gc(l, ffi::LUA_GCCOUNT, 0) as usize * 1024 + ffi::lua_gc(l, ffi::LUA_GCCOUNTB, 0) as usize
        }
    }

    /// INFO `used_memory_functions`: what the library and function records take (an
    /// estimate with Redis's empty-engine baseline).
    pub fn overhead_memory(&self) -> usize {
        184 + self.set.overhead
    }

    /// Runs the function `name` (see [`Functions::flags`]) with `keys` and
    /// `args`, writing its result (or error) to `out`. With `yield_after` the run may hand
    /// control back once that instant has passed: false then (see [`Functions::resume`]);
    /// true once it finished.
    pub fn call(
        &mut self,
        name: &[u8],
        keys: &[&[u8]],
        args: &[&[u8]],
        handler: &mut dyn CallHandler,
        out: &mut ferrokv_resp::ReplyBuf,
        yield_after: Option<std::time::Instant>,
    ) -> bool {
        let Some(f) = self.set.get(name) else {
            out.error("ERR Function not found");
            return true;
        };
        let inv = crate::run::Invocation { func: f.func, mode: RunMode::Function, name: &f.name, keys, args };
        self.vm.run(&inv, handler, out, yield_after)
    }

    /// Runs the suspended function for one more slice; true once it finished.
    pub fn resume(&mut self, handler: &mut dyn CallHandler, out: &mut ferrokv_resp::ReplyBuf) -> bool {
        self.vm.resume(handler, out)
    }

    /// FUNCTION KILL: the suspended function raises Redis's error at its next hook.
    pub fn kill(&mut self) {
        self.vm.kill();
    }
}

/// The EVAL sandbox plus the load-phase API.
fn new_functions_state(slot: &mut RunSlot, version: &'static str) -> State {
    let l = crate::sandbox::new_state(slot, version);
    unsafe extern "C-unwind" fn setup(l: State) -> std::ffi::c_int {
        let slot = ffi::lua_touserdata(l, 1).cast::<RunSlot>();
        ffi::lua_settop(l, 0);
        register::install_load_api(l, slot);
        0
    }
    // SAFETY: a fresh, idle state; `slot` lives in a Box that outlives the state.
    let rc = unsafe { ffi::lua_cpcall(l, setup, (slot as *mut RunSlot).cast()) };
    assert!(rc == 0, "Lua functions setup failed");
    l
}
