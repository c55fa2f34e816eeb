//! Number formatting and parsing with the exact rules Redis 7.0 applies on the wire:
//! doubles print as C's `%.17g`, and numeric arguments parse like `strtod` with Redis's
//! extra checks (no leading space, no trailing junk, no NaN, no overflow).

/// Redis's `string2ll`: optional `-`, no `+`, no leading zeros, no spaces, fits in i64.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !neg => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            None
        } else {
            Some((v as i64).wrapping_neg())
        }
    } else {
        i64::try_from(v).ok()
    }
}

/// Formats `d` like C's `printf("%.*g", prec, d)`.
pub fn fmt_g(d: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // %g picks the style from the exponent of the %e rendering at precision prec-1.
    let sci = format!("{:.*e}", prec - 1, d);
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if exp < -4 || exp >= prec as i32 {
        let mantissa = strip_fraction_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        strip_fraction_zeros(&format!("{:.*}", decimals, d)).to_string()
    }
}

fn strip_fraction_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `%.17g`, the format of every double Redis 7.0 replies with (`inf`/`-inf` spelled out).
pub fn fmt_double(d: f64) -> String {
    fmt_g(d, 17)
}

/// Parses a double the way Redis's `string2d` does on top of `strtod`: the whole input
/// must be consumed, no leading whitespace, NaN refused, and a result that overflowed to
/// infinity or underflowed to zero refused (strtod's ERANGE).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(s).ok()?;
    let first = *s.first()?;
    if first.is_ascii_whitespace() || first == 0x0b {
        return None;
    }
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        let v = if text.starts_with('-') { f64::NEG_INFINITY } else { f64::INFINITY };
        return Some(v);
    }
    // Rust also accepts "nan" and "infinity" spellings; everything else it accepts is
    // what strtod accepts for decimal input.
    if lower.starts_with("nan") || lower.starts_with("inf") {
        return None;
    }
    if !body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')) {
        return None;
    }
    let v: f64 = text.parse().ok()?;
    if v.is_infinite() {
        return None;
    }
    if v == 0.0 && body.bytes().take_while(|&b| b != b'e' && b != b'E').any(|b| (b'1'..=b'9').contains(&b)) {
        return None;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g17_matches_printf() {
        // Expected strings are what glibc's printf("%.17g") prints.
        let cases: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (0.1, "0.10000000000000001"),
            (1.1, "1.1000000000000001"),
            (100.0, "100"),
            (1e17, "1e+17"),
            (1.5e16, "15000000000000000"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (-2.5, "-2.5"),
            (3.0, "3"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (d, want) in cases {
            assert_eq!(fmt_double(*d), *want, "{d}");
        }
        assert_eq!(fmt_g(1234.5678, 5), "1234.6");
        assert_eq!(fmt_g(0.000012345, 3), "1.23e-05");
    }

    #[test]
    fn string2ll_rules() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        for bad in [&b"-0"[..], b"+1", b"01", b" 1", b"", b"-", b"1a"] {
            assert_eq!(parse_i64(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn strtod_rules() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"+Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b".5"), Some(0.5));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"0"), Some(0.0));
        assert_eq!(parse_f64(b"0e10"), Some(0.0));
        for bad in [&b"nan"[..], b" 1", b"1 ", b"", b"abc", b"1e400", b"1e-400", b"1.5x"] {
            assert_eq!(parse_f64(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
