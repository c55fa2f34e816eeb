//! Long scripts: a script or function past `busy-reply-threshold` is suspended between
//! slices (its coroutine yields from the count hook, see `crates/scripting`), so that other
//! clients are answered while it runs, as Redis answers them from its hook:
//!
//! - every command without the `allow-busy` flag gets `-BUSY` (the SCRIPT or FUNCTION
//!   variant); SCRIPT KILL / FUNCTION KILL stop the script unless it wrote; SHUTDOWN
//!   needs NOSAVE; FUNCTION STATS shows the running function;
//! - nothing else touches the dataset meanwhile: cron is skipped, the open feed unit keeps
//!   the script's writes until it ends, blocked clients are served after it (see
//!   `Engine::process_command` and `Engine::cron`);
//! - the caller runs nothing else until its script ends; its connection task resumes the
//!   run one slice at a time ([`Engine::resume_script`]), releasing the lock between
//!   slices;
//! - under `sync-replicas` the caller's reply waits for the replicas' acknowledgements
//!   from the end of the run, and none of its output leaves before (see [`SyncHold`]).

use crate::client::{Client, ClientId};
use crate::commands::scripting::{finish_run, RunParams, ScriptCaller};
use crate::commands::transactions::{run_queued, QueueRest};
use crate::ctx::Ctx;
use crate::engine::Engine;
use crate::error::{CmdError, CmdResult};
use ferrokv_config::{pid, Pid};
use ferrokv_resp::Argv;
use std::time::{Duration, Instant};

const BUSY_EVAL: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// A script or function that ran past the threshold and is suspended between slices.
pub struct BusyRun {
    pub client: ClientId,
    /// EVAL (true) or FCALL.
    pub eval: bool,
    /// The script's SHA or the function's name.
    pub name: String,
    /// The command that started it (FUNCTION STATS).
    pub argv: Vec<Vec<u8>>,
    pub started: Instant,
    pub(crate) params: RunParams,
    /// The rest of the transaction the script runs in, if it runs inside EXEC.
    pub(crate) exec_rest: Option<QueueRest>,
    /// Under `sync-replicas`: the caller's reply waits for acknowledgements from the end
    /// of the run (see [`SyncHold`]).
    pub(crate) sync_hold: Option<SyncHold>,
}

/// A reply under `sync-replicas` whose command (EVAL, FCALL, or the EXEC around them) was
/// suspended: its span of the output and its need are known only when the run ends
/// ([`Engine::resume_script`] records them, `Engine::sync_after_script`). Meanwhile the
/// need stays in the caller's `sync_cmd_need` and its output stays in the engine.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SyncHold {
    /// Bytes of the reply written before the suspension (an EXEC's header and the replies
    /// of the commands queued before the script; none for a plain EVAL or FCALL). Counted
    /// back from the end of the output: nothing is appended after them while the run is
    /// suspended, but the output before them may change (an earlier reply turned into
    /// `-UNACKED`), so their start position may not hold.
    pub held: usize,
    /// The replication history the command started in: a reply from an older one fails.
    pub epoch: u64,
}

impl BusyRun {
    /// The reply to a command refused while this run is suspended.
    pub fn busy_error(&self) -> &'static str {
        if self.eval {
            BUSY_EVAL
        } else {
            BUSY_FUNCTION
        }
    }
}

/// Looked up once, at compile time: `pid` searches the table, and every script run
/// reads this (a search per run was ~800 instructions, 1.5 % of a 10-INCR EVALSHA).
const BUSY_REPLY_THRESHOLD: Pid = pid("busy-reply-threshold");

/// When a run starting now stops running in one go. "Now" is the start of the command
/// running the script (the engine marks the clock as each command ends, and as a batch or
/// a slice starts): a clock read costs ~100 ns on some virtual machines, 3 % of an FCALL.
pub(crate) fn deadline(eng: &Engine) -> Instant {
    let ms = eng.cfg.int(BUSY_REPLY_THRESHOLD).max(0) as u64;
    eng.clock_mark + Duration::from_millis(ms)
}

/// Records a run that just suspended itself for the first time.
pub(crate) fn suspended(
    eng: &mut Engine,
    caller: &mut Client,
    argv: &Argv,
    eval: bool,
    name: String,
    params: RunParams,
) {
    let started = Instant::now() - Duration::from_millis(eng.cfg.int(BUSY_REPLY_THRESHOLD).max(0) as u64);
    log::warn!(
        "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the {} command. Script name is: {name}.",
        eng.cfg.int(BUSY_REPLY_THRESHOLD),
        if eval { "SCRIPT KILL" } else { "FUNCTION KILL" },
    );
    caller.script_blocked = true;
    eng.scripts.busy = Some(Box::new(BusyRun {
        client: caller.id,
        eval,
        name,
        argv: argv.iter().map(<[u8]>::to_vec).collect(),
        started,
        params,
        exec_rest: None,
        sync_hold: None,
    }));
}

impl Engine {
    /// True while a client's script is suspended between slices.
    pub fn script_busy(&self) -> bool {
        self.scripts.busy.is_some()
    }

    /// True while client `id` waits on its suspended script.
    pub fn script_suspended(&self, id: ClientId) -> bool {
        self.scripts.busy.as_ref().is_some_and(|b| b.client == id)
    }

    /// Runs client `id`'s suspended script for one slice; true once no script of its is
    /// suspended any more (its reply is then in the client's output).
    pub fn resume_script(&mut self, id: ClientId, now_ms: i64) -> bool {
        let Some(mut busy) = self.scripts.busy.take().filter(|b| b.client == id) else {
            return true;
        };
        let Some(mut caller) = self.clients.take(id) else {
            // The caller is gone (it cannot be, its task drives this): let the run be.
            self.scripts.busy = Some(busy);
            return true;
        };
        let (mut interp, mut functions) = self.scripts.take_for_run();
        let mut script_client = self.scripts.client.take().expect("one run at a time");
        self.now_ms = now_ms;
        // The rest of an EXEC may start scripts: their deadlines count from here.
        self.clock_mark = Instant::now();
        let in_exec = std::mem::replace(&mut self.in_exec, true);
        // A run writes its reply in its last slice only: under sync-replicas the reply
        // starts here (less what an EXEC around it wrote before the suspension).
        let slice_start = caller.out.len();
        let mut out = std::mem::take(&mut caller.out);
        let mut handler = ScriptCaller::new(self, &mut caller, &mut script_client, now_ms, busy.params);
        let done =
            if busy.eval { interp.resume(&mut handler, &mut out) } else { functions.resume(&mut handler, &mut out) };
        busy.params = handler.params();
        caller.out = out;
        self.feed.enabled = busy.params.feed_enabled;
        self.in_exec = in_exec;
        self.scripts.interp = Some(interp);
        self.scripts.functions = Some(functions);
        if done {
            finish_run(self, &mut caller, &mut script_client, &busy.params);
            caller.script_blocked = false;
            self.scripts.client = Some(script_client);
            let reply_start = busy.sync_hold.map(|h| slice_start.saturating_sub(h.held));
            if let Some(rest) = busy.exec_rest.take() {
                run_queued(self, &mut caller, rest, now_ms);
                if let Some(next) = self.scripts.busy.as_mut().filter(|b| b.client == id) {
                    // Another script of the transaction ran past the threshold: the EXEC's
                    // reply waits on, from the same start.
                    next.sync_hold = busy
                        .sync_hold
                        .zip(reply_start)
                        .map(|(h, start)| SyncHold { held: caller.out.len().saturating_sub(start), epoch: h.epoch });
                    self.clients.put(caller);
                    return false;
                }
            }
            if let (Some(hold), Some(start)) = (busy.sync_hold, reply_start) {
                self.sync_after_script(&mut caller, start, hold.epoch);
            }
            if self.tracking.active() {
                // Invalidations held for the caller follow the script's reply.
                self.tracking_after_command(&mut caller, false);
            }
            self.clients.put(caller);
            // What `process_command` left for the end of the command.
            self.after_command(now_ms);
        } else {
            self.scripts.client = Some(script_client);
            self.clients.put(caller);
            self.scripts.busy = Some(busy);
        }
        done
    }

    /// SHUTDOWN without NOSAVE while a script is suspended: Redis's refusal.
    pub(crate) fn busy_shutdown_refusal(&self) -> Option<&'static str> {
        self.scripts.busy.as_ref().map(|b| b.busy_error())
    }
}

/// SCRIPT KILL (`eval`) and FUNCTION KILL.
pub(crate) fn kill(c: &mut Ctx, eval: bool) -> CmdResult {
    let Some(busy) = c.eng.scripts.busy.as_ref() else {
        return Err(CmdError::err("NOTBUSY No scripts in execution right now."));
    };
    if busy.params.write_dirty {
        return Err(CmdError::err("UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command."));
    }
    match (eval, busy.eval) {
        (true, false) => return Err(CmdError::err(BUSY_FUNCTION)),
        (false, true) => return Err(CmdError::err(BUSY_EVAL)),
        (true, true) => c.eng.scripts.interp_mut().kill(),
        (false, false) => c.eng.scripts.functions_mut().kill(),
    }
    c.out().ok();
    Ok(())
}

/// FUNCTION STATS's `running_script`: None when no function is suspended, Err when an
/// EVAL script is (FUNCTION STATS then answers BUSY, as Redis).
pub(crate) fn running_function(eng: &Engine) -> Result<Option<&BusyRun>, &'static str> {
    match eng.scripts.busy.as_deref() {
        None => Ok(None),
        Some(b) if b.eval => Err(BUSY_EVAL),
        Some(b) => Ok(Some(b)),
    }
}
