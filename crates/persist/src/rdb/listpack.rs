//! Listpacks (Redis 7's compact list encoding), decoded from RDB blobs and built for them.
//!
//! Layout: `<total-bytes u32 LE> <count u16 LE> <entry>* 0xFF`. The count saturates at
//! 65535 ("unknown, walk the list"). Each entry is `<encoding+data> <backlen>`, where the
//! backlen is the size of encoding+data written so that it can be read from its last
//! byte backwards (7 bits per byte, high bit set on all but the first byte written).
//!
//! | first byte  | meaning                                     | header |
//! |-------------|---------------------------------------------|--------|
//! | `0xxxxxxx`  | integer 0..=127                             | 1      |
//! | `10llllll`  | string, length < 64                         | 1      |
//! | `110xxxxx`  | 13-bit signed integer, next byte low bits   | 2      |
//! | `1110llll`  | string, 12-bit length (next byte low bits)  | 2      |
//! | `0xF0`      | string, 32-bit LE length                    | 5      |
//! | `0xF1..F4`  | 16/24/32/64-bit signed LE integer           | 1      |
//! | `0xFF`      | end of listpack                             |        |

use super::num::parse_canonical_i64;
use super::{Bad, Elem};

const HDR: usize = 6;
const EOF: u8 = 0xFF;
/// Count value meaning "more than fits in 16 bits; count by walking".
const COUNT_UNKNOWN: u16 = u16::MAX;

/// Size in bytes of the backlen that describes an entry of `l` bytes. The thresholds
/// are Redis's (note the strict `<`: 16383 itself takes three bytes).
fn backlen_size(l: usize) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2_097_151 {
        3
    } else if l < 268_435_455 {
        4
    } else {
        5
    }
}

/// The backlen bytes for an entry of `l` bytes: most significant 7-bit group first, and
/// every byte but the first carries the 0x80 flag, so that a reader starting at the last
/// byte knows when to stop.
fn encode_backlen(l: usize) -> ([u8; 5], usize) {
    let n = backlen_size(l);
    let mut b = [0u8; 5];
    for (i, slot) in b.iter_mut().enumerate().take(n) {
        let group = ((l >> (7 * (n - 1 - i))) & 127) as u8;
        *slot = if i == 0 { group } else { group | 128 };
    }
    (b, n)
}

/// Reads a backlen backwards from its last byte at `last`, as Redis does when it checks
/// one: 7 bits per byte while the high bit says more follow, at most five bytes. A
/// non-canonical backlen of the right value passes, as it does in Redis.
fn decode_backlen(lp: &[u8], last: usize) -> Option<u64> {
    let mut value = 0u64;
    for (i, at) in (0..=last).rev().take(5).enumerate() {
        let b = lp[at];
        value |= u64::from(b & 127) << (7 * i);
        if b & 128 == 0 {
            return Some(value);
        }
    }
    None
}

fn push_backlen(out: &mut Vec<u8>, l: usize) {
    let (b, n) = encode_backlen(l);
    out.extend_from_slice(&b[..n]);
}

/// Calls `f` for each entry of the listpack `lp`, after checking the header, every
/// entry's bounds and backlen, the terminator and the count. Returns the entry count.
pub fn for_each<'a, E: From<Bad>>(lp: &'a [u8], mut f: impl FnMut(Elem<'a>) -> Result<(), E>) -> Result<usize, E> {
    let bad = |at: usize, what: &'static str| Bad { structure: "listpack", at, what };
    if lp.len() < HDR + 1 {
        return Err(bad(0, "shorter than its header").into());
    }
    let total = u32::from_le_bytes([lp[0], lp[1], lp[2], lp[3]]) as usize;
    if total != lp.len() {
        return Err(bad(0, "header size does not match the blob size").into());
    }
    let end = lp.len() - 1;
    if lp[end] != EOF {
        return Err(bad(end, "missing terminator").into());
    }
    let header_count = u16::from_le_bytes([lp[4], lp[5]]);
    let mut count = 0usize;
    let mut p = HDR;
    while p < end {
        let b = lp[p];
        // (header bytes, data bytes)
        let need = |n: usize| -> Result<&'a [u8], Bad> {
            lp.get(p..p + n).filter(|_| p + n <= end).ok_or(bad(p, "entry header runs past the end"))
        };
        let (hdr, len, elem): (usize, usize, Option<i64>) = if b & 0x80 == 0 {
            (1, 0, Some(i64::from(b)))
        } else if b & 0xC0 == 0x80 {
            (1, usize::from(b & 0x3f), None)
        } else if b & 0xE0 == 0xC0 {
            let h = need(2)?;
            let u = i64::from(b & 0x1f) << 8 | i64::from(h[1]);
            (2, 0, Some(if u >= 1 << 12 { u - (1 << 13) } else { u }))
        } else if b & 0xF0 == 0xE0 {
            let h = need(2)?;
            (2, usize::from(b & 0x0f) << 8 | usize::from(h[1]), None)
        } else {
            match b {
                0xF0 => {
                    let h = need(5)?;
                    (5, u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize, None)
                }
                0xF1 => {
                    let h = need(3)?;
                    (3, 0, Some(i64::from(i16::from_le_bytes([h[1], h[2]]))))
                }
                0xF2 => {
                    let h = need(4)?;
                    // Sign-extend 24 bits by placing them in the top of an i32.
                    (4, 0, Some(i64::from(i32::from_le_bytes([0, h[1], h[2], h[3]]) >> 8)))
                }
                0xF3 => {
                    let h = need(5)?;
                    (5, 0, Some(i64::from(i32::from_le_bytes([h[1], h[2], h[3], h[4]]))))
                }
                0xF4 => {
                    let h = need(9)?;
                    let mut w = [0u8; 8];
                    w.copy_from_slice(&h[1..9]);
                    (9, 0, Some(i64::from_le_bytes(w)))
                }
                _ => return Err(bad(p, "invalid entry encoding").into()),
            }
        };
        let entry_len = hdr + len;
        let bl = backlen_size(entry_len);
        let next = p.checked_add(entry_len + bl).filter(|&n| n <= end).ok_or(bad(p, "entry runs past the end"))?;
        if decode_backlen(lp, next - 1) != Some(entry_len as u64) {
            return Err(bad(p + entry_len, "backlen does not match the entry size").into());
        }
        match elem {
            Some(v) => f(Elem::Int(v))?,
            None => f(Elem::Bytes(&lp[p + hdr..p + entry_len]))?,
        }
        count += 1;
        p = next;
    }
    if header_count != COUNT_UNKNOWN && usize::from(header_count) != count {
        return Err(bad(4, "header count does not match the entries").into());
    }
    Ok(count)
}

/// Builds a listpack, encoding elements the way Redis's `lpAppend` does: strings that are
/// canonical integers (`string2ll` rules, at most 20 characters) become integer entries.
pub struct Builder {
    buf: Vec<u8>,
    count: usize,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    pub fn new() -> Self {
        Builder { buf: vec![0; HDR], count: 0 }
    }

    /// Empties the builder, keeping its allocation.
    pub fn clear(&mut self) {
        self.buf.truncate(HDR);
        self.count = 0;
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Size of the finished listpack so far (header and terminator included).
    pub fn bytes(&self) -> usize {
        self.buf.len() + 1
    }

    /// Size that `e` takes as an entry, backlen included.
    pub fn entry_size(e: Elem<'_>) -> usize {
        let payload = match e {
            Elem::Int(v) => int_size(v),
            Elem::Bytes(s) => match parse_canonical_i64(s) {
                Some(v) => int_size(v),
                None => str_header(s.len()) + s.len(),
            },
        };
        payload + backlen_size(payload)
    }

    pub fn push(&mut self, e: Elem<'_>) {
        match e {
            Elem::Int(v) => self.push_int(v),
            Elem::Bytes(s) => match parse_canonical_i64(s) {
                Some(v) => self.push_int(v),
                None => self.push_str(s),
            },
        }
    }

    fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        if (0..=127).contains(&v) {
            self.buf.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v & 0x1fff) as u16;
            self.buf.push(0xC0 | (u >> 8) as u8);
            self.buf.push(u as u8);
        } else if (-32768..=32767).contains(&v) {
            self.buf.push(0xF1);
            self.buf.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8_388_608..=8_388_607).contains(&v) {
            self.buf.push(0xF2);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if (-2_147_483_648..=2_147_483_647).contains(&v) {
            self.buf.push(0xF3);
            self.buf.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            self.buf.push(0xF4);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        let l = self.buf.len() - start;
        push_backlen(&mut self.buf, l);
        self.count += 1;
    }

    fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let n = s.len();
        if n < 64 {
            self.buf.push(0x80 | n as u8);
        } else if n < 4096 {
            self.buf.push(0xE0 | (n >> 8) as u8);
            self.buf.push(n as u8);
        } else {
            self.buf.push(0xF0);
            self.buf.extend_from_slice(&(n as u32).to_le_bytes());
        }
        self.buf.extend_from_slice(s);
        let l = self.buf.len() - start;
        push_backlen(&mut self.buf, l);
        self.count += 1;
    }

    /// Terminates the listpack and fills in the header; returns its bytes. Call
    /// [`Builder::clear`] before reusing the builder. None if it exceeds 4 GiB (the
    /// header's size field is 32 bits).
    pub fn finish(&mut self) -> Option<&[u8]> {
        self.buf.push(EOF);
        let total = u32::try_from(self.buf.len()).ok()?;
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = u16::try_from(self.count).unwrap_or(COUNT_UNKNOWN);
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        Some(&self.buf)
    }
}

fn int_size(v: i64) -> usize {
    if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8_388_608..=8_388_607).contains(&v) {
        4
    } else if (-2_147_483_648..=2_147_483_647).contains(&v) {
        5
    } else {
        9
    }
}

fn str_header(n: usize) -> usize {
    if n < 64 {
        1
    } else if n < 4096 {
        2
    } else {
        5
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(lp: &[u8]) -> Result<Vec<Vec<u8>>, Bad> {
        let mut out = Vec::new();
        for_each(lp, |e| {
            out.push(e.to_vec());
            Ok::<(), Bad>(())
        })?;
        Ok(out)
    }

    fn build(items: &[&[u8]]) -> Vec<u8> {
        let mut b = Builder::new();
        for i in items {
            b.push(Elem::Bytes(i));
        }
        b.finish().unwrap().to_vec()
    }

    #[test]
    fn empty_listpack() {
        let lp = build(&[]);
        assert_eq!(lp, [7, 0, 0, 0, 0, 0, 0xFF]);
        assert_eq!(decode(&lp).unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn integer_widths_and_string_headers() {
        let long64 = vec![b'x'; 64];
        let long4095 = vec![b'y'; 4095];
        let long4096 = vec![b'z'; 4096];
        let items: Vec<Vec<u8>> = vec![
            b"0".to_vec(),
            b"127".to_vec(),
            b"128".to_vec(),
            b"-1".to_vec(),
            b"-4096".to_vec(),
            b"4095".to_vec(),
            b"4096".to_vec(),
            b"-32768".to_vec(),
            b"32767".to_vec(),
            b"32768".to_vec(),
            b"-8388608".to_vec(),
            b"8388607".to_vec(),
            b"8388608".to_vec(),
            b"-2147483648".to_vec(),
            b"2147483647".to_vec(),
            b"2147483648".to_vec(),
            b"-9223372036854775808".to_vec(),
            b"9223372036854775807".to_vec(),
            b"9223372036854775808".to_vec(), // overflows: stays a string
            b"007".to_vec(),                 // not canonical: a string
            b"-0".to_vec(),
            b"".to_vec(),
            b"hello".to_vec(),
            long64.clone(),
            long4095.clone(),
            long4096.clone(),
        ];
        let refs: Vec<&[u8]> = items.iter().map(|v| v.as_slice()).collect();
        let lp = build(&refs);
        assert_eq!(decode(&lp).unwrap(), items);
        // Spot-check the encodings Redis uses.
        let one = |s: &[u8]| build(&[s])[HDR..].to_vec();
        assert_eq!(one(b"5"), [0x05, 0x01, 0xFF]);
        assert_eq!(one(b"-1"), [0xDF, 0xFF, 0x02, 0xFF]);
        assert_eq!(one(b"1000"), [0xC3, 0xE8, 0x02, 0xFF]);
        assert_eq!(one(b"-32768"), [0xF1, 0x00, 0x80, 0x03, 0xFF]);
        assert_eq!(one(b"8388607"), [0xF2, 0xFF, 0xFF, 0x7F, 0x04, 0xFF]);
        assert_eq!(one(b"ab"), [0x82, b'a', b'b', 0x03, 0xFF]);
        let e = one(&long64);
        assert_eq!(&e[..2], &[0xE0, 64]);
        assert_eq!(&e[e.len() - 2..], &[66, 0xFF]);
        let e = one(&long4095);
        assert_eq!(&e[..2], &[0xEF, 0xFF]);
        // 4097 bytes of entry: two backlen bytes, high group first.
        assert_eq!(&e[e.len() - 3..], &[(4097 >> 7) as u8, 0x80 | (4097 & 127) as u8, 0xFF]);
        let e = one(&long4096);
        assert_eq!(&e[..5], &[0xF0, 0x00, 0x10, 0x00, 0x00]);
    }

    #[test]
    fn backlen_boundaries() {
        for (l, n) in [(127, 1), (128, 2), (16382, 2), (16383, 3), (2_097_150, 3), (2_097_151, 4)] {
            assert_eq!(backlen_size(l), n, "{l}");
            let mut v = Vec::new();
            push_backlen(&mut v, l);
            // Decode from the last byte backwards.
            let mut val = 0usize;
            for (i, b) in v.iter().rev().enumerate() {
                val |= usize::from(b & 127) << (7 * i);
            }
            assert_eq!(val, l);
            assert_eq!(v.last().map(|b| b & 128 != 0), Some(n > 1));
        }
    }

    #[test]
    fn unknown_count_is_accepted() {
        let mut lp = build(&[b"a", b"b"]);
        lp[4] = 0xFF;
        lp[5] = 0xFF;
        assert_eq!(decode(&lp).unwrap().len(), 2);
    }

    #[test]
    fn corruptions_are_refused() {
        let lp = build(&[b"abc", b"12345"]);
        let mut bad_total = lp.clone();
        bad_total[0] += 1;
        assert!(decode(&bad_total).is_err());
        let mut bad_count = lp.clone();
        bad_count[4] = 3;
        assert!(decode(&bad_count).is_err());
        let mut bad_backlen = lp.clone();
        bad_backlen[HDR + 4] = 9;
        assert!(decode(&bad_backlen).is_err());
        let mut bad_enc = lp.clone();
        bad_enc[HDR] = 0xF7;
        assert!(decode(&bad_enc).is_err());
        let mut long_str = lp.clone();
        long_str[HDR] = 0x80 | 60;
        assert!(decode(&long_str).is_err());
        let mut no_eof = lp.clone();
        let n = no_eof.len();
        no_eof[n - 1] = 0;
        assert!(decode(&no_eof).is_err());
        assert!(decode(&lp[..5]).is_err());
        assert!(decode(&[]).is_err());
    }
}
