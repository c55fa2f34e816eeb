//! One outgoing connection to an instance (a command link or a pub/sub link): connect,
//! write what the state machine sends, decode replies and hand them back in order.

use super::hub::{now_ms, Shared};
use crate::instance::LinkId;
use ferrokv_resp::Frame;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Past this, a connection attempt counts as failed; the state machine retries every
/// second and judges the instance by its own timers meanwhile.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A reply larger than this (an absurd INFO) means the peer is not a sane Redis.
const MAX_BUFFER: usize = 64 * 1024 * 1024;

fn closed(shared: &Shared, link: LinkId) {
    let mut hub = shared.lock();
    if hub.links.remove(&link).is_some() {
        hub.core.on_closed(link, now_ms());
        hub.dispatch(shared);
    }
}

pub async fn run(shared: Shared, link: LinkId, ip: String, port: u16, rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    let addr = super::format_addr(&ip, port);
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            log::trace!("-link-reconnection {addr} #{e}");
            return closed(&shared, link);
        }
        Err(_) => return closed(&shared, link),
    };
    let _ = stream.set_nodelay(true);
    let local = stream.local_addr().ok().map(|a| a.ip().to_canonical().to_string());
    let tls = shared.lock().tls_client.clone();
    match tls {
        None => follow(shared, link, stream, local, rx).await,
        Some(config) => {
            let Ok(name) = ferrokv_tls::server_name(&ip) else { return closed(&shared, link) };
            let handshake = ferrokv_tls::tokio_rustls::TlsConnector::from(config).connect(name, stream);
            match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
                Ok(Ok(tls)) => follow(shared, link, tls, local, rx).await,
                Ok(Err(e)) => {
                    log::trace!("-link-reconnection {addr} #TLS handshake: {e}");
                    closed(&shared, link)
                }
                Err(_) => closed(&shared, link),
            }
        }
    }
}

/// The connected link (TCP or TLS): commands out, replies in, until either side closes.
async fn follow<S: AsyncRead + AsyncWrite>(
    shared: Shared,
    link: LinkId,
    stream: S,
    local: Option<String>,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    {
        let mut hub = shared.lock();
        if !hub.links.contains_key(&link) {
            return;
        }
        hub.core.on_connected(link, local, now_ms());
        hub.dispatch(&shared);
    }
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                // The state machine closed this link.
                None => return,
                Some(bytes) => {
                    if wr.write_all(&bytes).await.is_err() {
                        return closed(&shared, link);
                    }
                }
            },
            r = rd.read(&mut chunk) => {
                let n = match r {
                    Ok(0) | Err(_) => return closed(&shared, link),
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                let mut frames = Vec::new();
                let mut used = 0;
                loop {
                    match Frame::decode(&buf[used..]) {
                        Ok(Some((f, k))) => {
                            frames.push(f);
                            used += k;
                        }
                        Ok(None) => break,
                        Err(_) => return closed(&shared, link),
                    }
                }
                buf.drain(..used);
                if buf.len() > MAX_BUFFER {
                    return closed(&shared, link);
                }
                if !frames.is_empty() {
                    let mut hub = shared.lock();
                    if !hub.links.contains_key(&link) {
                        return;
                    }
                    let now = now_ms();
                    for f in frames {
                        hub.core.on_frame(link, f, now);
                    }
                    hub.dispatch(&shared);
                }
            }
        }
    }
}
