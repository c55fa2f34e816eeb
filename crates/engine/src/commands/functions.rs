//! FUNCTION and FCALL/FCALL_RO: Redis 7.0's functions, over the functions engine in
//! `crates/scripting`. Runs share EVAL's path ([`super::scripting::run_script`]): the
//! same checks before the run, the same script client for `redis.call`, the same
//! effects replication. The FUNCTION commands that change libraries are write commands
//! and count as a change, so they reach replicas and the AOF verbatim, as Redis
//! propagates them.

use super::scripting::{prepare_refusal, run_script, script_inputs, Target};
use crate::client::ReplRole;
use crate::ctx::{is, reply_help, subcommand_syntax_error, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_resp::parse_i64;
use ferrokv_scripting::{RestorePolicy, ScriptFlags, LOAD_TIMEOUT};

pub fn fcall(c: &mut Ctx) -> CmdResult {
    fcall_generic(c, false)
}

pub fn fcall_ro(c: &mut Ctx) -> CmdResult {
    fcall_generic(c, true)
}

fn fcall_generic(c: &mut Ctx, ro: bool) -> CmdResult {
    // Shown to MONITOR before the commands it runs, as EVAL.
    if !c.eng.monitors.is_empty() {
        c.eng.feed_monitors(c.client, c.argv, c.now);
    }
    let name = c.arg(1);
    let Some(flags) = c.eng.scripts.functions().flags(name) else {
        return Err(CmdError::err("ERR Function not found"));
    };
    let Some(numkeys) = parse_i64(c.arg(2)) else {
        return Err(CmdError::err("ERR Bad number of keys provided"));
    };
    if numkeys > c.argc() as i64 - 3 {
        return Err(CmdError::err("ERR Number of keys can't be greater than number of args"));
    }
    if numkeys < 0 {
        return Err(CmdError::err("ERR Number of keys can't be negative"));
    }
    if let Some(msg) = prepare_refusal(c, flags, ro) {
        return Err(CmdError::msg(msg));
    }
    let inputs = script_inputs(c);
    let (keys, args) = inputs.split_at(numkeys as usize);
    run_script(c, Target::Function(name), keys, args, flags, ro);
    Ok(())
}

/// Commands from the master and replayed from the AOF load libraries without the load
/// time limit (Redis's mustObeyClient): they must end as they did where they were issued.
fn must_obey(c: &Ctx) -> bool {
    c.client.repl_role == Some(ReplRole::Master) || c.eng.persist.loading.is_some()
}

pub fn function_load(c: &mut Ctx) -> CmdResult {
    let mut replace = false;
    let mut pos = 2;
    while pos < c.argc() - 1 {
        let a = c.arg(pos);
        pos += 1;
        if is(a, "replace") {
            replace = true;
            continue;
        }
        return Err(CmdError::msg(format!("ERR Unknown option given: {}", String::from_utf8_lossy(a))));
    }
    let timeout = (!must_obey(c)).then_some(LOAD_TIMEOUT);
    let code = c.arg(pos);
    let name =
        c.eng.scripts.functions_mut().load(code, replace, timeout).map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    c.eng.dirty += 1;
    c.out().bulk(&name);
    Ok(())
}

pub fn function_delete(c: &mut Ctx) -> CmdResult {
    let name = c.arg(2);
    if !c.eng.scripts.functions_mut().delete(name) {
        return Err(CmdError::err("ERR Library not found"));
    }
    c.eng.dirty += 1;
    c.out().ok();
    Ok(())
}

pub fn function_flush(c: &mut Ctx) -> CmdResult {
    if c.argc() > 3 {
        return Err(subcommand_syntax_error(c));
    }
    if c.argc() == 3 && !is(c.arg(2), "sync") && !is(c.arg(2), "async") {
        return Err(CmdError::err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"));
    }
    c.eng.scripts.functions_mut().flush();
    c.eng.dirty += 1;
    c.out().ok();
    Ok(())
}

pub fn function_list(c: &mut Ctx) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 2;
    while i < c.argc() {
        let a = c.arg(i);
        if !with_code && is(a, "withcode") {
            with_code = true;
        } else if pattern.is_none() && is(a, "libraryname") {
            if i >= c.argc() - 1 {
                return Err(CmdError::err("ERR library name argument was not given"));
            }
            i += 1;
            pattern = Some(c.arg(i));
        } else {
            return Err(CmdError::msg(format!("ERR Unknown argument {}", String::from_utf8_lossy(a))));
        }
        i += 1;
    }
    let eng = &*c.eng;
    let out = &mut c.client.out;
    let libs: Vec<_> = eng
        .scripts
        .functions()
        .libraries()
        .filter(|lib| pattern.is_none_or(|p| ferrokv_keyspace::glob::glob_match(p, &lib.name, true)))
        .collect();
    out.array(libs.len());
    for lib in libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(&lib.name);
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in &lib.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(&f.name);
            out.bulk(b"description");
            match &f.desc {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names: Vec<&str> =
                ScriptFlags::NAMES.iter().filter(|(bit, _)| f.flags.has(*bit)).map(|(_, n)| *n).collect();
            out.set(names.len());
            for n in names {
                out.simple(n);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
    Ok(())
}

pub fn function_dump(c: &mut Ctx) -> CmdResult {
    let payload = ferrokv_persist::rdb::functions_payload(c.eng.scripts.functions().libraries().map(|l| &l.code[..]))
        .map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    c.out().bulk(&payload);
    Ok(())
}

pub fn function_restore(c: &mut Ctx) -> CmdResult {
    if c.argc() > 4 {
        return Err(subcommand_syntax_error(c));
    }
    let policy = match c.argv.len() {
        4 if is(c.arg(3), "append") => RestorePolicy::Append,
        4 if is(c.arg(3), "replace") => RestorePolicy::Replace,
        4 if is(c.arg(3), "flush") => RestorePolicy::Flush,
        4 => {
            return Err(CmdError::err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ))
        }
        _ => RestorePolicy::Append,
    };
    let checksum = !c.eng.persist.skip_checksum_validation;
    let codes = ferrokv_persist::rdb::functions_from_payload(c.arg(2), checksum)
        .map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    c.eng.scripts.functions_mut().restore(&codes, policy).map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    c.eng.dirty += 1;
    c.out().ok();
    Ok(())
}

pub fn function_stats(c: &mut Ctx) -> CmdResult {
    let (libs, funcs) = {
        let f = c.eng.scripts.functions();
        (f.library_count(), f.function_count())
    };
    let running = crate::busy::running_function(c.eng).map_err(CmdError::err)?;
    let running = running.map(|b| (b.name.clone(), b.argv.clone(), b.started.elapsed().as_millis() as u64));
    let out = c.out();
    out.map(2);
    out.bulk(b"running_script");
    match running {
        None => out.null(),
        Some((name, argv, ms)) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name.as_bytes());
            out.bulk(b"command");
            out.array(argv.len());
            for a in &argv {
                out.bulk(a);
            }
            out.bulk(b"duration_ms");
            out.int(ms as i64);
        }
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(libs as i64);
    out.bulk(b"functions_count");
    out.int(funcs as i64);
    Ok(())
}

pub fn function_kill(c: &mut Ctx) -> CmdResult {
    crate::busy::kill(c, false)
}

pub fn function_help(c: &mut Ctx) -> CmdResult {
    reply_help(
        c,
        &[
            "LOAD [REPLACE] <FUNCTION CODE>",
            "    Create a new library with the given library name and code.",
            "DELETE <LIBRARY NAME>",
            "    Delete the given library.",
            "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
            "    Return general information on all the libraries:",
            "    * Library name",
            "    * The engine used to run the Library",
            "    * Library description",
            "    * Functions list",
            "    * Library code (if WITHCODE is given)",
            "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
            "STATS",
            "    Return information about the current function running:",
            "    * Function name",
            "    * Command used to run the function",
            "    * Duration in MS that the function is running",
            "    If no function is running, return nil",
            "    In addition, returns a list of available engines.",
            "KILL",
            "    Kill the current running function.",
            "FLUSH [ASYNC|SYNC]",
            "    Delete all the libraries.",
            "    When called without the optional mode argument, the behavior is determined by the",
            "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
            "    * ASYNC: Asynchronously flush the libraries.",
            "    * SYNC: Synchronously flush the libraries.",
            "DUMP",
            "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
            "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
            "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
            "    control how to handle existing libraries (default APPEND):",
            "    * FLUSH: delete all existing libraries.",
            "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
            "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
            "      libraries with the new libraries (notice that even on this option there is a chance of failure",
            "      in case of functions name collision with another library).",
        ],
    )
}
