//! `kratos`: Ory Kratos `web_hook` with a body of `{"identity": ctx.identity}`.
//!
//! Errors are answered in Kratos' own `messages` format, so that a flow-interrupting hook shows
//! them to the user. Message ids 1 and 2 are the reference handler's; the others are hookgate's.
//!
//! The option `respond` ([`respond`], DESIGN.md "Kratos flow answers") adds the answers of a
//! flow-interrupting or identity-modifying hook: rules that refuse a flow with 400 and a message
//! (the event is not stored), and a patch answered as `{"identity": {…}}`. Without it, every
//! stored event is answered `{}`.

pub mod respond;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::error::SourceError;
use super::kind::{Decision, Kind, OptionError, Options, ParsedEvent, Registration};
use super::parse::{body_digest, check_depth, from_json, require_object, sub_range, valid_json};
use crate::http::problem::{FieldError, json_response};
use crate::store::{EventId, Projection};
use respond::{Outcome, Respond};

/// `kind: kratos`, with its option `respond`.
pub const KIND: Registration = Registration {
    name: "kratos",
    options: &["respond"],
    build,
};

fn build(options: &Options) -> Result<Arc<dyn Kind>, Vec<OptionError>> {
    let respond = options
        .get("respond")
        .map(Respond::from_options)
        .transpose()?;
    Ok(Arc::new(Kratos { respond }))
}

/// The projection view of the latest identity per identity id.
pub const VIEW: &str = "kratos/identities";

/// Ory Kratos.
#[derive(Debug, Default)]
pub struct Kratos {
    /// The flow answers, when the source has a `respond` block.
    respond: Option<Respond>,
}

impl Kind for Kratos {
    fn name(&self) -> &'static str {
        KIND.name
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<ParsedEvent, SourceError> {
        parse(headers, body)
    }

    /// Kratos with `response.parse: true` needs a JSON body; `{}` changes nothing.
    fn accepted(&self, _: EventId, _: bool) -> Response {
        (
            StatusCode::OK,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            Bytes::from_static(b"{}"),
        )
            .into_response()
    }

    fn refused(&self, e: SourceError) -> Response {
        error_response(e)
    }

    /// The `respond` block's answer: a matching rule interrupts the flow (400, not stored); a
    /// patch is answered 200 `{"identity": {…}}` once stored. Without the block, nothing is
    /// read again.
    fn decide(&self, body: &Bytes) -> Decision {
        let Some(respond) = &self.respond else {
            return Decision::Store(None);
        };
        match respond.evaluate(body) {
            Outcome::Store => Decision::Store(None),
            Outcome::Patched(identity) => Decision::Store(Some(
                (
                    StatusCode::OK,
                    [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
                    identity,
                )
                    .into_response(),
            )),
            Outcome::Interrupt(i) => Decision::Interrupt {
                why: format!(
                    "respond.rules[{}] ({}) matched: message {}",
                    i.rule, i.pointer, i.message.id
                ),
                answer: KratosMessages::rule(i.instance_ptr, i.message)
                    .into_response(StatusCode::BAD_REQUEST),
            },
        }
    }
}

/// `identity` is missing or `null` (reference handler id).
pub const MSG_IDENTITY_NULL: u32 = 1;
/// `identity.id` is missing or empty (reference handler id).
pub const MSG_IDENTITY_ID_EMPTY: u32 = 2;
/// The body is not JSON.
pub const MSG_MALFORMED: u32 = 3;
/// A field does not fit the identity model; `context.pointer` names it.
pub const MSG_INVALID_FIELD: u32 = 4;
/// The content type is not JSON.
pub const MSG_CONTENT_TYPE: u32 = 5;
/// The body is over the limit.
pub const MSG_TOO_LARGE: u32 = 6;
/// The body could not be read.
pub const MSG_UNREADABLE: u32 = 7;
/// `identity.id` is not a UUID.
pub const MSG_IDENTITY_ID_NOT_UUID: u32 = 8;

/// Same for every retry of one trigger (Kratos v25.4 and later).
const TRIGGER_ID: &str = "ory-webhook-trigger-id";
/// New for each attempt (Kratos v1.1 and later).
const REQUEST_ID: &str = "ory-webhook-request-id";

/// The body Kratos sends with the `function(ctx) { identity: ctx.identity }` template.
#[derive(Deserialize)]
struct Body<'a> {
    #[serde(borrow, default)]
    identity: Option<&'a RawValue>,
}

/// An identity as Kratos marshals it (`identity/identity.go`), every field it sends.
/// Unknown fields are accepted; known ones must have their type.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // The fields exist to be type-checked; the store keeps the raw JSON.
pub struct Identity {
    /// UUID; required (message 2 when missing or empty).
    #[serde(default)]
    pub id: Option<String>,
    external_id: Option<String>,
    credentials: Option<BTreeMap<String, Credentials>>,
    schema_id: Option<String>,
    schema_url: Option<String>,
    state: Option<String>,
    state_changed_at: Option<String>,
    /// Any JSON (the identity schema decides); its `email` is kept for search.
    traits: Option<Box<RawValue>>,
    verifiable_addresses: Option<Vec<VerifiableAddress>>,
    recovery_addresses: Option<Vec<RecoveryAddress>>,
    metadata_public: Option<IgnoredAny>,
    metadata_admin: Option<IgnoredAny>,
    created_at: Option<String>,
    updated_at: Option<String>,
    organization_id: Option<String>,
    region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Credentials {
    #[serde(rename = "type")]
    kind: Option<String>,
    identifiers: Option<Vec<String>>,
    config: Option<IgnoredAny>,
    version: Option<i64>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct VerifiableAddress {
    id: Option<String>,
    value: String,
    verified: Option<bool>,
    via: Option<String>,
    status: Option<String>,
    verified_at: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct RecoveryAddress {
    id: Option<String>,
    value: String,
    via: Option<String>,
    break_glass_for_organization: Option<String>,
    created_at: Option<String>,
    updated_at: Option<String>,
}

/// Validates a Kratos body and finds its dedupe key and projection.
///
/// # Errors
/// 400 for bad JSON, 422 (ids 1, 2, 4) for a body that does not fit.
pub fn parse(headers: &HeaderMap, body: &Bytes) -> Result<ParsedEvent, SourceError> {
    check_depth(body)?;
    require_object(body, "")?;
    let outer: Body<'_> = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) if e.is_syntax() || e.is_eof() || !valid_json(body) => {
            return Err(SourceError::malformed(&e));
        }
        Err(_) => {
            return Err(SourceError::invalid(
                "",
                "the body must be a JSON object like {\"identity\": {…}}",
            ));
        }
    };
    let Some(raw) = outer.identity else {
        return Err(SourceError::Invalid {
            code: Some(MSG_IDENTITY_NULL),
            errors: vec![FieldError {
                pointer: "/identity".into(),
                detail: "identity is null".into(),
            }],
            hint: why_no_identity(body),
        });
    };
    let identity: Identity = from_json(raw.get().as_bytes(), "/identity")?;
    let id = identity.id.as_deref().unwrap_or_default();
    if id.is_empty() {
        return Err(bad_identity_id(
            MSG_IDENTITY_ID_EMPTY,
            "identity.id is empty",
        ));
    }
    // Kratos ids are UUIDs, and the .NET handlers read them as a `Guid`: anything else cannot
    // be a Kratos identity (and would break the consumers the event is handed to).
    let Ok(uuid) = uuid::Uuid::try_parse(id) else {
        return Err(bad_identity_id(
            MSG_IDENTITY_ID_NOT_UUID,
            "identity.id is not a UUID",
        ));
    };
    // The reference handler checks `identity.Id == default`: a `Guid`'s default is the nil UUID,
    // which it answers as an empty id.
    if uuid.is_nil() {
        return Err(bad_identity_id(
            MSG_IDENTITY_ID_EMPTY,
            "identity.id is empty",
        ));
    }
    let attrs = search_email(&identity)
        .map(|e| (EMAIL_ATTR, e))
        .into_iter()
        .chain(identity.schema_id.clone().map(|s| ("schema_id", s)))
        .collect();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 256)
    };
    let trigger = header(TRIGGER_ID);
    let dedupe_key = match trigger {
        Some(t) => format!("trigger:{t}"),
        // Older Kratos sends no trigger id; a retry carries the same body.
        None => body_digest(body),
    };
    Ok(ParsedEvent {
        event_type: Some("identity".into()),
        dedupe_key,
        sender_id: trigger.or_else(|| header(REQUEST_ID)).map(str::to_string),
        projection: sub_range(body, raw.get()).map(|range| Projection {
            view: VIEW,
            scope: String::new(),
            key: id.to_string(),
            state: identity.state,
            attrs,
            order: None,
            range,
        }),
    })
}

/// The 422 for an `identity.id` that is not a usable id, with the reference handler's message
/// `code`.
fn bad_identity_id(code: u32, detail: &str) -> SourceError {
    SourceError::Invalid {
        code: Some(code),
        errors: vec![FieldError {
            pointer: "/identity/id".into(),
            detail: detail.into(),
        }],
        hint: None,
    }
}

/// Why a body has no identity, from the keys it has (read only on this refusal's path). None for
/// `{"identity": null}`, which gets the reference handler's answer exactly.
fn why_no_identity(body: &[u8]) -> Option<&'static str> {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Keys {
        id: Option<IgnoredAny>,
        traits: Option<IgnoredAny>,
        schema_id: Option<IgnoredAny>,
    }
    // `identity: null` reads as None too, so look for the key itself.
    let has_identity_key =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .is_ok_and(|m| m.contains_key("identity"));
    let keys: Keys = serde_json::from_slice(body).unwrap_or_default();
    if has_identity_key {
        None
    } else if keys.id.is_some() || keys.traits.is_some() || keys.schema_id.is_some() {
        Some(
            "this is a bare identity: the web_hook body must be \
             `function(ctx) { identity: ctx.identity }`, which wraps it as {\"identity\": {…}}",
        )
    } else {
        Some(
            "the body has no `identity`: the web_hook body must be \
             `function(ctx) { identity: ctx.identity }`, which sends {\"identity\": {…}}",
        )
    }
}

/// The projection attribute `GET /admin/kratos/identities?email=` searches: the identity's
/// e-mail address in ASCII lower case (migration 0005 indexes it and fills it in for identities
/// stored before).
pub const EMAIL_ATTR: &str = "email";

/// The address an identity is found by: `traits.email` when the schema has one, else the first
/// verifiable, then recovery, address sent `via` e-mail; lower-cased (ASCII) so that the search
/// ignores case.
fn search_email(identity: &Identity) -> Option<String> {
    #[derive(Deserialize)]
    struct Traits {
        email: Option<serde_json::Value>,
    }
    let from_traits = identity
        .traits
        .as_deref()
        .and_then(|t| serde_json::from_str::<Traits>(t.get()).ok())
        .and_then(|t| match t.email {
            Some(serde_json::Value::String(e)) => Some(e),
            _ => None,
        });
    let verifiable = identity
        .verifiable_addresses
        .iter()
        .flatten()
        .map(|a| (&a.via, &a.value));
    let recovery = identity
        .recovery_addresses
        .iter()
        .flatten()
        .map(|a| (&a.via, &a.value));
    from_traits
        .or_else(|| {
            verifiable
                .chain(recovery)
                .find(|(via, _)| via.as_deref() == Some("email"))
                .map(|(_, value)| value.clone())
        })
        .filter(|e| !e.is_empty())
        .map(|e| e.to_ascii_lowercase())
}

/// Kratos' `messages` body for every refusal.
pub fn error_response(e: SourceError) -> Response {
    match e {
        SourceError::TooLarge { limit } => KratosMessages::error(
            MSG_TOO_LARGE,
            format!("the webhook body is larger than the limit of {limit} bytes"),
            None,
        )
        .into_response(StatusCode::PAYLOAD_TOO_LARGE),
        SourceError::BadRequest(d) => {
            KratosMessages::error(MSG_UNREADABLE, d, None).into_response(StatusCode::BAD_REQUEST)
        }
        SourceError::Malformed(d) => {
            KratosMessages::error(MSG_MALFORMED, d, None).into_response(StatusCode::BAD_REQUEST)
        }
        SourceError::UnsupportedMediaType(d) => KratosMessages::error(MSG_CONTENT_TYPE, d, None)
            .into_response(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        SourceError::Invalid { code, errors, hint } => {
            let kratos_id = code.unwrap_or(MSG_INVALID_FIELD);
            let first = errors.into_iter().next();
            let (text, context) = match (kratos_id, first) {
                // The reference handler's texts, exactly; a hint goes in `context`.
                (MSG_IDENTITY_NULL | MSG_IDENTITY_ID_EMPTY, Some(f)) => {
                    (f.detail, hint.map(|h| serde_json::json!({ "hint": h })))
                }
                (MSG_IDENTITY_ID_NOT_UUID, Some(f)) => {
                    (f.detail, Some(serde_json::json!({ "pointer": f.pointer })))
                }
                (_, Some(f)) => {
                    let text = if f.pointer.is_empty() {
                        f.detail.clone()
                    } else {
                        format!("{}: {}", f.pointer, f.detail)
                    };
                    (text, Some(serde_json::json!({ "pointer": f.pointer })))
                }
                (_, None) => (
                    "the body does not fit the identity format".to_string(),
                    None,
                ),
            };
            KratosMessages::error(kratos_id, text, context)
                .into_response(StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// Kratos' error body (`web_hook.go` `rawHookResponse`), which a flow-interrupting hook shows to
/// the user: `{"messages":[{"instance_ptr":…,"messages":[{"id":…,"text":…,"type":"error","context":…}]}]}`.
#[derive(Debug, Serialize)]
pub struct KratosMessages {
    messages: Vec<KratosErrorMessage>,
}

#[derive(Debug, Serialize)]
struct KratosErrorMessage {
    instance_ptr: Option<String>,
    messages: Vec<KratosDetail>,
}

#[derive(Debug, Serialize)]
struct KratosDetail {
    id: i64,
    text: String,
    #[serde(rename = "type")]
    kind: Cow<'static, str>,
    context: Option<serde_json::Value>,
}

impl KratosMessages {
    /// One flow-level error message (no `instance_ptr`), with an optional context object.
    pub fn error(id: u32, text: impl Into<String>, context: Option<serde_json::Value>) -> Self {
        Self {
            messages: vec![KratosErrorMessage {
                instance_ptr: None,
                messages: vec![KratosDetail {
                    id: i64::from(id),
                    text: text.into(),
                    kind: Cow::Borrowed("error"),
                    context,
                }],
            }],
        }
    }

    /// A `respond` rule's message, on the UI node `instance_ptr` (`None`: flow-level).
    pub fn rule(instance_ptr: Option<&str>, message: &respond::Message) -> Self {
        Self {
            messages: vec![KratosErrorMessage {
                instance_ptr: instance_ptr.map(str::to_string),
                messages: vec![KratosDetail {
                    id: message.id,
                    text: message.text.clone(),
                    kind: Cow::Owned(message.kind.clone()),
                    context: message.context.clone(),
                }],
            }],
        }
    }

    /// The answer with `status` (Kratos shows the messages only for 4xx other than 429).
    pub fn into_response(self, status: StatusCode) -> Response {
        json_response(status, "application/json", &self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    async fn body_of(res: Response) -> serde_json::Value {
        use http_body_util::BodyExt as _;
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// The Ory webhook guide's registration identity, sent before the identity is written
    /// (zero timestamps and address ids; docs/senders.md, Ory Kratos body).
    pub(crate) const GUIDE_IDENTITY: &str =
        include_str!("../../tests/fixtures/kratos_guide_identity.json");

    /// LeanCode CoreLibrary's test fixture identity (`KratosWebHookHandlerTests.cs`), plus
    /// v25+ fields.
    const LEANCODE_IDENTITY: &str = r#"{"id":"00000000-0000-0000-0000-000000000001","schema_id":"user",
"schema_url":"https://auth.local.lncd.pl/schemas/dXNlcg","state":"active","traits":{"email":"test@leancode.pl"},
"created_at":"2023-06-26T21:37:42Z","updated_at":"2023-06-26T21:37:42Z",
"recovery_addresses":[{"id":"00000000-0000-0000-0000-000000000002","value":"test@leancode.pl","via":"email","created_at":"2023-06-26T21:37:42Z","updated_at":"2023-06-26T21:37:42Z"}],
"verifiable_addresses":[{"id":"00000000-0000-0000-0000-000000000003","value":"test@leancode.pl","verified":true,"via":"email","status":"completed","verified_at":"2023-06-26T21:37:42Z","created_at":"2023-06-26T21:37:42Z","updated_at":"2023-06-26T21:37:42Z"}],
"metadata_public":{"plan":"pro"},"organization_id":null,"external_id":"crm-1","region":"eu-central","some_future_field":[1,2]}"#;

    fn body(identity: &str) -> Bytes {
        // go-jsonnet manifests indented, multi-line JSON.
        Bytes::from(format!("{{\n   \"identity\": {identity}\n}}\n"))
    }

    fn invalid(r: Result<ParsedEvent, SourceError>) -> (u32, Vec<FieldError>) {
        match r {
            Err(SourceError::Invalid { code, errors, .. }) => {
                (code.unwrap_or(MSG_INVALID_FIELD), errors)
            }
            other => panic!("expected 422, got {other:?}"),
        }
    }

    #[test]
    fn the_guide_and_leancode_identities_are_accepted_and_projected() {
        for identity in [GUIDE_IDENTITY, LEANCODE_IDENTITY] {
            let b = body(identity);
            let p = parse(&HeaderMap::new(), &b).unwrap();
            let Some(Projection {
                view,
                key: identity_id,
                range: raw,
                state,
                ..
            }) = p.projection
            else {
                panic!("no projection")
            };
            assert_eq!(view, VIEW);
            assert!(identity_id.starts_with("3a5293f1") || identity_id.ends_with("0001"));
            assert_eq!(state.as_deref(), Some("active"));
            assert_eq!(
                &b[raw],
                identity.as_bytes(),
                "the projection keeps the identity bytes as sent"
            );
            assert_eq!(p.dedupe_key, body_digest(&b));
        }
    }

    #[test]
    fn the_search_email_is_traits_email_else_an_email_address_lower_cased() {
        let email_of = |identity: &str| {
            let p = parse(&HeaderMap::new(), &body(identity)).unwrap();
            let attrs = p.projection.unwrap().attrs;
            attrs
                .iter()
                .find(|(k, _)| *k == EMAIL_ATTR)
                .map(|(_, v)| v.clone())
        };
        for (identity, want) in [
            (
                r#"{"id":"3a5293f1-f4d6-49f4-b34f-6da62c360604","traits":{"email":"Ann@Example.COM"}}"#,
                Some("ann@example.com"),
            ),
            (
                r#"{"id":"3a5293f1-f4d6-49f4-b34f-6da62c360604","traits":{"phone":"+1"},"verifiable_addresses":[{"value":"+1","via":"sms"},{"value":"B@x.io","via":"email"}]}"#,
                Some("b@x.io"),
            ),
            (
                r#"{"id":"3a5293f1-f4d6-49f4-b34f-6da62c360604","traits":"odd","recovery_addresses":[{"value":"C@x.io","via":"email"}]}"#,
                Some("c@x.io"),
            ),
            (
                r#"{"id":"3a5293f1-f4d6-49f4-b34f-6da62c360604","traits":{"email":7}}"#,
                None,
            ),
            (r#"{"id":"3a5293f1-f4d6-49f4-b34f-6da62c360604"}"#, None),
        ] {
            assert_eq!(email_of(identity).as_deref(), want, "{identity}");
        }
    }

    #[test]
    fn the_trigger_id_is_the_dedupe_key_when_present() {
        let mut h = HeaderMap::new();
        h.insert(
            TRIGGER_ID,
            HeaderValue::from_static("5f8e6a7c-0000-4000-8000-000000000001"),
        );
        h.insert(REQUEST_ID, HeaderValue::from_static("req-1"));
        let p = parse(&h, &body(GUIDE_IDENTITY)).unwrap();
        assert_eq!(p.dedupe_key, "trigger:5f8e6a7c-0000-4000-8000-000000000001");
        assert_eq!(
            p.sender_id.as_deref(),
            Some("5f8e6a7c-0000-4000-8000-000000000001")
        );

        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID, HeaderValue::from_static("req-1"));
        assert_eq!(
            parse(&h, &body(GUIDE_IDENTITY))
                .unwrap()
                .sender_id
                .as_deref(),
            Some("req-1")
        );
    }

    #[test]
    fn null_or_missing_identity_is_message_1() {
        for b in [r#"{"identity": null}"#, "{}", r#"{"other": 1}"#] {
            let (id, errors) = invalid(parse(&HeaderMap::new(), &Bytes::from(b)));
            assert_eq!(id, MSG_IDENTITY_NULL, "{b}");
            assert_eq!(errors[0].detail, "identity is null");
        }
    }

    #[test]
    fn empty_or_missing_identity_id_is_message_2() {
        for identity in [
            r#"{"id": ""}"#,
            r#"{"traits": {}}"#,
            r#"{"id": null}"#,
            // A C# `Guid`'s default, which the reference handler's `Id == default` refuses.
            r#"{"id": "00000000-0000-0000-0000-000000000000"}"#,
        ] {
            let (id, errors) = invalid(parse(&HeaderMap::new(), &body(identity)));
            assert_eq!(id, MSG_IDENTITY_ID_EMPTY, "{identity}");
            assert_eq!(errors[0].detail, "identity.id is empty");
        }
    }

    #[test]
    fn wrong_types_are_named_by_pointer() {
        for (identity, pointer) in [
            (r#"{"id": 5}"#, "/identity/id"),
            (r#"{"id": "x", "state": true}"#, "/identity/state"),
            (
                r#"{"id": "x", "verifiable_addresses": [{"value": "a"}, {"verified": false}]}"#,
                "/identity/verifiable_addresses/1/value",
            ),
            (
                r#"{"id": "x", "recovery_addresses": {}}"#,
                "/identity/recovery_addresses",
            ),
            (r#""just a string""#, "/identity"),
        ] {
            let (id, errors) = invalid(parse(&HeaderMap::new(), &body(identity)));
            assert_eq!(id, MSG_INVALID_FIELD, "{identity}");
            assert_eq!(
                errors[0].pointer, pointer,
                "{identity}: {}",
                errors[0].detail
            );
        }
    }

    #[test]
    fn bad_json_is_400_and_a_non_object_is_422() {
        assert!(matches!(
            parse(&HeaderMap::new(), &Bytes::from_static(b"{\"identity\":")),
            Err(SourceError::Malformed(_))
        ));
        assert!(matches!(
            parse(&HeaderMap::new(), &Bytes::from_static(b"nope")),
            Err(SourceError::Malformed(_))
        ));
        assert!(matches!(
            parse(
                &HeaderMap::new(),
                &body(r#"{"id": "x", "traits": {"a": tru}}"#)
            ),
            Err(SourceError::Malformed(_))
        ));
        let (id, _) = invalid(parse(&HeaderMap::new(), &Bytes::from_static(b"[1]")));
        assert_eq!(id, MSG_INVALID_FIELD);
    }

    #[tokio::test]
    async fn kratos_messages_match_the_reference_handler_shape() {
        let res = KratosMessages::error(1, "identity is null", None)
            .into_response(StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(res.status(), 422);
        assert_eq!(
            body_of(res).await,
            serde_json::json!({"messages":[{"instance_ptr":null,"messages":[{"id":1,"text":"identity is null","type":"error","context":null}]}]})
        );
    }
}
