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
