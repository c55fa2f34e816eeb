//! A sentinel's metrics: its view of each monitored master, taken from the sentinel's
//! state machine the way its INFO and SENTINEL commands read it.

use crate::{flag, Families, Labels};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

#[derive(Clone, Debug, Default)]
pub struct SentinelSnapshot {
    /// The sentinel's id (`myid`).
    pub id: String,
    pub port: u16,
    pub current_epoch: u64,
    pub tilt: bool,
    pub masters: Vec<MasterView>,
    /// Recent events (`+sdown`, `+switch-master`…), oldest first. Only the page shows them.
    pub events: Vec<EventView>,
}

#[derive(Clone, Debug, Default)]
pub struct EventView {
    /// Unix time in ms.
    pub time_ms: i64,
    pub kind: String,
    pub message: String,
}

#[derive(Clone, Debug, Default)]
pub struct MasterView {
    pub name: String,
    pub ip: String,
    pub port: u16,
    /// `ok`, `sdown` or `odown`.
    pub state: &'static str,
    /// SENTINEL MASTER's `flags`.
    pub flags: String,
    /// SENTINEL MASTER's `failover-state` (`none` outside a failover).
    pub failover_state: String,
    pub quorum: u32,
    /// Sentinels (this one included) that currently agree the master is down or that
    /// could be reached to agree: this sentinel plus the others not subjectively down.
    pub reachable_sentinels: u32,
    pub config_epoch: u64,
    pub failovers_total: u64,
    pub last_failover_duration_seconds: Option<f64>,
    pub failover_in_progress: bool,
    pub replicas: Vec<ReplicaView>,
    pub sentinels: Vec<PeerView>,
}

#[derive(Clone, Debug, Default)]
pub struct ReplicaView {
    pub ip: String,
    pub port: u16,
    pub flags: String,
    pub down: bool,
    pub link_up: bool,
    pub offset: u64,
    pub lag_bytes: u64,
}

#[derive(Clone, Debug, Default)]
pub struct PeerView {
    pub ip: String,
    pub port: u16,
    pub run_id: String,
    pub flags: String,
    pub down: bool,
    /// Whether this peer says the master is down (its last answer).
    pub thinks_master_down: bool,
    /// Whom it voted for as failover leader, and in which epoch.
    pub leader: String,
    pub leader_epoch: u64,
}

impl SentinelSnapshot {
    /// The exposition text; the snapshot is shared, not copied (a cached snapshot serves
    /// several scrapes).
    pub fn render(self: std::sync::Arc<Self>, format: crate::Format) -> String {
        crate::render(SentinelCollector(self), format)
    }
}

/// A JSON string literal.
fn js(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\u003c"), // safe to embed anywhere in a page
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl SentinelSnapshot {
    /// The topology page's data (`/api/topology`): the same snapshot as JSON.
    pub fn to_json(&self) -> String {
        let replicas = |m: &MasterView| {
            let rows: Vec<String> = m
                .replicas
                .iter()
                .map(|r| {
                    format!(
                        r#"{{"ip":{},"port":{},"flags":{},"down":{},"link_up":{},"offset":{},"lag_bytes":{}}}"#,
                        js(&r.ip),
                        r.port,
                        js(&r.flags),
                        r.down,
                        r.link_up,
                        r.offset,
                        r.lag_bytes
                    )
                })
                .collect();
            rows.join(",")
        };
        let peers = |m: &MasterView| {
            let rows: Vec<String> = m
                .sentinels
                .iter()
                .map(|p| {
                    format!(
                        r#"{{"ip":{},"port":{},"id":{},"flags":{},"down":{},"master_down":{},"leader":{},"leader_epoch":{}}}"#,
                        js(&p.ip),
                        p.port,
                        js(&p.run_id),
                        js(&p.flags),
                        p.down,
                        p.thinks_master_down,
                        js(&p.leader),
                        p.leader_epoch
                    )
                })
                .collect();
            rows.join(",")
        };
        let masters: Vec<String> = self
            .masters
            .iter()
            .map(|m| {
                format!(
                    r#"{{"name":{},"ip":{},"port":{},"state":{},"flags":{},"failover_state":{},"quorum":{},"usable_sentinels":{},"config_epoch":{},"failovers":{},"last_failover_seconds":{},"replicas":[{}],"sentinels":[{}]}}"#,
                    js(&m.name),
                    js(&m.ip),
                    m.port,
                    js(m.state),
                    js(&m.flags),
                    js(&m.failover_state),
                    m.quorum,
                    m.reachable_sentinels,
                    m.config_epoch,
                    m.failovers_total,
                    m.last_failover_duration_seconds.map_or("null".to_string(), |d| format!("{d:.3}")),
                    replicas(m),
                    peers(m)
                )
            })
            .collect();
        let events: Vec<String> = self
            .events
            .iter()
            .map(|e| format!(r#"{{"time_ms":{},"type":{},"message":{}}}"#, e.time_ms, js(&e.kind), js(&e.message)))
            .collect();
        format!(
            r#"{{"sentinel":{{"id":{},"port":{},"current_epoch":{},"tilt":{}}},"masters":[{}],"events":[{}]}}"#,
            js(&self.id),
            self.port,
            self.current_epoch,
            self.tilt,
            masters.join(","),
            events.join(",")
        )
    }
}

#[derive(Debug)]
struct SentinelCollector(std::sync::Arc<SentinelSnapshot>);

fn master(m: &MasterView) -> Labels {
    vec![("master_name", m.name.clone())]
}

fn address(m: &MasterView) -> Labels {
    vec![("master_name", m.name.clone()), ("master_address", format!("{}:{}", m.ip, m.port))]
}

impl Collector for SentinelCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let ms = &s.masters;
        let mut f = Families::new(encoder);
        f.gauge("redis_up", "Whether the sentinel answered the scrape (always 1 when served).", 1.0)?;
        f.gauge("redis_sentinel_masters", "Masters this sentinel monitors.", ms.len() as f64)?;
        f.gauge("redis_sentinel_tilt", "1 while the sentinel is in TILT mode.", flag(s.tilt))?;
        f.gauge("ferrokv_sentinel_current_epoch", "The sentinel's current epoch.", s.current_epoch as f64)?;
        f.gauges(
            "redis_sentinel_master_status",
            "1 if the master is ok, 0 if it is down (labels as redis_exporter).",
            ms.iter().map(|m| {
                let mut l = address(m);
                l.push(("master_status", m.state.to_string()));
                (l, flag(m.state == "ok"))
            }),
        )?;
        f.gauges(
            "ferrokv_sentinel_master_state",
            "One series per state (ok, sdown, odown); 1 for the master's current one.",
            ms.iter().flat_map(|m| {
                ["ok", "sdown", "odown"].into_iter().map(move |st| {
                    let mut l = master(m);
                    l.push(("state", st.to_string()));
                    (l, flag(m.state == st))
                })
            }),
        )?;
        f.gauges(
            "redis_sentinel_master_slaves",
            "Replicas known per master.",
            ms.iter().map(|m| (address(m), m.replicas.len() as f64)),
        )?;
        f.gauges(
            "redis_sentinel_master_ok_slaves",
            "Replicas not down per master.",
            ms.iter().map(|m| (address(m), m.replicas.iter().filter(|r| !r.down).count() as f64)),
        )?;
        f.gauges(
            "redis_sentinel_master_sentinels",
            "Sentinels known per master, this one included.",
            ms.iter().map(|m| (address(m), (m.sentinels.len() + 1) as f64)),
        )?;
        f.gauges(
            "redis_sentinel_master_ok_sentinels",
            "Sentinels not down per master, this one included.",
            ms.iter().map(|m| (address(m), (m.sentinels.iter().filter(|p| !p.down).count() + 1) as f64)),
        )?;
        f.gauges(
            "ferrokv_sentinel_quorum",
            "The configured quorum per master.",
            ms.iter().map(|m| (master(m), m.quorum as f64)),
        )?;
        f.gauges(
            "ferrokv_sentinel_quorum_reachable",
            "1 if enough sentinels are reachable to reach the quorum (and a majority to authorize a failover).",
            ms.iter().map(|m| {
                let known = m.sentinels.len() as u32 + 1;
                let ok = m.reachable_sentinels >= m.quorum && m.reachable_sentinels > known / 2;
                (master(m), flag(ok))
            }),
        )?;
        f.gauges(
            "ferrokv_sentinel_master_config_epoch",
            "The configuration epoch of each master.",
            ms.iter().map(|m| (master(m), m.config_epoch as f64)),
        )?;
        f.counters(
            "ferrokv_sentinel_failovers",
            "Failovers this sentinel led or saw complete (+switch-master) since it started.",
            ms.iter().map(|m| (master(m), m.failovers_total as f64)),
        )?;
        f.gauges(
            "ferrokv_sentinel_failover_in_progress",
            "1 while a failover of the master runs.",
            ms.iter().map(|m| (master(m), flag(m.failover_in_progress))),
        )?;
        f.gauges(
            "ferrokv_sentinel_last_failover_duration_seconds",
            "Duration of the last failover as this sentinel saw it: from the master's +sdown (or +try-failover) to +switch-master.",
            ms.iter().filter_map(|m| m.last_failover_duration_seconds.map(|d| (master(m), d))),
        )?;
        f.gauges(
            "ferrokv_sentinel_replica_link_up",
            "1 if the replica reports its link to the master up.",
            ms.iter().flat_map(|m| {
                m.replicas.iter().map(move |r| {
                    let mut l = master(m);
                    l.push(("replica", format!("{}:{}", r.ip, r.port)));
                    (l, flag(r.link_up && !r.down))
                })
            }),
        )?;
        f.gauges(
            "ferrokv_sentinel_replica_lag_bytes",
            "Master offset minus the replica's offset, as the sentinel last saw them.",
            ms.iter().flat_map(|m| {
                m.replicas.iter().map(move |r| {
                    let mut l = master(m);
                    l.push(("replica", format!("{}:{}", r.ip, r.port)));
                    (l, r.lag_bytes as f64)
                })
            }),
        )?;
        f.gauges(
            "ferrokv_sentinel_peer_up",
            "1 if the other sentinel answers.",
            ms.iter().flat_map(|m| {
                m.sentinels.iter().map(move |p| {
                    let mut l = master(m);
                    l.push(("sentinel", format!("{}:{}", p.ip, p.port)));
                    (l, flag(!p.down))
                })
            }),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    trait IntoArc {
        fn into_arc(self) -> std::sync::Arc<SentinelSnapshot>;
    }

    impl IntoArc for SentinelSnapshot {
        fn into_arc(self) -> std::sync::Arc<SentinelSnapshot> {
            std::sync::Arc::new(self)
        }
    }

    #[test]
    fn sentinel_families_show_state_and_quorum() {
        let snap = SentinelSnapshot {
            current_epoch: 3,
            masters: vec![MasterView {
                name: "mymaster".into(),
                ip: "127.0.0.1".into(),
                port: 6379,
                state: "odown",
                quorum: 2,
                reachable_sentinels: 2,
                sentinels: vec![PeerView::default(), PeerView { down: true, ..Default::default() }],
                failovers_total: 1,
                ..Default::default()
            }],
            events: vec![EventView { time_ms: 1, kind: "+sdown".into(), message: "master \"x\" <b>".into() }],
            ..Default::default()
        };
        let json = snap.to_json();
        assert!(json.contains(r#""state":"odown""#), "{json}");
        assert!(json.contains(r#""message":"master \"x\" \u003cb>""#), "{json}");
        let text = snap.into_arc().render(Format::Prometheus);
        for line in [
            "ferrokv_sentinel_master_state{master_name=\"mymaster\",state=\"odown\"} 1",
            "ferrokv_sentinel_master_state{master_name=\"mymaster\",state=\"ok\"} 0",
            "ferrokv_sentinel_quorum_reachable{master_name=\"mymaster\"} 1",
            "redis_sentinel_master_ok_sentinels{master_name=\"mymaster\",master_address=\"127.0.0.1:6379\"} 2",
            "ferrokv_sentinel_failovers_total{master_name=\"mymaster\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
