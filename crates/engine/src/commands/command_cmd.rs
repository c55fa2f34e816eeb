//! COMMAND, COMMAND COUNT|INFO|DOCS|LIST|GETKEYS|GETKEYSANDFLAGS|HELP — all answered from
//! the command table, so what clients learn here is exactly what the dispatcher enforces.

use super::getkeys::command_keys;
use super::spec::{cats, doc_flags, flags, kflags, ArgKind, BeginSearch, DocArg, FindKeys, KeySpec};
use super::spec_docs::command_doc;
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

fn reply_flag_names(out: &mut ReplyBuf, f: u8, names: &[(u8, &str)]) {
    out.set(names.iter().filter(|(b, _)| f & b != 0).count());
    for (_, n) in names.iter().filter(|(b, _)| f & b != 0) {
        out.simple(n);
    }
}

/// Fields appear only when set, in Redis's order; a `oneof` or `block` always has its
/// (possibly empty) argument list.
fn reply_doc_args(out: &mut ReplyBuf, args: &[DocArg]) {
    out.array(args.len());
    for a in args {
        let nested = matches!(a.kind, ArgKind::OneOf | ArgKind::Block);
        let optional = [a.token, a.summary, a.since, a.deprecated_since].iter().filter(|f| f.is_some()).count();
        out.map(2 + optional + (a.key_spec_index >= 0) as usize + (a.flags != 0) as usize + nested as usize);
        out.bulk(b"name");
        out.bulk(a.name.as_bytes());
        out.bulk(b"type");
        out.bulk(a.kind.name().as_bytes());
        if a.key_spec_index >= 0 {
            out.bulk(b"key_spec_index");
            out.int(a.key_spec_index as i64);
        }
        for (field, value) in
            [("token", a.token), ("summary", a.summary), ("since", a.since), ("deprecated_since", a.deprecated_since)]
        {
            if let Some(v) = value {
                out.bulk(field.as_bytes());
                out.bulk(v.as_bytes());
            }
        }
        if a.flags != 0 {
            out.bulk(b"flags");
            reply_flag_names(out, a.flags, doc_flags::ARG_NAMES);
        }
        if nested {
            out.bulk(b"arguments");
            reply_doc_args(out, a.args);
        }
    }
}

fn reply_docs(out: &mut ReplyBuf, t: &CommandTable, id: CmdId) {
    let c = t.get(id);
    let doc = command_doc(c.fullname());
    let present = |o: Option<&str>| o.is_some() as usize;
    let mut fields = 2; // since and group
    if let Some(d) = doc {
        fields += present(d.summary) + present(d.complexity) + present(d.deprecated_since) + present(d.replaced_by);
        fields += (d.doc_flags != 0) as usize + !d.history.is_empty() as usize + !d.args.is_empty() as usize;
    }
    fields += !c.subs.is_empty() as usize;
    out.map(fields);
    if let Some(summary) = doc.and_then(|d| d.summary) {
        out.bulk(b"summary");
        out.bulk(summary.as_bytes());
    }
    out.bulk(b"since");
    out.bulk(c.spec.since.as_bytes());
    out.bulk(b"group");
    // The JSON files (and COMMAND INFO's categories) say `sorted_set`; DOCS says `sorted-set`.
    out.bulk(if c.spec.group == "sorted_set" { b"sorted-set" } else { c.spec.group.as_bytes() });
    if let Some(d) = doc {
        if let Some(complexity) = d.complexity {
            out.bulk(b"complexity");
            out.bulk(complexity.as_bytes());
        }
        if d.doc_flags != 0 {
            out.bulk(b"doc_flags");
            reply_flag_names(out, d.doc_flags, doc_flags::DOC_NAMES);
        }
        for (field, value) in [("deprecated_since", d.deprecated_since), ("replaced_by", d.replaced_by)] {
            if let Some(v) = value {
                out.bulk(field.as_bytes());
                out.bulk(v.as_bytes());
            }
        }
        if !d.history.is_empty() {
            out.bulk(b"history");
            out.set(d.history.len());
            for (version, change) in d.history {
                out.array(2);
                out.bulk(version.as_bytes());
                out.bulk(change.as_bytes());
            }
        }
        if !d.args.is_empty() {
            out.bulk(b"arguments");
            reply_doc_args(out, d.args);
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
    use super::super::spec_docs::{command_doc, DOCS};

    #[test]
    fn the_docs_table_is_sorted_for_its_binary_search() {
        assert!(DOCS.windows(2).all(|w| w[0].fullname < w[1].fullname));
        assert!(command_doc("config|get").is_some() && command_doc("no-such-command").is_none());
    }
}
