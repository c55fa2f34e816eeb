//! `check-rdb`: read an RDB file to its end and say what is in it or what is wrong.
//!
//! The reading is the server's own ([`RdbReader`]): a file this tool accepts is a file the
//! server loads. The report follows redis-check-rdb's lines so people and scripts used to
//! it find their way (`[offset N] AUX FIELD …`, `Selecting DB ID`, `Checksum OK`,
//! `\o/ RDB looks OK! \o/`, `--- RDB ERROR DETECTED ---`, `[info] N keys read`), and adds a
//! summary of its own: the RDB version, keys per database, and counts per type and per
//! encoding in the file.

use ferrokv_persist::rdb::{types, ErrorKind, Item, RdbError, RdbReader};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};

/// What a check found, complete or up to the error.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub version: u32,
    pub keys: u64,
    pub expires: u64,
    pub already_expired: u64,
    /// Per database: keys, keys with an expire.
    pub per_db: BTreeMap<u64, (u64, u64)>,
    /// Keys per Redis type name (`string`, `list`, …).
    pub types: BTreeMap<&'static str, u64>,
    /// Keys per encoding in the file (`listpack`, `quicklist`, `intset`, …).
    pub encodings: BTreeMap<&'static str, u64>,
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// Empty aggregates skipped (as the server skips them).
    pub skipped_empty: u64,
    /// Offset just past the checksum: where an AOF tail would start.
    pub end: u64,
}

/// The encoding a value had in the file, from its RDB type byte, with Redis's names.
fn encoding_name(ty: u8) -> &'static str {
    use types::*;
    match ty {
        STRING => "string",
        LIST => "linkedlist",
        SET | HASH => "hashtable",
        ZSET | ZSET_2 => "skiplist",
        HASH_ZIPMAP => "zipmap",
        LIST_ZIPLIST | ZSET_ZIPLIST | HASH_ZIPLIST => "ziplist",
        SET_INTSET => "intset",
        LIST_QUICKLIST => "quicklist (ziplists)",
        LIST_QUICKLIST_2 => "quicklist",
        HASH_LISTPACK | ZSET_LISTPACK | SET_LISTPACK => "listpack",
        STREAM_LISTPACKS | STREAM_LISTPACKS_2 | STREAM_LISTPACKS_3 => "stream",
        _ => "other",
    }
}

/// The error's first line, in redis-check-rdb's words where it has words for it.
fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::Truncated => "Unexpected EOF reading RDB file".into(),
        ErrorKind::NotRdb => "Wrong signature trying to load DB from file".into(),
        ErrorKind::UnsupportedVersion(v) => format!("Can't handle RDB format version {v}"),
        ErrorKind::BadChecksum { stored, computed } => {
            format!("RDB CRC error (stored {stored:016x}, computed {computed:016x})")
        }
        ErrorKind::UnknownType(t) => format!("Invalid object type: {t}"),
        other => other.to_string(),
    }
}

/// Bytes shown the way redis-check-rdb shows aux values: as text, non-printable escaped.
fn shown(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b.iter().take(256) {
        match c {
            0x20..=0x7e if c != b'\\' && c != b'\'' => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    if b.len() > 256 {
        s.push_str(&format!("...({} bytes)", b.len()));
    }
    s
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Checks an RDB stream, printing the report to `out`. `Ok(Ok(summary))` when the file is
/// sound, `Ok(Err(summary))` when an error was reported (the summary counts what came
/// before it). `Err` only when `out` fails.
pub fn check_stream<R: Read>(
    input: R,
    name: &str,
    now_ms: i64,
    out: &mut dyn Write,
) -> io::Result<Result<Summary, Summary>> {
    writeln!(out, "[offset 0] Checking RDB file {name}")?;
    let mut s = Summary::default();
    let mut reader = match RdbReader::new(input) {
        Ok(r) => r,
        Err(e) => {
            report_error(out, &e, None)?;
            info_lines(out, &s)?;
            return Ok(Err(s));
        }
    };
    s.version = reader.version();
    let mut db = 0u64;
    loop {
        match reader.next() {
            Ok(Some(Item::Aux { key, value })) => {
                writeln!(out, "[offset {}] AUX FIELD {} = '{}'", reader.offset(), shown(&key), shown(&value))?;
                s.aux.push((key, value));
            }
            Ok(Some(Item::SelectDb(n))) => {
                db = n;
                writeln!(out, "[offset {}] Selecting DB ID {n}", reader.offset())?;
            }
            // Libraries print nothing, as in redis-check-rdb.
            Ok(Some(Item::ResizeDb { .. } | Item::Function(_))) => {}
            Ok(Some(Item::Key(k))) => {
                s.keys += 1;
                let entry = s.per_db.entry(db).or_default();
                entry.0 += 1;
                if let Some(at) = k.expire_ms {
                    s.expires += 1;
                    entry.1 += 1;
                    if at < now_ms {
                        s.already_expired += 1;
                    }
                }
                *s.types.entry(k.value.type_name()).or_default() += 1;
                *s.encodings.entry(encoding_name(reader.last_key_type().unwrap_or(u8::MAX))).or_default() += 1;
            }
            Ok(None) => break,
            Err(e) => {
                s.skipped_empty = reader.skipped_empty_keys();
                report_error(out, &e, Some(db))?;
                info_lines(out, &s)?;
                return Ok(Err(s));
            }
        }
    }
    s.skipped_empty = reader.skipped_empty_keys();
    s.end = reader.offset();
    match reader.stored_checksum() {
        Some(0) => writeln!(out, "[offset {}] RDB file was saved with checksum disabled: no check performed.", s.end)?,
        Some(_) => writeln!(out, "[offset {}] Checksum OK", s.end)?,
        None => {}
    }
    writeln!(out, "[offset {}] \\o/ RDB looks OK! \\o/", s.end)?;
    info_lines(out, &s)?;
    summary_lines(out, &s)?;
    Ok(Ok(s))
}

fn report_error(out: &mut dyn Write, e: &RdbError, db: Option<u64>) -> io::Result<()> {
    writeln!(out, "--- RDB ERROR DETECTED ---")?;
    writeln!(out, "[offset {}] {}", e.offset, describe(&e.kind))?;
    if let Some(k) = &e.key {
        writeln!(out, "[additional info] Reading key '{}'", shown(k))?;
    }
    if let (Some(db), true) = (db, e.key.is_some()) {
        writeln!(out, "[additional info] In database {db}")?;
    }
    Ok(())
}

fn info_lines(out: &mut dyn Write, s: &Summary) -> io::Result<()> {
    writeln!(out, "[info] {} keys read", s.keys)?;
    writeln!(out, "[info] {} expires", s.expires)?;
    writeln!(out, "[info] {} already expired", s.already_expired)
}

/// ferrokv's additions to the report, after Redis's lines.
fn summary_lines(out: &mut dyn Write, s: &Summary) -> io::Result<()> {
    writeln!(out, "[info] RDB version {}", s.version)?;
    for (db, (keys, expires)) in &s.per_db {
        writeln!(out, "[info] db {db}: {keys} keys, {expires} with an expire")?;
    }
    let list = |m: &BTreeMap<&str, u64>| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
    if !s.types.is_empty() {
        writeln!(out, "[info] types: {}", list(&s.types))?;
        writeln!(out, "[info] encodings: {}", list(&s.encodings))?;
    }
    if s.skipped_empty > 0 {
        writeln!(out, "[info] {} empty keys skipped", s.skipped_empty)?;
    }
    Ok(())
}

/// The command line: `check-rdb FILE`. Exit code 0 when the file is sound, 1 otherwise.
pub fn run(prog: &str, args: &[String], out: &mut dyn Write) -> i32 {
    let [path] = args else {
        let _ = writeln!(out, "Usage: {prog} <rdb-file-name>");
        return 1;
    };
    let file = match std::fs::File::open(path) {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_dir()) => {
            let _ = writeln!(out, "[offset 0] Checking RDB file {path}");
            let _ = writeln!(out, "--- RDB ERROR DETECTED ---\n[offset 0] {path} is a directory");
            return 1;
        }
        Ok(f) => f,
        Err(e) => {
            let _ = writeln!(out, "[offset 0] Checking RDB file {path}");
            let _ = writeln!(out, "--- RDB ERROR DETECTED ---\n[offset 0] Can't open {path}: {}", crate::strerror(&e));
            return 1;
        }
    };
    match check_stream(io::BufReader::with_capacity(1 << 20, file), path, now_ms(), out) {
        Ok(Ok(_)) => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_what_is_wrong_and_where() {
        let mut out = Vec::new();
        let r = check_stream(&b"REDIS0099"[..], "x.rdb", 0, &mut out).unwrap();
        assert!(r.is_err());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("--- RDB ERROR DETECTED ---\n[offset 5] Can't handle RDB format version 99"), "{text}");
        let mut out = Vec::new();
        assert!(check_stream(&b"NOPE"[..], "x.rdb", 0, &mut out).unwrap().is_err());
        assert!(String::from_utf8(out).unwrap().contains("Wrong signature"));
    }

    #[test]
    fn quoting_escapes_what_is_not_printable() {
        assert_eq!(shown(b"a'b\\c\x01"), "a\\x27b\\x5cc\\x01");
    }
}
