//! Bytes → [`Message`], with Redis 7.0's length rules checked before anything is trusted.

use super::*;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a cluster bus stream (bad signature or impossible length): the link must be
    /// closed, as Redis closes it, since message boundaries are lost.
    BadFrame(String),
    /// A whole message that Redis would drop (other version, wrong length for its type);
    /// the link stays usable.
    BadMessage(String),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadFrame(m) => write!(f, "bad cluster bus frame: {m}"),
            DecodeError::BadMessage(m) => write!(f, "bad cluster bus message: {m}"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn bad(m: impl Into<String>) -> DecodeError {
    DecodeError::BadMessage(m.into())
}

/// How long the message at the start of `buf` is, once its first 8 bytes are there
/// (`Ok(None)` before). Longer than `max_len`, shorter than a header or not starting
/// with "RCmb": an error (the link is to be closed).
pub fn frame_len(buf: &[u8], max_len: usize) -> Result<Option<usize>, DecodeError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    if &buf[..4] != SIGNATURE {
        return Err(DecodeError::BadFrame("signature is not RCmb".into()));
    }
    let len = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if len < HEADER_LEN {
        return Err(DecodeError::BadFrame(format!("length {len} is shorter than a header")));
    }
    if len > max_len {
        return Err(DecodeError::BadFrame(format!("length {len} is over the limit of {max_len}")));
    }
    Ok(Some(len))
}

/// A bounds-checked cursor. Every read past the end is an error.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| bad("truncated"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// A NUL-padded address field. Addresses are ASCII; other bytes make the message
    /// invalid (Redis would copy them and fail to connect to the result).
    fn address(&mut self, n: usize) -> Result<String, DecodeError> {
        let bytes = self.bytes(n)?;
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        match std::str::from_utf8(&bytes[..end]) {
            Ok(text) => Ok(text.to_string()),
            Err(_) => Err(bad("an address field is not text")),
        }
    }
}

/// The text before the first NUL.
fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn read_header(r: &mut Reader<'_>) -> Result<(Header, u16, u16, u16), DecodeError> {
    r.bytes(8)?; // signature and length, checked by the caller
    let ver = r.u16()?;
    if ver != PROTOCOL_VERSION {
        return Err(bad(format!("protocol version {ver}, not {PROTOCOL_VERSION}")));
    }
    let port = r.u16()?;
    let kind = r.u16()?;
    let count = r.u16()?;
    let current_epoch = r.u64()?;
    let config_epoch = r.u64()?;
    let offset = r.u64()?;
    let sender = r.array()?;
    let myslots = SlotBitmap(Box::new(r.array()?));
    let slaveof: NodeName = r.array()?;
    let myip = r.address(IP_LEN)?;
    let extensions = r.u16()?;
    r.bytes(30)?;
    let pport = r.u16()?;
    let cport = r.u16()?;
    let flags = r.u16()?;
    let state = r.u8()?;
    let mflags = r.array()?;
    let replica_of = (slaveof != [0; NAME_LEN]).then_some(slaveof);
    let header = Header {
        port,
        current_epoch,
        config_epoch,
        offset,
        sender,
        myslots,
        replica_of,
        myip,
        pport,
        cport,
        flags,
        state,
        mflags,
    };
    Ok((header, kind, count, extensions))
}

fn read_gossip(r: &mut Reader<'_>) -> Result<Gossip, DecodeError> {
    let gossip = Gossip {
        name: r.array()?,
        ping_sent: r.u32()?,
        pong_received: r.u32()?,
        ip: r.address(IP_LEN)?,
        port: r.u16()?,
        cport: r.u16()?,
        flags: r.u16()?,
        pport: r.u16()?,
    };
    r.bytes(2)?;
    Ok(gossip)
}

fn read_extension(r: &mut Reader<'_>) -> Result<Extension, DecodeError> {
    let len = r.u32()? as usize;
    let kind = r.u16()?;
    r.bytes(2)?;
    if !len.is_multiple_of(8) || len < EXT_HEADER_LEN {
        return Err(bad(format!("extension length {len} is not a multiple of 8 of at least 8")));
    }
    let mut data =
        Reader { buf: r.bytes(len - EXT_HEADER_LEN).map_err(|_| bad("extension past the message end"))?, pos: 0 };
    Ok(match kind {
        ext_kind::HOSTNAME => Extension::Hostname(c_string(data.buf)),
        ext_kind::HUMAN_NODENAME => Extension::HumanNodename(c_string(data.buf)),
        ext_kind::FORGOTTEN_NODE => Extension::ForgottenNode { name: data.array()?, ttl_secs: data.u64()? },
        ext_kind::SHARDID => Extension::ShardId(data.array()?),
        kind => Extension::Unknown { kind, data: data.buf.to_vec() },
    })
}

fn read_ping(
    r: &mut Reader<'_>,
    header: &Header,
    count: u16,
    extensions: u16,
) -> Result<(Vec<Gossip>, Vec<Extension>), DecodeError> {
    // The length check first, so a huge count cannot make us allocate.
    if r.buf.len() < HEADER_LEN + GOSSIP_LEN * usize::from(count) {
        return Err(bad(format!("{count} gossip entries do not fit in {} bytes", r.buf.len())));
    }
    let gossip = (0..count).map(|_| read_gossip(r)).collect::<Result<Vec<_>, _>>()?;
    let mut exts = Vec::new();
    if header.mflags[0] & mflags0::EXT_DATA != 0 {
        for _ in 0..extensions {
            exts.push(read_extension(r)?);
        }
    }
    Ok((gossip, exts))
}

/// Decodes one whole message (`buf` is exactly `totlen` bytes, as [`frame_len`] framed it).
pub fn decode(buf: &[u8]) -> Result<Message, DecodeError> {
    let len = frame_len(buf, usize::MAX)?.ok_or_else(|| DecodeError::BadFrame("shorter than 8 bytes".into()))?;
    if len != buf.len() {
        return Err(DecodeError::BadFrame(format!("length field {len} but {} bytes", buf.len())));
    }
    let mut r = Reader { buf, pos: 0 };
    let (header, kind, count, extensions) = read_header(&mut r)?;
    let body = match kind {
        kind::PING | kind::PONG | kind::MEET => {
            let (gossip, extensions) = read_ping(&mut r, &header, count, extensions)?;
            match kind {
                kind::PING => Body::Ping { gossip, extensions },
                kind::PONG => Body::Pong { gossip, extensions },
                _ => Body::Meet { gossip, extensions },
            }
        }
        kind::FAIL => Body::Fail { about: r.array()? },
        kind::PUBLISH | kind::PUBLISHSHARD => {
            let channel_len = r.u32()? as usize;
            let message_len = r.u32()? as usize;
            let channel = r.bytes(channel_len)?.to_vec();
            let message = r.bytes(message_len)?.to_vec();
            if kind == kind::PUBLISH {
                Body::Publish { channel, message }
            } else {
                Body::PublishShard { channel, message }
            }
        }
        kind::FAILOVER_AUTH_REQUEST => Body::FailoverAuthRequest,
        kind::FAILOVER_AUTH_ACK => Body::FailoverAuthAck,
        kind::MFSTART => Body::MfStart,
        kind::UPDATE => {
            Body::Update { config_epoch: r.u64()?, node: r.array()?, slots: SlotBitmap(Box::new(r.array()?)) }
        }
        kind::MODULE => {
            let module_id = r.u64()?;
            let len = r.u32()? as usize;
            let module_type = r.u8()?;
            Body::Module { module_id, module_type, payload: r.bytes(len)?.to_vec() }
        }
        kind => {
            let rest = r.bytes(buf.len() - HEADER_LEN)?.to_vec();
            Body::Unknown { kind, payload: rest }
        }
    };
    // Redis drops a message whose length is not exactly what its type and counts say.
    if r.pos != buf.len() {
        return Err(bad(format!("type {kind} message of {} bytes, expected {}", buf.len(), r.pos)));
    }
    Ok(Message { header, body })
}
