//! SHUTDOWN's wait for lagging replicas (Redis 7.0). Unless NOW is given (or
//! `shutdown-timeout` is 0), a server whose replicas have not acknowledged the whole stream
//! pauses writes, asks them for an ACK and waits, up to `shutdown-timeout` seconds, before
//! saving and exiting: a restart from that save can then continue them with a partial
//! resync instead of a full one. The SHUTDOWN client stays blocked meanwhile (it gets no
//! reply if the server exits, an error if the shutdown fails); a second SHUTDOWN joins the
//! wait; SHUTDOWN ABORT cancels it. SIGTERM and SIGINT wait the same way, with the flags of
//! `shutdown-on-sigterm` / `shutdown-on-sigint`.

use crate::blocking::{BlockRequest, TimeoutReply};
use crate::client::ClientId;
use crate::engine::{Engine, Pause};
use crate::host::ShutdownRequest;
use ferrokv_config::{pid, Val};
use ferrokv_keyspace::ValueType;

/// A shutdown waiting for replicas.
#[derive(Clone, Copy, Debug)]
pub struct ShutdownWait {
    pub req: ShutdownRequest,
    pub deadline_ms: i64,
    /// The pause in force before the wait, put back if the shutdown is cancelled.
    pause_before: Option<Pause>,
}

/// What starting a shutdown came to.
#[derive(Debug, PartialEq, Eq)]
pub enum ShutdownStart {
    /// Saved (as asked): the host was told to exit.
    Exiting,
    /// Waiting for replicas (or joining a shutdown that already waits).
    Waiting,
    /// It failed (saving did), the server goes on; the reason is logged.
    Failed,
}

/// The error a blocked SHUTDOWN gets when the shutdown fails or is aborted.
pub const SHUTDOWN_FAILED: &str = "ERR Errors trying to SHUTDOWN. Check logs.";

/// The block a SHUTDOWN client waits in.
pub fn shutdown_block() -> BlockRequest {
    BlockRequest {
        keys: Vec::new(),
        deadline_ms: None,
        wants: ValueType::String,
        timeout_reply: TimeoutReply::Shutdown,
        argv: None,
    }
}

impl Engine {
    /// Starts a shutdown: at once when no replica lags (or NOW), else after the wait.
    pub fn begin_shutdown(&mut self, mut req: ShutdownRequest, now_ms: i64) -> ShutdownStart {
        if self.repl.shutdown.is_some() {
            return ShutdownStart::Waiting;
        }
        // Saving a half-loaded dataset would overwrite the file it comes from.
        if self.is_loading() {
            req.save = false;
            req.nosave = true;
        }
        log::warn!("User requested shutdown...");
        // Every write executed so far is in the stream the replicas must acknowledge.
        self.flush_feed();
        let timeout_s = self.cfg.int(pid("shutdown-timeout"));
        if !req.now && timeout_s > 0 && !self.replicas_in_sync() {
            // The GETACK goes out before the pause (nothing enters the stream during one).
            self.repl.want_acks = true;
            self.request_acks();
            self.flush_feed();
            let pause_before = self.pause;
            self.pause = Some(Pause { until_ms: i64::MAX, all: pause_before.is_some_and(|p| p.all) });
            self.repl.shutdown = Some(ShutdownWait { req, deadline_ms: now_ms + timeout_s * 1000, pause_before });
            log::info!("Waiting for replicas before shutting down.");
            return ShutdownStart::Waiting;
        }
        self.finish_shutdown(req, now_ms)
    }

    /// A signal asked for a shutdown: SIGTERM (else SIGINT) with its configured flags.
    pub fn signal_shutdown(&mut self, sigterm: bool, now_ms: i64) -> ShutdownStart {
        let name = if sigterm { "shutdown-on-sigterm" } else { "shutdown-on-sigint" };
        let flags = match self.cfg.get(pid(name)) {
            Val::Flags(f) => *f,
            _ => 0,
        };
        let req = ShutdownRequest {
            save: flags & 1 != 0,
            nosave: flags & 2 != 0,
            now: flags & 4 != 0,
            force: flags & 8 != 0,
        };
        self.begin_shutdown(req, now_ms)
    }

    /// Every replica acknowledged the whole stream.
    fn replicas_in_sync(&self) -> bool {
        self.repl.replicas.iter().all(|r| r.ack_offset == self.repl.offset)
    }

    /// The cron's part: the wait ends when the replicas caught up or time is up.
    pub(crate) fn shutdown_cron(&mut self, now_ms: i64) {
        let Some(wait) = self.repl.shutdown else { return };
        let over = now_ms >= wait.deadline_ms || self.replicas_in_sync();
        if over && self.finish_shutdown(wait.req, now_ms) == ShutdownStart::Failed {
            self.cancel_shutdown();
        }
    }

    /// SHUTDOWN ABORT. False if no shutdown was in progress.
    pub fn abort_shutdown(&mut self) -> bool {
        if self.repl.shutdown.is_none() {
            return false;
        }
        self.cancel_shutdown();
        log::info!("Shutdown manually aborted.");
        true
    }

    /// Reports lagging replicas, saves as asked and tells the host to exit.
    fn finish_shutdown(&mut self, req: ShutdownRequest, now_ms: i64) -> ShutdownStart {
        let offset = self.repl.offset;
        let total = self.repl.replicas.len();
        let mut lagging = 0;
        for r in &self.repl.replicas {
            if r.ack_offset != offset {
                lagging += 1;
                let lag = if r.state == super::ReplicaState::Online { (now_ms - r.ack_ms) / 1000 } else { 0 };
                log::warn!(
                    "Lagging replica {}:{} reported offset {} behind master, lag={lag}, state={}.",
                    r.ip,
                    r.listening_port,
                    offset as i64 - r.ack_offset as i64,
                    r.state.name()
                );
            }
        }
        if total > 0 {
            log::info!("{} of {total} replicas are in sync when shutting down.", total - lagging);
        }
        if self.prepare_shutdown(req.save, req.nosave, req.force, now_ms).is_err() {
            log::warn!("Errors trying to shut down the server. Check the logs for more information.");
            return ShutdownStart::Failed;
        }
        match self.host.shutdown(req) {
            Ok(()) => ShutdownStart::Exiting,
            Err(e) => {
                log::warn!("{e}");
                ShutdownStart::Failed
            }
        }
    }

    /// Back to serving: writes resume, the blocked SHUTDOWN clients get an error.
    fn cancel_shutdown(&mut self) {
        let Some(wait) = self.repl.shutdown.take() else { return };
        match wait.pause_before {
            Some(p) => self.pause = Some(p),
            None => self.end_pause(),
        }
        let blocked: Vec<ClientId> = self
            .clients
            .iter()
            .filter(|c| c.blocked.as_ref().is_some_and(|b| matches!(b.timeout_reply, TimeoutReply::Shutdown)))
            .map(|c| c.id)
            .collect();
        for id in blocked {
            let Some(mut c) = self.clients.take(id) else { continue };
            self.unblock(&mut c);
            c.out.error(SHUTDOWN_FAILED);
            c.waker.wake();
            self.clients.put(c);
        }
    }
}
