//! `ZSet`: sorted sets, members ordered by (score, member bytes).
//!
//! Small sorted sets are one [`Packed`] buffer of alternating member and score entries,
//! kept in order (Redis's `listpack` encoding). A score is stored as its 8 IEEE-754 bytes,
//! so it round-trips exactly (`-0` stays `-0`). Once a set would hold more than
//! `zset-max-listpack-entries` members, or a member longer than `zset-max-listpack-value`
//! is added, it becomes a [`Dict`] from member to score (O(1) ZSCORE) plus a
//! [`ScoreTree`] (O(log n) rank and range queries), Redis's `skiplist` encoding. Like
//! Redis, a set never converts back on removal; only sets built whole (ZUNIONSTORE,
//! ZRANGESTORE…) pick their encoding by size, through [`ZSet::from_entries`].
//!
//! Scores compare with `<`/`==`, so `-0.0 == 0.0`; NaN is never stored (callers reject it).
//!
//! Range lookups follow Redis's algorithms, not just their results on well-formed input:
//! the packed form scans linearly from the matching end, the tree form binary-searches.
//! For score ranges and for lex ranges over equal scores (the documented use) both agree;
//! for lex ranges over mixed scores the packed form answers exactly as a listpack does.

use super::packed::Packed;
use super::scoretree::{self, ScoreTree};
use crate::dict::Dict;
use crate::smallbytes::SmallBytes;
use std::cmp::Ordering;

/// The thresholds that decide the encoding.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

pub enum ZSet {
    Packed(Packed),
    Tree { dict: Dict<f64>, tree: ScoreTree },
}

/// Score then member order, with `-0.0 == 0.0`.
pub fn cmp_entry(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    s1.partial_cmp(&s2).unwrap_or(Ordering::Equal).then_with(|| m1.cmp(m2))
}

/// What a listpack holds for `score`: Redis stores integral scores as integers, which
/// turns `-0` into `0` (the tree form keeps `-0`, as a skiplist does).
fn encode_score(score: f64) -> [u8; 8] {
    let stored = if score == 0.0 { 0.0 } else { score };
    stored.to_le_bytes()
}

/// A packed score as Redis's listpack spells it (ZSCAN shows the stored text): integral
/// values within ±2^62 as integers, others as `%.17g`.
pub fn packed_score_text(score: f64) -> String {
    const LIMIT: f64 = (i64::MAX / 2) as f64;
    if (-LIMIT..=LIMIT).contains(&score) && score.trunc() == score {
        itoa::Buffer::new().format(score as i64).to_string()
    } else {
        ferrokv_resp::num::fmt_double(score)
    }
}

fn decode_score(bytes: &[u8]) -> f64 {
    let raw: [u8; 8] = bytes.try_into().expect("packed scores are 8 bytes");
    f64::from_le_bytes(raw)
}

/// The (offset of the member entry, member, score) triples of a packed set, in order.
fn packed_pairs(p: &Packed) -> impl Iterator<Item = (usize, &[u8], f64)> {
    let mut it = p.entries();
    std::iter::from_fn(move || {
        let (off, m) = it.next()?;
        let (_, s) = it.next()?;
        Some((off, m, decode_score(s)))
    })
}

/// A score or lex range, with Redis's inclusive/exclusive bounds.
pub trait RangeSpec {
    /// The entry is at or past the lower bound.
    fn gte_min(&self, score: f64, member: &[u8]) -> bool;
    /// The entry is at or before the upper bound.
    fn lte_max(&self, score: f64, member: &[u8]) -> bool;
    /// The bounds alone rule out every entry (min above max, or equal and exclusive).
    fn is_void(&self) -> bool;
}

/// `ZRANGEBYSCORE` bounds.
#[derive(Clone, Copy, Debug)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl RangeSpec for ScoreRange {
    fn gte_min(&self, score: f64, _: &[u8]) -> bool {
        if self.minex {
            score > self.min
        } else {
            score >= self.min
        }
    }

    fn lte_max(&self, score: f64, _: &[u8]) -> bool {
        if self.maxex {
            score < self.max
        } else {
            score <= self.max
        }
    }

    fn is_void(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.minex || self.maxex))
    }
}

/// One end of a `ZRANGEBYLEX` range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    /// `-`: below every string.
    Min,
    /// `+`: above every string.
    Max,
    /// `[x` (inclusive) or `(x` (exclusive).
    Value { bytes: Vec<u8>, exclusive: bool },
}

impl LexBound {
    fn exclusive(&self) -> bool {
        match self {
            LexBound::Min | LexBound::Max => true,
            LexBound::Value { exclusive, .. } => *exclusive,
        }
    }

    /// How a member compares with this bound.
    fn cmp_member(&self, member: &[u8]) -> Ordering {
        match self {
            LexBound::Min => Ordering::Greater,
            LexBound::Max => Ordering::Less,
            LexBound::Value { bytes, .. } => member.cmp(bytes),
        }
    }
}

/// `ZRANGEBYLEX` bounds.
#[derive(Clone, Debug)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl RangeSpec for LexRange {
    fn gte_min(&self, _: f64, member: &[u8]) -> bool {
        let c = self.min.cmp_member(member);
        c == Ordering::Greater || (c == Ordering::Equal && !self.min.exclusive())
    }

    fn lte_max(&self, _: f64, member: &[u8]) -> bool {
        let c = self.max.cmp_member(member);
        c == Ordering::Less || (c == Ordering::Equal && !self.max.exclusive())
    }

    fn is_void(&self) -> bool {
        // Redis compares the two bounds as strings where `-`/`+` sit below/above all.
        let cmp = match (&self.min, &self.max) {
            (LexBound::Min, LexBound::Min) | (LexBound::Max, LexBound::Max) => Ordering::Equal,
            (LexBound::Min, _) | (_, LexBound::Max) => Ordering::Less,
            (LexBound::Max, _) | (_, LexBound::Min) => Ordering::Greater,
            (LexBound::Value { bytes: a, .. }, LexBound::Value { bytes: b, .. }) => a.cmp(b),
        };
        cmp == Ordering::Greater || (cmp == Ordering::Equal && (self.min.exclusive() || self.max.exclusive()))
    }
}

/// Iterates entries as (member, score), forward or backward from a rank.
pub enum ZIter<'a> {
    Packed(std::vec::IntoIter<(&'a [u8], f64)>),
    Tree(scoretree::Iter<'a>),
}

impl<'a> Iterator for ZIter<'a> {
    type Item = (&'a [u8], f64);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ZIter::Packed(it) => it.next(),
            ZIter::Tree(it) => it.next().map(|(s, m)| (m.as_slice(), s)),
        }
    }
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::Packed(Packed::new())
    }
}

impl ZSet {
    /// An empty set in the encoding ZADD creates for a first member of `first_len` bytes.
    pub fn for_first_member(first_len: usize, limits: Limits) -> ZSet {
        if limits.max_entries == 0 || first_len > limits.max_value {
            ZSet::empty_tree()
        } else {
            ZSet::default()
        }
    }

    fn empty_tree() -> ZSet {
        ZSet::Tree { dict: Dict::new(), tree: ScoreTree::new() }
    }

    /// A set holding `entries` (distinct members, any order), packed if it is small enough
    /// (the encoding Redis gives results it builds whole, e.g. ZUNIONSTORE's).
    pub fn from_entries(mut entries: Vec<(Vec<u8>, f64)>, limits: Limits) -> ZSet {
        entries.sort_by(|a, b| cmp_entry(a.1, &a.0, b.1, &b.0));
        let longest = entries.iter().map(|e| e.0.len()).max().unwrap_or(0);
        let mut z = if entries.len() <= limits.max_entries && longest <= limits.max_value {
            ZSet::default()
        } else {
            ZSet::empty_tree()
        };
        for (m, s) in &entries {
            z.push_max(m, *s);
        }
        z
    }

    /// Appends an entry known to sort after every present one.
    fn push_max(&mut self, member: &[u8], score: f64) {
        match self {
            ZSet::Packed(p) => {
                p.push(member);
                p.push(&encode_score(score));
            }
            ZSet::Tree { dict, tree } => {
                dict.insert_new(SmallBytes::from(member), score);
                tree.insert(score, SmallBytes::from(member));
            }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            ZSet::Packed(p) => p.len() / 2,
            ZSet::Tree { tree, .. } => tree.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_packed(&self) -> bool {
        matches!(self, ZSet::Packed(_))
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            ZSet::Packed(_) => "listpack",
            ZSet::Tree { .. } => "skiplist",
        }
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Packed(p) => packed_pairs(p).find(|e| e.1 == member).map(|e| e.2),
            ZSet::Tree { dict, .. } => dict.get(member).copied(),
        }
    }

    /// Converts a packed sorted set to the tree form (SORT does, for good, as in Redis).
    pub fn convert_to_tree(&mut self) {
        let ZSet::Packed(p) = self else { return };
        let mut converted = ZSet::empty_tree();
        for (_, m, s) in packed_pairs(p) {
            converted.push_max(m, s);
        }
        *self = converted;
    }

    /// Adds a member that is not present, converting to the tree form first if the set
    /// would outgrow the packed limits (checked before inserting, as Redis does).
    pub fn insert(&mut self, member: &[u8], score: f64, limits: Limits) {
        if let ZSet::Packed(p) = self {
            if p.len() / 2 + 1 > limits.max_entries || member.len() > limits.max_value {
                self.convert_to_tree();
            }
        }
        match self {
            ZSet::Packed(p) => {
                let at = packed_pairs(p)
                    .find(|e| cmp_entry(e.2, e.1, score, member) == Ordering::Greater)
                    .map_or(p.byte_len(), |e| e.0);
                p.insert_at(at, member);
                let score_at = p.next_offset(at);
                p.insert_at(score_at, &encode_score(score));
            }
            ZSet::Tree { dict, tree } => {
                dict.insert_new(SmallBytes::from(member), score);
                tree.insert(score, SmallBytes::from(member));
            }
        }
    }

    /// Removes `member`, returning its score if it was present.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match self {
            ZSet::Packed(p) => {
                let (off, _, score) = packed_pairs(p).find(|e| e.1 == member)?;
                p.remove_at(off, 2);
                Some(score)
            }
            ZSet::Tree { dict, tree } => {
                let score = dict.remove(member)?;
                tree.remove(score, member);
                dict.shrink_if_needed();
                Some(score)
            }
        }
    }

    /// Sets the score of a present member (no-op when equal, so `-0` does not replace `0`).
    pub fn update(&mut self, member: &[u8], score: f64) {
        match self {
            ZSet::Packed(_) => {
                if let Some(old) = self.score(member) {
                    if old != score {
                        self.remove(member);
                        // Same size as before: the limits cannot be crossed.
                        let no_limits = Limits { max_entries: usize::MAX, max_value: usize::MAX };
                        self.insert(member, score, no_limits);
                    }
                }
            }
            ZSet::Tree { dict, tree } => {
                let Some(slot) = dict.get_mut(member) else { return };
                let old = *slot;
                if old != score {
                    *slot = score;
                    if let Some(m) = tree.remove(old, member) {
                        tree.insert(score, m);
                    }
                }
            }
        }
    }

    /// 0-based rank of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match self {
            ZSet::Packed(p) => packed_pairs(p).position(|e| e.1 == member),
            ZSet::Tree { dict, tree } => tree.rank(*dict.get(member)?, member),
        }
    }

    /// The entry at 0-based `rank`.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        match self {
            ZSet::Packed(p) => packed_pairs(p).nth(rank).map(|e| (e.1, e.2)),
            ZSet::Tree { tree, .. } => tree.get(rank).map(|(s, m)| (m.as_slice(), s)),
        }
    }

    /// Entries from `rank` on: ascending to the end, or (`rev`) descending to rank 0.
    pub fn iter_from(&self, rank: usize, rev: bool) -> ZIter<'_> {
        match self {
            ZSet::Packed(p) => {
                let mut all: Vec<(&[u8], f64)> = packed_pairs(p).map(|e| (e.1, e.2)).collect();
                if rev {
                    all.truncate(rank.saturating_add(1));
                    all.reverse();
                } else {
                    all.drain(..rank.min(all.len()));
                }
                ZIter::Packed(all.into_iter())
            }
            ZSet::Tree { tree, .. } => ZIter::Tree(if rev { tree.iter_rev_from(rank) } else { tree.iter_from(rank) }),
        }
    }

    /// All entries in ascending order.
    pub fn iter(&self) -> ZIter<'_> {
        self.iter_from(0, false)
    }

    /// Rank of the first entry in `range` (None if none is).
    pub fn first_in_range(&self, range: &impl RangeSpec) -> Option<usize> {
        if !self.may_hold(range) {
            return None;
        }
        let (rank, s, m) = match self {
            ZSet::Packed(p) => {
                let (i, (_, m, s)) = packed_pairs(p).enumerate().find(|(_, e)| range.gte_min(e.2, e.1))?;
                (i, s, m)
            }
            ZSet::Tree { tree, .. } => {
                let i = tree.partition_point(|s, m| !range.gte_min(s, m));
                let (s, m) = tree.get(i)?;
                (i, s, m.as_slice())
            }
        };
        range.lte_max(s, m).then_some(rank)
    }

    /// Rank of the last entry in `range` (None if none is).
    pub fn last_in_range(&self, range: &impl RangeSpec) -> Option<usize> {
        if !self.may_hold(range) {
            return None;
        }
        let (rank, s, m) = match self {
            ZSet::Packed(p) => {
                let pairs: Vec<_> = packed_pairs(p).collect();
                let i = pairs.iter().rposition(|e| range.lte_max(e.2, e.1))?;
                (i, pairs[i].2, pairs[i].1)
            }
            ZSet::Tree { tree, .. } => {
                let i = tree.partition_point(|s, m| range.lte_max(s, m)).checked_sub(1)?;
                let (s, m) = tree.get(i)?;
                (i, s, m.as_slice())
            }
        };
        range.gte_min(s, m).then_some(rank)
    }

    /// Redis's quick rejection before a range search: the bounds are not void, the last
    /// entry reaches the minimum and the first does not pass the maximum.
    fn may_hold(&self, range: &impl RangeSpec) -> bool {
        if range.is_void() || self.is_empty() {
            return false;
        }
        let (Some((fm, fs)), Some((lm, ls))) = (self.get(0), self.last()) else { return false };
        range.gte_min(ls, lm) && range.lte_max(fs, fm)
    }

    fn last(&self) -> Option<(&[u8], f64)> {
        match self {
            ZSet::Packed(p) => packed_pairs(p).last().map(|e| (e.1, e.2)),
            ZSet::Tree { tree, .. } => {
                tree.len().checked_sub(1).and_then(|i| tree.get(i)).map(|(s, m)| (m.as_slice(), s))
            }
        }
    }

    /// Ranks `start..end` of the entries in `range`: from the first in range, on while
    /// entries stay at or below the maximum.
    pub fn range_ranks(&self, range: &impl RangeSpec) -> std::ops::Range<usize> {
        let Some(first) = self.first_in_range(range) else { return 0..0 };
        let end = match self {
            ZSet::Packed(_) => first + self.iter_from(first, false).take_while(|e| range.lte_max(e.1, e.0)).count(),
            ZSet::Tree { tree, .. } => tree.partition_point(|s, m| range.lte_max(s, m)).max(first + 1),
        };
        first..end
    }

    /// Removes the entries with ranks `start..=end` (clamped; nothing if empty) and
    /// returns them in ascending order.
    pub fn remove_ranks(&mut self, start: usize, end: usize) -> Vec<(SmallBytes, f64)> {
        let len = self.len();
        if start > end || start >= len {
            return Vec::new();
        }
        let end = end.min(len - 1);
        match self {
            ZSet::Packed(p) => {
                let Some((off, _, _)) = packed_pairs(p).nth(start) else { return Vec::new() };
                let removed: Vec<(SmallBytes, f64)> =
                    packed_pairs(p).skip(start).take(end - start + 1).map(|e| (SmallBytes::from(e.1), e.2)).collect();
                p.remove_at(off, 2 * removed.len());
                removed
            }
            ZSet::Tree { dict, tree } => {
                let removed = tree.remove_range(start, end);
                for (_, m) in &removed {
                    dict.remove(m);
                }
                dict.shrink_if_needed();
                removed.into_iter().map(|(s, m)| (m, s)).collect()
            }
        }
    }

    /// A uniformly random entry.
    pub fn random(&self, rng: &mut fastrand::Rng) -> Option<(&[u8], f64)> {
        if self.is_empty() {
            return None;
        }
        self.get(rng.usize(0..self.len()))
    }

    /// ZSCAN step: packed sets return everything at once (cursor 0 next).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match self {
            ZSet::Packed(_) => {
                self.iter().for_each(|(m, s)| f(m, s));
                0
            }
            ZSet::Tree { dict, .. } => dict.scan(cursor, |m, s| f(m, *s)),
        }
    }

    /// All entries, owned, in ascending order.
    pub fn entries(&self) -> Vec<(Vec<u8>, f64)> {
        self.iter().map(|(m, s)| (m.to_vec(), s)).collect()
    }

    pub fn heap_size(&self) -> usize {
        match self {
            ZSet::Packed(p) => p.heap_size(),
            ZSet::Tree { dict, tree } => {
                dict.overhead_bytes() + dict.iter().map(|(k, _)| k.heap_size()).sum::<usize>() + tree.memory()
            }
        }
    }
}

impl Clone for ZSet {
    /// Keeps the encoding, as COPY does in Redis.
    fn clone(&self) -> Self {
        let mut z = match self {
            ZSet::Packed(p) => return ZSet::Packed(p.clone()),
            ZSet::Tree { .. } => ZSet::empty_tree(),
        };
        for (m, s) in self.iter() {
            z.push_max(m, s);
        }
        z
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ZSet({} members, {})", self.len(), self.encoding())
    }
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits { max_entries: 4, max_value: 8 };

    fn members(z: &ZSet) -> Vec<String> {
        z.iter().map(|(m, _)| String::from_utf8_lossy(m).into_owned()).collect()
    }

    fn both_encodings(entries: &[(&str, f64)]) -> [ZSet; 2] {
        let owned: Vec<(Vec<u8>, f64)> = entries.iter().map(|(m, s)| (m.as_bytes().to_vec(), *s)).collect();
        let big = Limits { max_entries: 1000, max_value: 1000 };
        let none = Limits { max_entries: 0, max_value: 0 };
        [ZSet::from_entries(owned.clone(), big), ZSet::from_entries(owned, none)]
    }

    #[test]
    fn converts_on_size_and_member_length() {
        let mut z = ZSet::for_first_member(1, L);
        for (i, m) in ["d", "c", "b", "a"].iter().enumerate() {
            z.insert(m.as_bytes(), i as f64, L);
        }
        assert_eq!(z.encoding(), "listpack");
        assert_eq!(members(&z), ["d", "c", "b", "a"]);
        z.insert(b"e", -1.0, L);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(members(&z), ["e", "d", "c", "b", "a"]);
        // Removing does not convert back.
        z.remove(b"e");
        z.remove(b"d");
        assert_eq!(z.encoding(), "skiplist");
        let mut long = ZSet::for_first_member(1, L);
        long.insert(b"x", 1.0, L);
        long.insert(b"123456789", 2.0, L);
        assert_eq!(long.encoding(), "skiplist");
        assert_eq!(ZSet::for_first_member(9, L).encoding(), "skiplist");
        assert_eq!(ZSet::for_first_member(1, Limits { max_entries: 0, max_value: 64 }).encoding(), "skiplist");
    }

    #[test]
    fn scores_round_trip_and_zero_signs_compare_equal() {
        for mut z in both_encodings(&[("a", -0.0), ("b", 0.1), ("c", f64::INFINITY), ("d", f64::NEG_INFINITY)]) {
            // A listpack stores -0 as the integer 0; a skiplist keeps the sign.
            assert_eq!(z.score(b"a").unwrap().is_sign_negative(), !z.is_packed());
            assert_eq!(z.score(b"b"), Some(0.1));
            assert_eq!(members(&z), ["d", "a", "b", "c"]);
            // 0 == -0: no update, the stored sign stays.
            z.update(b"a", 0.0);
            assert_eq!(z.score(b"a").unwrap().is_sign_negative(), !z.is_packed());
            z.update(b"a", 5.0);
            assert_eq!(members(&z), ["d", "b", "a", "c"]);
            assert_eq!(z.rank(b"a"), Some(2));
        }
    }

    #[test]
    fn rank_get_and_ranges_agree_across_encodings() {
        let entries: Vec<(String, f64)> = (0..300).map(|i| (format!("m{i:03}"), (i / 3) as f64)).collect();
        let refs: Vec<(&str, f64)> = entries.iter().map(|(m, s)| (m.as_str(), *s)).collect();
        let [packed, tree] = both_encodings(&refs);
        assert_eq!(packed.encoding(), "listpack");
        assert_eq!(tree.encoding(), "skiplist");
        for (i, (m, _)) in entries.iter().enumerate() {
            assert_eq!(packed.rank(m.as_bytes()), Some(i));
            assert_eq!(tree.rank(m.as_bytes()), Some(i));
            assert_eq!(tree.get(i).map(|e| e.0.to_vec()), Some(m.as_bytes().to_vec()));
        }
        let ranges = [
            ScoreRange { min: 10.0, max: 20.0, minex: false, maxex: false },
            ScoreRange { min: 10.0, max: 20.0, minex: true, maxex: true },
            ScoreRange { min: f64::NEG_INFINITY, max: f64::INFINITY, minex: false, maxex: false },
            ScoreRange { min: 5.0, max: 5.0, minex: true, maxex: false },
            ScoreRange { min: 200.0, max: 300.0, minex: false, maxex: false },
            ScoreRange { min: 20.0, max: 10.0, minex: false, maxex: false },
        ];
        for r in &ranges {
            assert_eq!(packed.range_ranks(r), tree.range_ranks(r), "{r:?}");
            assert_eq!(packed.last_in_range(r), tree.last_in_range(r), "{r:?}");
        }
        assert_eq!(tree.range_ranks(&ranges[0]), 30..63);
        assert_eq!(tree.range_ranks(&ranges[1]), 33..60);
        let rev: Vec<_> = tree.iter_from(2, true).map(|e| e.0.to_vec()).collect();
        assert_eq!(rev, vec![b"m002".to_vec(), b"m001".to_vec(), b"m000".to_vec()]);
        let rev: Vec<_> = packed.iter_from(2, true).map(|e| e.0.to_vec()).collect();
        assert_eq!(rev, vec![b"m002".to_vec(), b"m001".to_vec(), b"m000".to_vec()]);
    }

    #[test]
    fn packed_scores_print_as_listpack_text() {
        assert_eq!(packed_score_text(1e17), "100000000000000000");
        assert_eq!(packed_score_text(1.5), "1.5");
        assert_eq!(packed_score_text(1e300), "1.0000000000000001e+300");
        assert_eq!(packed_score_text(f64::NEG_INFINITY), "-inf");
        assert_eq!(packed_score_text(4611686018427387904.0), "4611686018427387904");
        assert_eq!(packed_score_text(9223372036854775808.0), "9.2233720368547758e+18");
    }

    #[test]
    fn lex_ranges() {
        let v = |b: &str, exclusive| LexBound::Value { bytes: b.as_bytes().to_vec(), exclusive };
        for z in both_encodings(&[("a", 0.0), ("b", 0.0), ("c", 0.0), ("d", 0.0)]) {
            let all = LexRange { min: LexBound::Min, max: LexBound::Max };
            assert_eq!(z.range_ranks(&all), 0..4);
            assert_eq!(z.range_ranks(&LexRange { min: v("b", false), max: v("c", true) }), 1..2);
            assert_eq!(z.range_ranks(&LexRange { min: v("b", true), max: LexBound::Max }), 2..4);
            assert_eq!(z.range_ranks(&LexRange { min: LexBound::Max, max: LexBound::Min }), 0..0);
            assert_eq!(z.range_ranks(&LexRange { min: v("c", false), max: v("c", false) }), 2..3);
            assert_eq!(z.range_ranks(&LexRange { min: v("c", true), max: v("c", false) }), 0..0);
        }
    }

    #[test]
    fn remove_ranks_and_clone_keep_both_halves_in_step() {
        for mut z in both_encodings(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0), ("e", 5.0)]) {
            let enc = z.encoding();
            let removed = z.remove_ranks(1, 2);
            assert_eq!(removed.iter().map(|e| e.0.to_vec()).collect::<Vec<_>>(), vec![b"b".to_vec(), b"c".to_vec()]);
            assert_eq!(z.score(b"b"), None);
            assert_eq!(z.rank(b"d"), Some(1));
            let copy = z.clone();
            assert_eq!(copy.encoding(), enc);
            assert!(copy == z);
            assert_eq!(z.remove_ranks(5, 9).len(), 0);
            assert_eq!(z.remove_ranks(0, 100).len(), 3);
            assert!(z.is_empty());
        }
    }
}
