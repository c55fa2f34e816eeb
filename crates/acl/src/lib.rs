//! Redis 7.0's ACL as a sans-IO model, shared by the server and the sentinel: users with
//! passwords, command permissions (by command, subcommand, category or first argument),
//! key patterns with read/write permissions, channel patterns, selectors, the ACL LOG, and
//! the texts Redis prints (`ACL SETUSER`'s errors, the rule descriptions of `ACL LIST`,
//! `ACL GETUSER` and the config and ACL files, rebuilt from permission bits as Redis does).
//!
//! The command table comes from the caller ([`CommandDef`]): command ids are the caller's,
//! so a check is an index, and key positions come from the caller's key specs through a
//! closure called only when a selector restricts keys. No I/O, no clock: times, file text
//! and random bytes come from the caller.

mod args;
mod fast;
mod file;
mod log;
mod pattern;
mod reply;
mod selector;
mod table;
mod user;

pub use args::{Args, KeyArg, KeyArgs, KEY_READ, KEY_WRITE};
pub use file::{file_cannot_carry, FileError};
pub use log::{AclLog, Context, Denied, LogEntry};
pub use reply::{write_log_entries, write_user_info};
pub use table::{category, CmdId, CommandDef, CATEGORIES};
pub use user::hash_password;

pub use fast::FastPath;
use selector::{has_spaces, KeyCache, Selector};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use table::Table;
use user::{merge_selector_args, User};

/// How `ACL SETUSER` failed (Redis's errno values, with its messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RuleError {
    UnknownName,
    Syntax,
    KeyAfterAll,
    ChannelAfterAll,
    NoSuchPassword,
    BadHash,
    SubcommandFirstArg,
}

impl RuleError {
    fn message(self) -> &'static str {
        match self {
            RuleError::UnknownName => "Unknown command or category name in ACL",
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAll => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAll => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::SubcommandFirstArg => "Allowing first-arg of a subcommand is not supported",
        }
    }
}

/// What a successful check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// The user may run anything on any key and channel.
    Everything,
    /// This command line.
    This,
}

/// ACL GETUSER's description of a selector.
pub struct SelectorInfo {
    pub commands: String,
    pub keys: String,
    pub channels: String,
}

pub struct UserInfo {
    pub flags: Vec<&'static str>,
    pub passwords: Vec<String>,
    pub root: SelectorInfo,
    pub selectors: Vec<SelectorInfo>,
}

/// A user as found at one [`Acl::generation`]: a caller keeps it (with that generation)
/// for the client logged in as the user, so a check needs no lookup by name. Stale once
/// the generation moves on (the user may have changed or gone). It carries the user's
/// compiled fast path ([`Acl::allows_fast`]).
#[derive(Clone)]
pub struct UserHandle {
    user: Arc<User>,
    fast: FastPath,
}

impl UserHandle {
    /// The user's compiled fast path, for a caller to keep beside the handle (with the
    /// same generation duty).
    pub fn fast_path(&self) -> FastPath {
        self.fast.clone()
    }
}

/// The users and the log.
pub struct Acl {
    table: Table,
    /// Shared with the handles callers keep; a change replaces the whole user.
    users: BTreeMap<String, Arc<User>>,
    pub log: AclLog,
    /// Counts changes to users, so callers can tell a cached verdict is stale.
    generation: u64,
    /// Each user's compiled fast path at this generation, built on first use and shared
    /// by the handles of all its clients (a few KB each otherwise). Behind a mutex so
    /// finding a handle stays a read (it is taken once per client and generation).
    fast_paths: Mutex<BTreeMap<String, FastPath>>,
}

impl Acl {
    /// The `default` user alone, allowed everything without a password.
    pub fn new(commands: &[CommandDef]) -> Acl {
        let table = Table::new(commands);
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), Arc::new(default_user(&table)));
        Acl { table, users, log: AclLog::default(), generation: 0, fast_paths: Mutex::default() }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    fn changed(&mut self) {
        self.generation += 1;
        self.fast_paths.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }

    /// `acl-pubsub-default`: whether users and selectors created from now on start with
    /// every channel (`allchannels`) or none (`resetchannels`, Redis 7.0's default).
    pub fn set_pubsub_default(&mut self, all_channels: bool) {
        self.table.all_channels_default = all_channels;
    }

    /// `requirepass`: the default user's only password (none: nopass).
    pub fn set_default_password(&mut self, pass: Option<&[u8]>) {
        let t = &self.table;
        if let Some(u) = self.users.get_mut("default") {
            let u = Arc::make_mut(u);
            let _ = u.apply(t, "resetpass");
            match pass {
                Some(p) => u.passwords.push(hash_password(p)),
                None => u.nopass = true,
            }
        }
        self.changed();
    }

    /// A `user` line of the config file (the default user is reset first, as Redis does).
    pub fn load_user(&mut self, args: &[String]) -> Result<(), String> {
        let Some((name, rules)) = args.split_first() else {
            return Err("wrong number of arguments".into());
        };
        if has_spaces(name) {
            return Err("Spaces not allowed in ACL usernames".into());
        }
        let mut u = match self.users.get(name) {
            Some(old) if name == "default" => User::clone(old),
            Some(_) => return Err("Duplicate user found. A user can only be defined once in config files".into()),
            None => User::new(&self.table),
        };
        if name == "default" {
            let _ = u.apply(&self.table, "reset");
        }
        let rules = merge_selector_args(rules)
            .map_err(|i| format!("Unmatched parenthesis in acl selector starting at '{}'.", rules[i]))?;
        for r in &rules {
            u.apply(&self.table, r)
                .map_err(|e| format!("Error loading ACL rule '{r}' for the user named '{name}': {}", e.message()))?;
        }
        self.users.insert(name.clone(), Arc::new(u));
        self.changed();
        Ok(())
    }

    /// ACL SETUSER: every modifier applies, or none.
    pub fn set_user(&mut self, name: &str, ops: &[String]) -> Result<(), String> {
        if has_spaces(name) {
            return Err("ERR Usernames can't contain spaces or null characters".into());
        }
        let ops = merge_selector_args(ops)
            .map_err(|i| format!("ERR Unmatched parenthesis in acl selector starting at '{}'.", ops[i]))?;
        let mut u = self.users.get(name).map_or_else(|| User::new(&self.table), |u| User::clone(u));
        for op in &ops {
            u.apply(&self.table, op)
                .map_err(|e| format!("ERR Error in ACL SETUSER modifier '{op}': {}", e.message()))?;
        }
        self.users.insert(name.to_string(), Arc::new(u));
        self.changed();
        Ok(())
    }

    /// ACL DELUSER's removal; the caller disconnects the user's clients.
    pub fn delete_user(&mut self, name: &str) -> bool {
        let found = self.users.remove(name).is_some();
        if found {
            self.changed();
        }
        found
    }

    pub fn exists(&self, name: &str) -> bool {
        self.users.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(String::as_str)
    }

    /// The user's rules as `ACL LIST` and the config file show them (after `user <name> `).
    pub fn describe(&self, name: &str) -> Option<String> {
        let u = self.users.get(name)?;
        let mut s = String::new();
        for f in u.flags() {
            s.push_str(f);
            s.push(' ');
        }
        for p in &u.passwords {
            s.push_str(&format!("#{p} "));
        }
        s.push_str(&u.root.describe(&self.table));
        for sel in &u.selectors {
            s.push_str(&format!(" ({})", sel.describe(&self.table)));
        }
        Some(s)
    }

    /// Every user as a config line (`user <name> <rules>`), by name.
    pub fn config_lines(&self) -> Vec<String> {
        self.names().filter_map(|n| Some(format!("user {n} {}", self.describe(n)?))).collect()
    }

    /// ACL GETUSER's fields.
    pub fn get_user(&self, name: &str) -> Option<UserInfo> {
        let u = self.users.get(name)?;
        let sel = |s: &Selector| SelectorInfo {
            commands: s.describe_commands(&self.table),
            keys: s.describe_keys().join(" "),
            channels: s.describe_channels(),
        };
        Some(UserInfo {
            flags: u.flags(),
            passwords: u.passwords.clone(),
            root: sel(&u.root),
            selectors: u.selectors.iter().map(sel).collect(),
        })
    }

    /// Whether `pass` logs in as `name` (Redis: unknown or disabled users never do). The
    /// password is compared by hash in constant time.
    pub fn check_credentials(&self, name: &str, pass: &[u8]) -> bool {
        match self.users.get(name) {
            Some(u) if u.enabled => u.password_matches(pass),
            _ => false,
        }
    }

    /// New connections are logged in as `default` when it needs no password.
    pub fn default_needs_no_auth(&self) -> bool {
        self.users.get("default").is_some_and(|u| u.enabled && u.nopass)
    }

    /// The user may run anything on any key and channel: callers skip [`Acl::check`]
    /// (and finding keys) for it.
    pub fn unrestricted(&self, name: &str) -> bool {
        self.users.get(name).is_some_and(|u| u.root.unrestricted())
    }

    /// The command `argv` names for ACL: a container's subcommand if it has that one.
    /// None for a command the table does not have.
    pub fn resolve<A: Args + ?Sized>(&self, argv: &A) -> Option<CmdId> {
        if argv.count() == 0 {
            return None;
        }
        let name = String::from_utf8_lossy(argv.arg(0)).to_ascii_lowercase();
        let id = self.table.lookup(&name)?;
        if self.table.cmds[id].subs.is_empty() || argv.count() < 2 {
            // A container alone names itself (its arity then refuses it).
            return Some(id);
        }
        self.table.lookup(&format!("{name}|{}", String::from_utf8_lossy(argv.arg(1))))
    }

    /// A command name as `name` or `name|sub`, for DRYRUN.
    pub fn lookup(&self, name: &str) -> Option<CmdId> {
        self.table.lookup(name)
    }

    pub fn fullname(&self, id: CmdId) -> &'static str {
        self.table.cmds[id].name
    }

    /// Whether `argc` arguments (the command's name included) fit the command's arity.
    pub fn arity_ok(&self, id: CmdId, argc: usize) -> bool {
        self.table.arity_ok(id, argc)
    }

    /// Redis's ACLCheckAllUserCommandPerm: allowed if the root or any selector allows it;
    /// otherwise the most relevant denial, with the argument it is about. `keys` finds the
    /// command line's keys; it is called at most once, and only if a selector restricts
    /// keys.
    pub fn check<A: Args + ?Sized>(
        &self,
        user: &str,
        id: CmdId,
        argv: &A,
        keys: &mut dyn FnMut() -> KeyArgs,
    ) -> Result<(), (Denied, usize)> {
        self.check_user(user, id, argv, keys).map(|_| ())
    }

    /// [`Acl::check`], telling also whether the user may run anything on any key and
    /// channel (then nothing was looked at, and callers may skip later checks).
    pub fn check_user<A: Args + ?Sized>(
        &self,
        user: &str,
        id: CmdId,
        argv: &A,
        keys: &mut dyn FnMut() -> KeyArgs,
    ) -> Result<Allowed, (Denied, usize)> {
        match self.users.get(user) {
            Some(u) => self.check_against(u, id, argv, keys),
            None => Err((Denied::Command, 0)),
        }
    }

    /// The user named `name` now, for [`Acl::check_handle`] until the generation moves.
    pub fn user_handle(&self, name: &str) -> Option<UserHandle> {
        let user = self.users.get(name)?;
        let mut fast_paths = self.fast_paths.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let fast = fast_paths
            .entry(name.to_string())
            .or_insert_with(|| FastPath::new(fast::FastCheck::new(&self.table, &user.root)))
            .clone();
        Some(UserHandle { user: user.clone(), fast })
    }

    /// True if the user's root permissions allow this command line outright (the common
    /// shape: an allowed command, keys at fixed positions, literal or prefix patterns):
    /// [`Acl::check_handle`] would then answer `Ok(Allowed::This)`. False means nothing
    /// but "ask [`Acl::check_handle`]", which decides (and explains a denial). Same
    /// generation duty as [`Acl::check_handle`].
    #[inline(always)]
    pub fn allows_fast<A: Args + ?Sized>(&self, user: &UserHandle, id: CmdId, argv: &A) -> bool {
        user.fast.allows(id, argv)
    }

    /// [`Acl::check_user`] for a user found by [`Acl::user_handle`] at the current
    /// generation (the caller's duty: a stale handle checks against old rules).
    pub fn check_handle<A: Args + ?Sized>(
        &self,
        user: &UserHandle,
        id: CmdId,
        argv: &A,
        keys: &mut dyn FnMut() -> KeyArgs,
    ) -> Result<Allowed, (Denied, usize)> {
        self.check_against(&user.user, id, argv, keys)
    }

    fn check_against<A: Args + ?Sized>(
        &self,
        u: &User,
        id: CmdId,
        argv: &A,
        keys: &mut dyn FnMut() -> KeyArgs,
    ) -> Result<Allowed, (Denied, usize)> {
        if u.root.unrestricted() {
            return Ok(Allowed::Everything);
        }
        let cmd = &self.table.cmds[id];
        let fixed = cmd.fixed_keys.as_deref().filter(|_| argv.count() >= cmd.fixed_min_argc);
        let mut cache = KeyCache::new(fixed, !cmd.fixed_access_varies, keys);
        // The root first, on its own: most users have no selectors.
        let mut worst = match u.root.check(&self.table, id, argv, &mut cache) {
            Ok(()) => return Ok(Allowed::This),
            Err(e) => e,
        };
        for s in &u.selectors {
            match s.check(&self.table, id, argv, &mut cache) {
                Ok(()) => return Ok(Allowed::This),
                Err(e) if e > worst => worst = e,
                Err(_) => {}
            }
        }
        Err(worst)
    }

    /// Whether the user may still use a channel (or, `pattern`, a subscribed pattern):
    /// after a change, subscribers that lost one are disconnected as Redis does.
    pub fn channel_allowed(&self, user: &str, channel: &[u8], pattern: bool) -> bool {
        self.users
            .get(user)
            .is_some_and(|u| std::iter::once(&u.root).chain(&u.selectors).any(|s| s.channel_allowed(channel, pattern)))
    }

    /// The commands of a category (ACL CAT <category>), or None if there is no such one.
    pub fn category_commands(&self, name: &str) -> Option<Vec<&'static str>> {
        let cat = category(name)?;
        let cmds = &self.table.cmds;
        Some(cmds.iter().filter(|c| c.callable && c.cats & (1 << cat) != 0).map(|c| c.name).collect())
    }

    /// Records a denial (see [`AclLog::add`]).
    pub fn log_denial(&mut self, entry: LogEntry, max_len: usize) {
        self.log.add(entry, max_len);
    }
}

/// Why a server or sentinel with both `user` lines and an `aclfile` refuses to start.
pub const BOTH_USERS_AND_FILE: &str = "Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.";

/// ACL HELP's lines for the subcommands, as Redis 7.0 prints them (the server and the
/// sentinel add the usage line and HELP's own entry around them).
pub const HELP_LINES: &[&str] = &[
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Delete a list of users.",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOAD",
    "    Reload users from the ACL file.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SAVE",
    "    Save the current config to the ACL file.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Create or modify a user with the specified attributes.",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
];

/// Redis's default user: everything, no password.
fn default_user(t: &Table) -> User {
    let mut u = User::new(t);
    for op in ["+@all", "~*", "&*", "on", "nopass"] {
        let _ = u.apply(t, op);
    }
    u
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fast_tests;
