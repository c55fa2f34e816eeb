//! Configuration like redis-server's: the directive table ([`table`]), values with Redis's
//! parsing and formatting rules ([`value`]), loading redis.conf plus command-line
//! overrides ([`load`]), CONFIG GET/SET semantics (here), and CONFIG REWRITE ([`rewrite`]).
//!
//! The crate is pure: applying a change (binding a new port, changing directory) is the
//! server's job; [`Config::set`] hands back what changed and a backup to roll back to if
//! applying fails, which is how CONFIG SET stays atomic across several parameters.

pub mod load;
pub mod rewrite;
pub mod table;
pub mod value;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

pub use load::{load, CommandLine, LoadError};
pub use table::{pid, Kind, Param, Pid, PARAMS};
pub use value::{notify, ObufLimit, Val};

/// The version of Redis whose behaviour ferrokv implements (reported as `redis_version`).
pub const REDIS_VERSION: &str = "7.0.15";

/// A `sentinel …` line, kept for the sentinel to interpret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelLine {
    pub file: String,
    pub line: usize,
    pub args: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Config {
    vals: Vec<Val>,
    /// Absolute path of the main config file, for CONFIG REWRITE.
    pub config_file: Option<PathBuf>,
    /// `rename-command old new` directives, in order (`new` empty = disabled).
    pub renames: Vec<(String, String)>,
    /// `user …` directives (ACL rules), verbatim.
    pub users: Vec<Vec<String>>,
    /// `sentinel …` directives, in sentinel mode.
    pub sentinel_lines: Vec<SentinelLine>,
    pub sentinel_mode: bool,
}

fn name_index() -> &'static HashMap<String, Pid> {
    static IDX: OnceLock<HashMap<String, Pid>> = OnceLock::new();
    IDX.get_or_init(|| {
        let mut m = HashMap::new();
        for (i, p) in PARAMS.iter().enumerate() {
            m.insert(p.name.to_string(), i);
            if let Some(a) = p.alias {
                m.insert(a.to_string(), i);
            }
        }
        m
    })
}

/// Finds a directive by name or alias, case-insensitively.
pub fn lookup(name: &str) -> Option<Pid> {
    name_index().get(&name.to_ascii_lowercase()).copied()
}

fn default_val(pid: Pid) -> Val {
    let p = &PARAMS[pid];
    match p.kind {
        Kind::Dir => Val::Str(std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default()),
        Kind::Str { .. } => Val::Str(p.default.to_string()),
        Kind::Bind => Val::Bind(p.default.split(' ').map(String::from).collect()),
        Kind::ReplicaOf => Val::ReplicaOf(None),
        Kind::NotifyKeyspaceEvents => Val::Notify(0),
        kind => {
            let args = ferrokv_resp::args::split_args(p.default.as_bytes()).expect("default values are well formed");
            let args: Vec<String> = args.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect();
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            value::parse(kind, &refs, None).unwrap_or_else(|e| panic!("default of {} is invalid: {e}", p.name))
        }
    }
}

/// Why CONFIG SET refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    /// `-ERR Unknown option or number of arguments for CONFIG SET - 'name'`.
    Unknown(String),
    /// `-ERR CONFIG SET failed (possibly related to argument 'name') - reason`.
    Failed { name: String, reason: Option<String> },
    /// The dataset is loading and the directive can't change meanwhile.
    Loading,
}

impl SetError {
    /// The error reply line (without the leading `-`).
    pub fn reply(&self) -> String {
        match self {
            SetError::Unknown(n) => {
                format!("ERR Unknown option or number of arguments for CONFIG SET - '{n}'")
            }
            SetError::Failed { name, reason: Some(r) } => {
                format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {r}")
            }
            SetError::Failed { name, reason: None } => {
                format!("ERR CONFIG SET failed (possibly related to argument '{name}')")
            }
            SetError::Loading => "LOADING Redis is loading the dataset in memory".into(),
        }
    }
}

/// What a successful [`Config::set`] changed, with the previous values for rollback.
#[derive(Debug, Default)]
pub struct Changes {
    pub changed: Vec<Pid>,
    pub backup: Vec<(Pid, Val)>,
}

impl Default for Config {
    fn default() -> Self {
        Self::defaults()
    }
}

impl Config {
    pub fn defaults() -> Config {
        Config {
            vals: (0..PARAMS.len()).map(default_val).collect(),
            config_file: None,
            renames: Vec::new(),
            users: Vec::new(),
            sentinel_lines: Vec::new(),
            sentinel_mode: false,
        }
    }

    pub fn get(&self, pid: Pid) -> &Val {
        &self.vals[pid]
    }

    pub fn bool(&self, pid: Pid) -> bool {
        matches!(self.vals[pid], Val::Bool(true))
    }

    /// A numeric, enum or flags value.
    pub fn int(&self, pid: Pid) -> i64 {
        match self.vals[pid] {
            Val::Num(n) | Val::Enum(n) | Val::Flags(n) => n,
            Val::Bool(b) => b as i64,
            _ => 0,
        }
    }

    pub fn str(&self, pid: Pid) -> &str {
        match &self.vals[pid] {
            Val::Str(s) => s,
            _ => "",
        }
    }

    /// Sets a value without validation (state the server owns, like `replicaof` after a
    /// REPLICAOF command, or `dir` after resolving it).
    pub fn set_internal(&mut self, pid: Pid, v: Val) {
        self.vals[pid] = v;
    }

    /// Parses and stores one directive (config file, command line). `append` makes
    /// `save` lines accumulate, as repeated lines in a config file do.
    pub fn apply_directive(&mut self, pid: Pid, args: &[&str], append: bool) -> Result<(), String> {
        let p = &PARAMS[pid];
        let mut v = value::parse(p.kind, args, Some(&self.vals[pid]))?;
        validate(pid, &v)?;
        if append {
            if let (Val::Save(old), Val::Save(new)) = (&self.vals[pid], &mut v) {
                let mut all = old.clone();
                all.append(new);
                *new = all;
            }
        }
        self.vals[pid] = v;
        Ok(())
    }

    /// CONFIG GET: every directive matching any of the patterns (names and aliases,
    /// case-insensitively; hidden directives only by exact name). Pairs of (name as
    /// matched, value).
    pub fn config_get(&self, patterns: &[&[u8]]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut push = |name: String, pid: Pid, out: &mut Vec<(String, String)>| {
            if seen.insert(name.clone()) {
                out.push((name, self.get_formatted(pid)));
            }
        };
        for pat in patterns {
            let has_glob = pat.iter().any(|b| matches!(b, b'*' | b'?' | b'['));
            if !has_glob {
                let name = String::from_utf8_lossy(pat).into_owned();
                if let Some(pid) = lookup(&name) {
                    push(name, pid, &mut out);
                }
                continue;
            }
            for (i, p) in PARAMS.iter().enumerate() {
                if p.flags & table::HIDDEN != 0 {
                    continue;
                }
                for name in std::iter::once(p.name).chain(p.alias) {
                    if ferrokv_keyspace::glob::glob_match(pat, name.as_bytes(), true) {
                        push(name.to_string(), i, &mut out);
                    }
                }
            }
        }
        out
    }

    /// The CONFIG GET rendering of one directive.
    pub fn get_formatted(&self, pid: Pid) -> String {
        value::format_get(PARAMS[pid].kind, &self.vals[pid])
    }

    /// CONFIG SET with one or more pairs, all or nothing. `protected_ok` says whether
    /// PROTECTED directives may change (per `enable-protected-configs`), `loading` whether
    /// a dataset load is in progress.
    pub fn set(&mut self, pairs: &[(&str, &str)], protected_ok: bool, loading: bool) -> Result<Changes, SetError> {
        let mut pids = Vec::with_capacity(pairs.len());
        let mut first_err: Option<SetError> = None;
        for (name, _) in pairs {
            let Some(pid) = lookup(name) else {
                return Err(SetError::Unknown(name.to_string()));
            };
            let flags = PARAMS[pid].flags;
            if first_err.is_none() {
                if flags & table::IMMUTABLE != 0 || (flags & table::PROTECTED != 0 && !protected_ok) {
                    let reason = if flags & table::IMMUTABLE != 0 {
                        "can't set immutable config"
                    } else {
                        "can't set protected config"
                    };
                    first_err = Some(SetError::Failed { name: name.to_string(), reason: Some(reason.into()) });
                } else if loading && flags & table::DENY_LOADING != 0 {
                    first_err = Some(SetError::Loading);
                } else if pids.contains(&pid) {
                    first_err =
                        Some(SetError::Failed { name: name.to_string(), reason: Some("duplicate parameter".into()) });
                }
            }
            pids.push(pid);
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let backup: Vec<(Pid, Val)> = pids.iter().map(|&p| (p, self.vals[p].clone())).collect();
        let mut changes = Changes { changed: Vec::new(), backup };
        for (&pid, (_, raw)) in pids.iter().zip(pairs) {
            let p = &PARAMS[pid];
            let parts: Vec<&str>;
            let args: &[&str] = if p.flags & table::MULTI_ARG != 0 {
                parts = if raw.is_empty() { Vec::new() } else { raw.split(' ').collect() };
                &parts
            } else {
                std::slice::from_ref(raw)
            };
            let parsed = value::parse(p.kind, args, Some(&self.vals[pid])).and_then(|v| validate(pid, &v).map(|_| v));
            match parsed {
                Ok(v) => {
                    if v != self.vals[pid] {
                        changes.changed.push(pid);
                    }
                    self.vals[pid] = v;
                }
                Err(reason) => {
                    self.restore(std::mem::take(&mut changes.backup));
                    return Err(SetError::Failed { name: p.name.to_string(), reason: Some(reason) });
                }
            }
        }
        Ok(changes)
    }

    /// Puts back values saved by [`Config::set`] (applying a change failed).
    pub fn restore(&mut self, backup: Vec<(Pid, Val)>) {
        for (pid, v) in backup.into_iter().rev() {
            self.vals[pid] = v;
        }
    }
}

/// Directive-specific validation beyond the value kind.
fn validate(pid: Pid, v: &Val) -> Result<(), String> {
    let name = PARAMS[pid].name;
    match (name, v) {
        ("dbfilename", Val::Str(s)) if s.contains('/') => Err("dbfilename can't be a path, just a filename".into()),
        ("appendfilename", Val::Str(s)) if s.is_empty() => Err("appendfilename can't be empty".into()),
        ("appendfilename", Val::Str(s)) if s.contains('/') => {
            Err("appendfilename can't be a path, just a filename".into())
        }
        ("appenddirname", Val::Str(s)) if s.is_empty() => Err("appenddirname can't be empty".into()),
        ("appenddirname", Val::Str(s)) if s.contains('/') => {
            Err("appenddirname can't be a path, just a dirname".into())
        }
        ("shutdown-on-sigint" | "shutdown-on-sigterm", Val::Flags(f)) if f & 1 != 0 && f & 2 != 0 => {
            Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses() {
        let c = Config::defaults();
        assert_eq!(c.int(pid("port")), 6379);
        assert_eq!(c.get_formatted(pid("save")), "3600 1 300 100 60 10000");
        assert_eq!(c.get_formatted(pid("maxmemory-policy")), "noeviction");
        assert_eq!(c.get_formatted(pid("bind")), "* -::*");
        assert_eq!(
            c.get_formatted(pid("client-output-buffer-limit")),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        assert_eq!(c.get_formatted(pid("latency-tracking-info-percentiles")), "50 99 99.9");
        assert_eq!(c.get_formatted(pid("shutdown-on-sigterm")), "default");
        assert_eq!(c.get_formatted(pid("unixsocketperm")), "0");
    }

    #[test]
    fn get_matches_names_and_aliases() {
        let c = Config::defaults();
        let got = c.config_get(&[b"slave-read*"]);
        assert_eq!(got, vec![("slave-read-only".to_string(), "yes".to_string())]);
        let got = c.config_get(&[b"maxmemory"]);
        assert_eq!(got, vec![("maxmemory".to_string(), "0".to_string())]);
        assert!(c.config_get(&[b"*"]).len() > PARAMS.len());
    }

    #[test]
    fn set_is_atomic() {
        let mut c = Config::defaults();
        let err = c.set(&[("maxmemory", "10mb"), ("port", "nope")], true, false).unwrap_err();
        assert_eq!(
            err.reply(),
            "ERR CONFIG SET failed (possibly related to argument 'port') - argument couldn't be parsed into an integer"
        );
        assert_eq!(c.int(pid("maxmemory")), 0);
        let ch = c.set(&[("maxmemory", "10mb"), ("save", "")], true, false).unwrap();
        assert_eq!(ch.changed.len(), 2);
        assert_eq!(c.int(pid("maxmemory")), 10 << 20);
        assert_eq!(c.get_formatted(pid("save")), "");
        assert_eq!(c.set(&[("nosuch", "1")], true, false).unwrap_err(), SetError::Unknown("nosuch".into()));
        assert_eq!(
            c.set(&[("daemonize", "yes")], true, false).unwrap_err().reply(),
            "ERR CONFIG SET failed (possibly related to argument 'daemonize') - can't set immutable config"
        );
    }
}
