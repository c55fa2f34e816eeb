//! A command given on the command line (`ferrokv cli SET a 123`), with its arguments
//! possibly quoted (`--quoted-input`) or completed from stdin (`-x`, `-X tag`).

use crate::session::{emit, Exit, Session};
use std::io::Read;

pub fn run(s: &mut Session, command: Vec<Vec<u8>>) -> Result<i32, Exit> {
    let mut argv = if s.opts.quoted_input {
        match command.iter().map(|a| unquote(a)).collect::<Option<Vec<_>>>() {
            Some(argv) => argv,
            None => {
                emit(b"Invalid quoted string\n")?;
                return Ok(1);
            }
        }
    } else {
        command
    };
    if s.opts.stdin_last_arg {
        argv.push(read_stdin()?);
    } else if let Some(tag) = s.opts.stdin_tag.clone() {
        let Some(slot) = argv.iter_mut().find(|a| **a == tag) else {
            eprintln!("Using -X option but stdin tag not match.");
            return Ok(1);
        };
        *slot = read_stdin()?;
    }
    let repeat = s.opts.repeat;
    Ok(if s.issue(&argv, repeat)? { 0 } else { 1 })
}

/// One argument written with Redis's quoting rules (`"a\x00b"`); None unless it is
/// exactly one argument.
fn unquote(arg: &[u8]) -> Option<Vec<u8>> {
    let mut parts = ferrokv_resp::args::split_args(arg).ok()?;
    (parts.len() == 1).then(|| parts.pop()).flatten()
}

/// All of stdin, byte for byte: `-x` must carry binary values (a DUMP payload) intact.
fn read_stdin() -> Result<Vec<u8>, Exit> {
    let mut data = Vec::new();
    std::io::stdin().lock().read_to_end(&mut data).map_err(|e| {
        eprintln!("Reading from standard input: {e}");
        Exit(1)
    })?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_arguments() {
        assert_eq!(unquote(b"\"a\\x00b\""), Some(b"a\0b".to_vec()));
        assert_eq!(unquote(b"plain"), Some(b"plain".to_vec()));
        assert_eq!(unquote(b"two words"), None);
        assert_eq!(unquote(b"\"open"), None);
    }
}
