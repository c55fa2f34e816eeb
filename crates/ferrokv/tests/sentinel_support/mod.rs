//! Topologies for sentinel tests: Debian's redis-server as master and replicas (ferrokv's
//! own replication is not there yet), ferrokv or Debian sentinels, each process on a port
//! chosen at start and kept across restarts, in its own temporary directory, stopped by
//! PID on drop. Also an event listener that collects a sentinel's pub/sub messages.

#![allow(dead_code)]

use crate::common::{free_port, optional_binary, wait_until, TempDir};
use ferrokv_resp::Frame;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A master name used by every test.
pub const MASTER: &str = "mymaster";

/// Sends one command and reads one reply, None on any failure (the peer may be dead).
pub fn query(port: u16, args: &[&str]) -> Option<Frame> {
    query_as(port, &[], args)
}

/// Like [`query`], after sending `auth` (e.g. `["AUTH", "secret"]`) if not empty.
pub fn query_as(port: u16, auth: &[&str], args: &[&str]) -> Option<Frame> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut out = Vec::new();
    if !auth.is_empty() {
        ferrokv_resp::encode_command(&mut out, auth.iter().map(|a| a.as_bytes()));
    }
    ferrokv_resp::encode_command(&mut out, args.iter().map(|a| a.as_bytes()));
    s.write_all(&out).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16384];
    let mut skip = !auth.is_empty();
    loop {
        if let Ok(Some((f, used))) = Frame::decode(&buf) {
            if !skip {
                return Some(f);
            }
            skip = false;
            buf.drain(..used);
            continue;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

pub fn text(f: &Frame) -> String {
    f.as_bytes().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
}

/// `SENTINEL get-master-addr-by-name` as a port.
pub fn master_port_from(sentinel: u16) -> Option<u16> {
    match query(sentinel, &["SENTINEL", "get-master-addr-by-name", MASTER])? {
        Frame::Array(v) if v.len() == 2 => text(&v[1]).parse().ok(),
        _ => None,
    }
}

/// The ROLE of an instance: ("master", None) or ("slave", Some(master port)).
pub fn role(port: u16) -> Option<(String, Option<u16>)> {
    match query(port, &["ROLE"])? {
        Frame::Array(v) if !v.is_empty() => {
            let r = text(&v[0]);
            let mp = if r == "slave" {
                v.get(2).and_then(|p| match p {
                    Frame::Integer(n) => Some(*n as u16),
                    _ => None,
                })
            } else {
                None
            };
            Some((r, mp))
        }
        _ => None,
    }
}

/// A field of a `SENTINEL MASTER` reply.
pub fn master_field(sentinel: u16, field: &str) -> Option<String> {
    match query(sentinel, &["SENTINEL", "master", MASTER])? {
        Frame::Array(v) => v.chunks(2).find(|kv| text(&kv[0]) == field).map(|kv| text(&kv[1])),
        _ => None,
    }
}

pub enum SentinelKind {
    Ferrokv,
    Redis(PathBuf),
}

/// A process we started, restartable on the same port.
pub struct Proc {
    pub child: Option<Child>,
    pub port: u16,
    pub dir: TempDir,
    pub log: PathBuf,
    cmd: Vec<String>,
}

impl Proc {
    fn spawn(cmd: Vec<String>, port: u16, dir: TempDir, log: PathBuf) -> Proc {
        let mut p = Proc { child: None, port, dir, log, cmd };
        p.start();
        p
    }

    /// (Re)starts the process with its original command line and waits until it answers.
    pub fn start(&mut self) {
        let mut c = Command::new(&self.cmd[0]);
        c.args(&self.cmd[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        self.child = Some(c.spawn().expect("spawn"));
        let port = self.port;
        let up = wait_until(Duration::from_secs(10), || query(port, &["PING"]).is_some());
        assert!(up, "{:?} did not start; log:\n{}", self.cmd, self.log_text());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kill -9, and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "TERM");
            let exited = wait_until(Duration::from_secs(10), || matches!(c.try_wait(), Ok(Some(_))));
            if !exited {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }

    pub fn signal(&self, sig: &str) {
        if let Some(c) = &self.child {
            signal(c.id(), sig);
        }
    }
}

pub fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).status();
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A stopped process ignores SIGKILL until continued.
            signal(c.id(), "CONT");
        }
        self.kill9();
    }
}

/// Debian's redis-server, with a config file so that Sentinel's CONFIG REWRITE works.
pub fn redis_node(bin: &Path, replica_of: Option<u16>) -> Proc {
    redis_node_with(bin, replica_of, "")
}

/// Like [`redis_node`], with extra config lines.
pub fn redis_node_with(bin: &Path, replica_of: Option<u16>, extra: &str) -> Proc {
    let dir = TempDir::new("sentinel-redis");
    let port = free_port();
    let log = dir.path().join("redis.log");
    let conf = dir.path().join("redis.conf");
    let mut text = format!(
        "port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\nlogfile {}\nrepl-diskless-sync no\n",
        dir.path().display(),
        log.display()
    );
    if let Some(m) = replica_of {
        text.push_str(&format!("replicaof 127.0.0.1 {m}\n"));
    }
    text.push_str(extra);
    std::fs::write(&conf, text).expect("write redis.conf");
    let cmd = vec![bin.display().to_string(), conf.display().to_string()];
    Proc::spawn(cmd, port, dir, log)
}

/// A sentinel monitoring `master_port` with quorum 2, down-after 1000 ms and a short
/// failover timeout.
pub fn sentinel(kind: &SentinelKind, master_port: u16, extra: &str) -> Proc {
    let dir = TempDir::new("sentinel");
    let port = free_port();
    let log = dir.path().join("sentinel.log");
    let conf = dir.path().join("sentinel.conf");
    let text = format!(
        "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\nsentinel monitor {MASTER} 127.0.0.1 {master_port} 2\nsentinel down-after-milliseconds {MASTER} 1000\nsentinel failover-timeout {MASTER} 6000\n{extra}",
        dir.path().display(),
        log.display()
    );
    std::fs::write(&conf, text).expect("write sentinel.conf");
    let cmd = match kind {
        SentinelKind::Ferrokv => {
            vec![env!("CARGO_BIN_EXE_ferrokv").to_string(), "sentinel".into(), conf.display().to_string()]
        }
        SentinelKind::Redis(bin) => vec![bin.display().to_string(), conf.display().to_string()],
    };
    Proc::spawn(cmd, port, dir, log)
}

pub fn config_path(p: &Proc) -> PathBuf {
    p.dir.path().join("sentinel.conf")
}

/// One master and `replicas` replicas of it, all Debian redis-server; None (skipped) if it
/// is not installed.
pub fn replication_group(replicas: usize) -> Option<(Proc, Vec<Proc>)> {
    replication_group_with(replicas, "", &[])
}

/// Like [`replication_group`], with extra config lines for every server and the commands
/// that authenticate the test's own queries (e.g. `AUTH secret`).
pub fn replication_group_with(replicas: usize, extra: &str, auth: &[&str]) -> Option<(Proc, Vec<Proc>)> {
    let bin = optional_binary("redis-server")?;
    let master = redis_node_with(&bin, None, extra);
    let reps: Vec<Proc> = (0..replicas).map(|_| redis_node_with(&bin, Some(master.port), extra)).collect();
    let synced = wait_until(Duration::from_secs(10), || {
        reps.iter().all(|r| {
            matches!(query_as(r.port, auth, &["INFO", "replication"]), Some(f) if text(&f).contains("master_link_status:up"))
        })
    });
    assert!(synced, "replicas did not sync");
    Some((master, reps))
}

/// Waits until every sentinel knows the replicas and the other sentinels, so a failover
/// can be authorized.
pub fn wait_discovery(sentinels: &[&Proc], replicas: usize) {
    let ok = wait_until(Duration::from_secs(30), || {
        sentinels.iter().all(|s| {
            master_field(s.port, "num-slaves").is_some_and(|n| n == replicas.to_string())
                && master_field(s.port, "num-other-sentinels").is_some_and(|n| n == (sentinels.len() - 1).to_string())
        })
    });
    assert!(
        ok,
        "sentinels did not discover each other:\n{}",
        sentinels.iter().map(|s| s.log_text()).collect::<Vec<_>>().join("\n-----\n")
    );
}

/// Collects every message a sentinel publishes (PSUBSCRIBE *), from a background thread.
pub struct Events {
    pub seen: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Events {
    pub fn listen(port: u16) -> Events {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to sentinel");
        s.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        s.write_all(b"*2\r\n$10\r\nPSUBSCRIBE\r\n$1\r\n*\r\n").expect("psubscribe");
        // Events published from now on are seen: wait for the subscription's confirmation.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16384];
        let confirmed = wait_until(Duration::from_secs(5), || {
            if let Ok(n) = s.read(&mut chunk) {
                buf.extend_from_slice(&chunk[..n]);
            }
            match Frame::decode(&buf) {
                Ok(Some((_, used))) => {
                    buf.drain(..used);
                    true
                }
                _ => false,
            }
        });
        assert!(confirmed, "no PSUBSCRIBE confirmation");
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match s.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(_) => continue,
                }
                while let Ok(Some((f, used))) = Frame::decode(&buf) {
                    buf.drain(..used);
                    if let Frame::Array(v) | Frame::Push(v) = f {
                        if v.len() == 4 && text(&v[0]) == "pmessage" {
                            seen2.lock().expect("lock").push((text(&v[2]), text(&v[3])));
                        }
                    }
                }
            }
        });
        Events { seen, stop, thread: Some(thread) }
    }

    pub fn find(&self, channel: &str) -> Option<String> {
        self.seen.lock().expect("lock").iter().find(|(c, _)| c == channel).map(|(_, m)| m.clone())
    }

    pub fn count(&self, channel: &str) -> usize {
        self.seen.lock().expect("lock").iter().filter(|(c, _)| c == channel).count()
    }

    pub fn wait_for(&self, channel: &str, timeout: Duration) -> Option<String> {
        wait_until(timeout, || self.find(channel).is_some());
        self.find(channel)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
