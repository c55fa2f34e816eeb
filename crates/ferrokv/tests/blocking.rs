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
