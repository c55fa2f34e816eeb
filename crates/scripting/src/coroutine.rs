//! Runs that can be suspended: a script past `busy-reply-threshold` hands control back to
//! the server between slices, so that other clients get their `-BUSY` replies and SCRIPT
//! KILL / FUNCTION KILL get in (see docs/ARCHITECTURE.md, "Long scripts").
//!
//! A yielding run executes on a stack of its own (a stackful coroutine), with the same
//! body as a run that finishes in one go ([`crate::run::execute`]). Its count hook (every
//! 100,000 instructions, as Redis's) suspends that whole stack once the run is past its
//! deadline, wherever the script is: inside `pcall`, a `table.sort` comparator, a
//! `gsub` callback, a metamethod or a coroutine of its own. Lua 5.1 cannot yield across
//! those C calls, but nothing here asks Lua to yield: the C frames stay where they are,
//! on the side stack, until the next slice switches back to it. So the Lua state sees one
//! uninterrupted protected call, and every Lua function (`pcall`, `xpcall`, `coroutine.*`)
//! is the plain one, with Redis's behaviour by construction.
//!
//! While a run is suspended, its Lua state is in the middle of that call: nothing else
//! may run Lua code on it (the engine answers `-BUSY` to everything that would), and a
//! suspended run is never abandoned except with the state itself (reset or dropped).
//!
//! A kill request makes the hook raise Redis's error, after turning the thread's hook
//! into a line hook (and the main thread's, see [`kill`]) so that every line raises again
//! and no `pcall` can keep the script running.

use crate::lua::State;
use crate::run::{execute, lend_handler, settle, Invocation, Outcome};
use crate::sandbox::{RunSlot, SLOT_KEY};
use crate::CallHandler;
use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult};
use ferrokv_resp::ReplyBuf;
use mlua_sys as ffi;
use std::ffi::c_int;
use std::time::Instant;

/// How many instructions run between two looks at the clock (Redis's hook period).
const HOOK_PERIOD: c_int = 100_000;

/// The side stack's size: the main thread's default, as a script's C calls and the
/// commands it runs would have on the runtime's thread. Pages are committed as touched.
const STACK_SIZE: usize = 8 << 20;

type SideRun = Coroutine<(), (), Outcome, DefaultStack>;

/// A suspended run: its side stack and the name its reply needs.
pub struct Suspended {
    run: Option<SideRun>,
    name: String,
}

impl Drop for Suspended {
    fn drop(&mut self) {
        if let Some(run) = &mut self.run {
            if run.started() && !run.done() {
                // SAFETY: at a suspension point the side stack holds nothing with a
                // destructor (Lua's C frames, the run's context — no error yet — and the
                // hook), so it is dropped without unwinding (unwinding would cross C
                // frames). The Lua state is left inside the abandoned call: its owner
                // closes it before anything else runs on it (`LuaVm::reset`, `drop`).
                unsafe { run.force_reset() };
            }
        }
    }
}

/// What a step of a run ended with.
pub enum Step {
    Done,
    Suspended(Suspended),
}

/// Starts `inv` on a side stack (`spare` if the last run left one); returns whether it
/// finished (its reply, or error, is then in `out`) or is suspended.
pub fn start(
    l: State,
    slot: &mut RunSlot,
    spare: &mut Option<DefaultStack>,
    inv: &Invocation,
    handler: &mut dyn CallHandler,
    out: &mut ReplyBuf,
) -> Step {
    let stack = match spare.take().map_or_else(|| DefaultStack::new(STACK_SIZE), Ok) {
        Ok(stack) => stack,
        Err(e) => {
            // No address space for a stack: the run cannot be suspended, but it can run.
            log::warn!("cannot map a stack for a script ({e}): it runs without letting other clients in");
            crate::run::run(l, slot, inv, handler, out);
            return Step::Done;
        }
    };
    slot.resp3 = false;
    slot.repl = crate::REPL_ALL;
    slot.kill = false;
    let slot_at: *mut RunSlot = slot;
    // The lifetime is erased: `execute` reads the invocation before the script starts,
    // which is inside the first slice, below.
    let inv_at = (inv as *const Invocation).cast::<Invocation<'static>>();
    let run = SideRun::with_stack(stack, move |yielder, ()| {
        // SAFETY: the slot is the VM's boxed slot, alive and in place for the whole run;
        // the invocation is alive during the first slice.
        unsafe {
            (*slot_at).yielder = Some(yielder as *const _);
            let outcome = execute(l, slot_at, &*inv_at);
            (*slot_at).yielder = None;
            outcome
        }
    });
    // SAFETY: `l` is idle; the hook only reads the slot through the registry.
    unsafe { ffi::lua_sethook(l, Some(hook), ffi::LUA_MASKCOUNT, HOOK_PERIOD) };
    step(l, slot, spare, run, inv.name, handler, out)
}

/// Runs a suspended run for one more slice.
pub fn resume(
    l: State,
    slot: &mut RunSlot,
    spare: &mut Option<DefaultStack>,
    mut s: Suspended,
    handler: &mut dyn CallHandler,
    out: &mut ReplyBuf,
) -> Step {
    match s.run.take() {
        Some(run) => step(l, slot, spare, run, &s.name, handler, out),
        None => Step::Done,
    }
}

/// One slice: the handler and the output are lent for its duration only.
fn step(
    l: State,
    slot: &mut RunSlot,
    spare: &mut Option<DefaultStack>,
    mut run: SideRun,
    name: &str,
    handler: &mut dyn CallHandler,
    out: &mut ReplyBuf,
) -> Step {
    lend_handler(slot, handler);
    let before = out.len();
    slot.out = Some(out as *mut ReplyBuf);
    let result = run.resume(());
    slot.handler = None;
    slot.out = None;
    match result {
        CoroutineResult::Yield(()) => Step::Suspended(Suspended { run: Some(run), name: name.to_owned() }),
        CoroutineResult::Return(outcome) => {
            // SAFETY: the run is over; the state is idle.
            unsafe { ffi::lua_sethook(l, None, 0, 0) };
            *spare = Some(run.into_stack());
            settle(out, before, name, outcome);
            Step::Done
        }
    }
}

/// SCRIPT KILL / FUNCTION KILL for the run suspended on `l`: every line of the main
/// thread raises from now on (coroutines of the script raise at their next count hook,
/// then at every line).
///
/// # Safety
/// `l` is the run's state.
pub(crate) unsafe fn kill(l: State) {
    set_kill_hook(l);
}

/// Gives `co` the hook of a run being killed: it raises at every line.
unsafe fn set_kill_hook(co: State) {
    ffi::lua_sethook(co, Some(hook), ffi::LUA_MASKLINE, 0);
}

/// The hook of yielding runs (a count hook; a line hook once the run is being killed).
unsafe extern "C-unwind" fn hook(co: State, _ar: *mut ffi::lua_Debug) {
    ffi::lua_rawgetp(co, ffi::LUA_REGISTRYINDEX, (&SLOT_KEY as *const u8).cast());
    let slot = ffi::lua_touserdata(co, -1).cast::<RunSlot>();
    ffi::lua_pop(co, 1);
    if slot.is_null() {
        return;
    }
    if (*slot).kill {
        set_kill_hook(co);
        crate::api::push_error_table(co, b"Script killed by user with SCRIPT KILL...");
        ffi::lua_error(co);
    }
    if let (Some(deadline), Some(yielder)) = ((*slot).yield_after, (*slot).yielder) {
        if Instant::now() >= deadline {
            // Back to the server; the next slice returns here.
            (*yielder).suspend(());
        }
    }
}
