//! The AOF manifest's text form round-trips for any file names the server could be given
//! (spaces, quotes, backslashes, control and non-ASCII characters), and no text panics
//! the parser.

use ferrokv_persist::aof::{AofFile, FileKind, Manifest};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    // No '/' or '\\': the parser refuses paths. Everything else is fair game.
    prop::collection::vec(
        prop_oneof![
            prop::char::range('a', 'z'),
            Just(' '),
            Just('"'),
            Just('\''),
            Just('\t'),
            Just('\n'),
            Just('\u{1}'),
            Just('#'),
            Just('é'),
            Just('.')
        ],
        1..40,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

fn manifest() -> impl Strategy<Value = Manifest> {
    (
        prop::option::of((name(), 1..1000i64)),
        prop::collection::vec((name(), 1..1000i64), 0..4),
        prop::collection::vec((name(), 1..50i64), 0..5),
    )
        .prop_map(|(base, history, incr)| {
            let mut m = Manifest::default();
            if let Some((n, seq)) = base {
                m.base_seq = seq;
                m.base = Some(AofFile { name: n, seq, kind: FileKind::Base });
            }
            m.history = history.into_iter().map(|(name, seq)| AofFile { name, seq, kind: FileKind::History }).collect();
            // Incremental sequence numbers strictly increase.
            let mut seq = 0;
            for (n, step) in incr {
                seq += step;
                m.incr.push(AofFile { name: n, seq, kind: FileKind::Incr });
            }
            m.incr_seq = seq;
            m
        })
}

proptest! {
    #[test]
    fn format_then_parse_is_identity(m in manifest()) {
        prop_assume!(m.base.is_some() || !m.history.is_empty() || !m.incr.is_empty());
        let text = m.format();
        let back = Manifest::parse(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&back.format(), &text);
        prop_assert_eq!(back.base, m.base);
        prop_assert_eq!(back.history, m.history);
        prop_assert_eq!(back.incr, m.incr);
    }

    #[test]
    fn any_text_parses_or_is_refused_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(m) = Manifest::parse(&bytes) {
            // Whatever was accepted formats to a text that parses to the same files.
            let again = Manifest::parse(m.format().as_bytes());
            if m.base.is_some() || !m.history.is_empty() || !m.incr.is_empty() {
                let again = again.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(again.incr, m.incr);
                prop_assert_eq!(again.base, m.base);
            }
        }
    }

    #[test]
    fn manifest_like_lines_parse_or_are_refused(lines in prop::collection::vec(
        ("(file|seq|type|x)", "[a-z0-9 \"\\\\]{0,8}", "(file|seq|type)", "[-0-9bih]{0,4}", "(type|seq)", "[bihx0-9]{0,2}"), 0..6)) {
        let mut text = String::new();
        for (a, b, c, d, e, f) in lines {
            text.push_str(&format!("{a} {b} {c} {d} {e} {f}\n"));
        }
        let _ = Manifest::parse(text.as_bytes());
    }
}
