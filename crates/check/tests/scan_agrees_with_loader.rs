//! The checker and the server's loader must agree: a stream check-aof calls valid loads
//! completely, and what check-aof keeps (`ok_up_to`) is whole records the loader reads to
//! the end. Streams are real encodings of random commands, then cut, flipped or extended.

use ferrokv_check::aof_scan::scan;
use ferrokv_persist::aof::{next_record, Record};
use ferrokv_resp::encode_command;
use proptest::prelude::*;

/// What the loader makes of a whole file: the end of the last whole record, and whether
/// everything was whole records.
fn loader(buf: &[u8]) -> (usize, bool) {
    let mut at = 0;
    loop {
        match next_record(&buf[at..]) {
            Record::Command { len, .. } | Record::Annotation { len } => at += len,
            Record::Incomplete => return (at, at == buf.len()),
            Record::Bad { .. } => return (at, false),
        }
    }
}

fn stream() -> impl Strategy<Value = Vec<u8>> {
    let arg = prop::collection::vec(any::<u8>(), 0..12);
    let cmd = prop::collection::vec(arg, 1..4);
    (prop::collection::vec((cmd, any::<bool>()), 1..8)).prop_map(|cmds| {
        let mut buf = Vec::new();
        for (c, annotate) in cmds {
            if annotate {
                buf.extend_from_slice(b"#TS:1700000000\r\n");
            }
            // Transactions are checked on top of the format; keep them out of this one.
            if c[0].eq_ignore_ascii_case(b"multi") || c[0].eq_ignore_ascii_case(b"exec") {
                continue;
            }
            encode_command(&mut buf, c.iter().map(Vec::as_slice));
        }
        buf
    })
}

#[derive(Debug, Clone)]
enum Damage {
    None,
    Cut(usize),
    Flip(usize, u8),
    Append(Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::None),
        any::<usize>().prop_map(Damage::Cut),
        (any::<usize>(), 1..=255u8).prop_map(|(i, x)| Damage::Flip(i, x)),
        prop::collection::vec(any::<u8>(), 1..20).prop_map(Damage::Append),
    ]
}

fn apply(mut buf: Vec<u8>, d: &Damage) -> Vec<u8> {
    match d {
        Damage::None => {}
        Damage::Cut(i) => buf.truncate(i % (buf.len() + 1)),
        Damage::Flip(i, x) => {
            let n = buf.len();
            buf[i % n] ^= x;
        }
        Damage::Append(tail) => buf.extend_from_slice(tail),
    }
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn checker_verdict_is_the_loaders(buf in stream(), d in damage()) {
        let buf = apply(buf, &d);
        let mut line = 1;
        let s = scan(&buf[..], "f", 0, &mut line, None).unwrap();
        let checker_ok = s.error.is_none() && !s.format_error && s.ok_up_to == buf.len() as u64;
        let (loaded_to, loader_ok) = loader(&buf);
        prop_assert_eq!(checker_ok, loader_ok, "{:?}", s);
        // What the checker keeps, the loader reads whole (a MULTI-free stream: up to the
        // first bad record exactly).
        prop_assert_eq!(s.ok_up_to, loaded_to as u64);
        let kept = &buf[..s.ok_up_to as usize];
        prop_assert_eq!(loader(kept), (kept.len(), true));
    }

    #[test]
    fn a_stream_read_in_any_offset_reports_offsets_in_the_file(buf in stream(), start in 0u64..1_000_000) {
        let mut line = 1;
        let s = scan(&buf[..], "f", start, &mut line, None).unwrap();
        prop_assert_eq!(s.ok_up_to, start + buf.len() as u64);
    }
}
