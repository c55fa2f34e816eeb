//! CONFIG GET, SET, RESETSTAT, REWRITE, HELP.

use crate::ctx::{reply_help, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_config::{pid, SetError};

pub fn get(c: &mut Ctx) -> CmdResult {
    let patterns: Vec<&[u8]> = (2..c.argc()).map(|i| c.arg(i)).collect();
    let pairs = c.eng.cfg.config_get(&patterns);
    let out = c.out();
    out.map(pairs.len());
    for (k, v) in pairs {
        out.bulk(k.as_bytes());
        out.bulk(v.as_bytes());
    }
    Ok(())
}

pub fn set(c: &mut Ctx) -> CmdResult {
    if c.argc() % 2 == 1 {
        return Err(CmdError::Syntax);
    }
    let owned: Vec<(String, String)> = (2..c.argc())
        .step_by(2)
        .map(|i| (String::from_utf8_lossy(c.arg(i)).into_owned(), String::from_utf8_lossy(c.arg(i + 1)).into_owned()))
        .collect();
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let protected_ok = match c.eng.cfg.int(pid("enable-protected-configs")) {
        1 => true,
        2 => c.client.conn.local,
        _ => false,
    };
    let changes = c.eng.cfg.set(&pairs, protected_ok, false).map_err(|e| CmdError::msg(e.reply()))?;
    if let Err(reason) = c.eng.host.apply_config(&c.eng.cfg, &changes.changed) {
        let name = changes.changed.first().map(|&p| ferrokv_config::PARAMS[p].name).unwrap_or("").to_string();
        c.eng.cfg.restore(changes.backup);
        let _ = c.eng.host.apply_config(&c.eng.cfg, &changes.changed);
        return Err(CmdError::msg(SetError::Failed { name, reason: Some(reason) }.reply()));
    }
    c.eng.config_changed(&changes.changed);
    c.out().ok();
    Ok(())
}

pub fn resetstat(c: &mut Ctx) -> CmdResult {
    c.eng.stats.reset();
    for s in c.eng.cmd_stats.iter_mut() {
        *s = Default::default();
    }
    c.out().ok();
    Ok(())
}

pub fn rewrite(c: &mut Ctx) -> CmdResult {
    if c.eng.cfg.config_file.is_none() {
        return Err(CmdError::err("ERR The server is running without a config file"));
    }
    // The users as they are now become the file's `user` lines (unless an ACL file
    // holds them), as Redis's rewriteConfigUserOption writes them.
    c.eng.cfg.users =
        c.eng.acl.config_lines().iter().map(|l| l.split(' ').skip(1).map(str::to_string).collect()).collect();
    match c.eng.host.rewrite_config(&c.eng.cfg) {
        Ok(()) => {
            log::info!("CONFIG REWRITE executed with success.");
            c.out().ok();
            Ok(())
        }
        Err(e) => {
            log::warn!("CONFIG REWRITE failed: {e}");
            Err(CmdError::msg(format!("ERR Rewriting config file: {e}")))
        }
    }
}

pub fn help(c: &mut Ctx) -> CmdResult {
    reply_help(
        c,
        &[
            "GET <pattern> [<pattern> ...]",
            "    The values of the parameters matching the glob-like patterns.",
            "SET <directive> <value> [<directive> <value> ...]",
            "    Change parameters at runtime, all or none.",
            "RESETSTAT",
            "    Reset the statistics INFO reports.",
            "REWRITE",
            "    Write the running configuration back to the config file.",
        ],
    )
}
