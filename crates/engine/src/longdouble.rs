//! Safe wrappers over the C long double helpers (see `csrc/longdouble.c` for why they exist).

extern "C" {
    fn ferrokv_ld_add_human(a: *const u8, alen: usize, b: *const u8, blen: usize, out: *mut u8, outlen: usize) -> i64;
    fn ferrokv_ld_timeout_ms(s: *const u8, len: usize, ms: *mut i64) -> i32;
}

/// Why a blocking command's timeout was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TimeoutError {
    NotAFloat,
    Negative,
}

/// A timeout in seconds as Redis turns it into milliseconds: long double arithmetic,
/// rounded up; results beyond `i64` count as negative (x86's conversion gives LLONG_MIN).
pub fn timeout_ms(s: &[u8]) -> Result<i64, TimeoutError> {
    let mut ms = 0i64;
    // SAFETY: the pointer and length describe a live buffer the C side only reads, and
    // `ms` is a valid place for it to write one i64.
    match unsafe { ferrokv_ld_timeout_ms(s.as_ptr(), s.len(), &mut ms) } {
        0 => Ok(ms),
        -1 => Err(TimeoutError::NotAFloat),
        _ => Err(TimeoutError::Negative),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum LdError {
    /// The current value is not a valid float.
    BadBase,
    /// The increment is not a valid float.
    BadIncrement,
    /// The sum is NaN or infinite.
    NotFinite,
}

/// `a + b` in long double arithmetic, formatted as Redis's human long double format.
pub fn add_human(a: &[u8], b: &[u8]) -> Result<Vec<u8>, LdError> {
    let mut out = vec![0u8; 5 * 1024 + 64];
    // SAFETY: pointers and lengths describe live buffers; the C side writes at most
    // `out.len()` bytes and NUL-terminates within it.
    let n = unsafe { ferrokv_ld_add_human(a.as_ptr(), a.len(), b.as_ptr(), b.len(), out.as_mut_ptr(), out.len()) };
    match n {
        -1 => Err(LdError::BadBase),
        -2 => Err(LdError::BadIncrement),
        -3 | -4 => Err(LdError::NotFinite),
        n => {
            out.truncate(n as usize);
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_long_double_formatting() {
        let s = |a: &str, b: &str| String::from_utf8(add_human(a.as_bytes(), b.as_bytes()).unwrap()).unwrap();
        assert_eq!(s("0.1", "0.2"), "0.3");
        assert_eq!(s("10.5", "0.1"), "10.6");
        assert_eq!(s("5", "-5"), "0");
        assert_eq!(s("1", "1e3"), "1001");
        assert_eq!(s("3.0e3", "2"), "3002");
        assert_eq!(add_human(b"abc", b"1"), Err(LdError::BadBase));
        assert_eq!(add_human(b"1", b" 1"), Err(LdError::BadIncrement));
        assert_eq!(add_human(b"1", b"nan"), Err(LdError::BadIncrement));
        assert_eq!(add_human(b"1.1e4932", b"1.1e4932"), Err(LdError::NotFinite));
    }

    #[test]
    fn timeouts_follow_redis_long_double_rounding() {
        assert_eq!(timeout_ms(b"0"), Ok(0));
        assert_eq!(timeout_ms(b"-0"), Ok(0));
        assert_eq!(timeout_ms(b"-0.0001"), Ok(0));
        assert_eq!(timeout_ms(b"0.0001"), Ok(1));
        assert_eq!(timeout_ms(b"1.5"), Ok(1500));
        // Just above 253 in long double (a 64-bit double gives exactly 253).
        assert_eq!(timeout_ms(b"0.253"), Ok(254));
        assert_eq!(timeout_ms(b"1e-400"), Ok(1));
        assert_eq!(timeout_ms(b"1e309"), Err(TimeoutError::Negative));
        assert_eq!(timeout_ms(b"inf"), Err(TimeoutError::Negative));
        assert_eq!(timeout_ms(b"9223372036854776"), Err(TimeoutError::Negative));
        assert_eq!(timeout_ms(b"-1"), Err(TimeoutError::Negative));
        assert_eq!(timeout_ms(b"1e5000"), Err(TimeoutError::NotAFloat));
        assert_eq!(timeout_ms(b"1e-5000"), Err(TimeoutError::NotAFloat));
        assert_eq!(timeout_ms(b"nan"), Err(TimeoutError::NotAFloat));
        assert_eq!(timeout_ms(b" 1"), Err(TimeoutError::NotAFloat));
        assert_eq!(timeout_ms(b""), Err(TimeoutError::NotAFloat));
    }
}
