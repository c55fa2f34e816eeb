//! What the cluster manager knows about a node, read from the node's replies (CLUSTER
//! NODES, INFO) and printed the way redis-cli prints it. No I/O here: the manager fetches
//! the text, these functions read and render it.

/// Hash slots in a Redis cluster.
pub const SLOTS: usize = 16384;

/// Which slots a node serves, one flag per slot.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotSet(Box<[bool]>);

impl Default for SlotSet {
    fn default() -> Self {
        SlotSet(vec![false; SLOTS].into_boxed_slice())
    }
}

impl std::fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotSet({})", self.ranges_text())
    }
}

impl SlotSet {
    /// Marks `first..=last`; slots past the last one are ignored.
    pub fn add_range(&mut self, first: usize, last: usize) {
        for slot in first..=last.min(SLOTS - 1) {
            self.0[slot] = true;
        }
    }

    pub fn contains(&self, slot: usize) -> bool {
        self.0.get(slot).copied().unwrap_or(false)
    }

    pub fn count(&self) -> usize {
        self.0.iter().filter(|&&s| s).count()
    }

    /// The runs of consecutive slots, in order.
    pub fn ranges(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for slot in (0..SLOTS).filter(|&s| self.0[s]) {
            match out.last_mut() {
                Some(run) if run.1 + 1 == slot => run.1 = slot,
                _ => out.push((slot, slot)),
            }
        }
        out
    }

    /// redis-cli's text for a node's slots: `[0-5460],[5462]`, empty when it has none.
    pub fn ranges_text(&self) -> String {
        let runs: Vec<String> = self
            .ranges()
            .into_iter()
            .map(|(a, b)| if a == b { format!("[{a}]") } else { format!("[{a}-{b}]") })
            .collect();
        runs.join(",")
    }
}

/// One line of CLUSTER NODES.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeLine {
    pub name: String,
    /// The address field as printed (`ip:port@bus[,hostname]`).
    pub addr: String,
    pub host: String,
    pub port: u16,
    /// From `ip:port@bus`; None when the address has no bus port.
    pub bus_port: Option<u16>,
    pub flags: Vec<String>,
    /// The master's name for a replica (`-` for masters).
    pub master: Option<String>,
    /// `connected` or `disconnected`: the state of this node's link to that one.
    pub link_state: String,
    pub slots: SlotSet,
    /// `[slot->-target]`: slot and the node it is migrating to.
    pub migrating: Vec<(String, String)>,
    /// `[slot-<-source]`: slot and the node it is importing from.
    pub importing: Vec<(String, String)>,
    /// The slot tokens that are not open-slot markers, as the node printed them.
    pub slot_tokens: Vec<String>,
}

impl NodeLine {
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    pub fn is_myself(&self) -> bool {
        self.has_flag("myself")
    }

    pub fn is_replica(&self) -> bool {
        self.has_flag("slave")
    }
}

/// Splits a node address `host:port[@bus][,hostname]`, as redis-cli does: the port
/// follows the last colon (so IPv6 addresses keep theirs), the bus port the last `@`.
/// None when there is no colon; a port that does not parse reads as 0, as atoi would.
pub fn parse_address(addr: &str) -> Option<(String, u16, Option<u16>)> {
    let (main, bus) = match addr.rsplit_once('@') {
        Some((main, bus)) => (main, Some(leading_number(bus))),
        None => (addr, None),
    };
    let (host, port) = main.rsplit_once(':')?;
    Some((host.to_string(), leading_number(port), bus))
}

/// C's atoi for ports: the leading digits, 0 if none or out of range.
fn leading_number(s: &str) -> u16 {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

/// Reads a CLUSTER NODES reply. Lines with fewer than the eight fixed fields are an
/// error, as they are for redis-cli.
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<NodeLine>, String> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() < 8 {
            return Err("Error: invalid CLUSTER NODES reply".into());
        }
        let (host, port, bus_port) =
            parse_address(fields[1]).ok_or_else(|| "Error: invalid CLUSTER NODES reply".to_string())?;
        let mut node = NodeLine {
            name: fields[0].to_string(),
            addr: fields[1].to_string(),
            host,
            port,
            bus_port,
            flags: fields[2].split(',').filter(|f| !f.is_empty()).map(str::to_string).collect(),
            master: (fields[3] != "-").then(|| fields[3].to_string()),
            link_state: fields[7].to_string(),
            ..NodeLine::default()
        };
        for token in fields[8..].iter().filter(|t| !t.is_empty()) {
            read_slot_token(&mut node, token);
        }
        out.push(node);
    }
    Ok(out)
}

fn read_slot_token(node: &mut NodeLine, token: &str) {
    if let Some(open) = token.strip_prefix('[') {
        let open = open.strip_suffix(']').unwrap_or(open);
        if let Some((slot, target)) = open.split_once("->-") {
            node.migrating.push((slot.to_string(), target.to_string()));
        } else if let Some((slot, source)) = open.split_once("-<-") {
            node.importing.push((slot.to_string(), source.to_string()));
        }
        return;
    }
    node.slot_tokens.push(token.to_string());
    let (first, last) = match token.split_once('-') {
        Some((a, b)) => (a, b),
        None => (token, token),
    };
    if let (Ok(first), Ok(last)) = (first.parse::<usize>(), last.parse::<usize>()) {
        if first <= last && first < SLOTS {
            node.slots.add_range(first, last);
        }
    }
}

/// What one node believes about who serves which slots: every node that has slots, by
/// name, with its slot tokens sorted, all sorted and joined. Nodes agree about the slots
/// when their signatures are equal; None when the node knows of no slot at all (an empty
/// view agrees with nothing, so a cluster that has not exchanged slots yet is not
/// "consistent").
pub fn config_signature(nodes: &[NodeLine]) -> Option<String> {
    let mut configs: Vec<String> = nodes
        .iter()
        .filter(|n| !n.slot_tokens.is_empty())
        .map(|n| {
            let mut tokens = n.slot_tokens.clone();
            tokens.sort();
            format!("{}:{}", n.name, tokens.join(","))
        })
        .collect();
    if configs.is_empty() {
        return None;
    }
    configs.sort();
    Some(configs.join("|"))
}

/// The peers some node cannot talk to (link down, or still in handshake), by the peer's
/// address, each with the nodes (`host:port`) that cannot reach it, in the order seen.
/// `views` holds each node's address and CLUSTER NODES.
pub fn unreachable_peers(views: &[(String, Vec<NodeLine>)]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (from, lines) in views {
        let down = lines.iter().filter(|l| {
            !l.is_myself() && (l.has_flag("disconnected") || l.has_flag("handshake") || l.link_state == "disconnected")
        });
        for peer in down {
            match out.iter_mut().find(|(addr, _)| *addr == peer.addr) {
                Some((_, froms)) => froms.push(from.clone()),
                None => out.push((peer.addr.clone(), vec![from.clone()])),
            }
        }
    }
    out
}

/// One `field:value` line of an INFO or CLUSTER INFO reply.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':')).map(str::trim)
}

/// A node as the manager shows it (redis-cli's clusterManagerNodeInfo).
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub replica: bool,
    /// The flags as the node reported them for itself.
    pub flags: Vec<String>,
    pub slots: SlotSet,
    /// The master it replicates (loaded), or will replicate (planned).
    pub replicate: Option<String>,
    /// A replica in a plan not applied yet: shown without slots.
    pub planned_replica: bool,
    pub replicas_count: usize,
}

impl NodeView {
    /// Two or three lines: role, name and address; slots and flags; the master it
    /// replicates or how many replicas it has.
    pub fn render(&self) -> String {
        let mut out = if self.planned_replica {
            format!("S: {} {}:{}", self.name, self.host, self.port)
        } else {
            let flags: Vec<&str> = self.flags.iter().map(String::as_str).filter(|f| *f != "myself").collect();
            format!(
                "{}: {} {}:{}\n   slots:{} ({} slots) {}",
                if self.replica { "S" } else { "M" },
                self.name,
                self.host,
                self.port,
                self.slots.ranges_text(),
                self.slots.count(),
                flags.join(",")
            )
        };
        if let Some(master) = &self.replicate {
            out.push_str(&format!("\n   replicates {master}"));
        } else if self.replicas_count > 0 {
            out.push_str(&format!("\n   {} additional replica(s)", self.replicas_count));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str = "\
20600dce 127.0.0.1:51641@54611 master - 0 1796657142146 3 connected 10923-16383
309cb024 127.0.0.1:39009@58959 myself,master - 0 1796657141000 1 connected 0-5460 [20->-fa538299]
6d1a999d 127.0.0.1:44287@57755 slave fa538299 0 1796657141844 2 connected
fa538299 10.0.0.7:34861@56755,node-f master - 0 1796657142046 2 connected 5461-10921 10922 [30-<-309cb024]
";

    #[test]
    fn reads_cluster_nodes() {
        let nodes = parse_cluster_nodes(NODES).expect("parses");
        assert_eq!(nodes.len(), 4);
        let me = &nodes[1];
        assert!(me.is_myself() && !me.is_replica());
        assert_eq!((me.host.as_str(), me.port, me.bus_port), ("127.0.0.1", 39009, Some(58959)));
        assert_eq!(me.slots.count(), 5461);
        assert_eq!(me.migrating, [("20".to_string(), "fa538299".to_string())]);
        let replica = &nodes[2];
        assert!(replica.is_replica());
        assert_eq!(replica.master.as_deref(), Some("fa538299"));
        assert_eq!(replica.slots.count(), 0);
        let f = &nodes[3];
        assert_eq!((f.host.as_str(), f.port, f.bus_port), ("10.0.0.7", 34861, Some(56755)));
        assert_eq!(f.slots.ranges_text(), "[5461-10922]");
        assert_eq!(f.importing, [("30".to_string(), "309cb024".to_string())]);
        assert!(parse_cluster_nodes("abc 1.2.3.4:5 master\n").is_err());
    }

    #[test]
    fn unreachable() {
        let a = parse_cluster_nodes(NODES).expect("parses");
        let mut b = a.clone();
        b[0].flags.push("handshake".into());
        b[2].link_state = "disconnected".into();
        b[1].link_state = "disconnected".into(); // myself: never counted
        let views = vec![("a:1".to_string(), a.clone()), ("b:2".to_string(), b.clone()), ("c:3".to_string(), b)];
        assert_eq!(
            unreachable_peers(&views),
            [
                ("127.0.0.1:51641@54611".to_string(), vec!["b:2".to_string(), "c:3".to_string()]),
                ("127.0.0.1:44287@57755".to_string(), vec!["b:2".to_string(), "c:3".to_string()]),
            ]
        );
        assert!(unreachable_peers(&views[..1]).is_empty());
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_address("::1:7000"), Some(("::1".into(), 7000, None)));
        assert_eq!(parse_address("h:7000@17000"), Some(("h".into(), 7000, Some(17000))));
        assert_eq!(parse_address("h:x"), Some(("h".into(), 0, None)));
        assert_eq!(parse_address("nocolon"), None);
    }

    #[test]
    fn signatures_ignore_order_and_open_slots() {
        let a = parse_cluster_nodes(NODES).expect("parses");
        let mut b = a.clone();
        b.reverse();
        b[0].slot_tokens.reverse();
        assert_eq!(config_signature(&a), config_signature(&b));
        assert_eq!(
            config_signature(&a).as_deref(),
            Some("20600dce:10923-16383|309cb024:0-5460|fa538299:10922,5461-10921")
        );
        b[3].slot_tokens.clear();
        assert_ne!(config_signature(&a), config_signature(&b));
        assert_eq!(config_signature(&[]), None);
    }

    #[test]
    fn slot_text() {
        let mut s = SlotSet::default();
        assert_eq!(s.ranges_text(), "");
        s.add_range(0, 5460);
        s.add_range(5462, 5462);
        s.add_range(16383, 20000);
        assert_eq!(s.ranges_text(), "[0-5460],[5462],[16383]");
        assert_eq!(s.count(), 5463);
    }

    #[test]
    fn renders_like_redis_cli() {
        let mut slots = SlotSet::default();
        slots.add_range(0, 5460);
        let master = NodeView {
            name: "309c".into(),
            host: "127.0.0.1".into(),
            port: 39009,
            flags: vec!["myself".into(), "master".into()],
            slots,
            replicas_count: 1,
            ..NodeView::default()
        };
        assert_eq!(
            master.render(),
            "M: 309c 127.0.0.1:39009\n   slots:[0-5460] (5461 slots) master\n   1 additional replica(s)"
        );
        let loaded_replica = NodeView {
            name: "6d1a".into(),
            host: "h".into(),
            port: 1,
            replica: true,
            flags: vec!["slave".into()],
            replicate: Some("309c".into()),
            ..NodeView::default()
        };
        assert_eq!(loaded_replica.render(), "S: 6d1a h:1\n   slots: (0 slots) slave\n   replicates 309c");
        let planned = NodeView { planned_replica: true, ..loaded_replica };
        assert_eq!(planned.render(), "S: 6d1a h:1\n   replicates 309c");
    }

    #[test]
    fn info_fields() {
        let info = "# Cluster\r\ncluster_enabled:1\r\ncluster_known_nodes:6\r\n";
        assert_eq!(info_field(info, "cluster_enabled"), Some("1"));
        assert_eq!(info_field(info, "cluster_known_nodes"), Some("6"));
        assert_eq!(info_field(info, "cluster"), None);
    }
}
