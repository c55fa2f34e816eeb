//! Choosing the replica to promote. Candidates must be reachable and recently heard from,
//! with fresh INFO, not cut off from the master for too long before it failed, and not
//! excluded by `replica-priority 0`. The best is the lowest priority, then the largest
//! replication offset (it has the most data), then the smallest run id.
//!
//! In sync-replication mode the candidates are the frozen replicas instead, ranked by the
//! offsets their freeze replies returned ([`select_frozen`]).

use crate::env::Env;
use crate::instance::{flag, Instance};
use crate::master::Master;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Smallest run id first; an unknown run id sorts after every known one.
fn runid_order(a: &Instance, b: &Instance) -> Ordering {
    match (&a.runid, &b.runid) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()),
    }
}

fn better(a: &Instance, b: &Instance) -> Ordering {
    a.replica
        .priority
        .cmp(&b.replica.priority)
        .then(b.replica.repl_offset.cmp(&a.replica.repl_offset))
        .then_with(|| runid_order(a, b))
}

pub fn eligible(env: &Env, m: &Master, r: &Instance, now: i64) -> bool {
    let master_sdown = m.inst.has(flag::S_DOWN);
    // How long a replica may have been disconnected from its master: ten down-after
    // periods plus however long the master has been down in our eyes.
    let mut max_master_down = m.inst.down_after * 10;
    if master_sdown {
        max_master_down += now - m.inst.s_down_since;
    }
    // INFO comes every second while the master is down, every ten seconds otherwise.
    let info_validity = if master_sdown { env.timing.ping_period * 5 } else { env.timing.info_period * 3 };
    !r.has(flag::S_DOWN | flag::O_DOWN)
        && !r.link.disconnected
        && now - r.link.last_avail_time <= env.timing.ping_period * 5
        && r.replica.priority != 0
        && now - r.info_refresh <= info_validity
        && r.master_link_down_time <= max_master_down
}

pub fn select(env: &Env, m: &Master, now: i64) -> Option<String> {
    m.replicas.values().filter(|r| eligible(env, m, r, now)).min_by(|a, b| better(a, b)).map(|r| r.name.clone())
}

/// Why a frozen replica cannot be promoted, if it cannot. Its freeze reply is fresher than
/// any INFO, so neither the age of its INFO nor how long it was cut off from its master
/// matters here; `replica-priority 0` and being reachable do.
pub fn unpromotable(env: &Env, r: &Instance, now: i64) -> Option<&'static str> {
    if r.replica.priority == 0 {
        Some("priority 0")
    } else if r.has(flag::S_DOWN | flag::O_DOWN) {
        Some("down")
    } else if r.link.disconnected {
        Some("disconnected")
    } else if now - r.link.last_avail_time > env.timing.ping_period * 5 {
        Some("not answering")
    } else {
        None
    }
}

/// The replica to promote in sync-replication mode, among the frozen ones (name → the
/// offset its REPLFREEZE reply returned). Only those at the highest offset qualify: one of
/// them holds every acknowledged write, and one below may lack some. Among those, the
/// lowest priority, then the smallest run id. Err says why none of them can be promoted.
pub fn select_frozen(env: &Env, m: &Master, frozen: &BTreeMap<String, u64>, now: i64) -> Result<String, String> {
    let Some(top) = frozen.values().copied().max() else {
        return Err("no frozen slave".into());
    };
    let mut candidates: Vec<&Instance> = Vec::new();
    let mut excluded: Vec<String> = Vec::new();
    for name in frozen.iter().filter(|(_, &o)| o == top).map(|(n, _)| n) {
        match m.replicas.get(name) {
            None => excluded.push(format!("{name} forgotten")),
            Some(r) => match unpromotable(env, r, now) {
                Some(why) => excluded.push(format!("{name} {why}")),
                None => candidates.push(r),
            },
        }
    }
    candidates
        .into_iter()
        .min_by(|a, b| a.replica.priority.cmp(&b.replica.priority).then_with(|| runid_order(a, b)))
        .map(|r| r.name.clone())
        .ok_or_else(|| format!("most advanced offset {top}: {}", excluded.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{Addr, NoResolver};
    use crate::instance::Kind;

    fn replica(port: i64, priority: i64, offset: u64, runid: &str, now: i64) -> Instance {
        let a = Addr::new("127.0.0.1", port, false, false, &NoResolver).unwrap();
        let mut r = Instance::new(Kind::Replica, a.name(false), a, 5000, now);
        r.link.disconnected = false;
        r.info_refresh = now;
        r.replica.priority = priority;
        r.replica.repl_offset = offset;
        r.runid = Some(runid.repeat(40));
        r
    }

    fn master(replicas: Vec<Instance>) -> Master {
        let a = Addr::new("127.0.0.1", 6379, false, false, &NoResolver).unwrap();
        let mut m = Master::new("m", a, 2, 0);
        m.inst.down_after = 5000;
        for r in replicas {
            m.replicas.insert(r.name.clone(), r);
        }
        m
    }

    #[test]
    fn priority_then_offset_then_runid() {
        let env = Env::new("x".repeat(40), 0, 1);
        let now = 100_000;
        let m = master(vec![
            replica(1, 100, 50, "a", now),
            replica(2, 10, 10, "b", now),
            replica(3, 10, 20, "c", now),
            replica(4, 10, 20, "b", now),
        ]);
        assert_eq!(select(&env, &m, now).as_deref(), Some("127.0.0.1:4"));
    }

    #[test]
    fn unfit_replicas_are_skipped() {
        let env = Env::new("x".repeat(40), 0, 1);
        let now = 100_000;
        let mut zero = replica(1, 0, 99, "a", now);
        zero.replica.priority = 0;
        let mut down = replica(2, 1, 99, "a", now);
        down.flags |= flag::S_DOWN;
        let mut gone = replica(3, 1, 99, "a", now);
        gone.link.disconnected = true;
        let mut silent = replica(4, 1, 99, "a", now);
        silent.link.last_avail_time = now - 6000;
        let mut stale = replica(5, 1, 99, "a", now);
        stale.info_refresh = now - 31_000;
        let mut cut_off = replica(6, 1, 99, "a", now);
        cut_off.master_link_down_time = 50_001;
        let fine = replica(7, 100, 1, "z", now);
        let m = master(vec![zero, down, gone, silent, stale, cut_off, fine]);
        assert_eq!(select(&env, &m, now).as_deref(), Some("127.0.0.1:7"));
    }

    #[test]
    fn frozen_selection_takes_the_highest_offset_the_replies_returned() {
        let env = Env::new("x".repeat(40), 0, 1);
        let now = 100_000;
        // INFO says port 1 is ahead; the freeze replies say port 2 is.
        let m =
            master(vec![replica(1, 100, 900, "a", now), replica(2, 100, 10, "b", now), replica(3, 1, 10, "c", now)]);
        let frozen: BTreeMap<String, u64> =
            [("127.0.0.1:1", 950), ("127.0.0.1:2", 1000), ("127.0.0.1:3", 999)].map(|(n, o)| (n.into(), o)).into();
        assert_eq!(select_frozen(&env, &m, &frozen, now).as_deref(), Ok("127.0.0.1:2"));
        // Equal offsets: lowest priority, then run id.
        let frozen: BTreeMap<String, u64> =
            [("127.0.0.1:1", 1000), ("127.0.0.1:2", 1000), ("127.0.0.1:3", 1000)].map(|(n, o)| (n.into(), o)).into();
        assert_eq!(select_frozen(&env, &m, &frozen, now).as_deref(), Ok("127.0.0.1:3"));
    }

    #[test]
    fn frozen_selection_never_falls_back_to_a_less_advanced_replica() {
        let env = Env::new("x".repeat(40), 0, 1);
        let now = 100_000;
        let mut gone = replica(2, 100, 0, "b", now);
        gone.link.disconnected = true;
        // Stale INFO and a long-cut master link do not matter: the freeze reply is fresh.
        let mut stale = replica(3, 100, 0, "c", now);
        stale.info_refresh = now - 60_000;
        stale.master_link_down_time = 1_000_000;
        let m = master(vec![replica(1, 0, 0, "a", now), gone, stale]);
        let frozen: BTreeMap<String, u64> =
            [("127.0.0.1:1", 1000), ("127.0.0.1:2", 1000), ("127.0.0.1:3", 999)].map(|(n, o)| (n.into(), o)).into();
        assert_eq!(
            select_frozen(&env, &m, &frozen, now),
            Err("most advanced offset 1000: 127.0.0.1:1 priority 0, 127.0.0.1:2 disconnected".into())
        );
        let frozen: BTreeMap<String, u64> = [("127.0.0.1:3", 999)].map(|(n, o)| (n.into(), o)).into();
        assert_eq!(select_frozen(&env, &m, &frozen, now).as_deref(), Ok("127.0.0.1:3"));
        assert_eq!(select_frozen(&env, &m, &BTreeMap::new(), now), Err("no frozen slave".into()));
    }

    #[test]
    fn unpromotable_reasons() {
        let env = Env::new("x".repeat(40), 0, 1);
        let now = 100_000;
        assert_eq!(unpromotable(&env, &replica(1, 100, 0, "a", now), now), None);
        assert_eq!(unpromotable(&env, &replica(1, 0, 0, "a", now), now), Some("priority 0"));
        let mut down = replica(1, 100, 0, "a", now);
        down.flags |= flag::S_DOWN;
        assert_eq!(unpromotable(&env, &down, now), Some("down"));
        let mut silent = replica(1, 100, 0, "a", now);
        silent.link.last_avail_time = now - 5001;
        assert_eq!(unpromotable(&env, &silent, now), Some("not answering"));
    }
}
