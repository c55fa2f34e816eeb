//! Replies as text, the way redis-cli 7.0 prints them. Pure functions: a [`Frame`] in,
//! bytes out, so every rule is unit-tested without a server.
//!
//! Two styles exist. *Standard* (stdout is a terminal, or `--no-raw`) tags the type of each
//! value (`(integer) 1`, `(nil)`, quoted strings) and numbers the elements of aggregates,
//! indenting nested ones under their parent's index. *Raw* (`--raw`, or stdout is a pipe)
//! prints bare values, one per line, for scripts.

use ferrokv_resp::args::quote_arg;
use ferrokv_resp::Frame;

/// How replies are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    Standard,
    Raw,
}

/// The separators of raw output: between the elements of an aggregate (`-d`) and after
/// each reply (`-D`). Both default to a newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delimiters {
    pub element: Vec<u8>,
    pub reply: Vec<u8>,
}

impl Default for Delimiters {
    fn default() -> Self {
        Delimiters { element: b"\n".to_vec(), reply: b"\n".to_vec() }
    }
}

/// A reply as printed after a command. `verbatim` is set for commands whose reply is
/// text meant for humans (INFO, CLIENT LIST…): redis-cli prints those unquoted in every
/// mode, without the reply delimiter.
pub fn reply(frame: &Frame, mode: OutputMode, verbatim: bool, delims: &Delimiters) -> Vec<u8> {
    let mut out = Vec::new();
    if verbatim {
        raw_into(&mut out, frame, &delims.element);
    } else {
        match mode {
            OutputMode::Standard => standard_into(&mut out, frame, b""),
            OutputMode::Raw => {
                raw_into(&mut out, frame, &delims.element);
                out.extend_from_slice(&delims.reply);
            }
        }
    }
    out
}

/// A RESP3 push received while waiting for a reply (client-side caching invalidations
/// get a one-line form on terminals).
pub fn push(frame: &Frame, mode: OutputMode, delims: &Delimiters) -> Vec<u8> {
    if mode == OutputMode::Standard {
        if let Some(text) = invalidation(frame) {
            return text;
        }
    }
    reply(frame, mode, false, delims)
}

/// `"a b"` with escapes for non-printable bytes (Redis's `sdscatrepr`).
pub fn repr(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    quote_arg(bytes, &mut out);
    out
}

/// The standard (terminal) form of a reply.
pub fn standard(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    standard_into(&mut out, frame, b"");
    out
}

/// The raw form of a reply, without the trailing reply delimiter.
pub fn raw(frame: &Frame, element_delim: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    raw_into(&mut out, frame, element_delim);
    out
}

fn invalidation(frame: &Frame) -> Option<Vec<u8>> {
    let Frame::Push(items) = frame else { return None };
    let [kind, Frame::Array(keys)] = items.as_slice() else { return None };
    if !kind.as_bytes().is_some_and(|k| k.starts_with(b"invalidate")) {
        return None;
    }
    let mut out = b"-> invalidate: ".to_vec();
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        out.push(b'\'');
        out.extend_from_slice(key.as_bytes().unwrap_or_default());
        out.push(b'\'');
    }
    out.push(b'\n');
    Some(out)
}

/// Elements of an aggregate as the standard formatter walks them: maps are pairs.
enum Entries<'a> {
    List(&'a [Frame]),
    Pairs(&'a [(Frame, Frame)]),
}

impl Entries<'_> {
    fn len(&self) -> usize {
        match self {
            Entries::List(v) => v.len(),
            Entries::Pairs(v) => v.len(),
        }
    }
}

fn standard_into(out: &mut Vec<u8>, frame: &Frame, prefix: &[u8]) {
    let line = |out: &mut Vec<u8>, parts: &[&[u8]]| {
        parts.iter().for_each(|p| out.extend_from_slice(p));
        out.push(b'\n');
    };
    match frame {
        Frame::Error(e) => line(out, &[b"(error) ", e]),
        Frame::Simple(s) => line(out, &[s]),
        Frame::Integer(n) => line(out, &[b"(integer) ", n.to_string().as_bytes()]),
        Frame::Double(d) => line(out, &[b"(double) ", d]),
        Frame::Bulk(b) => line(out, &[&repr(b)]),
        Frame::Verbatim { text, .. } => line(out, &[text]),
        Frame::Null => line(out, &[b"(nil)"]),
        Frame::Boolean(b) => line(out, &[if *b { b"(true)" } else { b"(false)" }]),
        // redis-cli 7.0 aborts on big numbers ("Unknown reply type"); later versions print
        // them this way, which is more useful than dying.
        Frame::BigNumber(n) => line(out, &[b"(big number) ", n]),
        // redis-cli 7.0's hiredis cannot parse attributes at all; the annotated reply is
        // what the user asked for.
        Frame::Attribute(_, inner) => standard_into(out, inner, prefix),
        Frame::Array(v) => aggregate(out, Entries::List(v), b')', b"(empty array)", prefix),
        Frame::Push(v) => aggregate(out, Entries::List(v), b')', b"(empty push)", prefix),
        Frame::Set(v) => aggregate(out, Entries::List(v), b'~', b"(empty set)", prefix),
        Frame::Map(kv) => aggregate(out, Entries::Pairs(kv), b'#', b"(empty hash)", prefix),
    }
}

/// Numbered elements: `1) ` on the first line, the parent's prefix before the following
/// indices, and nested aggregates indented by the width of the index plus two.
fn aggregate(out: &mut Vec<u8>, entries: Entries<'_>, separator: u8, empty: &[u8], prefix: &[u8]) {
    let count = entries.len();
    if count == 0 {
        out.extend_from_slice(empty);
        out.push(b'\n');
        return;
    }
    let width = count.to_string().len();
    let mut child_prefix = prefix.to_vec();
    child_prefix.resize(prefix.len() + width + 2, b' ');
    for i in 0..count {
        // The first index goes right after the parent's own index, on the same line.
        if i > 0 {
            out.extend_from_slice(prefix);
        }
        out.extend_from_slice(format!("{:>width$}", i + 1).as_bytes());
        out.push(separator);
        out.push(b' ');
        match &entries {
            Entries::List(items) => standard_into(out, &items[i], &child_prefix),
            Entries::Pairs(pairs) => {
                let (key, value) = &pairs[i];
                standard_into(out, key, &child_prefix);
                out.pop(); // the key's newline: the value follows on the same line
                out.extend_from_slice(b" => ");
                if is_multiline(value) {
                    // Keeps the value's element numbers aligned with each other.
                    out.push(b'\n');
                    out.extend_from_slice(&child_prefix);
                }
                standard_into(out, value, &child_prefix);
            }
        }
    }
}

/// Whether the standard form of `frame` spans several lines.
fn is_multiline(frame: &Frame) -> bool {
    match frame {
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => match v.as_slice() {
            [] => false,
            [only] => is_multiline(only),
            _ => true,
        },
        Frame::Map(kv) => match kv.as_slice() {
            [] => false,
            [(_, value)] => is_multiline(value),
            _ => true,
        },
        Frame::Attribute(_, inner) => is_multiline(inner),
        _ => false,
    }
}

fn raw_into(out: &mut Vec<u8>, frame: &Frame, delim: &[u8]) {
    match frame {
        Frame::Null => {}
        Frame::Error(e) => {
            out.extend_from_slice(e);
            out.push(b'\n');
        }
        Frame::Simple(s) | Frame::Bulk(s) | Frame::Verbatim { text: s, .. } => out.extend_from_slice(s),
        Frame::Double(s) | Frame::BigNumber(s) => out.extend_from_slice(s),
        Frame::Boolean(b) => out.extend_from_slice(if *b { b"(true)" } else { b"(false)" }),
        Frame::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Frame::Attribute(_, inner) => raw_into(out, inner, delim),
        Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => {
            for (i, item) in v.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(delim);
                }
                raw_into(out, item, delim);
            }
        }
        Frame::Map(kv) => {
            for (i, (k, v)) in kv.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(delim);
                }
                raw_into(out, k, delim);
                out.push(b' ');
                raw_into(out, v, delim);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Frame {
        Frame::Bulk(s.as_bytes().to_vec().into())
    }
    fn simple(s: &str) -> Frame {
        Frame::Simple(s.as_bytes().to_vec().into())
    }
    fn std_text(f: &Frame) -> String {
        String::from_utf8(standard(f)).unwrap()
    }
    fn raw_text(f: &Frame) -> String {
        String::from_utf8(reply(f, OutputMode::Raw, false, &Delimiters::default())).unwrap()
    }

    #[test]
    fn scalars_standard() {
        assert_eq!(std_text(&Frame::Integer(-3)), "(integer) -3\n");
        assert_eq!(std_text(&Frame::Null), "(nil)\n");
        assert_eq!(std_text(&simple("OK")), "OK\n");
        assert_eq!(std_text(&Frame::Error("ERR bad".into())), "(error) ERR bad\n");
        assert_eq!(std_text(&bulk("a \"b\"\n\u{1}")), "\"a \\\"b\\\"\\n\\x01\"\n");
        assert_eq!(std_text(&Frame::Double("3.5".into())), "(double) 3.5\n");
        assert_eq!(std_text(&Frame::Boolean(false)), "(false)\n");
        assert_eq!(std_text(&Frame::Verbatim { format: "txt".into(), text: "a\nb".into() }), "a\nb\n");
    }

    #[test]
    fn arrays_standard() {
        assert_eq!(std_text(&Frame::Array(vec![])), "(empty array)\n");
        assert_eq!(std_text(&Frame::Set(vec![])), "(empty set)\n");
        assert_eq!(std_text(&Frame::Map(vec![])), "(empty hash)\n");
        assert_eq!(std_text(&Frame::Array(vec![bulk("a"), Frame::Null])), "1) \"a\"\n2) (nil)\n");
        let nested = Frame::Array(vec![bulk("0"), Frame::Array(vec![bulk("k1"), bulk("k2")])]);
        assert_eq!(std_text(&nested), "1) \"0\"\n2) 1) \"k1\"\n   2) \"k2\"\n");
    }

    #[test]
    fn index_width_grows_with_count() {
        let items: Vec<Frame> = (0..10).map(Frame::Integer).collect();
        let text = std_text(&Frame::Array(vec![Frame::Array(items)]));
        assert!(text.starts_with("1)  1) (integer) 0\n    2) (integer) 1\n"), "{text}");
        assert!(text.ends_with("   10) (integer) 9\n"), "{text}");
    }

    #[test]
    fn maps_and_sets_standard() {
        let map = Frame::Map(vec![
            (bulk("a"), Frame::Integer(1)),
            (bulk("b"), Frame::Array(vec![bulk("x"), bulk("y")])),
            (bulk("c"), Frame::Array(vec![bulk("only")])),
        ]);
        assert_eq!(
            std_text(&map),
            "1# \"a\" => (integer) 1\n2# \"b\" => \n   1) \"x\"\n   2) \"y\"\n3# \"c\" => 1) \"only\"\n"
        );
        let set = Frame::Set(vec![Frame::Integer(0), Frame::Integer(1)]);
        assert_eq!(std_text(&set), "1~ (integer) 0\n2~ (integer) 1\n");
    }

    #[test]
    fn raw_forms() {
        assert_eq!(raw_text(&Frame::Null), "\n");
        assert_eq!(raw_text(&Frame::Error("ERR x".into())), "ERR x\n\n");
        assert_eq!(raw_text(&Frame::Array(vec![bulk("a"), Frame::Null, Frame::Integer(2)])), "a\n\n2\n");
        assert_eq!(raw_text(&Frame::Array(vec![Frame::Array(vec![bulk("a"), bulk("b")]), bulk("c")])), "a\nb\nc\n");
        let map = Frame::Map(vec![(bulk("k"), Frame::Boolean(true)), (bulk("j"), Frame::Double("1.5".into()))]);
        assert_eq!(raw_text(&map), "k (true)\nj 1.5\n");
    }

    #[test]
    fn custom_delimiters() {
        let d = Delimiters { element: b",".to_vec(), reply: b";".to_vec() };
        let v = Frame::Array(vec![bulk("a"), bulk("b")]);
        assert_eq!(reply(&v, OutputMode::Raw, false, &d), b"a,b;");
        // Human-oriented replies are written as they are, without the reply delimiter.
        assert_eq!(reply(&bulk("x:1\r\n"), OutputMode::Standard, true, &d), b"x:1\r\n");
    }

    #[test]
    fn invalidation_push() {
        let p = Frame::Push(vec![bulk("invalidate"), Frame::Array(vec![bulk("k1"), bulk("k2")])]);
        assert_eq!(push(&p, OutputMode::Standard, &Delimiters::default()), b"-> invalidate: 'k1', 'k2'\n");
        assert_eq!(push(&p, OutputMode::Raw, &Delimiters::default()), b"invalidate\nk1\nk2\n");
    }
}
