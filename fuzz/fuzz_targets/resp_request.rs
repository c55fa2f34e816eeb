//! The server's request parser on arbitrary bytes, fed whole and in arbitrary pieces: it
//! must never panic, and both feeds must give the same requests, the same error and the
//! same unparsed rest. A whole request in the buffer takes the one-pass path and a request
//! split across reads the general one, so this compares the two. Every request it returns
//! must re-encode to bytes that parse back to the same request.
#![no_main]
use bytes::BytesMut;
use ferrokv_resp::request::INLINE_MAX;
use ferrokv_resp::{encode_command, Limits, ProtocolError, RequestParser};
use libfuzzer_sys::fuzz_target;

struct Fed {
    requests: Vec<Vec<Vec<u8>>>,
    error: Option<ProtocolError>,
    rest: Vec<u8>,
    in_progress: bool,
}

/// Parses what `buf` holds as the server does: again while a call (capped at `max`
/// requests) returns some.
fn drain(
    parser: &mut RequestParser,
    buf: &mut BytesMut,
    limits: &Limits,
    max: usize,
    out: &mut Vec<ferrokv_resp::Argv>,
) -> Result<(), ProtocolError> {
    loop {
        let before = out.len();
        parser.parse(buf, limits, out, max)?;
        if out.len() == before {
            return Ok(());
        }
    }
}

fn feed(body: &[u8], pieces: &[usize], limits: &Limits, max: usize) -> Fed {
    let mut parser = RequestParser::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut error = None;
    let mut at = 0;
    for &n in pieces {
        let end = (at + n).min(body.len());
        buf.extend_from_slice(&body[at..end]);
        at = end;
        if let Err(e) = drain(&mut parser, &mut buf, limits, max, &mut out) {
            error = Some(e);
            break;
        }
    }
    Fed {
        requests: out.iter().map(|a| a.to_vec()).collect(),
        error,
        rest: buf.to_vec(),
        in_progress: parser.in_progress(),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (head, body) = data.split_at(3);
    // head[0]: authenticated, the cap on requests per call, the bulk length limit;
    // head[1..3]: the seed of the piece sizes.
    let authenticated = head[0] & 1 == 0;
    let max = if !authenticated {
        1
    } else {
        match (head[0] >> 1) & 3 {
            0 => 1,
            1 => 2,
            _ => usize::MAX,
        }
    };
    let max_bulk_len = match (head[0] >> 3) & 3 {
        0 => 3,
        1 => 40,
        _ => 1 << 20,
    };
    let limits = Limits { max_bulk_len, max_query_buffer: 1 << 22, authenticated };

    let mut seed = u32::from(u16::from_le_bytes([head[1], head[2]])) | 1;
    let mut pieces = Vec::new();
    let mut total = 0;
    while total < body.len() {
        // xorshift: piece sizes of 1 to 32 bytes, skewed towards small ones.
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = ((seed % 32) as usize + 1) >> (seed >> 30);
        let n = n.max(1);
        pieces.push(n);
        total += n;
    }

    let whole = feed(body, &[body.len()], &limits, max);
    let split = feed(body, &pieces, &limits, max);
    let byte = feed(body, &vec![1; body.len()], &limits, max);
    // The "too big" errors depend on how much had arrived when a line was still open.
    if body.len() <= INLINE_MAX {
        for other in [&split, &byte] {
            assert_eq!(whole.requests, other.requests);
            assert_eq!(whole.error, other.error);
            if whole.error.is_none() {
                assert_eq!(whole.rest, other.rest);
                assert_eq!(whole.in_progress, other.in_progress);
            }
        }
    }

    for argv in &whole.requests {
        let mut wire = Vec::new();
        encode_command(&mut wire, argv.iter().map(|a| a.as_slice()));
        let mut again = RequestParser::new();
        let mut b = BytesMut::from(&wire[..]);
        let mut back = Vec::new();
        again.parse(&mut b, &Limits::default(), &mut back, usize::MAX).expect("re-encoded request parses");
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].to_vec(), *argv);
    }
});
