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

use crate::args::{Args, KeyArg, KEY_READ, KEY_WRITE};
use crate::pattern::KeyPatterns;
use crate::selector::Selector;
use crate::table::{ChannelArgs, CmdId, Table};
use std::sync::{Arc, LazyLock};

/// The root selector's verdict on a command, before looking at its arguments.
const FULL_CHECK: u8 = 0;
const ALLOWED: u8 = 1;
/// Allowed if its one fixed-position key is (kept here: no table lookup per line).
const ONE_KEY: u8 = 2;
/// Allowed if every fixed-position key is (and the line reaches them all; `pos` indexes
/// [`FastCheck::fixed`]).
const FIXED_KEYS: u8 = 3;

#[derive(Clone, Copy, Debug)]
struct Verdict {
    kind: u8,
    /// For [`ONE_KEY`]: the key's access as [`FastCheck::key_allowed`] takes it (with
    /// [`PROBE`]), and its position.
    probe: u8,
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
#[inline(always)]
fn head_word(key: &[u8]) -> u64 {
    match key.first_chunk::<8>() {
        Some(head) => u64::from_le_bytes(*head),
        None => short_head_word(key),
    }
}

/// [`head_word`] of a key shorter than a word: a byte loop, not `copy_from_slice` (a call
/// to memcpy, and a call makes the fast path save registers); laid out of the common path.
#[cold]
#[inline(always)]
fn short_head_word(key: &[u8]) -> u64 {
    key.iter().rev().fold(0, |word, &b| word << 8 | u64::from(b))
}

impl Literal {
    fn new(text: &[u8], prefix: bool, flags: u8) -> Literal {
        let n = text.len().min(8);
        let mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
        let extra = if prefix { usize::MAX - text.len() } else { 0 };
        Literal { word: head_word(&text[..n]), mask, len: text.len(), tail: text[n..].into(), extra, flags }
    }

    /// The match on the first 8 bytes and the length; a literal with a [`Literal::tail`]
    /// also needs [`Literal::tail_matches`].
    #[inline(always)]
    fn head_matches(&self, key: &[u8], head: u64) -> bool {
        key.len().wrapping_sub(self.len) <= self.extra && (head ^ self.word) & self.mask == 0
    }

    fn tail_matches(&self, key: &[u8]) -> bool {
        self.tail.is_empty() || key.get(8..self.len).is_some_and(|k| *k == *self.tail)
    }
}

/// The literals starting with one byte, when there is not exactly one without a tail:
/// out of line (a tail compare is a call to bcmp) and called in tail position, so the
/// fast path itself makes no call and saves no registers.
#[inline(never)]
fn search_literals(candidates: &[Literal], key: &[u8], access: u8) -> bool {
    let head = head_word(key);
    candidates.iter().any(|l| l.flags & access == access && l.head_matches(key, head) && l.tail_matches(key))
}

/// How keys starting with one byte are checked.
const SINGLE: u8 = 0;
/// Against `literals[from..to]` (none, several, or one with a tail).
const SEARCH: u8 = 1;
/// By the root selector's own matcher: some pattern is a glob (or empty).
const GENERAL: u8 = 2;

/// A bit every access the fast path asks about carries (see [`FirstByte::deny`]), so one
/// test tells both "a single literal" and "its flags allow this access".
const PROBE: u8 = 0x80;

/// The fast path's entry for keys starting with one byte: the common case, a single
/// literal of at most 8 bytes (or prefix), is stored in place and checked with a few
/// compares, without a loop or a second table.
#[derive(Clone, Copy, Debug)]
struct FirstByte {
    /// For [`SINGLE`]: the access bits its literal lacks; otherwise [`PROBE`] too, which
    /// every probe (an access with [`PROBE`] set) hits.
    deny: u8,
    kind: u8,
    from: u16,
    to: u16,
    /// For [`SINGLE`]: the literal's fields (see [`Literal`]).
    word: u64,
    mask: u64,
    len: usize,
    extra: usize,
}

// C layout for `by_first` first: at the start of the structure, an entry's address is
// one `lea` (at an offset, the compiler spent another instruction on it).
#[derive(Clone, Debug)]
#[repr(C)]
pub(crate) struct FastCheck {
    /// By a key's first byte; in place (the check reaches it from the pointer it has, not
    /// through a second one).
    by_first: [FirstByte; 256],
    /// By command id.
    verdicts: Box<[Verdict]>,
    /// For [`FIXED_KEYS`] verdicts: the line length that reaches every key, and the keys.
    fixed: Box<[(usize, Box<[KeyArg]>)]>,
    literals: Box<[Literal]>,
    /// A copy of the root's patterns, for [`GENERAL`] entries (so the check needs nothing
    /// but the [`FastCheck`]).
    general: KeyPatterns,
}

/// A user's compiled fast path, shared by the clients logged in as the user: everything
/// the check reads is here, so a call passes two pointers and the command id.
#[derive(Clone, Debug)]
pub struct FastPath(Arc<FastCheck>);

impl FastPath {
    /// The fast path that allows nothing (every line goes to the full check).
    pub fn none() -> FastPath {
        static NONE: LazyLock<FastPath> = LazyLock::new(|| {
            FastPath(Arc::new(FastCheck {
                verdicts: Box::new([]),
                fixed: Box::new([]),
                by_first: [GENERAL_ENTRY; 256],
                literals: Box::new([]),
                general: KeyPatterns::default(),
            }))
        });
        NONE.clone()
    }

    pub(crate) fn new(check: FastCheck) -> FastPath {
        FastPath(Arc::new(check))
    }

    /// True if the user's root selector allows this command line outright (see
    /// [`crate::Acl::allows_fast`]); false means "ask the full check".
    #[inline(always)]
    pub fn allows<A: Args + ?Sized>(&self, id: CmdId, argv: &A) -> bool {
        self.0.allows(id, argv)
    }
}

impl FastCheck {
    /// The fast path of `root`'s permissions over the table `t`.
    pub fn new(t: &Table, root: &Selector) -> FastCheck {
        let mut fixed = Vec::new();
        let verdicts = (0..t.len())
            .map(|id| {
                let cmd = &t.cmds[id];
                let allowed = root.all_commands || cmd.no_auth || root.allowed[id];
                let channels_free = root.all_channels || cmd.channels == ChannelArgs::None;
                let kind = |kind| Verdict { kind, probe: 0, pos: 0 };
                let mut fixed_keys = |keys: &[KeyArg]| match u16::try_from(fixed.len()) {
                    Ok(pos) => {
                        fixed.push((cmd.fixed_min_argc, Box::from(keys)));
                        Verdict { kind: FIXED_KEYS, probe: 0, pos }
                    }
                    Err(_) => kind(FULL_CHECK),
                };
                match (allowed && channels_free, root.all_keys, cmd.fixed_keys.as_deref()) {
                    (false, _, _) => kind(FULL_CHECK),
                    (true, true, _) | (true, false, Some([])) => kind(ALLOWED),
                    (true, false, Some([k])) => match u16::try_from(k.pos) {
                        Ok(pos) => Verdict { kind: ONE_KEY, probe: k.access | PROBE, pos },
                        Err(_) => fixed_keys(&[*k]),
                    },
                    (true, false, Some(keys)) => fixed_keys(keys),
                    // Keys found from the line: the full check finds them.
                    (true, false, None) => kind(FULL_CHECK),
                }
            })
            .collect();
        let (by_first, literals) = Self::compile_keys(root);
        FastCheck { verdicts, fixed: fixed.into_boxed_slice(), by_first, literals, general: root.keys.clone() }
    }

    fn compile_keys(root: &Selector) -> ([FirstByte; 256], Box<[Literal]>) {
        let general = || ([GENERAL_ENTRY; 256], Box::default());
        let mut literals = Vec::new();
        for k in root.keys.iter() {
            match k.literal() {
                Some((text, prefix)) if !text.is_empty() => literals.push(Literal::new(text, prefix, k.flags)),
                _ => return general(),
            }
        }
        if literals.len() >= usize::from(u16::MAX) {
            return general();
        }
        // Stable: the order among patterns of one first byte is kept (it does not change
        // the verdict, but keeps the compiled form predictable).
        literals.sort_by_key(|l| l.word as u8);
        let start = |b: usize| literals.partition_point(|l| usize::from(l.word as u8) < b) as u16;
        let by_first = std::array::from_fn(|b| {
            let (from, to) = (start(b), start(b + 1));
            match &literals[usize::from(from)..usize::from(to)] {
                [l] if l.tail.is_empty() => FirstByte {
                    deny: !l.flags & (KEY_READ | KEY_WRITE),
                    kind: SINGLE,
                    from,
                    to,
                    word: l.word,
                    mask: l.mask,
                    len: l.len,
                    extra: l.extra,
                },
                _ => FirstByte { kind: SEARCH, from, to, ..GENERAL_ENTRY },
            }
        });
        (by_first, literals.into_boxed_slice())
    }

    /// True if the root selector allows this command line without a doubt; false means
    /// "ask the full check" (not "denied").
    ///
    /// Out of line and a leaf on its common path (every other path a call in tail
    /// position): inlined into the engine's command dispatch, or calling anything, it cost
    /// as many instructions in saved and reloaded registers as in compares (callgrind).
    #[inline(never)]
    pub fn allows<A: Args + ?Sized>(&self, id: CmdId, argv: &A) -> bool {
        let Some(&v) = self.verdicts.get(id) else { return false };
        // Most commands in real traffic have one key: that verdict is tested first, the
        // others out of line (left to itself, the compiler tested the rarer kinds first).
        if v.kind == ONE_KEY {
            let Some(key) = argv.get_arg(usize::from(v.pos)) else { return false };
            return self.key_allowed(key, v.probe);
        }
        self.allows_other(v, argv)
    }

    #[inline(never)]
    fn allows_other<A: Args + ?Sized>(&self, v: Verdict, argv: &A) -> bool {
        match v.kind {
            ALLOWED => true,
            FIXED_KEYS => self.fixed_keys_allowed(usize::from(v.pos), argv),
            _ => false,
        }
    }

    fn fixed_keys_allowed<A: Args + ?Sized>(&self, index: usize, argv: &A) -> bool {
        let Some((min_argc, keys)) = self.fixed.get(index) else { return false };
        argv.count() >= *min_argc && keys.iter().all(|k| self.key_allowed(argv.arg(k.pos), k.access | PROBE))
    }

    /// `probe`: the access asked for, with [`PROBE`].
    #[inline(always)]
    fn key_allowed(&self, key: &[u8], probe: u8) -> bool {
        debug_assert!(probe & !(KEY_READ | KEY_WRITE) == PROBE);
        let head = head_word(key);
        // The first byte from the word: an empty key reads as byte 0 there, and every
        // literal (at least one byte) refuses it by length; a glob entry asks the matcher.
        let e = &self.by_first[usize::from(head as u8)];
        if e.deny & probe == 0 {
            return key.len().wrapping_sub(e.len) <= e.extra && (head ^ e.word) & e.mask == 0;
        }
        self.key_allowed_otherwise(key, probe)
    }

    /// Keys whose first byte has no single literal (or one whose flags refuse the access).
    /// Given the key and the probe only: passing more cost the common path instructions.
    #[inline(never)]
    fn key_allowed_otherwise(&self, key: &[u8], probe: u8) -> bool {
        let access = probe & !PROBE;
        let e = &self.by_first[usize::from(key.first().copied().unwrap_or(0))];
        match e.kind {
            SINGLE => false,
            SEARCH => match self.literals.get(usize::from(e.from)..usize::from(e.to)) {
                Some(candidates) => search_literals(candidates, key, access),
                None => false,
            },
            _ => general_key_allowed(&self.general, key, access),
        }
    }
}

const GENERAL_ENTRY: FirstByte =
    FirstByte { deny: PROBE | KEY_READ | KEY_WRITE, kind: GENERAL, from: 0, to: 0, word: 0, mask: 0, len: 0, extra: 0 };

/// Keys checked by the selector's own matcher (a glob among the patterns): out of line,
/// so the literal case inlined at the call site stays small.
#[cold]
#[inline(never)]
fn general_key_allowed(patterns: &KeyPatterns, key: &[u8], access: u8) -> bool {
    patterns.allow(key, access)
}
