//! Small blocking network helpers with timeouts everywhere: ask a sentinel, wait for a
//! port or a name, PING for the health check. A container whose peer is gone must still
//! start (or fail) within seconds, never hang.

use crate::health::TlsFiles;
use ferrokv_resp::Frame;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Resolves `host:port`, IPv4 first (Docker's networks usually have no IPv6).
pub fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let mut addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    addrs.sort_by_key(|a| !a.is_ipv4());
    if addrs.is_empty() {
        return Err(io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")));
    }
    Ok(addrs)
}

fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in resolve(host, port)? {
        match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
            Ok(s) => {
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

type TlsStream = ferrokv_tls::rustls::StreamOwned<ferrokv_tls::rustls::ClientConnection, TcpStream>;

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// One connection that sends commands and reads whole replies.
pub struct Client {
    stream: Stream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(host: &str, port: u16) -> io::Result<Client> {
        Ok(Client { stream: Stream::Plain(connect(host, port)?), buf: Vec::new() })
    }

    /// Over TLS, presenting the server's own certificate (a server that requires client
    /// certificates accepts its own when one CA signs both).
    pub fn connect_tls(host: &str, port: u16, files: &TlsFiles) -> io::Result<Client> {
        let settings = ferrokv_tls::TlsSettings {
            cert_file: files.cert.clone(),
            key_file: files.key.clone(),
            ca_cert_file: files.ca_file.clone(),
            ca_cert_dir: files.ca_dir.clone(),
            ..Default::default()
        };
        let config =
            ferrokv_tls::client_config(&settings, ferrokv_tls::ServerCheck::CaChain).map_err(io::Error::other)?;
        let name = ferrokv_tls::server_name(host).map_err(io::Error::other)?;
        let session = ferrokv_tls::rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
        let stream = ferrokv_tls::rustls::StreamOwned::new(session, connect(host, port)?);
        Ok(Client { stream: Stream::Tls(Box::new(stream)), buf: Vec::new() })
    }

    pub fn call(&mut self, args: &[&str]) -> io::Result<Frame> {
        let mut out = Vec::new();
        ferrokv_resp::encode_command(&mut out, args.iter().map(|a| a.as_bytes()));
        self.stream.write_all(&out)?;
        self.stream.flush()?;
        loop {
            match Frame::decode(&self.buf) {
                Ok(Some((frame, n))) => {
                    self.buf.drain(..n);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.0)),
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn text(f: &Frame) -> Option<String> {
    match f {
        Frame::Bulk(b) | Frame::Simple(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// `SENTINEL get-master-addr-by-name`: Ok(None) when the sentinel knows no such master.
pub fn master_from_sentinel(
    host: &str,
    port: u16,
    name: &str,
    tls: Option<&TlsFiles>,
) -> io::Result<Option<(String, u16)>> {
    let mut client = match tls {
        Some(files) => Client::connect_tls(host, port, files)?,
        None => Client::connect(host, port)?,
    };
    let reply = client.call(&["SENTINEL", "get-master-addr-by-name", name])?;
    match reply {
        Frame::Array(items) if items.len() == 2 => {
            let ip = text(&items[0]);
            let port = text(&items[1]).and_then(|p| p.parse::<u16>().ok());
            match (ip, port) {
                (Some(ip), Some(port)) => Ok(Some((ip, port))),
                _ => Err(io::Error::new(io::ErrorKind::InvalidData, "unexpected reply")),
            }
        }
        Frame::Null => Ok(None),
        Frame::Array(items) if items.is_empty() => Ok(None),
        Frame::Error(e) => Err(io::Error::other(String::from_utf8_lossy(&e).into_owned())),
        other => Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected reply {other:?}"))),
    }
}

/// PINGs (after AUTH if needed); Ok only for +PONG. `-LOADING` and friends are not healthy.
pub fn ping(host: &str, port: u16, password: Option<&str>, tls: Option<&TlsFiles>) -> io::Result<()> {
    let mut c = match tls {
        Some(files) => Client::connect_tls(host, port, files)?,
        None => Client::connect(host, port)?,
    };
    if let Some(pw) = password {
        if let Frame::Error(e) = c.call(&["AUTH", pw])? {
            return Err(io::Error::other(String::from_utf8_lossy(&e).into_owned()));
        }
    }
    match c.call(&["PING"])? {
        Frame::Simple(s) if s.as_ref() == b"PONG" => Ok(()),
        Frame::Error(e) => Err(io::Error::other(String::from_utf8_lossy(&e).into_owned())),
        other => Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected reply {other:?}"))),
    }
}

/// Retries `f` every half second until it succeeds or `timeout` has passed.
pub fn retry<T>(timeout: Duration, mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Waits until something accepts connections on `host:port`.
pub fn wait_for_port(host: &str, port: u16, timeout: Duration) -> io::Result<()> {
    retry(timeout, || connect(host, port).map(drop))
}

/// This container's own addresses (its hostname resolves to them in Docker), to tell
/// whether the master a sentinel names is this very node.
pub fn own_addresses() -> Vec<IpAddr> {
    let Ok(name) = std::fs::read_to_string("/proc/sys/kernel/hostname") else { return Vec::new() };
    resolve(name.trim(), 0).map(|v| v.into_iter().map(|a| a.ip()).collect()).unwrap_or_default()
}
