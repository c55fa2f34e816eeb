//! The writer: RDB version 10 files with Redis 7.0's encoding choices.
//!
//! Values are passed as [`ValueRef`]s that *borrow* the caller's data. Aggregates are
//! passed as element sources the writer may walk more than once ([`Elems`], [`Pairs`],
//! [`Scored`]): a quicklist starts with its node count, which depends on the element
//! sizes, and the compact encodings of sets, hashes and sorted sets are chosen from a scan
//! of the elements — so streaming without buffering the value needs a second pass. The
//! sources call back with each element, so the caller's own iteration (a ring buffer, a
//! hash table, an intset) needs no adapter vector.

use std::collections::VecDeque;
use std::io::Write;

use ferrokv_keyspace::SmallBytes;

use super::error::{ErrorKind, RdbError};
use super::num::{fmt_i64, parse_canonical_i64, score_to_string};
use super::{crc64, intset, listpack, lzf, types::*, Elem, RDB_VERSION};

mod stream;

/// Encoding thresholds and switches; the defaults are Redis 7.0's.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteOptions {
    /// `rdbcompression`: LZF-compress strings (and blobs) over 20 bytes when it helps.
    pub compress: bool,
    /// `list-max-listpack-size`: negative = node size class (-2 = 8 KiB), positive =
    /// elements per node (within an 8 KiB safety limit).
    pub list_max_listpack_size: i64,
    /// List elements of at least this many bytes get a node of their own, stored plain
    /// (Redis's `packed_threshold`, 1 GiB).
    pub list_packed_threshold: usize,
    /// `set-max-intset-entries`.
    pub set_max_intset_entries: usize,
    /// `hash-max-listpack-entries` / `hash-max-listpack-value`.
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    /// `zset-max-listpack-entries` / `zset-max-listpack-value`.
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            compress: true,
            list_max_listpack_size: -2,
            list_packed_threshold: 1 << 30,
            set_max_intset_entries: 512,
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
        }
    }
}

/// Something that can be seen as an element: byte strings, and integers (which stand for
/// their decimal form and are stored without formatting where the encoding allows).
pub trait AsElem {
    fn as_elem(&self) -> Elem<'_>;
}

impl AsElem for [u8] {
    fn as_elem(&self) -> Elem<'_> {
        Elem::Bytes(self)
    }
}
impl AsElem for Vec<u8> {
    fn as_elem(&self) -> Elem<'_> {
        Elem::Bytes(self)
    }
}
impl AsElem for SmallBytes {
    fn as_elem(&self) -> Elem<'_> {
        Elem::Bytes(self)
    }
}
impl AsElem for str {
    fn as_elem(&self) -> Elem<'_> {
        Elem::Bytes(self.as_bytes())
    }
}
impl AsElem for String {
    fn as_elem(&self) -> Elem<'_> {
        Elem::Bytes(self.as_bytes())
    }
}
impl AsElem for i64 {
    fn as_elem(&self) -> Elem<'_> {
        Elem::Int(*self)
    }
}
impl AsElem for Elem<'_> {
    fn as_elem(&self) -> Elem<'_> {
        *self
    }
}
impl<T: AsElem + ?Sized> AsElem for &T {
    fn as_elem(&self) -> Elem<'_> {
        (**self).as_elem()
    }
}

/// The elements of a list or set. `visit` must call `f` exactly `len()` times, the same
/// way each time it is called.
pub trait Elems {
    fn len(&self) -> usize;
    fn visit(&self, f: &mut dyn FnMut(Elem<'_>));
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The (field, value) pairs of a hash.
pub trait Pairs {
    fn len(&self) -> usize;
    fn visit(&self, f: &mut dyn FnMut(Elem<'_>, Elem<'_>));
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The (member, score) entries of a sorted set.
pub trait Scored {
    fn len(&self) -> usize;
    fn visit(&self, f: &mut dyn FnMut(Elem<'_>, f64));
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `(field, value)` tuples, for the [`Pairs`] impls of vectors and slices.
pub trait PairLike {
    fn pair(&self) -> (Elem<'_>, Elem<'_>);
}

impl<A: AsElem, B: AsElem> PairLike for (A, B) {
    fn pair(&self) -> (Elem<'_>, Elem<'_>) {
        (self.0.as_elem(), self.1.as_elem())
    }
}

/// `(member, score)` tuples, for the [`Scored`] impls of vectors and slices.
pub trait ScoredLike {
    fn entry(&self) -> (Elem<'_>, f64);
}

impl<A: AsElem> ScoredLike for (A, f64) {
    fn entry(&self) -> (Elem<'_>, f64) {
        (self.0.as_elem(), self.1)
    }
}

macro_rules! seq_impls {
    ($($t:ty),*) => {$(
        impl<T: AsElem> Elems for $t {
            fn len(&self) -> usize {
                self.iter().len()
            }
            fn visit(&self, f: &mut dyn FnMut(Elem<'_>)) {
                self.iter().for_each(|e| f(e.as_elem()))
            }
        }
        impl<T: PairLike> Pairs for $t {
            fn len(&self) -> usize {
                self.iter().len()
            }
            fn visit(&self, f: &mut dyn FnMut(Elem<'_>, Elem<'_>)) {
                self.iter().for_each(|p| {
                    let (a, b) = p.pair();
                    f(a, b)
                })
            }
        }
        impl<T: ScoredLike> Scored for $t {
            fn len(&self) -> usize {
                self.iter().len()
            }
            fn visit(&self, f: &mut dyn FnMut(Elem<'_>, f64)) {
                self.iter().for_each(|p| {
                    let (m, s) = p.entry();
                    f(m, s)
                })
            }
        }
    )*};
}

seq_impls!(Vec<T>, &[T], VecDeque<T>);

/// Adapts a closure to [`Elems`], [`Pairs`] or [`Scored`], for callers whose data is not
/// in a slice: `Visit::new(set.len(), |f: &mut dyn FnMut(Elem<'_>)| set.for_each(|m| f(m)))`.
pub struct Visit<F> {
    len: usize,
    f: F,
}

impl<F> Visit<F> {
    pub fn new(len: usize, f: F) -> Self {
        Visit { len, f }
    }
}

impl<F: Fn(&mut dyn FnMut(Elem<'_>))> Elems for Visit<F> {
    fn len(&self) -> usize {
        self.len
    }
    fn visit(&self, f: &mut dyn FnMut(Elem<'_>)) {
        (self.f)(f)
    }
}

impl<F: Fn(&mut dyn FnMut(Elem<'_>, Elem<'_>))> Pairs for Visit<F> {
    fn len(&self) -> usize {
        self.len
    }
    fn visit(&self, f: &mut dyn FnMut(Elem<'_>, Elem<'_>)) {
        (self.f)(f)
    }
}

impl<F: Fn(&mut dyn FnMut(Elem<'_>, f64))> Scored for Visit<F> {
    fn len(&self) -> usize {
        self.len
    }
    fn visit(&self, f: &mut dyn FnMut(Elem<'_>, f64)) {
        (self.f)(f)
    }
}

/// A value to write, borrowing the caller's data.
#[derive(Clone, Copy)]
pub enum ValueRef<'a> {
    /// A string (stored as an integer if it is a canonical one that fits 32 bits).
    Str(&'a [u8]),
    /// A string holding an integer, written without formatting it first.
    Int(i64),
    List(&'a dyn Elems),
    Set(&'a dyn Elems),
    Hash(&'a dyn Pairs),
    ZSet(&'a dyn Scored),
    Stream(&'a ferrokv_keyspace::types::stream::Stream),
}

/// Output with a write-combining buffer, a byte count and a running CRC-64.
pub(crate) struct Out<W: Write> {
    w: W,
    buf: Vec<u8>,
    crc: u64,
    flushed: u64,
}

const OUT_BUF: usize = 64 * 1024;

impl<W: Write> Out<W> {
    pub(crate) fn new(w: W) -> Self {
        Out { w, buf: Vec::with_capacity(OUT_BUF), crc: 0, flushed: 0 }
    }

    pub(crate) fn get_ref(&self) -> &W {
        &self.w
    }

    /// The inner writer, dropping whatever is still buffered.
    pub(crate) fn into_inner_unflushed(self) -> W {
        self.w
    }

    pub(crate) fn written(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    fn io_err(&self, e: std::io::Error) -> RdbError {
        RdbError::new(self.written(), ErrorKind::Io(e))
    }

    fn flush_buf(&mut self) -> Result<(), RdbError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.crc = crc64(self.crc, &self.buf);
        if let Err(e) = self.w.write_all(&self.buf) {
            return Err(self.io_err(e));
        }
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    pub(crate) fn put(&mut self, b: &[u8]) -> Result<(), RdbError> {
        if self.buf.len() + b.len() > OUT_BUF {
            self.flush_buf()?;
            if b.len() >= OUT_BUF {
                // Big strings go straight through instead of being copied.
                self.crc = crc64(self.crc, b);
                if let Err(e) = self.w.write_all(b) {
                    return Err(self.io_err(e));
                }
                self.flushed += b.len() as u64;
                return Ok(());
            }
        }
        self.buf.extend_from_slice(b);
        Ok(())
    }

    pub(crate) fn byte(&mut self, b: u8) -> Result<(), RdbError> {
        self.put(&[b])
    }

    /// Flushes and returns the CRC-64 of everything written.
    pub(crate) fn crc(&mut self) -> Result<u64, RdbError> {
        self.flush_buf()?;
        Ok(self.crc)
    }

    pub(crate) fn into_inner(mut self) -> Result<W, RdbError> {
        self.flush_buf()?;
        if let Err(e) = self.w.flush() {
            return Err(self.io_err(e));
        }
        Ok(self.w)
    }
}

/// Receives each finished quicklist node: `None` = the packed listpack being built,
/// `Some(element)` = a plain node holding that element; and the node's size in bytes as
/// Redis counts it (the listpack's, or the plain element's).
type NodeSink<'s, E> = dyn FnMut(&mut E, Option<Elem<'_>>, usize) -> Result<(), RdbError> + 's;

/// Encodes values; shared by the file writer and DUMP.
pub(crate) struct Encoder<W: Write> {
    pub(crate) out: Out<W>,
    opts: WriteOptions,
    lzf: Option<lzf::Compressor>,
    lzf_out: Vec<u8>,
    lp: listpack::Builder,
    ints: Vec<i64>,
    blob: Vec<u8>,
    /// Small sorted sets are sorted before encoding: member bytes live here, ...
    arena: Vec<u8>,
    /// ... and (start, end, score) index it.
    entries: Vec<(usize, usize, f64)>,
}

/// What the element scan decided for an aggregate.
enum Plan {
    /// A listpack or intset already built into `blob`.
    Blob(u8),
    /// Element by element with this type.
    Stream(u8),
}

impl<W: Write> Encoder<W> {
    pub(crate) fn new(w: W, opts: WriteOptions) -> Self {
        Encoder {
            out: Out::new(w),
            opts,
            lzf: None,
            lzf_out: Vec::new(),
            lp: listpack::Builder::new(),
            ints: Vec::new(),
            blob: Vec::new(),
            arena: Vec::new(),
            entries: Vec::new(),
        }
    }

    fn err(&self, kind: ErrorKind) -> RdbError {
        RdbError::new(self.out.written(), kind)
    }

    pub(crate) fn len(&mut self, n: u64) -> Result<(), RdbError> {
        if n < 1 << 6 {
            self.out.byte(n as u8)
        } else if n < 1 << 14 {
            self.out.put(&[0x40 | (n >> 8) as u8, n as u8])
        } else if let Ok(n32) = u32::try_from(n) {
            self.out.byte(0x80)?;
            self.out.put(&n32.to_be_bytes())
        } else {
            self.out.byte(0x81)?;
            self.out.put(&n.to_be_bytes())
        }
    }

    /// The `11xxxxxx` integer encodings, for values that fit 32 bits.
    fn int_encoded(&mut self, v: i64) -> Result<bool, RdbError> {
        if let Ok(b) = i8::try_from(v) {
            self.out.put(&[0xC0, b as u8])?;
        } else if let Ok(h) = i16::try_from(v) {
            self.out.byte(0xC1)?;
            self.out.put(&h.to_le_bytes())?;
        } else if let Ok(w) = i32::try_from(v) {
            self.out.byte(0xC2)?;
            self.out.put(&w.to_le_bytes())?;
        } else {
            return Ok(false);
        }
        Ok(true)
    }

    /// A string, as Redis's `rdbSaveRawString` stores it.
    pub(crate) fn string(&mut self, s: &[u8]) -> Result<(), RdbError> {
        // Integer encoding: the longest 32-bit value is 11 characters ("-2147483648").
        if s.len() <= 11 {
            if let Some(v) = parse_canonical_i64(s) {
                if self.int_encoded(v)? {
                    return Ok(());
                }
            }
        }
        // Under 21 bytes LZF cannot win; it must save at least 4 bytes to be worth it.
        if self.opts.compress && s.len() > 20 {
            let lzf = self.lzf.get_or_insert_with(lzf::Compressor::new);
            if lzf.compress(s, &mut self.lzf_out, s.len() - 4) {
                let c = std::mem::take(&mut self.lzf_out);
                let r = self.lzf_blob(&c, s.len());
                self.lzf_out = c;
                return r;
            }
        }
        self.len(s.len() as u64)?;
        self.out.put(s)
    }

    fn lzf_blob(&mut self, c: &[u8], orig_len: usize) -> Result<(), RdbError> {
        self.out.byte(0xC3)?;
        self.len(c.len() as u64)?;
        self.len(orig_len as u64)?;
        self.out.put(c)
    }

    /// An integer as a string (`rdbSaveLongLongAsStringObject`).
    pub(crate) fn int_string(&mut self, v: i64) -> Result<(), RdbError> {
        if !self.int_encoded(v)? {
            let mut b = [0u8; 20];
            let s = fmt_i64(v, &mut b);
            self.len(s.len() as u64)?;
            self.out.put(s)?;
        }
        Ok(())
    }

    fn elem(&mut self, e: Elem<'_>) -> Result<(), RdbError> {
        match e {
            Elem::Bytes(b) => self.string(b),
            Elem::Int(v) => self.int_string(v),
        }
    }

    fn write_blob(&mut self) -> Result<(), RdbError> {
        let b = std::mem::take(&mut self.blob);
        let r = self.string(&b);
        self.blob = b;
        r
    }

    /// Copies the finished listpack into `blob`.
    fn take_listpack(&mut self) -> Result<(), RdbError> {
        let Some(lp) = self.lp.finish() else {
            return Err(self.err(ErrorKind::InvalidInput("listpack larger than 4 GiB")));
        };
        self.blob.clear();
        self.blob.extend_from_slice(lp);
        self.lp.clear();
        Ok(())
    }

    /// Decides the type (and builds small blobs); called before the key is written.
    fn plan(&mut self, v: &ValueRef<'_>) -> Result<Plan, RdbError> {
        let o = &self.opts;
        Ok(match *v {
            ValueRef::Str(_) | ValueRef::Int(_) => Plan::Stream(STRING),
            ValueRef::Stream(_) => Plan::Stream(STREAM_LISTPACKS_2),
            ValueRef::List(l) => {
                if l.is_empty() {
                    return Err(self.err(ErrorKind::EmptyValue));
                }
                Plan::Stream(LIST_QUICKLIST_2)
            }
            ValueRef::Set(s) => {
                let n = s.len();
                if n == 0 {
                    return Err(self.err(ErrorKind::EmptyValue));
                }
                if n <= o.set_max_intset_entries {
                    self.ints.clear();
                    let mut all_ints = true;
                    s.visit(&mut |e| {
                        if all_ints {
                            match e {
                                Elem::Int(v) => self.ints.push(v),
                                Elem::Bytes(b) => match parse_canonical_i64(b) {
                                    Some(v) => self.ints.push(v),
                                    None => all_ints = false,
                                },
                            }
                        }
                    });
                    if all_ints {
                        if self.ints.len() != n {
                            return Err(
                                self.err(ErrorKind::InvalidInput("set yielded a different count than its len()"))
                            );
                        }
                        self.ints.sort_unstable();
                        if self.ints.windows(2).any(|w| w[0] == w[1]) {
                            return Err(self.err(ErrorKind::InvalidInput("duplicate set member")));
                        }
                        intset::encode(&self.ints, &mut self.blob);
                        return Ok(Plan::Blob(SET_INTSET));
                    }
                }
                Plan::Stream(SET)
            }
            ValueRef::Hash(h) => {
                let n = h.len();
                if n == 0 {
                    return Err(self.err(ErrorKind::EmptyValue));
                }
                if n <= o.hash_max_listpack_entries {
                    let max = o.hash_max_listpack_value;
                    let mut small = true;
                    let mut count = 0;
                    self.lp.clear();
                    h.visit(&mut |f, v| {
                        count += 1;
                        if small && f.str_len() <= max && v.str_len() <= max {
                            self.lp.push(f);
                            self.lp.push(v);
                        } else {
                            small = false;
                        }
                    });
                    if small {
                        if count != n {
                            return Err(
                                self.err(ErrorKind::InvalidInput("hash yielded a different count than its len()"))
                            );
                        }
                        self.take_listpack()?;
                        return Ok(Plan::Blob(HASH_LISTPACK));
                    }
                    self.lp.clear();
                }
                Plan::Stream(HASH)
            }
            ValueRef::ZSet(z) => {
                let n = z.len();
                if n == 0 {
                    return Err(self.err(ErrorKind::EmptyValue));
                }
                if n <= o.zset_max_listpack_entries {
                    let max = o.zset_max_listpack_value;
                    let mut small = true;
                    let mut nan = false;
                    self.arena.clear();
                    self.entries.clear();
                    z.visit(&mut |m, s| {
                        nan |= s.is_nan();
                        if small && m.str_len() <= max {
                            let start = self.arena.len();
                            match m {
                                Elem::Bytes(b) => self.arena.extend_from_slice(b),
                                Elem::Int(v) => {
                                    let mut b = [0u8; 20];
                                    self.arena.extend_from_slice(fmt_i64(v, &mut b));
                                }
                            }
                            self.entries.push((start, self.arena.len(), s));
                        } else {
                            small = false;
                        }
                    });
                    if nan {
                        return Err(self.err(ErrorKind::InvalidInput("NaN score")));
                    }
                    if small {
                        if self.entries.len() != n {
                            return Err(
                                self.err(ErrorKind::InvalidInput("zset yielded a different count than its len()"))
                            );
                        }
                        self.zset_listpack()?;
                        return Ok(Plan::Blob(ZSET_LISTPACK));
                    }
                }
                Plan::Stream(ZSET_2)
            }
        })
    }

    /// A listpack zset must be ordered by (score, member bytes): Redis's listpack zset
    /// operations rely on it and loading does not sort.
    fn zset_listpack(&mut self) -> Result<(), RdbError> {
        let arena = &self.arena;
        self.entries.sort_unstable_by(|a, b| {
            a.2.partial_cmp(&b.2)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| arena[a.0..a.1].cmp(&arena[b.0..b.1]))
        });
        self.lp.clear();
        let mut score = Vec::new();
        for &(s, e, sc) in &self.entries {
            self.lp.push(Elem::Bytes(&self.arena[s..e]));
            score_to_string(sc, &mut score);
            self.lp.push(Elem::Bytes(&score));
        }
        self.take_listpack()
    }

    /// Writes the body of a value whose type `plan` chose.
    fn body(&mut self, v: &ValueRef<'_>, plan: Plan) -> Result<(), RdbError> {
        match (plan, *v) {
            (Plan::Blob(_), _) => self.write_blob(),
            (_, ValueRef::Str(s)) => self.string(s),
            (_, ValueRef::Int(i)) => self.int_string(i),
            (_, ValueRef::Stream(s)) => self.stream_body(s),
            (_, ValueRef::List(l)) => self.quicklist(l),
            (_, ValueRef::Set(s)) => {
                let n = s.len();
                self.len(n as u64)?;
                self.stream(n, |enc, f| s.visit(&mut |e| f(enc, &[e])))
            }
            (_, ValueRef::Hash(h)) => {
                let n = h.len();
                self.len(n as u64)?;
                self.stream(n, |enc, f| h.visit(&mut |a, b| f(enc, &[a, b])))
            }
            (_, ValueRef::ZSet(z)) => {
                let n = z.len();
                self.len(n as u64)?;
                let mut res = Ok(());
                let mut count = 0usize;
                z.visit(&mut |m, s| {
                    count += 1;
                    if res.is_ok() {
                        res = if s.is_nan() {
                            Err(self.err(ErrorKind::InvalidInput("NaN score")))
                        } else {
                            self.elem(m).and_then(|()| self.out.put(&s.to_le_bytes()))
                        };
                    }
                });
                res?;
                self.check_count(count, n)
            }
        }
    }

    fn check_count(&self, got: usize, want: usize) -> Result<(), RdbError> {
        if got != want {
            return Err(self.err(ErrorKind::InvalidInput("an element source yielded a different count than its len()")));
        }
        Ok(())
    }

    /// Streams elements (one or two per callback) as strings, checking the count.
    fn stream(
        &mut self,
        n: usize,
        visit: impl FnOnce(&mut Self, &mut dyn FnMut(&mut Self, &[Elem<'_>])),
    ) -> Result<(), RdbError> {
        let mut res = Ok(());
        let mut count = 0usize;
        visit(self, &mut |enc: &mut Self, items: &[Elem<'_>]| {
            count += 1;
            for &e in items {
                if res.is_ok() {
                    res = enc.elem(e);
                }
            }
        });
        res?;
        self.check_count(count, n)
    }

    /// Whether a quicklist node holding `bytes` bytes and `count` entries may take one
    /// more element of `sz` bytes (`_quicklistNodeAllowInsert` with Redis's size classes).
    fn node_allows(&self, bytes: usize, count: usize, sz: usize) -> bool {
        const LEVELS: [usize; 5] = [4096, 8192, 16384, 32768, 65536];
        const SAFETY_LIMIT: usize = 8192;
        const OVERHEAD: usize = 8;
        let fill = self.opts.list_max_listpack_size.clamp(-5, 32767);
        let new_sz = bytes + sz + OVERHEAD;
        if fill < 0 && new_sz <= LEVELS[(-fill - 1) as usize] {
            true
        } else if new_sz > SAFETY_LIMIT {
            false
        } else {
            fill >= 0 && (count as i64) < fill
        }
    }

    /// Walks the list assigning elements to nodes; calls `node_done` whenever a node is
    /// complete (packed: the listpack is in `lp`; plain: the element is passed).
    pub(crate) fn quicklist_pass(
        &mut self,
        l: &dyn Elems,
        build: bool,
        node_done: &mut NodeSink<'_, Self>,
    ) -> Result<usize, RdbError> {
        let threshold = self.opts.list_packed_threshold;
        let mut res = Ok(());
        let mut count = 0usize;
        // Size of the open node as Redis tracks it (listpack bytes, header included);
        // 0 = no open node.
        let mut node_bytes = 0usize;
        let mut node_count = 0usize;
        self.lp.clear();
        l.visit(&mut |e| {
            count += 1;
            if res.is_err() {
                return;
            }
            let sz = e.str_len();
            if sz >= threshold {
                if node_bytes > 0 {
                    res = node_done(self, None, node_bytes);
                    self.lp.clear();
                    node_bytes = 0;
                    node_count = 0;
                }
                if res.is_ok() {
                    res = node_done(self, Some(e), sz);
                }
                return;
            }
            if node_bytes > 0 && !self.node_allows(node_bytes, node_count, sz) {
                res = node_done(self, None, node_bytes);
                self.lp.clear();
                node_bytes = 0;
                node_count = 0;
            }
            if node_bytes == 0 {
                node_bytes = 7; // an empty listpack: header and terminator
            }
            node_bytes += listpack::Builder::entry_size(e);
            node_count += 1;
            if build {
                self.lp.push(e);
            }
        });
        res?;
        if node_bytes > 0 {
            node_done(self, None, node_bytes)?;
            self.lp.clear();
        }
        Ok(count)
    }

    /// A list as LIST_QUICKLIST_2: node count, then per node its container (2 = packed
    /// listpack, 1 = plain element) and its bytes as a string.
    fn quicklist(&mut self, l: &dyn Elems) -> Result<(), RdbError> {
        let mut nodes = 0u64;
        let n = self.quicklist_pass(l, false, &mut |_, _, _| {
            nodes += 1;
            Ok(())
        })?;
        self.check_count(n, l.len())?;
        self.len(nodes)?;
        let mut written = 0u64;
        self.quicklist_pass(l, true, &mut |enc, plain, _| {
            written += 1;
            match plain {
                Some(e) => {
                    enc.len(QUICKLIST_NODE_PLAIN)?;
                    // A plain node's bytes are the element itself, stored like any string.
                    enc.elem(e)
                }
                None => {
                    enc.len(QUICKLIST_NODE_PACKED)?;
                    enc.take_listpack()?;
                    enc.write_blob()
                }
            }
        })?;
        if written != nodes {
            return Err(self.err(ErrorKind::InvalidInput("list changed between passes")));
        }
        Ok(())
    }

    /// Writes type byte, key and value (the key between them, as in the file format).
    pub(crate) fn typed_value(&mut self, key: Option<&[u8]>, v: &ValueRef<'_>) -> Result<(), RdbError> {
        let plan = self.plan(v)?;
        let ty = match plan {
            Plan::Blob(t) | Plan::Stream(t) => t,
        };
        self.out.byte(ty)?;
        if let Some(k) = key {
            self.string(k)?;
        }
        self.body(v, plan)
    }
}

/// Writes an RDB file.
///
/// ```
/// use ferrokv_persist::rdb::{RdbWriter, ValueRef};
/// let mut w = RdbWriter::new(Vec::new(), true)?;
/// w.aux(b"redis-ver", b"7.0.15")?;
/// w.select_db(0)?;
/// w.resize_db(2, 1)?;
/// w.key(b"greeting", None, ValueRef::Str(b"hello"))?;
/// let list = vec![b"a".to_vec(), b"b".to_vec()];
/// w.key(b"letters", Some(4_102_444_800_000), ValueRef::List(&list))?;
/// let bytes = w.finish(true)?;
/// # Ok::<(), ferrokv_persist::rdb::RdbError>(())
/// ```
pub struct RdbWriter<W: Write> {
    enc: Encoder<W>,
}

impl<W: Write> RdbWriter<W> {
    /// Starts a version-10 file with Redis 7.0's default encoding thresholds.
    pub fn new(w: W, compress: bool) -> Result<Self, RdbError> {
        Self::with_options(w, WriteOptions { compress, ..WriteOptions::default() })
    }

    pub fn with_options(w: W, opts: WriteOptions) -> Result<Self, RdbError> {
        let mut enc = Encoder::new(w, opts);
        enc.out.put(format!("REDIS{RDB_VERSION:04}").as_bytes())?;
        Ok(RdbWriter { enc })
    }

    /// An auxiliary field (`redis-ver`, `redis-bits`, `ctime`, `used-mem`, `aof-base`, …).
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> Result<(), RdbError> {
        self.enc.out.byte(OPCODE_AUX)?;
        self.enc.string(key)?;
        self.enc.string(value)
    }

    /// A functions library (Redis 7.0's `RDB_OPCODE_FUNCTION2`: the library's code, whose
    /// shebang names it). Redis writes these after the aux fields, before any database.
    pub fn function(&mut self, code: &[u8]) -> Result<(), RdbError> {
        self.enc.out.byte(OPCODE_FUNCTION2)?;
        self.enc.string(code)
    }

    pub fn select_db(&mut self, db: u64) -> Result<(), RdbError> {
        self.enc.out.byte(OPCODE_SELECTDB)?;
        self.enc.len(db)
    }

    /// The sizing hint for the selected database: key count and keys with an expiry.
    pub fn resize_db(&mut self, keys: u64, expires: u64) -> Result<(), RdbError> {
        self.enc.out.byte(OPCODE_RESIZEDB)?;
        self.enc.len(keys)?;
        self.enc.len(expires)
    }

    /// A key with its absolute expiry (Unix ms) and value. Empty aggregates are refused
    /// (Redis would drop them on load). After any error the output holds a partial record
    /// and must be discarded.
    pub fn key(&mut self, key: &[u8], expire_ms: Option<i64>, value: ValueRef<'_>) -> Result<(), RdbError> {
        let r = (|| {
            if let Some(t) = expire_ms {
                self.enc.out.byte(OPCODE_EXPIRETIME_MS)?;
                self.enc.out.put(&t.to_le_bytes())?;
            }
            self.enc.typed_value(Some(key), &value)
        })();
        r.map_err(|e| e.in_key(key))
    }

    /// Writes the EOF opcode and the checksum (or 0, which readers take as "not
    /// computed"), flushes, and returns the inner writer.
    pub fn finish(mut self, checksum: bool) -> Result<W, RdbError> {
        self.enc.out.byte(OPCODE_EOF)?;
        let crc = if checksum { self.enc.out.crc()? } else { 0 };
        self.enc.out.put(&crc.to_le_bytes())?;
        self.enc.out.into_inner()
    }

    /// The inner writer (for progress queries on it).
    pub fn get_ref(&self) -> &W {
        self.enc.out.get_ref()
    }

    /// Abandons the file: returns the inner writer without writing the trailer or what is
    /// still buffered.
    pub fn into_inner_abandoned(self) -> W {
        self.enc.out.into_inner_unflushed()
    }

    /// Bytes produced so far (buffered ones included).
    pub fn bytes_written(&self) -> u64 {
        self.enc.out.written()
    }
}
