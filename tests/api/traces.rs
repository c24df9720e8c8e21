//! Traces (`telemetry.otlp`, README "Traces (OpenTelemetry)"): the real binary exports its
//! spans over OTLP/HTTP to a local collector (a [`Sink`] that takes `POST /v1/traces`, decoded
//! here with the OTLP protobuf types), and the span tree of one event is checked from the
//! sender's request to each delivery attempt, and the `traceparent` the destination got.
//! Without an endpoint, nothing is traced and nothing is propagated.
//!
//! The binary, not an in-process application: traces are process-wide (one subscriber), and
//! the other tests of this process run without them. On both backends (the store of the binary
//! is the suite's PostgreSQL when `HOOKGATE_TEST_BACKEND=postgres`).

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::{Span, status::StatusCode};
use prost::Message as _;

use crate::helpers::{
    IDENTUS_TOKEN, PgSchemaGuard, connection_event, pg_execute, postgres_base, start_binary_with,
};
use crate::sink::{Mode, Received, Sink};

/// The sender's own trace: its trace id and the id of its span that sent the request.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// A collector credential: sent with every export, never in a log line or a span.
const OTLP_TOKEN: &str = "otlp-token-s3cret-0001";

/// The store the binary uses: `store.url` of its file (SQLite in its folder), or a schema of
/// its own on the suite's PostgreSQL (dropped with the guard).
fn store_env(test: &str) -> (Option<PgSchemaGuard>, Vec<(&'static str, String)>) {
    let Some(base) = postgres_base() else {
        return (None, Vec::new());
    };
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let schema = format!("hg_api_{}_trc{tag}", std::process::id());
    pg_execute(&base, &format!("CREATE SCHEMA {schema}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
    println!("{test}: on PostgreSQL");
    (
        Some(PgSchemaGuard { base, schema }),
        vec![("HOOKGATE__STORE__URL", url)],
    )
}

/// Every span the collector got, in arrival order, with the `service.name` of its resource.
fn exported(collector: &[Received]) -> Vec<(String, Span)> {
    let mut out = Vec::new();
    for r in collector {
        assert_eq!(
            r.path, "/v1/traces",
            "the traces path is appended to the endpoint"
        );
        assert_eq!(r.header("content-type"), "application/x-protobuf");
        let request = ExportTraceServiceRequest::decode(r.body.as_ref())
            .expect("an OTLP/HTTP protobuf export");
        for resource in request.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| text(kv.value.as_ref()?.value.as_ref()?))
                .unwrap_or_default();
            for scope in resource.scope_spans {
                for span in scope.spans {
                    out.push((service.clone(), span));
                }
            }
        }
    }
    out
}

fn text(v: &Value) -> Option<String> {
    Some(match v {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        Value::BoolValue(b) => b.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        _ => return None,
    })
}

/// The attribute `key` of `span`, as text.
fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| text(kv.value.as_ref()?.value.as_ref()?))
}

fn id(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// The spans the collector has once one named `name` has arrived `n` times (the batch
/// processor sends every 2 s at most).
async fn spans_until(collector: &Sink, name: &str, n: usize) -> Vec<(String, Span)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let spans = exported(&collector.requests());
        if spans.iter().filter(|(_, s)| s.name == name).count() >= n {
            return spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} `{name}` span(s) not exported in 30 s; got {:?}",
            spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One event, sent with the sender's `traceparent`, delivered to an HTTP destination that
/// fails once and then takes it: the request span is a server span whose parent is the
/// sender's span, in the sender's trace; the store commit is its child; both delivery
/// attempts are its children in the same trace, with the event id and what came of each; the
/// destination got each attempt's own `traceparent`; the collector got its credential; no
/// span and no log line holds the body or a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_is_one_trace_from_the_senders_request_to_each_delivery_attempt() {
    let test = "one_event_is_one_trace_from_the_senders_request_to_each_delivery_attempt";
    let (_schema, env) = store_env(test);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let tmp = tempfile::tempdir().unwrap();
    let collector = Sink::start().await;
    let destination = Sink::start().await;
    destination.script(vec![Mode::Fail]);
    let endpoint = collector.url("");
    let yaml = format!(
        "telemetry:\n  otlp:\n    endpoint: {endpoint}\n    service_name: hookgate-test\n    \
         headers: {{ Authorization: \"Bearer {OTLP_TOKEN}\" }}\n\
         destinations:\n  app:\n    kind: http\n    url: {}\n    retry: [200ms, 200ms]\n",
        destination.url("/in")
    );
    let bin = start_binary_with(tmp.path(), &env, &[], &yaml);

    // The sender's request, in the sender's trace.
    let marker = uuid::Uuid::new_v4().to_string();
    let body = connection_event(
        &uuid::Uuid::new_v4().to_string(),
        &marker,
        "ConnectionResponseSent",
        "2024-05-01T10:20:30.123456Z",
    );
    let client = reqwest::Client::new();
    let res = client
        .post(format!("http://{}/identus/events", bin.public))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {IDENTUS_TOKEN}"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .header("tracestate", "vendor=abc")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let event_id = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    let delivered = destination.wait_for(2, Duration::from_secs(20)).await;
    let spans = spans_until(&collector, "deliver app", 2).await;

    // Every span is the configured service's, in the sender's trace.
    let of_event: Vec<&Span> = spans
        .iter()
        .filter(|(_, s)| attr(s, "hookgate.event_id").as_deref() == Some(event_id.as_str()))
        .map(|(_, s)| s)
        .collect();
    assert_eq!(
        of_event.len(),
        4,
        "request, store commit, two attempts: {:#?}",
        spans
            .iter()
            .map(|(_, s)| (&s.name, attr(s, "hookgate.event_id")))
            .collect::<Vec<_>>()
    );
    assert!(spans.iter().all(|(service, _)| service == "hookgate-test"));
    assert!(
        of_event.iter().all(|s| id(&s.trace_id) == TRACE_ID),
        "one trace, the sender's"
    );

    // The request: a server span, child of the sender's span.
    let request = of_event
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("a server span");
    assert_eq!(request.name, "POST /identus/events");
    assert_eq!(id(&request.parent_span_id), PARENT_ID);
    assert_eq!(attr(request, "hookgate.source").as_deref(), Some("identus"));
    assert_eq!(
        attr(request, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        request.trace_state, "vendor=abc",
        "the sender's tracestate is kept"
    );
    let request_id = id(&request.span_id);

    // The store commit, as the request saw it: its child.
    let commit = of_event
        .iter()
        .find(|s| s.name == "store commit")
        .expect("a store commit span");
    assert_eq!(id(&commit.parent_span_id), request_id);
    assert_eq!(attr(commit, "hookgate.duplicate").as_deref(), Some("false"));
    assert!(commit.start_time_unix_nano >= request.start_time_unix_nano);
    assert!(commit.end_time_unix_nano <= request.end_time_unix_nano);

    // Each attempt: a client span, child of the request span, with what came of it.
    let mut attempts: Vec<&Span> = of_event
        .iter()
        .filter(|s| s.name == "deliver app")
        .copied()
        .collect();
    attempts.sort_by_key(|s| attr(s, "hookgate.attempt"));
    let expected = [
        ("1", "retrying", "500", StatusCode::Error),
        ("2", "delivered", "200", StatusCode::Unset),
    ];
    for (span, (number, outcome, status, code)) in attempts.iter().zip(expected) {
        assert_eq!(span.kind, SpanKind::Client as i32);
        assert_eq!(id(&span.parent_span_id), request_id, "attempt {number}");
        assert_eq!(attr(span, "hookgate.attempt").as_deref(), Some(number));
        assert_eq!(attr(span, "hookgate.destination").as_deref(), Some("app"));
        assert_eq!(attr(span, "hookgate.source").as_deref(), Some("identus"));
        assert_eq!(attr(span, "hookgate.outcome").as_deref(), Some(outcome));
        assert_eq!(
            attr(span, "http.response.status_code").as_deref(),
            Some(status)
        );
        assert_eq!(
            span.status.as_ref().map_or(0, |s| s.code),
            code as i32,
            "attempt {number}: {:?}",
            span.status
        );
    }

    // The destination got each attempt's own context: the sender's trace, the attempt's span.
    assert_eq!(delivered.len(), 2);
    for (r, span) in delivered.iter().zip(&attempts) {
        assert_eq!(
            r.header("hookgate-attempt"),
            attr(span, "hookgate.attempt").unwrap()
        );
        assert_eq!(
            r.header("traceparent"),
            format!("00-{TRACE_ID}-{}-01", id(&span.span_id))
        );
        assert_eq!(r.header("tracestate"), "vendor=abc");
    }

    // The collector got its credential; no span holds the body, the sender's or the
    // collector's secret.
    for r in collector.requests() {
        assert_eq!(r.header("authorization"), format!("Bearer {OTLP_TOKEN}"));
        let bytes = String::from_utf8_lossy(&r.body).to_string();
        for secret in [marker.as_str(), IDENTUS_TOKEN, OTLP_TOKEN] {
            assert!(!bytes.contains(secret), "an export holds {secret}");
        }
    }

    // SIGTERM: the spans still queued are flushed, and the logs never showed the secret.
    bin.signal("TERM");
    let mut lines = Vec::new();
    while let Ok(line) = bin.logs.recv_timeout(Duration::from_secs(10)) {
        lines.push(line);
    }
    assert!(bin.wait().await.success());
    assert!(
        lines
            .iter()
            .any(|l| l.contains("all pending writes committed")),
        "hookgate stopped cleanly: {lines:#?}"
    );
    assert!(lines.iter().all(|l| !l.contains(OTLP_TOKEN)));
}

/// With the endpoint emptied (`HOOKGATE__TELEMETRY__OTLP__ENDPOINT=`, over a file that sets
/// it) traces are off: the destination gets no `traceparent`, not even the sender's (hookgate,
/// not tracing, is no hop of the sender's trace), and nothing reaches the collector, not even
/// at shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_endpoint_emptied_nothing_is_exported_and_no_traceparent_is_sent_on() {
    let test = "with_the_endpoint_emptied_nothing_is_exported_and_no_traceparent_is_sent_on";
    let (_schema, mut env) = store_env(test);
    env.push(("HOOKGATE__TELEMETRY__OTLP__ENDPOINT", String::new()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let tmp = tempfile::tempdir().unwrap();
    let collector = Sink::start().await;
    let destination = Sink::start().await;
    let yaml = format!(
        "telemetry:\n  otlp:\n    endpoint: {}\n\
         destinations:\n  app:\n    kind: http\n    url: {}\n",
        collector.url(""),
        destination.url("/in")
    );
    let bin = start_binary_with(tmp.path(), &env, &[], &yaml);
    let body = connection_event(
        &uuid::Uuid::new_v4().to_string(),
        &uuid::Uuid::new_v4().to_string(),
        "ConnectionResponseSent",
        "2024-05-01T10:20:30.123456Z",
    );
    let res = reqwest::Client::new()
        .post(format!("http://{}/identus/events", bin.public))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {IDENTUS_TOKEN}"))
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let delivered = destination.wait_for(1, Duration::from_secs(20)).await;
    let headers: HashMap<&str, &str> = delivered[0]
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
        .collect();
    assert!(headers.contains_key("hookgate-event-id"), "{headers:?}");
    assert!(
        !headers.contains_key("traceparent") && !headers.contains_key("tracestate"),
        "{headers:?}"
    );
    bin.signal("TERM");
    assert!(bin.wait().await.success());
    assert!(
        collector.requests().is_empty(),
        "exported: {:?}",
        collector.requests()
    );
}
