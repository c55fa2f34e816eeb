//! The AOF command stream: parsing one record at a time from a byte buffer.
//!
//! The parser never allocates more than the record's argument list and never trusts a
//! length beyond the bytes it holds, so a hostile file costs at most its own size. The
//! distinction that matters for loading is between a stream that merely *ends early*
//! ([`Record::Incomplete`]: a write cut short by a crash, repairable by truncation) and one
//! that is *wrong* ([`Record::Bad`]: never loaded silently).

/// The outcome of parsing at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// A command and the bytes it occupies.
    Command { args: Vec<&'a [u8]>, len: usize },
    /// An annotation line (`#TS:…`), skipped by loaders.
    Annotation { len: usize },
    /// The buffer ends inside a record: read more, or, at the end of the file, the tail
    /// is truncated.
    Incomplete,
    /// Not the AOF format at this position; `what` says what was expected.
    Bad { what: &'static str },
}

/// Reads `<prefix><integer>\r\n` at `pos`. `Err(None)` = incomplete.
fn header(buf: &[u8], pos: usize, prefix: u8) -> Result<(i64, usize), Option<&'static str>> {
    let rest = buf.get(pos..).ok_or(None)?;
    match rest.first() {
        None => return Err(None),
        Some(&b) if b != prefix => {
            return Err(Some(if prefix == b'*' {
                "Expected '*' starting a command"
            } else {
                "Expected '$' starting an argument"
            }));
        }
        _ => {}
    }
    // Redis reads headers with a 1 KiB line buffer.
    let window = &rest[..rest.len().min(1024)];
    let Some(nl) = window.iter().position(|&b| b == b'\n') else {
        return if rest.len() >= 1024 { Err(Some("Header line too long")) } else { Err(None) };
    };
    if nl < 2 || rest[nl - 1] != b'\r' {
        return Err(Some("Expected \\r\\n after a length"));
    }
    let digits = &rest[1..nl - 1];
    let n = ferrokv_resp::parse_i64(digits).ok_or(Some("Invalid length"))?;
    Ok((n, pos + nl + 1))
}

/// Parses the record at the start of `buf`.
pub fn next_record(buf: &[u8]) -> Record<'_> {
    match buf.first() {
        None => return Record::Incomplete,
        Some(b'#') => {
            return match buf.iter().position(|&b| b == b'\n') {
                Some(nl) => Record::Annotation { len: nl + 1 },
                None => Record::Incomplete,
            }
        }
        _ => {}
    }
    let (argc, mut pos) = match header(buf, 0, b'*') {
        Ok(v) => v,
        Err(None) => return Record::Incomplete,
        Err(Some(what)) => return Record::Bad { what },
    };
    if argc < 1 {
        return Record::Bad { what: "A command needs at least one argument" };
    }
    // Every argument takes at least 5 bytes ("$0\r\n\r\n" is 6), which bounds the
    // argument vector by the buffer, not by a number the file claims.
    let mut args = Vec::with_capacity((argc as usize).min(buf.len() / 5 + 1));
    for _ in 0..argc {
        let (len, start) = match header(buf, pos, b'$') {
            Ok(v) => v,
            Err(None) => return Record::Incomplete,
            Err(Some(what)) => return Record::Bad { what },
        };
        if len < 0 {
            return Record::Bad { what: "Invalid argument length" };
        }
        let end = match start.checked_add(len as usize) {
            Some(e) if e <= buf.len() => e,
            _ => return Record::Incomplete,
        };
        match buf.get(end..end + 2) {
            Some(b"\r\n") => {}
            Some(_) => return Record::Bad { what: "Expected \\r\\n after an argument" },
            None if buf.len() > end && buf[end] != b'\r' => {
                return Record::Bad { what: "Expected \\r\\n after an argument" };
            }
            None => return Record::Incomplete,
        }
        args.push(&buf[start..end]);
        pos = end + 2;
    }
    Record::Command { args, len: pos }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv_resp::encode_command;
    use proptest::prelude::*;

    #[test]
    fn commands_and_annotations() {
        let buf = b"#TS:1700000000\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$0\r\n\r\n";
        let Record::Annotation { len } = next_record(buf) else { panic!() };
        let rest = &buf[len..];
        let Record::Command { args, len } = next_record(rest) else { panic!() };
        assert_eq!(args, vec![&b"SELECT"[..], b"0"]);
        let rest = &rest[len..];
        let Record::Command { args, len } = next_record(rest) else { panic!() };
        assert_eq!(args, vec![&b"SET"[..], b"a", b""]);
        assert_eq!(len, rest.len());
    }

    #[test]
    fn every_proper_prefix_is_incomplete() {
        let buf = b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\nhello\r\n";
        for cut in 0..buf.len() {
            assert_eq!(next_record(&buf[..cut]), Record::Incomplete, "cut at {cut}");
        }
        assert!(matches!(next_record(buf), Record::Command { .. }));
    }

    #[test]
    fn damage_is_bad_not_incomplete() {
        for (buf, what) in [
            (&b"SET a b\r\n"[..], "Expected '*' starting a command"),
            (b"*0\r\n", "A command needs at least one argument"),
            (b"*x\r\n", "Invalid length"),
            (b"*1\r\n#3\r\nfoo\r\n", "Expected '$' starting an argument"),
            (b"*1\r\n$3\r\nfooX\n", "Expected \\r\\n after an argument"),
            (b"*1\r\n$3\r\nfoo\rX", "Expected \\r\\n after an argument"),
            (b"*1\n", "Expected \\r\\n after a length"),
            (b"*1\r\n$-1\r\n", "Invalid argument length"),
        ] {
            assert_eq!(next_record(buf), Record::Bad { what }, "{:?}", String::from_utf8_lossy(buf));
        }
    }

    #[test]
    fn claimed_sizes_do_not_allocate() {
        assert_eq!(next_record(b"*2147483647\r\n$1\r\na\r\n"), Record::Incomplete);
        assert_eq!(next_record(b"*1\r\n$9223372036854775807\r\n"), Record::Incomplete);
    }

    proptest! {
        #[test]
        fn encoded_commands_round_trip(cmds in prop::collection::vec(prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 1..5), 1..10)) {
            let mut buf = Vec::new();
            for c in &cmds {
                encode_command(&mut buf, c.iter().map(Vec::as_slice));
            }
            let mut rest = &buf[..];
            for c in &cmds {
                let Record::Command { args, len } = next_record(rest) else { panic!("expected a command") };
                prop_assert_eq!(args, c.iter().map(Vec::as_slice).collect::<Vec<_>>());
                rest = &rest[len..];
            }
            prop_assert!(rest.is_empty());
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = next_record(&buf);
        }
    }
}
