//! FAILOVER: a coordinated switchover that loses no acknowledged write. Writes are paused,
//! the chosen replica is waited for until it has acknowledged every byte, then this server
//! follows it, asking it (`PSYNC <replid> <offset> FAILOVER`) to take over; the replica
//! promotes itself and answers `+CONTINUE`, and writes resume here as `-READONLY` for
//! clients to follow the new master. Redis 6.2's protocol, so either side may be Redis.

use super::ReplicaState;
use crate::engine::{Engine, Pause};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverPhase {
    WaitForSync,
    InProgress,
}

#[derive(Clone, Debug)]
pub struct Failover {
    pub phase: FailoverPhase,
    pub target: Option<(String, u16)>,
    pub end_ms: Option<i64>,
    pub force: bool,
}

/// A day: "until the failover ends", without overflowing timer arithmetic.
const PAUSE_MS: i64 = 24 * 3600 * 1000;

impl Engine {
    /// FAILOVER [TO host port] [FORCE] [TIMEOUT ms], after argument parsing.
    pub fn start_failover(
        &mut self,
        target: Option<(String, u16)>,
        timeout_ms: i64,
        force: bool,
        now_ms: i64,
    ) -> Result<(), &'static str> {
        if self.repl.failover.is_some() {
            return Err("ERR FAILOVER already in progress.");
        }
        if !self.is_master_role() {
            return Err("ERR FAILOVER is not valid when server is a replica.");
        }
        if self.repl.replicas.is_empty() {
            return Err("ERR FAILOVER requires connected replicas.");
        }
        if force && (timeout_ms == 0 || target.is_none()) {
            return Err("ERR FAILOVER with force option requires both a timeout and target HOST and IP.");
        }
        if let Some((host, port)) = &target {
            let Some(r) = self.repl.replicas.iter().find(|r| r.ip == *host && r.listening_port == *port) else {
                return Err("ERR FAILOVER target HOST and PORT is not a replica.");
            };
            if r.state != ReplicaState::Online {
                return Err("ERR FAILOVER target replica is not online.");
            }
            log::info!("FAILOVER requested to {host}:{port}.");
        } else {
            log::info!("FAILOVER requested to any replica.");
        }
        self.repl.failover = Some(Failover {
            phase: FailoverPhase::WaitForSync,
            target,
            end_ms: (timeout_ms > 0).then(|| now_ms + timeout_ms),
            force,
        });
        // No write may slip in after the target's acknowledgement.
        let until = now_ms + PAUSE_MS;
        self.pause = Some(match self.pause {
            Some(p) => Pause { until_ms: p.until_ms.max(until), all: p.all },
            None => Pause { until_ms: until, all: false },
        });
        self.flush_feed();
        Ok(())
    }

    /// FAILOVER ABORT, or a failover that could not complete.
    pub fn abort_failover(&mut self, why: &str) {
        let Some(f) = self.repl.failover.take() else { return };
        log::info!("FAILOVER aborted: {why}");
        if f.phase == FailoverPhase::InProgress {
            // We had started to follow the target: be a master again.
            self.forget_master();
            self.hot.replica = false;
            self.cfg.set_internal(ferrokv_config::pid("replicaof"), ferrokv_config::Val::ReplicaOf(None));
            self.update_feed_enabled();
            self.host.master_changed(super::replica::MasterChange::Stop);
        }
        self.end_pause();
    }

    /// Moves a failover on: called from cron and whenever a replica acknowledges.
    pub(crate) fn failover_tick(&mut self, now_ms: i64) {
        let Some(f) = self.repl.failover.clone() else { return };
        if f.phase == FailoverPhase::InProgress {
            // The target never answered our handshake: give up and stay master.
            if f.end_ms.is_some_and(|end| now_ms >= end + 10_000)
                || (f.end_ms.is_none() && self.failover_stalled(now_ms))
            {
                self.abort_failover("the target did not accept the failover");
            }
            return;
        }
        let offset = self.repl.offset;
        let caught_up = |r: &super::Replica| r.state == ReplicaState::Online && r.ack_offset == offset;
        let target = match &f.target {
            Some((h, p)) => self
                .repl
                .replicas
                .iter()
                .find(|r| r.ip == *h && r.listening_port == *p)
                .filter(|r| caught_up(r))
                .map(|r| (r.ip.clone(), r.listening_port)),
            None => self.repl.replicas.iter().find(|r| caught_up(r)).map(|r| (r.ip.clone(), r.listening_port)),
        };
        let timed_out = f.end_ms.is_some_and(|end| now_ms >= end);
        let chosen = match (target, timed_out) {
            (Some(t), _) => {
                log::info!("Failover target {}:{} is synced, failing over.", t.0, t.1);
                t
            }
            (None, true) if f.force => {
                let t = f.target.clone().expect("force requires a target");
                log::info!("FAILOVER to {}:{} time out exceeded, failing over.", t.0, t.1);
                t
            }
            (None, true) => {
                self.abort_failover("Replica never caught up before timeout");
                return;
            }
            // Replicas ACK every second; asking with GETACK would move the offset the
            // target must reach (Redis sends nothing into the stream while paused).
            (None, false) => return,
        };
        if let Some(f) = self.repl.failover.as_mut() {
            f.phase = FailoverPhase::InProgress;
            f.target = Some(chosen.clone());
        }
        self.follow_master(&chosen.0, chosen.1, now_ms);
    }

    fn failover_stalled(&self, now_ms: i64) -> bool {
        self.repl
            .master
            .as_ref()
            .is_some_and(|m| m.state != super::LinkState::Connected && now_ms - m.down_since_ms > 10_000)
    }

    /// Our link to the failover target is up: the switchover is complete.
    pub(crate) fn failover_link_up(&mut self) {
        if self.repl.failover.as_ref().is_some_and(|f| f.phase == FailoverPhase::InProgress) {
            self.repl.failover = None;
            log::info!("Failover target is now our master: failover complete.");
            self.end_pause();
        }
    }

    /// Whether the next handshake must ask the target to take over.
    pub fn failover_handshake(&self) -> bool {
        self.repl.failover.as_ref().is_some_and(|f| f.phase == FailoverPhase::InProgress)
    }

    pub fn failover_state_name(&self) -> &'static str {
        match self.repl.failover.as_ref().map(|f| f.phase) {
            None => "no-failover",
            Some(FailoverPhase::WaitForSync) => "waiting-for-sync",
            Some(FailoverPhase::InProgress) => "failover-in-progress",
        }
    }
}
