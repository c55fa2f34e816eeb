//! The replica's link to its master: connect (resolving the host name each time, so a
//! compose service name follows its container), handshake, receive the RDB of a full sync
//! into a new dataset while the old one keeps serving, then apply the stream, acknowledge
//! every second and answer GETACK. Reconnects forever until REPLICAOF points elsewhere
//! (the task is then aborted): at once after losing a streaming link, then once a second.

use crate::conn::now_ms;
use crate::listener::peer_id;
use crate::signal::Signal;
use crate::Shared;
use bytes::{Buf, Bytes, BytesMut};
use ferrokv_config::pid;
use ferrokv_engine::client::{Client, ConnInfo, Transport};
use ferrokv_engine::persistence::rdb::{load_into, LoadLimits};
use ferrokv_engine::replication::link::{Action, Handshake, HandshakeConfig};
use ferrokv_engine::replication::LinkState;
use ferrokv_engine::{ClientId, Engine};
use ferrokv_keyspace::Db;
use ferrokv_persist::aof::{next_record, Record};
use ferrokv_persist::rdb::{Item, RdbReader};
use ferrokv_resp::{Argv, Frame};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Follows `host:port` until aborted.
pub async fn run(shared: Arc<Shared>, host: String, port: u16) {
    let mut reconnect = false;
    loop {
        wait_thawed(&shared).await;
        if reconnect {
            log::info!("Reconnecting to MASTER {host}:{port}");
        } else {
            log::info!("Connecting to MASTER {host}:{port}");
        }
        // A link that was streaming is retried at once, as Redis does (waiting risks the
        // master's backlog moving past our offset); a failed connection or handshake
        // once a second.
        // REPLFREEZE drops the link in whatever phase it is (handshake, transfer, stream).
        let frozen = shared.repl.freeze.notified();
        let outcome = tokio::select! {
            r = session(&shared, &host, port) => r,
            _ = frozen => Ok(Some("Replication frozen: link to MASTER dropped".to_string())),
        };
        reconnect = match outcome {
            Ok(ended) => {
                if let Some(reason) = ended {
                    log::warn!("{reason}");
                }
                true
            }
            Err(reason) => {
                log::warn!("{reason}");
                false
            }
        };
        shared.engine.lock().link_state(LinkState::Connect, now_ms());
        if !reconnect {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Waits while REPLFREEZE holds the link down.
async fn wait_thawed(shared: &Shared) {
    loop {
        let frozen_until = {
            let mut e = shared.engine.lock();
            if !e.replication_frozen(now_ms()) {
                return;
            }
            e.repl.frozen_until.unwrap_or(0)
        };
        let left = (frozen_until - now_ms()).clamp(1, 100) as u64;
        tokio::time::sleep(Duration::from_millis(left)).await;
    }
}

fn repl_timeout(shared: &Shared) -> Duration {
    let secs = shared.engine.lock().cfg.int(pid("repl-timeout")).max(1) as u64;
    Duration::from_secs(secs)
}

/// One connection to the master. `Err`: it failed before the stream started; `Ok`: the
/// stream ran, then ended (with the reason to log, none when CLIENT KILL closed it).
async fn session(shared: &Arc<Shared>, host: &str, port: u16) -> Result<Option<String>, String> {
    shared.engine.lock().link_state(LinkState::Connecting, now_ms());
    let timeout = repl_timeout(shared);
    let connect = async {
        let mut last = String::from("no address");
        for addr in tokio::net::lookup_host((host, port)).await.map_err(|e| e.to_string())? {
            match TcpStream::connect(addr).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    };
    let mut stream = tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| "Timeout connecting to the MASTER...".to_string())?
        .map_err(|e| format!("Error condition on socket for SYNC: {e}"))?;
    let _ = stream.set_nodelay(true);
    let conn = master_conn_info(&stream);
    // `tls-replication yes`: the context is taken per connection, so a reloaded
    // certificate is used from the next reconnection on.
    let tls = shared.tls.client.read().clone();
    match tls {
        Some(config) => {
            let mut stream = crate::tls::connect(config, host, stream).await?;
            handshake_and_follow(shared, &mut stream, conn, timeout).await
        }
        None => handshake_and_follow(shared, &mut stream, conn, timeout).await,
    }
}

/// The link over a connected stream (plain or TLS): handshake, sync, then the stream.
async fn handshake_and_follow<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    stream: &mut S,
    conn: ConnInfo,
    timeout: Duration,
) -> Result<Option<String>, String> {
    log::info!("MASTER <-> REPLICA sync started");
    let cfg = {
        let mut e = shared.engine.lock();
        e.link_state(LinkState::Handshake, now_ms());
        let c = &e.cfg;
        let opt = |name: &str| Some(c.str(pid(name)).to_string()).filter(|s| !s.is_empty());
        let announce_port = c.int(pid("replica-announce-port"));
        // A replica that talks TLS to its master is reached (by sentinels, by a master
        // that becomes its replica) on its TLS port, as Redis announces it.
        let own_port = if c.bool(pid("tls-replication")) && c.int(pid("tls-port")) > 0 {
            c.int(pid("tls-port")) as u16
        } else {
            e.server.tcp_port
        };
        let (replid, offset) = e.psync_args();
        HandshakeConfig {
            masteruser: opt("masteruser"),
            masterauth: opt("masterauth"),
            listening_port: if announce_port > 0 { announce_port as u16 } else { own_port },
            announce_ip: opt("replica-announce-ip"),
            psync_replid: replid,
            psync_offset: offset,
            failover: e.failover_handshake(),
        }
    };
    let (mut hs, first) = Handshake::start(cfg);
    stream.write_all(&first).await.map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut outcome = None;
    while outcome.is_none() {
        read_some(stream, &mut buf, timeout).await?;
        while outcome.is_none() {
            // A master keeps the link alive with newlines while the replica waits for the
            // PSYNC reply (Redis does during repl-diskless-sync-delay): not replies.
            let newlines = buf.iter().take_while(|&&b| b == b'\n').count();
            buf.advance(newlines);
            let Some((frame, n)) = Frame::decode(&buf).map_err(|e| format!("Protocol error from master: {}", e.0))?
            else {
                break;
            };
            buf.advance(n);
            for act in hs.on_reply(&frame) {
                match act {
                    Action::Send(b) => stream.write_all(&b).await.map_err(|e| e.to_string())?,
                    Action::Retry(msg) => return Err(msg),
                    done => outcome = Some(done),
                }
            }
        }
    }
    match outcome {
        Some(Action::FullResync { replid, offset }) => {
            shared.engine.lock().link_state(LinkState::Transfer, now_ms());
            let (dbs, functions) = transfer(shared, stream, &mut buf, timeout, &replid).await?;
            // Not under a client's suspended script (see `wait_for_script`).
            let mut synced = Some((dbs, functions));
            let ack = loop {
                let ack = {
                    let mut e = shared.engine.lock();
                    match synced.take() {
                        Some((dbs, functions)) if !e.script_busy() => {
                            e.link_full_sync_done(dbs, functions, replid.clone(), offset, now_ms());
                            Some(e.replica_ack_command())
                        }
                        later => {
                            synced = later;
                            None
                        }
                    }
                };
                match ack {
                    Some(ack) => break ack,
                    None => wait_for_script().await,
                }
            };
            stream.write_all(&ack).await.map_err(|e| e.to_string())?;
        }
        Some(Action::Continue { replid }) => shared.engine.lock().link_continued(replid, now_ms()),
        _ => return Err("handshake ended without a resync".into()),
    }
    let notify = Arc::new(Signal::default());
    let id = shared.engine.lock().connect_master_client(conn, notify.clone(), now_ms());
    let ended = follow_stream(shared, stream, &mut buf, id, &notify, timeout).await;
    let mut e = shared.engine.lock();
    e.link_state(LinkState::Connect, now_ms());
    e.cache_master_client(id);
    Ok(ended.err())
}

/// The master link as CLIENT LIST shows it: `addr` is the master, `laddr` our end.
fn master_conn_info(stream: &TcpStream) -> ConnInfo {
    let peer = stream.peer_addr().ok();
    ConnInfo {
        addr: peer.as_ref().map(peer_id).unwrap_or_default(),
        laddr: stream.local_addr().map(|a| peer_id(&a)).unwrap_or_default(),
        fd: stream.as_raw_fd() as i64,
        transport: Transport::Tcp,
        local: peer.is_some_and(|p| p.ip().to_canonical().is_loopback()),
    }
}

async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Result<usize, String> {
    match tokio::time::timeout(timeout, stream.read_buf(buf)).await {
        Err(_) => Err("Timeout receiving data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value.".into()),
        Ok(Ok(0)) => Err("Master closed the connection".into()),
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(format!("I/O error reading from MASTER: {e}")),
    }
}

/// Reads `$EOF:<mark>` or `$<len>` and the RDB after it, loading it into a new dataset
/// on a blocking thread as the bytes arrive. Bytes after the RDB stay in `buf`.
async fn transfer<S: AsyncRead + Unpin>(
    shared: &Shared,
    stream: &mut S,
    buf: &mut BytesMut,
    timeout: Duration,
    replid: &str,
) -> Result<(Vec<Db>, Vec<Vec<u8>>), String> {
    // The master may send newlines while it prepares the RDB.
    let header = loop {
        while buf.first() == Some(&b'\n') {
            buf.advance(1);
        }
        if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line = buf.split_to(nl + 1);
            break String::from_utf8_lossy(&line).trim_end().to_string();
        }
        read_some(stream, buf, timeout).await?;
    };
    if let Some(err) = header.strip_prefix('-') {
        return Err(format!("MASTER aborted replication with an error: {err}"));
    }
    let mark = header.strip_prefix("$EOF:").map(|m| m.as_bytes().to_vec());
    let size: Option<u64> = match &mark {
        Some(m) if m.len() == 40 => None,
        Some(_) => return Err(format!("Bad protocol from MASTER, the first byte is not '$': {header}")),
        None => Some(
            header
                .strip_prefix('$')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("Bad protocol from MASTER, the first byte is not '$': {header}"))?,
        ),
    };
    match size {
        Some(n) => log::info!("MASTER <-> REPLICA sync: receiving {n} bytes from master to disk"),
        None => log::info!("MASTER <-> REPLICA sync: receiving streamed RDB from master with EOF to parser"),
    }
    let (limits, ndbs, disk) = {
        let e = shared.engine.lock();
        (e.load_limits(), e.dbs.len(), DiskCopy::wanted(&e))
    };
    let copy = match disk {
        Some((dest, delete)) => Some(DiskCopy::create(dest, delete)?),
        None => None,
    };
    let tee = match &copy {
        Some(c) => Some(c.file.try_clone().map_err(|e| c.error(&e))?),
        None => None,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let loader =
        tokio::task::spawn_blocking(move || load_dbs(ChannelReader { rx, cur: Bytes::new(), tee }, limits, ndbs));
    let mut received: u64 = 0;
    let mut tail: Vec<u8> = Vec::with_capacity(80);
    loop {
        if !buf.is_empty() {
            let take = match size {
                Some(n) => ((n - received) as usize).min(buf.len()),
                None => buf.len(),
            };
            let chunk = buf.split_to(take).freeze();
            received += chunk.len() as u64;
            if mark.is_some() {
                tail.extend_from_slice(&chunk);
                let cut = tail.len().saturating_sub(40);
                tail.drain(..cut);
            }
            if tx.send(chunk).await.is_err() {
                break; // the loader stopped: its error is reported below
            }
            shared.engine.lock().link_io(now_ms(), Some((size.map_or(-1, |n| n as i64), received)));
        }
        let done = match (&mark, size) {
            (Some(m), _) => tail == *m,
            (None, Some(n)) => received >= n,
            (None, None) => false,
        };
        if done {
            break;
        }
        read_some(stream, buf, timeout).await?;
    }
    drop(tx);
    log::info!("MASTER <-> REPLICA sync: Loading DB in memory");
    let (dbs, functions, started_empty) = loader.await.map_err(|e| format!("the loader failed: {e}"))??;
    // Before anything replaces our data (the dataset, or dbfilename through the copy).
    shared.engine.lock().check_empty_master(&dbs, replid, started_empty)?;
    if let Some(copy) = copy {
        // The `$EOF:` mark went to the file with the data; it is not part of the RDB.
        let len = if mark.is_some() { received.saturating_sub(40) } else { received };
        copy.finish(len)?;
    }
    Ok((dbs, functions))
}

/// `repl-diskless-load disabled` (and `on-empty-db` over a non-empty dataset): the
/// transfer is also written to a temporary file that becomes `dbfilename` once loaded, as
/// Redis does, so a replica restarted later has the master's snapshot (and its
/// replication ID and offset, for a partial resync). Unlike Redis, the dataset is still
/// loaded from the socket while the old one keeps serving: the disk copy costs no
/// availability.
struct DiskCopy {
    file: std::fs::File,
    tmp: std::path::PathBuf,
    dest: std::path::PathBuf,
    delete: bool,
}

impl DiskCopy {
    /// Where the copy goes and whether it is deleted once loaded (`rdb-del-sync-files`
    /// with no persistence configured), or `None` for a socket-only load.
    fn wanted(e: &ferrokv_engine::Engine) -> Option<(std::path::PathBuf, bool)> {
        let mode = e.cfg.get_formatted(pid("repl-diskless-load"));
        let empty = e.dbs.iter().all(|d| d.is_empty());
        let disk = mode == "disabled" || (mode == "on-empty-db" && !empty);
        let delete =
            e.cfg.bool(pid("rdb-del-sync-files")) && !e.cfg.bool(pid("appendonly")) && !e.save_points_configured();
        disk.then(|| (crate::persist::Persist::dbfilename(&e.cfg), delete))
    }

    fn create(dest: std::path::PathBuf, delete: bool) -> Result<DiskCopy, String> {
        let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let tmp = dest.with_file_name(format!("temp-{secs}.{}.rdb", std::process::id()));
        let file = std::fs::File::create(&tmp)
            .map_err(|e| format!("Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}"))?;
        Ok(DiskCopy { file, tmp, dest, delete })
    }

    fn error(&self, e: &std::io::Error) -> String {
        format!("Failed trying to write the DB dump file needed for MASTER <-> REPLICA synchronization: {e}")
    }

    fn finish(&self, len: u64) -> Result<(), String> {
        let result = (|| {
            self.file.set_len(len)?;
            self.file.sync_all()?;
            if self.delete {
                return std::fs::remove_file(&self.tmp);
            }
            std::fs::rename(&self.tmp, &self.dest)?;
            crate::persist::sink::fsync_dir(&self.dest)
        })();
        result.map_err(|e| {
            format!(
                "Failed trying to rename the temp DB into {} in MASTER <-> REPLICA synchronization: {e}",
                self.dest.display()
            )
        })
    }
}

impl Drop for DiskCopy {
    /// An aborted transfer leaves no temporary file behind (after the rename there is
    /// nothing left to remove).
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Feeds a blocking RDB reader from the socket task.
struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    cur: Bytes,
    /// Every byte received is also written here (disk-based load).
    tee: Option<std::fs::File>,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(b) => {
                    if let Some(f) = self.tee.as_mut() {
                        std::io::Write::write_all(f, &b)?;
                    }
                    self.cur = b
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        self.cur.advance(n);
        Ok(n)
    }
}

/// The databases and the libraries (their code) of the master's snapshot, and whether the
/// master says it started empty (`ferrokv-started-empty`).
type Loaded = (Vec<Db>, Vec<Vec<u8>>, bool);

fn load_dbs(reader: ChannelReader, limits: LoadLimits, ndbs: usize) -> Result<Loaded, String> {
    let mut dbs: Vec<Db> = (0..ndbs).map(Db::new).collect();
    let mut functions = Vec::new();
    let mut started_empty = false;
    let mut reader = RdbReader::new(reader)
        .map_err(|e| format!("Failed trying to load the MASTER synchronization DB from socket: {e}"))?;
    reader.set_verify_checksum(!limits.skip_checksum);
    let mut db = 0usize;
    let now = now_ms();
    let started = Instant::now();
    let mut keys = 0u64;
    loop {
        match reader.next() {
            Ok(Some(Item::SelectDb(n))) => {
                db = n as usize;
                if db >= ndbs {
                    return Err(format!(
                        "FATAL: Data file was created with a Redis server configured to handle more than {ndbs} databases."
                    ));
                }
            }
            Ok(Some(Item::ResizeDb { keys, expires })) => dbs[db].reserve(keys, expires),
            Ok(Some(Item::Key(rec))) => {
                load_into(&mut dbs[db], &limits, rec, now)?;
                keys += 1;
            }
            Ok(Some(Item::Aux { key, value })) if &key[..] == b"ferrokv-started-empty" => {
                started_empty = &value[..] == b"1"
            }
            Ok(Some(Item::Function(code))) => functions.push(code),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => return Err(format!("Failed trying to load the MASTER synchronization DB from socket: {e}")),
        }
    }
    // The rest of the transfer (an `$EOF:` mark) is not data.
    let mut inner = reader.into_inner().0;
    let mut sink = [0u8; 4096];
    while matches!(inner.read(&mut sink), Ok(n) if n > 0) {}
    log::info!("Done loading RDB, keys loaded: {keys}, keys expired: 0 ({:.3} s).", started.elapsed().as_secs_f64());
    Ok((dbs, functions, started_empty))
}

/// Applies the master's stream until the link fails (`Err`, the reason) or the master
/// client is killed (`Ok`).
async fn follow_stream<S: AsyncRead + AsyncWrite + Unpin>(
    shared: &Arc<Shared>,
    stream: &mut S,
    buf: &mut BytesMut,
    id: ClientId,
    killed: &Signal,
    timeout: Duration,
) -> Result<(), String> {
    // ACKs keep a fixed schedule: after a stall the next one comes at its usual time, not
    // a second after the late one, so the schedule does not creep across the master's
    // second boundaries (its min-replicas-max-lag counts whole seconds since the last ACK).
    let mut ack = tokio::time::interval(Duration::from_secs(1));
    ack.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_io = Instant::now();
    // The first `run` bytes of `buf` were executed but are not applied yet: the queued
    // part of a MULTI whose EXEC has not arrived.
    let mut run = 0usize;
    loop {
        let mut replies: Vec<u8> = Vec::new();
        if buf.len() > run && shared.engine.lock().script_busy() {
            wait_for_script().await;
            continue;
        }
        if buf.len() > run {
            let mut e = shared.engine.lock();
            if e.repl.frozen_until.is_some() {
                return Ok(()); // REPLFREEZE: nothing more is applied or acknowledged
            }
            let Some(mut mc) = e.clients.take(id) else {
                return Ok(()); // no longer our master's client
            };
            let applied = apply_stream(&mut e, &mut mc, buf, &mut run, &mut replies);
            e.clients.put(mc);
            applied?;
        }
        if !replies.is_empty() {
            stream.write_all(&replies).await.map_err(|e| e.to_string())?;
        }
        tokio::select! {
            r = stream.read_buf(buf) => match r {
                Ok(0) => return Err("Connection with master lost.".into()),
                Ok(_) => last_io = Instant::now(),
                Err(e) => return Err(format!("Connection with master lost: {e}")),
            },
            _ = killed.raised() => {
                if shared.engine.lock().must_close(id) {
                    return Ok(());
                }
            }
            _ = ack.tick() => {
                if last_io.elapsed() > timeout {
                    return Err("MASTER timeout: no data nor PING received...".into());
                }
                let a = {
                    let mut e = shared.engine.lock();
                    if e.repl.frozen_until.is_some() {
                        return Ok(());
                    }
                    e.replica_ack_command()
                };
                stream.write_all(&a).await.map_err(|e| e.to_string())?;
            }
        }
    }
}

/// A client's script is suspended between slices (engine/src/busy.rs): the master's
/// stream waits until it ends, as on a Redis replica, so the script sees no change it did
/// not make. Reading from the master waits too (its bytes stay in the socket).
async fn wait_for_script() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// Runs the whole commands `buf` holds after its first `run` bytes as the master client
/// `mc`, collecting what must be written back (GETACK's answers). The bytes up to the end
/// of the last command outside a transaction count as applied (the offset we acknowledge
/// and our own replicas' stream) and leave `buf`; those of an unfinished MULTI stay
/// (`run` says how many were executed), so a link lost inside a transaction resumes
/// before its MULTI, as a Redis replica does.
fn apply_stream(
    e: &mut Engine,
    mc: &mut Client,
    buf: &mut BytesMut,
    run: &mut usize,
    replies: &mut Vec<u8>,
) -> Result<(), String> {
    let now = now_ms();
    if *run == 0 {
        // Newlines are keepalives, not stream bytes.
        while buf.first() == Some(&b'\n') {
            buf.advance(1);
        }
    }
    let base = e.repl.offset;
    let mut applied = 0usize;
    loop {
        let (argv, len) = match next_record(&buf[*run..]) {
            Record::Command { args, len } => (Argv::from_slices(&args), len),
            Record::Incomplete => break,
            Record::Annotation { .. } | Record::Bad { .. } => {
                return Err("Protocol error in the replication stream from MASTER".into())
            }
        };
        // A GETACK is answered with the offset after it (Redis answers with the one
        // before): the answer then proves this replica received the request, which a
        // master in synchronous mode renews its lease with.
        if let Some(r) = e.master_command(mc, argv, base + (*run + len) as u64, now) {
            replies.extend_from_slice(&r);
        }
        *run += len;
        if mc.multi.is_none() {
            applied = *run;
        }
    }
    if applied > 0 {
        let raw = buf.split_to(applied).freeze();
        *run -= applied;
        e.master_stream_applied(raw, now);
    }
    Ok(())
}
