//! The cluster bus: Redis 7.0's `clusterMsg`, byte for byte, in both directions.
//!
//! Every message is a fixed 2256-byte header followed by a body that depends on the type.
//! All integers are big-endian. Strings are NUL-padded fixed-size fields. The header:
//!
//! ```text
//! off  size  field
//!    0     4  "RCmb"
//!    4     4  totlen (header + body)
//!    8     2  ver (1)
//!   10     2  port            (the sender's client port)
//!   12     2  type
//!   14     2  count           (gossip entries, PING/PONG/MEET)
//!   16     8  currentEpoch
//!   24     8  configEpoch     (a replica sends its master's)
//!   32     8  offset          (replication offset)
//!   40    40  sender          (node id)
//!   80  2048  myslots         (bitmap; a replica sends its master's)
//! 2128    40  slaveof         (all zero: a master)
//! 2168    46  myip            (all zero: "use the address you see")
//! 2214     2  extensions      (count of ping extensions)
//! 2216    30  reserved
//! 2246     2  pport           (plaintext port when port is TLS)
//! 2248     2  cport           (cluster bus port)
//! 2250     2  flags           (the sender's node flags)
//! 2252     1  state           (0 ok, 1 fail, as the sender sees the cluster)
//! 2253     3  mflags
//! ```
//!
//! Bodies: PING/PONG/MEET carry `count` gossip entries of 104 bytes, then (when mflags[0]
//! has EXT_DATA) `extensions` extensions, each `u32 length, u16 type, u16 pad` then its
//! data padded to 8 bytes. FAIL: a node id. PUBLISH/PUBLISHSHARD: channel and message
//! lengths (u32 each) then the bytes. UPDATE: configEpoch, node id, slot bitmap. MODULE:
//! module id (u64), length (u32), type (u8), payload. FAILOVER_AUTH_REQUEST/ACK, MFSTART:
//! no body. The decoder checks each type's length exactly as Redis does before it trusts
//! any field, so bad input is an error, never a panic or an over-read.

mod decode;
mod encode;

pub use decode::{decode, frame_len, DecodeError};
pub use encode::encode;

use crate::slot::SLOTS;

pub const SIGNATURE: &[u8; 4] = b"RCmb";
pub const PROTOCOL_VERSION: u16 = 1;
/// The header, i.e. the smallest valid message (Redis's CLUSTERMSG_MIN_LEN).
pub const HEADER_LEN: usize = 2256;
pub const GOSSIP_LEN: usize = 104;
pub const NAME_LEN: usize = 40;
pub const IP_LEN: usize = 46;
pub const BITMAP_LEN: usize = SLOTS / 8;
const EXT_HEADER_LEN: usize = 8;

/// Message types.
pub mod kind {
    pub const PING: u16 = 0;
    pub const PONG: u16 = 1;
    pub const MEET: u16 = 2;
    pub const FAIL: u16 = 3;
    pub const PUBLISH: u16 = 4;
    pub const FAILOVER_AUTH_REQUEST: u16 = 5;
    pub const FAILOVER_AUTH_ACK: u16 = 6;
    pub const UPDATE: u16 = 7;
    pub const MFSTART: u16 = 8;
    pub const MODULE: u16 = 9;
    pub const PUBLISHSHARD: u16 = 10;
}

/// Bits of `mflags[0]`.
pub mod mflags0 {
    /// The master is paused for a manual failover.
    pub const PAUSED: u8 = 1;
    /// Vote even though the master is not failing (CLUSTER FAILOVER FORCE).
    pub const FORCEACK: u8 = 2;
    /// The message carries ping extensions.
    pub const EXT_DATA: u8 = 4;
}

/// Extension types. Redis 7.0 sends only HOSTNAME; 7.2 added the others (same numbering),
/// which a 7.0 node ignores, as this decoder keeps them but the state machine does.
pub mod ext_kind {
    pub const HOSTNAME: u16 = 0;
    pub const HUMAN_NODENAME: u16 = 1;
    pub const FORGOTTEN_NODE: u16 = 2;
    pub const SHARDID: u16 = 3;
}

/// A node id as it travels: 40 bytes (hex digits in practice; the bus does not check).
pub type NodeName = [u8; NAME_LEN];

/// 16384 slot bits, slot 0 in the lowest bit of byte 0.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotBitmap(pub Box<[u8; BITMAP_LEN]>);

impl Default for SlotBitmap {
    fn default() -> Self {
        SlotBitmap(Box::new([0; BITMAP_LEN]))
    }
}

impl std::fmt::Debug for SlotBitmap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotBitmap({} slots)", self.count())
    }
}

impl SlotBitmap {
    pub fn get(&self, slot: u16) -> bool {
        let slot = usize::from(slot) % SLOTS;
        self.0[slot / 8] & (1 << (slot % 8)) != 0
    }

    pub fn set(&mut self, slot: u16, on: bool) {
        let slot = usize::from(slot) % SLOTS;
        if on {
            self.0[slot / 8] |= 1 << (slot % 8);
        } else {
            self.0[slot / 8] &= !(1 << (slot % 8));
        }
    }

    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    pub fn slots(&self) -> impl Iterator<Item = u16> + '_ {
        (0..SLOTS as u16).filter(|&s| self.get(s))
    }

    /// The runs of set slots in order, as (first, last), a byte at a time where its eight
    /// bits agree: nodes.conf and CLUSTER NODES list a node's slots this way, and every
    /// CLUSTER SETSLOT renders them (a scan of the 16384-slot owner table per node took
    /// most of the command's time).
    pub fn ranges(&self) -> Vec<(u16, u16)> {
        let mut ranges = Vec::new();
        let mut start: Option<u16> = None;
        for (i, &byte) in self.0.iter().enumerate() {
            let base = (i * 8) as u16;
            match (byte, start) {
                (0, None) | (0xff, Some(_)) => continue,
                (0xff, None) => {
                    start = Some(base);
                    continue;
                }
                _ => {}
            }
            for bit in 0..8 {
                match (byte & (1 << bit) != 0, start) {
                    (true, None) => start = Some(base + bit),
                    (false, Some(first)) => {
                        ranges.push((first, base + bit - 1));
                        start = None;
                    }
                    _ => {}
                }
            }
        }
        if let Some(first) = start {
            ranges.push((first, SLOTS as u16 - 1));
        }
        ranges
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub port: u16,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub offset: u64,
    pub sender: NodeName,
    pub myslots: SlotBitmap,
    /// None: the sender is a master (the field is all zero).
    pub replica_of: Option<NodeName>,
    /// Empty: the receiver uses the address the connection comes from.
    pub myip: String,
    pub pport: u16,
    pub cport: u16,
    pub flags: u16,
    /// 0: the sender sees the cluster ok; 1: failing.
    pub state: u8,
    /// mflags[0]'s EXT_DATA bit is set by the encoder when there are extensions.
    pub mflags: [u8; 3],
}

/// One node the sender tells about in a PING, PONG or MEET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gossip {
    pub name: NodeName,
    /// Seconds (Redis truncates its millisecond times to 32-bit seconds here).
    pub ping_sent: u32,
    pub pong_received: u32,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub pport: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Extension {
    Hostname(String),
    HumanNodename(String),
    ForgottenNode {
        name: NodeName,
        ttl_secs: u64,
    },
    ShardId(NodeName),
    /// A type this version does not know: kept, ignored. `data` is its padded payload.
    Unknown {
        kind: u16,
        data: Vec<u8>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    Ping {
        gossip: Vec<Gossip>,
        extensions: Vec<Extension>,
    },
    Pong {
        gossip: Vec<Gossip>,
        extensions: Vec<Extension>,
    },
    Meet {
        gossip: Vec<Gossip>,
        extensions: Vec<Extension>,
    },
    Fail {
        about: NodeName,
    },
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    PublishShard {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    FailoverAuthRequest,
    FailoverAuthAck,
    Update {
        config_epoch: u64,
        node: NodeName,
        slots: SlotBitmap,
    },
    MfStart,
    /// Module messages are parsed for their length and otherwise ignored.
    Module {
        module_id: u64,
        module_type: u8,
        payload: Vec<u8>,
    },
    /// A type Redis 7.0 does not know either: Redis accepts it as well formed and ignores it.
    Unknown {
        kind: u16,
        payload: Vec<u8>,
    },
}

impl Body {
    pub fn kind(&self) -> u16 {
        match self {
            Body::Ping { .. } => kind::PING,
            Body::Pong { .. } => kind::PONG,
            Body::Meet { .. } => kind::MEET,
            Body::Fail { .. } => kind::FAIL,
            Body::Publish { .. } => kind::PUBLISH,
            Body::PublishShard { .. } => kind::PUBLISHSHARD,
            Body::FailoverAuthRequest => kind::FAILOVER_AUTH_REQUEST,
            Body::FailoverAuthAck => kind::FAILOVER_AUTH_ACK,
            Body::Update { .. } => kind::UPDATE,
            Body::MfStart => kind::MFSTART,
            Body::Module { .. } => kind::MODULE,
            Body::Unknown { kind, .. } => *kind,
        }
    }

    /// The gossip and extensions of a PING, PONG or MEET.
    pub fn ping_data(&self) -> Option<(&[Gossip], &[Extension])> {
        match self {
            Body::Ping { gossip, extensions }
            | Body::Pong { gossip, extensions }
            | Body::Meet { gossip, extensions } => Some((gossip, extensions)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub body: Body,
}

/// The flags a node puts in its own header: its node flags with MYSELF, as Redis copies them.
pub fn flags_of_myself(node_flags: u16) -> u16 {
    node_flags | crate::nodes_conf::flags::MYSELF
}

/// A node name from text (the first 40 bytes; shorter text is NUL-padded).
pub fn name_from_str(id: &str) -> NodeName {
    let mut name = [0; NAME_LEN];
    let n = id.len().min(NAME_LEN);
    name[..n].copy_from_slice(&id.as_bytes()[..n]);
    name
}

/// The text of a node name (lossy for non-UTF-8 bytes, which real ids never have).
pub fn name_to_string(name: &NodeName) -> String {
    String::from_utf8_lossy(name).into_owned()
}

#[cfg(test)]
mod tests;
