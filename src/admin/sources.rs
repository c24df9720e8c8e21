//! `GET /admin/sources`: each source at a glance (the console's overview): events stored in the
//! last hour, the newest one's time, and this process's answers by class since it started.

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::state::{AdminState, store_error};
use crate::http::problem::json_response;
use crate::receive::metrics::{Answers, answer_counts};
use crate::store::{HOOKS_SOURCE, SourceActivity};

/// The window of `events_last_hour`.
const WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

/// A source at a glance.
#[derive(Serialize, ToSchema)]
#[schema(as = Source)]
struct SourceView<'a> {
    /// The source id (`hooks` for the registered hooks together).
    id: &'a str,
    /// Null for registered hooks (each has its own kind) and for a source no longer configured.
    #[schema(required = true)]
    kind: Option<&'a str>,
    /// The path senders POST to (`/hooks/` for registered hooks; null for a source no longer
    /// configured).
    #[schema(required = true)]
    path: Option<&'a str>,
    /// Events stored in the last hour.
    events_last_hour: u64,
    /// When the newest event of the last hour was received; null when there was none.
    #[schema(required = true)]
    last_event_at: Option<&'a str>,
    /// This process's answers since it started (each replica counts its own).
    responses: Responses,
}

/// Answers to a source's senders, by class.
#[derive(Serialize, ToSchema)]
#[schema(as = SourceResponses)]
struct Responses {
    /// Accepted (stored, or recognised as a repeat).
    #[serde(rename = "2xx")]
    ok: u64,
    /// Refused as unauthenticated.
    #[serde(rename = "401")]
    unauthorized: u64,
    /// Every 4xx, 401 included.
    #[serde(rename = "4xx")]
    client_errors: u64,
    /// Every 5xx (e.g. 503 while the store cannot take a write).
    #[serde(rename = "5xx")]
    server_errors: u64,
}

/// Every source at a glance.
#[derive(Serialize, ToSchema)]
#[schema(as = SourceList)]
struct SourceList<'a> {
    /// The configured sources by id, then `hooks`, then sources no longer configured.
    sources: Vec<SourceView<'a>>,
}

impl From<Answers> for Responses {
    fn from(a: Answers) -> Self {
        Self {
            ok: a.ok,
            unauthorized: a.unauthorized,
            client_errors: a.client_errors,
            server_errors: a.server_errors,
        }
    }
}

/// `GET /admin/sources`: the configured sources (by id), then registered hooks (as one
/// source, `hooks`) and sources no longer configured when they stored events in the last hour or
/// answered requests.
#[utoipa::path(
    get,
    path = "/admin/sources",
    operation_id = "list_sources",
    tag = "events",
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "Each source: events in the last hour, the newest one's time, answers by class", body = SourceList),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
pub(super) async fn list(State(state): State<AdminState>) -> Response {
    let since = time::OffsetDateTime::now_utc() - WINDOW;
    let activity = match state.store.source_activity(since).await {
        Ok(a) => a,
        Err(e) => return store_error(e),
    };
    let of = |id: &str| activity.iter().find(|a| a.source == id);
    let mut views: Vec<SourceView<'_>> = state
        .sources
        .iter()
        .map(|s| view(&s.id, Some(&s.kind), Some(&s.path), of(&s.id)))
        .collect();
    let hooks = view(HOOKS_SOURCE, None, Some("/hooks/"), of(HOOKS_SOURCE));
    if hooks.events_last_hour > 0 || hooks.responses.ok + hooks.responses.client_errors > 0 {
        views.push(hooks);
    }
    for a in &activity {
        if a.source != HOOKS_SOURCE && !state.sources.iter().any(|s| s.id == a.source) {
            views.push(view(&a.source, None, None, Some(a)));
        }
    }
    json_response(
        StatusCode::OK,
        "application/json",
        &SourceList { sources: views },
    )
}

fn view<'a>(
    id: &'a str,
    kind: Option<&'a str>,
    path: Option<&'a str>,
    activity: Option<&'a SourceActivity>,
) -> SourceView<'a> {
    SourceView {
        id,
        kind,
        path,
        events_last_hour: activity.map_or(0, |a| a.events),
        last_event_at: activity.map(|a| a.last_received_at.as_str()),
        responses: answer_counts(id).read().into(),
    }
}
