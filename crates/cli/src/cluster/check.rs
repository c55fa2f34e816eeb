//! `--cluster check` and `--cluster info`: load the cluster from one node (its CLUSTER
//! NODES names the others, each then asked for its own view), then report as redis-cli
//! does: keys and replicas per master, the nodes, whether they agree about the slots,
//! open slots, and whether all 16384 slots are served.

use super::nodes::{NodeLine, NodeView, SlotSet, SLOTS};
use super::{config_consistent, host_port_args, myself, out, Ctx, Link, INVALID_HOST_ARG};
use std::collections::BTreeSet;

/// A reachable node of the cluster and what it says about itself.
pub struct Loaded {
    pub link: Link,
    pub me: NodeLine,
    pub replicas_count: usize,
}

impl Loaded {
    pub fn view(&self) -> NodeView {
        NodeView {
            name: self.me.name.clone(),
            host: self.link.host.clone(),
            port: self.link.port,
            replica: self.me.is_replica(),
            flags: self.me.flags.clone(),
            slots: self.me.slots.clone(),
            replicate: if self.me.is_replica() { self.me.master.clone() } else { None },
            planned_replica: false,
            replicas_count: self.replicas_count,
        }
    }
}

/// A node flagged like this in some view is left out of the check, as redis-cli does.
fn unusable(line: &NodeLine) -> bool {
    ["noaddr", "disconnected", "fail"].iter().any(|f| line.has_flag(f))
}

/// Loads the cluster as `host:port` knows it: that node first, then every other node it
/// lists that is reachable and not failing. None (reported) when the first node is not
/// a usable cluster node.
pub fn load_from(ctx: &Ctx, host: &str, port: u16) -> Option<Vec<Loaded>> {
    let log = &ctx.log;
    let mut link = Link::open(ctx, host, port)?;
    if !link.is_cluster(log) {
        return None;
    }
    let lines = match link.cluster_nodes() {
        Ok(lines) => lines,
        Err(e) => {
            link.report(log, &e);
            return None;
        }
    };
    let Some(me) = myself(&lines).cloned() else {
        eprintln!("Error: invalid CLUSTER NODES reply");
        return None;
    };
    let mut loaded = vec![Loaded { link, me, replicas_count: 0 }];
    for friend in lines.iter().filter(|l| !l.is_myself()) {
        if friend.host.is_empty() || friend.port == 0 || unusable(friend) {
            continue;
        }
        let Some(mut link) = Link::open(ctx, &friend.host, friend.port) else { continue };
        match link.cluster_nodes().ok().and_then(|l| myself(&l).cloned()) {
            Some(me) if !unusable(&me) => loaded.push(Loaded { link, me, replicas_count: 0 }),
            Some(_) => {}
            None => log.err(&format!("[ERR] Unable to load info for node {}\n", link.addr())),
        }
    }
    for i in 0..loaded.len() {
        let Some(master) = loaded[i].me.master.clone().filter(|_| loaded[i].me.is_replica()) else { continue };
        match loaded.iter_mut().find(|n| n.me.name == master) {
            Some(m) => m.replicas_count += 1,
            None => log.warn(&format!(
                "*** WARNING: {} claims to be slave of unknown node ID {master}.\n",
                loaded[i].link.addr()
            )),
        }
    }
    Some(loaded)
}

fn load_from_args(ctx: &Ctx) -> Option<Vec<Loaded>> {
    let Some((host, port)) = host_port_args(&ctx.cluster.args) else {
        eprintln!("{INVALID_HOST_ARG}");
        return None;
    };
    load_from(ctx, &host, port)
}

pub fn run_check(ctx: &Ctx) -> bool {
    let Some(mut nodes) = load_from_args(ctx) else { return false };
    show_cluster_info(ctx, &mut nodes);
    check_cluster(ctx, &mut nodes)
}

pub fn run_info(ctx: &Ctx) -> bool {
    let Some(mut nodes) = load_from_args(ctx) else { return false };
    show_cluster_info(ctx, &mut nodes);
    true
}

/// One line per master (keys, slots, replicas), then the totals.
fn show_cluster_info(ctx: &Ctx, nodes: &mut [Loaded]) {
    let (mut masters, mut keys) = (0, 0i64);
    for i in 0..nodes.len() {
        if nodes[i].me.is_replica() {
            continue;
        }
        let name = nodes[i].me.name.clone();
        let replicas =
            nodes.iter().filter(|n| n.me.is_replica() && n.me.master.as_deref() == Some(name.as_str())).count();
        let n = &mut nodes[i];
        let dbsize = match n.link.call(&[b"DBSIZE"]) {
            Ok(ferrokv_resp::Frame::Integer(k)) if k >= 0 => k,
            Ok(_) => {
                n.link.report(&ctx.log, &super::Failure::Reply(String::new()));
                return;
            }
            Err(e) => {
                n.link.report(&ctx.log, &e);
                return;
            }
        };
        let short: String = name.chars().take(8).collect();
        out(&format!(
            "{} ({short}...) -> {dbsize} keys | {} slots | {replicas} slaves.\n",
            n.link.addr(),
            n.me.slots.count()
        ));
        masters += 1;
        keys += dbsize;
    }
    ctx.log.ok(&format!("[OK] {keys} keys in {masters} masters.\n"));
    out(&format!("{:.2} keys per slot on average.\n", keys as f64 / SLOTS as f64));
}

/// redis-cli's check of a loaded cluster; false when it found a fault.
pub fn check_cluster(ctx: &Ctx, nodes: &mut [Loaded]) -> bool {
    let log = &ctx.log;
    let Some(first) = nodes.first() else { return false };
    log.info(&format!(">>> Performing Cluster Check (using node {})\n", first.link.addr()));
    for n in nodes.iter() {
        out(&format!("{}\n", n.view().render()));
    }
    let mut healthy = true;
    if config_consistent(nodes.iter_mut().map(|n| &mut n.link).collect()) {
        log.ok("[OK] All nodes agree about slots configuration.\n");
    } else {
        log.err("[ERR] Nodes don't agree about configuration!\n");
        healthy = false;
    }
    log.info(">>> Check for open slots...\n");
    // The open slots, by slot number (redis-cli lists them in hash table order).
    let mut open: BTreeSet<(i64, String)> = BTreeSet::new();
    for n in nodes.iter() {
        for (state, list) in [("migrating", &n.me.migrating), ("importing", &n.me.importing)] {
            if list.is_empty() {
                continue;
            }
            let slots: Vec<&str> = list.iter().map(|(slot, _)| slot.as_str()).collect();
            log.err(&format!("[WARNING] Node {} has slots in {state} state {}.\n", n.link.addr(), slots.join(",")));
            for slot in slots {
                open.insert((crate::options::atoi(slot.as_bytes()), slot.to_string()));
            }
        }
    }
    if !open.is_empty() {
        healthy = false;
        let slots: Vec<&str> = open.iter().map(|(_, s)| s.as_str()).collect();
        log.err(&format!("[WARNING] The following slots are open: {}.\n", slots.join(",")));
    }
    log.info(">>> Check slots coverage...\n");
    let mut covered = SlotSet::default();
    for n in nodes.iter() {
        for (a, b) in n.me.slots.ranges() {
            covered.add_range(a, b);
        }
    }
    if covered.count() == SLOTS {
        log.ok(&format!("[OK] All {SLOTS} slots covered.\n"));
    } else {
        log.err(&format!("[ERR] Not all {SLOTS} slots are covered by nodes.\n\n"));
        healthy = false;
    }
    healthy
}
