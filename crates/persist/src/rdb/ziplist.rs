//! Ziplists, the compact encoding of Redis 2.6..6.2, still found in RDB files of versions
//! 6..=9 (types LIST_ZIPLIST, ZSET_ZIPLIST, HASH_ZIPLIST and the nodes of LIST_QUICKLIST).
//! Read only: Redis 7 never writes them.
//!
//! Layout: `<zlbytes u32 LE> <zltail u32 LE> <zllen u16 LE> <entry>* 0xFF`. An entry is
//! `<prevlen> <encoding> <data>`: prevlen is one byte (< 254) or 0xFE plus a u32 LE. The
//! encoding's first byte decides:
//!
//! | first byte   | meaning                                               |
//! |--------------|-------------------------------------------------------|
//! | `00llllll`   | string, length < 64                                   |
//! | `01llllll b` | string, 14-bit length, **big-endian**                 |
//! | `10______ 4b`| string, 32-bit length, **big-endian**                 |
//! | `0xC0`       | int16 LE; `0xD0` int32; `0xE0` int64; `0xF0` int24    |
//! | `0xFE`       | int8                                                  |
//! | `0xF1..=FD`  | immediate 0..=12 (low nibble minus one)               |

use super::{Bad, Elem};

const HDR: usize = 10;
const END: u8 = 0xFF;
const BIG_PREVLEN: u8 = 0xFE;

/// Calls `f` for each entry after checking the header, every entry's bounds and prevlen,
/// the tail offset, the terminator and the count. Returns the entry count.
pub fn for_each<'a, E: From<Bad>>(zl: &'a [u8], mut f: impl FnMut(Elem<'a>) -> Result<(), E>) -> Result<usize, E> {
    let bad = |at: usize, what: &'static str| Bad { structure: "ziplist", at, what };
    let n = zl.len();
    if n < HDR + 1 {
        return Err(bad(0, "shorter than its header").into());
    }
    let u32_at = |i: usize| u32::from_le_bytes([zl[i], zl[i + 1], zl[i + 2], zl[i + 3]]) as usize;
    if u32_at(0) != n {
        return Err(bad(0, "header size does not match the blob size").into());
    }
    let end = n - 1;
    if zl[end] != END {
        return Err(bad(end, "missing terminator").into());
    }
    let tail = u32_at(4);
    if tail > end {
        return Err(bad(4, "tail offset points outside").into());
    }
    let header_count = u16::from_le_bytes([zl[8], zl[9]]);
    let mut p = HDR;
    let mut prev_size = 0usize;
    let mut last = None;
    let mut count = 0usize;
    while zl[p] != END {
        let hdr_bytes = |from: usize, k: usize| -> Result<&'a [u8], Bad> {
            zl.get(from..from + k).filter(|_| from + k <= end).ok_or(bad(from, "entry header runs past the end"))
        };
        let (prevlen, plsize) = if zl[p] < BIG_PREVLEN {
            (usize::from(zl[p]), 1)
        } else {
            let h = hdr_bytes(p, 5)?;
            (u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize, 5)
        };
        if prevlen != prev_size {
            return Err(bad(p, "prevlen does not match the previous entry").into());
        }
        let q = p + plsize;
        let enc = *zl.get(q).filter(|_| q < end).ok_or(bad(q, "entry header runs past the end"))?;
        // (encoding bytes, data bytes, integer width or None for strings)
        let (lensize, len, int_width): (usize, usize, Option<usize>) = match enc >> 6 {
            0 => (1, usize::from(enc & 0x3f), None),
            1 => {
                let h = hdr_bytes(q, 2)?;
                (2, usize::from(enc & 0x3f) << 8 | usize::from(h[1]), None)
            }
            2 => {
                let h = hdr_bytes(q, 5)?;
                (5, u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize, None)
            }
            _ => match enc {
                0xC0 => (1, 2, Some(2)),
                0xD0 => (1, 4, Some(4)),
                0xE0 => (1, 8, Some(8)),
                0xF0 => (1, 3, Some(3)),
                0xFE => (1, 1, Some(1)),
                0xF1..=0xFD => (1, 0, Some(0)),
                _ => return Err(bad(q, "invalid entry encoding").into()),
            },
        };
        let data = q + lensize;
        let next = data.checked_add(len).filter(|&x| x <= end).ok_or(bad(p, "entry runs past the end"))?;
        let d = &zl[data..next];
        let elem = match int_width {
            None => Elem::Bytes(d),
            Some(0) => Elem::Int(i64::from(enc & 0x0f) - 1),
            Some(1) => Elem::Int(i64::from(d[0] as i8)),
            Some(2) => Elem::Int(i64::from(i16::from_le_bytes([d[0], d[1]]))),
            // 24-bit: the three bytes are the top of an i32, so an arithmetic shift
            // sign-extends them.
            Some(3) => Elem::Int(i64::from(i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8)),
            Some(4) => Elem::Int(i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]]))),
            Some(_) => {
                let mut w = [0u8; 8];
                w.copy_from_slice(d);
                Elem::Int(i64::from_le_bytes(w))
            }
        };
        f(elem)?;
        count += 1;
        last = Some(p);
        prev_size = next - p;
        p = next;
    }
    if p != end {
        return Err(bad(p, "terminator before the end of the blob").into());
    }
    if let Some(l) = last {
        if l != tail {
            return Err(bad(4, "tail offset does not point at the last entry").into());
        }
    }
    if header_count != u16::MAX && usize::from(header_count) != count {
        return Err(bad(8, "header count does not match the entries").into());
    }
    Ok(count)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small ziplist encoder for tests (Redis 7 never writes ziplists, but old files have
    /// them): strings as strings, integers with the narrowest encoding, like ziplist.c.
    pub fn build(items: &[Elem<'_>]) -> Vec<u8> {
        let mut out = vec![0u8; HDR];
        let mut prev = 0usize;
        let mut tail = HDR;
        for it in items {
            let start = out.len();
            tail = start;
            if prev < 254 {
                out.push(prev as u8);
            } else {
                out.push(BIG_PREVLEN);
                out.extend_from_slice(&(prev as u32).to_le_bytes());
            }
            match *it {
                Elem::Int(v) if (0..=12).contains(&v) => out.push(0xF1 + v as u8),
                Elem::Int(v) if i8::try_from(v).is_ok() => out.extend_from_slice(&[0xFE, v as u8]),
                Elem::Int(v) if i16::try_from(v).is_ok() => {
                    out.push(0xC0);
                    out.extend_from_slice(&(v as i16).to_le_bytes());
                }
                Elem::Int(v) if (-(1 << 23)..(1 << 23)).contains(&v) => {
                    out.push(0xF0);
                    out.extend_from_slice(&((v as i32) << 8).to_le_bytes()[1..]);
                }
                Elem::Int(v) if i32::try_from(v).is_ok() => {
                    out.push(0xD0);
                    out.extend_from_slice(&(v as i32).to_le_bytes());
                }
                Elem::Int(v) => {
                    out.push(0xE0);
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Elem::Bytes(s) => {
                    let l = s.len();
                    if l < 64 {
                        out.push(l as u8);
                    } else if l < 16384 {
                        out.extend_from_slice(&[0x40 | (l >> 8) as u8, l as u8]);
                    } else {
                        out.push(0x80);
                        out.extend_from_slice(&(l as u32).to_be_bytes());
                    }
                    out.extend_from_slice(s);
                }
            }
            prev = out.len() - start;
        }
        out.push(END);
        let total = out.len() as u32;
        out[0..4].copy_from_slice(&total.to_le_bytes());
        out[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
        let count = u16::try_from(items.len()).unwrap_or(u16::MAX);
        out[8..10].copy_from_slice(&count.to_le_bytes());
        out
    }

    fn decode(zl: &[u8]) -> Result<Vec<Vec<u8>>, Bad> {
        let mut out = Vec::new();
        for_each(zl, |e| {
            out.push(e.to_vec());
            Ok::<(), Bad>(())
        })?;
        Ok(out)
    }

    #[test]
    fn redis_doc_example() {
        // The example in ziplist.c's header comment: "2", "5".
        let zl = [0x0f, 0, 0, 0, 0x0c, 0, 0, 0, 0x02, 0, 0x00, 0xf3, 0x02, 0xf6, 0xff];
        assert_eq!(decode(&zl).unwrap(), vec![b"2".to_vec(), b"5".to_vec()]);
    }

    #[test]
    fn every_encoding() {
        let big = vec![b'q'; 300];
        let huge = vec![b'h'; 17000];
        let items = [
            Elem::Int(0),
            Elem::Int(12),
            Elem::Int(13),
            Elem::Int(-128),
            Elem::Int(-129),
            Elem::Int(32767),
            Elem::Int(-8_388_608),
            Elem::Int(8_388_607),
            Elem::Int(8_388_608),
            Elem::Int(i64::from(i32::MIN)),
            Elem::Int(i64::MIN),
            Elem::Int(i64::MAX),
            Elem::Bytes(b""),
            Elem::Bytes(b"abc"),
            Elem::Bytes(&big), // 14-bit length, and the next entry gets a 5-byte prevlen
            Elem::Bytes(&huge),
            Elem::Bytes(b"end"),
        ];
        let zl = build(&items);
        let want: Vec<Vec<u8>> = items.iter().map(|e| e.to_vec()).collect();
        assert_eq!(decode(&zl).unwrap(), want);
        assert_eq!(decode(&build(&[])).unwrap(), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn corruptions_are_refused() {
        let zl = build(&[Elem::Bytes(b"abc"), Elem::Int(1000), Elem::Bytes(b"xy")]);
        let mut t = zl.clone();
        t[4] = 11; // tail not at the last entry
        assert!(decode(&t).is_err());
        let mut t = zl.clone();
        t[8] = 2; // count
        assert!(decode(&t).is_err());
        let mut t = zl.clone();
        t[HDR + 5] = 3; // prevlen of the second entry
        assert!(decode(&t).is_err());
        let mut t = zl.clone();
        t[HDR + 1] = 40; // string runs past the end
        assert!(decode(&t).is_err());
        let mut t = zl.clone();
        t[HDR + 6] = 0xC5; // undefined integer encoding
        assert!(decode(&t).is_err());
        let mut t = zl.clone();
        t[0] = 0;
        assert!(decode(&t).is_err());
        assert!(decode(&zl[..HDR]).is_err());
    }
}
