//! Learning the topology: INFO replies (run ids, roles, replicas of a master, the replica's
//! view of its master) and hello messages (other sentinels, newer master configurations).
//! Also the reactions that follow from what INFO shows: a promotion completing, a replica
//! pointing at the wrong master, an old master coming back.

use crate::addr::Addr;
use crate::env::{Env, Level, Target};
use crate::hello::Hello;
use crate::info::{self, InfoReport};
use crate::instance::{flag, Instance, Kind, Role};
use crate::links::{describe, inst_mut, send_slaveof};
use crate::master::{FailoverState, History, Master, SyncStatus};
use crate::{failover, monitor};
use std::collections::BTreeMap;

pub fn refresh_info(env: &mut Env, m: &mut Master, t: &Target, text: &str, now: i64) {
    let report = info::parse(text);
    let desc = describe(env, m, t);
    let reboot_down_after = m.reboot_down_after;
    let Some(i) = inst_mut(m, t) else {
        return;
    };
    i.info = Some(text.to_string());
    i.master_link_down_time = report.master_link_down_ms;
    let mut rebooted = false;
    if let Some(id) = &report.run_id {
        match &i.runid {
            None => i.runid = Some(id.clone()),
            Some(old) if old != id => {
                env.event(Level::Notice, "+reboot", desc.clone());
                if i.kind == Kind::Master && reboot_down_after != 0 {
                    i.flags |= flag::MASTER_REBOOT;
                    rebooted = true;
                }
                i.runid = Some(id.clone());
            }
            _ => {}
        }
    }
    let role = report.role.unwrap_or(Role::Unknown);
    if role == Role::Replica {
        update_replica_fields(i, &report, now);
    }
    i.info_refresh = now;
    let role_changed = role != i.role_reported;
    if role_changed {
        i.role_reported_time = now;
        i.role_reported = role;
        if role == Role::Replica {
            i.replica.conf_change_time = now;
        }
    }
    let kind = i.kind;
    if rebooted {
        m.reboot_since = now;
    }
    if kind == Kind::Master {
        if role == Role::Master {
            record_sync_status(m, &report);
        }
        discover_replicas(env, m, &report.replicas, now);
    }
    if role_changed {
        let coherent = matches!((kind, role), (Kind::Master, Role::Master) | (Kind::Replica, Role::Replica));
        let what = if role == Role::Master { "master" } else { "slave" };
        let name = if coherent { "+role-change" } else { "-role-change" };
        env.event(Level::Verbose, name, format!("{desc} new reported role is {what}"));
    }
    // In TILT we keep learning but take no action.
    if env.tilt {
        return;
    }
    if let Target::Replica(name) = t {
        match role {
            Role::Master => replica_became_master(env, m, name, &desc, now),
            Role::Replica => {
                fix_replica_config(env, m, name, &desc, now);
                track_reconfiguration(env, m, name, &desc);
            }
            Role::Unknown => {}
        }
    }
}

fn update_replica_fields(i: &mut Instance, r: &InfoReport, now: i64) {
    if let Some(h) = &r.master_host {
        if !i.replica.master_host.as_deref().is_some_and(|old| old.eq_ignore_ascii_case(h)) {
            i.replica.master_host = Some(h.clone());
            i.replica.conf_change_time = now;
        }
    }
    if let Some(p) = r.master_port {
        if i.replica.master_port != p {
            i.replica.master_port = p;
            i.replica.conf_change_time = now;
        }
    }
    if let Some(up) = r.master_link_up {
        i.replica.master_link_up = up;
    }
    if let Some(p) = r.priority {
        i.replica.priority = p;
    }
    if let Some(o) = r.repl_offset {
        i.replica.repl_offset = o;
    }
    if let Some(a) = r.announced {
        i.replica.announced = a;
    }
    // Absent (a Redis replica, or a ferrokv one without the guard): not refusing.
    i.replica.sync_frozen = r.sync_frozen.unwrap_or(false);
    i.replica.empty_master_refused = r.empty_master_refused.unwrap_or(false);
    i.replica.replid = r.replid.clone();
}

/// Keeps what a master's INFO says about synchronous replication and its history. The
/// history under which it last committed writes survives a restart that starts a new one
/// (a master that came back empty): its replicas still hold that one.
fn record_sync_status(m: &mut Master, r: &InfoReport) {
    m.sync = r.sync_replicas.map(|replicas| SyncStatus {
        replicas,
        lease_ms: r.sync_lease_ms.unwrap_or(0),
        acking: r.sync_acking.unwrap_or(0),
        committed_offset: r.sync_committed_offset.unwrap_or(0),
        fenced: r.sync_fenced.unwrap_or(false),
    });
    m.history = r.replid.as_ref().map(|replid| History {
        replid: replid.clone(),
        replid2: r.replid2.clone(),
        second_offset: r.second_repl_offset.unwrap_or(-1),
    });
    if m.sync.as_ref().is_some_and(|s| s.replicas > 0 && !s.fenced) && m.history.is_some() {
        m.committed_history = m.history.clone();
    }
}

fn discover_replicas(env: &mut Env, m: &mut Master, found: &[(String, i64)], now: i64) {
    for (ip, port) in found {
        let Ok(addr) = Addr::new(ip, *port, env.settings.resolve_hostnames, true, env.resolver.as_ref()) else {
            continue;
        };
        if m.find_replica_by_addr(&addr).is_some() {
            continue;
        }
        if add_replica(env, m, addr, now).is_some() {
            env.flush_pending = true;
        }
    }
}

/// Adds a replica and announces it with `+slave`. None if one with that name exists.
pub fn add_replica(env: &mut Env, m: &mut Master, addr: Addr, now: i64) -> Option<String> {
    let name = addr.name(env.settings.announce_hostnames);
    if m.replicas.contains_key(&name) {
        return None;
    }
    let r = Instance::new(Kind::Replica, name.clone(), addr, m.inst.down_after, now);
    m.replicas.insert(name.clone(), r);
    let desc = describe(env, m, &Target::Replica(name.clone()));
    env.event(Level::Notice, "+slave", desc);
    Some(name)
}

fn replica_became_master(env: &mut Env, m: &mut Master, name: &str, desc: &str, now: i64) {
    let Some(r) = m.replicas.get(name) else {
        return;
    };
    let promoted = r.has(flag::PROMOTED);
    if promoted && m.in_failover() && m.failover_state == FailoverState::WaitPromotion {
        // The promotion worked. Claim the configuration with the epoch we won, so every
        // other sentinel adopts it through our hellos (unless a newer one exists).
        m.config_epoch = m.failover_epoch;
        m.failover_state = FailoverState::ReconfSlaves;
        m.failover_state_change_time = now;
        env.flush_pending = true;
        env.event(Level::Warning, "+promoted-slave", desc.to_string());
        if env.simfailure & crate::env::SIMFAILURE_CRASH_AFTER_PROMOTION != 0 {
            env.outputs.push_back(crate::env::Output::Crash);
        }
        let mdesc = env.describe(&m.inst, None);
        env.event(Level::Warning, "+failover-state-reconf-slaves", mdesc);
        monitor::force_hello_update(env, m);
        return;
    }
    // A replica turned master without us: after a grace period (to learn of a newer
    // configuration first), make it a replica again if our master is healthy.
    let wait = env.timing.publish_period * 4;
    if !promoted
        && m.looks_sane(now, env.timing.info_period)
        && r.no_down_for(wait, now)
        && now - r.role_reported_time > wait
    {
        let to = master_target(env, m);
        if send_slaveof(env, m, &Target::Replica(name.to_string()), Some(to)) {
            env.event(Level::Notice, "+convert-to-slave", desc.to_string());
        }
    }
}

fn master_target(env: &Env, m: &Master) -> (String, u16) {
    (m.inst.addr.announced(env.settings.announce_hostnames).to_string(), m.inst.addr.port)
}

fn fix_replica_config(env: &mut Env, m: &mut Master, name: &str, desc: &str, now: i64) {
    let Some(r) = m.replicas.get(name) else {
        return;
    };
    let points_elsewhere = r.replica.master_port != m.inst.addr.port as i64
        || !r.replica.master_host.as_deref().is_some_and(|h| m.inst.addr.matches_host(h, env.resolver.as_ref()));
    if !points_elsewhere {
        return;
    }
    let wait = m.failover_timeout;
    if m.looks_sane(now, env.timing.info_period) && r.no_down_for(wait, now) && now - r.replica.conf_change_time > wait
    {
        let to = master_target(env, m);
        if send_slaveof(env, m, &Target::Replica(name.to_string()), Some(to)) {
            env.event(Level::Notice, "+fix-slave-config", desc.to_string());
        }
    }
}

fn track_reconfiguration(env: &mut Env, m: &mut Master, name: &str, desc: &str) {
    let promoted_addr = m.promoted_replica().map(|p| p.addr.clone());
    let Some(r) = m.replicas.get_mut(name) else {
        return;
    };
    if !r.has(flag::RECONF_SENT | flag::RECONF_INPROG) {
        return;
    }
    if r.has(flag::RECONF_SENT) {
        if let (Some(p), Some(h)) = (&promoted_addr, &r.replica.master_host) {
            if p.matches_host(h, env.resolver.as_ref()) && r.replica.master_port == p.port as i64 {
                r.flags &= !flag::RECONF_SENT;
                r.flags |= flag::RECONF_INPROG;
                env.event(Level::Notice, "+slave-reconf-inprog", desc.to_string());
            }
        }
    }
    if r.has(flag::RECONF_INPROG) && r.replica.master_link_up {
        r.flags &= !flag::RECONF_INPROG;
        r.flags |= flag::RECONF_DONE;
        env.event(Level::Notice, "+slave-reconf-done", desc.to_string());
    }
}

/// Handles a hello message heard on an instance's hello channel or sent to us directly.
pub fn process_hello(env: &mut Env, masters: &mut BTreeMap<String, Master>, text: &str, now: i64) {
    let Some(h) = Hello::parse(text) else {
        return;
    };
    if h.runid == env.myid {
        return;
    }
    let Some(m) = masters.get_mut(&h.master_name) else {
        return;
    };
    let known = m.sentinels.values().any(|s| {
        s.runid.as_deref() == Some(&h.runid)
            && s.addr.matches_host(&h.ip, env.resolver.as_ref())
            && s.addr.port as i64 == h.port
    });
    if !known {
        learn_sentinel(env, masters, &h, now);
    }
    if h.current_epoch > env.current_epoch {
        env.current_epoch = h.current_epoch;
        env.flush_pending = true;
        env.event(Level::Warning, "+new-epoch", env.current_epoch.to_string());
    }
    let Some(m) = masters.get_mut(&h.master_name) else {
        return;
    };
    if !m.sentinels.contains_key(&h.runid) {
        return;
    }
    if m.config_epoch < h.master_config_epoch {
        m.config_epoch = h.master_config_epoch;
        let moved =
            h.master_port != m.inst.addr.port as i64 || !m.inst.addr.matches_host(&h.master_ip, env.resolver.as_ref());
        if moved {
            let sdesc = describe(env, m, &Target::Sentinel(h.runid.clone()));
            env.event(Level::Warning, "+config-update-from", sdesc);
            let hn = env.settings.announce_hostnames;
            let msg = format!(
                "{} {} {} {} {}",
                m.name(),
                m.inst.addr.announced(hn),
                m.inst.addr.port,
                h.master_ip,
                h.master_port
            );
            env.event(Level::Warning, "+switch-master", msg);
            failover::reset_and_change_address(env, m, &h.master_ip, h.master_port, now);
        }
    }
    if let Some(s) = m.sentinels.get_mut(&h.runid) {
        s.last_hello_time = now;
    }
}

/// A sentinel we did not know at this address: it moved (same run id), replaced another
/// one at this address, or is new.
fn learn_sentinel(env: &mut Env, masters: &mut BTreeMap<String, Master>, h: &Hello, now: i64) {
    let Some(m) = masters.get_mut(&h.master_name) else {
        return;
    };
    let removed = remove_sentinel(env, m, &h.runid);
    if removed > 0 {
        let mdesc = env.describe(&m.inst, None);
        env.event(
            Level::Notice,
            "+sentinel-address-switch",
            format!("{mdesc} ip {} port {} for {}", h.ip, h.port, h.runid),
        );
    } else {
        let other = m
            .sentinels
            .iter()
            .find(|(_, s)| s.addr.matches_host(&h.ip, env.resolver.as_ref()) && s.addr.port as i64 == h.port)
            .map(|(k, _)| k.clone());
        if let Some(obsolete) = other {
            // Another run id at this address: that sentinel was replaced (restarted
            // without its config). Forget the old one everywhere.
            let desc = describe(env, m, &Target::Sentinel(obsolete.clone()));
            env.event(Level::Notice, "+sentinel-invalid-addr", desc);
            for mm in masters.values_mut() {
                remove_sentinel(env, mm, &obsolete);
            }
        }
    }
    let Some(m) = masters.get_mut(&h.master_name) else {
        return;
    };
    let Ok(addr) = Addr::new(&h.ip, h.port, env.settings.resolve_hostnames, true, env.resolver.as_ref()) else {
        return;
    };
    let mut s = Instance::new(Kind::Sentinel, h.runid.clone(), addr.clone(), m.inst.down_after, now);
    s.runid = Some(h.runid.clone());
    m.sentinels.insert(h.runid.clone(), s);
    if removed == 0 {
        let desc = describe(env, m, &Target::Sentinel(h.runid.clone()));
        env.event(Level::Notice, "+sentinel", desc);
    } else {
        // The same sentinel under a new address: update it for every master.
        for mm in masters.values_mut() {
            if let Some(s) = mm.sentinels.get_mut(&h.runid) {
                if !s.addr.same(&addr) {
                    s.addr = addr.clone();
                    env.close_instance_links(s);
                }
            }
        }
    }
    env.flush_pending = true;
}

fn remove_sentinel(env: &mut Env, m: &mut Master, runid: &str) -> usize {
    let keys: Vec<String> =
        m.sentinels.iter().filter(|(_, s)| s.runid.as_deref() == Some(runid)).map(|(k, _)| k.clone()).collect();
    for k in &keys {
        if let Some(mut s) = m.sentinels.remove(k) {
            env.close_instance_links(&mut s);
        }
    }
    keys.len()
}
