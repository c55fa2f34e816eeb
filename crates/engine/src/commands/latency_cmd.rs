//! LATENCY HISTOGRAM: each command's latency distribution (the one `latency-tracking`
//! feeds and INFO latencystats summarises) as Redis 7.0 shapes it — a map per command of
//! `calls` and `histogram_usec`, the cumulative count at each power-of-two bucket.
//!
//! Redis reads these off an HDR histogram in nanoseconds, iterated in buckets that double
//! from 1024 ns; the bucket labels are each bucket's highest value in whole microseconds
//! (1, 2, 4, 8, 16, 33, 66, 132, …). ferrokv keeps microseconds with eight sub-buckets per
//! power of two, so it prints the same labels with counts exact to that resolution.

use crate::ctx::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::stats::LatencyHistogram;

/// Redis's bucket labels: the highest value (ns) equivalent to 2^e in an HDR histogram of
/// two significant digits (256 sub-buckets: a granularity of 2^(e-7)), in microseconds.
fn bucket_labels() -> impl Iterator<Item = u64> {
    (10..=40u32).map(|e| ((1u64 << e) + (1u64 << (e - 7)) - 1) / 1000)
}

fn reply_histogram(out: &mut ferrokv_resp::ReplyBuf, h: &LatencyHistogram) {
    out.map(2);
    out.bulk(b"calls");
    out.int(h.count() as i64);
    out.bulk(b"histogram_usec");
    let mut points = Vec::new();
    let mut previous = 0;
    for label in bucket_labels() {
        let cumulative = h.count_at_most(label);
        if cumulative > previous {
            points.push((label, cumulative));
        }
        previous = cumulative;
        if cumulative == h.count() {
            break;
        }
    }
    out.map(points.len());
    for (label, cumulative) in points {
        out.int(label as i64);
        out.int(cumulative as i64);
    }
}

/// LATENCY HISTOGRAM [command ...]: every command with samples, or the named ones (a
/// container name covers its subcommands; unknown names are skipped, as in Redis).
pub fn latency_histogram(c: &mut Ctx) -> CmdResult {
    let eng = &*c.eng;
    let mut ids = Vec::new();
    if c.argc() == 2 {
        ids.extend((0..eng.cmd_stats.len()).filter(|&id| eng.cmd_stats[id].latency.count() > 0));
    } else {
        for i in 2..c.argc() {
            let Some(id) = eng.commands.find_full(c.arg(i)) else { continue };
            ids.push(id);
            ids.extend(eng.commands.get(id).subs.iter().copied());
        }
        ids.retain(|&id| eng.cmd_stats.get(id).is_some_and(|s| s.latency.count() > 0));
    }
    let rows: Vec<(&'static str, LatencyHistogram)> =
        ids.iter().map(|&id| (eng.commands.get(id).fullname(), eng.cmd_stats[id].latency.clone())).collect();
    let out = c.out();
    out.map(rows.len());
    for (name, h) in &rows {
        out.bulk(name.as_bytes());
        reply_histogram(out, h);
    }
    Ok(())
}

/// LATENCY GRAPH event: the event's samples drawn as text (verbatim in RESP3).
pub fn latency_graph(c: &mut Ctx) -> CmdResult {
    let event = String::from_utf8_lossy(c.arg(2)).into_owned();
    let text = c.eng.latency.graph(&event, c.now / 1000);
    let text = text.ok_or_else(|| CmdError::Msg(format!("ERR No samples available for event '{event}'").into()))?;
    c.out().verbatim(text.as_bytes(), "txt");
    Ok(())
}

/// LATENCY DOCTOR: a human-readable analysis of the recorded events.
pub fn latency_doctor(c: &mut Ctx) -> CmdResult {
    let report = c.eng.latency.doctor(c.eng.hot.latency_monitor_threshold, c.now / 1000);
    c.out().verbatim(report.as_bytes(), "txt");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_redis_bucket_bounds() {
        let first: Vec<u64> = bucket_labels().take(12).collect();
        assert_eq!(first, [1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1056, 2113]);
    }
}
