//! Writing redis.conf lines: values are quoted only when the config parser would otherwise
//! split or unescape them, so generated files stay readable.

use ferrokv_resp::args::quoted;

/// One value as it must appear on a config line.
pub fn value(v: &str) -> String {
    let plain = !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\'' && b != b'\\');
    if plain {
        v.to_string()
    } else {
        quoted(v.as_bytes())
    }
}

/// A directive line: the name as is, each argument quoted if needed.
pub fn line(name: &str, args: &[&str]) -> String {
    let mut out = name.to_string();
    for a in args {
        out.push(' ');
        out.push_str(&value(a));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokv_resp::args::split_args;

    #[test]
    fn values_round_trip_through_the_config_parser() {
        for v in ["plain", "with space", "", "quo\"te", "back\\slash", "it's", "tab\there", "ünï"] {
            let l = line("requirepass", &[v]);
            let words = split_args(l.as_bytes()).expect("balanced");
            assert_eq!(words, vec![b"requirepass".to_vec(), v.as_bytes().to_vec()], "{l}");
        }
        assert_eq!(line("save", &["900", "1"]), "save 900 1");
        assert_eq!(line("save", &[""]), "save \"\"");
    }
}
