//! One task per client of the sentinel's own server: read requests, run them, write
//! replies, and forward pub/sub messages (Sentinel's events) as they are published.

use super::hub::{now_ms, ClientEntry, Shared};
use super::server_cmds::{self, Action, Session};
use bytes::BytesMut;
use ferrokv_resp::{Argv, Limits, ProtocolError, ReplyBuf, RequestParser};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// Serves one client over `stream` (TCP, or TLS on `tls-port`); `addr`/`laddr` are the
/// peer's and our address, as CLIENT LIST shows them.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    shared: Shared,
    mut stream: S,
    fd: i64,
    addr: String,
    laddr: String,
) {
    let (push_tx, mut push_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let kill = Arc::new(Notify::new());
    let (id, needs_auth) = {
        let mut hub = shared.lock();
        hub.next_client += 1;
        let id = hub.next_client;
        hub.stats.connections += 1;
        let now = now_ms();
        hub.clients.insert(
            id,
            ClientEntry {
                addr: addr.clone(),
                laddr,
                fd,
                name: String::new(),
                created_ms: now,
                last_cmd: "NULL".into(),
                last_interaction_ms: now,
                resp3: false,
                channels: HashSet::new(),
                patterns: HashSet::new(),
                push: push_tx,
                kill: kill.clone(),
                killed: false,
                user: "default".into(),
            },
        );
        let needs_auth = !hub.acl.lock().default_needs_no_auth();
        (id, needs_auth)
    };
    let mut sess = Session::new(id, !needs_auth);
    let mut parser = RequestParser::new();
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let mut parsed: Vec<Argv> = Vec::new();
    'conn: loop {
        tokio::select! {
            biased;
            _ = kill.notified() => break,
            msg = push_rx.recv() => {
                let Some(bytes) = msg else { break };
                if stream.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            r = stream.read_buf(&mut inbuf) => {
                match r {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let limits = Limits { authenticated: sess.authenticated, ..Limits::default() };
                let protocol_error = match parser.parse(&mut inbuf, &limits, &mut parsed, usize::MAX) {
                    Ok(()) => None,
                    Err(ProtocolError::Reply(msg)) => Some(msg),
                    Err(ProtocolError::QueryBufferLimit) => break,
                };
                let mut out = ReplyBuf::new(sess.resp3);
                let mut action = Action::Continue;
                {
                    let mut hub = shared.lock();
                    for argv in parsed.drain(..) {
                        out.set_resp3(sess.resp3);
                        action = server_cmds::execute(&mut hub, &shared, &mut sess, &argv.to_vec(), &mut out);
                        if action != Action::Continue {
                            break;
                        }
                    }
                    hub.dispatch(&shared);
                }
                if let Some(msg) = protocol_error {
                    out.raw(format!("-{msg}\r\n").as_bytes());
                    action = Action::Close;
                }
                if !out.buf.is_empty() && stream.write_all(&out.buf).await.is_err() {
                    break 'conn;
                }
                match action {
                    Action::Continue => {}
                    Action::Close => break,
                    Action::Shutdown => {
                        let notify = shared.lock().shutdown.clone();
                        notify.notify_one();
                        break;
                    }
                }
            }
        }
    }
    let _ = stream.flush().await;
    shared.lock().clients.remove(&id);
}
