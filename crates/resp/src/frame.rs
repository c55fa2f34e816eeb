//! Client-side decoding of server replies (RESP2 and RESP3), for the CLI, the replication
//! and sentinel links, and tests. Decoding is bounded: nesting depth and aggregate sizes
//! are limited so hostile input cannot exhaust the stack or memory.

use bytes::Bytes;

/// One decoded reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Simple(Bytes),
    Error(Bytes),
    Integer(i64),
    Bulk(Bytes),
    /// RESP2 `$-1`/`*-1` and RESP3 `_`.
    Null,
    Array(Vec<Frame>),
    /// The double as the server spelled it (`1.5`, `inf`).
    Double(Bytes),
    Boolean(bool),
    BigNumber(Bytes),
    Verbatim {
        format: Bytes,
        text: Bytes,
    },
    Map(Vec<(Frame, Frame)>),
    Set(Vec<Frame>),
    Push(Vec<Frame>),
    /// An attribute map followed by the reply it annotates.
    Attribute(Vec<(Frame, Frame)>, Box<Frame>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "protocol error: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

const MAX_DEPTH: usize = 128;
/// Upper bound on elements pre-allocated for an aggregate, whatever its header claims.
const MAX_PREALLOC: usize = 1024;

impl Frame {
    /// Decodes one frame from the start of `buf`. Returns the frame and the number of
    /// bytes it used, or `None` if `buf` holds only part of a frame.
    pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, DecodeError> {
        Frame::decode_nested(buf, MAX_DEPTH)
    }

    /// [`Frame::decode`] with the caller's nesting limit: a client printing what its server
    /// sends (a script may return tables nested hundreds deep, as redis-cli shows) can
    /// allow more than a server decoding what its peers send.
    pub fn decode_nested(buf: &[u8], max_depth: usize) -> Result<Option<(Frame, usize)>, DecodeError> {
        let mut pos = 0;
        match decode_at(buf, &mut pos, 0, max_depth)? {
            Some(f) => Ok(Some((f, pos))),
            None => Ok(None),
        }
    }

    /// The bytes of a simple string, bulk string, verbatim string or error.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Simple(b) | Frame::Bulk(b) | Frame::Error(b) | Frame::Double(b) | Frame::BigNumber(b) => Some(b),
            Frame::Verbatim { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Frame::Error(_))
    }

    /// Re-encodes the frame as RESP bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        fn line(out: &mut Vec<u8>, prefix: u8, body: &[u8]) {
            out.push(prefix);
            out.extend_from_slice(body);
            out.extend_from_slice(b"\r\n");
        }
        fn agg(out: &mut Vec<u8>, prefix: u8, n: usize) {
            line(out, prefix, n.to_string().as_bytes());
        }
        match self {
            Frame::Simple(s) => line(out, b'+', s),
            // A blob error (`!`) may hold line breaks, which would end a `-` line early.
            Frame::Error(s) if s.iter().any(|&b| b == b'\r' || b == b'\n') => {
                agg(out, b'!', s.len());
                out.extend_from_slice(s);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Error(s) => line(out, b'-', s),
            Frame::Integer(n) => line(out, b':', n.to_string().as_bytes()),
            Frame::Bulk(b) => {
                agg(out, b'$', b.len());
                out.extend_from_slice(b);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Null => out.extend_from_slice(b"_\r\n"),
            Frame::Array(v) | Frame::Set(v) | Frame::Push(v) => {
                let p = match self {
                    Frame::Array(_) => b'*',
                    Frame::Set(_) => b'~',
                    _ => b'>',
                };
                agg(out, p, v.len());
                v.iter().for_each(|f| f.encode(out));
            }
            Frame::Double(d) => line(out, b',', d),
            Frame::Boolean(b) => line(out, b'#', if *b { b"t" } else { b"f" }),
            Frame::BigNumber(n) => line(out, b'(', n),
            Frame::Verbatim { format, text } => {
                agg(out, b'=', format.len() + 1 + text.len());
                out.extend_from_slice(format);
                out.push(b':');
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            }
            Frame::Map(kv) | Frame::Attribute(kv, _) => {
                agg(out, if matches!(self, Frame::Map(_)) { b'%' } else { b'|' }, kv.len());
                for (k, v) in kv {
                    k.encode(out);
                    v.encode(out);
                }
                if let Frame::Attribute(_, inner) = self {
                    inner.encode(out);
                }
            }
        }
    }
}

fn read_line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let start = *pos;
    let rel = buf.get(start..)?.windows(2).position(|w| w == b"\r\n")?;
    *pos = start + rel + 2;
    Some(&buf[start..start + rel])
}

fn parse_len(line: &[u8]) -> Result<i64, DecodeError> {
    crate::request::parse_i64(line)
        .ok_or_else(|| DecodeError(format!("bad length {:?}", String::from_utf8_lossy(line))))
}

fn decode_at(buf: &[u8], pos: &mut usize, depth: usize, max_depth: usize) -> Result<Option<Frame>, DecodeError> {
    if depth > max_depth {
        return Err(DecodeError("nesting too deep".into()));
    }
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    let mut p = *pos + 1;
    let Some(line) = read_line(buf, &mut p) else {
        return Ok(None);
    };
    let bytes = |s: &[u8]| Bytes::copy_from_slice(s);
    let frame = match kind {
        b'+' => Frame::Simple(bytes(line)),
        b'-' => Frame::Error(bytes(line)),
        b':' => Frame::Integer(parse_len(line)?),
        b',' => Frame::Double(bytes(line)),
        b'(' => Frame::BigNumber(bytes(line)),
        b'_' => Frame::Null,
        b'#' => match line {
            b"t" => Frame::Boolean(true),
            b"f" => Frame::Boolean(false),
            _ => return Err(DecodeError("bad boolean".into())),
        },
        b'$' | b'=' | b'!' => {
            let n = parse_len(line)?;
            if n < 0 {
                Frame::Null
            } else {
                let n = n as usize;
                if buf.len() < p.saturating_add(n).saturating_add(2) {
                    return Ok(None);
                }
                let body = &buf[p..p + n];
                if &buf[p + n..p + n + 2] != b"\r\n" {
                    return Err(DecodeError("bulk string not terminated by CRLF".into()));
                }
                p += n + 2;
                match kind {
                    b'$' => Frame::Bulk(bytes(body)),
                    b'!' => Frame::Error(bytes(body)),
                    _ => {
                        if n < 4 || body[3] != b':' {
                            return Err(DecodeError("bad verbatim string".into()));
                        }
                        Frame::Verbatim { format: bytes(&body[..3]), text: bytes(&body[4..]) }
                    }
                }
            }
        }
        b'*' | b'~' | b'>' => {
            let n = parse_len(line)?;
            if n < 0 {
                Frame::Null
            } else {
                let mut items = Vec::with_capacity((n as usize).min(MAX_PREALLOC));
                for _ in 0..n {
                    match decode_at(buf, &mut p, depth + 1, max_depth)? {
                        Some(f) => items.push(f),
                        None => return Ok(None),
                    }
                }
                match kind {
                    b'*' => Frame::Array(items),
                    b'~' => Frame::Set(items),
                    _ => Frame::Push(items),
                }
            }
        }
        b'%' | b'|' => {
            let n = parse_len(line)?;
            if n < 0 {
                return Err(DecodeError("negative map length".into()));
            }
            let mut items = Vec::with_capacity((n as usize).min(MAX_PREALLOC));
            for _ in 0..n {
                let Some(k) = decode_at(buf, &mut p, depth + 1, max_depth)? else {
                    return Ok(None);
                };
                let Some(v) = decode_at(buf, &mut p, depth + 1, max_depth)? else {
                    return Ok(None);
                };
                items.push((k, v));
            }
            if kind == b'%' {
                Frame::Map(items)
            } else {
                let Some(inner) = decode_at(buf, &mut p, depth + 1, max_depth)? else {
                    return Ok(None);
                };
                Frame::Attribute(items, Box::new(inner))
            }
        }
        other => return Err(DecodeError(format!("unexpected type byte {:?}", char::from(other)))),
    };
    *pos = p;
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_type() {
        let input = b"*3\r\n+OK\r\n:-5\r\n$3\r\nabc\r\n%1\r\n$1\r\nk\r\n,1.5\r\n_\r\n=7\r\ntxt:abc\r\n";
        let (f, n) = Frame::decode(input).unwrap().unwrap();
        assert_eq!(n, 23);
        assert_eq!(f, Frame::Array(vec![Frame::Simple("OK".into()), Frame::Integer(-5), Frame::Bulk("abc".into())]));
        let (m, n2) = Frame::decode(&input[n..]).unwrap().unwrap();
        assert_eq!(m, Frame::Map(vec![(Frame::Bulk("k".into()), Frame::Double("1.5".into()))]));
        let rest = &input[n + n2..];
        let (null, k) = Frame::decode(rest).unwrap().unwrap();
        assert_eq!(null, Frame::Null);
        let (v, _) = Frame::decode(&rest[k..]).unwrap().unwrap();
        assert_eq!(v, Frame::Verbatim { format: "txt".into(), text: "abc".into() });
    }

    #[test]
    fn partial_frames_need_more() {
        let input = b"*2\r\n$3\r\nabc\r\n:1\r\n";
        for cut in 0..input.len() {
            assert_eq!(Frame::decode(&input[..cut]).unwrap(), None, "cut at {cut}");
        }
        assert!(Frame::decode(input).unwrap().is_some());
    }

    #[test]
    fn encode_round_trips() {
        let input = b"*2\r\n~1\r\n#t\r\n>1\r\n(123\r\n";
        let (f, _) = Frame::decode(input).unwrap().unwrap();
        let mut out = Vec::new();
        f.encode(&mut out);
        assert_eq!(out, input);
    }

    #[test]
    fn blob_error_with_line_breaks_round_trips() {
        // Found by the resp_frame fuzz target (minimised): blob errors holding `\r\n`
        // inside a map were re-encoded as `-` lines, so the bytes after the first line break
        // were read as the next frame ("unexpected type byte '\n'").
        let found = b"%2\r\n!2\r\n*2\r\n!2\r\n*0\r\n!12\r\n%0\r\n\n!12\r\n%0\r\n!2\r\n*2\r\n!!";
        for input in [&found[..], b"*2\r\n!4\r\na\r\nb\r\n:1\r\n", b"!3\r\na\nb\r\n", b"-ERR plain\r\n"] {
            let (f, _) = Frame::decode(input).unwrap().unwrap();
            let mut out = Vec::new();
            f.encode(&mut out);
            let (again, n) = Frame::decode(&out).unwrap().unwrap();
            assert_eq!(n, out.len());
            assert_eq!(again, f);
        }
        let mut out = Vec::new();
        Frame::Error("ERR plain".into()).encode(&mut out);
        assert_eq!(out, b"-ERR plain\r\n");
    }

    #[test]
    fn hostile_depth_is_refused() {
        let input = b"*1\r\n".repeat(1000);
        assert!(Frame::decode(&input).is_err());
        assert!(matches!(Frame::decode_nested(&input, 2000), Ok(None)), "within the limit it waits for the rest");
        let mut deep = b"*1\r\n".repeat(1000);
        deep.extend_from_slice(b":7\r\n");
        assert!(Frame::decode(&deep).is_err());
        let (mut frame, used) = Frame::decode_nested(&deep, 1000).unwrap().unwrap();
        assert_eq!(used, deep.len());
        for _ in 0..1000 {
            let Frame::Array(mut items) = frame else { panic!("not an array") };
            frame = items.pop().unwrap();
        }
        assert_eq!(frame, Frame::Integer(7));
        assert!(Frame::decode_nested(&deep, 999).is_err());
    }
}
