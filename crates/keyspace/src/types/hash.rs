//! `Hash`: field → value maps. Small hashes are one [`Packed`] buffer of alternating
//! fields and values (Redis's `listpack` encoding); once a hash outgrows
//! `hash-max-listpack-entries` or holds a field or value longer than
//! `hash-max-listpack-value`, it becomes a [`Dict`] (`hashtable`), never going back.

use super::packed::Packed;
use crate::dict::Dict;
use crate::smallbytes::SmallBytes;

/// The thresholds that decide the encoding.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

#[derive(Clone)]
pub enum Hash {
    Packed(Packed),
    Table(Dict<SmallBytes>),
}

impl Default for Hash {
    fn default() -> Self {
        Hash::Packed(Packed::new())
    }
}

impl Hash {
    pub fn new() -> Hash {
        Hash::default()
    }

    pub fn len(&self) -> usize {
        match self {
            Hash::Packed(p) => p.len() / 2,
            Hash::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Hash::Packed(_) => "listpack",
            Hash::Table(_) => "hashtable",
        }
    }

    /// Byte offset of `field`'s entry in a packed hash.
    fn packed_find(p: &Packed, field: &[u8]) -> Option<usize> {
        let mut it = p.entries();
        while let Some((off, f)) = it.next() {
            if f == field {
                return Some(off);
            }
            it.next();
        }
        None
    }

    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        match self {
            Hash::Packed(p) => {
                let mut it = p.iter();
                while let Some(f) = it.next() {
                    let v = it.next();
                    if f == field {
                        return v;
                    }
                }
                None
            }
            Hash::Table(d) => d.get(field).map(|v| v.as_slice()),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        self.get(field).is_some()
    }

    fn convert_to_table(&mut self) {
        let Hash::Packed(p) = self else { return };
        let mut d = Dict::new();
        {
            let mut it = p.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                d.insert_new(SmallBytes::from(f), SmallBytes::from(v));
            }
        }
        *self = Hash::Table(d);
    }

    /// Sets `field` to `value`; returns true if the field is new.
    pub fn set(&mut self, field: &[u8], value: &[u8], limits: Limits) -> bool {
        if let Hash::Packed(p) = self {
            let fits = field.len() <= limits.max_value && value.len() <= limits.max_value;
            match Self::packed_find(p, field) {
                Some(off) if fits => {
                    let voff = p.next_offset(off);
                    p.replace_at(voff, value);
                    // Redis checks the entry count after updates too: a hash left above a
                    // lowered hash-max-listpack-entries converts on its next write.
                    if p.len() / 2 > limits.max_entries {
                        self.convert_to_table();
                    }
                    return false;
                }
                None if fits && p.len() / 2 < limits.max_entries => {
                    p.push(field);
                    p.push(value);
                    return true;
                }
                _ => self.convert_to_table(),
            }
        }
        match self {
            Hash::Table(d) => d.insert(SmallBytes::from(field), SmallBytes::from(value)).is_none(),
            Hash::Packed(_) => unreachable!("converted above"),
        }
    }

    /// Removes `field`; returns true if it was present.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match self {
            Hash::Packed(p) => match Self::packed_find(p, field) {
                Some(off) => {
                    p.remove_at(off, 2);
                    true
                }
                None => false,
            },
            Hash::Table(d) => d.remove(field).is_some(),
        }
    }

    /// Visits every (field, value) pair.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        match self {
            Hash::Packed(p) => {
                let mut it = p.iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    f(k, v);
                }
            }
            Hash::Table(d) => d.iter().for_each(|(k, v)| f(k, v)),
        }
    }

    /// All pairs, owned.
    pub fn pairs(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|k, v| out.push((k.to_vec(), v.to_vec())));
        out
    }

    /// A uniformly random pair.
    pub fn random(&self, rng: &mut fastrand::Rng) -> Option<(Vec<u8>, Vec<u8>)> {
        match self {
            Hash::Packed(p) => {
                if p.is_empty() {
                    return None;
                }
                let i = rng.usize(0..p.len() / 2);
                let mut it = p.iter().skip(2 * i);
                Some((it.next()?.to_vec(), it.next()?.to_vec()))
            }
            Hash::Table(d) => d.random_entry(rng).map(|(k, v)| (k.to_vec(), v.to_vec())),
        }
    }

    pub fn heap_size(&self) -> usize {
        match self {
            Hash::Packed(p) => p.heap_size(),
            Hash::Table(d) => d.overhead_bytes() + d.iter().map(|(k, v)| k.heap_size() + v.heap_size()).sum::<usize>(),
        }
    }

    /// HSCAN step: packed hashes return everything at once (cursor 0 next).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
        match self {
            Hash::Packed(_) => {
                self.for_each(f);
                0
            }
            Hash::Table(d) => d.scan(cursor, |k, v| f(k, v)),
        }
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({} fields, {})", self.len(), self.encoding())
    }
}

impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        let mut a = self.pairs();
        let mut b = other.pairs();
        a.sort();
        b.sort();
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits { max_entries: 4, max_value: 8 };

    #[test]
    fn converts_on_size_and_length() {
        let mut h = Hash::new();
        assert!(h.set(b"a", b"1", L));
        assert!(!h.set(b"a", b"2", L));
        assert_eq!(h.get(b"a"), Some(&b"2"[..]));
        for f in [b"b", b"c", b"d"] {
            h.set(f, b"x", L);
        }
        assert_eq!(h.encoding(), "listpack");
        h.set(b"e", b"x", L);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 5);
        let mut h2 = Hash::new();
        h2.set(b"long", b"123456789", L);
        assert_eq!(h2.encoding(), "hashtable");
        assert!(h.remove(b"a"));
        assert!(!h.remove(b"a"));
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn an_update_converts_a_hash_above_a_lowered_entry_limit() {
        let mut h = Hash::new();
        for f in [b"a", b"b", b"c"] {
            h.set(f, b"x", L);
        }
        assert!(!h.set(b"a", b"y", Limits { max_entries: 2, ..L }));
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(b"a"), Some(&b"y"[..]));
    }
}
