//! `identus`: Hyperledger Identus Cloud Agent events, `{"type","id","ts","data","walletId"}`.
//!
//! The envelope `id` must be a UUID (the agent's `Event[A]` types it so), answered 422 at `/id`
//! otherwise. The four known `data` types are type-checked and projected into `identus_records`.
//! Unknown event types, unknown fields and unknown state values are accepted and stored: the
//! agent emits states its own OpenAPI file does not list, and a 422 would make it drop the event.

use std::borrow::Cow;

use bytes::Bytes;
use http::HeaderMap;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::value::RawValue;

use super::error::SourceError;
use super::kind::{Kind, ParsedEvent, Registration, without_options};
use super::parse::{check_depth, from_json, sub_range};
use crate::store::Projection;

/// `kind: identus`. It takes no options.
pub const KIND: Registration = Registration {
    name: "identus",
    options: &[],
    build: without_options::<Identus>,
};

/// The Hyperledger Identus Cloud Agent.
#[derive(Debug, Default)]
pub struct Identus;

impl Kind for Identus {
    fn name(&self) -> &'static str {
        KIND.name
    }

    fn parse(&self, _: &HeaderMap, body: &Bytes) -> Result<ParsedEvent, SourceError> {
        parse(body)
    }
}

/// The projection views, one per record kind: the latest state per wallet and record id.
pub const CONNECTIONS: &str = "identus/connections";
/// `IssueCredentialRecordUpdated`, keyed by `recordId`.
pub const CREDENTIALS: &str = "identus/credentials";
/// `PresentationUpdated`, keyed by `presentationId`.
pub const PRESENTATIONS: &str = "identus/presentations";
/// `DIDStatusUpdated`, keyed by `did`.
pub const DIDS: &str = "identus/dids";

/// The envelope (`event-notification` `Event[A]`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    data: &'a RawValue,
    #[serde(borrow)]
    wallet_id: Cow<'a, str>,
}

/// `ErrorResponse`, used by `metaLastFailure`.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct ErrorResponse {
    status: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    title: Option<String>,
    detail: Option<String>,
    instance: Option<String>,
}

/// Connection, issue and presentation invitations.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Invitation {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    from: Option<String>,
    invitation_url: Option<String>,
}

/// `ConnectionUpdated` data.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Connection {
    connection_id: String,
    state: String,
    thid: Option<String>,
    label: Option<String>,
    goal_code: Option<String>,
    goal: Option<String>,
    my_did: Option<String>,
    their_did: Option<String>,
    role: Option<String>,
    invitation: Option<Invitation>,
    created_at: Option<String>,
    updated_at: Option<String>,
    meta_retries: Option<i64>,
    meta_last_failure: Option<ErrorResponse>,
    #[serde(rename = "self")]
    self_: Option<String>,
    kind: Option<String>,
}

/// `IssueCredentialRecordUpdated` data.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct IssueCredentialRecord {
    record_id: String,
    protocol_state: String,
    thid: Option<String>,
    credential_format: Option<String>,
    subject_id: Option<String>,
    validity_period: Option<f64>,
    claims: Option<IgnoredAny>,
    automatic_issuance: Option<bool>,
    created_at: Option<String>,
    updated_at: Option<String>,
    role: Option<String>,
    credential: Option<String>,
    #[serde(rename = "issuingDID")]
    issuing_did: Option<String>,
    goal_code: Option<String>,
    goal: Option<String>,
    my_did: Option<String>,
    invitation: Option<Invitation>,
    meta_retries: Option<i64>,
    meta_last_failure: Option<ErrorResponse>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct Proof {
    schema_id: Option<String>,
    trust_issuers: Option<Vec<String>>,
}

/// `PresentationUpdated` data.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct PresentationStatus {
    presentation_id: String,
    status: String,
    thid: Option<String>,
    role: Option<String>,
    proofs: Option<Vec<Proof>>,
    data: Option<Vec<String>>,
    request_data: Option<Vec<String>>,
    disclosed_claims: Option<IgnoredAny>,
    connection_id: Option<String>,
    goal_code: Option<String>,
    goal: Option<String>,
    my_did: Option<String>,
    invitation: Option<Invitation>,
    meta_retries: Option<i64>,
    meta_last_failure: Option<ErrorResponse>,
}

/// `DIDStatusUpdated` data.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct ManagedDid {
    did: String,
    status: String,
    long_form_did: Option<String>,
}

fn typed<T: DeserializeOwned>(raw: &RawValue) -> Result<T, SourceError> {
    from_json(raw.get().as_bytes(), "/data")
}

fn required(pointer: &str, value: &str) -> Result<(), SourceError> {
    if value.trim().is_empty() {
        Err(SourceError::invalid(pointer, "must not be empty"))
    } else {
        Ok(())
    }
}

/// Validates an Identus event and finds its dedupe key (the envelope `id`) and projection.
///
/// # Errors
/// 400 for bad JSON, 422 naming the field for an event that does not fit.
pub fn parse(body: &Bytes) -> Result<ParsedEvent, SourceError> {
    check_depth(body)?;
    let env: Envelope<'_> = from_json(body, "")?;
    required("/type", &env.kind)?;
    required("/id", &env.id)?;
    // The agent's `Event[A]` has `id: UUID`: anything else cannot come from a real agent.
    if uuid::Uuid::try_parse(&env.id).is_err() {
        return Err(SourceError::invalid(
            "/id",
            "must be a UUID (the agent's event id), like 7f1e2b1a-3c1d-4a55-9f0e-2d0c6a4b9e01",
        ));
    }
    required("/walletId", &env.wallet_id)?;
    let ts = time::OffsetDateTime::parse(&env.ts, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
        SourceError::invalid(
            "/ts",
            "must be an RFC 3339 timestamp like 2024-05-01T10:20:30.123456Z",
        )
    })?;
    let ts_ns = i64::try_from(ts.unix_timestamp_nanos())
        .map_err(|_| SourceError::invalid("/ts", "is out of range"))?;

    let (kind, record_id, state) = match &*env.kind {
        "ConnectionUpdated" => {
            let c: Connection = typed(env.data)?;
            required("/data/connectionId", &c.connection_id)?;
            (Some(CONNECTIONS), c.connection_id, Some(c.state))
        }
        "IssueCredentialRecordUpdated" => {
            let r: IssueCredentialRecord = typed(env.data)?;
            required("/data/recordId", &r.record_id)?;
            (Some(CREDENTIALS), r.record_id, Some(r.protocol_state))
        }
        "PresentationUpdated" => {
            let p: PresentationStatus = typed(env.data)?;
            required("/data/presentationId", &p.presentation_id)?;
            (Some(PRESENTATIONS), p.presentation_id, Some(p.status))
        }
        "DIDStatusUpdated" => {
            let d: ManagedDid = typed(env.data)?;
            required("/data/did", &d.did)?;
            (Some(DIDS), d.did, Some(d.status))
        }
        // A type this version does not know: stored as it is, without a projection.
        _ => (None, String::new(), None),
    };
    let data = sub_range(body, env.data.get());
    // Ordered by `ts`: the agent does not deliver in order, and an older state must not
    // replace a newer one.
    let projection = kind.zip(data).map(|(view, range)| Projection {
        view,
        scope: env.wallet_id.to_string(),
        key: record_id,
        state,
        attrs: vec![("ts", env.ts.to_string())],
        order: Some(ts_ns),
        range,
    });
    Ok(ParsedEvent {
        event_type: Some(env.kind.into_owned()),
        dedupe_key: env.id.to_string(),
        sender_id: Some(env.id.into_owned()),
        projection,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The sample of the agent's webhook docs, from an older agent: no `thid`, no `metaRetries`
    /// (docs/senders.md, Identus event kinds).
    pub const DOCS_CONNECTION: &str =
        include_str!("../../tests/fixtures/identus_docs_connection.json");

    /// Built from the current agent's data classes (docs/senders.md, Identus event kinds).
    pub const CONNECTION: &str = include_str!("../../tests/fixtures/identus_connection.json");
    pub const CREDENTIAL: &str = include_str!("../../tests/fixtures/identus_credential.json");
    pub const PRESENTATION: &str = include_str!("../../tests/fixtures/identus_presentation.json");
    pub const DID: &str = include_str!("../../tests/fixtures/identus_did.json");

    fn projected(body: &str) -> (ParsedEvent, &'static str, String, Option<String>) {
        let p = parse(&Bytes::from(body.to_string())).unwrap();
        let Some(Projection {
            view, key, state, ..
        }) = p.projection.clone()
        else {
            panic!("no projection for {body}")
        };
        (p, view, key, state)
    }

    #[test]
    fn the_four_sample_events_parse_and_project() {
        let (p, kind, id, state) = projected(CONNECTION);
        assert_eq!(
            (kind, id.as_str(), state.as_deref()),
            (
                CONNECTIONS,
                "0527aea1-d131-3948-a34d-03af39aba8b4",
                Some("ConnectionResponseSent")
            )
        );
        assert_eq!(p.dedupe_key, "7f1e2b1a-3c1d-4a55-9f0e-2d0c6a4b9e01");
        assert_eq!(p.event_type.as_deref(), Some("ConnectionUpdated"));
        let (_, kind, id, state) = projected(CREDENTIAL);
        assert_eq!(
            (kind, id.as_str(), state.as_deref()),
            (
                CREDENTIALS,
                "80d612dc-0ded-4ac9-90b4-1b8eabb04545",
                Some("CredentialSent")
            )
        );
        let (_, kind, id, state) = projected(PRESENTATION);
        assert_eq!(
            (kind, id.as_str(), state.as_deref()),
            (
                PRESENTATIONS,
                "3c6d9fa5-d277-431e-a6cb-d3956e47e610",
                Some("PresentationVerified")
            )
        );
        let (_, kind, id, state) = projected(DID);
        assert_eq!(kind, DIDS);
        assert!(id.starts_with("did:prism:4a5b"));
        assert_eq!(state.as_deref(), Some("PUBLISHED"));
    }

    #[test]
    fn the_docs_sample_from_an_older_agent_is_accepted() {
        let (_, kind, id, state) = projected(DOCS_CONNECTION);
        assert_eq!(
            (kind, id.as_str(), state.as_deref()),
            (
                CONNECTIONS,
                "c10787cf-99bb-47f4-99bb-1fdcca32b673",
                Some("InvitationGenerated")
            )
        );
    }

    #[test]
    fn the_projection_keeps_the_data_bytes_as_sent() {
        let body = Bytes::from_static(DID.as_bytes());
        let Some(Projection {
            range: data,
            order: Some(ts_ns),
            ..
        }) = parse(&body).unwrap().projection
        else {
            panic!()
        };
        assert_eq!(&body[data], br#"{"did":"did:prism:4a5b5cf0a513e83b598bbea25cd6196746747f361a73ef77068268bc9bd732ff","status":"PUBLISHED"}"#);
        assert_eq!(ts_ns, 1_714_560_000_000_000_000);
    }

    #[test]
    fn unknown_types_states_and_fields_are_accepted() {
        let unknown_type = CONNECTION.replace("ConnectionUpdated", "WalletRotated");
        let p = parse(&Bytes::from(unknown_type)).unwrap();
        assert_eq!(p.event_type.as_deref(), Some("WalletRotated"));
        assert!(p.projection.is_none());
        let new_state = CONNECTION
            .replace("ConnectionResponseSent", "InvitationExpired")
            .replace(
                "\"kind\":\"Connection\"",
                "\"kind\":\"Connection\",\"newField\":{\"x\":1}",
            );
        let (_, _, _, state) = projected(&new_state);
        assert_eq!(state.as_deref(), Some("InvitationExpired"));
    }

    #[test]
    fn events_that_do_not_fit_name_the_field() {
        for (body, pointer) in [
            (CONNECTION.replace("\"connectionId\":\"0527aea1-d131-3948-a34d-03af39aba8b4\",", ""), "/data/connectionId"),
            (CONNECTION.replace("\"state\":\"ConnectionResponseSent\"", "\"state\":7"), "/data/state"),
            (CONNECTION.replace("\"metaRetries\":5", "\"metaRetries\":\"five\""), "/data/metaRetries"),
            (CREDENTIAL.replace("\"protocolState\":\"CredentialSent\",", ""), "/data/protocolState"),
            (PRESENTATION.replace("\"proofs\":[]", "\"proofs\":{}"), "/data/proofs"),
            (DID.replace("\"did\":\"did:prism:4a5b5cf0a513e83b598bbea25cd6196746747f361a73ef77068268bc9bd732ff\"", "\"did\":\"\""), "/data/did"),
            (DID.replace("\"ts\":\"2024-05-01T10:40:00Z\"", "\"ts\":\"yesterday\""), "/ts"),
            (DID.replace(",\"walletId\":\"00000000-0000-0000-0000-000000000000\"", ""), "/walletId"),
            (DID.replace("\"id\":\"4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8\"", "\"id\":42"), "/id"),
            (DID.replace("4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", "event-42"), "/id"),
            (DID.replace("4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b"), "/id"),
            (DID.replace("\"type\":\"DIDStatusUpdated\",", ""), "/type"),
        ] {
            match parse(&Bytes::from(body.clone())) {
                Err(SourceError::Invalid { errors, .. }) => assert_eq!(errors[0].pointer, pointer, "{body}"),
                other => panic!("expected 422 for {pointer}, got {other:?}"),
            }
        }
    }

    #[test]
    fn broken_json_is_400() {
        for body in [
            &CONNECTION[..CONNECTION.len() - 1],
            "",
            "{\"type\":}",
            &format!("{DID} trailing"),
        ] {
            assert!(
                matches!(
                    parse(&Bytes::from(body.to_string())),
                    Err(SourceError::Malformed(_))
                ),
                "{body}"
            );
        }
    }
}
