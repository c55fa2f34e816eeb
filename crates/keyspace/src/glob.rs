//! Redis's glob-style pattern matching (`KEYS`, `SCAN MATCH`, `PSUBSCRIBE`, `CONFIG GET`):
//! `*`, `?`, `[abc]`, `[^abc]`, `[a-z]` (reversed ranges allowed), and `\` escapes both
//! inside and outside brackets. An unterminated `[` behaves as if closed at the end of the
//! pattern, as in Redis.
//!
//! Matching is iterative with a single backtrack point for the last `*` (correct because
//! every other token consumes exactly one byte), so hostile patterns like `*a*a*a*…b`
//! cost O(pattern × string), never exponential time or deep recursion.

fn lower(b: u8, nocase: bool) -> u8 {
    if nocase {
        b.to_ascii_lowercase()
    } else {
        b
    }
}

/// Matches one single-byte token of `pat` starting at `p` against `c`. Returns the index
/// after the token on success.
fn match_token(pat: &[u8], mut p: usize, c: u8, nocase: bool) -> Option<usize> {
    match pat[p] {
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pat.len() => (lower(pat[p + 1], nocase) == lower(c, nocase)).then_some(p + 2),
        b'[' => {
            p += 1;
            let negate = pat.get(p) == Some(&b'^');
            if negate {
                p += 1;
            }
            let mut hit = false;
            loop {
                match pat.get(p) {
                    None => break,
                    Some(b']') => {
                        p += 1;
                        break;
                    }
                    Some(b'\\') if p + 1 < pat.len() => {
                        p += 1;
                        if lower(pat[p], nocase) == lower(c, nocase) {
                            hit = true;
                        }
                    }
                    Some(&start) if p + 2 < pat.len() && pat[p + 1] == b'-' => {
                        let (mut lo, mut hi) = (start, pat[p + 2]);
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        let (lo, hi, c) = (lower(lo, nocase), lower(hi, nocase), lower(c, nocase));
                        if lo <= c && c <= hi {
                            hit = true;
                        }
                        p += 2;
                    }
                    Some(&b) => {
                        if lower(b, nocase) == lower(c, nocase) {
                            hit = true;
                        }
                    }
                }
                p += 1;
            }
            (hit != negate).then_some(p)
        }
        b => (lower(b, nocase) == lower(c, nocase)).then_some(p + 1),
    }
}

/// True if `s` matches the glob `pat`.
pub fn glob_match(pat: &[u8], s: &[u8], nocase: bool) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    // (pattern index after the last `*`, string index that star has absorbed up to)
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pat.len() && pat[p] == b'*' {
            while p < pat.len() && pat[p] == b'*' {
                p += 1;
            }
            if p == pat.len() {
                return true;
            }
            star = Some((p, i));
            continue;
        }
        if i == s.len() {
            while p < pat.len() && pat[p] == b'*' {
                p += 1;
            }
            return p == pat.len();
        }
        if p < pat.len() {
            if let Some(next) = match_token(pat, p, s[i], nocase) {
                p = next;
                i += 1;
                continue;
            }
        }
        match star {
            Some((sp, si)) if si < s.len() => {
                star = Some((sp, si + 1));
                p = sp;
                i = si + 1;
            }
            _ => return false,
        }
    }
}

/// True if `pat` has no wildcard at all, so a match is an exact lookup.
pub fn is_literal(pat: &[u8]) -> bool {
    !pat.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn redis_glob_rules() {
        assert!(m("*", ""));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("a[\\]]b", "a]b"));
        assert!(m("[abc", "c"));
        assert!(!m("[abc", "d"));
        assert!(m("*a*b", "xxaxxb"));
        assert!(!m("*a*b", "xxaxxc"));
        assert!(m("user:*:name", "user:1000:name"));
        assert!(m("a\\", "a\\"));
        assert!(glob_match(b"HELLO", b"hello", true));
        assert!(!glob_match(b"HELLO", b"hello", false));
    }

    #[test]
    fn pathological_patterns_are_fast() {
        let pat = "*a".repeat(30) + "b";
        let s = "a".repeat(5000);
        let t = std::time::Instant::now();
        assert!(!m(&pat, &s));
        assert!(t.elapsed().as_secs() < 2);
    }
}
