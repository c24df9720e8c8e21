//! The projections: one thing (`GET /admin/kratos/identities/{id}`,
//! `GET /admin/identus/{kind}/{id}`), or a list of them, searched
//! (`GET /admin/kratos/identities?email=&after=&limit=`,
//! `GET /admin/identus/{kind}?state=&wallet_id=&after=&limit=`). A list's items are exactly what
//! the single GET answers. Each carries `events`: the ids of the events that set it, newest
//! first (the last [`crate::store::HISTORY_LEN`]).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::state::{AdminState, bad_request, list_query, not_found, raw_json, store_error};
use crate::http::problem::{Problem, json_response};
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

/// The Identus record kinds of `/admin/identus/{kind}` (OpenAPI only: the handlers read the
/// kind as text, and answer 404 for another).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Never built: it only describes the path parameter.
enum IdentusKind {
    /// Connections, by connection id.
    Connections,
    /// Issued credentials, by record id.
    Credentials,
    /// Presentations, by presentation id.
    Presentations,
    /// DIDs, by DID.
    Dids,
}

/// An Identus record's `kind` (OpenAPI).
fn identus_kind() -> utoipa::openapi::Schema {
    super::state::one_of(
        ["connections", "credentials", "presentations", "dids"],
        false,
    )
}

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
#[derive(Serialize, ToSchema)]
#[schema(as = KratosIdentity)]
struct IdentityView<'a> {
    /// The identity's id.
    identity_id: &'a str,
    /// Its state (`active`, `inactive`), when the hook's body had one.
    #[schema(required = true)]
    state: Option<&'a str>,
    /// Its schema id, when the body had one.
    #[schema(required = true)]
    schema_id: Option<String>,
    /// The event that made this version.
    event_id: uuid::Uuid,
    /// The events that set it, newest first (`event_id` first; at most 50, some perhaps
    /// deleted by retention since).
    events: Vec<uuid::Uuid>,
    /// When that event was received (RFC 3339).
    updated_at: &'a str,
    /// The identity, as that event carried it.
    #[schema(required = true, value_type = Value)]
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
#[derive(Serialize, ToSchema)]
#[schema(as = IdentusRecord)]
struct RecordView<'a> {
    /// The wallet it belongs to (empty when the event named none).
    wallet_id: &'a str,
    /// `connections`, `credentials`, `presentations` or `dids`.
    #[schema(schema_with = identus_kind)]
    kind: &'a str,
    /// The record's id (connection, record or DID).
    id: &'a str,
    /// Its state, as the last event gave it.
    #[schema(required = true)]
    state: Option<&'a str>,
    /// The time the last event gave (`ts`).
    #[schema(required = true)]
    ts: Option<String>,
    /// The event that made this version.
    event_id: uuid::Uuid,
    /// The events that set it, newest first (`event_id` first; at most 50, some perhaps
    /// deleted by retention since).
    events: Vec<uuid::Uuid>,
    /// The record, as that event carried it.
    #[schema(required = true, value_type = Value)]
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

/// `GET /admin/kratos/identities/{id}`: the identity as the last event gave it.
#[utoipa::path(
    get,
    path = "/admin/kratos/identities/{id}",
    operation_id = "get_kratos_identity",
    tag = "projections",
    params(("id" = String, Path, description = "The identity's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The identity", body = IdentityView),
        (status = 401, response = super::state::Unauthorized),
        (status = 404, description = "No identity has this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = super::state::Unavailable),
    ),
)]
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
        Ok(Some(row)) => ok(&identity_view(&row)),
        Ok(None) => not_found("no identity has this id"),
        Err(e) => store_error(e),
    }
}

/// The query of `GET /admin/identus/{kind}/{id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct WalletParam {
    /// The wallet the record belongs to (records of several wallets may share an id).
    wallet_id: Option<String>,
}

/// `GET /admin/identus/{kind}/{id}`: the record as the last event gave it.
#[utoipa::path(
    get,
    path = "/admin/identus/{kind}/{id}",
    operation_id = "get_identus_record",
    tag = "projections",
    params(
        ("kind" = inline(IdentusKind), Path, description = "The record kind"),
        ("id" = String, Path, description = "The record's id"),
        WalletParam,
    ),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The record", body = RecordView),
        (status = 400, description = "`wallet_id` is given more than once", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 404, description = "No such record kind, or no record of this kind has this id", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = super::state::Unavailable),
    ),
)]
pub(super) async fn identus_record(
    State(state): State<AdminState>,
    Path((kind, id)): Path<(String, String)>,
    wallet: Result<Query<WalletParam>, QueryRejection>,
) -> Response {
    let Some(view) = identus_view(&kind) else {
        return unknown_kind();
    };
    let Ok(Query(wallet)) = wallet else {
        return bad_request("wallet_id may be given once");
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

/// A page of identities.
#[derive(Serialize, ToSchema)]
#[schema(as = KratosIdentityPage)]
struct IdentityPage<'a> {
    /// By id.
    identities: Vec<IdentityView<'a>>,
    /// The `after` of the next page; null on the last page.
    #[schema(required = true)]
    next: Option<String>,
}

/// A page of Identus records: under the record kind of the URL (only that one of the four).
#[derive(Serialize, ToSchema, Default)]
#[schema(as = IdentusRecordPage)]
struct RecordPage<'a> {
    /// For `/admin/identus/connections`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    connections: Option<Vec<RecordView<'a>>>,
    /// For `/admin/identus/credentials`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    credentials: Option<Vec<RecordView<'a>>>,
    /// For `/admin/identus/presentations`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    presentations: Option<Vec<RecordView<'a>>>,
    /// For `/admin/identus/dids`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    dids: Option<Vec<RecordView<'a>>>,
    /// The `after` of the next page; null on the last page.
    #[schema(required = true)]
    next: Option<String>,
}

fn ok<T: Serialize>(body: &T) -> Response {
    json_response(StatusCode::OK, "application/json", body)
}

/// The query of `GET /admin/kratos/identities`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct IdentityListParams {
    /// Only identities with this e-mail address (whatever its case).
    email: Option<String>,
    /// The `next` of an earlier answer (opaque): the page after it.
    after: Option<String>,
    /// Identities in one page (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// `GET /admin/kratos/identities`: identities by id; `email=` finds those with that e-mail
/// address, whatever its case.
#[utoipa::path(
    get,
    path = "/admin/kratos/identities",
    operation_id = "list_kratos_identities",
    tag = "projections",
    params(IdentityListParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "A page of identities", body = IdentityPage),
        (status = 400, description = "A query parameter does not fit (unknown or repeated parameter, bad `limit` or `after`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
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
        Ok(page) => ok(&IdentityPage {
            identities: page.rows.iter().map(identity_view).collect(),
            next: page.next.map(|n| n.to_string()),
        }),
        Err(res) => res,
    }
}

/// The query of `GET /admin/identus/{kind}`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct RecordListParams {
    /// Only records in this state.
    state: Option<String>,
    /// Only records of this wallet.
    wallet_id: Option<String>,
    /// The `next` of an earlier answer (opaque): the page after it.
    after: Option<String>,
    /// Records in one page (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// `GET /admin/identus/{kind}`: records of one kind by id, then wallet; `state=` and
/// `wallet_id=` keep those in that state, of that wallet.
#[utoipa::path(
    get,
    path = "/admin/identus/{kind}",
    operation_id = "list_identus_records",
    tag = "projections",
    params(
        ("kind" = inline(IdentusKind), Path, description = "The record kind"),
        RecordListParams,
    ),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "A page of records, under the kind's name", body = RecordPage),
        (status = 400, description = "A query parameter does not fit (unknown or repeated parameter, bad `limit` or `after`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 404, description = "No such record kind", body = Problem, content_type = "application/problem+json"),
        (status = 503, response = super::state::Unavailable),
    ),
)]
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
        Ok(page) => {
            let records = Some(
                page.rows
                    .iter()
                    .map(|row| record_view(&kind, row))
                    .collect(),
            );
            let mut body = RecordPage {
                next: page.next.map(|n| n.to_string()),
                ..RecordPage::default()
            };
            match view {
                identus::CONNECTIONS => body.connections = records,
                identus::CREDENTIALS => body.credentials = records,
                identus::PRESENTATIONS => body.presentations = records,
                _ => body.dids = records,
            }
            ok(&body)
        }
        Err(res) => res,
    }
}
