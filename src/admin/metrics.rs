//! `GET /metrics`: the Prometheus metrics, without the token (the admin listener is internal).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::HeaderValue;
use http::header::CONTENT_TYPE;

use super::state::AdminState;

/// `GET /metrics`: the Prometheus metrics (no token: the admin listener is internal).
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Metrics in the Prometheus text format (0.0.4); names start with `hookgate_`", body = String, content_type = "text/plain"),
    ),
)]
pub(super) async fn metrics(State(state): State<AdminState>) -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}
