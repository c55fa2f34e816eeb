//! A command line as the checks read it: the sentinel keeps `Vec<Vec<u8>>`, the server
//! parsed `Argv`s that slice its read buffer.

pub trait Args {
    fn count(&self) -> usize;
    fn arg(&self, i: usize) -> &[u8];
    /// Argument `i` if the line has it: one bounds check where `i < count()` and `arg(i)`
    /// would make two.
    #[inline]
    fn get_arg(&self, i: usize) -> Option<&[u8]> {
        (i < self.count()).then(|| self.arg(i))
    }
}

impl Args for [Vec<u8>] {
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }
    #[inline]
    fn arg(&self, i: usize) -> &[u8] {
        &self[i]
    }
}

// Inline: the fast path reads one argument per command line, and a call costs more
// than the read.
impl Args for ferrokv_resp::Argv {
    #[inline]
    fn count(&self) -> usize {
        self.len()
    }
    #[inline]
    fn arg(&self, i: usize) -> &[u8] {
        self.get(i)
    }
    #[inline(always)]
    fn get_arg(&self, i: usize) -> Option<&[u8]> {
        self.try_get(i)
    }
}

/// A key argument of a command line and what the command does with it
/// ([`KEY_READ`], [`KEY_WRITE`]; 0 when the command's key rule does not say, which any
/// pattern allows, as in Redis).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyArg {
    pub pos: usize,
    pub access: u8,
}

/// A command line's key arguments: nearly always one to three, kept inline (the check
/// runs for every command of a restricted user).
pub type KeyArgs = smallvec::SmallVec<[KeyArg; 4]>;

pub const KEY_READ: u8 = 1;
pub const KEY_WRITE: u8 = 2;
