//! Functions (FUNCTION LOAD, FCALL) with real processes: libraries travel to and from
//! redis-server as DUMP payloads, RDB files and replication (both directions), survive
//! DEBUG RELOAD, AOF rewrites of both formats and a kill -9, and a library whose load
//! never ends is cut off while a second client keeps being served. Replies and error texts
//! are compared with redis-server line by line in tests/diff/functions.txt.

mod common;
mod repl_support;
use common::*;
use repl_support::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const LIB_A: &str = "#!lua name=liba
redis.register_function{function_name='incrby2', callback=function(keys, args)
  return redis.call('incrby', keys[1], 2)
end, description='adds two'}
redis.register_function{function_name='getit', callback=function(keys, args)
  return redis.call('get', keys[1])
end, flags={'no-writes', 'allow-stale'}}";

const LIB_B: &str = "#!lua name=libb
local function push(keys, args) return redis.call('rpush', keys[1], unpack(args)) end
redis.register_function('pushall', push)";

/// FUNCTION LIST WITHCODE in a form that ignores Redis's dictionary order: libraries by
/// name, functions by name, flags sorted.
fn libraries(c: &mut redis::Connection) -> String {
    let v: redis::Value = redis::cmd("FUNCTION").arg("LIST").arg("WITHCODE").query(c).expect("FUNCTION LIST");
    canon(&v)
}

fn canon(v: &redis::Value) -> String {
    use redis::Value::*;
    const KEYS: &[&[u8]] =
        &[b"library_name", b"engine", b"functions", b"library_code", b"name", b"description", b"flags"];
    match v {
        Array(items) | Set(items) => {
            let is_map = items.len() % 2 == 0
                && !items.is_empty()
                && items.iter().step_by(2).all(|k| matches!(k, BulkString(b) if KEYS.contains(&&b[..])));
            if is_map {
                let m: BTreeMap<String, String> = items.chunks(2).map(|p| (canon(&p[0]), canon(&p[1]))).collect();
                return format!("{m:?}");
            }
            let mut parts: Vec<String> = items.iter().map(canon).collect();
            parts.sort();
            format!("{parts:?}")
        }
        BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        SimpleString(s) => format!("+{s}"),
        Nil => "nil".into(),
        other => format!("{other:?}"),
    }
}

fn load(c: &mut redis::Connection, code: &str) {
    let _: String = redis::cmd("FUNCTION").arg("LOAD").arg(code).query(c).expect("FUNCTION LOAD");
}

/// Runs both libraries' functions; returns what they answered.
fn exercise(c: &mut redis::Connection, tag: &str) -> (i64, Option<String>, i64) {
    let n: i64 = redis::cmd("FCALL").arg("incrby2").arg(1).arg(format!("{tag}:n")).query(c).unwrap();
    let got: Option<String> = redis::cmd("FCALL_RO").arg("getit").arg(1).arg(format!("{tag}:n")).query(c).unwrap();
    let len: i64 =
        redis::cmd("FCALL").arg("PUSHALL").arg(1).arg(format!("{tag}:l")).arg("a").arg("b").query(c).unwrap();
    (n, got, len)
}

#[test]
fn dump_payloads_restore_both_ways_with_redis() {
    let Some(rs) = Server::start_redis(&[]) else { return };
    let fk = Server::start(&[]);
    let (mut r, mut c) = (rs.conn(), fk.conn());
    load(&mut c, LIB_A);
    load(&mut c, LIB_B);
    let ours: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut c).unwrap();
    let _: () = redis::cmd("FUNCTION").arg("RESTORE").arg(&ours).query(&mut r).expect("Redis restores our payload");
    assert_eq!(libraries(&mut r), libraries(&mut c));
    assert_eq!(exercise(&mut r, "x"), (2, Some("2".into()), 2));

    // Redis's payload, with each policy.
    let theirs: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut r).unwrap();
    let err = redis::cmd("FUNCTION").arg("RESTORE").arg(&theirs).query::<()>(&mut c).unwrap_err();
    assert!(err.to_string().contains("Library liba already exists"), "{err}");
    let _: () = redis::cmd("FUNCTION").arg("DELETE").arg("liba").query(&mut c).unwrap();
    let err = redis::cmd("FUNCTION").arg("RESTORE").arg(&theirs).arg("APPEND").query::<()>(&mut c).unwrap_err();
    assert!(err.to_string().contains("Library libb already exists"), "{err}");
    let _: () = redis::cmd("FUNCTION").arg("RESTORE").arg(&theirs).arg("REPLACE").query(&mut c).unwrap();
    assert_eq!(libraries(&mut c), libraries(&mut r));
    load(&mut c, "#!lua name=extra\nredis.register_function('extra', function() return 1 end)");
    let _: () = redis::cmd("FUNCTION").arg("RESTORE").arg(&theirs).arg("FLUSH").query(&mut c).unwrap();
    assert_eq!(libraries(&mut c), libraries(&mut r));
    assert_eq!(exercise(&mut c, "y"), (2, Some("2".into()), 2));
    // A damaged payload is refused whole.
    let mut bad = theirs.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x20;
    let err = redis::cmd("FUNCTION").arg("RESTORE").arg(&bad).arg("FLUSH").query::<()>(&mut c).unwrap_err();
    assert!(err.to_string().contains("DUMP payload version or checksum are wrong"), "{err}");
    assert_eq!(libraries(&mut c), libraries(&mut r));
}

/// SAVE on `from`, then a server of the other kind started on the same directory.
fn save(c: &mut redis::Connection) {
    let _: () = redis::cmd("SAVE").query(c).expect("SAVE");
}

#[test]
fn rdb_files_with_functions_load_both_ways() {
    let dir = TempDir::new("fn-rdb");
    let d = dir.path().to_str().unwrap();
    let fk = Server::start(&["--dir", d]);
    let mut c = fk.conn();
    load(&mut c, LIB_A);
    load(&mut c, LIB_B);
    exercise(&mut c, "k");
    save(&mut c);
    let (want_libs, want_digest) = (libraries(&mut c), digest(&mut c));
    drop(fk);
    let Some(rs) = Server::start_redis(&["--dir", d]) else { return };
    let mut r = wait_loaded(&rs);
    assert_eq!(libraries(&mut r), want_libs, "Redis loads our RDB's functions differently");
    assert_eq!(digest(&mut r), want_digest);
    assert_eq!(info_field(&mut r, "memory", "number_of_libraries"), "2");
    // Redis writes the file now; ferrokv reads it back.
    let _: () = redis::cmd("FUNCTION").arg("DELETE").arg("libb").query(&mut r).unwrap();
    exercise_a(&mut r);
    save(&mut r);
    let (want_libs, want_digest) = (libraries(&mut r), digest(&mut r));
    drop(rs);
    let fk = Server::start(&["--dir", d]);
    let mut c = wait_loaded(&fk);
    assert_eq!(libraries(&mut c), want_libs, "we load Redis's RDB functions differently");
    assert_eq!(digest(&mut c), want_digest);
    assert_eq!(info_field(&mut c, "memory", "number_of_functions"), "2");
    assert_eq!(info_field(&mut c, "memory", "number_of_libraries"), "1");
    let n: i64 = redis::cmd("FCALL").arg("incrby2").arg(1).arg("k:n").query(&mut c).unwrap();
    assert_eq!(n, 6);
}

fn exercise_a(c: &mut redis::Connection) {
    let _: i64 = redis::cmd("FCALL").arg("incrby2").arg(1).arg("k:n").query(c).unwrap();
}

#[test]
fn debug_reload_aof_rewrites_and_kill9_keep_functions() {
    for preamble in ["no", "yes"] {
        let dir = TempDir::new("fn-aof");
        let d = dir.path().to_str().unwrap();
        let mut fk = Server::start(&["--dir", d, "--appendonly", "yes", "--aof-use-rdb-preamble", preamble]);
        let mut c = wait_loaded(&fk);
        load(&mut c, LIB_A);
        load(&mut c, LIB_B);
        exercise(&mut c, "a");
        let want = libraries(&mut c);
        let _: () = redis::cmd("DEBUG").arg("RELOAD").query(&mut c).unwrap();
        assert_eq!(libraries(&mut c), want, "DEBUG RELOAD lost functions");
        let _: String = redis::cmd("BGREWRITEAOF").query(&mut c).unwrap();
        assert!(wait_until(Duration::from_secs(30), || info_field(&mut c, "persistence", "aof_rewrite_in_progress")
            == "0"
            && info_field(&mut c, "persistence", "aof_rewrite_scheduled") == "0"));
        // After the rewrite: a change to the libraries and a function's writes, then kill -9.
        let _: () = redis::cmd("FUNCTION").arg("DELETE").arg("libb").query(&mut c).unwrap();
        load(
            &mut c,
            "#!lua name=libc\nredis.register_function('late', function(k) return redis.call('incr', k[1]) end)",
        );
        let _: i64 = redis::cmd("FCALL").arg("late").arg(1).arg("late").query(&mut c).unwrap();
        let (want, want_digest) = (libraries(&mut c), digest(&mut c));
        let _: () = redis::cmd("DEBUG").arg("LOADAOF").query(&mut c).unwrap();
        assert_eq!(libraries(&mut c), want, "DEBUG LOADAOF (preamble {preamble})");
        fk.kill9();
        let fk = Server::start(&["--dir", d, "--appendonly", "yes", "--aof-use-rdb-preamble", preamble]);
        let mut c = wait_loaded(&fk);
        assert_eq!(libraries(&mut c), want, "restart after kill -9 (preamble {preamble})");
        assert_eq!(digest(&mut c), want_digest);
    }
}

#[test]
fn ferrokv_master_redis_replica_run_the_same_functions() {
    let master = Server::start(FAST);
    let mut m = master.conn();
    load(&mut m, LIB_A);
    exercise_a(&mut m);
    let port = master.port.to_string();
    let Some(replica) = Server::start_redis(&["--replicaof", "127.0.0.1", &port]) else { return };
    let mut r = replica.conn();
    // Through the full sync.
    assert_converged(&mut m, &mut r);
    assert_eq!(libraries(&mut r), libraries(&mut m));
    // Through the stream: a new library, writes from functions, a delete.
    load(&mut m, LIB_B);
    exercise(&mut m, "live");
    assert_converged(&mut m, &mut r);
    assert_eq!(libraries(&mut r), libraries(&mut m));
    let got: Option<String> = redis::cmd("FCALL_RO").arg("getit").arg(1).arg("live:n").query(&mut r).unwrap();
    assert_eq!(got.as_deref(), Some("2"));
    let _: () = redis::cmd("FUNCTION").arg("DELETE").arg("liba").query(&mut m).unwrap();
    load(
        &mut m,
        "#!lua name=liba\nredis.register_function('incrby2', function(k) return redis.call('incrby', k[1], 20) end)",
    );
    exercise_after_replace(&mut m);
    assert_converged(&mut m, &mut r);
    assert_eq!(libraries(&mut r), libraries(&mut m));
    let _: () = redis::cmd("FUNCTION").arg("FLUSH").query(&mut m).unwrap();
    assert_converged(&mut m, &mut r);
    assert_eq!(libraries(&mut r), "[]");
}

fn exercise_after_replace(c: &mut redis::Connection) {
    let n: i64 = redis::cmd("FCALL").arg("incrby2").arg(1).arg("live:n").query(c).unwrap();
    assert_eq!(n, 22);
}

#[test]
fn redis_master_ferrokv_replica_run_the_same_functions() {
    let Some(master) = Server::start_redis(&["--repl-diskless-sync-delay", "0"]) else { return };
    let mut m = master.conn();
    load(&mut m, LIB_A);
    load(&mut m, LIB_B);
    exercise(&mut m, "pre");
    let replica = start_replica(master.port, &[]);
    let mut r = replica.conn();
    // Replica libraries it held before the full sync are replaced by the master's.
    assert_converged(&mut m, &mut r);
    assert_eq!(libraries(&mut r), libraries(&mut m));
    exercise(&mut m, "live");
    load(&mut m, "#!lua name=libc\nredis.register_function('late', function(k) return redis.call('incr', k[1]) end)");
    let _: i64 = redis::cmd("FCALL").arg("late").arg(1).arg("late").query(&mut m).unwrap();
    assert_converged(&mut m, &mut r);
    assert_eq!(libraries(&mut r), libraries(&mut m));
    // The replica serves no-writes functions, refuses the others.
    let got: Option<String> = redis::cmd("FCALL_RO").arg("getit").arg(1).arg("live:n").query(&mut r).unwrap();
    assert_eq!(got.as_deref(), Some("2"));
    let err = redis::cmd("FCALL").arg("incrby2").arg(1).arg("x").query::<i64>(&mut r).unwrap_err();
    assert!(err.to_string().contains("Can not run script with write flag on readonly replica"), "{err}");
    // A full sync after a restart of the link brings the master's set again.
    let _: () = redis::cmd("FUNCTION").arg("DELETE").arg("libc").query(&mut m).unwrap();
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query(&mut r).unwrap();
    load(&mut r, "#!lua name=local_only\nredis.register_function('mine', function() return 1 end)");
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(master.port).query(&mut r).unwrap();
    assert_converged(&mut m, &mut r);
    assert_eq!(libraries(&mut r), libraries(&mut m));
}

#[test]
fn a_library_that_never_finishes_loading_is_cut_off_while_others_are_served() {
    let fk = Server::start(&[]);
    let mut c = fk.conn();
    let started = Instant::now();
    let err = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=loop\nlocal i = 0 while true do i = i + 1 end")
        .query::<String>(&mut c)
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.to_string().contains("Error registering functions: ERR FUNCTION LOAD timeout"), "{err}");
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(5), "{took:?}");
    // The server kept serving: the same connection and a second one, and nothing loaded.
    let mut other = fk.conn();
    let pong: String = redis::cmd("PING").query(&mut other).unwrap();
    assert_eq!(pong, "PONG");
    assert_eq!(libraries(&mut c), "[]");
    assert_eq!(info_field(&mut c, "memory", "number_of_libraries"), "0");
    // A library that loads, then a function whose error leaves the server serving.
    load(&mut c, "#!lua name=ok\nredis.register_function('boom', function() error('no') end)");
    let err = redis::cmd("FCALL").arg("boom").arg(0).query::<String>(&mut c).unwrap_err();
    assert!(err.to_string().contains("user_function:2: no script: boom, on @user_function:2."), "{err}");
    let pong: String = redis::cmd("PING").query(&mut other).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn damaged_restore_payloads_are_refused_and_never_crash() {
    let fk = Server::start(&[]);
    let mut c = fk.conn();
    load(&mut c, LIB_A);
    load(&mut c, LIB_B);
    let good: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut c).unwrap();
    let want = libraries(&mut c);
    // Past the checksum, so the structure itself is what gets tested.
    let _: () = redis::cmd("DEBUG").arg("SET-SKIP-CHECKSUM-VALIDATION").arg(1).query(&mut c).unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut refused, mut accepted) = (0, 0);
    for _ in 0..2000 {
        if Instant::now() > deadline {
            break;
        }
        let mut p = good.clone();
        match next() % 3 {
            0 => {
                // Flip one to four bytes of the body (the trailer stays valid).
                for _ in 0..1 + next() % 4 {
                    let i = (next() as usize) % (p.len() - 10);
                    p[i] ^= 1 << (next() % 8);
                }
            }
            1 => {
                // Cut the body short.
                let cut = (next() as usize) % (p.len() - 10);
                let trailer = p.split_off(p.len() - 10);
                p.truncate(cut);
                p.extend_from_slice(&trailer);
            }
            _ => {
                // Random bytes in front of the trailer.
                let trailer = p[p.len() - 10..].to_vec();
                p = (0..next() % 64).map(|_| next() as u8).collect();
                p.extend_from_slice(&trailer);
            }
        }
        match redis::cmd("FUNCTION").arg("RESTORE").arg(&p).arg("FLUSH").query::<()>(&mut c) {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert_eq!(e.kind(), redis::ErrorKind::ResponseError, "{e}");
                refused += 1;
            }
        }
        // Whatever happened, the server answers and a good payload restores.
        let _: () = redis::cmd("FUNCTION").arg("RESTORE").arg(&good).arg("FLUSH").query(&mut c).unwrap();
    }
    assert!(refused > 100, "refused {refused}, accepted {accepted}");
    assert_eq!(libraries(&mut c), want);
    assert_eq!(exercise(&mut c, "after"), (2, Some("2".into()), 2));
}

/// INFO's script figures are measured, as Redis's: the cache's count and bytes, the EVAL
/// Lua heap growing with cached scripts and back after SCRIPT FLUSH, and the totals that
/// add the functions' side. A script may read them too (its interpreter is busy then).
#[test]
fn info_reports_script_cache_and_lua_memory() {
    let fk = Server::start(&[]);
    let mut c = fk.conn();
    let field = |c: &mut redis::Connection, f: &str| info_field(c, "memory", f).parse::<u64>().expect(f);
    assert_eq!(field(&mut c, "number_of_cached_scripts"), 0);
    assert_eq!(field(&mut c, "used_memory_scripts_eval"), 0);
    let empty_vm = field(&mut c, "used_memory_vm_eval");
    assert_eq!(field(&mut c, "used_memory_lua"), empty_vm);
    for i in 0..500 {
        let body = format!("local x = redis.call('GET', KEYS[1]) if x == ARGV[1] then return {i} end return x");
        let _: String = redis::cmd("SCRIPT").arg("LOAD").arg(body).query(&mut c).expect("SCRIPT LOAD");
    }
    assert_eq!(field(&mut c, "number_of_cached_scripts"), 500);
    // The cache keeps each script's binary SHA1 and its function's reference (bodies are
    // compiled, not kept).
    let cache = field(&mut c, "used_memory_scripts_eval");
    assert!(cache >= 500 * 24, "{cache}");
    let vm = field(&mut c, "used_memory_vm_eval");
    assert!(vm > empty_vm + 500 * 200, "Lua heap {vm} after 500 scripts, {empty_vm} empty");
    let vm_total = field(&mut c, "used_memory_vm_total");
    assert_eq!(vm_total, vm + field(&mut c, "used_memory_vm_functions"));
    assert_eq!(field(&mut c, "used_memory_scripts"), cache + field(&mut c, "used_memory_functions"));
    let seen: String = redis::cmd("EVAL")
        .arg("return string.match(redis.call('INFO', 'memory'), 'number_of_cached_scripts:(%d+)')")
        .arg(0)
        .query(&mut c)
        .expect("INFO from a script");
    assert_eq!(seen, "501", "the running script counts as cached, as on Redis");
    let () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut c).expect("FLUSH");
    assert_eq!(field(&mut c, "number_of_cached_scripts"), 0);
    assert_eq!(field(&mut c, "used_memory_scripts_eval"), 0);
    assert!(field(&mut c, "used_memory_vm_eval") < vm / 2);
}
