//! A replica's connection on the master, once it ran PSYNC/SYNC: the +FULLRESYNC or
//! +CONTINUE line, the RDB (for a full sync), then the stream from the shared backlog,
//! while the replica's ACKs are read and run as commands.

use super::RdbChunk;
use crate::conn::now_ms;
use crate::signal::Signal;
use crate::Shared;
use bytes::{Bytes, BytesMut};
use ferrokv_engine::replication::master::Fetch;
use ferrokv_engine::replication::ReplicaState;
use ferrokv_engine::ClientId;
use ferrokv_resp::{Argv, RequestParser};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes taken from the backlog per engine-lock hold.
const FETCH: usize = 1 << 20;

/// Serves a replica until it disconnects or is dropped. `inbuf` holds bytes already read.
pub async fn serve<S>(shared: Arc<Shared>, stream: S, id: ClientId, notify: Arc<Signal>, inbuf: BytesMut)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut reader = AckReader { shared: shared.clone(), id, buf: inbuf, parser: RequestParser::new() };
    // Until the RDB is out, only the engine's own lines (+FULLRESYNC) and the RDB go out.
    loop {
        let (out, state) = {
            let mut e = shared.engine.lock();
            let mut out = Vec::new();
            let close = e.take_output(id, &mut out);
            if close && out.is_empty() {
                return;
            }
            (out, e.replica_state(id))
        };
        if !out.is_empty() && wr.write_all(&out).await.is_err() {
            return;
        }
        match state {
            None => return,
            Some((ReplicaState::Online, _)) => break,
            Some((ReplicaState::SendBulk, eof)) => {
                let preamble = shared.engine.lock().replica_take_preamble(id);
                if let Some(line) = preamble {
                    if wr.write_all(line.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let taken = shared.repl.rdb_streams.lock().remove(&id);
                match taken {
                    Some(rdb) => {
                        if !send_rdb(&shared, &mut wr, rdb, eof).await {
                            return;
                        }
                        shared.engine.lock().replica_rdb_sent(id, now_ms());
                        // An `$EOF:` transfer streams after the replica's first ACK.
                        if !wait_online(&shared, &mut rd, &mut reader, id).await {
                            return;
                        }
                        break;
                    }
                    None => {
                        let _ =
                            tokio::time::timeout(Duration::from_millis(100), shared.repl.rdb_ready.notified()).await;
                    }
                }
            }
            Some((ReplicaState::WaitBgsave, _)) => {
                // Keep the link alive while the snapshot has not started (Redis sends
                // newlines, which replicas skip before the RDB).
                tokio::select! {
                    _ = notify.raised() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        if wr.write_all(b"\n").await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
    stream_loop(&shared, &mut rd, &mut wr, &mut reader, id, &notify).await;
}

/// The RDB, framed as the replica can read it: `$EOF:<mark>` … `<mark>` for replicas
/// that announced `capa eof`, else `$<length>` (which needs the whole file first).
async fn send_rdb<W: AsyncWrite + Unpin>(shared: &Shared, wr: &mut W, mut rdb: super::RdbStream, eof: bool) -> bool {
    let mark: String = {
        let mut rng = fastrand::Rng::new();
        (0..40).map(|_| char::from(b"0123456789abcdef"[rng.usize(0..16)])).collect()
    };
    let mut held: Vec<Bytes> = Vec::new();
    let mut file: Option<std::fs::File> = None;
    if eof && wr.write_all(format!("$EOF:{mark}\r\n").as_bytes()).await.is_err() {
        return false;
    }
    loop {
        match rdb.rx.recv().await {
            Some(RdbChunk::Data(b)) => {
                if eof {
                    if wr.write_all(&b).await.is_err() {
                        return false;
                    }
                } else {
                    held.push(b.clone());
                }
                rdb.queued.fetch_sub(b.len(), Ordering::Relaxed);
                shared.persist.progress.notify_one();
            }
            Some(RdbChunk::File(f)) => file = Some(f),
            Some(RdbChunk::End) => break,
            Some(RdbChunk::Abort) | None => return false,
        }
    }
    if eof {
        return wr.write_all(mark.as_bytes()).await.is_ok();
    }
    if let Some(f) = file {
        return send_file(wr, f).await;
    }
    let len: usize = held.iter().map(Bytes::len).sum();
    if wr.write_all(format!("${len}\r\n").as_bytes()).await.is_err() {
        return false;
    }
    for b in held {
        if wr.write_all(&b).await.is_err() {
            return false;
        }
    }
    true
}

/// A disk-based transfer: `$<len>` and the file's bytes, read from disk as the socket
/// takes them.
async fn send_file<W: AsyncWrite + Unpin>(wr: &mut W, f: std::fs::File) -> bool {
    let Ok(len) = f.metadata().map(|m| m.len()) else { return false };
    if wr.write_all(format!("${len}\r\n").as_bytes()).await.is_err() {
        return false;
    }
    let mut from = tokio::fs::File::from_std(f).take(len);
    matches!(tokio::io::copy(&mut from, wr).await, Ok(n) if n == len)
}

/// Reads what the replica sends (REPLCONF ACK) and runs it.
struct AckReader {
    shared: Arc<Shared>,
    id: ClientId,
    buf: BytesMut,
    parser: RequestParser,
}

impl AckReader {
    /// Runs the complete commands read so far. False if the connection must close.
    fn run(&mut self) -> bool {
        let mut e = self.shared.engine.lock();
        let limits = e.limits(self.id);
        let mut parsed: Vec<Argv> = Vec::new();
        if self.parser.parse(&mut self.buf, &limits, &mut parsed, usize::MAX).is_err() {
            return false;
        }
        let mut reqs: VecDeque<Argv> = parsed.into();
        let now = now_ms();
        e.set_monotonic_now(crate::conn::mono_ms());
        while !reqs.is_empty() {
            e.execute(self.id, &mut reqs, now, 1024);
        }
        // An acknowledgement may have asked for the next one (synchronous replication).
        e.flush_feed();
        // Replies to a replica's commands are not part of the stream.
        let mut discard = Vec::new();
        e.take_output(self.id, &mut discard);
        !e.must_close(self.id)
    }
}

async fn wait_online<R: AsyncRead + Unpin>(shared: &Shared, rd: &mut R, reader: &mut AckReader, id: ClientId) -> bool {
    loop {
        match shared.engine.lock().replica_state(id) {
            Some((ReplicaState::Online, _)) => return true,
            None => return false,
            _ => {}
        }
        match rd.read_buf(&mut reader.buf).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {
                if !reader.run() {
                    return false;
                }
            }
        }
    }
}

/// Reads what else the replica already sent, without waiting; true if it closed the
/// connection after it. Its ACKs are then not run: a replica that left (re-pointed by
/// Sentinel while this master was frozen, say) must not count as a good replica for
/// `min-replicas-to-write` because its last ACKs, sent seconds ago, are only read now. A
/// frozen master woken by SIGCONT would otherwise accept writes in that window.
async fn closed_behind<R: AsyncRead + Unpin>(rd: &mut R, buf: &mut BytesMut) -> bool {
    // Replicas send little (an ACK a second); a bounded drain keeps a chatty one from
    // holding the task.
    for _ in 0..16 {
        // Poll the read once: ready data or EOF, else nothing more yet. (Not a zero
        // timeout: tokio's timer rounds it up to the next millisecond tick, which delayed
        // every ACK, and so every WAIT, by a millisecond.)
        let mut read = std::pin::pin!(rd.read_buf(buf));
        let polled = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
        match polled {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return true,
            Poll::Ready(Ok(_)) => {}
            Poll::Pending => return false,
        }
    }
    false
}

/// Streams the backlog to the replica while reading its acknowledgements, both at once:
/// under a steady write load the stream never runs dry, and acknowledgements read only in
/// its pauses would wait (synchronous replication waits for them).
async fn stream_loop<R, W>(
    shared: &Shared,
    rd: &mut R,
    wr: &mut W,
    reader: &mut AckReader,
    id: ClientId,
    notify: &Signal,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let send = async {
        let mut advanced = shared.repl.advanced.subscribe();
        loop {
            let fetched = shared.engine.lock().replica_fetch(id, FETCH);
            match fetched {
                Fetch::Data(chunks) => {
                    let mut sent = 0u64;
                    for c in chunks {
                        if !write_watching(shared, wr, &c, notify, id).await {
                            return;
                        }
                        sent += c.len() as u64;
                    }
                    shared.engine.lock().replica_sent(id, sent);
                    continue;
                }
                Fetch::Close => return,
                Fetch::Wait => {}
            }
            tokio::select! {
                changed = advanced.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = notify.raised() => {
                    if shared.engine.lock().must_close(id) {
                        return;
                    }
                }
            }
        }
    };
    let receive = async {
        loop {
            match rd.read_buf(&mut reader.buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if closed_behind(rd, &mut reader.buf).await || !reader.run() {
                        return;
                    }
                }
            }
        }
    };
    tokio::select! {
        _ = send => {}
        _ = receive => {}
    }
}

/// Writes `buf` fully, unless the engine drops the replica meanwhile (a replica that
/// stopped reading would otherwise hold this write forever). `write` is cancel-safe: a
/// cancelled call wrote nothing.
async fn write_watching<W: AsyncWrite + Unpin>(
    shared: &Shared,
    wr: &mut W,
    buf: &[u8],
    notify: &Signal,
    id: ClientId,
) -> bool {
    let mut pos = 0;
    while pos < buf.len() {
        tokio::select! {
            r = wr.write(&buf[pos..]) => match r {
                Ok(0) | Err(_) => return false,
                Ok(n) => pos += n,
            },
            _ = notify.raised() => {
                if shared.engine.lock().must_close(id) {
                    return false;
                }
            }
        }
    }
    true
}
