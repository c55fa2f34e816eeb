//! Scanning an AOF command stream the way redis-check-aof reports on it.
//!
//! What is valid is decided by the server's own parser ([`next_record`]), so the checker
//! and the loader never disagree. What the report says follows redis-check-aof: the
//! offset up to which the file is good (`ok_up_to`: the start of the first bad record, or
//! of the MULTI of an unfinished transaction, since its commands never ran), the line
//! count (1 + every `\r\n` consumed, annotations not counted, carried across the files of
//! a multi-part AOF as Redis does), and an error in its `0x<offset>: <what>` form, where
//! the offset is that of the read that failed.
//!
//! Memory: one record at a time (plus one read chunk), whatever lengths the file claims.

use ferrokv_persist::aof::{next_record, Record};
use std::io::{self, Read};

const CHUNK: usize = 1 << 20;
/// redis-check-aof reads length lines with a 128-byte `fgets`.
const HEADER_LINE: usize = 127;

/// The outcome of scanning one file's command stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Everything before this offset is whole records (and closed transactions).
    pub ok_up_to: u64,
    /// The failed read's offset and what went wrong, in redis-check-aof's words.
    pub error: Option<(u64, String)>,
    /// A record does not start with `*` (or `#`): redis-check-aof's "format error".
    pub format_error: bool,
    /// `--truncate-to-timestamp`: the offset of the first `#TS:` annotation past it.
    pub timestamp_cut: Option<u64>,
    /// A `#TS:` annotation that is not a number (only looked at with a timestamp).
    pub invalid_timestamp: bool,
    /// Records read completely (commands and annotations).
    pub records: u64,
}

impl Scan {
    /// redis-check-aof's error line: `0x` and the offset in 16 columns of hex.
    pub fn error_line(&self) -> Option<String> {
        self.error.as_ref().map(|(at, what)| format!("0x{at:16x}: {what}"))
    }
}

/// A failure explained from the bytes of the record that failed.
struct Explained {
    /// Offset of the failed read, relative to the record.
    at: usize,
    /// `\r\n`s consumed before the failure.
    lines: u64,
    what: Option<String>,
}

/// Reads a length line (`*N` or `$N`) at `i` as redis-check-aof does: `Err` explains the
/// failure (`what: None` = the data ended exactly here).
fn header(rec: &[u8], i: usize, prefix: u8) -> Result<(i64, usize), Option<String>> {
    let rest = rec.get(i..).unwrap_or_default();
    if rest.is_empty() {
        return Err(None);
    }
    let line_end =
        rest.iter().take(HEADER_LINE).position(|&b| b == b'\n').map_or(rest.len().min(HEADER_LINE), |n| n + 1);
    let line = &rest[..line_end];
    if line[0] != prefix {
        return Err(Some(format!("Expected prefix '{}', got: '{}'", prefix as char, line[0] as char)));
    }
    let mut j = 1;
    let neg = matches!(line.get(j), Some(b'-'));
    if matches!(line.get(j), Some(b'-' | b'+')) {
        j += 1;
    }
    let mut n: i64 = 0;
    while let Some(d) = line.get(j).filter(|d| d.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        j += 1;
    }
    let at = |k: usize| line.get(k).copied().unwrap_or(0);
    if at(j) != b'\r' || at(j + 1) != b'\n' {
        return Err(Some(format!("Expected \\r\\n, got: {:02x}{:02x}", at(j), at(j + 1))));
    }
    Ok((if neg { -n } else { n }, i + j + 2))
}

/// Walks a record that the parser refused (or that the file cut short) to find the read
/// that fails and say why. `fallback` is the parser's reason, used when the walk finds
/// nothing (the parser is stricter than redis-check-aof in places, e.g. leading zeros).
fn explain(rec: &[u8], fallback: Option<&'static str>) -> Explained {
    let fail = |at, lines, what: Option<String>| Explained { at, lines, what };
    let (argc, mut i) = match header(rec, 0, b'*') {
        Ok(v) => v,
        Err(what) => return fail(0, 0, what),
    };
    let mut lines = 1;
    if argc < 1 {
        return fail(0, lines, Some(format!("Expected at least one argument, got {argc}")));
    }
    for _ in 0..argc {
        let (len, data) = match header(rec, i, b'$') {
            Ok(v) => v,
            Err(what) => return fail(i, lines, what),
        };
        lines += 1;
        if len < 0 {
            return fail(
                i,
                lines,
                Some(format!("Expected to read string of {len} bytes, which is not in the suitable range")),
            );
        }
        let need = (len as u64).saturating_add(2);
        let have = (rec.len() - data) as u64;
        if have < need {
            return fail(data, lines, Some(format!("Expected to read {need} bytes, got {have} bytes")));
        }
        let end = data + len as usize;
        if &rec[end..end + 2] != b"\r\n" {
            return fail(data, lines, Some(format!("Expected \\r\\n, got: {:02x}{:02x}", rec[end], rec[end + 1])));
        }
        lines += 1;
        i = end + 2;
    }
    fail(0, lines, fallback.map(str::to_string))
}

/// Parses `#TS:<unix time>\r\n` as redis-check-aof does (`strtol`, then `\r`).
fn annotation_timestamp(line: &[u8]) -> Option<Result<i64, ()>> {
    let rest = line.strip_prefix(b"#TS:")?;
    let digits_end = rest.iter().position(|b| !b.is_ascii_digit() && *b != b'-').unwrap_or(rest.len());
    if rest.get(digits_end) != Some(&b'\r') {
        return Some(Err(()));
    }
    Some(std::str::from_utf8(&rest[..digits_end]).ok().and_then(|s| s.parse().ok()).ok_or(()))
}

/// Appends up to one chunk of input to `buf`; returns how many bytes came (0 = the end).
/// The buffer grows with the data, not by a chunk's worth of zeroes per read.
fn read_chunk(input: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<usize> {
    input.take(CHUNK as u64).read_to_end(buf)
}

/// Scans commands from `input`, whose first byte is at file offset `start`. `line` is
/// redis-check-aof's running line counter (shared by the files of one check).
/// `to_timestamp`: stop at the first `#TS:` annotation later than it.
/// `path` names the file in the MULTI/EXEC messages, as Redis does.
pub fn scan(
    mut input: impl Read,
    path: &str,
    start: u64,
    line: &mut u64,
    to_timestamp: Option<i64>,
) -> io::Result<Scan> {
    let mut s = Scan { ok_up_to: start, ..Scan::default() };
    let mut buf: Vec<u8> = Vec::new();
    // File offset of buf[0], and the first unparsed byte.
    let mut base = start;
    let mut at = 0usize;
    let mut eof = false;
    let mut multi = 0u32;
    // Where the last read began (redis-check-aof reports an open MULTI there).
    let mut last_read = start;
    loop {
        let rec_off = base + at as u64;
        if multi == 0 {
            s.ok_up_to = rec_off;
        }
        let rec = &buf[at..];
        let mut need_more = false;
        match next_record(rec) {
            Record::Annotation { len } => {
                if let Some(to) = to_timestamp {
                    match annotation_timestamp(&rec[..len]) {
                        Some(Err(())) => {
                            s.invalid_timestamp = true;
                            return Ok(s);
                        }
                        Some(Ok(ts)) if ts > to => {
                            s.timestamp_cut = Some(rec_off);
                            return Ok(s);
                        }
                        _ => {}
                    }
                }
                last_read = rec_off;
                at += len;
                s.records += 1;
            }
            Record::Command { args, len } => {
                let offset_of = |a: &[u8]| rec_off + (a.as_ptr() as usize - rec.as_ptr() as usize) as u64;
                let name = args[0];
                if name.eq_ignore_ascii_case(b"multi") {
                    if multi > 0 {
                        *line += 3;
                        s.error = Some((offset_of(name), format!("Unexpected MULTI in AOF {path}")));
                        return Ok(s);
                    }
                    multi += 1;
                } else if name.eq_ignore_ascii_case(b"exec") {
                    if multi != 1 {
                        *line += 3;
                        s.error = Some((offset_of(name), format!("Unexpected EXEC in AOF {path}")));
                        return Ok(s);
                    }
                    multi = 0;
                }
                *line += 1 + 2 * args.len() as u64;
                last_read = args.last().map_or(rec_off, |a| offset_of(a));
                at += len;
                s.records += 1;
            }
            Record::Incomplete if !eof => need_more = true,
            Record::Incomplete => {
                let e = explain(rec, None);
                *line += e.lines;
                match e.what {
                    Some(what) => s.error = Some((rec_off + e.at as u64, what)),
                    None if multi > 0 => {
                        s.error = Some((last_read, "Reached EOF before reading EXEC for MULTI".into()));
                    }
                    None => {}
                }
                return Ok(s);
            }
            Record::Bad { what } => {
                if rec[0] != b'*' {
                    s.format_error = true;
                    return Ok(s);
                }
                let e = explain(rec, Some(what));
                *line += e.lines;
                s.error = Some((rec_off + e.at as u64, e.what.unwrap_or_else(|| what.to_string())));
                return Ok(s);
            }
        }
        if need_more {
            buf.drain(..at);
            base += at as u64;
            at = 0;
            eof = read_chunk(&mut input, &mut buf)? == 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(bytes: &[u8]) -> (Scan, u64) {
        let mut line = 1;
        let s = scan(bytes, "f", 0, &mut line, None).unwrap();
        (s, line)
    }

    #[test]
    fn a_clean_stream_is_good_to_its_end_with_redis_line_count() {
        let aof = b"#TS:1795711054\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\nb\r\n$1\r\n2\r\n";
        let (s, line) = run(aof);
        assert_eq!((s.ok_up_to, s.error, line, s.records), (aof.len() as u64, None, 13, 3));
    }

    #[test]
    fn a_cut_argument_is_reported_like_redis() {
        // As redis-check-aof says for this file: 0x5a, 7 bytes wanted, 3 there, line 19.
        let mut aof =
            b"#TS:1795711054\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\nb\r\n$1\r\n2\r\n".to_vec();
        aof.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\nhel");
        let (s, line) = run(&aof);
        assert_eq!(s.ok_up_to, 66);
        assert_eq!(s.error_line().unwrap(), "0x              5a: Expected to read 7 bytes, got 3 bytes");
        assert_eq!(line, 19);
    }

    #[test]
    fn damage_is_named() {
        let cases: &[(&[u8], u64, &str)] = &[
            (b"*1\r\n$4\r\nPING\r\n*1\r\n#4\r\nPING\r\n", 18, "Expected prefix '$', got: '#'"),
            (b"*1\r\n$4\r\nPINGxx", 8, "Expected \\r\\n, got: 7878"),
            (b"*1\r\n$-4\r\n", 4, "Expected to read string of -4 bytes, which is not in the suitable range"),
            (b"*0\r\n", 0, "Expected at least one argument, got 0"),
            (b"*1\r\n$4\r\nEXEC\r\n", 8, "Unexpected EXEC in AOF f"),
            (b"*1\r\n$5\r\nMULTI\r\n*1\r\n$5\r\nMULTI\r\n", 23, "Unexpected MULTI in AOF f"),
        ];
        for (bytes, at, what) in cases {
            let (s, _) = run(bytes);
            assert_eq!(s.error, Some((*at, what.to_string())), "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn an_open_transaction_is_not_good() {
        let aof = b"*1\r\n$4\r\nPING\r\n*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\n";
        let (s, _) = run(aof);
        assert_eq!(s.ok_up_to, 14, "the MULTI's start");
        assert_eq!(s.error.unwrap().1, "Reached EOF before reading EXEC for MULTI");
    }

    #[test]
    fn a_foreign_byte_is_a_format_error() {
        let (s, _) = run(b"*1\r\n$4\r\nPING\r\nXYZ");
        assert!(s.format_error);
        assert_eq!(s.ok_up_to, 14);
    }

    #[test]
    fn timestamps_stop_the_scan() {
        let aof = b"#TS:100\r\n*1\r\n$4\r\nPING\r\n#TS:200\r\n*1\r\n$4\r\nPING\r\n";
        let mut line = 1;
        let s = scan(&aof[..], "f", 0, &mut line, Some(150)).unwrap();
        assert_eq!(s.timestamp_cut, Some(23));
        let s = scan(&aof[..], "f", 0, &mut line, Some(300)).unwrap();
        assert_eq!(s.timestamp_cut, None);
        let s = scan(&b"#TS:x1\r\n"[..], "f", 0, &mut line, Some(1)).unwrap();
        assert!(s.invalid_timestamp);
    }
}
