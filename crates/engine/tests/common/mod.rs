//! A harness that drives the engine directly (no sockets): connect clients, run commands,
//! decode replies, and move time by hand.

#![allow(dead_code)]

use ferrokv_config::Config;
use ferrokv_engine::client::{ConnInfo, NoWaker, Transport};
use ferrokv_engine::{ClientId, Engine, NullHost, ServerInfo};
use ferrokv_resp::{Argv, Frame};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct Harness {
    pub eng: Engine,
    pub now: i64,
    /// Each client's output in flight: the harness "writes" everything it takes at once.
    in_flight: HashMap<ClientId, Arc<AtomicUsize>>,
}

impl Harness {
    pub fn new() -> Harness {
        Self::with_config(Config::defaults())
    }

    pub fn with_config(cfg: Config) -> Harness {
        let now = 1_700_000_000_000;
        let eng = Engine::new(cfg, Box::new(NullHost::default()), ServerInfo::default(), now).unwrap();
        Harness { eng, now, in_flight: HashMap::new() }
    }

    pub fn client(&mut self) -> ClientId {
        let conn = ConnInfo {
            addr: "127.0.0.1:5000".into(),
            laddr: "127.0.0.1:6379".into(),
            fd: 8,
            transport: Transport::Tcp,
            local: true,
        };
        let in_flight = Arc::new(AtomicUsize::new(0));
        let id = self.eng.connect(conn, Arc::new(NoWaker), in_flight.clone(), self.now).unwrap();
        self.in_flight.insert(id, in_flight);
        id
    }

    /// Takes all of a client's pending output as its connection would (chunk by chunk),
    /// and writes it at once.
    pub fn take(&mut self, id: ClientId) -> Vec<u8> {
        let mut all = Vec::new();
        let mut chunk = Vec::new();
        loop {
            self.eng.take_output(id, &mut chunk);
            if let Some(f) = self.in_flight.get(&id) {
                f.store(0, Ordering::Relaxed);
            }
            if chunk.is_empty() {
                return all;
            }
            all.extend_from_slice(&chunk);
        }
    }

    /// Runs one command and returns the raw bytes written to the client.
    pub fn raw(&mut self, id: ClientId, args: &[&str]) -> Vec<u8> {
        let mut q = VecDeque::from([Argv::from_slices(args)]);
        self.eng.execute(id, &mut q, self.now, usize::MAX);
        self.take(id)
    }

    /// Runs one command and decodes its single reply.
    pub fn cmd(&mut self, id: ClientId, args: &[&str]) -> Frame {
        let raw = self.raw(id, args);
        let (f, n) = Frame::decode(&raw).unwrap().unwrap_or_else(|| panic!("no reply to {args:?}"));
        assert_eq!(n, raw.len(), "more than one reply to {args:?}: {:?}", String::from_utf8_lossy(&raw));
        f
    }

    /// Pending output of a client (pushes it received), decoded.
    pub fn pending(&mut self, id: ClientId) -> Vec<Frame> {
        let out = self.take(id);
        let mut frames = Vec::new();
        let mut pos = 0;
        while let Some((f, n)) = Frame::decode(&out[pos..]).unwrap() {
            frames.push(f);
            pos += n;
        }
        frames
    }
}

pub fn bulk(s: &str) -> Frame {
    Frame::Bulk(s.as_bytes().to_vec().into())
}

pub fn simple(s: &str) -> Frame {
    Frame::Simple(s.as_bytes().to_vec().into())
}

pub fn err(s: &str) -> Frame {
    Frame::Error(s.as_bytes().to_vec().into())
}

pub fn int(n: i64) -> Frame {
    Frame::Integer(n)
}

pub fn arr(v: Vec<Frame>) -> Frame {
    Frame::Array(v)
}

/// The commands in the write feed, without the SELECTs.
pub fn feed(h: &mut Harness) -> Vec<Vec<String>> {
    let (raw, _) = h.eng.feed.take();
    let mut cmds = Vec::new();
    let mut pos = 0;
    while let Some((f, n)) = Frame::decode(&raw[pos..]).expect("feed decodes") {
        pos += n;
        let Frame::Array(parts) = f else { panic!("feed holds commands") };
        let args: Vec<String> = parts
            .into_iter()
            .map(|p| match p {
                Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        if !args[0].eq_ignore_ascii_case("select") {
            cmds.push(args);
        }
    }
    cmds
}

pub fn cmds(list: &[&[&str]]) -> Vec<Vec<String>> {
    list.iter().map(|c| c.iter().map(|s| s.to_string()).collect()).collect()
}
