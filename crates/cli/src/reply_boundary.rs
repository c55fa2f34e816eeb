//! Finds where a reply ends while its bytes arrive, without decoding it.
//!
//! `Frame::decode` starts over on every call, so feeding it a large reply (KEYS * on a big
//! keyspace) one socket read at a time would cost quadratic time. This scanner remembers
//! how far it got (position and the elements still owed by each open aggregate), so each
//! byte is looked at once; the frame is decoded once, when it is known to be complete.

/// Progress through one reply at the start of a buffer.
#[derive(Debug, Default)]
pub struct ReplyBoundary {
    pos: usize,
    /// Elements still expected by each open aggregate, innermost last.
    open: Vec<u64>,
}

impl ReplyBoundary {
    /// Scans `buf` (the same reply's bytes as before, possibly more of them). Returns the
    /// length of the reply once it is complete; the scanner is then ready for the next one.
    pub fn advance(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        loop {
            let Some(&kind) = buf.get(self.pos) else { return Ok(None) };
            let Some(eol) = find_crlf(buf, self.pos + 1) else { return Ok(None) };
            let line = &buf[self.pos + 1..eol];
            let after_line = eol + 2;
            let count = || -> Result<i64, String> {
                ferrokv_resp::parse_i64(line)
                    .ok_or_else(|| format!("Protocol error, bad length {:?}", String::from_utf8_lossy(line)))
            };
            match kind {
                b'+' | b'-' | b':' | b',' | b'(' | b'_' | b'#' => self.pos = after_line,
                b'$' | b'=' | b'!' => {
                    let n = count()?;
                    if n < 0 {
                        self.pos = after_line;
                    } else {
                        let end = after_line.saturating_add(n as usize).saturating_add(2);
                        if buf.len() < end {
                            return Ok(None);
                        }
                        self.pos = end;
                    }
                }
                b'*' | b'~' | b'>' | b'%' | b'|' => {
                    let n = count()?;
                    self.pos = after_line;
                    let owed = match kind {
                        b'%' => 2 * n.max(0) as u64,
                        // An attribute map is followed by the reply it annotates.
                        b'|' => 2 * n.max(0) as u64 + 1,
                        _ => n.max(0) as u64,
                    };
                    if owed > 0 {
                        self.open.push(owed);
                        continue;
                    }
                }
                other => {
                    return Err(format!("Protocol error, got {:?} as reply type byte", char::from(other).to_string()))
                }
            }
            // One element is complete: settle the aggregates it closes.
            loop {
                match self.open.last_mut() {
                    None => {
                        let len = self.pos;
                        self.pos = 0;
                        return Ok(Some(len));
                    }
                    Some(owed) => {
                        *owed -= 1;
                        if *owed > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    let mut i = 0;
    while let Some(off) = rest.get(i..)?.iter().position(|&b| b == b'\r') {
        let at = i + off;
        if rest.get(at + 1) == Some(&b'\n') {
            return Some(from + at);
        }
        i = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(input: &[u8]) -> Option<usize> {
        ReplyBoundary::default().advance(input).unwrap()
    }

    #[test]
    fn finds_the_end_of_each_type() {
        assert_eq!(whole(b"+OK\r\nextra"), Some(5));
        assert_eq!(whole(b"$3\r\nabc\r\n:1\r\n"), Some(9));
        assert_eq!(whole(b"$-1\r\n"), Some(5));
        assert_eq!(whole(b"*0\r\n"), Some(4));
        assert_eq!(whole(b"*-1\r\n"), Some(5));
        assert_eq!(whole(b"*2\r\n*1\r\n:1\r\n$1\r\na\r\n+x\r\n"), Some(19));
        assert_eq!(whole(b"%1\r\n+k\r\n+v\r\n"), Some(12));
        assert_eq!(whole(b"|1\r\n+k\r\n+v\r\n:5\r\n"), Some(16));
    }

    #[test]
    fn byte_by_byte_matches_the_decoder() {
        let input = b"*3\r\n$5\r\nhello\r\n%1\r\n+a\r\n~2\r\n:1\r\n,2.5\r\n=7\r\ntxt:abc\r\n";
        let mut scanner = ReplyBoundary::default();
        let mut found = None;
        for cut in 0..=input.len() {
            if let Some(n) = scanner.advance(&input[..cut]).unwrap() {
                found = Some((cut, n));
                break;
            }
        }
        let (cut, n) = found.expect("complete");
        assert_eq!((cut, n), (input.len(), input.len()));
        assert_eq!(ferrokv_resp::Frame::decode(input).unwrap().map(|(_, used)| used), Some(n));
    }

    #[test]
    fn bulk_with_crlf_inside() {
        assert_eq!(whole(b"$4\r\n\r\n\r\n\r\n"), Some(10));
        assert_eq!(whole(b"$4\r\n\r\n\r"), None);
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        let err = ReplyBoundary::default().advance(b"x\r\n").unwrap_err();
        assert_eq!(err, "Protocol error, got \"x\" as reply type byte");
    }
}
