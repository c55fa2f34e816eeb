//! Test harness: starts the real `ferrokv` binary (or Debian's `redis-server`, for
//! differential tests) on an ephemeral loopback port in its own temporary directory, and
//! offers `redis`-crate connections and a raw RESP connection. Processes are stopped by
//! PID when the handle drops.

#![allow(dead_code)]

mod python;
mod redis_tools;
#[allow(unused_imports)] // each test file uses some of them
pub use python::{parse_prometheus, run_python_scenario};
#[allow(unused_imports)] // each test file uses some of them
pub use redis_tools::{
    assert_info_is_redis, ferrokv_posing_as_redis, redis_tool, redis_tool_at, redis_tool_path, redis_tool_variable,
};

use ferrokv_resp::Frame;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("ferrokv-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port that was free a moment ago (the server retries if it is taken meanwhile).
/// An argument `start_kind` replaces with a port free at each start attempt (a cluster
/// node's bus port: picked once up front, another test could take it before the node
/// binds it, and every retry would fail on it again).
pub const FREE_PORT: &str = "<free port>";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("ephemeral port")
}

/// How a child process ended: waited for at most `limit` (killed past it), then its exit
/// status and everything it printed.
pub struct Finished {
    pub exited: bool,
    pub status: std::process::ExitStatus,
    pub out: String,
    pub err: String,
}

/// Waits for `child` (spawned with piped stdout and stderr) for at most `limit`.
pub fn finish_child(child: &mut std::process::Child, limit: Duration) -> Finished {
    use std::io::Read;
    let exited = wait_until(limit, || child.try_wait().is_ok_and(|s| s.is_some()));
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait for a child process");
    let (mut out, mut err) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    Finished { exited, status, out, err }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    f()
}

/// DEBUG DIGEST: equal digests mean equal datasets (computed as Redis computes it).
pub fn digest(c: &mut redis::Connection) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(c).expect("DEBUG DIGEST")
}

/// Waits until the server has finished loading (PING stops answering -LOADING).
pub fn wait_loaded(s: &Server) -> redis::Connection {
    let mut c = s.conn();
    let ok = wait_until(Duration::from_secs(30), || redis::cmd("PING").query::<String>(&mut c).is_ok());
    assert!(ok, "server still loading:\n{}", s.log_text());
    c
}

/// One INFO field (panics when the section lacks it).
pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg(section).query(c).expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
        .trim()
        .to_string()
}

/// True when optional binaries (redis-server…) must be present: CI sets this.
pub fn interop_required() -> bool {
    std::env::var("FERROKV_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// Finds an optional helper program (ip, script, setpriv…) on PATH; if missing, panics in
/// CI and tells the developer otherwise. Redis's own programs are found by [`redis_tool`].
pub fn optional_binary(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file()));
    if found.is_none() {
        if interop_required() {
            panic!("{name} is required (FERROKV_REQUIRE_INTEROP=1) but not installed");
        }
        eprintln!("SKIPPED: {name} is not installed (apt-get install redis-server redis-tools)");
    }
    found
}

pub enum Kind {
    Ferrokv,
    Redis(PathBuf),
}

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: TempDir,
    pub log: PathBuf,
}

impl Server {
    /// Starts ferrokv with extra `--directive value` arguments.
    pub fn start(args: &[&str]) -> Server {
        Self::start_kind(Kind::Ferrokv, None, args)
    }

    /// Starts ferrokv with a config file (which must come first on the command line).
    pub fn start_with_config(config: &Path, args: &[&str]) -> Server {
        Self::start_kind(Kind::Ferrokv, Some(config), args)
    }

    /// Starts Debian's redis-server, or None (skip) if it is not installed.
    pub fn start_redis(args: &[&str]) -> Option<Server> {
        let bin = redis_tool("redis-server")?;
        Some(Self::start_kind(Kind::Redis(bin), None, args))
    }

    pub fn start_kind(kind: Kind, config: Option<&Path>, args: &[&str]) -> Server {
        let dir = TempDir::new("srv");
        // A --logfile in `args` wins over the harness's own.
        let custom_log = args.iter().position(|a| *a == "--logfile").and_then(|i| args.get(i + 1)).map(PathBuf::from);
        // A --port in `args` wins over the harness's own (a node pinned to restart as itself).
        let pinned_port = args.iter().position(|a| *a == "--port").and_then(|i| args.get(i + 1)?.parse().ok());
        for _attempt in 0..5 {
            let port = pinned_port.unwrap_or_else(free_port);
            let log = custom_log.clone().unwrap_or_else(|| dir.path().join("server.log"));
            if custom_log.is_none() {
                let _ = std::fs::remove_file(&log);
            }
            let mut cmd = match &kind {
                Kind::Ferrokv => {
                    let mut c = Command::new(env!("CARGO_BIN_EXE_ferrokv"));
                    c.arg("server");
                    c
                }
                Kind::Redis(bin) => Command::new(bin),
            };
            if let Some(conf) = config {
                cmd.arg(conf);
            }
            cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
            cmd.args(["--dir", dir.path().to_str().expect("utf8 path"), "--logfile", log.to_str().expect("utf8 path")]);
            cmd.args(["--enable-debug-command", "yes"]);
            cmd.args(args.iter().map(|a| if *a == FREE_PORT { free_port().to_string() } else { a.to_string() }));
            cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("spawn server");
            let ready = wait_until(Duration::from_secs(10), || {
                if let Ok(Some(_)) = child.try_wait() {
                    return true;
                }
                std::fs::read_to_string(&log).is_ok_and(|s| s.contains("Ready to accept connections"))
            });
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                if log_text.contains("Address already in use") {
                    continue;
                }
                panic!("server exited with {status}: {err}\n{log_text}");
            }
            assert!(ready, "server did not become ready");
            if let Kind::Redis(bin) = &kind {
                let info = Raw::connect(&format!("127.0.0.1:{port}")).cmd(&[b"INFO", b"server"]);
                assert_info_is_redis(&String::from_utf8_lossy(&info), bin);
            }
            return Server { child, port, dir, log };
        }
        panic!("could not find a free port");
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn conn(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).expect("client");
        client.get_connection_with_timeout(Duration::from_secs(5)).expect("connect")
    }

    pub fn raw(&self) -> Raw {
        Raw::connect(&self.addr())
    }

    /// Sends `args` (a long script) on `looping` without waiting for the reply, then waits
    /// (bounded) until another client gets BUSY: the script runs past
    /// `busy-reply-threshold` and the server serves others meanwhile.
    pub fn start_long_script(&self, looping: &mut Raw, args: &[&[u8]]) {
        let mut wire = Vec::new();
        ferrokv_resp::encode_command(&mut wire, args.iter().copied());
        looping.send(&wire);
        let mut probe = self.raw();
        let busy = wait_until(Duration::from_secs(10), || probe.cmd(&[b"PING"]).starts_with(b"-BUSY"));
        assert!(busy, "the script never made the server busy");
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status();
    }

    /// `kill -9`, and waits until the process is gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw RESP connection: send bytes, read whole replies.
/// How long a [`Raw`] connection waits for a reply or for the server to close it.
const RAW_REPLY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: &str) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        // Only a failing test waits this long; a CI machine under load has taken seconds
        // over a reply that needs milliseconds on a laptop.
        stream.set_read_timeout(Some(RAW_REPLY_TIMEOUT)).expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        Raw { stream, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends one command as a RESP array.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        ferrokv_resp::encode_command(&mut out, args.iter().copied());
        self.send(&out);
        self.read_reply().expect("reply")
    }

    /// Reads one complete reply and returns its raw bytes; None if the server closed.
    pub fn read_reply(&mut self) -> Option<Vec<u8>> {
        loop {
            if let Ok(Some((_, n))) = Frame::decode(&self.buf) {
                let rest = self.buf.split_off(n);
                return Some(std::mem::replace(&mut self.buf, rest));
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                // A socket with a receive timeout answers EINTR when the test process is
                // stopped and continued (signal(7)), with no signal handler involved: a
                // differential test failed so once on a busy machine. Read again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read failed: {e}; have {:?}", String::from_utf8_lossy(&self.buf)),
            }
        }
    }

    /// True once the server has closed the connection (bounded wait).
    pub fn closed(&mut self) -> bool {
        let mut chunk = [0u8; 1024];
        let deadline = Instant::now() + RAW_REPLY_TIMEOUT;
        while Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return true,
            }
        }
        false
    }
}
