//! Pub/Sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.
//! Confirmations are push messages in RESP3 and arrays in RESP2.

use crate::client::Client;
use crate::ctx::{reply_help, Ctx};
use crate::engine::Engine;
use crate::error::CmdResult;

fn confirm(client: &mut Client, kind: &[u8], name: Option<&[u8]>) {
    let count = client.subscription_count() as i64;
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
    // As Redis, a master propagates PUBLISH to its replicas (not to the AOF), so clients
    // subscribed on a replica get the master's messages (and sentinels' hellos keep quiet
    // links alive). A replica proxies its master's stream instead.
    if c.eng.is_master_role() && c.eng.repl.backlog.is_some() {
        c.eng.feed.push_for_replicas([&b"PUBLISH"[..], ch, msg]);
    }
    c.out().int(n as i64);
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
            "    List the channels that have subscribers, optionally only those matching <pattern>.",
            "NUMPAT",
            "    Count the distinct patterns clients are subscribed to.",
            "NUMSUB [<channel> ...]",
            "    Count the subscribers of each channel (pattern subscribers not included).",
        ],
    )
}
