//! The offline checkers, as Redis ships them next to the server:
//!
//! - `ferrokv check-rdb FILE` ([`rdb_check`]): reads a whole RDB file with the same reader
//!   the server loads it with, prints what it finds in redis-check-rdb's format
//!   (`[offset N] …` lines, `\o/ RDB looks OK! \o/` or `--- RDB ERROR DETECTED ---` with
//!   the offset, key and database of the problem) plus a summary: RDB version, keys per
//!   database, types and encodings.
//! - `ferrokv check-aof [--fix|--truncate-to-timestamp T] FILE` ([`aof_check`]): checks a
//!   Redis 7 multi-part AOF (manifest, base in RDB or command form, incremental files) or an
//!   old single-file AOF, with redis-check-aof's messages and exit codes, and repairs the
//!   last file by truncation after asking. The command stream is scanned by [`aof_scan`],
//!   which accepts exactly what the server's loader accepts.
//!
//! Both write to any `Write` and read answers from any `BufRead`, so tests drive them
//! without processes; the binary passes stdout and stdin.

pub mod aof_check;
pub mod aof_scan;
pub mod rdb_check;

/// An `io::Error` as C's `strerror` words it (Redis prints those): without Rust's
/// "(os error N)" suffix.
pub(crate) fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

/// `ferrokv check-rdb` with the process's stdout. Returns the exit code.
pub fn check_rdb_main(prog: &str, args: &[String]) -> i32 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    rdb_check::run(prog, args, &mut out)
}

/// `ferrokv check-aof` with the process's stdin and stdout. Returns the exit code.
pub fn check_aof_main(prog: &str, args: &[String]) -> i32 {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    aof_check::run(prog, args, &mut input, &mut out)
}
