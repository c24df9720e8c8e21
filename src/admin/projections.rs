//! The projections: one thing (`GET /admin/kratos/identities/{id}`,
//! `GET /admin/identus/{kind}/{id}`), or a list of them, searched
//! (`GET /admin/kratos/identities?email=&after=&limit=`,
//! `GET /admin/identus/{kind}?state=&wallet_id=&after=&limit=`). A list's items are exactly what
//! the single GET answers. Each carries `events`: the ids of the events that set it, newest
//! first (the last [`crate::store::HISTORY_LEN`]).

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::state::{AdminState, bad_request, list_query, not_found, raw_json, store_error};
use crate::http::problem::json_response;
use crate::sources::{identus, kratos};
use crate::store::{
    Cursor, ProjectionKey, ProjectionPage, ProjectionQuery, ProjectionRow, StoreError,
};

/// The Identus views, by the record kind in the URL.
const IDENTUS_VIEWS: [&str; 4] = [
    identus::CONNECTIONS,
    identus::CREDENTIALS,
    identus::PRESENTATIONS,
    identus::DIDS,
];

/// A named value kept with the row (`schema_id`, `ts`).
fn attr(row: &ProjectionRow, name: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&row.attrs)
        .ok()?
        .get(name)?
        .as_str()
        .map(str::to_string)
}

/// The events that set the row, newest first (`event_id` first; the last
/// [`crate::store::HISTORY_LEN`], some perhaps deleted by retention since).
fn events(row: &ProjectionRow) -> Vec<uuid::Uuid> {
    row.events().into_iter().map(|id| id.0).collect()
}

/// A Kratos identity as the admin API shows it.
#[derive(Serialize)]
struct IdentityView<'a> {
    identity_id: &'a str,
    state: Option<&'a str>,
    schema_id: Option<String>,
    event_id: uuid::Uuid,
    events: Vec<uuid::Uuid>,
    updated_at: &'a str,
    identity: Option<&'a RawValue>,
}

fn identity_view(row: &ProjectionRow) -> IdentityView<'_> {
    IdentityView {
        identity_id: &row.key,
        state: row.state.as_deref(),
        schema_id: attr(row, "schema_id"),
        event_id: row.event_id.0,
        events: events(row),
        updated_at: &row.updated_at,
        identity: raw_json(&row.body),
    }
}

/// An Identus record as the admin API shows it.
#[derive(Serialize)]
struct RecordView<'a> {
    wallet_id: &'a str,
    kind: &'a str,
    id: &'a str,
    state: Option<&'a str>,
    ts: Option<String>,
    event_id: uuid::Uuid,
    events: Vec<uuid::Uuid>,
    data: Option<&'a RawValue>,
}

fn record_view<'a>(kind: &'a str, row: &'a ProjectionRow) -> RecordView<'a> {
    RecordView {
        wallet_id: &row.scope,
        kind,
        id: &row.key,
        state: row.state.as_deref(),
        ts: attr(row, "ts"),
        event_id: row.event_id.0,
        events: events(row),
        data: raw_json(&row.body),
    }
}

/// The view of an Identus record kind named in a URL (`connections`).
fn identus_view(kind: &str) -> Option<&'static str> {
    IDENTUS_VIEWS
        .iter()
        .find(|v| v.strip_prefix("identus/") == Some(kind))
        .copied()
}

fn unknown_kind() -> Response {
    not_found("the record kind is one of connections, credentials, presentations, dids")
}

pub(super) async fn kratos_identity(
    State(state): State<AdminState>,
    Path(id): Path<String>,
) -> Response {
    let key = ProjectionKey {
        view: kratos::VIEW,
        key: &id,
        scope: None,
    };
    match state.store.projection(key).await {
        Ok(Some(row)) => json_response(StatusCode::OK, "application/json", &identity_view(&row)),
        Ok(None) => not_found("no identity has this id"),
        Err(e) => store_error(e),
    }
}

#[derive(Deserialize)]
pub(super) struct WalletParam {
    wallet_id: Option<String>,
}

pub(super) async fn identus_record(
    State(state): State<AdminState>,
    Path((kind, id)): Path<(String, String)>,
    Query(wallet): Query<WalletParam>,
) -> Response {
    let Some(view) = identus_view(&kind) else {
        return unknown_kind();
    };
    let key = ProjectionKey {
        view,
        key: &id,
        scope: wallet.wallet_id.as_deref(),
    };
    match state.store.projection(key).await {
        Ok(Some(row)) => json_response(
            StatusCode::OK,
            "application/json",
            &record_view(&kind, &row),
        ),
        Ok(None) => not_found("no record of this kind has this id"),
        Err(e) => store_error(e),
    }
}

/// A query parameter, with an empty one taken as not given.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// A page of a list, or the answer that says why there is none.
async fn list_rows(
    state: &AdminState,
    query: ProjectionQuery,
    name: &str,
) -> Result<ProjectionPage, Response> {
    state
        .store
        .list_projections(query)
        .await
        .map_err(|e| match e {
            StoreError::InvalidCursor => bad_request(&format!(
                "after must be the `next` of an earlier answer of this list of {name}"
            )),
            e => store_error(e),
        })
}

/// `{"<name>": [items], "next": cursor or null}`.
fn page_response<T: Serialize>(name: &str, items: Vec<T>, next: Option<Cursor>) -> Response {
    #[derive(Serialize)]
    struct Page<'a, T> {
        #[serde(flatten)]
        items: HashMap<&'a str, Vec<T>>,
        next: Option<String>,
    }
    let page = Page {
        items: HashMap::from([(name, items)]),
        next: next.map(|n| n.to_string()),
    };
    json_response(StatusCode::OK, "application/json", &page)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IdentityListParams {
    email: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /admin/kratos/identities`: identities by id; `email=` finds those with that e-mail
/// address, whatever its case.
pub(super) async fn kratos_identities(
    State(state): State<AdminState>,
    params: Result<Query<IdentityListParams>, QueryRejection>,
) -> Response {
    let (p, limit) = match list_query(
        params,
        "/admin/kratos/identities",
        "email, after and limit",
        |p| p.limit.as_deref(),
    ) {
        Ok(read) => read,
        Err(why) => return bad_request(&why),
    };
    let query = ProjectionQuery {
        view: kratos::VIEW,
        state: None,
        scope: None,
        attr: given(p.email).map(|e| (kratos::EMAIL_ATTR, e.to_ascii_lowercase())),
        after: given(p.after).map(Cursor::new),
        limit,
    };
    match list_rows(&state, query, "identities").await {
        Ok(page) => page_response(
            "identities",
            page.rows.iter().map(identity_view).collect(),
            page.next,
        ),
        Err(res) => res,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecordListParams {
    state: Option<String>,
    wallet_id: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /admin/identus/{kind}`: records of one kind by id, then wallet; `state=` and
/// `wallet_id=` keep those in that state, of that wallet.
pub(super) async fn identus_records(
    State(state): State<AdminState>,
    Path(kind): Path<String>,
    params: Result<Query<RecordListParams>, QueryRejection>,
) -> Response {
    let Some(view) = identus_view(&kind) else {
        return unknown_kind();
    };
    let (p, limit) = match list_query(
        params,
        format_args!("/admin/identus/{kind}"),
        "state, wallet_id, after and limit",
        |p| p.limit.as_deref(),
    ) {
        Ok(read) => read,
        Err(why) => return bad_request(&why),
    };
    let query = ProjectionQuery {
        view,
        state: given(p.state),
        scope: given(p.wallet_id),
        attr: None,
        after: given(p.after).map(Cursor::new),
        limit,
    };
    match list_rows(&state, query, &kind).await {
        Ok(page) => page_response(
            &kind,
            page.rows
                .iter()
                .map(|row| record_view(&kind, row))
                .collect(),
            page.next,
        ),
        Err(res) => res,
    }
}
