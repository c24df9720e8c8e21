//! The admin API's OpenAPI 3.1 description, `GET /admin/openapi.json`: generated from the
//! handlers' `#[utoipa::path]` attributes and the views' `ToSchema` derives, so it follows the
//! code; built once, on the first request.
//!
//! Error answers are RFC 9457 problems (`application/problem+json`, the shared `Problem`
//! schema). Every `/admin/` route takes `Authorization: Bearer <admin.token>` (the security
//! scheme `admin_token`); `/metrics` and this description do not.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::state::{Unauthorized, Unavailable};
use super::{deliveries, events, hooks, metrics, projections, sources};
use crate::http::problem::{FieldError, Problem};

/// The description: every admin route, with the schemas of what it takes and answers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "hookgate admin API",
        description = "The admin listener of hookgate: the stored events (a feed a consumer can follow), \
            their deliveries and destinations, registered hooks, the Kratos and Identus projections, \
            and the Prometheus metrics. Every `/admin/` route takes `Authorization: Bearer <admin.token>`; \
            errors are RFC 9457 problems (`application/problem+json`)."
    ),
    paths(
        sources::list,
        events::list,
        events::get,
        events::raw,
        deliveries::destinations,
        deliveries::pause,
        deliveries::resume,
        deliveries::replay,
        deliveries::list,
        deliveries::get,
        deliveries::retry,
        hooks::create,
        hooks::list,
        hooks::get,
        hooks::delete,
        projections::kratos_identities,
        projections::kratos_identity,
        projections::identus_records,
        projections::identus_record,
        metrics::metrics,
        spec,
    ),
    components(
        schemas(Problem, FieldError),
        responses(Unauthorized, Unavailable)
    ),
    modifiers(&AdminToken, &Summaries),
    tags(
        (name = "events", description = "The sources at a glance, and the stored events: the feed, one event, its exact bytes"),
        (name = "deliveries", description = "Destinations (state, backlog, pause, resume, replay) and deliveries (attempts, retry)"),
        (name = "hooks", description = "Registered hooks: URLs handed to external systems"),
        (name = "projections", description = "The latest Kratos identities and Identus records, by id"),
        (name = "operations", description = "Metrics and this description (no token)"),
    )
)]
struct AdminApi;

/// Summaries without the route they repeat: each handler's doc comment opens with its route
/// ("`GET /admin/events`: a page of the feed…"), which a reader of the description sees beside
/// the summary anyway.
struct Summaries;

impl Modify for Summaries {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.post, &mut item.delete];
            for op in operations.into_iter().flatten() {
                if let Some(summary) = op.summary.as_mut() {
                    *summary = without_route(summary);
                }
            }
        }
    }
}

/// "`GET /admin/events`: a page of the feed, …" → "A page of the feed, …" (on one line).
fn without_route(summary: &str) -> String {
    let text = summary.split_whitespace().collect::<Vec<_>>().join(" ");
    let rest = text
        .strip_prefix('`')
        .and_then(|t| t.split_once('`'))
        .map_or(text.as_str(), |(_, rest)| {
            rest.trim_start_matches([':', ' '])
        });
    let mut chars = rest.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// Adds the bearer scheme every `/admin/` route names.
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`Authorization: Bearer <admin.token>` (the `admin.token` setting)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The description as JSON, built once.
fn document() -> Option<&'static [u8]> {
    static DOCUMENT: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    DOCUMENT
        .get_or_init(|| match serde_json::to_vec(&AdminApi::openapi()) {
            Ok(json) => Some(json),
            Err(e) => {
                tracing::error!(error = %e, "the OpenAPI description could not be serialized");
                None
            }
        })
        .as_deref()
}

/// `GET /admin/openapi.json`: this description, without the token (like `/metrics`: the admin
/// listener is internal, and the description holds no secret, only the API's shape).
#[utoipa::path(
    get,
    path = "/admin/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI 3.1 description of the admin API", body = Object, content_type = "application/json"),
    ),
)]
pub(super) async fn spec() -> Response {
    match document() {
        Some(json) => (
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            json,
        )
            .into_response(),
        None => crate::http::problem::problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "the OpenAPI description could not be built",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_drop_the_route_they_repeat() {
        assert_eq!(
            without_route("`GET /admin/events`: a page of the feed, after\nwaiting."),
            "A page of the feed, after waiting."
        );
        assert_eq!(
            without_route("`DELETE /admin/hooks/{id}`: deletes it (204)."),
            "Deletes it (204)."
        );
        assert_eq!(without_route("No route here."), "No route here.");
    }
}
