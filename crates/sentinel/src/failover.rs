//! The acting half: the failover state machine (wait-start → [freeze-replicas, in
//! sync-replication mode: `freeze.rs`] → select-slave → send-slaveof-noone →
//! wait-promotion → reconf-slaves → update-config), and resetting a master to a new address
//! once a failover is over (ours, or one we hear about).

use crate::addr::Addr;
use crate::env::Expect;
use crate::env::{Env, Level, Output, Target, SIMFAILURE_CRASH_AFTER_ELECTION};
use crate::instance::{flag, Role};
use crate::links::{describe, send, send_slaveof};
use crate::master::{FailoverState, Master};
use crate::{election, freeze, selection};

pub fn start(env: &mut Env, m: &mut Master, now: i64) {
    m.failover_state = FailoverState::WaitStart;
    m.inst.flags |= flag::FAILOVER_IN_PROGRESS;
    env.current_epoch += 1;
    m.failover_epoch = env.current_epoch;
    env.event(Level::Warning, "+new-epoch", env.current_epoch.to_string());
    let desc = env.describe(&m.inst, None);
    env.event(Level::Warning, "+try-failover", desc);
    m.failover_start_time = now + env.desync();
    m.failover_state_change_time = now;
    m.coordinated = false;
}

/// Starts a failover when the master is ODOWN, none is running, and our last attempt (or
/// our vote for another sentinel) is older than twice the failover timeout.
pub fn start_if_needed(env: &mut Env, m: &mut Master, now: i64) -> bool {
    if !m.inst.has(flag::O_DOWN) || m.in_failover() {
        return false;
    }
    if now - m.failover_start_time < m.failover_timeout * 2 {
        if m.failover_delay_logged != m.failover_start_time {
            m.failover_delay_logged = m.failover_start_time;
            let at = (m.failover_start_time + m.failover_timeout * 2) / 1000;
            env.log(
                Level::Warning,
                format!("Next failover delay: I will not start a failover before {}", crate::clock::ctime(at)),
            );
        }
        return false;
    }
    start(env, m, now);
    true
}

pub fn step(env: &mut Env, m: &mut Master, now: i64) {
    if !m.in_failover() {
        return;
    }
    match m.failover_state {
        FailoverState::WaitStart => wait_start(env, m, now),
        FailoverState::FreezeReplicas => freeze::step(env, m, now),
        FailoverState::SelectSlave => select_slave(env, m, now),
        FailoverState::SendSlaveofNoOne => send_slaveof_noone(env, m, now),
        FailoverState::WaitPromotion => {
            // Progress comes from the promoted replica's INFO; only the timeout is ours.
            if now - m.failover_state_change_time > m.failover_timeout {
                abort(env, m, "-failover-abort-slave-timeout", now);
            }
        }
        FailoverState::ReconfSlaves => reconf_next_replicas(env, m, now),
        FailoverState::None | FailoverState::UpdateConfig => {}
    }
}

fn wait_start(env: &mut Env, m: &mut Master, now: i64) {
    let epoch = m.failover_epoch;
    let leader = election::leader(env, m, epoch, now);
    let is_leader = leader.is_some_and(|l| l.eq_ignore_ascii_case(&env.myid));
    if !is_leader && !m.inst.has(flag::FORCE_FAILOVER) {
        let timeout = env.timing.election_timeout.min(m.failover_timeout);
        if now - m.failover_start_time > timeout {
            abort(env, m, "-failover-abort-not-elected", now);
        }
        return;
    }
    let desc = env.describe(&m.inst, None);
    env.event(Level::Warning, "+elected-leader", desc.clone());
    if env.simfailure & SIMFAILURE_CRASH_AFTER_ELECTION != 0 {
        env.outputs.push_back(Output::Crash);
    }
    if freeze::wanted(m) {
        freeze::begin(env, m, now);
        return;
    }
    m.failover_state = FailoverState::SelectSlave;
    m.failover_state_change_time = now;
    env.event(Level::Warning, "+failover-state-select-slave", desc);
}

fn select_slave(env: &mut Env, m: &mut Master, now: i64) {
    let chosen = if m.sync_failover.is_some() {
        match freeze::select(env, m, now) {
            Ok(name) => Some(name),
            Err(why) => return abort_because(env, m, "-failover-abort-no-safe-slave", &why, now),
        }
    } else {
        selection::select(env, m, now)
    };
    match chosen {
        None => abort(env, m, "-failover-abort-no-good-slave", now),
        Some(name) => {
            let t = Target::Replica(name.clone());
            let desc = describe(env, m, &t);
            env.event(Level::Warning, "+selected-slave", desc.clone());
            if let Some(r) = m.replicas.get_mut(&name) {
                r.flags |= flag::PROMOTED;
            }
            m.promoted = Some(name);
            m.failover_state = FailoverState::SendSlaveofNoOne;
            m.failover_state_change_time = now;
            env.event(Level::Notice, "+failover-state-send-slaveof-noone", desc);
        }
    }
}

fn send_slaveof_noone(env: &mut Env, m: &mut Master, now: i64) {
    let Some(name) = m.promoted.clone() else {
        abort(env, m, "-failover-abort-slave-timeout", now);
        return;
    };
    if m.sync_failover.as_ref().is_some_and(|sf| now > sf.frozen_until()) {
        // The replicas may be back with the old master: promoting now could leave two
        // masters committing writes.
        abort_because(env, m, "-failover-abort-freeze-expired", "the promotion could not be sent in time", now);
        return;
    }
    let disconnected = m.replicas.get(&name).is_none_or(|r| r.link.disconnected);
    if disconnected {
        // Keep trying until the failover timeout.
        if now - m.failover_state_change_time > m.failover_timeout {
            abort(env, m, "-failover-abort-slave-timeout", now);
        }
        return;
    }
    let t = Target::Replica(name);
    let sent = if m.coordinated { send_coordinated_failover(env, m, &t, now) } else { send_slaveof(env, m, &t, None) };
    if !sent {
        return;
    }
    let desc = describe(env, m, &t);
    env.event(Level::Notice, "+failover-state-wait-promotion", desc);
    m.failover_state = FailoverState::WaitPromotion;
    m.failover_state_change_time = now;
}

/// Asks the master itself to hand over to the chosen replica with `FAILOVER TO`: it pauses
/// writes, waits until the replica acknowledged every byte, demotes itself and makes the
/// replica master (PSYNC FAILOVER). No acknowledged write is lost, unlike SLAVEOF NO ONE on
/// a replica that may lag. The promotion is then seen in the replica's INFO as usual; if
/// the master refuses or times out, the wait for promotion times out and the failover is
/// aborted.
fn send_coordinated_failover(env: &mut Env, m: &mut Master, t: &Target, now: i64) -> bool {
    let Some(addr) = m
        .replicas
        .get(match t {
            Target::Replica(n) => n.as_str(),
            _ => "",
        })
        .map(|r| r.addr.clone())
    else {
        return false;
    };
    if m.inst.link.disconnected {
        if now - m.failover_state_change_time > m.failover_timeout {
            abort(env, m, "-failover-abort-master-unreachable", now);
        }
        return false;
    }
    let host = addr.announced(env.settings.announce_hostnames).to_string();
    let (port, timeout) = (addr.port.to_string(), m.failover_timeout.to_string());
    let renamed = m.renamed.clone();
    send(env, &renamed, &mut m.inst, false, &["FAILOVER", "TO", &host, &port, "TIMEOUT", &timeout], Expect::Discard)
}

/// Points the remaining replicas at the promoted one, `parallel-syncs` at a time; in sync
/// mode the frozen ones all at once (see `freeze::sent_to`).
fn reconf_next_replicas(env: &mut Env, m: &mut Master, now: i64) {
    let Some(promoted) = m.promoted_replica().map(|p| p.addr.clone()) else {
        detect_end(env, m, now);
        return;
    };
    let mut in_progress = m
        .replicas
        .iter()
        .filter(|(n, r)| r.has(flag::RECONF_SENT | flag::RECONF_INPROG) && !freeze::sent_to(m, n))
        .count() as i64;
    let names: Vec<String> = m.replicas.keys().cloned().collect();
    for name in names {
        let unthrottled = freeze::sent_to(m, &name);
        if in_progress >= m.parallel_syncs && !unthrottled {
            continue;
        }
        let t = Target::Replica(name.clone());
        let desc = describe(env, m, &t);
        let Some(r) = m.replicas.get_mut(&name) else {
            continue;
        };
        if r.has(flag::PROMOTED | flag::RECONF_DONE) {
            continue;
        }
        // A replica that does not move on is counted as done; the usual config checks
        // will fix it later.
        if r.has(flag::RECONF_SENT) && now - r.replica.reconf_sent_time > env.timing.slave_reconf_timeout {
            env.event(Level::Notice, "-slave-reconf-sent-timeout", desc.clone());
            r.flags &= !flag::RECONF_SENT;
            r.flags |= flag::RECONF_DONE;
        }
        if r.has(flag::RECONF_SENT | flag::RECONF_INPROG) || r.link.disconnected {
            continue;
        }
        let to = (promoted.announced(env.settings.announce_hostnames).to_string(), promoted.port);
        if send_slaveof(env, m, &t, Some(to)) {
            if let Some(r) = m.replicas.get_mut(&name) {
                r.flags |= flag::RECONF_SENT;
                r.replica.reconf_sent_time = now;
            }
            env.event(Level::Notice, "+slave-reconf-sent", desc);
            if !unthrottled {
                in_progress += 1;
            }
        }
    }
    detect_end(env, m, now);
}

fn detect_end(env: &mut Env, m: &mut Master, now: i64) {
    let elapsed = now - m.failover_state_change_time;
    let Some(promoted) = m.promoted_replica() else {
        return;
    };
    if promoted.has(flag::S_DOWN) {
        return;
    }
    let promoted_addr = promoted.addr.clone();
    let mut not_reconfigured =
        m.replicas.values().filter(|r| !r.has(flag::PROMOTED | flag::RECONF_DONE) && !r.has(flag::S_DOWN)).count();
    let mut timeout = false;
    if elapsed > m.failover_timeout {
        not_reconfigured = 0;
        timeout = true;
        let desc = env.describe(&m.inst, None);
        env.event(Level::Warning, "+failover-end-for-timeout", desc);
    }
    if not_reconfigured == 0 {
        let desc = env.describe(&m.inst, None);
        env.event(Level::Warning, "+failover-end", desc);
        m.failover_state = FailoverState::UpdateConfig;
        m.failover_state_change_time = now;
    }
    if timeout {
        // Best effort for the stragglers.
        let names: Vec<String> = m.replicas.keys().cloned().collect();
        for name in names {
            let skip = m
                .replicas
                .get(&name)
                .is_none_or(|r| r.has(flag::PROMOTED | flag::RECONF_DONE | flag::RECONF_SENT) || r.link.disconnected);
            if skip {
                continue;
            }
            let t = Target::Replica(name.clone());
            let to = (promoted_addr.announced(env.settings.announce_hostnames).to_string(), promoted_addr.port);
            if send_slaveof(env, m, &t, Some(to)) {
                let desc = describe(env, m, &t);
                env.event(Level::Notice, "+slave-reconf-sent-be", desc);
                if let Some(r) = m.replicas.get_mut(&name) {
                    r.flags |= flag::RECONF_SENT;
                }
            }
        }
    }
}

/// Gives up a failover that has not reached the promotion yet.
pub fn abort(env: &mut Env, m: &mut Master, why: &str, now: i64) {
    let desc = env.describe(&m.inst, None);
    give_up(env, m, why, desc, now);
}

/// `abort`, with the reason in the event (`… #<detail>`).
pub fn abort_because(env: &mut Env, m: &mut Master, why: &str, detail: &str, now: i64) {
    let desc = env.describe(&m.inst, None);
    give_up(env, m, why, format!("{desc} #{detail}"), now);
}

fn give_up(env: &mut Env, m: &mut Master, why: &str, message: String, now: i64) {
    env.event(Level::Warning, why, message);
    freeze::release(env, m);
    m.inst.flags &= !(flag::FAILOVER_IN_PROGRESS | flag::FORCE_FAILOVER);
    m.failover_state = FailoverState::None;
    m.coordinated = false;
    m.failover_state_change_time = now;
    if let Some(name) = m.promoted.take() {
        if let Some(r) = m.replicas.get_mut(&name) {
            r.flags &= !flag::PROMOTED;
        }
    }
}

/// The failover is complete: the promoted replica becomes the master we monitor.
pub fn switch_to_promoted(env: &mut Env, m: &mut Master, now: i64) {
    let hn = env.settings.announce_hostnames;
    let new = m.promoted_replica().map(|p| p.addr.clone()).unwrap_or_else(|| m.inst.addr.clone());
    let msg =
        format!("{} {} {} {} {}", m.name(), m.inst.addr.announced(hn), m.inst.addr.port, new.announced(hn), new.port);
    env.event(Level::Warning, "+switch-master", msg);
    reset_and_change_address(env, m, &new.host, new.port as i64, now);
}

pub const RESET_NO_SENTINELS: u32 = 1;
pub const RESET_GENERATE_EVENT: u32 = 2;

/// Forgets replicas (and sentinels unless told not to) and runtime state, and reconnects;
/// a failover in progress is dropped.
pub fn reset(env: &mut Env, m: &mut Master, flags: u32, now: i64) {
    if m.failover_state != FailoverState::UpdateConfig {
        // A failover dropped half-way: the replicas it froze go back to their master.
        freeze::release(env, m);
    }
    m.sync_failover = None;
    // Whatever INFO said about sync mode and history was about the old address.
    m.sync = None;
    m.history = None;
    m.committed_history = None;
    for (_, mut r) in std::mem::take(&mut m.replicas) {
        env.close_instance_links(&mut r);
    }
    if flags & RESET_NO_SENTINELS == 0 {
        for (_, mut s) in std::mem::take(&mut m.sentinels) {
            env.close_instance_links(&mut s);
        }
    }
    env.close_instance_links(&mut m.inst);
    // Reconnect on the next tick: the first PING to the (possibly new) address then has a
    // whole down-after period to be answered.
    m.inst.link.last_reconn_time = 0;
    m.inst.flags = 0;
    m.leader = None;
    m.failover_state = FailoverState::None;
    m.failover_state_change_time = 0;
    // After a reset a failover may start again at once.
    m.failover_start_time = 0;
    m.promoted = None;
    m.coordinated = false;
    m.inst.runid = None;
    m.inst.replica.master_host = None;
    m.inst.link.act_ping_time = now;
    m.inst.link.last_ping_time = 0;
    m.inst.link.last_avail_time = now;
    m.inst.link.last_pong_time = now;
    m.inst.role_reported_time = now;
    m.inst.role_reported = Role::Master;
    if flags & RESET_GENERATE_EVENT != 0 {
        let desc = env.describe(&m.inst, None);
        env.event(Level::Warning, "+reset-master", desc);
    }
}

/// Moves a master to a new address, keeping its known replicas and adding the old master
/// address as a replica, so the old master is watched and reconfigured when it returns.
pub fn reset_and_change_address(env: &mut Env, m: &mut Master, host: &str, port: i64, now: i64) -> bool {
    let Ok(new) = Addr::new(host, port, env.settings.resolve_hostnames, false, env.resolver.as_ref()) else {
        return false;
    };
    let mut keep: Vec<Addr> = m.replicas.values().filter(|r| !r.addr.same(&new)).map(|r| r.addr.clone()).collect();
    if !new.same(&m.inst.addr) {
        keep.push(m.inst.addr.clone());
    }
    reset(env, m, RESET_NO_SENTINELS, now);
    // What the other sentinels said about the old address says nothing about the new one;
    // keeping it would turn the first missed PING into an instant ODOWN.
    for s in m.sentinels.values_mut() {
        s.flags &= !flag::MASTER_DOWN;
        s.leader = None;
    }
    m.inst.addr = new;
    m.inst.o_down_since = 0;
    m.inst.s_down_since = 0;
    for a in keep {
        crate::discovery::add_replica(env, m, a, now);
    }
    env.flush_pending = true;
    true
}
