//! Delivery in the admin API: `/admin/destinations` (state, backlog, pause, resume, replay) and
//! `/admin/deliveries` (the outbox and each delivery's attempts; retry one).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::state::{AdminState, bad_request, list_query, not_found, one_of, store_error};
use crate::config::Destination;
use crate::http::problem::{Problem, json_response};
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

/// A destination's `kind` (OpenAPI).
fn destination_kind() -> utoipa::openapi::Schema {
    one_of(["http", "rabbitmq", "nats"], false)
}

/// A destination's `state` (OpenAPI).
fn destination_state() -> utoipa::openapi::Schema {
    one_of(["active", "paused"], false)
}

/// A broker destination's `connection` (OpenAPI; null for HTTP and before the first attempt).
fn connection_state() -> utoipa::openapi::Schema {
    one_of(["connected", "disconnected"], true)
}

/// A delivery's `state` (OpenAPI).
fn delivery_state() -> utoipa::openapi::Schema {
    one_of(
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .map(DeliveryState::as_str),
        false,
    )
}

/// An attempt's `error` (OpenAPI; null when the destination answered).
fn attempt_error() -> utoipa::openapi::Schema {
    one_of(
        [
            "timeout",
            "connect",
            "tls",
            "protocol",
            "unroutable",
            "rejected",
        ],
        true,
    )
}

/// A destination as `/admin/destinations` shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = Destination)]
struct DestinationView {
    /// Its id in the configuration.
    id: String,
    /// `http`, `rabbitmq` or `nats`.
    #[schema(schema_with = destination_kind)]
    kind: &'static str,
    /// `paused`: its deliveries wait (none is dropped) until `resume`.
    #[schema(schema_with = destination_state)]
    state: &'static str,
    /// Why it is paused (`paused by an operator`, a 410, failures for `pause_after`).
    #[schema(required = true)]
    paused_reason: Option<String>,
    /// Deliveries waiting for an attempt.
    pending: i64,
    /// Deliveries that used up their retry schedule (kept, retryable).
    failed: i64,
    /// Age of the oldest pending delivery, in seconds.
    #[schema(required = true)]
    oldest_pending_seconds: Option<f64>,
    /// Failed attempts since the last success.
    consecutive_failures: i64,
    /// RFC 3339.
    #[schema(required = true)]
    last_success_at: Option<String>,
    /// RFC 3339.
    #[schema(required = true)]
    last_failure_at: Option<String>,
    /// Brokers: `connected` or `disconnected` as of the last attempt (null for HTTP and before
    /// the first attempt).
    #[schema(required = true, schema_with = connection_state)]
    connection: Option<&'static str>,
}

/// The configured destinations.
#[derive(Serialize, ToSchema)]
#[schema(as = DestinationList)]
struct DestinationList {
    /// In the order of the configuration.
    destinations: Vec<DestinationView>,
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

/// `GET /admin/destinations`: every destination, with its state and backlog.
#[utoipa::path(
    get,
    path = "/admin/destinations",
    operation_id = "list_destinations",
    tag = "deliveries",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The configured destinations", body = DestinationList),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
pub(super) async fn destinations(State(state): State<AdminState>) -> Response {
    match state.store.destinations().await {
        Ok(all) => {
            let now = now_ms();
            let list = DestinationList {
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

/// `POST /admin/destinations/{id}/pause`: pauses it; its deliveries wait until `resume`.
#[utoipa::path(
    post,
    path = "/admin/destinations/{id}/pause",
    operation_id = "pause_destination",
    tag = "deliveries",
    params(("id" = String, Path, description = "The destination's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The destination, now paused", body = DestinationView),
        (status = 404, description = "No destination has this id", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
pub(super) async fn pause(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    set_paused(state, id, true).await
}

/// `POST /admin/destinations/{id}/resume`: resumes it; its pending deliveries are due now.
#[utoipa::path(
    post,
    path = "/admin/destinations/{id}/resume",
    operation_id = "resume_destination",
    tag = "deliveries",
    params(("id" = String, Path, description = "The destination's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The destination, now active", body = DestinationView),
        (status = 404, description = "No destination has this id", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
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

/// What `POST /admin/destinations/{id}/replay` takes: filters, all optional (an empty body
/// replays every stored event the destination's own filters take).
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Replay)]
pub(super) struct ReplayBody {
    /// Only events of this source.
    source: Option<String>,
    /// Only events of this type.
    event_type: Option<String>,
    /// Only events received at or after this time (RFC 3339).
    #[schema(format = DateTime)]
    from: Option<String>,
    /// Only events received at or before this time (RFC 3339).
    #[schema(format = DateTime)]
    to: Option<String>,
}

/// The answer to a replay.
#[derive(Serialize, ToSchema)]
struct Queued {
    /// Deliveries queued.
    queued: u64,
}

/// Whether `t`, when given, is an RFC 3339 time.
fn valid_time(t: Option<&str>) -> bool {
    t.is_none_or(|t| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_ok()
    })
}

/// `POST /admin/destinations/{id}/replay`: queues stored events (both filters) as new
/// deliveries to the destination.
///
/// Queues the stored events that match both the filters given and the destination's own,
/// including events stored before the destination existed.
#[utoipa::path(
    post,
    path = "/admin/destinations/{id}/replay",
    operation_id = "replay_to_destination",
    tag = "deliveries",
    params(("id" = String, Path, description = "The destination's id")),
    request_body(content = Option<ReplayBody>, description = "Filters (all optional; the body may be empty)"),
    security(("admin_token" = [])),
    responses(
        (status = 202, description = "Queued", body = Queued),
        (status = 400, description = "The body is not such a JSON object, or `from`/`to` is not an RFC 3339 time", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No destination has this id", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
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
        // `null`, like an empty body, sets no filter.
        match serde_json::from_slice::<Option<ReplayBody>>(&body) {
            Ok(b) => b.unwrap_or_default(),
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
            json_response(StatusCode::ACCEPTED, "application/json", &Queued { queued })
        }
        Err(e) => store_error(e),
    }
}

/// A delivery as the admin API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = Delivery)]
pub(super) struct DeliveryView {
    /// The delivery id.
    id: i64,
    /// The event it delivers.
    event_id: uuid::Uuid,
    /// The destination's id.
    destination: String,
    /// `pending`, `delivered` or `failed`.
    #[schema(schema_with = delivery_state)]
    state: &'static str,
    /// Attempts so far.
    attempts_made: u32,
    /// When the next attempt is due (RFC 3339; only while pending).
    #[schema(required = true)]
    next_attempt_at: Option<String>,
    /// When it was delivered (RFC 3339).
    #[schema(required = true)]
    delivered_at: Option<String>,
    /// What the last failed attempt got, in words.
    #[schema(required = true)]
    last_error: Option<String>,
    /// When it was queued (RFC 3339).
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

/// One attempt of a delivery.
#[derive(Serialize, ToSchema)]
#[schema(as = Attempt)]
struct AttemptView {
    /// 1-based.
    number: u32,
    /// When it started (RFC 3339).
    at: String,
    /// How long it took.
    duration_ms: i64,
    /// The HTTP status the destination answered (null for brokers and for no answer).
    #[schema(required = true)]
    status: Option<u16>,
    /// Why it failed without an answer: timeout, connect, tls, protocol, unroutable, rejected.
    #[schema(required = true, schema_with = attempt_error)]
    error: Option<String>,
    /// The first 4 KiB of the answer, as text.
    #[schema(required = true)]
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

/// The query of `GET /admin/deliveries`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// Only deliveries to this destination (its id).
    destination: Option<String>,
    /// Only deliveries in this state.
    #[param(schema_with = delivery_state)]
    state: Option<String>,
    /// Only deliveries of this event (its id).
    #[param(value_type = Option<uuid::Uuid>)]
    event_id: Option<String>,
    /// Deliveries in one page (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// The `next` of an earlier answer (a delivery id): the page after it.
    #[param(value_type = Option<i64>)]
    after: Option<String>,
}

/// A page of deliveries, newest first.
#[derive(Serialize, ToSchema)]
#[schema(as = DeliveryPage)]
struct DeliveryPage {
    /// Newest first.
    deliveries: Vec<DeliveryView>,
    /// The `after` of the next page; null on the last page.
    #[schema(required = true)]
    next: Option<String>,
}

/// A delivery with every attempt.
#[derive(Serialize, ToSchema)]
#[schema(as = DeliveryWithAttempts)]
struct WithAttempts {
    #[serde(flatten)]
    delivery: DeliveryView,
    /// Oldest first.
    attempts: Vec<AttemptView>,
}

/// The answer to a retry.
#[derive(Serialize, ToSchema)]
struct Retried {
    /// The id of the new delivery.
    delivery_id: i64,
}

/// `GET /admin/deliveries`: deliveries, newest first; `next` (an id) asks for the page after.
#[utoipa::path(
    get,
    path = "/admin/deliveries",
    operation_id = "list_deliveries",
    tag = "deliveries",
    params(ListParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "A query parameter does not fit (unknown or repeated parameter, bad `limit`, `state`, `event_id` or `after`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
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
            let full = rows.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
            let page = DeliveryPage {
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
#[utoipa::path(
    get,
    path = "/admin/deliveries/{id}",
    operation_id = "get_delivery",
    tag = "deliveries",
    params(("id" = i64, Path, description = "The delivery id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The delivery with its attempts", body = WithAttempts),
        (status = 404, description = "No delivery has this id", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
pub(super) async fn get(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return no_delivery();
    };
    match state.store.get_delivery(id).await {
        Ok(Some((row, attempts))) => json_response(
            StatusCode::OK,
            "application/json",
            &WithAttempts {
                delivery: delivery_view(row),
                attempts: attempts.into_iter().map(attempt_view).collect(),
            },
        ),
        Ok(None) => not_found("no delivery has this id"),
        Err(e) => store_error(e),
    }
}

/// `POST /admin/deliveries/{id}/retry`: a new delivery of the same event, due now.
///
/// Also for a delivered one; the old delivery keeps its state.
#[utoipa::path(
    post,
    path = "/admin/deliveries/{id}/retry",
    operation_id = "retry_delivery",
    tag = "deliveries",
    params(("id" = i64, Path, description = "The delivery id")),
    security(("admin_token" = [])),
    responses(
        (status = 202, description = "The new delivery is queued, due now", body = Retried),
        (status = 404, description = "No delivery has this id", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
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
