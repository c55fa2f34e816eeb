//! Python programs the tests drive: redis-py scenario scripts (real clients as users run
//! them) and Prometheus's own text parser.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `python3 script args…`, bounded to 120 s (the scripts bound their own loops; this
/// bounds the process), and returns its stdout, which must start with "OK ". `context`
/// is added to a failure's message (a server's log, say).
pub fn run_python_scenario(script: &str, args: &[String], context: impl FnOnce() -> String) -> String {
    let mut child = Command::new("python3")
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let super::Finished { exited, status, out, err } = super::finish_child(&mut child, Duration::from_secs(120));
    assert!(exited, "{args:?}: still running after 120 s\n{out}\n{err}");
    assert!(status.success() && out.starts_with("OK "), "{args:?}: {status}\n{out}\n{err}\n{}", context());
    eprintln!("redis-py {}", out.trim());
    out
}

/// Parses a `/metrics` body with Prometheus's Python parser (text format, or OpenMetrics):
/// `name{labels}` → value.
pub fn parse_prometheus(body: &str, openmetrics: bool) -> HashMap<String, f64> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/metrics_support/parse_metrics.py");
    let mut child = Command::new("python3")
        .args([script, if openmetrics { "openmetrics" } else { "prometheus" }])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().expect("stdin").write_all(body.as_bytes()).expect("write body");
    let out = child.wait_with_output().expect("parser");
    assert!(out.status.success(), "parser refused:\n{}\n---\n{body}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}
