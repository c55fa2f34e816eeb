//! The rules one node applies to single messages, checked on a formed cluster by handing a
//! node crafted messages: whom a master votes for, UPDATE, config-epoch collisions,
//! PUBLISH, and reloading the saved config.

use super::{name_of, Sim, NODE_TIMEOUT};
use crate::bus::{self, mflags0, Body, Message};
use crate::nodes_conf::{flags, OpenSlot};
use crate::state::{Cluster, Origin, Output};

fn inbound() -> Origin {
    Origin::Inbound { link: 999, peer_ip: "127.0.0.1".into(), local_ip: "127.0.0.1".into() }
}

/// A message as node `from` would send it now.
fn from(sim: &Sim, i: usize, body: Body) -> Message {
    Message { header: sim.core(i).header(), body }
}

fn acks(out: &[Output]) -> usize {
    out.iter().filter(|o| matches!(o, Output::Send { msg, .. } if msg.body == Body::FailoverAuthAck)).count()
}

/// Master 0 with replicas 3 and 6; node 1 (a master with slots) is the voter. Node 1 is
/// told by master 2 that 0 failed.
fn voter() -> Sim {
    let mut sim = Sim::formed(7, &[(3, 0), (4, 1), (5, 2), (6, 0)]);
    let fail = from(&sim, 2, Body::Fail { about: name_of(0) });
    let now = sim.now;
    let out = sim.nodes[1].core.handle(now, inbound(), fail);
    sim.apply(1, out);
    assert!(sim.sees_flag(1, 0, flags::FAIL));
    sim
}

/// Replica `r`'s vote request in epoch `epoch`.
fn request(sim: &Sim, r: usize, epoch: u64) -> Message {
    let mut msg = from(sim, r, Body::FailoverAuthRequest);
    msg.header.current_epoch = epoch;
    msg
}

fn ask(sim: &mut Sim, voter: usize, candidate: usize, epoch: u64) -> usize {
    let msg = request(sim, candidate, epoch);
    ask_with(sim, voter, msg)
}

fn ask_with(sim: &mut Sim, voter: usize, msg: Message) -> usize {
    let now = sim.now;
    let out = sim.nodes[voter].core.handle(now, inbound(), msg);
    let votes = acks(&out);
    if votes > 0 {
        assert_eq!(
            out.first(),
            Some(&Output::SaveConfig { fsync: true }),
            "the vote is fsynced before the ACK: {out:?}"
        );
    }
    votes
}

#[test]
fn a_master_votes_once_per_epoch_and_once_per_two_timeouts_per_master() {
    let mut sim = voter();
    let epoch = sim.core(1).current_epoch() + 1;
    assert_eq!(ask(&mut sim, 1, 3, epoch), 1, "first request of the epoch: a vote");
    assert_eq!(sim.core(1).last_vote_epoch(), epoch);
    assert_eq!(ask(&mut sim, 1, 6, epoch), 0, "same epoch: no second vote");
    assert_eq!(ask(&mut sim, 1, 3, epoch), 0, "same epoch, same candidate: none either");
    assert_eq!(ask(&mut sim, 1, 6, epoch + 1), 0, "new epoch but same master too soon");
    sim.now += 2 * NODE_TIMEOUT + 1;
    assert_eq!(ask(&mut sim, 1, 6, epoch + 2), 1, "after two node timeouts: a vote");
    assert_eq!(ask(&mut sim, 1, 3, epoch), 0, "an old epoch: never");
}

#[test]
fn no_vote_for_stale_slots_a_healthy_master_or_from_a_replica() {
    let mut sim = voter();
    let epoch = sim.core(1).current_epoch() + 1;
    // The candidate claims a slot of master 2 under an epoch older than 2's.
    let mut stale = request(&sim, 3, epoch);
    stale.header.myslots.set(16383, true);
    stale.header.config_epoch = 0;
    let epoch_of_2 = sim.core(1).node(&name_of(2)).map_or(0, |n| n.config_epoch);
    assert!(epoch_of_2 > 0, "masters have distinct non-zero epochs after forming");
    assert_eq!(ask_with(&mut sim, 1, stale), 0);
    // A replica of master 1, which is not failing: no vote; with FORCEACK (manual
    // failover) there is one.
    let mut healthy = request(&sim, 4, epoch + 1);
    assert_eq!(ask_with(&mut sim, 2, healthy.clone()), 0);
    healthy.header.mflags[0] |= mflags0::FORCEACK;
    assert_eq!(ask_with(&mut sim, 2, healthy), 1);
    // Replicas never vote.
    assert_eq!(ask(&mut sim, 5, 3, epoch + 5), 0);
}

#[test]
fn update_moves_slots_and_a_master_left_without_slots_follows_them() {
    let mut sim = Sim::formed(6, &[(3, 0), (4, 1), (5, 2)]);
    let slots_of_0 = from(&sim, 0, Body::MfStart).header.myslots;
    let now = sim.now;
    // An UPDATE that is not newer than what node 0 knows about node 3 changes nothing.
    let old = from(&sim, 1, Body::Update { config_epoch: 0, node: name_of(3), slots: slots_of_0.clone() });
    let out = sim.nodes[0].core.handle(now, inbound(), old);
    assert!(!out.iter().any(|o| matches!(o, Output::BecomeReplicaOf(_))));
    assert_eq!(sim.core(0).slot_owner(0), Some(name_of(0)));
    // Node 3 serves 0's slots under epoch 100: node 0 has none left and follows them.
    let update = from(&sim, 1, Body::Update { config_epoch: 100, node: name_of(3), slots: slots_of_0 });
    let out = sim.nodes[0].core.handle(now, inbound(), update);
    assert!(out.contains(&Output::BecomeReplicaOf(name_of(3))), "{out:?}");
    assert!(out.contains(&Output::SaveConfig { fsync: true }), "a new master: fsynced {out:?}");
    let c = sim.core(0);
    assert_eq!(c.slot_owner(0), Some(name_of(3)));
    assert_eq!(c.slot_owner(5460), Some(name_of(3)));
    assert!(c.myself().is_replica());
    assert!(c.node(&name_of(3)).is_some_and(|n| n.is_master() && n.config_epoch == 100));
}

#[test]
fn a_master_losing_some_slots_drops_their_keys() {
    let mut sim = Sim::formed(6, &[(3, 0), (4, 1), (5, 2)]);
    let now = sim.now;
    // Node 1 serves slots 0..=9 (node 0's) under epoch 100: node 0 keeps its other slots,
    // stays a master and must delete what it holds in the ten it lost.
    let mut taken = crate::bus::SlotBitmap::default();
    for slot in 0..10 {
        taken.set(slot, true);
    }
    let update = from(&sim, 2, Body::Update { config_epoch: 100, node: name_of(1), slots: taken });
    let out = sim.nodes[0].core.handle(now, inbound(), update);
    assert!(out.contains(&Output::DropSlotKeys((0..10).collect())), "{out:?}");
    assert!(!out.iter().any(|o| matches!(o, Output::BecomeReplicaOf(_))));
    assert!(sim.core(0).myself().is_master());
    assert_eq!(sim.core(0).slot_owner(9), Some(name_of(1)));
}

#[test]
fn the_smaller_id_takes_a_new_epoch_on_a_collision() {
    let mut sim = Sim::formed(3, &[]);
    let now = sim.now;
    // Pretend masters 0 and 1 share an epoch: 0 (the smaller id) hears from 1.
    let mut ping = from(&sim, 1, Body::Ping { gossip: vec![], extensions: vec![] });
    ping.header.config_epoch = sim.core(0).myself().config_epoch;
    // The sender's current epoch is adopted first if newer, then bumped.
    let before = sim.core(0).current_epoch().max(ping.header.current_epoch);
    sim.nodes[0].core.handle(now, inbound(), ping);
    assert_eq!(sim.core(0).current_epoch(), before + 1);
    assert_eq!(sim.core(0).myself().config_epoch, before + 1);
    // Node 1 hearing its own epoch from 0 (a smaller id): 1 keeps it.
    let mut from_0 = from(&sim, 0, Body::Ping { gossip: vec![], extensions: vec![] });
    from_0.header.config_epoch = sim.core(1).myself().config_epoch;
    let epoch_1 = sim.core(1).myself().config_epoch;
    sim.nodes[1].core.handle(now, inbound(), from_0);
    assert_eq!(sim.core(1).myself().config_epoch, epoch_1, "the larger id keeps its epoch");
}

#[test]
fn publish_reaches_every_other_node() {
    let mut sim = Sim::formed(4, &[(3, 0)]);
    let out = sim.nodes[2].core.publish(b"news", b"hello");
    sim.apply(2, out);
    sim.run(100);
    let got: Vec<usize> = sim
        .events
        .iter()
        .filter(|(_, _, o)| {
            *o == Output::Publish { channel: b"news".to_vec(), message: b"hello".to_vec(), shard: false }
        })
        .map(|(_, i, _)| *i)
        .collect();
    assert_eq!(got, vec![0, 1, 3]);
}

#[test]
fn the_saved_config_loads_back_the_same() {
    let mut sim = Sim::formed(6, &[(3, 0), (4, 1), (5, 2)]);
    let (one, two) = (bus::name_to_string(&name_of(1)), bus::name_to_string(&name_of(2)));
    sim.nodes[0].core.set_slot_open(9, Some(OpenSlot::Migrating(9, one)));
    sim.nodes[0].core.set_slot_open(6000, Some(OpenSlot::Importing(6000, two)));
    let open = sim.core(0).nodes_conf().myself().map(|m| m.open_slots.len());
    assert_eq!(open, Some(2));
    for i in 0..6 {
        let mut conf = sim.core(i).nodes_conf();
        let reloaded = Cluster::from_conf(sim.core(i).settings().clone(), &conf, sim.now).expect("loads");
        let mut again = reloaded.nodes_conf();
        // Times and link states start afresh on a reload.
        for n in conf.nodes.iter_mut().chain(again.nodes.iter_mut()) {
            n.ping_sent = 0;
            n.pong_received = 0;
            n.connected = true;
        }
        assert_eq!(again, conf, "node {i}");
    }
}

#[test]
fn a_node_that_meets_itself_drops_the_handshake() {
    let mut sim = Sim::formed(3, &[]);
    sim.meet(1, 1);
    assert_eq!(sim.core(1).nodes().len(), 4, "a handshake node for our own address");
    // Before the handshake would time out: the PONG from "ourselves" ended it.
    sim.run(NODE_TIMEOUT / 2);
    assert_eq!(sim.core(1).nodes().len(), 3);
    assert!(sim.core(1).nodes().iter().all(|n| !n.in_handshake()));
    assert!(sim.converged(&[0, 1, 2]));
    (0..3).for_each(|i| sim.core(i).assert_slot_index());
}

#[test]
fn forget_keeps_a_node_out_of_gossip_for_a_minute() {
    let mut sim = Sim::formed(4, &[(3, 0)]);
    let now = sim.now;
    assert!(sim.nodes[1].core.forget(now, &name_of(1)).is_err(), "not ourselves");
    assert!(sim.nodes[3].core.forget(now, &name_of(0)).is_err(), "not our master");
    let out = sim.nodes[1].core.forget(now, &name_of(2)).expect("forget 2");
    assert!(matches!(out.first(), Some(Output::SaveConfig { .. })), "{out:?}");
    assert!(sim.core(1).node(&name_of(2)).is_none());
    // Others still gossip about node 2: node 1 does not take it back within the minute...
    sim.run(20 * NODE_TIMEOUT);
    assert!(sim.core(1).node(&name_of(2)).is_none());
    // ...but does afterwards.
    sim.run(60_000);
    assert!(sim.core(1).node(&name_of(2)).is_some());
}

#[test]
fn a_replica_with_old_data_does_not_fail_over() {
    let mut sim = Sim::formed(4, &[(3, 0)]);
    // Replica 3 lost its master link long ago: validity 10 x 1000 ms + 10 s ping period.
    let since = sim.now - 30_000;
    sim.nodes[3].core.set_master_link_down_since(Some(since));
    sim.stop(0);
    sim.run(10 * NODE_TIMEOUT);
    assert!(sim.sees_flag(1, 0, flags::FAIL));
    assert!(sim.promotions().is_empty(), "a replica with stale data was promoted");
    // Fresh data: it goes.
    sim.nodes[3].core.set_master_link_down_since(Some(sim.now));
    assert!(sim.run_until(10 * NODE_TIMEOUT, |s| s.promotions() == vec![3]));
}

#[test]
fn the_hostname_follows_the_extension() {
    let mut sim = Sim::formed(3, &[]);
    let now = sim.now;
    let named =
        from(&sim, 2, Body::Ping { gossip: vec![], extensions: vec![bus::Extension::Hostname("two.example".into())] });
    let out = sim.nodes[1].core.handle(now, inbound(), named);
    // Saved, but not fsynced: a hostname is not what elections depend on.
    assert_eq!(out.first(), Some(&Output::SaveConfig { fsync: false }));
    assert_eq!(sim.core(1).node(&name_of(2)).map(|n| n.hostname.as_str()), Some("two.example"));
    let line = sim.core(1).nodes_conf().nodes.into_iter().find(|n| n.id == bus::name_to_string(&name_of(2)));
    assert_eq!(line.and_then(|l| l.hostname).as_deref(), Some("two.example"));
    let plain = from(&sim, 2, Body::Ping { gossip: vec![], extensions: vec![] });
    sim.nodes[1].core.handle(now, inbound(), plain);
    assert_eq!(sim.core(1).node(&name_of(2)).map(|n| n.hostname.as_str()), Some(""));
}

/// What redis-cli's reshard does per slot: only the first import closed on the target
/// bumps its config epoch, which is fsynced; opening and closing slots otherwise is
/// written but not fsynced (several fsyncs per slot made resharding 10x slower than
/// Redis's), and the cluster still agrees on the new owner.
#[test]
fn resharding_fsyncs_only_the_epoch_bump() {
    let mut sim = Sim::formed(3, &[]);
    // The target has the lowest config epoch, so closing its first import bumps it.
    let t = (0..3).min_by_key(|&i| sim.core(i).myself().config_epoch).unwrap_or(0);
    let s = (t + 1) % 3;
    let o = (t + 2) % 3;
    let (source, target) = (name_of(s), name_of(t));
    let first = (0..16384u16).find(|&slot| sim.core(s).slot_owner(slot) == Some(source)).unwrap_or(0);
    let fsyncs = |out: &[Output]| -> Vec<bool> {
        out.iter().filter_map(|o| if let Output::SaveConfig { fsync } = o { Some(*fsync) } else { None }).collect()
    };
    for slot in first..first + 2 {
        let out = sim.nodes[t].core.set_slot_open(slot, Some(OpenSlot::Importing(slot, bus::name_to_string(&source))));
        assert_eq!(fsyncs(&out), [false], "importing {slot}");
        sim.apply(t, out);
        let out = sim.nodes[s].core.set_slot_open(slot, Some(OpenSlot::Migrating(slot, bus::name_to_string(&target))));
        assert_eq!(fsyncs(&out), [false], "migrating {slot}");
        sim.apply(s, out);
        let epoch = sim.core(t).myself().config_epoch;
        let out = sim.nodes[t].core.set_slot_node(slot, &target, 0).expect("node on the target");
        let bumped = sim.core(t).myself().config_epoch != epoch;
        assert_eq!(bumped, slot == first, "the target bumps its epoch on its first import only");
        assert_eq!(fsyncs(&out), [bumped], "the target closes {slot}: fsynced iff its epoch moved");
        sim.apply(t, out);
        for i in [s, o] {
            let out = sim.nodes[i].core.set_slot_node(slot, &target, 0).expect("node elsewhere");
            assert_eq!(fsyncs(&out), [false], "node {i} closes {slot}");
            sim.apply(i, out);
        }
    }
    assert!(sim.run_until(10 * NODE_TIMEOUT, |sim| {
        sim.converged(&[0, 1, 2]) && (first..first + 2).all(|slot| sim.owner_everywhere(&[0, 1, 2], slot) == Some(t))
    }));
}
