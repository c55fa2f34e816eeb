//! The generator behind `math.random` in Redis scripts: the classic 48-bit linear
//! congruential generator of `lrand48`/`srand48` (X' = a·X + c mod 2^48, a = 0x5DEECE66D,
//! c = 11), with the same initial state, so scripts draw the same sequence as on Redis on
//! every platform. The state is shared by all scripts and never reseeded implicitly, as
//! in Redis 7.0.

const A: u64 = 0x5_DEEC_E66D;
const C: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;
/// The state before any `srand48`.
const INITIAL: u64 = 0x1234_ABCD_330E;

#[derive(Clone, Debug)]
pub struct Rand48 {
    x: u64,
}

impl Default for Rand48 {
    fn default() -> Self {
        Rand48 { x: INITIAL }
    }
}

impl Rand48 {
    /// `srand48`: the seed's 32 bits become the high bits, 0x330E the low 16.
    pub fn seed(&mut self, seed: i32) {
        self.x = ((seed as u32 as u64) << 16) | 0x330E;
    }

    /// `lrand48`: the next state's top 31 bits.
    pub fn next(&mut self) -> i32 {
        self.x = (A.wrapping_mul(self.x).wrapping_add(C)) & MASK;
        (self.x >> 17) as i32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_lrand48() {
        // glibc's lrand48() after srand48(0), and without seeding.
        let mut r = Rand48::default();
        r.seed(0);
        assert_eq!([r.next(), r.next(), r.next()], [366850414, 1610402240, 206956554]);
        let mut r = Rand48::default();
        assert_eq!(r.next(), 851401618);
    }
}
