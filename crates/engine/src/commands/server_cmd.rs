//! Server commands: TIME, LASTSAVE, ROLE, SHUTDOWN, MONITOR, SLOWLOG, LATENCY.

use crate::ctx::{int_arg, is, reply_help, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use crate::host::ShutdownRequest;
use crate::replication::shutdown::{shutdown_block, ShutdownStart, SHUTDOWN_FAILED};

pub fn time(c: &mut Ctx) -> CmdResult {
    let (secs, micros) = (c.now.div_euclid(1000), c.now.rem_euclid(1000) * 1000);
    let out = c.out();
    out.array(2);
    out.bulk_int(secs);
    out.bulk_int(micros);
    Ok(())
}

pub fn lastsave(c: &mut Ctx) -> CmdResult {
    let t = c.eng.lastsave_ms / 1000;
    c.out().int(t);
    Ok(())
}

pub fn shutdown(c: &mut Ctx) -> CmdResult {
    let mut req = ShutdownRequest::default();
    let mut abort = false;
    for i in 1..c.argc() {
        let a = c.arg(i);
        if is(a, "NOSAVE") {
            req.nosave = true;
        } else if is(a, "SAVE") {
            req.save = true;
        } else if is(a, "NOW") {
            req.now = true;
        } else if is(a, "FORCE") {
            req.force = true;
        } else if is(a, "ABORT") {
            abort = true;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    if (abort && req != ShutdownRequest::default()) || (req.save && req.nosave) {
        return Err(CmdError::Syntax);
    }
    if abort {
        if !c.eng.abort_shutdown() {
            return fail("ERR No shutdown in progress.");
        }
        c.out().ok();
        return Ok(());
    }
    if c.eng.busy_shutdown_refusal().is_some() {
        // A suspended script: only SHUTDOWN NOSAVE, and at once (replicas are not waited
        // for, as Redis does not wait from inside a busy script).
        if !req.nosave {
            return Err(CmdError::msg(c.eng.busy_shutdown_refusal().unwrap_or_default().to_string()));
        }
        req.now = true;
    }
    if !req.now && !c.can_block() {
        return fail("ERR SHUTDOWN without NOW or ABORT isn't allowed for DENY BLOCKING client");
    }
    match c.eng.begin_shutdown(req, c.now) {
        // The connection closes with the process; nothing is replied.
        ShutdownStart::Exiting => Ok(()),
        ShutdownStart::Waiting => {
            c.block(shutdown_block());
            Ok(())
        }
        ShutdownStart::Failed => fail(SHUTDOWN_FAILED),
    }
}

pub fn monitor(c: &mut Ctx) -> CmdResult {
    if !c.client.monitor {
        c.client.monitor = true;
        c.eng.monitors.push(c.client.id);
    }
    c.out().ok();
    Ok(())
}

pub fn slowlog_get(c: &mut Ctx) -> CmdResult {
    let count = if c.argc() == 3 {
        let n = int_arg(c.arg(2))?;
        if n < -1 {
            return fail("ERR count should be greater than or equal to -1");
        }
        if n == -1 {
            usize::MAX
        } else {
            n as usize
        }
    } else {
        10
    };
    let entries: Vec<_> = c.eng.slowlog.entries.iter().take(count).collect();
    let out = &mut c.client.out;
    out.array(entries.len());
    for e in entries {
        out.array(6);
        out.int(e.id as i64);
        out.int(e.time_s);
        out.int(e.duration_us as i64);
        out.bulks(e.args.iter().map(Vec::as_slice));
        out.bulk(e.peer.as_bytes());
        out.bulk(&e.name);
    }
    Ok(())
}

pub fn slowlog_len(c: &mut Ctx) -> CmdResult {
    let n = c.eng.slowlog.entries.len();
    c.out().int(n as i64);
    Ok(())
}

pub fn slowlog_reset(c: &mut Ctx) -> CmdResult {
    c.eng.slowlog.reset();
    c.out().ok();
    Ok(())
}

pub fn slowlog_help(c: &mut Ctx) -> CmdResult {
    reply_help(
        c,
        &[
            "GET [<count>]",
            "    The newest <count> entries (default 10, -1 for all).",
            "LEN",
            "    The number of entries.",
            "RESET",
            "    Forget all entries.",
        ],
    )
}

pub fn latency_latest(c: &mut Ctx) -> CmdResult {
    let rows: Vec<(String, i64, i64, i64)> = c
        .eng
        .latency
        .events
        .iter()
        .filter_map(|(name, s)| s.history.back().map(|&(t, l)| (name.clone(), t, l, s.max)))
        .collect();
    let out = c.out();
    out.array(rows.len());
    for (name, t, l, max) in rows {
        out.array(4);
        out.bulk(name.as_bytes());
        out.int(t);
        out.int(l);
        out.int(max);
    }
    Ok(())
}

pub fn latency_history(c: &mut Ctx) -> CmdResult {
    let name = String::from_utf8_lossy(c.arg(2)).into_owned();
    let hist: Vec<(i64, i64)> =
        c.eng.latency.events.get(&name).map(|s| s.history.iter().copied().collect()).unwrap_or_default();
    let out = c.out();
    out.array(hist.len());
    for (t, l) in hist {
        out.array(2);
        out.int(t);
        out.int(l);
    }
    Ok(())
}

pub fn latency_reset(c: &mut Ctx) -> CmdResult {
    let names: Vec<String> = (2..c.argc()).map(|i| String::from_utf8_lossy(c.arg(i)).into_owned()).collect();
    let n = c.eng.latency.reset(&names);
    c.out().int(n as i64);
    Ok(())
}

pub fn latency_help(c: &mut Ctx) -> CmdResult {
    reply_help(
        c,
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    )
}
