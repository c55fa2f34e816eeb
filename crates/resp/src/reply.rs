//! Reply encoding for one client in its protocol version. Command code writes replies with
//! RESP3 semantics (maps, sets, doubles, booleans, push messages); a RESP2 client gets the
//! RESP2 downgrade Redis uses (flat arrays, bulk strings, integers).

use crate::num::fmt_double;

/// An output buffer that knows the client's protocol version.
#[derive(Debug, Default)]
pub struct ReplyBuf {
    pub buf: Vec<u8>,
    resp3: bool,
    /// Error codes (`ERR`, `WRONGTYPE`, …) written since the last [`ReplyBuf::take_errors`],
    /// for INFO errorstats and failed-call counts.
    errors: Vec<String>,
}

impl ReplyBuf {
    pub fn new(resp3: bool) -> Self {
        ReplyBuf { buf: Vec::new(), resp3, errors: Vec::new() }
    }

    pub fn resp3(&self) -> bool {
        self.resp3
    }

    pub fn set_resp3(&mut self, on: bool) {
        self.resp3 = on;
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Moves the pending bytes out, leaving `spare` (cleared) in their place so that
    /// buffers are recycled rather than reallocated.
    pub fn swap_out(&mut self, spare: &mut Vec<u8>) {
        spare.clear();
        std::mem::swap(&mut self.buf, spare);
    }

    pub fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    fn header(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// A status reply (`+text`). Newlines are replaced by spaces, as Redis does.
    pub fn simple(&mut self, s: &str) {
        self.buf.push(b'+');
        self.push_line(s.as_bytes());
    }

    fn push_line(&mut self, s: &[u8]) {
        self.buf.extend(s.iter().map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
        self.buf.extend_from_slice(b"\r\n");
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

    pub fn int(&mut self, n: i64) {
        match n {
            0 => self.buf.extend_from_slice(b":0\r\n"),
            1 => self.buf.extend_from_slice(b":1\r\n"),
            _ => self.header(b':', n),
        }
    }

    pub fn bulk(&mut self, s: &[u8]) {
        self.header(b'$', s.len() as i64);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
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
    }

    /// The null array (`*-1` / `_`).
    pub fn null_array(&mut self) {
        self.buf.extend_from_slice(if self.resp3 { b"_\r\n" } else { b"*-1\r\n" });
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
        } else {
            self.bulk(s.as_bytes());
        }
    }

    /// A boolean: `#t`/`#f` in RESP3, `:1`/`:0` in RESP2.
    pub fn boolean(&mut self, b: bool) {
        if self.resp3 {
            self.buf.extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" });
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
