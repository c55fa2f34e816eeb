//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queued commands were validated when queued (a rejected one makes EXEC answer
//! EXECABORT); runtime errors inside EXEC do not roll anything back. A write to a watched
//! key by anyone — another client, expiry, FLUSHALL — makes EXEC return a null reply.

use crate::client::{Client, MultiState};
use crate::ctx::Ctx;
use crate::engine::Engine;
use crate::error::{fail, CmdResult};

pub fn multi(c: &mut Ctx) -> CmdResult {
    if c.client.multi.is_some() {
        return fail("ERR MULTI calls can not be nested");
    }
    c.client.multi = Some(MultiState::default());
    c.out().ok();
    Ok(())
}

pub(crate) fn discard_transaction(eng: &mut Engine, client: &mut Client) {
    client.multi = None;
    client.dirty_exec = false;
    client.dirty_cas = false;
    unwatch_all(eng, client);
}

pub(crate) fn unwatch_all(eng: &mut Engine, client: &mut Client) {
    for (db, key, _) in client.watched.drain(..) {
        eng.watched.unwatch(db, &key, client.id);
    }
}

pub fn discard(c: &mut Ctx) -> CmdResult {
    if c.client.multi.is_none() {
        return fail("ERR DISCARD without MULTI");
    }
    discard_transaction(c.eng, c.client);
    c.out().ok();
    Ok(())
}

/// True if a key that was live when watched has since expired.
fn watched_key_expired(eng: &Engine, client: &Client, now: i64) -> bool {
    client
        .watched
        .iter()
        .any(|(db, key, expired_then)| !expired_then && eng.dbs[*db].expire_at(key).is_some_and(|t| t <= now))
}

fn exec_denial_reason(reason: ferrokv_acl::Denied) -> &'static str {
    match reason {
        ferrokv_acl::Denied::Key => "no permission to touch the specified keys",
        ferrokv_acl::Denied::Channel => "no permission to access one of the channels used as arguments",
        _ => "no permission to execute the command or subcommand",
    }
}

pub fn exec(c: &mut Ctx) -> CmdResult {
    if c.client.multi.is_none() {
        return fail("ERR EXEC without MULTI");
    }
    if watched_key_expired(c.eng, c.client, c.now) {
        c.client.dirty_cas = true;
    }
    if c.client.dirty_exec || c.client.dirty_cas {
        let aborted = c.client.dirty_exec;
        discard_transaction(c.eng, c.client);
        if aborted {
            return fail("EXECABORT Transaction discarded because of previous errors.");
        }
        c.out().null_array();
        return Ok(());
    }
    let queue = c.client.multi.take().map(|m| m.queue).unwrap_or_default();
    unwatch_all(c.eng, c.client);
    c.out().array(queue.len());
    run_queued(c.eng, c.client, queue.into_iter(), c.now);
    Ok(())
}

/// What is left of a transaction whose script was suspended (see `crate::busy`).
pub(crate) type QueueRest = std::vec::IntoIter<(crate::commands::CmdId, ferrokv_resp::Argv)>;

/// Runs a transaction's queued commands. When a script among them is suspended past
/// `busy-reply-threshold`, the rest of the queue waits with it and the transaction goes
/// on when the script ends (`Engine::resume_script`): the transaction stays one unit in
/// the write feed and nobody else touches the dataset meanwhile.
pub(crate) fn run_queued(eng: &mut Engine, client: &mut Client, mut queue: QueueRest, now: i64) {
    eng.in_exec = true;
    while let Some((cmd, argv)) = queue.next() {
        // Permissions may have changed since the command was queued (Redis re-checks).
        match eng.acl_check(client, cmd, &argv, ferrokv_acl::Context::Multi) {
            Ok(()) => eng.call(client, cmd, &argv, now),
            Err(reason) => client.out.error(&format!(
                "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {}",
                exec_denial_reason(reason)
            )),
        }
        if let Some(busy) = eng.scripts.busy.as_mut().filter(|b| b.client == client.id) {
            busy.exec_rest = Some(queue);
            eng.in_exec = false;
            return;
        }
    }
    eng.in_exec = false;
    // The transaction's writes reach the AOF and replicas as one MULTI/EXEC block.
    eng.feed.end_unit(true);
    discard_transaction(eng, client);
}

pub fn watch(c: &mut Ctx) -> CmdResult {
    if c.client.multi.is_some() {
        return fail("ERR WATCH inside MULTI is not allowed");
    }
    if !c.client.dirty_cas {
        let db = c.client.db;
        for i in 1..c.argc() {
            let key = c.arg(i);
            if c.client.watched.iter().any(|(d, k, _)| *d == db && k.as_slice() == key) {
                continue;
            }
            let expired = c.eng.dbs[db].expire_at(key).is_some_and(|t| t < c.now);
            c.eng.watched.watch(db, key, c.client.id);
            c.client.watched.push((db, key.into(), expired));
        }
    }
    c.out().ok();
    Ok(())
}

pub fn unwatch(c: &mut Ctx) -> CmdResult {
    unwatch_all(c.eng, c.client);
    c.client.dirty_cas = false;
    c.out().ok();
    Ok(())
}
