//! Persistence with real processes and real files: RDB and AOF written by ferrokv load
//! into Debian's redis-server and the other way round, snapshots are point-in-time while
//! writes go on, acknowledged writes survive kill -9, damaged files are repaired or
//! refused as Redis does.

mod common;
use common::*;
use redis::Commands;
use std::path::Path;
use std::time::Duration;

/// A dataset with every type in its compact and its big encoding, integers, binary and
/// long (compressible and not) strings, TTLs, and several databases.
fn fill(c: &mut redis::Connection) {
    let _: () = c.set("int", 12345).unwrap();
    let _: () = c.set("neg", -9_223_372_036_854_775_808i64).unwrap();
    let _: () = c.set("short", "hello").unwrap();
    let _: () = c.set(&b"bin\x00\xff"[..], &b"\x00\x01\xfe\xff"[..]).unwrap();
    let _: () = c.set("long", "abc".repeat(40_000)).unwrap();
    let noise: Vec<u8> = (0..50_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let _: () = c.set("noise", noise).unwrap();
    let _: () = c.set_ex("ttl", "v", 1000).unwrap();
    let _: () = c.rpush("small-list", &["a", "1", "b"]).unwrap();
    let big: Vec<String> = (0..10_000).map(|i| format!("element-{i}")).collect();
    let _: () = c.rpush("big-list", &big).unwrap();
    let _: () = c.hset_multiple("small-hash", &[("f1", "v1"), ("f2", "2")]).unwrap();
    let fields: Vec<(String, String)> = (0..1000).map(|i| (format!("field{i}"), format!("value{i}"))).collect();
    let _: () = c.hset_multiple("big-hash", &fields).unwrap();
    let _: () = c.hset("long-value-hash", "f", "x".repeat(100)).unwrap();
    let _: () = c.sadd("int-set", &[1, 2, 3, -70000, 5_000_000_000i64]).unwrap();
    let ints: Vec<i64> = (0..600).collect();
    let _: () = c.sadd("big-int-set", &ints).unwrap();
    let _: () = c.sadd("str-set", &["a", "b", "c"]).unwrap();
    let _: () = c.expire("str-set", 5000).unwrap();
    let _: () = c.zadd_multiple("small-zset", &[(1.5, "a"), (-2.0, "b"), (f64::INFINITY, "c")]).unwrap();
    let scored: Vec<(f64, String)> = (0..1000).map(|i| (i as f64 / 7.0, format!("member{i}"))).collect();
    let _: () = c.zadd_multiple("big-zset", &scored).unwrap();
    let _: () = redis::cmd("SELECT").arg(5).query(c).unwrap();
    let _: () = c.set("in-db-5", "yes").unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(c).unwrap();
}

#[test]
fn rdb_written_by_ferrokv_loads_into_redis_and_back() {
    let dir = TempDir::new("rdb-interop");
    let d = dir.path().to_str().unwrap();
    let fk = Server::start(&["--dir", d]);
    let mut c = fk.conn();
    fill(&mut c);
    let want = digest(&mut c);
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    drop(fk);
    let Some(rs) = Server::start_redis(&["--dir", d]) else { return };
    let mut rc = wait_loaded(&rs);
    assert_eq!(digest(&mut rc), want, "redis-server sees another dataset");
    let enc: String = redis::cmd("OBJECT").arg("ENCODING").arg("big-int-set").query(&mut rc).unwrap();
    assert_eq!(enc, "hashtable");
    // Redis writes it back; ferrokv reads Redis's own file.
    let _: () = redis::cmd("SAVE").query(&mut rc).unwrap();
    drop(rs);
    let fk = Server::start(&["--dir", d]);
    let mut c = wait_loaded(&fk);
    assert_eq!(digest(&mut c), want, "ferrokv does not read back Redis's file");
    let ttl: i64 = c.ttl("ttl").unwrap();
    assert!((990..=1000).contains(&ttl), "ttl {ttl}");
}

#[test]
fn dump_and_restore_interoperate_with_redis() {
    let fk = Server::start(&[]);
    let Some(rs) = Server::start_redis(&[]) else { return };
    let (mut f, mut r) = (fk.conn(), rs.conn());
    fill(&mut f);
    fill(&mut r);
    // Keys without a TTL: DIGEST-VALUE mixes the TTL's presence in.
    let _: () = r.persist("str-set").unwrap();
    let _: () = f.persist("str-set").unwrap();
    for key in
        ["int", "long", "noise", "big-list", "small-hash", "big-hash", "int-set", "str-set", "small-zset", "big-zset"]
    {
        let from_redis: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut r).unwrap();
        let from_fk: Vec<u8> = redis::cmd("DUMP").arg(key).query(&mut f).unwrap();
        let dst = format!("{key}-copy");
        let _: () = redis::cmd("RESTORE").arg(&dst).arg(0).arg(&from_redis).query(&mut f).unwrap();
        let _: () = redis::cmd("RESTORE").arg(&dst).arg(0).arg(&from_fk).query(&mut r).unwrap();
        let a: Vec<String> = redis::cmd("DEBUG").arg("DIGEST-VALUE").arg(key).query(&mut f).unwrap();
        let b: Vec<String> = redis::cmd("DEBUG").arg("DIGEST-VALUE").arg(&dst).query(&mut f).unwrap();
        let c2: Vec<String> = redis::cmd("DEBUG").arg("DIGEST-VALUE").arg(&dst).query(&mut r).unwrap();
        assert_eq!(a, b, "{key}: Redis's payload restored differently");
        assert_eq!(a, c2, "{key}: our payload restored differently in Redis");
    }
    let payload: Vec<u8> = redis::cmd("DUMP").arg("int").query(&mut f).unwrap();
    let err = redis::cmd("RESTORE").arg("int").arg(0).arg(&payload).query::<()>(&mut f).unwrap_err();
    assert_eq!(err.code(), Some("BUSYKEY"));
    let mut bad = payload.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let err = redis::cmd("RESTORE").arg("x").arg(0).arg(&bad).query::<()>(&mut f).unwrap_err();
    assert!(err.to_string().contains("DUMP payload version or checksum are wrong"), "{err}");
    let _: () = redis::cmd("RESTORE").arg("int").arg(5000).arg(&payload).arg("REPLACE").query(&mut f).unwrap();
    let pttl: i64 = c_pttl(&mut f, "int");
    assert!((4000..=5000).contains(&pttl), "{pttl}");
}

fn c_pttl(c: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(c).unwrap()
}

#[test]
fn bgsave_records_the_dataset_as_of_its_start_while_writes_go_on() {
    let dir = TempDir::new("bgsave-pit");
    let d = dir.path().to_str().unwrap();
    // 10k keys at 100 µs each: the walk takes a second or more, whatever the machine's speed.
    let fk = Server::start(&["--dir", d, "--rdb-key-save-delay", "100"]);
    let mut c = fk.conn();
    let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(10_000).query(&mut c).unwrap();
    fill(&mut c);
    // The digest and the snapshot's start are one atomic unit.
    let (want, started): (String, String) =
        redis::pipe().atomic().cmd("DEBUG").arg("DIGEST").cmd("BGSAVE").query(&mut c).unwrap();
    assert_eq!(started, "Background saving started");
    // Change, replace, delete and expire keys the walk has not reached yet, create new ones,
    // flush and swap databases — until the snapshot ends (bounded).
    let mut writer = fk.conn();
    let mut round = 0u64;
    let done = wait_until(Duration::from_secs(60), || {
        for i in 0..20 {
            let k = format!("key:{}", (round * 7919 + i * 104_729) % 10_000);
            let _: () = writer.set(&k, round).unwrap();
            let _: () = writer.del(format!("key:{}", (round * 31 + i) % 10_000)).unwrap();
            let _: () = writer.incr("int", 1).unwrap();
            let _: () = writer.rpush("big-list", round).unwrap();
            let _: () = writer.hset("big-hash", format!("new{round}"), i).unwrap();
            let _: () = writer.zincr("big-zset", format!("member{i}"), 1).unwrap();
            let _: () = writer.set(format!("fresh:{round}:{i}"), i).unwrap();
        }
        if round == 3 {
            let _: () = redis::cmd("SWAPDB").arg(0).arg(5).query(&mut writer).unwrap();
            let _: () = redis::cmd("SWAPDB").arg(0).arg(5).query(&mut writer).unwrap();
        }
        round += 1;
        info_field(&mut writer, "persistence", "rdb_bgsave_in_progress") == "0"
    });
    assert!(done, "BGSAVE did not finish");
    assert!(round > 5, "the snapshot ended before the concurrent writes ({round} rounds)");
    assert_eq!(info_field(&mut c, "persistence", "rdb_last_bgsave_status"), "ok");
    drop(fk);
    let fk = Server::start(&["--dir", d]);
    let mut c = wait_loaded(&fk);
    assert_eq!(digest(&mut c), want, "the snapshot is not the dataset as of BGSAVE");
}

#[test]
fn shutdown_and_sigterm_save_when_save_points_are_set() {
    let dir = TempDir::new("shutdown-save");
    let d = dir.path().to_str().unwrap();
    let mut fk = Server::start(&["--dir", d, "--save", "3600 1"]);
    let mut c = fk.conn();
    let _: () = c.set("a", "1").unwrap();
    let _ = redis::cmd("SHUTDOWN").query::<()>(&mut c);
    assert!(fk.wait_exit(Duration::from_secs(10)).is_some());
    let mut fk = Server::start(&["--dir", d, "--save", "3600 1"]);
    let mut c = wait_loaded(&fk);
    assert_eq!(c.get::<_, String>("a").unwrap(), "1");
    let _: () = c.set("b", "2").unwrap();
    fk.signal("TERM");
    assert_eq!(fk.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(fk.log_text().contains("DB saved on disk"), "{}", fk.log_text());
    let fk = Server::start(&["--dir", d]);
    let mut c = wait_loaded(&fk);
    assert_eq!(c.get::<_, String>("b").unwrap(), "2");
    // SHUTDOWN NOSAVE leaves the file alone.
    let _: () = c.set("c", "3").unwrap();
    let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query::<()>(&mut c);
    drop(fk);
    let fk = Server::start(&["--dir", d]);
    let mut c = wait_loaded(&fk);
    assert_eq!(c.get::<_, Option<String>>("c").unwrap(), None);
}

#[test]
fn debug_reload_round_trips_the_dataset() {
    let fk = Server::start(&[]);
    let mut c = fk.conn();
    fill(&mut c);
    let want = digest(&mut c);
    let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
    assert_eq!(digest(&mut c), want);
    assert!(fk.dir.path().join("dump.rdb").exists() || fk.log_text().contains("DB saved on disk"));
}

#[test]
fn loading_clients_get_loading_errors() {
    let dir = TempDir::new("loading");
    let d = dir.path().to_str().unwrap();
    {
        let fk = Server::start(&["--dir", d]);
        let mut c = fk.conn();
        let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(3000).query(&mut c).unwrap();
        let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    }
    // 3000 keys at 1 ms each: three seconds of loading to look at. The harness waits for
    // "Ready to accept connections", which comes after loading, so start it by hand.
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .args(["server", "--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--dir", d])
        .args(["--key-load-delay", "1000", "--logfile", dir.path().join("l.log").to_str().unwrap()])
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    assert!(wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(&addr).is_ok()));
    let mut raw = Raw::connect(&addr);
    let reply = raw.cmd(&[b"GET", b"key:1"]);
    assert_eq!(reply, b"-LOADING Redis is loading the dataset in memory\r\n");
    let info = raw.cmd(&[b"INFO", b"persistence"]);
    assert!(String::from_utf8_lossy(&info).contains("loading:1"));
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let mut c = client.get_connection().unwrap();
    assert!(wait_until(Duration::from_secs(30), || redis::cmd("PING").query::<String>(&mut c).is_ok()));
    let _ = child.kill();
    let _ = child.wait();
    let fk = Server::start(&["--dir", d]);
    let mut c = wait_loaded(&fk);
    assert_eq!(c.get::<_, String>("key:1").unwrap(), "value:1");
    assert_eq!(info_field(&mut c, "persistence", "loading"), "0");
    assert_eq!(info_field(&mut c, "persistence", "rdb_last_load_keys_loaded"), "3000");
}

#[test]
fn corrupt_rdb_is_refused_with_offset() {
    let dir = TempDir::new("bad-rdb");
    let d = dir.path().to_str().unwrap();
    {
        let fk = Server::start(&["--dir", d]);
        let mut c = fk.conn();
        fill(&mut c);
        let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    }
    let path = dir.path().join("dump.rdb");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let log = dir.path().join("bad.log");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .args(["server", "--port", &free_port().to_string(), "--dir", d, "--logfile", log.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("dump.rdb") && text.contains("offset"), "{text}");
}

// ---- AOF ---------------------------------------------------------------------------

fn aof_dir(d: &Path) -> std::path::PathBuf {
    d.join("appendonlydir")
}

fn incr_file(d: &Path) -> std::path::PathBuf {
    let manifest = std::fs::read_to_string(aof_dir(d).join("appendonly.aof.manifest")).unwrap();
    let name = manifest.lines().rfind(|l| l.ends_with("type i")).unwrap().split(' ').nth(1).unwrap().to_string();
    aof_dir(d).join(name)
}

#[test]
fn aof_always_keeps_every_acknowledged_write_through_kill_9() {
    let dir = TempDir::new("aof-always");
    let d = dir.path().to_str().unwrap();
    let fk = Server::start(&["--dir", d, "--appendonly", "yes", "--appendfsync", "always"]);
    let _ = wait_loaded(&fk);
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let url = fk.url();
            let acked = acked.clone();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                for i in 0..100_000 {
                    let key = format!("w{w}:{i}");
                    if c.set::<_, _, ()>(&key, i).is_err() {
                        break;
                    }
                    acked.lock().unwrap().push(key);
                }
            })
        })
        .collect();
    assert!(wait_until(Duration::from_secs(30), || acked.lock().unwrap().len() > 2000));
    drop(fk); // kill -9 while the writers write
    for w in writers {
        let _ = w.join();
    }
    let acked = acked.lock().unwrap().clone();
    let fk = Server::start(&["--dir", d, "--appendonly", "yes"]);
    let mut c = wait_loaded(&fk);
    let missing: Vec<&String> = acked.iter().filter(|k| !c.exists::<_, bool>(k.as_str()).unwrap()).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn aof_rewrite_keeps_writes_made_during_it_and_drops_history() {
    let dir = TempDir::new("aof-rewrite");
    let d = dir.path().to_str().unwrap();
    for preamble in ["yes", "no"] {
        let _ = std::fs::remove_dir_all(aof_dir(dir.path()));
        let fk = Server::start(&["--dir", d, "--appendonly", "yes", "--aof-use-rdb-preamble", preamble]);
        let mut c = wait_loaded(&fk);
        let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(100_000).query(&mut c).unwrap();
        fill(&mut c);
        let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
        let mut n = 0;
        let done = wait_until(Duration::from_secs(60), || {
            let _: () = c.incr("counter", 1).unwrap();
            let _: () = c.set(format!("during:{n}"), n).unwrap();
            n += 1;
            info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
        });
        assert!(done);
        let _: () = c.incr("counter", 1).unwrap();
        let want = digest(&mut c);
        let files: Vec<String> = std::fs::read_dir(aof_dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files.len(), 3, "base, incr and manifest only: {files:?}");
        let ext = if preamble == "yes" { ".base.rdb" } else { ".base.aof" };
        assert!(files.iter().any(|f| f.ends_with(ext)), "{files:?}");
        // The history is gone from the manifest too (Redis writes it again without).
        let (_, manifest) = aof_files(dir.path());
        assert!(!manifest.contains("type h"), "{manifest}");
        drop(fk);
        let fk = Server::start(&["--dir", d, "--appendonly", "yes"]);
        let mut c = wait_loaded(&fk);
        assert_eq!(digest(&mut c), want, "preamble {preamble}");
    }
}

#[test]
fn truncated_aof_tail_is_repaired_or_refused() {
    let dir = TempDir::new("aof-trunc");
    let d = dir.path().to_str().unwrap();
    {
        let fk = Server::start(&["--dir", d, "--appendonly", "yes"]);
        let mut c = wait_loaded(&fk);
        let _: () = c.set("a", "1").unwrap();
        let _: () = c.set("b", "2").unwrap();
    }
    let incr = incr_file(dir.path());
    let good_len = std::fs::metadata(&incr).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&incr).unwrap();
    std::io::Write::write_all(&mut f, b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\nhel").unwrap();
    drop(f);
    let log = dir.path().join("refuse.log");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .args([
            "server",
            "--port",
            &free_port().to_string(),
            "--dir",
            d,
            "--appendonly",
            "yes",
            "--aof-load-truncated",
            "no",
        ])
        .args(["--logfile", log.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(std::fs::read_to_string(&log).unwrap().contains("Unexpected end of file"));
    let fk = Server::start(&["--dir", d, "--appendonly", "yes"]);
    let mut c = wait_loaded(&fk);
    assert_eq!(c.get::<_, String>("b").unwrap(), "2");
    assert_eq!(c.get::<_, Option<String>>("c").unwrap(), None);
    assert!(fk.log_text().contains("Truncating the AOF"), "{}", fk.log_text());
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), good_len);
}

#[test]
fn corruption_in_the_middle_of_the_aof_refuses_to_start() {
    let dir = TempDir::new("aof-corrupt");
    let d = dir.path().to_str().unwrap();
    {
        let fk = Server::start(&["--dir", d, "--appendonly", "yes"]);
        let mut c = wait_loaded(&fk);
        for i in 0..100 {
            let _: () = c.set(format!("k{i}"), i).unwrap();
        }
    }
    let incr = incr_file(dir.path());
    let mut bytes = std::fs::read(&incr).unwrap();
    let star = bytes.iter().enumerate().filter(|(_, b)| **b == b'*').map(|(i, _)| i).nth(50).unwrap();
    bytes[star] = b'!';
    std::fs::write(&incr, &bytes).unwrap();
    let log = dir.path().join("corrupt.log");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrokv"))
        .args([
            "server",
            "--port",
            &free_port().to_string(),
            "--dir",
            d,
            "--appendonly",
            "yes",
            "--logfile",
            log.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "started on a corrupt AOF");
    let text = std::fs::read_to_string(&log).unwrap();
    let name = incr.file_name().unwrap().to_str().unwrap();
    assert!(
        text.contains("Bad file format") && text.contains(name) && text.contains(&format!("offset {star}")),
        "{text}"
    );
}

#[test]
fn appendonly_switched_on_at_runtime_persists_the_existing_dataset() {
    let dir = TempDir::new("aof-runtime");
    let d = dir.path().to_str().unwrap();
    let fk = Server::start(&["--dir", d]);
    let mut c = fk.conn();
    fill(&mut c);
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("yes").query(&mut c).unwrap();
    assert!(wait_until(Duration::from_secs(30), || {
        info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"
            && aof_dir(dir.path()).join("appendonly.aof.manifest").exists()
    }));
    let _: () = c.set("after", "yes").unwrap();
    let want = digest(&mut c);
    drop(fk);
    let fk = Server::start(&["--dir", d, "--appendonly", "yes"]);
    let mut c = wait_loaded(&fk);
    assert_eq!(digest(&mut c), want);
}

#[test]
fn redis_appendonly_dir_loads_into_ferrokv_and_back() {
    let dir = TempDir::new("aof-interop");
    let d = dir.path().to_str().unwrap();
    let Some(rs) = Server::start_redis(&["--dir", d, "--appendonly", "yes"]) else { return };
    let mut r = wait_loaded(&rs);
    fill(&mut r);
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut r).unwrap();
    assert!(wait_until(Duration::from_secs(30), || info_field(&mut r, "persistence", "aof_rewrite_in_progress")
        == "0"
        && info_field(&mut r, "persistence", "aof_rewrite_scheduled") == "0"));
    let _: () = r.set("after-rewrite", "1").unwrap();
    let _: () = r.incr("int", 5).unwrap();
    let want = digest(&mut r);
    drop(rs);
    let fk = Server::start(&["--dir", d, "--appendonly", "yes"]);
    let mut c = wait_loaded(&fk);
    assert_eq!(digest(&mut c), want, "Redis's AOF loads differently");
    let _: () = c.set("from-ferrokv", "1").unwrap();
    let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
    assert!(wait_until(Duration::from_secs(30), || info_field(&mut c, "persistence", "aof_rewrite_in_progress") == "0"));
    let _: () = c.set("after-our-rewrite", "2").unwrap();
    let want = digest(&mut c);
    drop(fk);
    let Some(rs) = Server::start_redis(&["--dir", d, "--appendonly", "yes"]) else { return };
    let mut r = wait_loaded(&rs);
    assert_eq!(digest(&mut r), want, "our AOF loads differently into Redis");
}

/// A Redis 6 single-file `appendonly.aof` in `dir` is upgraded as Redis 7 upgrades it: it
/// becomes the base of a multi-part AOF (manifest first, then the move), loads, keeps
/// growing through incremental files, and the result loads into redis-server too.
#[test]
fn old_style_appendonly_aof_is_upgraded_to_the_multi_part_layout() {
    let dir = TempDir::new("aof-upgrade");
    let d = dir.path();
    let mut old = Vec::new();
    for cmd in
        [&["SELECT", "0"][..], &["SET", "a", "1"], &["RPUSH", "l", "x", "y"], &["SELECT", "2"], &["SET", "b", "2"]]
    {
        old.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
        for a in cmd {
            old.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    std::fs::write(d.join("appendonly.aof"), &old).unwrap();
    let args = ["--dir", d.to_str().unwrap(), "--appendonly", "yes"];
    let fk = Server::start(&args);
    let mut c = wait_loaded(&fk);
    assert_eq!(c.get::<_, Option<String>>("a").unwrap().as_deref(), Some("1"), "{}", fk.log_text());
    assert!(fk.log_text().contains("Successfully migrated an old-style AOF file"), "{}", fk.log_text());
    assert!(!d.join("appendonly.aof").exists());
    assert_eq!(std::fs::read(aof_dir(d).join("appendonly.aof")).unwrap(), old);
    let manifest = std::fs::read_to_string(aof_dir(d).join("appendonly.aof.manifest")).unwrap();
    assert!(manifest.starts_with("file appendonly.aof seq 1 type b\n"), "{manifest}");
    let _: () = c.set("after", "3").unwrap();
    let want = digest(&mut c);
    drop(fk);
    let fk = Server::start(&args);
    let mut c = wait_loaded(&fk);
    assert_eq!(digest(&mut c), want, "{}", fk.log_text());
    drop(fk);
    let Some(rs) = Server::start_redis(&args) else { return };
    let mut r = wait_loaded(&rs);
    assert_eq!(digest(&mut r), want, "the upgraded AOF loads differently into Redis");
}

/// The files of `appenddirname` (sorted) and the manifest's text.
fn aof_files(d: &Path) -> (Vec<String>, String) {
    let mut names: Vec<String> = std::fs::read_dir(aof_dir(d))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    let manifest = std::fs::read_to_string(aof_dir(d).join("appendonly.aof.manifest")).unwrap_or_default();
    (names, manifest)
}

fn rewrites(c: &mut redis::Connection) -> i64 {
    info_field(c, "persistence", "aof_rewrites").parse().unwrap()
}

/// Waits until no rewrite runs or is scheduled and `aof_rewrites` reached `n`.
fn wait_rewrites(c: &mut redis::Connection, n: i64) {
    let ok = wait_until(Duration::from_secs(20), || {
        info_field(c, "persistence", "aof_rewrite_in_progress") == "0"
            && info_field(c, "persistence", "aof_rewrite_scheduled") == "0"
            && info_field(c, "persistence", "aof_rewrites").parse::<i64>().unwrap() == n
    });
    assert!(ok, "{}", info_field(c, "persistence", "aof_rewrites"));
}

/// What BGREWRITEAOF does with `appendonly no`, seen from outside: replies, files, INFO
/// fields, and what a restart with `appendonly yes` loads.
fn bgrewriteaof_with_the_aof_off(start: &dyn Fn(&[&str]) -> Option<Server>) -> Option<Vec<String>> {
    let dir = TempDir::new("aof-off-rewrite");
    let d = dir.path().to_str().unwrap();
    let mut seen = Vec::new();
    let s = start(&["--dir", d, "--appendonly", "yes"])?;
    let mut c = s.conn();
    let _: () = c.set("from-the-aof", 1).unwrap();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("appendonly").arg("no").query(&mut c).unwrap();
    let _: () = c.set("after-off", 2).unwrap();
    let mut raw = s.raw();
    let before = rewrites(&mut c);
    seen.push(String::from_utf8_lossy(&raw.cmd(&[b"BGREWRITEAOF"])).into_owned());
    wait_rewrites(&mut c, before + 1);
    let (files, manifest) = aof_files(dir.path());
    seen.push(format!("{files:?} {manifest:?}"));
    for f in ["aof_enabled", "aof_last_bgrewrite_status", "aof_rewrites", "aof_rewrites_consecutive_failures"] {
        seen.push(format!("{f}:{}", info_field(&mut c, "persistence", f)));
    }
    let info: String = redis::cmd("INFO").arg("persistence").query(&mut c).unwrap();
    seen.push(format!("aof_current_size shown: {}", info.contains("aof_current_size")));
    // Inside a transaction it is scheduled, and runs after.
    raw.send(b"MULTI\r\nBGREWRITEAOF\r\nEXEC\r\n");
    for _ in 0..3 {
        seen.push(String::from_utf8_lossy(&raw.read_reply().unwrap()).into_owned());
    }
    wait_rewrites(&mut c, before + 2);
    let (files, manifest) = aof_files(dir.path());
    seen.push(format!("{files:?} {manifest:?}"));
    let want = digest(&mut c);
    drop(s);
    let s = start(&["--dir", d, "--appendonly", "yes"])?;
    let mut c = wait_loaded(&s);
    seen.push(format!("the base holds the dataset: {}", digest(&mut c) == want));
    Some(seen)
}

/// Redis 7.0 runs BGREWRITEAOF with `appendonly no` (it was refused with "ERR AOF is off"):
/// a new base in appenddirname, a manifest naming only it (the old base and incremental
/// files retired and deleted), INFO counting the rewrite; scheduled inside MULTI. Step by
/// step the same as redis-server.
#[test]
fn bgrewriteaof_runs_with_the_aof_off_as_redis_does() {
    let ours = bgrewriteaof_with_the_aof_off(&|args| Some(Server::start(args))).unwrap();
    assert_eq!(ours[0], "+Background append only file rewriting started\r\n");
    assert!(ours.last().unwrap().ends_with("true"), "{ours:#?}");
    let Some(theirs) = bgrewriteaof_with_the_aof_off(&Server::start_redis) else { return };
    assert_eq!(ours, theirs);
}
