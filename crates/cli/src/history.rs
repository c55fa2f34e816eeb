//! The interactive history: where it lives (`~/.ferrokv_cli_history`, or
//! `$REDISCLI_HISTFILE`), which lines stay out of it (passwords), and the file itself —
//! one line per entry, the last 100, rewritten after each command as redis-cli's
//! linenoise does, so a crash loses nothing.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

pub const HISTORY_FILE: &str = ".ferrokv_cli_history";
pub const HISTORY_ENV: &str = "REDISCLI_HISTFILE";
/// redis-cli's preferences file (`:set hints`), shared so one file serves both tools.
pub const RC_FILE: &str = ".redisclirc";
pub const RC_ENV: &str = "REDISCLI_RCFILE";
/// How many entries are kept, as linenoise keeps.
pub const MAX_ENTRIES: usize = 100;

/// `$override` if set (`/dev/null` disables the file), else `$HOME/<name>`.
pub fn dotfile_path(env_override: Option<OsString>, home: Option<OsString>, name: &str) -> Option<PathBuf> {
    match env_override.filter(|p| !p.is_empty()) {
        Some(p) if p == "/dev/null" => None,
        Some(p) => Some(PathBuf::from(p)),
        None => home.filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(name)),
    }
}

/// Lines that carry passwords: AUTH, ACL SETUSER, CONFIG SET of a password, HELLO …
/// AUTH, MIGRATE … AUTH/AUTH2.
pub fn is_sensitive(argv: &[Vec<u8>]) -> bool {
    let is = |i: usize, word: &str| argv.get(i).is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()));
    let argc = argv.len();
    if is(0, "auth") {
        return true;
    }
    if argc > 1 && is(0, "acl") && is(1, "setuser") {
        return true;
    }
    if argc > 2
        && is(0, "config")
        && is(1, "set")
        && ["masterauth", "masteruser", "requirepass"].iter().any(|w| is(2, w))
    {
        return true;
    }
    if argc > 4 && is(0, "hello") {
        // HELLO protover [AUTH user pass] [SETNAME name]
        let mut j = 2;
        while j < argc {
            let more = argc - 1 - j;
            if is(j, "auth") && more >= 2 {
                return true;
            } else if is(j, "setname") && more > 0 {
                j += 2;
            } else {
                return false;
            }
        }
        return false;
    }
    if argc > 7 && is(0, "migrate") {
        for j in 6..argc {
            let more = argc - 1 - j;
            if (is(j, "auth") && more > 0) || (is(j, "auth2") && more >= 2) {
                return true;
            }
            if is(j, "keys") && more > 0 {
                return false;
            }
        }
    }
    false
}

/// The entries of the session, mirrored to the history file when there is one.
pub struct History {
    path: Option<PathBuf>,
    entries: Vec<String>,
}

impl History {
    /// Loads the file (a missing or unreadable one is an empty history).
    pub fn load(path: Option<PathBuf>) -> History {
        let mut h = History { path, entries: Vec::new() };
        if let Some(text) = h.path.as_ref().and_then(|p| std::fs::read(p).ok()) {
            for line in String::from_utf8_lossy(&text).lines() {
                h.push(line);
            }
        }
        h
    }

    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Adds a line (not twice in a row) and saves the file. Returns whether it was added.
    pub fn add(&mut self, line: &str) -> bool {
        let added = self.push(line);
        if added {
            self.save();
        }
        added
    }

    fn push(&mut self, line: &str) -> bool {
        if line.is_empty() || self.entries.last().is_some_and(|l| l == line) {
            return false;
        }
        if self.entries.len() == MAX_ENTRIES {
            self.entries.remove(0);
        }
        self.entries.push(line.to_string());
        true
    }

    /// Best effort: a history file that cannot be written must not stop the session.
    fn save(&self) {
        let Some(path) = &self.path else { return };
        // Owner-only: history may hold keys and values the user would not share.
        let file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path);
        if let Ok(mut f) = file {
            let mut text = String::new();
            for e in &self.entries {
                text.push_str(e);
                text.push('\n');
            }
            let _ = f.write_all(text.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Vec<u8>> {
        line.split(' ').map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn paths() {
        let home = Some(OsString::from("/home/u"));
        assert_eq!(dotfile_path(None, home.clone(), HISTORY_FILE), Some(PathBuf::from("/home/u/.ferrokv_cli_history")));
        assert_eq!(dotfile_path(Some("/tmp/h".into()), home.clone(), HISTORY_FILE), Some(PathBuf::from("/tmp/h")));
        assert_eq!(dotfile_path(Some("/dev/null".into()), home.clone(), HISTORY_FILE), None);
        assert_eq!(dotfile_path(Some("".into()), None, HISTORY_FILE), None);
    }

    #[test]
    fn sensitive_lines() {
        assert!(is_sensitive(&argv("AUTH secret")));
        assert!(is_sensitive(&argv("acl setuser bob on >pw")));
        assert!(is_sensitive(&argv("config set requirepass x")));
        assert!(!is_sensitive(&argv("config set maxmemory 1mb")));
        assert!(is_sensitive(&argv("hello 3 AUTH user pass")));
        assert!(is_sensitive(&argv("hello 3 SETNAME n AUTH user pass")));
        assert!(!is_sensitive(&argv("hello 3 SETNAME name x y")));
        assert!(is_sensitive(&argv("migrate h 1 k 0 10 COPY AUTH pw")));
        assert!(!is_sensitive(&argv("migrate h 1 \"\" 0 10 KEYS a b c")));
        assert!(!is_sensitive(&argv("get auth")));
    }

    #[test]
    fn file_round_trip_and_limits() {
        let dir = std::env::temp_dir().join(format!("ferrokv-cli-hist-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("h");
        let _ = std::fs::remove_file(&path);
        let mut h = History::load(Some(path.clone()));
        assert!(h.add("get a"));
        assert!(!h.add("get a"));
        for i in 0..MAX_ENTRIES {
            h.add(&format!("set k {i}"));
        }
        let again = History::load(Some(path.clone()));
        assert_eq!(again.entries().len(), MAX_ENTRIES);
        assert_eq!(again.entries().last().map(String::as_str), Some("set k 99"));
        assert_eq!(again.entries().first().map(String::as_str), Some("set k 0"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
