//! Random sequences: nodes stopped and restarted from their nodes.conf (as written, or as
//! last fsynced: a power loss), partitions made and
//! healed, replication offsets moved, for several seeds. Throughout, no master votes twice
//! in an epoch; at the end, with everything healed and running, the cluster converges: one
//! owner per slot everywhere, a master everyone sees as healthy, distinct config epochs
//! among the masters, state ok on every node.

use super::{name_of, Sim, NODE_TIMEOUT};
use crate::nodes_conf::flags;
use crate::state::ClusterState;
use std::collections::HashSet;

const NODES: usize = 7;

fn seeds() -> u64 {
    std::env::var("FERROKV_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(4)
}

fn healthy_end(sim: &Sim) -> bool {
    let all: Vec<usize> = (0..NODES).collect();
    if !sim.converged(&all) {
        return false;
    }
    let no_failure_flags =
        all.iter().all(|&i| all.iter().all(|&j| !sim.sees_flag(i, j, flags::FAIL | flags::PFAIL | flags::HANDSHAKE)));
    let owners_are_masters = (0..16384u16).step_by(61).all(|slot| {
        sim.owner_everywhere(&all, slot).is_some_and(|o| {
            sim.core(o).myself().is_master() && all.iter().all(|&i| sim.sees_flag(i, o, flags::MASTER))
        })
    });
    no_failure_flags && owners_are_masters
}

#[test]
fn random_failures_and_partitions_converge() {
    for seed in 0..seeds() {
        let mut sim = Sim::formed_with_seed(NODES, &[(3, 0), (4, 1), (5, 2), (6, 0)], seed);
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut stopped: Vec<usize> = Vec::new();
        let mut script = Vec::new();
        for _ in 0..10 {
            match rng.u8(0..5) {
                0 if stopped.len() < 2 => {
                    let i = rng.usize(0..NODES);
                    if !stopped.contains(&i) {
                        sim.stop(i);
                        stopped.push(i);
                        script.push(format!("stop {i}"));
                    }
                }
                1 if !stopped.is_empty() => {
                    let i = stopped.swap_remove(rng.usize(0..stopped.len()));
                    // Only what was fsynced survives a power loss: the votes and epochs
                    // must be in it, or a node could vote twice in an epoch.
                    if rng.bool() {
                        sim.restart_after_power_loss(i);
                        script.push(format!("restart {i} after a power loss"));
                    } else {
                        sim.restart(i);
                        script.push(format!("restart {i}"));
                    }
                }
                2 => {
                    let side: Vec<usize> = (0..rng.usize(1..4)).map(|_| rng.usize(0..NODES)).collect();
                    sim.partition(&side);
                    script.push(format!("partition {side:?}"));
                }
                3 => {
                    sim.heal();
                    script.push("heal".into());
                }
                _ => {
                    for i in 0..NODES {
                        sim.set_offset(i, rng.u64(0..1000));
                    }
                    script.push("offsets".into());
                }
            }
            let ms = rng.u64(NODE_TIMEOUT / 2..5 * NODE_TIMEOUT);
            sim.run(ms / 10 * 10);
            script.push(format!("run {ms}"));
            sim.assert_one_vote_per_epoch();
            (0..NODES).for_each(|i| sim.core(i).assert_slot_index());
        }
        sim.heal();
        for i in stopped {
            sim.restart(i);
        }
        script.push("heal, restart all".into());
        let converged = sim.run_until(60_000, healthy_end);
        let views: Vec<String> = (0..NODES)
            .map(|i| {
                let c = sim.core(i);
                let me = c.myself();
                format!(
                    "node {i}: {} epoch {} state {:?} owner(0) {:?} replica_of {:?}",
                    crate::nodes_conf::render_flags(me.flags),
                    me.config_epoch,
                    c.state(),
                    c.slot_owner(0).and_then(|n| sim.index_of(&n)),
                    me.replica_of.and_then(|n| sim.index_of(&n))
                )
            })
            .collect();
        assert!(converged, "seed {seed}: no convergence after {script:?}\n{}", views.join("\n"));
        eprintln!("seed {seed}: promotions {:?} after {script:?}", sim.promotions());
        sim.assert_one_vote_per_epoch();
        let masters: Vec<usize> = (0..NODES).filter(|&i| sim.core(i).slot_count(&name_of(i)) > 0).collect();
        let epochs: HashSet<u64> = masters.iter().map(|&m| sim.core(m).myself().config_epoch).collect();
        assert_eq!(epochs.len(), masters.len(), "seed {seed}: masters {masters:?} share a config epoch");
        assert!((0..NODES).all(|i| sim.core(i).state() == ClusterState::Ok));
    }
}
