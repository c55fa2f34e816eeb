//! What a replica does to protect acknowledged data (ferrokv's own; docs/FAILOVER.md).
//!
//! - **REPLFREEZE ms**: a sentinel failing over a master in synchronous mode first freezes
//!   the replicas it can reach. A frozen replica drops its link (whatever its phase), stops
//!   applying and acknowledging, and keeps its dataset and replication position, so the
//!   old master can no longer gather the acknowledgements a write needs, and the sentinel
//!   can compare final offsets. It ends after `ms`, on `REPLFREEZE 0`, or on REPLICAOF
//!   (the sentinel re-points it at the promoted replica: a partial resync continues).
//! - **The empty-master guard** (`empty-master-guard yes`): a replica holding keys refuses
//!   a full resynchronization that would replace them with an empty dataset from a master
//!   whose history does not continue its own — a master restarted without persistence.
//!   It keeps serving its data and retries; INFO says why (`empty_master_refused:1`), and
//!   ferrokv's sentinels fail such a master over. A legitimate FLUSHALL keeps the history
//!   (same replication ID), so replicas still follow it. A ferrokv master that started
//!   empty and followed no master since says so in the full sync, and is refused too
//!   whatever it took since: under load it is not empty for long.

use crate::engine::Engine;
use ferrokv_config::pid;
use ferrokv_keyspace::Db;

impl Engine {
    /// REPLFREEZE: freezes this replica for `ms` (0 thaws it). Returns the replication
    /// ID it follows and its offset (final while frozen).
    pub fn freeze_replication(&mut self, ms: i64, now_ms: i64) -> (String, u64) {
        if ms > 0 {
            self.repl.frozen_until = Some(now_ms + ms);
            log::warn!("Replication frozen for {ms} ms (REPLFREEZE): not following MASTER meanwhile");
            if let Some(id) = self.repl.master.as_ref().and_then(|m| m.client) {
                self.detach_id(id);
            }
            self.host.replication_frozen();
        } else if self.repl.frozen_until.take().is_some() {
            log::warn!("Replication thawed (REPLFREEZE 0)");
        }
        (self.repl.replid.clone(), self.repl.offset)
    }

    /// Whether the link to the master must stay down (frozen), as of `now_ms`.
    pub fn replication_frozen(&mut self, now_ms: i64) -> bool {
        match self.repl.frozen_until {
            Some(until) if now_ms < until => true,
            Some(_) => {
                self.repl.frozen_until = None;
                log::warn!("Replication freeze expired: following MASTER again");
                false
            }
            None => false,
        }
    }

    /// Before a full resynchronization replaces the dataset with `incoming` (from a master
    /// whose history is `replid`): while we hold keys, refuses a master that does not
    /// continue our history and whose dataset is empty, or — the master our data came
    /// from, at the same address — began empty when it started (`started_empty`, from a
    /// ferrokv master): under load, a master restarted without its data has taken writes
    /// by the time its replicas reconnect, and an emptiness check alone would let those
    /// few keys replace everything. (Pointed at another master, a server holding its own
    /// data takes that master's, as an operator's REPLICAOF means.) The error names the
    /// master and the way out.
    pub fn check_empty_master(&mut self, incoming: &[Db], replid: &str, started_empty: bool) -> Result<(), String> {
        let ours: usize = self.dbs.iter().map(Db::len).sum();
        let theirs: usize = incoming.iter().map(Db::len).sum();
        let same_master = match (&self.repl.history_from, &self.repl.master) {
            (Some((host, port)), Some(m)) => *host == m.host && *port == m.port,
            _ => false,
        };
        let refuse = self.cfg.bool(pid("empty-master-guard"))
            && ours > 0
            && (theirs == 0 || (started_empty && same_master))
            && replid != self.psync_args().0;
        self.repl.empty_master_refused = refuse;
        if !refuse {
            return Ok(());
        }
        let master = self.repl.master.as_ref().map(|m| format!("{}:{}", m.host, m.port)).unwrap_or_default();
        let what = if theirs == 0 {
            format!("the EMPTY dataset of MASTER {master}")
        } else {
            format!("the {theirs} keys of MASTER {master}, whose dataset was EMPTY when it started,")
        };
        Err(format!(
            "Refusing to replace our {ours} keys with {what}: its history ({replid}) does not continue ours ({}), so it probably restarted without its data. Keeping our data and retrying (empty-master-guard yes; set it to no to accept the master's dataset).",
            self.repl.replid
        ))
    }

    /// At startup, once the data on disk (if any) is loaded: whether we start empty (see
    /// `started_empty` in [`crate::replication::Replication`]), and, for a replica that
    /// loaded data, that the data came from the master it is configured to follow: after
    /// a whole group restarts, a master back without its data (and already written to)
    /// must be refused by replicas that restarted with theirs, not only by those that
    /// stayed up.
    pub fn note_startup_dataset(&mut self) {
        // (The configured `replicaof` is followed only after this.)
        let empty = self.dbs.iter().all(Db::is_empty);
        self.repl.started_empty = self.is_master_role() && empty;
        if !empty {
            self.repl.history_from = self.configured_master();
        }
    }
}
