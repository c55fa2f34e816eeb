//! MIGRATE's network part (the engine's side is `engine/src/commands/migrate.rs`): connect
//! to the target, send the pipeline, read one reply line per command, all under the
//! command's timeout and without the engine lock.
//!
//! As Redis, a connection is cached per `host:port` as typed (at most 64; the least
//! recently used goes when full) and closed once idle for more than 10 s; it remembers
//! which db it SELECTed, so consecutive MIGRATEs into the same db send no SELECT. A
//! cached connection is taken out of the cache while a MIGRATE uses it (two clients
//! migrating to one target at once use two connections) and put back after a clean
//! exchange; after a socket error it is closed. Like Redis, a socket error before any
//! RESTORE reply was read (a cached connection the target closed, say) is retried once on
//! a new connection, unless it was a timeout. Redis's blocking connect counts a refused
//! or timed-out connection as made and fails on the first write (`-IOERR error or timeout
//! writing to target instance`); only an address that does not resolve gets `-IOERR error
//! or timeout connecting to the client`. ferrokv answers the same in both cases.
//!
//! Inside MULTI/EXEC and scripts the engine cannot wait, so [`run_blocking`] does the same
//! exchange with blocking sockets under the lock (as Redis does for every MIGRATE), on a
//! connection of its own that is closed afterwards (it always sends SELECT).

use ferrokv_engine::commands::migrate::{judge, IoFailure, MigrateIo, MigrateJob};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const CACHE_ITEMS: usize = 64;
const CACHE_TTL: Duration = Duration::from_secs(10);
/// Redis writes the pipeline in 64 KiB chunks, each under the timeout.
const WRITE_CHUNK: usize = 64 * 1024;
/// Redis reads reply lines into 1 KiB buffers.
const LINE_MAX: usize = 1024;

struct Cached {
    conn: BufReader<TcpStream>,
    /// The db the connection is known to have SELECTed.
    db: Option<i64>,
    last_use: Instant,
}

/// The cached connections (Redis's `migrate_cached_sockets`).
#[derive(Default)]
pub struct MigrateSockets {
    cached: Mutex<HashMap<String, Cached>>,
    sweeper: AtomicBool,
}

impl MigrateSockets {
    /// INFO's `migrate_cached_sockets`.
    pub fn count(&self) -> usize {
        self.cached.lock().len()
    }

    fn take(&self, name: &str) -> Option<Cached> {
        self.cached.lock().remove(name)
    }

    fn put(self: &Arc<Self>, name: String, cached: Cached) {
        {
            let mut map = self.cached.lock();
            if !map.contains_key(&name) && map.len() >= CACHE_ITEMS {
                if let Some(oldest) = map.iter().min_by_key(|(_, c)| c.last_use).map(|(k, _)| k.clone()) {
                    map.remove(&oldest);
                }
            }
            map.insert(name, cached);
        }
        if !self.sweeper.swap(true, Ordering::AcqRel) {
            tokio::spawn(sweep(self.clone()));
        }
    }
}

/// Closes idle connections once a second, as Redis's cron does; ends when none is left.
async fn sweep(sockets: Arc<MigrateSockets>) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut map = sockets.cached.lock();
        map.retain(|_, c| c.last_use.elapsed() <= CACHE_TTL);
        if map.is_empty() {
            sockets.sweeper.store(false, Ordering::Release);
            return;
        }
    }
}

/// Runs the exchange of one MIGRATE.
pub async fn run(sockets: &Arc<MigrateSockets>, job: &MigrateJob) -> MigrateIo {
    let name = job.cache_name();
    let mut may_retry = true;
    loop {
        let cached = match sockets.take(&name) {
            Some(c) => c,
            None => match connect(job).await {
                Connect::Connected(conn) => Cached { conn, db: None, last_use: Instant::now() },
                Connect::Unresolved => return MigrateIo::ConnectFailed,
                Connect::Failed { timed_out } => {
                    // Redis's blocking connect reports success for a connection refused
                    // or timed out; its first write then fails.
                    if !timed_out && may_retry {
                        may_retry = false;
                        continue;
                    }
                    let failure = Some(IoFailure::Writing);
                    return MigrateIo::Exchanged { auth: None, select: None, restores: Vec::new(), failure };
                }
            },
        };
        let mut cached = cached;
        let select = cached.db != Some(job.dest_db);
        let (io, timed_out) = exchange(&mut cached.conn, job, select).await;
        let MigrateIo::Exchanged { restores, failure, .. } = &io else { return io };
        if let Some(_failure) = failure {
            // The connection is dropped (closed) here.
            let retry = restores.is_empty() && !timed_out && may_retry;
            if retry {
                may_retry = false;
                continue;
            }
            return io;
        }
        cached.db = if judge(&io).target_error { None } else { Some(job.dest_db) };
        cached.last_use = Instant::now();
        sockets.put(name, cached);
        return io;
    }
}

enum Connect {
    Connected(BufReader<TcpStream>),
    /// The address did not resolve: Redis's `-IOERR error or timeout connecting`.
    Unresolved,
    Failed {
        timed_out: bool,
    },
}

async fn connect(job: &MigrateJob) -> Connect {
    let port = job.port_number();
    let resolved = tokio::time::timeout(job.timeout, tokio::net::lookup_host((job.host.as_str(), port))).await;
    let addrs: Vec<_> = match resolved {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(_)) => return Connect::Unresolved,
        Err(_) => return Connect::Failed { timed_out: true },
    };
    let Some(addr) = addrs.first() else { return Connect::Unresolved };
    match tokio::time::timeout(job.timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Connect::Connected(BufReader::new(stream))
        }
        Ok(Err(_)) => Connect::Failed { timed_out: false },
        Err(_) => Connect::Failed { timed_out: true },
    }
}

/// Sends the pipeline and reads the replies. The bool: the failure was a timeout.
async fn exchange(conn: &mut BufReader<TcpStream>, job: &MigrateJob, select: bool) -> (MigrateIo, bool) {
    let head = job.head(select);
    let mut auth = None;
    let mut select_reply = None;
    let mut restores = Vec::with_capacity(job.keys);
    let done = |auth, select, restores, failure| MigrateIo::Exchanged { auth, select, restores, failure };
    for chunk in head.chunks(WRITE_CHUNK).chain(job.restores().chunks(WRITE_CHUNK)) {
        match tokio::time::timeout(job.timeout, conn.get_mut().write_all(chunk)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return (done(None, None, restores, Some(IoFailure::Writing)), false),
            Err(_) => return (done(None, None, restores, Some(IoFailure::Writing)), true),
        }
    }
    let mut line = Vec::with_capacity(64);
    let total = usize::from(job.sends_auth()) + usize::from(select) + job.keys;
    for i in 0..total {
        line.clear();
        let read = tokio::time::timeout(job.timeout, read_line(conn, &mut line)).await;
        let (failed, timed_out) = match read {
            Ok(Ok(true)) => (false, false),
            Ok(_) => (true, false),
            Err(_) => (true, true),
        };
        if failed {
            return (done(auth, select_reply, restores, Some(IoFailure::Reading)), timed_out);
        }
        let text = std::mem::take(&mut line);
        if job.sends_auth() && i == 0 {
            auth = Some(text);
        } else if select && i == usize::from(job.sends_auth()) {
            select_reply = Some(text);
        } else {
            restores.push(text);
        }
    }
    (done(auth, select_reply, restores, None), false)
}

/// Reads one line (without CRLF) of at most Redis's buffer size: a target that sends more
/// without a newline is a failed read, not a growing buffer. False: the peer closed (or
/// the line was too long).
async fn read_line(conn: &mut BufReader<TcpStream>, line: &mut Vec<u8>) -> std::io::Result<bool> {
    let n = (&mut *conn).take(LINE_MAX as u64).read_until(b'\n', line).await?;
    if n == 0 || line.last() != Some(&b'\n') {
        return Ok(false);
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line.truncate(LINE_MAX - 1);
    Ok(true)
}

/// The exchange of a MIGRATE inside MULTI/EXEC or a script, with blocking sockets (the
/// caller holds the engine lock): a new connection, Redis's one retry.
pub fn run_blocking(job: &MigrateJob) -> MigrateIo {
    use std::net::ToSocketAddrs;
    let addr = match (job.host.as_str(), job.port_number()).to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => addr,
        _ => return MigrateIo::ConnectFailed,
    };
    let mut may_retry = true;
    loop {
        let (io, timed_out) = match std::net::TcpStream::connect_timeout(&addr, job.timeout) {
            Ok(stream) => exchange_blocking(stream, job),
            Err(e) => {
                let failure = Some(IoFailure::Writing);
                let io = MigrateIo::Exchanged { auth: None, select: None, restores: Vec::new(), failure };
                (io, is_timeout(&e))
            }
        };
        if let MigrateIo::Exchanged { restores, failure: Some(_), .. } = &io {
            if restores.is_empty() && !timed_out && may_retry {
                may_retry = false;
                continue;
            }
        }
        return io;
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock)
}

fn exchange_blocking(stream: std::net::TcpStream, job: &MigrateJob) -> (MigrateIo, bool) {
    use std::io::{BufRead, Read, Write};
    let _ = stream.set_nodelay(true);
    let timeouts = stream.set_read_timeout(Some(job.timeout)).and(stream.set_write_timeout(Some(job.timeout)));
    let mut conn = std::io::BufReader::new(stream);
    let mut restores = Vec::with_capacity(job.keys);
    let done = |auth, select, restores, failure| MigrateIo::Exchanged { auth, select, restores, failure };
    let written = timeouts
        .and_then(|()| conn.get_mut().write_all(&job.head(true)))
        .and_then(|()| conn.get_mut().write_all(job.restores()));
    if let Err(e) = written {
        return (done(None, None, restores, Some(IoFailure::Writing)), is_timeout(&e));
    }
    let (mut auth, mut select) = (None, None);
    let total = usize::from(job.sends_auth()) + 1 + job.keys;
    for i in 0..total {
        let mut line = Vec::with_capacity(64);
        // Bounded as `read_line` is.
        let read = (&mut conn).take(LINE_MAX as u64).read_until(b'\n', &mut line);
        let ended = line.last() == Some(&b'\n');
        if read.is_err() || !ended {
            let timed_out = read.as_ref().is_err_and(is_timeout);
            return (done(auth, select, restores, Some(IoFailure::Reading)), timed_out);
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        line.truncate(LINE_MAX - 1);
        if job.sends_auth() && i == 0 {
            auth = Some(line);
        } else if i == usize::from(job.sends_auth()) {
            select = Some(line);
        } else {
            restores.push(line);
        }
    }
    (done(auth, select, restores, None), false)
}
