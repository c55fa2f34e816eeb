//! `--pipe`: mass insertion. Copies the RESP commands on stdin to the server while
//! reading its replies, counts replies and errors, and knows everything was answered
//! when the reply to a final `ECHO <20 random bytes>` comes back.

use crate::conn::{os_error_text, ConnError};
use crate::session::{emit, warn, Exit, Session};
use ferrokv_resp::Frame;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the reader wakes up to check the --pipe-timeout.
const POLL: Duration = Duration::from_millis(200);

pub fn run(s: &mut Session) -> Result<(), Exit> {
    let timeout = s.opts.pipe_timeout;
    let Some(mut conn) = s.take_conn() else { return Err(Exit(1)) };
    let mut writer = conn.writer().map_err(|e| {
        eprintln!("Can't open the connection for writing: {}", os_error_text(&e));
        Exit(1)
    })?;
    let magic = random_token();
    let all_sent = Arc::new(AtomicBool::new(false));
    let sent_flag = Arc::clone(&all_sent);

    // Writing in its own thread keeps replies flowing while stdin is copied: a server
    // whose output buffer fills up would otherwise stop reading and deadlock both sides.
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => writer_failed(&format!("Error reading from stdin: {}", os_error_text(&e))),
            };
            if let Err(e) = writer.write_all(&buf[..n]) {
                writer_failed(&format!("Error writing to the server: {}", os_error_text(&e)));
            }
        }
        let _ = emit(b"All data transferred. Waiting for the last reply...\n");
        // Before the ECHO goes out: its reply may come back before the write returns.
        sent_flag.store(true, Ordering::SeqCst);
        // The leading CRLF (ignored by the server) resynchronises after garbage on stdin.
        let mut echo = b"\r\n*2\r\n$4\r\nECHO\r\n$20\r\n".to_vec();
        echo.extend_from_slice(&magic);
        echo.extend_from_slice(b"\r\n");
        if let Err(e) = writer.write_all(&echo) {
            writer_failed(&format!("Error writing to the server: {}", os_error_text(&e)));
        }
    });

    let _ = conn.set_read_timeout(Some(POLL));
    let (mut errors, mut replies) = (0u64, 0u64);
    let mut last_reply = Instant::now();
    loop {
        match conn.read_reply() {
            Ok(reply) => {
                last_reply = Instant::now();
                replies += 1;
                match &reply {
                    Frame::Error(e) => {
                        warn(&String::from_utf8_lossy(e));
                        errors += 1;
                    }
                    Frame::Bulk(b) if b.as_ref() == magic && all_sent.load(Ordering::SeqCst) => {
                        emit(b"Last reply received from server.\n")?;
                        replies -= 1;
                        break;
                    }
                    _ => {}
                }
            }
            Err(ConnError::Io(e)) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                let waited = last_reply.elapsed().as_secs();
                if all_sent.load(Ordering::SeqCst) && timeout > 0 && waited > timeout as u64 {
                    warn(&format!("No replies for {timeout} seconds: exiting."));
                    errors += 1;
                    break;
                }
            }
            Err(ConnError::Protocol(_)) => {
                warn("Error reading replies from server");
                return Err(Exit(1));
            }
            Err(_) => return Err(Exit(1)),
        }
    }
    emit(format!("errors: {errors}, replies: {replies}\n").as_bytes())?;
    if errors > 0 {
        Err(Exit(1))
    } else {
        Ok(())
    }
}

/// The writer has no one to report to: like redis-cli, it ends the process.
fn writer_failed(msg: &str) -> ! {
    warn(msg);
    std::process::exit(1)
}

/// 20 unpredictable bytes, so data on stdin cannot contain the final reply by chance.
fn random_token() -> [u8; 20] {
    let mut token = [0u8; 20];
    for chunk in token.chunks_mut(8) {
        // RandomState is seeded from the OS's randomness for each instance.
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        let bytes = h.finish().to_le_bytes();
        chunk.copy_from_slice(&bytes[..chunk.len()]);
    }
    token
}
