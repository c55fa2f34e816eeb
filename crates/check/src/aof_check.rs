//! `check-aof [--fix|--truncate-to-timestamp T] FILE`: redis-check-aof for Redis 7 AOFs.
//!
//! FILE is a manifest (a multi-part AOF: its base, then its incremental files, in the
//! manifest's directory), an old single-file AOF (commands, or an RDB preamble followed by
//! commands), or — ferrokv's addition — the AOF directory itself. Messages, their order and
//! the exit codes are redis-check-aof 7.0's, because scripts and runbooks parse them:
//!
//! - `AOF analyzed: filename=…, size=…, ok_up_to=…, ok_up_to_line=…, diff=…` per file;
//! - a damaged file: the failed read as `0x<offset>: <what>`, then
//!   `AOF … is not valid. Use the --fix option to try fixing it.` and exit 1;
//! - `--fix`: only the *last* file may be repaired, by truncating it at the start of its
//!   first bad record (everything after it is dropped — as Redis does, and the prompt
//!   says how many bytes that is); the user must answer `y` to `Continue? [y/N]:`;
//! - `--truncate-to-timestamp T`: the last file is cut before the first `#TS:` annotation
//!   later than T (no prompt, as in Redis);
//! - a manifest error or a file the manifest names but that is missing: exit 1.

use crate::aof_scan::scan;
use crate::rdb_check;
use crate::strerror;
use ferrokv_persist::aof::{FileKind, Manifest};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Ends the check with this exit code (Redis calls `exit` from deep inside its checker).
struct Exit(i32);

type Step<T> = Result<T, Exit>;

enum Checked {
    Ok,
    Empty,
    Truncated,
    TimestampTruncated,
}

struct Checker<'a> {
    out: &'a mut dyn Write,
    input: &'a mut dyn BufRead,
    fix: bool,
    to_timestamp: Option<i64>,
    /// redis-check-aof's line counter, shared by every file of the check.
    line: u64,
}

macro_rules! say {
    ($c:expr, $($arg:tt)*) => {{
        let _ = writeln!($c.out, $($arg)*);
    }};
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Redis's `fileIsManifest`: some line that is not a comment starts with `file`.
fn is_manifest(bytes: &[u8]) -> bool {
    bytes.split(|&b| b == b'\n').any(|l| l.first() != Some(&b'#') && l.starts_with(b"file"))
}

impl Checker<'_> {
    fn fail<T>(&mut self, msg: impl std::fmt::Display) -> Step<T> {
        say!(self, "{msg}");
        Err(Exit(1))
    }

    fn main(&mut self, prog: &str, args: &[String]) -> Step<()> {
        let path = match args {
            [p] => p,
            [flag, p] if flag == "--fix" => {
                self.fix = true;
                p
            }
            [flag, ts, p] if flag == "--truncate-to-timestamp" => {
                match ts.parse::<i64>() {
                    Ok(t) if t != 0 => self.to_timestamp = Some(t),
                    Ok(_) => {}
                    Err(_) => return self.fail("Invalid timestamp, aborting..."),
                }
                p
            }
            _ => {
                return self
                    .fail(format!("Usage: {prog} [--fix|--truncate-to-timestamp $timestamp] <file.manifest|file.aof>"))
            }
        };
        let path = Path::new(path);
        if path.is_dir() {
            let manifest = self.find_manifest(path)?;
            return self.check_multi_part(path, &manifest);
        }
        let head = self.read_head(path)?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if is_manifest(&head) {
            self.check_multi_part(&dir, path)
        } else {
            let preamble = head.len() >= 8 && head.starts_with(b"REDIS");
            self.check_old_style(path, preamble)
        }
    }

    /// The start of a file (all of it, up to a size that any manifest fits in), to tell
    /// a manifest from an AOF.
    fn read_head(&mut self, path: &Path) -> Step<Vec<u8>> {
        let mut head = Vec::new();
        match File::open(path).and_then(|f| f.take(64 * 1024).read_to_end(&mut head)) {
            Ok(_) => Ok(head),
            Err(e) => self.fail(format!("Cannot open file {}: {}", path.display(), strerror(&e))),
        }
    }

    /// A directory was given: the one manifest in it.
    fn find_manifest(&mut self, dir: &Path) -> Step<PathBuf> {
        let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(".manifest") && !n.starts_with("temp-"))
                })
                .collect(),
            Err(e) => return self.fail(format!("Cannot read directory {}: {}", dir.display(), strerror(&e))),
        };
        found.sort();
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => self.fail(format!("No AOF manifest found in {}, aborting...", dir.display())),
            _ => self.fail(format!(
                "Several AOF manifests in {} ({}): name the one to check, aborting...",
                dir.display(),
                found.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy()).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    fn load_manifest(&mut self, path: &Path) -> Step<Manifest> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) => {
                return self.fail(format!(
                    "Fatal error: can't open the AOF manifest {} for reading: {}",
                    path.display(),
                    strerror(&e)
                ))
            }
        };
        match Manifest::parse(&text) {
            Ok(m) => Ok(m),
            Err(e) => {
                say!(self, "\n*** FATAL AOF MANIFEST FILE ERROR ***\n");
                if let Some((n, line)) = &e.line {
                    say!(self, "Reading the manifest file, at line {n}\n");
                    say!(self, ">>> '{line}'\n");
                }
                self.fail(format!("{}\n", e.message))
            }
        }
    }

    fn check_multi_part(&mut self, dir: &Path, manifest_path: &Path) -> Step<()> {
        say!(self, "Start checking Multi Part AOF");
        let manifest = self.load_manifest(manifest_path)?;
        let total = manifest.load_order().count();
        let mut n = 0;
        if let Some(base) = &manifest.base {
            n += 1;
            let path = dir.join(&base.name);
            let head = self.read_head(&path)?;
            let preamble = head.len() >= 8 && head.starts_with(b"REDIS");
            say!(self, "Start to check BASE AOF ({} format).", if preamble { "RDB" } else { "RESP" });
            let r = self.check_single(&base.name, &path, n == total, preamble)?;
            self.say_result(r, "BASE AOF ", &base.name);
        }
        if !manifest.incr.is_empty() {
            say!(self, "Start to check INCR files.");
            for f in &manifest.incr {
                debug_assert_eq!(f.kind, FileKind::Incr);
                n += 1;
                let r = self.check_single(&f.name, &dir.join(&f.name), n == total, false)?;
                self.say_result(r, "INCR AOF ", &f.name);
            }
        }
        say!(self, "All AOF files and manifest are valid");
        Ok(())
    }

    fn check_old_style(&mut self, path: &Path, preamble: bool) -> Step<()> {
        say!(self, "Start checking Old-Style AOF");
        let name = path.display().to_string();
        let r = self.check_single(&name, path, true, preamble)?;
        self.say_result(r, "AOF ", &name);
        Ok(())
    }

    fn say_result(&mut self, r: Checked, what: &str, name: &str) {
        match r {
            Checked::Ok => say!(self, "{what}{name} is valid"),
            Checked::Empty => say!(self, "{what}{name} is empty"),
            Checked::TimestampTruncated => {
                say!(self, "Successfully truncated AOF {name} to timestamp {}", self.to_timestamp.unwrap_or(0))
            }
            Checked::Truncated => say!(self, "Successfully truncated AOF {name}"),
        }
    }

    /// Redis's `checkSingleAof`: one file, commands after an optional RDB preamble.
    fn check_single(&mut self, name: &str, path: &Path, last: bool, preamble: bool) -> Step<Checked> {
        let shown = path.display().to_string();
        let writable = self.fix || self.to_timestamp.is_some();
        let mut file = match OpenOptions::new().read(true).write(writable).open(path) {
            Ok(f) => f,
            Err(e) => return self.fail(format!("Cannot open file {shown}: {}, aborting...", strerror(&e))),
        };
        let size = match file.metadata() {
            Ok(m) => m.len(),
            Err(_) => return self.fail(format!("Cannot stat file: {name}, aborting...")),
        };
        if size == 0 {
            return Ok(Checked::Empty);
        }
        let mut start = 0;
        if preamble {
            let reader = std::io::BufReader::with_capacity(1 << 20, &file);
            match rdb_check::check_stream(reader, name, now_ms(), self.out) {
                Ok(Ok(summary)) => start = summary.end,
                _ => return self.fail("RDB preamble of AOF file is not sane, aborting."),
            }
            say!(self, "RDB preamble is OK, proceeding with AOF tail...");
        }
        if let Err(e) = file.seek(SeekFrom::Start(start)) {
            return self.fail(format!("Failed to fseek in AOF {name}: {}", strerror(&e)));
        }
        let s = match scan(&file, &shown, start, &mut self.line, self.to_timestamp) {
            Ok(s) => s,
            Err(_) => return self.fail(format!("Failed to read from AOF {name}, aborting...")),
        };
        if s.format_error {
            say!(self, "AOF {name} format error");
        }
        if s.invalid_timestamp {
            return self.fail("Invalid timestamp annotation");
        }
        if let (Some(cut), Some(ts)) = (s.timestamp_cut, self.to_timestamp) {
            if cut == 0 {
                return self.fail(format!("AOF {shown} has nothing before timestamp {ts}, aborting..."));
            }
            if !last {
                say!(
                    self,
                    "Failed to truncate AOF {shown} to timestamp {ts} to offset {cut} because it is not the last file."
                );
                return self.fail("If you insist, please delete all files after this file according to the manifest file and delete the corresponding records in manifest file manually. Then re-run redis-check-aof.");
            }
            if file.set_len(cut).and_then(|()| file.sync_all()).is_err() {
                return self.fail(format!("Failed to truncate AOF {shown} to timestamp {ts}"));
            }
            return Ok(Checked::TimestampTruncated);
        }
        if let Some(line) = s.error_line() {
            say!(self, "{line}");
        }
        let pos = s.ok_up_to;
        let diff = size.saturating_sub(pos);
        if diff == 0 {
            if let Some(ts) = self.to_timestamp {
                say!(self, "Truncate nothing in AOF {name} to timestamp {ts}");
                return Ok(Checked::Ok);
            }
        }
        say!(
            self,
            "AOF analyzed: filename={name}, size={size}, ok_up_to={pos}, ok_up_to_line={}, diff={diff}",
            self.line
        );
        if diff == 0 {
            return Ok(Checked::Ok);
        }
        if !self.fix {
            return self.fail(format!("AOF {name} is not valid. Use the --fix option to try fixing it."));
        }
        if !last {
            return self.fail(format!("Failed to truncate AOF {name} because it is not the last file"));
        }
        say!(self, "This will shrink the AOF {name} from {size} bytes, with {diff} bytes, to {pos} bytes");
        let _ = write!(self.out, "Continue? [y/N]: ");
        let _ = self.out.flush();
        let mut answer = String::new();
        let yes = self.input.read_line(&mut answer).is_ok_and(|n| n > 0) && answer.starts_with(['y', 'Y']);
        if !yes {
            return self.fail("Aborting...");
        }
        if file.set_len(pos).and_then(|()| file.sync_all()).is_err() {
            return self.fail(format!("Failed to truncate AOF {name}"));
        }
        Ok(Checked::Truncated)
    }
}

/// The command line. Returns the exit code: 0 when everything is valid (or was repaired),
/// 1 otherwise.
pub fn run(prog: &str, args: &[String], input: &mut dyn BufRead, out: &mut dyn Write) -> i32 {
    let mut c = Checker { out, input, fix: false, to_timestamp: None, line: 1 };
    let code = match c.main(prog, args) {
        Ok(()) => 0,
        Err(Exit(code)) => code,
    };
    let _ = c.out.flush();
    code
}
