//! [`Message`] → bytes, exactly as Redis 7.0 lays them out.

use super::*;

fn put_fixed(out: &mut Vec<u8>, text: &[u8], size: usize) {
    let n = text.len().min(size);
    out.extend_from_slice(&text[..n]);
    out.resize(out.len() + size - n, 0);
}

/// The padded data of an extension, without its 8-byte header.
fn extension_data(ext: &Extension) -> (u16, Vec<u8>) {
    let (kind, mut data) = match ext {
        Extension::Hostname(h) => (ext_kind::HOSTNAME, [h.as_bytes(), &[0]].concat()),
        Extension::HumanNodename(h) => (ext_kind::HUMAN_NODENAME, [h.as_bytes(), &[0]].concat()),
        Extension::ForgottenNode { name, ttl_secs } => {
            (ext_kind::FORGOTTEN_NODE, [&name[..], &ttl_secs.to_be_bytes()].concat())
        }
        Extension::ShardId(id) => (ext_kind::SHARDID, id.to_vec()),
        Extension::Unknown { kind, data } => (*kind, data.clone()),
    };
    data.resize(data.len().div_ceil(8) * 8, 0);
    (kind, data)
}

/// Encodes a message. Redis's totlen is a u32: a body past 4 GiB is not representable and
/// the caller never builds one (a PUBLISH is bounded by proto-max-bulk-len).
pub fn encode(msg: &Message) -> Vec<u8> {
    let h = &msg.header;
    let (count, extensions) = match msg.body.ping_data() {
        Some((gossip, exts)) => (gossip.len() as u16, exts),
        None => (0, &[][..]),
    };
    let mut mflags = h.mflags;
    if !extensions.is_empty() {
        mflags[0] |= mflags0::EXT_DATA;
    }
    let mut out = Vec::with_capacity(HEADER_LEN + GOSSIP_LEN * usize::from(count));
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&[0; 4]); // totlen, filled in at the end
    out.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    out.extend_from_slice(&h.port.to_be_bytes());
    out.extend_from_slice(&msg.body.kind().to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&h.current_epoch.to_be_bytes());
    out.extend_from_slice(&h.config_epoch.to_be_bytes());
    out.extend_from_slice(&h.offset.to_be_bytes());
    out.extend_from_slice(&h.sender);
    out.extend_from_slice(&h.myslots.0[..]);
    out.extend_from_slice(&h.replica_of.unwrap_or([0; NAME_LEN]));
    put_fixed(&mut out, h.myip.as_bytes(), IP_LEN);
    out.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0; 30]);
    out.extend_from_slice(&h.pport.to_be_bytes());
    out.extend_from_slice(&h.cport.to_be_bytes());
    out.extend_from_slice(&h.flags.to_be_bytes());
    out.push(h.state);
    out.extend_from_slice(&mflags);
    debug_assert_eq!(out.len(), HEADER_LEN);
    match &msg.body {
        Body::Ping { gossip, extensions } | Body::Pong { gossip, extensions } | Body::Meet { gossip, extensions } => {
            for g in gossip {
                out.extend_from_slice(&g.name);
                out.extend_from_slice(&g.ping_sent.to_be_bytes());
                out.extend_from_slice(&g.pong_received.to_be_bytes());
                put_fixed(&mut out, g.ip.as_bytes(), IP_LEN);
                out.extend_from_slice(&g.port.to_be_bytes());
                out.extend_from_slice(&g.cport.to_be_bytes());
                out.extend_from_slice(&g.flags.to_be_bytes());
                out.extend_from_slice(&g.pport.to_be_bytes());
                out.extend_from_slice(&[0; 2]);
            }
            for ext in extensions {
                let (kind, data) = extension_data(ext);
                out.extend_from_slice(&((data.len() + EXT_HEADER_LEN) as u32).to_be_bytes());
                out.extend_from_slice(&kind.to_be_bytes());
                out.extend_from_slice(&[0; 2]);
                out.extend_from_slice(&data);
            }
        }
        Body::Fail { about } => out.extend_from_slice(about),
        Body::Publish { channel, message } | Body::PublishShard { channel, message } => {
            out.extend_from_slice(&(channel.len() as u32).to_be_bytes());
            out.extend_from_slice(&(message.len() as u32).to_be_bytes());
            out.extend_from_slice(channel);
            out.extend_from_slice(message);
        }
        Body::FailoverAuthRequest | Body::FailoverAuthAck | Body::MfStart => {}
        Body::Update { config_epoch, node, slots } => {
            out.extend_from_slice(&config_epoch.to_be_bytes());
            out.extend_from_slice(node);
            out.extend_from_slice(&slots.0[..]);
        }
        Body::Module { module_id, module_type, payload } => {
            out.extend_from_slice(&module_id.to_be_bytes());
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            out.push(*module_type);
            out.extend_from_slice(payload);
        }
        Body::Unknown { payload, .. } => out.extend_from_slice(payload),
    }
    let total = out.len() as u32;
    out[4..8].copy_from_slice(&total.to_be_bytes());
    out
}
