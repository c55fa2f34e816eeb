//! A server's metrics: the snapshot the engine fills (under its lock, quickly) and the
//! families it becomes (outside the lock).

use crate::histogram::HistogramSnapshot;
use crate::{flag, Families, Labels};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

/// Everything `/metrics` shows for a server, copied out of the engine.
#[derive(Clone, Debug, Default)]
pub struct ServerSnapshot {
    pub redis_version: String,
    pub ferrokv_version: String,
    /// `master` or `slave`, as INFO's `role`.
    pub role: String,
    pub run_id: String,
    pub uptime_seconds: i64,
    pub connected_clients: u64,
    pub blocked_clients: u64,
    pub max_clients: u64,
    pub memory_used_bytes: u64,
    pub memory_rss_bytes: u64,
    pub memory_peak_bytes: u64,
    pub memory_max_bytes: u64,
    pub connections_received: u64,
    pub rejected_connections: u64,
    pub commands_processed: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    pub evicted_clients: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub cpu_sys_seconds: f64,
    pub cpu_user_seconds: f64,
    pub rdb_changes_since_last_save: u64,
    pub rdb_bgsave_in_progress: bool,
    pub rdb_last_bgsave_ok: bool,
    pub rdb_last_save_time: i64,
    pub aof_enabled: bool,
    pub aof_rewrite_in_progress: bool,
    pub aof_last_bgrewrite_ok: bool,
    pub aof_last_write_ok: bool,
    pub master_repl_offset: u64,
    /// Our link to our master, on a replica.
    pub master_link: Option<MasterLinkSnapshot>,
    pub replicas: Vec<ReplicaSnapshot>,
    /// Non-empty databases only, as INFO keyspace.
    pub dbs: Vec<DbSnapshot>,
    pub commands: Vec<CommandSnapshot>,
    pub errors: Vec<(String, u64)>,
    /// GETACK round trips under `sync-replicas` (None when the mode never ran).
    pub sync_ack_latency: Option<HistogramSnapshot>,
    /// AOF fsync durations (None without an AOF).
    pub aof_fsync: Option<HistogramSnapshot>,
}

#[derive(Clone, Debug, Default)]
pub struct MasterLinkSnapshot {
    pub host: String,
    pub port: u16,
    pub link_up: bool,
    pub last_io_seconds_ago: i64,
    pub sync_in_progress: bool,
    pub repl_offset: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ReplicaSnapshot {
    pub ip: String,
    pub port: u16,
    /// INFO's `state=` (`online`, `wait_bgsave`, `send_bulk`).
    pub state: String,
    pub ack_offset: u64,
    /// INFO's `lag=`: seconds since the replica's last acknowledgement.
    pub lag_seconds: i64,
    /// Bytes of the stream the replica has not acknowledged yet.
    pub lag_bytes: u64,
}

#[derive(Clone, Debug, Default)]
pub struct DbSnapshot {
    pub index: usize,
    pub keys: u64,
    pub expires: u64,
    pub avg_ttl_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub struct CommandSnapshot {
    /// INFO commandstats's name (`get`, `client|list`).
    pub name: String,
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
    pub latency: HistogramSnapshot,
}

impl ServerSnapshot {
    /// The exposition text; the snapshot is shared, not copied (a cached snapshot serves
    /// several scrapes).
    pub fn render(self: std::sync::Arc<Self>, format: crate::Format) -> String {
        crate::render(ServerCollector(self), format)
    }
}

#[derive(Debug)]
struct ServerCollector(std::sync::Arc<ServerSnapshot>);

fn replica_labels(r: &ReplicaSnapshot) -> Labels {
    vec![("slave_ip", r.ip.clone()), ("slave_port", r.port.to_string()), ("slave_state", r.state.clone())]
}

fn cmd(c: &CommandSnapshot) -> Labels {
    vec![("cmd", c.name.clone())]
}

fn db(d: &DbSnapshot) -> Labels {
    vec![("db", format!("db{}", d.index))]
}

impl Collector for ServerCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let mut f = Families::new(encoder);
        f.gauge("redis_up", "Whether the server answered the scrape (always 1 when served).", 1.0)?;
        f.gauges(
            "redis_instance_info",
            "Information about the instance, in labels.",
            [(
                vec![
                    ("role", s.role.clone()),
                    ("redis_version", s.redis_version.clone()),
                    ("ferrokv_version", s.ferrokv_version.clone()),
                    ("run_id", s.run_id.clone()),
                ],
                1.0,
            )],
        )?;
        f.gauge("redis_uptime_in_seconds", "Seconds since the server started.", s.uptime_seconds as f64)?;
        f.gauge("redis_connected_clients", "Connected clients (INFO connected_clients).", s.connected_clients as f64)?;
        f.gauge("redis_blocked_clients", "Clients blocked on a blocking command.", s.blocked_clients as f64)?;
        f.gauge("redis_config_maxclients", "The maxclients setting.", s.max_clients as f64)?;
        f.gauge("redis_memory_used_bytes", "Bytes allocated (INFO used_memory).", s.memory_used_bytes as f64)?;
        f.gauge("redis_memory_used_rss_bytes", "Resident set size.", s.memory_rss_bytes as f64)?;
        f.gauge("redis_memory_used_peak_bytes", "Peak of used_memory.", s.memory_peak_bytes as f64)?;
        f.gauge("redis_memory_max_bytes", "The maxmemory setting (0: none).", s.memory_max_bytes as f64)?;
        f.counter("redis_connections_received", "Connections accepted.", s.connections_received as f64)?;
        f.counter("redis_rejected_connections", "Connections refused (maxclients).", s.rejected_connections as f64)?;
        f.counter("redis_commands_processed", "Commands processed.", s.commands_processed as f64)?;
        f.counter("redis_net_input_bytes", "Bytes read from clients.", s.net_input_bytes as f64)?;
        f.counter("redis_net_output_bytes", "Bytes written to clients.", s.net_output_bytes as f64)?;
        f.counter("redis_expired_keys", "Keys deleted because they expired.", s.expired_keys as f64)?;
        f.counter("redis_evicted_keys", "Keys evicted by maxmemory.", s.evicted_keys as f64)?;
        f.counter("redis_evicted_clients", "Clients evicted by maxmemory-clients.", s.evicted_clients as f64)?;
        f.counter("redis_keyspace_hits", "Key lookups that found the key.", s.keyspace_hits as f64)?;
        f.counter("redis_keyspace_misses", "Key lookups that did not.", s.keyspace_misses as f64)?;
        f.counter("redis_cpu_sys_seconds", "System CPU time of the process.", s.cpu_sys_seconds)?;
        f.counter("redis_cpu_user_seconds", "User CPU time of the process.", s.cpu_user_seconds)?;
        f.gauge(
            "redis_rdb_changes_since_last_save",
            "Changes since the last snapshot.",
            s.rdb_changes_since_last_save as f64,
        )?;
        f.gauge("redis_rdb_bgsave_in_progress", "1 while a BGSAVE runs.", flag(s.rdb_bgsave_in_progress))?;
        f.gauge("redis_rdb_last_bgsave_status", "1 if the last BGSAVE succeeded.", flag(s.rdb_last_bgsave_ok))?;
        f.gauge(
            "redis_rdb_last_save_timestamp_seconds",
            "Unix time of the last successful save.",
            s.rdb_last_save_time as f64,
        )?;
        f.gauge("redis_aof_enabled", "1 if appendonly is on.", flag(s.aof_enabled))?;
        f.gauge("redis_aof_rewrite_in_progress", "1 while an AOF rewrite runs.", flag(s.aof_rewrite_in_progress))?;
        f.gauge(
            "redis_aof_last_bgrewrite_status",
            "1 if the last AOF rewrite succeeded.",
            flag(s.aof_last_bgrewrite_ok),
        )?;
        f.gauge("redis_aof_last_write_status", "1 if the last AOF write succeeded.", flag(s.aof_last_write_ok))?;
        f.gauge("redis_connected_slaves", "Replicas attached.", s.replicas.len() as f64)?;
        f.gauge(
            "redis_master_repl_offset",
            "The replication offset (INFO master_repl_offset).",
            s.master_repl_offset as f64,
        )?;
        if let Some(m) = &s.master_link {
            let labels = || vec![("master_host", m.host.clone()), ("master_port", m.port.to_string())];
            f.gauges("redis_master_link_up", "1 while the link to the master is up.", [(labels(), flag(m.link_up))])?;
            f.gauges(
                "redis_master_last_io_seconds_ago",
                "Seconds since the master last sent something (-1: link down).",
                [(labels(), m.last_io_seconds_ago as f64)],
            )?;
            f.gauges(
                "redis_master_sync_in_progress",
                "1 while a full sync from the master runs.",
                [(labels(), flag(m.sync_in_progress))],
            )?;
            f.gauge("redis_slave_repl_offset", "The replica's replication offset.", m.repl_offset as f64)?;
        }
        f.gauges(
            "redis_connected_slave_lag_seconds",
            "Seconds since each replica's last acknowledgement (INFO lag=).",
            s.replicas.iter().map(|r| (replica_labels(r), r.lag_seconds as f64)),
        )?;
        f.gauges(
            "redis_connected_slave_offset_bytes",
            "Offset each replica acknowledged.",
            s.replicas.iter().map(|r| (replica_labels(r), r.ack_offset as f64)),
        )?;
        f.gauges(
            "ferrokv_replica_lag_bytes",
            "Bytes of the replication stream each replica has not acknowledged.",
            s.replicas.iter().map(|r| (replica_labels(r), r.lag_bytes as f64)),
        )?;
        f.gauges(
            "ferrokv_replica_lag_seconds",
            "Seconds since each replica's last acknowledgement.",
            s.replicas.iter().map(|r| (replica_labels(r), r.lag_seconds as f64)),
        )?;
        f.gauges("redis_db_keys", "Keys per database.", s.dbs.iter().map(|d| (db(d), d.keys as f64)))?;
        f.gauges(
            "redis_db_keys_expiring",
            "Keys with a TTL per database.",
            s.dbs.iter().map(|d| (db(d), d.expires as f64)),
        )?;
        f.gauges(
            "redis_db_avg_ttl_seconds",
            "Average TTL per database (INFO avg_ttl).",
            s.dbs.iter().map(|d| (db(d), d.avg_ttl_ms as f64 / 1000.0)),
        )?;
        f.counters("redis_commands", "Calls per command.", s.commands.iter().map(|c| (cmd(c), c.calls as f64)))?;
        f.counters(
            "redis_commands_duration_seconds",
            "Time spent per command.",
            s.commands.iter().map(|c| (cmd(c), c.usec as f64 / 1e6)),
        )?;
        f.counters(
            "redis_commands_rejected_calls",
            "Calls refused before running, per command.",
            s.commands.iter().map(|c| (cmd(c), c.rejected_calls as f64)),
        )?;
        f.counters(
            "redis_commands_failed_calls",
            "Calls that failed while running, per command.",
            s.commands.iter().map(|c| (cmd(c), c.failed_calls as f64)),
        )?;
        f.counters(
            "redis_errors",
            "Error replies per error code (INFO errorstats).",
            s.errors.iter().map(|(code, n)| (vec![("err", code.clone())], *n as f64)),
        )?;
        f.histograms(
            "ferrokv_command_latency_seconds",
            "Command latency per command (to 12.5 % resolution, as LATENCY HISTOGRAM).",
            s.commands.iter().filter(|c| c.latency.count > 0).map(|c| (cmd(c), &c.latency)),
        )?;
        if let Some(h) = &s.aof_fsync {
            f.histograms("ferrokv_aof_fsync_seconds", "Duration of the AOF's fsync calls.", [(Vec::new(), h)])?;
        }
        if let Some(h) = &s.sync_ack_latency {
            f.histograms(
                "ferrokv_sync_replicas_ack_seconds",
                "sync-replicas: time from a GETACK to a replica's acknowledgement (ms resolution).",
                [(Vec::new(), h)],
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    trait IntoArc {
        fn into_arc(self) -> std::sync::Arc<ServerSnapshot>;
    }

    impl IntoArc for ServerSnapshot {
        fn into_arc(self) -> std::sync::Arc<ServerSnapshot> {
            std::sync::Arc::new(self)
        }
    }

    fn sample() -> ServerSnapshot {
        ServerSnapshot {
            role: "master".into(),
            connected_clients: 3,
            commands_processed: 42,
            dbs: vec![DbSnapshot { index: 0, keys: 5, expires: 1, avg_ttl_ms: 1500 }],
            replicas: vec![ReplicaSnapshot {
                ip: "127.0.0.1".into(),
                port: 7001,
                state: "online".into(),
                ack_offset: 90,
                lag_seconds: 1,
                lag_bytes: 10,
            }],
            commands: vec![CommandSnapshot {
                name: "get".into(),
                calls: 7,
                usec: 70,
                latency: HistogramSnapshot::from_cumulative(&[7; 19], 7, 70),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn prometheus_text_uses_redis_exporter_names() {
        let text = sample().into_arc().render(Format::Prometheus);
        for line in [
            "redis_up 1",
            "redis_connected_clients 3",
            "redis_commands_processed_total 42",
            "redis_db_keys{db=\"db0\"} 5",
            "redis_commands_total{cmd=\"get\"} 7",
            "redis_connected_slaves 1",
            "ferrokv_replica_lag_bytes{slave_ip=\"127.0.0.1\",slave_port=\"7001\",slave_state=\"online\"} 10",
            "ferrokv_command_latency_seconds_bucket{cmd=\"get\",le=\"1e-05\"} 7",
            "# TYPE redis_commands_processed_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("# EOF"));
    }

    #[test]
    fn openmetrics_ends_with_eof() {
        let text = sample().into_arc().render(Format::OpenMetrics);
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("# TYPE redis_commands_processed counter"));
    }
}
