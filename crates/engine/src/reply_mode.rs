//! CLIENT REPLY OFF / SKIP: what a command leaves in its client's output.
//!
//! Applied once per processed command — whether it ran, was queued inside MULTI or was
//! refused — as Redis resets a client after each one (so a refused command also uses up
//! a SKIP), and when a blocked command is finally served or times out. Pub/Sub
//! confirmations and messages (RESP3 pushes, including those a command publishes to its
//! own client) are delivered whatever the reply mode, as Redis does.

use crate::client::{Client, ReplyMode};

/// True for the commands whose whole reply is Pub/Sub confirmations.
pub(crate) fn is_subscription(name: &[u8]) -> bool {
    const NAMES: [&[u8]; 6] =
        [b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe", b"ssubscribe", b"sunsubscribe"];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// Drops the output the last command wrote after `out_before` if the reply mode says so,
/// and moves SKIP along. `subscription`: the command was a (un)subscribe; its
/// confirmations stay unless it was refused or queued (then its one reply is an error or
/// `+QUEUED`, neither a push nor an array).
pub(crate) fn settle(client: &mut Client, out_before: usize, subscription: bool) {
    let suppress = match client.reply_mode {
        ReplyMode::On => return,
        ReplyMode::Off => true,
        ReplyMode::Skip => {
            client.reply_mode = ReplyMode::On;
            true
        }
        ReplyMode::SkipNext => {
            client.reply_mode = ReplyMode::Skip;
            false
        }
    };
    let confirmations = subscription && matches!(client.out.byte_at(out_before), Some(b'>' | b'*'));
    if suppress && !confirmations {
        drop_all_but_pushes(&mut client.out, out_before);
    }
}

/// Removes the replies written after `from`, keeping RESP3 pushes (messages the command
/// published to its own client, keyspace notifications of its own writes).
fn drop_all_but_pushes(out: &mut ferrokv_resp::ReplyBuf, from: usize) {
    let tail = out.split_off_tail(from);
    if !tail.contains(&b'>') {
        return;
    }
    let mut pos = 0;
    while let Ok(Some((_, len))) = ferrokv_resp::Frame::decode(&tail[pos..]) {
        if tail[pos] == b'>' {
            out.raw(&tail[pos..pos + len]);
        }
        pos += len;
    }
}
