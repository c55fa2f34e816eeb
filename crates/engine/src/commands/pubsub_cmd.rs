//! Pub/Sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB, and sharded
//! pub/sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH), which outside cluster mode is a second
//! channel namespace, as in Redis 7.0. Confirmations are push messages in RESP3 and arrays
//! in RESP2.

use crate::client::Client;
use crate::ctx::{reply_help, Ctx};
use crate::engine::Engine;
use crate::error::{CmdError, CmdResult};

fn confirm(client: &mut Client, kind: &[u8], name: Option<&[u8]>) {
    // Shard confirmations count shard channels only; the others count channels and
    // patterns (Redis's two subscription counts).
    let shard = kind == b"ssubscribe" || kind == b"sunsubscribe";
    let count = if shard { client.shard_channels.len() } else { client.subscription_count() } as i64;
    client.out.push(3);
    client.out.bulk(kind);
    match name {
        Some(n) => client.out.bulk(n),
        None => client.out.null(),
    }
    client.out.int(count);
}

pub fn subscribe(c: &mut Ctx) -> CmdResult {
    for i in 1..c.argc() {
        let ch = c.arg(i);
        if c.client.channels.insert(ch.to_vec()) {
            c.eng.pubsub.subscribe(ch, c.client.id);
        }
        confirm(c.client, b"subscribe", Some(ch));
    }
    Ok(())
}

pub fn ssubscribe(c: &mut Ctx) -> CmdResult {
    // Inside MULTI a client expects one reply per command (Redis's DENY_BLOCKING; SUBSCRIBE
    // keeps an old exception that SSUBSCRIBE does not have).
    if c.eng.in_exec {
        return Err(CmdError::err("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client"));
    }
    for i in 1..c.argc() {
        let ch = c.arg(i);
        if c.client.shard_channels.insert(ch.to_vec()) {
            c.eng.pubsub.ssubscribe(ch, c.client.id);
        }
        confirm(c.client, b"ssubscribe", Some(ch));
    }
    Ok(())
}

pub fn sunsubscribe(c: &mut Ctx) -> CmdResult {
    if c.argc() == 1 {
        sunsubscribe_all(c.eng, c.client, true);
        return Ok(());
    }
    for i in 1..c.argc() {
        let ch = c.arg(i);
        if c.client.shard_channels.remove(ch) {
            c.eng.pubsub.sunsubscribe(ch, c.client.id);
        }
        confirm(c.client, b"sunsubscribe", Some(ch));
    }
    Ok(())
}

pub fn psubscribe(c: &mut Ctx) -> CmdResult {
    for i in 1..c.argc() {
        let p = c.arg(i);
        if c.client.patterns.insert(p.to_vec()) {
            c.eng.pubsub.psubscribe(p, c.client.id);
        }
        confirm(c.client, b"psubscribe", Some(p));
    }
    Ok(())
}

pub fn unsubscribe(c: &mut Ctx) -> CmdResult {
    if c.argc() == 1 {
        unsubscribe_all(c.eng, c.client, true);
        return Ok(());
    }
    for i in 1..c.argc() {
        let ch = c.arg(i);
        if c.client.channels.remove(ch) {
            c.eng.pubsub.unsubscribe(ch, c.client.id);
        }
        confirm(c.client, b"unsubscribe", Some(ch));
    }
    Ok(())
}

pub fn punsubscribe(c: &mut Ctx) -> CmdResult {
    if c.argc() == 1 {
        punsubscribe_all(c.eng, c.client, true);
        return Ok(());
    }
    for i in 1..c.argc() {
        let p = c.arg(i);
        if c.client.patterns.remove(p) {
            c.eng.pubsub.punsubscribe(p, c.client.id);
        }
        confirm(c.client, b"punsubscribe", Some(p));
    }
    Ok(())
}

/// Drops every channel subscription; with `reply`, confirms each (or once with a null
/// channel if there were none). Channels leave one at a time, so each confirmation
/// counts the subscriptions still left, as in Redis.
pub(crate) fn unsubscribe_all(eng: &mut Engine, client: &mut Client, reply: bool) {
    let channels: Vec<Vec<u8>> = client.channels.iter().cloned().collect();
    if channels.is_empty() && reply {
        confirm(client, b"unsubscribe", None);
    }
    for ch in channels {
        client.channels.remove(&ch);
        eng.pubsub.unsubscribe(&ch, client.id);
        if reply {
            confirm(client, b"unsubscribe", Some(&ch));
        }
    }
}

pub(crate) fn sunsubscribe_all(eng: &mut Engine, client: &mut Client, reply: bool) {
    let channels: Vec<Vec<u8>> = client.shard_channels.iter().cloned().collect();
    if channels.is_empty() && reply {
        confirm(client, b"sunsubscribe", None);
    }
    for ch in channels {
        client.shard_channels.remove(&ch);
        eng.pubsub.sunsubscribe(&ch, client.id);
        if reply {
            confirm(client, b"sunsubscribe", Some(&ch));
        }
    }
}

pub(crate) fn punsubscribe_all(eng: &mut Engine, client: &mut Client, reply: bool) {
    let patterns: Vec<Vec<u8>> = client.patterns.iter().cloned().collect();
    if patterns.is_empty() && reply {
        confirm(client, b"punsubscribe", None);
    }
    for p in patterns {
        client.patterns.remove(&p);
        eng.pubsub.punsubscribe(&p, client.id);
        if reply {
            confirm(client, b"punsubscribe", Some(&p));
        }
    }
}

pub fn publish(c: &mut Ctx) -> CmdResult {
    let (ch, msg) = (c.arg(1), c.arg(2));
    let n = c.publish(ch, msg);
    // In cluster mode the message goes to every node over the bus (and not through
    // replication, as in Redis 7.0).
    if let Some(mode) = c.eng.cluster.as_deref_mut() {
        let outputs = mode.core.publish(ch, msg);
        c.eng.cluster_apply(outputs);
        c.out().int(n as i64);
        return Ok(());
    }
    // As Redis, a master propagates PUBLISH to its replicas (not to the AOF), so clients
    // subscribed on a replica get the master's messages (and sentinels' hellos keep quiet
    // links alive). A replica proxies its master's stream instead.
    if c.eng.is_master_role() && c.eng.repl.backlog.is_some() {
        c.eng.feed.push_for_replicas([&b"PUBLISH"[..], ch, msg]);
    }
    c.out().int(n as i64);
    Ok(())
}

pub fn spublish(c: &mut Ctx) -> CmdResult {
    let (ch, msg) = (c.arg(1), c.arg(2));
    let n = c.eng.publish_shard(Some(c.client), ch, msg);
    // In cluster mode the shard's other nodes get it over the bus.
    if let Some(mode) = c.eng.cluster.as_deref_mut() {
        let outputs = mode.core.publish_shard(ch, msg);
        c.eng.cluster_apply(outputs);
        c.out().int(n as i64);
        return Ok(());
    }
    // Outside cluster mode Redis sends SPUBLISH to the replicas as it does PUBLISH.
    if c.eng.is_master_role() && c.eng.repl.backlog.is_some() {
        c.eng.feed.push_for_replicas([&b"SPUBLISH"[..], ch, msg]);
    }
    c.out().int(n as i64);
    Ok(())
}

pub fn shardchannels(c: &mut Ctx) -> CmdResult {
    if c.argc() > 3 {
        return Err(crate::ctx::subcommand_syntax_error(c));
    }
    let pat = (c.argc() == 3).then(|| c.arg(2));
    let list = c.eng.pubsub.shard_channels(pat);
    c.out().bulks(list.iter().map(Vec::as_slice));
    Ok(())
}

pub fn shardnumsub(c: &mut Ctx) -> CmdResult {
    let counts: Vec<(&[u8], usize)> = (2..c.argc()).map(|i| (c.arg(i), c.eng.pubsub.shard_numsub(c.arg(i)))).collect();
    let out = c.out();
    out.array(counts.len() * 2);
    for (ch, n) in counts {
        out.bulk(ch);
        out.int(n as i64);
    }
    Ok(())
}

pub fn channels(c: &mut Ctx) -> CmdResult {
    if c.argc() > 3 {
        return Err(crate::ctx::subcommand_syntax_error(c));
    }
    let pat = (c.argc() == 3).then(|| c.arg(2));
    let list = c.eng.pubsub.channels(pat);
    c.out().bulks(list.iter().map(Vec::as_slice));
    Ok(())
}

pub fn numsub(c: &mut Ctx) -> CmdResult {
    let counts: Vec<(&[u8], usize)> = (2..c.argc()).map(|i| (c.arg(i), c.eng.pubsub.numsub(c.arg(i)))).collect();
    let out = c.out();
    out.array(counts.len() * 2);
    for (ch, n) in counts {
        out.bulk(ch);
        out.int(n as i64);
    }
    Ok(())
}

pub fn numpat(c: &mut Ctx) -> CmdResult {
    let n = c.eng.pubsub.numpat();
    c.out().int(n as i64);
    Ok(())
}

pub fn help(c: &mut Ctx) -> CmdResult {
    reply_help(
        c,
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    )
}
