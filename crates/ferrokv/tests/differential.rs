//! Differential tests: the same command scripts run against Debian's redis-server and
//! ferrokv, and the raw reply bytes must be identical. This is how error strings, number
//! formatting and reply shapes stay exactly Redis's.
//!
//! Script syntax (tests/diff/*.txt): one command per line in redis-cli quoting; `#`
//! comments; a line may start with modifiers:
//! - `@unordered` compare the reply's elements as a multiset (Redis's dict order is random);
//! - `@pairs` compare a flat key/value reply as a set of pairs (CONFIG GET);
//! - `@replies N` the command produces N replies (e.g. SUBSCRIBE a b c);
//! - `@resp3` switch both connections to RESP3 (`HELLO 3`) for the rest of the script, or
//!   until `@resp2` switches them back. The HELLO replies are not compared (they hold the
//!   client id); either may stand alone on a line or prefix a command.

mod common;
use common::*;
use ferrokv_resp::Frame;

fn normalize(raw: &[u8], unordered: bool, pairs: bool) -> String {
    if !unordered && !pairs {
        return String::from_utf8_lossy(raw).into_owned();
    }
    fn canon(f: &Frame) -> String {
        let mut out = Vec::new();
        match f {
            Frame::Array(v) | Frame::Set(v) => {
                let mut parts: Vec<String> = v.iter().map(canon).collect();
                parts.sort();
                return format!("[{}]", parts.join(","));
            }
            Frame::Map(kv) => {
                let mut parts: Vec<String> = kv.iter().map(|(k, v)| format!("{}={}", canon(k), canon(v))).collect();
                parts.sort();
                return format!("{{{}}}", parts.join(","));
            }
            other => other.encode(&mut out),
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    let (f, _) = Frame::decode(raw).expect("decodes").expect("complete");
    // Flat RESP2 maps (CONFIG GET) are compared as sets of pairs.
    if let (true, Frame::Array(v)) = (pairs, &f) {
        if v.len() % 2 == 0 {
            let mut pairs: Vec<String> = v.chunks(2).map(|p| format!("{}={}", canon(&p[0]), canon(&p[1]))).collect();
            pairs.sort();
            return pairs.join(",");
        }
    }
    canon(&f)
}

/// Sends `HELLO <proto>` on both connections and checks that both accepted it.
fn switch_protocol(name: &str, line_no: usize, conns: [&mut Raw; 2], proto: &str) {
    let mut wire = Vec::new();
    ferrokv_resp::encode_command(&mut wire, [&b"HELLO"[..], proto.as_bytes()]);
    for (who, c) in ["redis", "ferrokv"].into_iter().zip(conns) {
        c.send(&wire);
        let r = c.read_reply().unwrap_or_else(|| panic!("{name}:{line_no}: {who} closed on HELLO {proto}"));
        let (f, _) = Frame::decode(&r).expect("decodes").expect("complete");
        assert!(matches!(f, Frame::Map(_) | Frame::Array(_)), "{name}:{line_no}: {who} refused HELLO {proto}: {f:?}");
    }
}

fn run_script(name: &str, text: &str) {
    let Some(redis) = Server::start_redis(&[]) else {
        return;
    };
    let fk = Server::start(&[]);
    let (mut a, mut b) = (redis.raw(), fk.raw());
    for (i, line) in text.lines().enumerate() {
        let mut line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (mut unordered, mut pairs, mut replies) = (false, false, 1usize);
        loop {
            if let Some(rest) = line.strip_prefix("@unordered ") {
                unordered = true;
                line = rest.trim_start();
            } else if let Some(rest) = line.strip_prefix("@pairs ") {
                pairs = true;
                line = rest.trim_start();
            } else if let Some(rest) = strip_modifier(line, "@resp3") {
                switch_protocol(name, i + 1, [&mut a, &mut b], "3");
                line = rest;
            } else if let Some(rest) = strip_modifier(line, "@resp2") {
                switch_protocol(name, i + 1, [&mut a, &mut b], "2");
                line = rest;
            } else if let Some(rest) = line.strip_prefix("@replies ") {
                let (n, rest) = rest.split_once(' ').expect("@replies N command");
                replies = n.parse().expect("@replies N");
                line = rest.trim_start();
            } else {
                break;
            }
        }
        if line.is_empty() {
            continue;
        }
        let args = ferrokv_resp::args::split_args(line.as_bytes()).expect("script line parses");
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        let mut wire = Vec::new();
        ferrokv_resp::encode_command(&mut wire, refs.iter().copied());
        a.send(&wire);
        b.send(&wire);
        for r in 0..replies {
            let ra = a.read_reply().unwrap_or_else(|| panic!("{name}:{}: redis closed on `{line}`", i + 1));
            let rb = b.read_reply().unwrap_or_else(|| panic!("{name}:{}: ferrokv closed on `{line}`", i + 1));
            let (na, nb) = (normalize(&ra, unordered, pairs), normalize(&rb, unordered, pairs));
            assert_eq!(
                nb,
                na,
                "\n{name}:{} `{line}` (reply {}):\n  redis:   {:?}\n  ferrokv: {:?}\n",
                i + 1,
                r + 1,
                na,
                nb
            );
        }
    }
}

/// `line` without a leading modifier `word` (alone, or followed by a space and more).
fn strip_modifier<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(word)?;
    if rest.is_empty() {
        return Some(rest);
    }
    rest.strip_prefix(' ').map(str::trim_start)
}

macro_rules! scripts {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_script(stringify!($name), include_str!(concat!("diff/", stringify!($name), ".txt")));
            }
        )*
    };
}

scripts!(
    strings,
    bits,
    keys,
    expire,
    errors,
    transactions,
    pubsub,
    connection,
    server,
    hashes,
    sets,
    lists,
    zsets,
    wrongtype,
    encodings,
);
