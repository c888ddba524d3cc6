//! Logging, set up once per process: human-readable text by default, JSON lines when
//! `MINYI_LOG_FORMAT=json`. Span fields (the request id above all) appear on every line.
//! Metrics go to a Prometheus recorder whose handle `/metrics` renders.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogFormat, Settings};

/// Installs the global subscriber; later calls (tests start many apps) do nothing.
pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_new(&settings.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(std::io::stdout);
    let _ = match settings.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Histograms of where a ballot's time goes: the counter store's step, the wait for its
/// batch, and the batch's ledger write.
const BALLOT_STAGES: [&str; 3] = [
    "ballot_counters_duration_seconds",
    "ballot_queue_duration_seconds",
    "ballot_write_duration_seconds",
];
const BALLOT_STAGE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.035,
    0.05, 0.1, 0.25, 1.0,
];

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    &[
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    ],
                )
                .expect("the bucket list is not empty");
            // The stages of a ballot, finer: their sum is the ballot's latency, mostly under 50 ms.
            let recorder = BALLOT_STAGES
                .iter()
                .fold(recorder, |r, name| {
                    r.set_buckets_for_metric(Matcher::Full((*name).into()), BALLOT_STAGE_BUCKETS)
                        .expect("the bucket list is not empty")
                })
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness); ours still renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
