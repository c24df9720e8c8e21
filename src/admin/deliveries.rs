//! Delivery in the admin API: `/admin/destinations` (state, backlog, pause, resume, replay) and
//! `/admin/deliveries` (the outbox and each delivery's attempts; retry one).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::state::{AdminState, bad_request, list_query, not_found, store_error};
use crate::config::Destination;
use crate::http::problem::json_response;
use crate::store::EventId;
use crate::store::outbox::{
    AttemptRecord, DeliveryQuery, DeliveryRow, DeliveryState, DestinationStatus, ReplayFilter,
    now_ms,
};

/// Unix milliseconds as RFC 3339 (UTC, milliseconds).
pub(super) fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// A destination as `/admin/destinations` shows it.
#[derive(Serialize)]
struct DestinationView {
    id: String,
    kind: &'static str,
    state: &'static str,
    paused_reason: Option<String>,
    pending: i64,
    failed: i64,
    oldest_pending_seconds: Option<f64>,
    consecutive_failures: i64,
    last_success_at: Option<String>,
    last_failure_at: Option<String>,
    /// Brokers: `connected` or `disconnected` as of the last attempt (null for HTTP and before
    /// the first attempt).
    connection: Option<&'static str>,
}

fn destination_view(
    d: &Destination,
    s: Option<&DestinationStatus>,
    now: i64,
    links: &crate::deliver::Links,
) -> DestinationView {
    DestinationView {
        connection: links
            .get(&d.id)
            .map(|c| if c { "connected" } else { "disconnected" }),
        id: d.id.clone(),
        kind: d.kind(),
        state: if s.is_some_and(|s| s.paused) {
            "paused"
        } else {
            "active"
        },
        paused_reason: s.and_then(|s| s.paused_reason.clone()),
        pending: s.map_or(0, |s| s.pending),
        failed: s.map_or(0, |s| s.failed),
        oldest_pending_seconds: s
            .and_then(|s| s.oldest_pending_at)
            .map(|at| (now.saturating_sub(at)).max(0) as f64 / 1000.0),
        consecutive_failures: s.map_or(0, |s| s.consecutive_failures),
        last_success_at: s.and_then(|s| s.last_success_at).map(rfc3339),
        last_failure_at: s.and_then(|s| s.last_failure_at).map(rfc3339),
    }
}

fn find<'a>(state: &'a AdminState, id: &str) -> Option<&'a Destination> {
    state.destinations.iter().find(|d| d.id == id)
}

fn no_destination() -> Response {
    not_found("no destination has this id (see GET /admin/destinations)")
}

/// The destination `id`, as the store knows it now.
async fn one(state: &AdminState, d: &Destination) -> Response {
    match state.store.destinations().await {
        Ok(all) => {
            let s = all.iter().find(|s| s.id == d.id);
            json_response(
                StatusCode::OK,
                "application/json",
                &destination_view(d, s, now_ms(), &state.links),
            )
        }
        Err(e) => store_error(e),
    }
}

/// `GET /admin/destinations`.
pub(super) async fn destinations(State(state): State<AdminState>) -> Response {
    match state.store.destinations().await {
        Ok(all) => {
            let now = now_ms();
            #[derive(Serialize)]
            struct List {
                destinations: Vec<DestinationView>,
            }
            let list = List {
                destinations: state
                    .destinations
                    .iter()
                    .map(|d| {
                        destination_view(d, all.iter().find(|s| s.id == d.id), now, &state.links)
                    })
                    .collect(),
            };
            json_response(StatusCode::OK, "application/json", &list)
        }
        Err(e) => store_error(e),
    }
}

/// `POST /admin/destinations/{id}/pause`.
pub(super) async fn pause(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    set_paused(state, id, true).await
}

/// `POST /admin/destinations/{id}/resume`: its pending deliveries are due now.
pub(super) async fn resume(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    set_paused(state, id, false).await
}

async fn set_paused(state: AdminState, id: String, paused: bool) -> Response {
    let Some(d) = find(&state, &id) else {
        return no_destination();
    };
    let reason = paused.then(|| "paused by an operator".to_string());
    match state
        .store
        .set_paused(&d.id, paused, reason, now_ms())
        .await
    {
        Ok(_) => {
            tracing::info!(destination = %d.id, paused, "destination {}", if paused { "paused" } else { "resumed" });
            one(&state, d).await
        }
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplayBody {
    source: Option<String>,
    event_type: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Whether `t`, when given, is an RFC 3339 time.
fn valid_time(t: Option<&str>) -> bool {
    t.is_none_or(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
    })
}

/// `POST /admin/destinations/{id}/replay`: queues stored events (both filters) as new
/// deliveries to the destination.
pub(super) async fn replay(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let Some(d) = find(&state, &id) else {
        return no_destination();
    };
    let b: ReplayBody = if body.iter().all(u8::is_ascii_whitespace) {
        ReplayBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return bad_request(&format!(
                    "the body must be a JSON object with any of source, event_type, from, to ({e})"
                ));
            }
        }
    };
    for (field, t) in [("from", &b.from), ("to", &b.to)] {
        if !valid_time(t.as_deref()) {
            return bad_request(&format!(
                "{field} must be an RFC 3339 time such as 2026-12-01T10:42:00Z"
            ));
        }
    }
    let filter = ReplayFilter {
        source: b.source,
        event_type: b.event_type,
        from: b.from,
        to: b.to,
        sources: d.sources.clone(),
        event_types: d.event_types.clone(),
    };
    match state.store.replay(&d.id, filter, now_ms()).await {
        Ok(queued) => {
            tracing::info!(destination = %d.id, queued, "replay queued");
            #[derive(Serialize)]
            struct Queued {
                queued: u64,
            }
            json_response(StatusCode::ACCEPTED, "application/json", &Queued { queued })
        }
        Err(e) => store_error(e),
    }
}

/// A delivery as the admin API shows it.
#[derive(Serialize)]
pub(super) struct DeliveryView {
    id: i64,
    event_id: uuid::Uuid,
    destination: String,
    state: &'static str,
    attempts_made: u32,
    next_attempt_at: Option<String>,
    delivered_at: Option<String>,
    last_error: Option<String>,
    created_at: String,
}

pub(super) fn delivery_view(d: DeliveryRow) -> DeliveryView {
    DeliveryView {
        id: d.id,
        event_id: d.event_id.0,
        destination: d.destination,
        state: d.state.as_str(),
        attempts_made: d.attempts_made,
        next_attempt_at: (d.state == DeliveryState::Pending)
            .then_some(d.next_attempt_at)
            .flatten()
            .map(rfc3339),
        delivered_at: d.delivered_at.map(rfc3339),
        last_error: d.last_error,
        created_at: rfc3339(d.created_at),
    }
}

#[derive(Serialize)]
struct AttemptView {
    number: u32,
    at: String,
    duration_ms: i64,
    status: Option<u16>,
    error: Option<String>,
    response: Option<String>,
}

fn attempt_view(a: AttemptRecord) -> AttemptView {
    AttemptView {
        number: a.number,
        at: rfc3339(a.at),
        duration_ms: a.duration_ms,
        status: a.status,
        error: a.error,
        response: a.response,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListParams {
    destination: Option<String>,
    state: Option<String>,
    event_id: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// `GET /admin/deliveries`: newest first; `next` (an id) asks for the page after.
pub(super) async fn list(
    State(state): State<AdminState>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (p, limit) = match list_query(
        params,
        "/admin/deliveries",
        "destination, state, event_id, limit and after",
        |p| p.limit.as_deref(),
    ) {
        Ok(read) => read,
        Err(why) => return bad_request(&why),
    };
    let delivery_state = match p.state.as_deref() {
        None => None,
        Some(s) => match DeliveryState::parse(s) {
            Some(s) => Some(s),
            None => return bad_request("state must be pending, delivered or failed"),
        },
    };
    let event_id = match p.event_id.as_deref() {
        None => None,
        Some(s) => match uuid::Uuid::parse_str(s) {
            Ok(id) => Some(EventId(id)),
            Err(_) => return bad_request("event_id must be an event id (a UUID)"),
        },
    };
    let after = match p.after.as_deref() {
        None => None,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return bad_request(
                    "after must be the `next` of an earlier answer of /admin/deliveries (a delivery id)",
                );
            }
        },
    };
    let query = DeliveryQuery {
        destination: p.destination,
        state: delivery_state,
        event_id,
        limit,
        after,
    };
    match state.store.list_deliveries(query).await {
        Ok(rows) => {
            let next = rows.last().map(|d| d.id.to_string());
            #[derive(Serialize)]
            struct Page {
                deliveries: Vec<DeliveryView>,
                next: Option<String>,
            }
            let full = rows.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
            let page = Page {
                deliveries: rows.into_iter().map(delivery_view).collect(),
                next: if full { next } else { None },
            };
            json_response(StatusCode::OK, "application/json", &page)
        }
        Err(e) => store_error(e),
    }
}

fn no_delivery() -> Response {
    not_found("no delivery has this id")
}

/// `GET /admin/deliveries/{id}`: the delivery with every attempt.
pub(super) async fn get(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return no_delivery();
    };
    match state.store.get_delivery(id).await {
        Ok(Some((row, attempts))) => {
            #[derive(Serialize)]
            struct WithAttempts {
                #[serde(flatten)]
                delivery: DeliveryView,
                attempts: Vec<AttemptView>,
            }
            json_response(
                StatusCode::OK,
                "application/json",
                &WithAttempts {
                    delivery: delivery_view(row),
                    attempts: attempts.into_iter().map(attempt_view).collect(),
                },
            )
        }
        Ok(None) => not_found("no delivery has this id"),
        Err(e) => store_error(e),
    }
}

/// `POST /admin/deliveries/{id}/retry`: a new delivery of the same event, due now.
pub(super) async fn retry(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return no_delivery();
    };
    match state.store.retry_delivery(id, now_ms()).await {
        Ok(Some(new)) => {
            tracing::info!(
                delivery_id = id,
                new_delivery_id = new,
                "delivery retried by an operator"
            );
            #[derive(Serialize)]
            struct Retried {
                delivery_id: i64,
            }
            json_response(
                StatusCode::ACCEPTED,
                "application/json",
                &Retried { delivery_id: new },
            )
        }
        Ok(None) => not_found("no delivery has this id"),
        Err(e) => store_error(e),
    }
}
