//! Number conversions with the exact rules the RDB encoders use.

/// Redis's `string2ll` / `lpStringToInt64`: the string is a canonical decimal integer
/// (optional `-`, no `+`, no leading zeros, no spaces, no `-0`) that fits an `i64`, and
/// at most 20 bytes long. Only such strings may be stored as integers, because reading
/// them back must give the same bytes.
pub fn parse_canonical_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    ferrokv_resp::num::parse_i64(s)
}

/// Decimal form of `v` in `buf`; returns the used tail of the buffer.
pub fn fmt_i64(v: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut u = v.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// The string Redis stores for a sorted-set score in a listpack (`d2string`): integral
/// values in ±2^62 as integers (which the listpack then stores as integer entries),
/// others as `%.17g`, infinities as `inf`/`-inf`, negative zero as `-0`.
pub fn score_to_string(d: f64, buf: &mut Vec<u8>) {
    buf.clear();
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if d.is_infinite() {
        buf.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
    } else if d == 0.0 {
        buf.extend_from_slice(if d.is_sign_negative() { b"-0" } else { b"0" });
    } else if (-LIMIT..=LIMIT).contains(&d) && d == (d as i64) as f64 {
        let mut b = [0u8; 20];
        buf.extend_from_slice(fmt_i64(d as i64, &mut b));
    } else {
        buf.extend_from_slice(ferrokv_resp::num::fmt_double(d).as_bytes());
    }
}

/// Parses a score stored as text (listpack/ziplist entries, RDB_TYPE_ZSET values) the way
/// `strtod` would for what Redis writes: decimal, exponent, `inf`/`-inf`/`infinity`.
/// NaN is refused: Redis refuses it when loading, and a sorted set cannot order it.
pub fn parse_score(s: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(s).ok()?.trim_matches(|c: char| c.is_ascii_whitespace());
    let v: f64 = t.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

/// The score Redis reads from a compact sorted set's score entry (`zzlStrtod`): C's
/// `strtod` of at most its first 127 bytes, which takes the longest numeric prefix and
/// gives 0 when there is none. Redis does not check these entries when loading, so a
/// damaged one still loads as whatever number it starts with.
pub fn strtod_prefix(s: &[u8]) -> f64 {
    let s = &s[..s.len().min(127)];
    let mut i = s.iter().position(|b| !b" \t\n\x0b\x0c\r".contains(b)).unwrap_or(s.len());
    let start = i;
    if matches!(s.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let word = |w: &str, at: usize| s.len() >= at + w.len() && s[at..at + w.len()].eq_ignore_ascii_case(w.as_bytes());
    let negative = s.get(start) == Some(&b'-');
    if word("inf", i) {
        return if negative { f64::NEG_INFINITY } else { f64::INFINITY };
    }
    if word("nan", i) {
        return f64::NAN;
    }
    let digits = |mut j: usize| {
        while s.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        j
    };
    let int_end = digits(i);
    let mut end = int_end;
    let mut frac_digits = 0;
    if s.get(end) == Some(&b'.') {
        let f = digits(end + 1);
        frac_digits = f - (end + 1);
        end = f;
    }
    if int_end == i && frac_digits == 0 {
        return 0.0;
    }
    if matches!(s.get(end), Some(b'e' | b'E')) {
        let mut j = end + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let e = digits(j);
        if e > j {
            end = e;
        }
    }
    std::str::from_utf8(&s[start..end]).ok().and_then(|t| t.parse().ok()).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_prefixes() {
        assert_eq!(strtod_prefix(b"1.5"), 1.5);
        assert_eq!(strtod_prefix(b" -2e3xyz"), -2000.0);
        assert_eq!(strtod_prefix(b"1a"), 1.0);
        assert_eq!(strtod_prefix(b"abc"), 0.0);
        assert_eq!(strtod_prefix(b".5."), 0.5);
        assert_eq!(strtod_prefix(b"-Infinity"), f64::NEG_INFINITY);
        assert_eq!(strtod_prefix(b"3e"), 3.0);
        assert!(strtod_prefix(b"nan").is_nan());
    }

    #[test]
    fn canonical_integers() {
        assert_eq!(parse_canonical_i64(b"0"), Some(0));
        assert_eq!(parse_canonical_i64(b"-5"), Some(-5));
        assert_eq!(parse_canonical_i64(b"-9223372036854775808"), Some(i64::MIN));
        for s in [&b""[..], b"-", b"-0", b"01", b"+1", b" 1", b"1 ", b"9223372036854775808", b"1.0"] {
            assert_eq!(parse_canonical_i64(s), None, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn formats_integers() {
        let mut b = [0u8; 20];
        for v in [0, 1, -1, 42, i64::MAX, i64::MIN, 1_000_000] {
            assert_eq!(fmt_i64(v, &mut b), v.to_string().as_bytes());
        }
    }

    #[test]
    fn scores_as_redis_writes_them() {
        let mut b = Vec::new();
        for (d, want) in [
            (1.0, "1"),
            (-3.0, "-3"),
            (0.5, "0.5"),
            (0.1, "0.10000000000000001"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (-0.0, "-0"),
            (1e300, "1.0000000000000001e+300"),
        ] {
            score_to_string(d, &mut b);
            assert_eq!(b, want.as_bytes(), "{d}");
            let back = parse_score(&b).unwrap();
            assert!(back == d && back.is_sign_negative() == d.is_sign_negative(), "{d}");
        }
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_score(b"abc"), None);
        assert_eq!(parse_score(b"-infinity"), Some(f64::NEG_INFINITY));
    }
}
