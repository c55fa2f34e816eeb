//! MULTI/EXEC, WATCH and what a transaction leaves behind (issue 20): the paths the
//! differential scripts cannot reach (a failing disk, active expiry, the write feed).

mod common;
use common::*;
use ferrokv_resp::Frame;

/// After EXEC answered, PING answers PONG and the watched key no longer matters.
fn assert_out_of_multi(h: &mut Harness, a: ferrokv_engine::ClientId, b: ferrokv_engine::ClientId) {
    assert_eq!(h.cmd(a, &["ping"]), simple("PONG"), "still in MULTI");
    h.cmd(b, &["set", "w", "changed"]);
    h.cmd(a, &["multi"]);
    h.cmd(a, &["get", "w"]);
    assert_eq!(h.cmd(a, &["exec"]), arr(vec![bulk("changed")]), "still watching");
}

#[test]
fn exec_refused_for_a_disk_error_ends_the_transaction() {
    let mut h = Harness::new();
    let (a, b) = (h.client(), h.client());
    h.cmd(a, &["watch", "w"]);
    h.cmd(a, &["multi"]);
    assert_eq!(h.cmd(a, &["set", "k", "1"]), simple("QUEUED"));
    // A failed BGSAVE with save points configured: writes get -MISCONF.
    h.eng.persist.lastbgsave_ok = false;
    let Frame::Error(e) = h.cmd(a, &["exec"]) else { panic!("EXEC must be refused") };
    let e = String::from_utf8_lossy(&e).into_owned();
    assert!(e.starts_with("EXECABORT Transaction discarded because of: MISCONF Redis is configured to save"), "{e}");
    h.eng.persist.lastbgsave_ok = true;
    assert_out_of_multi(&mut h, a, b);
}

#[test]
fn exec_refused_while_loading_ends_the_transaction() {
    let mut h = Harness::new();
    let (a, b) = (h.client(), h.client());
    h.cmd(a, &["watch", "w"]);
    h.cmd(a, &["multi"]);
    h.cmd(a, &["get", "k"]);
    h.eng.persist.loading = Some(ferrokv_engine::persistence::Loading { start_s: 0, total_bytes: 0, loaded_bytes: 0 });
    assert_eq!(
        h.cmd(a, &["exec"]),
        err("EXECABORT Transaction discarded because of: LOADING Redis is loading the dataset in memory")
    );
    h.eng.persist.loading = None;
    assert_out_of_multi(&mut h, a, b);
}

#[test]
fn stale_watched_key_removed_by_active_expiry_does_not_fail_exec() {
    let mut h = Harness::new();
    let (a, b) = (h.client(), h.client());
    h.cmd(b, &["set", "e", "v", "px", "10"]);
    h.cmd(b, &["set", "live", "v", "px", "10"]);
    h.now += 20;
    // `e` is logically expired when watched; `live` is watched before it expires.
    h.cmd(a, &["watch", "e"]);
    h.eng.active_expire(h.now, 100_000);
    assert_eq!(h.eng.db(0).len(), 0, "active expiry removed both keys");
    h.cmd(a, &["multi"]);
    h.cmd(a, &["ping"]);
    assert_eq!(h.cmd(a, &["exec"]), arr(vec![simple("PONG")]));

    h.cmd(b, &["set", "live", "v", "px", "10"]);
    h.cmd(a, &["watch", "live"]);
    h.now += 20;
    h.eng.active_expire(h.now, 100_000);
    h.cmd(a, &["multi"]);
    h.cmd(a, &["ping"]);
    assert_eq!(h.cmd(a, &["exec"]), Frame::Null, "a key that expired after WATCH was modified");
}

#[test]
fn flushdb_of_an_empty_database_counts_no_change_but_is_propagated() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let c = h.client();
    let before = h.eng.dirty;
    h.cmd(c, &["flushdb"]);
    assert_eq!(h.eng.dirty, before);
    h.cmd(c, &["set", "a", "1"]);
    h.cmd(c, &["set", "b", "1"]);
    let before = h.eng.dirty;
    h.cmd(c, &["flushdb"]);
    assert_eq!(h.eng.dirty, before + 2);
    assert_eq!(feed(&mut h), cmds(&[&["flushdb"], &["set", "a", "1"], &["set", "b", "1"], &["flushdb"]]));
}

#[test]
fn smove_to_a_destination_holding_the_member_counts_one_change() {
    let mut h = Harness::new();
    let c = h.client();
    h.cmd(c, &["sadd", "src", "x"]);
    h.cmd(c, &["sadd", "dst", "x"]);
    let before = h.eng.dirty;
    assert_eq!(h.cmd(c, &["smove", "src", "dst", "x"]), int(1));
    assert_eq!(h.eng.dirty, before + 1);
}

#[test]
fn transaction_propagates_select_before_multi() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let c = h.client();
    h.cmd(c, &["set", "a", "1"]);
    h.cmd(c, &["select", "1"]);
    h.cmd(c, &["multi"]);
    h.cmd(c, &["set", "b", "1"]);
    h.cmd(c, &["select", "2"]);
    h.cmd(c, &["set", "c", "1"]);
    h.cmd(c, &["exec"]);
    let stream = String::from_utf8(h.eng.feed.take().0).unwrap();
    let want = "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\n1\r\n\
                *2\r\n$6\r\nSELECT\r\n$1\r\n1\r\n*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nset\r\n$1\r\nb\r\n$1\r\n1\r\n\
                *2\r\n$6\r\nSELECT\r\n$1\r\n2\r\n*3\r\n$3\r\nset\r\n$1\r\nc\r\n$1\r\n1\r\n*1\r\n$4\r\nEXEC\r\n";
    assert_eq!(stream, want);
}

#[test]
fn latencystats_labels_are_printed_like_redis() {
    let mut h = Harness::new();
    let c = h.client();
    assert_eq!(
        h.cmd(c, &["config", "set", "latency-tracking-info-percentiles", "50 99.9 99.99 12.3456789 0.0000001 100"]),
        simple("OK")
    );
    h.cmd(c, &["ping"]);
    let Frame::Bulk(info) = h.cmd(c, &["info", "latencystats"]) else { panic!("INFO is a bulk") };
    let info = String::from_utf8_lossy(&info).into_owned();
    let line = info.lines().find(|l| l.starts_with("latency_percentiles_usec_ping:")).expect("ping line");
    let labels: Vec<&str> = line.split(':').nth(1).unwrap().split(',').map(|p| p.split('=').next().unwrap()).collect();
    assert_eq!(labels, ["p50", "p99.9", "p99.99", "p12.345679", "p0", "p100"]);
}
