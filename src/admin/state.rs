//! What every admin route shares: the state, and the answers they have in common (with their
//! OpenAPI descriptions).

use std::sync::Arc;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::response::Response;
use http::StatusCode;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;
use utoipa::ToResponse;
use utoipa::openapi::response::{Response as ApiResponse, ResponseBuilder};
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::{
    Content, ContentBuilder, HeaderBuilder, ObjectBuilder, Ref, RefOr, Schema, Type,
};

use crate::config::Destination;
use crate::http::problem::{PROBLEM_JSON, problem, unavailable};
use crate::store::{Store, StoreError};
use crate::verify::bearer::Bearer;

/// What the admin routes share.
#[derive(Clone)]
pub struct AdminState {
    /// The event store.
    pub store: Arc<dyn Store>,
    /// Checks the admin token.
    pub token: Arc<Bearer>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Cancelled when hookgate starts to stop: long polls of the feed answer at once, so they
    /// do not hold up the graceful shutdown.
    pub stop: CancellationToken,
    /// The configured destinations.
    pub destinations: Arc<Vec<Destination>>,
    /// The configured sources, in their order (`/admin/sources`).
    pub sources: Arc<Vec<SourceSummary>>,
    /// Their broker connections.
    pub links: Arc<crate::deliver::Links>,
    /// Drops what this process's public listener knows of a registered hook (called when the
    /// hook is deleted here, so that it is gone at once; other replicas see it within a second).
    pub forget_hook: Arc<dyn Fn(&str) + Send + Sync>,
}

/// A configured source, as the overview names it.
#[derive(Debug, Clone)]
pub struct SourceSummary {
    /// The source id.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// The path senders POST to.
    pub path: String,
}

/// Default page size of the admin API's lists.
pub(super) const DEFAULT_LIMIT: u32 = 100;
/// Largest page size.
pub(super) const MAX_LIMIT: u32 = 1000;

/// `limit=` of a list; `None` when it is not a number from 1 to [`MAX_LIMIT`].
pub(super) fn list_limit(limit: Option<&str>) -> Option<u32> {
    match limit.map(str::parse::<u32>) {
        None => Some(DEFAULT_LIMIT),
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => Some(n),
        Some(_) => None,
    }
}

/// The query string of list `path` read into `T`, with its `limit=` (read by `limit` from
/// `T`); or the detail of the 400 for parameters that do not fit (unknown or repeated: it
/// names the list's `parameters`) or for a bad limit.
///
/// # Errors
/// The detail of the 400 answer ([`bad_request`]).
pub(super) fn list_query<T>(
    params: Result<Query<T>, QueryRejection>,
    path: impl std::fmt::Display,
    parameters: &str,
    limit: impl FnOnce(&T) -> Option<&str>,
) -> Result<(T, u32), String> {
    let Ok(Query(p)) = params else {
        return Err(format!(
            "the query parameters of {path} are {parameters} (each at most once)"
        ));
    };
    match list_limit(limit(&p)) {
        Some(n) => Ok((p, n)),
        None => Err(format!("limit must be a number from 1 to {MAX_LIMIT}")),
    }
}

pub(super) fn bad_request(detail: &str) -> Response {
    problem(StatusCode::BAD_REQUEST, "Bad Request", detail)
}

pub(super) fn not_found(detail: &str) -> Response {
    problem(StatusCode::NOT_FOUND, "Not Found", detail)
}

pub(super) fn store_error(e: StoreError) -> Response {
    tracing::error!(error = %e, "admin read failed");
    unavailable("the store cannot be read right now", 5)
}

/// Stored JSON as a raw value to embed in an answer, or `None` when it is not JSON.
pub(super) fn raw_json(bytes: &[u8]) -> Option<&RawValue> {
    serde_json::from_slice::<&RawValue>(bytes).ok()
}

/// The content of a problem answer in the OpenAPI description.
pub(super) fn problem_content() -> Content {
    ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Problem")))
        .build()
}

/// 401 in the OpenAPI description: no valid admin token (every `/admin/` route).
pub(super) struct Unauthorized;

impl<'r> ToResponse<'r> for Unauthorized {
    fn response() -> (&'r str, RefOr<ApiResponse>) {
        let res = ResponseBuilder::new()
            .description(
                "No valid admin token: `Authorization: Bearer <admin.token>` is missing or wrong",
            )
            .content(PROBLEM_JSON, problem_content())
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some(r#"`Bearer realm="hookgate-admin"`"#))
                    .build(),
            )
            .build();
        ("Unauthorized", res.into())
    }
}

/// 503 in the OpenAPI description: the store cannot be read right now ([`store_error`]).
pub(super) struct Unavailable;

impl<'r> ToResponse<'r> for Unavailable {
    fn response() -> (&'r str, RefOr<ApiResponse>) {
        let res = ResponseBuilder::new()
            .description(
                "The store cannot be read right now; try again after `Retry-After` seconds",
            )
            .content(PROBLEM_JSON, problem_content())
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(
                        ObjectBuilder::new()
                            .schema_type(Type::Integer)
                            .minimum(Some(0)),
                    )
                    .description(Some("Seconds to wait before asking again"))
                    .build(),
            )
            .build();
        ("Unavailable", res.into())
    }
}

/// The schema of a string that is one of `values` (a field the views fill from a fixed set);
/// null too when `nullable`.
pub(super) fn one_of(values: impl IntoIterator<Item = &'static str>, nullable: bool) -> Schema {
    let mut values: Vec<serde_json::Value> = values.into_iter().map(Into::into).collect();
    let schema = if nullable {
        values.push(serde_json::Value::Null);
        ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null]))
    } else {
        ObjectBuilder::new().schema_type(Type::String)
    };
    Schema::Object(schema.enum_values(Some(values)).build())
}
