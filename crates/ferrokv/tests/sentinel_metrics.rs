//! The sentinel's metrics port (issue 19): `/metrics` parsed by Prometheus's Python parser,
//! and the topology page in headless Chromium through a kill -9 failover of ferrokv
//! servers watched by three ferrokv sentinels: before, the page shows the old master;
//! after, the new master with the old one down; then the old one as a replica once it
//! returns. Screenshots are kept under the temporary directory's
//! `ferrokv-test-artifacts/` (never in the repository).

mod common;
mod sentinel_support;

use common::{free_port, interop_required, parse_prometheus, wait_until};
use sentinel_support::*;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FAILOVER_WAIT: Duration = Duration::from_secs(30);

fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((head.split(' ').nth(1)?.parse().ok()?, body.to_string()))
}

fn python_parser() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if interop_required() {
            panic!(
                "python3 with prometheus_client is required (FERROKV_REQUIRE_INTEROP=1): pip install prometheus-client"
            );
        }
        eprintln!("SKIPPED (metrics part): python3 with prometheus_client is not installed");
    }
    ok
}

fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.is_file());
    if found.is_none() {
        if interop_required() {
            panic!("chromium is required (FERROKV_REQUIRE_INTEROP=1): apt-get install chromium");
        }
        eprintln!("SKIPPED (page part): chromium is not installed (apt-get install chromium)");
    }
    found
}

/// `/metrics` of a sentinel through the Python parser: `name{labels}` → value.
fn sentinel_metrics(port: u16) -> HashMap<String, f64> {
    let (status, body) = http_get(port, "/metrics").expect("scrape");
    assert_eq!(status, 200);
    parse_prometheus(&body, false)
}

fn artifacts() -> PathBuf {
    let dir = std::env::temp_dir().join("ferrokv-test-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// Runs headless Chromium on the page (bounded: 60 s), returning the DOM after the page's
/// script ran; also takes a screenshot to `shot` when given.
fn page(chromium: &Path, port: u16, shot: Option<&Path>, profile: &Path) -> String {
    let url = format!("http://127.0.0.1:{port}/");
    let run = |extra: &[String]| -> String {
        let mut c = Command::new(chromium);
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--virtual-time-budget=4000")
            .args(extra)
            .arg(&url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = c.spawn().expect("chromium");
        let mut out = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let done = wait_until(Duration::from_secs(60), || matches!(child.try_wait(), Ok(Some(_))));
        if !done {
            let _ = child.kill();
        }
        let _ = child.wait();
        reader.join().unwrap_or_default()
    };
    if let Some(path) = shot {
        run(&["--window-size=1200,900".to_string(), format!("--screenshot={}", path.display())]);
    }
    run(&["--dump-dom".to_string()])
}

/// The page's master section: (data-addr, data-state).
fn shown_master(dom: &str) -> Option<(String, String)> {
    let at = dom.find(r#"class="master""#)?;
    let rest = &dom[at..];
    let attr = |name: &str| -> Option<String> {
        let key = format!(r#"{name}=""#);
        let i = rest.find(&key)? + key.len();
        Some(rest[i..].split('"').next()?.to_string())
    };
    Some((attr("data-addr")?, attr("data-state")?))
}

/// A replica row of the page: its data-down and data-link.
fn shown_replica(dom: &str, addr: &str) -> Option<(String, String)> {
    let key = format!(r#"class="replica" data-addr="{addr}" data-down=""#);
    let i = dom.find(&key)? + key.len();
    let rest = &dom[i..];
    let down = rest.split('"').next()?.to_string();
    let j = rest.find(r#"data-link=""#)? + r#"data-link=""#.len();
    Some((down, rest[j..].split('"').next()?.to_string()))
}

#[test]
fn sentinel_metrics_and_topology_page_through_a_kill9_failover() {
    let parser = python_parser();
    let browser = chromium();
    let (mut master, replicas) = group_of(&ServerKind::Ferrokv, 2, "appendonly yes\n", "", &[]);
    let metrics_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let sentinels: Vec<Proc> = metrics_ports
        .iter()
        .map(|p| sentinel(&SentinelKind::Ferrokv, master.port, &format!("metrics-port {p}\n")))
        .collect();
    wait_discovery(&sentinels.iter().collect::<Vec<_>>(), 2);
    let events = Events::listen(sentinels[0].port);
    let old = master.port;
    let old_addr = format!("127.0.0.1:{old}");
    let mp = metrics_ports[0];
    assert_eq!(http_get(mp, "/health").map(|r| r.0), Some(200));

    if parser {
        for &p in &metrics_ports {
            let m = sentinel_metrics(p);
            let ok = r#"ferrokv_sentinel_master_state{master_name="mymaster",state="ok"}"#;
            assert_eq!(m.get(ok), Some(&1.0), "{m:?}");
            let addr = format!(r#"{{master_address="{old_addr}",master_name="mymaster"}}"#);
            assert_eq!(m.get(&format!("redis_sentinel_master_slaves{addr}")), Some(&2.0));
            assert_eq!(m.get(&format!("redis_sentinel_master_sentinels{addr}")), Some(&3.0));
            assert_eq!(m.get(r#"ferrokv_sentinel_quorum_reachable{master_name="mymaster"}"#), Some(&1.0));
            assert_eq!(m.get("redis_sentinel_masters{}"), Some(&1.0));
        }
    }
    let profile = common::TempDir::new("chromium");
    let stamp = std::process::id();
    if let Some(chromium) = &browser {
        let shot = artifacts().join(format!("sentinel-page-{stamp}-1-before.png"));
        let dom = page(chromium, mp, Some(&shot), profile.path());
        assert_eq!(shown_master(&dom), Some((old_addr.clone(), "ok".to_string())), "{dom}");
        for r in &replicas {
            assert_eq!(
                shown_replica(&dom, &format!("127.0.0.1:{}", r.port)).map(|x| x.0),
                Some("false".into()),
                "{dom}"
            );
        }
        eprintln!("screenshot: {}", shot.display());
    }

    let killed = Instant::now();
    master.kill9();
    let switch = events.wait_for("+switch-master", FAILOVER_WAIT).expect("+switch-master");
    let new_port: u16 = switch.split(' ').nth(4).and_then(|p| p.parse().ok()).expect("new port");
    let new_addr = format!("127.0.0.1:{new_port}");
    let took = killed.elapsed();
    eprintln!("kill -9 -> +switch-master in {took:?}");

    if let Some(chromium) = &browser {
        // After: the new master, and the old one listed among its replicas, down.
        let mut dom = String::new();
        let shown = wait_until(FAILOVER_WAIT, || {
            dom = page(chromium, mp, None, profile.path());
            shown_master(&dom) == Some((new_addr.clone(), "ok".to_string()))
                && shown_replica(&dom, &old_addr).is_some_and(|(down, _)| down == "true")
        });
        assert!(shown, "the page never showed the failover:\n{dom}");
        assert!(dom.contains(r#"data-type="+switch-master""#), "{dom}");
        assert!(dom.contains(r#"data-type="+sdown""#), "{dom}");
        let shot = artifacts().join(format!("sentinel-page-{stamp}-2-after-failover.png"));
        page(chromium, mp, Some(&shot), profile.path());
        eprintln!("screenshot: {}", shot.display());
    }
    if parser {
        // Every sentinel counts the failover (the others learn it from hello messages) and
        // times it from the master's +sdown as it saw it.
        let failovers = r#"ferrokv_sentinel_failovers_total{master_name="mymaster"}"#;
        let counted = wait_until(FAILOVER_WAIT, || {
            metrics_ports.iter().all(|&p| sentinel_metrics(p).get(failovers) == Some(&1.0))
        });
        assert!(counted, "{:?}", sentinel_metrics(mp));
        let last = r#"ferrokv_sentinel_last_failover_duration_seconds{master_name="mymaster"}"#;
        let durations: Vec<Option<f64>> =
            metrics_ports.iter().map(|&p| sentinel_metrics(p).get(last).copied()).collect();
        let limit = took.as_secs_f64() + 1.0;
        assert!(durations.iter().flatten().all(|&d| d > 0.0 && d < limit), "{durations:?} vs {took:?}");
        assert!(durations.iter().any(Option::is_some), "{durations:?}");
        assert!(sentinel_metrics(mp).get("ferrokv_sentinel_current_epoch{}").is_some_and(|&e| e >= 1.0));
    }

    // The old master returns (from its AOF) and is turned into a replica of the new one.
    master.start();
    let demoted = wait_until(FAILOVER_WAIT, || role(old) == Some(("slave".into(), Some(new_port))));
    assert!(demoted, "the old master was not demoted");
    if let Some(chromium) = &browser {
        let mut dom = String::new();
        let shown = wait_until(FAILOVER_WAIT, || {
            dom = page(chromium, mp, None, profile.path());
            shown_master(&dom) == Some((new_addr.clone(), "ok".to_string()))
                && shown_replica(&dom, &old_addr) == Some(("false".to_string(), "up".to_string()))
        });
        assert!(shown, "the page never showed the old master back as a replica:\n{dom}");
        let shot = artifacts().join(format!("sentinel-page-{stamp}-3-rejoined.png"));
        page(chromium, mp, Some(&shot), profile.path());
        eprintln!("screenshot: {}", shot.display());
    }
    if parser {
        let m = sentinel_metrics(mp);
        let addr = format!(r#"{{master_address="{new_addr}",master_name="mymaster"}}"#);
        assert_eq!(m.get(&format!("redis_sentinel_master_ok_slaves{addr}")), Some(&2.0), "{m:?}");
    }
    // The page's data is valid JSON (the browser parsed it; this checks the raw text too).
    let (status, json) = http_get(mp, "/api/topology").expect("topology");
    assert_eq!(status, 200);
    let valid = Command::new("python3")
        .args(["-c", "import json,sys; json.load(sys.stdin)"])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(json.as_bytes())?;
            c.wait()
        })
        .is_ok_and(|s| s.success());
    assert!(valid, "{json}");
}
