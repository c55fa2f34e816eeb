//! `--askpass`: reads the password from the terminal without echoing it, so it stays
//! out of the shell history and off the screen.

use std::io::{self, BufRead, IsTerminal, Write};

pub fn ask(prompt: &str) -> io::Result<Vec<u8>> {
    let fd = libc::STDIN_FILENO;
    if !io::stdin().is_terminal() {
        // As redis-cli: a piped password is read as a line, without a prompt.
        return read_line();
    }
    print!("{prompt}");
    io::stdout().flush()?;
    // SAFETY: termios is plain data, filled by tcgetattr before use.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    // SAFETY: a valid termios copied from the terminal's own.
    unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) };
    let line = read_line();
    // SAFETY: restores the settings read above, whatever happened meanwhile.
    unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &saved) };
    println!();
    line
}

fn read_line() -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    io::stdin().lock().read_until(b'\n', &mut line)?;
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(line)
}
