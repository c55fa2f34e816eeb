//! Counters behind INFO stats/commandstats/errorstats/latencystats, and the sampler for
//! the `instantaneous_*` rates.

use std::collections::BTreeMap;

#[derive(Default, Debug, Clone)]
pub struct Stats {
    pub total_connections_received: u64,
    pub total_commands_processed: u64,
    pub rejected_connections: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    pub expired_keys: u64,
    pub expired_stale_perc: f64,
    pub expired_time_cap_reached_count: u64,
    pub expire_cycle_cpu_ms: u64,
    pub evicted_keys: u64,
    pub evicted_clients: u64,
    /// Clients closed for exceeding `client-output-buffer-limit` (INFO field from Redis 7.2).
    pub client_output_buffer_limit_disconnections: u64,
    /// Replies replaced by -UNACKED (sync-replicas timeout or a history change).
    pub sync_unacked_replies: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub total_error_replies: u64,
    pub unexpected_error_replies: u64,
    pub total_reads_processed: u64,
    pub total_writes_processed: u64,
    pub errors: BTreeMap<String, u64>,
    pub ops: Sampler,
    pub net_in: Sampler,
    pub net_out: Sampler,
}

impl Stats {
    /// CONFIG RESETSTAT keeps nothing but the samplers' history.
    pub fn reset(&mut self) {
        *self = Stats::default();
    }

    pub fn record_error(&mut self, code: &str) {
        self.total_error_replies += 1;
        // Redis caps the number of distinct error codes it tracks.
        if self.errors.len() < 128 || self.errors.contains_key(code) {
            *self.errors.entry(code.to_string()).or_insert(0) += 1;
        }
    }

    /// Called from cron: samples the counters for the instantaneous rates.
    pub fn sample(&mut self, now_ms: i64) {
        let (c, i, o) = (self.total_commands_processed, self.net_input_bytes, self.net_output_bytes);
        self.ops.add(now_ms, c);
        self.net_in.add(now_ms, i);
        self.net_out.add(now_ms, o);
    }
}

/// Rate of a monotonic counter over the last 16 samples (Redis's STATS_METRIC_SAMPLES).
#[derive(Default, Debug, Clone)]
pub struct Sampler {
    last: Option<(i64, u64)>,
    samples: [f64; 16],
    idx: usize,
}

impl Sampler {
    fn add(&mut self, now_ms: i64, value: u64) {
        if let Some((t, v)) = self.last {
            let dt = (now_ms - t).max(1) as f64;
            self.samples[self.idx] = value.saturating_sub(v) as f64 * 1000.0 / dt;
            self.idx = (self.idx + 1) % self.samples.len();
        }
        self.last = Some((now_ms, value));
    }

    /// Per-second rate averaged over the samples.
    pub fn per_sec(&self) -> f64 {
        self.samples.iter().sum::<f64>() / self.samples.len() as f64
    }
}

/// Per-command counters (INFO commandstats) and latency distribution (latencystats).
#[derive(Default, Debug, Clone)]
pub struct CmdStats {
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
    pub latency: LatencyHistogram,
}

/// A log-linear histogram of latencies in microseconds: 8 linear sub-buckets per power of
/// two keep the relative error of any percentile under 12.5% with a fixed 512 counters.
#[derive(Clone, Debug)]
pub struct LatencyHistogram {
    buckets: Box<[u64; 512]>,
    count: u64,
    sum_us: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram { buckets: Box::new([0; 512]), count: 0, sum_us: 0 }
    }
}

impl LatencyHistogram {
    fn bucket(us: u64) -> usize {
        if us < 8 {
            return us as usize;
        }
        let exp = 63 - us.leading_zeros() as usize; // >= 3
        let sub = ((us >> (exp - 3)) & 7) as usize;
        ((exp - 2) * 8 + sub).min(511)
    }

    fn bucket_upper(b: usize) -> u64 {
        if b < 8 {
            return b as u64;
        }
        let exp = b / 8 + 2;
        let sub = (b % 8) as u64;
        ((8 + sub + 1) << (exp - 3)) - 1
    }

    pub fn record(&mut self, us: u64) {
        self.buckets[Self::bucket(us)] += 1;
        self.count += 1;
        self.sum_us += us;
    }

    /// The sum of the recorded latencies (µs).
    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// [`count_at_most`](Self::count_at_most) for each of the ascending `bounds_us`, in one
    /// pass over the buckets (a metrics scrape takes this under the engine lock).
    pub fn cumulative_at(&self, bounds_us: &[u64]) -> Vec<u64> {
        let mut out = Vec::with_capacity(bounds_us.len());
        let mut seen = 0;
        let mut b = 0;
        for &limit in bounds_us {
            while b < self.buckets.len() && Self::bucket_upper(b) <= limit {
                seen += self.buckets[b];
                b += 1;
            }
            out.push(seen);
        }
        out
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// How many samples were at most `us` microseconds (to the histogram's resolution: a
    /// sub-bucket counts when its upper bound is within the limit).
    pub fn count_at_most(&self, us: u64) -> u64 {
        self.buckets.iter().enumerate().take_while(|&(b, _)| Self::bucket_upper(b) <= us).map(|(_, &n)| n).sum()
    }

    /// The latency (µs) at or below which `p` percent of the samples fall.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let want = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (b, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want {
                return Self::bucket_upper(b);
            }
        }
        Self::bucket_upper(511)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_percentiles_are_close() {
        let mut h = LatencyHistogram::default();
        for us in 1..=1000u64 {
            h.record(us);
        }
        let p50 = h.percentile(50.0) as f64;
        let p99 = h.percentile(99.0) as f64;
        assert!((p50 - 500.0).abs() / 500.0 < 0.13, "p50 {p50}");
        assert!((p99 - 990.0).abs() / 990.0 < 0.13, "p99 {p99}");
        assert_eq!(LatencyHistogram::default().percentile(50.0), 0);
    }

    #[test]
    fn cumulative_counts_agree_with_count_at_most() {
        let mut h = LatencyHistogram::default();
        for us in [0u64, 3, 9, 10, 11, 99, 100, 101, 5_000, 2_000_000, u64::MAX / 4] {
            h.record(us);
        }
        let bounds = [0u64, 5, 10, 100, 1_000, 10_000, 10_000_000];
        let expected: Vec<u64> = bounds.iter().map(|&b| h.count_at_most(b)).collect();
        assert_eq!(h.cumulative_at(&bounds), expected);
    }

    #[test]
    fn sampler_computes_rates() {
        let mut s = Sampler::default();
        for i in 0..20 {
            s.add(i * 100, (i * 100) as u64);
        }
        assert!((s.per_sec() - 1000.0).abs() < 1.0);
    }
}
