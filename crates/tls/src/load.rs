//! Reading certificates and keys from PEM files, with errors that name the file.

use crate::der;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Every certificate of a PEM file, leaf first. An empty or unreadable file is an error.
pub fn load_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("Failed to load certificate: {path}: {e}"))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("Failed to load certificate: {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("Failed to load certificate: {path}: no PEM certificate in the file"));
    }
    for cert in &certs {
        der::validity(cert)
            .map_err(|e| format!("Failed to load certificate: {path}: not an X.509 certificate ({e})"))?;
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn load_key(path: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("Failed to load private key: {path}: {e}"))?;
    if pem.windows(9).any(|w| w == b"ENCRYPTED") {
        let hint = if pass.is_empty() { "and no tls-key-file-pass is set; " } else { "" };
        return Err(format!(
            "Failed to load private key: {path}: the key is encrypted {hint}ferrokv reads unencrypted keys only (decrypt it, e.g. openssl pkey -in {path} -out key.pem, and protect the file by its permissions)"
        ));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("Failed to load private key: {path}: {e}"))
}

/// Certificates of every file in a directory that holds PEM certificates (others skipped).
pub(crate) fn certs_in_dir(dir: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("Failed to load CA certificate(s) directory: {dir}: {e}"))?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        if let Ok(pem) = std::fs::read(entry.path()) {
            out.extend(CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok));
        }
    }
    Ok(out)
}

/// Refuses a certificate outside its validity period at `now_unix`, naming the file and the
/// date, so an operator sees why instead of every client failing its handshake.
pub fn check_validity(path: &str, cert: &CertificateDer<'_>, now_unix: i64) -> Result<(), String> {
    let (not_before, not_after) = der::validity(cert)
        .map_err(|e| format!("Failed to load certificate: {path}: not an X.509 certificate ({e})"))?;
    if now_unix > not_after {
        return Err(format!(
            "Failed to load certificate: {path}: the certificate expired on {} (renew it)",
            der::format_utc(not_after)
        ));
    }
    if now_unix < not_before {
        return Err(format!(
            "Failed to load certificate: {path}: the certificate is not valid before {} (check the clock)",
            der::format_utc(not_before)
        ));
    }
    Ok(())
}
