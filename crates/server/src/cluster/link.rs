//! One bus link: a task that writes what the driver queued and reads whole messages
//! (framed by the header's length), decoding them and passing them to the driver.

use super::{Event, LinkKey};
use ferrokv_cluster::bus::{self, DecodeError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Largest message accepted (a PUBLISH carries at most proto-max-bulk-len bytes twice).
const MAX_MESSAGE: usize = 1 << 30;

pub(crate) enum Socket {
    Accepted(TcpStream),
    Connect { addr: String, timeout: Duration },
}

pub(crate) async fn run(
    socket: Socket,
    mut to_send: mpsc::UnboundedReceiver<Vec<u8>>,
    key: LinkKey,
    events: mpsc::UnboundedSender<Event>,
) {
    let stream = match socket {
        Socket::Accepted(s) => Some(s),
        Socket::Connect { addr, timeout } => {
            tokio::time::timeout(timeout, TcpStream::connect(&addr)).await.ok().and_then(|r| r.ok())
        }
    };
    if let Some(stream) = stream {
        let _ = stream.set_nodelay(true);
        serve(stream, &mut to_send, &key, &events).await;
    }
    let _ = events.send(Event::Closed { from: key });
}

async fn serve(
    stream: TcpStream,
    to_send: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    key: &LinkKey,
    events: &mpsc::UnboundedSender<Event>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16384];
    loop {
        tokio::select! {
            out = to_send.recv() => {
                let Some(bytes) = out else { return };
                if writer.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            read = reader.read(&mut chunk) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                loop {
                    let len = match bus::frame_len(&buf, MAX_MESSAGE) {
                        Ok(Some(len)) if buf.len() >= len => len,
                        Ok(_) => break,
                        Err(e) => {
                            log::debug!("Closing cluster bus link: {e}");
                            return;
                        }
                    };
                    match bus::decode(&buf[..len]) {
                        Ok(msg) => {
                            if events.send(Event::Message { from: key.clone(), msg: Box::new(msg) }).is_err() {
                                return;
                            }
                        }
                        // Redis drops a malformed message and keeps the link.
                        Err(DecodeError::BadMessage(m)) => log::debug!("Dropped a cluster bus message: {m}"),
                        Err(DecodeError::BadFrame(_)) => return,
                    }
                    buf.drain(..len);
                }
            }
        }
    }
}
