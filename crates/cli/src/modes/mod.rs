//! The special modes of redis-cli: each takes over the process and talks to the server
//! in its own loop.

pub mod bigkeys;
pub mod latency;
pub mod pipe;
pub mod scan;
pub mod stat;

use crate::session::{emit, Exit, Session};
use ferrokv_resp::Frame;
use std::time::Duration;

/// One page of SCAN: the next cursor and the keys. Any failure ends the process with
/// redis-cli's message for it.
pub fn scan_page(s: &mut Session, cursor: u64) -> Result<(u64, Vec<Frame>), Exit> {
    let cursor_text = cursor.to_string();
    let mut args: Vec<&[u8]> = vec![b"SCAN", cursor_text.as_bytes()];
    let pattern = s.opts.pattern.clone();
    if let Some(p) = &pattern {
        args.extend_from_slice(&[b"MATCH", p]);
    }
    let reply = s.call(&args).map_err(|_| io_error())?;
    match reply {
        Frame::Error(e) => fail(&format!("SCAN error: {}", String::from_utf8_lossy(&e))),
        Frame::Array(mut items) if items.len() == 2 => {
            let keys = match items.pop() {
                Some(Frame::Array(keys)) => keys,
                _ => return fail("Invalid SCAN reply: keys are not an array"),
            };
            let next = items.pop().and_then(|c| c.as_bytes().map(crate::options::atoi)).unwrap_or(0);
            Ok((next as u64, keys))
        }
        Frame::Array(_) => fail("Invalid element count from SCAN!"),
        _ => fail("Non ARRAY response from SCAN!"),
    }
}

/// Sends a command, reconnecting (once a second, with a counter on the terminal) until
/// it gets a reply: --stat and --latency keep going across server restarts.
pub fn call_reconnecting(s: &mut Session, args: &[&[u8]]) -> Result<Frame, Exit> {
    let mut tries = 0;
    loop {
        if s.is_connected() {
            match s.call(args) {
                Ok(reply) => {
                    if tries > 0 {
                        emit(b"\r\x1b[0K")?;
                    }
                    return Ok(reply);
                }
                Err(e) if e.is_disconnect() => {}
                Err(e) => return fail(&format!("Error: {e}")),
            }
        }
        tries += 1;
        emit(format!("\r\x1b[0KReconnecting... {tries}\r").as_bytes())?;
        s.connect(true);
        std::thread::sleep(Duration::from_secs(1));
    }
}

pub fn io_error() -> Exit {
    eprintln!("\nI/O error");
    Exit(1)
}

pub fn fail<T>(msg: &str) -> Result<T, Exit> {
    eprintln!("{msg}");
    Err(Exit(1))
}
