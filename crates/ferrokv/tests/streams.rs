//! Streams through the real binary, side by side with redis-server where Redis is the
//! reference: RDB files and DUMP payloads both ways (groups, consumers, pending entries,
//! deleted entries, empty streams), DEBUG RELOAD and an AOF rewrite without preamble,
//! replication with consumer-group activity to a ferrokv and a Redis replica, blocking
//! XREAD/XREADGROUP on both servers, and the replies that hold times (XPENDING, XINFO
//! CONSUMERS), which the differential scripts cannot compare byte for byte.
//!
//! XINFO STREAM's `radix-tree-nodes` describes Redis's radix tree, which ferrokv does not
//! have; comparisons leave it out. `radix-tree-keys` (the number of nodes) is compared:
//! ferrokv fills nodes as Redis does, and a loaded stream keeps the file's nodes.

mod common;
use common::*;
use redis::{Connection, Value};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// Streams with deleted entries (in and out of pending lists), several nodes, numbers
/// stored as integers in listpacks, an empty stream with a group, a MKSTREAM stream.
const FIXTURE: &[&[&str]] = &[
    &["XADD", "s", "1-1", "a", "1", "b", "2"],
    &["XADD", "s", "1-2", "a", "3", "b", "4"],
    &["XADD", "s", "2-0", "c", "5"],
    &["XADD", "s", "3-0", "a", "1", "b", "2"],
    &["XADD", "s", "4-0", "a", "1", "b", "2"],
    &["XADD", "s", "5-0", "f", "123456789012", "g", "99999999999999999999", "h", ""],
    &["XADD", "s", "6-0", "a", "x"],
    &["XDEL", "s", "2-0", "4-0"],
    &["XGROUP", "CREATE", "s", "g", "0"],
    &["XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "3"],
    &["XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">"],
    &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"],
    &["XGROUP", "CREATECONSUMER", "s", "g", "carol"],
    &["XACK", "s", "g", "1-2"],
    &["XADD", "e", "1-1", "a", "b"],
    &["XDEL", "e", "1-1"],
    &["XGROUP", "CREATE", "e", "ge", "0"],
    &["XGROUP", "CREATE", "m", "g", "0", "MKSTREAM"],
];

/// Deletes an entry bob has pending (Redis 7.0 drops such a NACK when an AOF is replayed,
/// so the AOF test leaves it out).
const DELETE_PENDING: &[&str] = &["XDEL", "s", "5-0"];

fn conn(s: &Server) -> Connection {
    let c = s.conn();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c
}

fn run(c: &mut Connection, args: &[&str]) -> Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn load(c: &mut Connection, delete_pending: bool) {
    let _: () = redis::cmd("CONFIG").arg("SET").arg("stream-node-max-entries").arg("3").query(c).unwrap();
    for cmd in FIXTURE {
        run(c, cmd);
    }
    if delete_pending {
        run(c, DELETE_PENDING);
    }
}

/// Fields a comparison leaves out besides the radix-tree ones.
#[derive(Clone, Copy, PartialEq)]
enum Mask {
    None,
    /// Consumers' seen times: replaying commands (AOF, replication) sets them anew.
    Seen,
    /// Also the groups' read counters and lags: Redis 7.0 propagates group reads as XCLAIMs,
    /// which do not carry the counter, so a replica's differs from its master's.
    Replica,
    /// Seen times and the number of nodes: entries replayed as XADDs (an AOF rewrite) fill
    /// nodes to the limits of the server replaying them, in Redis too.
    Replayed,
}

/// XINFO STREAM FULL without `radix-tree-nodes` and what `mask` names.
fn full(c: &mut Connection, key: &str, mask: Mask) -> String {
    fn strip(v: Value, mask: Mask) -> Value {
        match v {
            Value::Array(items) => {
                let mut out = Vec::new();
                let mut it = items.into_iter().peekable();
                while let Some(x) = it.next() {
                    let name = match &x {
                        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                        _ => None,
                    };
                    let skip = name.as_deref() == Some("radix-tree-nodes")
                        || (mask != Mask::None && name.as_deref() == Some("seen-time"))
                        || (mask == Mask::Replica && matches!(name.as_deref(), Some("entries-read" | "lag")))
                        || (mask == Mask::Replayed && name.as_deref() == Some("radix-tree-keys"));
                    if skip && it.peek().is_some() {
                        it.next();
                        continue;
                    }
                    out.push(strip(x, mask));
                }
                Value::Array(out)
            }
            other => other,
        }
    }
    let v: Value = redis::cmd("XINFO").arg("STREAM").arg(key).arg("FULL").query(c).unwrap();
    format!("{:?}", strip(v, mask))
}

fn assert_same_streams(a: &mut Connection, b: &mut Connection, mask: Mask, what: &str) {
    assert_eq!(digest(a), digest(b), "{what}: digests");
    for key in ["s", "e", "m"] {
        assert_eq!(full(a, key, mask), full(b, key, mask), "{what}: XINFO STREAM {key} FULL");
    }
}

fn save(c: &mut Connection) {
    let _: () = redis::cmd("SAVE").query(c).unwrap();
}

#[test]
fn rdb_files_load_both_ways() {
    let Some(redis) = Server::start_redis(&[]) else { return };
    let fk = Server::start(&[]);
    let (mut rc, mut fc) = (conn(&redis), conn(&fk));
    load(&mut rc, true);
    load(&mut fc, true);
    save(&mut rc);
    save(&mut fc);
    let fk_dir = fk.dir.path().to_str().unwrap().to_string();
    let redis_dir = redis.dir.path().to_str().unwrap().to_string();
    // Redis loads ferrokv's file, checking every listpack deeply.
    let Some(r2) = Server::start_redis(&["--dir", &fk_dir, "--sanitize-dump-payload", "yes"]) else { return };
    let mut r2c = wait_loaded(&r2);
    assert_same_streams(&mut fc, &mut r2c, Mask::None, "redis loading ferrokv's RDB");
    // ferrokv loads Redis's file.
    let f2 = Server::start(&["--dir", &redis_dir]);
    let mut f2c = wait_loaded(&f2);
    assert_same_streams(&mut rc, &mut f2c, Mask::None, "ferrokv loading redis's RDB");
    // Both check-rdb tools accept both files.
    for dir in [&fk_dir, &redis_dir] {
        let file = format!("{dir}/dump.rdb");
        let ours =
            std::process::Command::new(env!("CARGO_BIN_EXE_ferrokv")).args(["check-rdb", &file]).output().unwrap();
        let text = String::from_utf8_lossy(&ours.stdout);
        assert!(ours.status.success() && text.contains("[info] types: stream 3"), "{text}");
        assert!(text.contains("[info] encodings: stream 3"), "{text}");
        if let Some(bin) = redis_tool("redis-check-rdb") {
            let theirs = std::process::Command::new(bin).arg(&file).output().unwrap();
            assert!(theirs.status.success(), "{}", String::from_utf8_lossy(&theirs.stdout));
        }
    }
    // And what it loaded behaves: the group continues where Redis left it.
    let next: Value = run(&mut f2c, &["XREADGROUP", "GROUP", "g2", "z", "STREAMS", "s", ">"]);
    let next_r: Value = run(&mut rc, &["XREADGROUP", "GROUP", "g2", "z", "STREAMS", "s", ">"]);
    assert_eq!(next, next_r);
}

#[test]
fn dump_payloads_restore_both_ways() {
    let Some(redis) = Server::start_redis(&["--sanitize-dump-payload", "yes"]) else { return };
    let fk = Server::start(&[]);
    let (mut rc, mut fc) = (conn(&redis), conn(&fk));
    load(&mut fc, true);
    load(&mut rc, true);
    for key in ["s", "e", "m"] {
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut fc).unwrap();
        let _: () = redis::cmd("RESTORE").arg(format!("{key}-copy")).arg(0).arg(&payload).query(&mut rc).unwrap();
        assert_eq!(
            full(&mut fc, key, Mask::None),
            full(&mut rc, &format!("{key}-copy"), Mask::None),
            "ferrokv → redis {key}"
        );
        let payload: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut rc).unwrap();
        let _: () = redis::cmd("RESTORE").arg(format!("{key}-back")).arg(0).arg(&payload).query(&mut fc).unwrap();
        assert_eq!(
            full(&mut rc, key, Mask::None),
            full(&mut fc, &format!("{key}-back"), Mask::None),
            "redis → ferrokv {key}"
        );
    }
    // A damaged payload is refused, never a crash.
    let mut payload: Vec<u8> = redis::cmd("DUMP").arg("s").query(&mut fc).unwrap();
    let mid = payload.len() / 2;
    payload[mid] ^= 0x5a;
    let r: redis::RedisResult<()> = redis::cmd("RESTORE").arg("bad").arg(0).arg(&payload).query(&mut fc);
    assert!(r.is_err());
    let r: redis::RedisResult<()> = redis::cmd("RESTORE").arg("bad").arg(0).arg(&payload).arg("ABSTTL").query(&mut fc);
    assert!(r.is_err());
    assert_eq!(run(&mut fc, &["PING"]), Value::SimpleString("PONG".into()));
}

#[test]
fn debug_reload_and_aof_rewrite_keep_groups() {
    let fk = Server::start(&["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]);
    let mut c = conn(&fk);
    load(&mut c, true);
    let snap =
        |c: &mut Connection| (digest(c), full(c, "s", Mask::None), full(c, "e", Mask::None), full(c, "m", Mask::None));
    let before = snap(&mut c);
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    let after = snap(&mut c);
    assert_eq!(before, after, "DEBUG RELOAD");

    // An AOF rewrite as commands, replayed at startup.
    let mut fk = Server::start(&["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]);
    let mut c = conn(&fk);
    load(&mut c, false);
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    assert!(wait_until(WAIT, || info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
        && info_field(&mut c, "persistence", "aof_rewrites") == "1"));
    let before: Vec<String> = ["s", "e", "m"].iter().map(|k| full(&mut c, k, Mask::Replayed)).collect();
    let d = digest(&mut c);
    let dir = fk.dir.path().to_str().unwrap().to_string();
    // The rewrite's base file holds everything (nothing was written after it).
    fk.kill9();
    let again = Server::start(&["--dir", &dir, "--appendonly", "yes"]);
    let mut c2 = wait_loaded(&again);
    let after: Vec<String> = ["s", "e", "m"].iter().map(|k| full(&mut c2, k, Mask::Replayed)).collect();
    assert_eq!(before, after);
    assert_eq!(d, digest(&mut c2));
}

fn wait_synced(m: &mut Connection, r: &mut Connection) {
    let ok = wait_until(Duration::from_secs(30), || {
        let up = info_field(r, "replication", "master_link_status") == "up";
        let mo = info_field(m, "replication", "master_repl_offset");
        up && mo == info_field(r, "replication", "slave_repl_offset")
    });
    assert!(ok, "replica did not catch up");
}

#[test]
fn replicas_follow_consumer_groups() {
    let master = Server::start(&[]);
    let mut m = conn(&master);
    let port = master.port.to_string();
    let fr = Server::start(&["--replicaof", "127.0.0.1", &port]);
    let mut f = conn(&fr);
    let redis_replica = Server::start_redis(&["--replicaof", "127.0.0.1", &port]);
    let mut r = redis_replica.as_ref().map(conn);
    wait_synced(&mut m, &mut f);
    // Group activity after the full sync travels as XCLAIM / XGROUP commands.
    load(&mut m, true);
    run(&mut m, &["XADD", "s", "7-0", "k", "v"]);
    run(&mut m, &["XREADGROUP", "GROUP", "g", "dave", "NOACK", "STREAMS", "s", ">"]);
    run(&mut m, &["XCLAIM", "s", "g", "erin", "0", "1-1", "JUSTID"]);
    run(&mut m, &["XAUTOCLAIM", "s", "g", "frank", "0", "0", "COUNT", "1"]);
    run(&mut m, &["XADD", "s", "MAXLEN", "~", "2", "*", "k", "v"]);
    wait_synced(&mut m, &mut f);
    // Seen times are the replica's own, and read counters are not propagated (Redis 7.0
    // alike); all else is the master's. A Redis replica of the same stream agrees with
    // ferrokv's to the read counters.
    assert_same_streams(&mut m, &mut f, Mask::Replica, "ferrokv replica");
    if let Some(r) = r.as_mut() {
        wait_synced(&mut m, r);
        assert_same_streams(&mut m, r, Mask::Replica, "redis replica");
        assert_same_streams(&mut f, r, Mask::Seen, "ferrokv and redis replicas");
    }
    // Promoted, the replica continues the group.
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut f).unwrap();
    assert_eq!(
        run(&mut f, &["XREADGROUP", "GROUP", "g", "gina", "STREAMS", "s", ">"]),
        run(&mut m, &["XREADGROUP", "GROUP", "g", "gina", "STREAMS", "s", ">"])
    );
}

// ---- blocking, on both servers -----------------------------------------------------------

fn client_id(c: &mut Connection) -> i64 {
    redis::cmd("CLIENT").arg("ID").query(c).unwrap()
}

/// True once client `id` is blocked (CLIENT LIST flags `b`).
fn is_blocked(admin: &mut Connection, id: i64) -> bool {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(admin).unwrap();
    list.lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("flags=")))
        .is_some_and(|f| f.contains('b'))
}

fn spawn_blocked(s: &Server, admin: &mut Connection, args: &[&str]) -> JoinHandle<Value> {
    let mut c = conn(s);
    let id = client_id(&mut c);
    let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let h = std::thread::spawn(move || {
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        run(&mut c, &refs)
    });
    assert!(wait_until(WAIT, || is_blocked(admin, id)), "client never blocked on {args:?}");
    h
}

fn servers() -> Vec<(&'static str, Server)> {
    let mut v = vec![("ferrokv", Server::start(&[]))];
    if let Some(r) = Server::start_redis(&[]) {
        v.push(("redis", r));
    }
    v
}

fn entry(key: &str, id: &str, f: &str, val: &str) -> Value {
    let b = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    Value::Array(vec![Value::Array(vec![
        b(key),
        Value::Array(vec![Value::Array(vec![b(id), Value::Array(vec![b(f), b(val)])])]),
    ])])
}

#[test]
fn blocking_reads_are_woken_by_xadd() {
    for (name, s) in servers() {
        let mut c = conn(&s);
        run(&mut c, &["XADD", "s", "1-0", "old", "x"]);
        // `$`: only what arrives after blocking; two readers both get it.
        let a = spawn_blocked(&s, &mut c, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
        let b = spawn_blocked(&s, &mut c, &["XREAD", "BLOCK", "0", "STREAMS", "other", "s", "0", "$"]);
        run(&mut c, &["XADD", "s", "2-0", "f", "v"]);
        assert_eq!(a.join().unwrap(), entry("s", "2-0", "f", "v"), "{name}");
        assert_eq!(b.join().unwrap(), entry("s", "2-0", "f", "v"), "{name}");
        // An entry not after the requested ID leaves the reader waiting.
        let late = spawn_blocked(&s, &mut c, &["XREAD", "BLOCK", "0", "STREAMS", "s", "10-0"]);
        run(&mut c, &["XADD", "s", "5-0", "f", "early"]);
        run(&mut c, &["XADD", "s", "11-0", "f", "late"]);
        assert_eq!(late.join().unwrap(), entry("s", "11-0", "f", "late"), "{name}");
        // A group reader gets the new entry, and it is pending for it.
        run(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]);
        let g = spawn_blocked(&s, &mut c, &["XREADGROUP", "GROUP", "g", "c1", "BLOCK", "0", "STREAMS", "s", ">"]);
        run(&mut c, &["XADD", "s", "12-0", "f", "g"]);
        assert_eq!(g.join().unwrap(), entry("s", "12-0", "f", "g"), "{name}");
        let pending = run(&mut c, &["XPENDING", "s", "g"]);
        let Value::Array(p) = pending else { panic!("{name}: {pending:?}") };
        assert_eq!(p[0], Value::Int(1), "{name}");
        // Two consumers of one group: the first to block gets the first entry.
        let c2 = spawn_blocked(&s, &mut c, &["XREADGROUP", "GROUP", "g", "c2", "BLOCK", "0", "STREAMS", "s", ">"]);
        let c3 = spawn_blocked(&s, &mut c, &["XREADGROUP", "GROUP", "g", "c3", "BLOCK", "0", "STREAMS", "s", ">"]);
        run(&mut c, &["XADD", "s", "13-0", "f", "first"]);
        assert_eq!(c2.join().unwrap(), entry("s", "13-0", "f", "first"), "{name}");
        run(&mut c, &["XADD", "s", "14-0", "f", "second"]);
        assert_eq!(c3.join().unwrap(), entry("s", "14-0", "f", "second"), "{name}");
        // XGROUP DESTROY tells the group's waiting readers.
        let mut gone_conn = conn(&s);
        let gone_id = client_id(&mut gone_conn);
        let gone = std::thread::spawn(move || {
            redis::cmd("XREADGROUP")
                .arg(&["GROUP", "g", "c4", "BLOCK", "0", "STREAMS", "s", ">"])
                .query::<Value>(&mut gone_conn)
                .map_err(|e| e.to_string())
        });
        assert!(wait_until(WAIT, || is_blocked(&mut c, gone_id)));
        run(&mut c, &["XGROUP", "DESTROY", "s", "g"]);
        let err = gone.join().unwrap().unwrap_err();
        assert!(err.contains("the consumer group this client was blocked on no longer exists"), "{name}: {err}");
        run(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]);
        // Timeouts answer nil, no sooner than asked.
        let t = Instant::now();
        let v = run(&mut c, &["XREAD", "BLOCK", "150", "STREAMS", "s", "$"]);
        assert_eq!(v, Value::Nil, "{name}");
        assert!(t.elapsed() >= Duration::from_millis(150), "{name}: {:?}", t.elapsed());
        let v = run(&mut c, &["XREADGROUP", "GROUP", "g", "c1", "BLOCK", "100", "STREAMS", "s", ">"]);
        assert_eq!(v, Value::Nil, "{name}");
    }
}

/// Raw replies around CLIENT UNBLOCK of blocked stream readers: a timeout's nil (RESP2 and
/// RESP3), the UNBLOCKED error, the pipelined request behind the block then served, and the
/// command's own errors. Compared between the servers, and checked on ferrokv.
fn client_unblock_transcript(s: &Server) -> Vec<String> {
    let mut admin = conn(s);
    let mut out = Vec::new();
    let mut note = |bytes: Vec<u8>| out.push(String::from_utf8_lossy(&bytes).into_owned());
    run(&mut admin, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let blocked_reads: [(&[&[u8]], &str); 4] = [
        (&[b"XREAD", b"BLOCK", b"0", b"STREAMS", b"s", b"$"], "TIMEOUT"),
        (&[b"XREADGROUP", b"GROUP", b"g", b"c", b"BLOCK", b"0", b"STREAMS", b"s", b">"], "ERROR"),
        (&[b"XREAD", b"BLOCK", b"60000", b"STREAMS", b"s", b"$"], ""),
        (&[b"XREADGROUP", b"GROUP", b"g", b"c", b"BLOCK", b"0", b"STREAMS", b"s", b">"], "TIMEOUT"),
    ];
    for resp in ["2", "3"] {
        for (read, reason) in blocked_reads {
            let mut reader = s.raw();
            note(reader.cmd(&[b"HELLO", resp.as_bytes()]).into_iter().take(1).collect());
            let id =
                String::from_utf8_lossy(&reader.cmd(&[b"CLIENT", b"ID"])).trim().trim_start_matches(':').to_string();
            let mut pipelined = Vec::new();
            ferrokv_resp::encode_command(&mut pipelined, read.iter().copied());
            ferrokv_resp::encode_command(&mut pipelined, [&b"PING"[..]]);
            reader.send(&pipelined);
            let id_num: i64 = id.parse().unwrap();
            assert!(wait_until(WAIT, || is_blocked(&mut admin, id_num)), "never blocked: {read:?}");
            let mut unblock = vec!["CLIENT", "UNBLOCK", id.as_str()];
            if !reason.is_empty() {
                unblock.push(reason);
            }
            note(format!("{:?}", run(&mut admin, &unblock)).into_bytes());
            note(reader.read_reply().expect("unblocked reply"));
            note(reader.read_reply().expect("PING after the block"));
            // Not blocked any more: nothing to unblock.
            note(format!("{:?}", run(&mut admin, &["CLIENT", "UNBLOCK", id.as_str()])).into_bytes());
        }
    }
    let mut raw = s.raw();
    for args in [
        &["CLIENT", "UNBLOCK", "999999"][..],
        &["CLIENT", "UNBLOCK", "-1"],
        &["CLIENT", "UNBLOCK", "x"],
        &["CLIENT", "UNBLOCK", "1", "LATER"],
        &["CLIENT", "UNBLOCK", "x", "LATER"],
        &["CLIENT", "UNBLOCK", "1", "ERROR", "extra"],
    ] {
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        note(raw.cmd(&bytes));
    }
    out
}

#[test]
fn client_unblock_ends_blocking_reads() {
    let mut transcripts = Vec::new();
    for (name, s) in servers() {
        transcripts.push((name, client_unblock_transcript(&s)));
    }
    let ours = &transcripts[0].1;
    let has = |needle: &str| ours.iter().any(|l| l == needle);
    assert!(has("*-1\r\n"), "{ours:#?}");
    assert!(has("_\r\n"), "{ours:#?}");
    assert!(has("-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"), "{ours:#?}");
    assert!(has("-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"), "{ours:#?}");
    if let Some((_, theirs)) = transcripts.get(1) {
        for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
            assert_eq!(a, b, "line {i}\nferrokv: {ours:#?}\nredis: {theirs:#?}");
        }
        assert_eq!(ours.len(), theirs.len());
    }
}

/// Commands whose keyspace notifications are compared: each event Redis 7.0's t_stream.c
/// fires, and the no-op cases where it fires none.
const NOTIFYING: &[&[&str]] = &[
    &["XADD", "s", "1-0", "a", "1"],
    &["XADD", "s", "2-0", "a", "2"],
    &["XADD", "s", "MAXLEN", "1", "3-0", "a", "3"],
    &["XADD", "s", "MAXLEN", "5", "4-0", "a", "4"],
    &["XADD", "absent", "NOMKSTREAM", "1-0", "a", "1"],
    &["XDEL", "s", "3-0"],
    &["XDEL", "s", "99-0"],
    &["XSETID", "s", "10-0"],
    &["XGROUP", "CREATE", "s", "g", "$"],
    &["XGROUP", "CREATE", "m", "g", "$", "MKSTREAM"],
    &["XGROUP", "CREATECONSUMER", "s", "g", "c1"],
    &["XGROUP", "CREATECONSUMER", "s", "g", "c1"],
    &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"],
    &["XADD", "s", "11-0", "a", "1"],
    &["XREADGROUP", "GROUP", "g", "c2", "STREAMS", "s", ">"],
    &["XACK", "s", "g", "11-0"],
    &["XCLAIM", "s", "g", "c3", "0", "11-0", "FORCE"],
    &["XAUTOCLAIM", "s", "g", "c4", "0", "0"],
    &["XGROUP", "DELCONSUMER", "s", "g", "c1"],
    &["XGROUP", "DELCONSUMER", "s", "g", "nobody"],
    &["XGROUP", "SETID", "s", "g", "0"],
    &["XGROUP", "DESTROY", "s", "g"],
    &["XGROUP", "DESTROY", "s", "g"],
    &["XTRIM", "s", "MAXLEN", "0"],
    &["XTRIM", "s", "MAXLEN", "0"],
    &["DEL", "s"],
    &["SET", "end", "1"],
];

/// The keyspace and keyevent messages NOTIFYING produces with notify-keyspace-events KEA.
fn stream_notifications(s: &Server) -> Vec<String> {
    let mut admin = conn(s);
    run(&mut admin, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut subscriber = s.raw();
    subscriber.cmd(&[b"PSUBSCRIBE", b"__key*__:*"]);
    for cmd in NOTIFYING {
        let mut c = redis::cmd(cmd[0]);
        for a in &cmd[1..] {
            c.arg(*a);
        }
        // Some of them fail on purpose (XADD NOMKSTREAM answers nil, not an error).
        let _ = c.query::<Value>(&mut admin);
    }
    let mut messages = Vec::new();
    loop {
        let m = String::from_utf8_lossy(&subscriber.read_reply().expect("notification")).into_owned();
        let last = m.contains("__keyevent@0__:set") && m.contains("end");
        messages.push(m);
        if last {
            return messages;
        }
        assert!(messages.len() < 200, "no end marker: {messages:#?}");
    }
}

#[test]
fn keyspace_notifications_match_redis() {
    let mut all = Vec::new();
    for (name, s) in servers() {
        all.push((name, stream_notifications(&s)));
    }
    let ours = &all[0].1;
    for event in [
        "xadd",
        "xtrim",
        "xdel",
        "xsetid",
        "xgroup-create",
        "xgroup-createconsumer",
        "xgroup-delconsumer",
        "xgroup-setid",
        "xgroup-destroy",
    ] {
        assert!(ours.iter().any(|m| m.contains(&format!("__keyevent@0__:{event}\r\n"))), "{event}: {ours:#?}");
    }
    if let Some((_, theirs)) = all.get(1) {
        assert_eq!(ours, theirs);
    }
}

/// used_memory's growth for a 20,000-entry stream with a group holding 8,000 pending
/// entries, and the stream's MEMORY USAGE.
fn stream_memory(s: &Server) -> (i64, i64) {
    let mut admin = conn(s);
    let used = |c: &mut Connection| info_field(c, "memory", "used_memory").parse::<i64>().expect("used_memory");
    let before = used(&mut admin);
    // The writes' buffers must not count: they belong to a connection closed before the
    // measurement.
    let mut c = conn(s);
    for chunk in 0..20 {
        let mut batch = redis::pipe();
        for i in chunk * 1000 + 1..=(chunk + 1) * 1000 {
            let fields = [("name", format!("user{i}")), ("count", i.to_string()), ("payload", "x".repeat(20))];
            batch.xadd("big", format!("{i}-0"), &fields).ignore();
        }
        let () = batch.query(&mut c).unwrap();
    }
    run(&mut c, &["XGROUP", "CREATE", "big", "g", "0"]);
    for consumer in ["c0", "c1", "c2", "c3"] {
        run(&mut c, &["XREADGROUP", "GROUP", "g", consumer, "COUNT", "2000", "STREAMS", "big", ">"]);
    }
    drop(c);
    let closed = wait_until(WAIT, || info_field(&mut admin, "clients", "connected_clients") == "1");
    assert!(closed, "the writer's connection is still open");
    let grown = used(&mut admin) - before;
    let usage: i64 = redis::cmd("MEMORY").arg("USAGE").arg("big").arg("SAMPLES").arg("0").query(&mut admin).unwrap();
    (grown, usage)
}

/// MEMORY USAGE of a stream tells what ferrokv allocated for it, and that is no more than
/// Redis allocates. Redis's own MEMORY USAGE is not the yardstick: it counts every
/// listpack at its allocation size (up to stream-node-max-bytes preallocated), about four
/// times its used_memory growth here.
#[test]
fn stream_memory_usage_is_what_was_allocated() {
    let (grown, usage) = stream_memory(&Server::start(&[]));
    let ratio = usage as f64 / grown as f64;
    assert!((0.75..=1.25).contains(&ratio), "MEMORY USAGE {usage} for {grown} bytes allocated");
    if let Some(redis) = Server::start_redis(&[]) {
        let (redis_grown, redis_usage) = stream_memory(&redis);
        eprintln!("ferrokv: grew {grown}, MEMORY USAGE {usage}; redis: grew {redis_grown}, MEMORY USAGE {redis_usage}");
        assert!(grown as f64 <= redis_grown as f64 * 1.05, "ferrokv grew {grown}, redis {redis_grown}");
    }
}

#[test]
fn replies_with_times() {
    let fk = Server::start(&[]);
    let mut c = conn(&fk);
    run(&mut c, &["XADD", "s", "1-0", "f", "v"]);
    run(&mut c, &["XADD", "s", "2-0", "f", "v"]);
    run(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    let t0 = Instant::now();
    run(&mut c, &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"]);
    assert!(wait_until(WAIT, || t0.elapsed() >= Duration::from_millis(60)));
    let rows: Vec<(String, String, i64, i64)> =
        redis::cmd("XPENDING").arg("s").arg("g").arg("-").arg("+").arg(10).query(&mut c).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].0.as_str(), rows[0].1.as_str(), rows[0].3), ("1-0", "alice", 1));
    assert!(rows[0].2 >= 50 && rows[0].2 < 10_000, "idle {}", rows[0].2);
    let idle: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg("s")
        .arg("g")
        .arg("IDLE")
        .arg(3_600_000)
        .arg("-")
        .arg("+")
        .arg(10)
        .query(&mut c)
        .unwrap();
    assert!(idle.is_empty());
    // XCLAIM with a minimum idle time takes only old enough entries; IDLE sets the age.
    let ids: Vec<String> = redis::cmd("XCLAIM")
        .arg(&["s", "g", "bob", "50", "1-0", "2-0", "IDLE", "5000", "JUSTID"])
        .query(&mut c)
        .unwrap();
    assert_eq!(ids, ["1-0", "2-0"]);
    let rows: Vec<(String, String, i64, i64)> =
        redis::cmd("XPENDING").arg("s").arg("g").arg("-").arg("+").arg(10).arg("bob").query(&mut c).unwrap();
    assert!(rows.iter().all(|r| r.2 >= 5000 && r.3 == 1), "{rows:?}");
    let info: Vec<std::collections::HashMap<String, Value>> =
        redis::cmd("XINFO").arg("CONSUMERS").arg("s").arg("g").query(&mut c).unwrap();
    assert_eq!(info.len(), 2);
    assert_eq!(info[1].get("pending"), Some(&Value::Int(2)));
    let idle = |i: usize| match info[i].get("idle") {
        Some(Value::Int(n)) => *n,
        other => panic!("{other:?}"),
    };
    assert!(idle(0) >= 50, "alice idle {}", idle(0));
    assert!(idle(1) < 10_000);
}
