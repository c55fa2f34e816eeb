//! TLS contexts built from Redis 7.0's `tls-*` directives, on rustls.
//!
//! The server side ([`server_config`]) is what the `tls-port` listener hands each accepted
//! connection; the client side ([`client_config`]) is what a replica (with
//! `tls-replication yes`), the sentinel and `ferrokv cli --tls` connect with. Nothing here
//! does I/O except reading the certificate and key files, and every error names the file
//! and what is wrong with it, since that is what an operator has to fix.
//!
//! Differences from Redis's OpenSSL build, on purpose or by rustls's design: TLS 1.0 and
//! 1.1 are not offered (rustls does not implement them; `tls-protocols` naming only those
//! is refused); `tls-ciphers` / `tls-ciphersuites` select among the suites rustls has
//! (OpenSSL names of others are ignored with a warning); `tls-dh-params-file` is accepted
//! and unused (rustls uses ECDHE only); a certificate already expired when loaded is refused
//! with the file and date named, where OpenSSL would load it and every handshake would fail.

mod der;
mod load;
mod suites;
mod verify;

pub use load::{check_validity, load_certs, load_key};
pub use rustls;
pub use tokio_rustls;

use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::sync::Arc;

/// `tls-auth-clients`: whether a client must present a certificate signed by the CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AuthClients {
    No,
    #[default]
    Yes,
    Optional,
}

impl AuthClients {
    /// From the config table's enum value (no = 0, yes = 1, optional = 2).
    pub fn from_config(v: i64) -> AuthClients {
        match v {
            0 => AuthClients::No,
            2 => AuthClients::Optional,
            _ => AuthClients::Yes,
        }
    }
}

/// The values of the `tls-*` directives that shape a context (empty string = not set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsSettings {
    pub cert_file: String,
    pub key_file: String,
    pub key_file_pass: String,
    pub client_cert_file: String,
    pub client_key_file: String,
    pub client_key_file_pass: String,
    pub ca_cert_file: String,
    pub ca_cert_dir: String,
    pub auth_clients: AuthClients,
    pub protocols: String,
    pub ciphers: String,
    pub ciphersuites: String,
    pub prefer_server_ciphers: bool,
    pub session_caching: bool,
    pub session_cache_size: usize,
}

/// rustls's ring provider. Deprecated in rustls only because it lacks the post-quantum
/// key exchange (X25519MLKEM768), which Redis 7.0 and its clients do not offer either; the
/// alternative provider (aws-lc-rs) needs cmake and a long C build on every machine.
#[allow(deprecated)]
pub(crate) fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// The crypto provider (ring) restricted to the configured cipher suites.
fn provider(s: &TlsSettings) -> Result<Arc<CryptoProvider>, String> {
    let base = ring_provider();
    let cipher_suites = suites::select(&base.cipher_suites, &s.ciphers, &s.ciphersuites)?;
    Ok(Arc::new(CryptoProvider { cipher_suites, ..base }))
}

fn roots(s: &TlsSettings) -> Result<Option<RootCertStore>, String> {
    if s.ca_cert_file.is_empty() && s.ca_cert_dir.is_empty() {
        return Ok(None);
    }
    let mut store = RootCertStore::empty();
    if !s.ca_cert_file.is_empty() {
        for cert in load_certs(&s.ca_cert_file)? {
            store.add(cert).map_err(|e| format!("Failed to load CA certificate(s) file '{}': {e}", s.ca_cert_file))?;
        }
    }
    if !s.ca_cert_dir.is_empty() {
        for cert in load::certs_in_dir(&s.ca_cert_dir)? {
            // A directory of OpenSSL's hashed links may hold anything; a bad one is skipped.
            if let Err(e) = store.add(cert) {
                log::warn!("Skipping a certificate in tls-ca-cert-dir '{}': {e}", s.ca_cert_dir);
            }
        }
    }
    if store.is_empty() {
        return Err("Failed to configure CA certificate(s) file/directory: no certificate found".into());
    }
    Ok(Some(store))
}

/// The context for accepting TLS clients (and replicas) on `tls-port`.
pub fn server_config(s: &TlsSettings, now_unix: i64) -> Result<Arc<ServerConfig>, String> {
    if s.cert_file.is_empty() {
        return Err("No tls-cert-file configured!".into());
    }
    if s.key_file.is_empty() {
        return Err("No tls-key-file configured!".into());
    }
    let provider = provider(s)?;
    let versions = suites::protocols(&s.protocols)?;
    let certs = load_certs(&s.cert_file)?;
    check_validity(&s.cert_file, &certs[0], now_unix)?;
    let key = load_key(&s.key_file, &s.key_file_pass)?;
    let roots = roots(s)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Invalid tls-protocols/tls-ciphers combination: {e}"))?;
    let builder = match (s.auth_clients, roots) {
        (AuthClients::No, _) => builder.with_no_client_auth(),
        (_, None) => {
            return Err(
                "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, tls-replication or tls-auth-clients are enabled!"
                    .into(),
            )
        }
        (auth, Some(roots)) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = if auth == AuthClients::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("Invalid CA certificate(s): {e}"))?)
        }
    };
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        format!(
            "Failed to load certificate and private key: '{}' and '{}' do not go together: {e}",
            s.cert_file, s.key_file
        )
    })?;
    config.ignore_client_order = s.prefer_server_ciphers;
    // OpenSSL's session cache resumes TLS 1.2 sessions by ID; rustls's memory cache does the
    // same and also backs TLS 1.3 stateful tickets.
    config.session_storage = if s.session_caching && s.session_cache_size > 0 {
        ServerSessionMemoryCache::new(s.session_cache_size)
    } else {
        Arc::new(NoServerSessionStorage {})
    };
    Ok(Arc::new(config))
}

/// How a client checks the server's certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCheck {
    /// Chain to the configured CA, without matching the host name: what Redis's replication
    /// link and redis-cli do (hiredis does not check names either).
    CaChain,
    /// No check at all (`ferrokv cli --insecure`).
    Insecure,
}

/// The context for connecting to a TLS server: a replica to its master, the sentinel to
/// the servers it monitors, the CLI. Uses `tls-client-cert-file`/`-key-file` when set,
/// else `tls-cert-file`/`tls-key-file` (as Redis), else no client certificate.
pub fn client_config(s: &TlsSettings, check: ServerCheck) -> Result<Arc<ClientConfig>, String> {
    let provider = provider(s)?;
    let versions = suites::protocols(&s.protocols)?;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("Invalid tls-protocols/tls-ciphers combination: {e}"))?;
    let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match check {
        ServerCheck::Insecure => Arc::new(verify::AnyServer(provider.clone())),
        ServerCheck::CaChain => {
            let roots = roots(s)?.ok_or("No tls-ca-cert-file or tls-ca-cert-dir to verify the server's certificate")?;
            let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| format!("Invalid CA certificate(s): {e}"))?;
            Arc::new(verify::ChainOnly(inner))
        }
    };
    let builder = builder.dangerous().with_custom_certificate_verifier(verifier);
    let (cert_file, key_file, pass) = if !s.client_cert_file.is_empty() {
        (&s.client_cert_file, &s.client_key_file, &s.client_key_file_pass)
    } else {
        (&s.cert_file, &s.key_file, &s.key_file_pass)
    };
    let config = if cert_file.is_empty() || key_file.is_empty() {
        builder.with_no_client_auth()
    } else {
        let certs = load_certs(cert_file)?;
        let key = load_key(key_file, pass)?;
        builder.with_client_auth_cert(certs, key).map_err(|e| {
            format!("Failed to load client certificate and private key: '{cert_file}' and '{key_file}': {e}")
        })?
    };
    Ok(Arc::new(config))
}

/// The name a client presents (SNI) and checks: a host name, or an IP address (which
/// rustls never sends as SNI, as RFC 6066 says).
pub fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    rustls::pki_types::ServerName::try_from(bare.to_string())
        .map_err(|e| format!("Invalid TLS server name '{host}': {e}"))
}

#[cfg(test)]
mod tests;
