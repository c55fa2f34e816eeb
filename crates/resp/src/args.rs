//! Redis's argument-splitting rules, shared by inline requests (`SET a "b c"` typed into
//! telnet) and redis.conf lines: whitespace separates arguments, double quotes accept
//! `\n \r \t \b \a \\ \" \xHH` escapes, single quotes accept only `\'`, and a closing
//! quote must be followed by whitespace or the end of the line.

/// Why a line could not be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnbalancedQuotes;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits `line` into arguments. A NUL byte ends the line, as it does for Redis, whose
/// parser works on C strings.
pub fn split_args(line: &[u8]) -> Result<Vec<Vec<u8>>, UnbalancedQuotes> {
    let end = line.iter().position(|&b| b == 0).unwrap_or(line.len());
    let line = &line[..end];
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Ok(args);
        }
        let mut current = Vec::new();
        let mut in_double = false;
        let mut in_single = false;
        loop {
            if in_double {
                let Some(&c) = line.get(i) else {
                    return Err(UnbalancedQuotes);
                };
                if c == b'\\' && line.get(i + 1) == Some(&b'x') {
                    if let (Some(h), Some(l)) =
                        (line.get(i + 2).and_then(|&b| hex_value(b)), line.get(i + 3).and_then(|&b| hex_value(b)))
                    {
                        current.push(h * 16 + l);
                        i += 4;
                        continue;
                    }
                }
                if c == b'\\' && i + 1 < line.len() {
                    i += 1;
                    current.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    // The closing quote must end the argument.
                    if i + 1 < line.len() && !is_space(line[i + 1]) {
                        return Err(UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                } else {
                    current.push(c);
                }
                i += 1;
            } else if in_single {
                let Some(&c) = line.get(i) else {
                    return Err(UnbalancedQuotes);
                };
                if c == b'\\' && line.get(i + 1) == Some(&b'\'') {
                    current.push(b'\'');
                    i += 2;
                    continue;
                }
                if c == b'\'' {
                    if i + 1 < line.len() && !is_space(line[i + 1]) {
                        return Err(UnbalancedQuotes);
                    }
                    i += 1;
                    break;
                }
                current.push(c);
                i += 1;
            } else {
                match line.get(i) {
                    None => break,
                    Some(&c) if is_space(c) => break,
                    Some(b'"') => in_double = true,
                    Some(b'\'') => in_single = true,
                    Some(&c) => current.push(c),
                }
                i += 1;
            }
        }
        args.push(current);
    }
}

/// Quotes `arg` so that [`split_args`] reads it back unchanged (what Redis's `sdscatrepr`
/// produces): printable ASCII as is, `"` and `\` escaped, control bytes as `\n`-style or
/// `\xHH` escapes.
pub fn quote_arg(arg: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in arg {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(b),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[b'\\', b'x', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
        }
    }
    out.push(b'"');
}

/// The quoted form as a `String`, for log lines and replies.
pub fn quoted(arg: &[u8]) -> String {
    let mut v = Vec::with_capacity(arg.len() + 2);
    quote_arg(arg, &mut v);
    // quote_arg only emits ASCII.
    String::from_utf8_lossy(&v).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> Result<Vec<String>, UnbalancedQuotes> {
        split_args(s.as_bytes()).map(|v| v.into_iter().map(|a| String::from_utf8_lossy(&a).into_owned()).collect())
    }

    #[test]
    fn plain_words() {
        assert_eq!(split("  set  a   b ").unwrap(), ["set", "a", "b"]);
        assert_eq!(split("").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(split(r#"set "a b" 'c d'"#).unwrap(), ["set", "a b", "c d"]);
        assert_eq!(split(r#""\x41\n" 'it\'s'"#).unwrap(), ["A\n", "it's"]);
        assert_eq!(split(r#"save """#).unwrap(), ["save", ""]);
        assert_eq!(split(r#""\xZZ""#).unwrap(), ["xZZ"]);
    }

    #[test]
    fn unbalanced() {
        assert!(split(r#"set "a"#).is_err());
        assert!(split(r#"set 'a"#).is_err());
        assert!(split(r#"set "a"b"#).is_err());
    }

    #[test]
    fn quote_round_trip() {
        let arg = b"a \"b\"\\\n\x00\xff".to_vec();
        let mut q = Vec::new();
        quote_arg(&arg, &mut q);
        assert_eq!(split_args(&q).unwrap(), vec![arg]);
    }
}
