//! The receive pipeline: every step of a request to a source's path, in order, and what each
//! step can answer. Before these steps the request went through the accept loop and the layer
//! stack (`crate::http`), which can answer 408, 431 and 503 themselves.
//!
//! | # | step | in | can answer |
//! |---|------|----|------------|
//! | 1 | count and label the request (source id in the span, in-flight gauge) | [`handle`] | — |
//! | 2 | the method must be `POST` | [`verify`] | 405 with `Allow: POST` |
//! | 3 | the credential in the headers (`api_key`, `basic`, `bearer`); for `standard_webhooks` and `hmac` with `timestamp`, the signature headers' presence and the timestamp's tolerance | [`verify`] | 401 |
//! | 4 | read the body once, under the source's limit | [`verify`] ([`super::body`]) | 413, 400 (unreadable, bad `Content-Length`) |
//! | 5 | the signature over the exact bytes (`abp_signature`, `standard_webhooks`, `hmac`) | [`verify`] | 401 |
//! | 6 | the content type must be JSON | [`receive`] | 415 |
//! | 7 | the kind parses and validates the body, finds its dedupe key | [`receive`] | 400 (not JSON), 422 (does not fit) |
//! | 7b | the kind decides the answer before the store ([`crate::sources::Kind::decide`]): a Kratos `respond` rule interrupts the flow, unstored | [`receive`] | 400 (Kratos `messages`) |
//! | 8 | append to the store and wait for the commit (group commit; with traces on, in a `store commit` span, and the request span's trace context stored with the event) | [`receive`] | 503 `Retry-After: 1` (queue full), 503 `Retry-After: 5` (commit failed) |
//! | 9 | answer, with `Hookgate-Event-Id` (a retry gets the first copy's id): the kind's accepted answer, or the one it decided in 7b (a Kratos patch) | [`receive`] | 200 |
//!
//! A registered hook (`/hooks/{id}`, [`super::hooks`]) is a [`Source`] like any other, found by
//! its id before step 1; its dedupe key (step 7) is the kind's prefixed with the hook's id, so
//! that retries are recognised per hook.
//!
//! Every refusal after step 1 is written by the source's kind ([`crate::sources::Kind::refused`]),
//! in its sender's language, except 401 (one body for every reason) and 405.
//! Steps 2–5 are the verifier, in front of the kind's handler (6–9): [`receive`] takes a
//! [`Verified`] request, which only [`verify`] makes.

use axum::extract::Request;
use axum::response::Response;
use http::request::Parts;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use tracing::Instrument as _;

use super::body::{read_body, require_json};
use super::metrics::InFlight;
use super::source::Source;
use crate::http::problem::{problem, unavailable};
use crate::sources::kind::Decision;
use crate::store::{Appended, EventId, NewEvent, StoreError};
use crate::telemetry::traces;
use crate::verify::{Failure, VerifiedBody};

/// The header every accepted answer carries.
pub const EVENT_ID_HEADER: &str = "hookgate-event-id";

/// A request that passed the verifier: its head, and its body as verified bytes.
pub struct Verified {
    /// Method, URI, headers.
    pub parts: Parts,
    /// The exact body.
    pub body: VerifiedBody,
}

/// A request to a source's path: steps 1–9, the verifier in front of the kind's handler.
pub async fn handle(src: &Source, req: Request) -> Response {
    let _in_flight = InFlight::start();
    let span = tracing::Span::current();
    span.record("source", &*src.id);
    if traces::on() {
        span.record("hookgate.source", &*src.id);
    }
    let res = match verify(src, req).await {
        Ok(verified) => receive(src, verified).await,
        Err(refused) => refused,
    };
    src.metrics.count(res.status());
    res
}

/// The verifier (steps 2–5): method, header credential, body under the limit, body signature.
///
/// # Errors
/// The answer to a request that does not get through (405, 401, 413, 400).
pub async fn verify(src: &Source, req: Request) -> Result<Verified, Response> {
    if req.method() != http::Method::POST {
        // Say what the route takes rather than asking for credentials it would not use.
        let mut res = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
            "webhooks are delivered with POST",
        );
        res.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
        return Err(res);
    }
    let (parts, body) = req.into_parts();
    let checked = src
        .verifier
        .check_headers(&parts.headers)
        .map_err(|f| reject(src, &parts.headers, f))?;
    let bytes = read_body(body, &parts.headers, src.body_limit)
        .await
        .map_err(|e| {
            tracing::info!(source = %src.id, problem = e.summary(), limit = src.body_limit, "body refused");
            src.kind.refused(e)
        })?;
    let body = src
        .verifier
        .check_body(checked, &parts.headers, bytes)
        .map_err(|f| reject(src, &parts.headers, f))?;
    Ok(Verified { parts, body })
}

fn reject(src: &Source, headers: &HeaderMap, failure: Failure) -> Response {
    let scheme = src.verifier.scheme();
    src.metrics.verification_failures.increment(1);
    // What was expected, and (for a missing credential) the header names that came instead:
    // enough to see a misconfigured sender from the log, and never a value.
    let expected = src.verifier.expects();
    if failure == Failure::Missing {
        tracing::warn!(
            source = %src.id,
            scheme,
            reason = %failure,
            expected = %expected,
            headers_present = %header_names(headers),
            "request failed verification"
        );
    } else {
        tracing::warn!(source = %src.id, scheme, reason = %failure, expected = %expected, "request failed verification");
    }
    src.verifier.unauthorized(headers)
}

/// Most header names listed in a log line.
const LOGGED_HEADER_NAMES: usize = 24;

/// The request's header names (not values), comma-separated, for a log line.
fn header_names(headers: &HeaderMap) -> String {
    let mut out = String::new();
    for (i, name) in headers.keys().enumerate() {
        if i == LOGGED_HEADER_NAMES {
            out.push_str(", …");
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(name.as_str());
    }
    out
}

/// The kind's handler (steps 6–9): content type, parse, store, answer.
pub async fn receive(src: &Source, Verified { parts, body }: Verified) -> Response {
    let headers = &parts.headers;
    if let Err(e) = require_json(headers) {
        tracing::info!(
            source = %src.id,
            content_type = headers
                .get(http::header::CONTENT_TYPE)
                .map_or("(none)", |v| v.to_str().map_or("(not text)", |t| t.get(..100).unwrap_or(t))),
            "payload refused: 415, the content type is not JSON (send Content-Type: application/json)"
        );
        return src.kind.refused(e);
    }
    let body = body.into_bytes();
    let parsed = match src.kind.parse(headers, &body) {
        Ok(p) => p,
        Err(e) => {
            // Only where the problem is: the details may quote values from the body.
            tracing::info!(source = %src.id, problem = e.summary(), "payload refused");
            tracing::debug!(source = %src.id, error = ?e, "payload refused (details)");
            return src.kind.refused(e);
        }
    };
    let answer = match src.kind.decide(&body) {
        Decision::Store(answer) => answer,
        Decision::Interrupt { answer, why } => {
            src.metrics.interrupted.increment(1);
            tracing::info!(source = %src.id, why, "flow interrupted; event not stored");
            return answer;
        }
    };
    let received_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let event_type = parsed.event_type;
    let traced = traces::on();
    let event = NewEvent {
        deliveries: src.deliveries_for(event_type.as_deref()),
        id: EventId::new(),
        source: src.id.clone(),
        kind: src.kind.name(),
        event_type,
        dedupe_key: src.dedupe_key(parsed.dedupe_key),
        sender_id: parsed.sender_id,
        received_at,
        headers: src.stored_headers(headers),
        body,
        projection: parsed.projection,
        // The request span's context, the parent of the delivery attempts' spans.
        trace_context: if traced {
            traces::stored_context(&tracing::Span::current())
        } else {
            None
        },
    };
    // The accepted line needs these after the event has moved into the store; copy them only
    // when that line will be written.
    let logged = tracing::enabled!(tracing::Level::INFO)
        .then(|| (event.event_type.clone(), event.sender_id.clone()));
    let stored = if traced {
        append_traced(src, event).await
    } else {
        src.store.append(event).await
    };
    match stored {
        Ok(appended) => {
            if let Some((event_type, sender_id)) = logged {
                tracing::info!(
                    source = %src.id,
                    event_type = event_type.as_deref().unwrap_or(""),
                    event_id = %appended.event_id,
                    sender_id = sender_id.as_deref().unwrap_or(""),
                    duplicate = appended.duplicate,
                    "event accepted"
                );
            }
            let mut res =
                answer.unwrap_or_else(|| src.kind.accepted(appended.event_id, appended.duplicate));
            let mut buf = uuid::Uuid::encode_buffer();
            let id = appended.event_id.0.hyphenated().encode_lower(&mut buf);
            if let Ok(v) = HeaderValue::from_str(id) {
                res.headers_mut()
                    .insert(HeaderName::from_static(EVENT_ID_HEADER), v);
            }
            res
        }
        Err(StoreError::Busy) => {
            tracing::warn!(source = %src.id, "store queue full; answering 503");
            unavailable("the store is busy; retry shortly", 1)
        }
        Err(e) => {
            tracing::error!(source = %src.id, error = %e, "event could not be stored; answering 503");
            unavailable("the event could not be stored; retry later", 5)
        }
    }
}

/// Step 8 with traces on: the append in a `store commit` span (child of the request span: the
/// wait for the group commit as this request sees it), and the event id on both spans.
async fn append_traced(src: &Source, event: NewEvent) -> Result<Appended, StoreError> {
    let commit = tracing::info_span!(
        "store commit",
        otel.kind = "internal",
        hookgate.source = &*src.id,
        hookgate.event_id = tracing::field::Empty,
        hookgate.duplicate = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    let stored = src.store.append(event).instrument(commit.clone()).await;
    match &stored {
        Ok(appended) => {
            let id = tracing::field::display(appended.event_id);
            commit.record("hookgate.event_id", &id);
            commit.record("hookgate.duplicate", appended.duplicate);
            tracing::Span::current().record("hookgate.event_id", &id);
        }
        Err(e) => {
            commit.record("otel.status_code", "ERROR");
            commit.record(
                "error.type",
                match e {
                    StoreError::Busy => "busy",
                    _ => "unavailable",
                },
            );
        }
    }
    stored
}
