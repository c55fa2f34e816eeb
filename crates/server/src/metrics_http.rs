//! The metrics port's HTTP server (`metrics-port`), shared by the server and the sentinel.
//!
//! It must never stall the Redis port, whatever arrives on it, so it runs on a thread of
//! its own with its own single-threaded tokio runtime (the Redis port's tasks never wait
//! behind it), and bounds everything a client controls: the request head (8 KiB), the time
//! to send it (5 s: a client sending a byte a second is cut off), the time to take the
//! reply, and the number of open connections (64; more are closed as soon as accepted, so
//! a flood cannot exhaust the process's file descriptors). HTTP/1.1 with one request per
//! connection (`Connection: close`): scrapers and health checks need nothing more, and
//! the request head is parsed with `httparse`. What a request gets is the handler's
//! business; the server's takes a snapshot under the engine lock and formats it after.

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// A parsed request: only what the handlers look at.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path without the query string.
    pub path: String,
    pub query: String,
    pub accept: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Response { status, content_type, body: body.into() }
    }

    pub fn text(status: u16, body: &str) -> Self {
        Response::new(status, "text/plain; charset=utf-8", body.as_bytes().to_vec())
    }
}

/// Answers requests; runs on the metrics thread.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Response;
}

/// The bounds of the endpoint. Defaults: see the module documentation.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_head_bytes: usize,
    pub head_timeout: Duration,
    pub write_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_head_bytes: 8 * 1024,
            head_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
            max_connections: 64,
        }
    }
}

/// Binds `port` on the `bind` addresses (as the Redis port, `-` marking optional ones).
pub fn bind(addrs: &[String], port: u16) -> Result<Vec<StdListener>, String> {
    Ok(crate::listener::bind_tcp(addrs, port, 128)?.into_iter().map(|b| b.listener).collect())
}

/// Serves `listeners` on a new thread until the process exits.
pub fn spawn(listeners: Vec<StdListener>, handler: Arc<dyn Handler>, limits: Limits) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("metrics-http".into()).spawn(move || {
        rt.block_on(async move {
            let slots = Arc::new(Semaphore::new(limits.max_connections));
            let mut accepting = Vec::new();
            for l in listeners {
                match TcpListener::from_std(l) {
                    Ok(l) => accepting.push(tokio::spawn(accept(l, handler.clone(), slots.clone(), limits))),
                    Err(e) => log::warn!("Metrics port: {e}"),
                }
            }
            for task in accepting {
                let _ = task.await;
            }
        })
    })?;
    Ok(())
}

async fn accept(listener: TcpListener, handler: Arc<dyn Handler>, slots: Arc<Semaphore>, limits: Limits) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning.
                log::debug!("Metrics port accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream); // over the cap: closed at once
            continue;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            serve(stream, &*handler, limits).await;
            drop(slot);
        });
    }
}

enum Head {
    Complete(Request),
    Bad(&'static str),
    TooLarge,
}

async fn read_head(stream: &mut TcpStream, max: usize) -> std::io::Result<Head> {
    let mut buf = vec![0u8; max];
    let mut len = 0;
    loop {
        if len == max {
            return Ok(Head::TooLarge);
        }
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => {
                let target = req.path.unwrap_or("/");
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                let accept = req
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("accept"))
                    .map(|h| String::from_utf8_lossy(h.value).into_owned());
                return Ok(Head::Complete(Request {
                    method: req.method.unwrap_or("").to_string(),
                    path: path.to_string(),
                    query: query.to_string(),
                    accept,
                }));
            }
            Ok(httparse::Status::Partial) => continue,
            Err(httparse::Error::TooManyHeaders) => return Ok(Head::TooLarge),
            Err(_) => return Ok(Head::Bad("Bad Request\n")),
        }
    }
}

async fn serve(mut stream: TcpStream, handler: &dyn Handler, limits: Limits) {
    let head = tokio::time::timeout(limits.head_timeout, read_head(&mut stream, limits.max_head_bytes)).await;
    let (response, head_only) = match head {
        Err(_) => (Response::text(408, "Request Timeout\n"), false),
        Ok(Err(_)) => return, // the client went away
        Ok(Ok(Head::TooLarge)) => (Response::text(431, "Request Header Fields Too Large\n"), false),
        Ok(Ok(Head::Bad(msg))) => (Response::text(400, msg), false),
        Ok(Ok(Head::Complete(req))) => match req.method.as_str() {
            "GET" => (handler.handle(&req), false),
            "HEAD" => (handler.handle(&req), true),
            _ => (Response::text(405, "Method Not Allowed\n"), false),
        },
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n{}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        if response.status == 405 { "Allow: GET, HEAD\r\n" } else { "" },
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(&response.body);
    }
    let _ = tokio::time::timeout(limits.write_timeout, async {
        stream.write_all(&out).await?;
        stream.shutdown().await
    })
    .await;
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// A cached render, so a flood of scrapes takes the engine lock at most once per
/// `max_age` (the lock is what the Redis port shares with this thread).
pub struct Cached<T> {
    max_age: Duration,
    slot: parking_lot::Mutex<Option<(std::time::Instant, T)>>,
}

impl<T: Clone> Cached<T> {
    pub fn new(max_age: Duration) -> Self {
        Cached { max_age, slot: parking_lot::Mutex::new(None) }
    }

    pub fn get_or(&self, make: impl FnOnce() -> T) -> T {
        let mut slot = self.slot.lock();
        if let Some((at, v)) = slot.as_ref() {
            if at.elapsed() < self.max_age {
                return v.clone();
            }
        }
        let v = make();
        *slot = Some((std::time::Instant::now(), v.clone()));
        v
    }
}
