//! The list family through the real binary: every command with the `redis` crate, and the
//! behaviours of the blocking commands that need several connections — FIFO serving,
//! fractional timeouts, wake-ups from MULTI/EXEC and from pipelines, keys that change type
//! under a waiting client, BLMOVE chains, blocking inside MULTI, pipelined requests queued
//! behind a blocked one, and keyspace events.
//!
//! Nothing here sleeps and hopes: a client is known to be blocked once CLIENT LIST shows
//! its blocking command as its last one (commands run atomically, so the command has
//! finished and found nothing), and every wait is bounded.

mod common;
use common::*;
use redis::{Commands, Connection, FromRedisValue, RedisResult};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// A connection whose reads give up rather than hang a failing test.
fn conn(s: &Server) -> Connection {
    let c = s.conn();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c
}

fn client_id(c: &mut Connection) -> i64 {
    redis::cmd("CLIENT").arg("ID").query(c).unwrap()
}

/// The last command CLIENT LIST shows for client `id` (None once it is gone).
fn last_cmd(admin: &mut Connection, id: i64) -> Option<String> {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(admin).unwrap();
    let line = list.lines().find(|l| l.starts_with(&format!("id={id} ")))?;
    let cmd = line.split(' ').find_map(|f| f.strip_prefix("cmd="))?;
    Some(cmd.to_string())
}

/// Waits until client `id` has run `cmd` (and, for a blocking command, blocked).
fn wait_for_cmd(admin: &mut Connection, id: i64, cmd: &str) {
    let ok = wait_until(WAIT, || last_cmd(admin, id).as_deref() == Some(cmd));
    assert!(ok, "client {id} never ran {cmd}: {:?}", last_cmd(admin, id));
}

/// Runs a blocking command on a fresh connection in a thread, and returns once the server
/// has blocked it.
fn spawn_blocked<T: FromRedisValue + Send + 'static>(
    s: &Server,
    admin: &mut Connection,
    args: &[&str],
) -> JoinHandle<RedisResult<T>> {
    let mut c = conn(s);
    let id = client_id(&mut c);
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let name = args[0].to_ascii_lowercase();
    let h = std::thread::spawn(move || {
        let mut cmd = redis::cmd(&args[0]);
        for a in &args[1..] {
            cmd.arg(a);
        }
        cmd.query(&mut c)
    });
    wait_for_cmd(admin, id, &name);
    h
}

fn join<T>(h: JoinHandle<RedisResult<T>>) -> T {
    h.join().expect("client thread").expect("blocking command reply")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_list_command() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let n: i64 = c.rpush("l", &["a", "b", "c"]).unwrap();
    assert_eq!(n, 3);
    let n: i64 = c.lpush("l", &["z", "y"]).unwrap();
    assert_eq!(n, 5);
    let n: i64 = c.lpush_exists("l", "x").unwrap();
    assert_eq!(n, 6);
    let n: i64 = c.rpush_exists("l", "d").unwrap();
    assert_eq!(n, 7);
    let n: i64 = c.rpush_exists("nokey", "d").unwrap();
    assert_eq!(n, 0);
    let v: Vec<String> = c.lrange("l", 0, -1).unwrap();
    assert_eq!(v, strings(&["x", "y", "z", "a", "b", "c", "d"]));
    let n: i64 = c.llen("l").unwrap();
    assert_eq!(n, 7);
    let v: Option<String> = c.lindex("l", -2).unwrap();
    assert_eq!(v.as_deref(), Some("c"));
    let _: () = c.lset("l", 0, "X").unwrap();
    let r: RedisResult<()> = c.lset("l", 99, "X");
    assert!(r.unwrap_err().to_string().contains("index out of range"));
    let n: i64 = redis::cmd("LINSERT").arg("l").arg("AFTER").arg("a").arg("a2").query(&mut c).unwrap();
    assert_eq!(n, 8);
    let n: i64 = redis::cmd("LINSERT").arg("l").arg("BEFORE").arg("nosuch").arg("v").query(&mut c).unwrap();
    assert_eq!(n, -1);
    let n: i64 = c.rpush("l", &["a", "a"]).unwrap();
    assert_eq!(n, 10);
    let p: Option<i64> = redis::cmd("LPOS").arg("l").arg("a").arg("RANK").arg(-1).query(&mut c).unwrap();
    assert_eq!(p, Some(9));
    let p: Vec<i64> = redis::cmd("LPOS").arg("l").arg("a").arg("COUNT").arg(0).query(&mut c).unwrap();
    assert_eq!(p, vec![3, 8, 9]);
    let n: i64 = c.lrem("l", -2, "a").unwrap();
    assert_eq!(n, 2);
    let _: () = c.ltrim("l", 1, -2).unwrap();
    let v: Vec<String> = c.lrange("l", 0, -1).unwrap();
    assert_eq!(v, strings(&["y", "z", "a", "a2", "b", "c"]));
    let v: Option<String> = c.lpop("l", None).unwrap();
    assert_eq!(v.as_deref(), Some("y"));
    let v: Vec<String> = c.rpop("l", std::num::NonZeroUsize::new(2)).unwrap();
    assert_eq!(v, strings(&["c", "b"]));
    let v: Option<String> = redis::cmd("LMOVE").arg("l").arg("l2").arg("LEFT").arg("RIGHT").query(&mut c).unwrap();
    assert_eq!(v.as_deref(), Some("z"));
    let v: Option<String> = c.rpoplpush("l", "l2").unwrap();
    assert_eq!(v.as_deref(), Some("a2"));
    let v: Vec<String> = c.lrange("l2", 0, -1).unwrap();
    assert_eq!(v, strings(&["a2", "z"]));
    let v: Option<(String, Vec<String>)> =
        redis::cmd("LMPOP").arg(2).arg("nokey").arg("l2").arg("RIGHT").arg("COUNT").arg(5).query(&mut c).unwrap();
    assert_eq!(v, Some(("l2".to_string(), strings(&["z", "a2"]))));
    let e: i64 = c.exists("l2").unwrap();
    assert_eq!(e, 0, "an emptied list is deleted");
    let v: Option<(String, String)> = redis::cmd("BLPOP").arg("nokey").arg("l").arg(0).query(&mut c).unwrap();
    assert_eq!(v, Some(("l".to_string(), "a".to_string())));
    let e: i64 = c.exists("l").unwrap();
    assert_eq!(e, 0);
    let _: () = c.set("s", "str").unwrap();
    let r: RedisResult<i64> = c.lpush("s", "x");
    assert!(r.unwrap_err().to_string().contains("WRONGTYPE"));
}

#[test]
fn clients_blocked_on_one_key_are_served_in_arrival_order() {
    let s = Server::start(&[]);
    let mut admin = conn(&s);
    // One push of several elements serves the waiters in order, one element each.
    let w1 = spawn_blocked::<(String, String)>(&s, &mut admin, &["BLPOP", "k", "0"]);
    let w2 = spawn_blocked::<(String, String)>(&s, &mut admin, &["BLPOP", "k", "0"]);
    let w3 = spawn_blocked::<(String, String)>(&s, &mut admin, &["BRPOP", "other", "k", "0"]);
    let _: i64 = admin.rpush("k", &["a", "b", "c", "d"]).unwrap();
    assert_eq!(join(w1), ("k".to_string(), "a".to_string()));
    assert_eq!(join(w2), ("k".to_string(), "b".to_string()));
    assert_eq!(join(w3), ("k".to_string(), "d".to_string()));
    let v: Vec<String> = admin.lrange("k", 0, -1).unwrap();
    assert_eq!(v, strings(&["c"]));
    let _: i64 = admin.del("k").unwrap();

    // One element at a time: each push serves only the longest-waiting client (were the
    // order reversed, the BLMPOP would take "x").
    let w1 = spawn_blocked::<(String, String)>(&s, &mut admin, &["BLPOP", "k", "0"]);
    let w2 = spawn_blocked::<Option<String>>(&s, &mut admin, &["BLMOVE", "k", "dst", "LEFT", "LEFT", "0"]);
    let w3 = spawn_blocked::<(String, Vec<String>)>(&s, &mut admin, &["BLMPOP", "0", "1", "k", "LEFT", "COUNT", "5"]);
    let _: i64 = admin.rpush("k", "x").unwrap();
    let _: i64 = admin.rpush("k", "y").unwrap();
    let _: i64 = admin.rpush("k", &["p", "q"]).unwrap();
    assert_eq!(join(w1), ("k".to_string(), "x".to_string()));
    assert_eq!(join(w2), Some("y".to_string()));
    assert_eq!(join(w3), ("k".to_string(), strings(&["p", "q"])));
    let e: i64 = admin.exists("k").unwrap();
    assert_eq!(e, 0);
    let v: Vec<String> = admin.lrange("dst", 0, -1).unwrap();
    assert_eq!(v, strings(&["y"]));
}

#[test]
fn fractional_timeouts_return_nil() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let cases: [(&[&[u8]], &[u8]); 4] = [
        (&[b"BLPOP", b"k1", b"k2", b"0.1"], b"*-1\r\n"),
        (&[b"BLMPOP", b"0.1", b"1", b"k", b"RIGHT"], b"*-1\r\n"),
        // Redis 7.0 times every list block out with the null array, BLMOVE included.
        (&[b"BLMOVE", b"k", b"d", b"LEFT", b"RIGHT", b"0.1"], b"*-1\r\n"),
        (&[b"BRPOPLPUSH", b"k", b"d", b"0.1"], b"*-1\r\n"),
    ];
    for (cmd, null) in cases {
        let t = Instant::now();
        assert_eq!(r.cmd(cmd), null);
        let took = t.elapsed();
        // Deadlines count from the command's time in whole milliseconds (Redis's mstime()
        // too), which may be up to 1 ms before this test's clock started.
        assert!(took >= Duration::from_millis(99), "timed out early: {took:?}");
        assert!(took < Duration::from_secs(3), "timed out late: {took:?}");
    }
    // The client is usable again, and nothing was created.
    assert_eq!(r.cmd(&[b"EXISTS", b"k", b"d"]), b":0\r\n");
}

#[test]
fn a_push_inside_multi_exec_wakes_a_waiter_once_exec_ends() {
    let s = Server::start(&[]);
    let mut admin = conn(&s);
    let mut b = conn(&s);
    let w = spawn_blocked::<(String, String)>(&s, &mut admin, &["BLPOP", "k", "0"]);
    // Served after EXEC, not in the middle: the transaction's own LPOP still sees "x",
    // and the list is empty when EXEC ends, so the waiter keeps waiting.
    let (n, v): (i64, String) = redis::pipe().atomic().rpush("k", "x").lpop("k", None).query(&mut b).unwrap();
    assert_eq!((n, v.as_str()), (1, "x"));
    let (n, _): (i64, ()) = redis::pipe().atomic().rpush("k", "y").set("z", 1).query(&mut b).unwrap();
    assert_eq!(n, 1);
    assert_eq!(join(w), ("k".to_string(), "y".to_string()));
    let e: i64 = b.exists("k").unwrap();
    assert_eq!(e, 0);
}

#[test]
fn a_push_in_another_clients_pipeline_serves_the_waiter_before_the_next_command() {
    let s = Server::start(&[]);
    let mut admin = conn(&s);
    let w = spawn_blocked::<(String, String)>(&s, &mut admin, &["BLPOP", "k", "0"]);
    let mut b = s.raw();
    let mut wire = Vec::new();
    ferrokv_resp::encode_command(&mut wire, [&b"RPUSH"[..], b"k", b"v"]);
    ferrokv_resp::encode_command(&mut wire, [&b"LPOP"[..], b"k"]);
    ferrokv_resp::encode_command(&mut wire, [&b"LLEN"[..], b"k"]);
    b.send(&wire);
    assert_eq!(b.read_reply().unwrap(), b":1\r\n");
    // The waiter took "v" between RPUSH and LPOP.
    assert_eq!(b.read_reply().unwrap(), b"$-1\r\n");
    assert_eq!(b.read_reply().unwrap(), b":0\r\n");
    assert_eq!(join(w), ("k".to_string(), "v".to_string()));
}

#[test]
fn a_waiter_ignores_deletes_and_other_types_and_is_served_when_a_list_appears() {
    let s = Server::start(&[]);
    let mut admin = conn(&s);
    let mut b = conn(&s);
    let w = spawn_blocked::<(String, String)>(&s, &mut admin, &["BLPOP", "k", "0"]);
    let _: () = b.set("k", "str").unwrap();
    let r: RedisResult<i64> = b.rpush("k", "v");
    assert!(r.is_err(), "pushing onto a string fails");
    let _: i64 = b.del("k").unwrap();
    let _: () = b.set("k", "again").unwrap();
    let _: i64 = b.del("k").unwrap();
    // Had any of those woken the waiter it would have replied (an error or nil) and
    // could not take the element below. The list appears through LMOVE's destination.
    let _: i64 = b.rpush("src", "hello").unwrap();
    let v: Option<String> = redis::cmd("LMOVE").arg("src").arg("k").arg("LEFT").arg("LEFT").query(&mut b).unwrap();
    assert_eq!(v.as_deref(), Some("hello"));
    assert_eq!(join(w), ("k".to_string(), "hello".to_string()));
    let e: i64 = b.exists(&["k", "src"]).unwrap();
    assert_eq!(e, 0);
}

#[test]
fn blmove_chains_are_served_in_the_same_round() {
    let s = Server::start(&[]);
    let mut admin = conn(&s);
    let a = spawn_blocked::<Option<String>>(&s, &mut admin, &["BLMOVE", "s1", "s2", "RIGHT", "LEFT", "0"]);
    let b = spawn_blocked::<Option<String>>(&s, &mut admin, &["BRPOPLPUSH", "s2", "s3", "0"]);
    let c = spawn_blocked::<(String, String)>(&s, &mut admin, &["BRPOP", "s3", "0"]);
    let _: i64 = admin.lpush("s1", "v").unwrap();
    // By the time LPUSH has replied, the whole chain has run.
    let e: i64 = admin.exists(&["s1", "s2", "s3"]).unwrap();
    assert_eq!(e, 0);
    assert_eq!(join(a).as_deref(), Some("v"));
    assert_eq!(join(b).as_deref(), Some("v"));
    assert_eq!(join(c), ("s3".to_string(), "v".to_string()));
}

#[test]
fn blocking_commands_inside_multi_answer_at_once() {
    let s = Server::start(&[]);
    let mut c = conn(&s);
    let t = Instant::now();
    let replies: Vec<redis::Value> = redis::pipe()
        .atomic()
        .cmd("BLPOP")
        .arg("k")
        .arg(0)
        .cmd("BLMOVE")
        .arg("k")
        .arg("d")
        .arg("LEFT")
        .arg("LEFT")
        .arg(0)
        .cmd("BLMPOP")
        .arg(0)
        .arg(1)
        .arg("k")
        .arg("LEFT")
        .cmd("BRPOPLPUSH")
        .arg("k")
        .arg("d")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(replies, vec![redis::Value::Nil; 4]);
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn requests_pipelined_behind_a_blocked_command_run_after_it_is_served() {
    let s = Server::start(&[]);
    let mut admin = conn(&s);
    let mut a = s.raw();
    let id_reply = a.cmd(&[b"CLIENT", b"ID"]);
    let id: i64 = std::str::from_utf8(&id_reply[1..id_reply.len() - 2]).unwrap().parse().unwrap();
    let mut wire = Vec::new();
    ferrokv_resp::encode_command(&mut wire, [&b"BLPOP"[..], b"k", b"0"]);
    ferrokv_resp::encode_command(&mut wire, [&b"SET"[..], b"after", b"1"]);
    ferrokv_resp::encode_command(&mut wire, [&b"PING"[..]]);
    a.send(&wire);
    wait_for_cmd(&mut admin, id, "blpop");
    // The SET waits behind the blocked BLPOP.
    let v: Option<String> = admin.get("after").unwrap();
    assert_eq!(v, None);
    let _: i64 = admin.rpush("k", "v").unwrap();
    assert_eq!(a.read_reply().unwrap(), b"*2\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert_eq!(a.read_reply().unwrap(), b"+OK\r\n");
    assert_eq!(a.read_reply().unwrap(), b"+PONG\r\n");
    let v: Option<String> = admin.get("after").unwrap();
    assert_eq!(v.as_deref(), Some("1"));
}

#[test]
fn a_waiter_that_disconnects_takes_nothing() {
    let s = Server::start(&[]);
    let mut admin = conn(&s);
    let mut a = s.raw();
    let id_reply = a.cmd(&[b"CLIENT", b"ID"]);
    let id: i64 = std::str::from_utf8(&id_reply[1..id_reply.len() - 2]).unwrap().parse().unwrap();
    let mut wire = Vec::new();
    ferrokv_resp::encode_command(&mut wire, [&b"BLPOP"[..], b"k", b"0"]);
    a.send(&wire);
    wait_for_cmd(&mut admin, id, "blpop");
    drop(a);
    assert!(wait_until(WAIT, || last_cmd(&mut admin, id).is_none()), "server never noticed the disconnect");
    let n: i64 = admin.rpush("k", "v").unwrap();
    assert_eq!(n, 1);
    let n: i64 = admin.llen("k").unwrap();
    assert_eq!(n, 1);
}

#[test]
fn list_keyspace_events_match_redis() {
    let s = Server::start(&["--notify-keyspace-events", "KEA"]);
    let client = redis::Client::open(s.url()).unwrap();
    let mut sub_conn = client.get_connection().unwrap();
    let mut pubsub = sub_conn.as_pubsub();
    pubsub.psubscribe("__keyevent@0__:*").unwrap();
    pubsub.set_read_timeout(Some(WAIT)).unwrap();
    let mut c = s.conn();
    let run = |c: &mut Connection, args: &[&str]| {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let _: redis::Value = cmd.query(c).unwrap();
    };
    for cmd in [
        &["RPUSH", "s", "a", "b"][..],
        &["LMOVE", "s", "d", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "s", "d"],
        &["LPOP", "d", "5"],
        &["RPUSH", "l", "a", "b", "c"],
        &["LTRIM", "l", "0", "-1"],
        &["LTRIM", "l", "1", "1"],
        &["LINSERT", "l", "BEFORE", "b", "x"],
        &["LSET", "l", "0", "y"],
        &["LREM", "l", "0", "y"],
        &["LREM", "l", "0", "nosuch"],
        &["LREM", "l", "0", "b"],
        &["LMPOP", "1", "nokey", "LEFT"],
        &["RPUSH", "m", "1"],
        &["BLMPOP", "0", "1", "m", "RIGHT", "COUNT", "3"],
        &["SET", "end", "1"],
    ] {
        run(&mut c, cmd);
    }
    let mut got = Vec::new();
    loop {
        let m = pubsub.get_message().unwrap();
        let event = m.get_channel_name().trim_start_matches("__keyevent@0__:").to_string();
        let key: String = m.get_payload().unwrap();
        if event == "set" {
            break;
        }
        got.push(format!("{event} {key}"));
    }
    // The sequence redis-server 7.0 publishes for the same commands.
    let want = [
        "rpush s",
        "rpush d",
        "lpop s",
        "lpush d",
        "rpop s",
        "del s",
        "lpop d",
        "del d",
        "rpush l",
        "ltrim l",
        "ltrim l",
        "linsert l",
        "lset l",
        "lrem l",
        "lrem l",
        "del l",
        "rpush m",
        "rpop m",
        "del m",
    ];
    assert_eq!(got, want);
}
