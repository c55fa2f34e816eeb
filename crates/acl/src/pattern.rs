//! Key patterns prepared for checking: nearly all ACL patterns are a literal or a literal
//! prefix followed by `*` (`~app:*`), which a byte comparison decides; only the others
//! go through the glob matcher. A user with ten `prefix*` patterns then costs a few
//! comparisons per key rather than ten glob runs.

#[derive(Clone, Debug, PartialEq, Eq)]
enum Matcher {
    Exact,
    /// The pattern minus its trailing `*`.
    Prefix(usize),
    Glob,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyPattern {
    pub text: String,
    /// `KEY_READ` | `KEY_WRITE`.
    pub flags: u8,
    /// The byte every matching key starts with (a literal or literal-prefix pattern):
    /// most patterns are rejected on it alone.
    first: Option<u8>,
    matcher: Matcher,
}

fn is_literal(s: &[u8]) -> bool {
    !s.iter().any(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
}

impl KeyPattern {
    pub fn new(text: &str, flags: u8) -> KeyPattern {
        let bytes = text.as_bytes();
        let matcher = match bytes.split_last() {
            _ if is_literal(bytes) => Matcher::Exact,
            Some((b'*', head)) if is_literal(head) => Matcher::Prefix(head.len()),
            _ => Matcher::Glob,
        };
        let first = match matcher {
            Matcher::Glob => None,
            _ => bytes.first().copied().filter(|_| matcher != Matcher::Prefix(0)),
        };
        KeyPattern { text: text.to_string(), flags, first, matcher }
    }

    /// Redis's `stringmatchlen(pattern, key, nocase=0)`.
    #[inline]
    pub fn matches(&self, key: &[u8]) -> bool {
        if let Some(first) = self.first {
            if key.first() != Some(&first) {
                return false;
            }
        }
        let p = self.text.as_bytes();
        match self.matcher {
            Matcher::Exact => p == key,
            // Byte by byte: prefixes are short and most differ at the first byte, where
            // a call to memcmp would cost more than the comparison.
            Matcher::Prefix(n) => key.len() >= n && key.iter().zip(&p[..n]).all(|(a, b)| a == b),
            Matcher::Glob => ferrokv_keyspace::glob::glob_match(p, key, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The shortcuts decide exactly as the glob matcher would.
        #[test]
        fn shortcuts_agree_with_glob(pat in "[ab:*?\\\\\\[\\]]{0,6}", key in "[ab:*?\\[]{0,6}") {
            let kp = KeyPattern::new(&pat, 3);
            let glob = ferrokv_keyspace::glob::glob_match(pat.as_bytes(), key.as_bytes(), false);
            prop_assert_eq!(kp.matches(key.as_bytes()), glob);
        }
    }
}
