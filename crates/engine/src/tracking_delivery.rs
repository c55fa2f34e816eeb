//! Client-side caching: the engine's side (Redis's `signalModifiedKey` →
//! `trackingInvalidateKey`, the flush of BCAST notes, the messages themselves). The state
//! is in [`crate::tracking`].
//!
//! Every key change reaches [`Engine::tracking_invalidate`] from the same places that
//! touch WATCHed keys (`Ctx::modified_in`, expired keys in `flush_expired`, eviction),
//! and a flush reaches [`Engine::tracking_flush`], each behind the one `active()` branch.
//!
//! Ordering, as Redis 7.0.15 sends them:
//! - An invalidation for the client whose command is running (its own write, its own
//!   FLUSHALL, a key it read expiring as it runs) waits until that command — or its whole
//!   EXEC or script — has replied (Redis's `tracking_pending_keys`).
//! - Other clients get theirs at once, in their output buffers.
//! - BCAST notes are flushed once the current batch of work is done: after a connection's
//!   batch of commands, a cron run, a run of the master's stream.

use crate::client::{Client, ClientId};
use crate::commands::spec::flags;
use crate::commands::CmdId;
use crate::engine::Engine;
use ferrokv_resp::Argv;

/// What an invalidation carries.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Key(&'a [u8]),
    Keys(&'a [Vec<u8>]),
    /// The null of a flush, in the tracking client's protocol (not the receiver's).
    Null,
}

const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// The client `id`: the one running (passed along as `current`) or one in the table.
fn client_mut<'a>(
    clients: &'a mut crate::client::Clients,
    current: &'a mut Option<&mut Client>,
    id: ClientId,
) -> Option<&'a mut Client> {
    match current {
        Some(c) if c.id == id => Some(&mut **c),
        _ => clients.get_mut(id),
    }
}

impl Engine {
    /// A key changed (Redis's trackingInvalidateKey): every client that may cache it is
    /// told once and forgotten; with `bcast`, the change is noted for the BCAST prefixes.
    /// `writer` is the client whose command changed it (0: expiry, eviction, the limit).
    // Kept out of line: callers on the hot path pay one branch, not this code.
    #[inline(never)]
    pub(crate) fn tracking_invalidate(
        &mut self,
        mut current: Option<&mut Client>,
        key: &[u8],
        writer: ClientId,
        bcast: bool,
    ) {
        if bcast && self.tracking.has_prefixes() {
            self.tracking.note_for_broadcast(key, writer);
        }
        let Some(readers) = self.tracking.take_readers(key) else {
            return;
        };
        for id in readers {
            if id == self.tracking.current {
                // Checked (tracking on, not BCAST, NOLOOP) once its reply is out.
                self.tracking.defer(id, Some(key));
                continue;
            }
            let Some(target) = client_mut(&mut self.clients, &mut current, id) else {
                if id == self.tracking.processing {
                    self.tracking.defer(id, Some(key));
                }
                continue;
            };
            if !target.tracking.on || target.tracking.bcast {
                continue;
            }
            self.send_tracking_message(current.as_deref_mut(), id, Payload::Key(key));
        }
    }

    /// FLUSHALL, FLUSHDB and whatever replaces the dataset (Redis's
    /// trackingInvalidateKeysOnFlush): every tracking client gets the null invalidation,
    /// and the table is emptied.
    pub(crate) fn tracking_flush(&mut self, mut current: Option<&mut Client>) {
        if self.tracking.clients() > 0 {
            let mut ids = self.clients.ids();
            if let Some(c) = current.as_deref() {
                if !ids.contains(&c.id) {
                    ids.push(c.id);
                }
            }
            for id in ids {
                if id == self.tracking.current {
                    self.tracking.defer(id, None);
                    continue;
                }
                if client_mut(&mut self.clients, &mut current, id).is_some_and(|c| c.tracking.on) {
                    self.send_tracking_message(current.as_deref_mut(), id, Payload::Null);
                }
            }
        }
        self.tracking.clear_table();
    }

    /// Sends one invalidation for tracking client `id` (Redis's sendTrackingMessage):
    /// to itself as a RESP3 push, or to its redirect client (a RESP3 push, or a message
    /// on `__redis__:invalidate` if that client is a RESP2 subscriber); a redirect client
    /// that is gone breaks the redirect (the RESP3 client hears `tracking-redir-broken`).
    fn send_tracking_message(&mut self, mut current: Option<&mut Client>, id: ClientId, payload: Payload<'_>) {
        let Some(target) = client_mut(&mut self.clients, &mut current, id) else {
            return;
        };
        let redirect = target.tracking.redirect;
        let null: &[u8] = if target.resp3() { b"_\r\n" } else { b"$-1\r\n" };
        let mut receiver_id = id;
        if redirect != 0 {
            let present = redirect == self.tracking.current
                || redirect == self.tracking.processing
                || client_mut(&mut self.clients, &mut current, redirect).is_some();
            if !present {
                let Some(target) = client_mut(&mut self.clients, &mut current, id) else {
                    return;
                };
                target.tracking.broken_redirect = true;
                if target.resp3() {
                    target.out.push(2);
                    target.out.bulk(b"tracking-redir-broken");
                    target.out.int(redirect as i64);
                    self.after_tracking_output(current.as_deref(), id);
                }
                return;
            }
            if client_mut(&mut self.clients, &mut current, redirect).is_none() {
                // The redirect client is the one whose command runs, out of reach while it
                // does (a script's caller): it hears this once that command has replied.
                if let Payload::Key(key) = payload {
                    self.tracking.defer(id, Some(key));
                } else if let Payload::Null = payload {
                    self.tracking.defer(id, None);
                }
                return;
            }
            receiver_id = redirect;
        }
        let Some(receiver) = client_mut(&mut self.clients, &mut current, receiver_id) else {
            return;
        };
        if receiver.resp3() {
            receiver.out.push(2);
            receiver.out.bulk(b"invalidate");
        } else if redirect != 0 && receiver.is_pubsub() {
            receiver.out.push(3);
            receiver.out.bulk(b"message");
            receiver.out.bulk(INVALIDATE_CHANNEL);
        } else {
            // RESP2 without a subscribed redirect client: nowhere to say it.
            return;
        }
        match payload {
            Payload::Key(key) => {
                receiver.out.array(1);
                receiver.out.bulk(key);
            }
            Payload::Keys(keys) => {
                receiver.out.array(keys.len());
                for k in keys {
                    receiver.out.bulk(k);
                }
            }
            Payload::Null => receiver.out.raw(null),
        }
        self.after_tracking_output(current.as_deref(), receiver_id);
    }

    /// Wakes a receiver other than the running client and checks its output limits.
    fn after_tracking_output(&mut self, current: Option<&Client>, id: ClientId) {
        if current.is_some_and(|c| c.id == id) {
            return;
        }
        self.tracking.told_another();
        if let Some(c) = self.clients.get(id) {
            c.waker.wake();
        }
        self.check_receiver(id);
    }

    /// After a command of `client` (the top-level one) has replied: its held
    /// invalidations go out, and CLIENT CACHING applies to one command only (any CLIENT
    /// subcommand keeps it, as does queueing inside MULTI).
    // Kept out of line: callers on the hot path pay one branch, not this code.
    #[inline(never)]
    pub(crate) fn tracking_after_command(&mut self, client: &mut Client, was_client_cmd: bool) {
        if client.script_blocked {
            // Its script is suspended between slices: the command has not ended yet.
            return;
        }
        let me = client.id;
        // (A suspended script's caller stays current while others are refused with BUSY.)
        if self.tracking.current == me {
            self.tracking.current = 0;
        }
        if self.tracking.processing == me {
            self.tracking.processing = 0;
        }
        if self.tracking.has_pending() {
            for (id, key) in self.tracking.take_pending() {
                let t = if id == me { Some(&client.tracking) } else { self.clients.get(id).map(|c| &c.tracking) };
                let Some((on, bcast, noloop)) = t.map(|t| (t.on, t.bcast, t.noloop)) else {
                    continue;
                };
                if !on {
                    continue;
                }
                match key {
                    Some(key) => {
                        if bcast || (noloop && id == me) {
                            continue;
                        }
                        self.send_tracking_message(Some(&mut *client), id, Payload::Key(&key));
                    }
                    None => self.send_tracking_message(Some(&mut *client), id, Payload::Null),
                }
            }
        }
        if client.tracking.caching && !was_client_cmd && client.multi.is_none() {
            client.tracking.caching = false;
        }
        self.tracking.refresh();
    }

    /// Remembers the keys a read-only command read (Redis's trackingRememberKeys, called
    /// from `call`). Inside a script the caller's own keys are remembered, as Redis 7.0
    /// does; EVAL_RO/EVALSHA_RO/FCALL_RO themselves are not looked at.
    // Kept out of line: callers on the hot path pay one branch, not this code.
    #[inline(never)]
    pub(crate) fn tracking_remember(&mut self, client: &Client, cmd: CmdId, argv: &Argv) {
        if let Some(script) = self.tracking.script_caller.as_ref().filter(|s| s.script_client == client.id) {
            let (caller, keys) = (script.caller, script.keys.clone());
            for k in &keys {
                self.tracking.remember(k, caller);
            }
            return;
        }
        if !client.tracking.remembers_reads() {
            return;
        }
        let c = self.commands.get(cmd);
        if c.flags() & flags::PUBSUB != 0 || matches!(c.name, "eval_ro" | "evalsha_ro" | "fcall_ro") {
            return;
        }
        for k in crate::commands::getkeys::command_keys(c, argv) {
            self.tracking.remember(argv.get(k.pos), client.id);
        }
    }

    /// Sends what BCAST subscribers have to hear since the last flush (Redis does it in
    /// beforeSleep): one message per prefix and subscriber.
    // Kept out of line: callers on the hot path pay one branch, not this code.
    #[inline(never)]
    pub fn tracking_broadcast(&mut self) {
        if !self.tracking.bcast_pending() {
            return;
        }
        let clients = &self.clients;
        let messages = self.tracking.take_broadcasts(|id| clients.get(id).is_some_and(|c| c.tracking.noloop));
        for m in messages {
            if self.clients.get(m.client).is_some_and(|c| c.tracking.on && c.tracking.bcast) {
                self.send_tracking_message(None, m.client, Payload::Keys(&m.keys));
            }
        }
    }

    /// `tracking-table-max-keys` (Redis's trackingLimitUsedSlots, before each command and
    /// in cron): random keys are invalidated until the table is back under the limit, with
    /// more effort each time it stays over.
    // Kept out of line: callers on the hot path pay one branch, not this code.
    #[inline(never)]
    pub(crate) fn tracking_limit(&mut self, mut current: Option<&mut Client>) {
        let max = self.hot.tracking_max_keys;
        if max == 0 || self.tracking.table_len() <= max {
            self.tracking.limit_result(true);
            return;
        }
        for _ in 0..self.tracking.limit_effort() {
            let Some(key) = self.tracking.random_key(&mut self.rng) else {
                break;
            };
            self.tracking_invalidate(current.as_deref_mut(), &key, 0, false);
            if self.tracking.table_len() <= max {
                self.tracking.limit_result(true);
                return;
            }
        }
        self.tracking.limit_result(false);
    }

    /// A client's tracking ends (CLIENT TRACKING off, RESET, the client going away).
    pub(crate) fn tracking_disable(&mut self, client: &mut Client) {
        let id = client.id;
        self.tracking.disable(&mut client.tracking, id);
    }
}
