//! Redis 7.0's cluster config file, nodes.conf: one line per node in `CLUSTER NODES`'s
//! format, then `vars currentEpoch N lastVoteEpoch M`.
//!
//! ```text
//! <id> <ip>:<port>@<cport>[,<hostname>] <flags> <master-id|-> <ping-sent> <pong-recv> <config-epoch> <link-state> <slot>...
//! ```
//!
//! Slots are `N` or `A-B`; the node that is `myself` also lists its open slots,
//! `[N->-<id>]` (migrating to) and `[N-<-<id>]` (importing from). What [`render`] writes,
//! [`parse`] reads back equal, and a file written by redis-server renders back byte for byte.

use crate::slot::SLOTS;
use std::fmt::{self, Write as _};

/// Node flags, as in Redis's `CLUSTER_NODE_*` bits (the bus carries the same values).
pub mod flags {
    pub const MASTER: u16 = 1;
    pub const REPLICA: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;

    /// The names in the order Redis prints them (MEET and MIGRATE_TO are never printed).
    pub const NAMES: [(u16, &str); 8] = [
        (MYSELF, "myself"),
        (MASTER, "master"),
        (REPLICA, "slave"),
        (PFAIL, "fail?"),
        (FAIL, "fail"),
        (HANDSHAKE, "handshake"),
        (NOADDR, "noaddr"),
        (NOFAILOVER, "nofailover"),
    ];
}

/// The length of a node id: 40 hex digits.
pub const ID_LEN: usize = 40;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenSlot {
    /// `[slot->-id]`: this node is moving the slot to `id`.
    Migrating(u16, String),
    /// `[slot-<-id]`: this node is taking the slot from `id`.
    Importing(u16, String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeLine {
    pub id: String,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    /// `None`: no `,hostname` part; Redis 7.0 writes one only when a hostname is set.
    pub hostname: Option<String>,
    pub flags: u16,
    pub master: Option<String>,
    pub ping_sent: u64,
    pub pong_received: u64,
    pub config_epoch: u64,
    pub connected: bool,
    /// Inclusive ranges in file order.
    pub slots: Vec<(u16, u16)>,
    pub open_slots: Vec<OpenSlot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NodesConf {
    pub nodes: Vec<NodeLine>,
    pub current_epoch: u64,
    pub last_vote_epoch: u64,
}

impl NodesConf {
    /// The line of the node flagged `myself` (a parsed file always has exactly one).
    pub fn myself(&self) -> Option<&NodeLine> {
        self.nodes.iter().find(|n| n.flags & flags::MYSELF != 0)
    }
}

/// A problem in a nodes.conf, naming the file and the line (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for ConfError {}

/// The flags field: names joined by commas, `noflags` for none.
pub fn render_flags(bits: u16) -> String {
    let names: Vec<&str> = flags::NAMES.iter().filter(|(bit, _)| bits & bit != 0).map(|(_, name)| *name).collect();
    if names.is_empty() {
        "noflags".to_string()
    } else {
        names.join(",")
    }
}

fn parse_flags(text: &str) -> Result<u16, String> {
    let mut bits = 0;
    for name in text.split(',') {
        bits |= match name {
            "noflags" => 0,
            other => match flags::NAMES.iter().find(|(_, n)| *n == other) {
                Some((bit, _)) => *bit,
                None => return Err(format!("unknown node flag '{other}'")),
            },
        };
    }
    Ok(bits)
}

/// Writes one node's line (without the newline), as CLUSTER NODES and nodes.conf show it.
pub fn render_node(node: &NodeLine, out: &mut String) {
    let _ = write!(out, "{} {}:{}@{}", node.id, node.ip, node.port, node.cport);
    if let Some(host) = &node.hostname {
        let _ = write!(out, ",{host}");
    }
    let _ = write!(
        out,
        " {} {} {} {} {} {}",
        render_flags(node.flags),
        node.master.as_deref().unwrap_or("-"),
        node.ping_sent,
        node.pong_received,
        node.config_epoch,
        if node.connected { "connected" } else { "disconnected" }
    );
    for &(start, end) in &node.slots {
        if start == end {
            let _ = write!(out, " {start}");
        } else {
            let _ = write!(out, " {start}-{end}");
        }
    }
    for open in &node.open_slots {
        let _ = match open {
            OpenSlot::Migrating(slot, id) => write!(out, " [{slot}->-{id}]"),
            OpenSlot::Importing(slot, id) => write!(out, " [{slot}-<-{id}]"),
        };
    }
}

/// The whole file, as Redis 7.0's clusterSaveConfig writes it.
pub fn render(conf: &NodesConf) -> String {
    let mut out = String::new();
    for node in &conf.nodes {
        render_node(node, &mut out);
        out.push('\n');
    }
    let _ = writeln!(out, "vars currentEpoch {} lastVoteEpoch {}", conf.current_epoch, conf.last_vote_epoch);
    out
}

fn valid_id(id: &str) -> bool {
    id.len() == ID_LEN && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn parse_id(text: &str, what: &str) -> Result<String, String> {
    if valid_id(text) {
        Ok(text.to_string())
    } else {
        Err(format!("{what} '{text}' is not a node id of {ID_LEN} hex digits"))
    }
}

fn parse_slot(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(slot) if usize::from(slot) < SLOTS => Ok(slot),
        _ => Err(format!("invalid slot '{text}'")),
    }
}

fn parse_num<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("invalid {what} '{text}'"))
}

/// `ip:port@cport[,hostname]`. The ip may be IPv6, so the port follows the last colon.
fn parse_address(text: &str) -> Result<(String, u16, u16, Option<String>), String> {
    let (addr, hostname) = match text.split_once(',') {
        Some((addr, host)) => (addr, Some(host.to_string())),
        None => (text, None),
    };
    let (ip, ports) = addr.rsplit_once(':').ok_or_else(|| format!("address '{text}' has no port"))?;
    let (port, cport) = ports.split_once('@').ok_or_else(|| format!("address '{text}' has no @cluster-bus-port"))?;
    Ok((ip.to_string(), parse_num(port, "port")?, parse_num(cport, "cluster bus port")?, hostname))
}

fn parse_slot_entry(entry: &str, node: &mut NodeLine) -> Result<(), String> {
    if let Some(inner) = entry.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or_else(|| format!("unterminated open slot '{entry}'"))?;
        let open = if let Some((slot, id)) = inner.split_once("->-") {
            OpenSlot::Migrating(parse_slot(slot)?, parse_id(id, "migration target")?)
        } else if let Some((slot, id)) = inner.split_once("-<-") {
            OpenSlot::Importing(parse_slot(slot)?, parse_id(id, "import source")?)
        } else {
            return Err(format!("invalid open slot '{entry}'"));
        };
        node.open_slots.push(open);
        return Ok(());
    }
    let (start, end) = match entry.split_once('-') {
        Some((a, b)) => (parse_slot(a)?, parse_slot(b)?),
        None => {
            let slot = parse_slot(entry)?;
            (slot, slot)
        }
    };
    if start > end {
        return Err(format!("slot range '{entry}' ends before it starts"));
    }
    node.slots.push((start, end));
    Ok(())
}

fn parse_node(fields: &[&str]) -> Result<NodeLine, String> {
    if fields.len() < 8 {
        return Err(format!("a node line needs at least 8 fields, this one has {}", fields.len()));
    }
    let (ip, port, cport, hostname) = parse_address(fields[1])?;
    let master = match fields[3] {
        "-" => None,
        id => Some(parse_id(id, "master")?),
    };
    let connected = match fields[7] {
        "connected" => true,
        "disconnected" => false,
        other => return Err(format!("invalid link state '{other}'")),
    };
    let mut node = NodeLine {
        id: parse_id(fields[0], "node id")?,
        ip,
        port,
        cport,
        hostname,
        flags: parse_flags(fields[2])?,
        master,
        ping_sent: parse_num(fields[4], "ping-sent time")?,
        pong_received: parse_num(fields[5], "pong-received time")?,
        config_epoch: parse_num(fields[6], "config epoch")?,
        connected,
        slots: Vec::new(),
        open_slots: Vec::new(),
    };
    for entry in &fields[8..] {
        parse_slot_entry(entry, &mut node)?;
    }
    Ok(node)
}

fn parse_vars(fields: &[&str], conf: &mut NodesConf) -> Result<(), String> {
    if fields.len() % 2 != 1 {
        return Err("vars needs name value pairs".to_string());
    }
    for pair in fields[1..].chunks(2) {
        match pair[0] {
            "currentEpoch" => conf.current_epoch = parse_num(pair[1], "currentEpoch")?,
            "lastVoteEpoch" => conf.last_vote_epoch = parse_num(pair[1], "lastVoteEpoch")?,
            // Redis skips variables it does not know (newer versions may add some).
            _ => {}
        }
    }
    Ok(())
}

/// Reads a nodes.conf. `file` names it in errors. Empty lines are skipped, as Redis does.
pub fn parse(file: &str, text: &str) -> Result<NodesConf, ConfError> {
    let mut conf = NodesConf::default();
    let err = |line: usize, message: String| ConfError { file: file.to_string(), line, message };
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(&first) = fields.first() else { continue };
        if first == "vars" {
            parse_vars(&fields, &mut conf).map_err(|m| err(number, m))?;
            continue;
        }
        let node = parse_node(&fields).map_err(|m| err(number, m))?;
        if conf.nodes.iter().any(|n| n.id == node.id) {
            return Err(err(number, format!("node {} appears twice", node.id)));
        }
        if node.flags & flags::MYSELF != 0 && conf.myself().is_some() {
            return Err(err(number, "a second node flagged myself".to_string()));
        }
        conf.nodes.push(node);
    }
    if conf.myself().is_none() {
        return Err(err(text.lines().count().max(1), "no node is flagged myself".to_string()));
    }
    Ok(conf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REAL: &str = "cb9e8121715d334f04c509870a4c5693b2ec3100 127.0.0.1:17012@27012 master - 0 1796617205016 0 connected
2e0d9d7f3a5c248df6708ce50ee20fb8fd85dd9f 127.0.0.1:17011@27011,host-one.example myself,master - 0 0 1 connected 0-100 200-300 [50->-cb9e8121715d334f04c509870a4c5693b2ec3100] [5000-<-cb9e8121715d334f04c509870a4c5693b2ec3100]
vars currentEpoch 1 lastVoteEpoch 0
";

    #[test]
    fn parses_a_redis_file() {
        let conf = parse("nodes.conf", REAL).expect("parses");
        assert_eq!(conf.current_epoch, 1);
        let me = conf.myself().expect("myself");
        assert_eq!(me.hostname.as_deref(), Some("host-one.example"));
        assert_eq!(me.slots, vec![(0, 100), (200, 300)]);
        assert_eq!(me.open_slots.len(), 2);
        assert_eq!(conf.nodes[0].pong_received, 1796617205016);
        assert_eq!(render(&conf), REAL);
    }

    #[test]
    fn errors_name_file_and_line() {
        let bad = REAL.replace("0-100", "0-16384");
        let e = parse("/data/nodes.conf", &bad).expect_err("slot out of range");
        assert_eq!(e.to_string(), "/data/nodes.conf:2: invalid slot '16384'");
        let e = parse("n.conf", "\nabc 1:2@3\n").expect_err("short");
        assert_eq!(e.line, 2);
        assert!(e.message.contains("at least 8 fields"), "{e}");
        let e = parse("n.conf", "vars currentEpoch 1 lastVoteEpoch 0\n").expect_err("no myself");
        assert!(e.message.contains("myself"), "{e}");
        let flagged = REAL.replace("myself,master", "myself,boss");
        assert!(parse("n.conf", &flagged).expect_err("flag").message.contains("boss"));
    }

    fn id() -> impl Strategy<Value = String> {
        proptest::string::string_regex("[0-9a-f]{40}").expect("regex")
    }

    fn node(myself: bool) -> impl Strategy<Value = NodeLine> {
        (
            id(),
            prop_oneof![Just(String::new()), Just("127.0.0.1".to_string()), Just("::1".to_string())],
            any::<u16>(),
            any::<u16>(),
            proptest::option::of("[a-z][a-z0-9.-]{0,12}"),
            (0u16..1024).prop_map(move |f| {
                let f = f & !(flags::MEET | flags::MIGRATE_TO | flags::MYSELF);
                if myself {
                    f | flags::MYSELF
                } else {
                    f
                }
            }),
            proptest::option::of(id()),
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<bool>()),
            proptest::collection::vec((0u16..16384, 0u16..16384), 0..5),
            proptest::collection::vec((any::<bool>(), 0u16..16384, id()), 0..3),
        )
            .prop_map(|(id, ip, port, cport, hostname, flags, master, nums, slots, open)| NodeLine {
                id,
                ip,
                port,
                cport,
                hostname,
                flags,
                master,
                ping_sent: nums.0,
                pong_received: nums.1,
                config_epoch: nums.2,
                connected: nums.3,
                slots: slots.into_iter().map(|(a, b)| (a.min(b), a.max(b))).collect(),
                open_slots: open
                    .into_iter()
                    .map(|(m, s, id)| if m { OpenSlot::Migrating(s, id) } else { OpenSlot::Importing(s, id) })
                    .collect(),
            })
    }

    proptest! {
        #[test]
        fn round_trip(me in node(true), others in proptest::collection::vec(node(false), 0..4),
                      at in 0usize..4, current in any::<u64>(), vote in any::<u64>()) {
            let mut nodes = others;
            nodes.insert(at.min(nodes.len()), me);
            let mut ids = std::collections::HashSet::new();
            prop_assume!(nodes.iter().all(|n| ids.insert(n.id.clone())));
            let conf = NodesConf { nodes, current_epoch: current, last_vote_epoch: vote };
            let text = render(&conf);
            let back = parse("p", &text).expect("what render writes parses");
            prop_assert_eq!(&back, &conf);
            prop_assert_eq!(render(&back), text);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "[ -~\n]{0,300}") {
            if let Ok(conf) = parse("p", &text) {
                let again = parse("p", &render(&conf)).expect("re-rendered file parses");
                prop_assert_eq!(again, conf);
            }
        }
    }
}
