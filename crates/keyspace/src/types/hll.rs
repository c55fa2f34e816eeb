//! HyperLogLog in Redis's exact string representation, so a value written by either server
//! gives the same PFCOUNT and the same bytes on the other (through RDB, DUMP/RESTORE,
//! replication or GET/SET).
//!
//! Layout: a 16-byte header (`HYLL`, the encoding byte — 0 dense, 1 sparse —, three zero
//! bytes, then the cached cardinality as 8 little-endian bytes whose top bit set means
//! "stale"), followed by 16,384 registers (P = 14) of 6 bits each:
//! - dense: packed least significant bit first, register n at bit 6n (12,288 bytes);
//! - sparse: run-length opcodes — `00xxxxxx` ZERO (1–64 zero registers), `01xxxxxx
//!   yyyyyyyy` XZERO (1–16,384 zero registers), `1vvvvvxx` VAL (1–4 registers of value
//!   1–32). A sparse value becomes dense when a register needs more than 32 or the string
//!   would pass `hll-sparse-max-bytes`.
//!
//! Redis edits the sparse form in place with particular split and merge steps; the bytes of
//! a sparse value depend on them, so [`sparse_set`] follows the same steps. The cardinality
//! estimator is Otmar Ertl's improved estimator over the register histogram, as Redis 7.

pub const REGISTERS: usize = 1 << P;
pub const HEADER_LEN: usize = 16;
pub const DENSE_LEN: usize = HEADER_LEN + (REGISTERS * BITS).div_ceil(8);
const P: usize = 14;
/// Hash bits left after the register index: the longest run counted is Q + 1.
const Q: usize = 64 - P;
const BITS: usize = 6;
const REGISTER_MAX: u8 = (1 << BITS) - 1;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const ENCODING_BYTE: usize = 4;
const CARD_TOP_BYTE: usize = 15;
const HASH_SEED: u64 = 0xadc8_3b19;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Encoding {
    Dense,
    Sparse,
}

/// A sparse value whose opcodes do not cover exactly the 16,384 registers.
#[derive(Debug, PartialEq, Eq)]
pub struct Corrupt;

/// Whether `bytes` is a HyperLogLog Redis would accept (magic, a known encoding, a dense
/// value of the exact length); the sparse opcodes are checked when they are walked.
pub fn encoding_of(bytes: &[u8]) -> Option<Encoding> {
    if bytes.len() < HEADER_LEN || &bytes[..4] != b"HYLL" {
        return None;
    }
    match bytes[ENCODING_BYTE] {
        0 if bytes.len() == DENSE_LEN => Some(Encoding::Dense),
        1 => Some(Encoding::Sparse),
        _ => None,
    }
}

/// An empty HyperLogLog: sparse, one XZERO covering every register, cached cardinality 0.
pub fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + 2);
    v.extend_from_slice(b"HYLL");
    v.push(1);
    v.extend_from_slice(&[0; 11]);
    push_xzero(&mut v, REGISTERS);
    v
}

pub fn cached_cardinality(bytes: &[u8]) -> Option<u64> {
    let card = u64::from_le_bytes(bytes[8..16].try_into().expect("16-byte header"));
    (card >> 63 == 0).then_some(card)
}

pub fn set_cached_cardinality(bytes: &mut [u8], card: u64) {
    bytes[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate_cache(bytes: &mut [u8]) {
    bytes[CARD_TOP_BYTE] |= 0x80;
}

/// MurmurHash64A (Austin Appleby), reading 8-byte blocks little-endian as Redis does on
/// every platform.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut k = u64::from_le_bytes(block.try_into().expect("8-byte block"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= (*b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in and the length of its `0…01` run (1 to Q + 1).
pub fn register_and_run(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, HASH_SEED);
    let index = (hash as usize) & (REGISTERS - 1);
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Register `index` of the dense registers (the bytes after the header).
pub fn dense_get(registers: &[u8], index: usize) -> u8 {
    let bit = index * BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let low = registers[byte] as u16;
    let high = registers.get(byte + 1).copied().unwrap_or(0) as u16;
    (((low | (high << 8)) >> shift) as u8) & REGISTER_MAX
}

pub fn dense_put(registers: &mut [u8], index: usize, value: u8) {
    let bit = index * BITS;
    let (byte, shift) = (bit / 8, bit % 8);
    let mask = (REGISTER_MAX as u16) << shift;
    let value = ((value & REGISTER_MAX) as u16) << shift;
    registers[byte] = (registers[byte] & !(mask as u8)) | value as u8;
    if shift > 8 - BITS {
        registers[byte + 1] = (registers[byte + 1] & !((mask >> 8) as u8)) | (value >> 8) as u8;
    }
}

/// Raises a dense register to `count`; whether it changed.
pub fn dense_set_max(registers: &mut [u8], index: usize, count: u8) -> bool {
    if count > dense_get(registers, index) {
        dense_put(registers, index, count);
        true
    } else {
        false
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Opcode {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Opcode {
    /// The opcode at `p`; a two-byte XZERO cut short reads its missing byte as 0 (Redis
    /// reads the string's terminating NUL there).
    fn at(bytes: &[u8], p: usize) -> Opcode {
        let b = bytes[p];
        match b & 0xc0 {
            0x00 => Opcode::Zero((b & 0x3f) as usize + 1),
            0x40 => {
                let low = bytes.get(p + 1).copied().unwrap_or(0) as usize;
                Opcode::XZero((((b & 0x3f) as usize) << 8 | low) + 1)
            }
            _ => Opcode::Val(((b >> 2) & 0x1f) + 1, (b & 0x3) as usize + 1),
        }
    }

    fn span(self) -> usize {
        match self {
            Opcode::Zero(n) | Opcode::XZero(n) | Opcode::Val(_, n) => n,
        }
    }

    fn width(self) -> usize {
        if matches!(self, Opcode::XZero(_)) {
            2
        } else {
            1
        }
    }
}

fn val_byte(value: u8, len: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (len as u8 - 1)
}

fn push_zero_run(out: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(out, len);
    } else {
        out.push(len as u8 - 1);
    }
}

fn push_xzero(out: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    out.push(0x40 | (l >> 8) as u8);
    out.push((l & 0xff) as u8);
}

/// Rewrites a sparse value as dense (the header, cached cardinality included, is kept).
pub fn sparse_to_dense(bytes: &mut Vec<u8>) -> Result<(), Corrupt> {
    if bytes[ENCODING_BYTE] == 0 {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_LEN];
    dense[..HEADER_LEN].copy_from_slice(&bytes[..HEADER_LEN]);
    dense[ENCODING_BYTE] = 0;
    let (mut p, mut index) = (HEADER_LEN, 0usize);
    while p < bytes.len() {
        let op = Opcode::at(bytes, p);
        if let Opcode::Val(value, len) = op {
            if index + len > REGISTERS {
                break;
            }
            for r in index..index + len {
                dense_put(&mut dense[HEADER_LEN..], r, value);
            }
        }
        index += op.span();
        p += op.width();
    }
    if index != REGISTERS {
        return Err(Corrupt);
    }
    *bytes = dense;
    Ok(())
}

/// Raises register `index` of a sparse value to `count`, editing the opcodes in place as
/// Redis does, or converting to dense when the sparse form cannot hold the change.
/// Returns whether a register changed (the cached cardinality is then stale).
pub fn sparse_set(bytes: &mut Vec<u8>, index: usize, count: u8, sparse_max_bytes: usize) -> Result<bool, Corrupt> {
    if count == 0 {
        return Ok(false);
    }
    if count > VAL_MAX_VALUE {
        return promote(bytes, index, count);
    }
    // Find the opcode covering the register, and the one before it.
    let (mut p, mut first, mut prev) = (HEADER_LEN, 0usize, None);
    let mut found = None;
    while p < bytes.len() {
        let op = Opcode::at(bytes, p);
        if index < first + op.span() {
            found = Some(op);
            break;
        }
        prev = Some(p);
        p += op.width();
        first += op.span();
    }
    let Some(op) = found else { return Err(Corrupt) };
    match op {
        Opcode::Val(old, _) if old >= count => return Ok(false),
        Opcode::Val(_, 1) | Opcode::Zero(1) => bytes[p] = val_byte(count, 1),
        _ => {
            // Split the opcode around the register: at most XZERO-VAL-XZERO.
            let last = first + op.span() - 1;
            let mut seq = Vec::with_capacity(5);
            match op {
                Opcode::Val(value, _) => {
                    if index != first {
                        seq.push(val_byte(value, index - first));
                    }
                    seq.push(val_byte(count, 1));
                    if index != last {
                        seq.push(val_byte(value, last - index));
                    }
                }
                _ => {
                    if index != first {
                        push_zero_run(&mut seq, index - first);
                    }
                    seq.push(val_byte(count, 1));
                    if index != last {
                        push_zero_run(&mut seq, last - index);
                    }
                }
            }
            let grows_by = seq.len() as isize - op.width() as isize;
            if grows_by > 0 && bytes.len() + grows_by as usize > sparse_max_bytes {
                return promote(bytes, index, count);
            }
            let end = (p + op.width()).min(bytes.len());
            bytes.splice(p..end, seq);
        }
    }
    merge_adjacent_values(bytes, prev.unwrap_or(HEADER_LEN));
    invalidate_cache(bytes);
    Ok(true)
}

/// Redis's tidy-up after an edit: from the opcode before the edited one, look at up to
/// five opcodes and merge neighbouring VALs of one value while their runs fit in one.
fn merge_adjacent_values(bytes: &mut Vec<u8>, mut p: usize) {
    let mut budget = 5;
    while p < bytes.len() && budget > 0 {
        budget -= 1;
        match Opcode::at(bytes, p) {
            Opcode::XZero(_) => p += 2,
            Opcode::Zero(_) => p += 1,
            Opcode::Val(value, len) => {
                if p + 1 < bytes.len() {
                    if let Opcode::Val(next_value, next_len) = Opcode::at(bytes, p + 1) {
                        if next_value == value && len + next_len <= VAL_MAX_LEN {
                            bytes[p + 1] = val_byte(value, len + next_len);
                            bytes.remove(p);
                            continue;
                        }
                    }
                }
                p += 1;
            }
        }
    }
}

fn promote(bytes: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    sparse_to_dense(bytes)?;
    dense_set_max(&mut bytes[HEADER_LEN..], index, count);
    Ok(true)
}

/// Adds an element; whether a register changed. `bytes` must have passed [`encoding_of`].
pub fn add(bytes: &mut Vec<u8>, element: &[u8], sparse_max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = register_and_run(element);
    if bytes[ENCODING_BYTE] == 0 {
        Ok(dense_set_max(&mut bytes[HEADER_LEN..], index, count))
    } else {
        sparse_set(bytes, index, count, sparse_max_bytes)
    }
}

/// Calls `f(index, value)` for every dense register, four at a time: registers are packed
/// least significant bit first, so each 3 bytes hold exactly four (the unions and counts
/// of PFCOUNT and PFMERGE walk all 16,384).
fn for_each_dense(registers: &[u8], mut f: impl FnMut(usize, u8)) {
    for (i, chunk) in registers.chunks_exact(3).enumerate() {
        let word = chunk[0] as u32 | (chunk[1] as u32) << 8 | (chunk[2] as u32) << 16;
        for k in 0..4 {
            f(4 * i + k, ((word >> (6 * k)) & REGISTER_MAX as u32) as u8);
        }
    }
}

/// Raises each of `max` (one byte per register) to this value's registers: the union.
pub fn merge_into(max: &mut [u8; REGISTERS], bytes: &[u8]) -> Result<(), Corrupt> {
    if bytes[ENCODING_BYTE] == 0 {
        for_each_dense(&bytes[HEADER_LEN..], |i, r| max[i] = max[i].max(r));
        return Ok(());
    }
    let (mut p, mut index) = (HEADER_LEN, 0usize);
    while p < bytes.len() {
        let op = Opcode::at(bytes, p);
        if let Opcode::Val(value, len) = op {
            if index + len > REGISTERS {
                break;
            }
            for m in &mut max[index..index + len] {
                *m = (*m).max(value);
            }
        }
        index += op.span();
        p += op.width();
    }
    if index != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// How many registers hold each value (index 0..64).
pub type Histogram = [u32; 64];

/// The histogram of a dense or sparse value; Err for a sparse value that does not cover
/// exactly the registers.
pub fn histogram(bytes: &[u8]) -> Result<Histogram, Corrupt> {
    let mut h = [0u32; 64];
    if bytes[ENCODING_BYTE] == 0 {
        for_each_dense(&bytes[HEADER_LEN..], |_, r| h[r as usize] += 1);
        return Ok(h);
    }
    let (mut p, mut index) = (HEADER_LEN, 0usize);
    while p < bytes.len() {
        let op = Opcode::at(bytes, p);
        match op {
            Opcode::Zero(n) | Opcode::XZero(n) => h[0] = h[0].wrapping_add(n as u32),
            Opcode::Val(value, n) => h[value as usize] = h[value as usize].wrapping_add(n as u32),
        }
        index += op.span();
        p += op.width();
    }
    if index != REGISTERS {
        return Err(Corrupt);
    }
    Ok(h)
}

pub fn histogram_of_registers(max: &[u8; REGISTERS]) -> Histogram {
    let mut h = [0u32; 64];
    // Most registers of a small union are zero: count eight at a time where they are.
    for chunk in max.chunks_exact(8) {
        if u64::from_ne_bytes(chunk.try_into().expect("8 bytes")) == 0 {
            h[0] += 8;
        } else {
            chunk.iter().for_each(|&r| h[(r & 63) as usize] += 1);
        }
    }
    h
}

/// Ertl's estimator ("New cardinality estimation algorithms for HyperLogLog sketches",
/// arXiv:1702.01284) over a register histogram, in the same floating-point steps as Redis
/// so the rounded result is the same.
pub fn estimate(h: &Histogram) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - h[Q + 1] as f64) / m);
    for j in (1..=Q).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// The cardinality of a validated value (not using or updating the cache).
pub fn count(bytes: &[u8]) -> Result<u64, Corrupt> {
    histogram(bytes).map(|h| estimate(&h))
}

/// PFDEBUG DECODE's text for a sparse value: `z:N`, `Z:N`, `v:value,len` separated by spaces.
pub fn decode_sparse(bytes: &[u8]) -> String {
    let mut out = Vec::new();
    let mut p = HEADER_LEN;
    while p < bytes.len() {
        let op = Opcode::at(bytes, p);
        out.push(match op {
            Opcode::Zero(n) => format!("z:{n}"),
            Opcode::XZero(n) => format!("Z:{n}"),
            Opcode::Val(v, n) => format!("v:{v},{n}"),
        });
        p += op.width();
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registers_of(bytes: &[u8]) -> Vec<u8> {
        let mut copy = bytes.to_vec();
        sparse_to_dense(&mut copy).expect("valid");
        (0..REGISTERS).map(|i| dense_get(&copy[HEADER_LEN..], i)).collect()
    }

    #[test]
    fn the_four_at_a_time_walk_reads_what_dense_get_reads() {
        let mut regs = vec![0u8; DENSE_LEN - HEADER_LEN];
        for i in 0..REGISTERS {
            dense_put(&mut regs, i, (i * 7 % 64) as u8);
        }
        let mut seen = 0;
        for_each_dense(&regs, |i, r| {
            assert_eq!(r, dense_get(&regs, i), "register {i}");
            seen += 1;
        });
        assert_eq!(seen, REGISTERS);
    }

    #[test]
    fn dense_registers_round_trip_without_touching_neighbours() {
        let mut regs = vec![0u8; DENSE_LEN - HEADER_LEN];
        let mut model = vec![0u8; REGISTERS];
        let mut seed = 12345u64;
        for _ in 0..200_000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let i = (seed >> 33) as usize % REGISTERS;
            let v = (seed >> 20) as u8 & REGISTER_MAX;
            dense_put(&mut regs, i, v);
            model[i] = v;
        }
        assert!((0..REGISTERS).all(|i| dense_get(&regs, i) == model[i]));
    }

    #[test]
    fn sparse_and_dense_agree_on_every_register_and_count() {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        sparse_to_dense(&mut dense).unwrap();
        for i in 0..5000u32 {
            let e = format!("element:{i}");
            let a = add(&mut sparse, e.as_bytes(), 1 << 20).unwrap();
            let b = add(&mut dense, e.as_bytes(), 1 << 20).unwrap();
            assert_eq!(a, b, "element {i}");
            if i % 500 == 0 {
                assert_eq!(encoding_of(&sparse), Some(Encoding::Sparse));
                assert_eq!(registers_of(&sparse), registers_of(&dense));
                assert_eq!(count(&sparse), count(&dense));
            }
        }
    }

    #[test]
    fn the_estimate_is_within_a_few_standard_errors() {
        let mut hll = new_sparse();
        let mut checkpoint = 10u64;
        for i in 1..=200_000u64 {
            add(&mut hll, &i.to_le_bytes(), 3000).unwrap();
            if i == checkpoint {
                let err = (count(&hll).unwrap() as f64 - i as f64).abs() / i as f64;
                assert!(err < 6.0 * 1.04 / (REGISTERS as f64).sqrt(), "{i}: {err}");
                checkpoint *= 10;
            }
        }
        assert_eq!(encoding_of(&hll), Some(Encoding::Dense));
        assert_eq!(count(&new_sparse()), Ok(0));
    }

    #[test]
    fn corrupt_sparse_values_are_reported() {
        let mut short = new_sparse();
        short.truncate(HEADER_LEN + 1);
        short[HEADER_LEN] = 0x40 | 0x10;
        assert_eq!(count(&short), Err(Corrupt));
        let mut v = new_sparse();
        v.push(0x00);
        assert_eq!(count(&v), Err(Corrupt));
        assert_eq!(sparse_to_dense(&mut v.clone()), Err(Corrupt));
        let mut header_only = new_sparse();
        header_only.truncate(HEADER_LEN);
        assert_eq!(sparse_set(&mut header_only, 3, 2, 3000), Err(Corrupt));
    }

    /// Whatever a client stores under a HYLL header, every operation either works or
    /// reports `Corrupt`; none panics (the fuzz target `hll` runs the same on more inputs).
    fn exercise(bytes: &[u8], index: usize, count: u8, max_bytes: usize) {
        if encoding_of(bytes).is_none() {
            return;
        }
        let _ = count_and_decode(bytes);
        let mut max = [0u8; REGISTERS];
        let _ = merge_into(&mut max, bytes);
        let mut v = bytes.to_vec();
        let _ = add(&mut v, b"element", max_bytes);
        let mut v = bytes.to_vec();
        if v[ENCODING_BYTE] == 1 {
            let _ = sparse_set(&mut v, index % REGISTERS, count % 64, max_bytes);
        }
        let _ = sparse_to_dense(&mut bytes.to_vec());
    }

    fn count_and_decode(bytes: &[u8]) -> Result<u64, Corrupt> {
        if bytes[ENCODING_BYTE] == 1 {
            decode_sparse(bytes);
        }
        count(bytes)
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_sparse_bodies_never_panic(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            index in 0usize..REGISTERS,
            count in 0u8..64,
            max_bytes in 0usize..4000,
        ) {
            let mut v = new_sparse();
            v.truncate(HEADER_LEN);
            v.extend_from_slice(&body);
            exercise(&v, index, count, max_bytes);
            v[ENCODING_BYTE] = 0;
            v.resize(DENSE_LEN, 0xff);
            exercise(&v, index, count, max_bytes);
        }
    }
}
