//! `--latency` and `--latency-history`: PING round trips in milliseconds. On a terminal
//! the line updates in place forever; with raw output `--latency` samples for one
//! second (or `-i`) and prints `min max avg count` once, for scripts.

use crate::format::OutputMode;
use crate::session::{emit, Exit, Session};
use std::time::{Duration, Instant};

const SAMPLE_EVERY: Duration = Duration::from_millis(10);
const HISTORY_WINDOW: Duration = Duration::from_secs(15);
const RAW_WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Stats {
    pub min: u128,
    pub max: u128,
    pub total: u128,
    pub count: u64,
}

impl Stats {
    pub fn add(&mut self, ms: u128) {
        if self.count == 0 {
            (self.min, self.max) = (ms, ms);
        }
        self.min = self.min.min(ms);
        self.max = self.max.max(ms);
        self.total += ms;
        self.count += 1;
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total as f64 / self.count as f64
        }
    }

    pub fn line(&self, mode: OutputMode) -> String {
        match mode {
            OutputMode::Standard => {
                format!("min: {}, max: {}, avg: {:.2} ({} samples)", self.min, self.max, self.avg(), self.count)
            }
            OutputMode::Raw => format!("{} {} {:.2} {}\n", self.min, self.max, self.avg(), self.count),
        }
    }
}

pub fn run(s: &mut Session, history: bool) -> Result<(), Exit> {
    let mode = s.opts.output;
    let window = if s.opts.interval.is_zero() { RAW_WINDOW } else { s.opts.interval };
    let history_window = if s.opts.interval.is_zero() { HISTORY_WINDOW } else { s.opts.interval };
    let mut stats = Stats::default();
    let mut window_start = Instant::now();
    loop {
        let start = Instant::now();
        super::call_reconnecting(s, &[b"PING"])?;
        stats.add(start.elapsed().as_millis());
        if mode == OutputMode::Standard {
            // Back to column 0 and clear the line: the figures update in place.
            emit(format!("\x1b[0G\x1b[2K{}", stats.line(mode)).as_bytes())?;
        } else if history {
            emit(stats.line(mode).as_bytes())?;
        } else if window_start.elapsed() > window {
            emit(stats.line(mode).as_bytes())?;
            return Ok(());
        }
        if history && window_start.elapsed() > history_window {
            emit(format!(" -- {:.2} seconds range\n", window_start.elapsed().as_secs_f64()).as_bytes())?;
            window_start = Instant::now();
            stats = Stats::default();
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_lines() {
        let mut st = Stats::default();
        for ms in [2, 0, 1] {
            st.add(ms);
        }
        assert_eq!(st.line(OutputMode::Raw), "0 2 1.00 3\n");
        assert_eq!(st.line(OutputMode::Standard), "min: 0, max: 2, avg: 1.00 (3 samples)");
    }
}
