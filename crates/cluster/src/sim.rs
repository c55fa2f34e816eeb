//! Whole-cluster tests with virtual time: several [`Cluster`] state machines on a simulated
//! loopback network that can stop nodes, restart them from their saved nodes.conf (as a
//! process crash leaves it, or as a power loss does: its last fsynced version) and
//! partition them. Every message goes through the real bus codec. No sockets, no threads,
//! deterministic for a seed.
//!
//! Links behave like TCP connections: a partition stalls what is sent on them (delivered,
//! in order, when it heals) until the sender closes the link; a stopped node's links die
//! with everything in flight.

use crate::bus::{self, Body, Message, NodeName};
use crate::nodes_conf::{self, flags};
use crate::state::{Cluster, ClusterState, LinkId, Origin, Output, Settings};
use std::collections::{HashMap, HashSet, VecDeque};

mod chaos;
mod migration;
mod rules;

const NODE_TIMEOUT: u64 = 1000;
const STEP: u64 = 10;

struct SimNode {
    core: Cluster,
    up: bool,
    /// The last nodes.conf written, and the last one fsynced.
    saved: String,
    synced: String,
    next_tick: u64,
}

struct InFlight {
    from: usize,
    to: usize,
    link: LinkId,
    origin: Origin,
    bytes: Vec<u8>,
}

pub(crate) struct Sim {
    pub now: u64,
    seed: u64,
    nodes: Vec<SimNode>,
    /// Pairs (low, high) that cannot talk.
    blocked: HashSet<(usize, usize)>,
    queue: VecDeque<InFlight>,
    /// Stalled by a partition.
    held: Vec<InFlight>,
    /// Outbound links: id → (owner, the name the owner knows the peer by).
    links: HashMap<LinkId, (usize, NodeName)>,
    link_ids: HashMap<(usize, NodeName), LinkId>,
    /// Role changes and other events, for the assertions: (time, node, what).
    pub events: Vec<(u64, usize, Output)>,
    /// Every FAILOVER_AUTH_ACK sent: (voter, its current epoch).
    pub acks: Vec<(usize, u64)>,
    /// Applied to every node's settings, now and when it restarts (CONFIG SET).
    policy: fn(&mut Settings),
}

fn settings(index: usize, seed: u64, policy: fn(&mut Settings)) -> Settings {
    let port = 7000 + index as u16;
    let mut s = Settings::new(port, seed * 1000 + index as u64);
    s.ip = "127.0.0.1".into();
    s.node_timeout = NODE_TIMEOUT;
    policy(&mut s);
    s
}

fn name_of(index: usize) -> NodeName {
    bus::name_from_str(&format!("{:040x}", 0xa000 + index))
}

impl Sim {
    pub fn new(count: usize, seed: u64) -> Sim {
        let mut sim = Sim {
            seed,
            now: 1_000_000,
            nodes: Vec::new(),
            blocked: HashSet::new(),
            queue: VecDeque::new(),
            held: Vec::new(),
            links: HashMap::new(),
            link_ids: HashMap::new(),
            events: Vec::new(),
            acks: Vec::new(),
            policy: |_| {},
        };
        for i in 0..count {
            let core = Cluster::with_name(settings(i, seed, sim.policy), name_of(i), sim.now);
            // Timers start out of phase, as real nodes do.
            let next_tick = sim.now + (i as u64 * 37 + seed * 11) % 100;
            sim.nodes.push(SimNode { core, up: true, saved: String::new(), synced: String::new(), next_tick });
        }
        sim
    }

    pub fn core(&self, i: usize) -> &Cluster {
        &self.nodes[i].core
    }

    pub fn index_of(&self, name: &NodeName) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| name_of(i) == *name)
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.nodes[a].up && self.nodes[b].up && !self.blocked.contains(&(a.min(b), a.max(b)))
    }

    pub fn partition(&mut self, side: &[usize]) {
        for a in side {
            for b in 0..self.nodes.len() {
                if !side.contains(&b) {
                    self.blocked.insert((*a.min(&b), *a.max(&b)));
                }
            }
        }
    }

    pub fn heal(&mut self) {
        self.blocked.clear();
        for m in std::mem::take(&mut self.held).into_iter().rev() {
            self.queue.push_front(m);
        }
    }

    pub fn stop(&mut self, i: usize) {
        self.nodes[i].up = false;
        self.held.retain(|m| m.from != i && m.to != i);
    }

    /// Starts a stopped node again from the nodes.conf it last saved.
    pub fn restart(&mut self, i: usize) {
        self.restart_from(i, false);
    }

    /// Starts a stopped node again from the nodes.conf it last fsynced, as after a power
    /// loss (what was only written is gone).
    pub fn restart_after_power_loss(&mut self, i: usize) {
        self.restart_from(i, true);
    }

    fn restart_from(&mut self, i: usize, power_loss: bool) {
        let text = if power_loss { &self.nodes[i].synced } else { &self.nodes[i].saved };
        let conf = nodes_conf::parse("sim nodes.conf", text).expect("saved config parses");
        let settings = settings(i, self.seed, self.policy);
        self.nodes[i].core = Cluster::from_conf(settings, &conf, self.now).expect("saved config loads");
        self.nodes[i].up = true;
        self.link_ids.retain(|(owner, _), _| *owner != i);
    }

    fn link_id(&mut self, owner: usize, peer: NodeName) -> LinkId {
        let next = self.links.len() as LinkId + 1;
        let id = *self.link_ids.entry((owner, peer)).or_insert(next);
        self.links.insert(id, (owner, peer));
        id
    }

    fn apply(&mut self, from: usize, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Send { to, msg } => {
                    let Some(node) = self.nodes[from].core.node(&to) else { continue };
                    let Some(target) = node.cport.checked_sub(17000).map(usize::from) else { continue };
                    if target >= self.nodes.len() {
                        continue;
                    }
                    if matches!(msg.body, Body::FailoverAuthAck) {
                        self.acks.push((from, msg.header.current_epoch));
                    }
                    let link = self.link_id(from, to);
                    let origin = Origin::Inbound { link, peer_ip: "127.0.0.1".into(), local_ip: "127.0.0.1".into() };
                    self.queue.push_back(InFlight { from, to: target, link, origin, bytes: bus::encode(&msg) });
                }
                Output::Reply { link, msg } => {
                    let Some(&(owner, peer)) = self.links.get(&link) else { continue };
                    let origin = Origin::Outbound { node: peer };
                    self.queue.push_back(InFlight { from, to: owner, link, origin, bytes: bus::encode(&msg) });
                }
                Output::SaveConfig { fsync } => {
                    let node = &mut self.nodes[from];
                    node.saved = nodes_conf::render(&node.core.nodes_conf());
                    if fsync {
                        node.synced = node.saved.clone();
                    }
                }
                Output::CloseLink(peer) => {
                    if let Some(link) = self.link_ids.remove(&(from, peer)) {
                        self.held.retain(|m| m.link != link);
                    }
                }
                other => self.events.push((self.now, from, other)),
            }
        }
    }

    fn deliver(&mut self) {
        while let Some(m) = self.queue.pop_front() {
            if !self.nodes[m.from].up || !self.nodes[m.to].up {
                continue;
            }
            if !self.reachable(m.from, m.to) {
                self.held.push(m);
                continue;
            }
            let msg: Message = bus::decode(&m.bytes).expect("the sim only carries valid messages");
            let out = self.nodes[m.to].core.handle(self.now, m.origin, msg);
            self.apply(m.to, out);
        }
    }

    pub fn step(&mut self) {
        self.now += STEP;
        self.deliver();
        for i in 0..self.nodes.len() {
            if self.nodes[i].up && self.nodes[i].next_tick <= self.now {
                self.nodes[i].next_tick += 100;
                let out = self.nodes[i].core.tick(self.now);
                self.apply(i, out);
            }
        }
        self.deliver();
    }

    pub fn run(&mut self, ms: u64) {
        for _ in 0..ms / STEP {
            self.step();
        }
    }

    /// Runs until `done` holds (checked every step), at most `limit_ms`.
    pub fn run_until(&mut self, limit_ms: u64, mut done: impl FnMut(&Sim) -> bool) -> bool {
        for _ in 0..limit_ms / STEP {
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    pub fn meet(&mut self, i: usize, j: usize) {
        let out = self.nodes[i].core.meet(self.now, "127.0.0.1", 7000 + j as u16, 17000 + j as u16);
        self.apply(i, out);
    }

    pub fn add_slots(&mut self, i: usize, slots: std::ops::RangeInclusive<u16>) {
        let out = self.nodes[i].core.add_slots(slots);
        self.apply(i, out);
    }

    pub fn replicate(&mut self, replica: usize, master: usize) {
        let out = self.nodes[replica].core.replicate(name_of(master)).expect("replicate");
        self.apply(replica, out);
    }

    pub fn manual_failover(&mut self, i: usize, force: bool, takeover: bool) {
        let now = self.now;
        let out = self.nodes[i].core.manual_failover(now, force, takeover).expect("CLUSTER FAILOVER");
        self.apply(i, out);
    }

    /// As a CONFIG SET of cluster policies on every node.
    pub fn set_policy(&mut self, policy: fn(&mut Settings)) {
        self.policy = policy;
        for node in &mut self.nodes {
            policy(node.core.settings_mut());
        }
    }

    pub fn set_offset(&mut self, i: usize, offset: u64) {
        self.nodes[i].core.set_repl_offset(offset);
    }

    /// Every node in `among` knows every other in `among` (no handshakes left).
    pub fn all_know_each_other(&self, among: &[usize]) -> bool {
        among.iter().all(|&i| {
            among.iter().all(|&j| self.core(i).node(&name_of(j)).is_some_and(|n| !n.in_handshake()))
                && !self.core(i).nodes().iter().any(|n| n.in_handshake())
        })
    }

    /// Every node in `among` agrees on who owns every slot and the cluster is ok for it.
    pub fn converged(&self, among: &[usize]) -> bool {
        let first = self.core(among[0]);
        among.iter().all(|&i| {
            let c = self.core(i);
            c.state() == ClusterState::Ok && (0..16384u16).step_by(97).all(|s| c.slot_owner(s) == first.slot_owner(s))
        })
    }

    pub fn owner_everywhere(&self, among: &[usize], slot: u16) -> Option<usize> {
        let owners: HashSet<Option<NodeName>> = among.iter().map(|&i| self.core(i).slot_owner(slot)).collect();
        if owners.len() != 1 {
            return None;
        }
        owners.into_iter().next().flatten().and_then(|n| self.index_of(&n))
    }

    pub fn sees_flag(&self, observer: usize, about: usize, flag: u16) -> bool {
        self.core(observer).node(&name_of(about)).is_some_and(|n| n.flags & flag != 0)
    }

    /// A formed cluster: masters 0..3 with a third of the slots each, then the replicas
    /// given as (replica, master), everyone met through node 0.
    pub fn formed(count: usize, replicas: &[(usize, usize)]) -> Sim {
        Sim::formed_with_seed(count, replicas, 1)
    }

    pub fn formed_with_seed(count: usize, replicas: &[(usize, usize)], seed: u64) -> Sim {
        let mut sim = Sim::new(count, seed);
        sim.add_slots(0, 0..=5460);
        sim.add_slots(1, 5461..=10922);
        sim.add_slots(2, 10923..=16383);
        for j in 1..count {
            sim.meet(0, j);
        }
        let all: Vec<usize> = (0..count).collect();
        assert!(sim.run_until(20_000, |s| s.all_know_each_other(&all)), "nodes did not all meet");
        for &(replica, master) in replicas {
            sim.replicate(replica, master);
        }
        let settled = sim.run_until(20_000, |s| {
            s.converged(&all)
                && replicas.iter().all(|&(r, m)| {
                    all.iter().all(|&o| s.core(o).node(&name_of(r)).is_some_and(|n| n.replica_of == Some(name_of(m))))
                })
        });
        assert!(settled, "the cluster did not converge");
        sim
    }

    /// No master voted twice in one epoch.
    pub fn assert_one_vote_per_epoch(&self) {
        let mut seen = HashSet::new();
        for vote in &self.acks {
            assert!(seen.insert(*vote), "node {} voted twice in epoch {}", vote.0, vote.1);
        }
    }

    pub fn promotions(&self) -> Vec<usize> {
        self.events.iter().filter(|(_, _, o)| *o == Output::BecomeMaster).map(|(_, i, _)| *i).collect()
    }
}

#[test]
fn nodes_meet_and_agree() {
    let sim = Sim::formed(6, &[(3, 0), (4, 1), (5, 2)]);
    let all: Vec<usize> = (0..6).collect();
    for &i in &all {
        assert_eq!(sim.core(i).nodes().len(), 6);
        assert_eq!(sim.owner_everywhere(&all, 0), Some(0));
        assert_eq!(sim.owner_everywhere(&all, 16383), Some(2));
    }
    // The three masters started with config epoch 0 each: the collisions were resolved.
    let epochs: HashSet<u64> = (0..3).map(|m| sim.core(m).myself().config_epoch).collect();
    assert_eq!(epochs.len(), 3, "masters' config epochs are not distinct: {epochs:?}");
    // What each node saved renders a valid nodes.conf with itself as myself.
    for i in all {
        let conf = nodes_conf::parse("saved", &sim.nodes[i].saved).expect("parses");
        assert_eq!(conf.myself().map(|m| m.id.clone()), Some(bus::name_to_string(&name_of(i))));
    }
}

#[test]
fn a_short_partition_fails_nothing() {
    let mut sim = Sim::formed(6, &[(3, 0), (4, 1), (5, 2)]);
    sim.partition(&[0]);
    sim.run(NODE_TIMEOUT / 2);
    sim.heal();
    sim.run(3 * NODE_TIMEOUT);
    for i in 0..6 {
        for j in 0..6 {
            assert!(!sim.sees_flag(i, j, flags::FAIL | flags::PFAIL), "{i} sees {j} failing");
        }
    }
    assert!(sim.promotions().is_empty());
}

#[test]
fn a_failed_master_is_replaced_by_its_replica_and_rejoins_as_replica() {
    let mut sim = Sim::formed(6, &[(3, 0), (4, 1), (5, 2)]);
    let epoch_before = sim.core(1).current_epoch();
    sim.stop(0);
    let rest = [1, 2, 3, 4, 5];
    let failed_over = sim.run_until(15_000, |s| {
        s.owner_everywhere(&rest, 0) == Some(3)
            && rest.iter().all(|&i| s.sees_flag(i, 0, flags::FAIL))
            && rest.iter().all(|&i| s.core(i).state() == ClusterState::Ok)
    });
    assert!(failed_over, "replica 3 did not take over master 0's slots");
    assert_eq!(sim.promotions(), vec![3]);
    assert!(sim.core(3).myself().config_epoch > epoch_before);
    assert!(sim.core(3).current_epoch() > epoch_before);
    sim.assert_one_vote_per_epoch();

    // The old master comes back from its nodes.conf: its epoch is stale; it must follow
    // its slots and become a replica of the new master.
    sim.restart(0);
    let all: Vec<usize> = (0..6).collect();
    let rejoined = sim.run_until(20_000, |s| {
        s.converged(&all)
            && all.iter().all(|&i| {
                s.core(i).node(&name_of(0)).is_some_and(|n| n.is_replica() && n.replica_of == Some(name_of(3)))
            })
            && all.iter().all(|&i| !s.sees_flag(i, 0, flags::FAIL))
    });
    assert!(rejoined, "old master 0 did not rejoin as replica of 3");
    assert_eq!(sim.owner_everywhere(&all, 0), Some(3));
    assert!(sim.events.iter().any(|(_, i, o)| *i == 0 && *o == Output::BecomeReplicaOf(name_of(3))));
}

#[test]
fn two_replicas_compete_and_the_better_offset_wins() {
    // Master 0 has replicas 3 and 6; 3 has processed more of the stream.
    let mut sim = Sim::formed(7, &[(3, 0), (4, 1), (5, 2), (6, 0)]);
    sim.set_offset(3, 5000);
    sim.set_offset(6, 4000);
    sim.run(2 * NODE_TIMEOUT);
    sim.stop(0);
    let rest = [1, 2, 3, 4, 5, 6];
    let done = sim.run_until(15_000, |s| {
        s.owner_everywhere(&rest, 0) == Some(3)
            && rest.iter().all(|&i| s.core(i).node(&name_of(6)).is_some_and(|n| n.replica_of == Some(name_of(3))))
            && rest.iter().all(|&i| s.core(i).state() == ClusterState::Ok)
    });
    assert!(done, "3 did not win, or 6 did not follow it");
    assert_eq!(sim.promotions(), vec![3], "exactly one replica is promoted");
    assert!(sim.events.iter().any(|(_, i, o)| *i == 6 && *o == Output::BecomeReplicaOf(name_of(3))));
    sim.assert_one_vote_per_epoch();
}

#[test]
fn an_isolated_master_loses_its_slots_and_follows_the_winner() {
    let mut sim = Sim::formed(6, &[(3, 0), (4, 1), (5, 2)]);
    sim.partition(&[0]);
    let majority = [1, 2, 3, 4, 5];
    let failed_over = sim.run_until(15_000, |s| {
        s.owner_everywhere(&majority, 0) == Some(3) && majority.iter().all(|&i| s.core(i).state() == ClusterState::Ok)
    });
    assert!(failed_over, "the majority did not fail master 0 over");
    // Alone, node 0 sees no majority: it stops accepting (cluster state fail), and still
    // thinks it owns its slots under its old epoch.
    assert_eq!(sim.core(0).state(), ClusterState::Fail);
    assert_eq!(sim.core(0).slot_owner(0), Some(name_of(0)));
    sim.heal();
    let all: Vec<usize> = (0..6).collect();
    let healed = sim.run_until(20_000, |s| {
        s.converged(&all) && s.core(0).myself().replica_of == Some(name_of(3)) && s.core(0).myself().is_replica()
    });
    assert!(healed, "node 0 did not become a replica of 3 after the partition healed");
    assert_eq!(sim.promotions(), vec![3]);
    sim.assert_one_vote_per_epoch();
}

#[test]
fn a_minority_cannot_fail_a_master() {
    // Masters 0,1,2; master 1 and 2 are cut from each other but both reach 0: only one
    // master (the majority needs two) reports each of them; no FAIL, no failover.
    let mut sim = Sim::formed(6, &[(3, 0), (4, 1), (5, 2)]);
    sim.blocked.insert((1, 2));
    sim.blocked.insert((1, 5));
    sim.blocked.insert((2, 4));
    sim.blocked.insert((4, 5));
    sim.run(6 * NODE_TIMEOUT);
    for i in 0..6 {
        assert!(!sim.sees_flag(i, 1, flags::FAIL) && !sim.sees_flag(i, 2, flags::FAIL), "node {i} failed a master");
    }
    assert!(sim.promotions().is_empty());
}

#[test]
fn equal_replicas_elect_exactly_one() {
    // Same offsets, same rank: both may ask for votes; one vote per master per epoch
    // leaves at most one winner, and the other follows it.
    for seed in 0..6 {
        let mut sim = Sim::formed_with_seed(7, &[(3, 0), (4, 1), (5, 2), (6, 0)], seed);
        sim.set_offset(3, 100);
        sim.set_offset(6, 100);
        sim.run(2 * NODE_TIMEOUT);
        sim.stop(0);
        let rest = [1, 2, 3, 4, 5, 6];
        let done = sim.run_until(30_000, |s| {
            let Some(winner) = s.owner_everywhere(&rest, 0).filter(|w| *w == 3 || *w == 6) else { return false };
            let loser = if winner == 3 { 6 } else { 3 };
            rest.iter().all(|&i| s.core(i).node(&name_of(loser)).is_some_and(|n| n.replica_of == Some(name_of(winner))))
                && rest.iter().all(|&i| s.core(i).state() == ClusterState::Ok)
        });
        assert!(done, "seed {seed}: no single winner followed by the other replica");
        assert_eq!(sim.promotions().len(), 1, "seed {seed}: promotions {:?}", sim.promotions());
        sim.assert_one_vote_per_epoch();
    }
}

#[test]
fn a_manual_failover_waits_for_the_paused_masters_offset() {
    let mut sim = Sim::formed(6, &[(3, 0), (4, 1), (5, 2)]);
    sim.set_offset(0, 1000);
    sim.set_offset(3, 900);
    sim.run(1000);
    sim.manual_failover(3, false, false);
    sim.run(2000);
    assert!(sim.events.iter().any(|(_, i, o)| *i == 0 && *o == Output::PauseWrites { ms: 10_000 }), "master paused");
    assert!(sim.promotions().is_empty(), "promoted before reaching the master's offset");
    sim.set_offset(3, 1000);
    let all: Vec<usize> = (0..6).collect();
    let done = sim.run_until(3000, |s| {
        s.owner_everywhere(&all, 0) == Some(3)
            && all.iter().all(|&i| s.core(i).node(&name_of(0)).is_some_and(|n| n.replica_of == Some(name_of(3))))
    });
    assert!(done, "the replica did not take over, or the old master did not follow it");
    assert_eq!(sim.promotions(), vec![3]);
    assert!(sim.events.iter().any(|(_, i, o)| *i == 0 && *o == Output::ResumeWrites), "master resumed writes");
    sim.assert_one_vote_per_epoch();
}

#[test]
fn a_takeover_needs_no_votes() {
    let mut sim = Sim::formed(6, &[(3, 0), (4, 1), (5, 2)]);
    sim.partition(&[3, 0]);
    sim.manual_failover(3, true, true);
    assert_eq!(sim.promotions(), vec![3], "promoted at once");
    sim.heal();
    let all: Vec<usize> = (0..6).collect();
    assert!(sim.run_until(5000, |s| s.owner_everywhere(&all, 0) == Some(3)), "the takeover did not spread");
}
