//! `SmallBytes`: a binary-safe byte string in 24 bytes that stores up to 23 bytes inline.
//!
//! Keys and short string values dominate a Redis dataset, so they are kept inside the hash
//! table node with no allocation of their own. The last byte is a tag whose unused values
//! (25..=255) form a niche, which lets `Value` (an enum with a `SmallBytes` variant) stay
//! 24 bytes as well. Longer strings live in a heap buffer described by (ptr, len, cap).

use std::mem::{ManuallyDrop, MaybeUninit};

/// Inline capacity in bytes.
pub const INLINE_CAP: usize = 23;

macro_rules! tags {
    ($($name:ident = $v:expr),* $(,)?) => {
        /// Inline length (0..=23) or `Heap`. Only these 25 values are valid, which gives
        /// enclosing enums a niche.
        #[allow(dead_code)]
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        #[repr(u8)]
        enum Tag { $($name = $v),* }
        const TAGS: [Tag; 25] = [$(Tag::$name),*];
    };
}

tags! {
    L0 = 0, L1 = 1, L2 = 2, L3 = 3, L4 = 4, L5 = 5, L6 = 6, L7 = 7, L8 = 8, L9 = 9,
    L10 = 10, L11 = 11, L12 = 12, L13 = 13, L14 = 14, L15 = 15, L16 = 16, L17 = 17,
    L18 = 18, L19 = 19, L20 = 20, L21 = 21, L22 = 22, L23 = 23, Heap = 24,
}

/// Layout (24 bytes): inline mode uses bytes 0..23 for data; heap mode keeps the pointer
/// in `w0`, the length in `w1` and the capacity in the 7 bytes of `w2`.
#[repr(C)]
pub struct SmallBytes {
    w0: MaybeUninit<*mut u8>,
    w1: MaybeUninit<usize>,
    w2: [u8; 7],
    tag: Tag,
}

// SAFETY: SmallBytes owns its heap buffer exclusively, like Vec<u8>.
unsafe impl Send for SmallBytes {}
// SAFETY: shared access only reads.
unsafe impl Sync for SmallBytes {}

const _: () = assert!(std::mem::size_of::<SmallBytes>() == 24);
const _: () = assert!(std::mem::size_of::<Option<SmallBytes>>() == 24);

impl SmallBytes {
    pub const fn new() -> Self {
        SmallBytes { w0: MaybeUninit::uninit(), w1: MaybeUninit::uninit(), w2: [0; 7], tag: Tag::L0 }
    }

    fn inline(src: &[u8]) -> Self {
        debug_assert!(src.len() <= INLINE_CAP);
        let mut s = Self::new();
        // SAFETY: the first 23 bytes of the struct are plain storage in inline mode and
        // src.len() <= 23.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), s.inline_ptr_mut(), src.len());
        }
        s.tag = TAGS[src.len()];
        s
    }

    fn inline_ptr_mut(&mut self) -> *mut u8 {
        (self as *mut Self).cast::<u8>()
    }

    fn inline_ptr(&self) -> *const u8 {
        (self as *const Self).cast::<u8>()
    }

    fn is_heap(&self) -> bool {
        self.tag == Tag::Heap
    }

    fn heap_cap(&self) -> usize {
        let mut b = [0u8; 8];
        b[..7].copy_from_slice(&self.w2);
        u64::from_le_bytes(b) as usize
    }

    fn from_vec_exact(v: Vec<u8>) -> Self {
        if v.len() <= INLINE_CAP {
            return Self::inline(&v);
        }
        let mut v = ManuallyDrop::new(v);
        let cap = v.capacity() as u64;
        assert!(cap < 1 << 56, "string too large");
        let mut w2 = [0u8; 7];
        w2.copy_from_slice(&cap.to_le_bytes()[..7]);
        SmallBytes { w0: MaybeUninit::new(v.as_mut_ptr()), w1: MaybeUninit::new(v.len()), w2, tag: Tag::Heap }
    }

    /// Takes the heap buffer back as a Vec, leaving `self` empty inline.
    fn take_vec(&mut self) -> Vec<u8> {
        if !self.is_heap() {
            let v = self.as_slice().to_vec();
            *self = Self::new();
            return v;
        }
        // SAFETY: in heap mode w0/w1/w2 describe a buffer that came from a Vec<u8>.
        let v = unsafe { Vec::from_raw_parts(self.w0.assume_init(), self.w1.assume_init(), self.heap_cap()) };
        // Forget the buffer without running Drop on it twice.
        self.tag = Tag::L0;
        v
    }

    pub fn from_vec(v: Vec<u8>) -> Self {
        if v.len() <= INLINE_CAP {
            Self::inline(&v)
        } else {
            Self::from_vec_exact(v)
        }
    }

    pub fn len(&self) -> usize {
        if self.is_heap() {
            // SAFETY: heap mode initialises w1.
            unsafe { self.w1.assume_init() }
        } else {
            self.tag as usize
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        if self.is_heap() {
            // SAFETY: heap mode: w0 points to w1 initialised bytes owned by self.
            unsafe { std::slice::from_raw_parts(self.w0.assume_init(), self.w1.assume_init()) }
        } else {
            // SAFETY: inline mode: the first `tag` bytes were written.
            unsafe { std::slice::from_raw_parts(self.inline_ptr(), self.tag as usize) }
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.is_heap() {
            // SAFETY: as in as_slice, with exclusive access.
            unsafe { std::slice::from_raw_parts_mut(self.w0.assume_init(), self.w1.assume_init()) }
        } else {
            let n = self.tag as usize;
            // SAFETY: as in as_slice, with exclusive access.
            unsafe { std::slice::from_raw_parts_mut(self.inline_ptr_mut(), n) }
        }
    }

    /// Bytes allocated outside the 24-byte struct.
    pub fn heap_size(&self) -> usize {
        if self.is_heap() {
            self.heap_cap()
        } else {
            0
        }
    }

    /// Edits the bytes as a Vec (growing with amortised doubling, like an sds string
    /// being appended to) and stores the result back.
    pub fn with_vec<R>(&mut self, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let mut v = self.take_vec();
        let r = f(&mut v);
        *self = if v.len() <= INLINE_CAP { Self::inline(&v) } else { Self::from_vec_exact(v) };
        r
    }

    pub fn extend_from_slice(&mut self, more: &[u8]) {
        let len = self.len();
        if len + more.len() <= INLINE_CAP && !self.is_heap() {
            // SAFETY: inline mode with room for `more`.
            unsafe {
                std::ptr::copy_nonoverlapping(more.as_ptr(), self.inline_ptr_mut().add(len), more.len());
            }
            self.tag = TAGS[len + more.len()];
            return;
        }
        self.with_vec(|v| v.extend_from_slice(more));
    }

    /// Returns unused heap capacity to the allocator.
    pub fn shrink_to_fit(&mut self) {
        if self.is_heap() && self.heap_cap() > self.len() {
            self.with_vec(|v| v.shrink_to_fit());
        }
    }
}

impl Default for SmallBytes {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for SmallBytes {
    fn drop(&mut self) {
        if self.is_heap() {
            drop(self.take_vec());
        }
    }
}

impl Clone for SmallBytes {
    fn clone(&self) -> Self {
        if self.is_heap() {
            Self::from_vec_exact(self.as_slice().to_vec())
        } else {
            // SAFETY: inline mode is plain bytes; copying the whole struct is a copy.
            unsafe { std::ptr::read(self) }
        }
    }
}

impl From<&[u8]> for SmallBytes {
    fn from(s: &[u8]) -> Self {
        if s.len() <= INLINE_CAP {
            Self::inline(s)
        } else {
            Self::from_vec_exact(s.to_vec())
        }
    }
}

impl From<Vec<u8>> for SmallBytes {
    fn from(v: Vec<u8>) -> Self {
        Self::from_vec(v)
    }
}

impl From<&str> for SmallBytes {
    fn from(s: &str) -> Self {
        Self::from(s.as_bytes())
    }
}

impl std::ops::Deref for SmallBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for SmallBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::borrow::Borrow<[u8]> for SmallBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SmallBytes {}

impl PartialOrd for SmallBytes {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallBytes {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl std::hash::Hash for SmallBytes {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl std::fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_and_heap() {
        for n in [0, 1, 22, 23, 24, 100, 5000] {
            let data: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let s = SmallBytes::from(&data[..]);
            assert_eq!(s.as_slice(), &data[..]);
            assert_eq!(s.len(), n);
            assert_eq!(s.clone(), s);
            assert_eq!(s.heap_size() > 0, n > INLINE_CAP);
        }
    }

    #[test]
    fn appending_crosses_the_inline_boundary() {
        let mut s = SmallBytes::from("abc");
        let mut model = b"abc".to_vec();
        for i in 0..100u8 {
            s.extend_from_slice(&[i, i]);
            model.extend_from_slice(&[i, i]);
            assert_eq!(s.as_slice(), &model[..]);
        }
        s.with_vec(|v| v.truncate(3));
        assert_eq!(s.as_slice(), b"abc");
        assert_eq!(s.heap_size(), 0);
    }

    #[test]
    fn niche_keeps_enums_small() {
        #[allow(dead_code)]
        enum V {
            S(SmallBytes),
            I(i64),
            B(Box<u64>),
        }
        assert_eq!(std::mem::size_of::<V>(), 24);
    }
}
