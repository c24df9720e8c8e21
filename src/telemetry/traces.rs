//! Traces: the `tracing` spans of a request, its store commit and its delivery attempts,
//! exported as OpenTelemetry spans over OTLP/HTTP (protobuf) when `telemetry.otlp.endpoint` is
//! set (README "Traces (OpenTelemetry)").
//!
//! Off (no endpoint), nothing here runs: no layer is installed, [`on`] is false, and the
//! request path, which asks [`on`] before anything else, parses no `traceparent`, makes no
//! span of its own and stores no trace context.
//!
//! On, the spans are joined across time and processes by the W3C trace context:
//! - the `request` span (server) takes the incoming `traceparent`/`tracestate` as its parent
//!   ([`set_parent_from_headers`]);
//! - its context is stored with the event ([`stored_context`]), so that each delivery attempt,
//!   made later, maybe by another replica or after a restart, is its child
//!   ([`set_stored_parent`]);
//! - each attempt's own context goes to the destination as `traceparent`/`tracestate`
//!   ([`propagation_headers`]).
//!
//! The exporter posts with the reqwest 0.12 client hookgate already has ([`Export`]), on the
//! main runtime; the SDK's batch span processor (a thread of its own, a bounded queue that
//! drops spans when full rather than wait) hands it the batches. [`shutdown`] flushes it.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderMap;
use opentelemetry::KeyValue;
use opentelemetry::propagation::{Injector, TextMapPropagator as _};
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_http::{HeaderExtractor, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracerProvider, SpanLimits, Tracer,
};
use secrecy::ExposeSecret as _;
use tracing::{Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::config::{OtlpSettings, redact_url};

/// The W3C `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C `tracestate` header.
pub const TRACESTATE: &str = "tracestate";

/// Spans waiting for export at most; past it new spans are dropped (never waited for).
const QUEUE: usize = 8192;
/// Spans per export at most.
const BATCH: usize = 512;
/// How long a span waits for its batch at most.
const DELAY: Duration = Duration::from_secs(2);
/// Bytes of a collector's answer read at most (an OTLP answer is a few bytes).
const ANSWER_BYTES: usize = 64 * 1024;
/// How long the final flush at shutdown may take.
const FLUSH: Duration = Duration::from_secs(5);

static ON: AtomicBool = AtomicBool::new(false);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether traces are exported by this process (`telemetry.otlp.endpoint` set and the
/// exporter installed). One relaxed load: the request path asks it before any trace work.
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The exporter and its tracer for `settings`, not yet installed. Must be called on the
/// runtime that will carry the exports.
///
/// # Errors
/// No runtime, or the exporter or its client cannot be built (the message names the field).
pub fn pipeline(settings: &OtlpSettings) -> Result<(SdkTracerProvider, Tracer), String> {
    let url = settings
        .traces_url()
        .ok_or_else(|| "telemetry.otlp.endpoint: is not set".to_string())?;
    let main = tokio::runtime::Handle::try_current()
        .map_err(|_| "telemetry.otlp: traces need the async runtime (a bug)".to_string())?;
    let client = reqwest::Client::builder()
        .timeout(settings.timeout.0)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hookgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("telemetry.otlp: the HTTP client could not be built: {e}"))?;
    let headers: HashMap<String, String> = settings
        .headers
        .iter()
        .map(|(name, value)| (name.clone(), value.expose_secret().to_string()))
        .collect();
    let exporter = SpanExporter::builder()
        .with_http()
        .with_http_client(Export { client, main })
        .with_endpoint(url)
        .with_protocol(Protocol::HttpBinary)
        .with_timeout(settings.timeout.0)
        .with_headers(headers)
        .build()
        .map_err(|e| {
            format!(
                "telemetry.otlp.endpoint: the exporter to {} could not be built: {e}",
                redact_url(settings.endpoint.as_deref().unwrap_or_default())
            )
        })?;
    // Every batch setting given, so that no OTEL_BSP_* variable changes them.
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(QUEUE)
        .with_max_export_batch_size(BATCH)
        .with_scheduled_delay(DELAY)
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(exporter)
                .with_batch_config(batch)
                .build(),
        )
        // A trace's fate is its parent's when a `traceparent` brought one; else the ratio.
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_span_limits(SpanLimits::default())
        // No resource detector: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES change nothing.
        .with_resource(
            Resource::builder_empty()
                .with_service_name(settings.service_name.clone())
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build(),
        )
        .build();
    let tracer = provider.tracer("hookgate");
    Ok((provider, tracer))
}

/// The layer that turns hookgate's spans (not its log events, not other crates' spans) into
/// OpenTelemetry spans, with none of the extras that cost on every span (code location,
/// thread, busy/idle times, context activation on every enter).
pub fn layer<S>(tracer: Tracer) -> impl Layer<S> + Send + Sync
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_filter(HookgateSpans)
}

/// The spans the traces layer takes: hookgate's, at info or above; no event, no other crate's
/// span.
///
/// Its callsites are of interest "sometimes", never "always": then every span is decided by a
/// call of `enabled`, which tracing-subscriber's per-layer filtering needs. An "always"
/// callsite skips that call and reads the decision the previous one left on the thread; after
/// an `enabled!` check (the receive path makes one) that is this layer's "no" for the check,
/// and the span would be lost.
struct HookgateSpans;

impl HookgateSpans {
    fn takes(meta: &tracing::Metadata<'_>) -> bool {
        meta.is_span()
            && *meta.level() <= tracing::Level::INFO
            && meta.target().starts_with("hookgate")
    }
}

impl<S> tracing_subscriber::layer::Filter<S> for HookgateSpans {
    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        Self::takes(meta)
    }

    fn callsite_enabled(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        if Self::takes(meta) {
            tracing::subscriber::Interest::sometimes()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::INFO)
    }
}

/// Marks traces on, once the layer is installed; keeps `provider` for [`shutdown`].
pub fn started(provider: SdkTracerProvider) {
    if PROVIDER.set(provider).is_ok() {
        ON.store(true, Ordering::Relaxed);
    }
}

/// Exports the spans still queued (within a few seconds) and stops the exporter. Nothing when
/// traces are off.
pub async fn shutdown() {
    let Some(provider) = PROVIDER.get().cloned() else {
        return;
    };
    let flushed = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH)).await;
    match flushed {
        Ok(Ok(())) => tracing::debug!("traces flushed"),
        Ok(Err(e)) => tracing::warn!(error = %e, "the last traces could not all be exported"),
        Err(e) => tracing::warn!(error = %e, "the last traces could not be flushed"),
    }
}

/// The one propagator: W3C trace context (`traceparent`, `tracestate`).
fn propagator() -> &'static TraceContextPropagator {
    static P: OnceLock<TraceContextPropagator> = OnceLock::new();
    P.get_or_init(TraceContextPropagator::new)
}

/// Makes the trace context of a request's `traceparent` (and `tracestate`) the parent of
/// `span`, which must not have been entered yet. A missing or malformed `traceparent` leaves
/// `span` the root of a new trace.
pub fn set_parent_from_headers(span: &Span, headers: &HeaderMap) {
    if !headers.contains_key(TRACEPARENT) {
        return;
    }
    let cx = propagator().extract(&HeaderExtractor(headers));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The trace context of `span`, as stored with an event: a JSON object of the W3C headers
/// (`{"traceparent":"00-…-…-01"}`, with `tracestate` when there is one). `None` when the span
/// has no OpenTelemetry span (traces off).
pub fn stored_context(span: &Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = Outgoing(Vec::with_capacity(2));
    propagator().inject_context(&cx, &mut carrier);
    // Written straight into one buffer (a JSON object of strings, as `events.headers` is).
    let mut json = Vec::with_capacity(96);
    json.push(b'{');
    for (i, (name, value)) in carrier.0.iter().enumerate() {
        if i > 0 {
            json.push(b',');
        }
        // Writing a `&str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut json, name);
        json.push(b':');
        let _ = serde_json::to_writer(&mut json, value);
    }
    json.push(b'}');
    String::from_utf8(json).ok()
}

/// Makes the context [`stored_context`] wrote the parent of `span` (not entered yet). A
/// context that does not parse leaves `span` a root.
pub fn set_stored_parent(span: &Span, stored: &str) {
    let Ok(carrier) = serde_json::from_str::<HashMap<String, String>>(stored) else {
        return;
    };
    let cx = propagator().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The W3C headers that carry `span`'s own context to the next hop: `traceparent`, and
/// `tracestate` when the trace has one. Empty when the span has no OpenTelemetry span.
pub fn propagation_headers(span: &Span) -> Vec<(&'static str, String)> {
    let cx = span.context();
    let mut headers = Outgoing(Vec::with_capacity(2));
    if cx.span().span_context().is_valid() {
        propagator().inject_context(&cx, &mut headers);
    }
    headers.0
}

/// Collects the propagator's headers under their static names, leaving out empty ones.
struct Outgoing(Vec<(&'static str, String)>);

impl Injector for Outgoing {
    fn set(&mut self, key: &str, value: String) {
        // An empty `tracestate` says nothing: not sent, not stored.
        if value.is_empty() {
            return;
        }
        let name = match key {
            TRACEPARENT => TRACEPARENT,
            TRACESTATE => TRACESTATE,
            _ => return,
        };
        self.0.push((name, value));
    }
}

/// The exporter's HTTP client: hookgate's reqwest, run on the main runtime (the batch
/// processor's thread has none), no redirects, `telemetry.otlp.timeout` over each export.
#[derive(Debug)]
struct Export {
    client: reqwest::Client,
    main: tokio::runtime::Handle,
}

#[async_trait]
impl HttpClient for Export {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        self.main
            .spawn(async move {
                let mut answer = client.execute(request).await?;
                let mut response = Response::builder().status(answer.status());
                if let Some(headers) = response.headers_mut() {
                    *headers = std::mem::take(answer.headers_mut());
                }
                let mut body = Vec::new();
                while let Some(chunk) = answer.chunk().await? {
                    let room = ANSWER_BYTES.saturating_sub(body.len());
                    body.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
                    if body.len() >= ANSWER_BYTES {
                        break;
                    }
                }
                Ok(response.body(Bytes::from(body))?)
            })
            .await
            .map_err(|e| -> HttpError { Box::new(e) })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SpanData, SpanExporter};
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt as _;

    /// Keeps what it is given.
    #[derive(Debug, Clone, Default)]
    struct Kept(Arc<Mutex<Vec<SpanData>>>);

    impl SpanExporter for Kept {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    #[test]
    fn a_child_span_made_after_an_enabled_check_is_exported_as_its_child() {
        let kept = Kept::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(kept.clone())
            .build();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .boxed()
                    .with_filter(tracing_subscriber::EnvFilter::new("info")),
            )
            .with(layer(provider.tracer("t")));
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", hookgate.event_id = tracing::field::Empty);
            let mut headers = HeaderMap::new();
            headers.insert(
                TRACEPARENT,
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                    .parse()
                    .unwrap(),
            );
            set_parent_from_headers(&request, &headers);
            let _entered = request.enter();
            let stored = stored_context(&request).expect("a context");
            assert!(
                stored.starts_with(r#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-"#)
                    && stored.ends_with(r#"-01"}"#),
                "{stored}"
            );
            // An attempt, made later: a child of the request span, whatever is current.
            let attempt = tracing::info_span!(parent: None, "delivery attempt");
            set_stored_parent(&attempt, &stored);
            let sent = propagation_headers(&attempt);
            assert_eq!(sent.len(), 1, "{sent:?}");
            assert_eq!(sent[0].0, TRACEPARENT);
            assert!(
                sent[0]
                    .1
                    .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
            );
            drop(attempt);
            // As the receive path does just before its store commit span.
            let _ = tracing::enabled!(tracing::Level::INFO);
            let commit = tracing::info_span!("store commit", otel.kind = "internal");
            drop(commit.enter());
            commit.record("otel.kind", "internal");
            drop(commit);
        });
        let spans = kept.0.lock().unwrap();
        let names: Vec<&str> = spans.iter().map(|s| &*s.name).collect();
        assert_eq!(names, ["delivery attempt", "store commit", "request"]);
        let request = spans.iter().find(|s| s.name == "request").unwrap();
        for child in spans.iter().filter(|s| s.name != "request") {
            assert_eq!(
                child.parent_span_id,
                request.span_context.span_id(),
                "{}",
                child.name
            );
            assert_eq!(
                child.span_context.trace_id(),
                request.span_context.trace_id()
            );
        }
        assert_eq!(
            request.parent_span_id.to_string(),
            "00f067aa0ba902b7",
            "the sender's span"
        );
    }

    #[test]
    fn nothing_is_on_until_an_exporter_is_installed() {
        assert!(!on());
        let span = Span::none();
        assert_eq!(stored_context(&span), None);
        assert!(propagation_headers(&span).is_empty());
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        // No layer: nothing to set, and no panic.
        set_parent_from_headers(&span, &headers);
        set_stored_parent(&span, "not json");
    }
}
