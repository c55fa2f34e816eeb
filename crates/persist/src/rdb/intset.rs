//! Intsets: sorted arrays of distinct integers (RDB type SET_INTSET).
//!
//! Layout: `<encoding u32 LE: 2, 4 or 8> <length u32 LE> <length * encoding bytes>`, the
//! members little-endian, in strictly ascending order, all with the width of the widest.

use super::Bad;

/// Decodes and validates an intset: known width, exact size, not empty, strictly
/// ascending (which also rules out duplicates).
pub fn decode(is: &[u8]) -> Result<Vec<i64>, Bad> {
    let bad = |at: usize, what: &'static str| Bad { structure: "intset", at, what };
    if is.len() < 8 {
        return Err(bad(0, "shorter than its header"));
    }
    let width = u32::from_le_bytes([is[0], is[1], is[2], is[3]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(bad(0, "unknown encoding"));
    }
    let len = u32::from_le_bytes([is[4], is[5], is[6], is[7]]) as u64;
    if 8 + len * width as u64 != is.len() as u64 {
        return Err(bad(4, "length does not match the blob size"));
    }
    if len == 0 {
        return Err(bad(4, "empty intset"));
    }
    let mut out = Vec::with_capacity(len as usize);
    for (i, c) in is[8..].chunks_exact(width).enumerate() {
        let v = match width {
            2 => i64::from(i16::from_le_bytes([c[0], c[1]])),
            4 => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        };
        if out.last().is_some_and(|&p| p >= v) {
            return Err(bad(8 + i * width, "members out of order or duplicated"));
        }
        out.push(v);
    }
    Ok(out)
}

/// Encodes strictly ascending `members` with the narrowest width that holds them all.
pub fn encode(members: &[i64], out: &mut Vec<u8>) {
    debug_assert!(members.windows(2).all(|w| w[0] < w[1]));
    let fits = |lo: i64, hi: i64| members.iter().all(|v| (lo..=hi).contains(v));
    let width: usize = if fits(i16::MIN.into(), i16::MAX.into()) {
        2
    } else if fits(i32::MIN.into(), i32::MAX.into()) {
        4
    } else {
        8
    };
    out.clear();
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(members.len() as u32).to_le_bytes());
    for &v in members {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_widths_round_trip() {
        for set in [
            vec![-3, 0, 7, i64::from(i16::MAX)],
            vec![i64::from(i16::MIN) - 1, 5, i64::from(i32::MAX)],
            vec![i64::MIN, -1, i64::MAX],
            vec![42],
        ] {
            let mut b = Vec::new();
            encode(&set, &mut b);
            assert_eq!(decode(&b).unwrap(), set);
        }
        let mut b = Vec::new();
        encode(&[1, 2], &mut b);
        assert_eq!(b, [2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 2, 0]);
        encode(&[1, 70000], &mut b);
        assert_eq!(&b[..4], &[4, 0, 0, 0]);
        encode(&[1, 1 << 40], &mut b);
        assert_eq!(&b[..4], &[8, 0, 0, 0]);
    }

    #[test]
    fn corruptions_are_refused() {
        let mut b = Vec::new();
        encode(&[1, 2, 3], &mut b);
        let mut t = b.clone();
        t[0] = 3;
        assert!(decode(&t).is_err());
        let mut t = b.clone();
        t[4] = 4;
        assert!(decode(&t).is_err());
        let mut t = b.clone();
        t[10] = 1; // duplicate
        assert!(decode(&t).is_err());
        let mut t = b.clone();
        t[8] = 9; // out of order
        assert!(decode(&t).is_err());
        assert!(decode(&[2, 0, 0, 0, 0, 0, 0, 0]).is_err()); // empty
        assert!(decode(&b[..7]).is_err());
    }
}
