//! One owner of a Lua state: EVAL's interpreter and the functions engine each hold one
//! (Redis keeps them apart too). It runs a compiled function to completion or in slices
//! (see [`crate::coroutine`]), keeps the suspended run, steps the collector as Redis
//! does, and rebuilds or closes the state.

use crate::coroutine::{self, Step, Suspended, Worker};
use crate::lua::State;
use crate::run::Invocation;
use crate::sandbox::RunSlot;
use crate::CallHandler;
use ferrokv_resp::ReplyBuf;
use mlua_sys as ffi;
use std::ffi::c_int;
use std::time::Instant;

/// Builds a set-up state for a slot (the plain sandbox, or with the functions' load API).
pub(crate) type Build = fn(&mut RunSlot, &'static str) -> State;

/// Redis steps the collector every 50 runs rather than letting a full cycle land in one
/// script.
const GC_EVERY: u32 = 50;

/// Garbage (KB) the heap may gain over its size after the last completed cycle before a
/// run's end steps the collector. Redis steps every 50 runs whatever the garbage: on a
/// heap of a few tens of KB each step is a whole mark-and-sweep cycle, about 100,000
/// instructions (2,200 per FCALL of one INCR, 17 % of it, and a quarter of its data
/// cache misses) to reclaim the 10 KB that 50 such runs leave. Past this slack it steps
/// as Redis does; below it Lua's own collector, which starts a cycle once the heap has
/// doubled, still bounds the garbage.
const GC_SLACK_KB: c_int = 64;

pub(crate) struct LuaVm {
    l: State,
    /// Per-run state the C functions reach through an upvalue (stable address).
    slot: Box<RunSlot>,
    build: Build,
    /// Runs until the next incremental GC step.
    gc_countdown: u32,
    /// The heap (KB) when the collector last finished a cycle it was stepped into.
    gc_floor_kb: c_int,
    /// A run that handed control back past its deadline.
    suspended: Option<Suspended>,
    /// The side stack yielding runs execute on (made by the first one).
    worker: Option<Worker>,
}

impl LuaVm {
    pub fn new(version: &'static str, build: Build) -> LuaVm {
        let mut slot = Box::new(RunSlot::default());
        let l = build(&mut slot, version);
        LuaVm { l, slot, build, gc_countdown: GC_EVERY, gc_floor_kb: heap_kb(l), suspended: None, worker: None }
    }

    pub fn state(&self) -> State {
        self.l
    }

    pub fn slot_mut(&mut self) -> &mut RunSlot {
        &mut self.slot
    }

    /// A fresh state: nothing a script did survives. The random generator's state is
    /// kept (Redis's is a process global).
    pub fn reset(&mut self) {
        // The worker goes first (a paused run with it): it is bound to the state, which
        // is closed next.
        self.suspended = None;
        self.worker = None;
        // SAFETY: the state is ours and no run is in progress (`&mut self`).
        unsafe { ffi::lua_close(self.l) };
        let rand = std::mem::take(&mut self.slot.rand);
        let version = self.slot.version;
        *self.slot = RunSlot { rand, ..RunSlot::default() };
        self.l = (self.build)(&mut self.slot, version);
        self.gc_floor_kb = heap_kb(self.l);
    }

    /// Runs `inv`, writing its reply (or error) to `out`. With `yield_after` the run may
    /// hand control back once that instant has passed: false then (continue with
    /// [`LuaVm::resume`]); true once it finished.
    pub fn run(
        &mut self,
        inv: &Invocation,
        handler: &mut dyn CallHandler,
        out: &mut ReplyBuf,
        yield_after: Option<Instant>,
    ) -> bool {
        match yield_after {
            None => {
                crate::run::run(self.l, &mut self.slot, inv, handler, out);
                self.after_run();
                true
            }
            Some(deadline) => {
                self.slot.yield_after = Some(deadline);
                debug_assert!(self.suspended.is_none(), "a run while another is suspended");
                let step = coroutine::start(self.l, &mut self.slot, &mut self.worker, inv, handler, out);
                self.settle(step)
            }
        }
    }

    /// Runs the suspended run for one more slice; true once it finished.
    pub fn resume(&mut self, handler: &mut dyn CallHandler, out: &mut ReplyBuf) -> bool {
        match self.suspended.take() {
            Some(s) => {
                let step = coroutine::resume(self.l, &mut self.slot, &mut self.worker, s, handler, out);
                self.settle(step)
            }
            None => true,
        }
    }

    /// SCRIPT KILL / FUNCTION KILL: the suspended run raises Redis's error at its next hook.
    pub fn kill(&mut self) {
        self.slot.kill = true;
        if self.suspended.is_some() {
            // SAFETY: the suspended run's state.
            unsafe { coroutine::kill(self.l) };
        }
    }

    fn settle(&mut self, step: Step) -> bool {
        match step {
            Step::Suspended(s) => {
                self.suspended = Some(s);
                false
            }
            Step::Done => {
                self.slot.yield_after = None;
                self.slot.kill = false;
                self.after_run();
                true
            }
        }
    }

    fn after_run(&mut self) {
        self.gc_countdown -= 1;
        if self.gc_countdown == 0 {
            self.gc_countdown = GC_EVERY;
            if heap_kb(self.l) < self.gc_floor_kb + GC_SLACK_KB {
                return;
            }
            // SAFETY: a GC step runs no Lua code we did not write (no __gc metamethods
            // are reachable: scripts cannot create userdata with finalizers).
            if unsafe { ffi::lua_gc(self.l, ffi::LUA_GCSTEP, 50) } == 1 {
                self.gc_floor_kb = heap_kb(self.l);
            }
        }
    }
}

/// The Lua heap in KB.
fn heap_kb(l: State) -> c_int {
    // SAFETY: LUA_GCCOUNT only reads a counter.
    unsafe { ffi::lua_gc(l, ffi::LUA_GCCOUNT, 0) }
}

impl Drop for LuaVm {
    fn drop(&mut self) {
        self.worker = None;
        // SAFETY: the state is ours; nothing uses it after this.
        unsafe { ffi::lua_close(self.l) };
    }
}
