//! The AOF manifest: which files make up the append-only file, in what order.
//!
//! One line per file, `file <name> seq <n> type <b|i|h>`, base first, then history, then
//! incremental files in increasing sequence order. Names containing spaces, quotes or
//! non-printable bytes are written quoted, and lines are split with redis.conf's quoting
//! rules. Extra key/value pairs on a line are ignored (Redis reserves them for later).
//!
//! File names follow Redis: `<appendfilename>.<seq>.base.rdb` (or `.base.aof` without an
//! RDB preamble) and `<appendfilename>.<seq>.incr.aof`; the manifest itself is
//! `<appendfilename>.manifest`.

use ferrokv_resp::args::{quote_arg, split_args};
use std::fmt;

/// Lines longer than this are refused, as Redis does.
pub const MAX_LINE: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Base,
    Incr,
    History,
}

impl FileKind {
    fn letter(self) -> char {
        match self {
            FileKind::Base => 'b',
            FileKind::Incr => 'i',
            FileKind::History => 'h',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AofFile {
    pub name: String,
    pub seq: i64,
    pub kind: FileKind,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofFile>,
    pub history: Vec<AofFile>,
    pub incr: Vec<AofFile>,
    /// Highest sequence numbers handed out, so new names never collide.
    pub base_seq: i64,
    pub incr_seq: i64,
}

/// Why a manifest was refused: the message Redis prints, and the offending line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub message: &'static str,
    /// 1-based line number and its text, when the error is about a line.
    pub line: Option<(usize, String)>,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.line {
            Some((n, text)) => write!(f, "{} (line {n}: '{text}')", self.message),
            None => f.write_str(self.message),
        }
    }
}

impl std::error::Error for ManifestError {}

fn err(message: &'static str, line: Option<(usize, &str)>) -> ManifestError {
    ManifestError { message, line: line.map(|(n, t)| (n, t.to_string())) }
}

/// Whether a name would be split or altered by the line parser and must be quoted. A
/// single quote counts too: the line splitter opens a quoted string at one anywhere in a
/// word (Redis's own writer misses this case and writes manifests it cannot read).
fn needs_quoting(name: &str) -> bool {
    name.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\'') || !b.is_ascii_graphic())
}

/// Redis's `atoll`: leading whitespace, optional sign, digits up to the first non-digit;
/// anything unparsable is 0.
fn atoll(s: &[u8]) -> i64 {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &b in digits.iter().take_while(|b| b.is_ascii_digit()) {
        n = n.wrapping_mul(10).wrapping_add((b - b'0') as i64);
    }
    if neg {
        n.wrapping_neg()
    } else {
        n
    }
}

impl Manifest {
    /// Parses a manifest, with Redis's checks and messages.
    pub fn parse(text: &[u8]) -> Result<Manifest, ManifestError> {
        let mut m = Manifest::default();
        let mut max_incr_seq = 0;
        let mut lines = 0;
        let mut rest = text;
        while !rest.is_empty() {
            let (raw, next, has_newline) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..], true),
                None => (rest, &rest[rest.len()..], false),
            };
            rest = next;
            lines += 1;
            if raw.first() == Some(&b'#') {
                continue;
            }
            let shown = String::from_utf8_lossy(raw).trim_matches([' ', '\t', '\r']).to_string();
            let at = Some((lines, shown.as_str()));
            if !has_newline || raw.len() + 1 > MAX_LINE {
                return Err(err("The AOF manifest file contains too long line", at));
            }
            let line = raw.trim_ascii();
            if line.is_empty() {
                return Err(err("Invalid AOF manifest file format", at));
            }
            let args = split_args(line).map_err(|_| err("Invalid AOF manifest file format", at))?;
            if args.len() < 6 || args.len() % 2 == 1 {
                return Err(err("Invalid AOF manifest file format", at));
            }
            let (mut name, mut seq, mut kind) = (None, 0, None);
            for pair in args.chunks(2) {
                let value = &pair[1];
                if pair[0].eq_ignore_ascii_case(b"file") {
                    if value.contains(&b'/') || value.contains(&b'\\') {
                        return Err(err("File can't be a path, just a filename", at));
                    }
                    name = Some(String::from_utf8_lossy(value).into_owned());
                } else if pair[0].eq_ignore_ascii_case(b"seq") {
                    seq = atoll(value);
                } else if pair[0].eq_ignore_ascii_case(b"type") {
                    kind = value.first().copied();
                }
            }
            let (Some(name), Some(kind)) = (name.filter(|n| !n.is_empty()), kind) else {
                return Err(err("Invalid AOF manifest file format", at));
            };
            if seq == 0 {
                return Err(err("Invalid AOF manifest file format", at));
            }
            match kind {
                b'b' => {
                    if m.base.is_some() {
                        return Err(err("Found duplicate base file information", at));
                    }
                    m.base_seq = seq;
                    m.base = Some(AofFile { name, seq, kind: FileKind::Base });
                }
                b'h' => m.history.push(AofFile { name, seq, kind: FileKind::History }),
                b'i' => {
                    if seq <= max_incr_seq {
                        return Err(err("Found a non-monotonic sequence number", at));
                    }
                    max_incr_seq = seq;
                    m.incr_seq = seq;
                    m.incr.push(AofFile { name, seq, kind: FileKind::Incr });
                }
                _ => return Err(err("Unknown AOF file type", at)),
            }
        }
        if lines == 0 {
            return Err(err("Found an empty AOF manifest", None));
        }
        Ok(m)
    }

    /// The manifest's text: base, history, incremental files.
    pub fn format(&self) -> String {
        let mut out = String::new();
        for f in self.base.iter().chain(&self.history).chain(&self.incr) {
            let name = if needs_quoting(&f.name) {
                let mut q = Vec::new();
                quote_arg(f.name.as_bytes(), &mut q);
                String::from_utf8_lossy(&q).into_owned()
            } else {
                f.name.clone()
            };
            out.push_str(&format!("file {} seq {} type {}\n", name, f.seq, f.kind.letter()));
        }
        out
    }

    /// Files to load, in order: the base, then every incremental file.
    pub fn load_order(&self) -> impl Iterator<Item = &AofFile> {
        self.base.iter().chain(&self.incr)
    }

    /// Makes the current base and incremental files history and names a new base (for
    /// a rewrite whose snapshot becomes the new base). Returns the new base's name.
    pub fn new_base(&mut self, prefix: &str, rdb: bool) -> String {
        if let Some(mut b) = self.base.take() {
            b.kind = FileKind::History;
            self.history.insert(0, b);
        }
        self.base_seq += 1;
        let name = format!("{prefix}.{}.base.{}", self.base_seq, if rdb { "rdb" } else { "aof" });
        self.base = Some(AofFile { name: name.clone(), seq: self.base_seq, kind: FileKind::Base });
        name
    }

    /// Adds a new incremental file at the end. Returns its name.
    pub fn new_incr(&mut self, prefix: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{prefix}.{}.incr.aof", self.incr_seq);
        self.incr.push(AofFile { name: name.clone(), seq: self.incr_seq, kind: FileKind::Incr });
        name
    }

    /// After a rewrite: every incremental file but the last (the one that was opened
    /// when the rewrite's snapshot was taken) becomes history.
    pub fn retire_incr_before_last(&mut self) {
        let keep = self.incr.pop();
        self.retire_all_incr();
        self.incr.extend(keep);
    }

    /// After a rewrite with the AOF off (no file was being appended to): every
    /// incremental file becomes history.
    pub fn retire_all_incr(&mut self) {
        for mut f in self.incr.drain(..) {
            f.kind = FileKind::History;
            self.history.push(f);
        }
    }

    /// The file new writes are appended to.
    pub fn last_incr(&self) -> Option<&AofFile> {
        self.incr.last()
    }
}

pub fn manifest_name(prefix: &str) -> String {
    format!("{prefix}.manifest")
}

pub fn temp_manifest_name(prefix: &str) -> String {
    format!("temp-{prefix}.manifest")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_redis_writes() {
        let text = b"file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.1.incr.aof seq 1 type h\nfile appendonly.aof.4.incr.aof seq 4 type i\nfile appendonly.aof.5.incr.aof seq 5 type i\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(m.base.as_ref().unwrap().name, "appendonly.aof.2.base.rdb");
        assert_eq!(m.history.len(), 1);
        assert_eq!(m.incr.iter().map(|f| f.seq).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(m.format().as_bytes(), text);
        assert_eq!(m.load_order().count(), 3);
    }

    #[test]
    fn refuses_what_redis_refuses() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "Found an empty AOF manifest"),
            (b"\n", "Invalid AOF manifest file format"),
            (b"file a seq 1\n", "Invalid AOF manifest file format"),
            (b"file a seq 1 type\n", "Invalid AOF manifest file format"),
            (b"file a/b seq 1 type b\n", "File can't be a path, just a filename"),
            (b"file a seq 1 type b\nfile b seq 2 type b\n", "Found duplicate base file information"),
            (b"file a seq 2 type i\nfile b seq 2 type i\n", "Found a non-monotonic sequence number"),
            (b"file a seq 1 type x\n", "Unknown AOF file type"),
            (b"file a seq 0 type i\n", "Invalid AOF manifest file format"),
            (b"file a seq 1 type i", "The AOF manifest file contains too long line"),
        ];
        for (text, msg) in cases {
            let e = Manifest::parse(text).unwrap_err();
            assert_eq!(e.message, *msg, "{:?}", String::from_utf8_lossy(text));
        }
        let long = format!("file {} seq 1 type i\n", "x".repeat(MAX_LINE));
        assert_eq!(
            Manifest::parse(long.as_bytes()).unwrap_err().message,
            "The AOF manifest file contains too long line"
        );
    }

    #[test]
    fn comments_and_extra_fields_are_ignored_and_odd_names_quoted() {
        let m = Manifest::parse(b"# hello\nfile \"a b\" seq 3 type i future x\n").unwrap();
        assert_eq!(m.incr[0].name, "a b");
        assert_eq!(m.format(), "file \"a b\" seq 3 type i\n");
        assert_eq!(Manifest::parse(m.format().as_bytes()).unwrap().incr, m.incr);
    }

    #[test]
    fn rewrite_naming_follows_redis() {
        let mut m = Manifest::default();
        assert_eq!(m.new_base("appendonly.aof", true), "appendonly.aof.1.base.rdb");
        assert_eq!(m.new_incr("appendonly.aof"), "appendonly.aof.1.incr.aof");
        // A rewrite: a new incr file opens, the snapshot becomes the new base.
        assert_eq!(m.new_incr("appendonly.aof"), "appendonly.aof.2.incr.aof");
        assert_eq!(m.new_base("appendonly.aof", false), "appendonly.aof.2.base.aof");
        m.retire_incr_before_last();
        assert_eq!(
            m.format(),
            "file appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.1.base.rdb seq 1 type h\nfile appendonly.aof.1.incr.aof seq 1 type h\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
        );
    }
}
