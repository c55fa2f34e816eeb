//! The replica's handshake with its master, as a state machine over replies: no socket,
//! no timer, so every path is unit-testable with scripted replies.
//!
//! Redis's order: `PING` (and wait: the master may still be loading), then pipelined
//! `AUTH`, `REPLCONF listening-port`, `REPLCONF ip-address` (if announced), `REPLCONF capa
//! eof capa psync2`, each reply read in turn, then `PSYNC <replid> <offset>` whose answer
//! decides between a partial (`+CONTINUE`) and a full (`+FULLRESYNC`) resync.

use ferrokv_resp::{encode_command, Frame};

/// What the handshake needs to know about us.
#[derive(Clone, Debug, Default)]
pub struct HandshakeConfig {
    pub masteruser: Option<String>,
    pub masterauth: Option<String>,
    pub listening_port: u16,
    pub announce_ip: Option<String>,
    /// PSYNC's arguments: our history (or "?") and the first offset we lack (or -1).
    pub psync_replid: String,
    pub psync_offset: i64,
    /// FAILOVER: ask the master we connect to (our former replica) to take over.
    pub failover: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Pong,
    Auth,
    Port,
    Ip,
    Capa,
    Psync,
    Done,
}

/// What the driver must do after a reply.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Write these bytes to the master.
    Send(Vec<u8>),
    /// Full resync: an RDB of the master's dataset at `offset` follows.
    FullResync { replid: String, offset: u64 },
    /// Partial resync: the stream continues from our offset (under a new ID, if given).
    Continue { replid: Option<String> },
    /// Give up on this connection and retry later, logging the reason.
    Retry(String),
}

pub struct Handshake {
    cfg: HandshakeConfig,
    step: Step,
}

fn text(f: &Frame) -> Option<String> {
    match f {
        Frame::Simple(s) | Frame::Error(s) | Frame::Bulk(s) => Some(String::from_utf8_lossy(s).into_owned()),
        _ => None,
    }
}

impl Handshake {
    /// Starts the handshake: the PING to send first.
    pub fn start(cfg: HandshakeConfig) -> (Handshake, Vec<u8>) {
        let mut out = Vec::new();
        encode_command(&mut out, [&b"PING"[..]]);
        (Handshake { cfg, step: Step::Pong }, out)
    }

    pub fn done(&self) -> bool {
        self.step == Step::Done
    }

    /// The commands sent after the PONG, pipelined, and the first reply to expect.
    fn after_pong(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(pass) = &self.cfg.masterauth {
            match &self.cfg.masteruser {
                Some(user) => encode_command(&mut out, [&b"AUTH"[..], user.as_bytes(), pass.as_bytes()]),
                None => encode_command(&mut out, [&b"AUTH"[..], pass.as_bytes()]),
            }
            self.step = Step::Auth;
        } else {
            self.step = Step::Port;
        }
        let port = self.cfg.listening_port.to_string();
        encode_command(&mut out, [&b"REPLCONF"[..], b"listening-port", port.as_bytes()]);
        if let Some(ip) = &self.cfg.announce_ip {
            encode_command(&mut out, [&b"REPLCONF"[..], b"ip-address", ip.as_bytes()]);
        }
        encode_command(&mut out, [&b"REPLCONF"[..], b"capa", b"eof", b"capa", b"psync2"]);
        out
    }

    fn psync(&mut self) -> Vec<u8> {
        self.step = Step::Psync;
        let mut out = Vec::new();
        let off = self.cfg.psync_offset.to_string();
        if self.cfg.failover {
            encode_command(&mut out, [&b"PSYNC"[..], self.cfg.psync_replid.as_bytes(), off.as_bytes(), b"FAILOVER"]);
        } else {
            encode_command(&mut out, [&b"PSYNC"[..], self.cfg.psync_replid.as_bytes(), off.as_bytes()]);
        }
        out
    }

    /// Consumes the master's next reply.
    pub fn on_reply(&mut self, reply: &Frame) -> Vec<Action> {
        let is_err = matches!(reply, Frame::Error(_));
        let msg = text(reply).unwrap_or_default();
        match self.step {
            Step::Pong => {
                // An AUTH-required or permission error still proves the master is there.
                if is_err
                    && !msg.starts_with("NOAUTH")
                    && !msg.starts_with("NOPERM")
                    && !msg.starts_with("ERR operation not permitted")
                {
                    return vec![Action::Retry(format!("Error reply to PING from master: '{msg}'"))];
                }
                log::info!("Master replied to PING, replication can continue...");
                vec![Action::Send(self.after_pong())]
            }
            Step::Auth => {
                if is_err {
                    return vec![Action::Retry(format!("Unable to AUTH to MASTER: {msg}"))];
                }
                self.step = Step::Port;
                Vec::new()
            }
            Step::Port => {
                if is_err {
                    log::info!("(Non critical) Master does not understand REPLCONF listening-port: {msg}");
                }
                self.step = if self.cfg.announce_ip.is_some() { Step::Ip } else { Step::Capa };
                Vec::new()
            }
            Step::Ip => {
                if is_err {
                    log::info!("(Non critical) Master does not understand REPLCONF ip-address: {msg}");
                }
                self.step = Step::Capa;
                Vec::new()
            }
            Step::Capa => {
                if is_err {
                    log::info!("(Non critical) Master does not understand REPLCONF capa: {msg}");
                }
                log::info!(
                    "Trying a partial resynchronization (request {}:{}).",
                    self.cfg.psync_replid,
                    self.cfg.psync_offset
                );
                vec![Action::Send(self.psync())]
            }
            Step::Psync => self.on_psync_reply(&msg, is_err),
            Step::Done => Vec::new(),
        }
    }

    fn on_psync_reply(&mut self, msg: &str, is_err: bool) -> Vec<Action> {
        if let Some(rest) = msg.strip_prefix("FULLRESYNC") {
            let mut it = rest.split_whitespace();
            let (Some(replid), Some(offset)) = (it.next(), it.next().and_then(|o| o.parse::<u64>().ok())) else {
                return vec![Action::Retry(format!("Master replied with wrong +FULLRESYNC syntax: {msg}"))];
            };
            self.step = Step::Done;
            log::info!("Full resync from master: {replid}:{offset}");
            return vec![Action::FullResync { replid: replid.to_string(), offset }];
        }
        if let Some(rest) = msg.strip_prefix("CONTINUE") {
            self.step = Step::Done;
            log::info!("Successful partial resynchronization with master.");
            let replid = rest.trim();
            let replid = (replid.len() == 40).then(|| replid.to_string());
            return vec![Action::Continue { replid }];
        }
        if is_err && (msg.starts_with("NOMASTERLINK") || msg.starts_with("LOADING")) {
            return vec![Action::Retry(format!(
                "Master is currently unable to PSYNC but should be in the future: {msg}"
            ))];
        }
        vec![Action::Retry(format!("Unexpected reply to PSYNC from master: {msg}"))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(bytes: &[u8]) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (f, n) = Frame::decode(rest).unwrap().unwrap();
            let Frame::Array(items) = f else { panic!("not a command") };
            out.push(items.iter().map(|i| text(i).unwrap()).collect());
            rest = &rest[n..];
        }
        out
    }

    fn simple(s: &str) -> Frame {
        Frame::Simple(bytes::Bytes::copy_from_slice(s.as_bytes()))
    }

    fn error(s: &str) -> Frame {
        Frame::Error(bytes::Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn full_handshake_with_auth_and_announced_ip() {
        let cfg = HandshakeConfig {
            masterauth: Some("pw".into()),
            listening_port: 6380,
            announce_ip: Some("10.0.0.5".into()),
            psync_replid: "?".into(),
            psync_offset: -1,
            ..Default::default()
        };
        let (mut h, ping) = Handshake::start(cfg);
        assert_eq!(cmds(&ping), vec![vec!["PING"]]);
        let acts = h.on_reply(&error("NOAUTH Authentication required."));
        let [Action::Send(b)] = &acts[..] else { panic!("{acts:?}") };
        assert_eq!(
            cmds(b),
            vec![
                vec!["AUTH", "pw"],
                vec!["REPLCONF", "listening-port", "6380"],
                vec!["REPLCONF", "ip-address", "10.0.0.5"],
                vec!["REPLCONF", "capa", "eof", "capa", "psync2"],
            ]
        );
        assert!(h.on_reply(&simple("OK")).is_empty());
        assert!(h.on_reply(&simple("OK")).is_empty());
        assert!(h.on_reply(&error("ERR unknown")).is_empty(), "ip-address errors are not fatal");
        let acts = h.on_reply(&simple("OK"));
        let [Action::Send(b)] = &acts[..] else { panic!("{acts:?}") };
        assert_eq!(cmds(b), vec![vec!["PSYNC", "?", "-1"]]);
        let acts = h.on_reply(&simple("FULLRESYNC 0123456789012345678901234567890123456789 42"));
        assert_eq!(
            acts,
            vec![Action::FullResync { replid: "0123456789012345678901234567890123456789".into(), offset: 42 }]
        );
        assert!(h.done());
    }

    #[test]
    fn continue_with_and_without_new_id_and_failures() {
        let cfg = HandshakeConfig { psync_replid: "a".repeat(40), psync_offset: 100, ..Default::default() };
        let run = |reply: Frame| {
            let (mut h, _) = Handshake::start(cfg.clone());
            h.on_reply(&simple("PONG"));
            h.on_reply(&simple("OK"));
            h.on_reply(&simple("OK"));
            h.on_reply(&reply)
        };
        assert_eq!(run(simple("CONTINUE")), vec![Action::Continue { replid: None }]);
        assert_eq!(
            run(simple(&format!("CONTINUE {}", "b".repeat(40)))),
            vec![Action::Continue { replid: Some("b".repeat(40)) }]
        );
        assert!(matches!(&run(error("LOADING Redis is loading"))[..], [Action::Retry(_)]));
        let (mut h, _) = Handshake::start(HandshakeConfig { masterauth: Some("x".into()), ..cfg.clone() });
        h.on_reply(&simple("PONG"));
        assert!(matches!(&h.on_reply(&error("WRONGPASS invalid"))[..], [Action::Retry(m)] if m.contains("AUTH")));
        let (mut h, _) = Handshake::start(cfg);
        assert!(matches!(&h.on_reply(&error("ERR weird"))[..], [Action::Retry(_)]));
    }
}
