//! `--cluster create host:port... [--cluster-replicas N] [--cluster-yes]`: checks that
//! every node is an empty cluster node, proposes a layout ([`super::plan`]), and once
//! accepted assigns the slots (CLUSTER ADDSLOTSRANGE), gives each node its own config
//! epoch, has every node meet the first, waits until all agree about the slots, makes
//! the replicas replicate, and finally checks the result as `--cluster check` does.

use super::check;
use super::nodes::{self, NodeLine, NodeView};
use super::plan;
use super::{config_consistent, myself, out, Ctx, Failure, Link};
use std::io::Read;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

/// How long the nodes may take to agree about the slots before `create` gives up
/// (redis-cli waits forever; a bound keeps scripts and containers from hanging).
const JOIN_LIMIT: Duration = Duration::from_secs(120);

/// The bus port a node has unless configured otherwise: its port + 10000.
const BUS_PORT_OFFSET: u32 = 10000;

/// A node on the command line, connected, with its own CLUSTER NODES line.
struct New {
    link: Link,
    me: NodeLine,
}

pub fn run(ctx: &Ctx) -> bool {
    let log = &ctx.log;
    let mut nodes = Vec::new();
    for addr in &ctx.cluster.args {
        let Some((host, port, _)) = nodes::parse_address(addr) else {
            eprintln!("Invalid address format: {addr}");
            return false;
        };
        let Some(node) = open_empty_node(ctx, &host, port) else { return false };
        nodes.push(node);
    }
    // A negative count would leave no node for the masters; redis-cli divides by it.
    let replicas = usize::try_from(ctx.cluster.replicas).unwrap_or(0);
    let hosts: Vec<String> = nodes.iter().map(|n| n.link.host.clone()).collect();
    let Some(layout) = plan::plan(&hosts, replicas) else {
        log.err(&format!(
            "*** ERROR: Invalid configuration for cluster creation.\n*** Redis Cluster requires at least 3 master nodes.\n*** This is not possible with {} nodes and {replicas} replicas per node.",
            nodes.len()
        ));
        log.err(&format!("\n*** At least {} nodes are required.\n", 3 * (replicas + 1)));
        return false;
    };
    log.info(&format!(">>> Performing hash slots allocation on {} nodes...\n", nodes.len()));
    for (i, (first, last)) in layout.slots.iter().enumerate() {
        out(&format!("Master[{i}] -> Slots {first} - {last}\n"));
    }
    for (k, &(replica, master)) in layout.assignments.iter().enumerate() {
        if k == layout.extra_from {
            out("Adding extra replicas...\n");
        }
        out(&format!("Adding replica {} to {}\n", nodes[replica].link.addr(), nodes[master].link.addr()));
    }
    let mut replica_of = layout.replica_of(nodes.len());
    if plan::anti_affinity_score(&hosts, &replica_of) > 0 {
        log.info(">>> Trying to optimize slaves allocation for anti-affinity\n");
        match plan::optimize_anti_affinity(&hosts, &mut replica_of) {
            0 => log.ok("[OK] Perfect anti-affinity obtained!\n"),
            s if s >= 10_000 => log.warn("[WARNING] Some slaves are in the same host as their master\n"),
            _ => log.warn("[WARNING] Some slaves of the same master are in the same host\n"),
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        out(&format!("{}\n", proposed_view(node, i, &layout, &replica_of, &nodes).render()));
    }
    if !ctx.cluster.yes && !confirm("Can I set the above configuration?") {
        // Declining is not a failure for redis-cli: the exit status stays 0.
        return true;
    }
    apply(ctx, &mut nodes, &layout, &replica_of)
}

/// Connects to a node that must be a cluster node with no keys, no slots, and no other
/// node known; reports why not and returns None otherwise.
fn open_empty_node(ctx: &Ctx, host: &str, port: u16) -> Option<New> {
    let log = &ctx.log;
    let mut link = Link::open(ctx, host, port)?;
    if !link.is_cluster(log) {
        return None;
    }
    let me = match link.cluster_nodes() {
        Ok(lines) => myself(&lines).cloned(),
        Err(e) => {
            link.report(log, &e);
            return None;
        }
    };
    let Some(me) = me else {
        eprintln!("Error: invalid CLUSTER NODES reply");
        return None;
    };
    let empty = match (link.text(&[b"INFO"]), link.text(&[b"CLUSTER", b"INFO"])) {
        (Ok(info), Ok(cluster_info)) => {
            !info.contains("db0:")
                && nodes::info_field(&cluster_info, "cluster_known_nodes") == Some("1")
                && me.slots.count() == 0
        }
        (Err(Failure::Reply(e)), _)
        | (_, Err(Failure::Reply(e)))
        | (Err(Failure::Io(e)), _)
        | (_, Err(Failure::Io(e))) => {
            log.err(&format!("[ERR] Node {} {e}\n", link.addr()));
            return None;
        }
    };
    if !empty {
        log.err(&format!(
            "[ERR] Node {} is not empty. Either the node already knows other nodes (check with CLUSTER NODES) or contains some key in database 0.\n",
            link.addr()
        ));
        return None;
    }
    Some(New { link, me })
}

/// How the plan shows node `i`: a master with its slots, or the master a replica will
/// follow.
fn proposed_view(node: &New, i: usize, layout: &plan::Plan, replica_of: &[Option<usize>], all: &[New]) -> NodeView {
    let mut view = NodeView {
        name: node.me.name.clone(),
        host: node.link.host.clone(),
        port: node.link.port,
        flags: node.me.flags.clone(),
        ..NodeView::default()
    };
    if let Some(m) = layout.masters.iter().position(|&m| m == i) {
        let (first, last) = layout.slots[m];
        view.slots.add_range(first, last);
    } else if let Some(master) = replica_of[i] {
        view.planned_replica = true;
        view.replicate = Some(all[master].me.name.clone());
    }
    view
}

/// redis-cli's prompt: accepted only if what is typed starts with "yes".
fn confirm(question: &str) -> bool {
    out(&format!("{question} (type 'yes' to accept): "));
    let mut buf = [0u8; 4];
    let n = std::io::stdin().read(&mut buf).unwrap_or(0);
    n >= 3 && &buf[..3] == b"yes"
}

fn apply(ctx: &Ctx, nodes: &mut [New], layout: &plan::Plan, replica_of: &[Option<usize>]) -> bool {
    let log = &ctx.log;
    for (&m, &(first, last)) in layout.masters.iter().zip(&layout.slots) {
        let (first, last) = (first.to_string(), last.to_string());
        let link = &mut nodes[m].link;
        if let Err(e) = link.call(&[b"CLUSTER", b"ADDSLOTSRANGE", first.as_bytes(), last.as_bytes()]) {
            link.report(log, &e);
            return false;
        }
    }
    log.info(">>> Nodes configuration updated\n");
    log.info(">>> Assign a different config epoch to each node\n");
    for (i, node) in nodes.iter_mut().enumerate() {
        // As with redis-cli, a refusal is not fatal: the epochs only settle collisions
        // faster.
        let _ = node.link.call(&[b"CLUSTER", b"SET-CONFIG-EPOCH", (i + 1).to_string().as_bytes()]);
    }
    log.info(">>> Sending CLUSTER MEET messages to join the cluster\n");
    if !meet_first(nodes, log) {
        return false;
    }
    // A second for the handshakes to start before polling, as redis-cli allows.
    std::thread::sleep(Duration::from_secs(1));
    if !wait_for_join(ctx, nodes) {
        return false;
    }
    let mut replicated = true;
    for (i, master) in replica_of.iter().enumerate() {
        let Some(master) = master else { continue };
        let name = nodes[*master].me.name.clone();
        let link = &mut nodes[i].link;
        if let Err(e) = link.call(&[b"CLUSTER", b"REPLICATE", name.as_bytes()]) {
            link.report(log, &e);
            replicated = false;
        }
    }
    let (host, port) = (nodes[0].link.host.clone(), nodes[0].link.port);
    let Some(mut loaded) = check::load_from(ctx, &host, port) else { return false };
    // As for redis-cli, the check's verdict is shown but does not change the status.
    check::check_cluster(ctx, &mut loaded);
    replicated
}

/// Every node but the first sends CLUSTER MEET to the first. MEET takes an IP address:
/// the one our connection to the first node reached (a name such as localhost may also
/// resolve to an address the node does not listen on), else the name resolved.
fn meet_first(nodes: &mut [New], log: &super::Log) -> bool {
    let (host, port) = (nodes[0].link.host.clone(), nodes[0].link.port);
    let resolved = || (host.as_str(), port).to_socket_addrs().ok()?.next().map(|a| a.ip().to_string());
    let Some(ip) = nodes[0].link.peer_ip().or_else(resolved) else {
        eprintln!("Invalid IP address or hostname specified: {host}");
        return false;
    };
    let bus = nodes[0].me.bus_port.map(u32::from).filter(|&b| b != u32::from(port) + BUS_PORT_OFFSET);
    let (port, bus) = (port.to_string(), bus.map(|b| b.to_string()));
    for node in nodes[1..].iter_mut() {
        let mut args: Vec<&[u8]> = vec![b"CLUSTER", b"MEET", ip.as_bytes(), port.as_bytes()];
        if let Some(bus) = &bus {
            args.push(bus.as_bytes());
        }
        if let Err(e) = node.link.call(&args) {
            match e {
                Failure::Reply(_) => node.link.report(log, &e),
                Failure::Io(_) => eprintln!("Failed to send CLUSTER MEET command."),
            }
            return false;
        }
    }
    true
}

/// Waits (one dot a second) until every node sees the same slot owners; after a while
/// without agreement, names the cluster bus links that are down, as redis-cli does.
fn wait_for_join(ctx: &Ctx, nodes: &mut [New]) -> bool {
    out("Waiting for the cluster to join\n");
    let report_after = 20 + (nodes.len() as f32 * 0.15) as u32;
    let deadline = Instant::now() + JOIN_LIMIT;
    let mut waited = 0;
    while !config_consistent(nodes.iter_mut().map(|n| &mut n.link).collect()) {
        if Instant::now() >= deadline {
            out("\n");
            ctx.log.err(&format!(
                "[ERR] The nodes did not agree about the slots within {} seconds: every node must reach every other node's cluster bus port.\n",
                JOIN_LIMIT.as_secs()
            ));
            return false;
        }
        out(".");
        std::thread::sleep(Duration::from_secs(1));
        waited += 1;
        if waited > report_after {
            report_unreachable(ctx, nodes);
            waited = 0;
        }
    }
    out("\n");
    true
}

fn report_unreachable(ctx: &Ctx, nodes: &mut [New]) {
    let log = &ctx.log;
    let views: Vec<(String, Vec<NodeLine>)> =
        nodes.iter_mut().filter_map(|n| Some((n.link.addr(), n.link.cluster_nodes().ok()?))).collect();
    let down = nodes::unreachable_peers(&views);
    if down.is_empty() {
        return;
    }
    out("\n");
    log.err(&format!("Warning: {} node(s) may be unreachable\n", down.len()));
    for (addr, froms) in down {
        match nodes::parse_address(&addr) {
            Some((ip, _, Some(bus))) if bus != 0 => {
                log.err(&format!(" - The port {bus} of node {ip} may be unreachable from:\n"))
            }
            _ => log.err(&format!(" - Node {addr} may be unreachable from:\n")),
        }
        for from in froms {
            log.err(&format!("   {from}\n"));
        }
        log.err("Cluster bus ports must be reachable by every node.\nRemember that cluster bus ports are different from standard instance ports.\n");
    }
}
