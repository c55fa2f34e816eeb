//! Listening sockets: TCP on every `bind` address (an address prefixed with `-` is
//! optional: skipped if it cannot be bound, as in Redis), and the optional unix socket.

use crate::{conn, Shared};
use ferrokv_engine::client::{ConnInfo, Transport};
use socket2::{Domain, Socket, Type};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

/// A bound TCP listener and the text of its address as configured.
pub struct Bound {
    pub listener: std::net::TcpListener,
    pub label: String,
}

/// Resolves a `bind` entry (`*`, `::*`, an IP, or a hostname) to socket addresses.
fn resolve(addr: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    match addr {
        "*" | "0.0.0.0" => Ok(vec![SocketAddr::new(IpAddr::from([0, 0, 0, 0]), port)]),
        "::*" | "::" => Ok(vec![SocketAddr::new(IpAddr::from([0u16; 8]), port)]),
        a => {
            if let Ok(ip) = a.parse::<IpAddr>() {
                return Ok(vec![SocketAddr::new(ip, port)]);
            }
            use std::net::ToSocketAddrs;
            Ok((a, port).to_socket_addrs()?.collect())
        }
    }
}

fn bind_one(sa: SocketAddr, backlog: i32) -> std::io::Result<std::net::TcpListener> {
    let domain = if sa.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let s = Socket::new(domain, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    if sa.is_ipv6() {
        // Let 0.0.0.0 and :: coexist on the same port.
        s.set_only_v6(true)?;
    }
    s.bind(&sa.into())?;
    s.listen(backlog)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Binds every configured TCP address. Errors name the address and the reason, in
/// Redis's words.
pub fn bind_tcp(addrs: &[String], port: u16, backlog: i32) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    if port == 0 {
        return Ok(out);
    }
    for entry in addrs {
        let (optional, addr) = match entry.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, entry.as_str()),
        };
        let result = resolve(addr, port).and_then(|sas| {
            let sa = sas.first().copied().ok_or_else(|| std::io::Error::other("no address"))?;
            bind_one(sa, backlog)
        });
        match result {
            Ok(listener) => out.push(Bound { listener, label: addr.to_string() }),
            Err(e) => {
                let unavailable = matches!(
                    e.raw_os_error(),
                    Some(libc::EADDRNOTAVAIL) | Some(libc::EAFNOSUPPORT) | Some(libc::EPROTONOSUPPORT)
                );
                if optional && unavailable {
                    continue;
                }
                log::warn!("Warning: Could not create server TCP listening socket {addr}:{port}: bind: {e}");
                return Err(format!("Failed listening on port {port} (tcp), aborting."));
            }
        }
    }
    if out.is_empty() {
        return Err(format!("Failed listening on port {port} (tcp), aborting."));
    }
    Ok(out)
}

pub(crate) fn peer_id(sa: &SocketAddr) -> String {
    match sa {
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => format!("{}:{}", v4, a.port()),
            None => format!("[{}]:{}", a.ip(), a.port()),
        },
    }
}

/// Accepts TCP connections until aborted; on a `tls-port` listener (`tls`), each
/// connection's task first runs the TLS handshake.
pub async fn accept_tcp(shared: Arc<Shared>, listener: tokio::net::TcpListener, tls: bool) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let keepalive = shared.keepalive_secs();
                if keepalive > 0 {
                    let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(keepalive as u64));
                    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
                }
                let local = stream.local_addr().map(|a| peer_id(&a)).unwrap_or_default();
                let info = ConnInfo {
                    addr: peer_id(&peer),
                    laddr: local,
                    fd: stream.as_raw_fd() as i64,
                    transport: Transport::Tcp,
                    local: peer.ip().is_loopback() || peer.ip().to_canonical().is_loopback(),
                };
                if tls {
                    tokio::spawn(crate::tls::accept(shared.clone(), stream, info));
                } else {
                    tokio::spawn(conn::serve(shared.clone(), stream, info));
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                log::warn!("Accepting client connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Binds the unix socket (replacing a stale socket file) with the configured permissions.
pub fn bind_unix(path: &str, perm: u32) -> Result<tokio::net::UnixListener, String> {
    let _ = std::fs::remove_file(path);
    let l = tokio::net::UnixListener::bind(path).map_err(|e| format!("Failed opening Unix socket: {e}"))?;
    if perm != 0 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))
            .map_err(|e| format!("Failed setting Unix socket permissions: {e}"))?;
    }
    Ok(l)
}

pub async fn accept_unix(shared: Arc<Shared>, listener: tokio::net::UnixListener, path: String) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let info = ConnInfo {
                    addr: format!("{path}:0"),
                    laddr: path.clone(),
                    fd: stream.as_raw_fd() as i64,
                    transport: Transport::Unix,
                    local: true,
                };
                tokio::spawn(conn::serve(shared.clone(), stream, info));
            }
            Err(e) => {
                log::warn!("Accepting client connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
