//! `Set`: unordered unique members. Sets of integers are an [`IntSet`] (Redis's `intset`)
//! until they hold a non-integer or more than `set-max-intset-entries` members; then they
//! become a [`Dict`] (`hashtable`). Redis 7.0 has no third set encoding.

use super::intset::IntSet;
use crate::dict::Dict;
use crate::smallbytes::SmallBytes;

#[derive(Clone)]
pub enum Set {
    Ints(IntSet),
    Table(Dict<()>),
}

impl Default for Set {
    fn default() -> Self {
        Set::Ints(IntSet::new())
    }
}

fn as_int(m: &[u8]) -> Option<i64> {
    if m.len() > 20 {
        return None;
    }
    ferrokv_resp::parse_i64(m)
}

impl Set {
    /// An empty set in the encoding a first member `m` calls for.
    pub fn for_member(m: &[u8]) -> Set {
        if as_int(m).is_some() {
            Set::Ints(IntSet::new())
        } else {
            Set::Table(Dict::new())
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Ints(s) => s.len(),
            Set::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Table(_) => "hashtable",
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => as_int(m).is_some_and(|v| s.contains(v)),
            Set::Table(d) => d.contains_key(m),
        }
    }

    fn convert_to_table(&mut self) {
        let Set::Ints(s) = self else { return };
        let mut d = Dict::new();
        let mut buf = itoa::Buffer::new();
        for v in s.iter() {
            d.insert_new(SmallBytes::from(buf.format(v).as_bytes()), ());
        }
        *self = Set::Table(d);
    }

    /// Adds `m`; returns true if it was new. `max_intset` is `set-max-intset-entries`.
    pub fn insert(&mut self, m: &[u8], max_intset: usize) -> bool {
        if let Set::Ints(s) = self {
            match as_int(m) {
                Some(v) => {
                    if s.contains(v) {
                        return false;
                    }
                    if s.len() < max_intset {
                        return s.insert(v);
                    }
                    self.convert_to_table();
                }
                None => self.convert_to_table(),
            }
        }
        match self {
            // One hash and one walk of the chain, whether the member is new or not.
            Set::Table(d) => match d.entry(m) {
                crate::dict::Entry::Occupied(_) => false,
                crate::dict::Entry::Vacant(v) => {
                    v.insert(());
                    true
                }
            },
            Set::Ints(_) => unreachable!("converted above"),
        }
    }

    /// Removes `m`; returns true if it was present.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self {
            Set::Ints(s) => as_int(m).is_some_and(|v| s.remove(v)),
            Set::Table(d) => d.remove(m).is_some(),
        }
    }

    /// Visits every member.
    pub fn for_each(&self, mut f: impl FnMut(&[u8])) {
        match self {
            Set::Ints(s) => {
                let mut buf = itoa::Buffer::new();
                for v in s.iter() {
                    f(buf.format(v).as_bytes());
                }
            }
            Set::Table(d) => d.iter().for_each(|(k, _)| f(k)),
        }
    }

    pub fn members(&self) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each(|m| out.push(m.to_vec()));
        out
    }

    /// A uniformly random member.
    pub fn random(&self, rng: &mut fastrand::Rng) -> Option<Vec<u8>> {
        match self {
            Set::Ints(s) => {
                if s.is_empty() {
                    return None;
                }
                s.get(rng.usize(0..s.len())).map(|v| itoa::Buffer::new().format(v).as_bytes().to_vec())
            }
            Set::Table(d) => d.random_entry(rng).map(|(k, _)| k.to_vec()),
        }
    }

    /// Removes and returns a random member.
    pub fn pop_random(&mut self, rng: &mut fastrand::Rng) -> Option<Vec<u8>> {
        match self {
            Set::Ints(s) => {
                if s.is_empty() {
                    return None;
                }
                let v = s.remove_index(rng.usize(0..s.len()));
                Some(itoa::Buffer::new().format(v).as_bytes().to_vec())
            }
            Set::Table(d) => {
                let k = d.random_entry(rng)?.0.clone();
                d.remove(&k);
                Some(k.to_vec())
            }
        }
    }

    pub fn heap_size(&self) -> usize {
        match self {
            Set::Ints(s) => s.heap_size(),
            Set::Table(d) => d.overhead_bytes() + d.iter().map(|(k, _)| k.heap_size()).sum::<usize>(),
        }
    }

    /// SSCAN step: intsets return everything at once (cursor 0 next).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8])) -> u64 {
        match self {
            Set::Ints(_) => {
                self.for_each(f);
                0
            }
            Set::Table(d) => d.scan(cursor, |k, _| f(k)),
        }
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Set({} members, {})", self.len(), self.encoding())
    }
}

impl PartialEq for Set {
    fn eq(&self, other: &Self) -> bool {
        let mut a = self.members();
        let mut b = other.members();
        a.sort();
        b.sort();
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intset_until_a_string_or_too_many() {
        let mut s = Set::for_member(b"1");
        assert!(s.insert(b"1", 3));
        assert!(s.insert(b"2", 3));
        assert!(!s.insert(b"2", 3));
        assert_eq!(s.encoding(), "intset");
        assert!(s.contains(b"1"));
        assert!(!s.contains(b"01"));
        assert!(s.insert(b"x", 3));
        assert_eq!(s.encoding(), "hashtable");
        assert!(s.contains(b"1") && s.contains(b"x"));
        let mut t = Set::for_member(b"1");
        for i in 0..4 {
            t.insert(i.to_string().as_bytes(), 3);
        }
        assert_eq!(t.encoding(), "hashtable");
        assert_eq!(t.len(), 4);
    }
}
