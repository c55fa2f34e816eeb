//! LATENCY monitor basics: per-event latest/max samples and a short history, recorded
//! when an event exceeds `latency-monitor-threshold` milliseconds.

use std::collections::{BTreeMap, VecDeque};

const HISTORY: usize = 160;

#[derive(Default)]
pub struct EventSeries {
    pub history: VecDeque<(i64, i64)>,
    pub max: i64,
}

#[derive(Default)]
pub struct LatencyMonitor {
    pub events: BTreeMap<String, EventSeries>,
}

impl LatencyMonitor {
    pub fn add(&mut self, event: &str, now_ms: i64, latency_ms: i64) {
        let s = self.events.entry(event.to_string()).or_default();
        let t = now_ms / 1000;
        match s.history.back_mut() {
            // One sample per second per event, keeping the worst.
            Some(last) if last.0 == t => last.1 = last.1.max(latency_ms),
            _ => s.history.push_back((t, latency_ms)),
        }
        if s.history.len() > HISTORY {
            s.history.pop_front();
        }
        s.max = s.max.max(latency_ms);
    }

    /// Resets the named events (all if empty); returns how many were reset.
    pub fn reset(&mut self, names: &[String]) -> usize {
        if names.is_empty() {
            let n = self.events.len();
            self.events.clear();
            return n;
        }
        names.iter().filter(|n| self.events.remove(n.as_str()).is_some()).count()
    }
}
