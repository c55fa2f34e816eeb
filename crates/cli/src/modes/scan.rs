//! `--scan [--pattern p]`: every key, one per line (quoted in formatted output), with a
//! SCAN loop that does not block the server the way KEYS would.

use crate::format::{repr, OutputMode};
use crate::interrupt;
use crate::session::{emit, Exit, Session};

pub fn run(s: &mut Session) -> Result<(), Exit> {
    interrupt::catch();
    let mut cursor = 0;
    loop {
        let (next, keys) = super::scan_page(s, cursor)?;
        let mut out = Vec::new();
        for key in &keys {
            let bytes = key.as_bytes().unwrap_or_default();
            match s.opts.output {
                OutputMode::Standard => out.extend_from_slice(&repr(bytes)),
                OutputMode::Raw => out.extend_from_slice(bytes),
            }
            out.push(b'\n');
        }
        emit(&out)?;
        if !s.opts.interval.is_zero() {
            std::thread::sleep(s.opts.interval);
        }
        cursor = next;
        if cursor == 0 || interrupt::interrupted() {
            return Ok(());
        }
    }
}
