//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT: the engine's side of Lua scripting.
//!
//! The interpreter lives in `crates/scripting`; this module runs a script for a client:
//! Redis's checks before the run (`scriptPrepareForRun`), and a [`CallHandler`] through
//! which `redis.call` runs commands on a dedicated *script client* with Redis's checks
//! before each one (`scriptCall`). Inner commands are counted in commandstats and go
//! through [`Engine::call`], so their writes reach the feed one by one (effects
//! replication); the unit they form is wrapped in MULTI/EXEC when there are several.

use crate::client::{Client, ConnInfo, NoWaker, Transport};
use crate::commands::spec::flags;
use crate::commands::Lookup;
use crate::ctx::{int_arg, is, reply_help, subcommand_syntax_error, Ctx};
use crate::engine::Engine;
use crate::error::{CmdError, CmdResult};
use ferrokv_resp::Argv;
use ferrokv_scripting::{CallHandler, CallOptions, Functions, ScriptFlags, Scripting, Sha};
use smallvec::SmallVec;
use std::sync::Arc;

const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";

/// The engine's scripting state: the interpreter and the client scripts run commands as.
pub struct ScriptState {
    /// Taken out while a script runs (the handler needs the rest of the engine).
    pub interp: Option<Box<Scripting>>,
    /// The functions engine (FUNCTION, FCALL): a Lua state of its own, as in Redis.
    pub functions: Option<Box<Functions>>,
    /// A run suspended past `busy-reply-threshold` (see [`crate::busy`]).
    pub busy: Option<Box<crate::busy::BusyRun>>,
    pub client: Option<Box<Client>>,
    /// The interpreters' INFO figures as the current run started (they are taken out
    /// while it runs, and a script may call INFO).
    memory_at_run_start: ScriptMemory,
}

/// The INFO memory figures of scripts and functions.
#[derive(Clone, Copy, Default)]
pub struct ScriptMemory {
    /// The EVAL Lua state's heap (`used_memory_vm_eval`).
    pub vm_eval: usize,
    /// The EVAL script cache (`used_memory_scripts_eval`).
    pub scripts_eval: usize,
    pub cached_scripts: usize,
    /// The functions Lua state's heap (`used_memory_vm_functions`).
    pub vm_functions: usize,
    /// The libraries' bookkeeping (`used_memory_functions`).
    pub functions_overhead: usize,
    pub functions: usize,
    pub libraries: usize,
}

impl ScriptState {
    pub fn new() -> ScriptState {
        let conn =
            ConnInfo { addr: "lua".into(), laddr: String::new(), fd: -1, transport: Transport::Tcp, local: true };
        let mut client = Client::new(0, conn, 0, Arc::new(NoWaker));
        client.authenticated = true;
        ScriptState {
            interp: Some(Box::new(Scripting::new(ferrokv_config::REDIS_VERSION))),
            functions: Some(Box::new(Functions::new(ferrokv_config::REDIS_VERSION))),
            busy: None,
            client: Some(Box::new(client)),
            memory_at_run_start: ScriptMemory::default(),
        }
    }

    /// INFO's figures: live between runs, as the run started during one.
    pub fn memory(&self) -> ScriptMemory {
        let (Some(interp), Some(functions)) = (self.interp.as_deref(), self.functions.as_deref()) else {
            return self.memory_at_run_start;
        };
        ScriptMemory {
            vm_eval: interp.lua_memory(),
            scripts_eval: interp.scripts_memory(),
            cached_scripts: interp.len(),
            vm_functions: functions.vm_memory(),
            functions_overhead: functions.overhead_memory(),
            functions: functions.function_count(),
            libraries: functions.library_count(),
        }
    }

    /// Takes both interpreters out for a run (put them back after it).
    pub(crate) fn take_for_run(&mut self) -> (Box<Scripting>, Box<Functions>) {
        self.memory_at_run_start = self.memory();
        let interp = self.interp.take().expect("one run at a time");
        let functions = self.functions.take().expect("one run at a time");
        (interp, functions)
    }

    pub fn interp(&self) -> &Scripting {
        self.interp.as_deref().expect("no script runs while the engine is inspected")
    }

    pub fn interp_mut(&mut self) -> &mut Scripting {
        self.interp.as_deref_mut().expect("no script runs while a command runs")
    }

    pub fn functions(&self) -> &Functions {
        self.functions.as_deref().expect("no function runs while the engine is inspected")
    }

    pub fn functions_mut(&mut self) -> &mut Functions {
        self.functions.as_deref_mut().expect("no function runs while a command runs")
    }
}

/// What a run executes: a cached EVAL script or a library function.
#[derive(Clone, Copy)]
pub(crate) enum Target<'a> {
    Eval(&'a Sha),
    Function(&'a [u8]),
}

impl Default for ScriptState {
    fn default() -> Self {
        Self::new()
    }
}

pub fn eval(c: &mut Ctx) -> CmdResult {
    eval_generic(c, false, false)
}

pub fn eval_ro(c: &mut Ctx) -> CmdResult {
    eval_generic(c, false, true)
}

pub fn evalsha(c: &mut Ctx) -> CmdResult {
    eval_generic(c, true, false)
}

pub fn evalsha_ro(c: &mut Ctx) -> CmdResult {
    eval_generic(c, true, true)
}

fn lowercase_sha(s: &[u8]) -> Option<Sha> {
    let mut sha: Sha = s.try_into().ok()?;
    sha.make_ascii_lowercase();
    Some(sha)
}

fn eval_generic(c: &mut Ctx, by_sha: bool, ro: bool) -> CmdResult {
    // EVAL is shown to MONITOR before the commands it runs (it skips the usual place).
    if !c.eng.monitors.is_empty() {
        c.eng.feed_monitors(c.client, c.argv, c.now);
    }
    if by_sha && c.arg(1).len() != 40 {
        return Err(CmdError::err(NOSCRIPT));
    }
    let numkeys = int_arg(c.arg(2))?;
    if numkeys > c.argc() as i64 - 3 {
        return Err(CmdError::err("ERR Number of keys can't be greater than number of args"));
    }
    if numkeys < 0 {
        return Err(CmdError::err("ERR Number of keys can't be negative"));
    }
    let sha = if by_sha {
        lowercase_sha(c.arg(1)).ok_or(CmdError::err(NOSCRIPT))?
    } else {
        let body = c.argv.get(1);
        c.eng.scripts.interp_mut().load(body).map_err(|e| CmdError::msg(format!("ERR {e}")))?
    };
    let Some(script_flags) = c.eng.scripts.interp().get(&sha).map(|s| s.flags) else {
        return Err(CmdError::err(NOSCRIPT));
    };
    if let Some(msg) = prepare_refusal(c, script_flags, ro) {
        return Err(CmdError::msg(msg));
    }
    let inputs = script_inputs(c);
    let (keys, args) = inputs.split_at(numkeys as usize);
    run_script(c, Target::Eval(&sha), keys, args, script_flags, ro);
    Ok(())
}

/// EVAL's and FCALL's keys and arguments (everything after numkeys) as slices of the
/// request: on the stack for the usual few (two Vecs were two allocations per run).
pub(crate) fn script_inputs<'a>(c: &Ctx<'a>) -> SmallVec<[&'a [u8]; 8]> {
    (3..c.argc()).map(|i| c.arg(i)).collect()
}

/// Redis's scriptPrepareForRun checks: what the script's declared flags forbid here.
pub(crate) fn prepare_refusal(c: &mut Ctx, f: ScriptFlags, ro: bool) -> Option<String> {
    let eng = &*c.eng;
    let obey = c.client.repl_role == Some(crate::client::ReplRole::Master);
    let stale = eng.master_down();
    if f.compat() {
        return stale
            .then(|| "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.".into());
    }
    if f.has(ScriptFlags::NO_CLUSTER) && eng.cluster.is_some() {
        return Some("ERR Can not run script on cluster, 'no-cluster' flag is set.".into());
    }
    if stale && !f.has(ScriptFlags::ALLOW_STALE) {
        return Some("MASTERDOWN Link with MASTER is down, replica-serve-stale-data is set to 'no' and 'allow-stale' flag is not set on the script.".into());
    }
    if !f.has(ScriptFlags::NO_WRITES) {
        if eng.is_replica() && eng.hot.replica_read_only && !obey {
            return Some("READONLY Can not run script with write flag on readonly replica".into());
        }
        if let Some(e) = eng.disk_error().filter(|_| !obey) {
            return Some(if e.contains("AOF") {
                format!("MISCONF Redis is configured to persist data to AOF, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts. AOF error: {}", e.rsplit(": ").next().unwrap_or(""))
            } else {
                "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts.".into()
            });
        }
        if ro {
            return Some("ERR Can not execute a script with write flag using *_ro command.".into());
        }
        if let Some(msg) = eng.replication_write_guard(obey, c.now).filter(|m| m.starts_with("NOREPLICAS")) {
            return Some(msg.into());
        }
    }
    if eng.hot.maxmemory > 0 && !f.has(ScriptFlags::ALLOW_OOM) && !f.has(ScriptFlags::NO_WRITES) && eng.over_maxmemory()
    {
        return Some(
            "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'".into(),
        );
    }
    None
}

/// Runs a script or function for the calling client. A run that may be suspended (see
/// [`crate::busy`]) and outlives `busy-reply-threshold` leaves the client waiting on it.
pub(crate) fn run_script(c: &mut Ctx, target: Target<'_>, keys: &[&[u8]], args: &[&[u8]], f: ScriptFlags, ro: bool) {
    let (mut interp, mut functions) = c.eng.scripts.take_for_run();
    let mut script_client = c.eng.scripts.client.take().expect("scripts do not nest");
    script_client.db = c.client.db;
    // Commands of the script run with the caller's permissions.
    if script_client.user != c.client.user {
        script_client.set_user(c.client.user.clone());
    }
    let in_exec = std::mem::replace(&mut c.eng.in_exec, true);
    let params = RunParams {
        read_only: ro || (!f.compat() && f.has(ScriptFlags::NO_WRITES)),
        allow_oom: !f.compat() && f.has(ScriptFlags::ALLOW_OOM),
        oom_at_start: c.eng.hot.maxmemory > 0 && c.eng.over_maxmemory(),
        write_dirty: false,
        propagated: 0,
        feed_enabled: c.eng.feed.enabled,
        cluster_slot: keys.first().filter(|_| c.eng.cluster.is_some()).map(|k| ferrokv_cluster::slot::key_slot(k)),
        allow_cross_slot: !f.compat() && f.has(ScriptFlags::ALLOW_CROSS_SLOT),
    };
    // Only a client's own run may pause between slices (inside its EXEC too: the rest
    // of the transaction waits, see `transactions::run_queued`; on a replica the master's
    // stream waits, see server/src/replication/link.rs; under sync-replicas the reply's
    // wait is recorded when the run ends, see `busy::SyncHold`): from the master's stream
    // or while loading it must end as one step.
    let yields = c.client.repl_role.is_none() && c.eng.persist.loading.is_none();
    let yield_after = crate::busy::deadline(c.eng);
    if c.eng.tracking.active() && c.client.tracking.remembers_reads() {
        c.eng.tracking.script_caller = Some(crate::tracking::ScriptTracking {
            script_client: script_client.id,
            caller: c.client.id,
            keys: keys.iter().map(|k| k.to_vec()).collect(),
        });
    }
    let mut handler = ScriptCaller::new(c.eng, c.client, &mut script_client, c.now, params);
    let mut out = std::mem::take(&mut handler.caller.out);
    let yield_after = yields.then_some(yield_after);
    let done = match target {
        Target::Eval(sha) => interp.run_eval(sha, keys, args, &mut handler, &mut out, yield_after),
        Target::Function(name) => functions.call(name, keys, args, &mut handler, &mut out, yield_after),
    };
    let params = handler.params();
    c.client.out = out;
    c.eng.feed.enabled = params.feed_enabled;
    c.eng.in_exec = in_exec;
    c.eng.scripts.interp = Some(interp);
    c.eng.scripts.functions = Some(functions);
    if done {
        finish_run(c.eng, c.client, &mut script_client, &params);
    } else {
        let (eval, name) = match target {
            Target::Eval(sha) => (true, String::from_utf8_lossy(sha).into_owned()),
            Target::Function(name) => (false, String::from_utf8_lossy(name).into_owned()),
        };
        crate::busy::suspended(c.eng, c.client, c.argv, eval, name, params);
    }
    c.eng.scripts.client = Some(script_client);
}

/// What a run's end settles: what the script's commands wrote or read is the EVAL's to
/// wait for under synchronous replication, and its effects form one MULTI/EXEC block.
pub(crate) fn finish_run(eng: &mut Engine, caller: &mut Client, script_client: &mut Client, params: &RunParams) {
    caller.sync_cmd_need = caller.sync_cmd_need.max(std::mem::take(&mut script_client.sync_cmd_need));
    eng.tracking.script_caller = None;
    if params.propagated > 1 {
        eng.feed.atomic_hint = true;
    }
}

/// A run's settings and what it did so far (kept across the slices of a suspended run).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunParams {
    pub read_only: bool,
    pub allow_oom: bool,
    pub oom_at_start: bool,
    /// A write command ran: later writes may no longer be refused for server state, and
    /// the script can no longer be killed.
    pub write_dirty: bool,
    /// Inner commands that reached the feed.
    pub propagated: usize,
    pub feed_enabled: bool,
    /// Cluster mode: the slot the script's keys are in so far (the declared ones first),
    /// and whether it may use keys of several slots (`allow-cross-slot-keys`).
    pub cluster_slot: Option<u16>,
    pub allow_cross_slot: bool,
}

/// `redis.call`'s path into the engine for one script run.
pub(crate) struct ScriptCaller<'a> {
    eng: &'a mut Engine,
    pub(crate) caller: &'a mut Client,
    script_client: &'a mut Client,
    now: i64,
    read_only: bool,
    allow_oom: bool,
    oom_at_start: bool,
    /// A write command ran: later writes may no longer be refused for server state.
    write_dirty: bool,
    /// Inner commands that reached the feed.
    propagated: usize,
    feed_enabled: bool,
    cluster_slot: Option<u16>,
    allow_cross_slot: bool,
}

impl<'a> ScriptCaller<'a> {
    pub(crate) fn new(
        eng: &'a mut Engine,
        caller: &'a mut Client,
        script_client: &'a mut Client,
        now: i64,
        p: RunParams,
    ) -> ScriptCaller<'a> {
        ScriptCaller {
            eng,
            caller,
            script_client,
            now,
            read_only: p.read_only,
            allow_oom: p.allow_oom,
            oom_at_start: p.oom_at_start,
            write_dirty: p.write_dirty,
            propagated: p.propagated,
            feed_enabled: p.feed_enabled,
            cluster_slot: p.cluster_slot,
            allow_cross_slot: p.allow_cross_slot,
        }
    }

    pub(crate) fn params(&self) -> RunParams {
        RunParams {
            read_only: self.read_only,
            allow_oom: self.allow_oom,
            oom_at_start: self.oom_at_start,
            write_dirty: self.write_dirty,
            propagated: self.propagated,
            feed_enabled: self.feed_enabled,
            cluster_slot: self.cluster_slot,
            allow_cross_slot: self.allow_cross_slot,
        }
    }
}

/// Redis 7.0's texts for a script's command its user may not run.
fn script_acl_error(reason: ferrokv_acl::Denied) -> &'static str {
    match reason {
        ferrokv_acl::Denied::Command => "The user executing the script can't run this command or subcommand",
        ferrokv_acl::Denied::Key => {
            "The user executing the script can't access at least one of the keys mentioned in the command arguments"
        }
        ferrokv_acl::Denied::Channel => {
            "The user executing the script can't publish to the channel mentioned in the command"
        }
        ferrokv_acl::Denied::Auth => "The user executing the script is lacking the permissions for the command",
    }
}

impl ScriptCaller<'_> {
    /// Redis's scriptCall checks, in its order; the refusal text if any.
    fn refusal(&mut self, cmd: crate::commands::CmdId, argv: &Argv) -> Option<String> {
        let argc = argv.len();
        let c = self.eng.commands.get(cmd);
        if !c.arity_ok(argc) || c.handler.is_none() {
            return Some("Wrong number of args calling Redis command from script".into());
        }
        let f = c.flags();
        if f & flags::NOSCRIPT != 0 {
            return Some("This Redis command is not allowed from script".into());
        }
        if self.eng.master_down() && f & flags::STALE == 0 {
            return Some("Can not execute the command on a stale replica".into());
        }
        if f & (flags::WRITE | flags::READONLY) != 0 && self.eng.sync_fenced() {
            return Some(format!("-{}", self.eng.fenced_error()));
        }
        if let Err(reason) = self.eng.acl_check(self.script_client, cmd, argv, ferrokv_acl::Context::Lua) {
            return Some(script_acl_error(reason).into());
        }
        if self.read_only && f & (flags::WRITE | flags::MAY_REPLICATE) != 0 {
            return Some("Write commands are not allowed from read-only scripts.".into());
        }
        let obey = self.caller.repl_role == Some(crate::client::ReplRole::Master);
        if f & flags::WRITE != 0 && !self.write_dirty {
            if self.eng.is_replica() && self.eng.hot.replica_read_only && !obey {
                return Some("-READONLY You can't write against a read only replica.".into());
            }
            if let Some(e) = self.eng.disk_error() {
                return Some(format!("-{e}"));
            }
            if let Some(msg) = self.eng.replication_write_guard(obey, self.now).filter(|m| m.starts_with("NOREPLICAS"))
            {
                return Some(format!("-{msg}"));
            }
        }
        if !self.allow_oom
            && self.eng.hot.maxmemory > 0
            && !obey
            && !self.write_dirty
            && self.oom_at_start
            && f & flags::DENYOOM != 0
        {
            return Some("-OOM command not allowed when used memory > 'maxmemory'.".into());
        }
        if self.eng.cluster.is_some() && !obey {
            let mut slot = self.cluster_slot;
            let refusal = self.eng.script_cluster_refusal(self.caller, cmd, argv, &mut slot, self.allow_cross_slot);
            self.cluster_slot = slot;
            return refusal;
        }
        None
    }

    /// Counts a refusal as Redis does: in the error statistics, and as a rejected call
    /// of the command when it exists.
    fn count_refusal(&mut self, cmd: Option<crate::commands::CmdId>, text: &str) {
        let code = match text.strip_prefix('-') {
            Some(rest) => {
                rest[..rest.len().min(31)].split(' ').next().filter(|_| rest[..rest.len().min(31)].contains(' '))
            }
            None => None,
        };
        self.eng.stats.record_error(code.unwrap_or("ERR"));
        if let Some(id) = cmd {
            self.eng.cmd_stats[id].rejected_calls += 1;
        }
    }
}

impl CallHandler for ScriptCaller<'_> {
    fn call(&mut self, argv: &Argv, opts: CallOptions, reply: &mut Vec<u8>) -> Result<(), String> {
        let cmd = match self.eng.commands.lookup(argv) {
            Lookup::Found(id) => id,
            _ => {
                let text = "Unknown Redis command called from script".to_string();
                self.count_refusal(None, &text);
                return Err(text);
            }
        };
        if let Some(text) = self.refusal(cmd, argv) {
            self.count_refusal(Some(cmd), &text);
            return Err(text);
        }
        if self.eng.commands.get(cmd).flags() & flags::WRITE != 0 {
            self.write_dirty = true;
        }
        self.script_client.out.set_resp3(opts.resp3);
        // redis.set_repl: REPL_NONE keeps these writes out of the AOF and the replicas
        // (the two share one feed here: any other choice propagates to both).
        self.eng.feed.enabled = self.feed_enabled && opts.repl != 0;
        let fed_before = self.eng.feed.unit_commands();
        self.eng.call(self.script_client, cmd, argv, self.now);
        self.propagated += self.eng.feed.unit_commands() - fed_before;
        self.eng.feed.enabled = self.feed_enabled;
        std::mem::swap(reply, &mut self.script_client.out.buf);
        self.script_client.out.clear();
        Ok(())
    }

    fn acl_check(&mut self, argv: &Argv) -> Option<bool> {
        match self.eng.commands.lookup(argv) {
            Lookup::Found(id) => Some(self.eng.acl_allows(&self.script_client.user, id, argv)),
            _ => None,
        }
    }

    fn log(&mut self, level: i32, msg: &[u8]) {
        let text = String::from_utf8_lossy(msg);
        match level {
            0 => log::debug!("{text}"),
            1 => log::info!("{text}"),
            2 => log::info!("{text}"),
            _ => log::warn!("{text}"),
        }
    }
}

pub fn script_load(c: &mut Ctx) -> CmdResult {
    let body = c.argv.get(2);
    let sha = c.eng.scripts.interp_mut().load(body).map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    c.out().bulk(&sha);
    Ok(())
}

pub fn script_exists(c: &mut Ctx) -> CmdResult {
    let n = c.argc() - 2;
    let found: Vec<bool> = (2..c.argc())
        .map(|i| lowercase_sha(c.arg(i)).is_some_and(|s| c.eng.scripts.interp().get(&s).is_some()))
        .collect();
    let out = c.out();
    out.array(n);
    for f in found {
        out.int(f as i64);
    }
    Ok(())
}

pub fn script_flush(c: &mut Ctx) -> CmdResult {
    if c.argc() > 3 || (c.argc() == 3 && !is(c.arg(2), "sync") && !is(c.arg(2), "async")) {
        return Err(CmdError::err("ERR SCRIPT FLUSH only support SYNC|ASYNC option"));
    }
    c.eng.scripts.interp_mut().flush();
    c.out().ok();
    Ok(())
}

pub fn script_kill(c: &mut Ctx) -> CmdResult {
    crate::busy::kill(c, true)
}

pub fn script_debug(c: &mut Ctx) -> CmdResult {
    if is(c.arg(2), "no") {
        c.out().ok();
        return Ok(());
    }
    if is(c.arg(2), "yes") || is(c.arg(2), "sync") {
        return Err(CmdError::err("ERR SCRIPT DEBUG is not supported: ferrokv has no Lua debugger"));
    }
    Err(CmdError::err("ERR Use SCRIPT DEBUG YES/SYNC/NO"))
}

pub fn script_help(c: &mut Ctx) -> CmdResult {
    if c.argc() != 2 {
        return Err(subcommand_syntax_error(c));
    }
    reply_help(
        c,
        &[
            "DEBUG (YES|SYNC|NO)",
            "    Set the debug mode for subsequent scripts executed.",
            "EXISTS <sha1> [<sha1> ...]",
            "    Return information about the existence of the scripts in the script cache.",
            "FLUSH [ASYNC|SYNC]",
            "    Flush the Lua scripts cache. Very dangerous on replicas.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the scripts cache.",
            "    * SYNC: Synchronously flush the scripts cache.",
            "KILL",
            "    Kill the currently executing Lua script.",
            "LOAD <script>",
            "    Load a script into the scripts cache without executing it.",
        ],
    )
}
