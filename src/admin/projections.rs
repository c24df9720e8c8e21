//! The projections: `GET /admin/kratos/identities/{id}`, `GET /admin/identus/{kind}/{id}`.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::state::{AdminState, not_found, raw_json, store_error};
use crate::http::problem::json_response;
use crate::sources::{identus, kratos};
use crate::store::{ProjectionKey, ProjectionRow};

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
        Ok(Some(row)) => {
            #[derive(Serialize)]
            struct View<'a> {
                identity_id: &'a str,
                state: Option<&'a str>,
                schema_id: Option<&'a str>,
                event_id: uuid::Uuid,
                updated_at: &'a str,
                identity: Option<&'a RawValue>,
            }
            json_response(
                StatusCode::OK,
                "application/json",
                &View {
                    identity_id: &row.key,
                    state: row.state.as_deref(),
                    schema_id: attr(&row, "schema_id").as_deref(),
                    event_id: row.event_id.0,
                    updated_at: &row.updated_at,
                    identity: raw_json(&row.body),
                },
            )
        }
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
    let Some(view) = IDENTUS_VIEWS
        .iter()
        .find(|v| v.strip_prefix("identus/") == Some(kind.as_str()))
    else {
        return not_found(
            "the record kind is one of connections, credentials, presentations, dids",
        );
    };
    let key = ProjectionKey {
        view,
        key: &id,
        scope: wallet.wallet_id.as_deref(),
    };
    match state.store.projection(key).await {
        Ok(Some(row)) => {
            #[derive(Serialize)]
            struct View<'a> {
                wallet_id: &'a str,
                kind: &'a str,
                id: &'a str,
                state: Option<&'a str>,
                ts: Option<String>,
                event_id: uuid::Uuid,
                data: Option<&'a RawValue>,
            }
            json_response(
                StatusCode::OK,
                "application/json",
                &View {
                    wallet_id: &row.scope,
                    kind: &kind,
                    id: &row.key,
                    state: row.state.as_deref(),
                    ts: attr(&row, "ts"),
                    event_id: row.event_id.0,
                    data: raw_json(&row.body),
                },
            )
        }
        Ok(None) => not_found("no record of this kind has this id"),
        Err(e) => store_error(e),
    }
}
