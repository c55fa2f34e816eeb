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
//!   client id); either may stand alone on a line or prefix a command;
//! - `@cN` (N = 2..9, first on the line) sends the line from a second, third… client
//!   instead of the first (opened on both servers when first named), for what needs
//!   another client: a write that fails a WATCH, a CONFIG SET between MULTI and EXEC.
//!   `@resp3`/`@resp2` after it switch that client.

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
    // clients[n] is the (redis, ferrokv) pair of connections of client n + 1.
    let mut clients = vec![(redis.raw(), fk.raw())];
    for (i, line) in text.lines().enumerate() {
        let mut line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut client = 0;
        if let Some(n) = line.strip_prefix("@c").and_then(|r| r.split(' ').next()).and_then(|n| n.parse::<usize>().ok())
        {
            assert!((2..=9).contains(&n), "{name}:{}: clients are @c2..@c9", i + 1);
            while clients.len() < n {
                clients.push((redis.raw(), fk.raw()));
            }
            client = n - 1;
            line = line.split_once(' ').map_or("", |(_, rest)| rest.trim_start());
        }
        let (a, b) = &mut clients[client];
        let (mut unordered, mut pairs, mut replies) = (false, false, 1usize);
        loop {
            if let Some(rest) = line.strip_prefix("@unordered ") {
                unordered = true;
                line = rest.trim_start();
            } else if let Some(rest) = line.strip_prefix("@pairs ") {
                pairs = true;
                line = rest.trim_start();
            } else if let Some(rest) = strip_modifier(line, "@resp3") {
                switch_protocol(name, i + 1, [&mut *a, &mut *b], "3");
                line = rest;
            } else if let Some(rest) = strip_modifier(line, "@resp2") {
                switch_protocol(name, i + 1, [&mut *a, &mut *b], "2");
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
    bitfield,
    hyperloglog,
    geo,
    introspection,
    keys,
    expire,
    errors,
    transactions,
    pubsub,
    sharded_pubsub,
    connection,
    server,
    hashes,
    sets,
    lists,
    zsets,
    wrongtype,
    encodings,
    sort,
    exec_ends,
    watch,
    reply_mode,
    debug,
    scripting,
    functions,
    scripting_libs,
    streams,
    acl,
    tracking,
    migrate,
);

/// A seeded generator (splitmix64): the same seed gives the same command sequence.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

const KEYS: &[&str] = &["k1", "k2", "k3"];
const MEMBERS: &[&str] = &["a", "b", "c", "d", "e", "1", "2", "3", "-5", "10", "abcdefghij"];
const NUMS: &[&str] =
    &["0", "1", "-1", "2", "3", "1.5", "-2.5", "inf", "-inf", "nan", "x", "100", "9223372036854775807"];
const INDEXES: &[&str] = &["0", "1", "-1", "2", "-2", "5", "-5", "100", "x"];
const SCORES: &[&str] = &["-inf", "+inf", "0", "1", "(1", "2", "(2", "3", "5", "(5", "x", "nan"];
const ENDS: &[&str] = &["left", "right"];

/// One random command over three keys: every type family's commands and SORT (wrong types
/// included, as keys change type), thresholds lowered and raised at random so encodings
/// convert mid-sequence. Placeholders: K key, M member, N number, I index, S score bound,
/// E list end; anything else is literal. No lex ranges: over members with different
/// scores Redis leaves them unspecified (a skiplist answers by its random level layout).
fn random_command(g: &mut Gen) -> Vec<String> {
    const TEMPLATES: &[&str] = &[
        "LPUSH K M M",
        "RPUSH K M",
        "LPOP K",
        "RPOP K I",
        "LRANGE K I I",
        "LINDEX K I",
        "LSET K I M",
        "LINSERT K BEFORE M M",
        "LINSERT K AFTER M M",
        "LREM K I M",
        "LTRIM K I I",
        "LPOS K M RANK I",
        "LPOS K M COUNT I MAXLEN I",
        "LMOVE K K E E",
        "LMPOP 2 K K E COUNT I",
        "LLEN K",
        "RPOPLPUSH K K",
        "HSET K M M",
        "HSET K M N M M",
        "HSETNX K M M",
        "HGET K M",
        "HDEL K M M",
        "HLEN K",
        "HINCRBY K M N",
        "HINCRBYFLOAT K M N",
        "HSTRLEN K M",
        "HEXISTS K M",
        "HGETALL K",
        "HMGET K M M",
        "HKEYS K",
        "SADD K M M",
        "SREM K M",
        "SISMEMBER K M",
        "SMISMEMBER K M M",
        "SCARD K",
        "SMEMBERS K",
        "SMOVE K K M",
        "SINTER K K",
        "SUNION K K",
        "SDIFF K K",
        "SINTERSTORE K K K",
        "SUNIONSTORE K K K",
        "SDIFFSTORE K K K",
        "SINTERCARD 2 K K LIMIT I",
        "ZADD K N M",
        "ZADD K NX N M",
        "ZADD K XX CH N M",
        "ZADD K GT N M",
        "ZADD K LT INCR N M",
        "ZINCRBY K N M",
        "ZREM K M M",
        "ZSCORE K M",
        "ZMSCORE K M M",
        "ZRANK K M",
        "ZREVRANK K M",
        "ZCARD K",
        "ZCOUNT K S S",
        "ZRANGE K I I WITHSCORES",
        "ZRANGE K S S BYSCORE LIMIT I I",
        "ZRANGEBYSCORE K S S WITHSCORES",
        "ZREVRANGEBYSCORE K S S",
        "ZREMRANGEBYRANK K I I",
        "ZREMRANGEBYSCORE K S S",
        "ZPOPMIN K I",
        "ZPOPMAX K",
        "ZMPOP 2 K K MIN COUNT I",
        "ZUNIONSTORE K 2 K K WEIGHTS N N",
        "ZINTERSTORE K 2 K K AGGREGATE MAX",
        "ZDIFFSTORE K 2 K K",
        "ZRANGESTORE K K I I",
        "ZUNION 2 K K WITHSCORES",
        "ZINTER 2 K K WITHSCORES",
        "ZDIFF 2 K K WITHSCORES",
        "ZINTERCARD 2 K K",
        "SORT K",
        "SORT K ALPHA DESC LIMIT I I",
        "SORT_RO K DESC",
        "SORT K ALPHA STORE K",
        "SORT K LIMIT I I STORE K",
        "OBJECT ENCODING K",
        "TYPE K",
        "DEL K",
        "COPY K K REPLACE",
        "RENAME K K",
        "SET K M",
        "DEBUG DIGEST-VALUE K",
        "CONFIG SET hash-max-listpack-entries I",
        "CONFIG SET zset-max-listpack-entries I",
        "CONFIG SET set-max-intset-entries I",
        "CONFIG SET hash-max-listpack-value I",
        "CONFIG SET zset-max-listpack-value I",
    ];
    let t = g.pick(TEMPLATES);
    t.split(' ')
        .map(|w| {
            let from = match w {
                "K" => KEYS,
                "M" => MEMBERS,
                "N" => NUMS,
                "I" => INDEXES,
                "S" => SCORES,
                "E" => ENDS,
                _ => return w.to_string(),
            };
            g.pick(from).to_string()
        })
        .collect()
}

/// Random sequences of type commands (in RESP2, then RESP3), each reply byte-compared with redis-server's
/// (replies whose order is a hash table's are compared as multisets). A failure names
/// the seed and shows the commands leading to it.
#[test]
fn random_type_commands() {
    let Some(redis) = Server::start_redis(&[]) else {
        return;
    };
    let fk = Server::start(&[]);
    const UNORDERED: &[&str] = &["SMEMBERS", "HGETALL", "HKEYS", "SUNION", "SINTER", "SDIFF"];
    for seed in 1..=6u64 {
        let (mut a, mut b) = (redis.raw(), fk.raw());
        if seed > 3 {
            // The second half speaks RESP3: maps, sets, doubles and nulls of every reply.
            switch_protocol("random", seed as usize, [&mut a, &mut b], "3");
        }
        for c in [&mut a, &mut b] {
            assert_eq!(c.cmd(&[b"FLUSHALL"]), b"+OK\r\n");
            for (name, value) in [
                ("hash-max-listpack-entries", "128"),
                ("zset-max-listpack-entries", "128"),
                ("set-max-intset-entries", "512"),
                ("hash-max-listpack-value", "64"),
                ("zset-max-listpack-value", "64"),
            ] {
                assert_eq!(c.cmd(&[b"CONFIG", b"SET", name.as_bytes(), value.as_bytes()]), b"+OK\r\n");
            }
        }
        let mut g = Gen(seed);
        let mut history: Vec<String> = Vec::new();
        for _ in 0..2000 {
            let argv = random_command(&mut g);
            history.push(argv.join(" "));
            let mut wire = Vec::new();
            ferrokv_resp::encode_command(&mut wire, argv.iter().map(|s| s.as_bytes()));
            a.send(&wire);
            b.send(&wire);
            let ra = a.read_reply().expect("redis replied");
            let rb = b.read_reply().expect("ferrokv replied");
            let unordered = UNORDERED.contains(&argv[0].as_str());
            let (na, nb) = (normalize(&ra, unordered, false), normalize(&rb, unordered, false));
            if na != nb {
                let recent = history.iter().rev().take(40).rev().cloned().collect::<Vec<_>>().join("\n  ");
                panic!("seed {seed}, command {}:\n  {recent}\nredis:   {na:?}\nferrokv: {nb:?}", history.len());
            }
        }
    }
}

/// DEBUG OBJECT's `encoding`, `serializedlength` (the value's size in an RDB file) and,
/// for lists built by appending, the quicklist statistics (`ql_*`) equal redis-server's;
/// the address and LRU clock are not compared. Values stay under 21 bytes: longer strings are LZF
/// compressed, and ferrokv's compressor, though its output is valid LZF, does not pick the
/// same matches as Redis's, so sizes may differ by a few bytes.
#[test]
fn debug_object_sizes() {
    let Some(redis) = Server::start_redis(&[]) else {
        return;
    };
    let fk = Server::start(&[]);
    let setup: &[&[&str]] = &[
        &["SET", "s1", "bar"],
        &["SET", "s2", "12345"],
        &["SET", "s3", "12345678901234567890"],
        &["APPEND", "s5", "c10"],
        &["RPUSH", "l", "a", "b", "1", "2"],
        &["SADD", "si", "1", "2", "3"],
        &["SADD", "ss", "a", "b", "c"],
        &["HSET", "hl", "a", "1", "b", "2"],
        &["ZADD", "zl", "1", "a", "2.5", "b"],
    ];
    let fields = |line: &[u8]| {
        let line = String::from_utf8_lossy(line).into_owned();
        let names = ["encoding:", "serializedlength:", "ql_nodes:", "ql_avg_node:", "ql_listpack_max:"];
        let more = ["ql_compressed:", "ql_uncompressed_size:"];
        let pick = |name: &str| line.split(' ').find(|f| f.starts_with(name)).map(str::to_string);
        names.iter().chain(more.iter()).map(|n| pick(n)).collect::<Vec<_>>()
    };
    // Lists spanning several quicklist nodes: small elements, 300-byte ones, and one
    // past the 8 KiB node limit (a node of its own).
    let big: Vec<String> = (0..3000)
        .map(|i| if i % 97 == 0 { format!("{i:0>300}") } else { format!("e{i}") })
        .chain(std::iter::once("x".repeat(9000)))
        .chain((0..10).map(|i| i.to_string()))
        .collect();
    let (mut a, mut b) = (redis.raw(), fk.raw());
    for c in [&mut a, &mut b] {
        for args in setup {
            let argv: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
            c.cmd(&argv);
        }
    }
    let compare = |a: &mut Raw, b: &mut Raw, keys: &[&str]| {
        for key in keys {
            let argv = [&b"DEBUG"[..], b"OBJECT", key.as_bytes()];
            let (ra, rb) = (a.cmd(&argv), b.cmd(&argv));
            let (mut fa, mut fb) = (fields(&ra), fields(&rb));
            if key.starts_with("lcompressed") {
                // Redis saves a compressed list's inner nodes as the LZF blobs it holds
                // even with rdbcompression off; ferrokv writes them plain (both load).
                fa.remove(1);
                fb.remove(1);
            }
            assert_eq!(fb, fa, "{key}: redis {:?}", String::from_utf8_lossy(&ra));
        }
    };
    compare(&mut a, &mut b, &["s1", "s2", "s3", "s5", "l", "si", "ss", "hl", "zl"]);
    // On both servers: CONFIG SET `setting`, RPUSH `elems` to `key`, then compare `key`.
    // (Redis keeps a list's fill and compression from its creation; ferrokv reports the
    // current settings, so each list is compared right after it is made.)
    let list_under = |a: &mut Raw, b: &mut Raw, setting: [&str; 2], key: &str, elems: &[String]| {
        for c in [&mut *a, &mut *b] {
            c.cmd(&[b"CONFIG", b"SET", setting[0].as_bytes(), setting[1].as_bytes()]);
            let mut argv: Vec<&[u8]> = vec![b"RPUSH", key.as_bytes()];
            argv.extend(elems.iter().map(|s| s.as_bytes()));
            c.cmd(&argv);
        }
        compare(a, b, &[key]);
    };
    // Multi-node lists hold long listpacks, which are LZF-compressed unless told not to.
    list_under(&mut a, &mut b, ["rdbcompression", "no"], "lbig", &big);
    list_under(&mut a, &mut b, ["list-max-listpack-size", "7"], "lcount", &big[..100]);
    list_under(&mut a, &mut b, ["list-compress-depth", "1"], "lcompressed", &big[..100]);
}

/// The reference must be Redis. The README suggests `ln -s …/ferrokv
/// /usr/local/bin/redis-server`; a harness that took redis-server from PATH then compared
/// ferrokv with itself and passed. Redis's programs are found by FERROKV_REDIS_* (default
/// /usr/bin/…) and a ferrokv binary there is refused, whatever it is called.
#[test]
fn the_reference_redis_is_never_ferrokv() {
    let dir = TempDir::new("posing");
    let ferrokv = std::path::Path::new(env!("CARGO_BIN_EXE_ferrokv"));
    let programs =
        ["redis-server", "redis-cli", "redis-sentinel", "redis-benchmark", "redis-check-rdb", "redis-check-aof"];
    for program in programs {
        let link = dir.path().join(program);
        std::os::unix::fs::symlink(ferrokv, &link).unwrap();
        assert!(ferrokv_posing_as_redis(&link).is_some(), "a link named {program} was not recognized as ferrokv");
        let refused = std::panic::catch_unwind(|| redis_tool_at(program, link.clone())).expect_err("accepted");
        let msg = refused.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("is ferrokv, not Redis") && msg.contains(&redis_tool_variable(program)), "{msg}");
    }
    let copy = dir.path().join("redis-server-copy");
    std::fs::copy(ferrokv, &copy).unwrap();
    assert!(ferrokv_posing_as_redis(&copy).is_some(), "a renamed copy was not recognized as ferrokv");
    // PATH plays no part: a directory with ferrokv as redis-server is not where the tools are looked for.
    for program in programs {
        let var = redis_tool_variable(program);
        let want = std::env::var_os(&var)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| format!("/usr/bin/{program}").into());
        assert_eq!(redis_tool_path(program), want, "{var}");
        // Debian's programs (when installed) pass the check.
        if let Some(path) = redis_tool(program) {
            assert_eq!(ferrokv_posing_as_redis(&path), None, "{}", path.display());
        }
    }
}

/// Random BITFIELD commands (several operations each, every width, plain and `#` offsets
/// that straddle bytes, values at and past every limit, the three overflow modes) over two
/// keys, each reply and then the string's bytes compared with redis-server's.
#[test]
fn random_bitfield_commands() {
    let Some(redis) = Server::start_redis(&[]) else {
        return;
    };
    let fk = Server::start(&[]);
    const TYPES: &[&str] = &[
        "i1", "i2", "i7", "i8", "i9", "i16", "i31", "i33", "i63", "i64", "u1", "u2", "u7", "u8", "u9", "u31", "u33",
        "u63",
    ];
    const VALUES: &[&str] = &[
        "0",
        "1",
        "-1",
        "2",
        "-2",
        "100",
        "-100",
        "127",
        "128",
        "-128",
        "-129",
        "255",
        "256",
        "65535",
        "-65536",
        "4294967295",
        "4294967296",
        "-2147483649",
        "9223372036854775807",
        "-9223372036854775808",
        "4611686018427387903",
        "-4611686018427387904",
        "4611686018427387904",
    ];
    const OVERFLOWS: &[&str] = &["WRAP", "SAT", "FAIL"];
    for seed in 1..=4u64 {
        let (mut a, mut b) = (redis.raw(), fk.raw());
        if seed > 2 {
            switch_protocol("bitfield", seed as usize, [&mut a, &mut b], "3");
        }
        for c in [&mut a, &mut b] {
            assert_eq!(c.cmd(&[b"FLUSHALL"]), b"+OK\r\n");
        }
        let mut g = Gen(seed * 7919);
        let mut history: Vec<String> = Vec::new();
        for _ in 0..1500 {
            let key = g.pick(&["b1", "b2"]).to_string();
            let mut argv = vec![g.pick(&["BITFIELD", "BITFIELD", "BITFIELD", "BITFIELD_RO"]).to_string(), key.clone()];
            for _ in 0..1 + g.next() % 4 {
                let ty = g.pick(TYPES);
                let width: u64 = ty[1..].parse().expect("width");
                let offset = match g.next() % 4 {
                    0 => format!("#{}", g.next() % 6),
                    _ => (g.next() % (200 - width.min(150))).to_string(),
                };
                match g.next() % 5 {
                    0 => argv.extend(["GET".into(), ty.into(), offset]),
                    1 => argv.extend(["OVERFLOW".into(), g.pick(OVERFLOWS).into()]),
                    2 => argv.extend(["SET".into(), ty.into(), offset, g.pick(VALUES).into()]),
                    _ => argv.extend(["INCRBY".into(), ty.into(), offset, g.pick(VALUES).into()]),
                }
            }
            for cmd in [argv, vec!["GET".to_string(), key]] {
                history.push(cmd.join(" "));
                let mut wire = Vec::new();
                ferrokv_resp::encode_command(&mut wire, cmd.iter().map(|s| s.as_bytes()));
                a.send(&wire);
                b.send(&wire);
                let ra = a.read_reply().expect("redis replied");
                let rb = b.read_reply().expect("ferrokv replied");
                if ra != rb {
                    let recent = history.iter().rev().take(20).rev().cloned().collect::<Vec<_>>().join("\n  ");
                    panic!(
                        "seed {seed}, command {}:\n  {recent}\nredis:   {:?}\nferrokv: {:?}",
                        history.len(),
                        String::from_utf8_lossy(&ra),
                        String::from_utf8_lossy(&rb)
                    );
                }
            }
        }
    }
}

/// Random PFADD / PFCOUNT / PFMERGE / PFDEBUG TODENSE sequences over three keys, with
/// `hll-sparse-max-bytes` changed at random so sparse values split, merge and turn dense
/// at different sizes; after each command the touched key's bytes are compared too (the
/// sparse opcodes and the cached cardinality must be Redis's to the byte).
#[test]
fn random_hyperloglog_commands() {
    let Some(redis) = Server::start_redis(&[]) else {
        return;
    };
    let fk = Server::start(&[]);
    for seed in 1..=3u64 {
        let (mut a, mut b) = (redis.raw(), fk.raw());
        for c in [&mut a, &mut b] {
            assert_eq!(c.cmd(&[b"FLUSHALL"]), b"+OK\r\n");
        }
        let mut g = Gen(seed * 104_729);
        let mut history: Vec<String> = Vec::new();
        for _ in 0..800 {
            let key = g.pick(&["h1", "h2", "h3"]).to_string();
            let argv: Vec<String> = match g.next() % 10 {
                0 => vec!["PFCOUNT".into(), key.clone()],
                1 => vec!["PFCOUNT".into(), key.clone(), g.pick(&["h1", "h2", "h3", "none"]).into()],
                2 => vec!["PFMERGE".into(), key.clone(), g.pick(&["h1", "h2", "h3", "none"]).into()],
                3 if g.next().is_multiple_of(8) => vec!["PFDEBUG".into(), "TODENSE".into(), key.clone()],
                4 => vec![
                    "CONFIG".into(),
                    "SET".into(),
                    "hll-sparse-max-bytes".into(),
                    g.pick(&["0", "30", "200", "1000", "3000"]).into(),
                ],
                _ => {
                    let mut v = vec!["PFADD".to_string(), key.clone()];
                    let n = g.next() % 40;
                    let base = g.next() % 3000;
                    v.extend((0..n).map(|i| format!("el:{}", base + i * (1 + g.next() % 7))));
                    v
                }
            };
            for cmd in [argv, vec!["GET".to_string(), key]] {
                history.push(cmd.iter().take(6).cloned().collect::<Vec<_>>().join(" "));
                let mut wire = Vec::new();
                ferrokv_resp::encode_command(&mut wire, cmd.iter().map(|s| s.as_bytes()));
                a.send(&wire);
                b.send(&wire);
                let ra = a.read_reply().expect("redis replied");
                let rb = b.read_reply().expect("ferrokv replied");
                if ra != rb {
                    let recent = history.iter().rev().take(12).rev().cloned().collect::<Vec<_>>().join("\n  ");
                    let show = |r: &[u8]| String::from_utf8_lossy(&r[..r.len().min(200)]).into_owned();
                    panic!(
                        "seed {seed}, command {}:\n  {recent}\nredis:   {:?}\nferrokv: {:?}",
                        history.len(),
                        show(&ra),
                        show(&rb)
                    );
                }
            }
        }
    }
}

/// Random geo sequences: points scattered around anchors chosen to hit the hard places
/// (the antimeridian, near the poles, the equator and prime meridian, Sicily), searched
/// with every form and option at radii from 0 to thousands of km, compared byte for byte
/// (RESP2 for the first seeds, RESP3 for the others). Coordinates are random to the
/// microdegree, so no two points tie on distance (a COUNT cut among ties is Redis's
/// partial quicksort's to decide).
#[test]
fn random_geo_commands() {
    let Some(redis) = Server::start_redis(&[]) else {
        return;
    };
    let fk = Server::start(&[]);
    const ANCHORS: &[(f64, f64)] = &[
        (13.361389, 38.115556),
        (0.0, 0.0),
        (179.99, 0.5),
        (-179.99, -0.5),
        (179.5, 60.0),
        (0.5, 84.9),
        (-120.0, -84.5),
        (-70.0, -50.0),
        (100.0, 67.0),
        (-45.0, 81.0),
    ];
    const UNITS: &[&str] = &["m", "km", "ft", "mi", "KM"];
    const KEYS: &[&str] = &["g1", "g1", "g1", "g2"];
    fn coord(g: &mut Gen, scale_deg: f64) -> (String, String) {
        let (alon, alat) = ANCHORS[(g.next() % ANCHORS.len() as u64) as usize];
        let unit = |g: &mut Gen| (g.next() % 2_000_001) as f64 / 1_000_000.0 - 1.0;
        let lon = (alon + unit(g) * scale_deg).clamp(-180.0, 180.0);
        let lat = (alat + unit(g) * scale_deg).clamp(-85.05112878, 85.05112878);
        (format!("{lon:.6}"), format!("{lat:.6}"))
    }
    fn scale(g: &mut Gen) -> f64 {
        [0.001, 0.05, 1.0, 5.0, 30.0][(g.next() % 5) as usize]
    }
    fn point(g: &mut Gen) -> (String, String) {
        let s = scale(g);
        coord(g, s)
    }
    fn radius(g: &mut Gen) -> String {
        match g.next() % 8 {
            0 => "0".into(),
            1 => format!("{}", g.next() % 100),
            _ => format!("{}", 10f64.powf((g.next() % 700) as f64 / 100.0).round()),
        }
    }
    fn member(g: &mut Gen) -> String {
        format!("m{}", g.next() % 120)
    }
    fn options(g: &mut Gen, argv: &mut Vec<String>, allow_with: bool) {
        if allow_with {
            for opt in ["WITHDIST", "WITHHASH", "WITHCOORD"] {
                if g.next().is_multiple_of(3) {
                    argv.push(opt.into());
                }
            }
        }
        match g.next() % 4 {
            0 => argv.push("ASC".into()),
            1 => argv.push("DESC".into()),
            _ => {}
        }
        if g.next().is_multiple_of(3) {
            argv.extend(["COUNT".into(), (1 + g.next() % 8).to_string()]);
            if g.next().is_multiple_of(3) {
                argv.push("ANY".into());
            }
        }
    }
    for seed in 1..=4u64 {
        let (mut a, mut b) = (redis.raw(), fk.raw());
        if seed > 2 {
            switch_protocol("geo", seed as usize, [&mut a, &mut b], "3");
        }
        for c in [&mut a, &mut b] {
            assert_eq!(c.cmd(&[b"FLUSHALL"]), b"+OK\r\n");
        }
        let mut g = Gen(seed * 15_485_863);
        let mut history: Vec<String> = Vec::new();
        // Searches that found something, so the sequence is known to exercise results.
        let mut nonempty_searches = 0;
        for step in 0..2500 {
            let key = g.pick(KEYS).to_string();
            let mut argv: Vec<String>;
            let mut follow: Option<Vec<String>> = None;
            let roll = if step < 40 { 0 } else { g.next() % 20 };
            match roll {
                0..=4 => {
                    argv = vec!["GEOADD".into(), key.clone()];
                    match g.next() % 8 {
                        0 => argv.push("NX".into()),
                        1 => argv.push("XX".into()),
                        2 => argv.push("CH".into()),
                        _ => {}
                    }
                    let s = scale(&mut g);
                    for _ in 0..1 + g.next() % 6 {
                        let (lon, lat) = coord(&mut g, s);
                        argv.extend([lon, lat, member(&mut g)]);
                    }
                }
                5 => {
                    argv = vec!["GEOPOS".into(), key.clone(), member(&mut g), member(&mut g)];
                }
                6 => {
                    argv = vec!["GEOHASH".into(), key.clone(), member(&mut g), member(&mut g)];
                }
                7 => {
                    argv = vec!["GEODIST".into(), key.clone(), member(&mut g), member(&mut g)];
                    if g.next().is_multiple_of(2) {
                        argv.push(g.pick(UNITS).into());
                    }
                }
                8..=10 => {
                    let ro = g.next().is_multiple_of(2);
                    let (lon, lat) = point(&mut g);
                    argv = vec![if ro { "GEORADIUS_RO" } else { "GEORADIUS" }.into(), key.clone(), lon, lat];
                    argv.extend([radius(&mut g), g.pick(UNITS).into()]);
                    options(&mut g, &mut argv, true);
                }
                11 | 12 => {
                    let ro = g.next().is_multiple_of(2);
                    argv = vec![if ro { "GEORADIUSBYMEMBER_RO" } else { "GEORADIUSBYMEMBER" }.into(), key.clone()];
                    argv.extend([member(&mut g), radius(&mut g), g.pick(UNITS).into()]);
                    options(&mut g, &mut argv, true);
                }
                13..=17 => {
                    let store = roll == 17;
                    argv = if store {
                        vec!["GEOSEARCHSTORE".into(), "dst".into(), key.clone()]
                    } else {
                        vec!["GEOSEARCH".into(), key.clone()]
                    };
                    if g.next().is_multiple_of(2) {
                        argv.extend(["FROMMEMBER".into(), member(&mut g)]);
                    } else {
                        let (lon, lat) = point(&mut g);
                        argv.extend(["FROMLONLAT".into(), lon, lat]);
                    }
                    if g.next().is_multiple_of(2) {
                        argv.extend(["BYRADIUS".into(), radius(&mut g), g.pick(UNITS).into()]);
                    } else {
                        argv.extend(["BYBOX".into(), radius(&mut g), radius(&mut g), g.pick(UNITS).into()]);
                    }
                    options(&mut g, &mut argv, !store);
                    if store {
                        if g.next().is_multiple_of(2) {
                            argv.push("STOREDIST".into());
                        }
                        follow =
                            Some(vec!["ZRANGE".into(), "dst".into(), "0".into(), "-1".into(), "WITHSCORES".into()]);
                    }
                }
                18 => {
                    let (lon, lat) = point(&mut g);
                    argv = vec!["GEORADIUS".into(), key.clone(), lon, lat, radius(&mut g), g.pick(UNITS).into()];
                    options(&mut g, &mut argv, false);
                    argv.extend([g.pick(&["STORE", "STOREDIST"]).into(), "dst".into()]);
                    follow = Some(vec!["ZRANGE".into(), "dst".into(), "0".into(), "-1".into(), "WITHSCORES".into()]);
                }
                _ => {
                    argv = vec!["ZREM".into(), key.clone(), member(&mut g), member(&mut g)];
                }
            }
            for cmd in std::iter::once(argv).chain(follow) {
                history.push(cmd.join(" "));
                let mut wire = Vec::new();
                ferrokv_resp::encode_command(&mut wire, cmd.iter().map(|s| s.as_bytes()));
                a.send(&wire);
                b.send(&wire);
                let ra = a.read_reply().expect("redis replied");
                let rb = b.read_reply().expect("ferrokv replied");
                if ra != rb {
                    let recent = history.iter().rev().take(12).rev().cloned().collect::<Vec<_>>().join("\n  ");
                    panic!(
                        "seed {seed}, command {}:\n  {recent}\nredis:   {:?}\nferrokv: {:?}",
                        history.len(),
                        String::from_utf8_lossy(&ra),
                        String::from_utf8_lossy(&rb)
                    );
                }
                if cmd[0].starts_with("GEORADIUS") || cmd[0] == "GEOSEARCH" {
                    nonempty_searches += usize::from(ra.starts_with(b"*") && !ra.starts_with(b"*0\r\n"));
                }
            }
        }
        assert!(nonempty_searches > 150, "seed {seed}: only {nonempty_searches} searches found members");
    }
}
