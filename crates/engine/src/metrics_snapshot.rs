//! The engine's side of `/metrics`: a [`ServerSnapshot`] copied out under the engine lock,
//! from the same fields and helpers INFO prints (connected clients, replica lag, the
//! persistence flags, commandstats), so both always agree. It copies numbers and a few
//! short strings and walks no keyspace (only the client list, once, for the blocked
//! count, as INFO clients does): the lock is held for microseconds; formatting happens
//! after it is released (crates/metrics).

use crate::engine::Engine;
use crate::replication::LinkState;
use ferrokv_config::{pid, REDIS_VERSION};
use ferrokv_metrics::histogram::{HistogramSnapshot, LATENCY_BOUNDS_US};
use ferrokv_metrics::server::{CommandSnapshot, DbSnapshot, MasterLinkSnapshot, ReplicaSnapshot, ServerSnapshot};

fn histogram(h: &crate::stats::LatencyHistogram) -> HistogramSnapshot {
    HistogramSnapshot::from_cumulative(&h.cumulative_at(&LATENCY_BOUNDS_US), h.count(), h.sum_us())
}

impl Engine {
    /// INFO's `connected_clients`: every connection but our replicas (the link to our
    /// master counts), as Redis.
    pub fn connected_clients(&self) -> usize {
        self.clients.len().saturating_sub(self.repl.replicas.len())
    }

    /// What `/metrics` shows, as of `now_ms`. The AOF's fsync histogram lives in the
    /// server's AOF writer; the server adds it.
    pub fn metrics_snapshot(&self, now_ms: i64) -> ServerSnapshot {
        let st = &self.stats;
        let p = &self.persist;
        let m = self.host.memory();
        let cpu = self.host.cpu();
        let used = m.used.max(1);
        let r = &self.repl;
        let master_link = r.master.as_ref().map(|l| {
            let up = l.state == LinkState::Connected;
            MasterLinkSnapshot {
                host: l.host.clone(),
                port: l.port,
                link_up: up,
                last_io_seconds_ago: if up { (now_ms - l.last_io_ms) / 1000 } else { -1 },
                sync_in_progress: l.state == LinkState::Transfer,
                repl_offset: r.offset.max(1),
            }
        });
        let replicas = r
            .replicas
            .iter()
            .map(|rep| ReplicaSnapshot {
                ip: rep.ip.clone(),
                port: rep.listening_port,
                state: rep.state.name().to_string(),
                ack_offset: rep.ack_offset,
                lag_seconds: rep.info_lag_secs(now_ms),
                lag_bytes: r.offset.saturating_sub(rep.ack_offset),
            })
            .collect();
        let dbs = self
            .dbs
            .iter()
            .enumerate()
            .filter(|(_, db)| !db.is_empty())
            .map(|(index, db)| DbSnapshot {
                index,
                keys: db.len() as u64,
                expires: db.expires_len() as u64,
                avg_ttl_ms: db.avg_ttl.max(0) as u64,
            })
            .collect();
        let commands = self
            .cmd_stats
            .iter()
            .enumerate()
            .filter(|(_, c)| c.calls != 0 || c.failed_calls != 0 || c.rejected_calls != 0)
            .map(|(id, c)| CommandSnapshot {
                name: self.commands.get(id).fullname().to_string(),
                calls: c.calls,
                usec: c.usec,
                rejected_calls: c.rejected_calls,
                failed_calls: c.failed_calls,
                latency: histogram(&c.latency),
            })
            .collect();
        let sync_used = self.sync_configured() || r.sync.ack_latency.count() > 0;
        ServerSnapshot {
            redis_version: REDIS_VERSION.to_string(),
            ferrokv_version: env!("CARGO_PKG_VERSION").to_string(),
            role: if r.master.is_some() { "slave" } else { "master" }.to_string(),
            run_id: self.run_id.to_string(),
            uptime_seconds: (now_ms - self.started_ms).max(0) / 1000,
            connected_clients: self.connected_clients() as u64,
            blocked_clients: self.blocked_counts().0 as u64,
            max_clients: self.hot.maxclients as u64,
            memory_used_bytes: used,
            memory_rss_bytes: m.rss,
            memory_peak_bytes: m.peak.max(used),
            memory_max_bytes: self.cfg.int(pid("maxmemory")).max(0) as u64,
            connections_received: st.total_connections_received,
            rejected_connections: st.rejected_connections,
            commands_processed: st.total_commands_processed,
            net_input_bytes: st.net_input_bytes,
            net_output_bytes: st.net_output_bytes,
            expired_keys: st.expired_keys,
            evicted_keys: st.evicted_keys,
            evicted_clients: st.evicted_clients,
            keyspace_hits: st.keyspace_hits,
            keyspace_misses: st.keyspace_misses,
            cpu_sys_seconds: cpu.sys,
            cpu_user_seconds: cpu.user,
            rdb_changes_since_last_save: self.dirty,
            rdb_bgsave_in_progress: p.bgsave_in_progress(),
            rdb_last_bgsave_ok: p.lastbgsave_ok,
            rdb_last_save_time: self.lastsave_ms / 1000,
            aof_enabled: p.aof.enabled,
            aof_rewrite_in_progress: p.aof_rewrite_in_progress(),
            aof_last_bgrewrite_ok: p.aof.last_rewrite_ok,
            aof_last_write_ok: p.aof.write_error.is_none(),
            master_repl_offset: r.offset,
            master_link,
            replicas,
            dbs,
            commands,
            errors: st.errors.iter().map(|(code, n)| (code.clone(), *n)).collect(),
            sync_ack_latency: sync_used.then(|| histogram(&r.sync.ack_latency)),
            aof_fsync: None,
        }
    }
}
