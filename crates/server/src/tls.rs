//! TLS for the server: the `tls-port` listeners' context, the replication client's
//! context, and the handshake that runs in each accepted connection's own task before the
//! ordinary connection task takes the stream.
//!
//! Both contexts are rebuilt when CONFIG SET changes a `tls-*` directive (Redis reloads
//! its SSL context the same way: certificate rotation without a restart); connections
//! already established keep the context they were accepted with.

use crate::{conn, Shared};
use ferrokv_config::{pid, Config, Pid};
use ferrokv_engine::client::ConnInfo;
use ferrokv_tls::rustls::{ClientConfig, ServerConfig};
use ferrokv_tls::tokio_rustls::{TlsAcceptor, TlsConnector};
use ferrokv_tls::{AuthClients, ServerCheck, TlsSettings};
use parking_lot::RwLock;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// A client that has not finished its handshake by then is dropped: a peer that connects
/// and stalls (or trickles bytes) must not hold a socket and a task forever. The handshake
/// runs in the connection's own task, so it never delays anyone else meanwhile.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The directives whose change rebuilds the contexts.
pub const CONTEXT_DIRECTIVES: [&str; 16] = [
    "tls-cert-file",
    "tls-key-file",
    "tls-key-file-pass",
    "tls-client-cert-file",
    "tls-client-key-file",
    "tls-client-key-file-pass",
    "tls-ca-cert-file",
    "tls-ca-cert-dir",
    "tls-auth-clients",
    "tls-protocols",
    "tls-ciphers",
    "tls-ciphersuites",
    "tls-prefer-server-ciphers",
    "tls-session-caching",
    "tls-session-cache-size",
    "tls-replication",
];

/// The current contexts (None: that side of TLS is not enabled).
#[derive(Default)]
pub struct TlsState {
    pub server: RwLock<Option<Arc<ServerConfig>>>,
    pub client: RwLock<Option<Arc<ClientConfig>>>,
}

pub fn settings(cfg: &Config) -> TlsSettings {
    let s = |name: &str| cfg.str(pid(name)).to_string();
    TlsSettings {
        cert_file: s("tls-cert-file"),
        key_file: s("tls-key-file"),
        key_file_pass: s("tls-key-file-pass"),
        client_cert_file: s("tls-client-cert-file"),
        client_key_file: s("tls-client-key-file"),
        client_key_file_pass: s("tls-client-key-file-pass"),
        ca_cert_file: s("tls-ca-cert-file"),
        ca_cert_dir: s("tls-ca-cert-dir"),
        auth_clients: AuthClients::from_config(cfg.int(pid("tls-auth-clients"))),
        protocols: s("tls-protocols"),
        ciphers: s("tls-ciphers"),
        ciphersuites: s("tls-ciphersuites"),
        prefer_server_ciphers: cfg.bool(pid("tls-prefer-server-ciphers")),
        session_caching: cfg.bool(pid("tls-session-caching")),
        session_cache_size: cfg.int(pid("tls-session-cache-size")).max(0) as usize,
    }
}

fn now_unix() -> i64 {
    conn::now_ms() / 1000
}

impl TlsState {
    /// Builds the contexts the configuration asks for: the server's when `tls-port` is set
    /// (or `tls-cluster`, as Redis), the client's when `tls-replication` is. All or nothing:
    /// on error the old contexts stay.
    pub fn configure(&self, cfg: &Config) -> Result<(), String> {
        let s = settings(cfg);
        let replication = cfg.bool(pid("tls-replication"));
        let serving = cfg.int(pid("tls-port")) != 0 || replication || cfg.bool(pid("tls-cluster"));
        let server = if serving { Some(ferrokv_tls::server_config(&s, now_unix())?) } else { None };
        let client = if replication { Some(ferrokv_tls::client_config(&s, ServerCheck::CaChain)?) } else { None };
        *self.server.write() = server;
        *self.client.write() = client;
        Ok(())
    }

    /// CONFIG SET: rebuilds when a directive that shapes a context (or `tls-port`) changed.
    pub fn reconfigure(&self, cfg: &Config, changed: &[Pid]) -> Result<(), String> {
        let touched = CONTEXT_DIRECTIVES.iter().chain(&["tls-port", "tls-cluster"]).any(|d| changed.contains(&pid(d)));
        if !touched {
            return Ok(());
        }
        self.configure(cfg).map_err(|e| {
            log::warn!("Failed to configure TLS: {e}");
            "Unable to update TLS configuration. Check server logs.".to_string()
        })
    }
}

/// Runs the TLS handshake of an accepted connection, then serves it.
pub async fn accept(shared: Arc<Shared>, stream: TcpStream, info: ConnInfo) {
    let Some(config) = shared.tls.server.read().clone() else {
        return;
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(stream)).await {
        Ok(Ok(tls)) => conn::serve(shared, tls, info).await,
        Ok(Err(e)) => log::debug!("Error accepting a client connection: {e} (addr={} laddr={})", info.addr, info.laddr),
        Err(_) => log::debug!("Error accepting a client connection: TLS handshake timed out (addr={})", info.addr),
    }
}

/// The replica's side: a TLS session over the connected socket to its master.
pub async fn connect(
    config: Arc<ClientConfig>,
    host: &str,
    stream: TcpStream,
) -> Result<ferrokv_tls::tokio_rustls::client::TlsStream<TcpStream>, String> {
    let name = ferrokv_tls::server_name(host)?;
    tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsConnector::from(config).connect(name, stream))
        .await
        .map_err(|_| "TLS handshake with MASTER timed out".to_string())?
        .map_err(|e| format!("TLS handshake with MASTER failed: {e}"))
}
