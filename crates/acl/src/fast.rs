//! The check most command lines of a restricted user take, compiled once per user handle
//! so it costs a few loads and compares at the caller's call site: the root selector's
//! verdict per command (allowed outright, or allowed if its fixed-position keys are), and
//! the root's key patterns, when each is a literal or a literal prefix, as one-word
//! compares indexed by first byte.
//!
//! It only ever answers "allowed", and only where the root selector alone allows the line
//! (which is also the full check's answer: the root is tried first and selectors can only
//! allow more). Anything else — a denial, a glob pattern, a command whose keys must be
//! found, a channel to check — goes to the full check, which decides, logs and explains.

use crate::args::{Args, KEY_READ, KEY_WRITE};
use crate::selector::Selector;
use crate::table::{ChannelArgs, CmdId, Table};

/// The root selector's verdict on a command, before looking at its arguments.
const FULL_CHECK: u8 = 0;
const ALLOWED: u8 = 1;
/// Allowed if its one fixed-position key is (kept here: no table lookup per line).
const ONE_KEY: u8 = 2;
/// Allowed if every fixed-position key is (and the line reaches them all).
const FIXED_KEYS: u8 = 3;

#[derive(Clone, Copy, Debug)]
struct Verdict {
    kind: u8,
    /// For [`ONE_KEY`]: the key's access and position.
    access: u8,
    pos: u16,
}

/// A literal or literal-prefix pattern of at least one byte.
#[derive(Clone, Debug)]
struct Literal {
    /// Its first (up to) 8 bytes as a little-endian word, and the mask of those bytes.
    word: u64,
    mask: u64,
    len: usize,
    /// The bytes past the first 8 (compared only for longer literals).
    tail: Box<[u8]>,
    /// How many bytes a key may have past `len`: none for an exact literal, any number
    /// for a prefix (a key shorter than `len` wraps to more than any `extra`).
    extra: usize,
    flags: u8,
}

/// A key's first 8 bytes as a little-endian word, zero-padded when shorter.
#[inline]
fn head_word(key: &[u8]) -> u64 {
    match key.first_chunk::<8>() {
        Some(head) => u64::from_le_bytes(*head),
        None => {
            let mut head = [0u8; 8];
            head[..key.len()].copy_from_slice(key);
            u64::from_le_bytes(head)
        }
    }
}

impl Literal {
    fn new(text: &[u8], prefix: bool, flags: u8) -> Literal {
        let n = text.len().min(8);
        let mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
        let extra = if prefix { usize::MAX - text.len() } else { 0 };
        Literal { word: head_word(&text[..n]), mask, len: text.len(), tail: text[n..].into(), extra, flags }
    }

    #[inline(always)]
    fn matches(&self, key: &[u8], head: u64) -> bool {
        key.len().wrapping_sub(self.len) <= self.extra
            && (head ^ self.word) & self.mask == 0
            && (self.tail.is_empty() || key[8..self.len] == *self.tail)
    }
}

/// How the root selector's key patterns are checked on the fast path.
#[derive(Clone, Debug)]
enum Keys {
    /// Every pattern a non-empty literal or literal prefix: indexed by first byte.
    Literals {
        /// `literals[offsets[b]..offsets[b + 1]]` start with byte `b` (257 entries).
        offsets: Box<[u16]>,
        literals: Box<[Literal]>,
    },
    /// Some pattern is a glob (or empty): the selector's own matcher.
    General,
}

#[derive(Clone, Debug)]
pub(crate) struct FastCheck {
    /// By command id.
    verdicts: Box<[Verdict]>,
    keys: Keys,
}

impl FastCheck {
    /// The fast path of `root`'s permissions over the table `t`.
    pub fn new(t: &Table, root: &Selector) -> FastCheck {
        let verdicts = (0..t.len())
            .map(|id| {
                let cmd = &t.cmds[id];
                let allowed = root.all_commands || cmd.no_auth || root.allowed[id];
                let channels_free = root.all_channels || cmd.channels == ChannelArgs::None;
                let kind = |kind| Verdict { kind, access: 0, pos: 0 };
                match (allowed && channels_free, root.all_keys, cmd.fixed_keys.as_deref()) {
                    (false, _, _) => kind(FULL_CHECK),
                    (true, true, _) | (true, false, Some([])) => kind(ALLOWED),
                    (true, false, Some([k])) => match u16::try_from(k.pos) {
                        Ok(pos) => Verdict { kind: ONE_KEY, access: k.access, pos },
                        Err(_) => kind(FIXED_KEYS),
                    },
                    (true, false, Some(_)) => kind(FIXED_KEYS),
                    // Keys found from the line: the full check finds them.
                    (true, false, None) => kind(FULL_CHECK),
                }
            })
            .collect();
        FastCheck { verdicts, keys: Self::compile_keys(root) }
    }

    fn compile_keys(root: &Selector) -> Keys {
        let mut literals = Vec::new();
        for k in root.keys.iter() {
            match k.literal() {
                Some((text, prefix)) if !text.is_empty() => literals.push(Literal::new(text, prefix, k.flags)),
                _ => return Keys::General,
            }
        }
        if literals.len() >= usize::from(u16::MAX) {
            return Keys::General;
        }
        // Stable: the order among patterns of one first byte is kept (it does not change
        // the verdict, but keeps the compiled form predictable).
        literals.sort_by_key(|l| l.word as u8);
        let start = |b: usize| literals.partition_point(|l| usize::from(l.word as u8) < b);
        let offsets = (0..=256).map(|b| start(b) as u16).collect();
        Keys::Literals { offsets, literals: literals.into_boxed_slice() }
    }

    /// True if the root selector allows this command line without a doubt; false means
    /// "ask the full check" (not "denied").
    #[inline]
    pub fn allows<A: Args + ?Sized>(&self, t: &Table, root: &Selector, id: CmdId, argv: &A) -> bool {
        let Some(v) = self.verdicts.get(id) else { return false };
        match v.kind {
            ALLOWED => true,
            ONE_KEY => {
                let pos = usize::from(v.pos);
                pos < argv.count() && self.key_allowed(root, argv.arg(pos), v.access)
            }
            FIXED_KEYS => {
                let cmd = &t.cmds[id];
                let Some(keys) = cmd.fixed_keys.as_deref() else { return false };
                argv.count() >= cmd.fixed_min_argc
                    && keys.iter().all(|k| self.key_allowed(root, argv.arg(k.pos), k.access))
            }
            _ => false,
        }
    }

    // Always inlined: an out-of-line call with its saved registers cost about as much
    // as the match itself (callgrind).
    #[inline(always)]
    fn key_allowed(&self, root: &Selector, key: &[u8], access: u8) -> bool {
        debug_assert!(access & !(KEY_READ | KEY_WRITE) == 0);
        match &self.keys {
            Keys::Literals { offsets, literals } => {
                let Some(&first) = key.first() else { return false };
                let b = usize::from(first);
                let (from, to) = (usize::from(offsets[b]), usize::from(offsets[b + 1]));
                let head = head_word(key);
                literals[from..to].iter().any(|l| l.flags & access == access && l.matches(key, head))
            }
            Keys::General => general_key_allowed(root, key, access),
        }
    }
}

/// Keys checked by the selector's own matcher (a glob among the patterns): out of line,
/// so the literal case inlined at the call site stays small.
#[cold]
#[inline(never)]
fn general_key_allowed(root: &Selector, key: &[u8], access: u8) -> bool {
    root.keys.allow(key, access)
}
