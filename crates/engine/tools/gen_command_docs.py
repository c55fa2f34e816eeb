#!/usr/bin/env python3
"""Generates crates/engine/src/commands/spec_docs.rs, the data COMMAND DOCS reports.

Redis describes each command in src/commands/<name>.json; COMMAND DOCS replies with the
documentation part of it: summary, complexity, doc flags, deprecation, history and the
argument tree. This script turns those fields into a Rust table (one line per command), so
the replies stay exactly Redis 7.0's and the data can be regenerated. Commands ferrokv has
and Redis 7.0 lacks are described in the same JSON format in `extra_commands/`.

Usage: gen_command_docs.py <redis-7.0-source>/src/commands [output.rs]
"""

import json
import pathlib
import sys

ARG_KINDS = {
    "string": "Str",
    "integer": "Int",
    "double": "Double",
    "key": "Key",
    "pattern": "Pattern",
    "unix-time": "UnixTime",
    "pure-token": "PureToken",
    "oneof": "OneOf",
    "block": "Block",
}


def rust_str(s):
    # JSON's escapes for '"', '\\' and control characters are Rust's too; keep UTF-8 as is.
    return json.dumps(s, ensure_ascii=False)


def opt(s):
    return "None" if s is None else f"Some({rust_str(s)})"


def arg_flags(a):
    names = [f for f, key in (("OPTIONAL", "optional"), ("MULTIPLE", "multiple"), ("MULTIPLE_TOKEN", "multiple_token")) if a.get(key)]
    return " | ".join(names) or "0"


def arg(a):
    token = a.get("token")
    if token is not None:
        # Redis pastes the token between quotes into C source (commands.c), so a token of
        # `""` (MIGRATE's empty_string) becomes adjacent empty literals: an empty token.
        token = token.replace('"', "")
    children = ", ".join(arg(c) for c in a.get("arguments", [])) if a["type"] in ("oneof", "block") else ""
    return (
        f"a({rust_str(a['name'].lower())}, {ARG_KINDS[a['type']]}, {a.get('key_spec_index', -1)}, "
        f"{opt(token.upper() if token is not None else None)}, {opt(a.get('summary'))}, {opt(a.get('since'))}, "
        f"{opt(a.get('deprecated_since'))}, {arg_flags(a)}, &[{children}])"
    )


def command(fullname, d):
    doc_flags = " | ".join(f"DOC_{f}" for f in d.get("doc_flags", [])) or "0"
    history = ", ".join(f"({rust_str(v)}, {rust_str(t)})" for v, t in d.get("history", []))
    args = ", ".join(arg(a) for a in d.get("arguments", []))
    return (
        f"    d({rust_str(fullname)}, {opt(d.get('summary'))}, {opt(d.get('complexity'))}, {doc_flags}, "
        f"{opt(d.get('deprecated_since'))}, {opt(d.get('replaced_by'))}, &[{history}], &[{args}]),\n"
    )


def main():
    here = pathlib.Path(__file__).resolve().parent
    src = pathlib.Path(sys.argv[1])
    out = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else here.parent / "src/commands/spec_docs.rs"
    rows = {}
    for path in sorted(src.glob("*.json")) + sorted((here / "extra_commands").glob("*.json")):
        (name, desc), = json.loads(path.read_text()).items()
        container = desc.get("container")
        fullname = f"{container.lower()}|{name.lower()}" if container else name.lower()
        rows[fullname] = command(fullname, desc)
    text = (
        "//! The documentation part of Redis 7.0's command descriptions (COMMAND DOCS), generated\n"
        "//! by `crates/engine/tools/gen_command_docs.py` from Redis's `src/commands/*.json` and\n"
        "//! `tools/extra_commands/` (ferrokv's commands Redis 7.0 lacks). Do not edit: regenerate.\n"
        "//! Sorted by full name (looked up by binary search).\n"
        "\n"
        "use super::spec::doc_flags::*;\n"
        "use super::spec::{a, d, ArgKind::*, CmdDoc};\n"
        "\n"
        "#[rustfmt::skip]\n"
        "pub(crate) const DOCS: &[CmdDoc] = &[\n" + "".join(rows[k] for k in sorted(rows)) + "];\n"
        "\n"
        "/// The documentation of a command by full name (`config|get`).\n"
        "pub(crate) fn command_doc(fullname: &str) -> Option<&'static CmdDoc> {\n"
        "    DOCS.binary_search_by(|d| d.fullname.cmp(fullname)).ok().map(|i| &DOCS[i])\n"
        "}\n"
    )
    out.write_text(text)


if __name__ == "__main__":
    main()
