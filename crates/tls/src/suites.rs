//! `tls-protocols`, `tls-ciphers` (TLS 1.2, OpenSSL's names) and `tls-ciphersuites`
//! (TLS 1.3, IANA names) mapped onto what rustls implements.

use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

/// Redis's default is "TLSv1.2 TLSv1.3"; TLSv1 and TLSv1.1 are obsolete (RFC 8996) and
/// rustls does not have them, so they are skipped with a warning, and refused if alone.
pub(crate) fn protocols(spec: &str) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    if spec.trim().is_empty() {
        return Ok(vec![&rustls::version::TLS13, &rustls::version::TLS12]);
    }
    let mut out = Vec::new();
    for word in spec.split_ascii_whitespace() {
        match word.to_ascii_lowercase().as_str() {
            "tlsv1.3" => out.push(&rustls::version::TLS13),
            "tlsv1.2" => out.push(&rustls::version::TLS12),
            "tlsv1" | "tlsv1.1" => log::warn!("tls-protocols: {word} is not supported (obsolete), ignored"),
            _ => return Err(format!("Invalid tls-protocols specified: {word}")),
        }
    }
    if out.is_empty() {
        return Err(format!("tls-protocols '{spec}' names no protocol ferrokv supports (TLSv1.2, TLSv1.3)"));
    }
    Ok(out)
}

/// OpenSSL's names of the TLS 1.2 suites rustls has.
const OPENSSL_TLS12_NAMES: [(&str, &str); 6] = [
    ("ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    ("ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    ("ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    ("ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
];

/// The IANA name (rustls spells TLS 1.3 suites `TLS13_…` where IANA and OpenSSL say `TLS_…`).
fn iana_name(suite: &SupportedCipherSuite) -> String {
    let name = suite.suite().as_str().unwrap_or_default();
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_string(),
    }
}

/// Keeps the suites a list names, in the list's order; a list that names none rustls has
/// (OpenSSL's keywords such as `DEFAULT:!MEDIUM`, or suites rustls lacks) keeps all of
/// that version's suites, with a warning, rather than leaving no suite at all.
fn pick(all: &[SupportedCipherSuite], tls13: bool, list: &str, directive: &str) -> Vec<SupportedCipherSuite> {
    let of_version: Vec<SupportedCipherSuite> = all.iter().copied().filter(|s| s.tls13().is_some() == tls13).collect();
    if list.trim().is_empty() {
        return of_version;
    }
    let mut picked = Vec::new();
    for name in list.split(':').map(str::trim).filter(|n| !n.is_empty()) {
        let iana =
            OPENSSL_TLS12_NAMES.iter().find(|(ossl, _)| ossl.eq_ignore_ascii_case(name)).map_or(name, |(_, i)| i);
        match of_version.iter().find(|s| iana_name(s).eq_ignore_ascii_case(iana)) {
            Some(s) if !picked.iter().any(|p: &SupportedCipherSuite| p.suite() == s.suite()) => picked.push(*s),
            Some(_) => {}
            None => log::warn!("{directive}: '{name}' is not a cipher suite ferrokv supports, ignored"),
        }
    }
    if picked.is_empty() {
        log::warn!("{directive} '{list}' names no supported suite: using the default suites");
        return of_version;
    }
    picked
}

pub(crate) fn select(
    all: &[SupportedCipherSuite],
    ciphers: &str,
    ciphersuites: &str,
) -> Result<Vec<SupportedCipherSuite>, String> {
    let mut out = pick(all, true, ciphersuites, "tls-ciphersuites");
    out.extend(pick(all, false, ciphers, "tls-ciphers"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_as_redis_spells_them() {
        assert_eq!(protocols("").map(|v| v.len()), Ok(2));
        assert_eq!(protocols("TLSv1.2").map(|v| v.len()), Ok(1));
        assert_eq!(protocols("tlsv1.1 TLSv1.3").map(|v| v.len()), Ok(1));
        assert!(protocols("TLSv1").is_err());
        assert!(protocols("SSLv3").is_err());
    }

    #[test]
    fn ciphers_by_openssl_and_iana_names() {
        let all = crate::ring_provider().cipher_suites;
        let picked =
            select(&all, "ECDHE-RSA-AES256-GCM-SHA384:BOGUS", "TLS_CHACHA20_POLY1305_SHA256").unwrap_or_default();
        let names: Vec<String> = picked.iter().map(iana_name).collect();
        assert_eq!(names, ["TLS_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"].map(String::from));
        // OpenSSL keywords select nothing rustls knows: keep the defaults.
        assert_eq!(select(&all, "DEFAULT:!MEDIUM", "").map(|v| v.len()), Ok(all.len()));
    }
}
