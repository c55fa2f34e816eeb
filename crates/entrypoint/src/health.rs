//! The image's HEALTHCHECK. The entrypoint knows the port and password the server or
//! sentinel was started with (from variables, flags or a config file) and leaves them in a
//! small state file; `docker-entrypoint healthcheck` reads it and PINGs, so the check works
//! whatever the configuration (port 9993, a password, a sentinel on 26379, TLS only).

use crate::conf_text::line;
use ferrokv_resp::args::split_args;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub port: u16,
    pub password: Option<String>,
    /// A server that listens on its TLS port only is pinged over TLS, presenting its own
    /// certificate (as bitnami's health check does with redis-cli --tls).
    pub tls: Option<TlsFiles>,
}

/// The server's certificate, key and CA (file or directory), as its directives name them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TlsFiles {
    pub cert: String,
    pub key: String,
    pub ca_file: String,
    pub ca_dir: String,
}

impl Default for Target {
    fn default() -> Self {
        Target { port: 6379, password: None, tls: None }
    }
}

impl Target {
    pub fn to_text(&self) -> String {
        let mut s = line("port", &[&self.port.to_string()]);
        s.push('\n');
        if let Some(pw) = &self.password {
            s.push_str(&line("auth", &[pw]));
            s.push('\n');
        }
        if let Some(t) = &self.tls {
            s.push_str(&line("tls", &[&t.cert, &t.key, &t.ca_file, &t.ca_dir]));
            s.push('\n');
        }
        s
    }

    pub fn parse(text: &str) -> Target {
        let mut t = Target::default();
        for l in text.lines() {
            let Ok(words) = split_args(l.as_bytes()) else { continue };
            match words.as_slice() {
                [k, v] if k == b"port" => {
                    if let Some(p) = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()) {
                        t.port = p;
                    }
                }
                [k, v] if k == b"auth" => t.password = Some(String::from_utf8_lossy(v).into_owned()),
                [k, cert, key, ca_file, ca_dir] if k == b"tls" => {
                    let text = |v: &Vec<u8>| String::from_utf8_lossy(v).into_owned();
                    t.tls = Some(TlsFiles {
                        cert: text(cert),
                        key: text(key),
                        ca_file: text(ca_file),
                        ca_dir: text(ca_dir),
                    })
                }
                _ => {}
            }
        }
        t
    }

    /// Port and password from a server or sentinel command line, the way the process will
    /// read them; None if the configuration does not load (the process will say why).
    pub fn from_args(args: &[String], sentinel: bool) -> Option<Target> {
        use ferrokv_config::pid;
        let cfg = ferrokv_config::load(&ferrokv_config::CommandLine::parse(args), sentinel).ok()?;
        let mut port = u16::try_from(cfg.int(pid("port"))).ok()?;
        let mut tls = None;
        if port == 0 {
            port = u16::try_from(cfg.int(pid("tls-port"))).ok()?;
            let s = |name: &str| cfg.str(pid(name)).to_string();
            tls = Some(TlsFiles {
                cert: s("tls-cert-file"),
                key: s("tls-key-file"),
                ca_file: s("tls-ca-cert-file"),
                ca_dir: s("tls-ca-cert-dir"),
            });
        }
        let pw = cfg.str(pid("requirepass"));
        Some(Target { port, password: Some(pw.to_string()).filter(|p| !p.is_empty()), tls })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let tls = TlsFiles { cert: "/c/a b.crt".into(), key: "k".into(), ca_file: String::new(), ca_dir: "/d".into() };
        for t in [
            Target::default(),
            Target { port: 9993, password: Some("p \"w\"".into()), tls: None },
            Target { port: 6379, password: None, tls: Some(tls) },
        ] {
            assert_eq!(Target::parse(&t.to_text()), t);
        }
        assert_eq!(Target::parse("garbage \"\n"), Target::default());
    }

    #[test]
    fn from_args_reads_flags() {
        let args: Vec<String> = ["--port", "9993", "--requirepass", "x"].map(String::from).to_vec();
        assert_eq!(Target::from_args(&args, false), Some(Target { port: 9993, password: Some("x".into()), tls: None }));
        assert_eq!(Target::from_args(&[], true), Some(Target { port: 26379, password: None, tls: None }));
        let args: Vec<String> = ["--port", "0", "--tls-port", "6380", "--tls-cert-file", "c", "--tls-key-file", "k"]
            .map(String::from)
            .to_vec();
        let t = Target::from_args(&args, false).expect("loads");
        assert_eq!((t.port, t.tls.map(|t| t.cert)), (6380, Some("c".into())));
        assert_eq!(Target::from_args(&["--port".into(), "x".into()], false), None);
    }
}
