//! One task per connection: read bytes, parse requests, run them on the engine under its
//! lock, write the replies. The task also wakes up when the engine has something for this
//! client that no request of its own produced (a pub/sub message, a CLIENT KILL, the end
//! of a CLIENT PAUSE).
//!
//! Reading and writing are independent, as in Redis's event loop: a client that sends a
//! long pipeline before reading any reply (mass-insert scripts do) keeps being read and
//! served while its replies queue. What bounds the queue is the engine's output-buffer
//! limits, not a refusal to read: replies the socket does not take stay in the engine
//! (where the limits see them) until the bytes already handed to the socket are written.

use crate::signal::Signal;
use crate::Shared;
use bytes::BytesMut;
use ferrokv_engine::client::{ConnInfo, Waker};
use ferrokv_engine::{unix_ms, ClientId, Outcome};
use ferrokv_resp::{Argv, Limits, ProtocolError, RequestParser};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Commands run per engine lock, so one client's huge pipeline cannot starve the others.
const BATCH: usize = 1024;
const READ_CHUNK: usize = 16 * 1024;
/// An output buffer grown past this by a big reply is given back once written.
const OUT_KEEP: usize = 64 * 1024;

/// Wall-clock milliseconds since the epoch (0 before it, as `unix_ms`). Read once per
/// batch of requests: through `SystemTime` (a `duration_since` and its `Result`) it cost
/// ~70 instructions more than the clock read itself.
pub fn now_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime only writes the timespec it is given.
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) } != 0 {
        return unix_ms(SystemTime::now());
    }
    // The casts are no-ops on 64-bit Linux, not where time_t and long are 32 bits.
    #[allow(clippy::unnecessary_cast)]
    let ms = ts.tv_sec as i64 * 1000 + ts.tv_nsec as i64 / 1_000_000;
    ms.max(0)
}

/// Milliseconds on the monotonic clock since the process started (leases are measured on
/// it: a wall clock that jumps must not lengthen one).
pub fn mono_ms() -> i64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    // Starts at 1: 0 means "never" in the engine's bookkeeping.
    START.get_or_init(std::time::Instant::now).elapsed().as_millis() as i64 + 1
}

/// A connection's unparsed input and where its parsed requests go.
struct Input<'a> {
    parser: &'a mut RequestParser,
    inbuf: &'a mut BytesMut,
    reqs: &'a mut VecDeque<Argv>,
}

impl Input<'_> {
    /// Parses what the buffer holds into requests. Before AUTH, one request at a time: AUTH
    /// changes the limits. Returns false when the client must be closed.
    fn parse(self, limits: &Limits, protocol_error: &mut Option<String>, id: ClientId, addr: &str) -> bool {
        let max = if limits.authenticated { usize::MAX } else { 1 };
        match self.parser.parse(self.inbuf, limits, self.reqs, max) {
            Ok(()) => {}
            Err(ProtocolError::Reply(msg)) => {
                log::info!("Protocol error ({msg}) from client: id={id} addr={addr}");
                *protocol_error = Some(msg);
            }
            Err(ProtocolError::QueryBufferLimit) => {
                log::warn!(
                    "Closing client that reached max query buffer length: id={id} addr={addr} (qbuf initial bytes: {:?})",
                    String::from_utf8_lossy(&self.inbuf[..self.inbuf.len().min(64)])
                );
                return false;
            }
        }
        true
    }
}

/// Output taken from the engine and not yet written to the socket.
struct Pending {
    buf: Vec<u8>,
    pos: usize,
    /// Shared with the engine, which counts these bytes against the output limits.
    in_flight: Arc<AtomicUsize>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn wrote(&mut self, n: usize) {
        self.pos += n;
        self.in_flight.store(self.buf.len() - self.pos, Ordering::Relaxed);
        if self.is_empty() {
            self.pos = 0;
            self.buf.clear();
            if self.buf.capacity() > OUT_KEEP {
                self.buf = Vec::with_capacity(READ_CHUNK);
            }
        }
    }
}

/// Why a connection task woke up.
enum Wake {
    Io(Io),
    Notified,
    Timer,
}

/// What one poll of the socket achieved.
enum Io {
    /// Input arrived (this many bytes).
    Read(usize),
    /// The output is all written, and the caller asked to hear of it.
    Written,
    Closed,
}

/// Writes what the socket takes of the pending output, then reads more input (unless
/// `inbuf` is None). Ready when input arrived, the socket closed, or the output is all
/// written and `leave_when_written` is set; Pending registers interest in both, so a peer
/// that does not read cannot stop its input from being read. A reply and the wait for the
/// next request take one poll: returning after the write and polling again to read cost
/// ~90 instructions of a GET at -P 1.
fn poll_io<S: AsyncRead + AsyncWrite + Unpin>(
    cx: &mut std::task::Context<'_>,
    stream: &mut S,
    out: &mut Pending,
    inbuf: Option<&mut BytesMut>,
    leave_when_written: bool,
) -> Poll<Io> {
    while !out.is_empty() {
        match pin!(stream.write(out.rest())).poll(cx) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Io::Closed),
            Poll::Ready(Ok(n)) => {
                out.wrote(n);
                if leave_when_written && out.is_empty() {
                    return Poll::Ready(Io::Written);
                }
            }
            Poll::Pending => break,
        }
    }
    if let Some(inbuf) = inbuf {
        if inbuf.capacity() - inbuf.len() < READ_CHUNK / 4 {
            inbuf.reserve(READ_CHUNK);
        }
        match pin!(stream.read_buf(inbuf)).poll(cx) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Io::Closed),
            Poll::Ready(Ok(n)) => return Poll::Ready(Io::Read(n)),
            Poll::Pending => {}
        }
    }
    Poll::Pending
}

pub async fn serve<S>(shared: Arc<Shared>, mut stream: S, info: ConnInfo)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let notify = Arc::new(Signal::default());
    let waker: Arc<dyn Waker> = notify.clone();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let addr = info.addr.clone();
    let connected = shared.engine.lock().connect(info, waker, in_flight.clone(), now_ms());
    let id = match connected {
        Ok(v) => v,
        Err(reply) => {
            let _ = stream.write_all(&reply).await;
            return;
        }
    };
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut parser = RequestParser::new();
    let mut reqs: VecDeque<Argv> = VecDeque::new();
    let mut out = Pending { buf: Vec::with_capacity(READ_CHUNK), pos: 0, in_flight };
    // Write what is pending, then close (QUIT, CLIENT KILL of itself, a protocol error).
    let mut closing = false;
    let mut protocol_error: Option<String> = None;
    let mut input_done = false;
    let mut paused_until: Option<i64> = None;
    // Some(deadline) while blocked in BLPOP & co (deadline None = no timeout).
    let mut blocked: Option<Option<i64>> = None;
    let mut bytes_in = 0usize;
    // Outside the tuple below, and boxed: a job is big, and moving it with the tuple, or
    // out of the Option, was a memcpy call per request.
    let mut migrate: Option<Box<ferrokv_engine::commands::migrate::MigrateJob>> = None;
    'conn: loop {
        // Under the lock: account for input, run what can run, collect the output.
        let runnable = !closing && !reqs.is_empty() && paused_until.is_none() && blocked.is_none();
        // `limits`: the parser's, refreshed after each batch (AUTH changes them).
        // `engine_output`: the engine holds output not taken yet (taken once `out` is written).
        let (ticket, replicas_fed, others_invalidated, became_replica, limits, mut engine_output, sync_wait, suspended) = {
            let mut e = shared.engine.lock();
            if e.must_close(id) {
                break 'conn;
            }
            if e.sync_configured() {
                e.set_monotonic_now(mono_ms());
            }
            let offset_before = e.repl.offset;
            if bytes_in > 0 {
                e.note_input(id, bytes_in, inbuf.len(), inbuf.capacity());
                bytes_in = 0;
            }
            if runnable {
                match e.execute(id, &mut reqs, now_ms(), BATCH) {
                    Outcome::Continue => {}
                    Outcome::Close => closing = true,
                    Outcome::Paused { until_ms } => paused_until = Some(until_ms),
                    Outcome::Migrating => migrate = e.take_migrate_job(id).map(Box::new),
                }
            }
            if reqs.is_empty() {
                if let Some(msg) = protocol_error.take() {
                    // After the replies to the requests before the bad one.
                    e.protocol_error(id, &msg);
                }
            }
            let limits = e.limits(id);
            blocked = e.block_deadline(id);
            let ticket = e.flush_feed();
            let replicas_fed = e.repl.offset != offset_before && !e.repl.replicas.is_empty();
            let others_invalidated = e.tracking.take_others_told();
            // Synchronous replication: output that waits for acknowledgements stays in the
            // engine until they come (or time out).
            let sync_wait = e.sync_requirement(id);
            // Output left in the engine: chunks after the one taken (only a full chunk can
            // have followers), or output added while `out` was being written.
            let engine_output = if sync_wait.is_some() {
                false
            } else if out.is_empty() {
                closing |= e.take_output(id, &mut out.buf);
                out.buf.len() >= ferrokv_resp::reply::CHUNK && e.has_output(id)
            } else {
                e.has_output(id)
            };
            let suspended = e.script_suspended(id);
            (
                ticket,
                replicas_fed,
                others_invalidated,
                e.replica_state(id).is_some(),
                limits,
                engine_output,
                sync_wait,
                suspended,
            )
        };
        // Replies to writes leave only once the writes are as durable as promised.
        if let Some(t) = ticket {
            shared.persist.durable(t).await;
        }
        // Let the replica senders (woken by the feed) write these writes to their sockets
        // before the client hears OK: a master killed right after replying has then almost
        // always handed the write to its replicas, so a failover keeps it. Redis gets the
        // same order from its pending-writes list (replicas are queued at its head).
        // Likewise invalidations this batch caused for other clients reach their sockets
        // before this reply (Redis writes every pending client before it sleeps): a cache
        // that hears of our OK by other means has its invalidation waiting already.
        if replicas_fed || others_invalidated {
            tokio::task::yield_now().await;
        }
        if let Some((need, epoch, timeout_ms)) = sync_wait {
            let timeout = std::time::Duration::from_millis(timeout_ms.max(0) as u64);
            let (reached_epoch, committed) = shared.repl.wait_committed(epoch, need, timeout).await;
            let mut e = shared.engine.lock();
            e.sync_finish(id, epoch, if reached_epoch == epoch { committed } else { 0 });
            if out.is_empty() {
                closing |= e.take_output(id, &mut out.buf);
            }
            engine_output = e.has_output(id);
        }
        if suspended {
            // Our script ran past busy-reply-threshold: it continues one slice per lock,
            // and the other connections run between slices (they get -BUSY meanwhile).
            loop {
                tokio::task::yield_now().await;
                let mut e = shared.engine.lock();
                e.set_monotonic_now(mono_ms());
                if e.resume_script(id, now_ms()) {
                    break;
                }
            }
            continue 'conn;
        }
        if let Some(job) = migrate.take() {
            // MIGRATE talks to its target without the lock; the command then finishes
            // (deletes, replies) under it, and this client's later requests run after.
            let io = crate::migrate::run(&shared.migrate, &job).await;
            shared.engine.lock().finish_migrate(id, io, now_ms());
            continue 'conn;
        }
        if became_replica {
            // From PSYNC on, this connection carries the replication stream.
            if write_all_pending(&mut stream, &mut out, &notify, &shared, id).await {
                crate::replication::sender::serve(shared.clone(), stream, id, notify.clone(), inbuf).await;
            }
            shared.engine.lock().disconnect(id);
            return;
        }
        // Before AUTH the parser takes one request per read; requests pipelined behind it
        // (a replica's or a sentinel's AUTH + REPLCONF/SUBSCRIBE…) are already buffered and
        // must run now, not when the client happens to send more.
        if reqs.is_empty() && !inbuf.is_empty() && !input_done {
            let input = Input { parser: &mut parser, inbuf: &mut inbuf, reqs: &mut reqs };
            if !input.parse(&limits, &mut protocol_error, id, &addr) {
                break 'conn;
            }
            input_done |= protocol_error.is_some();
        }

        // Write and wait until there is something to run, take or close.
        loop {
            let runnable = !closing && !reqs.is_empty() && paused_until.is_none() && blocked.is_none();
            if runnable {
                // More requests than one batch ran: write what the socket takes without
                // waiting, and let other clients run before the next batch.
                if !out.is_empty() {
                    let progress = std::future::poll_fn(|cx| match poll_io(cx, &mut stream, &mut out, None, true) {
                        Poll::Pending => Poll::Ready(Io::Written),
                        ready => ready,
                    });
                    if let Io::Closed = progress.await {
                        break 'conn;
                    }
                }
                tokio::task::yield_now().await;
                continue 'conn;
            }
            if out.is_empty() && (engine_output || (protocol_error.is_some() && reqs.is_empty())) {
                continue 'conn;
            }
            if closing && out.is_empty() {
                break 'conn;
            }
            let reading = !closing && !input_done;
            // What the checks above act on once the output is written.
            let leave_when_written = closing || engine_output || (protocol_error.is_some() && reqs.is_empty());
            // One hand-written poll rather than select!: this runs once or twice per
            // request, and select! moved its futures (timers included) each time.
            let timer = match (paused_until, blocked.flatten()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
            .map(|until| tokio::time::sleep(std::time::Duration::from_millis((until - now_ms()).max(0) as u64)));
            let mut timer = pin!(timer);
            let wake = std::future::poll_fn(|cx| {
                let inbuf = if reading { Some(&mut inbuf) } else { None };
                if let Poll::Ready(io) = poll_io(cx, &mut stream, &mut out, inbuf, leave_when_written) {
                    return Poll::Ready(Wake::Io(io));
                }
                if notify.poll_raised(cx).is_ready() {
                    return Poll::Ready(Wake::Notified);
                }
                match timer.as_mut().as_pin_mut().map(|t| t.poll(cx)) {
                    Some(Poll::Ready(())) => Poll::Ready(Wake::Timer),
                    _ => Poll::Pending,
                }
            })
            .await;
            match wake {
                Wake::Io(Io::Closed) => break 'conn,
                Wake::Io(Io::Written) => continue,
                Wake::Io(Io::Read(n)) => {
                    bytes_in += n;
                    let input = Input { parser: &mut parser, inbuf: &mut inbuf, reqs: &mut reqs };
                    if !input.parse(&limits, &mut protocol_error, id, &addr) {
                        break 'conn;
                    }
                    input_done |= protocol_error.is_some();
                    continue 'conn;
                }
                // New output, a kill, or the end of a pause: the engine will tell.
                Wake::Notified => {
                    paused_until = None;
                    continue 'conn;
                }
                Wake::Timer => {
                    let now = now_ms();
                    if paused_until.is_some_and(|until| now >= until) {
                        paused_until = None;
                    }
                    if blocked.flatten().is_some_and(|deadline| now >= deadline) {
                        shared.engine.lock().block_timeout(id, now);
                    }
                    continue 'conn;
                }
            }
        }
    }
    let _ = stream.flush().await;
    shared.engine.lock().disconnect(id);
}

/// Writes all pending output, unless the engine closes the client meanwhile (a peer that
/// stopped reading would otherwise hold the task forever). False: close now.
async fn write_all_pending<S: AsyncWrite + Unpin>(
    stream: &mut S,
    out: &mut Pending,
    notify: &Signal,
    shared: &Shared,
    id: ClientId,
) -> bool {
    let mut woken = false;
    while !out.is_empty() {
        tokio::select! {
            biased;
            r = stream.write(out.rest()) => match r {
                Ok(0) | Err(_) => return false,
                Ok(n) => out.wrote(n),
            },
            _ = notify.raised() => {
                if shared.engine.lock().must_close(id) {
                    return false;
                }
                woken = true;
            }
        }
    }
    if woken {
        // The wake-up was for new output: keep it for whoever serves the connection next.
        notify.raise();
    }
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn now_ms_reads_the_same_clock_as_system_time() {
        let before = ferrokv_engine::unix_ms(std::time::SystemTime::now());
        let now = super::now_ms();
        let after = ferrokv_engine::unix_ms(std::time::SystemTime::now());
        assert!(before <= now && now <= after, "{before} <= {now} <= {after}");
    }
}
