//! Stream and consumer-group commands in any order, with any of a few keys, IDs, counts and
//! options, run in-process on an engine (nodes of 2 entries, so entries cross nodes): no
//! panic, every reply a well-formed frame, XLEN the number of entries XRANGE lists, and the
//! group's pending list as long as XPENDING's summary says. The write feed, replayed on a
//! second engine, must rebuild the same entries and the same pending list (owners
//! included). engine/tests/stream_model.rs checks the replies against a model on every
//! `cargo test`.
#![no_main]
use ferrokv_config::Config;
use ferrokv_engine::client::{ConnInfo, NoWaker, Transport};
use ferrokv_engine::{ClientId, Engine, NullHost, ServerInfo};
use ferrokv_resp::{Argv, Frame};
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

const IDS: [&str; 10] =
    ["0-1", "1-0", "1-1", "2", "3-0", "5-*", "*", "-", "+", "18446744073709551615-18446744073709551615"];
const COUNTS: [&str; 5] = ["0", "1", "2", "-1", "1000000000000"];
const GROUPS: [&str; 2] = ["g", "h"];
const CONSUMERS: [&str; 3] = ["a", "b", "c"];

struct Node {
    eng: Engine,
    client: ClientId,
}

impl Node {
    fn new() -> Node {
        let mut eng = Engine::new(Config::defaults(), Box::new(NullHost::default()), ServerInfo::default(), 1_000)
            .expect("engine");
        let conn = ConnInfo {
            addr: "127.0.0.1:5000".into(),
            laddr: "127.0.0.1:6379".into(),
            fd: 8,
            transport: Transport::Tcp,
            local: true,
        };
        let client = eng.connect(conn, Arc::new(NoWaker), Arc::new(AtomicUsize::new(0)), 1_000).expect("client");
        let mut n = Node { eng, client };
        n.run(&["CONFIG", "SET", "stream-node-max-entries", "2"]);
        n
    }

    fn run(&mut self, args: &[&str]) -> Frame {
        let mut q = VecDeque::from([Argv::from_slices(args)]);
        self.eng.execute(self.client, &mut q, 1_000, usize::MAX);
        let (mut all, mut chunk) = (Vec::new(), Vec::new());
        loop {
            self.eng.take_output(self.client, &mut chunk);
            if chunk.is_empty() {
                break;
            }
            all.extend_from_slice(&chunk);
        }
        let (frame, used) = Frame::decode(&all).expect("well-formed reply").expect("a reply");
        assert_eq!(used, all.len(), "one reply to {args:?}");
        frame
    }

    fn entries(&mut self) -> Frame {
        self.run(&["XRANGE", "s", "-", "+"])
    }

    fn pending(&mut self, group: &str) -> Frame {
        self.run(&["XPENDING", "s", group, "-", "+", "1000"])
    }
}

/// One command from four bytes.
fn command(b: &[u8]) -> Vec<String> {
    let pick = |i: usize, from: &[&str]| from[usize::from(b[i]) % from.len()].to_string();
    let (id, count, group, consumer) = (pick(1, &IDS), pick(2, &COUNTS), pick(3, &GROUPS), pick(2, &CONSUMERS));
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut c = match b[0] % 16 {
        0 | 1 => v(&["XADD", "s", &id, "f", "v"]),
        2 => v(&["XADD", "s", "MAXLEN", if b[3] & 1 == 0 { "=" } else { "~" }, &count, &id, "f", &count]),
        3 => v(&["XDEL", "s", &id]),
        4 => v(&["XTRIM", "s", if b[3] & 1 == 0 { "MAXLEN" } else { "MINID" }, &count]),
        5 => v(&["XSETID", "s", &id]),
        6 => v(&["XGROUP", "CREATE", "s", &group, &id, "MKSTREAM"]),
        7 => v(&["XGROUP", "SETID", "s", &group, &id]),
        8 => v(&["XGROUP", "DESTROY", "s", &group]),
        9 => v(&["XGROUP", "DELCONSUMER", "s", &group, &consumer]),
        10 | 11 => v(&["XREADGROUP", "GROUP", &group, &consumer, "COUNT", &count, "STREAMS", "s", ">"]),
        12 => v(&["XREADGROUP", "GROUP", &group, &consumer, "STREAMS", "s", &id]),
        13 => v(&["XACK", "s", &group, &id]),
        14 => v(&["XCLAIM", "s", &group, &consumer, "0", &id, "FORCE", "JUSTID"]),
        _ => v(&["XAUTOCLAIM", "s", &group, &consumer, "0", &id, "COUNT", &count]),
    };
    if b[0] >= 128 {
        c.push("NOACK".into());
    }
    c
}

fn len_of(f: &Frame) -> usize {
    match f {
        Frame::Array(items) => items.len(),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut master = Node::new();
    master.eng.feed.enabled = true;
    let _ = master.eng.feed.take();
    for b in data.chunks_exact(4).take(200) {
        let args = command(b);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        master.run(&refs);
    }
    let entries = master.entries();
    if let Frame::Integer(n) = master.run(&["XLEN", "s"]) {
        assert_eq!(n as usize, len_of(&entries));
    }
    let (feed, _) = master.eng.feed.take();
    let mut replica = Node::new();
    let mut pos = 0;
    while let Some((Frame::Array(parts), n)) = Frame::decode(&feed[pos..]).expect("feed decodes") {
        pos += n;
        let args: Vec<String> = parts
            .into_iter()
            .map(|p| match p {
                Frame::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("{other:?}"),
            })
            .collect();
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        replica.run(&refs);
    }
    assert_eq!(entries, replica.entries());
    for group in GROUPS {
        let listed = master.pending(group);
        if let Frame::Array(summary) = master.run(&["XPENDING", "s", group]) {
            if let Some(Frame::Integer(n)) = summary.first() {
                assert_eq!(*n as usize, len_of(&listed));
            }
        }
        // Owners and IDs (delivery counts and times are the master's business, as in Redis).
        let owners = |f: Frame| -> Vec<Frame> {
            match f {
                Frame::Array(rows) => rows
                    .into_iter()
                    .map(|r| match r {
                        Frame::Array(p) => Frame::Array(p.into_iter().take(2).collect()),
                        other => other,
                    })
                    .collect(),
                _ => vec![],
            }
        };
        assert_eq!(owners(listed), owners(replica.pending(group)), "group {group}");
    }
});
