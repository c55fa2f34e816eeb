//! Errors of the reader, the writer and DUMP/RESTORE.
//!
//! Every error says *where*: the byte offset into the file (or payload) at which the
//! problem was found, and the key being read when it happened, so a `check-rdb` tool can
//! print "at offset 1234 (key 'foo'): bad checksum" and a loader can log something useful.

use std::fmt;

/// What went wrong. `#[non_exhaustive]` so new RDB versions can add cases.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The underlying reader or writer failed (other than by ending early).
    Io(std::io::Error),
    /// The data ended before the structure being read was complete.
    Truncated,
    /// The file does not start with `REDIS` and four digits.
    NotRdb,
    /// An RDB version this library cannot read.
    UnsupportedVersion(u32),
    /// The CRC-64 stored after the EOF opcode does not match the file's contents.
    BadChecksum { stored: u64, computed: u64 },
    /// Module values (types 6, 7) or module auxiliary data (opcode 247).
    ModuleData,
    /// Redis 7 function libraries (opcodes 245, 246).
    Functions,
    /// Hashes with field expiration (RDB 12 types 22..=25).
    HashFieldExpiry,
    /// A type byte that is neither a known value type nor an opcode.
    UnknownType(u8),
    /// A length prefix with an undefined encoding (`10xxxxxx` other than 0x80/0x81).
    BadLengthEncoding(u8),
    /// A string with an undefined special encoding (`11xxxxxx` beyond LZF).
    BadStringEncoding(u8),
    /// A length that cannot be right (e.g. an LZF string claiming to expand 1000-fold).
    BadLength(&'static str),
    /// A compressed string whose LZF data is invalid.
    Lzf(super::lzf::LzfError),
    /// An encoded blob (listpack, ziplist, intset, zipmap, quicklist node) is malformed.
    /// `at` is the byte position inside the (decompressed) blob.
    Corrupt { structure: &'static str, at: usize, what: &'static str },
    /// A sorted-set score that is NaN or not a number.
    BadScore,
    /// An aggregate with no elements (Redis skips these in files; RESTORE refuses them).
    EmptyValue,
    /// DUMP payload footer: produced by a newer RDB version than this library writes.
    PayloadVersion(u16),
    /// DUMP payload footer: CRC-64 mismatch, or the payload is too short to have a footer.
    PayloadChecksum,
    /// DUMP payload: bytes left over after the value.
    TrailingBytes,
    /// A value that decodes but breaks an invariant Redis checks (duplicate members or
    /// fields, an unordered intset); the text is the reason Redis logs.
    Sanitization(&'static str),
    /// The writer was given something it cannot store (e.g. a NaN score, an element
    /// source whose count differs from what it yields).
    InvalidInput(&'static str),
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Io(e) => write!(f, "I/O error: {e}"),
            ErrorKind::Truncated => f.write_str("unexpected end of data (truncated file?)"),
            ErrorKind::NotRdb => f.write_str("not an RDB file (wrong signature)"),
            ErrorKind::UnsupportedVersion(v) => write!(f, "unsupported RDB version {v}"),
            ErrorKind::BadChecksum { stored, computed } => {
                write!(f, "bad checksum: stored {stored:016x}, computed {computed:016x}")
            }
            ErrorKind::ModuleData => f.write_str("module data is not supported"),
            ErrorKind::Functions => f.write_str("Redis functions are not supported"),
            ErrorKind::HashFieldExpiry => f.write_str("hashes with field expiration are not supported"),
            ErrorKind::UnknownType(t) => write!(f, "unknown value type or opcode {t}"),
            ErrorKind::BadLengthEncoding(b) => write!(f, "unknown length encoding 0x{b:02x}"),
            ErrorKind::BadStringEncoding(b) => write!(f, "unknown string encoding {b}"),
            ErrorKind::BadLength(what) => write!(f, "implausible length: {what}"),
            ErrorKind::Lzf(e) => write!(f, "invalid LZF compressed string: {e}"),
            ErrorKind::Corrupt { structure, at, what } => write!(f, "corrupt {structure} (at byte {at} of it): {what}"),
            ErrorKind::BadScore => f.write_str("sorted set score is not a number"),
            ErrorKind::EmptyValue => f.write_str("empty aggregate value"),
            ErrorKind::PayloadVersion(v) => write!(f, "DUMP payload version {v} is newer than supported"),
            ErrorKind::PayloadChecksum => f.write_str("DUMP payload version or checksum are wrong"),
            ErrorKind::TrailingBytes => f.write_str("unexpected bytes after the value"),
            ErrorKind::Sanitization(reason) => f.write_str(reason),
            ErrorKind::InvalidInput(what) => write!(f, "invalid input: {what}"),
        }
    }
}

/// An error with its position: byte offset and, inside a key, the key's name.
#[derive(Debug)]
pub struct RdbError {
    /// Byte offset into the file or payload where the problem was detected.
    pub offset: u64,
    /// The key whose value was being read or written, if any.
    pub key: Option<Vec<u8>>,
    pub kind: ErrorKind,
}

impl RdbError {
    pub fn new(offset: u64, kind: ErrorKind) -> Self {
        RdbError { offset, key: None, kind }
    }

    /// Attaches the key name unless one is already set.
    pub fn in_key(mut self, key: &[u8]) -> Self {
        if self.key.is_none() {
            self.key = Some(key.to_vec());
        }
        self
    }

    /// True for errors that mean "the input ended early" (useful to tell a truncated
    /// file from a corrupt one).
    pub fn is_truncation(&self) -> bool {
        matches!(self.kind, ErrorKind::Truncated)
    }
}

/// Writes bytes the way redis-cli quotes them: printable ASCII as is, the rest escaped.
pub(crate) fn fmt_bytes(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    const SHOWN: usize = 128;
    for &c in b.iter().take(SHOWN) {
        match c {
            b'\\' => f.write_str("\\\\")?,
            b'\'' => f.write_str("\\'")?,
            b'\n' => f.write_str("\\n")?,
            b'\r' => f.write_str("\\r")?,
            b'\t' => f.write_str("\\t")?,
            0x20..=0x7e => write!(f, "{}", c as char)?,
            _ => write!(f, "\\x{c:02x}")?,
        }
    }
    if b.len() > SHOWN {
        write!(f, "...({} bytes)", b.len())?;
    }
    Ok(())
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at offset {}", self.offset)?;
        if let Some(k) = &self.key {
            f.write_str(" (key '")?;
            fmt_bytes(f, k)?;
            f.write_str("')")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for RdbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_offset_and_key() {
        let e = RdbError::new(1234, ErrorKind::BadChecksum { stored: 1, computed: 2 }).in_key(b"foo");
        assert_eq!(
            e.to_string(),
            "at offset 1234 (key 'foo'): bad checksum: stored 0000000000000001, computed 0000000000000002"
        );
        let e = RdbError::new(9, ErrorKind::ModuleData).in_key(b"a\x00'b");
        assert_eq!(e.to_string(), "at offset 9 (key 'a\\x00\\'b'): module data is not supported");
        assert_eq!(RdbError::new(0, ErrorKind::NotRdb).to_string(), "at offset 0: not an RDB file (wrong signature)");
    }
}
