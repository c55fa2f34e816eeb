//! The monitoring half: periodic PING/INFO/hello, reading PING and PUBLISH replies,
//! subjective down (SDOWN), objective down (ODOWN) from the other sentinels' answers, and
//! asking them.

use crate::env::{Env, Expect, Level, Target};
use crate::hello::{Hello, CHANNEL};
use crate::instance::{flag, Instance, Kind, Role};
use crate::links::{describe, inst, inst_mut, send, send_ping};
use crate::master::{FailoverState, Master};
use ferrokv_resp::Frame;

/// Above this many unanswered commands a link gets no more periodic traffic.
const MAX_PENDING_COMMANDS: u32 = 100;

pub fn send_periodic(env: &mut Env, m: &mut Master, t: &Target, now: i64) {
    let master_busy = m.inst.has(flag::O_DOWN | flag::FAILOVER_IN_PROGRESS);
    let renamed = m.renamed.clone();
    let Some(i) = inst_mut(m, t) else {
        return;
    };
    if i.link.disconnected || i.link.pending_commands >= MAX_PENDING_COMMANDS {
        return;
    }
    // While the master is in trouble, watch replicas every second: one of them may be
    // promoted by another sentinel or by an operator. Same for a replica that lost its
    // master, to know for how long.
    let info_period = if i.kind == Kind::Replica && i.has(flag::PROMOTED | flag::RECONF_SENT | flag::RECONF_INPROG) {
        // A replica being promoted or re-pointed: the failover waits for its INFO to say
        // it is done, so ask often (a tenth of Redis's once a second).
        100
    } else if i.kind == Kind::Replica && (master_busy || i.master_link_down_time != 0) {
        1000
    } else {
        env.timing.info_period
    };
    let ping_period = i.down_after.min(env.timing.ping_period);
    if i.kind != Kind::Sentinel && (i.info_refresh == 0 || now - i.info_refresh > info_period) {
        send(env, &renamed, i, false, &["INFO"], Expect::Info);
    }
    if now - i.link.last_pong_time > ping_period && now - i.link.last_ping_time > ping_period / 2 {
        send_ping(env, &renamed, i, now);
    }
    if now - i.last_pub_time > env.timing.publish_period {
        send_hello(env, m, t);
    }
}

/// Publishes our hello (who we are, and the master address we believe in) through one
/// instance.
pub fn send_hello(env: &mut Env, m: &mut Master, t: &Target) -> bool {
    let cur = m.current_addr().clone();
    let Some(i) = inst(m, t) else {
        return false;
    };
    if i.link.disconnected {
        return false;
    }
    let Some(ip) = env.settings.announce_ip.clone().or_else(|| i.link.local_ip.clone()) else {
        return false;
    };
    let port = if env.settings.announce_port != 0 { env.settings.announce_port } else { env.settings.port };
    let hello = Hello {
        ip,
        port: port as i64,
        runid: env.myid.clone(),
        current_epoch: env.current_epoch,
        master_name: m.name().to_string(),
        master_ip: cur.announced(env.settings.announce_hostnames).to_string(),
        master_port: cur.port as i64,
        master_config_epoch: m.config_epoch,
    }
    .format();
    let renamed = m.renamed.clone();
    let Some(i) = inst_mut(m, t) else {
        return false;
    };
    send(env, &renamed, i, false, &["PUBLISH", CHANNEL, &hello], Expect::Publish)
}

/// Makes the next tick publish hello messages everywhere for this master, so a new
/// configuration spreads at once rather than within two seconds.
pub fn force_hello_update(env: &Env, m: &mut Master) {
    let period = env.timing.publish_period + 1;
    let all = std::iter::once(&mut m.inst).chain(m.replicas.values_mut()).chain(m.sentinels.values_mut());
    for i in all {
        if i.last_pub_time >= period {
            i.last_pub_time -= period;
        }
    }
}

pub fn on_ping_reply(env: &mut Env, m: &mut Master, t: &Target, reply: &Frame, now: i64) {
    let renamed = m.renamed.clone();
    let Some(i) = inst_mut(m, t) else {
        return;
    };
    if let Frame::Simple(s) | Frame::Error(s) = reply {
        let ok = s.starts_with(b"PONG") || s.starts_with(b"LOADING") || s.starts_with(b"MASTERDOWN");
        if ok {
            i.link.last_avail_time = now;
            i.link.act_ping_time = 0;
            if i.has(flag::MASTER_REBOOT) && s.starts_with(b"PONG") {
                i.flags &= !flag::MASTER_REBOOT;
            }
        } else if s.starts_with(b"BUSY") && i.has(flag::S_DOWN) && !i.has(flag::SCRIPT_KILL_SENT) {
            // A script keeps the instance busy: try to free it before it is failed over.
            send(env, &renamed, i, false, &["SCRIPT", "KILL"], Expect::Discard);
            i.flags |= flag::SCRIPT_KILL_SENT;
        }
    }
    i.link.last_pong_time = now;
}

pub fn on_publish_reply(m: &mut Master, t: &Target, reply: &Frame, now: i64) {
    if let Some(i) = inst_mut(m, t) {
        if !reply.is_error() {
            i.last_pub_time = now;
        }
    }
}

/// Records another sentinel's answer to `is-master-down-by-addr`: its view of the master
/// and, when it voted, for whom.
pub fn on_is_master_down_reply(env: &mut Env, m: &mut Master, t: &Target, reply: &Frame, now: i64) {
    let Frame::Array(items) = reply else {
        return;
    };
    let (Some(Frame::Integer(down)), Some(leader), Some(Frame::Integer(epoch))) =
        (items.first(), items.get(1), items.get(2))
    else {
        return;
    };
    if items.len() != 3 {
        return;
    }
    let Some(leader) = leader.as_bytes().filter(|_| matches!(leader, Frame::Bulk(_) | Frame::Simple(_))) else {
        return;
    };
    let leader = String::from_utf8_lossy(leader).into_owned();
    let Some(i) = inst_mut(m, t) else {
        return;
    };
    i.last_master_down_reply_time = now;
    if *down == 1 {
        i.flags |= flag::MASTER_DOWN;
    } else {
        i.flags &= !flag::MASTER_DOWN;
    }
    if leader != "*" {
        if i.leader_epoch as i64 != *epoch {
            let name = i.name.clone();
            env.log(Level::Warning, format!("{name} voted for {leader} {epoch}"));
        }
        i.leader = Some(leader);
        i.leader_epoch = (*epoch).max(0) as u64;
    }
}

/// A replica of this master whose last INFO says it refuses the master's full sync because
/// the master came back empty (`empty_master_refused:1`, ferrokv's empty-master guard):
/// the master lost its dataset, and only a failover to that replica gets it back.
pub fn empty_master_refused_by(env: &Env, m: &Master, now: i64) -> Option<String> {
    refusing_empty_master(env, m, now).next().map(|r| r.name.clone())
}

/// The replicas [`empty_master_refused_by`] looks for.
pub fn refusing_empty_master<'a>(env: &'a Env, m: &'a Master, now: i64) -> impl Iterator<Item = &'a Instance> {
    m.replicas.values().filter(move |r| {
        // A replica whose link is up is following its master, whatever an older refusal
        // left in its INFO.
        r.replica.empty_master_refused
            && !r.replica.master_link_up
            && r.role_reported == Role::Replica
            && now - r.info_refresh <= env.timing.info_period * 3
            && r.replica.master_port == m.inst.addr.port as i64
            && r.replica.master_host.as_deref().is_some_and(|h| m.inst.addr.matches_host(h, env.resolver.as_ref()))
    })
}

pub fn check_sdown(env: &mut Env, m: &mut Master, t: &Target, now: i64) {
    let reboot_down_after = m.reboot_down_after;
    let reboot_since = m.reboot_since;
    let refused_by = if *t == Target::Master { empty_master_refused_by(env, m, now) } else { None };
    let desc = describe(env, m, t);
    let Some(i) = inst_mut(m, t) else {
        return;
    };
    let elapsed = if i.link.act_ping_time != 0 {
        now - i.link.act_ping_time
    } else if i.link.disconnected {
        now - i.link.last_avail_time
    } else {
        0
    };
    // A connection that looks alive but stopped answering (half-open TCP, a peer behind a
    // partition) is dropped so the next tick reconnects.
    if let Some(cmd) = i.link.cmd {
        if now - i.link.cmd_conn_time > env.timing.min_link_reconnect_period
            && i.link.act_ping_time != 0
            && now - i.link.act_ping_time > i.down_after / 2
            && now - i.link.last_pong_time > i.down_after / 2
        {
            env.close_link(cmd);
            i.link.cmd = None;
            i.link.pending_commands = 0;
            i.link.disconnected = true;
        }
    }
    if let Some(pc) = i.link.pubsub {
        if now - i.link.pubsub_conn_time > env.timing.min_link_reconnect_period
            && now - i.link.pubsub_last_activity > env.timing.publish_period * 3
        {
            env.close_link(pc);
            i.link.pubsub = None;
            i.link.disconnected = true;
        }
    }
    let master_claims_replica = i.kind == Kind::Master
        && i.role_reported == Role::Replica
        && now - i.role_reported_time > i.down_after + env.timing.info_period * 2;
    let rebooted_too_long = i.has(flag::MASTER_REBOOT) && now - reboot_since > reboot_down_after;
    if elapsed > i.down_after || master_claims_replica || rebooted_too_long || refused_by.is_some() {
        if !i.has(flag::S_DOWN) {
            if let Some(replica) = &refused_by {
                env.event(Level::Warning, "+empty-master", format!("{desc} #refused by slave {replica}"));
            }
            i.s_down_since = now;
            i.flags |= flag::S_DOWN;
            env.event(Level::Warning, "+sdown", desc);
        }
    } else if i.has(flag::S_DOWN) {
        i.flags &= !(flag::S_DOWN | flag::SCRIPT_KILL_SENT);
        env.event(Level::Warning, "-sdown", desc);
    }
}

/// ODOWN: enough sentinels (us included) report the master down. This is a weak quorum:
/// the reports are not from one instant.
pub fn check_odown(env: &mut Env, m: &mut Master, now: i64) {
    let mut votes = 0u32;
    let mut odown = false;
    if m.inst.has(flag::S_DOWN) {
        votes = 1 + m.sentinels.values().filter(|s| s.has(flag::MASTER_DOWN)).count() as u32;
        odown = votes >= m.quorum;
    }
    if odown {
        if !m.inst.has(flag::O_DOWN) {
            let desc = env.describe(&m.inst, None);
            env.event(Level::Warning, "+odown", format!("{desc} #quorum {votes}/{}", m.quorum));
            m.inst.flags |= flag::O_DOWN;
            m.inst.o_down_since = now;
        }
    } else if m.inst.has(flag::O_DOWN) {
        let desc = env.describe(&m.inst, None);
        env.event(Level::Warning, "-odown", desc);
        m.inst.flags &= !flag::O_DOWN;
    }
}

/// While we see the master down, ask the other sentinels whether they do too (and, once
/// we try to fail it over, for their vote) every ask period, or now when `forced`.
pub fn ask_other_sentinels(env: &mut Env, m: &mut Master, forced: bool, now: i64) {
    let master_down = m.inst.has(flag::S_DOWN);
    let announced = m.inst.addr.announced(env.settings.announce_hostnames).to_string();
    let port = m.inst.addr.port.to_string();
    let runid = if m.failover_state > FailoverState::None { env.myid.clone() } else { "*".to_string() };
    let epoch = env.current_epoch.to_string();
    let renamed = m.renamed.clone();
    for s in m.sentinels.values_mut() {
        // An answer older than a few ask periods no longer counts.
        if now - s.last_master_down_reply_time > env.timing.ask_period * 5 {
            s.flags &= !flag::MASTER_DOWN;
            s.leader = None;
        }
        if !master_down || s.link.disconnected {
            continue;
        }
        if !forced && now - s.last_master_down_reply_time < env.timing.ask_period {
            continue;
        }
        send(
            env,
            &renamed,
            s,
            false,
            &["SENTINEL", "is-master-down-by-addr", &announced, &port, &epoch, &runid],
            Expect::IsMasterDown,
        );
    }
}
