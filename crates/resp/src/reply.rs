//! Reply encoding for one client in its protocol version. Command code writes replies with
//! RESP3 semantics (maps, sets, doubles, booleans, push messages); a RESP2 client gets the
//! RESP2 downgrade Redis uses (flat arrays, bulk strings, integers).

use crate::num::fmt_double;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// An output buffer that knows the client's protocol version.
///
/// It can also enforce a cap on pending output (a hard `client-output-buffer-limit`). The
/// cap counts this buffer plus the bytes the connection already took from it and has not
/// yet written to its socket (`in_flight`, kept by the I/O layer). Once the cap is reached
/// the client is *doomed*: the buffer is freed and every later write is dropped, so a reply
/// that would grow without bound (HRANDFIELD with a huge negative count, a subscriber that
/// never reads) stops costing memory at the limit, as Redis stops writing to a client
/// scheduled to be closed.
#[derive(Debug, Default)]
pub struct ReplyBuf {
    /// The newest output (all of it, unless the buffer is chunked and output piled up).
    pub buf: Vec<u8>,
    /// Older output in chunks of about [`CHUNK`] bytes, oldest first: a client that does
    /// not read costs what it holds, with no doubling reallocations of one huge buffer.
    full: VecDeque<Vec<u8>>,
    full_len: usize,
    chunked: bool,
    resp3: bool,
    /// Error codes (`ERR`, `WRONGTYPE`, …) written since the last [`ReplyBuf::take_errors`],
    /// for INFO errorstats and failed-call counts.
    errors: Vec<String>,
    /// An error reply was written that must not count in the error statistics (it was
    /// counted when a script's command replied it) yet fails the command.
    failed_unrecorded: bool,
    /// Pending output at which the client is doomed (0: no cap).
    cap: usize,
    in_flight: Option<Arc<AtomicUsize>>,
    /// `buf.len()` at which to look again (the cap, or time for a new chunk); usize::MAX:
    /// never. One comparison per write is all the hot path pays.
    check_at: usize,
    doomed: bool,
}

/// The size at which a chunked buffer starts a new chunk.
pub const CHUNK: usize = 64 * 1024;

impl ReplyBuf {
    pub fn new(resp3: bool) -> Self {
        ReplyBuf { resp3, check_at: usize::MAX, ..Default::default() }
    }

    /// A client's buffer: chunked, and its cap also counts `in_flight`, the bytes its
    /// connection took and has not written yet.
    pub fn with_in_flight(resp3: bool, in_flight: Arc<AtomicUsize>) -> Self {
        let mut r = ReplyBuf { in_flight: Some(in_flight), chunked: true, ..ReplyBuf::new(resp3) };
        r.rearm();
        r
    }

    /// Bytes taken by the connection and not yet written to its socket.
    pub fn in_flight(&self) -> usize {
        self.in_flight.as_ref().map_or(0, |f| f.load(Ordering::Relaxed))
    }

    /// Pending output in all: this buffer plus what is in flight.
    pub fn pending(&self) -> usize {
        self.len() + self.in_flight()
    }

    /// Sets the cap on pending output (0: none). Cheap when unchanged.
    pub fn set_cap(&mut self, cap: usize) {
        if cap != self.cap {
            self.cap = cap;
            self.rearm();
        }
    }

    /// The cap was reached: the client must be closed, and gets no more output.
    pub fn doomed(&self) -> bool {
        self.doomed
    }

    /// Drops pending output and refuses any more (the client is being closed).
    pub fn doom(&mut self) {
        self.doomed = true;
        self.buf = Vec::new();
        self.full.clear();
        self.full_len = 0;
        self.check_at = 0;
    }

    /// Drops bytes written after the first `len` (a reply the client asked not to get).
    pub fn truncate(&mut self, len: usize) {
        while self.full_len > len {
            let Some(last) = self.full.pop_back() else { break };
            self.full_len -= last.len();
            self.buf = last;
        }
        self.buf.truncate(len.saturating_sub(self.full_len));
        self.rearm();
    }

    /// Removes and returns the bytes written after the first `from` (they may span chunks).
    pub fn split_off_tail(&mut self, from: usize) -> Vec<u8> {
        let mut tail = Vec::new();
        while self.full_len > from {
            let Some(last) = self.full.pop_back() else { break };
            self.full_len -= last.len();
            let newer = std::mem::replace(&mut self.buf, last);
            tail.splice(0..0, newer);
        }
        let keep = from.saturating_sub(self.full_len).min(self.buf.len());
        tail.splice(0..0, self.buf.drain(keep..));
        self.rearm();
        tail
    }

    /// Replaces each of the (sorted, disjoint) byte ranges of the pending output with
    /// `with` (the replies a synchronous-replication timeout turns into an error).
    pub fn replace_spans(&mut self, spans: &[(usize, usize)], with: &[u8]) {
        let Some(&(first, _)) = spans.first() else { return };
        let tail = self.split_off_tail(first);
        let mut from = 0;
        for &(a, b) in spans {
            let (a, b) = ((a - first).min(tail.len()), (b - first).min(tail.len()));
            self.raw(&tail[from.min(a)..a]);
            self.raw(with);
            from = b;
        }
        self.raw(&tail[from.min(tail.len())..]);
    }

    /// The byte at position `pos` of the pending output (chunks included).
    pub fn byte_at(&self, pos: usize) -> Option<u8> {
        if pos >= self.full_len {
            return self.buf.get(pos - self.full_len).copied();
        }
        let mut start = 0;
        for chunk in &self.full {
            if pos < start + chunk.len() {
                return chunk.get(pos - start).copied();
            }
            start += chunk.len();
        }
        None
    }

    /// Drops all pending output.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.full.clear();
        self.full_len = 0;
        self.rearm();
    }

    #[inline(always)]
    fn grew(&mut self) {
        if self.buf.len() >= self.check_at {
            self.limit_reached();
        }
    }

    /// Where the next check is due: the next chunk, or the cap given what is elsewhere.
    fn rearm(&mut self) {
        if self.doomed {
            self.check_at = 0;
            return;
        }
        let mut at = if self.chunked { CHUNK } else { usize::MAX };
        if self.cap > 0 {
            at = at.min(self.cap.saturating_sub(self.in_flight() + self.full_len));
        }
        self.check_at = at;
    }

    #[cold]
    #[inline(never)]
    fn limit_reached(&mut self) {
        if self.doomed {
            self.buf.clear();
            return;
        }
        if self.cap > 0 && self.pending() >= self.cap {
            self.doom();
            return;
        }
        if self.chunked && self.buf.len() >= CHUNK {
            self.full_len += self.buf.len();
            let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
            self.full.push_back(chunk);
        }
        // Otherwise the connection wrote some of what was in flight: there is room again.
        self.rearm();
    }

    pub fn resp3(&self) -> bool {
        self.resp3
    }

    pub fn set_resp3(&mut self, on: bool) {
        self.resp3 = on;
    }

    pub fn len(&self) -> usize {
        self.full_len + self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Moves the oldest pending bytes out (the oldest chunk, or everything when output has
    /// not piled up), leaving `spare`'s allocation in their place when it can be reused.
    /// The bytes moved out are in flight from now on: the connection must have written
    /// all it took before (it lowers the count as it writes).
    pub fn swap_out(&mut self, spare: &mut Vec<u8>) {
        spare.clear();
        match self.full.pop_front() {
            Some(oldest) => {
                self.full_len -= oldest.len();
                *spare = oldest;
            }
            None => std::mem::swap(&mut self.buf, spare),
        }
        if let Some(f) = &self.in_flight {
            f.store(spare.len(), Ordering::Relaxed);
        }
        if self.check_at != usize::MAX {
            self.rearm();
        }
    }

    pub fn take_errors(&mut self) -> Vec<String> {
        self.failed_unrecorded = false;
        std::mem::take(&mut self.errors)
    }

    /// True if an error reply was written since the last [`ReplyBuf::take_errors`] (the
    /// command failed), whether or not it counts in the error statistics.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.failed_unrecorded
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.grew();
    }

    fn header(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
        self.grew();
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
        self.grew();
    }

    /// A status reply (`+text`). Newlines are replaced by spaces, as Redis does.
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.push_line(s.as_bytes());
    }

    fn push_line(&mut self, s: &[u8]) {
        self.buf.extend(s.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
        self.buf.extend_from_slice(b"\r\n");
        self.grew();
    }

    /// An error reply. `msg` starts with its code (`ERR …`, `WRONGTYPE …`); a message
    /// without an uppercase code gets `ERR ` prepended, as Redis's addReplyError does.
    pub fn error(&mut self, msg: &str) {
        let msg = msg.strip_prefix('-').unwrap_or(msg);
        let code = msg.split(' ').next().unwrap_or("ERR");
        let has_code = !code.is_empty() && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
        self.buf.push(b'-');
        if has_code {
            self.errors.push(code.to_string());
        } else {
            self.errors.push("ERR".to_string());
            self.buf.extend_from_slice(b"ERR ");
        }
        self.push_line(msg.as_bytes());
    }

    /// An error reply written as given: `msg` (without the leading `-`) keeps whatever
    /// code it starts with, lowercase included, and CR/LF become spaces. With `stats` it
    /// is counted under its first word when that ends within 32 bytes (else `ERR`), as
    /// Redis's afterErrorReply counts it; without, it only marks the command as failed.
    pub fn error_verbatim(&mut self, msg: &[u8], stats: bool) {
        self.buf.push(b'-');
        if stats {
            let head = &msg[..msg.len().min(31)];
            let code = match head.iter().position(|&b| b == b' ') {
                Some(sp) => String::from_utf8_lossy(&msg[..sp]).into_owned(),
                None => "ERR".to_string(),
            };
            self.errors.push(code);
        } else {
            self.failed_unrecorded = true;
        }
        self.push_line(msg);
    }

    pub fn int(&mut self, n: i64) {
        match n {
            0 => self.buf.extend_from_slice(b":0\r\n"),
            1 => self.buf.extend_from_slice(b":1\r\n"),
            _ => return self.header(b':', n),
        }
        self.grew();
    }

    pub fn bulk(&mut self, s: &[u8]) {
        self.header(b'$', s.len() as i64);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
        self.grew();
    }

    /// An integer sent as a bulk string (what Redis does for values stored as integers).
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    pub fn bulk_opt(&mut self, s: Option<&[u8]>) {
        match s {
            Some(s) => self.bulk(s),
            None => self.null(),
        }
    }

    /// The null bulk string (`$-1` / `_`).
    pub fn null(&mut self) {
        self.buf.extend_from_slice(if self.resp3 { b"_\r\n" } else { b"$-1\r\n" });
        self.grew();
    }

    /// The null array (`*-1` / `_`).
    pub fn null_array(&mut self) {
        self.buf.extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
        self.grew();
    }

    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` pairs; a flat array of `2n` elements in RESP2.
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.header(b'%', n as i64);
        } else {
            self.header(b'*', 2 * n as i64);
        }
    }

    /// A set; an array in RESP2.
    pub fn set(&mut self, n: usize) {
        self.header(if self.resp3 { b'~' } else { b'*' }, n as i64);
    }

    /// An out-of-band push message (pub/sub, invalidations); an array in RESP2.
    pub fn push(&mut self, n: usize) {
        self.header(if self.resp3 { b'>' } else { b'*' }, n as i64);
    }

    /// A double: `,1.5` in RESP3, a bulk string with `%.17g` formatting in RESP2.
    pub fn double(&mut self, d: f64) {
        let s = fmt_double(d);
        if self.resp3 {
            self.buf.push(b',');
            self.buf.extend_from_slice(s.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
            self.grew();
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf.extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
            self.grew();
        } else {
            self.int(b as i64);
        }
    }

    /// A verbatim string (`=len\r\ntxt:…`) in RESP3, a bulk string in RESP2.
    pub fn verbatim(&mut self, s: &[u8], format: &str) {
        if self.resp3 {
            self.header(b'=', (s.len() + 4) as i64);
            self.buf.extend_from_slice(format.as_bytes());
            self.buf.push(b':');
            self.buf.extend_from_slice(s);
            self.buf.extend_from_slice(b"\r\n");
            self.grew();
        } else {
            self.bulk(s);
        }
    }

    /// A big number (`(123…`) in RESP3, a bulk string in RESP2.
    pub fn big_number(&mut self, digits: &str) {
        if self.resp3 {
            self.buf.push(b'(');
            self.buf.extend_from_slice(digits.as_bytes());
            self.buf.extend_from_slice(b"\r\n");
            self.grew();
        } else {
            self.bulk(digits.as_bytes());
        }
    }

    /// An array of bulk strings.
    pub fn bulks<'a, I>(&mut self, items: I)
    where
        I: IntoIterator<Item = &'a [u8]>,
        I::IntoIter: ExactSizeIterator,
    {
        let it = items.into_iter();
        self.array(it.len());
        for s in it {
            self.bulk(s);
        }
    }
}

/// Encodes a command as a RESP multibulk request (for propagation, MONITOR-free paths
/// and clients).
pub fn encode_command<'a, I>(out: &mut Vec<u8>, args: I)
where
    I: IntoIterator<Item = &'a [u8]>,
    I::IntoIter: ExactSizeIterator,
{
    let it = args.into_iter();
    let mut b = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(b.format(it.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in it {
        out.push(b'$');
        out.extend_from_slice(b.format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp2_downgrades() {
        let mut r = ReplyBuf::new(false);
        r.map(1);
        r.bulk(b"k");
        r.double(1.5);
        r.boolean(true);
        r.null();
        r.null_array();
        assert_eq!(r.buf, b"*2\r\n$1\r\nk\r\n$3\r\n1.5\r\n:1\r\n$-1\r\n*-1\r\n");
    }

    #[test]
    fn resp3_types() {
        let mut r = ReplyBuf::new(true);
        r.map(1);
        r.set(0);
        r.double(f64::INFINITY);
        r.boolean(false);
        r.null();
        r.push(2);
        r.verbatim(b"hi", "txt");
        assert_eq!(r.buf, b"%1\r\n~0\r\n,inf\r\n#f\r\n_\r\n>2\r\n=6\r\ntxt:hi\r\n");
    }

    #[test]
    fn a_capped_buffer_is_doomed_at_the_cap_and_stops_growing() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut r = ReplyBuf::with_in_flight(false, in_flight.clone());
        r.set_cap(100);
        for _ in 0..7 {
            r.bulk(b"0123456"); // 13 bytes each
        }
        assert!(!r.doomed());
        r.bulk(b"0123456");
        assert!(r.doomed(), "104 bytes >= 100");
        assert!(r.buf.is_empty());
        for _ in 0..1000 {
            r.bulk(b"0123456");
        }
        assert!(r.buf.len() <= 13, "a doomed buffer keeps at most one write");
    }

    #[test]
    fn the_cap_counts_bytes_in_flight_and_sees_them_written() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut r = ReplyBuf::with_in_flight(false, in_flight.clone());
        r.set_cap(100);
        r.raw(&[b'x'; 80]);
        let mut spare = Vec::new();
        r.swap_out(&mut spare);
        assert_eq!(in_flight.load(Ordering::Relaxed), 80);
        r.raw(&[b'y'; 15]);
        assert!(!r.doomed());
        r.raw(&[b'y'; 10]);
        assert!(r.doomed(), "80 in flight + 25 pending >= 100");

        // The same, but the connection wrote what it held meanwhile: no doom.
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut r = ReplyBuf::with_in_flight(false, in_flight.clone());
        r.set_cap(100);
        r.raw(&[b'x'; 80]);
        r.swap_out(&mut spare);
        r.raw(&[b'y'; 15]);
        in_flight.store(0, Ordering::Relaxed);
        r.raw(&[b'y'; 60]);
        assert!(!r.doomed());
        assert_eq!(r.pending(), 75);
    }

    #[test]
    fn a_client_buffer_piles_up_in_chunks_and_hands_them_out_in_order() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut r = ReplyBuf::with_in_flight(false, in_flight.clone());
        let mut expected = Vec::new();
        for i in 0..20_000u32 {
            r.int(i as i64);
            expected.extend_from_slice(format!(":{i}\r\n").as_bytes());
        }
        assert_eq!(r.len(), expected.len());
        assert!(r.buf.len() < CHUNK + 16, "the newest chunk stays small");
        // A reply the client asked not to get, spanning a chunk boundary, goes away whole.
        let before = r.len();
        for _ in 0..20_000 {
            r.int(7);
        }
        r.truncate(before);
        assert_eq!(r.len(), before);
        // The same through split_off_tail, which hands the dropped bytes back.
        let mut sevens = Vec::new();
        for _ in 0..20_000 {
            r.int(7);
            sevens.extend_from_slice(b":7\r\n");
        }
        assert_eq!(r.byte_at(before), Some(b':'));
        assert_eq!(r.split_off_tail(before), sevens);
        assert_eq!(r.len(), before);
        let mut got = Vec::new();
        let mut spare = Vec::new();
        while !r.is_empty() {
            r.swap_out(&mut spare);
            assert!(spare.len() <= CHUNK + 16);
            assert_eq!(in_flight.load(Ordering::Relaxed), spare.len());
            got.extend_from_slice(&spare);
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn spans_are_replaced_in_place() {
        let mut r = ReplyBuf::with_in_flight(false, Arc::new(AtomicUsize::new(0)));
        r.ok();
        let a = r.len();
        r.int(5);
        let b = r.len();
        r.bulk(b"x");
        let c = r.len();
        r.int(6);
        let d = r.len();
        r.replace_spans(&[(a, b), (c, d)], b"-E\r\n");
        let mut spare = Vec::new();
        r.swap_out(&mut spare);
        assert_eq!(spare, b"+OK\r\n-E\r\n$1\r\nx\r\n-E\r\n");
    }

    #[test]
    fn no_cap_no_checks() {
        let mut r = ReplyBuf::new(false);
        r.raw(&vec![b'x'; 1 << 20]);
        assert!(!r.doomed());
        r.set_cap(1000);
        r.ok();
        assert!(r.doomed(), "already over the new cap at the next write");
    }

    #[test]
    fn errors_get_a_code_and_are_counted() {
        let mut r = ReplyBuf::new(false);
        r.error("WRONGTYPE Operation against a key holding the wrong kind of value");
        r.error("bad thing\r\nhappened");
        assert_eq!(
            r.buf,
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n-ERR bad thing  happened\r\n"
        );
        assert_eq!(r.take_errors(), vec!["WRONGTYPE".to_string(), "ERR".to_string()]);
    }
}
