//! Engine behaviour through its public API: dispatch checks, strings, expiry, keyspace
//! commands, transactions, pub/sub and the write feed.

mod common;
use common::*;
use ferrokv_resp::Frame;

#[test]
fn dispatch_errors_use_redis_texts() {
    let mut h = Harness::new();
    let c = h.client();
    assert_eq!(h.cmd(c, &["foo", "a", "b"]), err("ERR unknown command 'foo', with args beginning with: 'a' 'b' "));
    assert_eq!(h.cmd(c, &["get"]), err("ERR wrong number of arguments for 'get' command"));
    assert_eq!(h.cmd(c, &["config", "nope"]), err("ERR unknown subcommand 'nope'. Try CONFIG HELP."));
    assert_eq!(h.cmd(c, &["config"]), err("ERR wrong number of arguments for 'config' command"));
    assert_eq!(h.cmd(c, &["config", "get"]), err("ERR wrong number of arguments for 'config|get' command"));
}

#[test]
fn strings_and_types() {
    let mut h = Harness::new();
    let c = h.client();
    assert_eq!(h.cmd(c, &["set", "a", "123"]), simple("OK"));
    assert_eq!(h.cmd(c, &["get", "a"]), bulk("123"));
    assert_eq!(h.cmd(c, &["object", "encoding", "a"]), bulk("int"));
    assert_eq!(h.cmd(c, &["incrby", "a", "7"]), int(130));
    assert_eq!(h.cmd(c, &["append", "a", "x"]), int(4));
    assert_eq!(h.cmd(c, &["object", "encoding", "a"]), bulk("raw"));
    assert_eq!(h.cmd(c, &["incr", "a"]), err("ERR value is not an integer or out of range"));
    assert_eq!(h.cmd(c, &["set", "f", "0.1"]), simple("OK"));
    assert_eq!(h.cmd(c, &["incrbyfloat", "f", "0.2"]), bulk("0.3"));
    assert_eq!(h.cmd(c, &["set", "k", "v", "nx"]), simple("OK"));
    assert_eq!(h.cmd(c, &["set", "k", "w", "nx"]), Frame::Null);
    assert_eq!(h.cmd(c, &["set", "k", "w", "get"]), bulk("v"));
    assert_eq!(h.cmd(c, &["set", "k", "w", "nx", "xx"]), err("ERR syntax error"));
    assert_eq!(h.cmd(c, &["set", "k", "w", "ex", "0"]), err("ERR invalid expire time in 'set' command"));
    assert_eq!(h.cmd(c, &["mset", "x", "1", "y"]), err("ERR wrong number of arguments for 'mset' command"));
    assert_eq!(h.cmd(c, &["getrange", "k", "0", "-1"]), bulk("w"));
    assert_eq!(h.cmd(c, &["setrange", "k", "3", "z"]), int(4));
    assert_eq!(h.cmd(c, &["get", "k"]), Frame::Bulk(b"w\0\0z".to_vec().into()));
    assert_eq!(h.cmd(c, &["setbit", "bits", "7", "1"]), int(0));
    assert_eq!(h.cmd(c, &["bitcount", "bits"]), int(1));
    assert_eq!(h.cmd(c, &["bitpos", "bits", "1"]), int(7));
    assert_eq!(h.cmd(c, &["type", "bits"]), simple("string"));
    assert_eq!(h.cmd(c, &["type", "nokey"]), simple("none"));
    assert_eq!(h.cmd(c, &["lcs", "nokey", "nokey2"]), bulk(""));
}

#[test]
fn expiry_is_lazy_and_active() {
    let mut h = Harness::new();
    let c = h.client();
    h.cmd(c, &["set", "a", "1", "px", "100"]);
    h.cmd(c, &["set", "b", "1", "px", "100"]);
    assert_eq!(h.cmd(c, &["pttl", "a"]), int(100));
    h.now += 101;
    assert_eq!(h.cmd(c, &["get", "a"]), Frame::Null);
    assert_eq!(h.eng.db(0).len(), 1, "b is still there until active expiry finds it");
    h.eng.active_expire(h.now, 10_000);
    assert_eq!(h.eng.db(0).len(), 0);
    assert_eq!(h.eng.stats.expired_keys, 2);
}

/// Redis expires a key once the time is *past* its expiry (`now > when`): at the very
/// millisecond it is still there, for lookups and for active expiry alike.
#[test]
fn a_key_lives_through_its_expiry_millisecond() {
    let mut h = Harness::new();
    let c = h.client();
    h.cmd(c, &["set", "a", "1", "px", "100"]);
    h.cmd(c, &["set", "b", "1", "px", "100"]);
    h.now += 100;
    assert_eq!(h.cmd(c, &["get", "a"]), Frame::Bulk(b"1".to_vec().into()));
    assert_eq!(h.cmd(c, &["pttl", "a"]), int(0));
    h.eng.active_expire(h.now, 10_000);
    assert_eq!(h.eng.db(0).len(), 2);
    h.now += 1;
    assert_eq!(h.cmd(c, &["get", "a"]), Frame::Null);
    h.eng.active_expire(h.now, 10_000);
    assert_eq!(h.eng.db(0).len(), 0);
}

#[test]
fn transactions_and_watch() {
    let mut h = Harness::new();
    let (a, b) = (h.client(), h.client());
    h.cmd(a, &["watch", "k"]);
    h.cmd(a, &["multi"]);
    assert_eq!(h.cmd(a, &["incr", "k"]), simple("QUEUED"));
    h.cmd(b, &["set", "k", "5"]);
    assert_eq!(h.cmd(a, &["exec"]), Frame::Null);
    h.cmd(a, &["multi"]);
    h.cmd(a, &["incr", "k"]);
    assert_eq!(h.cmd(a, &["nosuch"]), err("ERR unknown command 'nosuch', with args beginning with: "));
    assert_eq!(h.cmd(a, &["exec"]), err("EXECABORT Transaction discarded because of previous errors."));
    h.cmd(a, &["multi"]);
    h.cmd(a, &["incr", "k"]);
    h.cmd(a, &["incr", "k"]);
    assert_eq!(h.cmd(a, &["exec"]), arr(vec![int(6), int(7)]));
}

#[test]
fn pubsub_between_clients() {
    let mut h = Harness::new();
    let (s, p) = (h.client(), h.client());
    assert_eq!(h.cmd(s, &["subscribe", "ch"]), arr(vec![bulk("subscribe"), bulk("ch"), int(1)]));
    assert_eq!(h.cmd(s, &["get", "x"]), err("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"));
    assert_eq!(h.cmd(p, &["publish", "ch", "hi"]), int(1));
    assert_eq!(h.pending(s), vec![arr(vec![bulk("message"), bulk("ch"), bulk("hi")])]);
}

#[test]
fn unsubscribing_from_all_counts_down_one_confirmation_at_a_time() {
    let mut h = Harness::new();
    let s = h.client();
    h.raw(s, &["subscribe", "a", "b", "c"]);
    h.raw(s, &["psubscribe", "p*", "q*"]);
    // Channels come back in set order (Redis's is its dict's), so compare the counts.
    let counts = |frames: Vec<Frame>, kind: &str| -> Vec<i64> {
        frames
            .into_iter()
            .map(|f| match f {
                Frame::Array(v) if v[0] == bulk(kind) => match v[2] {
                    Frame::Integer(n) => n,
                    ref other => panic!("count {other:?}"),
                },
                other => panic!("not a {kind} confirmation: {other:?}"),
            })
            .collect()
    };
    let raw = h.raw(s, &["unsubscribe"]);
    let frames = decode_all(&raw);
    assert_eq!(counts(frames, "unsubscribe"), vec![4, 3, 2]);
    let raw = h.raw(s, &["punsubscribe"]);
    assert_eq!(counts(decode_all(&raw), "punsubscribe"), vec![1, 0]);
}

/// Every reply in `raw`, in order.
fn decode_all(raw: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut pos = 0;
    while let Some((f, n)) = Frame::decode(&raw[pos..]).expect("decodes") {
        frames.push(f);
        pos += n;
    }
    frames
}

#[test]
fn write_feed_rewrites_relative_expiry() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let c = h.client();
    h.cmd(c, &["set", "a", "1", "ex", "10"]);
    h.cmd(c, &["get", "a"]);
    h.cmd(c, &["multi"]);
    h.cmd(c, &["incr", "n"]);
    h.cmd(c, &["incr", "n"]);
    h.cmd(c, &["exec"]);
    let at = (h.now + 10_000).to_string();
    let stream = String::from_utf8(h.eng.feed.take().0).unwrap();
    let want = format!(
        "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*5\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n$4\r\nPXAT\r\n${}\r\n{at}\r\n*1\r\n$5\r\nMULTI\r\n*2\r\n$4\r\nincr\r\n$1\r\nn\r\n*2\r\n$4\r\nincr\r\n$1\r\nn\r\n*1\r\n$4\r\nEXEC\r\n",
        at.len()
    );
    assert_eq!(stream, want);
}

#[test]
fn resp3_hello() {
    let mut h = Harness::new();
    let c = h.client();
    let raw = h.raw(c, &["hello", "3"]);
    assert!(raw.starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "{}", String::from_utf8_lossy(&raw));
    assert_eq!(h.raw(c, &["get", "nokey"]), b"_\r\n");
    assert_eq!(h.cmd(c, &["hello", "4"]), err("NOPROTO unsupported protocol version"));
}

#[test]
fn protected_mode_refuses_remote_clients_without_password() {
    use ferrokv_engine::client::{ConnInfo, NoWaker, Transport};
    use std::sync::Arc;
    let mut h = Harness::new();
    let remote = ConnInfo {
        addr: "10.0.0.5:4000".into(),
        laddr: "10.0.0.1:6379".into(),
        fd: 9,
        transport: Transport::Tcp,
        local: false,
    };
    let refused = h.eng.connect(remote.clone(), Arc::new(NoWaker), Default::default(), h.now).unwrap_err();
    assert!(String::from_utf8_lossy(&refused).starts_with("-DENIED Redis is running in protected mode"));
    // With a password, remote clients may connect (and must authenticate).
    let c = h.client();
    h.cmd(c, &["config", "set", "requirepass", "pw"]);
    assert!(h.eng.connect(remote, Arc::new(NoWaker), Default::default(), h.now).is_ok());
}

#[test]
fn swapdb_and_flushdb_fail_watchers() {
    let mut h = Harness::new();
    let (a, b) = (h.client(), h.client());
    h.cmd(a, &["set", "k", "1"]);
    h.cmd(a, &["watch", "k"]);
    h.cmd(b, &["swapdb", "0", "1"]);
    h.cmd(a, &["multi"]);
    h.cmd(a, &["ping"]);
    assert_eq!(h.cmd(a, &["exec"]), Frame::Null);
    h.cmd(a, &["select", "1"]);
    h.cmd(a, &["watch", "k"]);
    h.cmd(b, &["select", "1"]);
    h.cmd(b, &["flushdb"]);
    h.cmd(a, &["multi"]);
    h.cmd(a, &["ping"]);
    assert_eq!(h.cmd(a, &["exec"]), Frame::Null);
}

#[test]
fn random_writes_are_propagated_as_their_effect() {
    let mut h = Harness::new();
    h.eng.feed.enabled = true;
    let c = h.client();
    h.cmd(c, &["sadd", "s", "a", "b", "c", "d"]);
    h.eng.feed.take();
    let popped = match h.cmd(c, &["spop", "s", "2"]) {
        Frame::Array(v) | Frame::Set(v) => v,
        other => panic!("{other:?}"),
    };
    let stream = String::from_utf8(h.eng.feed.take().0).unwrap();
    assert!(stream.starts_with("*1\r\n$5\r\nMULTI\r\n"), "{stream}");
    for m in popped {
        let m = String::from_utf8(m.as_bytes().unwrap().to_vec()).unwrap();
        assert!(stream.contains(&format!("$4\r\nSREM\r\n$1\r\ns\r\n$1\r\n{m}\r\n")), "{stream}");
    }
    h.cmd(c, &["hset", "h", "f", "0.1"]);
    h.eng.feed.take();
    h.cmd(c, &["hincrbyfloat", "h", "f", "0.2"]);
    let stream = String::from_utf8(h.eng.feed.take().0).unwrap();
    assert_eq!(stream, "*4\r\n$4\r\nHSET\r\n$1\r\nh\r\n$1\r\nf\r\n$3\r\n0.3\r\n");
}
