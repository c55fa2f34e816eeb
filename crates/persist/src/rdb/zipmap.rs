//! Zipmaps, the small-hash encoding of Redis before 2.6 (RDB type HASH_ZIPMAP, files of
//! versions up to 4 or so). Read only.
//!
//! Layout: `<zmlen u8> (<len> field <len> <free u8> value <free bytes>)* 0xFF`, where
//! `<len>` is one byte (< 254) or 0xFE plus a 32-bit length in the writer's byte order
//! (little-endian on every platform Redis ran on in practice), and `zmlen` is the pair
//! count, or 254 if there are at least that many.

use super::Bad;

/// A (field, value) pair borrowed from the blob.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

const BIGLEN: u8 = 254;
const END: u8 = 0xFF;

/// Returns the (field, value) pairs after checking every bound, the count and that the
/// zipmap is not empty (Redis refuses empty zipmaps too).
pub fn pairs(zm: &[u8]) -> Result<Vec<Pair<'_>>, Bad> {
    let bad = |at: usize, what: &'static str| Bad { structure: "zipmap", at, what };
    if zm.len() < 2 {
        return Err(bad(0, "shorter than its header"));
    }
    let end = zm.len() - 1;
    if zm[end] != END {
        return Err(bad(end, "missing terminator"));
    }
    // A length at `p`: (value, bytes used); must leave room for at least the terminator.
    // As in Redis, any first byte of 254 or more (0xFF included) announces a 32-bit length.
    // A 32-bit length under 254 is refused: Redis validates the entry with the size of the
    // encoding but reads it with the size the value would take (one byte), so it would
    // read something else than what was validated.
    let read_len = |p: usize| -> Result<(usize, usize), Bad> {
        let b = zm[p];
        if b < BIGLEN {
            Ok((usize::from(b), 1))
        } else {
            let h = zm.get(p + 1..p + 5).filter(|_| p + 5 <= end).ok_or(bad(p, "length runs past the end"))?;
            let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
            if len < usize::from(BIGLEN) {
                return Err(bad(p, "a short length in the 32-bit form"));
            }
            Ok((len, 5))
        }
    };
    let mut out = Vec::with_capacity(usize::from(zm[0].min(BIGLEN)));
    let mut p = 1;
    while zm[p] != END {
        let (flen, s) = read_len(p)?;
        let f0 = p + s;
        let f1 = f0.checked_add(flen).filter(|&x| x < end).ok_or(bad(p, "field runs past the end"))?;
        let (vlen, s) = read_len(f1)?;
        let free_at = f1 + s;
        if free_at >= end {
            return Err(bad(f1, "value runs past the end"));
        }
        let free = usize::from(zm[free_at]);
        let v0 = free_at + 1;
        let v1 = v0.checked_add(vlen).filter(|&x| x <= end).ok_or(bad(f1, "value runs past the end"))?;
        let next = v1.checked_add(free).filter(|&x| x <= end).ok_or(bad(free_at, "free space runs past the end"))?;
        out.push((&zm[f0..f1], &zm[v0..v1]));
        p = next;
    }
    if out.is_empty() {
        return Err(bad(0, "empty zipmap"));
    }
    if zm[0] != BIGLEN && usize::from(zm[0]) != out.len() {
        return Err(bad(0, "header count does not match the entries"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_doc_example() {
        // zipmap.c's example: "foo" => "bar", "hello" => "world".
        let zm = b"\x02\x03foo\x03\x00bar\x05hello\x05\x00world\xff";
        let got = pairs(zm).unwrap();
        assert_eq!(got, vec![(&b"foo"[..], &b"bar"[..]), (&b"hello"[..], &b"world"[..])]);
    }

    #[test]
    fn free_space_and_big_lengths() {
        // One pair whose value has 2 free bytes, then a 300-byte value (5-byte length).
        let mut zm = vec![2u8, 1, b'a', 1, 2, b'x', 0, 0];
        zm.extend_from_slice(&[1, b'b', 254]);
        zm.extend_from_slice(&300u32.to_le_bytes());
        zm.push(0);
        zm.extend_from_slice(&[b'v'; 300]);
        zm.push(0xFF);
        let got = pairs(&zm).unwrap();
        assert_eq!(got[0], (&b"a"[..], &b"x"[..]));
        assert_eq!(got[1].0, b"b");
        assert_eq!(got[1].1.len(), 300);
    }

    #[test]
    fn a_value_length_of_0xff_is_a_big_length() {
        // As Redis's zipmapDecodeLength: any first byte >= 254 is followed by 32 bits.
        let mut zm = vec![1u8, 1, b'a', 0xFF];
        zm.extend_from_slice(&300u32.to_le_bytes());
        zm.push(0);
        zm.extend_from_slice(&[b'v'; 300]);
        zm.push(0xFF);
        let got = pairs(&zm).unwrap();
        assert_eq!(got[0].1.len(), 300);
        // A short length in the long form is refused.
        assert!(pairs(b"\x01\x01a\xff\x01\x00\x00\x00\x00x\xff").is_err());
        assert!(pairs(b"\x01\xfe\x01\x00\x00\x00a\x01\x00x\xff").is_err());
    }

    #[test]
    fn corruptions_are_refused() {
        assert!(pairs(b"\x00\xff").is_err()); // empty
        assert!(pairs(b"\x02\x03foo\x03\x00bar\xff").is_err()); // count says 2
        assert!(pairs(b"\x01\x03foo\x09\x00bar\xff").is_err()); // value too long
        assert!(pairs(b"\x01\x03foo\x03\x09bar\xff").is_err()); // free too long
        assert!(pairs(b"\x01\x03foo\x03\x00bar").is_err()); // no terminator
        assert!(pairs(b"\x01\x03fo\xff").is_err());
        assert!(pairs(b"\xff").is_err());
    }
}
