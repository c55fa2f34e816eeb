//! Loading configuration at startup, as redis-server does: an optional config file (or
//! `-` for stdin) whose `include`s are followed, then `--directive value` options from the
//! command line, which override the file. Any bad line stops startup with a message that
//! names the file, the line number, the line and the reason.

use crate::table::{Kind, PARAMS};
use crate::{lookup, Config, SentinelLine, REDIS_VERSION};
use std::io::Read;
use std::path::{Path, PathBuf};

/// A fatal configuration error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// File path, `(command line)` or `(stdin)`; None for errors not tied to a line.
    pub source: Option<String>,
    pub line: usize,
    pub text: String,
    pub msg: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "\n*** FATAL CONFIG FILE ERROR (ferrokv {}, Redis {} compatible) ***",
            env!("CARGO_PKG_VERSION"),
            REDIS_VERSION
        )?;
        if let Some(src) = &self.source {
            writeln!(f, "Reading the configuration file {src}, at line {}", self.line)?;
            writeln!(f, ">>> '{}'", self.text)?;
        }
        write!(f, "{}", self.msg)
    }
}

impl std::error::Error for LoadError {}

/// What the command line asked for, in redis-server's syntax.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The config file (`-` means stdin).
    pub config_file: Option<String>,
    /// One directive per entry: name then arguments.
    pub directives: Vec<Vec<String>>,
    /// `--sentinel` was given.
    pub sentinel: bool,
}

impl CommandLine {
    /// Parses `[CONFIG_FILE] [--directive value ...]`. A bare `--name` takes the following
    /// arguments as its values until the next `--name`; `--save` with no value means
    /// `save ""`; `"--port 6380"` as one argument is split.
    pub fn parse(args: &[String]) -> CommandLine {
        let mut cl = CommandLine::default();
        let mut i = 0;
        if let Some(first) = args.first() {
            if first == "-" || !first.starts_with('-') {
                cl.config_file = Some(first.clone());
                i = 1;
            }
        }
        // After a bare option name, the next argument is its value even if it starts
        // with "--" (matching redis-server), except for `--save`.
        let mut expecting_value = false;
        while i < args.len() {
            let a = &args[i];
            if a == "-" && i + 1 == args.len() && cl.config_file.is_none() {
                cl.config_file = Some("-".into());
            } else if let Some(opt) = a.strip_prefix("--").filter(|_| !expecting_value) {
                let words: Vec<String> = ferrokv_resp::args::split_args(opt.as_bytes())
                    .map(|v| v.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect())
                    .unwrap_or_else(|_| vec![opt.to_string()]);
                if words.first().is_some_and(|w| w.eq_ignore_ascii_case("sentinel")) && words.len() == 1 {
                    cl.sentinel = true;
                    i += 1;
                    continue;
                }
                let bare = words.len() == 1;
                let is_save = bare && words[0].eq_ignore_ascii_case("save");
                cl.directives.push(words);
                expecting_value = bare;
                if is_save && args.get(i + 1).is_none_or(|n| n.starts_with("--")) {
                    cl.directives.last_mut().expect("just pushed").push(String::new());
                    expecting_value = false;
                }
            } else if let Some(d) = cl.directives.last_mut() {
                d.push(a.clone());
                expecting_value = false;
            } else {
                // A stray argument before any option: treat as a directive of its own,
                // which will fail with a clear error.
                cl.directives.push(vec![a.clone()]);
            }
            i += 1;
        }
        cl
    }
}

/// Directives Redis ignores silently.
const DEPRECATED: &[&str] = &["list-max-ziplist-entries", "list-max-ziplist-value", "lua-replicate-commands"];

struct Loader {
    cfg: Config,
    save_seen: bool,
    depth: usize,
}

impl Loader {
    fn err(source: &str, line: usize, text: &str, msg: impl Into<String>) -> LoadError {
        LoadError { source: Some(source.to_string()), line, text: text.to_string(), msg: msg.into() }
    }

    fn load_text(&mut self, source: &str, text: &str) -> Result<(), LoadError> {
        for (n, raw) in text.split('\n').enumerate() {
            let line = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r' || c == '\n');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Ok(argv) = ferrokv_resp::args::split_args(line.as_bytes()) else {
                return Err(Self::err(source, n + 1, line, "Unbalanced quotes in configuration line"));
            };
            let argv: Vec<String> = argv.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect();
            if argv.is_empty() {
                continue;
            }
            self.directive(source, n + 1, line, argv)?;
        }
        Ok(())
    }

    fn directive(&mut self, source: &str, n: usize, line: &str, mut argv: Vec<String>) -> Result<(), LoadError> {
        argv[0] = argv[0].to_ascii_lowercase();
        if let Some(pid) = lookup(&argv[0]) {
            let p = &PARAMS[pid];
            let multi = p.flags & crate::table::MULTI_ARG != 0;
            if !multi && argv.len() != 2 {
                return Err(Self::err(source, n, line, "wrong number of arguments"));
            }
            let mut args: Vec<String> = argv[1..].to_vec();
            if multi && args.len() == 1 && !args[0].is_empty() {
                args = ferrokv_resp::args::split_args(args[0].as_bytes())
                    .map(|v| v.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect())
                    .map_err(|_| Self::err(source, n, line, "Unbalanced quotes in configuration line"))?;
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let append = matches!(p.kind, Kind::Save) && self.save_seen;
            if matches!(p.kind, Kind::Save) {
                self.save_seen = true;
            }
            return self.cfg.apply_directive(pid, &refs, append).map_err(|e| Self::err(source, n, line, e));
        }
        if DEPRECATED.contains(&argv[0].as_str()) && argv.len() == 2 {
            return Ok(());
        }
        match (argv[0].as_str(), argv.len()) {
            ("include", 2) => {
                if self.depth >= 16 {
                    return Err(Self::err(source, n, line, "include nested too deeply"));
                }
                let text = std::fs::read_to_string(&argv[1]).map_err(|e| {
                    Self::err(source, n, line, format!("Fatal error, can't open config file '{}': {e}", argv[1]))
                })?;
                self.depth += 1;
                let r = self.load_text(&argv[1], &text);
                self.depth -= 1;
                r
            }
            ("rename-command", 3) => {
                self.cfg.renames.push((argv[1].clone(), argv[2].clone()));
                Ok(())
            }
            ("user", l) if l >= 2 => {
                self.cfg.users.push(argv[1..].to_vec());
                Ok(())
            }
            ("loadmodule", l) if l >= 2 => Err(Self::err(source, n, line, "Modules are not supported by ferrokv")),
            ("sentinel", 1) => Ok(()),
            ("sentinel", _) => {
                if !self.cfg.sentinel_mode {
                    return Err(Self::err(source, n, line, "sentinel directive while not in sentinel mode"));
                }
                self.cfg.sentinel_lines.push(SentinelLine {
                    file: source.to_string(),
                    line: n,
                    args: argv[1..].to_vec(),
                });
                Ok(())
            }
            _ => Err(Self::err(source, n, line, "Bad directive or wrong number of arguments")),
        }
    }
}

/// Loads the configuration a command line describes.
pub fn load(cl: &CommandLine, sentinel_mode: bool) -> Result<Config, LoadError> {
    let mut cfg = Config::defaults();
    cfg.sentinel_mode = sentinel_mode || cl.sentinel;
    if cfg.sentinel_mode {
        // Sentinel listens on 26379 unless told otherwise, as redis-server does in this mode,
        // and is exposed (protected mode off, which its config rewrite records).
        cfg.set_internal(crate::pid("port"), crate::Val::Num(26379));
        cfg.set_internal(crate::pid("protected-mode"), crate::Val::Bool(false));
    }
    let mut loader = Loader { cfg, save_seen: false, depth: 0 };
    match cl.config_file.as_deref() {
        Some("-") => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| LoadError {
                source: None,
                line: 0,
                text: String::new(),
                msg: format!("Fatal error, can't read config from stdin: {e}"),
            })?;
            loader.load_text("(stdin)", &text)?;
        }
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| LoadError {
                source: None,
                line: 0,
                text: String::new(),
                msg: format!("Fatal error, can't open config file '{path}': {e}"),
            })?;
            loader.load_text(path, &text)?;
            loader.cfg.config_file = Some(absolute(Path::new(path)));
        }
        None => {}
    }
    for (i, d) in cl.directives.iter().enumerate() {
        let text = d.iter().map(|a| ferrokv_resp::args::quoted(a.as_bytes())).collect::<Vec<_>>().join(" ");
        // Command-line `save` replaces the file's save points, like a later file line.
        loader.save_seen = false;
        loader.directive("(command line)", i + 1, &text, d.clone())?;
    }
    if loader.cfg.bool(crate::pid("daemonize")) {
        return Err(LoadError {
            source: None,
            line: 0,
            text: String::new(),
            msg: "daemonize yes is not supported: run ferrokv under a supervisor (systemd, Docker) instead".into(),
        });
    }
    Ok(loader.cfg)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(p)).unwrap_or_else(|_| p.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pid;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn command_line_like_redis_server() {
        let cl = CommandLine::parse(&args(&[
            "/etc/redis.conf",
            "--port",
            "7000",
            "--save",
            "--replicaof",
            "127.0.0.1",
            "6379",
        ]));
        assert_eq!(cl.config_file.as_deref(), Some("/etc/redis.conf"));
        assert_eq!(
            cl.directives,
            vec![args(&["port", "7000"]), args(&["save", ""]), args(&["replicaof", "127.0.0.1", "6379"])]
        );
        let cl = CommandLine::parse(&args(&["--port 7001", "--sentinel"]));
        assert_eq!(cl.directives, vec![args(&["port", "7001"])]);
        assert!(cl.sentinel);
        let cl = CommandLine::parse(&args(&["--save", "", "--appendonly", "yes"]));
        assert_eq!(cl.directives, vec![args(&["save", ""]), args(&["appendonly", "yes"])]);
    }

    #[test]
    fn file_then_command_line() {
        let dir = std::env::temp_dir().join(format!("ferrokv-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let inc = dir.join("inc.conf");
        std::fs::write(&inc, "maxmemory 1mb\n").unwrap();
        let main = dir.join("main.conf");
        std::fs::write(
            &main,
            format!("# comment\nport 7000\nsave 900 1\nsave 300 10\nslave-read-only no\ninclude {}\n", inc.display()),
        )
        .unwrap();
        let cl = CommandLine::parse(&args(&[main.to_str().unwrap(), "--port", "7001"]));
        let cfg = load(&cl, false).unwrap();
        assert_eq!(cfg.int(pid("port")), 7001);
        assert_eq!(cfg.get_formatted(pid("save")), "900 1 300 10");
        assert!(!cfg.bool(pid("replica-read-only")));
        assert_eq!(cfg.int(pid("maxmemory")), 1 << 20);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        let dir = std::env::temp_dir().join(format!("ferrokv-cfg-err-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let main = dir.join("bad.conf");
        std::fs::write(&main, "port 7000\nfoo bar\n").unwrap();
        let cl = CommandLine::parse(&args(&[main.to_str().unwrap()]));
        let e = load(&cl, false).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.text, "foo bar");
        assert_eq!(e.msg, "Bad directive or wrong number of arguments");
        let shown = e.to_string();
        assert!(shown.contains("bad.conf, at line 2"), "{shown}");
        std::fs::write(&main, "port 99999\n").unwrap();
        let e = load(&cl, false).unwrap_err();
        assert_eq!(e.msg, "argument must be between 0 and 65535 inclusive");
        let e = load(&CommandLine::parse(&args(&["--maxmemory", "lots"])), false).unwrap_err();
        assert_eq!(e.source.as_deref(), Some("(command line)"));
        std::fs::remove_dir_all(&dir).ok();
    }
}
