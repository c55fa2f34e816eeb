//! Where the interactive mode gets its lines. On a terminal: a line editor (rustyline)
//! with history, TAB completion and gray syntax hints from the help table. Otherwise
//! (`echo 'set a 1' | ferrokv cli`): plain lines from stdin, as bytes, without a prompt —
//! what redis-cli does, which keeps piped sessions clean and binary-safe.

use crate::help::HelpTable;
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hint, Hinter};
use rustyline::history::MemHistory;
use rustyline::validate::Validator;
use rustyline::{CompletionType, Config, Context, Editor, Helper};
use std::borrow::Cow;
use std::io::{self, BufRead};

/// Completion and hints for the editor.
pub struct CliHelper {
    pub help: HelpTable,
    pub hints: bool,
}

/// The syntax of the arguments still to type; shown, never inserted.
pub struct SyntaxHint(String);

impl Hint for SyntaxHint {
    fn display(&self) -> &str {
        &self.0
    }
    fn completion(&self) -> Option<&str> {
        None
    }
}

impl Hinter for CliHelper {
    type Hint = SyntaxHint;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<SyntaxHint> {
        // Only at the end of the line, where the hint reads as its continuation.
        if !self.hints || pos < line.len() {
            return None;
        }
        self.help.hint(line).map(SyntaxHint)
    }
}

impl Completer for CliHelper {
    type Candidate = String;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        // Candidates are whole lines ("help @string"), replacing everything before the cursor.
        Ok((0, self.help.completions(&line[..pos])))
    }
}

impl Highlighter for CliHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[90m{hint}\x1b[0m"))
    }
}

impl Validator for CliHelper {}
impl Helper for CliHelper {}

pub enum LineReader {
    Terminal(Box<Editor<CliHelper, MemHistory>>),
    Piped(io::StdinLock<'static>),
}

impl LineReader {
    pub fn terminal(help: HelpTable, hints: bool, history: &[String]) -> io::Result<LineReader> {
        let config = Config::builder()
            .completion_type(CompletionType::Circular)
            .max_history_size(crate::history::MAX_ENTRIES)
            .and_then(|b| b.history_ignore_dups(true))
            .map_err(io::Error::other)?
            .auto_add_history(false)
            .build();
        let mut editor = Editor::with_history(config, MemHistory::new()).map_err(io::Error::other)?;
        editor.set_helper(Some(CliHelper { help, hints }));
        for line in history {
            let _ = editor.add_history_entry(line.as_str());
        }
        Ok(LineReader::Terminal(Box::new(editor)))
    }

    pub fn piped() -> LineReader {
        LineReader::Piped(io::stdin().lock())
    }

    /// The next line, without its newline; None at the end of input (Ctrl-D, or Ctrl-C
    /// at the prompt, which also leaves redis-cli).
    pub fn read(&mut self, prompt: &str) -> io::Result<Option<Vec<u8>>> {
        match self {
            LineReader::Terminal(editor) => match editor.readline(prompt) {
                Ok(line) => Ok(Some(line.into_bytes())),
                Err(rustyline::error::ReadlineError::Eof | rustyline::error::ReadlineError::Interrupted) => Ok(None),
                Err(rustyline::error::ReadlineError::Io(e)) => Err(e),
                Err(e) => Err(io::Error::other(e)),
            },
            LineReader::Piped(stdin) => {
                let mut line = Vec::new();
                if stdin.read_until(b'\n', &mut line)? == 0 {
                    return Ok(None);
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                Ok(Some(line))
            }
        }
    }

    pub fn add_history(&mut self, line: &str) {
        if let LineReader::Terminal(editor) = self {
            let _ = editor.add_history_entry(line);
        }
    }

    pub fn set_hints(&mut self, on: bool) {
        if let LineReader::Terminal(editor) = self {
            if let Some(h) = editor.helper_mut() {
                h.hints = on;
            }
        }
    }

    /// Replaces the help table (after the first connection, when it became available).
    pub fn set_help(&mut self, help: &HelpTable) {
        if let LineReader::Terminal(editor) = self {
            if let Some(h) = editor.helper_mut() {
                h.help = help.clone();
            }
        }
    }

    pub fn clear_screen(&mut self) {
        if let LineReader::Terminal(editor) = self {
            let _ = editor.clear_screen();
        }
    }
}
