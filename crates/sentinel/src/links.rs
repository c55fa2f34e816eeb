//! Keeping connections to instances and sending them commands: (re)connecting the command
//! and pub/sub links with AUTH and CLIENT SETNAME, renamed commands, and the SLAVEOF
//! transaction.

use crate::addr::is_ip;
use crate::env::{Env, Expect, Target};
use crate::hello::CHANNEL;
use crate::instance::{Instance, Kind};
use crate::master::Master;
use std::collections::BTreeMap;

pub fn inst_mut<'a>(m: &'a mut Master, t: &Target) -> Option<&'a mut Instance> {
    match t {
        Target::Master => Some(&mut m.inst),
        Target::Replica(n) => m.replicas.get_mut(n),
        Target::Sentinel(n) => m.sentinels.get_mut(n),
    }
}

pub fn inst<'a>(m: &'a Master, t: &Target) -> Option<&'a Instance> {
    match t {
        Target::Master => Some(&m.inst),
        Target::Replica(n) => m.replicas.get(n),
        Target::Sentinel(n) => m.sentinels.get(n),
    }
}

/// The event detail (`%@` in Redis) of an instance of this master.
pub fn describe(env: &Env, m: &Master, t: &Target) -> String {
    match t {
        Target::Master => env.describe(&m.inst, None),
        _ => match inst(m, t) {
            Some(i) => env.describe(i, Some(&m.inst)),
            None => env.describe(&m.inst, None),
        },
    }
}

/// Sends a command on the instance's command link (or pub/sub link), after renaming.
/// False when that connection does not exist.
pub fn send(
    env: &mut Env,
    renamed: &BTreeMap<String, String>,
    inst: &mut Instance,
    pubsub: bool,
    args: &[&str],
    expect: Expect,
) -> bool {
    let link = if pubsub { inst.link.pubsub } else { inst.link.cmd };
    let Some(link) = link else {
        return false;
    };
    let mut v: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    if let Some(first) = args.first() {
        v[0] = renamed.get(&first.to_ascii_lowercase()).cloned().unwrap_or_else(|| first.to_string()).into_bytes();
    }
    env.send(link, v, expect);
    if !pubsub {
        inst.link.pending_commands += 1;
    }
    true
}

/// Credentials for an instance: the master's for masters and replicas, the sentinel ones
/// (or our own requirepass) for sentinels.
fn credentials(env: &Env, m: &Master, kind: Kind) -> (Option<String>, Option<String>) {
    match kind {
        Kind::Master | Kind::Replica => (m.auth_user.clone(), m.auth_pass.clone()),
        Kind::Sentinel => match &env.settings.sentinel_pass {
            Some(p) => (env.settings.sentinel_user.clone(), Some(p.clone())),
            None => (None, env.settings.requirepass.clone()),
        },
    }
}

fn auth_and_name(
    env: &mut Env,
    renamed: &BTreeMap<String, String>,
    inst: &mut Instance,
    pubsub: bool,
    creds: &(Option<String>, Option<String>),
) {
    match creds {
        (Some(user), Some(pass)) => {
            send(env, renamed, inst, pubsub, &["AUTH", user, pass], Expect::Discard);
        }
        (None, Some(pass)) => {
            send(env, renamed, inst, pubsub, &["AUTH", pass], Expect::Discard);
        }
        _ => {}
    }
    // Lets an operator spot sentinel connections in CLIENT LIST.
    let short: String = env.myid.chars().take(8).collect();
    let name = format!("sentinel-{short}-{}", if pubsub { "pubsub" } else { "cmd" });
    send(env, renamed, inst, pubsub, &["CLIENT", "SETNAME", &name], Expect::Discard);
}

/// Opens the missing connections of a disconnected instance, at most once per ping period.
pub fn reconnect(env: &mut Env, m: &mut Master, t: &Target, now: i64) {
    let creds = match inst(m, t) {
        Some(i) if i.link.disconnected && i.addr.port != 0 => credentials(env, m, i.kind),
        _ => return,
    };
    let master_name = m.name().to_string();
    let renamed = m.renamed.clone();
    let Some(i) = inst_mut(m, t) else {
        return;
    };
    if now - i.link.last_reconn_time < env.timing.ping_period {
        return;
    }
    i.link.last_reconn_time = now;
    if env.settings.resolve_hostnames && !is_ip(&i.addr.host) {
        // The instance may have come back under a new IP.
        if let Some(ip) = env.resolver.resolve(&i.addr.host) {
            i.addr.ip = ip;
        }
    }
    if i.link.cmd.is_none() {
        let l = env.open_link(&master_name, t.clone(), false, &i.addr.ip, i.addr.port);
        i.link.cmd = Some(l);
        i.link.pending_commands = 0;
        i.link.cmd_conn_time = now;
        auth_and_name(env, &renamed, i, false, &creds);
        send_ping(env, &renamed, i, now);
    }
    if i.kind != Kind::Sentinel && i.link.pubsub.is_none() {
        let l = env.open_link(&master_name, t.clone(), true, &i.addr.ip, i.addr.port);
        i.link.pubsub = Some(l);
        i.link.pubsub_conn_time = now;
        auth_and_name(env, &renamed, i, true, &creds);
        send(env, &renamed, i, true, &["SUBSCRIBE", CHANNEL], Expect::Discard);
    }
    if i.link.cmd.is_some() && (i.kind == Kind::Sentinel || i.link.pubsub.is_some()) {
        i.link.disconnected = false;
    }
}

pub fn send_ping(env: &mut Env, renamed: &BTreeMap<String, String>, i: &mut Instance, now: i64) -> bool {
    if !send(env, renamed, i, false, &["PING"], Expect::Ping) {
        return false;
    }
    i.link.last_ping_time = now;
    // Keep the time of the first unanswered PING: that is how long the instance has been
    // silent.
    if i.link.act_ping_time == 0 {
        i.link.act_ping_time = now;
    }
    true
}

/// Turns an instance into a replica of `to` (or a master with None) through one
/// transaction: SLAVEOF, CONFIG REWRITE so it survives a restart, and CLIENT KILL of
/// normal and pub/sub clients so they reconnect and ask Sentinel where the master is.
/// Replies are not checked: the effect shows in the next INFO, which is asked for at once
/// (behind the EXEC on the same link, so it already describes the new role) rather than
/// at the next INFO period: a failover ends an INFO period sooner. Redis's sentinels wait.
pub fn send_slaveof(env: &mut Env, m: &mut Master, t: &Target, to: Option<(String, u16)>) -> bool {
    let renamed = m.renamed.clone();
    let Some(i) = inst_mut(m, t) else {
        return false;
    };
    let (host, port) = match &to {
        Some((h, p)) => (h.clone(), p.to_string()),
        None => ("NO".to_string(), "ONE".to_string()),
    };
    if !send(env, &renamed, i, false, &["MULTI"], Expect::Discard) {
        return false;
    }
    send(env, &renamed, i, false, &["SLAVEOF", &host, &port], Expect::Discard);
    send(env, &renamed, i, false, &["CONFIG", "REWRITE"], Expect::Discard);
    send(env, &renamed, i, false, &["CLIENT", "KILL", "TYPE", "normal"], Expect::Discard);
    send(env, &renamed, i, false, &["CLIENT", "KILL", "TYPE", "pubsub"], Expect::Discard);
    send(env, &renamed, i, false, &["EXEC"], Expect::Discard);
    send(env, &renamed, i, false, &["INFO"], Expect::Info);
    true
}
