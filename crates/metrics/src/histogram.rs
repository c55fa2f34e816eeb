//! Histograms as the exposition sees them: fixed upper bounds in seconds, counts per
//! bucket. Sources keep their own resolution (the engine's log-linear latency histogram,
//! the AOF writer's atomic counters) and are cut to these bounds when a snapshot is taken.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (µs) of the latency buckets every ferrokv histogram exports: 10 µs to 10 s
/// in 1-2.5-5 steps, then +Inf. Fixed, so dashboards can aggregate across instances.
pub const LATENCY_BOUNDS_US: [u64; 19] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// A histogram ready to encode: `buckets[i]` counts the samples in bucket `i` only (not
/// cumulative), the last bucket is +Inf.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    pub buckets: Vec<(f64, u64)>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl HistogramSnapshot {
    /// From cumulative counts at [`LATENCY_BOUNDS_US`] (`cumulative[i]` = samples at most
    /// `LATENCY_BOUNDS_US[i]`), the total count and the sum in microseconds.
    pub fn from_cumulative(cumulative: &[u64], count: u64, sum_us: u64) -> Self {
        let mut buckets = Vec::with_capacity(LATENCY_BOUNDS_US.len() + 1);
        let mut below = 0;
        for (bound, &c) in LATENCY_BOUNDS_US.iter().zip(cumulative) {
            let c = c.max(below).min(count);
            buckets.push((*bound as f64 / 1e6, c - below));
            below = c;
        }
        buckets.push((f64::INFINITY, count - below));
        HistogramSnapshot { buckets, sum_seconds: sum_us as f64 / 1e6, count }
    }
}

/// A histogram a thread records into without a lock (the AOF writer's fsync times) and a
/// scrape reads. Counts are per bucket of [`LATENCY_BOUNDS_US`] plus +Inf.
#[derive(Debug, Default)]
pub struct AtomicHistogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl AtomicHistogram {
    pub fn record_us(&self, us: u64) {
        let i = LATENCY_BOUNDS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::with_capacity(self.buckets.len());
        let mut count = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            count += n;
            let bound = LATENCY_BOUNDS_US.get(i).map_or(f64::INFINITY, |&us| us as f64 / 1e6);
            buckets.push((bound, n));
        }
        // Sum and count may be a sample ahead of the buckets; the buckets are the truth.
        HistogramSnapshot { buckets, sum_seconds: self.sum_us.load(Ordering::Relaxed) as f64 / 1e6, count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_counts_become_per_bucket_counts() {
        let mut cumulative = vec![0u64; LATENCY_BOUNDS_US.len()];
        for (i, c) in cumulative.iter_mut().enumerate() {
            *c = if i >= 3 { 7 } else { 2 };
        }
        let h = HistogramSnapshot::from_cumulative(&cumulative, 9, 1500);
        assert_eq!(h.buckets[0], (10e-6, 2));
        assert_eq!(h.buckets[3].1, 5);
        assert_eq!(h.buckets.last(), Some(&(f64::INFINITY, 2)));
        assert_eq!(h.buckets.iter().map(|b| b.1).sum::<u64>(), 9);
        assert!((h.sum_seconds - 0.0015).abs() < 1e-12);
    }

    #[test]
    fn atomic_histogram_puts_samples_at_their_upper_bound() {
        let h = AtomicHistogram::default();
        h.record_us(10);
        h.record_us(11);
        h.record_us(20_000_000);
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets[0].1, 1);
        assert_eq!(s.buckets[1].1, 1);
        assert_eq!(s.buckets.last().map(|b| b.1), Some(1));
    }
}
