//! The tower layers around each listener's router, in the order a request meets them.
//!
//! `ServiceBuilder` reads top to bottom in the order a request goes through: the first layer
//! listed is the outermost. What happens inside a source's route (verification, parsing,
//! storing) is `crate::receive`'s pipeline.

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::{BoxError, Router};
use http::{HeaderName, StatusCode};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, OnResponse, TraceLayer};
use tracing::{Level, Span};

use super::problem::{problem, unavailable};
use crate::config::ServerSettings;
use crate::telemetry::traces;

/// The public listener: `router` (health routes and every source route) inside the layers.
///
/// `sensitive` lists the headers that carry credentials (`Authorization`, `Cookie`, each
/// source's key or signature header), hidden from anything that logs headers.
pub fn public(router: Router, server: &ServerSettings, sensitive: Vec<HeaderName>) -> Router {
    router.layer(
        ServiceBuilder::new()
            // 1. Credentials are marked sensitive before anything could log them.
            .layer(SetSensitiveRequestHeadersLayer::new(sensitive))
            // 2. Every request gets an `x-request-id` (the sender's, or a new UUID).
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            // 3. One span per request, carrying the request id; the source id is filled in by
            //    the source's route. Responses are logged at debug, failures at warn.
            //    With traces on (`telemetry.otlp`), the span is a server span whose parent
            //    is the request's `traceparent` ([`traced_request_span`]).
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request| {
                        if traces::on() && !is_probe(req.uri().path()) {
                            return traced_request_span(req);
                        }
                        let request_id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        tracing::info_span!(
                            "request",
                            request_id = %request_id,
                            method = %req.method(),
                            path = %logged_path(req.uri().path()),
                            source = tracing::field::Empty,
                        )
                    })
                    .on_response(Answered)
                    .on_failure(DefaultOnFailure::new().level(Level::WARN)),
            )
            // 4. The request id goes back in the answer.
            .layer(PropagateRequestIdLayer::x_request_id())
            // 5. A panic (a bug) answers 500 rather than dropping the connection.
            .layer(CatchPanicLayer::custom(|_| internal_error()))
            // 6–8. Past `server.max_concurrent_requests` a request is shed at once with 503 and
            //      `Retry-After`, before its body is read (memory stays bounded).
            .layer(HandleErrorLayer::new(overloaded))
            .load_shed()
            .concurrency_limit(server.max_concurrent_requests)
            // 9. The whole request, body upload included, within `server.request_timeout` (408).
            //    (The request head has its own timer in the accept loop.)
            .layer(from_fn_with_state(
                server.request_timeout.0,
                request_timeout,
            )),
    )
}

/// The health probes, never traced (a probe every few seconds would bury the events).
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// The request span with traces on: the log span's fields, plus what makes it an OpenTelemetry
/// server span (`otel.name` "POST /path", with a registered hook's id as `{id}`), the fields
/// the source route and the answer fill in, and the incoming `traceparent` as its parent.
fn traced_request_span(req: &Request) -> Span {
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let path = req.uri().path();
    let route = if path.starts_with("/hooks/") {
        "/hooks/{id}"
    } else {
        path
    };
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{} {route}", req.method()),
        otel.kind = "server",
        request_id = %request_id,
        method = %req.method(),
        path = %logged_path(path),
        source = tracing::field::Empty,
        hookgate.source = tracing::field::Empty,
        hookgate.event_id = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    traces::set_parent_from_headers(&span, req.headers());
    span
}

/// What the answer leaves on the request span: a debug line, and with traces on its status
/// (a 5xx marks the span an error).
#[derive(Clone, Copy)]
struct Answered;

impl<B> OnResponse<B> for Answered {
    fn on_response(self, res: &http::Response<B>, latency: Duration, span: &Span) {
        if traces::on() {
            let status = res.status();
            span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                span.record("otel.status_code", "ERROR");
            }
        }
        DefaultOnResponse::new()
            .level(Level::DEBUG)
            .on_response(res, latency, span);
    }
}

/// Hex digits of a registered hook's id kept in logs: enough to tell hooks apart, far from
/// enough to reach one (the id of a hook without verification is its only credential).
pub const LOGGED_HOOK_ID: usize = 8;

/// The request path as logged: a registered hook's (`/hooks/{id}`) with its id cut short.
fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    match path.strip_prefix("/hooks/") {
        Some(id) if id.len() > LOGGED_HOOK_ID => std::borrow::Cow::Owned(format!(
            "/hooks/{}…",
            id.get(..LOGGED_HOOK_ID).unwrap_or_default()
        )),
        _ => std::borrow::Cow::Borrowed(path),
    }
}

/// The admin listener: one debug span per request, with the path only (a query string may
/// carry what a caller should not have put there).
pub fn admin(router: Router) -> Router {
    router.layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
        tracing::debug_span!("admin", method = %req.method(), path = %req.uri().path())
    }))
}

fn internal_error() -> Response {
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal Server Error",
        "the request could not be handled",
    )
}

async fn overloaded(err: BoxError) -> Response {
    if err.is::<tower::load_shed::error::Overloaded>() {
        unavailable("hookgate is at its concurrency limit; retry shortly", 1)
    } else {
        tracing::error!(error = %err, "unexpected middleware error");
        internal_error()
    }
}

async fn request_timeout(State(timeout): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => problem(
            StatusCode::REQUEST_TIMEOUT,
            "Request Timeout",
            "the request took longer than the server's request timeout",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hooks_id_is_cut_short_in_the_logged_path_and_other_paths_are_kept() {
        assert_eq!(
            logged_path("/hooks/0123456789abcdef0123456789abcdef"),
            "/hooks/01234567…"
        );
        assert_eq!(logged_path("/identus/events"), "/identus/events");
        assert_eq!(logged_path("/hooks/short"), "/hooks/short");
    }
}
