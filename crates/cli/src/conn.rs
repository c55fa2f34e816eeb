//! One blocking connection to a server (TCP, TLS over TCP, or unix socket): send commands
//! as RESP arrays, read whole replies. Errors carry the texts redis-cli prints for them.

use crate::reply_boundary::ReplyBoundary;
use ferrokv_resp::Frame;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How deeply nested a reply may be: a script's reply is limited by Lua's stack (8,000
/// slots: Redis answers "reached lua stack limit" somewhere below 10,000 levels), and
/// redis-cli prints whatever depth arrives. Decoding and printing recurse once per level.
const MAX_REPLY_DEPTH: usize = 10_000;

type TlsStream = ferrokv_tls::rustls::StreamOwned<ferrokv_tls::rustls::ClientConnection, TcpStream>;

/// `--tls`: the context and the name to present (`--sni`, else the host), for every TCP
/// connection of the process (set once, before the first connection, like redis-cli's).
pub struct TlsClient {
    pub config: Arc<ferrokv_tls::rustls::ClientConfig>,
    pub sni: Option<String>,
}

static TLS: OnceLock<TlsClient> = OnceLock::new();

/// Makes TCP connections use TLS from now on.
pub fn use_tls(client: TlsClient) {
    let _ = TLS.set(client);
}

fn tls_handshake(tls: &TlsClient, host: &str, mut sock: TcpStream) -> io::Result<TlsStream> {
    let failed = |e: String| io::Error::other(format!("SSL_connect failed: {e}"));
    let name = ferrokv_tls::server_name(tls.sni.as_deref().unwrap_or(host)).map_err(failed)?;
    let mut session =
        ferrokv_tls::rustls::ClientConnection::new(tls.config.clone(), name).map_err(|e| failed(e.to_string()))?;
    // Finish the handshake now, so a refused certificate is reported as a failed
    // connection rather than as a lost reply later.
    while session.is_handshaking() {
        session.complete_io(&mut sock).map_err(|e| failed(e.to_string()))?;
    }
    Ok(ferrokv_tls::rustls::StreamOwned::new(session, sock))
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Tcp { host: String, port: i64 },
    Unix(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp { host, port } => write!(f, "{host}:{port}"),
            Target::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Why a reply could not be read.
#[derive(Debug)]
pub enum ConnError {
    /// The server closed the connection.
    Eof,
    Io(io::Error),
    Protocol(String),
}

impl ConnError {
    /// A dropped connection, after which the interactive mode reconnects on the next
    /// command (anything else is fatal, as in redis-cli).
    pub fn is_disconnect(&self) -> bool {
        match self {
            ConnError::Eof => true,
            ConnError::Io(e) => {
                matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted
                )
            }
            ConnError::Protocol(_) => false,
        }
    }
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Eof => f.write_str("Server closed the connection"),
            ConnError::Io(e) => f.write_str(&os_error_text(e)),
            ConnError::Protocol(msg) => f.write_str(msg),
        }
    }
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

/// The C library's text for an OS error ("Connection refused"), without Rust's
/// " (os error 111)" suffix, so messages read like redis-cli's.
pub fn os_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) if e.raw_os_error().is_some() => text[..at].to_string(),
        _ => text,
    }
}

enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
    Unix(UnixStream),
}

impl Stream {
    fn try_clone(&self) -> io::Result<Stream> {
        Ok(match self {
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            // One TLS session cannot be driven from two threads.
            Stream::Tls(_) => {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "--pipe is not supported over TLS"))
            }
        })
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Tls(s) => s.sock.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            // A server that closes without close_notify has still closed the connection.
            Stream::Tls(s) => match s.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                other => other,
            },
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

/// The writing half of a connection, for `--pipe`, which writes and reads concurrently.
pub struct Writer(Stream);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    start: usize,
    boundary: ReplyBoundary,
}

const READ_CHUNK: usize = 64 * 1024;

impl Conn {
    pub fn connect(target: &Target) -> io::Result<Conn> {
        let stream = match target {
            Target::Tcp { host, port } => {
                let port =
                    u16::try_from(*port).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "Invalid port"))?;
                let sock = connect_tcp(host, port)?;
                match TLS.get() {
                    Some(tls) => Stream::Tls(Box::new(tls_handshake(tls, host, sock)?)),
                    None => Stream::Tcp(sock),
                }
            }
            Target::Unix(path) => Stream::Unix(UnixStream::connect(path)?),
        };
        Ok(Conn { stream, buf: Vec::new(), start: 0, boundary: ReplyBoundary::default() })
    }

    /// Sends one command.
    pub fn send(&mut self, args: &[&[u8]]) -> Result<(), ConnError> {
        let mut out = Vec::new();
        ferrokv_resp::encode_command(&mut out, args.iter().copied());
        self.stream.write_all(&out)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Sends bytes already encoded (several pipelined commands).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        self.stream.write_all(bytes)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Sends one command and returns its reply, skipping RESP3 pushes that arrive first.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Frame, ConnError> {
        self.send(args)?;
        loop {
            match self.read_reply()? {
                Frame::Push(_) => continue,
                reply => return Ok(reply),
            }
        }
    }

    /// Reads the next reply (or push).
    pub fn read_reply(&mut self) -> Result<Frame, ConnError> {
        loop {
            if let Some(frame) = self.take_buffered()? {
                return Ok(frame);
            }
            if self.fill()? == 0 {
                return Err(ConnError::Eof);
            }
        }
    }

    /// A reply already received in full, if any; never blocks.
    pub fn take_buffered(&mut self) -> Result<Option<Frame>, ConnError> {
        let pending = &self.buf[self.start..];
        let Some(len) = self.boundary.advance(pending).map_err(ConnError::Protocol)? else {
            return Ok(None);
        };
        let frame = match Frame::decode_nested(&pending[..len], MAX_REPLY_DEPTH) {
            Ok(Some((frame, _))) => frame,
            Ok(None) => return Err(ConnError::Protocol("Protocol error, incomplete reply".into())),
            Err(e) => return Err(ConnError::Protocol(format!("Protocol error, {}", e.0))),
        };
        self.start += len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Ok(Some(frame))
    }

    /// Reads what the socket has; 0 means the server closed the connection.
    pub fn fill(&mut self) -> Result<usize, ConnError> {
        // Compacting only past half the buffer keeps the copying linear.
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let n = loop {
            match self.stream.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(ConnError::Io(e));
                }
            }
        };
        self.buf.truncate(old + n);
        Ok(n)
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(t)
    }

    /// The server's address of a TCP connection: the one that name resolution chose and
    /// that worked (the cluster manager hands it to other nodes in CLUSTER MEET).
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        match &self.stream {
            Stream::Tcp(s) => s.peer_addr().ok(),
            Stream::Tls(s) => s.sock.peer_addr().ok(),
            Stream::Unix(_) => None,
        }
    }

    /// A second handle that writes to the same socket.
    pub fn writer(&self) -> io::Result<Writer> {
        Ok(Writer(self.stream.try_clone()?))
    }
}

fn connect_tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "Name or service not known");
    // Rust prefixes resolver errors; redis-cli shows the resolver's own words.
    let addrs = (host, port).to_socket_addrs().map_err(|e| {
        let text = e.to_string();
        let text = text.strip_prefix("failed to lookup address information: ").unwrap_or(&text).to_string();
        io::Error::new(e.kind(), text)
    })?;
    for addr in addrs {
        match TcpStream::connect(addr) {
            Ok(s) => {
                // Replies are read right after each command; Nagle would delay pipelined writes.
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
