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

/// Height of LATENCY GRAPH's sparkline in text rows, and its width in samples per block.
const GRAPH_ROWS: usize = 4;
const GRAPH_COLUMNS: usize = 80;
/// Each row holds three levels: low, middle and top of the row; rows below a sample's
/// level are filled with `|`.
const LEVEL_CHARS: &[u8] = b"_o#";

/// How long ago, as LATENCY GRAPH labels its columns: seconds, minutes, hours, days.
fn age_label(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

impl LatencyMonitor {
    /// LATENCY GRAPH's text: a title, then the samples as a sparkline normalised between
    /// the lowest and highest sample, in blocks of 80 columns, each column labelled
    /// vertically with how long ago its sample was taken (Redis 7.0's layout). None if
    /// the event has no samples.
    pub fn graph(&self, event: &str, now_secs: i64) -> Option<String> {
        let series = self.events.get(event).filter(|s| !s.history.is_empty())?;
        let low = series.history.iter().map(|&(_, l)| l).min().unwrap_or(0);
        let high = series.history.iter().map(|&(_, l)| l).max().unwrap_or(0);
        let mut out = format!(
            "{event} - high {high} ms, low {low} ms (all time high {} ms)\n{}\n",
            series.max,
            "-".repeat(GRAPH_COLUMNS)
        );
        let span = (high - low).max(1) as f64;
        let steps = GRAPH_ROWS * LEVEL_CHARS.len();
        let samples: Vec<(i64, i64)> = series.history.iter().copied().collect();
        for block in samples.chunks(GRAPH_COLUMNS) {
            let levels: Vec<usize> = block
                .iter()
                .map(|&(_, l)| (((l - low) as f64 / span * steps as f64) as usize).min(steps - 1))
                .collect();
            for row in (0..GRAPH_ROWS).rev() {
                for &step in &levels {
                    let ch = match step / LEVEL_CHARS.len() {
                        level if level == row => LEVEL_CHARS[step % LEVEL_CHARS.len()],
                        level if level > row => b'|',
                        _ => b' ',
                    };
                    out.push(ch as char);
                }
                out.push('\n');
            }
            out.push_str(&" ".repeat(block.len()));
            out.push('\n');
            let labels: Vec<Vec<u8>> = block.iter().map(|&(t, _)| age_label(now_secs - t).into_bytes()).collect();
            let height = labels.iter().map(Vec::len).max().unwrap_or(0);
            for line in 0..height {
                out.extend(labels.iter().map(|l| l.get(line).map_or(' ', |&b| b as char)));
                out.push('\n');
            }
        }
        Some(out)
    }

    /// LATENCY DOCTOR's report: per event the number of spikes in the history, their
    /// average and mean absolute deviation, the average time between them and the worst
    /// ever, then advice for the kinds of events seen.
    pub fn doctor(&self, threshold_ms: i64, now_secs: i64) -> String {
        if self.events.is_empty() && threshold_ms == 0 {
            return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. \
                You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. \
                If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n"
                .to_string();
        }
        let observed: Vec<(&String, &EventSeries)> =
            self.events.iter().filter(|(_, s)| !s.history.is_empty()).collect();
        if observed.is_empty() {
            return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the \
                slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n"
                .to_string();
        }
        let mut out = String::from(
            "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
        );
        for (n, (event, series)) in observed.iter().enumerate() {
            let count = series.history.len() as i64;
            let average = series.history.iter().map(|&(_, l)| l).sum::<i64>() / count;
            let deviation = series.history.iter().map(|&(_, l)| (l - average).abs()).sum::<i64>() / count;
            let oldest = series.history.front().map_or(now_secs, |&(t, _)| t);
            let period = (now_secs - oldest).max(0) as f64 / count as f64;
            out.push_str(&format!(
                "{}. {event}: {count} latency spikes (average {average}ms, mean deviation {deviation}ms, period {period:.2} sec). Worst all time event {}ms.\n",
                n + 1,
                series.max
            ));
        }
        out.push_str("\nI have a few advices for you:\n\n");
        let seen = |name: &str| observed.iter().any(|(e, _)| e.as_str() == name);
        if seen("command") || seen("fast-command") {
            out.push_str(
                "- Check your Slow Log to understand what are the commands you are running which are too slow to execute. \
                 Please check https://redis.io/commands/slowlog for more information.\n",
            );
        }
        if seen("command") {
            out.push_str(
                "- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. \
                 If you have very large objects that are often deleted, expired, or evicted, try to fragment those \
                 objects into multiple smaller objects (or enable lazyfree-lazy-eviction, lazyfree-lazy-expire and \
                 lazyfree-lazy-user-del).\n",
            );
        }
        if seen("fast-command") {
            out.push_str(
                "- The system is slow to execute ferrokv code paths not containing system calls. This usually means \
                 the machine is overloaded or its CPU is shared with other busy processes (a virtual machine, \
                 containers without CPU limits).\n",
            );
        }
        if self.events.keys().any(|e| e.starts_with("aof-")) {
            out.push_str(
                "- The AOF is slow to write or fsync: check the disk (or use appendfsync everysec). ferrokv writes \
                 and fsyncs the AOF on a thread of its own, so only appendfsync always makes clients wait for it.\n",
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(samples: &[(i64, i64)]) -> LatencyMonitor {
        let mut m = LatencyMonitor::default();
        for &(t, l) in samples {
            m.add("command", t * 1000, l);
        }
        m
    }

    /// The same layout redis-server 7.0.15 printed for two spikes of 834 and 1127 ms taken
    /// 12 s and 0 s before the graph.
    #[test]
    fn graph_matches_redis_layout() {
        let m = monitor(&[(100, 834), (112, 1127)]);
        let expected = "command - high 1127 ms, low 834 ms (all time high 1127 ms)\n".to_string()
            + &"-".repeat(80)
            + "\n #\n |\n |\n_|\n  \n10\n2s\ns \n";
        assert_eq!(m.graph("command", 112).as_deref(), Some(expected.as_str()));
        assert_eq!(m.graph("fork", 112), None);
    }

    /// Redis's documented example: 101, 201, 301, 501 and 401 ms.
    #[test]
    fn graph_levels_follow_the_documented_example() {
        let m = monitor(&[(85, 101), (86, 201), (88, 301), (92, 501), (94, 401)]);
        let text = m.graph("command", 100).unwrap_or_default();
        let rows: Vec<&str> = text.lines().skip(2).take(4).collect();
        assert_eq!(rows, ["   #_", "  _||", " _|||", "_||||"]);
        let labels: Vec<&str> = text.lines().skip(7).collect();
        assert_eq!(labels, ["11186", "542ss", "sss  "]);
    }

    #[test]
    fn graph_wraps_after_80_samples_and_labels_minutes() {
        let samples: Vec<(i64, i64)> = (0..100).map(|i| (i, 10 + i)).collect();
        let text = monitor(&samples).graph("command", 200).unwrap_or_default();
        let first_block_row = text.lines().nth(2).unwrap_or_default();
        assert_eq!(first_block_row.len(), 80);
        assert!(text.lines().any(|l| l.len() == 20), "the second block holds the last 20 samples");
        assert!(text.contains('m'), "samples older than a minute are labelled in minutes");
    }

    #[test]
    fn doctor_reports_each_event() {
        let off = LatencyMonitor::default();
        assert!(off.doctor(0, 0).starts_with("I'm sorry, Dave"));
        assert!(off.doctor(100, 0).starts_with("Dave, no latency spike"));
        let m = monitor(&[(10, 1000), (12, 2000)]);
        let report = m.doctor(100, 14);
        assert!(report.contains(
            "1. command: 2 latency spikes (average 1500ms, mean deviation 500ms, period 2.00 sec). Worst all time event 2000ms."
        ));
        assert!(report.contains("Slow Log"));
    }
}
