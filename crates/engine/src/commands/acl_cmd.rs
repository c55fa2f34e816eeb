//! The ACL command: users (SETUSER, GETUSER, DELUSER, USERS, LIST, WHOAMI), categories
//! (CAT), DRYRUN, GENPASS, the log (LOG) and the ACL file (LOAD, SAVE), with Redis 7.0's
//! replies and errors. The rules live in `ferrokv-acl`; the check in `crate::acl`.

use super::spec::cats;
use crate::ctx::{reply_help, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_acl::Denied;
use ferrokv_config::pid;
use ferrokv_resp::Argv;

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn text(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}

pub fn whoami(c: &mut Ctx) -> CmdResult {
    let user = c.client.user.clone();
    c.out().bulk(user.as_bytes());
    Ok(())
}

pub fn list(c: &mut Ctx) -> CmdResult {
    let lines = c.eng.acl.config_lines();
    c.client.out.bulks(lines.iter().map(|l| l.as_bytes()));
    Ok(())
}

pub fn users(c: &mut Ctx) -> CmdResult {
    let names: Vec<String> = c.eng.acl.names().map(str::to_string).collect();
    c.client.out.bulks(names.iter().map(|n| n.as_bytes()));
    Ok(())
}

pub fn setuser(c: &mut Ctx) -> CmdResult {
    let name = text(c.arg(2));
    let rules: Vec<String> = (3..c.argc()).map(|i| text(c.arg(i))).collect();
    c.eng.acl.set_user(&name, &rules).map_err(CmdError::msg)?;
    c.eng.acl_users_changed(c.client);
    c.out().ok();
    Ok(())
}

pub fn deluser(c: &mut Ctx) -> CmdResult {
    let names: Vec<String> = (2..c.argc()).map(|i| text(c.arg(i))).collect();
    if names.iter().any(|n| n == "default") {
        return fail("ERR The 'default' user cannot be removed");
    }
    let deleted = names.iter().filter(|n| c.eng.acl.delete_user(n)).count();
    if deleted > 0 {
        c.eng.acl_users_changed(c.client);
    }
    c.out().int(deleted as i64);
    Ok(())
}

pub fn getuser(c: &mut Ctx) -> CmdResult {
    let Some(info) = c.eng.acl.get_user(&text(c.arg(2))) else {
        c.out().null();
        return Ok(());
    };
    ferrokv_acl::write_user_info(c.out(), &info);
    Ok(())
}

pub fn cat(c: &mut Ctx) -> CmdResult {
    if c.argc() == 2 {
        c.client.out.bulks(cats::NAMES.iter().map(|(_, n)| n.as_bytes()));
        return Ok(());
    }
    let given = text(c.arg(2));
    let name = given.to_ascii_lowercase();
    let Some(&(bit, _)) = cats::NAMES.iter().find(|(_, n)| *n == name) else {
        let shown: String = given.chars().take(128).collect();
        return Err(CmdError::msg(format!("ERR Unknown category '{shown}'")));
    };
    let t = &c.eng.commands;
    let mut names = Vec::new();
    for id in t.top_level() {
        let cmd = t.get(id);
        if cmd.subs.is_empty() {
            if cmd.cats & bit != 0 {
                names.push(cmd.fullname());
            }
        } else {
            names.extend(cmd.subs.iter().map(|&s| t.get(s)).filter(|s| s.cats & bit != 0).map(|s| s.fullname()));
        }
    }
    c.client.out.bulks(names.iter().map(|n| n.as_bytes()));
    Ok(())
}

pub fn dryrun(c: &mut Ctx) -> CmdResult {
    let user = text(c.arg(2));
    if !c.eng.acl.exists(&user) {
        return Err(CmdError::msg(format!("ERR User '{user}' not found")));
    }
    let argv = Argv::from_slices(&(3..c.argc()).map(|i| c.arg(i)).collect::<Vec<_>>());
    let cmd = match c.eng.commands.lookup(&argv) {
        crate::commands::Lookup::Found(id) => id,
        _ => return Err(CmdError::msg(format!("ERR Command '{}' not found", text(argv.get(0))))),
    };
    let spec = c.eng.commands.get(cmd);
    if !spec.arity_ok(argv.len()) {
        return Err(CmdError::msg(format!("ERR wrong number of arguments for '{}' command", spec.fullname())));
    }
    let commands = &c.eng.commands;
    let verdict = c.eng.acl.check(&user, cmd, &argv, &mut || crate::acl::key_args(commands, cmd, &argv));
    let msg = match verdict {
        Ok(()) => {
            c.out().ok();
            return Ok(());
        }
        Err((Denied::Key, pos)) => format!("This user has no permissions to access the '{}' key", text(argv.get(pos))),
        Err((Denied::Channel, pos)) => {
            format!("This user has no permissions to access the '{}' channel", text(argv.get(pos)))
        }
        Err(_) => format!("This user has no permissions to run the '{}' command", spec.fullname()),
    };
    c.out().bulk(msg.as_bytes());
    Ok(())
}

pub fn genpass(c: &mut Ctx) -> CmdResult {
    let bits = if c.argc() > 2 {
        ferrokv_resp::parse_i64(c.arg(2)).ok_or(CmdError::err("ERR value is not an integer or out of range"))?
    } else {
        256
    };
    if !(1..=4096).contains(&bits) {
        return fail(
            "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        );
    }
    let chars = (bits as usize).div_ceil(4);
    let hex = random_hex(chars).ok_or(CmdError::err("ERR can't read random bytes"))?;
    c.out().bulk(hex.as_bytes());
    Ok(())
}

/// `chars` hex digits from the kernel's generator (a password must not be guessable from
/// earlier ones, so not the engine's fast RNG).
fn random_hex(chars: usize) -> Option<String> {
    use std::io::Read;
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).ok()?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(hex[..chars].to_string())
}

pub fn log(c: &mut Ctx) -> CmdResult {
    let count = if c.argc() > 2 {
        let arg = c.arg(2);
        if arg.eq_ignore_ascii_case(b"reset") {
            c.eng.acl.log.entries.clear();
            c.out().ok();
            return Ok(());
        }
        let n = ferrokv_resp::parse_i64(arg).ok_or(CmdError::err("ERR value is not an integer or out of range"))?;
        n.max(0) as usize
    } else {
        10
    };
    let entries = &c.eng.acl.log.entries[..count.min(c.eng.acl.log.entries.len())];
    ferrokv_acl::write_log_entries(&mut c.client.out, entries, c.now);
    Ok(())
}

pub fn load(c: &mut Ctx) -> CmdResult {
    let path = c.eng.cfg.str(pid("aclfile")).to_string();
    if path.is_empty() {
        return fail(NO_ACL_FILE);
    }
    let text = c.eng.host.read_acl_file(&path).map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    let old_users: Vec<String> = c.eng.acl.names().map(str::to_string).collect();
    c.eng.acl.load_file(&path, &text).map_err(|e| CmdError::msg(format!("ERR {e}")))?;
    // Redis 7.0 frees every old user but `default` (copied in place), with its clients.
    for name in old_users.iter().filter(|n| *n != "default") {
        disconnect_user(c, name);
    }
    c.eng.acl_users_changed(c.client);
    c.out().ok();
    Ok(())
}

fn disconnect_user(c: &mut Ctx, name: &str) {
    let ids: Vec<_> = c.eng.clients.iter().filter(|cl| cl.authenticated && cl.user == name).map(|cl| cl.id).collect();
    for id in ids {
        c.eng.detach_id(id);
    }
    if c.client.authenticated && c.client.user == name {
        c.client.close_after_reply = true;
    }
}

pub fn save(c: &mut Ctx) -> CmdResult {
    let path = c.eng.cfg.str(pid("aclfile")).to_string();
    if path.is_empty() {
        return fail(NO_ACL_FILE);
    }
    let text = c.eng.acl.file_text();
    if let Err(e) = c.eng.host.write_acl_file(&path, &text) {
        log::warn!("{e}");
        return fail(
            "ERR There was an error trying to save the ACLs. Please check the server logs for more information",
        );
    }
    c.out().ok();
    Ok(())
}

pub fn help(c: &mut Ctx) -> CmdResult {
    reply_help(c, ferrokv_acl::HELP_LINES)
}
