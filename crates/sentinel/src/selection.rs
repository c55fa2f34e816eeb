//! Choosing the replica to promote. Candidates must be reachable and recently heard from,
//! with fresh INFO, not cut off from the master for too long before it failed, and not
//! excluded by `replica-priority 0`. The best is the lowest priority, then the largest
//! replication offset (it has the most data), then the smallest run id.

use crate::env::Env;
use crate::instance::{flag, Instance};
use crate::master::Master;
use std::cmp::Ordering;

fn better(a: &Instance, b: &Instance) -> Ordering {
    a.replica.priority.cmp(&b.replica.priority).then(b.replica.repl_offset.cmp(&a.replica.repl_offset)).then_with(
        || match (&a.runid, &b.runid) {
            (None, None) => Ordering::Equal,
            // An unknown run id sorts after every known one.
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => x.to_ascii_lowercase().cmp(&y.to_ascii_lowercase()),
        },
    )
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
}
