//! `ferrokv check-rdb` and `ferrokv check-aof` on real files: written by ferrokv, damaged by
//! hand, compared line by line with Debian's redis-check-rdb / redis-check-aof where the
//! two tools should say the same thing, and repairs that the server then loads.

mod common;
use common::*;
use redis::Commands;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ferrokv");

fn run_with_stdin(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    if let Some(mut s) = child.stdin.take() {
        let _ = s.write_all(stdin);
    }
    child.wait_with_output().expect("wait")
}

fn check(tool: &str, args: &[&str], stdin: &[u8]) -> (i32, String) {
    let out = run_with_stdin(Command::new(BIN).arg(tool).args(args), stdin);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Debian's tool on the same arguments, or None (skip) if it is not installed.
fn redis_check(tool: &str, args: &[&str], stdin: &[u8]) -> Option<(i32, String)> {
    let bin = redis_tool(&format!("redis-{tool}"))?;
    let out = run_with_stdin(Command::new(bin).args(args), stdin);
    Some((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// Our report without ferrokv's own summary lines (redis-check-rdb does not print them).
fn without_summary(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !(l.starts_with("[info] RDB version")
                || l.starts_with("[info] db ")
                || l.starts_with("[info] types:")
                || l.starts_with("[info] encodings:"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn saved_rdb(dir: &Path) -> PathBuf {
    let d = dir.to_str().unwrap();
    let fk = Server::start(&["--dir", d]);
    let mut c = fk.conn();
    let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(500).query(&mut c).unwrap();
    let _: () = c.rpush("list", &["a", "b", "c"]).unwrap();
    let _: () = c.hset("hash", "f", "v").unwrap();
    let _: () = c.sadd("set", &[1, 2, 3]).unwrap();
    let _: () = c.zadd("zset", "m", 1.5).unwrap();
    let _: () = c.set_ex("ttl", "v", 1000).unwrap();
    let _: () = redis::cmd("SELECT").arg(3).query(&mut c).unwrap();
    let _: () = c.set("in-3", "x").unwrap();
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    dir.join("dump.rdb")
}

#[test]
fn check_rdb_reports_a_sound_file_with_a_summary() {
    let dir = TempDir::new("check-rdb-ok");
    let rdb = saved_rdb(dir.path());
    let path = rdb.to_str().unwrap();
    let (code, text) = check("check-rdb", &[path], b"");
    assert_eq!(code, 0, "{text}");
    for want in [
        "[offset 0] Checking RDB file",
        "Selecting DB ID 0",
        "Selecting DB ID 3",
        "Checksum OK",
        "\\o/ RDB looks OK! \\o/",
        "[info] 506 keys read",
        "[info] 1 expires",
        "[info] RDB version 10",
        "[info] db 0: 505 keys, 1 with an expire",
        "[info] db 3: 1 keys, 0 with an expire",
        "[info] types: hash 1, list 1, set 1, string 502, zset 1",
        "[info] encodings: intset 1, listpack 2, quicklist 1, string 502",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    if let Some((rc, theirs)) = redis_check("check-rdb", &[path], b"") {
        assert_eq!(rc, 0);
        assert_eq!(without_summary(&text), theirs, "redis-check-rdb reads the file differently");
    }
}

#[test]
fn check_rdb_reads_redis_own_files_as_redis_check_rdb_does() {
    let dir = TempDir::new("check-rdb-redis");
    let d = dir.path().to_str().unwrap();
    let Some(rs) = Server::start_redis(&["--dir", d]) else { return };
    let mut c = rs.conn();
    let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(300).query(&mut c).unwrap();
    let big: Vec<String> = (0..1000).map(|i| format!("element-{i}")).collect();
    let _: () = c.rpush("big-list", &big).unwrap();
    let _: () = c.hset("hash", "f", "v").unwrap();
    let ints: Vec<i64> = (0..600).collect();
    let _: () = c.sadd("big-int-set", &ints).unwrap();
    let _: () = c.zadd("zset", "m", 1.5).unwrap();
    let _: () = c.set_ex("ttl", "v", 1000).unwrap();
    let _: () = redis::cmd("SAVE").query(&mut c).unwrap();
    drop(rs);
    let rdb = dir.path().join("dump.rdb");
    let path = rdb.to_str().unwrap();
    let (code, ours) = check("check-rdb", &[path], b"");
    let Some((rc, theirs)) = redis_check("check-rdb", &[path], b"") else { return };
    assert_eq!((code, without_summary(&ours)), (rc, theirs));
    assert!(ours.contains("[info] 1 expires"), "{ours}");
    assert!(ours.contains("[info] encodings: hashtable 1, listpack 2, quicklist 1, string 301"), "{ours}");
}

#[test]
fn check_rdb_names_the_offset_key_and_database_of_damage() {
    let dir = TempDir::new("check-rdb-bad");
    let rdb = saved_rdb(dir.path());
    let bytes = std::fs::read(&rdb).unwrap();
    let n = bytes.len();
    // A flipped checksum byte.
    let mut sum = bytes.clone();
    sum[n - 3] ^= 1;
    let bad = dir.path().join("badsum.rdb");
    std::fs::write(&bad, &sum).unwrap();
    let (code, text) = check("check-rdb", &[bad.to_str().unwrap()], b"");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("--- RDB ERROR DETECTED ---") && text.contains("RDB CRC error"), "{text}");
    assert!(text.contains(&format!("[offset {}] RDB CRC error", n - 8)), "{text}");
    if let Some((rc, theirs)) = redis_check("check-rdb", &[bad.to_str().unwrap()], b"") {
        assert_eq!(rc, 1, "{theirs}");
    }
    // Cut in the middle of a value (the one of key in-3, in database 3): key and database
    // are named.
    let at = bytes.windows(4).position(|w| w == b"in-3").unwrap() + 4 + 1;
    let cut = dir.path().join("cut.rdb");
    std::fs::write(&cut, &bytes[..at]).unwrap();
    let (code, text) = check("check-rdb", &[cut.to_str().unwrap()], b"");
    assert_eq!(code, 1);
    assert!(text.contains(&format!("[offset {at}] Unexpected EOF reading RDB file")), "{text}");
    assert!(text.contains("[additional info] Reading key 'in-3'") && text.contains("In database 3"), "{text}");
    // Not an RDB file, a missing file, no argument.
    let (code, text) = check("check-rdb", &[dir.path().join("none").to_str().unwrap()], b"");
    assert_eq!(code, 1);
    assert!(text.contains("No such file or directory"), "{text}");
    std::fs::write(dir.path().join("text.rdb"), b"hello world").unwrap();
    let (code, text) = check("check-rdb", &[dir.path().join("text.rdb").to_str().unwrap()], b"");
    assert_eq!(code, 1);
    assert!(text.contains("Wrong signature"), "{text}");
    let (code, text) = check("check-rdb", &[], b"");
    assert_eq!((code, text.trim()), (1, "Usage: ferrokv check-rdb <rdb-file-name>"));
}

#[test]
fn links_named_like_redis_tools_run_the_checkers() {
    let dir = TempDir::new("check-links");
    let rdb = saved_rdb(dir.path());
    for (link, arg, want) in [
        ("redis-check-rdb", rdb.to_str().unwrap(), "RDB looks OK"),
        ("ferrokv-check-aof", rdb.to_str().unwrap(), "Start checking Old-Style AOF"),
    ] {
        let path = dir.path().join(link);
        std::os::unix::fs::symlink(BIN, &path).unwrap();
        let out = Command::new(&path).arg(arg).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(want), "{link}: {text}");
    }
}

// ---- check-aof ---------------------------------------------------------------------

/// An AOF directory written by ferrokv: an RDB-preamble base and an incremental file.
fn ferrokv_aof(dir: &Path) -> PathBuf {
    let d = dir.to_str().unwrap();
    let fk = Server::start(&["--dir", d, "--appendonly", "yes"]);
    let mut c = fk.conn();
    let _: () = redis::cmd("DEBUG").arg("POPULATE").arg(100).query(&mut c).unwrap();
    let _: () = c.set("a", "1").unwrap();
    let _: () = redis::pipe().atomic().incr("n", 1).incr("n", 1).query(&mut c).unwrap();
    let _: () = c.set("b", "2").unwrap();
    drop(fk);
    dir.join("appendonlydir")
}

fn manifest(aof: &Path) -> String {
    aof.join("appendonly.aof.manifest").to_str().unwrap().to_string()
}

fn last_incr(aof: &Path) -> PathBuf {
    let text = std::fs::read_to_string(aof.join("appendonly.aof.manifest")).unwrap();
    aof.join(text.lines().rfind(|l| l.ends_with("type i")).unwrap().split(' ').nth(1).unwrap())
}

/// Same exit code and same output as redis-check-aof (ours has extra summary lines in the
/// RDB preamble part). Each tool runs on its own copy of the directory, since --fix writes.
fn same_as_redis(aof: &Path, args: &[&str], stdin: &[u8]) -> (i32, String) {
    let theirs_dir = aof.with_extension("redis-copy");
    let _ = std::fs::remove_dir_all(&theirs_dir);
    std::fs::create_dir_all(&theirs_dir).unwrap();
    for e in std::fs::read_dir(aof).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), theirs_dir.join(e.file_name())).unwrap();
    }
    let ours = check("check-aof", args, stdin);
    let theirs_args: Vec<String> =
        args.iter().map(|a| a.replace(aof.to_str().unwrap(), theirs_dir.to_str().unwrap())).collect();
    let theirs_refs: Vec<&str> = theirs_args.iter().map(String::as_str).collect();
    if let Some((rc, text)) = redis_check("check-aof", &theirs_refs, stdin) {
        let text = text.replace(theirs_dir.to_str().unwrap(), aof.to_str().unwrap());
        assert_eq!((ours.0, without_summary(&ours.1)), (rc, text), "differs from redis-check-aof");
    }
    let _ = std::fs::remove_dir_all(&theirs_dir);
    ours
}

#[test]
fn check_aof_accepts_what_ferrokv_writes_like_redis_check_aof() {
    let dir = TempDir::new("check-aof-ok");
    let aof = ferrokv_aof(dir.path());
    let (code, text) = same_as_redis(&aof, &[&manifest(&aof)], b"");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Start to check BASE AOF (RDB format)."), "{text}");
    assert!(text.contains("RDB preamble is OK, proceeding with AOF tail..."), "{text}");
    assert!(text.ends_with("All AOF files and manifest are valid\n"), "{text}");
    // The directory itself works too (ferrokv's addition).
    let (code, text) = check("check-aof", &[aof.to_str().unwrap()], b"");
    assert_eq!(code, 0, "{text}");
    // An old-style single file: the incremental file on its own.
    let incr = last_incr(&aof);
    let (code, text) = same_as_redis(&aof, &[incr.to_str().unwrap()], b"");
    assert_eq!(code, 0, "{text}");
    assert!(text.starts_with("Start checking Old-Style AOF\n"), "{text}");
}

#[test]
fn truncated_tail_is_reported_refused_and_fixed_after_asking() {
    let dir = TempDir::new("check-aof-fix");
    let aof = ferrokv_aof(dir.path());
    let incr = last_incr(&aof);
    let good = std::fs::metadata(&incr).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&incr).unwrap();
    f.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\nhel").unwrap();
    drop(f);
    let m = manifest(&aof);
    let (code, text) = same_as_redis(&aof, &[&m], b"");
    assert_eq!(code, 1);
    assert!(text.contains(&format!("ok_up_to={good},")), "{text}");
    assert!(text.contains("Expected to read 7 bytes, got 3 bytes"), "{text}");
    assert!(text.contains("is not valid. Use the --fix option to try fixing it."), "{text}");
    // --fix asks; anything but y leaves the file alone.
    let (code, text) = same_as_redis(&aof, &["--fix", &m], b"n\n");
    assert_eq!(code, 1);
    assert!(text.contains("Continue? [y/N]: Aborting..."), "{text}");
    let (code, _) = check("check-aof", &["--fix", &m], b"");
    assert_eq!(code, 1, "no answer is no");
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), good + 27);
    let (code, text) = same_as_redis(&aof, &["--fix", &m], b"y\n");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Successfully truncated AOF"), "{text}");
    assert_eq!(std::fs::metadata(&incr).unwrap().len(), good);
    // The repaired AOF loads even where a truncated one is refused.
    let fk =
        Server::start(&["--dir", dir.path().to_str().unwrap(), "--appendonly", "yes", "--aof-load-truncated", "no"]);
    let mut c = fk.conn();
    assert!(wait_until(Duration::from_secs(10), || redis::cmd("PING").query::<String>(&mut c).is_ok()));
    assert_eq!(c.get::<_, String>("b").unwrap(), "2");
    assert_eq!(c.get::<_, Option<String>>("c").unwrap(), None);
}

/// A hand-made multi-part AOF: a command-form base and two incremental files.
fn handmade(dir: &Path, incr1: &[u8], incr2: &[u8]) -> PathBuf {
    let aof = dir.join("appendonlydir");
    std::fs::create_dir_all(&aof).unwrap();
    std::fs::write(
        aof.join("a.1.base.aof"),
        b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
    )
    .unwrap();
    std::fs::write(aof.join("a.1.incr.aof"), incr1).unwrap();
    std::fs::write(aof.join("a.2.incr.aof"), incr2).unwrap();
    std::fs::write(
        aof.join("appendonly.aof.manifest"),
        "file a.1.base.aof seq 1 type b\nfile a.1.incr.aof seq 1 type i\nfile a.2.incr.aof seq 2 type i\n",
    )
    .unwrap();
    aof
}

#[test]
fn damage_anywhere_is_named_like_redis_check_aof_names_it() {
    let ok: &[u8] = b"*1\r\n$4\r\nPING\r\n";
    let cases: &[(&str, &[u8], &[u8])] = &[
        ("clean", ok, ok),
        ("wrong prefix in the last file", ok, b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nDEL\r\n#1\r\nk\r\n"),
        ("cut header", ok, b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nDEL\r\n"),
        ("open MULTI", ok, b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n"),
        ("closed MULTI", ok, b"*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*1\r\n$4\r\nEXEC\r\n"),
        ("EXEC alone", ok, b"*1\r\n$4\r\nEXEC\r\n"),
        ("nested MULTI", ok, b"*1\r\n$5\r\nMULTI\r\n*1\r\n$5\r\nMULTI\r\n"),
        ("garbage", ok, b"*1\r\n$4\r\nPING\r\nhello\r\n"),
        ("no CRLF after an argument", ok, b"*1\r\n$4\r\nPINGPONG\r\n"),
        ("damage in a file that is not the last", b"*1\r\n$4\r\nPINX", ok),
        ("empty files", b"", b""),
    ];
    for (what, incr1, incr2) in cases {
        let dir = TempDir::new("check-aof-cases");
        let aof = handmade(dir.path(), incr1, incr2);
        let m = manifest(&aof);
        let (code, text) = same_as_redis(&aof, &[&m], b"");
        assert_eq!(code == 0, ["clean", "closed MULTI", "empty files"].contains(what), "{what}: {text}");
        // --fix repairs the last file only.
        let (code, text) = same_as_redis(&aof, &["--fix", &m], b"y\n");
        if *what == "damage in a file that is not the last" {
            assert_eq!(code, 1);
            assert!(text.contains("Failed to truncate AOF a.1.incr.aof because it is not the last file"), "{text}");
        } else {
            assert_eq!(code, 0, "{what}: {text}");
            let (code, text) = check("check-aof", &[&m], b"");
            assert_eq!(code, 0, "{what} after --fix: {text}");
        }
    }
}

#[test]
fn manifest_problems_and_missing_files_are_refused() {
    let ok: &[u8] = b"*1\r\n$4\r\nPING\r\n";
    let dir = TempDir::new("check-aof-manifest");
    let aof = handmade(dir.path(), ok, ok);
    let m = manifest(&aof);
    std::fs::remove_file(aof.join("a.2.incr.aof")).unwrap();
    let (code, text) = same_as_redis(&aof, &[&m], b"");
    assert_eq!(code, 1);
    assert!(text.contains("a.2.incr.aof: No such file or directory, aborting..."), "{text}");
    std::fs::write(aof.join("a.2.incr.aof"), ok).unwrap();
    let mut text = std::fs::read_to_string(&m).unwrap();
    text.push_str("file x seq 1 typ\n");
    std::fs::write(&m, text).unwrap();
    let (code, out) = check("check-aof", &[&m], b"");
    assert_eq!(code, 1);
    assert!(out.contains("*** FATAL AOF MANIFEST FILE ERROR ***"), "{out}");
    assert!(out.contains("at line 4") && out.contains(">>> 'file x seq 1 typ'"), "{out}");
    assert!(out.contains("Invalid AOF manifest file format"), "{out}");
    let (code, out) = check("check-aof", &["--bogus", "x", "y", "z"], b"");
    assert_eq!(code, 1);
    assert!(out.starts_with("Usage: ferrokv check-aof [--fix|--truncate-to-timestamp $timestamp]"), "{out}");
}

#[test]
fn truncate_to_timestamp_cuts_the_last_file_at_the_first_later_annotation() {
    let ok: &[u8] = b"*1\r\n$4\r\nPING\r\n#TS:100\r\n*1\r\n$4\r\nPING\r\n";
    let last: &[u8] = b"#TS:200\r\n*1\r\n$4\r\nPING\r\n#TS:300\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n";
    let dir = TempDir::new("check-aof-ts");
    let aof = handmade(dir.path(), ok, last);
    let m = manifest(&aof);
    let (code, text) = same_as_redis(&aof, &["--truncate-to-timestamp", "250", &m], b"");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Successfully truncated AOF a.2.incr.aof to timestamp 250"), "{text}");
    assert_eq!(std::fs::read(aof.join("a.2.incr.aof")).unwrap(), &last[..23]);
    let (code, text) = same_as_redis(&aof, &["--truncate-to-timestamp", "150", &m], b"");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("has nothing before timestamp 150"), "{text}");
    let (code, text) = same_as_redis(&aof, &["--truncate-to-timestamp", "50", &m], b"");
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("because it is not the last file."), "{text}");
    let (code, text) = check("check-aof", &["--truncate-to-timestamp", "x", &m], b"");
    assert_eq!((code, text.trim()), (1, "Invalid timestamp, aborting..."));
}

#[test]
fn truncate_to_timestamp_on_redis_own_timestamped_aof_matches_redis_check_aof() {
    let dir = TempDir::new("check-aof-redis-ts");
    let d = dir.path().to_str().unwrap();
    let Some(rs) = Server::start_redis(&["--dir", d, "--appendonly", "yes", "--aof-timestamp-enabled", "yes"]) else {
        return;
    };
    let mut c = rs.conn();
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let _: () = c.set("first", 1).unwrap();
    let first_second = now();
    // Redis writes one #TS annotation per second with writes: make the next writes land
    // in a later second (bounded wait for the clock). Redis stamps them with its cached
    // time, which may trail ours on a loaded machine: a full second more makes it certain.
    assert!(wait_until(Duration::from_secs(4), || now() > first_second + 1));
    let _: () = c.set("second", 2).unwrap();
    let _: () = c.incr("n", 5).unwrap();
    drop(rs);
    let aof = dir.path().join("appendonlydir");
    let m = manifest(&aof);
    let (code, text) = same_as_redis(&aof, &[&m], b"");
    assert_eq!(code, 0, "{text}");
    let ts = first_second.to_string();
    let (code, text) = same_as_redis(&aof, &["--truncate-to-timestamp", &ts, &m], b"");
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("Successfully truncated AOF appendonly.aof.1.incr.aof to timestamp {ts}")),
        "{text}"
    );
    let Some(rs) = Server::start_redis(&["--dir", d, "--appendonly", "yes"]) else { return };
    let mut c = rs.conn();
    assert!(wait_until(Duration::from_secs(10), || redis::cmd("PING").query::<String>(&mut c).is_ok()));
    assert_eq!(c.get::<_, Option<i64>>("first").unwrap(), Some(1));
    assert_eq!(c.get::<_, Option<i64>>("second").unwrap(), None, "the later second was not cut");
}

/// ferrokv's own AOF with `aof-timestamp-enabled yes` carries the same `#TS:` annotations:
/// redis-check-aof and ours cut it back to a second, and both servers load the result.
#[test]
fn ferrokv_timestamped_aof_can_be_truncated_to_a_timestamp() {
    let dir = TempDir::new("check-aof-ferrokv-ts");
    let d = dir.path().to_str().unwrap();
    let fk = Server::start(&["--dir", d, "--appendonly", "yes", "--aof-timestamp-enabled", "yes"]);
    let mut c = fk.conn();
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let _: () = c.set("first", 1).unwrap();
    let first_second = now();
    assert!(wait_until(Duration::from_secs(3), || now() > first_second));
    let _: () = c.set("second", 2).unwrap();
    drop(fk);
    let aof = dir.path().join("appendonlydir");
    let incr = std::fs::read_to_string(last_incr(&aof)).unwrap();
    assert!(incr.starts_with("#TS:"), "{incr:?}");
    assert_eq!(incr.matches("#TS:").count(), 2, "{incr:?}");
    let m = manifest(&aof);
    let ts = first_second.to_string();
    let (code, text) = same_as_redis(&aof, &["--truncate-to-timestamp", &ts, &m], b"");
    assert_eq!(code, 0, "{text}");
    let fk = Server::start(&["--dir", d, "--appendonly", "yes"]);
    let mut c = fk.conn();
    assert_eq!(c.get::<_, Option<i64>>("first").unwrap(), Some(1), "{}", fk.log_text());
    assert_eq!(c.get::<_, Option<i64>>("second").unwrap(), None, "the later second was not cut");
}
