//! The server's request parser on arbitrary bytes, fed in arbitrary pieces: it must never
//! panic, never consume more than it was given, and every request it returns must
//! re-encode to bytes that parse back to the same request.
#![no_main]
use bytes::BytesMut;
use ferrokv_resp::{encode_command, Limits, RequestParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (split, body) = match data.split_first() {
        Some((s, b)) => (*s as usize % 17 + 1, b),
        None => return,
    };
    let limits = Limits { max_bulk_len: 1 << 20, max_query_buffer: 1 << 22, authenticated: true };
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in body.chunks(split) {
        buf.extend_from_slice(chunk);
        if parser.parse(&mut buf, &limits, &mut out, usize::MAX).is_err() {
            break;
        }
    }
    for argv in &out {
        let mut wire = Vec::new();
        encode_command(&mut wire, argv.iter());
        let mut again = RequestParser::new();
        let mut b = BytesMut::from(&wire[..]);
        let mut back = Vec::new();
        again.parse(&mut b, &Limits::default(), &mut back, usize::MAX).expect("re-encoded request parses");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].to_vec(), argv.to_vec());
    }
});
