//! Debian's redis-server started in cluster mode for the interop tests, and a minimal RESP
//! client over std's TcpStream (this crate has no async runtime and needs none).
//!
//! The program comes from `FERROKV_REDIS_SERVER` (default /usr/bin/redis-server), never from
//! PATH. Missing: the test prints SKIPPED and passes, unless `FERROKV_REQUIRE_INTEROP=1`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn redis_server() -> Option<PathBuf> {
    let path =
        PathBuf::from(std::env::var("FERROKV_REDIS_SERVER").unwrap_or_else(|_| "/usr/bin/redis-server".to_string()));
    if path.is_file() {
        return Some(path);
    }
    let why = format!("redis-server not found at {} (set FERROKV_REDIS_SERVER)", path.display());
    if std::env::var("FERROKV_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
        panic!("{why}; required (FERROKV_REQUIRE_INTEROP=1)");
    }
    eprintln!("SKIPPED: {why}");
    None
}

/// A free port whose +10000 (the bus port) is free too.
pub fn free_port_pair() -> u16 {
    for _ in 0..200 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        if port < 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair found");
}

pub struct ClusterRedis {
    pub child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

impl ClusterRedis {
    /// Starts redis-server with `cluster-enabled yes` in a fresh temp dir, waiting (bounded)
    /// until it answers PING.
    pub fn start(program: &Path, extra: &[&str]) -> ClusterRedis {
        let port = free_port_pair();
        let dir = std::env::temp_dir().join(format!("ferrokv-cluster-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut cmd = Command::new(program);
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf", "--save", "", "--appendonly", "no"])
            .args(["--dir", dir.to_str().expect("utf-8 temp dir")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("start redis-server");
        let server = ClusterRedis { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = Client::connect(port) {
                if c.call(&["PING"]).is_ok() {
                    return server;
                }
            }
            assert!(Instant::now() < deadline, "redis-server did not answer PING within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> Client {
        Client::connect(self.port).expect("connect")
    }
}

impl Drop for ClusterRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Debug, PartialEq)]
pub enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

impl Reply {
    pub fn text(&self) -> String {
        match self {
            Reply::Status(s) | Reply::Error(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            other => format!("{other:?}"),
        }
    }
}

pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(port: u16) -> std::io::Result<Client> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Client { reader: BufReader::new(stream) })
    }

    pub fn call(&mut self, args: &[&str]) -> std::io::Result<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        self.reader.get_mut().write_all(&out)?;
        self.read_reply()
    }

    fn read_reply(&mut self) -> std::io::Result<Reply> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let line = line.trim_end_matches("\r\n");
        let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "bad reply");
        let (kind, rest) = line.split_at_checked(1).ok_or_else(bad)?;
        Ok(match kind {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().map_err(|_| bad())?),
            "$" => {
                let len: i64 = rest.parse().map_err(|_| bad())?;
                if len < 0 {
                    Reply::Bulk(None)
                } else {
                    let mut buf = vec![0; len as usize + 2];
                    self.reader.read_exact(&mut buf)?;
                    buf.truncate(len as usize);
                    Reply::Bulk(Some(buf))
                }
            }
            "*" => {
                let len: i64 = rest.parse().map_err(|_| bad())?;
                let mut items = Vec::new();
                for _ in 0..len.max(0) {
                    items.push(self.read_reply()?);
                }
                Reply::Array(items)
            }
            _ => return Err(bad()),
        })
    }
}

/// Polls `f` every 20 ms until it returns Some, for at most `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
