//! The admin listener: the event and projection read API (bearer token), `/metrics`, the API's
//! OpenAPI description, and the console (a web page over the API).
//!
//! # Layout
//! - this file: the router, the token check.
//! - `metrics`: `/metrics` (no token).
//! - `openapi`: `/admin/openapi.json`, the OpenAPI 3.1 description of every route of the API
//!   (no token), generated from the handlers' attributes and the views' types.
//! - `console`: `/console`, the web page over this API (its files are built into the binary,
//!   in `console/`; served without the token, which the page asks for).
//! - `state`: what every route shares ([`AdminState`], the common answers).
//! - `events`: `/admin/events`, `/admin/events/{id}`, `/admin/events/{id}/raw`.
//! - `deliveries`: `/admin/destinations` (state, backlog, pause, resume, replay) and
//!   `/admin/deliveries` (each delivery with its attempts; retry one).
//! - `hooks`: `/admin/hooks` (register, list, show, delete registered hooks), and the `hook`
//!   of an event in the event views.
//! - `hook_secrets`: hook ids and generated secrets, from the OS random source.
//! - `sources`: `/admin/sources`: each source's events in the last hour and answers.
//! - `projections`: `/admin/kratos/identities[/{id}]`, `/admin/identus/{kind}[/{id}]`: one
//!   thing, or a list of them searched by e-mail, state or wallet.
//!
//! May call: `http`, `store`, `verify` (the token is a bearer credential), `config` (the
//! destinations, a hook's `verify` block), `sources` (a hook's kind), `receive` (a source's
//! answer counts).

mod console;
mod deliveries;
mod events;
mod hook_secrets;
mod hooks;
mod metrics;
mod openapi;
mod projections;
mod sources;
mod state;

use state::not_found;
pub use state::{AdminState, SourceSummary};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::Response;
use axum::routing::{delete, get, post};
use http::header::WWW_AUTHENTICATE;
use http::{HeaderValue, StatusCode};

use crate::http::problem::problem;

/// The admin router.
pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/admin/sources", get(sources::list))
        .route("/admin/events", get(events::list))
        .route("/admin/events/{id}", get(events::get))
        .route("/admin/events/{id}/raw", get(events::raw))
        .route(
            "/admin/kratos/identities",
            get(projections::kratos_identities),
        )
        .route(
            "/admin/kratos/identities/{id}",
            get(projections::kratos_identity),
        )
        .route("/admin/destinations", get(deliveries::destinations))
        .route("/admin/destinations/{id}/pause", post(deliveries::pause))
        .route("/admin/destinations/{id}/resume", post(deliveries::resume))
        .route("/admin/destinations/{id}/replay", post(deliveries::replay))
        .route("/admin/hooks", get(hooks::list).post(hooks::create))
        .route(
            "/admin/hooks/{id}",
            get(hooks::get).merge(delete(hooks::delete)),
        )
        .route("/admin/deliveries", get(deliveries::list))
        .route("/admin/deliveries/{id}", get(deliveries::get))
        .route("/admin/deliveries/{id}/retry", post(deliveries::retry))
        .route("/admin/identus/{kind}", get(projections::identus_records))
        .route(
            "/admin/identus/{kind}/{id}",
            get(projections::identus_record),
        )
        .route_layer(from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/metrics", get(metrics::metrics))
        .route("/admin/openapi.json", get(openapi::spec))
        .merge(console::router())
        .merge(api)
        .fallback(|| async { not_found("no such admin route") })
        .with_state(state)
}

async fn require_token(State(state): State<AdminState>, req: Request, next: Next) -> Response {
    if state.token.verify(req.headers()).is_ok() {
        return next.run(req).await;
    }
    tracing::warn!(path = %req.uri().path(), "admin request without a valid token");
    let mut res = problem(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "The request could not be authenticated.",
    );
    res.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static(r#"Bearer realm="hookgate-admin""#),
    );
    res
}
