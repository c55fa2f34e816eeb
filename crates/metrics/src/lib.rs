//! The metrics exposition of ferrokv: a server's or a sentinel's state, taken as a plain
//! snapshot struct by the caller, turned into the Prometheus text format (0.0.4) or
//! OpenMetrics with the `prometheus-client` crate. No I/O and no clock: the HTTP layer
//! lives in the server and sentinel crates, the snapshot comes from the engine (which
//! shares INFO's computations) or the sentinel's state machine.
//!
//! Names follow redis_exporter where it has one (`redis_connected_clients`,
//! `redis_commands_total{cmd}`…), so existing dashboards and alerts work; ferrokv's own
//! figures (histograms, per-replica lag in bytes, the sentinel's view) are `ferrokv_*`.

pub mod histogram;
pub mod sentinel;
pub mod server;

use histogram::HistogramSnapshot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder};
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::collections::HashMap;

/// The exposition format a scraper asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`: what Prometheus and most tools read by default.
    Prometheus,
    /// `application/openmetrics-text; version=1.0.0`, when the `Accept` header asks for it
    /// (Prometheus does, first).
    OpenMetrics,
}

impl Format {
    /// Content negotiation on the request's `Accept` header.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Encodes one collector (a snapshot) in `format`.
pub fn render(collector: impl Collector, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    let mut out = String::with_capacity(16 * 1024);
    let written = match format {
        Format::Prometheus => prometheus_client::encoding::prometheus_text::encode(&mut out, &registry),
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
    };
    // Writing into a String cannot fail; an encoder error would be a bug in a name.
    if written.is_err() {
        out.clear();
    }
    out
}

/// Labels of one sample: (name, value) pairs.
pub type Labels = Vec<(&'static str, String)>;

/// Small helpers over the descriptor encoder, so each snapshot lists its families plainly.
pub(crate) struct Families<'a> {
    enc: DescriptorEncoder<'a>,
}

type Fmt = Result<(), std::fmt::Error>;

impl<'a> Families<'a> {
    pub(crate) fn new(enc: DescriptorEncoder<'a>) -> Self {
        Families { enc }
    }

    pub(crate) fn gauge(&mut self, name: &str, help: &str, v: f64) -> Fmt {
        let mut m = self.enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
        gauge_value(&mut m, v)
    }

    /// A counter; `name` without `_total` (the encoder adds it).
    pub(crate) fn counter(&mut self, name: &str, help: &str, v: f64) -> Fmt {
        let mut m = self.enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        counter_value(&mut m, v)
    }

    pub(crate) fn gauges(&mut self, name: &str, help: &str, rows: impl IntoIterator<Item = (Labels, f64)>) -> Fmt {
        let mut m = self.enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (labels, v) in rows {
            gauge_value(&mut m.encode_family(&labels)?, v)?;
        }
        Ok(())
    }

    pub(crate) fn counters(&mut self, name: &str, help: &str, rows: impl IntoIterator<Item = (Labels, f64)>) -> Fmt {
        let mut m = self.enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (labels, v) in rows {
            counter_value(&mut m.encode_family(&labels)?, v)?;
        }
        Ok(())
    }

    pub(crate) fn histograms<'h>(
        &mut self,
        name: &str,
        help: &str,
        rows: impl IntoIterator<Item = (Labels, &'h HistogramSnapshot)>,
    ) -> Fmt {
        let mut m = self.enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for (labels, h) in rows {
            m.encode_family(&labels)?.encode_histogram::<Labels>(
                h.sum_seconds,
                h.count,
                &h.buckets,
                None::<&HashMap<usize, Exemplar<Labels, f64>>>,
            )?;
        }
        Ok(())
    }
}

/// Whole numbers are written as integers (`3`, not `3.0`), as redis_exporter writes them.
fn integral(v: f64) -> Option<u64> {
    (v.fract() == 0.0 && (0.0..9.0e15).contains(&v)).then_some(v as u64)
}

fn gauge_value(m: &mut MetricEncoder, v: f64) -> Fmt {
    match (integral(v), v.fract() == 0.0 && v > -9.0e15 && v < 0.0) {
        (Some(n), _) => m.encode_gauge(&n),
        (None, true) => m.encode_gauge(&(v as i64)),
        _ => m.encode_gauge(&v),
    }
}

fn counter_value(m: &mut MetricEncoder, v: f64) -> Fmt {
    match integral(v) {
        Some(n) => m.encode_counter::<Labels, _, f64>(&n, None),
        None => m.encode_counter::<Labels, _, f64>(&v, None),
    }
}

/// 1.0 for true, 0.0 for false: Prometheus has no booleans.
pub(crate) fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}
