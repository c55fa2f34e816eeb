//! Key patterns prepared for checking: nearly all ACL patterns are a literal or a literal
//! prefix followed by `*` (`~app:*`), which a byte comparison decides; only the others
//! go through the glob matcher. A user with ten `prefix*` patterns then costs a few
//! comparisons per key rather than ten glob runs.

use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Matcher {
    Exact,
    /// The pattern minus its trailing `*`.
    Prefix(usize),
    /// A prefix of at most 8 bytes, as a little-endian word and the mask of its bytes:
    /// a key of 8 bytes or more is decided by one load and one compare.
    ShortPrefix {
        len: usize,
        word: u64,
        mask: u64,
    },
    Glob,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyPattern {
    pub text: String,
    /// `KEY_READ` | `KEY_WRITE`.
    pub flags: u8,
    /// The byte every matching key starts with (a literal or literal-prefix pattern):
    /// [`KeyPatterns`] indexes patterns by it.
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
        let matcher = match matcher {
            Matcher::Prefix(len) if len <= 8 => {
                let mut word = [0u8; 8];
                word[..len].copy_from_slice(&bytes[..len]);
                let mask = if len == 8 { u64::MAX } else { (1u64 << (8 * len)) - 1 };
                Matcher::ShortPrefix { len, word: u64::from_le_bytes(word), mask }
            }
            m => m,
        };
        KeyPattern { text: text.to_string(), flags, first, matcher }
    }

    /// The literal a key must equal (false) or start with (true), for a pattern that is
    /// one; None for a glob.
    pub fn literal(&self) -> Option<(&[u8], bool)> {
        let p = self.text.as_bytes();
        match self.matcher {
            Matcher::Exact => Some((p, false)),
            Matcher::Prefix(n) | Matcher::ShortPrefix { len: n, .. } => Some((&p[..n], true)),
            Matcher::Glob => None,
        }
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
            Matcher::ShortPrefix { len, word, mask } => match key.first_chunk::<8>() {
                Some(head) => (u64::from_le_bytes(*head) ^ word) & mask == 0,
                None => key.len() >= len && key.iter().zip(&p[..len]).all(|(a, b)| a == b),
            },
            Matcher::Glob => ferrokv_keyspace::glob::glob_match(p, key, false),
        }
    }
}

/// A selector's key patterns in the order they were given (ACL LIST prints them so),
/// indexed by first byte: a key is compared only with the patterns that start with its
/// first byte and the few that start with a wildcard, so ten `prefix*` patterns cost about
/// one comparison, not ten.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyPatterns {
    list: Vec<KeyPattern>,
    /// Indices into `list` of the anchored patterns, by first byte.
    anchored: Vec<usize>,
    /// `anchored[offsets[b]..offsets[b + 1]]` start with byte `b`: 257 entries, or none
    /// when no pattern is anchored. A key's candidates are then two loads away.
    offsets: Vec<u32>,
    /// Indices of the patterns without a first byte.
    unanchored: Vec<usize>,
    /// Pattern text → index in `list`, kept from [`HASHED_FROM`] patterns on: the patterns
    /// of a big set tend to share their first byte (`user:1:*`, `user:2:*`…), so finding a
    /// repeat among them would make adding them one by one quadratic.
    by_text: HashMap<Box<str>, usize>,
}

/// Sets smaller than this find a repeated pattern by comparing it with those of the same
/// first byte: cheaper than hashing, and no second copy of the texts.
const HASHED_FROM: usize = 32;

impl KeyPatterns {
    pub fn clear(&mut self) {
        *self = KeyPatterns::default();
    }

    /// Adds `text` with `flags`, or the flags to the same pattern given before.
    ///
    /// The index is updated in place (the new pattern goes last among those of its first
    /// byte), so a user given thousands of patterns in one ACL SETUSER costs a memmove per
    /// pattern rather than a rebuilt index. A repeat can only be among the patterns that
    /// share its first byte (or its lack of one), or is found by hash in a big set.
    pub fn add(&mut self, text: &str, flags: u8) {
        let pattern = KeyPattern::new(text, flags);
        let repeat = if self.by_text.is_empty() {
            let candidates = match pattern.first {
                Some(b) if !self.offsets.is_empty() => {
                    &self.anchored[self.offsets[usize::from(b)] as usize..self.offsets[usize::from(b) + 1] as usize]
                }
                Some(_) => &[],
                None => &self.unanchored[..],
            };
            candidates.iter().copied().find(|&i| self.list[i].text == text)
        } else {
            self.by_text.get(text).copied()
        };
        if let Some(i) = repeat {
            self.list[i].flags |= flags;
            return;
        }
        let index = self.list.len();
        match pattern.first {
            Some(b) => {
                if self.offsets.is_empty() {
                    self.offsets = vec![0; 257];
                }
                let end = &mut self.offsets[usize::from(b) + 1..];
                self.anchored.insert(end[0] as usize, index);
                end.iter_mut().for_each(|o| *o += 1);
            }
            None => self.unanchored.push(index),
        }
        self.list.push(pattern);
        if !self.by_text.is_empty() {
            self.by_text.insert(text.into(), index);
        } else if self.list.len() >= HASHED_FROM {
            self.by_text = self.list.iter().enumerate().map(|(i, k)| (k.text.as_str().into(), i)).collect();
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, KeyPattern> {
        self.list.iter()
    }

    /// Whether a pattern with at least `access` matches `key`.
    #[inline]
    pub fn allow(&self, key: &[u8], access: u8) -> bool {
        let fits = |i: usize| {
            let k = &self.list[i];
            k.flags & access == access && k.matches(key)
        };
        if let (Some(&b), false) = (key.first(), self.offsets.is_empty()) {
            let (from, to) = (self.offsets[usize::from(b)], self.offsets[usize::from(b) + 1]);
            if self.anchored[from as usize..to as usize].iter().any(|&i| fits(i)) {
                return true;
            }
        }
        self.unanchored.iter().any(|&i| fits(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KEY_READ, KEY_WRITE};
    use proptest::prelude::*;

    /// A user with thousands of patterns (one ACL SETUSER): every one is found through
    /// the index, repeats only add their flags, and the order ACL LIST prints is kept.
    #[test]
    fn thousands_of_patterns_are_indexed_as_they_come() {
        let mut set = KeyPatterns::default();
        for i in 0..3000 {
            let text = match i % 3 {
                0 => format!("user:{i}:*"),
                1 => format!("{i}"),
                _ => format!("*:{i}"),
            };
            set.add(&text, KEY_READ);
            set.add(&text, KEY_WRITE);
        }
        assert_eq!(set.iter().count(), 3000);
        assert!(set.iter().all(|k| k.flags == KEY_READ | KEY_WRITE));
        assert_eq!(set.iter().nth(2999).map(|k| k.text.as_str()), Some("*:2999"));
        for i in (0..3000).step_by(7) {
            let key = match i % 3 {
                0 => format!("user:{i}:x"),
                1 => format!("{i}"),
                _ => format!("any:{i}"),
            };
            assert!(set.allow(key.as_bytes(), KEY_READ | KEY_WRITE), "{key}");
        }
        assert!(!set.allow(b"user:1:x", KEY_READ));
        assert!(!set.allow(b"3001", KEY_READ));
    }

    proptest! {
        /// The shortcuts decide exactly as the glob matcher would.
        #[test]
        fn shortcuts_agree_with_glob(pat in "[ab:*?\\\\\\[\\]]{0,10}", key in "[ab:*?\\[]{0,12}") {
            let kp = KeyPattern::new(&pat, 3);
            let glob = ferrokv_keyspace::glob::glob_match(pat.as_bytes(), key.as_bytes(), false);
            prop_assert_eq!(kp.matches(key.as_bytes()), glob);
        }

        /// Literal prefixes of every length around the one-word shortcut, against keys
        /// shorter and longer than a word, decide as the glob matcher.
        #[test]
        fn prefixes_around_a_word_agree_with_glob(len in 0usize..11, key in "[ab]{0,12}", prefix in "[ab]{10}") {
            let pat = format!("{}*", &prefix[..len]);
            let kp = KeyPattern::new(&pat, 3);
            let glob = ferrokv_keyspace::glob::glob_match(pat.as_bytes(), key.as_bytes(), false);
            prop_assert_eq!(kp.matches(key.as_bytes()), glob);
            let longer = format!("{}{key}", &prefix[..len]);
            prop_assert!(kp.matches(longer.as_bytes()));
        }

        /// The index decides as a walk over every pattern would, in small sets and in sets
        /// past the size where repeats are found by hash.
        #[test]
        fn index_agrees_with_a_walk(pats in proptest::collection::vec(("[ab:*?]{0,4}", 1u8..4), 0..48),
                                    key in "[ab:*?]{0,5}", access in 0u8..4) {
            let mut set = KeyPatterns::default();
            let mut walk: Vec<KeyPattern> = Vec::new();
            for (text, flags) in &pats {
                set.add(text, *flags);
                match walk.iter_mut().find(|k| &k.text == text) {
                    Some(k) => k.flags |= flags,
                    None => walk.push(KeyPattern::new(text, *flags)),
                }
            }
            let expected = walk.iter().any(|k| k.flags & access == access && k.matches(key.as_bytes()));
            prop_assert_eq!(set.allow(key.as_bytes(), access), expected);
            prop_assert_eq!(set.iter().collect::<Vec<_>>(), walk.iter().collect::<Vec<_>>());
        }
    }
}
