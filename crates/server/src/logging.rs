//! Redis-format log lines, to stdout or to `logfile` (opened for append, never truncated):
//!
//! ```text
//! 12345:M 26 Nov 2026 13:08:10.123 * Ready to accept connections tcp
//! ```
//!
//! `pid:role date level message`, where the level mark is `.` debug, `-` verbose,
//! `*` notice, `#` warning. The `log` crate's levels map onto Redis's: trace→debug,
//! debug→verbose, info→notice, warn/error→warning.

use log::{Level, LevelFilter, Log, Metadata, Record};
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// The role mark in each line, as Redis's: `M` master, `S` replica (any server that has a
/// master), `X` sentinel. (Redis's `C`, a forked child, has no counterpart: ferrokv does
/// not fork.)
static ROLE: AtomicU8 = AtomicU8::new(ROLE_MASTER);
pub const ROLE_MASTER: u8 = b'M';
pub const ROLE_REPLICA: u8 = b'S';
pub const ROLE_SENTINEL: u8 = b'X';

pub fn set_role(mark: u8) {
    ROLE.store(mark, Ordering::Relaxed);
}

struct Logger {
    out: Mutex<Option<File>>,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// Maps `loglevel` (debug, verbose, notice, warning) to a filter.
pub fn level_filter(name: &str) -> LevelFilter {
    match name {
        "debug" => LevelFilter::Trace,
        "verbose" => LevelFilter::Debug,
        "warning" => LevelFilter::Warn,
        _ => LevelFilter::Info,
    }
}

/// Installs the logger. With a `logfile`, lines are appended to it.
pub fn init(logfile: Option<&str>, level: &str) -> std::io::Result<()> {
    let file = match logfile {
        Some(path) if !path.is_empty() => Some(OpenOptions::new().create(true).append(true).open(path)?),
        _ => None,
    };
    let logger = LOGGER.get_or_init(|| Logger { out: Mutex::new(None) });
    *logger.out.lock() = file;
    let _ = log::set_logger(logger);
    log::set_max_level(level_filter(level));
    Ok(())
}

pub fn set_level(level: &str) {
    log::set_max_level(level_filter(level));
}

/// `26 Nov 2026 13:08:10.123` in local time, like Redis's log timestamps.
fn timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    // `as _`: time_t's width is the platform's (naming the alias warns on musl).
    let secs = now.as_secs() as _;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r writes into our tm and reads the time_t we pass.
    unsafe { libc::localtime_r(&secs, &mut tm) };
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:03}",
        tm.tm_mday,
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_year + 1900,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_millis()
    )
}

impl Log for Logger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let mark = match r.level() {
            Level::Trace => '.',
            Level::Debug => '-',
            Level::Info => '*',
            Level::Warn | Level::Error => '#',
        };
        let line = format!(
            "{}:{} {} {} {}\n",
            std::process::id(),
            char::from(ROLE.load(Ordering::Relaxed)),
            timestamp(),
            mark,
            r.args()
        );
        let mut out = self.out.lock();
        match out.as_mut() {
            Some(f) => {
                let _ = f.write_all(line.as_bytes());
            }
            None => {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(line.as_bytes());
                let _ = stdout.flush();
            }
        }
    }

    fn flush(&self) {}
}
