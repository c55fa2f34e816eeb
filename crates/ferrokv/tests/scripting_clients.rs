//! Real client code, unchanged, that relies on server-side Lua: redis-py's `Lock` (with
//! contention between processes), `register_script` (EVALSHA falling back after SCRIPT
//! FLUSH), a sliding-window rate limiter and a reliable queue under concurrent workers
//! (tests/scripting_clients/redis_py_scripts.py checks each), and the `redis` crate's
//! `Script` API. The Python scenarios skip with a reason when redis-py is missing, and fail
//! when FERROKV_REQUIRE_INTEROP=1.

mod common;
use common::*;
use std::process::Command;

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scripting_clients/redis_py_scripts.py");

fn has_redis_py() -> bool {
    let found = Command::new("python3").args(["-c", "import redis.lock"]).output().is_ok_and(|o| o.status.success());
    if !found {
        if interop_required() {
            panic!("python3 with redis-py is required (FERROKV_REQUIRE_INTEROP=1): pip install redis");
        }
        eprintln!("SKIPPED: python3 with redis-py is not installed (pip install redis)");
    }
    found
}

#[test]
fn redis_py_lock_acquire_extend_release_and_contention_between_processes() {
    if !has_redis_py() {
        return;
    }
    let s = Server::start(&[]);
    run_scenario(&s, "lock");
}

#[test]
fn redis_py_register_script_falls_back_after_script_flush() {
    if !has_redis_py() {
        return;
    }
    let s = Server::start(&[]);
    run_scenario(&s, "register_script");
}

#[test]
fn sliding_window_rate_limiter_allows_the_exact_count() {
    if !has_redis_py() {
        return;
    }
    let s = Server::start(&[]);
    run_scenario(&s, "rate_limiter");
}

#[test]
fn reliable_queue_processes_every_job_exactly_once_under_concurrent_workers() {
    if !has_redis_py() {
        return;
    }
    let s = Server::start(&[]);
    run_scenario(&s, "queue");
}

#[test]
fn redis_crate_script_api_invokes_and_reloads_after_noscript() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let incrby = redis::Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    let first: i64 = incrby.key("counter").arg(5).invoke(&mut c).expect("first invoke");
    assert_eq!(first, 5);
    let cached: Vec<bool> = redis::cmd("SCRIPT").arg("EXISTS").arg(incrby.get_hash()).query(&mut c).expect("EXISTS");
    assert_eq!(cached, vec![true]);
    let () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut c).expect("FLUSH");
    // EVALSHA answers NOSCRIPT; the crate loads the script and runs it again.
    let again: i64 = incrby.key("counter").arg(2).invoke(&mut c).expect("invoke after SCRIPT FLUSH");
    assert_eq!(again, 7);
    let cached: Vec<bool> = redis::cmd("SCRIPT").arg("EXISTS").arg(incrby.get_hash()).query(&mut c).expect("EXISTS");
    assert_eq!(cached, vec![true]);
    // Several keys and arguments, and a reply of mixed types.
    let pair = redis::Script::new(
        "redis.call('SET', KEYS[1], ARGV[1]) return {redis.call('GET', KEYS[1]), #KEYS, #ARGV, 3.99}",
    );
    let reply: (String, i64, i64, i64) =
        pair.key("a").key("b").arg("x").arg("y").arg("z").invoke(&mut c).expect("pair");
    assert_eq!(reply, ("x".to_string(), 2, 3, 3));
    // A script error reaches the caller as an error, not a reload loop.
    let failing = redis::Script::new("return redis.call('INCR', KEYS[1])");
    let err = failing.key("a").invoke::<i64>(&mut c).expect_err("INCR of a string");
    assert!(err.to_string().contains("not an integer"), "{err}");
    let evalsha: String = redis::cmd("INFO").arg("commandstats").query(&mut c).expect("INFO");
    assert!(evalsha.contains("cmdstat_evalsha:calls="), "{evalsha}");
}

/// Runs one scenario of redis_py_scripts.py against `server`.
fn run_scenario(server: &Server, scenario: &str) -> String {
    run_python_scenario(SCENARIOS, &[scenario.to_string(), server.port.to_string()], || server.log_text())
}
