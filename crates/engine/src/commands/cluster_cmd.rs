//! CLUSTER subcommands that change the configuration, and READONLY, READWRITE, ASKING.
//! Outside cluster mode every one of them answers Redis 7.0's "cluster support disabled"
//! error (after the usual arity checks), which is how client libraries and tools tell a
//! standalone server from a cluster node. The views (INFO, NODES, SLOTS…) are in
//! `cluster_view`; the state itself is crates/cluster's, kept in `crate::cluster`.

use crate::cluster::ClusterMode;
use crate::ctx::{int_arg, is, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_cluster::bus::{self, NodeName};
use ferrokv_cluster::nodes_conf::OpenSlot;
use ferrokv_cluster::slot::SLOTS;
use ferrokv_cluster::state::Output;

pub const CLUSTER_DISABLED: &str = "ERR This instance has cluster support disabled";

pub fn cluster_disabled(_c: &mut Ctx) -> CmdResult {
    Err(CmdError::Msg(CLUSTER_DISABLED.into()))
}

/// The cluster state, or the disabled error.
pub(crate) fn mode<'a>(c: &'a mut Ctx) -> Result<&'a mut ClusterMode, CmdError> {
    c.eng.cluster.as_deref_mut().ok_or(CmdError::Msg(CLUSTER_DISABLED.into()))
}

/// getSlotOrReply.
pub(crate) fn slot_arg(a: &[u8]) -> Result<u16, CmdError> {
    match ferrokv_resp::parse_i64(a) {
        Some(n) if (0..SLOTS as i64).contains(&n) => Ok(n as u16),
        _ => Err(CmdError::err("ERR Invalid or out of range slot")),
    }
}

/// A node id argument as the table knows it (Redis looks ids up by their exact bytes).
pub(crate) fn known_node(mode: &ClusterMode, id: &[u8]) -> Option<NodeName> {
    if id.len() != bus::NAME_LEN {
        return None;
    }
    let name = bus::name_from_str(&String::from_utf8_lossy(id));
    mode.core.node(&name).map(|n| n.name)
}

fn unknown_node(id: &[u8]) -> CmdError {
    CmdError::msg(format!("ERR Unknown node {}", String::from_utf8_lossy(id)))
}

fn apply(c: &mut Ctx, outputs: Vec<Output>) {
    c.eng.cluster_apply(outputs);
}

pub fn asking(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    c.client.asking = true;
    c.out().ok();
    Ok(())
}

pub fn readonly(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    c.client.cluster_readonly = true;
    c.out().ok();
    Ok(())
}

pub fn readwrite(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    c.client.cluster_readonly = false;
    c.out().ok();
    Ok(())
}

/// ADDSLOTS, DELSLOTS and their RANGE forms: every argument checked before any change.
fn change_slots(c: &mut Ctx, ranges: bool, del: bool) -> CmdResult {
    mode(c)?;
    if ranges && c.argc() % 2 == 1 {
        return Err(CmdError::msg(format!(
            "ERR wrong number of arguments for '{}' command",
            c.eng.commands.get(c.cmd).fullname()
        )));
    }
    let mut pairs: Vec<(u16, u16)> = Vec::new();
    if ranges {
        for i in (2..c.argc()).step_by(2) {
            let (start, end) = (slot_arg(c.arg(i))?, slot_arg(c.arg(i + 1))?);
            if start > end {
                return Err(CmdError::msg(format!(
                    "ERR start slot number {start} is greater than end slot number {end}"
                )));
            }
            pairs.push((start, end));
        }
    } else {
        for i in 2..c.argc() {
            let slot = slot_arg(c.arg(i))?;
            pairs.push((slot, slot));
        }
    }
    let m = mode(c)?;
    let mut seen = vec![false; SLOTS];
    let mut slots = Vec::new();
    for (start, end) in pairs {
        for slot in start..=end {
            let owned = m.core.slot_owner(slot).is_some();
            if del && !owned {
                return Err(CmdError::msg(format!("ERR Slot {slot} is already unassigned")));
            }
            if !del && owned {
                return Err(CmdError::msg(format!("ERR Slot {slot} is already busy")));
            }
            if std::mem::replace(&mut seen[usize::from(slot)], true) {
                return Err(CmdError::msg(format!("ERR Slot {slot} specified multiple times")));
            }
            slots.push(slot);
        }
    }
    let outputs = if del { m.core.del_slots(&slots) } else { m.core.add_slots(slots) };
    apply(c, outputs);
    c.out().ok();
    Ok(())
}

pub fn addslots(c: &mut Ctx) -> CmdResult {
    change_slots(c, false, false)
}
pub fn delslots(c: &mut Ctx) -> CmdResult {
    change_slots(c, false, true)
}
pub fn addslotsrange(c: &mut Ctx) -> CmdResult {
    change_slots(c, true, false)
}
pub fn delslotsrange(c: &mut Ctx) -> CmdResult {
    change_slots(c, true, true)
}

pub fn flushslots(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    if !c.eng.dbs[0].is_empty() {
        return Err(CmdError::err("ERR DB must be empty to perform CLUSTER FLUSHSLOTS."));
    }
    let outputs = mode(c)?.core.flush_my_slots();
    apply(c, outputs);
    c.out().ok();
    Ok(())
}

pub fn setslot(c: &mut Ctx) -> CmdResult {
    let m = mode(c)?;
    if m.core.myself().is_replica() {
        return Err(CmdError::err("ERR Please use SETSLOT only with masters."));
    }
    let slot = slot_arg(c.arg(2))?;
    let action = c.arg(3);
    let argc = c.argc();
    let lookup = |c: &mut Ctx, unknown_prefix: &str| -> Result<NodeName, CmdError> {
        let id = c.arg(4);
        let m = mode(c)?;
        let Some(name) = known_node(m, id) else {
            return Err(CmdError::msg(format!("ERR {unknown_prefix} {}", String::from_utf8_lossy(id))));
        };
        if m.core.node(&name).is_some_and(|n| n.is_replica()) {
            return Err(CmdError::err("ERR Target node is not a master"));
        }
        Ok(name)
    };
    let me = mode(c)?.core.myself_name();
    let outputs = if is(action, "migrating") && argc == 5 {
        if mode(c)?.core.slot_owner(slot) != Some(me) {
            return Err(CmdError::msg(format!("ERR I'm not the owner of hash slot {slot}")));
        }
        let to = lookup(c, "I don't know about node")?;
        mode(c)?.core.set_slot_open(slot, Some(OpenSlot::Migrating(slot, bus::name_to_string(&to))))
    } else if is(action, "importing") && argc == 5 {
        if mode(c)?.core.slot_owner(slot) == Some(me) {
            return Err(CmdError::msg(format!("ERR I'm already the owner of hash slot {slot}")));
        }
        let from = lookup(c, "I don't know about node")?;
        mode(c)?.core.set_slot_open(slot, Some(OpenSlot::Importing(slot, bus::name_to_string(&from))))
    } else if is(action, "stable") && argc == 4 {
        mode(c)?.core.set_slot_open(slot, None)
    } else if is(action, "node") && argc == 5 {
        let owner = lookup(c, "Unknown node")?;
        let keys = c.eng.count_keys_in_slot(slot);
        mode(c)?.core.set_slot_node(slot, &owner, keys).map_err(CmdError::msg)?
    } else {
        return Err(CmdError::err("ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP"));
    };
    apply(c, outputs);
    c.out().ok();
    Ok(())
}

pub fn bumpepoch(c: &mut Ctx) -> CmdResult {
    let (bumped, epoch, outputs) = mode(c)?.core.bump_epoch();
    apply(c, outputs);
    c.out().simple(&format!("{} {epoch}", if bumped { "BUMPED" } else { "STILL" }));
    Ok(())
}

pub fn set_config_epoch(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    let epoch = int_arg(c.arg(2))?;
    if epoch < 0 {
        return Err(CmdError::msg(format!("ERR Invalid config epoch specified: {epoch}")));
    }
    let outputs = mode(c)?.core.set_config_epoch(epoch as u64).map_err(CmdError::msg)?;
    apply(c, outputs);
    c.out().ok();
    Ok(())
}

pub fn meet(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    let port = ferrokv_resp::parse_i64(c.arg(3)).ok_or_else(|| {
        CmdError::msg(format!("ERR Invalid TCP base port specified: {}", String::from_utf8_lossy(c.arg(3))))
    })?;
    let cport = if c.argc() == 5 {
        ferrokv_resp::parse_i64(c.arg(4)).ok_or_else(|| {
            CmdError::msg(format!("ERR Invalid TCP bus port specified: {}", String::from_utf8_lossy(c.arg(4))))
        })?
    } else {
        port.saturating_add(10000)
    };
    let ip_text = String::from_utf8_lossy(c.arg(2)).into_owned();
    // clusterStartHandshake: a literal address (normalized) and ports that fit.
    let ip = ip_text.parse::<std::net::IpAddr>().ok();
    let (Some(ip), true, true) = (ip, (1..=65535).contains(&port), (1..=65535).contains(&cport)) else {
        return Err(CmdError::msg(format!(
            "ERR Invalid node address specified: {ip_text}:{}",
            String::from_utf8_lossy(c.arg(3))
        )));
    };
    let m = mode(c)?;
    let now = m.mono_ms;
    let outputs = m.core.meet(now, &ip.to_string(), port as u16, cport as u16);
    apply(c, outputs);
    c.out().ok();
    Ok(())
}

pub fn forget(c: &mut Ctx) -> CmdResult {
    let id = c.arg(2);
    let m = mode(c)?;
    let Some(name) = known_node(m, id) else { return Err(unknown_node(id)) };
    let now = m.mono_ms;
    let outputs = m.core.forget(now, &name).map_err(CmdError::err)?;
    apply(c, outputs);
    c.out().ok();
    Ok(())
}

pub fn replicate(c: &mut Ctx) -> CmdResult {
    let id = c.arg(2);
    let m = mode(c)?;
    let Some(name) = known_node(m, id) else { return Err(unknown_node(id)) };
    let am_master = m.core.myself().is_master();
    if am_master && name != m.core.myself_name() && m.core.node(&name).is_some_and(|n| n.is_master()) {
        // The dataset check is the server's: the state only sees slots.
        if !c.eng.dbs[0].is_empty() {
            return Err(CmdError::err("ERR To set a master the node must be empty and without assigned slots."));
        }
    }
    let outputs = mode(c)?.core.replicate(name).map_err(CmdError::err)?;
    apply(c, outputs);
    c.out().ok();
    Ok(())
}

pub fn reset(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    let hard = match c.argc() {
        2 => false,
        3 if is(c.arg(2), "hard") => true,
        3 if is(c.arg(2), "soft") => false,
        _ => return Err(CmdError::Syntax),
    };
    let master = mode(c)?.core.myself().is_master();
    if master && !c.eng.dbs[0].is_empty() {
        return Err(CmdError::err("ERR CLUSTER RESET can't be called with master nodes containing keys"));
    }
    let was_replica = !master;
    let outputs = mode(c)?.core.reset(hard);
    apply(c, outputs);
    if was_replica {
        // A replica's data was its master's: gone with the reset, as in Redis (and as a
        // FLUSHALL for WATCH and client-side caching).
        for db in 0..c.eng.dbs.len() {
            crate::commands::keys::flush_db(c, db, true);
        }
        crate::commands::keys::flush_tracking(c);
    }
    c.out().ok();
    Ok(())
}

pub fn saveconfig(c: &mut Ctx) -> CmdResult {
    // Written and fsynced even if unchanged, as Redis does: the caller may have removed
    // the file, or want it on disk now.
    mode(c)?.saved_text.clear();
    c.eng
        .save_cluster_config(true)
        .map_err(|e| CmdError::msg(format!("ERR error saving the cluster node config: {e}")))?;
    c.out().ok();
    Ok(())
}

pub fn count_failure_reports(c: &mut Ctx) -> CmdResult {
    let id = c.arg(2);
    let m = mode(c)?;
    let Some(name) = known_node(m, id) else { return Err(unknown_node(id)) };
    let now = m.mono_ms;
    let count = m.core.failure_reports(now, &name).unwrap_or(0);
    c.out().int(count as i64);
    Ok(())
}

/// CLUSTER FAILOVER [FORCE|TAKEOVER] (on a replica).
pub fn failover(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    let (force, takeover) = match c.argc() {
        2 => (false, false),
        3 if is(c.arg(2), "force") => (true, false),
        3 if is(c.arg(2), "takeover") => (true, true),
        _ => return Err(CmdError::Syntax),
    };
    let m = mode(c)?;
    let now = m.mono_ms;
    let outputs = m.core.manual_failover(now, force, takeover).map_err(CmdError::err)?;
    log::warn!(
        "{}",
        if takeover {
            "Taking over the master (user request)."
        } else if force {
            "Forced failover user request accepted."
        } else {
            "Manual failover user request accepted."
        }
    );
    apply(c, outputs);
    c.out().ok();
    Ok(())
}
