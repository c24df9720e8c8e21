//! Registered hooks: `POST /admin/hooks`, `GET /admin/hooks`, `GET /admin/hooks/{id}`,
//! `DELETE /admin/hooks/{id}`, and the `hook` of an event in the event views.
//!
//! A registration is checked as a configured source's block is (the kind builds, the `verify`
//! block reads and passes the same checks), every error naming its field in a 422. The secret
//! generated for `"secrets": "generate"` is in the 201 answer and nowhere else: no later answer
//! shows a hook's `verify` block, and no log line holds it.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use http::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::hook_secrets;
use super::state::{AdminState, bad_request, list_query, not_found, store_error};
use crate::config::validate::verify_block_problems;
use crate::config::{Scheme, VerifySettings};
use crate::http::problem::{FieldError, Problem, json_response, problem_with};
use crate::http::stack::LOGGED_HOOK_ID;
use crate::sources::{Options, build_kind};
use crate::store::hooks::{HookRow, hook_of_event, is_hook_id, stored_verify_block};
use crate::store::{StoreError, StoredEvent};

/// Longest `label`, in characters.
const MAX_LABEL: usize = 200;

/// A hook as the admin API shows it (never its `verify` block).
#[derive(Serialize, ToSchema)]
#[schema(as = Hook)]
struct HookView<'a> {
    /// 32 hex digits (128 random bits).
    #[schema(pattern = "^[0-9a-f]{32}$")]
    id: &'a str,
    /// Where its sender posts, on the public listener: `/hooks/{id}`.
    path: String,
    /// The label given at registration.
    #[schema(required = true)]
    label: Option<&'a str>,
    /// The sender kind whose requests it takes.
    kind: &'a str,
    /// The JSON given at registration, carried with every event that arrives there.
    #[schema(required = true, value_type = Value)]
    payload: Option<&'a RawValue>,
    /// After this time (RFC 3339) its URL answers 404.
    #[schema(required = true)]
    expires_at: Option<&'a str>,
    /// When it was registered (RFC 3339).
    created_at: &'a str,
}

fn view(h: &HookRow) -> HookView<'_> {
    HookView {
        id: &h.id,
        path: format!("/hooks/{}", h.id),
        label: h.label.as_deref(),
        kind: &h.kind,
        payload: h
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<&RawValue>(p).ok()),
        expires_at: h.expires_at.as_deref(),
        created_at: &h.created_at,
    }
}

/// The `hook` of an event: `{id, label, payload}`.
#[derive(Serialize, ToSchema)]
pub(super) struct EventHook {
    /// The hook's id.
    id: String,
    /// Its label.
    #[schema(required = true)]
    label: Option<String>,
    /// The JSON given at its registration.
    #[schema(required = true, value_type = Value)]
    payload: Option<Box<RawValue>>,
}

impl EventHook {
    fn of(h: &HookRow) -> Self {
        Self {
            id: h.id.clone(),
            label: h.label.clone(),
            payload: h
                .payload
                .as_deref()
                .and_then(|p| RawValue::from_string(p.to_string()).ok()),
        }
    }
}

/// Hooks looked up at once for one page of events.
const HOOK_LOOKUPS: usize = 8;

/// The hooks of these events (deleted ones too: their events still came through them), by id.
///
/// # Errors
/// When the store cannot be read.
pub(super) async fn hooks_of(
    state: &AdminState,
    events: &[StoredEvent],
) -> Result<HashMap<String, EventHook>, StoreError> {
    let mut ids: Vec<String> = events
        .iter()
        .filter_map(|e| hook_of_event(&e.source, &e.dedupe_key))
        .map(str::to_string)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let store = state.store.clone();
    let found: Vec<Result<Option<HookRow>, StoreError>> = futures_util::stream::iter(ids)
        .map(move |id| {
            let store = store.clone();
            async move { store.hook(&id).await }
        })
        .buffer_unordered(HOOK_LOOKUPS)
        .collect()
        .await;
    let mut out = HashMap::new();
    for row in found {
        if let Some(h) = row? {
            out.insert(h.id.clone(), EventHook::of(&h));
        }
    }
    Ok(out)
}

/// The sender kinds a hook can take (OpenAPI: a source's `kind:`).
fn sender_kind() -> utoipa::openapi::Schema {
    super::state::one_of(crate::sources::KINDS.iter().map(|k| k.name), false)
}

/// What `POST /admin/hooks` takes. (Read loosely, as JSON values, so that every field that does
/// not fit is named in the 422; the schema says what fits.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = NewHook)]
struct NewHook {
    /// A name for people (at most 200 characters, no control characters).
    #[schema(value_type = Option<String>, max_length = 200)]
    label: Option<Value>,
    /// The sender kind whose requests it takes, as a source's `kind:`.
    #[schema(required = true, schema_with = sender_kind)]
    kind: Option<Value>,
    /// Any JSON: carried, as given, with every event that arrives there.
    #[schema(value_type = Value, required = false)]
    payload: Option<Box<RawValue>>,
    /// How its requests are verified, as a source's `verify` block (e.g. `{"scheme": "bearer",
    /// "secrets": "generate"}`: the answer then carries the generated secret, once). Left out:
    /// no verification (the id is the only credential).
    #[schema(value_type = Option<Object>)]
    verify: Option<Value>,
    /// When it stops taking requests (RFC 3339, in the future).
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<Value>,
}

/// A hook as registered: its generated secret is here, and in no later answer.
#[derive(Serialize, ToSchema)]
#[schema(as = CreatedHook)]
struct Created<'a> {
    #[serde(flatten)]
    hook: HookView<'a>,
    /// The generated secret (only for `"secrets": "generate"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    secret: Option<&'a str>,
}

/// A page of hooks, by id.
#[derive(Serialize, ToSchema)]
#[schema(as = HookPage)]
struct HookPage<'a> {
    /// By id.
    hooks: Vec<HookView<'a>>,
    /// The `after` of the next page; null on the last page.
    #[schema(required = true)]
    next: Option<&'a str>,
}

fn field(pointer: &str, detail: impl Into<String>) -> FieldError {
    FieldError {
        pointer: pointer.into(),
        detail: detail.into(),
    }
}

fn unprocessable(errors: &[FieldError]) -> Response {
    problem_with(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Unprocessable Content",
        "the hook cannot be registered as given; see errors",
        errors,
    )
}

/// `verify.secrets[0]` (a config path) as a JSON pointer, `/verify/secrets/0`.
fn pointer_of(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        for piece in part.split('[') {
            let piece = piece.trim_end_matches(']');
            if !piece.is_empty() {
                out.push('/');
                out.push_str(piece);
            }
        }
    }
    out
}

/// The `verify` block: read and checked as a source's, with `"secrets": "generate"` replaced by
/// a generated secret. Gives the block to store (JSON text) and the secret to show once.
fn read_verify(
    mut block: Value,
    errors: &mut Vec<FieldError>,
) -> Option<(SecretString, Option<SecretString>)> {
    let Some(obj) = block.as_object_mut() else {
        errors.push(field(
            "/verify",
            "must be an object like {\"scheme\": \"bearer\", \"secrets\": \"generate\"}",
        ));
        return None;
    };
    let mut generated = None;
    if obj.get("secrets").and_then(Value::as_str) == Some("generate") {
        let scheme = match obj
            .get("scheme")
            .cloned()
            .map(serde_json::from_value::<Scheme>)
        {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                errors.push(field("/verify/scheme", e.to_string()));
                return None;
            }
            None => {
                errors.push(field("/verify/scheme", "missing field `scheme`"));
                return None;
            }
        };
        match hook_secrets::generate(scheme) {
            Ok(Some(secret)) => {
                obj.insert(
                    "secrets".into(),
                    Value::Array(vec![Value::String(secret.expose_secret().to_string())]),
                );
                generated = Some(secret);
            }
            Ok(None) => {
                errors.push(field(
                    "/verify/secrets",
                    format!("scheme `{}` takes no secrets", scheme.as_str()),
                ));
                return None;
            }
            Err(e) => {
                tracing::error!(error = %e, "the OS random source failed");
                errors.push(field(
                    "/verify/secrets",
                    "no secret could be generated (the OS random source failed); try again",
                ));
                return None;
            }
        }
    }
    let settings: VerifySettings = match serde_path_to_error::deserialize(&block) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let pointer = if path == "." {
                "/verify".to_string()
            } else {
                pointer_of(&format!("verify.{path}"))
            };
            // serde's message names the field and the expected form, never a secret's value.
            errors.push(field(&pointer, e.into_inner().to_string()));
            return None;
        }
    };
    let problems = verify_block_problems(&settings);
    if !problems.is_empty() {
        for p in problems {
            let (path, why) = p.split_once(": ").unwrap_or(("verify", p.as_str()));
            errors.push(field(&pointer_of(path), why));
        }
        return None;
    }
    let Value::Object(block) = block else {
        return None;
    };
    Some((
        stored_verify_block(block, settings.scheme.scheme()),
        generated,
    ))
}

/// `POST /admin/hooks`: registers a hook; 201 with its id and path (and its generated secret,
/// this once).
#[utoipa::path(
    post,
    path = "/admin/hooks",
    operation_id = "create_hook",
    tag = "hooks",
    request_body(content = NewHook),
    security(("admin_token" = [])),
    responses(
        (status = 201, description = "Registered; `Location` names it", body = Created, headers(("Location" = String, description = "`/admin/hooks/{id}`"))),
        (status = 400, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The hook cannot be registered as given: `errors` names each field that does not fit", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
pub(super) async fn create(State(state): State<AdminState>, body: axum::body::Bytes) -> Response {
    let req: NewHook = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) if e.is_data() => {
            let detail = e.to_string();
            return unprocessable(&[field("", detail)]);
        }
        Err(e) => {
            return bad_request(&format!(
                "the body must be a JSON object with kind and any of label, payload, verify, expires_at ({e})"
            ));
        }
    };
    let mut errors = Vec::new();
    let label = match req.label {
        None | Some(Value::Null) => None,
        Some(Value::String(s))
            if s.chars().count() <= MAX_LABEL && !s.chars().any(char::is_control) =>
        {
            Some(s)
        }
        Some(_) => {
            errors.push(field(
                "/label",
                format!(
                    "must be a string of at most {MAX_LABEL} characters, without control characters"
                ),
            ));
            None
        }
    };
    let kind = match req.kind {
        Some(Value::String(k)) => match build_kind(&k, &Options::new()) {
            Ok(_) => Some(k),
            Err(problems) => {
                for (f, why) in problems {
                    let pointer = if f == "kind" {
                        "/kind".to_string()
                    } else {
                        pointer_of(&f)
                    };
                    errors.push(field(&pointer, why));
                }
                None
            }
        },
        Some(_) => {
            errors.push(field(
                "/kind",
                "must be the name of a sender kind, a string",
            ));
            None
        }
        None => {
            errors.push(field(
                "/kind",
                "is required: the sender kind whose requests this hook takes",
            ));
            None
        }
    };
    let expires_at = match req.expires_at {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => match OffsetDateTime::parse(&t, &Rfc3339) {
            Ok(at) if at > OffsetDateTime::now_utc() => {
                at.to_offset(time::UtcOffset::UTC).format(&Rfc3339).ok()
            }
            Ok(_) => {
                errors.push(field(
                    "/expires_at",
                    "is in the past: the hook would never be served",
                ));
                None
            }
            Err(_) => {
                errors.push(field(
                    "/expires_at",
                    "must be an RFC 3339 time such as 2026-12-01T10:42:00Z",
                ));
                None
            }
        },
        Some(_) => {
            errors.push(field(
                "/expires_at",
                "must be an RFC 3339 time such as 2026-12-01T10:42:00Z",
            ));
            None
        }
    };
    let (verify, secret) = match req.verify {
        None | Some(Value::Null) => (None, None),
        Some(block) => match read_verify(block, &mut errors) {
            Some((stored, secret)) => (Some(stored), secret),
            None => (None, None),
        },
    };
    let payload = req.payload.map(|p| p.get().to_string());
    let Some(kind) = kind.filter(|_| errors.is_empty()) else {
        return unprocessable(&errors);
    };
    let id = match hook_secrets::hook_id() {
        Ok(id) => id,
        Err(e) => {
            tracing::error!(error = %e, "the OS random source failed");
            return crate::http::problem::unavailable(
                "no hook id could be made (the OS random source failed); try again",
                1,
            );
        }
    };
    let row = HookRow {
        id,
        label,
        kind,
        payload: payload.filter(|p| p != "null"),
        verify,
        expires_at,
        created_at: now_text(),
        deleted_at: None,
    };
    match state.store.create_hook(row.clone()).await {
        Ok(()) => {
            tracing::info!(hook = %logged_id(&row.id), kind = %row.kind, "hook registered");
            let mut res = json_response(
                StatusCode::CREATED,
                "application/json",
                &Created {
                    hook: view(&row),
                    secret: secret.as_ref().map(|s| s.expose_secret()),
                },
            );
            if let Ok(v) = http::HeaderValue::from_str(&format!("/admin/hooks/{}", row.id)) {
                res.headers_mut().insert(http::header::LOCATION, v);
            }
            // The answer holds the secret: no cache may keep it.
            res.headers_mut().insert(
                http::header::CACHE_CONTROL,
                http::HeaderValue::from_static("no-store"),
            );
            res
        }
        Err(e) => store_error(e),
    }
}

/// A hook's id as logged: its first digits only (the id of a hook without verification is its
/// only credential).
fn logged_id(id: &str) -> String {
    format!("{}…", id.get(..LOGGED_HOOK_ID).unwrap_or_default())
}

fn now_text() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// The query of `GET /admin/hooks`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct ListParams {
    /// The `next` of an earlier answer (a hook id): the page after it.
    #[param(pattern = "^([0-9a-f]{32})?$")]
    after: Option<String>,
    /// Hooks in one page (default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
}

/// `GET /admin/hooks?after=&limit=`: hooks that are not deleted, by id.
#[utoipa::path(
    get,
    path = "/admin/hooks",
    operation_id = "list_hooks",
    tag = "hooks",
    params(ListParams),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "A page of hooks", body = HookPage),
        (status = 400, description = "A query parameter does not fit (unknown or repeated parameter, bad `limit` or `after`)", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
pub(super) async fn list(
    State(state): State<AdminState>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let (p, limit) = match list_query(params, "/admin/hooks", "after and limit", |p| {
        p.limit.as_deref()
    }) {
        Ok(read) => read,
        Err(why) => return bad_request(&why),
    };
    let after = p.after.filter(|a| !a.is_empty());
    if after.as_deref().is_some_and(|a| !is_hook_id(a)) {
        return bad_request(
            "after must be the `next` of an earlier answer of /admin/hooks (a hook id)",
        );
    }
    match state.store.list_hooks(after, limit, false).await {
        Ok(rows) => {
            let full = rows.len() >= usize::try_from(limit).unwrap_or(usize::MAX);
            let next = if full {
                rows.last().map(|h| h.id.as_str())
            } else {
                None
            };
            json_response(
                StatusCode::OK,
                "application/json",
                &HookPage {
                    hooks: rows.iter().map(view).collect(),
                    next,
                },
            )
        }
        Err(e) => store_error(e),
    }
}

fn no_hook() -> Response {
    not_found("no hook has this id (never registered, or deleted)")
}

/// `GET /admin/hooks/{id}`: one hook, never its secret.
#[utoipa::path(
    get,
    path = "/admin/hooks/{id}",
    operation_id = "get_hook",
    tag = "hooks",
    params(("id" = String, Path, description = "The hook id (32 hex digits)")),
    security(("admin_token" = [])),
    responses(
        (status = 200, description = "The hook", body = HookView),
        (status = 404, description = "No hook has this id (never registered, or deleted)", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
pub(super) async fn get(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    if !is_hook_id(&id) {
        return no_hook();
    }
    match state.store.hook(&id).await {
        Ok(Some(h)) if h.deleted_at.is_none() => {
            json_response(StatusCode::OK, "application/json", &view(&h))
        }
        Ok(_) => no_hook(),
        Err(e) => store_error(e),
    }
}

/// `DELETE /admin/hooks/{id}`: deletes it (204); requests to it get 404 from now on (on every replica
/// within a second), its secrets are erased; its events stay.
#[utoipa::path(
    delete,
    path = "/admin/hooks/{id}",
    operation_id = "delete_hook",
    tag = "hooks",
    params(("id" = String, Path, description = "The hook id (32 hex digits)")),
    security(("admin_token" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No hook has this id (never registered, or deleted)", body = Problem, content_type = "application/problem+json"),
        (status = 401, response = super::state::Unauthorized),
        (status = 503, response = super::state::Unavailable),
    ),
)]
pub(super) async fn delete(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    if !is_hook_id(&id) {
        return no_hook();
    }
    match state.store.delete_hook(&id, now_text()).await {
        Ok(true) => {
            (state.forget_hook)(&id);
            tracing::info!(hook = %logged_id(&id), "hook deleted");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(false) => no_hook(),
        Err(e) => store_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_paths_become_json_pointers() {
        assert_eq!(pointer_of("verify.secrets[0]"), "/verify/secrets/0");
        assert_eq!(pointer_of("verify.header"), "/verify/header");
        assert_eq!(pointer_of("events[2]"), "/events/2");
    }
}
