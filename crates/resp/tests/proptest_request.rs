//! Property tests for the request parser: encoded commands round-trip whatever the read
//! boundaries, and arbitrary bytes never panic the parser.

use bytes::BytesMut;
use ferrokv_resp::{encode_command, Frame, Limits, RequestParser};
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
