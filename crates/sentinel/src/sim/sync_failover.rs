//! Failover of a master in synchronous-replication mode (`freeze.rs`) on the simulated
//! network: the freeze, the wait for the old master's lease, selection by the offsets the
//! freezes returned, the aborts and their retries; and the empty-master guard's SDOWN.

use super::*;

/// `Sim::new(replicas, 3, 2)` with every instance configured `sync-replicas n` and a
/// lease of `lease_ms`.
fn sync_sim(replicas: usize, n: u32, lease_ms: i64) -> Sim {
    let mut sim = Sim::new(replicas, 3, 2);
    for r in &mut sim.redis {
        r.sync_replicas = n;
        r.lease_ms = lease_ms;
    }
    sim
}

impl Sim {
    /// The sentinel that won the (first) election.
    fn leader(&self) -> usize {
        self.events.iter().find(|(_, c, _)| c == "+elected-leader").map(|(j, _, _)| *j).expect("no leader")
    }

    /// First event on `channel`: (sentinel, message, time).
    fn first(&self, channel: &str) -> Option<(usize, &str, i64)> {
        let k = self.events.iter().position(|(_, c, _)| c == channel)?;
        Some((self.events[k].0, self.events[k].2.as_str(), self.event_at[k]))
    }

    /// The commands instance `r` executed, as lines.
    fn executed(&self, r: usize) -> Vec<&str> {
        self.admin.iter().filter(|(x, _, _)| *x == r).map(|(_, l, _)| l.as_str()).collect()
    }

    fn executed_at(&self, r: usize, line: &str) -> Option<i64> {
        self.admin.iter().find(|(x, l, _)| *x == r && l == line).map(|(_, _, t)| *t)
    }

    fn nobody_promoted(&self) -> bool {
        !self.admin.iter().any(|(_, l, _)| l == "SLAVEOF NO ONE")
    }

    /// Restarts instance `r` empty (no persistence): a new run id and a new history at
    /// offset 0. Its replicas' empty-master guard refuses to follow it.
    fn restart_empty(&mut self, r: usize) {
        self.restart(r);
        let replid = self.new_replid();
        let port = self.redis[r].port;
        let me = &mut self.redis[r];
        (me.replid, me.replid2, me.second_offset, me.offset) = (replid, None, -1, 0);
        for x in self.redis.iter_mut().filter(|x| x.master_of == Some(port)) {
            x.refusing_empty_master = true;
        }
    }

    /// SENTINEL MASTER mymaster on sentinel `j`, as (field, value) pairs.
    fn sentinel_master(&mut self, j: usize) -> Vec<(String, String)> {
        let mut out = ReplyBuf::new(false);
        let cmd: Vec<Vec<u8>> = ["SENTINEL", "master", "mymaster"].iter().map(|s| s.as_bytes().to_vec()).collect();
        let now = self.now;
        self.nodes[j].core.command(&cmd, &mut out, now);
        let Ok(Some((Frame::Array(items), _))) = Frame::decode(&out.buf) else { panic!("{:?}", out.buf) };
        let text = |f: &Frame| String::from_utf8_lossy(f.as_bytes().unwrap_or_default()).into_owned();
        items.chunks(2).map(|kv| (text(&kv[0]), text(&kv[1]))).collect()
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[test]
fn sync_failover_freezes_the_replicas_then_promotes_the_most_advanced() {
    let mut sim = sync_sim(3, 2, 500);
    sim.redis[1].offset = 1000;
    sim.redis[2].offset = 1200;
    sim.redis[3].offset = 1100;
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.sentinels_with("+switch-master").len() == 3), "{}", sim.dump());
    assert!(sim.all_agree_on(6381));
    assert!(
        sim.run_until(10_000, |s| s.redis[1].master_of == Some(6381) && s.redis[3].master_of == Some(6381)),
        "{}",
        sim.dump()
    );
    let leader = sim.leader();
    let steps: Vec<&str> = sim
        .events
        .iter()
        .filter(|(j, c, _)| {
            *j == leader && (c.starts_with("+failover-state") || c.contains("frozen") || c == "+selected-slave")
        })
        .map(|(_, c, _)| c.as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "+failover-state-freeze-replicas",
            "+frozen-slave",
            "+frozen-slave",
            "+frozen-slaves-enough",
            "+frozen-slave",
            "+failover-state-select-slave",
            "+selected-slave",
            "+failover-state-send-slaveof-noone",
            "+failover-state-wait-promotion",
            "+failover-state-reconf-slaves",
        ],
        "{}",
        sim.dump()
    );
    assert_eq!(
        sim.first("+failover-state-freeze-replicas").unwrap().1,
        "master mymaster 127.0.0.1 6379 #sync-replicas 2 slaves 3 frozen needed 2 lease 500"
    );
    assert!(sim
        .events
        .iter()
        .any(|(_, c, m)| c == "+frozen-slave"
            && m == "slave 127.0.0.1:6381 127.0.0.1 6381 @ mymaster 127.0.0.1 6379 1200"));
    assert_eq!(
        sim.first("+frozen-slaves-enough").unwrap().1,
        "master mymaster 127.0.0.1 6379 #frozen 2/2 lease-wait 600"
    );
    // Each replica was frozen for the failover timeout, once, and never released: the
    // failover went through.
    for r in 1..=3 {
        assert_eq!(sim.executed(r).iter().filter(|l| l.starts_with("REPLFREEZE")).count(), 1, "{:?}", sim.admin);
        assert!(sim.executed(r).contains(&"REPLFREEZE 5000"), "{:?}", sim.admin);
    }
    // The two other frozen replicas were re-pointed together, parallel-syncs 1 or not:
    // their freezes must not run out while they wait their turn.
    let t1 = sim.executed_at(1, "SLAVEOF 127.0.0.1 6381");
    assert!(t1.is_some() && t1 == sim.executed_at(3, "SLAVEOF 127.0.0.1 6381"), "{:?}", sim.admin);
}

#[test]
fn no_promotion_before_the_old_masters_lease_ran_out() {
    let mut sim = sync_sim(2, 1, 2_000);
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.count("+frozen-slaves-enough") == 1), "{}", sim.dump());
    let (leader, _, enough_at) = sim.first("+frozen-slaves-enough").unwrap();
    // Observable meanwhile: the state and the count in SENTINEL MASTER.
    sim.run(1_000);
    let fields = sim.sentinel_master(leader);
    assert_eq!(field(&fields, "failover-state"), Some("freeze_replicas"), "{fields:?}");
    assert_eq!(field(&fields, "frozen-slaves"), Some("2"), "{fields:?}");
    assert_eq!(field(&fields, "frozen-slaves-needed"), Some("2"), "{fields:?}");
    assert_eq!(field(&fields, "sync-replicas"), Some("1"), "{fields:?}");
    assert_eq!(field(&fields, "sync-replicas-lease-ms"), Some("2000"), "{fields:?}");
    assert!(sim.nobody_promoted(), "{:?}", sim.admin);
    assert!(sim.run_until(20_000, |s| s.all_agree_on(6380) || s.all_agree_on(6381)), "{}", sim.dump());
    let promoted_at = sim.admin.iter().find(|(_, l, _)| l == "SLAVEOF NO ONE").map(|(_, _, t)| *t).unwrap();
    // The lease, 10 %, and 50 ms after the reply that made enough.
    assert!(promoted_at - enough_at >= 2_250, "{enough_at} {promoted_at}\n{}", sim.dump());
}

#[test]
fn too_few_replicas_reached_no_promotion_and_a_later_failover_retries() {
    // Three replicas, sync-replicas 2: a write was acknowledged by two of them, so two
    // frozen ones are needed to be sure to hold it. Every sentinel reaches only one.
    let mut sim = sync_sim(3, 2, 500);
    sim.redis[3].offset = 5_000;
    sim.run(5_000);
    for j in 0..3 {
        sim.blocked.insert((j, Endpoint::Redis(2)));
        sim.blocked.insert((j, Endpoint::Redis(3)));
    }
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.count("-failover-abort-not-enough-frozen-slaves") >= 1), "{}", sim.dump());
    let (_, why, _) = sim.first("-failover-abort-not-enough-frozen-slaves").unwrap();
    assert_eq!(why, "master mymaster 127.0.0.1 6379 #frozen 1/2");
    assert!(sim.nobody_promoted(), "{:?}", sim.admin);
    assert_eq!(sim.count("+selected-slave"), 0, "{}", sim.dump());
    // The one it froze is unfrozen (it goes back to its master).
    assert_eq!(sim.executed(1), ["REPLFREEZE 5000", "REPLFREEZE 0"], "{:?}", sim.admin);
    assert_eq!(sim.redis[1].frozen_until, 0);
    // Once the replicas can be reached, a later failover (another epoch) goes through and
    // promotes the one that has everything.
    sim.heal();
    assert!(sim.run_until(40_000, |s| s.sentinels_with("+switch-master").len() == 3), "{}", sim.dump());
    assert!(sim.all_agree_on(6382), "{}", sim.dump());
    assert!(sim.count("+elected-leader") >= 2, "{}", sim.dump());
}

#[test]
fn the_offsets_of_the_freezes_decide_not_info() {
    // INFO last said 6380 was far ahead; it was not (it had lost writes and resynced, or
    // INFO is simply older than the other replica's progress).
    let mut sim = sync_sim(2, 1, 500);
    sim.redis[1].offset = 1_000;
    sim.redis[1].info_offset = Some(5_000);
    sim.redis[2].offset = 1_500;
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.all_agree_on(6380) || s.all_agree_on(6381)), "{}", sim.dump());
    assert!(sim.all_agree_on(6381), "{}", sim.dump());
}

#[test]
fn a_lost_freeze_reply_is_asked_again_on_the_new_link() {
    let mut sim = sync_sim(2, 1, 500);
    sim.redis[1].offset = 2_000;
    sim.redis[1].lose_freeze_reply = true;
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.sentinels_with("+switch-master").len() == 3), "{}", sim.dump());
    assert!(sim.all_agree_on(6380), "{}", sim.dump());
    assert_eq!(sim.executed(1).iter().filter(|l| l.starts_with("REPLFREEZE 5000")).count(), 2, "{:?}", sim.admin);
    // Within the same failover, not by giving up and trying again.
    assert_eq!(sim.count("+elected-leader"), 1, "{}", sim.dump());
    assert!(!sim.events.iter().any(|(_, c, _)| c.starts_with("-failover-abort")), "{}", sim.dump());
}

#[test]
fn a_replica_that_never_answers_is_done_without_or_blocks_the_failover() {
    // Three replicas, sync-replicas 2: two answers are enough; the silent one, which INFO
    // last showed as the most advanced, is not promoted.
    let mut sim = sync_sim(3, 2, 500);
    sim.redis[2].offset = 1_100;
    sim.redis[3].offset = 9_000;
    sim.run(5_000);
    sim.redis[3].frozen = true;
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.sentinels_with("+switch-master").len() == 3), "{}", sim.dump());
    assert!(sim.all_agree_on(6381), "{}", sim.dump());
    assert!(!sim.events.iter().any(|(_, c, m)| c == "+frozen-slave" && m.contains("6382")), "{}", sim.dump());
    // Two replicas, sync-replicas 1: every replica may hold the last acknowledged write, so
    // the failover waits for both, and gives up while one is silent.
    let mut sim = sync_sim(2, 1, 500);
    sim.run(5_000);
    sim.redis[2].frozen = true;
    sim.kill(0);
    assert!(sim.run_until(30_000, |s| s.count("-failover-abort-not-enough-frozen-slaves") >= 2), "{}", sim.dump());
    assert!(sim.nobody_promoted(), "{:?}", sim.admin);
    assert!(sim.all_agree_on(6379));
}

#[test]
fn a_lease_the_freeze_cannot_outlast_is_refused_up_front() {
    // failover-timeout 5000 (the freeze's length) against a lease of 5000.
    let mut sim = sync_sim(2, 1, 5_000);
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.count("-failover-abort-freeze-too-short") >= 1), "{}", sim.dump());
    let (_, why, _) = sim.first("-failover-abort-freeze-too-short").unwrap();
    assert_eq!(why, "master mymaster 127.0.0.1 6379 #lease-wait 5550 freeze 5000: raise failover-timeout");
    assert!(!sim.admin.iter().any(|(_, l, _)| l.starts_with("REPLFREEZE")), "{:?}", sim.admin);
    assert!(sim.nobody_promoted());
}

#[test]
fn a_freeze_that_ran_out_during_tilt_is_not_trusted() {
    let mut sim = sync_sim(2, 1, 2_000);
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.count("+frozen-slaves-enough") == 1), "{}", sim.dump());
    // Every sentinel stalls for three seconds: TILT, 30 s without acting. Meanwhile the
    // freezes ended and the replicas may have gone back to the old master.
    sim.now += 3_000;
    assert!(sim.run_until(40_000, |s| s.count("-failover-abort-freeze-expired") >= 1), "{}", sim.dump());
    assert!(sim.nobody_promoted(), "{:?}", sim.admin);
    let (_, why, _) = sim.first("-failover-abort-freeze-expired").unwrap();
    assert_eq!(why, "master mymaster 127.0.0.1 6379 #the lease outlasts the freeze");
    // A later failover freezes them again and goes through.
    assert!(sim.run_until(40_000, |s| s.all_agree_on(6380) || s.all_agree_on(6381)), "{}", sim.dump());
}

#[test]
fn a_most_advanced_replica_with_priority_0_is_not_passed_over() {
    let mut sim = sync_sim(2, 1, 500);
    sim.redis[1].offset = 2_000;
    sim.redis[1].priority = 0;
    sim.redis[2].offset = 1_000;
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.count("-failover-abort-no-safe-slave") >= 1), "{}", sim.dump());
    let (_, why, _) = sim.first("-failover-abort-no-safe-slave").unwrap();
    assert_eq!(why, "master mymaster 127.0.0.1 6379 #most advanced offset 2000: 127.0.0.1:6380 priority 0");
    assert!(sim.nobody_promoted(), "{:?}", sim.admin);
    assert_eq!(sim.executed(2), ["REPLFREEZE 5000", "REPLFREEZE 0"], "{:?}", sim.admin);
    // Another replica at the same offset can be promoted in its place.
    let mut sim = sync_sim(3, 1, 500);
    sim.redis[1].offset = 2_000;
    sim.redis[1].priority = 0;
    sim.redis[2].offset = 1_000;
    sim.redis[3].offset = 2_000;
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.all_agree_on(6382)), "{}", sim.dump());
    assert_eq!(sim.count("-failover-abort-no-safe-slave"), 0, "{}", sim.dump());
}

#[test]
fn replies_from_another_history_or_a_redis_replica_do_not_count() {
    // Four replicas, sync-replicas 3: two frozen replicas of the master's history suffice.
    let mut sim = sync_sim(4, 3, 500);
    sim.redis[1].offset = 1_000;
    sim.redis[2].offset = 1_100;
    // Still holding a dataset of another history (a resync in progress): its offset
    // counts other bytes.
    sim.redis[3].offset = 9_000;
    sim.redis[3].replid = format!("{:040}", 77);
    // A Redis replica knows no REPLFREEZE.
    sim.redis[4].offset = 9_500;
    sim.redis[4].no_replfreeze = true;
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.all_agree_on(6380) || s.all_agree_on(6381)), "{}", sim.dump());
    assert!(sim.all_agree_on(6381), "{}", sim.dump());
    let diverged = format!("slave 127.0.0.1:6382 127.0.0.1 6382 @ mymaster 127.0.0.1 6379 {:040} 9000", 77);
    assert_eq!(sim.first("-frozen-slave-diverged").map(|e| e.1), Some(diverged.as_str()), "{}", sim.dump());
    let (_, refused, _) = sim.first("-frozen-slave-refused").unwrap();
    assert!(refused.starts_with("slave 127.0.0.1:6383 127.0.0.1 6383 @ mymaster 127.0.0.1 6379 #ERR unknown command"));
}

#[test]
fn without_sync_mode_nothing_changes() {
    // sync_replicas:0 (and, in the other tests of sim.rs, no field at all: a Redis master).
    let mut sim = sync_sim(2, 0, 500);
    sim.redis[2].offset = 2_000;
    sim.run(5_000);
    sim.kill(0);
    assert!(sim.run_until(20_000, |s| s.sentinels_with("+switch-master").len() == 3), "{}", sim.dump());
    assert!(sim.all_agree_on(6381));
    assert!(!sim.admin.iter().any(|(_, l, _)| l.starts_with("REPLFREEZE")), "{:?}", sim.admin);
    assert!(!sim.events.iter().any(|(_, c, _)| c.contains("freeze") || c.contains("frozen")), "{}", sim.dump());
    // A coordinated switchover hands over through the master's FAILOVER, which waits for
    // the replica: no freeze either, even in sync mode.
    let mut sim = sync_sim(2, 1, 500);
    sim.redis[2].offset = 2_000;
    sim.run(5_000);
    let mut out = ReplyBuf::new(false);
    let cmd: Vec<Vec<u8>> =
        ["SENTINEL", "failover", "mymaster", "coordinated"].iter().map(|s| s.as_bytes().to_vec()).collect();
    let now = sim.now;
    sim.nodes[0].core.command(&cmd, &mut out, now);
    assert_eq!(out.buf, b"+OK\r\n");
    assert!(sim.run_until(20_000, |s| s.all_agree_on(6381)), "{}", sim.dump());
    assert!(!sim.admin.iter().any(|(_, l, _)| l.starts_with("REPLFREEZE")), "{:?}", sim.admin);
}

#[test]
fn a_user_failover_in_sync_mode_freezes_too() {
    // SENTINEL FAILOVER of a live master: the freeze fences it before the promotion.
    let mut sim = sync_sim(2, 1, 500);
    sim.redis[1].offset = 2_000;
    sim.run(5_000);
    let mut out = ReplyBuf::new(false);
    let cmd: Vec<Vec<u8>> = ["SENTINEL", "failover", "mymaster"].iter().map(|s| s.as_bytes().to_vec()).collect();
    let now = sim.now;
    sim.nodes[0].core.command(&cmd, &mut out, now);
    assert_eq!(out.buf, b"+OK\r\n");
    assert!(sim.run_until(20_000, |s| s.all_agree_on(6380)), "{}", sim.dump());
    let (j, _, enough_at) = sim.first("+frozen-slaves-enough").unwrap();
    assert_eq!(j, 0);
    let promoted_at = sim.executed_at(1, "SLAVEOF NO ONE").unwrap();
    assert!(promoted_at - enough_at >= 600, "{enough_at} {promoted_at}");
    // The old master is demoted to a replica of the new one as usual.
    assert!(sim.run_until(30_000, |s| s.redis[0].master_of == Some(6380)), "{}", sim.dump());
}

/// A master restarts empty (no persistence) faster than down-after: its replicas refuse
/// to copy the empty dataset and say so in INFO; the sentinels fail it over at once, and
/// it becomes a replica of the promoted one.
fn empty_master_is_failed_over(sync_replicas: u32, sentinels_restarted: bool) {
    let mut sim = sync_sim(2, sync_replicas, 500);
    for n in &mut sim.nodes {
        crate::persist::apply(&mut n.core, &args(&["down-after-milliseconds", "mymaster", "30000"]), sim.now).unwrap();
    }
    sim.redis[1].offset = 1_000;
    sim.redis[2].offset = 1_200;
    sim.run(12_000);
    let restarted_at = sim.now;
    sim.kill(0);
    sim.restart_empty(0);
    if sentinels_restarted {
        // As after restarting with their config files: what INFO said is gone.
        for n in &mut sim.nodes {
            n.core.masters.get_mut("mymaster").unwrap().committed_history = None;
        }
    }
    assert!(sim.run_until(30_000, |s| s.sentinels_with("+switch-master").len() == 3), "{}", sim.dump());
    assert!(sim.all_agree_on(6381), "{}", sim.dump());
    let (_, why, empty_at) = sim.first("+empty-master").unwrap();
    assert!(why.starts_with("master mymaster 127.0.0.1 6379 #refused by slave 127.0.0.1:638"), "{why}");
    let (_, _, sdown_at) = sim.first("+sdown").unwrap();
    assert_eq!(sdown_at, empty_at);
    // Long before down-after (30 s): the master answered every PING. The signal comes
    // with the replica's next INFO (every 10 s while it looked healthy, then every second).
    assert!(sdown_at - restarted_at <= 11_000, "{}", sim.dump());
    assert!(sim.run_until(30_000, |s| s.redis[0].master_of == Some(6381)), "{}", sim.dump());
    assert!(sim.count("+convert-to-slave") >= 1, "{}", sim.dump());
    if sync_replicas > 0 {
        // The replicas' freezes counted although the restarted master reports another
        // history: they continue the one under which it committed.
        assert_eq!(sim.count("+frozen-slaves-enough"), 1, "{}", sim.dump());
        assert_eq!(sim.count("-frozen-slave-diverged"), 0, "{}", sim.dump());
    }
    let sdowns = sim.events.iter().filter(|(_, c, m)| c == "+sdown" && m.starts_with("master mymaster 127.0.0.1 6381"));
    assert_eq!(sdowns.count(), 0, "{}", sim.dump());
}

#[test]
fn an_empty_master_is_failed_over() {
    empty_master_is_failed_over(0, false);
}

#[test]
fn an_empty_master_in_sync_mode_is_failed_over_to_its_old_history() {
    // The restarted master reports a new history and is fenced (nobody follows it); the
    // replicas' freezes return the history under which it last committed writes.
    empty_master_is_failed_over(1, false);
}

#[test]
fn an_empty_master_in_sync_mode_is_failed_over_by_sentinels_that_never_saw_it_commit() {
    // A whole group powered off and on: the sentinels know only the empty master's new
    // history; the refusing replicas name theirs.
    empty_master_is_failed_over(1, true);
}

#[test]
fn the_empty_master_signal_only_counts_for_the_master_it_names() {
    let mut sim = Sim::new(1, 1, 1);
    sim.run(12_000);
    let now = sim.now;
    let core = &mut sim.nodes[0].core;
    let m = core.masters.get_mut("mymaster").unwrap();
    let name = m.replicas.keys().next().unwrap().clone();
    // A refusing replica's link is down: it never finishes the full sync.
    m.replicas.get_mut(&name).unwrap().replica.empty_master_refused = true;
    assert_eq!(crate::monitor::empty_master_refused_by(&core.env, m, now), None, "its link is up");
    m.replicas.get_mut(&name).unwrap().replica.master_link_up = false;
    assert_eq!(crate::monitor::empty_master_refused_by(&core.env, m, now), Some(name.clone()));
    // Pointing at another master, or an INFO too old to trust: not this master's problem.
    m.replicas.get_mut(&name).unwrap().replica.master_port = 7000;
    assert_eq!(crate::monitor::empty_master_refused_by(&core.env, m, now), None);
    m.replicas.get_mut(&name).unwrap().replica.master_port = 6379;
    assert_eq!(crate::monitor::empty_master_refused_by(&core.env, m, now + 30_001), None);
}
