//! `IntSet`: a sorted array of integers stored at the narrowest width that fits them all
//! (16, 32 or 64 bits), like Redis's intset. Sets made only of small integers cost 2 bytes
//! per member; membership is a binary search.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IntSet {
    W16(Vec<i16>),
    W32(Vec<i32>),
    W64(Vec<i64>),
}

impl Default for IntSet {
    fn default() -> Self {
        IntSet::W16(Vec::new())
    }
}

fn width(v: i64) -> u8 {
    if i16::try_from(v).is_ok() {
        16
    } else if i32::try_from(v).is_ok() {
        32
    } else {
        64
    }
}

impl IntSet {
    pub fn new() -> IntSet {
        IntSet::default()
    }

    pub fn len(&self) -> usize {
        match self {
            IntSet::W16(v) => v.len(),
            IntSet::W32(v) => v.len(),
            IntSet::W64(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn width(&self) -> u8 {
        match self {
            IntSet::W16(_) => 16,
            IntSet::W32(_) => 32,
            IntSet::W64(_) => 64,
        }
    }

    pub fn heap_size(&self) -> usize {
        self.len() * (self.width() as usize / 8)
    }

    pub fn contains(&self, v: i64) -> bool {
        match self {
            IntSet::W16(s) => i16::try_from(v).is_ok_and(|x| s.binary_search(&x).is_ok()),
            IntSet::W32(s) => i32::try_from(v).is_ok_and(|x| s.binary_search(&x).is_ok()),
            IntSet::W64(s) => s.binary_search(&v).is_ok(),
        }
    }

    fn upgrade(&mut self, to: u8) {
        let all: Vec<i64> = self.iter().collect();
        *self = match to {
            32 => IntSet::W32(all.into_iter().map(|x| x as i32).collect()),
            _ => IntSet::W64(all),
        };
    }

    /// Adds `v`; returns false if it was present.
    pub fn insert(&mut self, v: i64) -> bool {
        if width(v) > self.width() {
            self.upgrade(width(v));
        }
        fn ins<T: Ord + Copy>(s: &mut Vec<T>, x: T) -> bool {
            match s.binary_search(&x) {
                Ok(_) => false,
                Err(i) => {
                    s.insert(i, x);
                    true
                }
            }
        }
        match self {
            IntSet::W16(s) => ins(s, v as i16),
            IntSet::W32(s) => ins(s, v as i32),
            IntSet::W64(s) => ins(s, v),
        }
    }

    /// Removes `v`; returns false if it was absent.
    pub fn remove(&mut self, v: i64) -> bool {
        fn rm<T: Ord + Copy>(s: &mut Vec<T>, x: Option<T>) -> bool {
            match x.map(|x| s.binary_search(&x)) {
                Some(Ok(i)) => {
                    s.remove(i);
                    true
                }
                _ => false,
            }
        }
        match self {
            IntSet::W16(s) => rm(s, i16::try_from(v).ok()),
            IntSet::W32(s) => rm(s, i32::try_from(v).ok()),
            IntSet::W64(s) => rm(s, Some(v)),
        }
    }

    /// The member at position `i` in ascending order.
    pub fn get(&self, i: usize) -> Option<i64> {
        match self {
            IntSet::W16(s) => s.get(i).map(|&x| x as i64),
            IntSet::W32(s) => s.get(i).map(|&x| x as i64),
            IntSet::W64(s) => s.get(i).copied(),
        }
    }

    pub fn remove_index(&mut self, i: usize) -> i64 {
        match self {
            IntSet::W16(s) => s.remove(i) as i64,
            IntSet::W32(s) => s.remove(i) as i64,
            IntSet::W64(s) => s.remove(i),
        }
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = i64> + '_> {
        match self {
            IntSet::W16(s) => Box::new(s.iter().map(|&x| x as i64)),
            IntSet::W32(s) => Box::new(s.iter().map(|&x| x as i64)),
            IntSet::W64(s) => Box::new(s.iter().copied()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrades_and_stays_sorted() {
        let mut s = IntSet::new();
        assert!(s.insert(5));
        assert!(s.insert(-3));
        assert!(!s.insert(5));
        assert_eq!(s.width(), 16);
        assert!(s.insert(100_000));
        assert_eq!(s.width(), 32);
        assert!(s.insert(i64::MIN));
        assert_eq!(s.width(), 64);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![i64::MIN, -3, 5, 100_000]);
        assert!(s.contains(100_000));
        assert!(s.remove(-3));
        assert!(!s.remove(-3));
        assert_eq!(s.len(), 3);
    }
}
