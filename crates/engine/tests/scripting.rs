//! Scripts in the engine: what reaches the write feed (effects replication), stats of
//! the commands scripts run, WATCH, and blocking commands called from scripts.

mod common;
use common::*;

#[test]
fn script_effects_reach_the_feed_as_one_transaction() {
    let mut h = Harness::new();
    let c = h.client();
    h.eng.feed.enabled = true;
    h.cmd(c, &["eval", "redis.call('set', KEYS[1], 'v') redis.call('incr', 'n') return 1", "1", "k"]);
    h.cmd(c, &["eval", "redis.call('set', 'only', '1')", "0"]);
    h.cmd(c, &["eval", "return redis.call('get', 'k')", "0"]);
    let stream = String::from_utf8(h.eng.feed.take().0).unwrap();
    assert_eq!(
        stream,
        "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n\
         *2\r\n$4\r\nincr\r\n$1\r\nn\r\n*1\r\n$4\r\nEXEC\r\n*3\r\n$3\r\nset\r\n$4\r\nonly\r\n$1\r\n1\r\n"
    );
}

#[test]
fn set_repl_none_keeps_writes_local() {
    let mut h = Harness::new();
    let c = h.client();
    h.eng.feed.enabled = true;
    h.cmd(c, &["eval", "redis.set_repl(redis.REPL_NONE) redis.call('set', 'a', '1')", "0"]);
    assert!(h.eng.feed.take().0.is_empty());
    assert_eq!(h.cmd(c, &["get", "a"]), bulk("1"));
}

#[test]
fn inner_commands_are_counted_in_commandstats() {
    let mut h = Harness::new();
    let c = h.client();
    h.cmd(c, &["eval", "redis.call('set', 'a', '1') redis.call('set', 'b', '2') return redis.pcall('nosuch')", "0"]);
    let info = match h.cmd(c, &["info", "commandstats"]) {
        ferrokv_resp::Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("{other:?}"),
    };
    assert!(info.contains("cmdstat_set:calls=2,"), "{info}");
    assert!(info.contains("cmdstat_eval:calls=1,"), "{info}");
}

#[test]
fn script_writes_fail_other_clients_watch() {
    let mut h = Harness::new();
    let (a, b) = (h.client(), h.client());
    h.cmd(a, &["watch", "k"]);
    h.cmd(b, &["eval", "redis.call('set', 'k', 'x')", "0"]);
    h.cmd(a, &["multi"]);
    h.cmd(a, &["get", "k"]);
    assert_eq!(h.cmd(a, &["exec"]), ferrokv_resp::Frame::Null);
}

#[test]
fn blocking_commands_are_refused_in_scripts() {
    // Redis 7.0 flags them `noscript`: a script never waits.
    let mut h = Harness::new();
    let c = h.client();
    let r = h.cmd(c, &["eval", "return redis.pcall('blpop', 'nothing', 0)", "0"]);
    assert_eq!(r, err("ERR This Redis command is not allowed from script"));
}
