//! Client-side caching on an in-process engine: the paths the differential script cannot
//! take (client ids, the guard the hot path pays, state left behind by disconnects).

mod common;
use common::*;
use ferrokv_resp::Frame;

fn push(keys: &[&str]) -> Frame {
    Frame::Push(vec![bulk("invalidate"), arr(keys.iter().map(|k| bulk(k)).collect())])
}

#[test]
fn nobody_tracking_leaves_the_guard_off() {
    let mut h = Harness::new();
    let a = h.client();
    h.cmd(a, &["set", "k", "1"]);
    h.cmd(a, &["get", "k"]);
    assert!(!h.eng.tracking.active());
    h.cmd(a, &["client", "tracking", "on"]);
    assert!(h.eng.tracking.active());
    h.cmd(a, &["get", "k"]);
    h.cmd(a, &["client", "tracking", "off"]);
    // The key read stays in the table until written, as in Redis.
    assert!(h.eng.tracking.active());
    h.cmd(a, &["set", "k", "2"]);
    assert!(!h.eng.tracking.active(), "the stale entry is gone with the write");
}

#[test]
fn a_redirect_to_the_writer_hears_of_its_own_write() {
    let mut h = Harness::new();
    let (a, b) = (h.client(), h.client());
    h.cmd(b, &["hello", "3"]);
    let id = b.to_string();
    assert_eq!(h.cmd(a, &["client", "tracking", "on", "redirect", &id]), simple("OK"));
    h.cmd(a, &["get", "k"]);
    // Redis writes the redirected push as the key changes, before the writer's reply.
    let raw = h.raw(b, &["set", "k", "1"]);
    let (first, n) = Frame::decode(&raw).unwrap().unwrap();
    assert_eq!(first, push(&["k"]));
    assert_eq!(&raw[n..], b"+OK\r\n");
    assert_eq!(h.cmd(a, &["client", "getredir"]), int(b as i64));
}

#[test]
fn a_disconnected_bcast_client_leaves_no_prefix_behind() {
    let mut h = Harness::new();
    let (a, b) = (h.client(), h.client());
    h.cmd(a, &["hello", "3"]);
    h.cmd(a, &["client", "tracking", "on", "bcast", "prefix", "x", "prefix", "y"]);
    h.cmd(b, &["hello", "3"]);
    h.cmd(b, &["client", "tracking", "on", "bcast", "prefix", "x"]);
    assert_eq!(h.eng.tracking.totals(), (0, 0, 2));
    assert_eq!(h.eng.tracking.clients(), 2);
    h.eng.disconnect(a);
    assert_eq!(h.eng.tracking.totals(), (0, 0, 1));
    assert_eq!(h.eng.tracking.clients(), 1);
    // BCAST notes go out after the batch: after the writer's own reply.
    assert_eq!(h.raw(b, &["set", "x1", "1"]), b"+OK\r\n>2\r\n$10\r\ninvalidate\r\n*1\r\n$2\r\nx1\r\n");
    h.cmd(b, &["reset"]);
    assert_eq!(h.eng.tracking.totals(), (0, 0, 0));
    assert_eq!(h.eng.tracking.clients(), 0);
    assert!(!h.eng.tracking.active());
}

#[test]
fn a_tracking_client_of_a_replica_hears_its_masters_writes() {
    let mut h = Harness::new();
    let (reader, master) = (h.client(), h.client());
    h.cmd(reader, &["hello", "3"]);
    h.cmd(reader, &["client", "tracking", "on"]);
    h.cmd(reader, &["get", "k"]);
    // The master's stream runs as the master client (what the replica link does).
    let mut mc = h.eng.clients.take(master).unwrap();
    mc.repl_role = Some(ferrokv_engine::client::ReplRole::Master);
    mc.superuser = true;
    h.eng.master_command(&mut mc, ferrokv_resp::Argv::from_slices(&["set", "k", "1"]), 0, h.now);
    h.eng.clients.put(mc);
    assert_eq!(h.pending(reader), vec![push(&["k"])]);
}
