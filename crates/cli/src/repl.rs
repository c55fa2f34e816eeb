//! The interactive mode: read a line, split it with Redis's quoting rules, run it, print
//! the reply. Besides server commands it knows `help`, `quit`/`exit`, `clear`,
//! `connect <host> <port>`, `:set hints|nohints` and a repeat prefix (`3 incr n`).

use crate::format::OutputMode;
use crate::history::{self, History};
use crate::line_reader::LineReader;
use crate::session::{emit, Exit, Session};
use ferrokv_resp::args::split_args;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Commands that took at least this long get their duration printed.
const SLOW: Duration = Duration::from_millis(500);

pub fn run(s: &mut Session) -> Result<(), Exit> {
    s.interactive = true;
    let stdin_is_tty = std::io::stdin().is_terminal();
    let help = s.help_table().clone();
    let mut help_loaded = !help.is_empty();
    // History and preferences belong to people typing, not to piped scripts.
    let (mut reader, mut history) = if stdin_is_tty {
        let home = std::env::var_os("HOME");
        let history = History::load(history::dotfile_path(
            std::env::var_os(history::HISTORY_ENV),
            home.clone(),
            history::HISTORY_FILE,
        ));
        let rc = history::dotfile_path(std::env::var_os(history::RC_ENV), home, history::RC_FILE);
        let hints = load_preferences(rc.and_then(|p| std::fs::read(p).ok()).as_deref())?;
        let reader = LineReader::terminal(help, hints, history.entries()).map_err(|e| {
            eprintln!("Cannot start the line editor: {e}");
            Exit(1)
        })?;
        (reader, Some(history))
    } else {
        (LineReader::piped(), None)
    };

    loop {
        if !help_loaded && s.is_connected() {
            let help = s.help_table();
            help_loaded = !help.is_empty();
            reader.set_help(help);
        }
        let line = match reader.read(&s.prompt()) {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(()),
            Err(e) => {
                eprintln!("Error reading input: {e}");
                return Err(Exit(1));
            }
        };
        if line.is_empty() {
            continue;
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        let mut remember = |reader: &mut LineReader| {
            reader.add_history(&text);
            if let Some(h) = history.as_mut() {
                h.add(&text);
            }
        };
        let Ok(argv) = split_args(&line) else {
            emit(b"Invalid argument(s)\n")?;
            remember(&mut reader);
            continue;
        };
        if argv.is_empty() {
            continue;
        }
        let (repeat, command) = match parse_repeat(&argv) {
            Repeat::Once => (1, &argv[..]),
            Repeat::Times(n) => (n, &argv[1..]),
            Repeat::Invalid => {
                emit(b"Invalid redis-cli repeat command option value.\n")?;
                continue;
            }
        };
        if !history::is_sensitive(command) {
            remember(&mut reader);
        }
        let first = &argv[0];
        if first.eq_ignore_ascii_case(b"quit") || first.eq_ignore_ascii_case(b"exit") {
            return Ok(());
        } else if first.first() == Some(&b':') {
            match preference(&argv) {
                Ok(hints) => reader.set_hints(hints),
                Err(msg) => emit(format!("{msg}\n").as_bytes())?,
            }
        } else if first.eq_ignore_ascii_case(b"restart") {
            emit(b"Use 'restart' only in Lua debugging mode.\n")?;
        } else if argv.len() == 3 && first.eq_ignore_ascii_case(b"connect") {
            s.opts.conn.host = String::from_utf8_lossy(&argv[1]).into_owned();
            s.opts.conn.port = crate::options::atoi(&argv[2]);
            s.connect(false);
        } else if argv.len() == 1 && first.eq_ignore_ascii_case(b"clear") {
            reader.clear_screen();
        } else {
            let start = Instant::now();
            s.issue(command, repeat)?;
            let elapsed = start.elapsed();
            if elapsed >= SLOW && s.opts.output == OutputMode::Standard {
                emit(format!("({:.2}s)\n", elapsed.as_millis() as f64 / 1000.0).as_bytes())?;
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Repeat {
    Once,
    Times(i64),
    Invalid,
}

/// `3 incr n` runs `incr n` three times: a first word that is a number (as C's `strtol`
/// reads it, in full) is a repeat count when more words follow.
pub fn parse_repeat(argv: &[Vec<u8>]) -> Repeat {
    if argv.len() < 2 {
        return Repeat::Once;
    }
    let word = &argv[0];
    let trimmed = {
        let start = word.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(word.len());
        &word[start..]
    };
    let digits = trimmed.strip_prefix(b"-").or_else(|| trimmed.strip_prefix(b"+")).unwrap_or(trimmed);
    let numeric = !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
    // strtol consumes all of "" (reading 0), so an empty first word is an invalid count.
    if !numeric && !word.is_empty() {
        return Repeat::Once;
    }
    match std::str::from_utf8(trimmed).ok().and_then(|t| t.parse::<i64>().ok()) {
        Some(n) if n > 0 => Repeat::Times(n),
        _ => Repeat::Invalid,
    }
}

/// `:set hints` / `:set nohints`. Ok(hints on?) or the message to print.
pub fn preference(argv: &[Vec<u8>]) -> Result<bool, String> {
    let word = |i: usize| argv.get(i).map(|a| String::from_utf8_lossy(a).into_owned()).unwrap_or_default();
    if word(0).eq_ignore_ascii_case(":set") && argv.len() >= 2 {
        match word(1).to_ascii_lowercase().as_str() {
            "hints" => Ok(true),
            "nohints" => Ok(false),
            _ => Err(format!("unknown redis-cli preference '{}'", word(1))),
        }
    } else {
        Err(format!("unknown redis-cli internal command '{}'", word(0)))
    }
}

/// Applies ~/.redisclirc: returns whether hints are on (the default).
fn load_preferences(rc: Option<&[u8]>) -> Result<bool, Exit> {
    let mut hints = true;
    for line in rc.unwrap_or_default().split(|&b| b == b'\n') {
        let Ok(argv) = split_args(line) else { continue };
        if argv.is_empty() {
            continue;
        }
        match preference(&argv) {
            Ok(on) => hints = on,
            Err(msg) => emit(format!(".redisclirc: {msg}\n").as_bytes())?,
        }
    }
    Ok(hints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    fn repeat_prefix() {
        assert_eq!(parse_repeat(&argv(&["3", "incr", "n"])), Repeat::Times(3));
        assert_eq!(parse_repeat(&argv(&["3"])), Repeat::Once);
        assert_eq!(parse_repeat(&argv(&["incr", "n"])), Repeat::Once);
        assert_eq!(parse_repeat(&argv(&["0", "ping"])), Repeat::Invalid);
        assert_eq!(parse_repeat(&argv(&["-2", "ping"])), Repeat::Invalid);
        assert_eq!(parse_repeat(&argv(&["", "ping"])), Repeat::Invalid);
        assert_eq!(parse_repeat(&argv(&["99999999999999999999", "ping"])), Repeat::Invalid);
        assert_eq!(parse_repeat(&argv(&["3x", "ping"])), Repeat::Once);
    }

    #[test]
    fn preferences() {
        assert_eq!(preference(&argv(&[":set", "nohints"])), Ok(false));
        assert_eq!(preference(&argv(&[":SET", "HINTS"])), Ok(true));
        assert_eq!(preference(&argv(&[":set", "colors"])), Err("unknown redis-cli preference 'colors'".into()));
        assert_eq!(preference(&argv(&[":foo"])), Err("unknown redis-cli internal command ':foo'".into()));
        assert_eq!(load_preferences(Some(b":set nohints\n\n")), Ok(false));
    }
}
