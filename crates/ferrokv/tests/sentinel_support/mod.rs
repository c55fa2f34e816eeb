//! Topologies for sentinel tests: masters and replicas that are ferrokv servers or Debian's
//! redis-server ([`ServerKind`]), ferrokv or Debian sentinels, each process on a port chosen
//! at start and kept across restarts, in its own temporary directory, stopped by PID on
//! drop. Processes listen on 127.0.0.1 unless a test puts them elsewhere (the partition
//! tests use addresses on veth pairs, and a command prefix such as `ip netns exec`). Also an
//! event listener that collects a sentinel's pub/sub messages.

#![allow(dead_code)]

pub mod netns;

use crate::common::{free_port, redis_tool, wait_until, TempDir};
use ferrokv_resp::Frame;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A master name used by every test.
pub const MASTER: &str = "mymaster";

pub const LOCALHOST: &str = "127.0.0.1";

/// Sends one command and reads one reply, None on any failure (the peer may be dead).
pub fn query(port: u16, args: &[&str]) -> Option<Frame> {
    query_at(LOCALHOST, port, &[], args)
}

/// Like [`query`], after sending `auth` (e.g. `["AUTH", "secret"]`) if not empty.
pub fn query_as(port: u16, auth: &[&str], args: &[&str]) -> Option<Frame> {
    query_at(LOCALHOST, port, auth, args)
}

/// Like [`query_as`], to an instance listening on `host`. Connecting is bounded too: a
/// partitioned host may never answer a SYN.
pub fn query_at(host: &str, port: u16, auth: &[&str], args: &[&str]) -> Option<Frame> {
    let addr = std::net::SocketAddr::new(host.parse().ok()?, port);
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
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
    role_at(LOCALHOST, port)
}

/// [`role`] of an instance listening on `host`.
pub fn role_at(host: &str, port: u16) -> Option<(String, Option<u16>)> {
    match query_at(host, port, &[], &["ROLE"])? {
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

/// What plays master and replicas.
pub enum ServerKind {
    Ferrokv,
    Redis(PathBuf),
}

impl ServerKind {
    /// Debian's redis-server, or None (skipped, or a panic in CI) if it is not installed.
    pub fn redis() -> Option<ServerKind> {
        redis_tool("redis-server").map(ServerKind::Redis)
    }

    fn command(&self) -> Vec<String> {
        match self {
            ServerKind::Ferrokv => vec![env!("CARGO_BIN_EXE_ferrokv").to_string(), "server".into()],
            ServerKind::Redis(bin) => vec![bin.display().to_string()],
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ServerKind::Ferrokv => "ferrokv",
            ServerKind::Redis(_) => "redis-server",
        }
    }
}

/// Where a process listens, and how it is started: `prefix` (e.g. `ip netns exec ns`) goes
/// before the program.
#[derive(Clone, Default)]
pub struct Placement {
    pub host: Option<String>,
    pub prefix: Vec<String>,
    /// More addresses to listen on (another path into a namespace, for clients).
    pub also: Vec<String>,
}

impl Placement {
    pub fn host(&self) -> &str {
        self.host.as_deref().unwrap_or(LOCALHOST)
    }

    /// `bind` and `protected-mode` lines: the host, and loopback too so the helpers that
    /// query 127.0.0.1 keep working (inside a namespace, that is the namespace's own
    /// loopback); peers on other addresses need protected mode off (no password in tests).
    fn listen_conf(&self) -> String {
        match &self.host {
            Some(h) if h != LOCALHOST => {
                let also: String = self.also.iter().map(|a| format!(" {a}")).collect();
                format!("bind {h}{also} {LOCALHOST}\nprotected-mode no\n")
            }
            _ => format!("bind {LOCALHOST}\n"),
        }
    }
}

/// A process we started, restartable on the same port.
pub struct Proc {
    pub child: Option<Child>,
    pub host: String,
    pub port: u16,
    pub dir: TempDir,
    pub log: PathBuf,
    cmd: Vec<String>,
}

impl Proc {
    fn spawn(cmd: Vec<String>, host: &str, port: u16, dir: TempDir, log: PathBuf) -> Proc {
        let mut p = Proc { child: None, host: host.to_string(), port, dir, log, cmd };
        p.start();
        p
    }

    /// (Re)starts the process with its original command line and waits until it answers.
    pub fn start(&mut self) {
        let mut c = Command::new(&self.cmd[0]);
        c.args(&self.cmd[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        self.child = Some(c.spawn().expect("spawn"));
        let (host, port) = (self.host.clone(), self.port);
        let up = wait_until(Duration::from_secs(10), || query_at(&host, port, &[], &["PING"]).is_some());
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

/// A server (ferrokv or redis-server) with a config file, so that Sentinel's CONFIG REWRITE
/// works, and `extra` config lines.
pub fn server_node(kind: &ServerKind, replica_of: Option<u16>, extra: &str) -> Proc {
    server_node_at(kind, &Placement::default(), replica_of.map(|p| (LOCALHOST, p)), extra)
}

/// Like [`server_node`], placed elsewhere, replicating from `replica_of` = (host, port).
pub fn server_node_at(kind: &ServerKind, at: &Placement, replica_of: Option<(&str, u16)>, extra: &str) -> Proc {
    let dir = TempDir::new("sentinel-server");
    let port = free_port();
    let log = dir.path().join("server.log");
    let conf = dir.path().join("server.conf");
    // Full syncs start at once (no waiting for more replicas); DEBUG DIGEST compares datasets.
    let mut text = format!(
        "port {port}\n{}save \"\"\nappendonly no\ndir {}\nlogfile {}\nrepl-diskless-sync-delay 0\nenable-debug-command yes\n",
        at.listen_conf(),
        dir.path().display(),
        log.display()
    );
    if let Some((h, p)) = replica_of {
        text.push_str(&format!("replicaof {h} {p}\n"));
    }
    text.push_str(extra);
    std::fs::write(&conf, text).expect("write server.conf");
    let mut cmd = at.prefix.clone();
    cmd.extend(kind.command());
    cmd.push(conf.display().to_string());
    Proc::spawn(cmd, at.host(), port, dir, log)
}

/// A sentinel monitoring `master_port` with quorum 2, down-after 1000 ms and a short
/// failover timeout.
pub fn sentinel(kind: &SentinelKind, master_port: u16, extra: &str) -> Proc {
    sentinel_at(kind, &Placement::default(), (LOCALHOST, master_port), extra)
}

/// Like [`sentinel`], placed elsewhere, monitoring `master` = (host, port).
pub fn sentinel_at(kind: &SentinelKind, at: &Placement, master: (&str, u16), extra: &str) -> Proc {
    let dir = TempDir::new("sentinel");
    let port = free_port();
    let log = dir.path().join("sentinel.log");
    let conf = dir.path().join("sentinel.conf");
    let (mhost, mport) = master;
    let text = format!(
        "port {port}\n{}dir {}\nlogfile {}\nsentinel monitor {MASTER} {mhost} {mport} 2\nsentinel down-after-milliseconds {MASTER} 1000\nsentinel failover-timeout {MASTER} 6000\n{extra}",
        at.listen_conf(),
        dir.path().display(),
        log.display()
    );
    std::fs::write(&conf, text).expect("write sentinel.conf");
    let mut cmd = at.prefix.clone();
    match kind {
        SentinelKind::Ferrokv => cmd.extend([env!("CARGO_BIN_EXE_ferrokv").to_string(), "sentinel".into()]),
        SentinelKind::Redis(bin) => cmd.push(bin.display().to_string()),
    }
    cmd.push(conf.display().to_string());
    Proc::spawn(cmd, at.host(), port, dir, log)
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
    let kind = ServerKind::redis()?;
    Some(group_of(&kind, replicas, extra, extra, auth))
}

/// One master (with `master_extra` config lines) and `replicas` replicas (`replica_extra`)
/// of the given kind, returned once every replica's link is up.
pub fn group_of(
    kind: &ServerKind,
    replicas: usize,
    master_extra: &str,
    replica_extra: &str,
    auth: &[&str],
) -> (Proc, Vec<Proc>) {
    let master = server_node(kind, None, master_extra);
    let reps: Vec<Proc> = (0..replicas).map(|_| server_node(kind, Some(master.port), replica_extra)).collect();
    wait_links_up(&reps, auth);
    (master, reps)
}

/// Waits until every replica reports its master link up.
pub fn wait_links_up(replicas: &[Proc], auth: &[&str]) {
    let synced = wait_until(Duration::from_secs(20), || {
        replicas.iter().all(|r| {
            matches!(query_at(&r.host, r.port, auth, &["INFO", "replication"]), Some(f) if text(&f).contains("master_link_status:up"))
        })
    });
    assert!(
        synced,
        "replicas did not sync:\n{}",
        replicas.iter().map(|r| r.log_text()).collect::<Vec<_>>().join("\n---\n")
    );
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

/// A field of an instance's INFO section.
pub fn info_field_at(host: &str, port: u16, section: &str, name: &str) -> Option<String> {
    let info = text(&query_at(host, port, &[], &["INFO", section])?);
    info.lines().find_map(|l| l.strip_prefix(&format!("{name}:"))).map(|v| v.trim().to_string())
}

/// [`info_field_at`] parsed as a number.
pub fn info_num_at(host: &str, port: u16, section: &str, name: &str) -> Option<u64> {
    info_field_at(host, port, section, name)?.parse().ok()
}

/// DEBUG DIGEST and DBSIZE of an instance: equal for equal datasets.
pub fn dataset_at(host: &str, port: u16) -> Option<(String, i64)> {
    let digest = text(&query_at(host, port, &[], &["DEBUG", "DIGEST"])?);
    match query_at(host, port, &[], &["DBSIZE"])? {
        Frame::Integer(n) => Some((digest, n)),
        _ => None,
    }
}

/// Waits until `replica` replicates `master` with its link up and every byte applied, then
/// asserts both hold the same dataset.
pub fn assert_converged(master: &Proc, replica: &Proc) {
    let (mh, rh) = (master.host.clone(), replica.host.clone());
    let synced = wait_until(Duration::from_secs(30), || {
        let up = info_field_at(&rh, replica.port, "replication", "master_link_status").as_deref() == Some("up");
        let mo = info_field_at(&mh, master.port, "replication", "master_repl_offset");
        let ro = info_field_at(&rh, replica.port, "replication", "slave_repl_offset");
        up && mo.is_some() && mo == ro
    });
    assert!(
        synced,
        "replica {} did not catch up with {}:\n{}\n---\n{}",
        replica.port,
        master.port,
        master.log_text(),
        replica.log_text()
    );
    let (a, b) = (dataset_at(&mh, master.port), dataset_at(&rh, replica.port));
    assert!(a.is_some() && a == b, "datasets differ: master {a:?}, replica {b:?}");
}
