//! Server-side request parsing: RESP multibulk (`*2\r\n$3\r\nGET\r\n$1\r\na\r\n`) and inline
//! commands (`GET a\r\n`), with Redis's limits and its exact protocol error strings.
//!
//! The parser is incremental: a multibulk request that arrives in pieces is not re-scanned
//! from the start on every read, so a 500 MB argument or a million-argument request costs
//! linear time. Complete requests come out as [`Argv`]s that share the read buffer
//! (zero-copy).

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

pub use crate::num::parse_i64;

/// Redis refuses inline requests and length lines longer than this.
pub const INLINE_MAX: usize = 64 * 1024;
/// Above this size an argument is read into a buffer of its own exact size.
pub const BIG_ARG: usize = 32 * 1024;

/// Limits the server applies while parsing one client's requests.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `proto-max-bulk-len`.
    pub max_bulk_len: u64,
    /// `client-query-buffer-limit`: an incomplete request larger than this closes the client.
    pub max_query_buffer: usize,
    /// Before AUTH, Redis allows only tiny requests (10 arguments of 16 KiB).
    pub authenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 * 1024 * 1024, max_query_buffer: 1024 * 1024 * 1024, authenticated: true }
    }
}

/// A request that cannot be parsed. The connection is closed after the reply is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    /// Reply this error line (without the leading `-`) and close.
    Reply(String),
    /// The query buffer outgrew `client-query-buffer-limit`: close without a reply.
    QueryBufferLimit,
}

impl ProtocolError {
    fn reply(s: &str) -> Self {
        ProtocolError::Reply(format!("ERR Protocol error: {s}"))
    }
}

/// The arguments of one request. Arguments are slices of a shared buffer.
#[derive(Clone, Debug, Default)]
pub struct Argv {
    buf: Bytes,
    spans: SmallVec<[(usize, usize); 4]>,
}

impl Argv {
    /// Builds an argv by copying `args` (used by tests and internally generated commands).
    pub fn from_slices<A: AsRef<[u8]>>(args: &[A]) -> Argv {
        let mut buf = Vec::with_capacity(args.iter().map(|a| a.as_ref().len()).sum());
        let mut spans = SmallVec::new();
        for a in args {
            let a = a.as_ref();
            spans.push((buf.len(), buf.len() + a.len()));
            buf.extend_from_slice(a);
        }
        Argv { buf: Bytes::from(buf), spans }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Argument `i`. Panics when out of range, like slice indexing; command handlers
    /// only index positions that the arity check guarantees.
    pub fn get(&self, i: usize) -> &[u8] {
        let (s, e) = self.spans[i];
        &self.buf[s..e]
    }

    /// Argument `i`, or None past the last one.
    #[inline(always)]
    pub fn try_get(&self, i: usize) -> Option<&[u8]> {
        let &(s, e) = self.spans.get(i)?;
        self.buf.get(s..e)
    }

    /// Argument `i` as a refcounted slice of the request buffer.
    pub fn bytes(&self, i: usize) -> Bytes {
        let (s, e) = self.spans[i];
        self.buf.slice(s..e)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        self.spans.iter().map(move |&(s, e)| &self.buf[s..e])
    }

    /// Total bytes of all arguments (Redis's `argv_len_sum`).
    pub fn byte_len(&self) -> usize {
        self.spans.iter().map(|(s, e)| e - s).sum()
    }

    /// Owned copies of the arguments.
    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(|a| a.to_vec()).collect()
    }
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Idle,
    /// Inside a multibulk request: `pos` is how far into the buffer we have parsed,
    /// `remaining` how many bulk arguments are still to come, `bulk` the length of the
    /// argument whose `$len` line has been read.
    Multibulk { pos: usize, remaining: usize, bulk: Option<usize>, spans: SmallVec<[(usize, usize); 4]> },
}

/// The longest list of located requests a parser keeps between reads.
const FOUND_KEPT: usize = 16;

/// A request located in the buffer, before the buffer is split.
#[derive(Debug)]
enum Found {
    Spans(SmallVec<[(usize, usize); 4]>),
    Inline(Vec<Vec<u8>>),
}

/// Where each argument of a request lies in the buffer.
type Spans = SmallVec<[(usize, usize); 4]>;

/// Incremental request parser for one connection.
#[derive(Debug, Default)]
pub struct RequestParser {
    state: State,
    /// Scratch list of the requests one `parse` locates, kept for its capacity: a new
    /// one allocated on every read was 700 of the 5,600 instructions of a GET at -P 1.
    found: Vec<Found>,
}

fn find_cr(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.iter().position(|&b| b == b'\r').map(|p| p + from)
}

impl RequestParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// True while a request has been partly received.
    pub fn in_progress(&self) -> bool {
        !matches!(self.state, State::Idle)
    }

    /// How many more bytes the current multibulk argument needs, so the caller can size
    /// its next read (big arguments arrive into a buffer of exactly their size).
    pub fn wanted(&self, buffered: usize) -> Option<usize> {
        match &self.state {
            State::Multibulk { pos, bulk: Some(n), .. } => (pos + n + 2).checked_sub(buffered),
            _ => None,
        }
    }

    /// Parses as many complete requests as `buf` holds (at most `max`), appends them to
    /// `out` and removes their bytes from `buf`. Empty requests (`*0`, `*-1`, blank inline
    /// lines) are consumed silently, as Redis does.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        out: &mut impl Extend<Argv>,
        max: usize,
    ) -> Result<(), ProtocolError> {
        // One whole request and nothing more (a client waiting for each reply): it goes
        // straight out, without the list below.
        if max > 0 && limits.authenticated && matches!(self.state, State::Idle) {
            if let Some((end, spans)) = whole_multibulk(buf, 0, limits.max_bulk_len) {
                if end == buf.len() {
                    out.extend(std::iter::once(Argv { buf: buf.split().freeze(), spans }));
                    return Ok(());
                }
            }
        }
        // Requests are located first and the buffer is split once, so a pipeline of many
        // small commands costs one split.
        let mut found = std::mem::take(&mut self.found);
        found.clear();
        let mut start = 0usize;
        let mut err = None;
        while found.len() < max {
            if limits.authenticated && matches!(self.state, State::Idle) {
                if let Some((end, spans)) = whole_multibulk(buf, start, limits.max_bulk_len) {
                    found.push(Found::Spans(spans));
                    start = end;
                    continue;
                }
            }
            match self.parse_one(&buf[start..], limits) {
                Ok(Step::Incomplete) => break,
                Ok(Step::Multibulk(len, mut spans)) => {
                    for (s, e) in spans.iter_mut() {
                        *s += start;
                        *e += start;
                    }
                    found.push(Found::Spans(spans));
                    start += len;
                }
                Ok(Step::Inline(len, args)) => {
                    if !args.is_empty() {
                        found.push(Found::Inline(args));
                    }
                    start += len;
                }
                Ok(Step::Empty(len)) => start += len,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        if start > 0 {
            let chunk = buf.split_to(start).freeze();
            out.extend(found.drain(..).map(|f| match f {
                Found::Spans(spans) => Argv { buf: chunk.clone(), spans },
                Found::Inline(args) => Argv::from_slices(&args),
            }));
        }
        // A deep pipeline's list is not kept: idle connections stay small, and its
        // allocation is shared by the many requests it held.
        if found.capacity() <= FOUND_KEPT {
            self.found = found;
        }
        if let Some(e) = err {
            return Err(e);
        }
        if self.in_progress() || !buf.is_empty() {
            if buf.len() > limits.max_query_buffer {
                return Err(ProtocolError::QueryBufferLimit);
            }
            // Make room for a big argument in one allocation so it arrives contiguous.
            if let Some(n) = self.wanted(buf.len()) {
                if n >= BIG_ARG {
                    buf.reserve(n);
                }
            }
        }
        Ok(())
    }

    fn parse_one(&mut self, buf: &[u8], limits: &Limits) -> Result<Step, ProtocolError> {
        if let State::Idle = self.state {
            let Some(&first) = buf.first() else {
                return Ok(Step::Incomplete);
            };
            if first != b'*' {
                return parse_inline(buf);
            }
            let Some(cr) = find_cr(buf, 0) else {
                if buf.len() > INLINE_MAX {
                    return Err(ProtocolError::reply("too big mbulk count string"));
                }
                return Ok(Step::Incomplete);
            };
            if cr + 1 >= buf.len() {
                return Ok(Step::Incomplete);
            }
            let n = match parse_i64(&buf[1..cr]) {
                Some(n) if n <= i32::MAX as i64 => n,
                _ => return Err(ProtocolError::reply("invalid multibulk length")),
            };
            if n > 10 && !limits.authenticated {
                return Err(ProtocolError::reply("unauthenticated multibulk length"));
            }
            if n <= 0 {
                return Ok(Step::Empty(cr + 2));
            }
            self.state = State::Multibulk {
                pos: cr + 2,
                remaining: n as usize,
                bulk: None,
                spans: SmallVec::with_capacity((n as usize).min(1024)),
            };
        }
        let State::Multibulk { pos, remaining, bulk, spans } = &mut self.state else { unreachable!("state set above") };
        while *remaining > 0 {
            let len = match *bulk {
                Some(len) => len,
                None => {
                    let Some(cr) = find_cr(buf, *pos) else {
                        if buf.len() - *pos > INLINE_MAX {
                            return Err(ProtocolError::reply("too big bulk count string"));
                        }
                        return Ok(Step::Incomplete);
                    };
                    if cr + 1 >= buf.len() {
                        return Ok(Step::Incomplete);
                    }
                    if buf[*pos] != b'$' {
                        return Err(ProtocolError::Reply(format!(
                            "ERR Protocol error: expected '$', got '{}'",
                            char::from(buf[*pos])
                        )));
                    }
                    let len = match parse_i64(&buf[*pos + 1..cr]) {
                        Some(n) if n >= 0 && (n as u64) <= limits.max_bulk_len => n as usize,
                        _ => return Err(ProtocolError::reply("invalid bulk length")),
                    };
                    if len > 16384 && !limits.authenticated {
                        return Err(ProtocolError::reply("unauthenticated bulk length"));
                    }
                    *pos = cr + 2;
                    *bulk = Some(len);
                    len
                }
            };
            // Like Redis, the two bytes after the argument are skipped unchecked.
            if buf.len() < *pos + len + 2 {
                return Ok(Step::Incomplete);
            }
            spans.push((*pos, *pos + len));
            *pos += len + 2;
            *bulk = None;
            *remaining -= 1;
        }
        let total = *pos;
        let spans = std::mem::take(spans);
        self.state = State::Idle;
        Ok(Step::Multibulk(total, spans))
    }
}

/// A whole multibulk request at `buf[start..]` with its argument spans, scanned in one
/// pass: the common case of a complete request whose lengths are plain decimals. None for
/// anything else (incomplete, an unusual or invalid length, a length over the limit), which
/// the general path then parses, so the two never disagree. Only for authenticated clients
/// (the others have stricter limits).
#[inline]
fn whole_multibulk(buf: &[u8], start: usize, max_bulk_len: u64) -> Option<(usize, Spans)> {
    if buf.get(start) != Some(&b'*') {
        return None;
    }
    let (n, mut pos) = plain_len(buf, start + 1)?;
    // Each argument takes at least 6 bytes (`$0\r\n\r\n`): a request that cannot be
    // complete allocates nothing here.
    if n == 0 || n > (buf.len() - pos) / 6 {
        return None;
    }
    // Up to four arguments (most requests) are collected in an array and moved into the
    // inline SmallVec once: pushing checked its capacity and inline state each time.
    if n <= 4 {
        let mut arr = [(0usize, 0usize); 4];
        for span in &mut arr[..n] {
            *span = bulk_at(buf, pos, max_bulk_len)?;
            pos = span.1 + 2;
        }
        return Some((pos, SmallVec::from_buf_and_len(arr, n)));
    }
    let mut spans = SmallVec::with_capacity(n);
    for _ in 0..n {
        let span = bulk_at(buf, pos, max_bulk_len)?;
        spans.push(span);
        pos = span.1 + 2;
    }
    Some((pos, spans))
}

/// Where the data of the bulk argument whose `$len` line starts at `buf[pos]` lies, when
/// it is all there; the two bytes after it are skipped unchecked by the caller, as by the
/// general path.
#[inline(always)]
fn bulk_at(buf: &[u8], pos: usize, max_bulk_len: u64) -> Option<(usize, usize)> {
    if *buf.get(pos)? != b'$' {
        return None;
    }
    let (len, at) = plain_len(buf, pos + 1)?;
    if len as u64 > max_bulk_len {
        return None;
    }
    let end = at + len;
    if buf.len() < end + 2 {
        return None;
    }
    Some((at, end))
}

/// A length of 1 to 9 decimal digits at `buf[at..]` (no sign, no leading zero: read the
/// same by `parse_i64`) ending at a `\r` that has a byte after it, which is skipped
/// unchecked as the general path does. Returns the value and where the next line starts.
#[inline(always)]
fn plain_len(buf: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = *buf.get(at)?;
    if !first.is_ascii_digit() {
        return None;
    }
    let mut v = usize::from(first - b'0');
    let mut i = at + 1;
    loop {
        let b = *buf.get(i)?;
        if b.is_ascii_digit() {
            v = v * 10 + usize::from(b - b'0');
            i += 1;
            if i - at > 9 {
                return None;
            }
        } else if b == b'\r' {
            break;
        } else {
            return None;
        }
    }
    if first == b'0' && i - at > 1 {
        return None;
    }
    if i + 1 >= buf.len() {
        return None;
    }
    Some((v, i + 2))
}

enum Step {
    Incomplete,
    Empty(usize),
    Multibulk(usize, SmallVec<[(usize, usize); 4]>),
    Inline(usize, Vec<Vec<u8>>),
}

fn parse_inline(buf: &[u8]) -> Result<Step, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::reply("too big inline request"));
        }
        return Ok(Step::Incomplete);
    };
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    let args =
        crate::args::split_args(&buf[..line_end]).map_err(|_| ProtocolError::reply("unbalanced quotes in request"))?;
    Ok(Step::Inline(nl + 1, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> (Vec<Vec<Vec<u8>>>, Result<(), ProtocolError>, usize) {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        let r = p.parse(&mut buf, &Limits::default(), &mut out, usize::MAX);
        (out.iter().map(|a| a.to_vec()).collect(), r, buf.len())
    }

    #[test]
    fn multibulk_and_inline_mix() {
        let (cmds, r, left) = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n*1\r\n$4\r\nPING\r\n");
        assert!(r.is_ok());
        assert_eq!(left, 0);
        assert_eq!(cmds, vec![vec![b"GET".to_vec(), b"a".to_vec()], vec![b"PING".to_vec()], vec![b"PING".to_vec()]]);
    }

    #[test]
    fn byte_by_byte_is_the_same_as_all_at_once() {
        let input = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\nset a 'b c'\n";
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            p.parse(&mut buf, &Limits::default(), &mut out, usize::MAX).unwrap();
        }
        let got: Vec<_> = out.iter().map(|a| a.to_vec()).collect();
        assert_eq!(got, parse_all(input).0);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn exact_error_strings() {
        let cases: &[(&[u8], &str)] = &[
            (b"*abc\r\n", "ERR Protocol error: invalid multibulk length"),
            (b"*1\r\nfoo\r\n", "ERR Protocol error: expected '$', got 'f'"),
            (b"*1\r\n$-1\r\n", "ERR Protocol error: invalid bulk length"),
            (b"*1\r\n$600000000\r\n", "ERR Protocol error: invalid bulk length"),
            (b"set \"a\r\n", "ERR Protocol error: unbalanced quotes in request"),
        ];
        for (input, want) in cases {
            let (_, r, _) = parse_all(input);
            assert_eq!(r, Err(ProtocolError::Reply(want.to_string())), "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn negative_and_zero_counts_are_ignored() {
        let (cmds, r, left) = parse_all(b"*-5\r\n*0\r\n\r\nPING\r\n");
        assert!(r.is_ok());
        assert_eq!(left, 0);
        assert_eq!(cmds, vec![vec![b"PING".to_vec()]]);
    }

    #[test]
    fn unauthenticated_limits() {
        let mut p = RequestParser::new();
        let limits = Limits { authenticated: false, ..Limits::default() };
        let mut out = Vec::new();
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(
            p.parse(&mut buf, &limits, &mut out, 10),
            Err(ProtocolError::Reply("ERR Protocol error: unauthenticated multibulk length".into()))
        );
    }

    #[test]
    fn long_lines_are_refused() {
        let (_, r, _) = parse_all(&vec![b'a'; INLINE_MAX + 1]);
        assert_eq!(r, Err(ProtocolError::Reply("ERR Protocol error: too big inline request".into())));
        let mut big = b"*".to_vec();
        big.extend(vec![b'1'; INLINE_MAX + 1]);
        let (_, r, _) = parse_all(&big);
        assert_eq!(r, Err(ProtocolError::Reply("ERR Protocol error: too big mbulk count string".into())));
    }
}
