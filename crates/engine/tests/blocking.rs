//! Clients blocked on keys, driven through the engine with time moved by hand: which
//! commands wake them, which key a waiter is served from, what a served command puts in
//! the write feed, how blocked clients show in INFO and CLIENT LIST, and how timeouts are
//! rounded. Every expectation here was checked against redis-server 7.0.15 (the socket
//! tests in `crates/ferrokv/tests/blocking.rs` compare the observable ones live).

mod common;
use common::*;
use ferrokv_resp::Frame;

fn pair(k: &str, v: &str) -> Frame {
    arr(vec![bulk(k), bulk(v)])
}

/// Text of a bulk or verbatim reply.
fn text(f: Frame) -> String {
    match f {
        Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("not a bulk reply: {other:?}"),
    }
}

fn info_field(h: &mut Harness, c: ferrokv_engine::ClientId, name: &str) -> String {
    let info = text(h.cmd(c, &["info", "clients"]));
    let prefix = format!("{name}:");
    info.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {name} in {info}")).to_string()
}

fn client_flags(h: &mut Harness, c: ferrokv_engine::ClientId, id: ferrokv_engine::ClientId) -> String {
    let list = text(h.cmd(c, &["client", "list"]));
    let line = list.lines().find(|l| l.starts_with(&format!("id={id} "))).expect("client listed").to_string();
    line.split(' ').find_map(|f| f.strip_prefix("flags=")).expect("flags field").to_string()
}

#[test]
fn rename_and_renamenx_serve_clients_blocked_on_the_destination() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let (a, b) = (h.client(), h.client());
    for cmd in ["rename", "renamenx"] {
        assert_eq!(h.raw(a, &["blpop", "dst", "0"]), b"");
        h.cmd(b, &["rpush", "src", "x", "y"]);
        h.cmd(b, &[cmd, "src", "dst"]);
        assert_eq!(h.pending(a), vec![pair("dst", "x")], "{cmd}");
        assert_eq!(
            feed(&mut h),
            cmds(&[&["rpush", "src", "x", "y"], &[cmd, "src", "dst"], &["LPOP", "dst"]]),
            "the served pop is propagated after the {cmd}"
        );
        h.cmd(b, &["del", "dst"]);
        h.eng.feed.take();
    }
    // A value of another type under the name serves no one: the waiter keeps waiting.
    assert_eq!(h.raw(a, &["blpop", "dst", "0"]), b"");
    h.cmd(b, &["set", "str", "v"]);
    h.cmd(b, &["rename", "str", "dst"]);
    assert_eq!(h.pending(a), vec![]);
    assert_eq!(h.eng.block_deadline(a), Some(None));
}

#[test]
fn copy_and_move_serve_clients_blocked_in_the_target_db() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let (a, b) = (h.client(), h.client());
    h.cmd(b, &["rpush", "src", "x", "y"]);
    // COPY within the db.
    assert_eq!(h.raw(a, &["blpop", "c", "0"]), b"");
    h.cmd(b, &["copy", "src", "c"]);
    assert_eq!(h.pending(a), vec![pair("c", "x")]);
    assert_eq!(h.cmd(b, &["llen", "src"]), int(2), "the source is untouched");
    // COPY … DB n and MOVE reach a client blocked in that db.
    h.cmd(a, &["select", "1"]);
    assert_eq!(h.raw(a, &["blpop", "c1", "0"]), b"");
    h.cmd(b, &["copy", "src", "c1", "db", "1"]);
    assert_eq!(h.pending(a), vec![pair("c1", "x")]);
    assert_eq!(h.raw(a, &["brpop", "src", "0"]), b"");
    h.cmd(b, &["move", "src", "1"]);
    assert_eq!(h.pending(a), vec![pair("src", "y")]);
    h.eng.feed.take();
}

#[test]
fn swapdb_serves_clients_whose_keys_exist_after_the_swap() {
    let mut h = Harness::new();
    let (a, b, c) = (h.client(), h.client(), h.client());
    h.cmd(a, &["select", "1"]);
    // a waits in db 1 for `s`, c in db 0 for `t`; each key is in the other db.
    assert_eq!(h.raw(a, &["blpop", "s", "0"]), b"");
    assert_eq!(h.raw(c, &["blpop", "t", "0"]), b"");
    h.cmd(b, &["rpush", "s", "v"]);
    h.cmd(b, &["select", "1"]);
    h.cmd(b, &["rpush", "t", "w"]);
    assert_eq!(h.cmd(b, &["swapdb", "0", "1"]), simple("OK"));
    assert_eq!(h.pending(a), vec![pair("s", "v")]);
    assert_eq!(h.pending(c), vec![pair("t", "w")]);
}

#[test]
fn a_waiter_is_served_from_the_key_that_became_ready() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let (a, b) = (h.client(), h.client());
    // The first key turned into a string in the same EXEC: the waiter is still served
    // from the second (re-running BLPOP over both keys would answer WRONGTYPE).
    assert_eq!(h.raw(a, &["blpop", "a", "b", "0"]), b"");
    h.cmd(b, &["multi"]);
    h.cmd(b, &["rpush", "a", "x"]);
    h.cmd(b, &["set", "a", "str"]);
    h.cmd(b, &["rpush", "b", "y"]);
    h.cmd(b, &["exec"]);
    assert_eq!(h.pending(a), vec![pair("b", "y")]);
    h.eng.feed.take();
    // Both keys filled in one EXEC: the one signalled first serves, not the first listed.
    assert_eq!(h.raw(a, &["blpop", "c", "d", "0"]), b"");
    h.cmd(b, &["multi"]);
    h.cmd(b, &["rpush", "d", "1"]);
    h.cmd(b, &["rpush", "c", "2"]);
    h.cmd(b, &["exec"]);
    assert_eq!(h.pending(a), vec![pair("d", "1")]);
    assert_eq!(feed(&mut h).last(), Some(&vec!["LPOP".to_string(), "d".to_string()]));
    // The same for BLMPOP, with its count.
    h.cmd(b, &["del", "c"]);
    assert_eq!(h.raw(a, &["blmpop", "0", "2", "c", "d", "left", "count", "5"]), b"");
    h.cmd(b, &["multi"]);
    h.cmd(b, &["rpush", "d", "1", "2"]);
    h.cmd(b, &["rpush", "c", "3"]);
    h.cmd(b, &["exec"]);
    assert_eq!(h.pending(a), vec![arr(vec![bulk("d"), arr(vec![bulk("1"), bulk("2")])])]);
    assert_eq!(feed(&mut h).last(), Some(&vec!["LPOP".to_string(), "d".to_string(), "2".to_string()]));
}

#[test]
fn a_served_blmove_propagates_lowercase_directions() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let (a, b) = (h.client(), h.client());
    assert_eq!(h.raw(a, &["blmove", "src", "dst", "LEFT", "Right", "0"]), b"");
    h.cmd(b, &["rpush", "src", "v"]);
    assert_eq!(h.pending(a), vec![bulk("v")]);
    // Served at once, the client's own words are kept.
    h.cmd(b, &["rpush", "src", "w"]);
    assert_eq!(h.cmd(a, &["blmove", "src", "dst", "LEFT", "Right", "0"]), bulk("w"));
    assert_eq!(
        feed(&mut h),
        cmds(&[
            &["rpush", "src", "v"],
            &["LMOVE", "src", "dst", "left", "right"],
            &["rpush", "src", "w"],
            &["LMOVE", "src", "dst", "LEFT", "Right"],
        ])
    );
}

#[test]
fn a_served_blmove_with_a_wrong_destination_fails_and_the_next_waiter_is_served() {
    let mut h = Harness::new();
    let (a, b, c) = (h.client(), h.client(), h.client());
    h.cmd(c, &["set", "str", "x"]);
    assert_eq!(h.raw(a, &["blmove", "src", "str", "left", "left", "0"]), b"");
    assert_eq!(h.raw(b, &["blpop", "src", "0"]), b"");
    h.cmd(c, &["rpush", "src", "v"]);
    assert_eq!(h.pending(a), vec![err("WRONGTYPE Operation against a key holding the wrong kind of value")]);
    assert_eq!(h.pending(b), vec![pair("src", "v")]);
    assert_eq!(h.eng.block_deadline(a), None, "the failed BLMOVE is no longer blocked");
}

#[test]
fn blocked_clients_show_in_info_and_client_list() {
    let mut h = Harness::new();
    let (a, b, c) = (h.client(), h.client(), h.client());
    assert_eq!(info_field(&mut h, c, "blocked_clients"), "0");
    assert_eq!(h.raw(a, &["blpop", "k", "0"]), b"");
    assert_eq!(h.raw(b, &["blpop", "k", "5"]), b"");
    assert_eq!(info_field(&mut h, c, "blocked_clients"), "2");
    // Only clients with a timeout are in Redis's timeout table.
    assert_eq!(info_field(&mut h, c, "clients_in_timeout_table"), "1");
    assert_eq!(client_flags(&mut h, c, a), "b");
    assert_eq!(client_flags(&mut h, c, c), "N");
    h.cmd(c, &["multi"]);
    h.cmd(c, &["rpush", "k", "v"]);
    h.cmd(c, &["exec"]);
    assert_eq!(h.pending(a), vec![pair("k", "v")]);
    assert_eq!(client_flags(&mut h, c, a), "N");
    assert_eq!(client_flags(&mut h, c, b), "b");
    assert_eq!(info_field(&mut h, c, "blocked_clients"), "1");
    h.now += 5000;
    assert!(h.eng.block_timeout(b, h.now));
    assert_eq!(info_field(&mut h, c, "blocked_clients"), "0");
    assert_eq!(info_field(&mut h, c, "clients_in_timeout_table"), "0");
}

#[test]
fn a_served_command_is_counted_once() {
    let mut h = Harness::new();
    let (a, b) = (h.client(), h.client());
    h.cmd(b, &["config", "resetstat"]);
    assert_eq!(h.raw(a, &["blpop", "k", "0"]), b"");
    h.cmd(b, &["rpush", "k", "v"]);
    assert_eq!(h.pending(a), vec![pair("k", "v")]);
    let stats = text(h.cmd(b, &["info", "stats"]));
    // CONFIG RESETSTAT, BLPOP, RPUSH; the INFO itself is counted after its reply.
    assert!(stats.contains("total_commands_processed:3\r\n"), "{stats}");
    let cmdstats = text(h.cmd(b, &["info", "commandstats"]));
    assert!(cmdstats.contains("cmdstat_blpop:calls=1,"), "{cmdstats}");
}

#[test]
fn timeouts_are_rounded_like_redis_long_doubles() {
    let mut h = Harness::new();
    let a = h.client();
    // 0.253 s is 254 ms in long double arithmetic (and 253 in a 64-bit double).
    assert_eq!(h.raw(a, &["blpop", "k", "0.253"]), b"");
    assert_eq!(h.eng.block_deadline(a), Some(Some(h.now + 254)));
    assert!(h.eng.block_timeout(a, h.now + 254));
    h.pending(a);
    // Too small for a double, not for a long double: 1 ms.
    assert_eq!(h.raw(a, &["blpop", "k", "1e-400"]), b"");
    assert_eq!(h.eng.block_deadline(a), Some(Some(h.now + 1)));
    assert!(h.eng.block_timeout(a, h.now + 1));
    h.pending(a);
    assert_eq!(h.cmd(a, &["blpop", "k", "1e309"]), err("ERR timeout is negative"));
    assert_eq!(h.cmd(a, &["blpop", "k", "1e5000"]), err("ERR timeout is not a float or out of range"));
}
