//! The streaming reader: one [`Item`] per call, constant memory beyond the current value.

use std::io::Read;

use ferrokv_keyspace::SmallBytes;

use super::error::{ErrorKind, RdbError};
use super::num::{fmt_i64, parse_score, strtod_prefix};
use super::{crc64, intset, listpack, lzf, types::*, ziplist, zipmap};
use super::{Bad, Elem, Item, KeyRecord, RdbValue, MAX_READ_VERSION};

mod stream;

const BUF_SIZE: usize = 64 * 1024;
/// Upper bound for capacity reserved from a length read in the file, before the data that
/// justifies it has arrived. Beyond this, vectors grow as the data actually comes in, so a
/// corrupt length costs at most this much before the reader runs out of input.
const MAX_PREALLOC_BYTES: u64 = 1 << 20;
const MAX_PREALLOC_ELEMS: u64 = 4096;

/// A buffered byte source that counts consumed bytes and keeps a running CRC-64 of them.
pub(crate) struct Source<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    end: usize,
    /// `buf[crc_from..pos]` has been consumed but not yet folded into `crc`; folding lazily
    /// lets the CRC run over whole chunks instead of byte by byte.
    crc_from: usize,
    crc: u64,
    offset: u64,
}

impl<R: Read> Source<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self::with_buffer(inner, BUF_SIZE)
    }

    /// A source reading through a buffer of `size` bytes (at most the default): a DUMP
    /// payload of a few bytes need not zero 64 KiB (that was a third of a small RESTORE).
    pub(crate) fn with_buffer(inner: R, size: usize) -> Self {
        let size = size.clamp(1, BUF_SIZE);
        Source { inner, buf: vec![0; size].into_boxed_slice(), pos: 0, end: 0, crc_from: 0, crc: 0, offset: 0 }
    }

    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    pub(crate) fn err(&self, kind: ErrorKind) -> RdbError {
        RdbError::new(self.offset, kind)
    }

    /// CRC-64 of every byte consumed so far.
    pub(crate) fn crc(&mut self) -> u64 {
        self.crc = crc64(self.crc, &self.buf[self.crc_from..self.pos]);
        self.crc_from = self.pos;
        self.crc
    }

    /// Makes at least one unconsumed byte available, or fails with `Truncated`.
    fn fill(&mut self) -> Result<(), RdbError> {
        if self.pos < self.end {
            return Ok(());
        }
        self.crc();
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => return Err(self.err(ErrorKind::Truncated)),
                Ok(n) => {
                    self.pos = 0;
                    self.end = n;
                    self.crc_from = 0;
                    return Ok(());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.err(ErrorKind::Io(e))),
            }
        }
    }

    fn advance(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }

    pub(crate) fn u8(&mut self) -> Result<u8, RdbError> {
        self.fill()?;
        let b = self.buf[self.pos];
        self.advance(1);
        Ok(b)
    }

    pub(crate) fn exact(&mut self, out: &mut [u8]) -> Result<(), RdbError> {
        let mut done = 0;
        while done < out.len() {
            self.fill()?;
            let take = (out.len() - done).min(self.end - self.pos);
            out[done..done + take].copy_from_slice(&self.buf[self.pos..self.pos + take]);
            self.advance(take);
            done += take;
        }
        Ok(())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        let mut a = [0u8; N];
        self.exact(&mut a)?;
        Ok(a)
    }

    /// Appends `n` bytes to `out`, growing it only as data arrives.
    fn bytes_into(&mut self, n: u64, out: &mut Vec<u8>) -> Result<(), RdbError> {
        out.reserve(n.min(MAX_PREALLOC_BYTES) as usize);
        let mut left = n;
        while left > 0 {
            self.fill()?;
            let take = left.min((self.end - self.pos) as u64) as usize;
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.advance(take);
            left -= take as u64;
        }
        Ok(())
    }

    /// Returns the wrapped reader and the bytes read ahead but not consumed.
    pub(crate) fn into_parts(self) -> (R, Vec<u8>) {
        (self.inner, self.buf[self.pos..self.end].to_vec())
    }

    // ----- RDB primitives -----

    /// A length, or `Err(enc)` for the `11xxxxxx` special string encodings.
    fn len_or_encoding(&mut self) -> Result<Result<u64, u8>, RdbError> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Ok(u64::from(b & 0x3f)),
            1 => Ok(u64::from(b & 0x3f) << 8 | u64::from(self.u8()?)),
            2 => match b {
                0x80 => Ok(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Ok(u64::from_be_bytes(self.array()?)),
                _ => return Err(RdbError::new(self.offset - 1, ErrorKind::BadLengthEncoding(b))),
            },
            _ => Err(b & 0x3f),
        })
    }

    /// A length. Like Redis's `rdbLoadLen(rdb, NULL)`, a special-encoding byte
    /// (`11xxxxxx`) where a length is expected reads as its low six bits.
    pub(crate) fn len(&mut self) -> Result<u64, RdbError> {
        Ok(match self.len_or_encoding()? {
            Ok(n) => n,
            Err(six_bits) => u64::from(six_bits),
        })
    }

    /// Reads a string in any of its encodings and hands it to `f` as bytes (integer
    /// encodings are formatted on the stack, short strings read on the stack).
    fn string_with<T>(&mut self, f: impl FnOnce(&[u8]) -> T, big: impl FnOnce(Vec<u8>) -> T) -> Result<T, RdbError> {
        let start = self.offset;
        match self.len_or_encoding()? {
            Ok(n) if n <= 32 => {
                let mut b = [0u8; 32];
                self.exact(&mut b[..n as usize])?;
                Ok(f(&b[..n as usize]))
            }
            Ok(n) => {
                let mut v = Vec::new();
                self.bytes_into(n, &mut v)?;
                Ok(big(v))
            }
            Err(enc @ 0..=2) => {
                let v = match enc {
                    0 => i64::from(self.u8()? as i8),
                    1 => i64::from(i16::from_le_bytes(self.array()?)),
                    _ => i64::from(i32::from_le_bytes(self.array()?)),
                };
                let mut b = [0u8; 20];
                Ok(f(fmt_i64(v, &mut b)))
            }
            Err(3) => {
                let clen = self.len()?;
                let ulen = self.len()?;
                // Refuse lengths LZF cannot produce before reserving memory for them.
                if ulen > clen.saturating_mul(lzf::MAX_EXPANSION) || usize::try_from(ulen).is_err() {
                    return Err(RdbError::new(start, ErrorKind::BadLength("LZF uncompressed length")));
                }
                let mut c = Vec::new();
                self.bytes_into(clen, &mut c)?;
                if ulen == 0 {
                    // Redis asks LZF for exactly 0 bytes, which any input "produces".
                    return Ok(big(Vec::new()));
                }
                let mut out = Vec::new();
                lzf::decompress_into(&c, ulen as usize, &mut out)
                    .map_err(|e| RdbError::new(start, ErrorKind::Lzf(e)))?;
                Ok(big(out))
            }
            Err(enc) => Err(RdbError::new(start, ErrorKind::BadStringEncoding(enc))),
        }
    }

    pub(crate) fn string(&mut self) -> Result<Vec<u8>, RdbError> {
        self.string_with(<[u8]>::to_vec, |v| v)
    }

    pub(crate) fn small_bytes(&mut self) -> Result<SmallBytes, RdbError> {
        self.string_with(
            |b| SmallBytes::from(b),
            |mut v| {
                // Vectors grown chunk by chunk may carry spare capacity; values live long.
                v.shrink_to_fit();
                SmallBytes::from(v)
            },
        )
    }

    /// A blob (listpack, ziplist, …) and the offset where its string started, for errors.
    fn blob(&mut self) -> Result<(u64, Vec<u8>), RdbError> {
        let at = self.offset;
        Ok((at, self.string()?))
    }
}

fn corrupt(at: u64) -> impl Fn(Bad) -> RdbError {
    move |b: Bad| RdbError::new(at, b.kind())
}

fn capacity(n: u64) -> usize {
    n.min(MAX_PREALLOC_ELEMS) as usize
}

/// A score stored as an element of a ziplist or listpack.
/// A compact sorted set's score entry as Redis reads it (see [`strtod_prefix`]); `None`
/// for NaN, which a sorted set here cannot hold (Redis would load it).
fn elem_score(e: Elem<'_>) -> Option<f64> {
    let score = match e {
        Elem::Int(v) => v as f64,
        Elem::Bytes(b) => parse_score(b).unwrap_or_else(|| strtod_prefix(b)),
    };
    (!score.is_nan()).then_some(score)
}

/// Decodes a ziplist or listpack of alternating field/value (or member/score) entries.
/// `second` converts the second entry of each pair; `None` means it is not a valid score.
fn packed_pairs<'a, T>(
    blob: &'a [u8],
    at: u64,
    listpack: bool,
    mut second: impl FnMut(Elem<'a>) -> Option<T>,
) -> Result<Vec<(SmallBytes, T)>, RdbError> {
    let structure = if listpack { "listpack" } else { "ziplist" };
    let mut out = Vec::new();
    let mut pending: Option<SmallBytes> = None;
    let mut bad_score = false;
    let each = |e: Elem<'a>| -> Result<(), Bad> {
        match pending.take() {
            None => pending = Some(e.to_small_bytes()),
            Some(k) => match second(e) {
                Some(v) => out.push((k, v)),
                None => {
                    bad_score = true;
                    return Err(Bad { structure, at: 0, what: "invalid score" });
                }
            },
        }
        Ok(())
    };
    let r = if listpack { listpack::for_each(blob, each) } else { ziplist::for_each(blob, each) };
    if bad_score {
        return Err(RdbError::new(at, ErrorKind::BadScore));
    }
    r.map_err(corrupt(at))?;
    if pending.is_some() {
        return Err(RdbError::new(at, Bad { structure, at: 0, what: "odd number of entries in a pair list" }.kind()));
    }
    Ok(out)
}

fn packed_list(blob: &[u8], at: u64, listpack: bool, out: &mut Vec<SmallBytes>) -> Result<usize, RdbError> {
    let each = |e: Elem<'_>| -> Result<(), Bad> {
        out.push(e.to_small_bytes());
        Ok(())
    };
    let r = if listpack { listpack::for_each(blob, each) } else { ziplist::for_each(blob, each) };
    r.map_err(corrupt(at))
}

/// Reads the value of type `ty`. `Ok(None)` is an empty aggregate (Redis skips those).
pub(crate) fn read_value<R: Read>(src: &mut Source<R>, ty: u8) -> Result<Option<RdbValue>, RdbError> {
    let type_at = src.offset().saturating_sub(1);
    let v = match ty {
        STRING => RdbValue::String(src.small_bytes()?),
        LIST | SET => {
            let n = src.len()?;
            let mut v = Vec::with_capacity(capacity(n));
            for _ in 0..n {
                v.push(src.small_bytes()?);
            }
            if ty == LIST {
                RdbValue::List(v)
            } else {
                RdbValue::Set(v)
            }
        }
        ZSET | ZSET_2 => {
            let n = src.len()?;
            let mut v = Vec::with_capacity(capacity(n));
            for _ in 0..n {
                let m = src.small_bytes()?;
                let at = src.offset();
                let score = if ty == ZSET_2 {
                    f64::from_le_bytes(src.array()?)
                } else {
                    // Text score: a length byte, or 253/254/255 for NaN/+inf/-inf.
                    match src.u8()? {
                        253 => f64::NAN,
                        254 => f64::INFINITY,
                        255 => f64::NEG_INFINITY,
                        len => {
                            let mut b = [0u8; 252];
                            src.exact(&mut b[..usize::from(len)])?;
                            parse_score(&b[..usize::from(len)]).ok_or(RdbError::new(at, ErrorKind::BadScore))?
                        }
                    }
                };
                if score.is_nan() {
                    return Err(RdbError::new(at, ErrorKind::BadScore));
                }
                v.push((m, score));
            }
            RdbValue::ZSet(v)
        }
        HASH => {
            let n = src.len()?;
            let mut v = Vec::with_capacity(capacity(n));
            for _ in 0..n {
                let f = src.small_bytes()?;
                v.push((f, src.small_bytes()?));
            }
            RdbValue::Hash(v)
        }
        HASH_ZIPMAP => {
            let (at, blob) = src.blob()?;
            let pairs = zipmap::pairs(&blob).map_err(corrupt(at))?;
            RdbValue::Hash(pairs.into_iter().map(|(f, v)| (SmallBytes::from(f), SmallBytes::from(v))).collect())
        }
        LIST_ZIPLIST => {
            let (at, blob) = src.blob()?;
            let mut v = Vec::new();
            packed_list(&blob, at, false, &mut v)?;
            RdbValue::List(v)
        }
        SET_INTSET => {
            let (at, blob) = src.blob()?;
            let ints = intset::decode(&blob).map_err(corrupt(at))?;
            RdbValue::Set(ints.into_iter().map(|i| Elem::Int(i).to_small_bytes()).collect())
        }
        SET_LISTPACK => {
            let (at, blob) = src.blob()?;
            let mut v = Vec::new();
            packed_list(&blob, at, true, &mut v)?;
            RdbValue::Set(v)
        }
        ZSET_ZIPLIST | ZSET_LISTPACK => {
            let (at, blob) = src.blob()?;
            RdbValue::ZSet(packed_pairs(&blob, at, ty == ZSET_LISTPACK, elem_score)?)
        }
        HASH_ZIPLIST | HASH_LISTPACK => {
            let (at, blob) = src.blob()?;
            RdbValue::Hash(packed_pairs(&blob, at, ty == HASH_LISTPACK, |e| Some(e.to_small_bytes()))?)
        }
        LIST_QUICKLIST | LIST_QUICKLIST_2 => {
            let nodes = src.len()?;
            let mut v = Vec::new();
            for _ in 0..nodes {
                let container = if ty == LIST_QUICKLIST_2 {
                    let at = src.offset();
                    let c = src.len()?;
                    if c != QUICKLIST_NODE_PLAIN && c != QUICKLIST_NODE_PACKED {
                        return Err(RdbError::new(
                            at,
                            Bad { structure: "quicklist", at: 0, what: "unknown node container" }.kind(),
                        ));
                    }
                    c
                } else {
                    QUICKLIST_NODE_PACKED
                };
                let (at, blob) = src.blob()?;
                if blob.is_empty() {
                    return Err(RdbError::new(at, Bad { structure: "quicklist", at: 0, what: "empty node" }.kind()));
                }
                if container == QUICKLIST_NODE_PLAIN {
                    v.push(SmallBytes::from(blob));
                } else {
                    // Empty nodes are skipped, as Redis does.
                    packed_list(&blob, at, ty == LIST_QUICKLIST_2, &mut v)?;
                }
            }
            RdbValue::List(v)
        }
        MODULE_PRE_GA | MODULE_2 => return Err(src.err(ErrorKind::ModuleData)),
        STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 => {
            RdbValue::Stream(Box::new(stream::read_stream(src, ty)?))
        }
        HASH_METADATA_PRE_GA..=HASH_LISTPACK_EX => return Err(src.err(ErrorKind::HashFieldExpiry)),
        _ => return Err(RdbError::new(type_at, ErrorKind::UnknownType(ty))),
    };
    let empty = match &v {
        RdbValue::String(_) => false,
        RdbValue::List(l) | RdbValue::Set(l) => l.is_empty(),
        RdbValue::Hash(h) => h.is_empty(),
        RdbValue::ZSet(z) => z.is_empty(),
        // Streams may be empty (their groups and counters are data).
        RdbValue::Stream(_) => false,
    };
    Ok((!empty).then_some(v))
}

/// True for the type bytes `read_value` knows (supported or refused with a specific
/// error); anything else is refused before reading a key.
fn is_value_type(t: u8) -> bool {
    matches!(t, 0..=7 | 9..=HASH_LISTPACK_EX)
}

/// Reads an RDB file item by item.
///
/// ```no_run
/// use ferrokv_persist::rdb::{Item, RdbReader};
/// let file = std::io::BufReader::new(std::fs::File::open("dump.rdb")?);
/// let mut r = RdbReader::new(file)?;
/// while let Some(item) = r.next()? {
///     if let Item::Key(k) = item {
///         println!("{:?} {}", k.key, k.value.type_name());
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RdbReader<R: Read> {
    src: Source<R>,
    version: u32,
    done: bool,
    failed: bool,
    skipped_empty: u64,
    last_type: Option<u8>,
    /// The CRC-64 stored after the EOF opcode, once read (0 = the writer did not compute it).
    stored_checksum: Option<u64>,
    /// Check the CRC-64 at the end (off: DEBUG SET-SKIP-CHECKSUM-VALIDATION 1).
    verify_checksum: bool,
    // Per-key metadata seen before the key's type byte (possibly across other records).
    expire_ms: Option<i64>,
    idle_secs: Option<u64>,
    freq: Option<u8>,
}

impl<R: Read> RdbReader<R> {
    /// Reads and checks the header: `REDIS` and a four-digit version in 1..=12.
    pub fn new(r: R) -> Result<Self, RdbError> {
        let mut src = Source::new(r);
        let mut magic = [0u8; 9];
        src.exact(&mut magic).map_err(|e| if e.is_truncation() { RdbError::new(0, ErrorKind::NotRdb) } else { e })?;
        if &magic[..5] != b"REDIS" || !magic[5..].iter().all(u8::is_ascii_digit) {
            return Err(RdbError::new(0, ErrorKind::NotRdb));
        }
        let version = magic[5..].iter().fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        if version == 0 || version > MAX_READ_VERSION {
            return Err(RdbError::new(5, ErrorKind::UnsupportedVersion(version)));
        }
        Ok(RdbReader {
            src,
            version,
            done: false,
            failed: false,
            skipped_empty: 0,
            last_type: None,
            stored_checksum: None,
            verify_checksum: true,
            expire_ms: None,
            idle_secs: None,
            freq: None,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.src.offset()
    }

    /// Keys whose aggregate value was empty and that were skipped, as Redis does.
    pub fn skipped_empty_keys(&self) -> u64 {
        self.skipped_empty
    }

    /// The RDB type byte (see [`super::types`]) of the last key returned: how the value
    /// was encoded in the file, for statistics and checking tools.
    pub fn last_key_type(&self) -> Option<u8> {
        self.last_type
    }

    /// Whether the CRC-64 at the end of the file is checked (Redis skips it after DEBUG
    /// SET-SKIP-CHECKSUM-VALIDATION 1).
    pub fn set_verify_checksum(&mut self, on: bool) {
        self.verify_checksum = on;
    }

    /// The checksum stored at the end of the file, once the end was read: `Some(0)` means
    /// the writer did not compute one (nothing was verified); `None` before the end or for
    /// versions before 5, which have none. A nonzero value was verified.
    pub fn stored_checksum(&self) -> Option<u64> {
        self.stored_checksum
    }

    /// The wrapped reader and the bytes it delivered past what was consumed (after the
    /// end of an RDB preamble, the start of the AOF tail).
    pub fn into_inner(self) -> (R, Vec<u8>) {
        self.src.into_parts()
    }

    /// The next item; `None` once the EOF opcode has been read and the checksum verified.
    /// After an error the reader is unusable and keeps returning errors.
    #[allow(clippy::should_implement_trait)] // fallible, so not an Iterator
    pub fn next(&mut self) -> Result<Option<Item>, RdbError> {
        if self.failed {
            return Err(self.src.err(ErrorKind::InvalidInput("the reader already failed")));
        }
        if self.done {
            return Ok(None);
        }
        let r = self.step();
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn step(&mut self) -> Result<Option<Item>, RdbError> {
        loop {
            let at = self.src.offset();
            let op = self.src.u8()?;
            match op {
                OPCODE_EXPIRETIME => {
                    let secs = i32::from_le_bytes(self.src.array()?);
                    self.expire_ms = Some(i64::from(secs) * 1000);
                }
                OPCODE_EXPIRETIME_MS => self.expire_ms = Some(i64::from_le_bytes(self.src.array()?)),
                OPCODE_FREQ => self.freq = Some(self.src.u8()?),
                OPCODE_IDLE => self.idle_secs = Some(self.src.len()?),
                OPCODE_EOF => {
                    // Files before version 5 have no checksum.
                    if self.version >= 5 {
                        let computed = self.src.crc();
                        let sum_at = self.src.offset();
                        let stored = u64::from_le_bytes(self.src.array()?);
                        if self.verify_checksum && stored != 0 && stored != computed {
                            return Err(RdbError::new(sum_at, ErrorKind::BadChecksum { stored, computed }));
                        }
                        self.stored_checksum = Some(stored);
                    }
                    self.done = true;
                    return Ok(None);
                }
                OPCODE_SELECTDB => return Ok(Some(Item::SelectDb(self.src.len()?))),
                OPCODE_RESIZEDB => {
                    let keys = self.src.len()?;
                    let expires = self.src.len()?;
                    return Ok(Some(Item::ResizeDb { keys, expires }));
                }
                OPCODE_AUX => {
                    let key = self.src.string()?;
                    let value = self.src.string()?;
                    return Ok(Some(Item::Aux { key, value }));
                }
                OPCODE_MODULE_AUX => return Err(RdbError::new(at, ErrorKind::ModuleData)),
                OPCODE_FUNCTION2 => return Ok(Some(Item::Function(self.src.string()?))),
                OPCODE_FUNCTION_PRE_GA => return Err(RdbError::new(at, ErrorKind::Functions)),
                OPCODE_SLOT_INFO => {
                    // Cluster slot sizing hint (RDB 12): slot id, keys, expires. Not needed.
                    for _ in 0..3 {
                        self.src.len()?;
                    }
                }
                ty if is_value_type(ty) => {
                    let key = self.src.small_bytes()?;
                    let value = read_value(&mut self.src, ty).map_err(|e| e.in_key(&key))?;
                    let expire_ms = self.expire_ms.take();
                    let idle_secs = self.idle_secs.take();
                    let freq = self.freq.take();
                    match value {
                        Some(value) => {
                            self.last_type = Some(ty);
                            return Ok(Some(Item::Key(KeyRecord {
                                key,
                                type_byte: ty,
                                expire_ms,
                                idle_secs,
                                freq,
                                value,
                            })));
                        }
                        None => self.skipped_empty += 1,
                    }
                }
                ty => return Err(RdbError::new(at, ErrorKind::UnknownType(ty))),
            }
        }
    }
}
