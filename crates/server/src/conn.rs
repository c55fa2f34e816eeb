//! One task per connection: read bytes, parse requests, run them on the engine under its
//! lock, write the replies. The task also wakes up when the engine has something for this
//! client that no request of its own produced (a pub/sub message, a CLIENT KILL, the end
//! of a CLIENT PAUSE).

use crate::Shared;
use bytes::BytesMut;
use ferrokv_engine::client::{ConnInfo, Waker};
use ferrokv_engine::{unix_ms, ClientId, Outcome};
use ferrokv_resp::{Argv, Limits, ProtocolError, RequestParser};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

/// Commands run per engine lock, so one client's huge pipeline cannot starve the others.
const BATCH: usize = 1024;
const READ_CHUNK: usize = 16 * 1024;

pub(crate) struct NotifyWaker(pub(crate) Arc<Notify>);

impl Waker for NotifyWaker {
    fn wake(&self) {
        self.0.notify_one();
    }
}

/// Writes `buf` fully, unless the engine closes the client meanwhile (a peer that stopped
/// reading would otherwise hold the task in the write forever). False: close now.
async fn write_out<S: AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &[u8],
    notify: &Notify,
    shared: &Shared,
    id: ClientId,
) -> bool {
    let mut pos = 0;
    let mut woken = false;
    while pos < buf.len() {
        tokio::select! {
            biased;
            r = stream.write(&buf[pos..]) => match r {
                Ok(0) | Err(_) => return false,
                Ok(n) => pos += n,
            },
            _ = notify.notified() => {
                if shared.engine.lock().must_close(id) {
                    return false;
                }
                woken = true;
            }
        }
    }
    if woken {
        // The wake-up was for new output: keep it for the next turn of the loop.
        notify.notify_one();
    }
    true
}

pub fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

/// A connection's unparsed input and where its parsed requests go.
struct Input<'a> {
    parser: &'a mut RequestParser,
    inbuf: &'a mut BytesMut,
    parsed: &'a mut Vec<Argv>,
    reqs: &'a mut VecDeque<Argv>,
}

impl Input<'_> {
    /// Parses what the buffer holds into requests. Before AUTH, one request at a time: AUTH
    /// changes the limits. Returns false when the client must be closed.
    fn parse(self, limits: &Limits, protocol_error: &mut Option<String>, id: ClientId, addr: &str) -> bool {
        let max = if limits.authenticated { usize::MAX } else { 1 };
        match self.parser.parse(self.inbuf, limits, self.parsed, max) {
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
        self.reqs.extend(self.parsed.drain(..));
        true
    }
}

pub async fn serve<S>(shared: Arc<Shared>, mut stream: S, info: ConnInfo)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let notify = Arc::new(Notify::new());
    let waker: Arc<dyn Waker> = Arc::new(NotifyWaker(notify.clone()));
    let addr = info.addr.clone();
    let connected = {
        let mut e = shared.engine.lock();
        e.connect(info, waker, now_ms()).map(|id| (id, e.limits(id)))
    };
    // Parser limits, refreshed under the lock after each batch (AUTH changes them).
    let (id, mut limits) = match connected {
        Ok(v) => v,
        Err(reply) => {
            let _ = stream.write_all(&reply).await;
            return;
        }
    };
    let mut inbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut parser = RequestParser::new();
    let mut parsed: Vec<Argv> = Vec::new();
    let mut reqs: VecDeque<Argv> = VecDeque::new();
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut protocol_error: Option<String> = None;
    let mut paused_until: Option<i64> = None;
    // Some(deadline) while blocked in BLPOP & co (deadline None = no timeout).
    let mut blocked: Option<Option<i64>> = None;
    let mut bytes_in = 0usize;
    let mut became_replica;
    loop {
        let runnable = !reqs.is_empty() && paused_until.is_none() && blocked.is_none();
        if !runnable {
            if inbuf.capacity() - inbuf.len() < READ_CHUNK / 4 {
                inbuf.reserve(READ_CHUNK);
            }
            let sleep_until = |until: i64| {
                let wait = (until - now_ms()).max(0) as u64;
                tokio::time::sleep(std::time::Duration::from_millis(wait))
            };
            let pause_sleep = paused_until.map(sleep_until);
            let block_sleep = blocked.flatten().map(sleep_until);
            tokio::select! {
                biased;
                _ = notify.notified() => paused_until = None,
                _ = async { pause_sleep.expect("guarded").await }, if pause_sleep.is_some() => paused_until = None,
                _ = async { block_sleep.expect("guarded").await }, if block_sleep.is_some() => {
                    shared.engine.lock().block_timeout(id, now_ms());
                }
                r = stream.read_buf(&mut inbuf), if protocol_error.is_none() => match r {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        bytes_in += n;
                        let input = Input { parser: &mut parser, inbuf: &mut inbuf, parsed: &mut parsed, reqs: &mut reqs };
                        if !input.parse(&limits, &mut protocol_error, id, &addr) {
                            break;
                        }
                    }
                },
            }
        }
        let (close, outcome, ticket, replicas_fed) = {
            let mut e = shared.engine.lock();
            if e.must_close(id) {
                break;
            }
            let offset_before = e.repl.offset;
            if bytes_in > 0 {
                e.note_input(id, bytes_in, inbuf.len());
                bytes_in = 0;
            }
            let outcome = if !reqs.is_empty() && paused_until.is_none() {
                e.execute(id, &mut reqs, now_ms(), BATCH)
            } else {
                Outcome::Continue
            };
            limits = e.limits(id);
            blocked = e.block_deadline(id);
            let ticket = e.flush_feed();
            let replicas_fed = e.repl.offset != offset_before && !e.repl.replicas.is_empty();
            became_replica = e.replica_state(id).is_some();
            (e.take_output(id, &mut out), outcome, ticket, replicas_fed)
        };
        // Replies to writes leave only once the writes are as durable as promised.
        if let Some(t) = ticket {
            shared.persist.durable(t).await;
        }
        // Let the replica senders (woken by the feed) write these writes to their sockets
        // before the client hears OK: a master killed right after replying has then almost
        // always handed the write to its replicas, so a failover keeps it. Redis gets the
        // same order from its pending-writes list (replicas are queued at its head).
        if replicas_fed {
            tokio::task::yield_now().await;
        }
        if !out.is_empty() && !write_out(&mut stream, &out, &notify, &shared, id).await {
            break;
        }
        if became_replica {
            // From PSYNC on, this connection carries the replication stream.
            crate::replication::sender::serve(shared.clone(), stream, id, notify.clone(), inbuf).await;
            shared.engine.lock().disconnect(id);
            return;
        }
        if close || outcome == Outcome::Close {
            break;
        }
        if let Outcome::Paused { until_ms } = outcome {
            paused_until = Some(until_ms);
        }
        if let Some(msg) = &protocol_error {
            if reqs.is_empty() {
                let _ = stream.write_all(format!("-{msg}\r\n").as_bytes()).await;
                break;
            }
        }
        // Before AUTH the parser takes one request per read; requests pipelined behind it
        // (a replica's or a sentinel's AUTH + REPLCONF/SUBSCRIBE…) are already buffered and
        // must run now, not when the client happens to send more.
        if reqs.is_empty() && !inbuf.is_empty() && protocol_error.is_none() {
            let input = Input { parser: &mut parser, inbuf: &mut inbuf, parsed: &mut parsed, reqs: &mut reqs };
            if !input.parse(&limits, &mut protocol_error, id, &addr) {
                break;
            }
        }
        // The parser may hold more complete requests than one batch ran.
        if !reqs.is_empty() && paused_until.is_none() {
            tokio::task::yield_now().await;
        }
    }
    let _ = stream.flush().await;
    shared.engine.lock().disconnect(id);
}
