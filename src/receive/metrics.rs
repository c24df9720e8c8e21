//! Request metrics: `hookgate_requests_total{source,status}`,
//! `hookgate_verification_failures_total{source,scheme}`,
//! `hookgate_flows_interrupted_total{source}`, `hookgate_requests_in_flight`.
//!
//! A source's handles are registered when the source is built, whether at start or when it is
//! added at run time, so the request path does no registry lookup and builds no label strings.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use http::StatusCode;

/// A source's answers since this process started, by class, for the admin overview
/// (`/admin/sources`): Prometheus counters cannot be read back. Shared by every instance of a
/// source id (each registered hook is a source `hooks` of its own).
#[derive(Debug, Default)]
pub struct AnswerCounts {
    ok: AtomicU64,
    unauthorized: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
}

/// What [`AnswerCounts`] has counted: 2xx, 401, every 4xx (401 included), 5xx.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Answers {
    /// 2xx answers.
    pub ok: u64,
    /// 401 answers (failed verification).
    pub unauthorized: u64,
    /// 4xx answers, 401 included.
    pub client_errors: u64,
    /// 5xx answers.
    pub server_errors: u64,
}

impl AnswerCounts {
    fn count(&self, status: StatusCode) {
        let class = match status.as_u16() {
            200..=299 => &self.ok,
            400..=499 => {
                if status == StatusCode::UNAUTHORIZED {
                    self.unauthorized.fetch_add(1, Ordering::Relaxed);
                }
                &self.client_errors
            }
            500..=599 => &self.server_errors,
            _ => return,
        };
        class.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn read(&self) -> Answers {
        Answers {
            ok: self.ok.load(Ordering::Relaxed),
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            client_errors: self.client_errors.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
        }
    }
}

/// The answer counts of source `id` (made at its first use; looked up when a source is built,
/// never per request).
pub fn answer_counts(id: &str) -> Arc<AnswerCounts> {
    static ALL: OnceLock<Mutex<HashMap<Arc<str>, Arc<AnswerCounts>>>> = OnceLock::new();
    let mut all = ALL
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    all.entry(Arc::from(id)).or_default().clone()
}

/// Metric handles of one source, registered at start-up so the request path does no registry
/// lookup and builds no label strings.
pub struct SourceMetrics {
    source: metrics::SharedString,
    by_status: Vec<(StatusCode, metrics::Counter)>,
    /// `hookgate_verification_failures_total{source, scheme}`.
    pub verification_failures: metrics::Counter,
    /// `hookgate_flows_interrupted_total{source}`: valid payloads a kind refused to store (a
    /// Kratos `respond` rule matched; answered 400). One series per source, not per rule.
    pub interrupted: metrics::Counter,
    /// This process's answers by class, for `/admin/sources`.
    answers: Arc<AnswerCounts>,
}

impl SourceMetrics {
    /// The statuses a source answers; others are counted through the registry.
    const STATUSES: [&'static str; 10] = [
        "200", "400", "401", "405", "408", "413", "415", "422", "500", "503",
    ];

    /// Registers the handles of source `id` (at start, or when a source is added at run time).
    pub fn new(id: &Arc<str>, scheme: &'static str) -> Self {
        let source = metrics::SharedString::from(id.clone());
        let by_status = Self::STATUSES
            .iter()
            .filter_map(|code| {
                let status = StatusCode::from_bytes(code.as_bytes()).ok()?;
                let counter = metrics::counter!("hookgate_requests_total", "source" => source.clone(), "status" => *code);
                Some((status, counter))
            })
            .collect();
        let verification_failures = metrics::counter!(
            "hookgate_verification_failures_total",
            "source" => source.clone(),
            "scheme" => scheme
        );
        let interrupted =
            metrics::counter!("hookgate_flows_interrupted_total", "source" => source.clone());
        Self {
            answers: answer_counts(id),
            source,
            by_status,
            verification_failures,
            interrupted,
        }
    }

    /// Counts one answer.
    pub fn count(&self, status: StatusCode) {
        self.answers.count(status);
        match self.by_status.iter().find(|(s, _)| *s == status) {
            Some((_, counter)) => counter.increment(1),
            None => metrics::counter!(
                "hookgate_requests_total",
                "source" => self.source.clone(),
                "status" => status.as_u16().to_string()
            )
            .increment(1),
        }
    }
}

/// The in-flight gauge, registered once (a registry lookup per request otherwise).
fn in_flight() -> &'static metrics::Gauge {
    static GAUGE: OnceLock<metrics::Gauge> = OnceLock::new();
    GAUGE.get_or_init(|| metrics::gauge!("hookgate_requests_in_flight"))
}

/// Counts a request in flight for as long as it lives (dropped with a timed-out request too).
pub struct InFlight(());

impl InFlight {
    /// One more request in flight.
    pub fn start() -> Self {
        in_flight().increment(1.0);
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        in_flight().decrement(1.0);
    }
}
