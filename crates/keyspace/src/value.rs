//! Values stored under keys, with the encodings Redis reports through `OBJECT ENCODING`.
//!
//! `Obj` is what the database maps a key to: the value plus the per-key metadata Redis
//! keeps in its object header (LRU clock or LFU counter, encoding flags) and the snapshot
//! version used by fork-less snapshots to tell whether a key was already serialized.

use crate::smallbytes::SmallBytes;
use crate::types::{hash::Hash, list::List, set::Set, stream::Stream, zset::ZSet};
use std::borrow::Cow;

/// Strings up to this length are `embstr` in Redis (object header and bytes in one
/// allocation); longer ones are `raw`.
pub const EMBSTR_MAX: usize = 44;

/// The data type of a value, as TYPE names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    String,
    List,
    Set,
    ZSet,
    Hash,
    Stream,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
            ValueType::Hash => "hash",
            ValueType::Stream => "stream",
        }
    }

    /// Parses a TYPE name (`SCAN … TYPE string`), case-insensitively.
    pub fn from_name(name: &[u8]) -> Option<ValueType> {
        Some(match name.to_ascii_lowercase().as_slice() {
            b"string" => ValueType::String,
            b"list" => ValueType::List,
            b"set" => ValueType::Set,
            b"zset" => ValueType::ZSet,
            b"hash" => ValueType::Hash,
            b"stream" => ValueType::Stream,
            _ => return None,
        })
    }
}

/// A value. 24 bytes: short strings are inline, integers are unboxed (Redis's `int`
/// encoding), aggregates are boxed.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Str(SmallBytes),
    Int(i64),
    List(Box<List>),
    Hash(Box<Hash>),
    Set(Box<Set>),
    ZSet(Box<ZSet>),
    Stream(Box<Stream>),
}

impl Value {
    /// A string value in the encoding Redis would pick for it on SET: an integer if the
    /// bytes are the canonical decimal form of an i64 of up to 20 characters.
    pub fn string(bytes: &[u8]) -> Value {
        if bytes.len() <= 20 {
            if let Some(n) = parse_canonical_i64(bytes) {
                return Value::Int(n);
            }
        }
        Value::Str(SmallBytes::from(bytes))
    }

    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) | Value::Int(_) => ValueType::String,
            Value::List(_) => ValueType::List,
            Value::Hash(_) => ValueType::Hash,
            Value::Set(_) => ValueType::Set,
            Value::ZSet(_) => ValueType::ZSet,
            Value::Stream(_) => ValueType::Stream,
        }
    }

    /// The bytes of a string value (integers rendered in decimal).
    pub fn as_string(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            Value::Str(s) => Some(Cow::Borrowed(s.as_slice())),
            Value::Int(n) => Some(Cow::Owned(itoa::Buffer::new().format(*n).as_bytes().to_vec())),
            _ => None,
        }
    }

    /// Length of a string value without materialising it.
    pub fn string_len(&self) -> Option<usize> {
        match self {
            Value::Str(s) => Some(s.len()),
            Value::Int(n) => Some(itoa::Buffer::new().format(*n).len()),
            _ => None,
        }
    }

    /// Number of elements of an aggregate (1 for strings).
    pub fn elements(&self) -> usize {
        match self {
            Value::Str(_) | Value::Int(_) => 1,
            Value::List(l) => l.len(),
            Value::Hash(h) => h.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
            Value::Stream(s) => s.len() as usize,
        }
    }

    /// Bytes held outside the node (for MEMORY USAGE and accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_size(),
            Value::Int(_) => 0,
            Value::List(l) => std::mem::size_of::<List>() + l.heap_size(),
            Value::Hash(h) => std::mem::size_of::<Hash>() + h.heap_size(),
            Value::Set(s) => std::mem::size_of::<Set>() + s.heap_size(),
            Value::ZSet(z) => std::mem::size_of::<ZSet>() + z.heap_size(),
            Value::Stream(s) => std::mem::size_of::<Stream>() + s.heap_size(),
        }
    }
}

pub use ferrokv_resp::parse_i64 as parse_canonical_i64;

/// Per-key metadata flags.
const FLAG_RAW: u32 = 1 << 24;
const LRU_MASK: u32 = (1 << 24) - 1;

/// LRU clock resolution in milliseconds, as Redis's `LRU_CLOCK_RESOLUTION`.
pub const LRU_CLOCK_RESOLUTION: i64 = 1000;

/// Whether objects carry LFU data (a `*-lfu` maxmemory policy) rather than an LRU clock.
/// Process-wide like the policy itself; new objects read it to initialise their metadata.
pub static LFU_MODE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Initial LFU counter of a new key, so it is not evicted before it had a chance.
pub const LFU_INIT_VAL: u32 = 5;

/// Minutes, modulo 2^16: the LFU "last decrement time" unit.
fn lfu_minutes(now_ms: i64) -> u32 {
    ((now_ms / 60_000) as u32) & 0xffff
}

/// The 24-bit LRU clock for a wall-clock time in milliseconds.
pub fn lru_clock(now_ms: i64) -> u32 {
    ((now_ms / LRU_CLOCK_RESOLUTION) as u32) & LRU_MASK
}

/// What a key maps to.
#[derive(Clone, Debug)]
pub struct Obj {
    pub value: Value,
    /// Bits 0..24: LRU clock (or LFU time+counter); bit 24: string is `raw`-encoded
    /// (modified in place by APPEND/SETRANGE/SETBIT, as Redis reports).
    meta: u32,
    /// Snapshot epoch in which this key was last serialized or created.
    pub version: u32,
}

const _: () = assert!(std::mem::size_of::<Value>() == 24);
const _: () = assert!(std::mem::size_of::<Obj>() == 32);

impl Obj {
    pub fn new(value: Value, now_ms: i64) -> Obj {
        let meta = if LFU_MODE.load(std::sync::atomic::Ordering::Relaxed) {
            (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL
        } else {
            lru_clock(now_ms)
        };
        Obj { value, meta, version: crate::snapshot::current_epoch() }
    }

    /// What [`crate::Db::remove`] hands back when a snapshot kept the real object.
    pub(crate) fn stand_in() -> Obj {
        Obj { value: Value::Int(0), meta: 0, version: 0 }
    }

    /// The LFU counter after decaying it by the minutes elapsed since it was last updated
    /// (one step per `decay_minutes`), as OBJECT FREQ reports it.
    pub fn lfu_count(&self, now_ms: i64, decay_minutes: i64) -> u32 {
        let meta = self.lru();
        let last = meta >> 8;
        let counter = meta & 0xff;
        if decay_minutes <= 0 {
            return counter;
        }
        let now = lfu_minutes(now_ms);
        let elapsed = if now >= last { now - last } else { 0xffff - last + now };
        let periods = elapsed / decay_minutes as u32;
        counter.saturating_sub(periods)
    }

    /// Records an access in LFU mode: decay, then a logarithmic increment (the more hits
    /// a key has, the less likely another one counts), `r` being uniform in [0, 1).
    pub fn touch_lfu(&mut self, now_ms: i64, log_factor: i64, decay_minutes: i64, r: f64) {
        let mut counter = self.lfu_count(now_ms, decay_minutes);
        if counter < 255 {
            let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
            if r < 1.0 / (base * log_factor as f64 + 1.0) {
                counter += 1;
            }
        }
        self.set_lru((lfu_minutes(now_ms) << 8) | counter);
    }

    pub fn lru(&self) -> u32 {
        self.meta & LRU_MASK
    }

    /// Sets the LFU counter as of now (RESTORE … FREQ, RDB freq records).
    pub fn set_lfu_counter(&mut self, counter: u32, now_ms: i64) {
        self.set_lru((lfu_minutes(now_ms) << 8) | (counter & 0xff));
    }

    pub fn set_lru(&mut self, clock: u32) {
        self.meta = (self.meta & !LRU_MASK) | (clock & LRU_MASK);
    }

    pub fn touch(&mut self, now_ms: i64) {
        self.set_lru(lru_clock(now_ms));
    }

    /// Milliseconds since the key was last touched (Redis's `estimateObjectIdleTime`).
    pub fn idle_ms(&self, now_ms: i64) -> i64 {
        let now = lru_clock(now_ms) as i64;
        let then = self.lru() as i64;
        let ticks = if now >= then { now - then } else { now + (LRU_MASK as i64 + 1 - then) };
        ticks * LRU_CLOCK_RESOLUTION
    }

    pub fn mark_raw(&mut self) {
        self.meta |= FLAG_RAW;
    }

    /// `OBJECT ENCODING`'s answer.
    pub fn encoding(&self) -> &'static str {
        match &self.value {
            Value::Int(_) => "int",
            Value::Str(s) => {
                if self.meta & FLAG_RAW != 0 || s.len() > EMBSTR_MAX {
                    "raw"
                } else {
                    "embstr"
                }
            }
            Value::List(_) => "quicklist",
            Value::Hash(h) => h.encoding(),
            Value::Set(s) => s.encoding(),
            Value::ZSet(z) => z.encoding(),
            Value::Stream(_) => "stream",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_follow_redis() {
        assert_eq!(Obj::new(Value::string(b"123"), 0).encoding(), "int");
        assert_eq!(Obj::new(Value::string(b"0123"), 0).encoding(), "embstr");
        assert_eq!(Obj::new(Value::string(b"-9223372036854775808"), 0).encoding(), "int");
        assert_eq!(Obj::new(Value::string(b"9223372036854775808"), 0).encoding(), "embstr");
        assert_eq!(Obj::new(Value::string(&[b'x'; 44]), 0).encoding(), "embstr");
        assert_eq!(Obj::new(Value::string(&[b'x'; 45]), 0).encoding(), "raw");
        let mut o = Obj::new(Value::string(b"ab"), 0);
        o.mark_raw();
        assert_eq!(o.encoding(), "raw");
    }

    #[test]
    fn idle_time_wraps() {
        let mut o = Obj::new(Value::Int(1), 0);
        o.set_lru(LRU_MASK);
        assert_eq!(o.idle_ms(5000), 6000);
        o.touch(10_000);
        assert_eq!(o.idle_ms(12_500), 2000);
    }
}
