//! The server's side of the ACL (the model is `ferrokv-acl`): the model over the engine's
//! command table, the permission check every command goes through (NOPERM, with an ACL
//! LOG entry), logins, and what changing users does to connected clients.
//!
//! The hot path: a client remembers the ACL generation at which its user was found to
//! be allowed everything ([`Client::acl_free_gen`]); while that generation is current, the
//! check is one compare and no keys are looked for. A restricted user is kept resolved on
//! the client ([`Client::acl_user`]) until users change, and single-key commands find
//! their key from a position computed once per command (`Cmd::fixed_keys`).

use crate::client::{Client, ClientId};
use crate::commands::getkeys::command_keys;
use crate::commands::spec::flags;
use crate::commands::spec::kflags::{ACCESS, DELETE, INSERT, UPDATE};
use crate::commands::{CmdId, CommandTable};
use crate::engine::Engine;
use ferrokv_acl::{Acl, Allowed, CommandDef, Context, Denied, KeyArg, KeyArgs, LogEntry, KEY_READ, KEY_WRITE};
use ferrokv_config::{pid, Config};
use ferrokv_resp::Argv;

/// A client's `acl_free_gen` when it is not known to be allowed everything.
pub const NOT_FREE: u64 = u64::MAX;

/// The engine's commands as the ACL model sees them (same ids).
fn command_defs(t: &CommandTable) -> Vec<CommandDef> {
    t.cmds
        .iter()
        .map(|c| {
            // Redis's whole table, implemented here or not, so rules and their
            // descriptions match Redis's (a sentinel's own commands excepted).
            let callable = !c.has(flags::ONLY_SENTINEL);
            CommandDef {
                fullname: c.fullname(),
                arity: c.spec.arity as i64,
                // The engine's category bits are Redis's, in ferrokv_acl::CATEGORIES order.
                categories: c.cats as u32,
                no_auth: c.has(flags::NO_AUTH),
                callable,
                fixed_keys: c.fixed_keys.as_ref().map(|f| f.keys().iter().map(|k| key_arg(k.pos, k.flags)).collect()),
                fixed_access_varies: c.fixed_keys.as_ref().is_some_and(|f| f.flags_vary()),
            }
        })
        .collect()
}

/// `acl-pubsub-default allchannels`.
pub fn pubsub_default_all(cfg: &Config) -> bool {
    cfg.get_formatted(pid("acl-pubsub-default")).eq_ignore_ascii_case("allchannels")
}

/// The ACL at startup: `requirepass`, then the `user` lines of the config file, or the
/// users of `aclfile` (text read by the caller; both at once is refused, as by Redis).
pub fn build_acl(t: &CommandTable, cfg: &Config, acl_file: Option<&str>) -> Result<Acl, String> {
    let mut acl = Acl::new(&command_defs(t));
    acl.set_pubsub_default(pubsub_default_all(cfg));
    let pass = cfg.str(pid("requirepass"));
    acl.set_default_password((!pass.is_empty()).then_some(pass.as_bytes()));
    let path = cfg.str(pid("aclfile"));
    if !path.is_empty() && !cfg.users.is_empty() {
        return Err(ferrokv_acl::BOTH_USERS_AND_FILE.into());
    }
    for line in &cfg.users {
        acl.load_user(line).map_err(|e| format!("Error in user declaration: {e}"))?;
    }
    if let Some(text) = acl_file {
        acl.load_file(path, text).map_err(|e| format!("Aborting Redis startup because of ACL errors: {e}"))?;
    }
    Ok(acl)
}

/// A key argument with the access ACL checks ask for, from its key-spec flags.
fn key_arg(pos: usize, flags: u64) -> KeyArg {
    let mut access = 0;
    if flags & ACCESS != 0 {
        access |= KEY_READ;
    }
    if flags & (INSERT | DELETE | UPDATE) != 0 {
        access |= KEY_WRITE;
    }
    KeyArg { pos, access }
}

/// The key arguments of a command line with the access ACL checks ask for.
pub fn key_args(t: &CommandTable, cmd: CmdId, argv: &Argv) -> KeyArgs {
    command_keys(t.get(cmd), argv).into_iter().map(|k| key_arg(k.pos, k.flags)).collect()
}

/// The NOPERM error for a denial (Redis 7.0's texts).
pub fn noperm_message(reason: Denied, fullname: &str) -> String {
    match reason {
        Denied::Key => "NOPERM this user has no permissions to access one of the keys used as arguments".into(),
        Denied::Channel => "NOPERM this user has no permissions to access one of the channels used as arguments".into(),
        _ => format!("NOPERM this user has no permissions to run the '{fullname}' command"),
    }
}

impl Engine {
    /// Whether `client` may run `cmd` with `argv`: Err(why not) after logging the denial.
    /// Inlined at each call site: a client whose user may run everything costs one
    /// compare; a restricted user's common case (an allowed command, keys at fixed
    /// positions, prefix patterns) one call to the compiled fast path; anything else,
    /// denials included, takes the full check.
    #[inline(always)]
    pub(crate) fn acl_check(
        &mut self,
        client: &mut Client,
        cmd: CmdId,
        argv: &Argv,
        context: Context,
    ) -> Result<(), Denied> {
        let generation = self.acl.generation();
        if client.acl_free_gen == generation {
            return Ok(());
        }
        if client.acl_fast_gen == generation && client.acl_fast.allows(cmd, argv) {
            return Ok(());
        }
        self.acl_check_slow(client, cmd, argv, context)
    }

    #[cold]
    fn acl_check_slow(&mut self, client: &mut Client, cmd: CmdId, argv: &Argv, context: Context) -> Result<(), Denied> {
        if client.superuser {
            client.acl_free_gen = self.acl.generation();
            return Ok(());
        }
        let generation = self.acl.generation();
        if client.acl_user.as_ref().is_none_or(|(found_at, _)| *found_at != generation) {
            client.acl_user = self.acl.user_handle(&client.user).map(|u| (generation, u));
            if let Some((_, user)) = &client.acl_user {
                client.acl_fast = user.fast_path();
                client.acl_fast_gen = generation;
            }
        }
        let commands = &self.commands;
        let verdict = match &client.acl_user {
            Some((_, user)) => self.acl.check_handle(user, cmd, argv, &mut || key_args(commands, cmd, argv)),
            // A deleted user (its clients are being disconnected) may run nothing.
            None => Err((Denied::Command, 0)),
        };
        let (reason, pos) = match verdict {
            Ok(Allowed::Everything) => {
                client.acl_free_gen = self.acl.generation();
                return Ok(());
            }
            Ok(Allowed::This) => return Ok(()),
            Err(denied) => denied,
        };
        let fullname = self.commands.get(cmd).fullname();
        let object = match reason {
            Denied::Key | Denied::Channel => String::from_utf8_lossy(argv.get(pos)).into_owned(),
            _ => fullname.to_string(),
        };
        self.acl_log(client, reason, context, object, client.user.clone());
        Err(reason)
    }

    /// The user's verdict on a command line without logging (redis.acl_check_cmd).
    pub(crate) fn acl_allows(&self, user: &str, cmd: CmdId, argv: &Argv) -> bool {
        let commands = &self.commands;
        self.acl.check(user, cmd, argv, &mut || key_args(commands, cmd, argv)).is_ok()
    }

    pub(crate) fn acl_log(
        &mut self,
        client: &Client,
        reason: Denied,
        context: Context,
        object: String,
        username: String,
    ) {
        let now_ms = self.now_ms;
        let client_info = crate::commands::client_cmd::info_line(client, false, now_ms);
        let entry = LogEntry { count: 1, reason, context, object, username, ctime_ms: now_ms, client_info };
        let max_len = self.cfg.int(pid("acllog-max-len")).max(0) as usize;
        self.acl.log_denial(entry, max_len);
    }

    /// Logs in as `user` (AUTH, HELLO AUTH); a failure goes to the ACL LOG under the
    /// command's name as typed. Passwords are compared in constant time and never logged.
    pub(crate) fn acl_authenticate(&mut self, client: &mut Client, command: &[u8], user: &[u8], pass: &[u8]) -> bool {
        let name = String::from_utf8_lossy(user).into_owned();
        if self.acl.check_credentials(&name, pass) {
            client.authenticated = true;
            client.set_user(name);
            return true;
        }
        let object = String::from_utf8_lossy(command).into_owned();
        self.acl_log(client, Denied::Auth, Context::Toplevel, object, name);
        false
    }

    /// After users changed: `requirepass`-less default lets everyone in, clients of deleted
    /// users are disconnected, and subscribers that lost a channel or pattern too (Redis
    /// 7.0 does both; a user merely switched off keeps its connections).
    pub(crate) fn acl_users_changed(&mut self, current: &mut Client) {
        let open = self.acl.default_needs_no_auth();
        let mut doomed: Vec<ClientId> = Vec::new();
        for c in self.clients.iter_mut().chain(std::iter::once(&mut *current)) {
            if open && c.user == "default" {
                c.authenticated = true;
            }
            c.acl_free_gen = NOT_FREE;
            if !c.authenticated || c.superuser {
                continue;
            }
            let lost_channel = !self.acl.exists(&c.user)
                || c.channels.iter().any(|ch| !self.acl.channel_allowed(&c.user, ch, false))
                || c.shard_channels.iter().any(|ch| !self.acl.channel_allowed(&c.user, ch, false))
                || c.patterns.iter().any(|p| !self.acl.channel_allowed(&c.user, p, true));
            if lost_channel {
                doomed.push(c.id);
            }
        }
        for id in doomed {
            if id == current.id {
                current.close_after_reply = true;
            } else {
                self.detach_id(id);
            }
        }
    }
}
