//! Runs that can be suspended: a script past `busy-reply-threshold` hands control back to
//! the server between slices, so that other clients get their `-BUSY` replies and SCRIPT
//! KILL / FUNCTION KILL get in (see docs/ARCHITECTURE.md, "Long scripts").
//!
//! The script runs as a Lua coroutine. Its count hook (every 100,000 instructions, as
//! Redis's) yields once the run is past its deadline and may yield: Lua 5.1 lets a count
//! hook yield, but `lua_yield` *raises* when the coroutine is inside a C call (a `pcall`,
//! a `table.sort` comparator, a metamethod), and the test for that (`nCcalls >
//! baseCcalls`) is not in Lua's API. [`Yieldable`] reads the two counters from the
//! `lua_State` layout of Lua 5.1.5, after checking once on a live coroutine that they
//! behave as expected; where they do not, runs never yield (and then finish in one go, as
//! before). A kill request makes the hook raise Redis's error, then raise again on every
//! line so that `pcall` cannot swallow it. A loop inside `pcall` yields too: in yielding
//! runs `pcall` is made of coroutines that pass the yield up (see [`crate::pcall`]).

use crate::lua::State;
use crate::run::{annotate_error, error_reply, extract_error, lend_handler, push_invocation, Invocation};
use crate::sandbox::{RunSlot, SLOT_KEY};
use crate::CallHandler;
use ferrokv_resp::ReplyBuf;
use mlua_sys as ffi;
use std::ffi::c_int;
use std::sync::OnceLock;
use std::time::Instant;

/// How many instructions run between two looks at the clock (Redis's hook period).
const HOOK_PERIOD: c_int = 100_000;

/// Where `nCcalls` and `baseCcalls` (two `unsigned short`) sit in Lua 5.1.5's
/// `lua_State` on a 64-bit target: after the GC header (pointer and two bytes), `status`,
/// eight pointers and two ints.
const NCCALLS_OFFSET: usize = 96;

/// Whether the layout assumption holds in this build (checked once).
static LAYOUT_OK: OnceLock<bool> = OnceLock::new();

/// A suspended run: the coroutine (kept alive by a registry reference) and what its
/// reply needs.
pub struct Suspended {
    co: State,
    co_ref: c_int,
    name: String,
}

/// What a step of a run ended with.
pub enum Step {
    Done,
    Suspended(Suspended),
}

/// Reads C-call depth counters from a coroutine.
struct Yieldable;

impl Yieldable {
    /// True when `lua_yield` on `co` would not raise.
    unsafe fn at(co: State) -> bool {
        if !*LAYOUT_OK.get_or_init(check_layout) {
            return false;
        }
        let (n, base) = counters(co);
        n == base
    }
}

unsafe fn counters(co: State) -> (u16, u16) {
    let p = co.cast::<u8>().add(NCCALLS_OFFSET).cast::<u16>();
    (p.read_unaligned(), p.add(1).read_unaligned())
}

/// Runs a small script in a coroutine with a hook on every instruction and checks what
/// the counters say at top level (equal) and inside a `pcall` (greater).
fn check_layout() -> bool {
    static SEEN: std::sync::Mutex<(bool, bool, bool)> = std::sync::Mutex::new((false, false, false));
    unsafe extern "C-unwind" fn probe(co: State, _ar: *mut ffi::lua_Debug) {
        let (n, base) = counters(co);
        if let Ok(mut seen) = SEEN.lock() {
            if n == base {
                seen.0 = true;
            } else if n > base && n - base < 8 {
                seen.1 = true;
            } else {
                seen.2 = true;
            }
        }
    }
    // SAFETY: a private state used only here; the probe reads two u16 inside lua_State,
    // which is larger than the offset read on every supported target.
    unsafe {
        let l = ffi::luaL_newstate();
        if l.is_null() {
            return false;
        }
        ffi::luaL_openlibs(l);
        let co = ffi::lua_newthread(l);
        let code = b"local x = 0 for i = 1, 3 do x = x + i end pcall(function() for i = 1, 3 do x = x + i end end)";
        let ok = ffi::luaL_loadbuffer(co, code.as_ptr().cast(), code.len(), c"=probe".as_ptr()) == 0;
        let ran = ok && {
            ffi::lua_sethook(co, Some(probe), ffi::LUA_MASKCOUNT, 1);
            ffi::lua_resume_(co, 0) == 0
        };
        ffi::lua_close(l);
        let seen = SEEN.lock().map(|s| *s).unwrap_or((false, false, true));
        let good = ran && seen.0 && seen.1 && !seen.2;
        if !good {
            log::warn!("Lua state layout check failed: long scripts will not let other clients in");
        }
        good
    }
}

/// True when `lua_yield` on `co` would not raise (see [`Yieldable`]).
///
/// # Safety
/// `co` is a live thread.
pub(crate) unsafe fn may_yield(co: State) -> bool {
    Yieldable::at(co)
}

/// Gives `co` the count hook of yielding runs.
///
/// # Safety
/// `co` is a live thread.
pub(crate) unsafe fn set_hook(co: State) {
    ffi::lua_sethook(co, Some(hook), ffi::LUA_MASKCOUNT, HOOK_PERIOD);
}

/// Gives `co` the hook of a run being killed: it raises at every line.
///
/// # Safety
/// `co` is a live thread.
pub(crate) unsafe fn set_kill_hook(co: State) {
    ffi::lua_sethook(co, Some(hook), ffi::LUA_MASKLINE, 0);
}

/// Starts `inv` as a coroutine of `l`; returns whether it finished (its reply, or
/// error, is then in `out`) or is suspended.
pub fn start(
    l: State,
    slot: &mut RunSlot,
    inv: &Invocation,
    handler: &mut dyn CallHandler,
    out: &mut ReplyBuf,
) -> Step {
    slot.resp3 = false;
    slot.repl = crate::REPL_ALL;
    slot.kill = false;
    // SAFETY: the state is idle; the coroutine is anchored in the registry before any
    // allocation can collect it.
    let (co, co_ref, nargs) = unsafe {
        if ffi::lua_checkstack(l, 4) == 0 {
            out.error("ERR reached lua stack limit");
            return Step::Done;
        }
        let (co, co_ref) = match slot.spare.take() {
            Some(spare) => spare,
            None => {
                let co = ffi::lua_newthread(l);
                (co, ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX))
            }
        };
        let nargs = push_invocation(co, inv);
        set_hook(co);
        (co, co_ref, nargs)
    };
    step(l, slot, Run { co, co_ref, name: inv.name }, nargs, handler, out)
}

/// Runs a suspended coroutine for one more slice.
pub fn resume(l: State, slot: &mut RunSlot, s: Suspended, handler: &mut dyn CallHandler, out: &mut ReplyBuf) -> Step {
    step(l, slot, Run { co: s.co, co_ref: s.co_ref, name: &s.name }, 0, handler, out)
}

/// A run's coroutine for one slice; its name is copied only if it suspends (a copy per
/// run was an allocation per EVALSHA).
struct Run<'a> {
    co: State,
    co_ref: c_int,
    name: &'a str,
}

fn step(
    l: State,
    slot: &mut RunSlot,
    s: Run<'_>,
    nargs: c_int,
    handler: &mut dyn CallHandler,
    out: &mut ReplyBuf,
) -> Step {
    // Cleared below, before the handler's borrow ends.
    lend_handler(slot, handler);
    // SAFETY: `co` is alive (anchored) and suspended or fresh; resuming runs Lua code
    // whose errors are caught by lua_resume.
    slot.running_co = Some(s.co);
    let rc = unsafe { ffi::lua_resume_(s.co, nargs) };
    slot.running_co = None;
    slot.handler = None;
    if rc == ffi::LUA_YIELD {
        return Step::Suspended(Suspended { co: s.co, co_ref: s.co_ref, name: s.name.to_owned() });
    }
    // SAFETY: the run is over; its transparent coroutines belong to `l`.
    unsafe { crate::pcall::forget_transparent(l, slot) };
    // SAFETY: the coroutine finished (or died); what it left is on its stack.
    unsafe {
        if rc == 0 {
            if ffi::lua_gettop(s.co) == 0 {
                ffi::lua_pushnil(s.co);
            }
            ffi::lua_settop(s.co, 1);
            crate::convert::reply_from_lua(s.co, out, slot.resp3);
            ffi::lua_settop(s.co, 0);
            slot.spare = Some((s.co, s.co_ref));
            return Step::Done;
        } else if ffi::lua_gettop(s.co) == 0 || ffi::lua_checkstack(l, 6) == 0 {
            out.error(&format!("ERR Error running script {}, not enough memory", s.name));
        } else {
            // The error value moves to the main state; the dead coroutine's frames still
            // say where it was raised.
            let top = ffi::lua_gettop(l);
            ffi::lua_xmove(s.co, l, 1);
            ffi::lua_insert(l, 1);
            annotate_in_place(l, s.co);
            let e = extract_error(l);
            ffi::lua_remove(l, 1);
            ffi::lua_settop(l, top - 1);
            error_reply(out, s.name, e);
        }
        ffi::lua_settop(s.co, 0);
        ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, s.co_ref);
    }
    Step::Done
}

/// Builds Redis's error table from the value at index 1 (protected: building it
/// allocates).
unsafe fn annotate_in_place(l: State, co: State) {
    struct Ctx {
        co: State,
    }
    unsafe extern "C-unwind" fn trampoline(l: State) -> c_int {
        let c = &*ffi::lua_touserdata(l, -1).cast::<Ctx>();
        ffi::lua_pop(l, 1);
        // The error value is the first argument of this call's frame: work at index 1.
        annotate_error(l, c.co, 0);
        ffi::lua_pushvalue(l, 1);
        1
    }
    let mut ctx = Ctx { co };
    ffi::lua_pushcfunction(l, trampoline);
    ffi::lua_pushvalue(l, 1);
    ffi::lua_pushlightuserdata(l, (&mut ctx as *mut Ctx).cast());
    if ffi::lua_pcall(l, 2, 1, 0) == 0 {
        ffi::lua_replace(l, 1);
    } else {
        // Out of memory while building the table: report the bare value.
        ffi::lua_pop(l, 1);
    }
}

/// The count hook of yielding runs.
unsafe extern "C-unwind" fn hook(co: State, ar: *mut ffi::lua_Debug) {
    ffi::lua_rawgetp(co, ffi::LUA_REGISTRYINDEX, (&SLOT_KEY as *const u8).cast());
    let slot = ffi::lua_touserdata(co, -1).cast::<RunSlot>();
    ffi::lua_pop(co, 1);
    if slot.is_null() {
        return;
    }
    if (*slot).kill {
        // From now on every line raises, so no pcall can keep the script running (in
        // the pcalls' own coroutines up the chain too).
        set_kill_hook(co);
        for &(c, _) in &(*slot).transparent {
            set_kill_hook(c);
        }
        if let Some(run) = (*slot).running_co {
            set_kill_hook(run);
        }
        if crate::pcall::in_wrapper(co, ar) {
            // The script's next line raises, as on Redis (whose pcall has no lines).
            return;
        }
        crate::api::push_error_table(co, b"Script killed by user with SCRIPT KILL...");
        ffi::lua_error(co);
    }
    if let Some(t) = (*slot).yield_after {
        if Instant::now() >= t && crate::pcall::yieldable_innermost(&*slot) == Some(co) {
            ffi::lua_yield(co, 0);
        }
    }
}
