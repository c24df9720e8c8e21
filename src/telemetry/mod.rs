//! Logging, metrics and traces set-up.
//!
//! # Layout
//! - this file: logging (pretty or JSON lines) and the Prometheus recorder.
//! - [`traces`]: OpenTelemetry traces over OTLP/HTTP (`telemetry.otlp`), and the W3C trace
//!   context the request path and delivery carry (read, stored, sent on).
//!
//! May call: `config`.

pub mod traces;

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry};

use crate::config::{LogFormat, LogSettings, TelemetrySettings};

/// `RUST_LOG` when set, else `log.level` (else `info`).
fn log_filter(settings: &LogSettings) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Starts logging and, when `telemetry.otlp.endpoint` is set, traces ([`traces`]): the log
/// lines as [`init`] writes them, filtered as they are, and beside them every hookgate span
/// exported whatever the log level. Without an endpoint this is [`init`] and nothing more.
/// With one it must be called inside the runtime that will serve (the exports run there).
///
/// # Errors
/// When the exporter cannot be built, or logging was already started (traces could not be
/// added to it).
pub fn init_with_traces(log: &LogSettings, telemetry: &TelemetrySettings) -> Result<(), String> {
    if !telemetry.otlp.enabled() {
        init(log);
        return Ok(());
    }
    let (provider, tracer) = traces::pipeline(&telemetry.otlp)?;
    let lines: Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync> = match log.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stdout().is_terminal())
            .boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(lines.with_filter(log_filter(log)))
        .with(traces::layer(tracer))
        .try_init();
    match installed {
        Ok(()) => {
            traces::started(provider);
            Ok(())
        }
        Err(e) => {
            let _ = provider.shutdown();
            Err(format!(
                "telemetry.otlp: traces could not be started (logging was already set up: {e})"
            ))
        }
    }
}

/// Starts logging: `RUST_LOG` wins when set, else `log.level`; `pretty` or `json` lines on stdout.
/// Calling it again (tests start several applications) changes nothing.
pub fn init(settings: &LogSettings) {
    let filter = log_filter(settings);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match settings.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal()))
            .try_init(),
    };
}

/// The process-wide Prometheus recorder (installed once; later calls get the same handle).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("hookgate_store_commit_seconds".into()),
                    &[
                        0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ],
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("hookgate_store_batch_size".into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
                    )
                });
            let builder = match builder {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "metric buckets rejected; using summaries");
                    PrometheusBuilder::new()
                }
            };
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed; the handle still renders ours.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed");
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "hookgate_requests_total",
        "Requests to source routes, by source and status code."
    );
    metrics::describe_counter!(
        "hookgate_verification_failures_total",
        "Requests that failed verification, by source and scheme."
    );
    metrics::describe_counter!(
        "hookgate_flows_interrupted_total",
        "Valid Kratos payloads a respond rule refused (answered 400, not stored), by source."
    );
    metrics::describe_histogram!(
        "hookgate_store_commit_seconds",
        metrics::Unit::Seconds,
        "Time to write and commit one group-commit batch."
    );
    metrics::describe_histogram!(
        "hookgate_store_batch_size",
        "Events per group-commit batch."
    );
    metrics::describe_gauge!(
        "hookgate_requests_in_flight",
        "Source requests being handled now."
    );
    metrics::describe_gauge!(
        "hookgate_store_events",
        "Events in the store (store.retention deletes the old ones)."
    );
    metrics::describe_gauge!(
        "hookgate_store_bytes",
        metrics::Unit::Bytes,
        "The store's size on disk: the database file and its WAL."
    );
}
