//! `GET /admin/events` (the feed), `GET /admin/events/{id}`, `GET /admin/events/{id}/raw`.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::state::{AdminState, not_found, raw_json, store_error};
use crate::http::problem::{json_response, problem};
use crate::store::{Cursor, EventId, EventQuery, StoreError, StoredEvent};

/// Default page size of `GET /admin/events`.
const DEFAULT_LIMIT: u32 = 100;
/// Largest page size.
const MAX_LIMIT: u32 = 1000;

/// An event as the admin API shows it.
#[derive(Serialize)]
struct EventView<'a> {
    id: uuid::Uuid,
    source: &'a str,
    kind: &'a str,
    event_type: Option<&'a str>,
    dedupe_key: &'a str,
    sender_id: Option<&'a str>,
    received_at: &'a str,
    headers: Option<&'a RawValue>,
    payload: Option<&'a RawValue>,
}

fn view(e: &StoredEvent) -> EventView<'_> {
    EventView {
        id: e.id.0,
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
pub(super) struct ListParams {
    source: Option<String>,
    event_type: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

pub(super) async fn list(
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
    let after = p
        .after
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(Cursor::new);
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
        Err(StoreError::InvalidCursor) => bad_cursor(),
        Err(e) => store_error(e),
    }
}

fn bad_cursor() -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "Bad Request",
        "after must be the `next` cursor of a previous page",
    )
}

async fn find_event(state: &AdminState, id: &str) -> Result<StoredEvent, Response> {
    let Ok(id) = uuid::Uuid::parse_str(id) else {
        return Err(not_found("no event has this id"));
    };
    match state.store.get_event(EventId(id)).await {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err(not_found("no event has this id")),
        Err(e) => Err(store_error(e)),
    }
}

pub(super) async fn get(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    match find_event(&state, &id).await {
        Ok(e) => json_response(StatusCode::OK, "application/json", &view(&e)),
        Err(res) => res,
    }
}

pub(super) async fn raw(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
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
