//! CLUSTER subcommands that only look: INFO, MYID, NODES, SLOTS, SHARDS, REPLICAS/SLAVES,
//! LINKS, KEYSLOT, COUNTKEYSINSLOT, GETKEYSINSLOT, HELP, with Redis 7.0's replies.

use super::cluster_cmd::{known_node, mode};
use crate::cluster::ClusterMode;
use crate::ctx::{int_arg, reply_help, Ctx};
use crate::error::{CmdError, CmdResult};
use ferrokv_cluster::bus::{self, NodeName};
use ferrokv_cluster::nodes_conf::{self, NodeLine};
use ferrokv_cluster::slot::{key_slot, SLOTS};
use ferrokv_cluster::state::{ClusterState, Node};
use ferrokv_resp::ReplyBuf;

const HELP: &[&str] = &[
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
];

/// clusterGetMessageTypeString, by type number.
const MESSAGE_NAMES: [&str; crate::cluster::MESSAGE_TYPES] =
    ["ping", "pong", "meet", "fail", "publish", "auth-req", "auth-ack", "update", "mfstart", "module", "publishshard"];

/// The cluster state to read and the reply to write, borrowed together.
fn parts<'a>(c: &'a mut Ctx) -> Result<(&'a ClusterMode, &'a mut ReplyBuf), CmdError> {
    let m = c.eng.cluster.as_deref().ok_or(CmdError::Msg(super::cluster_cmd::CLUSTER_DISABLED.into()))?;
    Ok((m, &mut c.client.out))
}

pub fn help(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    reply_help(c, HELP)
}

pub fn myid(c: &mut Ctx) -> CmdResult {
    let name = mode(c)?.core.myself_name();
    c.out().bulk(&name);
    Ok(())
}

pub fn keyslot(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    let slot = key_slot(c.arg(2));
    c.out().int(i64::from(slot));
    Ok(())
}

pub fn countkeysinslot(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    let slot = int_arg(c.arg(2))?;
    if !(0..SLOTS as i64).contains(&slot) {
        return Err(CmdError::err("ERR Invalid slot"));
    }
    let n = c.eng.count_keys_in_slot(slot as u16);
    c.out().int(n as i64);
    Ok(())
}

pub fn getkeysinslot(c: &mut Ctx) -> CmdResult {
    mode(c)?;
    let slot = int_arg(c.arg(2))?;
    let max = int_arg(c.arg(3))?;
    if !(0..SLOTS as i64).contains(&slot) || max < 0 {
        return Err(CmdError::err("ERR Invalid slot or number of keys"));
    }
    let keys = c.eng.keys_in_slot(slot as u16, max as usize);
    c.out().bulks(keys.iter().map(|k| k.as_slice()));
    Ok(())
}

pub fn info(c: &mut Ctx) -> CmdResult {
    let m = mode(c)?;
    let text = info_text(m);
    c.out().verbatim(text.as_bytes(), "txt");
    Ok(())
}

/// CLUSTER INFO's text (also what INFO's cluster section needs to know).
pub fn info_text(m: &ClusterMode) -> String {
    let core = &m.core;
    // Per owner, not per slot: every slot's owner is in the table with its slot count
    // (a lookup per slot cost 16384 scans of the table).
    let (mut assigned, mut ok, mut pfail, mut fail) = (0, 0, 0, 0);
    for owner in core.nodes().iter().filter(|n| n.numslots > 0) {
        assigned += owner.numslots;
        if owner.failing() {
            fail += owner.numslots;
        } else if owner.timed_out() {
            pfail += owner.numslots;
        } else {
            ok += owner.numslots;
        }
    }
    let me = core.myself();
    let my_epoch = match me.replica_of.and_then(|m| core.node(&m)) {
        Some(master) if me.is_replica() => master.config_epoch,
        _ => me.config_epoch,
    };
    let state = if core.state() == ClusterState::Ok { "ok" } else { "fail" };
    let mut s = format!(
        "cluster_state:{state}\r\ncluster_slots_assigned:{assigned}\r\ncluster_slots_ok:{ok}\r\ncluster_slots_pfail:{pfail}\r\ncluster_slots_fail:{fail}\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{}\r\ncluster_my_epoch:{my_epoch}\r\n",
        core.nodes().len(),
        core.size(),
        core.current_epoch(),
    );
    for (counts, dir) in [(&m.sent, "sent"), (&m.received, "received")] {
        // Redis lists types in its numbering: ping … module, then publishshard (10).
        let mut total = 0;
        for (kind, &n) in counts.iter().enumerate() {
            if n > 0 {
                total += n;
                s.push_str(&format!("cluster_stats_messages_{}_{dir}:{n}\r\n", MESSAGE_NAMES[kind]));
            }
        }
        s.push_str(&format!("cluster_stats_messages_{dir}:{total}\r\n"));
    }
    s.push_str("total_cluster_links_buffer_limit_exceeded:0\r\n");
    s
}

/// A node's CLUSTER NODES line fields, with times on the wall clock as Redis shows them.
fn node_lines(m: &ClusterMode, wall_now: i64) -> Vec<NodeLine> {
    let mono = m.mono_ms as i64;
    let wall = |t: u64| if t == 0 { 0 } else { (wall_now - (mono - t as i64)).max(0) as u64 };
    let mut lines = m.core.nodes_conf().nodes;
    for line in &mut lines {
        line.ping_sent = wall(line.ping_sent);
        line.pong_received = wall(line.pong_received);
    }
    lines
}

pub fn nodes(c: &mut Ctx) -> CmdResult {
    let now = c.now;
    let m = mode(c)?;
    let mut text = String::new();
    for line in node_lines(m, now) {
        nodes_conf::render_node(&line, &mut text);
        text.push('\n');
    }
    c.out().verbatim(text.as_bytes(), "txt");
    Ok(())
}

pub fn replicas(c: &mut Ctx) -> CmdResult {
    let now = c.now;
    let id = c.arg(2);
    let m = mode(c)?;
    let Some(name) = known_node(m, id) else {
        return Err(CmdError::msg(format!("ERR Unknown node {}", String::from_utf8_lossy(id))));
    };
    if m.core.node(&name).is_some_and(|n| n.is_replica()) {
        return Err(CmdError::err("ERR The specified node is not a master"));
    }
    let ids: Vec<String> = m.core.replicas_of(&name).iter().map(bus::name_to_string).collect();
    let mut out = Vec::new();
    for line in node_lines(m, now).into_iter().filter(|l| ids.contains(&l.id)) {
        let mut text = String::new();
        nodes_conf::render_node(&line, &mut text);
        out.push(text);
    }
    c.out().bulks(out.iter().map(|s| s.as_bytes()));
    Ok(())
}

/// A node as CLUSTER SLOTS lists it: endpoint, port, id, then the other endpoints.
fn node_entry(out: &mut ReplyBuf, node: &Node, preferred: i64) {
    out.array(4);
    match preferred {
        1 if node.hostname.is_empty() => out.bulk(b"?"),
        1 => out.bulk(node.hostname.as_bytes()),
        2 => out.null(),
        _ => out.bulk(node.ip.as_bytes()),
    }
    out.int(i64::from(node.port));
    out.bulk(&node.name);
    let with_ip = preferred != 0;
    let with_hostname = preferred != 1 && !node.hostname.is_empty();
    out.map(usize::from(with_ip) + usize::from(with_hostname));
    if with_ip {
        out.bulk(b"ip");
        out.bulk(node.ip.as_bytes());
    }
    if with_hostname {
        out.bulk(b"hostname");
        out.bulk(node.hostname.as_bytes());
    }
}

/// A replica worth listing for reads: not failing and with data (isReplicaAvailable).
fn replica_available(m: &ClusterMode, node: &Node, my_offset: u64) -> bool {
    let offset = if node.name == m.core.myself_name() { my_offset } else { node.repl_offset };
    !node.failing() && offset != 0
}

pub fn slots(c: &mut Ctx) -> CmdResult {
    let my_offset = c.eng.repl.offset;
    let (m, out) = parts(c)?;
    let core = &m.core;
    let mut ranges: Vec<(u16, u16, NodeName)> = Vec::new();
    for slot in 0..SLOTS as u16 {
        let Some(owner) = core.slot_owner(slot) else { continue };
        match ranges.last_mut() {
            Some((_, end, o)) if *o == owner && *end + 1 == slot => *end = slot,
            _ => ranges.push((slot, slot, owner)),
        }
    }
    let preferred = m.preferred_endpoint;
    out.array(ranges.len());
    for (start, end, owner) in &ranges {
        let Some(master) = core.node(owner) else { continue };
        let replicas: Vec<&Node> = core
            .replicas_of(owner)
            .iter()
            .filter_map(|r| core.node(r))
            .filter(|r| replica_available(m, r, my_offset))
            .collect();
        out.array(3 + replicas.len());
        out.int(i64::from(*start));
        out.int(i64::from(*end));
        node_entry(out, master, preferred);
        for r in replicas {
            node_entry(out, r, preferred);
        }
    }
    Ok(())
}

pub fn shards(c: &mut Ctx) -> CmdResult {
    let my_offset = c.eng.repl.offset;
    let (m, out) = parts(c)?;
    let core = &m.core;
    let preferred = m.preferred_endpoint;
    let masters: Vec<&Node> = core.nodes().iter().filter(|n| n.is_master()).collect();
    out.array(masters.len());
    for master in masters {
        out.map(2);
        out.bulk(b"slots");
        let mut ranges: Vec<(u16, u16)> = Vec::new();
        for slot in master.slots.slots() {
            match ranges.last_mut() {
                Some((_, end)) if *end + 1 == slot => *end = slot,
                _ => ranges.push((slot, slot)),
            }
        }
        out.array(ranges.len() * 2);
        for (start, end) in ranges {
            out.int(i64::from(start));
            out.int(i64::from(end));
        }
        out.bulk(b"nodes");
        let mut members = vec![master];
        members.extend(core.replicas_of(&master.name).iter().filter_map(|r| core.node(r)));
        out.array(members.len());
        for node in members {
            let offset = if node.name == core.myself_name() { my_offset } else { node.repl_offset };
            let with_hostname = !node.hostname.is_empty();
            out.map(7 + usize::from(with_hostname));
            out.bulk(b"id");
            out.bulk(&node.name);
            out.bulk(b"port");
            out.int(i64::from(node.port));
            out.bulk(b"ip");
            out.bulk(node.ip.as_bytes());
            out.bulk(b"endpoint");
            match preferred {
                1 if node.hostname.is_empty() => out.bulk(b"?"),
                1 => out.bulk(node.hostname.as_bytes()),
                2 => out.null(),
                _ => out.bulk(node.ip.as_bytes()),
            }
            if with_hostname {
                out.bulk(b"hostname");
                out.bulk(node.hostname.as_bytes());
            }
            out.bulk(b"role");
            out.bulk(if node.is_replica() { b"replica" as &[u8] } else { b"master" });
            out.bulk(b"replication-offset");
            out.int(offset as i64);
            out.bulk(b"health");
            let health: &[u8] = if node.failing() {
                b"fail"
            } else if node.is_replica() && offset == 0 {
                b"loading"
            } else {
                b"online"
            };
            out.bulk(health);
        }
    }
    Ok(())
}

pub fn links(c: &mut Ctx) -> CmdResult {
    // The driver owns the sockets and keeps `links`; as Redis, a link shows once its
    // node is known: the one we opened to a node, and the last one it opened to us.
    let (m, out) = parts(c)?;
    let me = m.core.myself_name();
    let mut shown: Vec<(bool, NodeName, i64)> = Vec::new();
    for link in m.links.iter().rev() {
        let Some(node) = link.node.filter(|n| *n != me && m.core.node(n).is_some()) else { continue };
        let from = link.inbound.is_some();
        if !shown.iter().any(|&(f, n, _)| n == node && f == from) {
            shown.push((from, node, link.created_ms));
        }
    }
    out.array(shown.len());
    for (from, node, created_ms) in shown {
        out.map(6);
        out.bulk(b"direction");
        out.bulk(if from { b"from" } else { b"to" });
        out.bulk(b"node");
        out.bulk(&node);
        out.bulk(b"create-time");
        out.int(created_ms);
        out.bulk(b"events");
        out.bulk(b"r");
        // Messages wait in the link task's queue, not in a buffer of ours.
        out.bulk(b"send-buffer-allocated");
        out.int(0);
        out.bulk(b"send-buffer-used");
        out.int(0);
    }
    Ok(())
}
