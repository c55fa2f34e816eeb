//! Command families through the `redis` crate, and the behaviours that need several
//! connections or time: WATCH races, pub/sub, keyspace notifications, active expiry,
//! SCAN's guarantee while the table grows, CLIENT KILL/PAUSE, MONITOR, CONFIG REWRITE.

mod common;
use common::*;
use redis::{Commands, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

#[test]
fn strings_family() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let _: () = c.set("a", "1").unwrap();
    let v: i64 = c.incr("a", 41).unwrap();
    assert_eq!(v, 42);
    let _: () = c.mset(&[("x", "1"), ("y", "2")]).unwrap();
    let v: Vec<Option<String>> = c.mget(&["x", "y", "nokey"]).unwrap();
    assert_eq!(v, vec![Some("1".into()), Some("2".into()), None]);
    let n: usize = c.append("x", "23").unwrap();
    assert_eq!(n, 3);
    let f: f64 = redis::cmd("INCRBYFLOAT").arg("x").arg("0.5").query(&mut c).unwrap();
    assert_eq!(f, 123.5);
    let old: String = c.getset("y", "9").unwrap();
    assert_eq!(old, "2");
    let r: String = c.getrange("x", 0, 2).unwrap();
    assert_eq!(r, "123");
    let b: i64 = redis::cmd("SETBIT").arg("bits").arg(9).arg(1).query(&mut c).unwrap();
    assert_eq!(b, 0);
    let n: i64 = redis::cmd("BITCOUNT").arg("bits").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let l: String = redis::cmd("LCS").arg("x").arg("y").query(&mut c).unwrap();
    assert_eq!(l, "");
}

#[test]
fn keyspace_family() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for i in 0..50 {
        let _: () = c.set(format!("key:{i}"), i).unwrap();
    }
    let n: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 50);
    let mut keys: Vec<String> = c.keys("key:1*").unwrap();
    keys.sort();
    assert_eq!(keys.len(), 11);
    let _: () = c.rename("key:1", "renamed").unwrap();
    let t: String = redis::cmd("TYPE").arg("renamed").query(&mut c).unwrap();
    assert_eq!(t, "string");
    let moved: bool = redis::cmd("MOVE").arg("renamed").arg(3).query(&mut c).unwrap();
    assert!(moved);
    let copied: bool = redis::cmd("COPY").arg("key:2").arg("k2copy").query(&mut c).unwrap();
    assert!(copied);
    let d: usize = c.del(&["key:2", "k2copy", "nokey"]).unwrap();
    assert_eq!(d, 2);
    let _: () = redis::cmd("SWAPDB").arg(0).arg(3).query(&mut c).unwrap();
    let n: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 1);
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    let n: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 0);
    let k: Option<String> = redis::cmd("RANDOMKEY").query(&mut c).unwrap();
    assert_eq!(k, None);
}

#[test]
fn expiry_family_and_active_expiry_reclaims_untouched_keys() {
    let s = Server::start(&["--hz", "100"]);
    let mut c = s.conn();
    let _: () = c.set_ex("ttl", "v", 100).unwrap();
    let t: i64 = c.ttl("ttl").unwrap();
    assert!((99..=100).contains(&t));
    let p: bool = c.persist("ttl").unwrap();
    assert!(p);
    // 1000 keys with a short TTL that nobody will read again.
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("SET").arg(format!("tmp:{i}")).arg("x").arg("PX").arg(50).ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let reclaimed = wait_until(Duration::from_secs(10), || {
        let n: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
        n == 1
    });
    assert!(reclaimed, "active expiry did not reclaim untouched keys");
    let info: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert!(info.contains("expired_keys:1000"), "{info}");
}

#[test]
fn watch_race_between_two_connections() {
    let s = Server::start(&[]);
    let mut a = s.conn();
    let mut b = s.conn();
    let _: () = a.set("balance", 100).unwrap();
    let _: () = redis::cmd("WATCH").arg("balance").query(&mut a).unwrap();
    let _: () = b.set("balance", 50).unwrap();
    let res: Option<(i64,)> = redis::pipe().atomic().incr("balance", 1).query(&mut a).unwrap();
    assert_eq!(res, None, "EXEC must fail after a concurrent write");
    let _: () = redis::cmd("WATCH").arg("balance").query(&mut a).unwrap();
    let res: Option<(i64,)> = redis::pipe().atomic().incr("balance", 1).query(&mut a).unwrap();
    assert_eq!(res, Some((51,)));
    // Expiry counts as a modification too.
    let _: () = a.set("lease", "x").unwrap();
    let _: () = redis::cmd("PEXPIRE").arg("lease").arg(50).query(&mut a).unwrap();
    let _: () = redis::cmd("WATCH").arg("lease").query(&mut a).unwrap();
    std::thread::sleep(Duration::from_millis(120));
    let res: Option<(i64,)> = redis::pipe().atomic().incr("other", 1).query(&mut a).unwrap();
    assert_eq!(res, None, "EXEC must fail when a watched key expired");
    // FLUSHALL too.
    let _: () = a.set("w", 1).unwrap();
    let _: () = redis::cmd("WATCH").arg("w").query(&mut a).unwrap();
    let _: () = redis::cmd("FLUSHALL").query(&mut b).unwrap();
    let res: Option<(i64,)> = redis::pipe().atomic().incr("other", 1).query(&mut a).unwrap();
    assert_eq!(res, None, "EXEC must fail after FLUSHALL");
}

#[test]
fn transaction_runtime_errors_do_not_roll_back() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let _: () = c.set("s", "text").unwrap();
    let res: Vec<Value> = redis::pipe().atomic().set("a", 1).incr("s", 1).set("b", 2).query(&mut c).unwrap_or_default();
    let _ = res;
    let a: Option<i64> = c.get("a").unwrap();
    let b: Option<i64> = c.get("b").unwrap();
    assert_eq!((a, b), (Some(1), Some(2)));
}

#[test]
fn pubsub_with_two_clients_and_patterns() {
    let s = Server::start(&[]);
    let client = redis::Client::open(s.url()).unwrap();
    let mut sub_conn = client.get_connection().unwrap();
    let mut pubsub = sub_conn.as_pubsub();
    pubsub.subscribe("news").unwrap();
    pubsub.psubscribe("sport.*").unwrap();
    pubsub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut p = s.conn();
    let n: i64 = p.publish("news", "hello").unwrap();
    assert_eq!(n, 1);
    let n: i64 = p.publish("sport.tennis", "ace").unwrap();
    assert_eq!(n, 1);
    let m1 = pubsub.get_message().unwrap();
    assert_eq!(m1.get_channel_name(), "news");
    assert_eq!(m1.get_payload::<String>().unwrap(), "hello");
    let m2 = pubsub.get_message().unwrap();
    assert_eq!(m2.get_pattern::<String>().unwrap(), "sport.*");
    assert_eq!(m2.get_payload::<String>().unwrap(), "ace");
    let chans: Vec<String> = redis::cmd("PUBSUB").arg("CHANNELS").query(&mut p).unwrap();
    assert_eq!(chans, vec!["news"]);
    let numpat: i64 = redis::cmd("PUBSUB").arg("NUMPAT").query(&mut p).unwrap();
    assert_eq!(numpat, 1);
}

#[test]
fn keyspace_notifications() {
    let s = Server::start(&["--notify-keyspace-events", "KEA", "--hz", "100"]);
    let client = redis::Client::open(s.url()).unwrap();
    let mut sub_conn = client.get_connection().unwrap();
    let mut pubsub = sub_conn.as_pubsub();
    pubsub.psubscribe("__key*__:*").unwrap();
    pubsub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut c = s.conn();
    let _: () = c.set("k", "v").unwrap();
    let _: () = redis::cmd("PEXPIRE").arg("k").arg(20).query(&mut c).unwrap();
    let mut got = Vec::new();
    while got.len() < 6 {
        let m = pubsub.get_message().unwrap();
        got.push((m.get_channel_name().to_string(), m.get_payload::<String>().unwrap()));
    }
    let want = vec![
        ("__keyspace@0__:k".to_string(), "set".to_string()),
        ("__keyevent@0__:set".to_string(), "k".to_string()),
        ("__keyspace@0__:k".to_string(), "expire".to_string()),
        ("__keyevent@0__:expire".to_string(), "k".to_string()),
        ("__keyspace@0__:k".to_string(), "expired".to_string()),
        ("__keyevent@0__:expired".to_string(), "k".to_string()),
    ];
    assert_eq!(got, want);
}

#[test]
fn scan_returns_every_stable_key_under_concurrent_inserts() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut pipe = redis::pipe();
    for i in 0..5000 {
        pipe.set(format!("stable:{i}"), i).ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let writer_url = s.url();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut w = redis::Client::open(writer_url).unwrap().get_connection().unwrap();
        let mut i = 0;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) && i < 200_000 {
            let _: () = w.set(format!("new:{i}"), i).unwrap();
            i += 1;
        }
    });
    let mut seen = HashSet::new();
    let mut cursor: u64 = 0;
    let started = Instant::now();
    loop {
        let (next, keys): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg("stable:*").arg("COUNT").arg(50).query(&mut c).unwrap();
        seen.extend(keys);
        cursor = next;
        if cursor == 0 || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(cursor, 0, "scan did not finish in time");
    for i in 0..5000 {
        assert!(seen.contains(&format!("stable:{i}")), "stable:{i} missed");
    }
}

#[test]
fn scan_type_filter() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let _: () = c.set("str", 1).unwrap();
    let (_, keys): (u64, Vec<String>) =
        redis::cmd("SCAN").arg(0).arg("TYPE").arg("string").arg("COUNT").arg(100).query(&mut c).unwrap();
    assert_eq!(keys, vec!["str"]);
    let (_, keys): (u64, Vec<String>) =
        redis::cmd("SCAN").arg(0).arg("TYPE").arg("hash").arg("COUNT").arg(100).query(&mut c).unwrap();
    assert!(keys.is_empty());
}

#[test]
fn client_list_kill_and_names() {
    let s = Server::start(&[]);
    let mut a = s.conn();
    let mut b = s.conn();
    let _: () = redis::cmd("CLIENT").arg("SETNAME").arg("victim").query(&mut b).unwrap();
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut a).unwrap();
    assert!(list.lines().any(|l| l.contains("name=victim")), "{list}");
    let victim_id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut b).unwrap();
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(victim_id).query(&mut a).unwrap();
    assert_eq!(killed, 1);
    let r: redis::RedisResult<String> = redis::cmd("PING").query(&mut b);
    assert!(r.is_err(), "killed client must be disconnected");
    let n: i64 =
        redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("normal").arg("SKIPME").arg("yes").query(&mut a).unwrap();
    assert_eq!(n, 0);
    let pong: String = redis::cmd("PING").query(&mut a).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn client_pause_write_delays_writes_not_reads() {
    let s = Server::start(&[]);
    let mut a = s.conn();
    let mut b = s.conn();
    let _: () = redis::cmd("CLIENT").arg("PAUSE").arg(300).arg("WRITE").query(&mut a).unwrap();
    let t = Instant::now();
    let v: Option<String> = b.get("k").unwrap();
    assert_eq!(v, None);
    assert!(t.elapsed() < Duration::from_millis(250), "reads are not paused");
    let _: () = b.set("k", "v").unwrap();
    assert!(t.elapsed() >= Duration::from_millis(250), "writes waited for the pause");
}

#[test]
fn monitor_sees_commands_of_others() {
    let s = Server::start(&[]);
    let mut m = s.raw();
    assert_eq!(m.cmd(&[b"MONITOR"]), b"+OK\r\n");
    let mut c = s.conn();
    let _: () = c.set("mk", "mv").unwrap();
    // The client library's own handshake commands come first.
    let found = (0..10).any(|_| {
        let line = String::from_utf8(m.read_reply().unwrap()).unwrap();
        assert!(line.starts_with('+'), "{line}");
        line.contains("\"SET\" \"mk\" \"mv\"")
    });
    assert!(found);
}

#[test]
fn config_set_get_rewrite_round_trip() {
    let dir = TempDir::new("rewrite");
    let conf = dir.path().join("redis.conf");
    std::fs::write(&conf, "# my settings\nmaxmemory 1mb\n\n# trailing comment\n").unwrap();
    let s = Server::start_with_config(&conf, &[]);
    let mut c = s.conn();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("2mb").arg("hz").arg("25").query(&mut c).unwrap();
    let err: redis::RedisResult<()> =
        redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("3mb").arg("hz").arg("nope").query(&mut c);
    assert!(err.is_err());
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("maxmemory").query(&mut c).unwrap();
    assert_eq!(v[1], "2097152", "a failed multi-set changes nothing");
    let _: () = redis::cmd("CONFIG").arg("REWRITE").query(&mut c).unwrap();
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.starts_with("# my settings\nmaxmemory 2mb\n"), "{text}");
    assert!(text.contains("# trailing comment"), "{text}");
    assert!(text.contains("hz 25"), "{text}");
    // The rewritten file starts an identical server.
    drop(s);
    let s2 = Server::start_with_config(&conf, &[]);
    let mut c2 = s2.conn();
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("hz").query(&mut c2).unwrap();
    assert_eq!(v[1], "25");
}

#[test]
fn config_rewrite_without_file_errors() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let r: redis::RedisResult<()> = redis::cmd("CONFIG").arg("REWRITE").query(&mut c);
    assert!(r.unwrap_err().to_string().contains("running without a config file"));
}

#[test]
fn config_set_port_moves_the_listener() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let new_port = free_port();
    let _: () = redis::cmd("CONFIG").arg("SET").arg("port").arg(new_port).query(&mut c).unwrap();
    let mut c2 = redis::Client::open(format!("redis://127.0.0.1:{new_port}/")).unwrap().get_connection().unwrap();
    let pong: String = redis::cmd("PING").query(&mut c2).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn idle_timeout_closes_clients() {
    let s = Server::start(&["--timeout", "1", "--hz", "50"]);
    let mut r = s.raw();
    assert_eq!(r.cmd(&[b"PING"]), b"+PONG\r\n");
    let t = Instant::now();
    assert!(r.closed());
    assert!(t.elapsed() < Duration::from_secs(4));
}

#[test]
fn maxclients_refuses_extra_connections() {
    let s = Server::start(&["--maxclients", "2"]);
    let mut a = s.raw();
    let mut b = s.raw();
    // Make sure both are registered before the third arrives.
    assert_eq!(a.cmd(&[b"PING"]), b"+PONG\r\n");
    assert_eq!(b.cmd(&[b"PING"]), b"+PONG\r\n");
    let mut c = s.raw();
    assert_eq!(c.read_reply().unwrap(), b"-ERR max number of clients reached\r\n");
}

#[test]
fn info_has_redis_sections_and_fields() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let _: () = c.set("k", 1).unwrap();
    let info: String = redis::cmd("INFO").arg("everything").query(&mut c).unwrap();
    for field in [
        "# Server",
        "redis_version:7.0.15",
        "ferrokv_version:",
        "run_id:",
        &format!("tcp_port:{}", s.port),
        "# Clients",
        "connected_clients:1",
        "# Memory",
        "used_memory:",
        "maxmemory_policy:noeviction",
        "# Persistence",
        "rdb_changes_since_last_save:1",
        "# Stats",
        "total_commands_processed:",
        "# Replication",
        "role:master",
        "master_replid:",
        "# CPU",
        "# Commandstats",
        "cmdstat_set:calls=1,",
        "# Errorstats",
        "# Latencystats",
        "latency_percentiles_usec_set:p50=",
        "# Keyspace",
        "db0:keys=1,expires=0,avg_ttl=0",
    ] {
        assert!(info.contains(field), "missing {field}");
    }
    let _: redis::RedisResult<()> = redis::cmd("NOSUCH").query(&mut c);
    let info: String = redis::cmd("INFO").arg("errorstats").query(&mut c).unwrap();
    assert!(info.contains("errorstat_ERR:count=1"), "{info}");
}

#[test]
fn digest_matches_redis_for_the_same_data() {
    let Some(redis_srv) = Server::start_redis(&[]) else {
        return;
    };
    let fk = Server::start(&[]);
    let mut digests = Vec::new();
    for srv in [&redis_srv, &fk] {
        let mut c = srv.conn();
        let _: () = c.set("a", "1").unwrap();
        let _: () = c.set("b", "some text").unwrap();
        let _: () = c.set_ex("c", "expiring", 1000).unwrap();
        let _: () = redis::cmd("SELECT").arg(2).query(&mut c).unwrap();
        let _: () = c.set("in-db-2", "x").unwrap();
        let d: String = redis::cmd("DEBUG").arg("DIGEST").query(&mut c).unwrap();
        digests.push(d);
    }
    assert_eq!(digests[0], digests[1]);
    assert_ne!(digests[0], "0".repeat(40));
}

#[test]
fn slow_pubsub_subscriber_is_disconnected_by_output_limit() {
    let s = Server::start(&["--client-output-buffer-limit", "pubsub 256kb 128kb 1", "--hz", "50"]);
    let mut sub = s.raw();
    assert_eq!(sub.cmd(&[b"SUBSCRIBE", b"firehose"]), b"*3\r\n$9\r\nsubscribe\r\n$8\r\nfirehose\r\n:1\r\n");
    // Shrink the subscriber's socket receive buffer so messages pile up server-side.
    socket2::SockRef::from(&sub.stream).set_recv_buffer_size(4096).unwrap();
    let mut p = s.conn();
    let payload = vec![b'x'; 16 * 1024];
    let mut dropped = false;
    for _ in 0..2000 {
        let n: i64 = p.publish("firehose", &payload).unwrap();
        if n == 0 {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "the subscriber was never disconnected");
    assert!(s.log_text().contains("overcoming of output buffer limits"));
    let pong: String = redis::cmd("PING").query(&mut p).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn client_reply_off_and_skip() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.send(b"CLIENT REPLY OFF\r\nSET a 1\r\nCLIENT REPLY ON\r\n");
    assert_eq!(r.read_reply().unwrap(), b"+OK\r\n");
    r.send(b"CLIENT REPLY SKIP\r\nSET b 2\r\nGET b\r\n");
    assert_eq!(r.read_reply().unwrap(), b"$1\r\n2\r\n");
    assert_eq!(r.cmd(&[b"GET", b"a"]), b"$1\r\n1\r\n");
}

#[test]
fn hello_with_auth_and_setname() {
    let s = Server::start(&["--requirepass", "pw"]);
    let mut r = s.raw();
    assert!(r
        .cmd(&[b"HELLO", b"3"])
        .starts_with(b"-NOAUTH HELLO must be called with the client already authenticated"));
    let ok = r.cmd(&[b"HELLO", b"3", b"AUTH", b"default", b"pw", b"SETNAME", b"app"]);
    assert!(ok.starts_with(b"%7\r\n"));
    assert_eq!(r.cmd(&[b"CLIENT", b"GETNAME"]), b"$3\r\napp\r\n");
    assert_eq!(r.cmd(&[b"ACL", b"WHOAMI"]), b"$7\r\ndefault\r\n");
    assert_eq!(r.cmd(&[b"RESET"]), b"+RESET\r\n");
    assert_eq!(r.cmd(&[b"GET", b"x"]), b"-NOAUTH Authentication required.\r\n");
}

#[test]
fn debug_sleep_blocks_the_server_like_redis() {
    let s = Server::start(&[]);
    let url = s.url();
    let mut c = s.conn();
    let sleeper = std::thread::spawn(move || {
        let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
        let _: () = redis::cmd("DEBUG").arg("SLEEP").arg(0.3).query(&mut c).unwrap();
    });
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    let _: String = redis::cmd("PING").query(&mut c).unwrap();
    sleeper.join().unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150), "PING answered during DEBUG SLEEP");
}

/// `io-threads 2` runs connections on a multi-threaded runtime (the default is one thread):
/// concurrent pipelined writers, a blocked client woken from another connection, a
/// transaction and a replica all behave as on one thread.
#[test]
fn io_threads_serve_concurrent_clients_correctly() {
    let s = Server::start(&["--io-threads", "2", "--repl-diskless-sync-delay", "0"]);
    let mut c = s.conn();
    let mut blocked = s.conn();
    let waiter = std::thread::spawn(move || -> Option<(String, String)> {
        redis::cmd("BLPOP").arg("queue").arg(10).query(&mut blocked).unwrap()
    });
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let mut wc = s.conn();
            std::thread::spawn(move || {
                for round in 0..50 {
                    let mut p = redis::pipe();
                    for i in 0..20 {
                        p.incr("counter", 1).ignore().hset(format!("h{w}"), format!("f{round}:{i}"), i).ignore();
                    }
                    let _: () = p.query(&mut wc).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(c.get::<_, i64>("counter").unwrap(), 4 * 50 * 20);
    for w in 0..4 {
        assert_eq!(c.hlen::<_, i64>(format!("h{w}")).unwrap(), 50 * 20);
    }
    let (k, v): (i64, i64) = redis::pipe().atomic().incr("counter", 1).incr("counter", 1).query(&mut c).unwrap();
    assert_eq!((k, v), (4001, 4002));
    let _: () = c.rpush("queue", "job").unwrap();
    assert_eq!(waiter.join().unwrap(), Some(("queue".into(), "job".into())));
    // A replica of an io-threads master converges.
    let replica = Server::start(&["--replicaof", "127.0.0.1", &s.port.to_string()]);
    let mut r = replica.conn();
    let synced =
        wait_until(Duration::from_secs(20), || r.get::<_, Option<i64>>("counter").ok().flatten() == Some(4002));
    assert!(synced, "the replica did not get the data: {}", replica.log_text());
}
