//! LZF, the compression RDB files use for strings (and for whole listpacks, which are
//! saved as strings).
//!
//! The stream is a sequence of items, each introduced by a control byte `c`:
//!
//! - `c < 32`: a literal run: the next `c + 1` bytes are copied to the output.
//! - otherwise a back reference: `len = c >> 5` (7 means "7 plus the next byte"), then one
//!   more byte `lo`; the match starts `((c & 0x1f) << 8 | lo) + 1` bytes back in the output
//!   and is `len + 2` bytes long (so 3..=264). It may overlap the bytes it produces
//!   (a run of one repeated byte is a reference at distance 1).
//!
//! The compressor is a greedy one-pass matcher with a small hash table of 3-byte
//! prefixes, which is what liblzf does too; the exact bytes need not match Redis's
//! output, only the format.

/// Longest literal run one control byte can describe.
const MAX_LIT: usize = 32;
/// Farthest back a reference can point.
const MAX_OFF: usize = 1 << 13;
/// Longest match: `(7 + 255) + 2`.
const MAX_REF: usize = 264;
const HASH_BITS: u32 = 14;

/// Why an LZF stream was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LzfError {
    /// The stream describes more bytes than the declared uncompressed length.
    OutputOverflow,
    /// The stream ended in the middle of an item.
    InputTruncated,
    /// A back reference points before the start of the output.
    BadReference,
    /// The stream ended before producing the declared uncompressed length.
    ShortOutput,
}

impl std::fmt::Display for LzfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LzfError::OutputOverflow => "LZF data expands beyond the declared length",
            LzfError::InputTruncated => "LZF data ends in the middle of an item",
            LzfError::BadReference => "LZF back reference points before the start of the data",
            LzfError::ShortOutput => "LZF data expands to less than the declared length",
        })
    }
}

/// The most one input byte can expand to: a 3-byte reference yields at most 264 bytes.
/// Used to refuse absurd declared lengths before allocating for them.
pub const MAX_EXPANSION: u64 = 89;

/// Decompresses `input`, which must expand to exactly `out_len` bytes, appending to `out`.
pub fn decompress_into(input: &[u8], out_len: usize, out: &mut Vec<u8>) -> Result<(), LzfError> {
    let base = out.len();
    let end = base.checked_add(out_len).ok_or(LzfError::OutputOverflow)?;
    out.reserve(out_len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            let run = ctrl + 1;
            let lit = input.get(ip..ip + run).ok_or(LzfError::InputTruncated)?;
            if out.len() + run > end {
                return Err(LzfError::OutputOverflow);
            }
            out.extend_from_slice(lit);
            ip += run;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += usize::from(*input.get(ip).ok_or(LzfError::InputTruncated)?);
                ip += 1;
            }
            let lo = usize::from(*input.get(ip).ok_or(LzfError::InputTruncated)?);
            ip += 1;
            let dist = ((ctrl & 0x1f) << 8 | lo) + 1;
            let len = len + 2;
            if out.len() + len > end {
                return Err(LzfError::OutputOverflow);
            }
            let from = out.len().checked_sub(dist).filter(|&f| f >= base).ok_or(LzfError::BadReference)?;
            if dist >= len {
                // Disjoint: one bulk copy.
                out.extend_from_within(from..from + len);
            } else {
                // Overlapping: the reference reads bytes it has just written.
                for k in 0..len {
                    let b = out[from + k];
                    out.push(b);
                }
            }
        }
    }
    if out.len() != end {
        return Err(LzfError::ShortOutput);
    }
    Ok(())
}

/// Decompresses `input` into a new vector of exactly `out_len` bytes.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, LzfError> {
    let mut out = Vec::new();
    decompress_into(input, out_len, &mut out)?;
    Ok(out)
}

fn hash3(p: &[u8]) -> usize {
    let v = u32::from(p[0]) << 16 | u32::from(p[1]) << 8 | u32::from(p[2]);
    (v.wrapping_mul(2_654_435_761) >> (32 - HASH_BITS)) as usize
}

/// Reusable compressor state (the hash table), so compressing many strings allocates once.
pub struct Compressor {
    table: Vec<u32>,
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

impl Compressor {
    pub fn new() -> Self {
        Compressor { table: vec![0; 1 << HASH_BITS] }
    }

    /// Compresses `input` into `out` (cleared first). Returns false, leaving `out` in an
    /// unspecified state, as soon as the output would exceed `max_out` bytes: RDB only
    /// stores the compressed form when it is smaller, so there is no point finishing.
    pub fn compress(&mut self, input: &[u8], out: &mut Vec<u8>, max_out: usize) -> bool {
        out.clear();
        // Positions are stored +1 so that 0 means "empty"; inputs past 4 GiB just stop
        // finding matches beyond that point, which is still a valid stream.
        self.table.iter_mut().for_each(|e| *e = 0);
        let n = input.len();
        let mut lit_start = 0;
        let mut i = 0;
        while i + 2 < n {
            let h = hash3(&input[i..]);
            let cand = self.table[h] as usize;
            self.table[h] = u32::try_from(i + 1).unwrap_or(0);
            if cand > 0 {
                let c = cand - 1;
                let dist = i - c;
                if dist <= MAX_OFF && input[c..c + 3] == input[i..i + 3] {
                    let max = MAX_REF.min(n - i);
                    let mut len = 3;
                    while len < max && input[c + len] == input[i + len] {
                        len += 1;
                    }
                    if !emit_literals(&input[lit_start..i], out, max_out) {
                        return false;
                    }
                    let off = dist - 1;
                    let l = len - 2;
                    if l < 7 {
                        out.push(((l << 5) | (off >> 8)) as u8);
                    } else {
                        out.push(((7 << 5) | (off >> 8)) as u8);
                        out.push((l - 7) as u8);
                    }
                    out.push((off & 0xff) as u8);
                    if out.len() > max_out {
                        return false;
                    }
                    // Index the positions inside the match too: later data often repeats
                    // from the middle of an earlier match.
                    let stop = (i + len).min(n.saturating_sub(2));
                    for p in i + 1..stop {
                        self.table[hash3(&input[p..])] = u32::try_from(p + 1).unwrap_or(0);
                    }
                    i += len;
                    lit_start = i;
                    continue;
                }
            }
            i += 1;
        }
        emit_literals(&input[lit_start..], out, max_out)
    }
}

fn emit_literals(mut lit: &[u8], out: &mut Vec<u8>, max_out: usize) -> bool {
    while !lit.is_empty() {
        let run = lit.len().min(MAX_LIT);
        out.push((run - 1) as u8);
        out.extend_from_slice(&lit[..run]);
        lit = &lit[run..];
    }
    out.len() <= max_out
}

/// One-shot compression; None when the result would exceed `max_out` bytes.
pub fn compress(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    Compressor::new().compress(input, &mut out, max_out).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift32 bytes: no repeats an LZ matcher could use.
    fn noise(n: usize) -> Vec<u8> {
        let mut x = 0x1234_5678_u32;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 24) as u8
            })
            .collect()
    }

    fn round_trip(data: &[u8]) {
        let c = compress(data, usize::MAX).expect("unbounded compression succeeds");
        assert_eq!(decompress(&c, data.len()).expect("decompresses"), data);
    }

    #[test]
    fn round_trips() {
        round_trip(b"");
        round_trip(b"a");
        round_trip(b"abc");
        round_trip(&[b'x'; 1000]);
        round_trip(b"abcabcabcabcabcabcabcabcabcabcabcabcabcabcabc");
        let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog. ".repeat(300);
        round_trip(&text);
        // Incompressible: a pseudo-random byte stream.
        let noise = noise(20_000);
        round_trip(&noise);
        // Long inputs exercise distances at the 8 KiB limit and maximal matches.
        let mut far = noise[..9000].to_vec();
        far.extend_from_slice(&noise[..9000]);
        round_trip(&far);
    }

    #[test]
    fn compresses_repetitive_data_and_gives_up_on_noise() {
        let data = vec![b'a'; 10_000];
        let c = compress(&data, data.len() - 4).expect("compressible");
        assert!(c.len() < 200, "{} bytes", c.len());
        let noise = noise(1000);
        assert!(compress(&noise, noise.len() - 4).is_none());
    }

    #[test]
    fn hand_made_streams() {
        // Literal "ab", then a reference at distance 2 of length 4 (overlapping): "ababab".
        let s = [0x01, b'a', b'b', 2 << 5, 0x01];
        assert_eq!(decompress(&s, 6).unwrap(), b"ababab");
        // Long reference: 7 + 3 + 2 = 12 bytes of 'z' at distance 1.
        let s = [0x00, b'z', 7 << 5, 3, 0x00];
        assert_eq!(decompress(&s, 13).unwrap(), vec![b'z'; 13]);
    }

    #[test]
    fn refuses_corrupt_streams() {
        assert_eq!(decompress(&[0x05, b'a'], 6), Err(LzfError::InputTruncated));
        assert_eq!(decompress(&[0x00, b'a', 0x20], 4), Err(LzfError::InputTruncated));
        assert_eq!(decompress(&[0x00, b'a', 0x20, 0x05], 4), Err(LzfError::BadReference));
        assert_eq!(decompress(&[0x02, b'a', b'b', b'c'], 2), Err(LzfError::OutputOverflow));
        assert_eq!(decompress(&[0x00, b'a'], 2), Err(LzfError::ShortOutput));
        assert_eq!(decompress(&[0x00, b'a', 0x20, 0x00], 2), Err(LzfError::OutputOverflow));
    }

    #[test]
    fn redis_compressed_samples() {
        // Produced by Redis 7.0.15's lzf_compress for values set with SET, cut out of the
        // RDB file it saved. "a" x 100:
        let s = [0x01, 0x61, 0x61, 0xe0, 0x57, 0x00, 0x01, 0x61, 0x61];
        assert_eq!(decompress(&s, 100).unwrap(), vec![b'a'; 100]);
        // "Lorem ipsum dolor sit amet, consectetur adipiscing elit, " twice, minus the last
        // ", ": a reference reaching 57 bytes back with a long (7 + n) length.
        let mut s = vec![0x1f];
        s.extend_from_slice(b"Lorem ipsum dolor sit amet, cons");
        s.push(0x15);
        s.extend_from_slice(b"ectetur adipiscing eli");
        s.extend_from_slice(&[0x20, 0x1c, 0x00, 0x4c, 0xe0, 0x2b, 0x38, 0x01, 0x69, 0x74]);
        let line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit";
        assert_eq!(decompress(&s, 112).unwrap(), format!("{line}, {line}").as_bytes());
        // "key:N," for N = 1,2,...,6,0,1,... 40 times: short overlapping references.
        let s = [
            0x06, 0x6b, 0x65, 0x79, 0x3a, 0x31, 0x2c, 0x6b, 0x20, 0x05, 0x00, 0x32, 0x60, 0x05, 0x00, 0x33, 0x60, 0x05,
            0x00, 0x34, 0x60, 0x05, 0x00, 0x35, 0x60, 0x05, 0x00, 0x36, 0x60, 0x05, 0x00, 0x30, 0x60, 0x05, 0xe0, 0xb7,
            0x29, 0x01, 0x35, 0x2c,
        ];
        let want: String = (1..=40).map(|i| format!("key:{},", i % 7)).collect();
        assert_eq!(decompress(&s, 240).unwrap(), want.as_bytes());
        // And our compressor's output for the same inputs decompresses to them.
        round_trip(want.as_bytes());
    }
}
