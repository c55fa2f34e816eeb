//! The layout `--cluster create` proposes, as pure functions of the node list: which
//! nodes become masters, which slots each master serves, which master each replica
//! follows. The rules are redis-cli 7.0's, so the same command gives the same cluster:
//! nodes are taken round-robin across hosts (so the masters land on different hosts),
//! the slots are cut in equal shares with redis-cli's rounding, and a replica goes to a
//! master on another host when one is left. The final improvement of the replicas'
//! placement is ours: a deterministic search where redis-cli swaps at random.

use super::nodes::SLOTS;

/// How many masters `nodes` nodes make with `replicas` replicas each (the rest are
/// replicas), as redis-cli counts: integer division.
pub fn masters_count(nodes: usize, replicas: usize) -> usize {
    nodes / (replicas + 1)
}

/// The slot ranges of `masters` masters, in order: equal shares of 16384, each end
/// rounded to the nearest slot from a running single-precision cursor (which is why
/// 3 masters get 5461, 5462 and 5461 slots), the last one ending at slot 16383.
pub fn slot_ranges(masters: usize) -> Vec<(usize, usize)> {
    let share = SLOTS as f32 / masters as f32;
    let mut cursor = 0.0f32;
    let mut first = 0usize;
    let mut out = Vec::with_capacity(masters);
    for i in 0..masters {
        // f32 throughout, then rounding half away from zero: the arithmetic redis-cli
        // uses, so the boundaries match its output exactly.
        let end = f64::from(cursor + share - 1.0).round() as i64;
        let mut last = if end > SLOTS as i64 || i + 1 == masters { SLOTS - 1 } else { end.max(0) as usize };
        if last < first {
            last = first;
        }
        out.push((first, last));
        first = last + 1;
        cursor += share;
    }
    out
}

/// The node indices ordered round-robin over hosts: the first node of each host (hosts
/// in order of first appearance), then the second of each, and so on.
pub fn interleave_by_host(hosts: &[String]) -> Vec<usize> {
    let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        match groups.iter_mut().find(|(h, _)| *h == host.as_str()) {
            Some((_, members)) => members.push(i),
            None => groups.push((host, vec![i])),
        }
    }
    let mut out = Vec::with_capacity(hosts.len());
    for round in 0.. {
        let before = out.len();
        out.extend(groups.iter().filter_map(|(_, members)| members.get(round)));
        if out.len() == before {
            break;
        }
    }
    out
}

/// A proposed cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Master node indices, in the order of `slots`.
    pub masters: Vec<usize>,
    /// The slot range of each master.
    pub slots: Vec<(usize, usize)>,
    /// (replica, master) node indices in the order they were chosen.
    pub assignments: Vec<(usize, usize)>,
    /// Where in `assignments` the extra replicas start (the nodes left over once every
    /// master has its `replicas`); equal to its length when there are none.
    pub extra_from: usize,
}

impl Plan {
    /// The master each node will replicate, by node index (None for masters).
    pub fn replica_of(&self, nodes: usize) -> Vec<Option<usize>> {
        let mut out = vec![None; nodes];
        for &(replica, master) in &self.assignments {
            out[replica] = Some(master);
        }
        out
    }
}

/// Lays out `hosts.len()` nodes (their hosts, in command line order) with `replicas`
/// replicas per master. None when that leaves fewer than 3 masters.
pub fn plan(hosts: &[String], replicas: usize) -> Option<Plan> {
    let masters_n = masters_count(hosts.len(), replicas);
    if masters_n < 3 {
        return None;
    }
    let order = interleave_by_host(hosts);
    let masters = order[..masters_n].to_vec();
    // The first candidate goes last: redis-cli does this because it often gives a better
    // starting point for the anti-affinity (and the same printed plan as redis-cli).
    let mut pool: Vec<Option<usize>> = order[masters_n..].iter().copied().map(Some).collect();
    if !pool.is_empty() {
        pool.rotate_left(1);
    }
    let mut assignments = Vec::new();
    let mut take = |master: usize, assignments: &mut Vec<(usize, usize)>| -> bool {
        let elsewhere = pool.iter().position(|n| n.is_some_and(|n| hosts[n] != hosts[master]));
        let Some(at) = elsewhere.or_else(|| pool.iter().position(Option::is_some)) else { return false };
        if let Some(replica) = pool[at].take() {
            assignments.push((replica, master));
        }
        true
    };
    for &master in &masters {
        for _ in 0..replicas {
            if !take(master, &mut assignments) {
                break;
            }
        }
    }
    let extra_from = assignments.len();
    // Nodes beyond masters × (replicas + 1): one more replica per master, one round only
    // (as redis-cli: a node still left then stays a master without slots).
    for &master in &masters {
        if !take(master, &mut assignments) {
            break;
        }
    }
    Some(Plan { slots: slot_ranges(masters_n), masters, assignments, extra_from })
}

/// How badly replicas share hosts (0 is perfect): 10000 for each replica on its master's
/// host, so that this is never traded for the lesser fault, and, for replicas of one
/// master sharing a host without it, one per replica in the group.
pub fn anti_affinity_score(hosts: &[String], replica_of: &[Option<usize>]) -> u64 {
    let mut score = 0u64;
    // Groups: (host, master index) → (master is on that host, members on that host).
    let mut groups: Vec<(&str, usize, bool, u64)> = Vec::new();
    for (node, host) in hosts.iter().enumerate() {
        let (master, is_master) = match replica_of[node] {
            Some(m) => (m, false),
            None => (node, true),
        };
        match groups.iter_mut().find(|g| g.0 == host.as_str() && g.1 == master) {
            Some(g) => {
                g.2 |= is_master;
                g.3 += 1;
            }
            None => groups.push((host, master, is_master, 1)),
        }
    }
    for (_, _, has_master, members) in groups {
        if members < 2 {
            continue;
        }
        score += if has_master { 10_000 * (members - 1) } else { members };
    }
    score
}

/// Improves the replicas' placement by swapping the masters of two replicas whenever
/// that lowers the score, until no swap does (each accepted swap lowers it, so this
/// ends). Returns the final score.
pub fn optimize_anti_affinity(hosts: &[String], replica_of: &mut [Option<usize>]) -> u64 {
    let mut score = anti_affinity_score(hosts, replica_of);
    let replicas: Vec<usize> = (0..replica_of.len()).filter(|&n| replica_of[n].is_some()).collect();
    let mut improved = true;
    while improved && score > 0 {
        improved = false;
        for (i, &a) in replicas.iter().enumerate() {
            for &b in &replicas[i + 1..] {
                if replica_of[a] == replica_of[b] {
                    continue;
                }
                replica_of.swap(a, b);
                let candidate = anti_affinity_score(hosts, replica_of);
                if candidate < score {
                    score = candidate;
                    improved = true;
                } else {
                    replica_of.swap(a, b);
                }
            }
        }
    }
    score
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn slot_shares_match_redis_cli() {
        // As printed by redis-cli 7.0.15 for 3, 4, 5 and 7 masters.
        assert_eq!(slot_ranges(3), [(0, 5460), (5461, 10922), (10923, 16383)]);
        assert_eq!(slot_ranges(4), [(0, 4095), (4096, 8191), (8192, 12287), (12288, 16383)]);
        assert_eq!(slot_ranges(5), [(0, 3276), (3277, 6553), (6554, 9829), (9830, 13106), (13107, 16383)]);
        assert_eq!(
            slot_ranges(7),
            [(0, 2340), (2341, 4680), (4681, 7021), (7022, 9361), (9362, 11702), (11703, 14042), (14043, 16383)]
        );
        for masters in 3..200 {
            let r = slot_ranges(masters);
            assert_eq!(r.len(), masters);
            assert_eq!(r[0].0, 0);
            assert_eq!(r[masters - 1].1, SLOTS - 1);
            assert!(r.windows(2).all(|w| w[1].0 == w[0].1 + 1), "{masters}: {r:?}");
            let sizes: Vec<usize> = r.iter().map(|(a, b)| b - a + 1).collect();
            let (min, max) = (sizes.iter().min().copied(), sizes.iter().max().copied());
            assert!(max.unwrap_or(0) - min.unwrap_or(0) <= 1, "{masters}: {sizes:?}");
        }
    }

    #[test]
    fn interleaves_hosts() {
        let h = hosts(&["a", "a", "a", "b", "b", "c"]);
        assert_eq!(interleave_by_host(&h), [0, 3, 5, 1, 4, 2]);
    }

    #[test]
    fn one_host_six_nodes_like_redis_cli() {
        // redis-cli 7.0.15 on 6 nodes of one host, --cluster-replicas 1, prints
        // "Adding replica n4 to n0", "n5 to n1", "n3 to n2".
        let h = hosts(&["h"; 6]);
        let p = plan(&h, 1).expect("plan");
        assert_eq!(p.masters, [0, 1, 2]);
        assert_eq!(p.slots, [(0, 5460), (5461, 10922), (10923, 16383)]);
        assert_eq!(p.assignments, [(4, 0), (5, 1), (3, 2)]);
        assert_eq!(p.extra_from, 3);
        let mut of = p.replica_of(6);
        assert_eq!(anti_affinity_score(&h, &of), 30_000);
        // Nothing can improve it, and the search leaves the plan as it was.
        assert_eq!(optimize_anti_affinity(&h, &mut of), 30_000);
        assert_eq!(of, p.replica_of(6));
    }

    #[test]
    fn replicas_avoid_their_masters_host() {
        let h = hosts(&["a", "a", "b", "b", "c", "c"]);
        let p = plan(&h, 1).expect("plan");
        assert_eq!(p.masters, [0, 2, 4]);
        let mut of = p.replica_of(6);
        for (node, master) in of.iter().enumerate() {
            if let Some(m) = master {
                assert_ne!(h[node], h[*m], "{p:?}");
            }
        }
        assert_eq!(optimize_anti_affinity(&h, &mut of), 0);
    }

    #[test]
    fn extra_replicas_and_too_few_masters() {
        let h = hosts(&["a", "b", "c", "d", "e", "f", "g", "h"]);
        let p = plan(&h, 1).expect("plan");
        assert_eq!(p.masters.len(), 4);
        // redis-cli 7.0.15 on 7 nodes of one host: n4 to n0, n5 to n1, n6 to n2, then
        // "Adding extra replicas..." and n3 to n0.
        let p = plan(&hosts(&["h"; 7]), 1).expect("plan");
        assert_eq!((p.assignments.as_slice(), p.extra_from), (&[(4, 0), (5, 1), (6, 2), (3, 0)][..], 3));
        assert!(plan(&h[..5], 1).is_none());
        assert!(plan(&h[..2], 0).is_none());
        let p = plan(&h[..3], 0).expect("plan");
        assert!(p.assignments.is_empty());
        // Every node ends up a master or a replica of a master...
        let p = plan(&h, 1).expect("plan");
        let of = p.replica_of(8);
        for (node, master) in of.iter().enumerate() {
            assert!(p.masters.contains(&node) != master.is_some());
        }
        // ...except past one extra round: 19 nodes with 4 replicas make 3 masters, 12
        // replicas, 3 extra ones and one node left alone.
        let p = plan(&hosts(&["h"; 19]), 4).expect("plan");
        assert_eq!((p.masters.len(), p.assignments.len(), p.extra_from), (3, 15, 12));
    }

    #[test]
    fn optimizer_fixes_a_bad_start() {
        // Two replicas placed on their own master's host: swapping them fixes both.
        let h = hosts(&["a", "b", "c", "a", "b", "c"]);
        let mut of = vec![None, None, None, Some(0), Some(1), Some(2)];
        assert_eq!(anti_affinity_score(&h, &of), 30_000);
        assert_eq!(optimize_anti_affinity(&h, &mut of), 0);
        // Replicas of one master on one host (not the master's) cost one each.
        let h = hosts(&["a", "b", "c", "d", "d"]);
        let of = vec![None, None, None, Some(0), Some(0)];
        assert_eq!(anti_affinity_score(&h, &of), 2);
    }
}
