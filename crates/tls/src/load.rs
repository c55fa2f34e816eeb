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

/// The private key of a PEM file (PKCS#8, PKCS#1 RSA or SEC1 EC), or an encrypted
/// PKCS#8 key (`BEGIN ENCRYPTED PRIVATE KEY`: PBES2 with PBKDF2 or scrypt and AES-CBC, what
/// `openssl pkcs8 -topk8` and OpenSSL 3's `genpkey -aes256` write) decrypted with `pass`
/// (`tls-key-file-pass`, `tls-client-key-file-pass`).
pub fn load_key(path: &str, pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("Failed to load private key: {path}: {e}"))?;
    if let Some(block) = pem_block(&pem, "ENCRYPTED PRIVATE KEY") {
        if pass.is_empty() {
            return Err(format!("Failed to load private key: {path}: the key is encrypted and no password is set (tls-key-file-pass / tls-client-key-file-pass)"));
        }
        return decrypt_pkcs8(block, pass).map_err(|e| format!("Failed to load private key: {path}: {e}"));
    }
    if pem.windows(9).any(|w| w == b"ENCRYPTED") {
        // OpenSSL's legacy encryption (`Proc-Type: 4,ENCRYPTED` headers, MD5-derived keys).
        return Err(format!(
            "Failed to load private key: {path}: the key uses OpenSSL's legacy PEM encryption; convert it to encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc -in {path} -out key.p8.pem) or store it decrypted"
        ));
    }
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("Failed to load private key: {path}: {e}"))
}

/// The text of the first PEM block labelled `label`, armour lines included.
fn pem_block<'a>(pem: &'a [u8], label: &str) -> Option<&'a [u8]> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.windows(begin.len()).position(|w| w == begin.as_bytes())?;
    let len = pem[start..].windows(end.len()).position(|w| w == end.as_bytes())? + end.len();
    Some(&pem[start..start + len])
}

/// An `EncryptedPrivateKeyInfo` PEM block decrypted to the PKCS#8 key rustls reads.
fn decrypt_pkcs8(block: &[u8], pass: &str) -> Result<PrivateKeyDer<'static>, String> {
    use pkcs8::der::Decode;
    let (_, der) = pkcs8::der::pem::decode_vec(block).map_err(|e| format!("not a PEM encrypted key ({e})"))?;
    let info =
        pkcs8::EncryptedPrivateKeyInfo::from_der(&der).map_err(|e| format!("not an encrypted PKCS#8 key ({e})"))?;
    let plain = info.decrypt(pass.as_bytes()).map_err(|e| match e {
        // A bad padding after decryption: the password derived another key. (pkcs5 0.7
        // reports it as EncryptFailed.)
        pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::DecryptFailed | pkcs8::pkcs5::Error::EncryptFailed) => {
            "cannot decrypt the key: wrong password (tls-key-file-pass / tls-client-key-file-pass)".to_string()
        }
        e => format!("cannot decrypt the key: {e}"),
    })?;
    // A wrong password passes the padding check about once in 256 tries: what comes out
    // is then no key.
    pkcs8::PrivateKeyInfo::from_der(plain.as_bytes())
        .map_err(|_| "cannot decrypt the key: wrong password (tls-key-file-pass / tls-client-key-file-pass)")?;
    Ok(PrivateKeyDer::Pkcs8(plain.as_bytes().to_vec().into()))
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
