//! `GET /healthz` (the process answers) and `GET /readyz` (the store can be read and written).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::problem::unavailable;
use crate::store::Store;

/// The two health routes.
pub fn router(store: Arc<dyn Store>) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz).with_state(store))
}

async fn readyz(State(store): State<Arc<dyn Store>>) -> Response {
    match store.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            unavailable("the store is not reachable", 5)
        }
    }
}
