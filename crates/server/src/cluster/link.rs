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
    // Writing and reading go on side by side: a peer slow to read a big message (a
    // PUBLISH) does not stop us reading what it sends meanwhile.
    let write_loop = async {
        while let Some(bytes) = to_send.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    let read_loop = async {
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        let mut chunk = vec![0u8; 16384];
        loop {
            let n = match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            let mut done = 0;
            loop {
                let len = match bus::frame_len(&buf[done..], MAX_MESSAGE) {
                    Ok(Some(len)) if buf.len() - done >= len => len,
                    Ok(_) => break,
                    Err(e) => {
                        log::debug!("Closing cluster bus link: {e}");
                        return;
                    }
                };
                match bus::decode(&buf[done..done + len]) {
                    Ok(msg) => {
                        if events.send(Event::Message { from: key.clone(), msg: Box::new(msg) }).is_err() {
                            return;
                        }
                    }
                    // Redis drops a malformed message and keeps the link.
                    Err(DecodeError::BadMessage(m)) => log::debug!("Dropped a cluster bus message: {m}"),
                    Err(DecodeError::BadFrame(_)) => return,
                }
                done += len;
            }
            // The messages read leave the buffer at once, not one by one.
            buf.drain(..done);
        }
    };
    tokio::select! {
        () = write_loop => {}
        () = read_loop => {}
    }
}
