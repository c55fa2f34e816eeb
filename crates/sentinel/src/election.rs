//! Leader election for a failover. Each sentinel has one vote per epoch and gives it to
//! the first candidate that asks for it in that epoch. A candidate leads once a majority of
//! all sentinels it knows (and at least the quorum) voted for it in its epoch.

use crate::env::{Env, Level};
use crate::master::Master;
use std::collections::BTreeMap;

/// Votes for `candidate` in `req_epoch` unless we already voted in that epoch or a later
/// one; either way returns our current vote and its epoch.
pub fn vote(env: &mut Env, m: &mut Master, req_epoch: u64, candidate: &str, now: i64) -> (Option<String>, u64) {
    if req_epoch > env.current_epoch {
        env.current_epoch = req_epoch;
        env.flush_pending = true;
        env.event(Level::Warning, "+new-epoch", env.current_epoch.to_string());
    }
    if m.leader_epoch < req_epoch && env.current_epoch <= req_epoch {
        m.leader = Some(candidate.to_string());
        m.leader_epoch = env.current_epoch;
        env.flush_pending = true;
        env.event(Level::Warning, "+vote-for-leader", format!("{candidate} {}", m.leader_epoch));
        // Having voted for someone else, hold back our own attempt on this master so the
        // winner gets its chance.
        if !candidate.eq_ignore_ascii_case(&env.myid) {
            m.failover_start_time = now + env.desync();
        }
    }
    (m.leader.clone(), m.leader_epoch)
}

/// The leader for `epoch`, if one has enough votes. Our own vote goes to the candidate
/// with most votes so far, or to ourselves.
pub fn leader(env: &mut Env, m: &mut Master, epoch: u64, now: i64) -> Option<String> {
    let voters = m.sentinels.len() as u64 + 1;
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for s in m.sentinels.values() {
        if let Some(l) = &s.leader {
            if s.leader_epoch == env.current_epoch {
                *counts.entry(l.clone()).or_default() += 1;
            }
        }
    }
    let mut winner: Option<String> = None;
    let mut max_votes = 0;
    for (who, &n) in &counts {
        if n > max_votes {
            max_votes = n;
            winner = Some(who.clone());
        }
    }
    let candidate = winner.clone().unwrap_or_else(|| env.myid.clone());
    let (my_vote, my_epoch) = vote(env, m, epoch, &candidate, now);
    if let Some(v) = my_vote.filter(|_| my_epoch == epoch) {
        let n = counts.get(&v).copied().unwrap_or(0) + 1;
        if n > max_votes {
            max_votes = n;
            winner = Some(v);
        }
    }
    let majority = voters / 2 + 1;
    winner.filter(|_| max_votes >= majority && max_votes >= m.quorum as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::{Addr, NoResolver};
    use crate::instance::{Instance, Kind};

    fn master_with_sentinels(n: usize) -> Master {
        let addr = Addr::new("127.0.0.1", 6379, false, false, &NoResolver).unwrap();
        let mut m = Master::new("mymaster", addr, 2, 0);
        for k in 0..n {
            let id = format!("{k}").repeat(40);
            let a = Addr::new("127.0.0.1", 26380 + k as i64, false, false, &NoResolver).unwrap();
            let mut s = Instance::new(Kind::Sentinel, id.clone(), a, 30_000, 0);
            s.runid = Some(id.clone());
            m.sentinels.insert(id, s);
        }
        m
    }

    #[test]
    fn one_vote_per_epoch() {
        let mut env = Env::new("f".repeat(40), 0, 1);
        let mut m = master_with_sentinels(2);
        assert_eq!(vote(&mut env, &mut m, 1, "a", 0), (Some("a".into()), 1));
        assert_eq!(vote(&mut env, &mut m, 1, "b", 0), (Some("a".into()), 1));
        assert_eq!(vote(&mut env, &mut m, 2, "b", 0), (Some("b".into()), 2));
        assert_eq!(env.current_epoch, 2);
    }

    #[test]
    fn split_votes_elect_nobody() {
        let mut env = Env::new("f".repeat(40), 0, 1);
        env.current_epoch = 5;
        let mut m = master_with_sentinels(3);
        // Four voters, the others split 1/1/1: our vote joins one of them, 2 < majority 3.
        let ids: Vec<String> = m.sentinels.keys().cloned().collect();
        for (k, id) in ids.iter().enumerate() {
            let s = m.sentinels.get_mut(id).unwrap();
            s.leader = Some(ids[k].clone());
            s.leader_epoch = 5;
        }
        assert_eq!(leader(&mut env, &mut m, 5, 0), None);
        // Two more agree with the first candidate: it wins with 3 of 4.
        let first = ids[0].clone();
        for id in &ids[1..] {
            m.sentinels.get_mut(id).unwrap().leader = Some(first.clone());
        }
        m.leader = None;
        m.leader_epoch = 0;
        assert_eq!(leader(&mut env, &mut m, 5, 0), Some(first));
    }
}
