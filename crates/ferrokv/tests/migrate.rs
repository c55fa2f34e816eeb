//! MIGRATE between ferrokv and Debian's redis-server, in every direction: every type with
//! its TTL, COPY / REPLACE / KEYS / AUTH / AUTH2, the target's errors, unreachable and
//! silent targets, replies compared byte for byte with redis-server's for the same calls,
//! the DEL that replicas and the AOF see, the cached connection, and a key changed while
//! the target is answering (against a scripted target in the test).

mod common;

use common::{free_port, wait_until, Raw, Server};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn redis(args: &[&str]) -> Option<Server> {
    let s = Server::start_redis(args);
    if s.is_none() {
        eprintln!("SKIPPED: redis-server is not installed");
    }
    s
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn cmd(r: &mut Raw, args: &[&str]) -> String {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    text(&r.cmd(&a))
}

/// One key of each type and encoding (streams with a consumer group and a pending entry).
fn populate(r: &mut Raw) {
    let big: Vec<String> = (0..300).map(|i| format!("member-{i}")).collect();
    let mut script = vec![
        vec!["SET", "str", "hello"],
        vec!["SET", "int", "12345"],
        vec!["RPUSH", "list", "a", "b", "c"],
        vec!["HSET", "hash", "f1", "v1", "f2", "v2"],
        vec!["SADD", "intset", "1", "2", "3"],
        vec!["SADD", "set", "x", "y"],
        vec!["ZADD", "zset", "1", "a", "2.5", "b"],
        vec!["XADD", "stream", "1-1", "f", "v"],
        vec!["XADD", "stream", "2-1", "g", "w"],
        vec!["XGROUP", "CREATE", "stream", "grp", "0"],
        vec!["XREADGROUP", "GROUP", "grp", "alice", "COUNT", "1", "STREAMS", "stream", ">"],
        vec!["PFADD", "hll", "a", "b", "c"],
    ];
    let mut bigset = vec!["SADD", "bigset"];
    bigset.extend(big.iter().map(String::as_str));
    script.push(bigset);
    let mut bighash = vec!["HSET", "bighash"];
    for m in &big {
        bighash.push(m);
        bighash.push(m);
    }
    script.push(bighash);
    let mut bigz = vec!["ZADD", "bigzset"];
    for m in &big {
        bigz.push("1.5");
        bigz.push(m);
    }
    script.push(bigz);
    let mut biglist = vec!["RPUSH", "biglist"];
    biglist.extend(big.iter().map(String::as_str));
    script.push(biglist);
    for c in script {
        let reply = cmd(r, &c);
        assert!(!reply.starts_with('-'), "{c:?}: {reply}");
    }
}

const KEYS: &[&str] = &[
    "str", "int", "list", "hash", "intset", "set", "zset", "stream", "hll", "bigset", "bighash", "bigzset", "biglist",
];

fn digest(r: &mut Raw) -> String {
    cmd(r, &["DEBUG", "DIGEST"])
}

/// Every type moves from `src` to `dst`, keeps its TTL, and leaves the source. (Into db 0:
/// DEBUG DIGEST mixes in the db number.)
fn every_type(src: &Server, dst: &Server) {
    let (mut s, mut d) = (src.raw(), dst.raw());
    populate(&mut s);
    let before = digest(&mut s);
    assert_eq!(cmd(&mut s, &["SET", "ttl", "v", "PX", "100000"]), "+OK\r\n");
    let port = dst.port.to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
    args.extend(KEYS);
    assert_eq!(cmd(&mut s, &args), "+OK\r\n");
    assert_eq!(cmd(&mut s, &["DBSIZE"]), ":1\r\n");
    // The single-key form, with the TTL.
    assert_eq!(cmd(&mut s, &["MIGRATE", "127.0.0.1", &port, "ttl", "0", "5000"]), "+OK\r\n");
    assert_eq!(cmd(&mut s, &["DBSIZE"]), ":0\r\n");
    let pttl: i64 = cmd(&mut d, &["PTTL", "ttl"]).trim_start_matches(':').trim().parse().expect("PTTL");
    assert!((90_000..=100_000).contains(&pttl), "{pttl}");
    assert_eq!(cmd(&mut d, &["DEL", "ttl"]), ":1\r\n");
    // The same dataset, digest for digest.
    assert_eq!(digest(&mut d), before);
    assert!(cmd(&mut d, &["XPENDING", "stream", "grp"]).contains("alice"));
    assert_eq!(cmd(&mut d, &["PFCOUNT", "hll"]), ":3\r\n");
}

#[test]
fn every_type_moves_ferrokv_to_ferrokv() {
    every_type(&Server::start(&[]), &Server::start(&[]));
}

#[test]
fn every_type_moves_ferrokv_to_redis() {
    let Some(dst) = redis(&[]) else { return };
    every_type(&Server::start(&[]), &dst);
}

#[test]
fn every_type_moves_redis_to_ferrokv() {
    let Some(src) = redis(&[]) else { return };
    every_type(&src, &Server::start(&[]));
}

/// Runs the same calls with each source (the target is of the same kind as the source's
/// peer in the pair) and returns the replies, so ferrokv's can be compared with Redis's.
fn scenario(src: &Server, dst: &Server, calls: &[Vec<String>]) -> Vec<String> {
    let (mut s, mut d) = (src.raw(), dst.raw());
    let mut replies = Vec::new();
    for call in calls {
        let (on_dst, args) = match call.first().map(String::as_str) {
            Some("@dst") => (true, &call[1..]),
            _ => (false, &call[..]),
        };
        let args: Vec<String> = args.iter().map(|a| a.replace("$PORT", &dst.port.to_string())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        replies.push(cmd(if on_dst { &mut d } else { &mut s }, &args));
    }
    replies
}

fn calls(lines: &[&str]) -> Vec<Vec<String>> {
    lines
        .iter()
        .map(|l| l.split(' ').map(|w| if w == "''" { String::new() } else { w.to_string() }).collect())
        .collect()
}

/// Replies of ferrokv and Redis as sources (each into a ferrokv target and a Redis target
/// started with `target_args`) must be equal.
fn compare(lines: &[&str], target_args: &[&str]) {
    let Some(redis_src) = redis(&[]) else { return };
    let Some(redis_dst) = redis(target_args) else { return };
    let expected = scenario(&redis_src, &redis_dst, &calls(lines));
    let got = scenario(&Server::start(&[]), &Server::start(target_args), &calls(lines));
    for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
        assert_eq!(g, e, "call {i}: {}", lines[i]);
    }
}

#[test]
fn copy_replace_keys_and_busykey_match_redis() {
    compare(
        &[
            "SET k v1",
            "MIGRATE 127.0.0.1 $PORT k 0 5000 COPY",
            "EXISTS k",
            "@dst GET k",
            "MIGRATE 127.0.0.1 $PORT k 0 5000",
            "EXISTS k",
            "SET k v2",
            "MIGRATE 127.0.0.1 $PORT k 0 5000 REPLACE",
            "EXISTS k",
            "@dst GET k",
            "MSET a 1 b 2 c 3",
            "@dst SET b old",
            "MIGRATE 127.0.0.1 $PORT '' 0 5000 KEYS a b c missing",
            "EXISTS a b c",
            "@dst MGET a b c",
            "MIGRATE 127.0.0.1 $PORT '' 0 5000 COPY REPLACE KEYS b",
            "@dst GET b",
            "MIGRATE 127.0.0.1 $PORT '' 0 5000 KEYS nothing none",
            "MIGRATE 127.0.0.1 $PORT nothing 0 5000",
            "MIGRATE 127.0.0.1 $PORT b 7 5000",
            "@dst SELECT 7",
            "@dst GET b",
        ],
        &[],
    );
}

#[test]
fn argument_errors_match_redis() {
    compare(
        &[
            "SET k v",
            "MIGRATE 127.0.0.1 $PORT k 0 5000 KEYS k",
            "MIGRATE 127.0.0.1 $PORT k 0 5000 BOGUS",
            "MIGRATE 127.0.0.1 $PORT k 0 5000 AUTH",
            "MIGRATE 127.0.0.1 $PORT k 0 5000 AUTH2 user",
            "MIGRATE 127.0.0.1 $PORT k x 5000",
            "MIGRATE 127.0.0.1 $PORT k 0 x",
            "MIGRATE 127.0.0.1 $PORT k x y",
            "MIGRATE 127.0.0.1 $PORT k 0",
            "MIGRATE 127.0.0.1 $PORT '' 0 5000 KEYS",
            "MIGRATE 127.0.0.1 $PORT k 99 5000",
            "EXISTS k",
            "MIGRATE 127.0.0.1 $PORT '' 0 5000 KEYS",
            "COMMAND GETKEYS MIGRATE h p '' 0 5 COPY AUTH pw KEYS a b",
            "COMMAND GETKEYS MIGRATE h p k 0 5",
        ],
        &[],
    );
}

#[test]
fn auth_and_auth2_match_redis() {
    compare(
        &[
            "@dst AUTH secret",
            "@dst ACL SETUSER mover on >pw ~* +@all",
            "SET k v",
            "MIGRATE 127.0.0.1 $PORT k 0 5000",
            "EXISTS k",
            "MIGRATE 127.0.0.1 $PORT k 0 5000 AUTH wrong",
            "MIGRATE 127.0.0.1 $PORT k 0 5000 AUTH secret",
            "EXISTS k",
            "SET k2 v",
            "MIGRATE 127.0.0.1 $PORT k2 0 5000 AUTH2 mover nope",
            "MIGRATE 127.0.0.1 $PORT k2 0 5000 AUTH2 mover pw",
            "EXISTS k2",
            "@dst MGET k k2",
        ],
        &["--requirepass", "secret"],
    );
}

#[test]
fn unreachable_target_answers_ioerr_within_the_timeout() {
    let Some(redis_src) = redis(&[]) else { return };
    let src = Server::start(&[]);
    let dead = free_port().to_string();
    // A target that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port().to_string();
    for s in [&redis_src, &src] {
        let mut r = s.raw();
        assert_eq!(cmd(&mut r, &["SET", "k", "v"]), "+OK\r\n");
        let t = Instant::now();
        // Redis counts a refused connection as made, and fails writing.
        let reply = cmd(&mut r, &["MIGRATE", "127.0.0.1", &dead, "k", "0", "300"]);
        assert_eq!(reply, "-IOERR error or timeout writing to target instance\r\n");
        let reply = cmd(&mut r, &["MIGRATE", "", &dead, "k", "0", "300"]);
        assert_eq!(reply, "-IOERR error or timeout connecting to the client\r\n");
        assert!(t.elapsed() < Duration::from_secs(3));
        let t = Instant::now();
        let reply = cmd(&mut r, &["MIGRATE", "127.0.0.1", &silent_port, "k", "0", "300"]);
        assert_eq!(reply, "-IOERR error or timeout reading to target instance\r\n");
        let spent = t.elapsed();
        assert!(spent >= Duration::from_millis(250) && spent < Duration::from_secs(3), "{spent:?}");
        assert_eq!(cmd(&mut r, &["GET", "k"]), "$1\r\nv\r\n");
    }
}

/// A "target" that answers an endless line (no newline) must not make the source buffer it:
/// the read stops at Redis's line size and fails at once, long before the timeout, in the
/// normal path and inside MULTI/EXEC (where the engine lock is held meanwhile).
#[test]
fn a_target_sending_an_endless_line_fails_the_read_at_once() {
    let src = Server::start(&[]);
    let flood = TcpListener::bind("127.0.0.1:0").expect("bind");
    let flood_port = flood.local_addr().expect("addr").port().to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_feeding = stop.clone();
    flood.set_nonblocking(true).expect("nonblocking");
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        use std::sync::atomic::Ordering;
        // Every connection (the normal path's, its one retry, the one MULTI/EXEC opens) gets
        // 2 MB of 'x' and is then held open, so only a bounded read returns before the
        // timeout; bounded to 30 s in all.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut held = Vec::new();
        while !stop_feeding.load(Ordering::Relaxed) && Instant::now() < deadline {
            let Ok((mut conn, _)) = flood.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let _ = conn.set_nonblocking(false);
            let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..32 {
                if conn.write_all(&chunk).is_err() {
                    break;
                }
            }
            held.push(conn);
        }
    });
    let mut r = src.raw();
    assert_eq!(cmd(&mut r, &["SET", "k", "v"]), "+OK\r\n");
    let t = Instant::now();
    let reply = cmd(&mut r, &["MIGRATE", "127.0.0.1", &flood_port, "k", "0", "20000"]);
    assert_eq!(reply, "-IOERR error or timeout reading to target instance\r\n");
    assert_eq!(cmd(&mut r, &["MULTI"]), "+OK\r\n");
    assert_eq!(cmd(&mut r, &["MIGRATE", "127.0.0.1", &flood_port, "k", "0", "20000"]), "+QUEUED\r\n");
    let reply = cmd(&mut r, &["EXEC"]);
    assert_eq!(reply, "*1\r\n-IOERR error or timeout reading to target instance\r\n");
    let spent = t.elapsed();
    assert!(spent < Duration::from_secs(10), "the reads waited for the 20 s timeout: {spent:?}");
    assert_eq!(cmd(&mut r, &["GET", "k"]), "$1\r\nv\r\n");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = feeder.join();
}

#[test]
fn other_clients_run_while_the_target_answers_and_a_changed_key_is_kept() {
    let src = Server::start(&[]);
    let target = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = target.local_addr().expect("addr").port().to_string();
    let mut r = src.raw();
    assert_eq!(cmd(&mut r, &["MSET", "moved", "1", "changed", "1"]), "+OK\r\n");
    // MIGRATE and a PING pipelined behind it: the PING waits for MIGRATE's reply.
    let mut req = Vec::new();
    let args: [&[u8]; 9] =
        [b"MIGRATE", b"127.0.0.1", port.as_bytes(), b"", b"0", b"5000", b"KEYS", b"moved", b"changed"];
    ferrokv_resp::encode_command(&mut req, args.iter().copied());
    ferrokv_resp::encode_command(&mut req, [&b"PING"[..]]);
    r.send(&req);
    let (mut peer, _) = target.accept().expect("accept");
    peer.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut got = Vec::new();
    let whole = wait_until(Duration::from_secs(5), || {
        let mut buf = [0u8; 4096];
        if let Ok(n) = peer.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        text(&got).matches("RESTORE").count() == 2
    });
    assert!(whole, "{}", text(&got));
    assert!(
        text(&got).starts_with("*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*4\r\n$7\r\nRESTORE\r\n$5\r\nmoved\r\n$1\r\n0\r\n")
    );
    // Meanwhile other clients are served, and one of them changes a migrating key.
    let mut other = src.raw();
    assert_eq!(cmd(&mut other, &["SET", "changed", "2"]), "+OK\r\n");
    peer.write_all(b"+OK\r\n+OK\r\n+OK\r\n").expect("reply");
    assert_eq!(r.read_reply().map(|b| text(&b)).as_deref(), Some("+OK\r\n"));
    assert_eq!(r.read_reply().map(|b| text(&b)).as_deref(), Some("+PONG\r\n"));
    assert_eq!(cmd(&mut r, &["EXISTS", "moved"]), ":0\r\n");
    assert_eq!(cmd(&mut r, &["GET", "changed"]), "$1\r\n2\r\n");
    // The connection is cached, in db 0: no SELECT the next time.
    assert_eq!(common::info_field(&mut src.conn(), "stats", "migrate_cached_sockets"), "1");
    assert_eq!(cmd(&mut r, &["SET", "again", "x"]), "+OK\r\n");
    let args: [&[u8]; 6] = [b"MIGRATE", b"127.0.0.1", port.as_bytes(), b"again", b"0", b"5000"];
    let mut req = Vec::new();
    ferrokv_resp::encode_command(&mut req, args.iter().copied());
    r.send(&req);
    let mut got = Vec::new();
    let whole = wait_until(Duration::from_secs(5), || {
        let mut buf = [0u8; 4096];
        if let Ok(n) = peer.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        text(&got).contains("RESTORE")
    });
    assert!(whole && text(&got).starts_with("*4\r\n$7\r\nRESTORE\r\n$5\r\nagain\r\n"), "{}", text(&got));
    peer.write_all(b"+OK\r\n").expect("reply");
    assert_eq!(r.read_reply().map(|b| text(&b)).as_deref(), Some("+OK\r\n"));
}

#[test]
fn migrate_inside_multi_and_scripts_matches_redis() {
    compare(
        &[
            "MSET a 1 b 2 c 3",
            "MULTI",
            "MIGRATE 127.0.0.1 $PORT a 0 5000",
            "MIGRATE 127.0.0.1 $PORT '' 0 5000 COPY KEYS b",
            "MIGRATE 127.0.0.1 $PORT none 0 5000",
            "MIGRATE 127.0.0.1 $PORT b 0 5000",
            "EXISTS a b c",
            "EXEC",
            "EXISTS a b c",
            "@dst MGET a b c",
            "EVAL return{redis.pcall('MIGRATE','127.0.0.1',ARGV[1],'c','0','5000'),redis.call('EXISTS','c')} 0 $PORT",
            "@dst MGET a b c",
            "SET d 4",
            "EVAL return{redis.pcall('MIGRATE','127.0.0.1','1','d','0','100'),redis.call('EXISTS','d')} 0",
        ],
        &[],
    );
}

#[test]
fn replicas_and_the_aof_see_the_del() {
    let src = Server::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let replica = Server::start(&["--replicaof", "127.0.0.1", &src.port.to_string()]);
    let dst = Server::start(&[]);
    let port = dst.port.to_string();
    let mut r = src.raw();
    assert_eq!(cmd(&mut r, &["MSET", "a", "1", "b", "2", "c", "3"]), "+OK\r\n");
    let mut rep = replica.raw();
    assert!(wait_until(Duration::from_secs(10), || cmd(&mut rep, &["DBSIZE"]) == ":3\r\n"));
    assert_eq!(cmd(&mut r, &["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "COPY", "KEYS", "a"]), "+OK\r\n");
    assert_eq!(cmd(&mut r, &["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "REPLACE", "KEYS", "a", "b"]), "+OK\r\n");
    assert!(wait_until(Duration::from_secs(10), || cmd(&mut rep, &["DBSIZE"]) == ":1\r\n"));
    assert_eq!(cmd(&mut rep, &["GET", "c"]), "$1\r\n3\r\n");
    // Inside a transaction: the DEL inside the MULTI/EXEC block, as Redis writes it.
    assert_eq!(cmd(&mut r, &["MULTI"]), "+OK\r\n");
    assert_eq!(cmd(&mut r, &["MIGRATE", "127.0.0.1", &port, "c", "0", "5000"]), "+QUEUED\r\n");
    assert_eq!(cmd(&mut r, &["SET", "e", "5"]), "+QUEUED\r\n");
    assert_eq!(cmd(&mut r, &["EXEC"]), "*2\r\n+OK\r\n+OK\r\n");
    assert!(wait_until(Duration::from_secs(10), || cmd(&mut rep, &["KEYS", "*"]) == "*1\r\n$1\r\ne\r\n"));
    let aof_dir = src.dir.path().join("appendonlydir");
    let incr = std::fs::read_dir(&aof_dir)
        .expect("aof dir")
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".incr.aof"))
        .expect("incremental AOF");
    let aof = text(&std::fs::read(incr.path()).expect("read aof"));
    assert!(aof.contains("*3\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\nb\r\n"), "{aof}");
    assert!(!aof.contains("MIGRATE"), "{aof}");
    assert!(aof.contains("*1\r\n$5\r\nMULTI\r\n*2\r\n$3\r\nDEL\r\n$1\r\nc\r\n*3\r\n$3\r\nSET\r\n$1\r\ne\r\n$1\r\n5\r\n*1\r\n$4\r\nEXEC\r\n"), "{aof}");
    assert_eq!(aof.matches("$3\r\nDEL\r\n").count(), 2, "COPY propagates nothing: {aof}");
}

#[test]
fn a_cached_connection_the_target_closed_is_retried_once() {
    let Some(redis_src) = redis(&[]) else { return };
    let src = Server::start(&[]);
    for s in [&redis_src, &src] {
        let dst = Server::start(&[]);
        let port = dst.port.to_string();
        let mut r = s.raw();
        assert_eq!(cmd(&mut r, &["MSET", "a", "1", "b", "2"]), "+OK\r\n");
        assert_eq!(cmd(&mut r, &["MIGRATE", "127.0.0.1", &port, "a", "0", "5000"]), "+OK\r\n");
        // The target goes away and comes back on the same port: the cached connection is
        // dead, and the write or the first read fails; Redis retries on a new connection.
        let mut d = dst.raw();
        let _ = cmd(&mut d, &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"]);
        assert_eq!(cmd(&mut r, &["MIGRATE", "127.0.0.1", &port, "b", "0", "5000"]), "+OK\r\n");
        assert_eq!(cmd(&mut d, &["MGET", "a", "b"]), "*2\r\n$1\r\n1\r\n$1\r\n2\r\n");
    }
}

#[test]
fn monitor_shows_migrate_without_its_credentials() {
    let src = Server::start(&[]);
    let mut mon = src.raw();
    assert_eq!(cmd(&mut mon, &["MONITOR"]), "+OK\r\n");
    let mut r = src.raw();
    assert_eq!(cmd(&mut r, &["SET", "k", "v"]), "+OK\r\n");
    let reply =
        cmd(&mut r, &["MIGRATE", "", "1", "", "0", "100", "AUTH", "pw", "AUTH2", "user", "secret", "KEYS", "k"]);
    assert_eq!(reply, "-IOERR error or timeout connecting to the client\r\n");
    let _set = mon.read_reply().expect("SET line");
    let line = text(&mon.read_reply().expect("MIGRATE line"));
    assert!(
        line.ends_with(
            "\"MIGRATE\" \"\" \"1\" \"\" \"0\" \"100\" \"AUTH\" \"(redacted)\" \"AUTH2\" \"(redacted)\" \"(redacted)\" \"KEYS\" \"k\"\r\n"
        ),
        "{line}"
    );
    // SLOWLOG too, as Redis keeps it.
    assert_eq!(cmd(&mut r, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]), "+OK\r\n");
    let _ = cmd(&mut r, &["MIGRATE", "", "1", "", "0", "100", "AUTH2", "user", "secret", "KEYS", "k"]);
    let log = cmd(&mut r, &["SLOWLOG", "GET", "1"]);
    assert!(log.contains("$5\r\nAUTH2\r\n$10\r\n(redacted)\r\n$10\r\n(redacted)\r\n$4\r\nKEYS\r\n"), "{log}");
    assert!(!log.contains("secret"), "{log}");
}
