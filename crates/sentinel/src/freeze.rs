//! The failover of a master in synchronous-replication mode (ferrokv's `sync-replicas N`,
//! which its INFO reports as `sync_replicas:N`). Such a master answered a write OK only
//! once N replicas acknowledged it, and answers nothing (-READONLY) once fewer than N
//! acknowledged within its lease. The failover must promote a replica that holds every
//! write answered OK, and only once the old master has stopped answering.
//!
//! So after `+elected-leader` the leader does not select at once. It sends every replica
//! it has a link to `REPLFREEZE <failover-timeout>`: the replica leaves its master, stops
//! acknowledging, and replies with its replication id and final offset (`+frozen-slave`).
//! With R replicas known, once R − N + 1 of them are frozen:
//!
//! - every acknowledged write is on one of them: it was acknowledged by N replicas, and N
//!   plus R − N + 1 is more than R. The most advanced frozen replica holds it, so only
//!   replicas at the highest frozen offset may be promoted;
//! - at most N − 1 replicas still acknowledge, so the old master stops answering once the
//!   acknowledgements it already has are older than its lease. They answer requests it
//!   sent before the freezes, so the leader waits the lease (plus 10 % for clock rates and
//!   50 ms) after the reply that completed the R − N + 1, on its own clock.
//!
//! Only then does selection run, on the offsets of the replies ([`selection::select_frozen`]).
//! A reply counts only if its history is one the master had ([`History::continues`]): its
//! last one, the last one it committed writes in, or, for a master that came back empty,
//! the one its refusing replicas agree on. Offsets of other histories cannot be compared
//! (a replica still holding a diverged dataset while it resyncs). Too few replies before a few seconds have passed, no
//! promotable replica at the highest offset, or a freeze about to expire abort the
//! failover and unfreeze the replicas (`REPLFREEZE 0`); a later failover tries again.
//! Without sync mode (N = 0, or no such field: a Redis master) none of this happens.

use crate::env::{Env, Expect, Level, Target};
use crate::instance::LinkId;
use crate::links::{describe, send};
use crate::master::{FailoverState, History, Master};
use crate::{failover, selection};
use ferrokv_resp::Frame;
use std::collections::{BTreeMap, BTreeSet};

/// How long the leader waits for freeze replies, at most: a few seconds (and at most half
/// the failover timeout, the freeze's length, so that promotion happens while the replicas
/// are still frozen).
pub const REPLY_WAIT_MAX: i64 = 5_000;

/// The state of the freeze step of one failover.
#[derive(Clone, Debug)]
pub struct SyncFailover {
    /// The failover epoch the freezes belong to.
    pub epoch: u64,
    /// N, as the master last reported it.
    pub sync_replicas: u32,
    pub lease_ms: i64,
    /// R − N + 1 (at least one) for the R replicas known when the failover began.
    pub required: usize,
    /// When the first freezes went out, and for how long they freeze.
    pub started: i64,
    pub freeze_ms: i64,
    /// Replica name → the command link its REPLFREEZE went out on (sent again if that link
    /// is replaced before the reply came).
    pub sent: BTreeMap<String, LinkId>,
    /// Replica name → the offset its reply returned, for replies of the master's history.
    pub frozen: BTreeMap<String, u64>,
    /// The master's histories a reply may continue: its last one, and the last one under
    /// which it committed writes. Empty when the master never printed one (no check).
    pub histories: Vec<History>,
    /// When the reply completing `required` came.
    pub quorum_at: Option<i64>,
}

impl SyncFailover {
    /// Selection may start here: the old master's lease has certainly run out.
    pub fn ready_at(&self) -> Option<i64> {
        self.quorum_at.map(|t| t + lease_wait(self.lease_ms))
    }

    /// Past this the first freezes may be over (replica clocks may run 10 % fast): the
    /// promotion must have been sent before.
    pub fn frozen_until(&self) -> i64 {
        self.started + self.freeze_ms - self.freeze_ms / 10
    }

    pub fn reply_deadline(&self) -> i64 {
        self.started + (self.freeze_ms / 2).min(REPLY_WAIT_MAX)
    }
}

/// Freeze replies needed with `known` replicas and `sync_replicas` = N: R − N + 1, so that
/// they include one of any N replicas; at least one.
pub fn required_replies(known: usize, sync_replicas: u32) -> usize {
    (known + 1).saturating_sub(sync_replicas as usize).max(1)
}

/// How long after the freezes the old master may still answer: its lease, 10 % for the
/// two clocks' rates, and 50 ms.
pub fn lease_wait(lease_ms: i64) -> i64 {
    let lease = lease_ms.max(0);
    lease.saturating_add(lease / 10).saturating_add(50)
}

/// Whether the failover just elected must freeze the replicas first: the master is in sync
/// mode. A coordinated failover hands over through the master's own FAILOVER instead,
/// which waits until the replica has every write.
pub fn wanted(m: &Master) -> bool {
    m.sync_replicas().is_some() && !m.coordinated
}

/// The history the replicas refusing an empty master hold, when they agree on one: the
/// master lost it in its restart, and a sentinel restarted since (a whole group powered
/// off and on) never saw the master commit in it.
fn refused_history(env: &Env, m: &Master, now: i64) -> Option<History> {
    let ids: BTreeSet<String> = crate::monitor::refusing_empty_master(env, m, now)
        .map(|r| r.replica.replid.as_deref().map(str::to_ascii_lowercase))
        .collect::<Option<_>>()?;
    let mut ids = ids.into_iter();
    match (ids.next(), ids.next()) {
        (Some(replid), None) => Some(History { replid, replid2: None, second_offset: -1 }),
        _ => None,
    }
}

/// Enters the freeze step: sends the freezes.
pub fn begin(env: &mut Env, m: &mut Master, now: i64) {
    let Some(status) = m.sync.clone() else {
        return;
    };
    let mut histories: Vec<History> = m.committed_history.iter().chain(m.history.iter()).cloned().collect();
    histories.extend(refused_history(env, m, now));
    histories.dedup();
    let required = required_replies(m.replicas.len(), status.replicas);
    let sf = SyncFailover {
        epoch: m.failover_epoch,
        sync_replicas: status.replicas,
        lease_ms: status.lease_ms,
        required,
        started: now,
        freeze_ms: m.failover_timeout,
        sent: BTreeMap::new(),
        frozen: BTreeMap::new(),
        histories,
        quorum_at: None,
    };
    let wait = lease_wait(status.lease_ms);
    if now + wait > sf.frozen_until() {
        // Even replies coming at once would leave no frozen time to promote in: freezing
        // would only fence the master for nothing.
        let why = format!("lease-wait {wait} freeze {}: raise failover-timeout", sf.freeze_ms);
        failover::abort_because(env, m, "-failover-abort-freeze-too-short", &why, now);
        return;
    }
    m.sync_failover = Some(sf);
    m.failover_state = FailoverState::FreezeReplicas;
    m.failover_state_change_time = now;
    let desc = env.describe(&m.inst, None);
    let detail = format!(
        "{desc} #sync-replicas {} slaves {} frozen needed {required} lease {}",
        status.replicas,
        m.replicas.len(),
        status.lease_ms
    );
    env.event(Level::Warning, "+failover-state-freeze-replicas", detail);
    send_freezes(env, m);
}

/// Sends REPLFREEZE to every replica with a command link that has none pending on it.
fn send_freezes(env: &mut Env, m: &mut Master) {
    let renamed = m.renamed.clone();
    let Some(sf) = m.sync_failover.as_mut() else {
        return;
    };
    let ms = sf.freeze_ms.to_string();
    for (name, r) in m.replicas.iter_mut() {
        let Some(link) = r.link.cmd else {
            continue;
        };
        if sf.frozen.contains_key(name) || sf.sent.get(name) == Some(&link) {
            continue;
        }
        if send(env, &renamed, r, false, &["REPLFREEZE", &ms], Expect::Freeze { epoch: sf.epoch }) {
            sf.sent.insert(name.clone(), link);
        }
    }
}

/// A replica's reply to REPLFREEZE: `[replid, offset]`, or an error (a Redis replica does
/// not know the command; a replica that turned master refuses it).
pub fn on_reply(env: &mut Env, m: &mut Master, t: &Target, frame: &Frame, epoch: u64, now: i64) {
    let Target::Replica(name) = t else {
        return;
    };
    let desc = describe(env, m, t);
    // A reply to a failover that is over: an abort's REPLFREEZE 0 follows it on the link.
    let Some(sf) = m.sync_failover.as_mut().filter(|sf| sf.epoch == epoch) else {
        return;
    };
    let (replid, offset) = match parse_reply(frame) {
        Ok(reply) => reply,
        Err(why) => {
            env.event(Level::Warning, "-frozen-slave-refused", format!("{desc} #{why}"));
            return;
        }
    };
    if !sf.histories.is_empty() && !sf.histories.iter().any(|h| h.continues(&replid, offset)) {
        // Its offset counts bytes of another history: not comparable, and no proof that
        // it holds the master's acknowledged writes.
        env.event(Level::Warning, "-frozen-slave-diverged", format!("{desc} {replid} {offset}"));
        return;
    }
    env.event(Level::Notice, "+frozen-slave", format!("{desc} {offset}"));
    sf.frozen.insert(name.clone(), offset);
    if sf.quorum_at.is_none() && sf.frozen.len() >= sf.required {
        sf.quorum_at = Some(now);
        let wait = lease_wait(sf.lease_ms);
        let mdesc = env.describe(&m.inst, None);
        let detail = format!("{mdesc} #frozen {}/{} lease-wait {wait}", sf.frozen.len(), sf.required);
        env.event(Level::Notice, "+frozen-slaves-enough", detail);
    }
}

fn parse_reply(frame: &Frame) -> Result<(String, u64), String> {
    match frame {
        Frame::Array(items) if items.len() == 2 => match (&items[0], &items[1]) {
            (Frame::Bulk(id), Frame::Integer(offset)) if *offset >= 0 => {
                Ok((String::from_utf8_lossy(id).into_owned(), *offset as u64))
            }
            _ => Err("unexpected reply".into()),
        },
        Frame::Error(e) => Err(String::from_utf8_lossy(e).into_owned()),
        _ => Err("unexpected reply".into()),
    }
}

/// One tick of the freeze step: freezes for links that came up since, then the wait for
/// enough replies and for the lease; then selection.
pub fn step(env: &mut Env, m: &mut Master, now: i64) {
    send_freezes(env, m);
    let Some(sf) = m.sync_failover.as_ref() else {
        failover::abort(env, m, "-failover-abort-not-enough-frozen-slaves", now);
        return;
    };
    let Some(ready_at) = sf.ready_at() else {
        if now > sf.reply_deadline() {
            let why = format!("frozen {}/{}", sf.frozen.len(), sf.required);
            failover::abort_because(env, m, "-failover-abort-not-enough-frozen-slaves", &why, now);
        }
        return;
    };
    if now < ready_at {
        return;
    }
    if now > sf.frozen_until() {
        failover::abort_because(env, m, "-failover-abort-freeze-expired", "the lease outlasts the freeze", now);
        return;
    }
    m.failover_state = FailoverState::SelectSlave;
    m.failover_state_change_time = now;
    let desc = env.describe(&m.inst, None);
    env.event(Level::Warning, "+failover-state-select-slave", desc);
}

/// Selection in sync mode: the most advanced frozen replica, or why there is none.
pub fn select(env: &Env, m: &Master, now: i64) -> Result<String, String> {
    match &m.sync_failover {
        Some(sf) => selection::select_frozen(env, m, &sf.frozen, now),
        None => Err("no frozen slave".into()),
    }
}

/// Whether the replica was sent a freeze in the current failover: it is re-pointed at the
/// new master at once, without waiting for `parallel-syncs` (it continues with a partial
/// resync), before its freeze ends and it goes back to the old master.
pub fn sent_to(m: &Master, name: &str) -> bool {
    m.sync_failover.as_ref().is_some_and(|sf| sf.sent.contains_key(name))
}

/// Unfreezes every replica sent a freeze (a failover given up): they go back to their
/// master. On the link the freeze went out on, REPLFREEZE 0 arrives after it.
pub fn release(env: &mut Env, m: &mut Master) {
    let Some(sf) = m.sync_failover.take() else {
        return;
    };
    let renamed = m.renamed.clone();
    for name in sf.sent.keys() {
        if let Some(r) = m.replicas.get_mut(name) {
            send(env, &renamed, r, false, &["REPLFREEZE", "0"], Expect::Discard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_replies_meet_every_set_of_n() {
        assert_eq!(required_replies(3, 1), 3);
        assert_eq!(required_replies(3, 2), 2);
        assert_eq!(required_replies(3, 3), 1);
        assert_eq!(required_replies(5, 2), 4);
        // More sync replicas than known replicas: some are unknown to us; at least one.
        assert_eq!(required_replies(1, 3), 1);
        assert_eq!(required_replies(0, 1), 1);
    }

    #[test]
    fn lease_wait_adds_ten_percent_and_50_ms() {
        assert_eq!(lease_wait(500), 600);
        assert_eq!(lease_wait(2000), 2250);
        assert_eq!(lease_wait(0), 50);
        assert_eq!(lease_wait(-5), 50);
        assert_eq!(lease_wait(i64::MAX), i64::MAX);
    }

    fn sync_failover(freeze_ms: i64) -> SyncFailover {
        SyncFailover {
            epoch: 1,
            sync_replicas: 1,
            lease_ms: 500,
            required: 2,
            started: 10_000,
            freeze_ms,
            sent: BTreeMap::new(),
            frozen: BTreeMap::new(),
            histories: Vec::new(),
            quorum_at: None,
        }
    }

    #[test]
    fn deadlines_of_the_freeze_step() {
        let mut sf = sync_failover(180_000);
        assert_eq!(sf.reply_deadline(), 15_000);
        assert_eq!(sf.frozen_until(), 10_000 + 162_000);
        assert_eq!(sf.ready_at(), None);
        sf.quorum_at = Some(11_000);
        assert_eq!(sf.ready_at(), Some(11_600));
        // A short failover timeout: half of it for the replies.
        let sf = sync_failover(4_000);
        assert_eq!(sf.reply_deadline(), 12_000);
        assert_eq!(sf.frozen_until(), 13_600);
    }

    #[test]
    fn freeze_replies() {
        let ok = Frame::Array(vec![Frame::Bulk("abc".into()), Frame::Integer(42)]);
        assert_eq!(parse_reply(&ok), Ok(("abc".into(), 42)));
        let err = Frame::Error("ERR unknown command 'REPLFREEZE'".into());
        assert_eq!(parse_reply(&err), Err("ERR unknown command 'REPLFREEZE'".into()));
        let negative = Frame::Array(vec![Frame::Bulk("abc".into()), Frame::Integer(-1)]);
        assert!(parse_reply(&negative).is_err());
        assert!(parse_reply(&Frame::Simple("OK".into())).is_err());
    }

    #[test]
    fn the_history_of_replicas_refusing_an_empty_master_when_they_agree() {
        use crate::addr::{Addr, NoResolver};
        use crate::instance::{Instance, Kind};
        let env = Env::new("x".repeat(40), 0, 1);
        let now = 100_000;
        let a = Addr::new("127.0.0.1", 6379, false, false, &NoResolver).unwrap();
        let mut m = Master::new("m", a, 2, 0);
        for port in [6380, 6381] {
            let a = Addr::new("127.0.0.1", port, false, false, &NoResolver).unwrap();
            let mut r = Instance::new(Kind::Replica, a.name(false), a, 5000, now);
            r.info_refresh = now;
            r.replica.master_host = Some("127.0.0.1".into());
            r.replica.master_port = 6379;
            r.replica.empty_master_refused = true;
            r.replica.replid = Some("AAAA".into());
            m.replicas.insert(r.name.clone(), r);
        }
        let agreed = History { replid: "aaaa".into(), replid2: None, second_offset: -1 };
        assert_eq!(refused_history(&env, &m, now), Some(agreed));
        // Two histories: neither can be trusted over the other.
        m.replicas.get_mut("127.0.0.1:6381").unwrap().replica.replid = Some("bbbb".into());
        assert_eq!(refused_history(&env, &m, now), None);
        // One that does not print its id: no agreement to speak of.
        m.replicas.get_mut("127.0.0.1:6381").unwrap().replica.replid = None;
        assert_eq!(refused_history(&env, &m, now), None);
        // Only replicas that refuse count.
        m.replicas.get_mut("127.0.0.1:6381").unwrap().replica.empty_master_refused = false;
        assert_eq!(refused_history(&env, &m, now).map(|h| h.replid), Some("aaaa".into()));
        m.replicas.get_mut("127.0.0.1:6380").unwrap().replica.empty_master_refused = false;
        assert_eq!(refused_history(&env, &m, now), None);
        // A replica whose link is up follows its master, whatever its INFO still says.
        let r = m.replicas.get_mut("127.0.0.1:6380").unwrap();
        r.replica.empty_master_refused = true;
        r.replica.master_link_up = true;
        assert_eq!(refused_history(&env, &m, now), None);
        assert_eq!(crate::monitor::empty_master_refused_by(&env, &m, now), None);
    }

    #[test]
    fn wanted_only_with_sync_replicas_and_not_coordinated() {
        use crate::addr::{Addr, NoResolver};
        use crate::master::SyncStatus;
        let a = Addr::new("127.0.0.1", 6379, false, false, &NoResolver).unwrap();
        let mut m = Master::new("m", a, 2, 0);
        assert!(!wanted(&m));
        m.sync = Some(SyncStatus { replicas: 0, ..Default::default() });
        assert!(!wanted(&m));
        m.sync = Some(SyncStatus { replicas: 1, lease_ms: 500, ..Default::default() });
        assert!(wanted(&m));
        m.coordinated = true;
        assert!(!wanted(&m));
    }
}
