//! Certificates for TLS tests, generated with rcgen into a temporary directory.

#![allow(dead_code)]

use crate::common::TempDir;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A CA with a server and a client certificate it signed, in PEM files.
pub struct Pki {
    dir: TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let pki = Pki { dir: TempDir::new("tls-pki") };
        pki.authority("", "ca");
        pki
    }

    /// `<prefix>ca.crt`, `<prefix>server.{crt,key}`, `<prefix>client.{crt,key}`.
    pub fn authority(&self, prefix: &str, name: &str) {
        let ca_key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, format!("ferrokv test {name}"));
        let ca = params.self_signed(&ca_key).expect("ca");
        self.write(&format!("{prefix}ca.crt"), &ca.pem());
        for (leaf, sans) in [("server", vec!["localhost".to_string(), "127.0.0.1".into()]), ("client", vec![])] {
            let key = KeyPair::generate().expect("key");
            let cert = CertificateParams::new(sans).expect("params").signed_by(&key, &ca, &ca_key).expect("sign");
            self.write(&format!("{prefix}{leaf}.crt"), &cert.pem());
            self.write(&format!("{prefix}{leaf}.key"), &key.serialize_pem());
        }
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).expect("write pem");
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The server directives for a TLS listener on `tls_port` with this PKI's files.
    pub fn server_args(&self, tls_port: u16, auth_clients: &str) -> Vec<String> {
        [
            ("--tls-port", tls_port.to_string()),
            ("--tls-cert-file", self.path("server.crt")),
            ("--tls-key-file", self.path("server.key")),
            ("--tls-ca-cert-file", self.path("ca.crt")),
            ("--tls-auth-clients", auth_clients.to_string()),
        ]
        .into_iter()
        .flat_map(|(k, v)| [k.to_string(), v])
        .collect()
    }

    /// redis-cli's (and redis-benchmark's) TLS options with the client certificate.
    pub fn cli_args(&self, port: u16) -> Vec<String> {
        let mut args = self.cli_args_without_cert(port);
        args.extend(["--cert".into(), self.path("client.crt"), "--key".into(), self.path("client.key")]);
        args
    }

    pub fn cli_args_without_cert(&self, port: u16) -> Vec<String> {
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "--tls".into(),
            "--cacert".into(),
            self.path("ca.crt"),
        ]
    }
}
