//! Replica migration on a simulated cluster: masters 0, 1 and 2 with a third of the slots
//! each; master 0 has two replicas (3 and 6), masters 1 and 2 one each (4 and 5) unless a
//! case says otherwise. Node ids grow with the index, so 3 is master 0's replica with the
//! smallest id.

use super::{name_of, Sim, NODE_TIMEOUT};
use crate::bus;
use crate::nodes_conf::{flags, OpenSlot};
use crate::state::migration::MIGRATION_DELAY;
use crate::state::{ClusterState, Output};

const REPLICAS: [(usize, usize); 4] = [(3, 0), (4, 1), (5, 2), (6, 0)];

/// The masters (by index) that node `replica` started replicating since `since`.
fn moves(sim: &Sim, replica: usize, since: u64) -> Vec<usize> {
    sim.events
        .iter()
        .filter(|(t, i, _)| *t >= since && *i == replica)
        .filter_map(|(_, _, o)| match o {
            Output::BecomeReplicaOf(m) => sim.index_of(m),
            _ => None,
        })
        .collect()
}

fn everyone_sees_replica_of(sim: &Sim, among: &[usize], replica: usize, master: usize) -> bool {
    among.iter().all(|&i| sim.core(i).node(&name_of(replica)).is_some_and(|n| n.replica_of == Some(name_of(master))))
}

/// Stops node 4, master 1's only replica, and runs until every other node flags it FAIL.
/// Returns when node 3 first saw it failing.
fn orphan_master_1(sim: &mut Sim) -> u64 {
    sim.stop(4);
    assert!(sim.run_until(10 * NODE_TIMEOUT, |s| s.sees_flag(3, 4, flags::FAIL)), "3 does not see 4 failing");
    let seen_by_3 = sim.now;
    let rest = [0, 1, 2, 3, 5, 6];
    assert!(sim.run_until(10 * NODE_TIMEOUT, |s| rest.iter().all(|&i| s.sees_flag(i, 4, flags::FAIL))));
    seen_by_3
}

#[test]
fn an_orphaned_master_gets_the_smallest_replica_of_the_best_served_master() {
    let mut sim = Sim::formed(7, &REPLICAS);
    // Every master had a replica: each may take one by migration.
    for m in 0..3 {
        assert!((0..7).all(|i| i == m || sim.sees_flag(i, m, flags::MIGRATE_TO)), "master {m} not a target");
    }
    let stopped_at = sim.now;
    let seen_by_3 = orphan_master_1(&mut sim);
    let rest = [0, 1, 2, 3, 5, 6];
    let migrated = sim.run_until(10 * MIGRATION_DELAY, |s| everyone_sees_replica_of(s, &rest, 3, 1));
    assert!(migrated, "replica 3 did not migrate to orphaned master 1");
    let at = sim.events.iter().find(|(_, i, o)| *i == 3 && *o == Output::BecomeReplicaOf(name_of(1))).map(|e| e.0);
    let at = at.expect("3's move is an event");
    assert!(at >= seen_by_3 + MIGRATION_DELAY, "moved {} ms after 1 was orphaned", at - seen_by_3);
    assert_eq!(moves(&sim, 3, stopped_at), vec![1]);
    // Only one replica moves: master 0 keeps 6, the barrier (1) is respected.
    sim.run(3 * MIGRATION_DELAY);
    assert!(moves(&sim, 6, stopped_at).is_empty() && moves(&sim, 5, stopped_at).is_empty());
    assert!(everyone_sees_replica_of(&sim, &rest, 6, 0));
    assert!(everyone_sees_replica_of(&sim, &rest, 3, 1));
    assert!(rest.iter().all(|&i| sim.core(i).state() == ClusterState::Ok));
    assert_eq!(sim.core(1).working_replicas(&name_of(1)), 1);
}

#[test]
fn a_replica_that_sees_the_cluster_down_does_not_migrate() {
    // Barrier 0, so that only the cluster state holds replica 3 back: cut off right after
    // master 1 is orphaned, 3 soon sees no majority of masters (state fail) and must not
    // move; 6 is not the candidate (3 has the smaller id, failing or not). Once healed,
    // 3 moves, the delay counted from the heal.
    let mut sim = Sim::formed(7, &REPLICAS);
    sim.set_policy(|s| s.migration_barrier = 0);
    let stopped_at = sim.now;
    orphan_master_1(&mut sim);
    sim.partition(&[3]);
    assert!(sim.run_until(5 * NODE_TIMEOUT, |s| s.core(3).state() == ClusterState::Fail), "3 still sees state ok");
    sim.run(3 * MIGRATION_DELAY);
    assert!(moves(&sim, 3, stopped_at).is_empty(), "3 migrated while it saw the cluster down");
    assert!(moves(&sim, 6, stopped_at).is_empty(), "6 migrated although 3 has the smaller id");
    sim.heal();
    let healed_at = sim.now;
    let rest = [0, 1, 2, 3, 5, 6];
    assert!(sim.run_until(10 * MIGRATION_DELAY, |s| everyone_sees_replica_of(s, &rest, 3, 1)), "3 did not move");
    let at = sim.events.iter().find(|(_, i, o)| *i == 3 && *o == Output::BecomeReplicaOf(name_of(1))).map(|e| e.0);
    assert!(at.expect("3's move is an event") >= healed_at + MIGRATION_DELAY);
}

#[test]
fn the_migration_barrier_keeps_replicas_home() {
    let mut sim = Sim::formed(7, &REPLICAS);
    // Master 0 would be left with one replica: a barrier of 2 forbids that.
    sim.set_policy(|s| s.migration_barrier = 2);
    let stopped_at = sim.now;
    orphan_master_1(&mut sim);
    sim.run(4 * MIGRATION_DELAY);
    for r in [3, 5, 6] {
        assert!(moves(&sim, r, stopped_at).is_empty(), "replica {r} moved despite the barrier");
    }
    // Lowered at run time (CONFIG SET): the move happens.
    sim.set_policy(|s| s.migration_barrier = 1);
    let rest = [0, 1, 2, 3, 5, 6];
    assert!(sim.run_until(4 * MIGRATION_DELAY, |s| everyone_sees_replica_of(s, &rest, 3, 1)));
    assert!(moves(&sim, 6, stopped_at).is_empty());
}

#[test]
fn no_migration_when_replica_migration_is_off() {
    let mut sim = Sim::formed(7, &REPLICAS);
    sim.set_policy(|s| s.allow_replica_migration = false);
    let stopped_at = sim.now;
    orphan_master_1(&mut sim);
    sim.run(4 * MIGRATION_DELAY);
    for r in [3, 5, 6] {
        assert!(moves(&sim, r, stopped_at).is_empty(), "replica {r} moved with migration off");
    }
}

#[test]
fn masters_with_replicas_are_targets_again_after_a_restart() {
    // nodes.conf does not hold the mark (Redis never writes it): loading rebuilds it from
    // who replicates whom, before any message arrives.
    let mut sim = Sim::formed(7, &[(3, 0), (4, 2), (5, 2), (6, 0)]);
    sim.stop(3);
    sim.restart(3);
    assert!(sim.sees_flag(3, 0, flags::MIGRATE_TO) && sim.sees_flag(3, 2, flags::MIGRATE_TO));
    assert!(!sim.sees_flag(3, 1, flags::MIGRATE_TO), "master 1 never had a replica");
    assert!(!sim.nodes[3].saved.contains("migrate"), "the mark is never saved");
}

#[test]
fn a_master_that_never_had_replicas_gets_none() {
    // Master 1 was never given a replica; masters 0 and 2 have two each.
    let mut sim = Sim::formed(7, &[(3, 0), (4, 2), (5, 2), (6, 0)]);
    assert!(!sim.sees_flag(3, 1, flags::MIGRATE_TO));
    let since = sim.now;
    sim.run(3 * MIGRATION_DELAY);
    for r in 3..7 {
        assert!(moves(&sim, r, since).is_empty(), "replica {r} moved to a master that never had replicas");
    }
}

#[test]
fn a_promoted_replica_left_alone_gets_a_replica() {
    // Master 1 fails: its only replica 4 takes over with no replica of its own; master 0
    // has two, so 3 moves to 4 once 4 has been orphaned for the delay.
    let mut sim = Sim::formed(7, &REPLICAS);
    let stopped_at = sim.now;
    sim.stop(1);
    let rest = [0, 2, 3, 4, 5, 6];
    let seen_by_3 = sim.run_until(15 * NODE_TIMEOUT, |s| s.core(3).slot_owner(5461) == Some(name_of(4)));
    assert!(seen_by_3, "4 did not take over master 1's slots");
    let promoted_at = sim.now;
    assert!(sim.sees_flag(3, 4, flags::MIGRATE_TO), "the promoted replica is a migration target");
    let migrated = sim.run_until(10 * MIGRATION_DELAY, |s| everyone_sees_replica_of(s, &rest, 3, 4));
    assert!(migrated, "replica 3 did not migrate to the promoted 4");
    let at = sim.events.iter().find(|(_, i, o)| *i == 3 && *o == Output::BecomeReplicaOf(name_of(4))).map(|e| e.0);
    assert!(at.expect("3's move is an event") >= promoted_at + MIGRATION_DELAY);
    assert_eq!(moves(&sim, 3, stopped_at), vec![4]);
    assert!(moves(&sim, 6, stopped_at).is_empty());
}

#[test]
fn without_migration_an_emptied_master_keeps_its_replica() {
    // Master 1's slots are resharded to master 2 (SETSLOT NODE on both, the import closed
    // with a new epoch on 2). With migration on, 1 becomes 2's replica and its replica 4
    // follows the slots to 2; with it off, 1 stays an empty master and 4 stays with it
    // (Redis's tests 12-replica-migration-2 and 12.1-replica-migration-3).
    for allow in [true, false] {
        let mut sim = Sim::formed(7, &REPLICAS);
        if !allow {
            sim.set_policy(|s| s.allow_replica_migration = false);
        }
        let importing = OpenSlot::Importing(5461, bus::name_to_string(&name_of(1)));
        let out = sim.nodes[2].core.set_slot_open(5461, Some(importing));
        sim.apply(2, out);
        for slot in 5461..=10922u16 {
            for i in [2, 1] {
                let out = sim.nodes[i].core.set_slot_node(slot, &name_of(2), 0).expect("SETSLOT NODE");
                sim.apply(i, out);
            }
        }
        let all: Vec<usize> = (0..7).collect();
        let (master_of_1, master_of_4) = if allow { (Some(2), 2) } else { (None, 1) };
        let settled = sim.run_until(10 * NODE_TIMEOUT, |s| {
            s.owner_everywhere(&all, 5461) == Some(2)
                && all.iter().all(|&i| {
                    let one = s.core(i).node(&name_of(1));
                    one.is_some_and(|n| n.replica_of == master_of_1.map(name_of) && n.is_replica() == allow)
                })
                && everyone_sees_replica_of(s, &all, 4, master_of_4)
        });
        let seen: Vec<String> = all
            .iter()
            .map(|&i| {
                let one = s_node(&sim, i, 1);
                let four = s_node(&sim, i, 4);
                format!("{i}: owner {:?} 1={one} 4={four}", sim.core(i).slot_owner(5461).and_then(|o| sim.index_of(&o)))
            })
            .collect();
        assert!(
            settled,
            "allow-replica-migration {allow}: 1 or 4 did not end where Redis puts them:\n{}",
            seen.join("\n")
        );
        sim.run(3 * NODE_TIMEOUT);
        assert_eq!(sim.core(4).myself().replica_of, Some(name_of(master_of_4)), "allow {allow}");
    }
}

fn s_node(sim: &Sim, observer: usize, about: usize) -> String {
    match sim.core(observer).node(&name_of(about)) {
        Some(n) => format!("flags {} of {:?}", n.flags, n.replica_of.and_then(|m| sim.index_of(&m))),
        None => "unknown".into(),
    }
}
