//! Contexts built from generated certificates, and handshakes between them in memory.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::{ClientConnection, ServerConnection};

struct Pki {
    dir: std::path::PathBuf,
}

impl Pki {
    /// A CA, a server certificate for "localhost"/127.0.0.1 and a client certificate, all
    /// signed by the CA, plus a second CA nobody trusts with its own client certificate.
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("ferrokv-tls-unit-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = Pki { dir };
        for (ca, prefix) in [("ca", ""), ("rogue-ca", "rogue-")] {
            let ca_key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let ca_cert = params.self_signed(&ca_key).unwrap();
            pki.write(&format!("{ca}.crt"), &ca_cert.pem());
            for (leaf, sans) in [("server", vec!["localhost".to_string(), "127.0.0.1".into()]), ("client", vec![])] {
                let key = KeyPair::generate().unwrap();
                let cert = CertificateParams::new(sans).unwrap().signed_by(&key, &ca_cert, &ca_key).unwrap();
                pki.write(&format!("{prefix}{leaf}.crt"), &cert.pem());
                pki.write(&format!("{prefix}{leaf}.key"), &key.serialize_pem());
            }
        }
        pki
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.join(name), text).unwrap();
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn server(&self, auth: AuthClients) -> TlsSettings {
        TlsSettings {
            cert_file: self.path("server.crt"),
            key_file: self.path("server.key"),
            ca_cert_file: self.path("ca.crt"),
            auth_clients: auth,
            session_caching: true,
            session_cache_size: 100,
            ..TlsSettings::default()
        }
    }

    fn client(&self, prefix: Option<&str>) -> TlsSettings {
        let mut s = TlsSettings { ca_cert_file: self.path("ca.crt"), ..TlsSettings::default() };
        if let Some(p) = prefix {
            s.cert_file = self.path(&format!("{p}client.crt"));
            s.key_file = self.path(&format!("{p}client.key"));
        }
        s
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const NOW: i64 = 1_800_000_000;

/// Runs a handshake in memory; Err is the first side's error.
fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>, host: &str) -> Result<(), rustls::Error> {
    let mut s = ServerConnection::new(server)?;
    let mut c = ClientConnection::new(client, server_name(host).unwrap())?;
    for _ in 0..20 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).unwrap();
        }
        s.process_new_packets()?;
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).unwrap();
        }
        c.process_new_packets()?;
        if !s.is_handshaking() && !c.is_handshaking() {
            return Ok(());
        }
    }
    Err(rustls::Error::General("handshake did not finish".into()))
}

#[test]
fn mutual_tls_requires_a_certificate_from_the_ca() {
    let pki = Pki::new("mtls");
    let server = server_config(&pki.server(AuthClients::Yes), NOW).unwrap();
    let good = client_config(&pki.client(Some("")), ServerCheck::CaChain).unwrap();
    assert!(handshake(server.clone(), good, "localhost").is_ok());
    let none = client_config(&pki.client(None), ServerCheck::CaChain).unwrap();
    assert!(handshake(server.clone(), none, "localhost").is_err());
    let rogue = client_config(&pki.client(Some("rogue-")), ServerCheck::CaChain).unwrap();
    assert!(handshake(server, rogue, "localhost").is_err());
    let optional = server_config(&pki.server(AuthClients::Optional), NOW).unwrap();
    let none = client_config(&pki.client(None), ServerCheck::CaChain).unwrap();
    assert!(handshake(optional, none, "localhost").is_ok());
}

#[test]
fn the_client_checks_the_chain_but_not_the_name() {
    let pki = Pki::new("chain");
    let server = server_config(&pki.server(AuthClients::No), NOW).unwrap();
    let client = client_config(&pki.client(None), ServerCheck::CaChain).unwrap();
    assert!(handshake(server.clone(), client.clone(), "127.0.0.1").is_ok());
    assert!(handshake(server.clone(), client, "another.example").is_ok());
    // A server whose certificate another CA signed is refused, unless --insecure.
    let mut rogue = pki.server(AuthClients::No);
    rogue.cert_file = pki.path("rogue-server.crt");
    rogue.key_file = pki.path("rogue-server.key");
    let rogue = server_config(&rogue, NOW).unwrap();
    let client = client_config(&pki.client(None), ServerCheck::CaChain).unwrap();
    assert!(handshake(rogue.clone(), client, "localhost").is_err());
    let insecure = client_config(&TlsSettings::default(), ServerCheck::Insecure).unwrap();
    assert!(handshake(rogue, insecure, "localhost").is_ok());
}

#[test]
fn bad_files_give_errors_naming_them() {
    let pki = Pki::new("bad");
    let mut s = pki.server(AuthClients::No);
    s.cert_file = pki.path("missing.crt");
    let err = server_config(&s, NOW).unwrap_err();
    assert!(err.contains("missing.crt"), "{err}");
    pki.write("garbage.crt", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    s.cert_file = pki.path("garbage.crt");
    let err = server_config(&s, NOW).unwrap_err();
    assert!(err.contains("garbage.crt"), "{err}");
    // A key that is not the certificate's.
    let mut s = pki.server(AuthClients::No);
    s.key_file = pki.path("client.key");
    let err = server_config(&s, NOW).unwrap_err();
    assert!(err.contains("client.key"), "{err}");
    pki.write("enc.key", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n");
    s.key_file = pki.path("enc.key");
    let err = server_config(&s, NOW).unwrap_err();
    assert!(err.contains("enc.key") && err.contains("encrypted"), "{err}");
    // mTLS without a CA.
    let mut s = pki.server(AuthClients::Yes);
    s.ca_cert_file.clear();
    assert!(server_config(&s, NOW).unwrap_err().contains("tls-ca-cert-file"));
}

#[test]
fn an_expired_certificate_is_refused_with_its_date() {
    let pki = Pki::new("expired");
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2001, 1, 1);
    params.not_after = rcgen::date_time_ymd(2002, 2, 3);
    pki.write("old.crt", &params.self_signed(&key).unwrap().pem());
    pki.write("old.key", &key.serialize_pem());
    let s = TlsSettings {
        cert_file: pki.path("old.crt"),
        key_file: pki.path("old.key"),
        auth_clients: AuthClients::No,
        ..TlsSettings::default()
    };
    let err = server_config(&s, NOW).unwrap_err();
    assert!(err.contains("old.crt") && err.contains("expired on 2002-02-03"), "{err}");
    let err = server_config(&s, 900_000_000).unwrap_err();
    assert!(err.contains("not valid before 2001-01-01"), "{err}");
}

#[test]
fn a_ca_directory_is_read() {
    let pki = Pki::new("cadir");
    let cadir = pki.dir.join("cas");
    std::fs::create_dir_all(&cadir).unwrap();
    std::fs::copy(pki.dir.join("ca.crt"), cadir.join("a.pem")).unwrap();
    std::fs::write(cadir.join("README"), "not a certificate").unwrap();
    let mut s = pki.server(AuthClients::Yes);
    s.ca_cert_file.clear();
    s.ca_cert_dir = cadir.display().to_string();
    let server = server_config(&s, NOW).unwrap();
    let client = client_config(&pki.client(Some("")), ServerCheck::CaChain).unwrap();
    assert!(handshake(server, client, "localhost").is_ok());
}

#[test]
fn protocol_versions_are_enforced() {
    let pki = Pki::new("proto");
    let mut s = pki.server(AuthClients::No);
    s.protocols = "TLSv1.3".into();
    let server = server_config(&s, NOW).unwrap();
    let mut c = pki.client(None);
    c.protocols = "TLSv1.2".into();
    let client = client_config(&c, ServerCheck::CaChain).unwrap();
    assert!(handshake(server.clone(), client, "localhost").is_err());
    let client = client_config(&pki.client(None), ServerCheck::CaChain).unwrap();
    assert!(handshake(server, client, "localhost").is_ok());
}

/// An encrypted PKCS#8 key (PBES2 with PBKDF2-SHA256 and AES-256-CBC, what `openssl pkcs8
/// -topk8 -v2 aes-256-cbc` writes) is read with its password; a wrong or missing password,
/// and OpenSSL's legacy PEM encryption, are refused with errors that say so.
#[test]
fn encrypted_keys_open_with_their_password_only() {
    use pkcs8::der::Decode;
    let pki = Pki::new("encrypted");
    let der = KeyPair::generate().unwrap().serialize_der();
    let info = pkcs8::PrivateKeyInfo::from_der(&der).unwrap();
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"saltsalt", &[7u8; 16]).unwrap();
    let encrypted = info.encrypt_with_params(params, "s3cret").unwrap();
    pki.write("enc.key", &encrypted.to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF).unwrap());
    let key = load_key(&pki.path("enc.key"), "s3cret").unwrap();
    assert_eq!(key.secret_der(), der.as_slice());
    let err = load_key(&pki.path("enc.key"), "wrong").unwrap_err();
    assert!(err.contains("enc.key") && err.contains("wrong password"), "{err}");
    let err = load_key(&pki.path("enc.key"), "").unwrap_err();
    assert!(err.contains("no password"), "{err}");
    pki.write(
        "legacy.key",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n",
    );
    let err = load_key(&pki.path("legacy.key"), "s3cret").unwrap_err();
    assert!(err.contains("openssl pkcs8 -topk8"), "{err}");
}
