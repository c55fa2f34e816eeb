//! COMMAND, COMMAND COUNT|INFO|DOCS|LIST|GETKEYS|GETKEYSANDFLAGS|HELP — all answered from
//! the command table, so what clients learn here is exactly what the dispatcher enforces.

use super::getkeys::command_keys;
use super::spec::{cats, flags, kflags, BeginSearch, FindKeys, KeySpec};
use super::{Cmd, CmdId, CommandTable};
use crate::ctx::{is, reply_help, Ctx};
use crate::error::{fail, CmdError, CmdResult};
use ferrokv_keyspace::glob::glob_match;
use ferrokv_resp::{Argv, ReplyBuf};

fn reply_flags(out: &mut ReplyBuf, f: u64) {
    let names: Vec<&str> = flags::NAMES.iter().filter(|(b, _)| f & b != 0).map(|(_, n)| *n).collect();
    out.set(names.len());
    for n in names {
        out.simple(n);
    }
}

fn reply_key_flags(out: &mut ReplyBuf, f: u64) {
    let names: Vec<&str> = kflags::NAMES.iter().filter(|(b, _)| f & b != 0).map(|(_, n)| *n).collect();
    out.set(names.len());
    for n in names {
        out.simple(n);
    }
}

fn reply_key_spec(out: &mut ReplyBuf, ks: &KeySpec) {
    out.map(3 + ks.notes.is_some() as usize);
    if let Some(notes) = ks.notes {
        out.bulk(b"notes");
        out.bulk(notes.as_bytes());
    }
    out.bulk(b"flags");
    reply_key_flags(out, ks.flags);
    out.bulk(b"begin_search");
    out.map(2);
    out.bulk(b"type");
    match ks.begin {
        BeginSearch::Index(pos) => {
            out.bulk(b"index");
            out.bulk(b"spec");
            out.map(1);
            out.bulk(b"index");
            out.int(pos.into());
        }
        BeginSearch::Keyword(word, from) => {
            out.bulk(b"keyword");
            out.bulk(b"spec");
            out.map(2);
            out.bulk(b"keyword");
            out.bulk(word.as_bytes());
            out.bulk(b"startfrom");
            out.int(from.into());
        }
        BeginSearch::BeginUnknown => {
            out.bulk(b"unknown");
            out.bulk(b"spec");
            out.map(0);
        }
    }
    out.bulk(b"find_keys");
    out.map(2);
    out.bulk(b"type");
    match ks.find {
        FindKeys::Range(lastkey, step, limit) => {
            out.bulk(b"range");
            out.bulk(b"spec");
            out.map(3);
            out.bulk(b"lastkey");
            out.int(lastkey.into());
            out.bulk(b"keystep");
            out.int(step.into());
            out.bulk(b"limit");
            out.int(limit.into());
        }
        FindKeys::Keynum(keynumidx, firstkey, step) => {
            out.bulk(b"keynum");
            out.bulk(b"spec");
            out.map(3);
            out.bulk(b"keynumidx");
            out.int(keynumidx.into());
            out.bulk(b"firstkey");
            out.int(firstkey.into());
            out.bulk(b"keystep");
            out.int(step.into());
        }
        FindKeys::FindUnknown => {
            out.bulk(b"unknown");
            out.bulk(b"spec");
            out.map(0);
        }
    }
}

fn reply_info(out: &mut ReplyBuf, t: &CommandTable, id: CmdId) {
    let c = t.get(id);
    let (first, last, step) = c.spec.keys;
    out.array(10);
    out.bulk(c.fullname().as_bytes());
    out.int(c.spec.arity as i64);
    reply_flags(out, c.flags());
    out.int(first as i64);
    out.int(last as i64);
    out.int(step as i64);
    let cat_names: Vec<&str> = cats::NAMES.iter().filter(|(b, _)| c.cats & b != 0).map(|(_, n)| *n).collect();
    out.set(cat_names.len());
    for n in cat_names {
        out.simple(&format!("@{n}"));
    }
    out.set(c.tips.len());
    for tip in c.tips {
        out.bulk(tip.as_bytes());
    }
    out.set(c.key_specs.len());
    for ks in c.key_specs {
        reply_key_spec(out, ks);
    }
    // Redis answers an empty set for a command without subcommands, an array otherwise.
    if c.subs.is_empty() {
        out.set(0);
    } else {
        out.array(c.subs.len());
    }
    for &s in &c.subs {
        reply_info(out, t, s);
    }
}

pub fn command(c: &mut Ctx) -> CmdResult {
    let ids = c.eng.commands.top_level();
    let t = &c.eng.commands;
    let out = &mut c.client.out;
    out.array(ids.len());
    for id in ids {
        reply_info(out, t, id);
    }
    Ok(())
}

pub fn count(c: &mut Ctx) -> CmdResult {
    let n = c.eng.commands.top_level().len();
    c.out().int(n as i64);
    Ok(())
}

pub fn info(c: &mut Ctx) -> CmdResult {
    let ids: Vec<Option<CmdId>> = if c.argc() == 2 {
        c.eng.commands.top_level().into_iter().map(Some).collect()
    } else {
        (2..c.argc()).map(|i| c.eng.commands.find_full(c.arg(i))).collect()
    };
    let t = &c.eng.commands;
    let out = &mut c.client.out;
    out.array(ids.len());
    for id in ids {
        match id {
            Some(id) => reply_info(out, t, id),
            None => out.null(),
        }
    }
    Ok(())
}

pub fn list(c: &mut Ctx) -> CmdResult {
    enum Filter {
        All,
        Module,
        Cat(u64),
        Pattern(Vec<u8>),
    }
    let filter = match c.argc() {
        2 => Filter::All,
        5 if is(c.arg(2), "FILTERBY") => {
            let (kind, val) = (c.arg(3), c.arg(4));
            if is(kind, "MODULE") {
                Filter::Module
            } else if is(kind, "ACLCAT") {
                let name = String::from_utf8_lossy(val).to_ascii_lowercase();
                match cats::NAMES.iter().find(|(_, n)| *n == name) {
                    Some((b, _)) => Filter::Cat(*b),
                    None => Filter::Cat(0),
                }
            } else if is(kind, "PATTERN") {
                Filter::Pattern(val.to_vec())
            } else {
                return Err(CmdError::Syntax);
            }
        }
        _ => return Err(CmdError::Syntax),
    };
    let t = &c.eng.commands;
    let mut names: Vec<&str> = Vec::new();
    for id in t.top_level() {
        let cmd = t.get(id);
        for x in std::iter::once(id).chain(cmd.subs.iter().copied()) {
            let cx: &Cmd = t.get(x);
            let keep = match &filter {
                Filter::All => true,
                Filter::Module => false,
                Filter::Cat(b) => cx.cats & b != 0,
                Filter::Pattern(p) => glob_match(p, cx.fullname().as_bytes(), true),
            };
            if keep {
                names.push(cx.fullname());
            }
        }
    }
    c.client.out.bulks(names.iter().map(|n| n.as_bytes()));
    Ok(())
}

/// One argument of COMMAND DOCS, parsed from a command's syntax line.
#[derive(Debug, Default, Clone)]
struct DocArg {
    name: String,
    kind: &'static str,
    token: Option<String>,
    optional: bool,
    multiple: bool,
    children: Vec<DocArg>,
}

fn tokenize(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for w in s.split_whitespace() {
        let mut w = w;
        while let Some(rest) = w.strip_prefix(['[', '<']) {
            out.push(w[..1].to_string());
            w = rest;
        }
        let mut closers = Vec::new();
        while let Some(rest) = w.strip_suffix([']', '>']) {
            closers.push(w[w.len() - 1..].to_string());
            w = rest;
        }
        if !w.is_empty() {
            out.push(w.to_string());
        }
        out.extend(closers.into_iter().rev());
    }
    out
}

fn leaf(word: &str, next: Option<&str>) -> (DocArg, bool) {
    let is_token = word.chars().any(|c| c.is_ascii_uppercase()) && !word.chars().any(|c| c.is_ascii_lowercase());
    let arg_kind = |name: &str| -> &'static str {
        if name.contains("key") || name == "destination" || name == "source" {
            "key"
        } else if [
            "count",
            "numkeys",
            "timeout",
            "seconds",
            "milliseconds",
            "offset",
            "index",
            "db",
            "start",
            "end",
            "port",
        ]
        .contains(&name)
        {
            "integer"
        } else if name == "pattern" {
            "pattern"
        } else {
            "string"
        }
    };
    if is_token {
        if let Some(n) =
            next.filter(|n| n.chars().all(|c| !c.is_ascii_uppercase()) && !["|", "[", "]", "<", ">", "..."].contains(n))
        {
            let a =
                DocArg { name: n.to_string(), kind: arg_kind(n), token: Some(word.to_string()), ..Default::default() };
            return (a, true);
        }
        let a = DocArg {
            name: word.to_ascii_lowercase(),
            kind: "pure-token",
            token: Some(word.to_string()),
            ..Default::default()
        };
        return (a, false);
    }
    (DocArg { name: word.to_string(), kind: arg_kind(word), ..Default::default() }, false)
}

/// Parses a sequence until `end` (or the end of input), splitting alternatives on `|`.
fn parse_seq(toks: &[String], i: &mut usize, end: Option<&str>) -> Vec<Vec<DocArg>> {
    let mut alts: Vec<Vec<DocArg>> = vec![Vec::new()];
    while *i < toks.len() {
        let t = toks[*i].as_str();
        if Some(t) == end {
            *i += 1;
            break;
        }
        *i += 1;
        let cur = alts.last_mut().expect("non-empty");
        match t {
            "|" => alts.push(Vec::new()),
            "[" | "<" => {
                let inner = parse_seq(toks, i, Some(if t == "[" { "]" } else { ">" }));
                let flat: Vec<DocArg> = inner.iter().flatten().cloned().collect();
                let repeats = flat.last().is_some_and(|a| a.name == "...");
                if repeats {
                    if let Some(prev) = cur.last_mut() {
                        prev.multiple = true;
                    }
                    continue;
                }
                let mut arg = if inner.len() > 1 {
                    let children = inner.into_iter().map(group).collect();
                    DocArg { name: "choice".into(), kind: "oneof", children, ..Default::default() }
                } else {
                    group(inner.into_iter().next().unwrap_or_default())
                };
                arg.optional = t == "[";
                cur.push(arg);
            }
            "..." => cur.push(DocArg { name: "...".into(), kind: "string", ..Default::default() }),
            w => {
                let (a, used_next) = leaf(w, toks.get(*i).map(String::as_str));
                if used_next {
                    *i += 1;
                }
                cur.push(a);
            }
        }
    }
    alts
}

/// A sequence as one argument: itself if single, else a block.
fn group(mut seq: Vec<DocArg>) -> DocArg {
    if seq.len() == 1 {
        return seq.pop().expect("len 1");
    }
    let name = seq.first().map(|a| a.name.clone()).unwrap_or_default();
    DocArg { name, kind: "block", children: seq, ..Default::default() }
}

fn doc_args(syntax: &str) -> Vec<DocArg> {
    let toks = tokenize(syntax);
    let mut i = 0;
    let alts = parse_seq(&toks, &mut i, None);
    if alts.len() > 1 {
        return vec![DocArg {
            name: "choice".into(),
            kind: "oneof",
            children: alts.into_iter().map(group).collect(),
            ..Default::default()
        }];
    }
    alts.into_iter().next().unwrap_or_default()
}

fn reply_doc_arg(out: &mut ReplyBuf, a: &DocArg) {
    let mut fields = 2;
    if a.token.is_some() {
        fields += 1;
    }
    if a.optional || a.multiple {
        fields += 1;
    }
    if !a.children.is_empty() {
        fields += 1;
    }
    out.map(fields);
    out.bulk(b"name");
    out.bulk(a.name.as_bytes());
    out.bulk(b"type");
    out.bulk(a.kind.as_bytes());
    if let Some(t) = &a.token {
        out.bulk(b"token");
        out.bulk(t.as_bytes());
    }
    if a.optional || a.multiple {
        out.bulk(b"flags");
        let f: Vec<&str> =
            [(a.optional, "optional"), (a.multiple, "multiple")].iter().filter(|x| x.0).map(|x| x.1).collect();
        out.set(f.len());
        for x in f {
            out.simple(x);
        }
    }
    if !a.children.is_empty() {
        out.bulk(b"arguments");
        out.array(a.children.len());
        for ch in &a.children {
            reply_doc_arg(out, ch);
        }
    }
}

fn reply_docs(out: &mut ReplyBuf, t: &CommandTable, id: CmdId) {
    let c = t.get(id);
    let args = doc_args(c.spec.syntax);
    let mut fields = 3;
    if !args.is_empty() {
        fields += 1;
    }
    if !c.subs.is_empty() {
        fields += 1;
    }
    out.map(fields);
    out.bulk(b"summary");
    out.bulk(c.summary.as_bytes());
    out.bulk(b"since");
    out.bulk(c.spec.since.as_bytes());
    out.bulk(b"group");
    out.bulk(c.spec.group.as_bytes());
    if !args.is_empty() {
        out.bulk(b"arguments");
        out.array(args.len());
        for a in &args {
            reply_doc_arg(out, a);
        }
    }
    if !c.subs.is_empty() {
        out.bulk(b"subcommands");
        out.map(c.subs.len());
        for &s in &c.subs {
            out.bulk(t.get(s).fullname().as_bytes());
            reply_docs(out, t, s);
        }
    }
}

pub fn docs(c: &mut Ctx) -> CmdResult {
    let ids: Vec<CmdId> = if c.argc() == 2 {
        c.eng.commands.top_level()
    } else {
        (2..c.argc()).filter_map(|i| c.eng.commands.find_full(c.arg(i))).collect()
    };
    let t = &c.eng.commands;
    let out = &mut c.client.out;
    out.map(ids.len());
    for id in ids {
        out.bulk(t.get(id).fullname().as_bytes());
        reply_docs(out, t, id);
    }
    Ok(())
}

/// COMMAND GETKEYS and GETKEYSANDFLAGS: the checks in Redis's order (a command without
/// keys is reported before a wrong argument count), then the keys.
fn getkeys_generic(c: &mut Ctx, with_flags: bool) -> CmdResult {
    let sub: Vec<&[u8]> = (2..c.argc()).map(|i| c.arg(i)).collect();
    let argv = Argv::from_slices(&sub);
    let id = match c.eng.commands.lookup(&argv) {
        super::Lookup::Found(id) => id,
        _ => return fail("ERR Invalid command specified"),
    };
    let cmd = c.eng.commands.get(id);
    if !cmd.may_have_keys() {
        return fail("ERR The command has no key arguments");
    }
    if !cmd.arity_ok(argv.len()) {
        return fail("ERR Invalid number of arguments specified for command");
    }
    let keys = command_keys(cmd, &argv);
    if keys.is_empty() {
        if cmd.has(flags::NO_MANDATORY_KEYS) {
            c.client.out.array(0);
            return Ok(());
        }
        return fail("ERR Invalid arguments specified for command");
    }
    let out = &mut c.client.out;
    out.array(keys.len());
    for k in keys {
        if with_flags {
            out.array(2);
            out.bulk(argv.get(k.pos));
            reply_key_flags(out, k.flags);
        } else {
            out.bulk(argv.get(k.pos));
        }
    }
    Ok(())
}

pub fn getkeys(c: &mut Ctx) -> CmdResult {
    getkeys_generic(c, false)
}

pub fn getkeysandflags(c: &mut Ctx) -> CmdResult {
    getkeys_generic(c, true)
}

pub fn help(c: &mut Ctx) -> CmdResult {
    reply_help(
        c,
        &[
            "(no subcommand)",
            "    Details about every command.",
            "COUNT",
            "    The number of commands.",
            "DOCS [<command-name> ...]",
            "    Documentation of the named commands (default: all).",
            "GETKEYS <full-command>",
            "    The key names a full command line would access.",
            "GETKEYSANDFLAGS <full-command>",
            "    The key names a full command line would access, with how it uses them.",
            "INFO [<command-name> ...]",
            "    Details about the named commands (default: all).",
            "LIST [FILTERBY (MODULE <module-name>|ACLCAT <category>|PATTERN <pattern>)]",
            "    The names of the commands, optionally filtered.",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_becomes_doc_arguments() {
        let a = doc_args("key value [NX | XX] [GET] [EX seconds | PX milliseconds | KEEPTTL]");
        assert_eq!(a.len(), 5);
        assert_eq!(a[0].kind, "key");
        assert_eq!(a[2].kind, "oneof");
        assert!(a[2].optional);
        assert_eq!(a[3].kind, "pure-token");
        assert_eq!(a[4].children[0].token.as_deref(), Some("EX"));
        let m = doc_args("key [key ...]");
        assert_eq!(m.len(), 1);
        assert!(m[0].multiple);
    }
}
