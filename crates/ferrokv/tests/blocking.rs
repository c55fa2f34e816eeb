//! Blocked clients through the real binary, each scenario run against ferrokv and, when it
//! is installed, Debian's redis-server, with the raw replies compared to the same
//! expectations: which commands wake a waiter (RENAME, RENAMENX, COPY, MOVE, SWAPDB), which
//! key a waiter is served from, and how blocked clients show in INFO and CLIENT LIST.
//!
//! A waiter is known to be blocked once INFO counts it in `blocked_clients` (which these
//! tests thereby check on ferrokv too); every wait is bounded.

mod common;
use common::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// ferrokv, plus redis-server when available (tests skip it with a notice otherwise).
fn servers() -> Vec<(&'static str, Server)> {
    let mut v = vec![("ferrokv", Server::start(&[]))];
    if let Some(r) = Server::start_redis(&[]) {
        v.push(("redis", r));
    }
    v
}

fn send(c: &mut Raw, args: &[&str]) {
    let mut out = Vec::new();
    ferrokv_resp::encode_command(&mut out, args.iter().map(|a| a.as_bytes()));
    c.send(&out);
}

fn cmd(c: &mut Raw, args: &[&str]) -> String {
    let refs: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    String::from_utf8_lossy(&c.cmd(&refs)).into_owned()
}

fn info_field(admin: &mut Raw, name: &str) -> String {
    let info = cmd(admin, &["INFO", "clients"]);
    let prefix = format!("{name}:");
    info.split("\r\n").find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {name}: {info}")).to_string()
}

/// Waits until the server counts `n` blocked clients.
fn wait_blocked(who: &str, admin: &mut Raw, n: usize) {
    let ok = wait_until(WAIT, || info_field(admin, "blocked_clients") == n.to_string());
    assert!(ok, "{who}: blocked_clients never reached {n}: {}", info_field(admin, "blocked_clients"));
}

/// Sends a blocking command on `c` and returns once the server has blocked it.
fn block(who: &str, c: &mut Raw, admin: &mut Raw, args: &[&str], blocked_after: usize) {
    send(c, args);
    wait_blocked(who, admin, blocked_after);
}

fn reply(c: &mut Raw) -> String {
    String::from_utf8_lossy(&c.read_reply().expect("reply")).into_owned()
}

fn pair(k: &str, v: &str) -> String {
    format!("*2\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n", k.len(), v.len())
}

#[test]
fn commands_that_put_a_list_under_a_key_name_wake_its_waiters() {
    for (who, s) in servers() {
        let (mut a, mut b, mut admin) = (s.raw(), s.raw(), s.raw());
        for op in ["RENAME", "RENAMENX"] {
            block(who, &mut a, &mut admin, &["BLPOP", "dst", "0"], 1);
            cmd(&mut b, &["RPUSH", "src", "x"]);
            cmd(&mut b, &[op, "src", "dst"]);
            assert_eq!(reply(&mut a), pair("dst", "x"), "{who}: {op}");
            wait_blocked(who, &mut admin, 0);
        }
        cmd(&mut b, &["RPUSH", "src", "x", "y"]);
        block(who, &mut a, &mut admin, &["BLPOP", "c", "0"], 1);
        cmd(&mut b, &["COPY", "src", "c"]);
        assert_eq!(reply(&mut a), pair("c", "x"), "{who}: COPY");
        // COPY … DB and MOVE reach a client blocked in the other db.
        cmd(&mut a, &["SELECT", "1"]);
        block(who, &mut a, &mut admin, &["BLPOP", "c1", "0"], 1);
        cmd(&mut b, &["COPY", "src", "c1", "DB", "1"]);
        assert_eq!(reply(&mut a), pair("c1", "x"), "{who}: COPY DB");
        block(who, &mut a, &mut admin, &["BRPOP", "src", "0"], 1);
        cmd(&mut b, &["MOVE", "src", "1"]);
        assert_eq!(reply(&mut a), pair("src", "y"), "{who}: MOVE");
        // SWAPDB: the waiter stays in db 1, which now holds db 0's list.
        block(who, &mut a, &mut admin, &["BLPOP", "s", "0"], 1);
        cmd(&mut b, &["RPUSH", "s", "v"]);
        assert_eq!(cmd(&mut b, &["SWAPDB", "0", "1"]), "+OK\r\n");
        assert_eq!(reply(&mut a), pair("s", "v"), "{who}: SWAPDB");
    }
}

#[test]
fn a_waiter_is_served_from_the_key_that_became_ready() {
    for (who, s) in servers() {
        let (mut a, mut b, mut admin) = (s.raw(), s.raw(), s.raw());
        // The first key became a string in the same transaction: served from the second.
        block(who, &mut a, &mut admin, &["BLPOP", "a", "b", "0"], 1);
        for c in [&["MULTI"][..], &["RPUSH", "a", "x"], &["SET", "a", "str"], &["RPUSH", "b", "y"], &["EXEC"]] {
            cmd(&mut b, c);
        }
        assert_eq!(reply(&mut a), pair("b", "y"), "{who}");
        // Both filled in one transaction: the key signalled first serves.
        block(who, &mut a, &mut admin, &["BLPOP", "c", "d", "0"], 1);
        for c in [&["MULTI"][..], &["RPUSH", "d", "1"], &["RPUSH", "c", "2"], &["EXEC"]] {
            cmd(&mut b, c);
        }
        assert_eq!(reply(&mut a), pair("d", "1"), "{who}");
    }
}

#[test]
fn blocked_and_paused_clients_are_visible() {
    for (who, s) in servers() {
        let (mut a, mut b, mut c, mut admin) = (s.raw(), s.raw(), s.raw(), s.raw());
        let ids: Vec<String> = [&mut a, &mut b, &mut c].into_iter().map(|x| cmd(x, &["CLIENT", "ID"])).collect();
        let id = |i: usize| ids[i].trim_start_matches(':').trim_end().to_string();
        assert_eq!(info_field(&mut admin, "blocked_clients"), "0", "{who}");
        block(who, &mut a, &mut admin, &["BLPOP", "k", "0"], 1);
        block(who, &mut b, &mut admin, &["BLPOP", "k", "100"], 2);
        assert_eq!(info_field(&mut admin, "clients_in_timeout_table"), "1", "{who}: only b has a timeout");
        let list = cmd(&mut admin, &["CLIENT", "LIST"]);
        for i in [0, 1] {
            assert!(list.contains(&format!("id={} ", id(i))), "{who}: {list}");
            let line = list.lines().find(|l| l.contains(&format!("id={} ", id(i)))).unwrap_or_default();
            assert!(line.contains(" flags=b "), "{who}: {line}");
        }
        cmd(&mut admin, &["RPUSH", "k", "1", "2"]);
        assert_eq!(reply(&mut a), pair("k", "1"), "{who}");
        assert_eq!(reply(&mut b), pair("k", "2"), "{who}");
        assert_eq!(info_field(&mut admin, "blocked_clients"), "0", "{who}");
        assert_eq!(info_field(&mut admin, "clients_in_timeout_table"), "0", "{who}");
        // A write postponed by CLIENT PAUSE blocks its client too.
        assert_eq!(cmd(&mut admin, &["CLIENT", "PAUSE", "20000", "WRITE"]), "+OK\r\n");
        block(who, &mut c, &mut admin, &["SET", "x", "1"], 1);
        let list = cmd(&mut admin, &["CLIENT", "LIST", "ID", &id(2)]);
        assert!(list.contains(" flags=b "), "{who}: {list}");
        assert_eq!(info_field(&mut admin, "clients_in_timeout_table"), "0", "{who}");
        assert_eq!(cmd(&mut admin, &["CLIENT", "UNPAUSE"]), "+OK\r\n");
        assert_eq!(reply(&mut c), "+OK\r\n", "{who}");
        wait_blocked(who, &mut admin, 0);
    }
}

/// `*2` of a key and a nested array of `[member, score]` pairs (BZMPOP) or of elements (BLMPOP).
fn mpop_reply(key: &str, items: &[String]) -> String {
    let mut out = format!("*2\r\n${}\r\n{key}\r\n*{}\r\n", key.len(), items.len());
    for i in items {
        out.push_str(i);
    }
    out
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

#[test]
fn each_kind_of_waiter_takes_its_own_end() {
    for (who, s) in servers() {
        let (mut a, mut b, mut c, mut d, mut admin) = (s.raw(), s.raw(), s.raw(), s.raw(), s.raw());
        block(who, &mut a, &mut admin, &["BZPOPMIN", "z", "0"], 1);
        block(who, &mut b, &mut admin, &["BZPOPMAX", "other", "z", "0"], 2);
        block(who, &mut c, &mut admin, &["BZMPOP", "0", "1", "z", "MAX", "COUNT", "2"], 3);
        block(who, &mut d, &mut admin, &["BLMPOP", "0", "2", "l1", "l2", "RIGHT", "COUNT", "2"], 4);
        assert_eq!(cmd(&mut admin, &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"]), ":5\r\n");
        // First come, first served, each from its end of what the earlier ones left.
        assert_eq!(reply(&mut a), format!("*3\r\n{}{}{}", bulk("z"), bulk("a"), bulk("1")), "{who}");
        assert_eq!(reply(&mut b), format!("*3\r\n{}{}{}", bulk("z"), bulk("e"), bulk("5")), "{who}");
        let pairs = [pair("d", "4"), pair("c", "3")];
        assert_eq!(reply(&mut c), mpop_reply("z", &pairs), "{who}");
        assert_eq!(cmd(&mut admin, &["ZRANGE", "z", "0", "-1"]), format!("*1\r\n{}", bulk("b")), "{who}");
        wait_blocked(who, &mut admin, 1);
        assert_eq!(cmd(&mut admin, &["RPUSH", "l2", "x", "y", "z"]), ":3\r\n");
        assert_eq!(reply(&mut d), mpop_reply("l2", &[bulk("z"), bulk("y")]), "{who}");
        assert_eq!(cmd(&mut admin, &["LRANGE", "l2", "0", "-1"]), format!("*1\r\n{}", bulk("x")), "{who}");
    }
}

#[test]
fn zset_waiters_ignore_deletes_and_other_types() {
    for (who, s) in servers() {
        let (mut a, mut l, mut b, mut admin) = (s.raw(), s.raw(), s.raw(), s.raw());
        block(who, &mut a, &mut admin, &["BZPOPMIN", "k", "0"], 1);
        block(who, &mut l, &mut admin, &["BLPOP", "k", "0"], 2);
        // A sorted set that is gone, or is a string, by the end of the transaction serves
        // nobody; a list under the key does not serve the BZPOPMIN waiter, nor a sorted
        // set the BLPOP waiter.
        for c in [&["MULTI"][..], &["ZADD", "k", "1", "x"], &["DEL", "k"], &["EXEC"]] {
            cmd(&mut b, c);
        }
        for c in [&["MULTI"][..], &["ZADD", "k", "1", "x"], &["SET", "k", "str"], &["EXEC"]] {
            cmd(&mut b, c);
        }
        assert_eq!(cmd(&mut b, &["DEL", "k"]), ":1\r\n");
        for c in [&["MULTI"][..], &["RPUSH", "k", "v"], &["ZADD", "k", "2", "y"], &["EXEC"]] {
            cmd(&mut b, c);
        }
        assert_eq!(reply(&mut l), pair("k", "v"), "{who}: the list waiter takes the list");
        assert_eq!(info_field(&mut admin, "blocked_clients"), "1", "{who}: the zset waiter still waits");
        assert_eq!(cmd(&mut b, &["ZADD", "k", "2", "y"]), ":1\r\n");
        assert_eq!(reply(&mut a), format!("*3\r\n{}{}{}", bulk("k"), bulk("y"), bulk("2")), "{who}");
        assert_eq!(cmd(&mut b, &["EXISTS", "k"]), ":0\r\n", "{who}");
    }
}

#[test]
fn a_zadd_early_in_a_pipeline_serves_the_waiter_before_the_next_command() {
    for (who, s) in servers() {
        let (mut a, mut b, mut admin) = (s.raw(), s.raw(), s.raw());
        block(who, &mut a, &mut admin, &["BZMPOP", "0", "1", "z", "MIN"], 1);
        let mut wire = Vec::new();
        for c in [&["ZADD", "z", "1", "m"][..], &["ZCARD", "z"], &["ZADD", "z", "2", "n"], &["ZCARD", "z"]] {
            ferrokv_resp::encode_command(&mut wire, c.iter().map(|x| x.as_bytes()));
        }
        b.send(&wire);
        let replies: Vec<String> = (0..4).map(|_| reply(&mut b)).collect();
        assert_eq!(replies, [":1\r\n", ":0\r\n", ":1\r\n", ":1\r\n"], "{who}");
        assert_eq!(reply(&mut a), mpop_reply("z", &[pair("m", "1")]), "{who}");
    }
}

#[test]
fn several_waiters_time_out_independently() {
    for (who, s) in servers() {
        let (mut a, mut b, mut c, mut d, mut admin) = (s.raw(), s.raw(), s.raw(), s.raw(), s.raw());
        let start = std::time::Instant::now();
        block(who, &mut a, &mut admin, &["BZPOPMIN", "z", "0.2"], 1);
        block(who, &mut b, &mut admin, &["BLMPOP", "0.3", "1", "z", "LEFT"], 2);
        block(who, &mut c, &mut admin, &["BZMPOP", "0.3", "1", "z", "MIN"], 3);
        block(who, &mut d, &mut admin, &["BZPOPMAX", "z", "0"], 4);
        for w in [&mut a, &mut b, &mut c] {
            assert_eq!(reply(w), "*-1\r\n", "{who}");
        }
        let waited = start.elapsed();
        // Less 1 ms: deadlines count from the command time in whole milliseconds.
        assert!(waited >= Duration::from_millis(299), "{who}: timed out after {waited:?}");
        wait_blocked(who, &mut admin, 1);
        assert_eq!(cmd(&mut admin, &["ZADD", "z", "1", "a", "2", "b"]), ":2\r\n");
        assert_eq!(reply(&mut d), format!("*3\r\n{}{}{}", bulk("z"), bulk("b"), bulk("2")), "{who}");
        // Timed-out clients are usable again.
        assert_eq!(cmd(&mut a, &["ZCARD", "z"]), ":1\r\n", "{who}");
    }
}

#[test]
fn sort_store_wakes_the_waiters_of_a_new_list() {
    for (who, s) in servers() {
        let (mut a, mut b, mut admin) = (s.raw(), s.raw(), s.raw());
        cmd(&mut b, &["RPUSH", "src", "3", "1", "2"]);
        block(who, &mut a, &mut admin, &["BLPOP", "sorted", "0"], 1);
        assert_eq!(cmd(&mut b, &["SORT", "src", "STORE", "sorted"]), ":3\r\n", "{who}");
        assert_eq!(reply(&mut a), pair("sorted", "1"), "{who}");
        assert_eq!(cmd(&mut b, &["LRANGE", "sorted", "0", "-1"]), format!("*2\r\n{}{}", bulk("2"), bulk("3")), "{who}");
    }
}
