//! Real cluster bus bytes from Debian's redis-server 7.0: the test plays a cluster node.
//! Two real nodes A and B are met; then A is told to MEET the test's own bus port. A's
//! MEET, PINGs (gossiping about B) and a PUBLISH are decoded and re-encoded byte for byte,
//! and the test's PONG, built with our encoder, completes A's handshake: A then lists the
//! fake node under its real id with the slots its PONG claimed.

mod support;

use ferrokv_cluster::bus::{self, flags_of_myself, Body, Extension, Header, Message, SlotBitmap};
use ferrokv_cluster::nodes_conf::flags;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use support::{redis_server, wait_for, ClusterRedis, Reply};

const FAKE_ID: &str = "f00df00df00df00df00df00df00df00df00df00d";

fn read_message(stream: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> Option<(Vec<u8>, Message)> {
    loop {
        if let Some(len) = bus::frame_len(buf, 1 << 20).expect("a well-framed stream") {
            if buf.len() >= len {
                let bytes: Vec<u8> = buf.drain(..len).collect();
                let msg = bus::decode(&bytes).unwrap_or_else(|e| panic!("real bytes do not decode: {e}"));
                return Some((bytes, msg));
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn decodes_and_speaks_redis_cluster_bus() {
    let Some(program) = redis_server() else { return };
    // A gossips about one random node other than itself per PING (with three nodes that
    // can be the receiver itself), so the check below needs several PINGs: a short node
    // timeout makes A ping every node each second (Redis pings a node whose PONG is older
    // than half the timeout); with the default, a PING every other second at best.
    let a = ClusterRedis::start(
        &program,
        &["--cluster-announce-hostname", "node-a.test", "--cluster-node-timeout", "2000"],
    );
    let b = ClusterRedis::start(&program, &["--cluster-node-timeout", "2000"]);
    let (mut ca, mut cb) = (a.client(), b.client());
    assert_eq!(ca.call(&["CLUSTER", "ADDSLOTSRANGE", "0", "99"]).expect("addslots"), Reply::Status("OK".into()));
    assert_eq!(
        ca.call(&["CLUSTER", "MEET", "127.0.0.1", &b.port.to_string()]).expect("meet"),
        Reply::Status("OK".into())
    );
    let id_a = ca.call(&["CLUSTER", "MYID"]).expect("myid").text();
    let id_b = cb.call(&["CLUSTER", "MYID"]).expect("myid").text();
    wait_for(Duration::from_secs(20), "A and B to complete their handshake", || {
        let nodes = ca.call(&["CLUSTER", "NODES"]).expect("nodes").text();
        (nodes.contains(&id_b) && !nodes.contains("handshake")).then_some(())
    });

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let fake_port = listener.local_addr().expect("addr").port();
    let meet = ca.call(&["CLUSTER", "MEET", "127.0.0.1", &fake_port.to_string(), &fake_port.to_string()]);
    assert_eq!(meet.expect("meet"), Reply::Status("OK".into()));
    listener.set_nonblocking(true).expect("nonblocking");
    let mut stream =
        wait_for(Duration::from_secs(10), "A to connect to the fake bus port", || listener.accept().ok()).0;
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = Vec::new();

    let (bytes, meet) = read_message(&mut stream, &mut buf, deadline).expect("A sends MEET");
    assert_eq!(bus::encode(&meet), bytes, "re-encoding changes the bytes");
    let h = &meet.header;
    assert!(matches!(meet.body, Body::Meet { .. }), "{:?}", meet.body);
    assert_eq!(bus::name_to_string(&h.sender), id_a);
    assert_eq!((h.port, h.cport), (a.port, a.port + 10000));
    assert_eq!(h.replica_of, None);
    assert_eq!(h.flags, flags_of_myself(flags::MASTER));
    assert_eq!(h.myslots.slots().collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
    let (_, exts) = meet.body.ping_data().expect("ping data");
    assert!(exts.contains(&Extension::Hostname("node-a.test".into())), "{exts:?}");

    // Our PONG, from our encoder, claiming slots 100..=199 with config epoch 0.
    let mut myslots = SlotBitmap::default();
    for s in 100..200 {
        myslots.set(s, true);
    }
    let pong = Message {
        header: Header {
            port: fake_port,
            current_epoch: h.current_epoch,
            config_epoch: 0,
            offset: 0,
            sender: bus::name_from_str(FAKE_ID),
            myslots,
            replica_of: None,
            myip: String::new(),
            pport: 0,
            cport: fake_port,
            flags: flags::MASTER,
            state: 0,
            mflags: [0; 3],
        },
        body: Body::Pong { gossip: vec![], extensions: vec![Extension::Hostname("fake.test".into())] },
    };
    stream.write_all(&bus::encode(&pong)).expect("send PONG");

    // A goes on pinging; the fake node answers each PING. A then takes the PONG's slots and
    // hostname, its PINGs gossip about B, and a PUBLISH on A reaches every node.
    let (mut accepted, mut gossip_about_b, mut published, mut asked_publish) = (false, false, false, false);
    let mut last_nodes = String::new();
    while !(accepted && gossip_about_b && published) {
        assert!(
            Instant::now() < deadline,
            "within 15 s: accepted {accepted}, gossip about B {gossip_about_b}, PUBLISH {published}; A's CLUSTER NODES:\n{last_nodes}"
        );
        if let Some((bytes, msg)) = read_message(&mut stream, &mut buf, Instant::now() + Duration::from_millis(100)) {
            assert_eq!(bus::encode(&msg), bytes, "re-encoding changes the bytes of type {}", msg.body.kind());
            match &msg.body {
                Body::Ping { gossip, .. } => {
                    if let Some(g) = gossip.iter().find(|g| bus::name_to_string(&g.name) == id_b) {
                        assert_eq!((g.ip.as_str(), g.port, g.cport), ("127.0.0.1", b.port, b.port + 10000));
                        assert_eq!(g.flags, flags::MASTER);
                        gossip_about_b = true;
                    }
                    let mut reply = pong.clone();
                    reply.header.current_epoch = msg.header.current_epoch;
                    stream.write_all(&bus::encode(&reply)).expect("send PONG");
                }
                Body::Publish { channel, message } => {
                    assert_eq!((channel.as_slice(), message.as_slice()), (&b"news"[..], &b"hello bus"[..]));
                    published = true;
                }
                _ => {}
            }
        }
        if !accepted {
            last_nodes = ca.call(&["CLUSTER", "NODES"]).expect("nodes").text();
            accepted = last_nodes.lines().any(|l| {
                l.starts_with(FAKE_ID)
                    && l.contains(&format!("127.0.0.1:{fake_port}@{fake_port},fake.test master -"))
                    && l.ends_with(" 100-199")
            });
        }
        if accepted && !asked_publish {
            assert_eq!(ca.call(&["PUBLISH", "news", "hello bus"]).expect("publish"), Reply::Int(0));
            asked_publish = true;
        }
    }
}
