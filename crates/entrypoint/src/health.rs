//! The image's HEALTHCHECK. The entrypoint knows the port and password the server or
//! sentinel was started with (from variables, flags or a config file) and leaves them in a
//! small state file; `docker-entrypoint healthcheck` reads it and PINGs, so the check works
//! whatever the configuration (port 9993, a password, a sentinel on 26379).

use crate::conf_text::line;
use ferrokv_resp::args::split_args;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub port: u16,
    pub password: Option<String>,
}

impl Default for Target {
    fn default() -> Self {
        Target { port: 6379, password: None }
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
                _ => {}
            }
        }
        t
    }

    /// Port and password from a server or sentinel command line, the way the process will
    /// read them; None if the configuration does not load (the process will say why).
    pub fn from_args(args: &[String], sentinel: bool) -> Option<Target> {
        let cfg = ferrokv_config::load(&ferrokv_config::CommandLine::parse(args), sentinel).ok()?;
        let port = u16::try_from(cfg.int(ferrokv_config::pid("port"))).ok()?;
        let pw = cfg.str(ferrokv_config::pid("requirepass"));
        Some(Target { port, password: Some(pw.to_string()).filter(|p| !p.is_empty()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        for t in [Target::default(), Target { port: 9993, password: Some("p \"w\"".into()) }] {
            assert_eq!(Target::parse(&t.to_text()), t);
        }
        assert_eq!(Target::parse("garbage \"\n"), Target::default());
    }

    #[test]
    fn from_args_reads_flags() {
        let args: Vec<String> = ["--port", "9993", "--requirepass", "x"].map(String::from).to_vec();
        assert_eq!(Target::from_args(&args, false), Some(Target { port: 9993, password: Some("x".into()) }));
        assert_eq!(Target::from_args(&[], true), Some(Target { port: 26379, password: None }));
        assert_eq!(Target::from_args(&["--port".into(), "x".into()], false), None);
    }
}
