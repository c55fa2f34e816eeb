//! The ACL command of a sentinel, and the ACL side of serving a client: logging in (AUTH,
//! HELLO AUTH), the permission check every command goes through (NOPERM, with an ACL LOG
//! entry), as Redis 7.0's sentinels answer them. The rules live in [`crate::acl`].

use super::hub::{now_ms, ClientId, Hub};
use super::server_cmds::{client_line, Session};
use crate::acl::{Context, Denied, LogEntry};
use ferrokv_resp::ReplyBuf;

fn text(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}

const NO_ACL_FILE: &str = "ERR This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";

/// `bits` of randomness as hex, from the kernel's generator (a password must not be
/// guessable from earlier ones).
fn random_hex(chars: usize) -> Option<String> {
    use std::io::Read;
    let mut bytes = vec![0u8; chars.div_ceil(2)];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).ok()?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(hex[..chars].to_string())
}

pub fn acl(hub: &mut Hub, sess: &mut Session, argv: &[Vec<u8>], out: &mut ReplyBuf) {
    let sub = text(&argv[1]).to_ascii_lowercase();
    let id = hub.acl.lock().resolve(argv);
    let Some(id) = id else {
        return out.error(&format!("ERR unknown subcommand '{}'. Try ACL HELP.", text(&argv[1])));
    };
    if !hub.acl.lock().arity_ok(id, argv.len()) {
        return out.error(&format!("ERR wrong number of arguments for 'acl|{sub}' command"));
    }
    let args: Vec<String> = argv[2..].iter().map(|a| text(a)).collect();
    match sub.as_str() {
        "whoami" => out.bulk(sess.user.as_bytes()),
        "users" => {
            let acl = hub.acl.lock();
            let names: Vec<&str> = acl.names().collect();
            out.array(names.len());
            names.iter().for_each(|n| out.bulk(n.as_bytes()));
        }
        "list" => {
            let lines = hub.acl.lock().config_lines();
            out.array(lines.len());
            lines.iter().for_each(|l| out.bulk(l.as_bytes()));
        }
        "setuser" => match hub.acl.lock().set_user(&args[0], &args[1..]) {
            Ok(()) => out.ok(),
            Err(e) => out.error(&e),
        },
        "deluser" => {
            if args.iter().any(|n| n == "default") {
                return out.error("ERR The 'default' user cannot be removed");
            }
            let mut deleted = 0;
            for name in &args {
                if hub.acl.lock().delete_user(name) {
                    deleted += 1;
                    disconnect_user(hub, name, sess);
                }
            }
            out.int(deleted);
        }
        "getuser" => getuser(hub, &args[0], out),
        "cat" => match args.first() {
            None => {
                out.array(crate::acl::CATEGORIES.len());
                crate::acl::CATEGORIES.iter().for_each(|c| out.bulk(c.as_bytes()));
            }
            Some(name) => match hub.acl.lock().category_commands(name) {
                Some(cmds) => {
                    out.array(cmds.len());
                    cmds.iter().for_each(|c| out.bulk(c.as_bytes()));
                }
                None => out.error(&format!("ERR Unknown category '{}'", &name[..name.len().min(128)])),
            },
        },
        "genpass" => {
            let bits = match args.first() {
                None => 256,
                Some(a) => match ferrokv_resp::parse_i64(a.as_bytes()) {
                    Some(b) => b,
                    None => return out.error(NOT_AN_INTEGER),
                },
            };
            if !(1..=4096).contains(&bits) {
                return out.error("ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096");
            }
            match random_hex(((bits + 3) / 4) as usize) {
                Some(h) => out.bulk(h.as_bytes()),
                None => out.error("ERR can't read random bytes"),
            }
        }
        "log" => log(hub, args.first().map(String::as_str), out),
        "dryrun" => dryrun(hub, &argv[2..], out),
        "load" if hub.acl_file.is_empty() => out.error(NO_ACL_FILE),
        "save" if hub.acl_file.is_empty() => out.error(NO_ACL_FILE),
        "load" => load(hub, sess, out),
        "save" => save(hub, out),
        _ => {
            let usage = "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:";
            let help = [usage].into_iter().chain(ferrokv_acl::HELP_LINES.iter().copied());
            let lines: Vec<&str> = help.chain(["HELP", "    Prints this help."]).collect();
            out.array(lines.len());
            lines.iter().for_each(|l| out.simple(l));
        }
    }
}

/// The ACL file's text, or Redis's error for a file it cannot open.
pub fn read_acl_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        // strerror's text, as Redis prints it: without Rust's " (os error N)".
        let e = e.to_string();
        format!("Error loading ACLs, opening file '{path}': {}", e.split(" (os error").next().unwrap_or(&e))
    })
}

/// ACL LOAD: all the file's users or, on any error, none (Redis's ACLLoadFromFile). The
/// users it replaces lose their clients, as Redis frees them (`default` is kept in place).
fn load(hub: &mut Hub, sess: &mut Session, out: &mut ReplyBuf) {
    let path = hub.acl_file.clone();
    let loaded = read_acl_file(&path).and_then(|text| {
        let mut acl = hub.acl.lock();
        let old_users: Vec<String> = acl.names().filter(|n| *n != "default").map(str::to_string).collect();
        acl.load_file(&path, &text).map(|()| old_users).map_err(|e| e.to_string())
    });
    match loaded {
        Ok(old_users) => {
            for name in &old_users {
                disconnect_user(hub, name, sess);
            }
            out.ok();
        }
        Err(e) => out.error(&format!("ERR {e}")),
    }
}

/// ACL SAVE: the users as `user` lines, replacing the file atomically.
fn save(hub: &mut Hub, out: &mut ReplyBuf) {
    let text = hub.acl.lock().file_text();
    if let Err(e) = ferrokv_config::rewrite::write_atomically(std::path::Path::new(&hub.acl_file), text.as_bytes()) {
        log::warn!("Error saving ACLs to '{}': {e}", hub.acl_file);
        return out.error(
            "ERR There was an error trying to save the ACLs. Please check the server logs for more information",
        );
    }
    out.ok();
}

fn getuser(hub: &Hub, name: &str, out: &mut ReplyBuf) {
    match hub.acl.lock().get_user(name) {
        Some(info) => ferrokv_acl::write_user_info(out, &info),
        None => out.null(),
    }
}

fn log(hub: &mut Hub, arg: Option<&str>, out: &mut ReplyBuf) {
    let mut acl = hub.acl.lock();
    let count = match arg {
        None => 10,
        Some(a) if a.eq_ignore_ascii_case("reset") => {
            acl.log.entries.clear();
            return out.ok();
        }
        Some(a) => match ferrokv_resp::parse_i64(a.as_bytes()) {
            Some(n) => n.max(0) as usize,
            None => return out.error(NOT_AN_INTEGER),
        },
    };
    let entries = &acl.log.entries[..count.min(acl.log.entries.len())];
    ferrokv_acl::write_log_entries(out, entries, now_ms());
}

fn dryrun(hub: &Hub, rest: &[Vec<u8>], out: &mut ReplyBuf) {
    let acl = hub.acl.lock();
    let user = text(&rest[0]);
    if !acl.exists(&user) {
        return out.error(&format!("ERR User '{user}' not found"));
    }
    let argv = &rest[1..];
    let Some(id) = acl.resolve(argv) else {
        return out.error(&format!("ERR Command '{}' not found", text(&argv[0])));
    };
    if !acl.arity_ok(id, argv.len()) {
        return out.error(&format!("ERR wrong number of arguments for '{}' command", acl.fullname(id)));
    }
    match acl.check(&user, id, argv, &mut ferrokv_acl::KeyArgs::new) {
        Ok(()) => out.ok(),
        Err((Denied::Channel, pos)) => {
            out.bulk(format!("This user has no permissions to access the '{}' channel", text(&argv[pos])).as_bytes())
        }
        Err(_) => {
            out.bulk(format!("This user has no permissions to run the '{}' command", acl.fullname(id)).as_bytes())
        }
    }
}

/// Closes the connections logged in as a deleted user (Redis's ACLFreeUserAndKillClients;
/// the current one after its reply).
fn disconnect_user(hub: &mut Hub, name: &str, sess: &mut Session) {
    let ids: Vec<ClientId> = hub.clients.iter().filter(|(_, c)| c.user == name).map(|(id, _)| *id).collect();
    for id in ids {
        if id == sess.id {
            sess.user = "default".into();
            sess.authenticated = false;
            sess.close_after_reply = true;
        } else {
            super::server_cmds::kill(hub, id);
        }
    }
}

/// Logs in as `user` (AUTH, HELLO AUTH). A failure is logged in the ACL LOG under the
/// command's name as given.
pub fn authenticate(hub: &mut Hub, sess: &mut Session, command: &[u8], user: &str, pass: &[u8]) -> bool {
    if hub.acl.lock().check_credentials(user, pass) {
        sess.authenticated = true;
        sess.user = user.to_string();
        if let Some(c) = hub.clients.get_mut(&sess.id) {
            c.user = user.to_string();
        }
        return true;
    }
    let info = client_line(hub, sess.id, now_ms());
    log_denial(hub, Denied::Auth, text(command), user.to_string(), info);
    false
}

/// The permission check before a command runs: Some(error) when the user may not run it.
pub fn check_permission(hub: &mut Hub, sess: &Session, argv: &[Vec<u8>]) -> Option<String> {
    let denied = {
        let acl = hub.acl.lock();
        let id = acl.resolve(argv)?;
        match acl.check(&sess.user, id, argv, &mut ferrokv_acl::KeyArgs::new) {
            Ok(()) => return None,
            Err(e) => (e, acl.fullname(id)),
        }
    };
    let ((reason, pos), name) = denied;
    let (object, error) = match reason {
        Denied::Channel => (
            text(&argv[pos]),
            "NOPERM this user has no permissions to access one of the channels used as arguments".to_string(),
        ),
        _ => (name.to_string(), format!("NOPERM this user has no permissions to run the '{name}' command")),
    };
    let info = client_line(hub, sess.id, now_ms());
    log_denial(hub, reason, object, sess.user.clone(), info);
    Some(error)
}

/// `acllog-max-len`'s default (a sentinel has no such directive).
const LOG_MAX_LEN: usize = 128;

fn log_denial(hub: &mut Hub, reason: Denied, object: String, username: String, client_info: String) {
    let entry =
        LogEntry { count: 1, reason, context: Context::Toplevel, object, username, ctime_ms: now_ms(), client_info };
    hub.acl.lock().log_denial(entry, LOG_MAX_LEN);
}
