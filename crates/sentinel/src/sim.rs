//! Whole-system tests with virtual time: several sentinel state machines and scripted
//! fake Redis instances on a simulated loopback network that can lose instances, freeze
//! them, partition sentinels and jump the clock. No sockets, no threads, deterministic.

use crate::env::Output;
use crate::instance::LinkId;
use crate::sentinel::{MemoryPersist, Sentinel};
use ferrokv_resp::{Frame, ReplyBuf};
use std::collections::{HashMap, HashSet, VecDeque};

mod sync_failover;

/// Virtual time advances in steps of this many ms.
const TICK: i64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Endpoint {
    Redis(usize),
    Sentinel(usize),
}

struct FakeRedis {
    port: u16,
    runid: String,
    up: bool,
    /// Accepts connections, never answers (a stopped process, a black-holed host).
    frozen: bool,
    /// None: master. Some(port): replica of 127.0.0.1:port.
    master_of: Option<u16>,
    offset: u64,
    priority: i64,
    /// Answers PING with -LOADING (a restarted master loading its data).
    loading: bool,
    /// Replication history (INFO's master_replid, master_replid2, second_repl_offset).
    replid: String,
    replid2: Option<String>,
    second_offset: i64,
    /// ferrokv's `sync-replicas` and `sync-replicas-lease-ms` (0: Redis's asynchronous mode).
    sync_replicas: u32,
    lease_ms: i64,
    /// REPLFREEZE: frozen until this time (0: not frozen).
    frozen_until: i64,
    /// A Redis replica: REPLFREEZE is an unknown command.
    no_replfreeze: bool,
    /// The next REPLFREEZE is applied, but the connection breaks before its reply.
    lose_freeze_reply: bool,
    /// INFO reports this offset instead of the real one (INFO taken before it caught up).
    info_offset: Option<u64>,
    /// ferrokv's empty-master guard: refuses the full sync of its master, which came back
    /// empty.
    refusing_empty_master: bool,
}

impl FakeRedis {
    fn replfrozen(&self, now: i64) -> bool {
        now < self.frozen_until
    }
}

struct Conn {
    to: Endpoint,
    multi: Option<Vec<Vec<Vec<u8>>>>,
    subscribed: bool,
}

struct Node {
    core: Sentinel,
    port: u16,
    up: bool,
    saved: MemoryPersist,
    /// Each sentinel's timer fires every 50-100 ms at random, as Redis varies its hz, so
    /// sentinels do not act in lockstep.
    next_tick: i64,
}

enum Delivery {
    Connected(LinkId),
    Frame(LinkId, Frame),
    Closed(LinkId),
}

struct Sim {
    now: i64,
    nodes: Vec<Node>,
    redis: Vec<FakeRedis>,
    conns: HashMap<(usize, LinkId), Conn>,
    /// (sentinel, endpoint) pairs that cannot talk.
    blocked: HashSet<(usize, Endpoint)>,
    deliveries: VecDeque<(usize, Delivery)>,
    rng: fastrand::Rng,
    /// All timers fire at the same instants and nothing is delivered in between: the
    /// worst case for elections.
    lockstep: bool,
    /// Every published event: (sentinel, channel, message).
    events: Vec<(usize, String, String)>,
    /// Every role-changing command an instance executed: (instance, command line, time).
    admin: Vec<(usize, String, i64)>,
    /// When each of `events` was published.
    event_at: Vec<i64>,
    next_replid: u64,
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

impl Sim {
    /// One master (port 6379) with `replicas` replicas (6380…), `sentinels` sentinels
    /// (26379…) monitoring it with `quorum`, down-after 1000 ms, failover-timeout 5000 ms.
    fn new(replicas: usize, sentinels: usize, quorum: i64) -> Sim {
        let mut sim = Sim {
            now: 1_000_000,
            nodes: Vec::new(),
            redis: Vec::new(),
            conns: HashMap::new(),
            blocked: HashSet::new(),
            deliveries: VecDeque::new(),
            rng: fastrand::Rng::with_seed(7),
            lockstep: false,
            events: Vec::new(),
            admin: Vec::new(),
            event_at: Vec::new(),
            next_replid: 1,
        };
        for k in 0..=replicas {
            sim.redis.push(FakeRedis {
                port: 6379 + k as u16,
                runid: format!("{:040}", k + 1),
                up: true,
                frozen: false,
                master_of: if k == 0 { None } else { Some(6379) },
                offset: 1000,
                priority: 100,
                loading: false,
                replid: format!("{:040}", 0),
                replid2: None,
                second_offset: -1,
                sync_replicas: 0,
                lease_ms: 500,
                frozen_until: 0,
                no_replfreeze: false,
                lose_freeze_reply: false,
                info_offset: None,
                refusing_empty_master: false,
            });
        }
        for j in 0..sentinels {
            let saved = MemoryPersist::default();
            let mut core = Sentinel::new(sim.now, 42 + j as u64, Box::new(saved.clone()));
            core.env.settings.port = 26379 + j as u16;
            let conf = [
                args(&["monitor", "mymaster", "127.0.0.1", "6379", &quorum.to_string()]),
                args(&["down-after-milliseconds", "mymaster", "1000"]),
                args(&["failover-timeout", "mymaster", "5000"]),
            ];
            for line in conf {
                crate::persist::apply(&mut core, &line, sim.now).unwrap();
            }
            core.start(sim.now);
            let next_tick = sim.now + sim.rng.i64(0..100);
            sim.nodes.push(Node { core, port: 26379 + j as u16, up: true, saved, next_tick });
        }
        sim.pump();
        sim
    }

    fn endpoint(&self, port: u16) -> Option<Endpoint> {
        if let Some(r) = self.redis.iter().position(|r| r.port == port) {
            return Some(Endpoint::Redis(r));
        }
        self.nodes.iter().position(|n| n.port == port).map(Endpoint::Sentinel)
    }

    fn reachable(&self, from: usize, to: Endpoint) -> bool {
        if self.blocked.contains(&(from, to)) {
            return false;
        }
        if let Endpoint::Sentinel(j) = to {
            if self.blocked.contains(&(j, Endpoint::Sentinel(from))) {
                return false;
            }
        }
        match to {
            Endpoint::Redis(r) => self.redis[r].up,
            Endpoint::Sentinel(j) => self.nodes[j].up,
        }
    }

    fn run(&mut self, ms: i64) {
        let end = self.now + ms;
        while self.now < end {
            self.now += TICK;
            if self.lockstep {
                if self.now % 100 == 0 {
                    for j in 0..self.nodes.len() {
                        let now = self.now;
                        if self.nodes[j].up {
                            self.nodes[j].core.tick(now);
                        }
                    }
                    self.pump();
                }
                continue;
            }
            for j in 0..self.nodes.len() {
                if self.nodes[j].up && self.now >= self.nodes[j].next_tick {
                    let now = self.now;
                    self.nodes[j].core.tick(now);
                    self.nodes[j].next_tick = now + self.rng.i64(50..=100);
                    self.pump();
                }
            }
        }
    }

    /// Runs until `f` holds (checked every tick) or `ms` pass; true if it held.
    fn run_until(&mut self, ms: i64, mut f: impl FnMut(&Sim) -> bool) -> bool {
        let end = self.now + ms;
        while self.now < end {
            if f(self) {
                return true;
            }
            self.run(TICK);
        }
        f(self)
    }

    fn pump(&mut self) {
        loop {
            let mut progressed = false;
            for j in 0..self.nodes.len() {
                let outs: Vec<Output> = std::iter::from_fn(|| self.nodes[j].core.poll_output()).collect();
                for o in outs {
                    progressed = true;
                    self.handle_output(j, o);
                }
            }
            while let Some((j, d)) = self.deliveries.pop_front() {
                progressed = true;
                if !self.nodes[j].up {
                    continue;
                }
                let now = self.now;
                let core = &mut self.nodes[j].core;
                match d {
                    Delivery::Connected(l) => core.on_connected(l, Some("127.0.0.1".into()), now),
                    Delivery::Frame(l, f) => core.on_frame(l, f, now),
                    Delivery::Closed(l) => core.on_closed(l, now),
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn handle_output(&mut self, j: usize, o: Output) {
        match o {
            Output::Connect { link, port, .. } => match self.endpoint(port) {
                Some(to) if self.reachable(j, to) => {
                    self.conns.insert((j, link), Conn { to, multi: None, subscribed: false });
                    self.deliveries.push_back((j, Delivery::Connected(link)));
                }
                Some(to) if self.blocked.contains(&(j, to)) => {
                    // A partition: the connection attempt hangs.
                    self.conns.insert((j, link), Conn { to, multi: None, subscribed: false });
                }
                _ => self.deliveries.push_back((j, Delivery::Closed(link))),
            },
            Output::Close { link } => {
                self.conns.remove(&(j, link));
            }
            Output::Send { link, args } => self.deliver_command(j, link, args),
            Output::Event { channel, message, .. } => {
                self.events.push((j, channel, message));
                self.event_at.push(self.now);
            }
            Output::Log { .. } => {}
            Output::Crash => self.nodes[j].up = false,
        }
    }

    fn deliver_command(&mut self, j: usize, link: LinkId, args: Vec<Vec<u8>>) {
        let Some(conn) = self.conns.get(&(j, link)) else {
            return;
        };
        let to = conn.to;
        if !self.reachable(j, to) {
            return;
        }
        match to {
            Endpoint::Sentinel(k) => {
                if self.blocked.contains(&(k, Endpoint::Sentinel(j))) {
                    return;
                }
                let mut out = ReplyBuf::new(false);
                let now = self.now;
                if !self.nodes[k].core.command(&args, &mut out, now) {
                    // What the driver answers itself: PING, AUTH, CLIENT SETNAME.
                    let ping = args[0].eq_ignore_ascii_case(b"PING");
                    out.simple(if ping { "PONG" } else { "OK" });
                }
                if let Ok(Some((f, _))) = Frame::decode(&out.buf) {
                    self.deliveries.push_back((j, Delivery::Frame(link, f)));
                }
            }
            Endpoint::Redis(r) => {
                if self.redis[r].frozen {
                    return;
                }
                if let Some(reply) = self.redis_command(j, link, r, args) {
                    self.deliveries.push_back((j, Delivery::Frame(link, reply)));
                }
            }
        }
    }

    fn redis_command(&mut self, j: usize, link: LinkId, r: usize, args: Vec<Vec<u8>>) -> Option<Frame> {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let ok = Frame::Simple("OK".into());
        let conn = self.conns.get_mut(&(j, link))?;
        if let Some(q) = conn.multi.as_mut() {
            if name != "EXEC" {
                q.push(args);
                return Some(Frame::Simple("QUEUED".into()));
            }
        }
        match name.as_str() {
            "MULTI" => {
                conn.multi = Some(Vec::new());
                Some(ok)
            }
            "EXEC" => {
                let queued = conn.multi.take().unwrap_or_default();
                let mut replies = Vec::new();
                for q in queued {
                    replies.push(self.apply_admin(r, &q));
                }
                Some(Frame::Array(replies))
            }
            "SUBSCRIBE" => {
                conn.subscribed = true;
                Some(Frame::Array(vec![
                    Frame::Bulk("subscribe".into()),
                    Frame::Bulk(args[1].clone().into()),
                    Frame::Integer(1),
                ]))
            }
            "PING" if self.redis[r].loading => {
                Some(Frame::Error("LOADING Redis is loading the dataset in memory".into()))
            }
            "PING" => Some(Frame::Simple("PONG".into())),
            "INFO" => Some(Frame::Bulk(self.info(r).into())),
            "REPLFREEZE" => self.replfreeze(j, link, r, &args),
            "PUBLISH" => {
                let subs: Vec<(usize, LinkId)> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.subscribed && c.to == Endpoint::Redis(r))
                    .map(|(k, _)| *k)
                    .collect();
                for (k, l) in &subs {
                    if self.reachable(*k, Endpoint::Redis(r)) {
                        let msg = Frame::Array(vec![
                            Frame::Bulk("message".into()),
                            Frame::Bulk(args[1].clone().into()),
                            Frame::Bulk(args[2].clone().into()),
                        ]);
                        self.deliveries.push_back((*k, Delivery::Frame(*l, msg)));
                    }
                }
                Some(Frame::Integer(subs.len() as i64))
            }
            _ => Some(self.apply_admin(r, &args)),
        }
    }

    fn apply_admin(&mut self, r: usize, args: &[Vec<u8>]) -> Frame {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        if name == "SLAVEOF" || name == "FAILOVER" {
            let line: Vec<String> = args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
            self.admin.push((r, line.join(" "), self.now));
        }
        // FAILOVER TO host port …: the target (a replica of this master) takes over and
        // this master follows it, as the real handshake ends.
        if name == "FAILOVER" && args.len() >= 4 && args[1].eq_ignore_ascii_case(b"TO") {
            let port: u16 = String::from_utf8_lossy(&args[3]).parse().unwrap_or(0);
            let target = self.redis.iter().position(|x| x.port == port && x.master_of == Some(self.redis[r].port));
            return match target {
                Some(t) if self.redis[r].master_of.is_none() => {
                    self.redis[t].master_of = None;
                    self.redis[r].master_of = Some(port);
                    Frame::Simple("OK".into())
                }
                _ => Frame::Error("ERR FAILOVER target HOST and PORT is not a replica.".into()),
            };
        }
        if name == "SLAVEOF" && args.len() == 3 {
            // Ends a freeze and a refusal, as REPLICAOF does on ferrokv.
            self.redis[r].frozen_until = 0;
            self.redis[r].refusing_empty_master = false;
            if args[1].eq_ignore_ascii_case(b"NO") {
                if self.redis[r].master_of.is_some() {
                    // A promoted replica starts a new history continuing its old one.
                    let new = self.new_replid();
                    let me = &mut self.redis[r];
                    me.replid2 = Some(std::mem::replace(&mut me.replid, new));
                    me.second_offset = me.offset as i64 + 1;
                }
                self.redis[r].master_of = None;
            } else {
                let port: u16 = String::from_utf8_lossy(&args[2]).parse().unwrap_or(0);
                self.redis[r].master_of = Some(port);
                // It continues its new master's history (PSYNC).
                if let Some(m) = self.redis.iter().find(|x| x.port == port) {
                    self.redis[r].replid = m.replid.clone();
                }
            }
        }
        Frame::Simple("OK".into())
    }

    fn info(&self, r: usize) -> String {
        let me = &self.redis[r];
        let mut s = format!("# Server\r\nrun_id:{}\r\ntcp_port:{}\r\n\r\n# Replication\r\n", me.runid, me.port);
        match me.master_of {
            None => {
                s.push_str("role:master\r\n");
                let replicas: Vec<&FakeRedis> =
                    self.redis.iter().filter(|x| x.up && !x.frozen && x.master_of == Some(me.port)).collect();
                s.push_str(&format!("connected_slaves:{}\r\n", replicas.len()));
                for (k, x) in replicas.iter().enumerate() {
                    s.push_str(&format!(
                        "slave{k}:ip=127.0.0.1,port={},state=online,offset={},lag=0\r\n",
                        x.port, x.offset
                    ));
                }
                s.push_str(&self.history_fields(r));
                if me.sync_replicas > 0 {
                    let acking =
                        replicas.iter().filter(|x| !x.replfrozen(self.now) && !x.refusing_empty_master).count() as u32;
                    s.push_str(&format!(
                        "sync_replicas:{}\r\nsync_replicas_lease_ms:{}\r\nsync_replicas_acking:{acking}\r\nsync_committed_offset:{}\r\nsync_fenced:{}\r\n",
                        me.sync_replicas,
                        me.lease_ms,
                        me.offset,
                        (acking < me.sync_replicas) as i32
                    ));
                }
            }
            Some(mp) => {
                let master_ok = self.redis.iter().any(|x| x.port == mp && x.up && !x.frozen && x.master_of.is_none())
                    && !me.replfrozen(self.now)
                    && !me.refusing_empty_master;
                s.push_str(&format!(
                    "role:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:{mp}\r\nmaster_link_status:{}\r\n",
                    if master_ok { "up" } else { "down" }
                ));
                if !master_ok {
                    s.push_str("master_link_down_since_seconds:1\r\n");
                }
                let offset = me.info_offset.unwrap_or(me.offset);
                s.push_str(&format!("slave_repl_offset:{offset}\r\nslave_priority:{}\r\n", me.priority));
                s.push_str(&self.history_fields(r));
                s.push_str(&format!(
                    "sync_frozen:{}\r\nempty_master_refused:{}\r\n",
                    me.replfrozen(self.now) as i32,
                    me.refusing_empty_master as i32
                ));
            }
        }
        s
    }

    fn history_fields(&self, r: usize) -> String {
        let me = &self.redis[r];
        format!(
            "master_replid:{}\r\nmaster_replid2:{}\r\nmaster_repl_offset:{}\r\nsecond_repl_offset:{}\r\n",
            me.replid,
            me.replid2.clone().unwrap_or_else(|| "0".repeat(40)),
            me.offset,
            me.second_offset
        )
    }

    fn new_replid(&mut self) -> String {
        self.next_replid += 1;
        format!("{:040x}", self.next_replid)
    }

    /// REPLFREEZE as a ferrokv replica answers it: `[replid, offset]`.
    fn replfreeze(&mut self, j: usize, link: LinkId, r: usize, args: &[Vec<u8>]) -> Option<Frame> {
        let line: Vec<String> = args.iter().map(|a| String::from_utf8_lossy(a).into_owned()).collect();
        self.admin.push((r, line.join(" "), self.now));
        let now = self.now;
        let me = &mut self.redis[r];
        if me.no_replfreeze {
            return Some(Frame::Error("ERR unknown command 'REPLFREEZE', with args beginning with: ".into()));
        }
        if me.master_of.is_none() {
            return Some(Frame::Error("ERR REPLFREEZE is only valid on a replica".into()));
        }
        let ms: i64 = line.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
        me.frozen_until = if ms > 0 { now + ms } else { 0 };
        if std::mem::take(&mut me.lose_freeze_reply) {
            // The connection breaks before the reply: the sentinel sees it closed.
            self.conns.remove(&(j, link));
            self.deliveries.push_back((j, Delivery::Closed(link)));
            return None;
        }
        Some(Frame::Array(vec![Frame::Bulk(me.replid.clone().into()), Frame::Integer(me.offset as i64)]))
    }

    /// kill -9: the process is gone, its connections reset.
    fn kill(&mut self, r: usize) {
        self.redis[r].up = false;
        let gone: Vec<(usize, LinkId)> =
            self.conns.iter().filter(|(_, c)| c.to == Endpoint::Redis(r)).map(|(k, _)| *k).collect();
        for (j, l) in gone {
            self.conns.remove(&(j, l));
            self.deliveries.push_back((j, Delivery::Closed(l)));
        }
        self.pump();
    }

    /// Restarts a killed instance with its old configuration and a new run id.
    fn restart(&mut self, r: usize) {
        let me = &mut self.redis[r];
        me.up = true;
        me.runid = format!("{:040}", me.runid.parse::<u128>().unwrap_or(0) + 100);
    }

    fn isolate_sentinel(&mut self, j: usize) {
        for r in 0..self.redis.len() {
            self.blocked.insert((j, Endpoint::Redis(r)));
        }
        for k in 0..self.nodes.len() {
            if k != j {
                self.blocked.insert((j, Endpoint::Sentinel(k)));
                self.blocked.insert((k, Endpoint::Sentinel(j)));
            }
        }
    }

    /// Ends all partitions. Connections that crossed one lost bytes, so they are broken
    /// (a real TCP stream never delivers a later command after dropping an earlier one).
    fn heal(&mut self) {
        let broken: Vec<(usize, LinkId)> = self
            .conns
            .iter()
            .filter(|((j, _), c)| {
                self.blocked.contains(&(*j, c.to))
                    || matches!(c.to, Endpoint::Sentinel(k) if self.blocked.contains(&(k, Endpoint::Sentinel(*j))))
            })
            .map(|(k, _)| *k)
            .collect();
        for (j, l) in broken {
            self.conns.remove(&(j, l));
            self.deliveries.push_back((j, Delivery::Closed(l)));
        }
        self.blocked.clear();
        self.pump();
    }

    fn count(&self, channel: &str) -> usize {
        self.events.iter().filter(|(_, c, _)| c == channel).count()
    }

    fn sentinels_with(&self, channel: &str) -> HashSet<usize> {
        self.events.iter().filter(|(_, c, _)| c == channel).map(|(j, _, _)| *j).collect()
    }

    fn master_port(&self, j: usize) -> u16 {
        self.nodes[j].core.masters["mymaster"].current_addr().port
    }

    fn all_agree_on(&self, port: u16) -> bool {
        (0..self.nodes.len()).all(|j| !self.nodes[j].up || self.master_port(j) == port)
    }

    fn dump(&self) -> String {
        self.events.iter().map(|(j, c, m)| format!("S{j} {c} {m}")).collect::<Vec<_>>().join("\n")
    }
}

#[test]
fn sentinels_discover_each_other_and_replicas() {
    let mut sim = Sim::new(2, 3, 2);
    assert!(sim.run_until(10_000, |s| s.nodes.iter().all(|n| {
        let m = &n.core.masters["mymaster"];
        m.sentinels.len() == 2 && m.replicas.len() == 2
    })));
    assert!(sim.count("+sentinel") >= 6, "{}", sim.dump());
    assert_eq!(sim.count("+sdown"), 0);
}

#[test]
fn killed_master_goes_sdown_then_odown() {
    let mut sim = Sim::new(2, 3, 2);
    sim.run(5_000);
    let killed_at = sim.now;
    sim.kill(0);
    assert!(sim.run_until(5_000, |s| s.sentinels_with("+odown").len() >= 2), "{}", sim.dump());
    let first_sdown = sim.events.iter().position(|(_, c, m)| c == "+sdown" && m.starts_with("master")).unwrap();
    let first_odown = sim.events.iter().position(|(_, c, _)| c == "+odown").unwrap();
    assert!(first_sdown < first_odown);
    assert!(sim.events.iter().any(|(_, c, m)| c == "+odown" && m.contains(" #quorum ") && m.ends_with("/2")));
    // Not before down-after-milliseconds.
    assert!(sim.now - killed_at >= 1000);
}

#[test]
fn failover_promotes_the_most_advanced_replica_and_everyone_follows() {
    let mut sim = Sim::new(2, 3, 2);
    sim.redis[2].offset = 2000;
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.sentinels_with("+switch-master").len() == 3), "{}", sim.dump());
    assert!(sim.all_agree_on(6381));
    assert_eq!(sim.redis[2].master_of, None);
    assert!(sim.run_until(10_000, |s| s.redis[1].master_of == Some(6381)), "{}", sim.dump());
    sim.run(5_000);
    // Exactly one switch per sentinel: the new master is not mistaken for a dead one.
    assert_eq!(sim.count("+switch-master"), 3, "{}", sim.dump());
    assert!(!sim.events.iter().any(|(_, c, m)| c == "+sdown" && m.starts_with("master mymaster 127.0.0.1 6381")));
    assert_eq!(sim.count("+elected-leader"), 1, "{}", sim.dump());
    let switch = sim.events.iter().find(|(_, c, _)| c == "+switch-master").unwrap();
    assert_eq!(switch.2, "mymaster 127.0.0.1 6379 127.0.0.1 6381");
    let promoted = sim.events.iter().find(|(_, c, _)| c == "+promoted-slave").unwrap();
    assert_eq!(promoted.2, "slave 127.0.0.1:6381 127.0.0.1 6381 @ mymaster 127.0.0.1 6379");
    // The old master comes back and is turned into a replica of the new one.
    sim.restart(0);
    assert!(sim.run_until(20_000, |s| s.redis[0].master_of == Some(6381)), "{}", sim.dump());
    assert!(sim.count("+convert-to-slave") >= 1);
    // The saved state names the new master and the old one as a replica.
    let saved = sim.nodes[0].saved.0.lock().clone();
    assert!(saved.contains(&"sentinel monitor mymaster 127.0.0.1 6381 2".to_string()), "{saved:?}");
    assert!(saved.contains(&"sentinel known-replica mymaster 127.0.0.1 6379".to_string()), "{saved:?}");
}

#[test]
fn two_failovers_in_a_row() {
    let mut sim = Sim::new(2, 3, 2);
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.all_agree_on(6380) || s.all_agree_on(6381)), "{}", sim.dump());
    let first = sim.master_port(0);
    let other = if first == 6380 { 6381 } else { 6380 };
    assert!(sim.run_until(20_000, |s| s.redis[(other - 6379) as usize].master_of == Some(first)));
    let epoch1 = sim.nodes[0].core.masters["mymaster"].config_epoch;
    sim.run(3_000);
    sim.kill((first - 6379) as usize);
    assert!(sim.run_until(30_000, |s| s.all_agree_on(other)), "{}", sim.dump());
    let epoch2 = sim.nodes[0].core.masters["mymaster"].config_epoch;
    assert!(epoch2 > epoch1, "{epoch1} {epoch2}");
    assert_eq!(sim.count("+elected-leader"), 2, "{}", sim.dump());
}

#[test]
fn split_votes_are_retried_in_a_later_epoch() {
    let mut sim = Sim::new(2, 3, 2);
    sim.lockstep = true;
    sim.run(5_000);
    sim.kill(0);
    // Everyone sees ODOWN on the same tick and votes for itself: nobody wins epoch 1.
    assert!(sim.run_until(20_000, |s| s.count("-failover-abort-not-elected") >= 1), "{}", sim.dump());
    assert_eq!(sim.count("+elected-leader"), 0, "{}", sim.dump());
    // The random delay before the next attempt breaks the tie.
    assert!(sim.run_until(40_000, |s| s.sentinels_with("+switch-master").len() == 3), "{}", sim.dump());
    assert_eq!(sim.count("+elected-leader"), 1, "{}", sim.dump());
    assert!(sim.nodes[0].core.masters["mymaster"].config_epoch >= 2);
}

#[test]
fn a_partitioned_sentinel_cannot_fail_over_alone() {
    // Quorum 1 lets the isolated sentinel reach ODOWN by itself, but it cannot win the
    // election: two of three votes are needed.
    let mut sim = Sim::new(2, 3, 1);
    sim.run(5_000);
    sim.isolate_sentinel(0);
    sim.run(15_000);
    assert!(sim.events.iter().any(|(j, c, _)| *j == 0 && c == "+odown"), "{}", sim.dump());
    assert!(sim.events.iter().any(|(j, c, _)| *j == 0 && c == "-failover-abort-not-elected"), "{}", sim.dump());
    assert_eq!(sim.count("+elected-leader"), 0, "{}", sim.dump());
    assert_eq!(sim.count("+switch-master"), 0);
    assert!(sim.all_agree_on(6379));
    // The majority side never saw a problem.
    assert!(!sim.events.iter().any(|(j, c, m)| *j != 0 && c == "+sdown" && m.starts_with("master")), "{}", sim.dump());
    sim.heal();
    assert!(sim.run_until(10_000, |s| s.events.iter().any(|(j, c, _)| *j == 0 && c == "-odown")), "{}", sim.dump());
}

#[test]
fn majority_side_fails_over_and_the_healed_sentinel_adopts_the_new_config() {
    let mut sim = Sim::new(2, 3, 2);
    sim.run(5_000);
    // Sentinel 2 is cut off while the master dies; the other two fail over.
    sim.isolate_sentinel(2);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.master_port(0) != 6379 && s.master_port(1) == s.master_port(0)));
    let new = sim.master_port(0);
    assert_eq!(sim.master_port(2), 6379);
    sim.heal();
    // Its hello-borne config epoch is older: it switches when it hears theirs.
    assert!(sim.run_until(10_000, |s| s.master_port(2) == new), "{}", sim.dump());
    assert!(sim.events.iter().any(|(j, c, _)| *j == 2 && c == "+config-update-from"));
}

#[test]
fn tilt_on_clock_jump_suspends_acting() {
    let mut sim = Sim::new(1, 3, 2);
    sim.run(5_000);
    sim.kill(0);
    // Every sentinel stalls for five seconds (a suspended VM): the master looks long dead
    // but nobody may act on it.
    sim.now += 5_000;
    sim.run(TICK);
    assert_eq!(sim.sentinels_with("+tilt").len(), 3, "{}", sim.dump());
    sim.run(20_000);
    assert_eq!(sim.count("+sdown"), 0, "{}", sim.dump());
    assert_eq!(sim.nodes[0].core.info_section(sim.now).lines().nth(2), Some("sentinel_tilt:1"));
    // TILT ends after 30 s; then the dead master is handled normally.
    assert!(sim.run_until(20_000, |s| s.count("-tilt") == 3), "{}", sim.dump());
    assert!(sim.run_until(20_000, |s| s.all_agree_on(6380)), "{}", sim.dump());
}

#[test]
fn rebooted_master_that_stays_loading_is_failed_over() {
    let mut sim = Sim::new(1, 3, 2);
    for n in &mut sim.nodes {
        crate::persist::apply(&mut n.core, &args(&["master-reboot-down-after-period", "mymaster", "2000"]), sim.now)
            .unwrap();
    }
    sim.run(12_000);
    // It restarts faster than down-after and keeps answering -LOADING: without the reboot
    // period, Sentinel would wait forever.
    sim.kill(0);
    sim.restart(0);
    sim.redis[0].loading = true;
    assert!(sim.run_until(30_000, |s| s.all_agree_on(6380)), "{}", sim.dump());
    assert!(sim.count("+reboot") >= 1);
}

#[test]
fn frozen_master_is_demoted_when_it_wakes_up() {
    let mut sim = Sim::new(2, 3, 2);
    sim.run(5_000);
    sim.redis[0].frozen = true;
    assert!(sim.run_until(20_000, |s| s.all_agree_on(6380) || s.all_agree_on(6381)), "{}", sim.dump());
    let new = sim.master_port(0);
    sim.redis[0].frozen = false;
    assert!(sim.run_until(30_000, |s| s.redis[0].master_of == Some(new)), "{}", sim.dump());
}

#[test]
fn state_survives_a_restart_through_the_saved_lines() {
    let mut sim = Sim::new(2, 3, 2);
    assert!(sim.run_until(10_000, |s| s.nodes[0].core.masters["mymaster"].sentinels.len() == 2
        && s.nodes[0].core.masters["mymaster"].replicas.len() == 2));
    let saved = sim.nodes[0].saved.0.lock().clone();
    let mut lines: Vec<Vec<String>> = saved.iter().map(|l| l.split(' ').skip(1).map(String::from).collect()).collect();
    lines.sort_by_key(|l| crate::persist::phase(l));
    let mut fresh = Sentinel::new(sim.now, 7, Box::new(MemoryPersist::default()));
    for l in &lines {
        crate::persist::apply(&mut fresh, l, sim.now).unwrap();
    }
    fresh.start(sim.now);
    assert_eq!(fresh.myid(), sim.nodes[0].core.myid());
    let (a, b) = (&fresh.masters["mymaster"], &sim.nodes[0].core.masters["mymaster"]);
    assert_eq!(a.replicas.keys().collect::<Vec<_>>(), b.replicas.keys().collect::<Vec<_>>());
    assert_eq!(a.sentinels.keys().collect::<Vec<_>>(), b.sentinels.keys().collect::<Vec<_>>());
    assert_eq!(a.inst.down_after, 1000);
    assert_eq!(a.failover_timeout, 5000);
}

#[test]
fn sentinel_commands_reply_like_redis() {
    let mut sim = Sim::new(1, 2, 2);
    sim.run(5_000);
    let now = sim.now;
    let core = &mut sim.nodes[0].core;
    let mut out = ReplyBuf::new(false);
    let cmd = |a: &[&str]| a.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
    core.command(&cmd(&["SENTINEL", "get-master-addr-by-name", "mymaster"]), &mut out, now);
    assert_eq!(out.buf, b"*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6379\r\n");
    let mut out = ReplyBuf::new(false);
    core.command(&cmd(&["SENTINEL", "get-master-addr-by-name", "nope"]), &mut out, now);
    assert_eq!(out.buf, b"*-1\r\n");
    let mut out = ReplyBuf::new(true);
    core.command(&cmd(&["SENTINEL", "master", "mymaster"]), &mut out, now);
    let Ok(Some((Frame::Map(kv), _))) = Frame::decode(&out.buf) else { panic!("{:?}", out.buf) };
    let keys: Vec<String> = kv.iter().map(|(k, _)| String::from_utf8_lossy(k.as_bytes().unwrap()).into()).collect();
    assert_eq!(
        keys,
        [
            "name",
            "ip",
            "port",
            "runid",
            "flags",
            "link-pending-commands",
            "link-refcount",
            "last-ping-sent",
            "last-ok-ping-reply",
            "last-ping-reply",
            "down-after-milliseconds",
            "info-refresh",
            "role-reported",
            "role-reported-time",
            "config-epoch",
            "num-slaves",
            "num-other-sentinels",
            "quorum",
            "failover-timeout",
            "parallel-syncs"
        ]
    );
    assert_eq!(kv[4].1, Frame::Bulk("master".into()));
    let mut out = ReplyBuf::new(false);
    core.command(&cmd(&["SENTINEL", "ckquorum", "mymaster"]), &mut out, now);
    assert_eq!(out.buf, b"+OK 2 usable Sentinels. Quorum and failover authorization can be reached\r\n");
    let mut out = ReplyBuf::new(false);
    core.command(&cmd(&["SENTINEL", "masters", "x"]), &mut out, now);
    assert_eq!(out.buf, b"-ERR wrong number of arguments for 'sentinel|masters' command\r\n");
    let mut out = ReplyBuf::new(false);
    core.command(&cmd(&["SENTINEL", "failover", "mymaster"]), &mut out, now);
    assert_eq!(out.buf, b"+OK\r\n");
    let mut out = ReplyBuf::new(false);
    core.command(&cmd(&["SENTINEL", "failover", "mymaster"]), &mut out, now);
    assert_eq!(out.buf, b"-INPROG Failover already in progress\r\n");
    // The forced failover needs no agreement.
    assert!(sim.run_until(20_000, |s| s.all_agree_on(6380)), "{}", sim.dump());
}

#[test]
fn coordinated_failover_hands_over_through_the_masters_failover_command() {
    let mut sim = Sim::new(2, 3, 2);
    sim.redis[2].offset = 2000;
    sim.run(5_000);
    let now = sim.now;
    let mut out = ReplyBuf::new(false);
    let cmd: Vec<Vec<u8>> =
        ["SENTINEL", "failover", "mymaster", "coordinated"].iter().map(|s| s.as_bytes().to_vec()).collect();
    sim.nodes[0].core.command(&cmd, &mut out, now);
    assert_eq!(out.buf, b"+OK\r\n");
    assert!(sim.run_until(20_000, |s| s.all_agree_on(6381)), "{}", sim.dump());
    assert!(sim.run_until(10_000, |s| s.redis[1].master_of == Some(6381)), "{}", sim.dump());
    sim.run(5_000);
    // The master was asked to hand over; nobody was told SLAVEOF NO ONE; the old master is
    // a replica of the new one without being converted.
    assert_eq!(
        sim.admin.iter().filter(|(r, l, _)| *r == 0 && l.starts_with("FAILOVER TO 127.0.0.1 6381")).count(),
        1,
        "{:?}",
        sim.admin
    );
    assert!(!sim.admin.iter().any(|(_, l, _)| l == "SLAVEOF NO ONE"), "{:?}", sim.admin);
    assert_eq!(sim.redis[0].master_of, Some(6381));
    assert_eq!(sim.count("+switch-master"), 3, "{}", sim.dump());
    assert_eq!(sim.count("+convert-to-slave"), 0, "{}", sim.dump());
    // Only COORDINATED is accepted as a fourth argument.
    let mut out = ReplyBuf::new(false);
    let cmd: Vec<Vec<u8>> = ["SENTINEL", "failover", "mymaster", "x"].iter().map(|s| s.as_bytes().to_vec()).collect();
    sim.nodes[0].core.command(&cmd, &mut out, sim.now);
    assert_eq!(out.buf, b"-ERR wrong number of arguments for 'sentinel|failover' command\r\n");
}
