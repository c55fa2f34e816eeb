//! The ACL of a sentinel. Redis 7.0's sentinels run Redis's ACL over their own command
//! table: users with passwords, command permissions (by command, subcommand, category or
//! first argument), key and channel patterns, selectors, the ACL LOG. This module is that
//! model with Redis's rules and texts: `ACL SETUSER`'s modifiers and errors, the
//! descriptions `ACL LIST`, `ACL GETUSER` and the config rewrite print (command rules
//! rebuilt from the permission bits, as Redis 7.0 does), the checks a command goes through
//! and the log. No I/O, no clock: times and random bytes come from the caller.

use std::collections::BTreeMap;

/// Redis's command categories, in its order (`ACL CAT`, and the order rules are fitted).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

const SLOW: &[&str] = &["slow"];
const ADMIN: &[&str] = &["admin", "dangerous", "slow"];
const CONN: &[&str] = &["connection", "slow"];
const CONN_ADMIN: &[&str] = &["admin", "dangerous", "connection", "slow"];
const CONN_FAST: &[&str] = &["connection", "fast"];
const PUBSUB: &[&str] = &["pubsub", "slow"];

/// A sentinel's commands as Redis 7.0 has them for ACL (those flagged for sentinel mode):
/// each container before its subcommands, with their arity and categories, declared and
/// implied by their flags (admin: also dangerous; not fast: slow).
const TABLE: &[(&str, i64, &[&str])] = &[
    ("acl", -2, SLOW),
    ("acl|cat", -2, SLOW),
    ("acl|deluser", -3, ADMIN),
    ("acl|dryrun", -4, ADMIN),
    ("acl|genpass", -2, SLOW),
    ("acl|getuser", 3, ADMIN),
    ("acl|help", 2, SLOW),
    ("acl|list", 2, ADMIN),
    ("acl|load", 2, ADMIN),
    ("acl|log", -2, ADMIN),
    ("acl|save", 2, ADMIN),
    ("acl|setuser", -3, ADMIN),
    ("acl|users", 2, ADMIN),
    ("acl|whoami", 2, SLOW),
    ("auth", -2, CONN_FAST),
    ("client", -2, SLOW),
    ("client|caching", 3, CONN),
    ("client|getname", 2, CONN),
    ("client|getredir", 2, CONN),
    ("client|help", 2, CONN),
    ("client|id", 2, CONN),
    ("client|info", 2, CONN),
    ("client|kill", -3, CONN_ADMIN),
    ("client|list", -2, CONN_ADMIN),
    ("client|no-evict", 3, CONN_ADMIN),
    ("client|pause", -3, CONN_ADMIN),
    ("client|reply", 3, CONN),
    ("client|setname", 3, CONN),
    ("client|tracking", -3, CONN),
    ("client|trackinginfo", 2, CONN),
    ("client|unblock", -3, CONN_ADMIN),
    ("client|unpause", 2, CONN_ADMIN),
    ("command", -1, CONN),
    ("command|count", 2, CONN),
    ("command|docs", -2, CONN),
    ("command|getkeys", -4, CONN),
    ("command|getkeysandflags", -4, CONN),
    ("command|help", 2, CONN),
    ("command|info", -2, CONN),
    ("command|list", -2, CONN),
    ("hello", -1, CONN_FAST),
    ("info", -1, &["dangerous", "slow"]),
    ("ping", -1, CONN_FAST),
    ("psubscribe", -2, PUBSUB),
    ("publish", 3, &["pubsub", "fast"]),
    ("punsubscribe", -1, PUBSUB),
    ("role", 1, &["admin", "dangerous", "fast"]),
    ("sentinel", -2, ADMIN),
    ("sentinel|ckquorum", 3, ADMIN),
    ("sentinel|config", -3, ADMIN),
    ("sentinel|debug", -2, ADMIN),
    ("sentinel|failover", 3, ADMIN),
    ("sentinel|flushconfig", 2, ADMIN),
    ("sentinel|get-master-addr-by-name", 3, ADMIN),
    ("sentinel|help", 2, SLOW),
    ("sentinel|info-cache", -3, ADMIN),
    ("sentinel|is-master-down-by-addr", 6, ADMIN),
    ("sentinel|master", 3, ADMIN),
    ("sentinel|masters", 2, ADMIN),
    ("sentinel|monitor", 6, ADMIN),
    ("sentinel|myid", 2, ADMIN),
    ("sentinel|pending-scripts", 2, ADMIN),
    ("sentinel|remove", 3, ADMIN),
    ("sentinel|replicas", 3, ADMIN),
    ("sentinel|reset", 3, ADMIN),
    ("sentinel|sentinels", 3, ADMIN),
    ("sentinel|set", -5, ADMIN),
    ("sentinel|simulate-failure", -3, ADMIN),
    ("sentinel|slaves", 3, ADMIN),
    ("shutdown", -1, ADMIN),
    ("subscribe", -2, PUBSUB),
    ("unsubscribe", -1, PUBSUB),
];

/// Commands any connection may run, authenticated or not, whatever its permissions.
const NO_AUTH: &[&str] = &["auth", "hello"];

/// An index into the command table.
pub type CmdId = usize;

struct Command {
    name: &'static str,
    arity: i64,
    cats: u32,
    parent: Option<CmdId>,
    subs: Vec<CmdId>,
}

fn category(name: &str) -> Option<usize> {
    CATEGORIES.iter().position(|c| c.eq_ignore_ascii_case(name))
}

fn build_table() -> Vec<Command> {
    let mut t: Vec<Command> = Vec::with_capacity(TABLE.len());
    for &(name, arity, cats) in TABLE {
        let cats = cats.iter().map(|c| 1u32 << category(c).expect("known category")).fold(0, |a, b| a | b);
        let parent = name.split_once('|').and_then(|(p, _)| t.iter().position(|c| c.name == p));
        let id = t.len();
        t.push(Command { name, arity, cats, parent, subs: Vec::new() });
        if let Some(p) = parent {
            t[p].subs.push(id);
        }
    }
    t
}

/// Why a check failed: Redis's ACL_DENIED_* (its order picks the error reported when no
/// selector allows a command).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Denied {
    Command = 1,
    Auth = 3,
    Channel = 4,
}

/// How `ACL SETUSER` failed (Redis's errno values, with its messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuleError {
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

const READ: u8 = 1;
const WRITE: u8 = 2;

/// What a user may run and touch: its root permissions, or one of its selectors.
#[derive(Clone, PartialEq, Eq)]
struct Selector {
    allowed: Vec<bool>,
    /// Set by +@all only: Redis's reserved bit for commands added later (it decides
    /// whether a description starts from +@all or -@all).
    future: bool,
    /// Every command allowed, with no exception since (checks skip the bits).
    all_commands: bool,
    /// Allowed first arguments of otherwise denied commands (`+info|server`).
    first_args: BTreeMap<CmdId, Vec<String>>,
    all_keys: bool,
    keys: Vec<(String, u8)>,
    all_channels: bool,
    channels: Vec<String>,
}

fn has_spaces(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_whitespace() || b == 0)
}

/// Redis's sha256 of a password, as lowercase hex.
pub fn hash_password(pass: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(pass).iter().map(|b| format!("{b:02x}")).collect()
}

fn valid_hash(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Selector {
    fn new(n: usize) -> Selector {
        Selector {
            allowed: vec![false; n],
            future: false,
            all_commands: false,
            first_args: BTreeMap::new(),
            all_keys: false,
            keys: Vec::new(),
            all_channels: false,
            channels: Vec::new(),
        }
    }

    fn set_bit(&mut self, id: CmdId, allow: bool) {
        self.allowed[id] = allow;
        if !allow {
            self.all_commands = false;
        }
    }

    /// Allows or denies a command, and with a container all its subcommands.
    fn change(&mut self, t: &[Command], id: CmdId, allow: bool) {
        self.set_bit(id, allow);
        self.first_args.remove(&id);
        for &s in &t[id].subs {
            self.set_bit(s, allow);
        }
    }

    fn change_category(&mut self, t: &[Command], cat: usize, allow: bool) {
        for id in 0..t.len() {
            if t[id].cats & (1 << cat) != 0 {
                self.change(t, id, allow);
            }
        }
    }

    fn count_category(&self, t: &[Command], cat: usize) -> (usize, usize) {
        let members = (0..t.len()).filter(|&id| t[id].cats & (1 << cat) != 0);
        members.fold((0, 0), |(on, off), id| if self.allowed[id] { (on + 1, off) } else { (on, off + 1) })
    }

    /// One modifier that acts on permissions (Redis's ACLSetSelector).
    fn apply(&mut self, t: &[Command], op: &str) -> Result<(), RuleError> {
        let lower = op.to_ascii_lowercase();
        match lower.as_str() {
            "allkeys" | "~*" => {
                self.all_keys = true;
                self.keys.clear();
            }
            "resetkeys" => {
                self.all_keys = false;
                self.keys.clear();
            }
            "allchannels" | "&*" => {
                self.all_channels = true;
                self.channels.clear();
            }
            "resetchannels" => {
                self.all_channels = false;
                self.channels.clear();
            }
            "allcommands" | "+@all" => {
                self.allowed.iter_mut().for_each(|b| *b = true);
                self.future = true;
                self.all_commands = true;
                self.first_args.clear();
            }
            "nocommands" | "-@all" => {
                self.allowed.iter_mut().for_each(|b| *b = false);
                self.future = false;
                self.all_commands = false;
                self.first_args.clear();
            }
            _ if op.starts_with('~') || op.starts_with('%') => self.add_key_pattern(op)?,
            _ if op.starts_with('&') => {
                if self.all_channels {
                    return Err(RuleError::ChannelAfterAll);
                }
                let pat = &op[1..];
                if has_spaces(pat) {
                    return Err(RuleError::Syntax);
                }
                if !self.channels.iter().any(|c| c == pat) {
                    self.channels.push(pat.to_string());
                }
                self.all_channels = false;
            }
            _ if op.starts_with("+@") || op.starts_with("-@") => {
                let cat = category(&op[2..]).ok_or(RuleError::UnknownName)?;
                self.change_category(t, cat, op.starts_with('+'));
            }
            _ if op.starts_with('+') => self.allow_command(t, &op[1..])?,
            _ if op.starts_with('-') => {
                let id = lookup(t, &op[1..]).ok_or(RuleError::UnknownName)?;
                self.change(t, id, false);
            }
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &str) -> Result<(), RuleError> {
        if self.all_keys {
            return Err(RuleError::KeyAfterAll);
        }
        let (flags, pat) = match op.strip_prefix('%') {
            None => (READ | WRITE, &op[1..]),
            Some(rest) => {
                let mut flags = 0;
                let mut pat = "";
                for (i, c) in rest.char_indices() {
                    match c.to_ascii_uppercase() {
                        'R' if flags & READ == 0 => flags |= READ,
                        'W' if flags & WRITE == 0 => flags |= WRITE,
                        '~' => {
                            pat = &rest[i + 1..];
                            break;
                        }
                        _ => return Err(RuleError::Syntax),
                    }
                }
                (flags, pat)
            }
        };
        if flags == 0 || has_spaces(pat) {
            return Err(RuleError::Syntax);
        }
        match self.keys.iter_mut().find(|(p, _)| p == pat) {
            Some((_, f)) => *f |= flags,
            None => self.keys.push((pat.to_string(), flags)),
        }
        self.all_keys = false;
        Ok(())
    }

    /// `+command`, `+container|subcommand` or `+command|first-arg`.
    fn allow_command(&mut self, t: &[Command], name: &str) -> Result<(), RuleError> {
        let Some((base, sub)) = name.rsplit_once('|') else {
            let id = lookup(t, name).ok_or(RuleError::UnknownName)?;
            self.change(t, id, true);
            return Ok(());
        };
        let id = lookup(t, base).ok_or(RuleError::UnknownName)?;
        if t[id].parent.is_some() {
            return Err(RuleError::SubcommandFirstArg);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !t[id].subs.is_empty() {
            let sub_id = lookup(t, name).ok_or(RuleError::UnknownName)?;
            self.change(t, sub_id, true);
        } else {
            log::warn!("Deprecation warning: Allowing a first arg of an otherwise blocked command is a misuse of ACL and may get disabled in the future (offender: +{name})");
            let args = self.first_args.entry(id).or_default();
            if !args.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                args.push(sub.to_string());
            }
        }
        Ok(())
    }

    /// The command rules that rebuild these permissions, as Redis 7.0 writes them: from
    /// +@all or -@all, the categories that fit best, then single commands.
    fn describe_commands(&self, t: &[Command]) -> String {
        let additive = !self.future;
        let mut fake = Selector::new(t.len());
        let mut rules = String::new();
        let base = if additive { "-@all" } else { "+@all" };
        let _ = fake.apply(t, base);
        rules.push_str(base);
        rules.push(' ');
        let mut temp = self.clone();
        let mut applied = [false; CATEGORIES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (usize::MAX, 0);
            for (cat, done) in applied.iter().enumerate() {
                if *done {
                    continue;
                }
                let (on, off) = temp.count_category(t, cat);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(cat);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(cat) = best else { break };
            fake.change_category(t, cat, additive);
            temp.change_category(t, cat, !additive);
            rules.push_str(if additive { "+@" } else { "-@" });
            rules.push_str(CATEGORIES[cat]);
            rules.push(' ');
            applied[cat] = true;
        }
        for id in (0..t.len()).filter(|&id| t[id].parent.is_none()) {
            self.describe_single(t, id, &mut fake, &mut rules);
        }
        rules.pop();
        rules
    }

    fn describe_single(&self, t: &[Command], id: CmdId, fake: &mut Selector, rules: &mut String) {
        let bit = self.allowed[id];
        if bit != fake.allowed[id] {
            rules.push(if bit { '+' } else { '-' });
            rules.push_str(t[id].name);
            rules.push(' ');
            fake.change(t, id, bit);
        }
        for &s in &t[id].subs {
            self.describe_single(t, s, fake, rules);
        }
        if !bit {
            for a in self.first_args.get(&id).into_iter().flatten() {
                rules.push_str(&format!("+{}|{a} ", t[id].name));
            }
        }
    }

    fn describe_keys(&self) -> Vec<String> {
        if self.all_keys {
            return vec!["~*".into()];
        }
        let prefix = |f: u8| match f {
            READ => "%R~",
            WRITE => "%W~",
            _ => "~",
        };
        self.keys.iter().map(|(p, f)| format!("{}{p}", prefix(*f))).collect()
    }

    /// Keys, channels and commands, as in `ACL LIST`.
    fn describe(&self, t: &[Command]) -> String {
        let mut s = String::new();
        for k in self.describe_keys() {
            s.push_str(&k);
            s.push(' ');
        }
        if self.all_channels {
            s.push_str("&* ");
        } else {
            s.push_str("resetchannels ");
            for c in &self.channels {
                s.push_str(&format!("&{c} "));
            }
        }
        s.push_str(&self.describe_commands(t));
        s
    }

    /// Redis's ACLSelectorCheckCmd: the command, then the channels it names.
    fn check(&self, t: &[Command], id: CmdId, argv: &[Vec<u8>]) -> Result<(), (Denied, usize)> {
        let no_auth = NO_AUTH.contains(&t[id].name);
        if !self.all_commands && !no_auth && !self.allowed[id] {
            let pos = if t[id].parent.is_some() { 2 } else { 1 };
            let first = argv.get(pos).map(|a| String::from_utf8_lossy(a).into_owned());
            let allowed = first.is_some_and(|f| {
                self.first_args.get(&id).is_some_and(|args| args.iter().any(|a| a.eq_ignore_ascii_case(&f)))
            });
            if !allowed {
                return Err((Denied::Command, 0));
            }
        }
        if !self.all_channels {
            let (positions, pattern): (std::ops::Range<usize>, bool) = match t[id].name {
                "publish" => (1..2.min(argv.len()), false),
                "subscribe" => (1..argv.len(), false),
                "psubscribe" => (1..argv.len(), true),
                _ => (0..0, false),
            };
            for pos in positions {
                let ch = &argv[pos];
                let ok = self.channels.iter().any(|p| {
                    if pattern {
                        p.as_bytes() == ch.as_slice()
                    } else {
                        ferrokv_keyspace::glob::glob_match(p.as_bytes(), ch, false)
                    }
                });
                if !ok {
                    return Err((Denied::Channel, pos));
                }
            }
        }
        Ok(())
    }
}

/// `name` or `container|subcommand`, case-insensitively (Redis's strict lookup: a plain
/// command's `cmd|x` names nothing).
fn lookup(t: &[Command], name: &str) -> Option<CmdId> {
    let lower = name.to_ascii_lowercase();
    t.iter().position(|c| c.name == lower)
}

/// A user: flags, password hashes, root permissions and selectors.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    enabled: bool,
    nopass: bool,
    /// `sanitize-payload` (Some(true)) or `skip-sanitize-payload` (Some(false)).
    sanitize: Option<bool>,
    passwords: Vec<String>,
    root: Selector,
    selectors: Vec<Selector>,
}

impl User {
    fn new(name: &str, n: usize) -> User {
        User {
            name: name.to_string(),
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            root: Selector::new(n),
            selectors: Vec::new(),
        }
    }

    fn flags(&self) -> Vec<&'static str> {
        let mut f = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            f.push("nopass");
        }
        match self.sanitize {
            Some(false) => f.push("skip-sanitize-payload"),
            Some(true) => f.push("sanitize-payload"),
            None => {}
        }
        f
    }

    /// One modifier (Redis's ACLSetUser).
    fn apply(&mut self, t: &[Command], op: &str) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        match op.to_ascii_lowercase().as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "skip-sanitize-payload" => self.sanitize = Some(false),
            "sanitize-payload" => self.sanitize = Some(true),
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "clearselectors" => self.selectors.clear(),
            "reset" => {
                for op in ["resetpass", "resetkeys", "resetchannels", "off", "sanitize-payload", "clearselectors"] {
                    self.apply(t, op)?;
                }
                self.apply(t, "-@all")?;
            }
            _ if op.starts_with('>') || op.starts_with('#') => {
                let hash = self.hash_of(op)?;
                if !self.passwords.contains(&hash) {
                    self.passwords.push(hash);
                }
                self.nopass = false;
            }
            _ if op.starts_with('<') || op.starts_with('!') => {
                let hash = self.hash_of(op)?;
                let at = self.passwords.iter().position(|p| *p == hash).ok_or(RuleError::NoSuchPassword)?;
                self.passwords.remove(at);
            }
            _ if op.len() >= 2 && op.starts_with('(') && op.ends_with(')') => {
                let mut s = Selector::new(t.len());
                let inner = &op[1..op.len() - 1];
                let ops = ferrokv_resp::args::split_args(inner.as_bytes()).map_err(|_| RuleError::Syntax)?;
                for o in ops {
                    s.apply(t, &String::from_utf8_lossy(&o))?;
                }
                self.selectors.push(s);
            }
            _ => self.root.apply(t, op)?,
        }
        Ok(())
    }

    /// The hash a `>pass`/`<pass` (hashed here) or `#hash`/`!hash` (checked) names.
    fn hash_of(&self, op: &str) -> Result<String, RuleError> {
        let rest = &op[1..];
        if op.starts_with('>') || op.starts_with('<') {
            Ok(hash_password(rest.as_bytes()))
        } else if valid_hash(rest) {
            Ok(rest.to_string())
        } else {
            Err(RuleError::BadHash)
        }
    }
}

/// Groups of ACL rules in `ACL SETUSER` arguments: `(` … `)` spread over several
/// arguments become one selector. The index of an unclosed `(` on error.
fn merge_selector_args(args: &[String]) -> Result<Vec<String>, usize> {
    let mut out = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, a) in args.iter().enumerate() {
        if let Some((start, mut acc)) = open.take() {
            acc.push(' ');
            acc.push_str(a);
            if a.ends_with(')') {
                out.push(acc);
            } else {
                open = Some((start, acc));
            }
            continue;
        }
        if a.starts_with('(') && !a.ends_with(')') {
            open = Some((i, a.clone()));
            continue;
        }
        out.push(a.clone());
    }
    match open {
        Some((start, _)) => Err(start),
        None => Ok(out),
    }
}

/// One ACL LOG entry.
pub struct LogEntry {
    pub count: u64,
    pub reason: Denied,
    pub object: String,
    pub username: String,
    pub ctime_ms: i64,
    pub client_info: String,
}

impl LogEntry {
    pub fn reason_name(&self) -> &'static str {
        match self.reason {
            Denied::Command => "command",
            Denied::Channel => "channel",
            Denied::Auth => "auth",
        }
    }
}

/// Entries grouped into one when they repeat within this time.
const LOG_GROUPING_MS: i64 = 60_000;
/// `acllog-max-len`'s default.
const LOG_MAX_LEN: usize = 128;

/// The users and the log.
pub struct Acl {
    table: Vec<Command>,
    users: BTreeMap<String, User>,
    pub log: Vec<LogEntry>,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new()
    }
}

impl Acl {
    /// The `default` user alone, allowed everything without a password.
    pub fn new() -> Acl {
        let table = build_table();
        let mut default = User::new("default", table.len());
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = default.apply(&table, op);
        }
        let mut users = BTreeMap::new();
        users.insert("default".to_string(), default);
        Acl { table, users, log: Vec::new() }
    }

    /// `requirepass`: the default user's only password (none: nopass).
    pub fn set_default_password(&mut self, pass: Option<&str>) {
        let t = &self.table;
        if let Some(u) = self.users.get_mut("default") {
            let _ = u.apply(t, "resetpass");
            let _ = match pass {
                Some(p) => u.apply(t, &format!(">{p}")),
                None => u.apply(t, "nopass"),
            };
        }
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
            Some(old) if name == "default" => old.clone(),
            Some(_) => return Err("Duplicate user found. A user can only be defined once in config files".into()),
            None => User::new(name, self.table.len()),
        };
        if name == "default" {
            let _ = u.apply(&self.table, "reset");
        }
        for r in rules {
            u.apply(&self.table, r)
                .map_err(|e| format!("Error loading ACL rule '{r}' for the user named '{name}': {}", e.message()))?;
        }
        self.users.insert(name.clone(), u);
        Ok(())
    }

    /// ACL SETUSER: every modifier applies, or none.
    pub fn set_user(&mut self, name: &str, ops: &[String]) -> Result<(), String> {
        if has_spaces(name) {
            return Err("ERR Usernames can't contain spaces or null characters".into());
        }
        let ops = merge_selector_args(ops)
            .map_err(|i| format!("ERR Unmatched parenthesis in acl selector starting at '{}'.", ops[i]))?;
        let mut u = self.users.get(name).cloned().unwrap_or_else(|| User::new(name, self.table.len()));
        for op in &ops {
            u.apply(&self.table, op)
                .map_err(|e| format!("ERR Error in ACL SETUSER modifier '{op}': {}", e.message()))?;
        }
        self.users.insert(name.to_string(), u);
        Ok(())
    }

    /// ACL DELUSER's removal; the caller disconnects the users' clients.
    pub fn delete_user(&mut self, name: &str) -> bool {
        self.users.remove(name).is_some()
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
            channels: if s.all_channels {
                "&*".into()
            } else {
                s.channels.iter().map(|c| format!("&{c}")).collect::<Vec<_>>().join(" ")
            },
        };
        Some(UserInfo {
            flags: u.flags(),
            passwords: u.passwords.clone(),
            root: sel(&u.root),
            selectors: u.selectors.iter().map(sel).collect(),
        })
    }

    /// Whether `pass` logs in as `name` (Redis: unknown or disabled users never do).
    pub fn check_credentials(&self, name: &str, pass: &[u8]) -> bool {
        match self.users.get(name) {
            Some(u) if u.enabled => u.nopass || u.passwords.contains(&hash_password(pass)),
            _ => false,
        }
    }

    /// New connections are logged in as `default` when it needs no password.
    pub fn default_needs_no_auth(&self) -> bool {
        self.users.get("default").is_some_and(|u| u.enabled && u.nopass)
    }

    /// The command `argv` names for ACL: a container's subcommand if it has that one.
    /// None for a command the table does not have.
    pub fn resolve(&self, argv: &[Vec<u8>]) -> Option<CmdId> {
        let name = String::from_utf8_lossy(argv.first()?).to_ascii_lowercase();
        let id = lookup(&self.table, &name)?;
        if self.table[id].subs.is_empty() {
            return Some(id);
        }
        // A container alone names itself (its arity then refuses it).
        let Some(sub) = argv.get(1) else { return Some(id) };
        lookup(&self.table, &format!("{name}|{}", String::from_utf8_lossy(sub)))
    }

    /// A command name as `name` or `name|sub`, for DRYRUN.
    pub fn lookup(&self, name: &str) -> Option<CmdId> {
        lookup(&self.table, name)
    }

    pub fn fullname(&self, id: CmdId) -> &'static str {
        self.table[id].name
    }

    /// Whether `argc` arguments (the command's name included) fit the command's arity.
    pub fn arity_ok(&self, id: CmdId, argc: usize) -> bool {
        let (arity, argc) = (self.table[id].arity, argc as i64);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Redis's ACLCheckAllUserCommandPerm: allowed if the root or any selector allows it;
    /// otherwise the most relevant denial, with the argument it is about.
    pub fn check(&self, user: &str, id: CmdId, argv: &[Vec<u8>]) -> Result<(), (Denied, usize)> {
        let Some(u) = self.users.get(user) else {
            return Err((Denied::Command, 0));
        };
        let mut worst = (Denied::Command, 0);
        for s in std::iter::once(&u.root).chain(&u.selectors) {
            match s.check(&self.table, id, argv) {
                Ok(()) => return Ok(()),
                Err(e) if e > worst => worst = e,
                Err(_) => {}
            }
        }
        Err(worst)
    }

    /// The commands of a category (ACL CAT <category>), or None if there is no such one.
    pub fn category_commands(&self, name: &str) -> Option<Vec<&'static str>> {
        let cat = category(name)?;
        Some(self.table.iter().filter(|c| c.cats & (1 << cat) != 0).map(|c| c.name).collect())
    }

    /// Records a denial, folding it into a recent identical entry (Redis scans the ten
    /// newest).
    pub fn log_denial(&mut self, reason: Denied, object: String, username: String, client_info: String, now_ms: i64) {
        let same = |e: &LogEntry| {
            e.reason == reason
                && (e.ctime_ms - now_ms).abs() <= LOG_GROUPING_MS
                && e.object == object
                && e.username == username
        };
        if let Some(i) = self.log.iter().take(10).position(same) {
            let mut e = self.log.remove(i);
            e.count += 1;
            e.ctime_ms = now_ms;
            e.client_info = client_info;
            self.log.insert(0, e);
            return;
        }
        self.log.insert(0, LogEntry { count: 1, reason, object, username, ctime_ms: now_ms, client_info });
        self.log.truncate(LOG_MAX_LEN);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn acl_with(name: &str, ops: &[&str]) -> Acl {
        let mut a = Acl::new();
        a.set_user(name, &ops.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        a
    }

    #[test]
    fn descriptions_start_from_all_or_nothing_and_fit_categories() {
        let a = Acl::new();
        assert_eq!(a.describe("default").unwrap(), "on nopass ~* &* +@all");
        let a = acl_with("alice", &["on", ">pw", "~*", "+@all"]);
        assert_eq!(a.describe("alice").unwrap(), format!("on #{} ~* resetchannels +@all", hash_password(b"pw")));
        let a = acl_with("bob", &["on", "nopass", "+ping", "-@all"]);
        assert_eq!(a.describe("bob").unwrap(), "on nopass resetchannels -@all");
        let a = acl_with("c", &["+@all", "-ping", "&chan", "%R~k*"]);
        assert_eq!(a.describe("c").unwrap(), "off %R~k* resetchannels &chan +@all -ping");
        let a = acl_with("d", &["+@pubsub", "+client|list", "+info|server"]);
        assert_eq!(a.describe("d").unwrap(), "off resetchannels -@all +@pubsub +client|list +info|server");
        let a = acl_with("e", &["+@all", "-@dangerous"]);
        assert_eq!(a.describe("e").unwrap(), "off resetchannels +@all -@dangerous");
    }

    #[test]
    fn setuser_errors_change_nothing() {
        let mut a = Acl::new();
        let err = a.set_user("x", &["on".into(), "bogus".into()]).unwrap_err();
        assert_eq!(err, "ERR Error in ACL SETUSER modifier 'bogus': Syntax error");
        assert!(!a.exists("x"));
        let err = a.set_user("x", &["+nosuch".into()]).unwrap_err();
        assert_eq!(err, "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL");
        let err = a.set_user("x", &["(+ping".into(), "~a".into()]).unwrap_err();
        assert_eq!(err, "ERR Unmatched parenthesis in acl selector starting at '(+ping'.");
        a.set_user("x", &["(+ping".into(), "~a)".into()]).unwrap();
        assert_eq!(a.describe("x").unwrap(), "off resetchannels -@all (~a resetchannels -@all +ping)");
    }

    #[test]
    fn checks_commands_first_args_and_channels() {
        let a = acl_with("u", &["on", "nopass", "+ping", "+info|server", "+subscribe", "&news.*"]);
        let argv = |s: &str| s.split(' ').map(|w| w.as_bytes().to_vec()).collect::<Vec<_>>();
        let check = |s: &str| a.check("u", a.resolve(&argv(s)).unwrap(), &argv(s));
        assert_eq!(check("ping"), Ok(()));
        assert_eq!(check("auth x"), Ok(()));
        assert_eq!(check("info server"), Ok(()));
        assert_eq!(check("info all"), Err((Denied::Command, 0)));
        assert_eq!(check("subscribe news.a"), Ok(()));
        assert_eq!(check("subscribe news.a other"), Err((Denied::Channel, 2)));
        assert_eq!(check("client list"), Err((Denied::Command, 0)));
    }
}
