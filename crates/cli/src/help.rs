//! Command help, hints and completion, built from what the server says about itself
//! (`COMMAND DOCS`), so they always match the server the prompt is connected to. A server
//! without COMMAND DOCS still gets names and arities from `COMMAND`. Pure: replies in,
//! text out.

use ferrokv_resp::Frame;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Command,
    /// `@string`, `@list`…: a topic for `help @group`.
    Group,
}

#[derive(Debug, Clone)]
struct Entry {
    kind: Kind,
    /// The command and subcommand names, upper case (`CONFIG`, `GET`).
    words: Vec<String>,
    /// The words joined by spaces, or `@group`.
    full: String,
    params: String,
    summary: String,
    since: Option<String>,
    group: String,
}

#[derive(Debug, Clone, Default)]
pub struct HelpTable {
    entries: Vec<Entry>,
}

/// The key/value pairs of a RESP3 map, or of a RESP2 array that stands for one.
fn pairs(frame: &Frame) -> Vec<(&Frame, &Frame)> {
    match frame {
        Frame::Map(kv) => kv.iter().map(|(k, v)| (k, v)).collect(),
        Frame::Array(items) => items.chunks_exact(2).map(|p| (&p[0], &p[1])).collect(),
        _ => Vec::new(),
    }
}

fn text(frame: &Frame) -> Option<String> {
    frame.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned())
}

fn items(frame: &Frame) -> &[Frame] {
    match frame {
        Frame::Array(v) | Frame::Set(v) => v,
        _ => &[],
    }
}

/// An empty name or token is shown as `""` so the user sees that something goes there.
fn or_empty_quotes(s: &str) -> &str {
    if s.is_empty() {
        "\"\""
    } else {
        s
    }
}

/// One argument of a command's syntax, e.g. `[EX seconds|PX milliseconds]`, from its
/// COMMAND DOCS description.
fn argument_syntax(spec: &Frame) -> String {
    let (mut name, mut kind, mut token, mut nested) = (String::new(), String::new(), None, None);
    let (mut optional, mut multiple, mut multiple_token) = (false, false, false);
    for (key, value) in pairs(spec) {
        match key.as_bytes().unwrap_or_default() {
            b"name" => name = text(value).unwrap_or_default(),
            b"type" => kind = text(value).unwrap_or_default(),
            b"token" => token = text(value),
            b"arguments" => nested = Some(value),
            b"flags" => {
                for flag in items(value) {
                    match flag.as_bytes().unwrap_or_default() {
                        b"optional" => optional = true,
                        b"multiple" => multiple = true,
                        b"multiple_token" => multiple_token = true,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let join = |sep: &str| nested.map(|n| items(n).iter().map(argument_syntax).collect::<Vec<_>>().join(sep));
    let repeated = match kind.as_str() {
        "key" | "string" | "integer" | "double" | "pattern" | "unix-time" | "token" => {
            or_empty_quotes(&name).to_string()
        }
        "oneof" => join("|").unwrap_or_default(),
        "block" => join(" ").unwrap_or_default(),
        _ => String::new(),
    };
    let mut token = token.map(|t| or_empty_quotes(&t).to_string()).unwrap_or_default();
    if !token.is_empty() && kind != "pure-token" {
        token.push(' ');
    }
    let mut out = String::new();
    if optional {
        out.push('[');
    }
    out.push_str(&token);
    out.push_str(&repeated);
    if multiple {
        out.push_str(" [");
        if multiple_token {
            out.push_str(&token);
        }
        out.push_str(&repeated);
        out.push_str(" ...]");
    }
    if optional {
        out.push(']');
    }
    out
}

fn command_entry(words: Vec<String>, docs: &Frame) -> Entry {
    let mut e = Entry {
        kind: Kind::Command,
        full: words.join(" "),
        words,
        params: String::new(),
        summary: String::new(),
        since: None,
        group: String::new(),
    };
    for (key, value) in pairs(docs) {
        match key.as_bytes().unwrap_or_default() {
            b"summary" => e.summary = text(value).unwrap_or_default(),
            b"since" => e.since = text(value),
            b"group" => e.group = text(value).unwrap_or_default(),
            b"arguments" => e.params = items(value).iter().map(argument_syntax).collect::<Vec<_>>().join(" "),
            _ => {}
        }
    }
    e
}

impl HelpTable {
    /// From the reply to `COMMAND DOCS`; None if it is not one (an error, say).
    pub fn from_command_docs(reply: &Frame) -> Option<HelpTable> {
        if !matches!(reply, Frame::Map(_) | Frame::Array(_)) {
            return None;
        }
        let mut entries = Vec::new();
        for (name, docs) in pairs(reply) {
            let Some(name) = text(name) else { continue };
            let command = name.to_uppercase();
            entries.push(command_entry(vec![command.clone()], docs));
            for (key, value) in pairs(docs) {
                if key.as_bytes() != Some(b"subcommands") {
                    continue;
                }
                for (sub_name, sub_docs) in pairs(value) {
                    // Subcommands are named "config|get".
                    let sub = text(sub_name).unwrap_or_default();
                    let sub = sub.split_once('|').map_or(sub.as_str(), |(_, s)| s).to_uppercase();
                    entries.push(command_entry(vec![command.clone(), sub], sub_docs));
                }
            }
        }
        let mut groups: Vec<String> = entries.iter().map(|e| e.group.clone()).filter(|g| !g.is_empty()).collect();
        groups.sort();
        groups.dedup();
        entries.extend(groups.into_iter().map(|g| Entry {
            kind: Kind::Group,
            words: vec![format!("@{g}")],
            full: format!("@{g}"),
            params: String::new(),
            summary: String::new(),
            since: None,
            group: String::new(),
        }));
        entries.sort_by(|a, b| a.full.as_bytes().cmp(b.full.as_bytes()));
        Some(HelpTable { entries })
    }

    /// From the reply to `COMMAND`, for servers older than COMMAND DOCS: names and a
    /// syntax guessed from the arity and the first key position.
    pub fn from_command_list(reply: &Frame) -> HelpTable {
        let mut entries = Vec::new();
        for info in items(reply) {
            let [name, Frame::Integer(arity), _, Frame::Integer(first_key), ..] = items(info) else { continue };
            let Some(name) = text(name) else { continue };
            let mut params = String::new();
            let mut args = arity.abs() - 1;
            if *first_key == 1 {
                params.push_str("key ");
                args -= 1;
            }
            for _ in 0..args.max(0) {
                params.push_str("arg ");
            }
            if *arity < 0 {
                params.push_str("...options...");
            }
            let name = name.to_uppercase();
            entries.push(Entry {
                kind: Kind::Command,
                words: vec![name.clone()],
                full: name,
                params,
                summary: "Help not available".into(),
                since: Some("Not known".into()),
                group: "generic".into(),
            });
        }
        entries.sort_by(|a, b| a.full.as_bytes().cmp(b.full.as_bytes()));
        HelpTable { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The output of `help <command words>` or `help @group`.
    pub fn render(&self, args: &[Vec<u8>]) -> Vec<u8> {
        let group = args.first().and_then(|a| a.strip_prefix(b"@"));
        let mut out = String::new();
        for e in self.entries.iter().filter(|e| e.kind == Kind::Command) {
            match group {
                None => {
                    let matches = args.len() <= e.words.len()
                        && args.iter().zip(&e.words).all(|(a, w)| a.eq_ignore_ascii_case(w.as_bytes()));
                    if matches {
                        render_entry(&mut out, e, true);
                    }
                }
                Some(g) if g.eq_ignore_ascii_case(e.group.as_bytes()) => render_entry(&mut out, e, false),
                Some(_) => {}
            }
        }
        out.push_str("\r\n");
        out.into_bytes()
    }

    /// The syntax still to type after `line`, e.g. ` key value [NX|XX] …` after `set`.
    pub fn hint(&self, line: &str) -> Option<String> {
        let typed: Vec<Vec<u8>> = ferrokv_resp::args::split_args(line.as_bytes()).ok()?;
        if typed.is_empty() {
            return None;
        }
        // The command with the most words matching what was typed (CONFIG SET over CONFIG).
        let mut best: Option<&Entry> = None;
        for e in self.entries.iter().filter(|e| e.kind == Kind::Command) {
            let matches = e.words.len() <= typed.len()
                && e.words.iter().zip(&typed).all(|(w, t)| w.as_bytes().eq_ignore_ascii_case(t));
            if matches && best.is_none_or(|b| e.words.len() > b.words.len()) {
                best = Some(e);
            }
        }
        let entry = best?;
        // Drop the leading arguments already typed, but never inside optional ones,
        // whose count is unknown.
        let mut to_skip = typed.len() - entry.words.len();
        let mut hint = entry.params.as_str();
        while to_skip > 0 && !hint.is_empty() && !hint.starts_with('[') {
            if hint.starts_with(' ') {
                to_skip -= 1;
            }
            hint = &hint[hint.chars().next().map_or(1, char::len_utf8)..];
        }
        let ends_with_space = line.as_bytes().last().is_some_and(|b| b.is_ascii_whitespace());
        Some(if ends_with_space { hint.to_string() } else { format!(" {hint}") })
    }

    /// Whole-line completions for TAB: command names, and after `help ` also `@groups`.
    pub fn completions(&self, line: &str) -> Vec<String> {
        let (head, word, groups_too) = match line.get(..5) {
            Some(h) if h.eq_ignore_ascii_case("help ") => {
                let rest = &line[5..];
                let word = rest.trim_start_matches(|c: char| c.is_ascii_whitespace());
                (&line[..line.len() - word.len()], word, true)
            }
            _ => ("", line, false),
        };
        self.entries
            .iter()
            .filter(|e| e.kind == Kind::Command || groups_too)
            .filter(|e| {
                e.full.len() >= word.len() && e.full.as_bytes()[..word.len()].eq_ignore_ascii_case(word.as_bytes())
            })
            .map(|e| format!("{head}{}", e.full))
            .collect()
    }
}

fn render_entry(out: &mut String, e: &Entry, with_group: bool) {
    out.push_str(&format!("\r\n  \x1b[1m{}\x1b[0m \x1b[90m{}\x1b[0m\r\n", e.full, e.params));
    out.push_str(&format!("  \x1b[33msummary:\x1b[0m {}\r\n", e.summary));
    if let Some(since) = &e.since {
        out.push_str(&format!("  \x1b[33msince:\x1b[0m {since}\r\n"));
    }
    if with_group {
        out.push_str(&format!("  \x1b[33mgroup:\x1b[0m {}\r\n", e.group));
    }
}

/// `help` without arguments.
pub fn generic_help(version: &str) -> String {
    format!(
        "{version}
To get help about Redis commands type:
      \"help @<group>\" to get a list of commands in <group>
      \"help <command>\" for help on <command>
      \"help <tab>\" to get a list of possible help topics
      \"quit\" to exit

To set redis-cli preferences:
      \":set hints\" enable online hints
      \":set nohints\" disable online hints
Set your preferences in ~/.redisclirc
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Frame {
        Frame::Bulk(s.as_bytes().to_vec().into())
    }
    fn st(s: &str) -> Frame {
        Frame::Simple(s.as_bytes().to_vec().into())
    }
    fn arg(fields: &[(&str, Frame)]) -> Frame {
        Frame::Map(fields.iter().map(|(k, v)| (b(k), v.clone())).collect())
    }

    /// A trimmed-down COMMAND DOCS reply: GET, SET (with a oneof), CONFIG GET.
    fn docs() -> Frame {
        let key = arg(&[("name", b("key")), ("type", b("key"))]);
        let value = arg(&[("name", b("value")), ("type", b("string"))]);
        let nx = arg(&[("name", b("nx")), ("type", b("pure-token")), ("token", b("NX"))]);
        let xx = arg(&[("name", b("xx")), ("type", b("pure-token")), ("token", b("XX"))]);
        let cond = arg(&[
            ("name", b("condition")),
            ("type", b("oneof")),
            ("flags", Frame::Set(vec![st("optional")])),
            ("arguments", Frame::Array(vec![nx, xx])),
        ]);
        let ex = arg(&[("name", b("seconds")), ("type", b("integer")), ("token", b("EX"))]);
        let expiration = arg(&[
            ("name", b("expiration")),
            ("type", b("oneof")),
            ("flags", Frame::Set(vec![st("optional")])),
            ("arguments", Frame::Array(vec![ex])),
        ]);
        let param =
            arg(&[("name", b("parameter")), ("type", b("string")), ("flags", Frame::Set(vec![st("multiple")]))]);
        Frame::Map(vec![
            (
                b("get"),
                arg(&[
                    ("summary", b("Get the value of a key")),
                    ("since", b("1.0.0")),
                    ("group", b("string")),
                    ("arguments", Frame::Array(vec![key.clone()])),
                ]),
            ),
            (
                b("set"),
                arg(&[
                    ("summary", b("Set the string value of a key")),
                    ("since", b("1.0.0")),
                    ("group", b("string")),
                    ("arguments", Frame::Array(vec![key, value, cond, expiration])),
                ]),
            ),
            (
                b("config"),
                arg(&[
                    ("summary", b("A container")),
                    ("since", b("2.0.0")),
                    ("group", b("server")),
                    (
                        "subcommands",
                        Frame::Map(vec![(
                            b("config|get"),
                            arg(&[
                                ("summary", b("Get config")),
                                ("since", b("2.0.0")),
                                ("group", b("server")),
                                ("arguments", Frame::Array(vec![param])),
                            ]),
                        )]),
                    ),
                ]),
            ),
        ])
    }

    #[test]
    fn syntax_from_docs() {
        let t = HelpTable::from_command_docs(&docs()).unwrap();
        let set = t.entries.iter().find(|e| e.full == "SET").unwrap();
        assert_eq!(set.params, "key value [NX|XX] [EX seconds]");
        let cfg = t.entries.iter().find(|e| e.full == "CONFIG GET").unwrap();
        assert_eq!(cfg.params, "parameter [parameter ...]");
        let order: Vec<&str> = t.entries.iter().map(|e| e.full.as_str()).collect();
        assert_eq!(order, ["@server", "@string", "CONFIG", "CONFIG GET", "GET", "SET"]);
    }

    #[test]
    fn hints_follow_typing() {
        let t = HelpTable::from_command_docs(&docs()).unwrap();
        assert_eq!(t.hint("set").as_deref(), Some(" key value [NX|XX] [EX seconds]"));
        assert_eq!(t.hint("SET ").as_deref(), Some("key value [NX|XX] [EX seconds]"));
        assert_eq!(t.hint("set k").as_deref(), Some(" value [NX|XX] [EX seconds]"));
        assert_eq!(t.hint("set k v ").as_deref(), Some("[NX|XX] [EX seconds]"));
        assert_eq!(t.hint("set k v nx ").as_deref(), Some("[NX|XX] [EX seconds]"));
        assert_eq!(t.hint("config get ").as_deref(), Some("parameter [parameter ...]"));
        assert_eq!(t.hint("nosuch"), None);
        assert_eq!(t.hint("set \"unbalanced"), None);
        assert_eq!(t.hint("   "), None);
    }

    #[test]
    fn completion_candidates() {
        let t = HelpTable::from_command_docs(&docs()).unwrap();
        assert_eq!(t.completions("se"), ["SET"]);
        assert_eq!(t.completions("con"), ["CONFIG", "CONFIG GET"]);
        assert_eq!(t.completions("help @s"), ["help @server", "help @string"]);
        assert_eq!(t.completions("help  g"), ["help  GET"]);
        assert!(t.completions("@s").is_empty());
    }

    #[test]
    fn render_command_and_group() {
        let t = HelpTable::from_command_docs(&docs()).unwrap();
        let get = String::from_utf8(t.render(&[b"get".to_vec()])).unwrap();
        assert_eq!(
            get,
            "\r\n  \x1b[1mGET\x1b[0m \x1b[90mkey\x1b[0m\r\n  \x1b[33msummary:\x1b[0m Get the value of a key\r\n  \x1b[33msince:\x1b[0m 1.0.0\r\n  \x1b[33mgroup:\x1b[0m string\r\n\r\n"
        );
        let group = String::from_utf8(t.render(&[b"@server".to_vec()])).unwrap();
        assert!(group.contains("CONFIG GET") && !group.contains("group:"), "{group}");
    }

    #[test]
    fn fallback_from_command() {
        let reply = Frame::Array(vec![Frame::Array(vec![
            b("get"),
            Frame::Integer(2),
            Frame::Array(vec![]),
            Frame::Integer(1),
        ])]);
        let t = HelpTable::from_command_list(&reply);
        assert_eq!(t.hint("get").as_deref(), Some(" key "));
    }
}
