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
use corosensei::{Coroutine, CoroutineResult, Yielder};
use ferrokv_resp::ReplyBuf;
use mlua_sys as ffi;
use std::ffi::c_int;
use std::time::Instant;

/// How many instructions run between two looks at the clock (Redis's hook period).
const HOOK_PERIOD: c_int = 100_000;

/// The side stack's size: the main thread's default, as a script's C calls and the
/// commands it runs would have on the runtime's thread. Pages are committed as touched.
const STACK_SIZE: usize = 8 << 20;

/// What the worker is asked on a switch to its stack: the invocation to start, or null
/// to go on with the paused one (the hook's `suspend` returns it, unused).
#[derive(Clone, Copy)]
pub struct Job(*const Invocation<'static>);

/// What the worker says on a switch back.
pub enum Event {
    Paused,
    Finished(Outcome),
}

/// The hook's way back to the server, kept in the run slot.
pub type RunYielder = Yielder<Job, Event>;

/// The side stack with the loop that runs jobs on it. One per Lua state (bound to it:
/// dropped when the state is closed), created by its first yielding run and kept:
/// starting a run is one switch to it, not a new coroutine. It never returns.
pub struct Worker {
    co: Coroutine<Job, Event, (), DefaultStack>,
}

impl Worker {
    fn new(l: State, slot: *mut RunSlot) -> std::io::Result<Worker> {
        let stack = DefaultStack::new(STACK_SIZE)?;
        let co = Coroutine::with_stack(stack, move |yielder: &RunYielder, mut job: Job| loop {
            // SAFETY: the slot is the VM's boxed slot, alive and in place while the
            // worker is (the VM owns both); a job's invocation is alive during the
            // slice that starts it, which is when `execute` reads it.
            unsafe {
                (*slot).yielder = Some(yielder as *const RunYielder);
                let outcome = execute(l, slot, &*job.0);
                (*slot).yielder = None;
                job = yielder.suspend(Event::Finished(outcome));
            }
        });
        Ok(Worker { co })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.co.started() && !self.co.done() {
            // SAFETY: the side stack holds nothing with a destructor, between jobs (the
            // loop's raw pointers) or at a pause (Lua's C frames and the hook), so it is
            // dropped without unwinding (which would cross C frames). A paused run leaves
            // the Lua state inside an abandoned call: its owner closes the state before
            // anything else runs on it (`LuaVm::reset`, `drop`).
            unsafe { self.co.force_reset() };
        }
    }
}

/// A paused run: the name its reply needs (the run itself is on the worker's stack).
pub struct Suspended {
    name: Vec<u8>,
}

/// What a step of a run ended with.
pub enum Step {
    Done,
    Suspended(Suspended),
}

/// Starts `inv` on the worker's side stack (made on the first use); returns whether it
/// finished (its reply, or error, is then in `out`) or is suspended.
pub fn start(
    l: State,
    slot: &mut RunSlot,
    worker: &mut Option<Worker>,
    inv: &Invocation,
    handler: &mut dyn CallHandler,
    out: &mut ReplyBuf,
) -> Step {
    if worker.as_ref().is_some_and(|w| w.co.done()) {
        // A panic went through it (a bug): start over on a new stack.
        *worker = None;
    }
    if worker.is_none() {
        match Worker::new(l, slot) {
            Ok(w) => *worker = Some(w),
            Err(e) => {
                // No address space for a stack: the run cannot pause, but it can run.
                log::warn!("cannot map a stack for scripts ({e}): this one runs without letting other clients in");
                crate::run::run(l, slot, inv, handler, out);
                return Step::Done;
            }
        }
    }
    slot.resp3 = false;
    slot.repl = crate::REPL_ALL;
    slot.kill = false;
    // SAFETY: `l` is idle; the hook only reads the slot through the registry.
    unsafe { ffi::lua_sethook(l, Some(hook), ffi::LUA_MASKCOUNT, HOOK_PERIOD) };
    // The lifetime is erased: the worker reads the invocation in this first slice only.
    let job = Job((inv as *const Invocation).cast::<Invocation<'static>>());
    step(l, slot, worker, job, inv.name, handler, out)
}

/// Runs a suspended run for one more slice.
pub fn resume(
    l: State,
    slot: &mut RunSlot,
    worker: &mut Option<Worker>,
    s: Suspended,
    handler: &mut dyn CallHandler,
    out: &mut ReplyBuf,
) -> Step {
    step(l, slot, worker, Job(std::ptr::null()), &s.name, handler, out)
}

/// One slice: the handler and the output are lent for its duration only.
fn step(
    l: State,
    slot: &mut RunSlot,
    worker: &mut Option<Worker>,
    job: Job,
    name: &[u8],
    handler: &mut dyn CallHandler,
    out: &mut ReplyBuf,
) -> Step {
    let Some(w) = worker.as_mut() else { return Step::Done };
    lend_handler(slot, handler);
    let before = out.len();
    slot.out = Some(out as *mut ReplyBuf);
    let event = w.co.resume(job);
    slot.handler = None;
    slot.out = None;
    match event {
        CoroutineResult::Yield(Event::Paused) => Step::Suspended(Suspended { name: name.to_vec() }),
        CoroutineResult::Yield(Event::Finished(outcome)) => {
            // SAFETY: the run is over; the state is idle.
            unsafe { ffi::lua_sethook(l, None, 0, 0) };
            settle(out, before, name, outcome);
            Step::Done
        }
        // The worker's loop does not end.
        CoroutineResult::Return(()) => Step::Done,
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
            (*yielder).suspend(Event::Paused);
        }
    }
}
