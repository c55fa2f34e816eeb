//! The state machine as a member of a real Redis 7.0 cluster: a minimal blocking driver in
//! this test runs one `Cluster` on a bus port of its own. Three Debian redis-server masters
//! and our node meet; our node becomes a replica of one of them; that master is killed; the
//! real masters must vote for our node and hand it the dead master's slots.

mod support;

use ferrokv_cluster::bus::{self, NodeName};
use ferrokv_cluster::state::{Cluster, ClusterState, LinkId, Origin, Output, Settings};
use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use support::{redis_server, ClusterRedis, Reply};

const NODE_TIMEOUT: u64 = 2000;

struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> std::io::Result<Conn> {
        stream.set_nonblocking(true)?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::new() })
    }

    /// Whole messages read so far; Err when the connection is closed or broken.
    fn read_messages(&mut self) -> Result<Vec<bus::Message>, ()> {
        let mut chunk = [0u8; 16384];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => return Err(()),
            }
        }
        let mut out = Vec::new();
        while let Some(len) = bus::frame_len(&self.buf, 1 << 20).map_err(|_| ())? {
            if self.buf.len() < len {
                break;
            }
            let bytes: Vec<u8> = self.buf.drain(..len).collect();
            // Redis drops a malformed message and keeps the link.
            if let Ok(msg) = bus::decode(&bytes) {
                out.push(msg);
            }
        }
        Ok(out)
    }

    fn send(&mut self, msg: &bus::Message) -> bool {
        self.stream.set_nonblocking(false).is_ok()
            && self.stream.write_all(&bus::encode(msg)).is_ok()
            && self.stream.set_nonblocking(true).is_ok()
    }
}

/// Our node: the state machine, its listener, its links.
struct Node {
    core: Cluster,
    listener: TcpListener,
    inbound: HashMap<LinkId, Conn>,
    outbound: HashMap<NodeName, Conn>,
    next_link: LinkId,
    start: Instant,
    next_tick: u64,
    events: Vec<Output>,
}

impl Node {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64 + 1
    }

    fn apply(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, msg } => {
                    if !self.outbound.contains_key(&to) {
                        let Some(node) = self.core.node(&to) else { continue };
                        let addr = format!("{}:{}", node.ip, node.cport);
                        let conn = addr
                            .parse()
                            .ok()
                            .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_millis(200)).ok())
                            .and_then(|s| Conn::new(s).ok());
                        match conn {
                            Some(c) => {
                                self.outbound.insert(to, c);
                            }
                            None => {
                                self.core.link_closed(&to);
                                continue;
                            }
                        }
                    }
                    let sent = self.outbound.get_mut(&to).is_some_and(|c| c.send(&msg));
                    if !sent {
                        self.outbound.remove(&to);
                        self.core.link_closed(&to);
                    }
                }
                Output::Reply { link, msg } => {
                    if let Some(c) = self.inbound.get_mut(&link) {
                        if !c.send(&msg) {
                            self.inbound.remove(&link);
                        }
                    }
                }
                Output::CloseLink(name) => {
                    self.outbound.remove(&name);
                }
                Output::SaveConfig { .. } => {}
                other => self.events.push(other),
            }
        }
    }

    /// One round: accept, read every link, tick when due.
    fn pump(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if let Ok(conn) = Conn::new(stream) {
                self.next_link += 1;
                self.inbound.insert(self.next_link, conn);
            }
        }
        let links: Vec<LinkId> = self.inbound.keys().copied().collect();
        for link in links {
            let Some(conn) = self.inbound.get_mut(&link) else { continue };
            match conn.read_messages() {
                Ok(msgs) => {
                    for msg in msgs {
                        let origin =
                            Origin::Inbound { link, peer_ip: "127.0.0.1".into(), local_ip: "127.0.0.1".into() };
                        let now = self.now();
                        let out = self.core.handle(now, origin, msg);
                        self.apply(out);
                    }
                }
                Err(()) => {
                    self.inbound.remove(&link);
                }
            }
        }
        let names: Vec<NodeName> = self.outbound.keys().copied().collect();
        for name in names {
            let Some(conn) = self.outbound.get_mut(&name) else { continue };
            match conn.read_messages() {
                Ok(msgs) => {
                    for msg in msgs {
                        let now = self.now();
                        let out = self.core.handle(now, Origin::Outbound { node: name }, msg);
                        self.apply(out);
                    }
                }
                Err(()) => {
                    self.outbound.remove(&name);
                    self.core.link_closed(&name);
                }
            }
        }
        let now = self.now();
        if now >= self.next_tick {
            self.next_tick = now + 100;
            let out = self.core.tick(now);
            self.apply(out);
        }
    }

    /// Pumps until `done` (checked every 100 ms) holds, at most `limit`.
    fn run_until(&mut self, limit: Duration, what: &str, mut done: impl FnMut(&mut Node) -> bool) {
        let deadline = Instant::now() + limit;
        let mut next_check = Instant::now();
        loop {
            self.pump();
            if Instant::now() >= next_check {
                if done(self) {
                    return;
                }
                next_check = Instant::now() + Duration::from_millis(100);
            }
            assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn call(port: u16, args: &[&str]) -> String {
    support::Client::connect(port).and_then(|mut c| c.call(args)).map(|r| r.text()).unwrap_or_default()
}

/// The CLUSTER NODES line of node `id` as `port` sees it.
fn line_about(port: u16, id: &str) -> Option<String> {
    call(port, &["CLUSTER", "NODES"]).lines().find(|l| l.starts_with(id)).map(str::to_string)
}

#[test]
fn our_replica_is_elected_by_real_masters() {
    let Some(program) = redis_server() else { return };
    let timeout = NODE_TIMEOUT.to_string();
    let extra = ["--cluster-node-timeout", timeout.as_str()];
    let mut a = ClusterRedis::start(&program, &extra);
    let b = ClusterRedis::start(&program, &extra);
    let c = ClusterRedis::start(&program, &extra);
    for (server, range) in [(&a, ["0", "5460"]), (&b, ["5461", "10922"]), (&c, ["10923", "16383"])] {
        let reply = server.client().call(&["CLUSTER", "ADDSLOTSRANGE", range[0], range[1]]).expect("addslots");
        assert_eq!(reply, Reply::Status("OK".into()));
    }
    for other in [&b, &c] {
        assert_eq!(call(a.port, &["CLUSTER", "MEET", "127.0.0.1", &other.port.to_string()]), "OK");
    }
    let ids: Vec<String> = [&a, &b, &c].iter().map(|s| call(s.port, &["CLUSTER", "MYID"])).collect();

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let mut settings = Settings::new(port, 42);
    settings.cport = port;
    settings.ip = "127.0.0.1".into();
    settings.node_timeout = NODE_TIMEOUT;
    let start = Instant::now();
    let core = Cluster::new(settings, 1);
    let my_id = bus::name_to_string(&core.myself_name());
    let mut node = Node {
        core,
        listener,
        inbound: HashMap::new(),
        outbound: HashMap::new(),
        next_link: 0,
        start,
        next_tick: 0,
        events: vec![],
    };
    let out = node.core.meet(node.now(), "127.0.0.1", a.port, a.port + 10000);
    node.apply(out);

    node.run_until(Duration::from_secs(30), "everyone to know everyone and the cluster to be ok", |n| {
        let ours_ok = n.core.state() == ClusterState::Ok
            && ids.iter().all(|id| n.core.node(&bus::name_from_str(id)).is_some_and(|x| !x.in_handshake()));
        ours_ok
            && [&a, &b, &c].iter().all(|s| {
                line_about(s.port, &my_id).is_some_and(|l| l.contains(" master - ") && l.contains(" connected"))
                    && call(s.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            })
    });
    let owner = node.core.slot_owner(0).map(|n| bus::name_to_string(&n));
    assert_eq!(owner.as_deref(), Some(ids[0].as_str()), "we see A's slots");

    let out = node.core.replicate(bus::name_from_str(&ids[0])).expect("replicate A");
    node.apply(out);
    node.run_until(Duration::from_secs(20), "the real nodes to see us as A's replica", |_| {
        [&a, &b, &c]
            .iter()
            .all(|s| line_about(s.port, &my_id).is_some_and(|l| l.contains(&format!(" slave {}", ids[0]))))
    });

    // A dies: B and C fail it and must vote for us.
    let _ = a.child.kill();
    let _ = a.child.wait();
    node.run_until(Duration::from_secs(30), "B and C to hand A's slots to us", |_| {
        [&b, &c].iter().all(|s| {
            line_about(s.port, &my_id).is_some_and(|l| l.contains(" master - ") && l.ends_with(" 0-5460"))
                && line_about(s.port, &ids[0]).is_some_and(|l| l.contains("fail"))
        })
    });
    assert!(node.events.contains(&Output::BecomeMaster), "{:?}", node.events);
    assert!(node.core.myself().is_master());
    assert!(node.core.myself().config_epoch > 0);
    node.run_until(Duration::from_secs(20), "every side to see the cluster ok", |n| {
        n.core.state() == ClusterState::Ok
            && [&b, &c].iter().all(|s| call(s.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    });
}

#[test]
fn a_real_replica_is_elected_with_our_vote() {
    // Masters: real A, our node (slots 5461-10922), real C; real R replicates A. When A
    // dies, R needs two votes of the three masters: C's and ours.
    let Some(program) = redis_server() else { return };
    let timeout = NODE_TIMEOUT.to_string();
    let extra = ["--cluster-node-timeout", timeout.as_str()];
    let mut a = ClusterRedis::start(&program, &extra);
    let c = ClusterRedis::start(&program, &extra);
    let r = ClusterRedis::start(&program, &extra);
    assert_eq!(call(a.port, &["CLUSTER", "ADDSLOTSRANGE", "0", "5460"]), "OK");
    assert_eq!(call(c.port, &["CLUSTER", "ADDSLOTSRANGE", "10923", "16383"]), "OK");
    for other in [&c, &r] {
        assert_eq!(call(a.port, &["CLUSTER", "MEET", "127.0.0.1", &other.port.to_string()]), "OK");
    }
    let id_a = call(a.port, &["CLUSTER", "MYID"]);
    let id_r = call(r.port, &["CLUSTER", "MYID"]);

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let mut settings = Settings::new(port, 7);
    settings.cport = port;
    settings.ip = "127.0.0.1".into();
    settings.node_timeout = NODE_TIMEOUT;
    let start = Instant::now();
    let mut core = Cluster::new(settings, 1);
    let out = core.add_slots(5461..=10922);
    assert!(matches!(out.as_slice(), [Output::SaveConfig { .. }]), "{out:?}");
    let my_id = bus::name_to_string(&core.myself_name());
    let mut node = Node {
        core,
        listener,
        inbound: HashMap::new(),
        outbound: HashMap::new(),
        next_link: 0,
        start,
        next_tick: 0,
        events: vec![],
    };
    let out = node.core.meet(node.now(), "127.0.0.1", a.port, a.port + 10000);
    node.apply(out);
    node.run_until(Duration::from_secs(30), "the four nodes to form an ok cluster", |n| {
        n.core.state() == ClusterState::Ok
            && n.core.nodes().iter().filter(|x| !x.in_handshake()).count() == 4
            && [&a, &c, &r].iter().all(|s| {
                line_about(s.port, &my_id).is_some_and(|l| l.ends_with(" 5461-10922"))
                    && call(s.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            })
    });
    assert_eq!(call(r.port, &["CLUSTER", "REPLICATE", &id_a]), "OK");
    node.run_until(Duration::from_secs(20), "everyone to see R as A's replica", |n| {
        n.core.node(&bus::name_from_str(&id_r)).is_some_and(|x| x.replica_of == Some(bus::name_from_str(&id_a)))
            && line_about(c.port, &id_r).is_some_and(|l| l.contains(&format!(" slave {id_a}")))
            && call(r.port, &["INFO", "replication"]).contains("master_link_status:up")
    });

    let _ = a.child.kill();
    let _ = a.child.wait();
    node.run_until(Duration::from_secs(30), "R to be elected and hold A's slots everywhere", |n| {
        let r_name = bus::name_from_str(&id_r);
        n.core.slot_owner(0) == Some(r_name)
            && n.core.node(&r_name).is_some_and(|x| x.is_master())
            && line_about(c.port, &id_r).is_some_and(|l| l.contains(" master - ") && l.ends_with(" 0-5460"))
            && line_about(r.port, &id_r).is_some_and(|l| l.contains("myself,master"))
    });
    assert!(node.core.last_vote_epoch() > 0, "we voted");
    assert!(node.core.node(&bus::name_from_str(&id_a)).is_some_and(|x| x.failing()));
    node.run_until(Duration::from_secs(20), "every side to see the cluster ok", |n| {
        n.core.state() == ClusterState::Ok
            && [&c, &r].iter().all(|s| call(s.port, &["CLUSTER", "INFO"]).contains("cluster_state:ok"))
    });
}
