//! The metrics port (`metrics-port`, issue 19): `/metrics` parsed by Prometheus's own
//! Python parser while the server is under load, its values checked against INFO; the
//! histograms; `/health`; and abuse of the metrics port (malformed requests, a client
//! sending a byte a second, a flood of connections) while the Redis port must keep
//! answering within a bound.

mod common;

use common::{free_port, interop_required, parse_prometheus, wait_until, Server};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One HTTP exchange: (status, head, body). Errors (closed early) are `None`.
fn http(port: u16, request: &str) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, head.to_string(), body.to_string()))
}

fn get(port: u16, path: &str) -> (u16, String, String) {
    http(port, &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")).expect("HTTP answer")
}

fn scrape(port: u16, openmetrics: bool) -> String {
    let accept = if openmetrics { "Accept: application/openmetrics-text; version=1.0.0\r\n" } else { "" };
    let (status, head, body) =
        http(port, &format!("GET /metrics HTTP/1.1\r\nHost: localhost\r\n{accept}\r\n")).expect("scrape");
    assert_eq!(status, 200, "{head}");
    let want = if openmetrics { "application/openmetrics-text" } else { "text/plain; version=0.0.4" };
    assert!(head.contains(want), "{head}");
    body
}

/// True when python3 with prometheus_client is there; otherwise skip (or fail in CI).
fn python_parser_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client.parser, prometheus_client.openmetrics.parser"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if interop_required() {
            panic!(
                "python3 with prometheus_client is required (FERROKV_REQUIRE_INTEROP=1): pip install prometheus-client"
            );
        }
        eprintln!("SKIPPED: python3 with prometheus_client is not installed (pip install prometheus-client)");
    }
    ok
}

fn info_num(c: &mut redis::Connection, section: &str, field: &str) -> f64 {
    common::info_field(c, section, field).parse().expect("number")
}

fn value(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key).unwrap_or_else(|| panic!("no {key} in {:?}", m.keys().collect::<Vec<_>>()))
}

fn metrics_server(extra: &[&str]) -> (Server, u16) {
    let port = free_port();
    let p = port.to_string();
    let mut args = vec!["--metrics-port", p.as_str()];
    args.extend_from_slice(extra);
    let s = Server::start(&args);
    assert!(wait_until(Duration::from_secs(10), || http(port, "GET /health HTTP/1.1\r\n\r\n").is_some()));
    (s, port)
}

/// Writes from a few connections until `stop` (bounded: at most 60 s, 200,000 commands).
fn load(addr: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
        let mut c = client.get_connection().expect("conn");
        let started = Instant::now();
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) && n < 200_000 {
            let mut p = redis::pipe();
            for i in 0..50 {
                p.cmd("SET").arg(format!("k{}", (n + i) % 5000)).arg(n).ignore();
                p.cmd("GET").arg(format!("k{}", (n + i) % 7000)).ignore();
            }
            let _: () = p.query(&mut c).expect("pipeline");
            n += 100;
        }
        n
    })
}

#[test]
fn metrics_parse_under_load_and_agree_with_info() {
    if !python_parser_available() {
        return;
    }
    let (master, mport) =
        metrics_server(&["--appendonly", "yes", "--appendfsync", "always", "--repl-diskless-sync-delay", "0"]);
    let mp = master.port.to_string();
    let (replica, rport) = metrics_server(&["--replicaof", "127.0.0.1", &mp]);
    let mut mc = master.conn();
    let mut rc = replica.conn();
    assert!(wait_until(Duration::from_secs(20), || common::info_field(&mut mc, "replication", "connected_slaves")
        == "1"
        && common::info_field(&mut rc, "replication", "master_link_status") == "up"));
    let _: () = redis::cmd("SELECT").arg(3).query(&mut mc).unwrap();
    let _: () = redis::cmd("SET").arg("in-db3").arg("1").arg("EX").arg(1000).query(&mut mc).unwrap();
    let _: () = redis::cmd("SELECT").arg(0).query(&mut mc).unwrap();

    // Scrapes parsed while three connections write and read.
    let stop = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> = (0..3).map(|_| load(master.addr(), stop.clone())).collect();
    let mut last_processed = 0.0;
    for i in 0..12 {
        let openmetrics = i % 3 == 2;
        let m = parse_prometheus(&scrape(mport, openmetrics), openmetrics);
        let processed = value(&m, "redis_commands_processed_total{}");
        assert!(processed >= last_processed, "counter went back: {processed} < {last_processed}");
        last_processed = processed;
        assert_eq!(value(&m, "redis_up{}"), 1.0);
        let replica_scrape = parse_prometheus(&scrape(rport, false), false);
        assert!(replica_scrape.keys().any(|k| k.starts_with("redis_instance_info{") && k.contains(r#"role="slave""#)));
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    let written: u64 = loaders.into_iter().map(|t| t.join().expect("loader")).sum();
    assert!(written > 0);
    assert!(last_processed > 0.0);

    // Quiet now: the figures agree with INFO (bounded retries: the snapshot may be up to
    // 50 ms old, and replication pings move the offset).
    let agreed = wait_until(Duration::from_secs(10), || {
        let before = info_num(&mut mc, "stats", "total_commands_processed");
        let clients = info_num(&mut mc, "clients", "connected_clients");
        let offset = info_num(&mut mc, "replication", "master_repl_offset");
        let dbsize: i64 = redis::cmd("DBSIZE").query(&mut mc).unwrap();
        std::thread::sleep(Duration::from_millis(60)); // past the snapshot cache
        let m = parse_prometheus(&scrape(mport, false), false);
        let processed = value(&m, "redis_commands_processed_total{}");
        value(&m, "redis_connected_clients{}") == clients
            && value(&m, r#"redis_db_keys{db="db0"}"#) == dbsize as f64
            && value(&m, r#"redis_db_keys{db="db3"}"#) == 1.0
            && value(&m, r#"redis_db_keys_expiring{db="db3"}"#) == 1.0
            && processed > before
            && processed <= before + 4.0
            && value(&m, "redis_master_repl_offset{}") == offset
            && value(&m, "redis_connected_slaves{}") == 1.0
    });
    assert!(agreed, "metrics never agreed with INFO:\n{}", scrape(mport, false));

    // Per-replica lag: the replica catches up, so its unacknowledged bytes reach 0.
    let caught_up = wait_until(Duration::from_secs(10), || {
        let m = parse_prometheus(&scrape(mport, false), false);
        m.iter().any(|(k, v)| {
            k.starts_with("ferrokv_replica_lag_bytes{") && k.contains(r#"slave_state="online""#) && *v == 0.0
        }) && m.iter().any(|(k, v)| k.starts_with("redis_connected_slave_lag_seconds{") && *v <= 2.0)
    });
    assert!(caught_up, "replica lag never reached 0:\n{}", scrape(mport, false));

    let m = parse_prometheus(&scrape(mport, false), false);
    // Commandstats and latency histograms per command; the AOF's fsync histogram.
    let sets = value(&m, r#"redis_commands_total{cmd="set"}"#);
    let info_sets = common::info_field(&mut mc, "commandstats", "cmdstat_set");
    assert!(info_sets.starts_with(&format!("calls={},", sets as u64)), "{info_sets} vs {sets}");
    assert_eq!(value(&m, r#"ferrokv_command_latency_seconds_count{cmd="set"}"#), sets);
    assert_eq!(value(&m, r#"ferrokv_command_latency_seconds_bucket{cmd="set",le="+Inf"}"#), sets);
    assert!(value(&m, "ferrokv_aof_fsync_seconds_count{}") > 0.0);
    assert_eq!(value(&m, "redis_aof_last_write_status{}"), 1.0);
    assert_eq!(value(&m, "redis_rdb_last_bgsave_status{}"), 1.0);

    // The replica's own view.
    let r = parse_prometheus(&scrape(rport, false), false);
    let link = r.iter().find(|(k, _)| k.starts_with("redis_master_link_up{")).map(|(_, v)| *v);
    assert_eq!(link, Some(1.0), "{r:?}");
    assert!(r.keys().any(|k| k.starts_with("redis_instance_info{") && k.contains(r#"role="slave""#)));
    let replica_offset = info_num(&mut rc, "replication", "slave_repl_offset");
    assert!(value(&r, "redis_slave_repl_offset{}") <= replica_offset);
}

#[test]
fn sync_replicas_acknowledgements_have_a_histogram() {
    if !python_parser_available() {
        return;
    }
    let (master, mport) = metrics_server(&["--repl-diskless-sync-delay", "0"]);
    let mp = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &mp]);
    let mut mc = master.conn();
    let mut rc = replica.conn();
    assert!(wait_until(Duration::from_secs(20), || common::info_field(&mut rc, "replication", "master_link_status")
        == "up"));
    let _: () = redis::cmd("CONFIG").arg("SET").arg("sync-replicas").arg("1").query(&mut mc).unwrap();
    // The lease starts with the replica's first acknowledgement.
    assert!(wait_until(Duration::from_secs(10), || common::info_field(&mut mc, "replication", "sync_fenced") == "0"));
    for i in 0..20 {
        let _: () = redis::cmd("SET").arg(format!("s{i}")).arg(i).query(&mut mc).unwrap();
    }
    let counted = wait_until(Duration::from_secs(10), || {
        let m = parse_prometheus(&scrape(mport, false), false);
        m.get("ferrokv_sync_replicas_ack_seconds_count{}").is_some_and(|&n| n >= 1.0)
    });
    assert!(counted, "{}", scrape(mport, false));
    drop(replica);
}

#[test]
fn health_and_bad_requests() {
    let (server, port) = metrics_server(&[]);
    let (status, _, body) = get(port, "/health");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    assert_eq!(get(port, "/nothing").0, 404);
    let (status, head, _) = http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n").expect("answer");
    assert_eq!(status, 405);
    assert!(head.contains("Allow: GET, HEAD"));
    let (status, head, body) = http(port, "HEAD /metrics HTTP/1.1\r\n\r\n").expect("answer");
    assert_eq!(status, 200);
    assert!(head.contains("Content-Length: ") && body.is_empty(), "{head}");
    assert_eq!(http(port, "GARBAGE\0\x01\x02\r\n\r\n").map(|r| r.0), Some(400));
    let huge = format!("GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(http(port, &huge).map(|r| r.0), Some(431));
    let many: String = (0..40).map(|i| format!("X-{i}: 1\r\n")).collect();
    assert_eq!(http(port, &format!("GET /metrics HTTP/1.1\r\n{many}\r\n")).map(|r| r.0), Some(431));
    // The Redis port never noticed.
    let mut c = server.conn();
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).unwrap(), "PONG");
}

/// PINGs the Redis port every 10 ms until `stop`; returns the slowest round trip.
fn probe(addr: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Duration, usize)> {
    std::thread::spawn(move || {
        let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
        let mut c = client.get_connection_with_timeout(Duration::from_secs(5)).expect("conn");
        c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let (mut worst, mut n) = (Duration::ZERO, 0);
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
            let t = Instant::now();
            let pong: String = redis::cmd("PING").query(&mut c).expect("PING on the Redis port");
            assert_eq!(pong, "PONG");
            worst = worst.max(t.elapsed());
            n += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
        (worst, n)
    })
}

#[test]
fn abuse_of_the_metrics_port_never_stalls_the_redis_port() {
    let (server, port) = metrics_server(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = probe(server.addr(), stop.clone());

    // Slow clients: a byte a second. The endpoint gives up on them (408 or close) after
    // its 5 s head timeout, well before they would finish.
    let slow: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                s.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
                let started = Instant::now();
                for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" {
                    if s.write_all(&[*b]).is_err() {
                        break;
                    }
                    let mut buf = [0u8; 256];
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(_) => return (started.elapsed(), String::from_utf8_lossy(&buf).into_owned()),
                        Err(_) => {}
                    }
                    std::thread::sleep(Duration::from_millis(950));
                    if started.elapsed() > Duration::from_secs(12) {
                        break;
                    }
                }
                (started.elapsed(), String::new())
            })
        })
        .collect();

    // A flood of connections, held open: more than the endpoint's cap of 64.
    let mut held = Vec::new();
    for _ in 0..1000 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            held.push(s);
        }
    }
    // Malformed requests and valid scrapes hammered from two threads, bounded in count
    // and time.
    let hammer: Vec<_> = (0..2)
        .map(|t| {
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut i = 0u32;
                while i < 400 && started.elapsed() < Duration::from_secs(10) {
                    let req: Vec<u8> = match (i + t) % 4 {
                        0 => b"GET /metrics HTTP/1.1\r\n\r\n".to_vec(),
                        1 => b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n".to_vec(),
                        2 => format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(9000)).into_bytes(),
                        _ => b"GET /metrics HTTP/1.1\r\nHost".to_vec(), // never finished
                    };
                    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
                        let _ = s.write_all(&req);
                        let mut sink = Vec::new();
                        let _ = s.read_to_end(&mut sink);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for h in hammer {
        h.join().expect("hammer");
    }
    drop(held);
    for t in slow {
        let (took, answer) = t.join().expect("slow client");
        assert!(took < Duration::from_secs(9), "a byte-a-second client was kept for {took:?}");
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    stop.store(true, Ordering::Relaxed);
    let (worst, pings) = pinger.join().expect("pinger");
    eprintln!("Redis port during the abuse: {pings} PINGs, slowest {worst:?}");
    assert!(pings > 50, "only {pings} PINGs");
    assert!(worst < Duration::from_millis(500), "a PING took {worst:?} while the metrics port was abused");

    // The endpoint itself recovers once the abusers are gone, and the server is alive.
    assert!(
        wait_until(Duration::from_secs(10), || http(port, "GET /health HTTP/1.1\r\n\r\n").is_some_and(|r| r.0 == 200))
    );
    assert!(scrape(port, false).contains("redis_up 1"));
    let mut c = server.conn();
    assert_eq!(redis::cmd("PING").query::<String>(&mut c).unwrap(), "PONG");
}

#[test]
fn metrics_port_off_by_default_and_in_config_get() {
    let server = Server::start(&[]);
    let mut c = server.conn();
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg("metrics-port").query(&mut c).unwrap();
    assert_eq!(v, vec!["metrics-port".to_string(), "0".to_string()]);
    let err = redis::cmd("CONFIG").arg("SET").arg("metrics-port").arg("9").query::<()>(&mut c).unwrap_err();
    assert!(err.to_string().contains("can't set immutable config"), "{err}");
}
