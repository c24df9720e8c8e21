//! `GET /admin/events` (the feed), `GET /admin/events/{id}`, `GET /admin/events/{id}/raw`.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::deliveries::{DeliveryView, delivery_view};
use super::hooks::{EventHook, hooks_of};
use super::state::{AdminState, bad_request, list_query, not_found, raw_json, store_error};
use crate::http::problem::{Problem, json_response};
use crate::store::hooks::{hook_of_event, is_hook_id};
use crate::store::outbox::DeliveryQuery;
use crate::store::{
    Cursor, EventId, EventPage, EventQuery, StoreError, StoredEvent, stored_content_type,
};

/// Longest long poll (`wait=`): a consumer asks again with `next`, and proxies and clients in
/// between keep idle requests open at least this long by default.
pub(super) const MAX_WAIT: Duration = Duration::from_secs(30);

/// The shortest time between two reads of one long poll: a poll that has just read the feed
/// and found nothing for its filters waits this long before it reads again. (The first read
/// after a quiet wait is not delayed: the poll read when it started.)
const RECHECK_PAUSE: Duration = Duration::from_millis(25);

/// An event as the admin API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = Event)]
pub(super) struct EventView<'a> {
    /// The hookgate event id (also `Hookgate-Event-Id` in the answer to the sender and on
    /// every delivery).
    id: uuid::Uuid,
    /// The cursor that resumes the feed right after this event (opaque).
    cursor: &'a str,
    /// The id of the source it came from (`hooks` for a registered hook's events).
    source: &'a str,
    /// The sender kind of that source (`kratos`, `identus`, `abp`, `standard`, `json`).
    kind: &'a str,
    /// The event type, when the kind has one (from the body or a header).
    #[schema(required = true)]
    event_type: Option<&'a str>,
    /// What a repeat of this event is recognised by (a delivery id, a `webhook-id`, or the
    /// SHA-256 of the body).
    dedupe_key: &'a str,
    /// Who sent it, when the source's verification names one.
    #[schema(required = true)]
    sender_id: Option<&'a str>,
    /// When hookgate stored it (RFC 3339, UTC).
    received_at: &'a str,
    /// The request headers kept with it (never a credential), by lower-case name.
    #[schema(required = true, value_type = Option<Object>)]
    headers: Option<&'a RawValue>,
    /// The body as JSON; null when the stored bytes are not JSON (`/raw` has them).
    #[schema(required = true, value_type = Value)]
    payload: Option<&'a RawValue>,
    /// The registered hook it came through: `{id, label, payload}` (only for such events).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    hook: Option<&'a EventHook>,
}

/// The view of `e`, with its hook from `hooks` (see [`hooks_of`]).
fn view<'a>(e: &'a StoredEvent, hooks: &'a HashMap<String, EventHook>) -> EventView<'a> {
    EventView {
        hook: hook_of_event(&e.source, &e.dedupe_key).and_then(|id| hooks.get(id)),
        id: e.id.0,
        cursor: e.cursor.as_str(),
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

/// The query of `GET /admin/events`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// Only events of this source (its id).
    source: Option<String>,
    /// Only events of this type.
    event_type: Option<String>,
    /// Only events that came through this registered hook (its id, 32 hex digits).
    #[param(pattern = "^([0-9a-f]{32})?$")]
    hook: Option<String>,
    /// Events in one page (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Resume after this point: the `next` of an earlier answer or an event's `cursor`
    /// (opaque), or an event id (a UUID: resumes right after that event). Left out: from the
    /// oldest stored event.
    after: Option<String>,
    /// When nothing is new, wait up to this long for an event before answering (long poll):
    /// `10s`, `500ms`, or plain seconds (`10`); at most 30s. Left out: answer at once.
    #[param(example = "10s")]
    wait: Option<String>,
    /// Only events received at or after this time (RFC 3339, compared with `received_at`).
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<String>,
    /// Only events received at or before this time (RFC 3339, compared with `received_at`).
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<String>,
}

/// `from=` / `to=`: an RFC 3339 time, or none when empty; `Err` names the parameter.
fn time_param(name: &str, text: Option<&str>) -> Result<Option<time::OffsetDateTime>, String> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(Some)
        .map_err(|_| {
            format!(
                "{name} must be an RFC 3339 time such as 2026-12-01T10:42:00Z (compared with received_at, inclusive)"
            )
        })
}

/// A page of the feed.
#[derive(Serialize, ToSchema)]
#[schema(as = EventPage)]
pub(super) struct FeedPage<'a> {
    /// Oldest first.
    events: Vec<EventView<'a>>,
    /// Where to ask again: after the last event returned, or the `after` given when nothing
    /// is new. Always a cursor: keep it and ask again.
    next: &'a str,
    /// Whether more events are already waiting after this page.
    more: bool,
}

/// An event with its deliveries.
#[derive(Serialize, ToSchema)]
#[schema(as = EventWithDeliveries)]
pub(super) struct WithDeliveries<'a> {
    #[serde(flatten)]
    event: EventView<'a>,
    /// Its deliveries, oldest first.
    deliveries: Vec<DeliveryView>,
}

/// `GET /admin/events`: a page of the feed, after waiting up to `wait` for one when nothing is
/// new.
///
/// The feed of stored events, oldest first. Paging with `next` from the start sees every
/// committed event exactly once, in commit order, even with several replicas.
#[utoipa::path(
    get,
    path = "/admin/events",
    operation_id = "list_events",
    tag = "events",
    params(ListParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "A page of the feed (empty when nothing is new by the end of `wait`)", body = FeedPage),
        (status = 400, description = "A query parameter does not fit (unknown or repeated parameter, bad `limit`, `wait`, `hook`, `from`, `to` or `after`)", body = Problem, content_type = "application/problem+json"),
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
        "/admin/events",
        "source, event_type, hook, from, to, limit, after and wait",
        |p| p.limit.as_deref(),
    ) {
        Ok(read) => read,
        Err(why) => return bad_request(&why),
    };
    let Some(wait) = parse_wait(p.wait.as_deref()) else {
        return bad_request(&format!(
            "wait must be a duration of at most {}s, such as 10s, 500ms or 10 (seconds); with nothing new by then the answer is an empty page, and its `next` asks again",
            MAX_WAIT.as_secs()
        ));
    };
    let hook = p.hook.filter(|h| !h.is_empty());
    if hook.as_deref().is_some_and(|h| !is_hook_id(h)) {
        return bad_request("hook must be the id of a registered hook (32 hex digits)");
    }
    let (from, to) = match (
        time_param("from", p.from.as_deref()),
        time_param("to", p.to.as_deref()),
    ) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(why), _) | (_, Err(why)) => return bad_request(&why),
    };
    let after = match resolve_after(&state, p.after).await {
        Ok(after) => after,
        Err(res) => return res,
    };
    let query = EventQuery {
        source: p.source,
        event_type: p.event_type,
        hook,
        limit,
        after,
        from,
        to,
    };
    match long_poll(&state, query, wait).await {
        Ok(page) => {
            let hooks = match hooks_of(&state, &page.events).await {
                Ok(hooks) => hooks,
                Err(e) => return store_error(e),
            };
            let body = FeedPage {
                events: page.events.iter().map(|e| view(e, &hooks)).collect(),
                next: page.next.as_str(),
                more: page.more,
            };
            json_response(StatusCode::OK, "application/json", &body)
        }
        Err(StoreError::InvalidCursor) => bad_cursor(),
        Err(e) => store_error(e),
    }
}

/// `wait=`: `10s`, `500ms`, or plain seconds (`10`); none is no wait. `None` when it is not a
/// duration or longer than [`MAX_WAIT`].
fn parse_wait(text: Option<&str>) -> Option<Duration> {
    let text = text.map(str::trim).unwrap_or_default();
    let wait = if text.is_empty() {
        Duration::ZERO
    } else if text.bytes().all(|b| b.is_ascii_digit()) {
        Duration::from_secs(text.parse().ok()?)
    } else {
        humantime::parse_duration(text).ok()?
    };
    (wait <= MAX_WAIT).then_some(wait)
}

/// `after=`: a cursor (opaque, checked by the store), or an event id (what `Hookgate-Event-Id`
/// gave the sender), which resumes right after that event.
async fn resolve_after(
    state: &AdminState,
    after: Option<String>,
) -> Result<Option<Cursor>, Response> {
    let Some(text) = after.filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    // A cursor is never a UUID (today: a sequence number, at most 19 digits).
    let Ok(id) = uuid::Uuid::parse_str(&text) else {
        return Ok(Some(Cursor::new(text)));
    };
    match state.store.get_event(EventId(id)).await {
        Ok(Some(e)) => Ok(Some(e.cursor)),
        Ok(None) => Err(bad_request(&format!(
            "after: no stored event has the id {id} (retention may have removed it); resume from a cursor (the `next` of an earlier answer), or leave after out to start from the oldest event"
        ))),
        Err(e) => Err(store_error(e)),
    }
}

/// A page of the feed; when it is empty, waits up to `wait` for a commit that brings a
/// matching event, then reads again. Commits of events that do not match the filters do not end
/// the wait. Ends at once, with what it has, when hookgate starts to stop.
async fn long_poll(
    state: &AdminState,
    query: EventQuery,
    wait: Duration,
) -> Result<EventPage, StoreError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut commits = state.store.commits();
    loop {
        // Seen before reading: a commit from here on wakes the wait below.
        commits.borrow_and_update();
        let read_at = tokio::time::Instant::now();
        let page = state.store.list_events(query.clone()).await?;
        if !page.events.is_empty() || wait.is_zero() || state.stop.is_cancelled() {
            return Ok(page);
        }
        tokio::select! {
            changed = commits.changed() => if changed.is_err() {
                // The store is gone (hookgate is stopping): nothing more will come.
                return Ok(page);
            },
            () = tokio::time::sleep_until(deadline) => return Ok(page),
            () = state.stop.cancelled() => return Ok(page),
        }
        // A poll whose filters skip most events would otherwise read once per commit while
        // other sources are busy; commits in this pause are seen by the next read.
        tokio::select! {
            () = tokio::time::sleep_until((read_at + RECHECK_PAUSE).min(deadline)) => {}
            () = state.stop.cancelled() => return Ok(page),
        }
    }
}

fn bad_cursor() -> Response {
    bad_request(
        "after must be a cursor: the `next` of an earlier answer of /admin/events, or the `cursor` of an event in it (or an event id)",
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

/// `GET /admin/events/{id}`: the event with its deliveries.
#[utoipa::path(
    get,
    path = "/admin/events/{id}",
    operation_id = "get_event",
    tag = "events",
    params(("id" = String, Path, description = "The event id (a UUID)")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The event, with its deliveries", body = WithDeliveries),
        (status = 401, response = super::state::Unauthorized),
        (status = 404, description = "No event has this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = super::state::Unavailable),
    ),
)]
pub(super) async fn get(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let e = match find_event(&state, &id).await {
        Ok(e) => e,
        Err(res) => return res,
    };
    let query = DeliveryQuery {
        event_id: Some(e.id),
        limit: 1000,
        ..DeliveryQuery::default()
    };
    let hooks = match hooks_of(&state, std::slice::from_ref(&e)).await {
        Ok(hooks) => hooks,
        Err(err) => return store_error(err),
    };
    match state.store.list_deliveries(query).await {
        Ok(rows) => {
            let mut rows = rows;
            rows.reverse();
            json_response(
                StatusCode::OK,
                "application/json",
                &WithDeliveries {
                    event: view(&e, &hooks),
                    deliveries: rows.into_iter().map(delivery_view).collect(),
                },
            )
        }
        Err(err) => store_error(err),
    }
}

/// `GET /admin/events/{id}/raw`: the exact stored bytes, with the stored content type.
#[utoipa::path(
    get,
    path = "/admin/events/{id}/raw",
    operation_id = "get_event_raw",
    tag = "events",
    params(("id" = String, Path, description = "The event id (a UUID)")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The body exactly as received, with the content type it came with (`application/octet-stream` when it had none)", content(("*/*"))),
        (status = 401, response = super::state::Unauthorized),
        (status = 404, description = "No event has this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = super::state::Unavailable),
    ),
)]
pub(super) async fn raw(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    match find_event(&state, &id).await {
        Ok(e) => {
            let content_type = stored_content_type(&e.headers)
                .and_then(|v| HeaderValue::from_str(&v).ok())
                .unwrap_or(HeaderValue::from_static("application/octet-stream"));
            ([(CONTENT_TYPE, content_type)], e.body).into_response()
        }
        Err(res) => res,
    }
}
