//! The admin listener: the event and projection read API (bearer token) and `/metrics`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, StatusCode};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::{json_response, problem, unavailable};
use crate::store::{EventQuery, IdentusKind, Store, StoreError, StoredEvent};
use crate::verify::bearer::Bearer;

/// Default page size of `GET /admin/events`.
const DEFAULT_LIMIT: u32 = 100;
/// Largest page size.
const MAX_LIMIT: u32 = 1000;

/// What the admin routes share.
#[derive(Clone)]
pub struct AdminState {
    /// The event store.
    pub store: Arc<dyn Store>,
    /// Checks the admin token.
    pub token: Arc<Bearer>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
}

/// The admin router.
pub fn router(state: AdminState) -> Router {
    let api = Router::new()
        .route("/admin/events", get(list_events))
        .route("/admin/events/{id}", get(get_event))
        .route("/admin/events/{id}/raw", get(get_raw))
        .route("/admin/kratos/identities/{id}", get(kratos_identity))
        .route("/admin/identus/{kind}/{id}", get(identus_record))
        .route_layer(from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/metrics", get(metrics))
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

async fn metrics(State(state): State<AdminState>) -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

fn not_found(detail: &str) -> Response {
    problem(StatusCode::NOT_FOUND, "Not Found", detail)
}

fn store_error(e: StoreError) -> Response {
    tracing::error!(error = %e, "admin read failed");
    unavailable("the store cannot be read right now", 5)
}

/// An event as the admin API shows it.
#[derive(Serialize)]
struct EventView<'a> {
    id: Uuid,
    source: &'a str,
    kind: &'a str,
    event_type: Option<&'a str>,
    dedupe_key: &'a str,
    sender_id: Option<&'a str>,
    received_at: &'a str,
    headers: Option<&'a RawValue>,
    payload: Option<&'a RawValue>,
}

fn raw_json(bytes: &[u8]) -> Option<&RawValue> {
    serde_json::from_slice::<&RawValue>(bytes).ok()
}

fn view(e: &StoredEvent) -> EventView<'_> {
    EventView {
        id: e.id,
        source: &e.source,
        kind: &e.kind,
        event_type: e.event_type.as_deref(),
        dedupe_key: &e.dedupe_key,
        sender_id: e.sender_id.as_deref(),
        received_at: &e.received_at,
        headers: raw_json(e.headers.as_bytes()),
        payload: raw_json(&e.body),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    source: Option<String>,
    event_type: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

async fn list_events(
    State(state): State<AdminState>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(p)) = params else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Bad Request",
            "query parameters are source, event_type, limit and after",
        );
    };
    let limit = match p.limit.as_deref().map(str::parse::<u32>) {
        None => DEFAULT_LIMIT,
        Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                &format!("limit must be a number from 1 to {MAX_LIMIT}"),
            );
        }
    };
    let after = match p
        .after
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<i64>)
    {
        None => None,
        Some(Ok(n)) if n >= 0 => Some(n),
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "Bad Request",
                "after must be the `next` cursor of a previous page",
            );
        }
    };
    let query = EventQuery {
        source: p.source,
        event_type: p.event_type,
        limit,
        after,
    };
    match state.store.list_events(query).await {
        Ok(page) => {
            #[derive(Serialize)]
            struct Page<'a> {
                events: Vec<EventView<'a>>,
                next: Option<String>,
            }
            let body = Page {
                events: page.events.iter().map(view).collect(),
                next: page.next.map(|n| n.to_string()),
            };
            json_response(StatusCode::OK, "application/json", &body)
        }
        Err(e) => store_error(e),
    }
}

async fn find_event(state: &AdminState, id: &str) -> Result<StoredEvent, Response> {
    let Ok(id) = Uuid::parse_str(id) else {
        return Err(not_found("no event has this id"));
    };
    match state.store.get_event(id).await {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err(not_found("no event has this id")),
        Err(e) => Err(store_error(e)),
    }
}

async fn get_event(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    match find_event(&state, &id).await {
        Ok(e) => json_response(StatusCode::OK, "application/json", &view(&e)),
        Err(res) => res,
    }
}

async fn get_raw(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    match find_event(&state, &id).await {
        Ok(e) => {
            let content_type = serde_json::from_str::<serde_json::Value>(&e.headers)
                .ok()
                .and_then(|h| {
                    h.get("content-type")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                })
                .and_then(|v| HeaderValue::from_str(&v).ok())
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            ([(CONTENT_TYPE, content_type)], e.body).into_response()
        }
        Err(res) => res,
    }
}

async fn kratos_identity(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    match state.store.kratos_identity(&id).await {
        Ok(Some(row)) => {
            #[derive(Serialize)]
            struct View<'a> {
                identity_id: &'a str,
                state: Option<&'a str>,
                schema_id: Option<&'a str>,
                event_id: Uuid,
                updated_at: &'a str,
                identity: Option<&'a RawValue>,
            }
            json_response(
                StatusCode::OK,
                "application/json",
                &View {
                    identity_id: &row.identity_id,
                    state: row.state.as_deref(),
                    schema_id: row.schema_id.as_deref(),
                    event_id: row.event_id,
                    updated_at: &row.updated_at,
                    identity: raw_json(&row.identity),
                },
            )
        }
        Ok(None) => not_found("no identity has this id"),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
struct WalletParam {
    wallet_id: Option<String>,
}

async fn identus_record(
    State(state): State<AdminState>,
    Path((kind, id)): Path<(String, String)>,
    Query(wallet): Query<WalletParam>,
) -> Response {
    let Some(kind) = IdentusKind::parse(&kind) else {
        return not_found(
            "the record kind is one of connections, credentials, presentations, dids",
        );
    };
    match state
        .store
        .identus_record(kind, &id, wallet.wallet_id.as_deref())
        .await
    {
        Ok(Some(row)) => {
            #[derive(Serialize)]
            struct View<'a> {
                wallet_id: &'a str,
                kind: &'a str,
                id: &'a str,
                state: Option<&'a str>,
                ts: &'a str,
                event_id: Uuid,
                data: Option<&'a RawValue>,
            }
            json_response(
                StatusCode::OK,
                "application/json",
                &View {
                    wallet_id: &row.wallet_id,
                    kind: row.kind.as_str(),
                    id: &row.record_id,
                    state: row.state.as_deref(),
                    ts: &row.ts,
                    event_id: row.event_id,
                    data: raw_json(&row.data),
                },
            )
        }
        Ok(None) => not_found("no record of this kind has this id"),
        Err(e) => store_error(e),
    }
}
