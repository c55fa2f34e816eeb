//! Heavy and misbehaving clients against the real server: a pipeline written whole before
//! any reply is read, a subscriber that never reads, a reply that would grow without bound,
//! a frozen replica, `maxmemory-clients`. The server must keep serving everyone else and
//! keep its memory bounded by the configured limits.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// A socket with a small receive buffer, so that a peer that stops reading makes the
/// server's output queue up in the server rather than in the kernel.
fn small_window_socket(port: u16) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    sock.connect(&addr.into()).expect("connect");
    let stream: TcpStream = sock.into();
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream
}

fn client_list(c: &mut redis::Connection) -> String {
    redis::cmd("CLIENT").arg("LIST").query(c).expect("CLIENT LIST")
}

fn client_field(list: &str, name: &str, field: &str) -> Option<u64> {
    let line = list.lines().find(|l| l.contains(&format!(" name={name} ")))?;
    line.split(' ').find_map(|kv| kv.strip_prefix(&format!("{field}="))).and_then(|v| v.parse().ok())
}

#[test]
fn a_flood_of_a_million_pipelined_commands_written_before_reading_completes() {
    const N: usize = 1_000_000;
    let s = Server::start(&[]);
    let mut stream = TcpStream::connect(s.addr()).expect("connect");
    // Without the fix the server stops reading and this write blocks: fail, do not hang.
    stream.set_write_timeout(Some(Duration::from_secs(60))).expect("timeout");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut batch = Vec::with_capacity(1 << 20);
    let started = Instant::now();
    for i in 0..N {
        ferrokv_resp::encode_command(&mut batch, [b"SET".as_slice(), format!("key:{i}").as_bytes(), b"val"]);
        if batch.len() >= 1 << 20 || i == N - 1 {
            if let Err(e) = stream.write_all(&batch) {
                panic!("the server stopped reading after {i} commands ({e}); log:\n{}", s.log_text());
            }
            batch.clear();
        }
    }
    let written = started.elapsed();
    let mut replies = 0usize;
    let mut tail = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    while replies < N {
        let n = stream.read(&mut chunk).expect("read replies");
        assert!(n > 0, "closed after {replies} replies");
        tail.extend_from_slice(&chunk[..n]);
        let whole = tail.len() / 5 * 5;
        assert!(tail[..whole].chunks(5).all(|r| r == b"+OK\r\n"), "unexpected reply");
        replies += whole / 5;
        tail.drain(..whole);
    }
    let mut c = s.conn();
    let size: usize = redis::cmd("DBSIZE").query(&mut c).expect("DBSIZE");
    assert_eq!(size, N);
    eprintln!("1M pipelined SETs: written in {written:?}, all replies after {:?}", started.elapsed());
}

#[test]
fn a_subscriber_that_never_reads_is_disconnected_at_its_pubsub_limit_without_stalling_others() {
    let s = Server::start(&["--client-output-buffer-limit", "pubsub 8mb 0 0"]);
    let mut sub = small_window_socket(s.port);
    sub.write_all(b"CLIENT SETNAME sleeper\r\nSUBSCRIBE news\r\n").expect("subscribe");
    let mut got = [0u8; 128];
    let mut seen = 0;
    while !String::from_utf8_lossy(&got[..seen]).contains("news") {
        seen += sub.read(&mut got[seen..]).expect("subscribe confirmation");
    }
    // From now on the subscriber reads nothing.
    let mut publisher = s.conn();
    let mut watcher = s.conn();
    let rss_before = rss_bytes(s.pid());
    let payload = vec![b'x'; 10_000];
    let mut rss_peak = rss_before;
    let mut slowest_ping = Duration::ZERO;
    let mut disconnected_after = None;
    for i in 0..5_000 {
        let receivers: i64 = redis::cmd("PUBLISH").arg("news").arg(&payload).query(&mut publisher).expect("PUBLISH");
        if receivers == 0 {
            disconnected_after = Some(i);
            break;
        }
        if i % 50 == 0 {
            let t = Instant::now();
            let _: String = redis::cmd("PING").query(&mut watcher).expect("PING");
            slowest_ping = slowest_ping.max(t.elapsed());
            rss_peak = rss_peak.max(rss_bytes(s.pid()));
        }
    }
    let n = disconnected_after.expect("the subscriber was never disconnected");
    // 8 MB of 10 KB messages is ~800; the kernel's socket buffers take some more.
    assert!((700..2_000).contains(&n), "disconnected after {n} messages");
    assert!(slowest_ping < Duration::from_millis(500), "another client waited {slowest_ping:?}");
    let growth = rss_peak.saturating_sub(rss_before);
    assert!(growth < 24 << 20, "RSS grew by {} MB for an 8 MB limit", growth >> 20);
    assert!(!client_list(&mut watcher).contains("name=sleeper"));
    assert!(s.log_text().contains("scheduled to be closed ASAP for overcoming of output buffer limits"));
    eprintln!("subscriber closed after {n} messages; RSS +{} KB; slowest PING {slowest_ping:?}", growth >> 10);
}

#[test]
fn hrandfield_with_a_huge_negative_count_disconnects_only_that_client() {
    let s = Server::start(&["--client-output-buffer-limit", "normal 100kb 0 0"]);
    let mut c = s.conn();
    let _: () = redis::cmd("HSET").arg("h").arg("a").arg("1").arg("b").arg("2").query(&mut c).expect("HSET");
    let rss_before = rss_bytes(s.pid());
    for cmd in [&b"HRANDFIELD"[..], b"SRANDMEMBER", b"ZRANDMEMBER"] {
        let key = match cmd {
            b"HRANDFIELD" => "h",
            b"SRANDMEMBER" => "s",
            _ => "z",
        };
        let _: () = redis::cmd("SADD").arg("s").arg("a").arg("b").query(&mut c).expect("SADD");
        let _: () = redis::cmd("ZADD").arg("z").arg(1).arg("a").arg(2).arg("b").query(&mut c).expect("ZADD");
        let mut raw = Raw::connect(&s.addr());
        raw.send(&[cmd, b" ", key.as_bytes(), b" -999999999\r\n"].concat());
        let started = Instant::now();
        assert!(raw.closed(), "{} did not disconnect its client", String::from_utf8_lossy(cmd));
        assert!(started.elapsed() < Duration::from_secs(5));
        let pong: String = redis::cmd("PING").query(&mut c).expect("others are served");
        assert_eq!(pong, "PONG");
    }
    let rss_after = rss_bytes(s.pid());
    assert!(rss_after < 2 * rss_before, "RSS {} KB → {} KB", rss_before >> 10, rss_after >> 10);
    let info: String = redis::cmd("INFO").arg("stats").query(&mut c).expect("INFO");
    assert!(info.contains("client_output_buffer_limit_disconnections:3"), "{info}");
}

#[test]
fn a_frozen_replica_is_disconnected_at_its_replica_limit_and_resyncs_after() {
    let master = Server::start(&[
        "--client-output-buffer-limit",
        "replica 4mb 0 0",
        "--repl-backlog-size",
        "1mb",
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let replica = Server::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut m = master.conn();
    let mut r = replica.conn();
    let _: () = redis::cmd("SET").arg("before").arg("1").query(&mut m).expect("SET");
    let up = wait_until(Duration::from_secs(20), || {
        info_field(&mut r, "replication", "master_link_status") == "up"
            && info_field(&mut m, "replication", "master_repl_offset")
                == info_field(&mut r, "replication", "slave_repl_offset")
    });
    assert!(up, "replica never synced:\n{}", replica.log_text());

    replica.signal("STOP");
    let value = vec![b'v'; 30_000];
    let mut peak_buffers = 0u64;
    let mut dropped = false;
    for i in 0..2_000 {
        let _: () = redis::cmd("SET").arg(format!("k{i}")).arg(&value).query(&mut m).expect("SET");
        if i % 20 == 0 {
            let buffers: u64 = info_field(&mut m, "memory", "mem_total_replication_buffers").parse().unwrap_or(0);
            peak_buffers = peak_buffers.max(buffers);
            if info_field(&mut m, "replication", "connected_slaves") == "0" {
                dropped = true;
                break;
            }
        }
    }
    assert!(dropped, "the frozen replica was never dropped:\n{}", master.log_text());
    assert!(peak_buffers <= 6 << 20, "replication buffers reached {} KB for a 4 MB limit", peak_buffers >> 10);
    assert!(master.log_text().contains("scheduled to be closed ASAP for overcoming of output buffer limits"));

    replica.signal("CONT");
    let caught_up = wait_until(Duration::from_secs(60), || {
        info_field(&mut r, "replication", "master_link_status") == "up"
            && info_field(&mut m, "replication", "master_repl_offset")
                == info_field(&mut r, "replication", "slave_repl_offset")
    });
    assert!(caught_up, "the replica did not resync:\n{}", replica.log_text());
    assert_eq!(digest(&mut m), digest(&mut r));
}

/// Starts a command whose last argument is announced a little longer than the `sent`
/// bytes that arrive: the server holds them in the client's query buffer (sized for the
/// whole argument once its header is read, as Redis sizes it).
fn hold_query_buffer(port: u16, name: &str, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    stream.write_all(format!("CLIENT SETNAME {name}\r\n").as_bytes()).expect("name");
    let mut ok = [0u8; 5];
    stream.read_exact(&mut ok).expect("+OK");
    let total = sent + 16;
    stream.write_all(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${total}\r\n").as_bytes()).expect("header");
    stream.write_all(&vec![b'x'; sent]).expect("payload");
    stream
}

#[test]
fn maxmemory_clients_evicts_the_biggest_clients_first() {
    let s = Server::start(&["--maxmemory-clients", "10mb"]);
    let mut admin = s.conn();
    let _: () = redis::cmd("CLIENT").arg("NO-EVICT").arg("on").query(&mut admin).expect("NO-EVICT");
    let held_by = |admin: &mut redis::Connection, name: &str| client_field(&client_list(admin), name, "tot-mem");
    let wait_held = |admin: &mut redis::Connection, name: &str, at_least: u64| {
        wait_until(Duration::from_secs(10), || held_by(admin, name).is_some_and(|m| m >= at_least))
    };
    let _small = hold_query_buffer(s.port, "small", 1 << 20);
    assert!(wait_held(&mut admin, "small", 1 << 20));
    let _medium = hold_query_buffer(s.port, "medium", 2 << 20);
    assert!(wait_held(&mut admin, "medium", 2 << 20));
    let _big = hold_query_buffer(s.port, "big", 4 << 20);
    assert!(wait_held(&mut admin, "big", 4 << 20));
    let list = client_list(&mut admin);
    let total: u64 = ["small", "medium", "big"].iter().filter_map(|n| client_field(&list, n, "tot-mem")).sum();
    assert!(total < 10 << 20, "below the limit so far: {list}");
    assert_eq!(info_field(&mut admin, "stats", "evicted_clients"), "0");

    // A fourth client takes the total over 10 MB: the biggest goes, and it is enough.
    let _trigger = hold_query_buffer(s.port, "trigger", 3 << 20);
    let evicted = wait_until(Duration::from_secs(10), || !client_list(&mut admin).contains("name=big "));
    assert!(evicted, "nobody was evicted: {}", client_list(&mut admin));
    let list = client_list(&mut admin);
    for name in ["small", "medium", "trigger"] {
        assert!(list.contains(&format!("name={name} ")), "{name} was evicted too: {list}");
    }
    assert_eq!(info_field(&mut admin, "stats", "evicted_clients"), "1");
    assert!(s.log_text().contains("Evicting client: "));
}

#[test]
fn replies_queue_while_input_keeps_flowing_for_a_client_that_reads_late() {
    // A client sends GETs of a big value and reads nothing until it has sent them all:
    // the replies (far more than the sockets' buffers) wait in the server, which keeps
    // reading the client's input, and CLIENT LIST shows them as omem.
    let s = Server::start(&[]);
    let mut c = s.conn();
    let _: () = redis::cmd("SET").arg("big").arg(vec![b'x'; 100_000]).query(&mut c).expect("SET");
    let mut late = small_window_socket(s.port);
    late.write_all(b"CLIENT SETNAME late\r\n").expect("name");
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mut writer = late.try_clone().expect("clone");
    let (sent2, done2) = (sent.clone(), done.clone());
    let t = std::thread::spawn(move || {
        for _ in 0..300 {
            writer.write_all(b"GET big\r\n").expect("write");
            sent2.fetch_add(1, Ordering::SeqCst);
        }
        done2.store(true, Ordering::SeqCst);
    });
    assert!(wait_until(Duration::from_secs(20), || done.load(Ordering::SeqCst)), "the server stopped reading");
    t.join().expect("writer");
    let queued = wait_until(Duration::from_secs(10), || {
        client_field(&client_list(&mut c), "late", "omem").is_some_and(|omem| omem > 10 << 20)
    });
    assert!(queued, "{}", client_list(&mut c));
    let mem: u64 = info_field(&mut c, "memory", "mem_clients_normal").parse().expect("mem_clients_normal");
    assert!(mem > 10 << 20, "mem_clients_normal {mem}");
    // Now it reads everything.
    let mut total = 0usize;
    let expected = 5 + 300 * (100_000 + 2 + "$100000\r\n".len());
    let mut chunk = vec![0u8; 1 << 16];
    while total < expected {
        let n = late.read(&mut chunk).expect("read");
        assert!(n > 0);
        total += n;
    }
    assert_eq!(total, expected);
}
