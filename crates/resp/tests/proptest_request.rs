//! Property tests for the request parser: encoded commands round-trip whatever the read
//! boundaries, and arbitrary bytes never panic the parser.

use bytes::BytesMut;
use ferrokv_resp::{encode_command, Frame, Limits, ProtocolError, RequestParser};
use proptest::prelude::*;

fn arb_command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..6)
}

proptest! {
    #[test]
    fn commands_round_trip_across_any_split(cmds in prop::collection::vec(arb_command(), 1..8),
                                            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6)) {
        let mut wire = Vec::new();
        for c in &cmds {
            encode_command(&mut wire, c.iter().map(|a| a.as_slice()));
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort();
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut prev = 0;
        for p in points {
            buf.extend_from_slice(&wire[prev..p]);
            prev = p;
            parser.parse(&mut buf, &Limits::default(), &mut out, usize::MAX).unwrap();
        }
        let got: Vec<Vec<Vec<u8>>> = out.iter().map(|a| a.to_vec()).collect();
        prop_assert_eq!(got, cmds);
        prop_assert!(buf.is_empty());
        prop_assert!(!parser.in_progress());
    }

    #[test]
    fn junk_never_panics(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(&data[..]);
        let mut out = Vec::new();
        let _ = parser.parse(&mut buf, &Limits::default(), &mut out, usize::MAX);
        let _ = Frame::decode(&data);
    }

    #[test]
    fn inline_commands_split_like_redis(words in prop::collection::vec("[a-zA-Z0-9]{1,8}", 1..6)) {
        let line = format!("{}\r\n", words.join(" "));
        let mut parser = RequestParser::new();
        let mut buf = BytesMut::from(line.as_bytes());
        let mut out = Vec::new();
        parser.parse(&mut buf, &Limits::default(), &mut out, usize::MAX).unwrap();
        prop_assert_eq!(out.len(), 1);
        let got: Vec<Vec<u8>> = out[0].to_vec();
        let want: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        prop_assert_eq!(got, want);
    }
}

/// Requests and the error (if any) `wire` parses to, fed in pieces of `step` bytes.
fn parse_in_steps(wire: &[u8], step: usize, limits: &Limits) -> (Vec<Vec<Vec<u8>>>, Option<ProtocolError>) {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut err = None;
    for chunk in wire.chunks(step.max(1)) {
        buf.extend_from_slice(chunk);
        if let Err(e) = parser.parse(&mut buf, limits, &mut out, usize::MAX) {
            err = Some(e);
            break;
        }
    }
    (out.iter().map(|a| a.to_vec()).collect(), err)
}

/// Encoded commands mixed with protocol fragments (counts and lengths with leading zeros,
/// signs, too many digits, bare line ends) and with some bytes replaced, so lengths, counts
/// and line ends go wrong in every way.
fn arb_mangled_wire() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        arb_command().prop_map(|c| {
            let mut wire = Vec::new();
            encode_command(&mut wire, c.iter().map(|a| a.as_slice()));
            wire
        }),
        prop::sample::select(vec![
            "*",
            "$",
            "*1\r\n",
            "*2\r\n",
            "$3\r\nabc\r\n",
            "0",
            "00",
            "01",
            "1",
            "3",
            "10",
            "-1",
            "+1",
            "999999999",
            "1000000000",
            "\r\n",
            "\r",
            "\n",
            "x",
            "\rx",
        ])
        .prop_map(|t| t.as_bytes().to_vec()),
    ];
    let edit = (any::<prop::sample::Index>(), prop::sample::select(b"0123456789*$\r\n-+ x".to_vec()));
    (prop::collection::vec(token, 1..8), prop::collection::vec(edit, 0..3)).prop_map(|(tokens, edits)| {
        let mut wire = tokens.concat();
        for (i, b) in edits {
            let at = i.index(wire.len());
            wire[at] = b;
        }
        wire
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]
    // Whole requests take a one-pass path and byte-at-a-time input never does: both must
    // give the same requests and the same error, on valid and damaged input alike.
    #[test]
    fn whole_and_byte_by_byte_agree(wire in arb_mangled_wire(), max_bulk_len in prop::sample::select(vec![3u64, 40, 512 * 1024 * 1024])) {
        let limits = Limits { max_bulk_len, ..Limits::default() };
        prop_assert_eq!(parse_in_steps(&wire, wire.len(), &limits), parse_in_steps(&wire, 1, &limits));
    }
}
