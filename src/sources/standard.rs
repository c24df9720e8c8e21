//! `standard`: any Standard Webhooks sender (Svix-powered SaaS, OpenAI, Clerk, …; PROTOCOLS.md
//! §5), usually verified with `scheme: standard_webhooks`.
//!
//! - The dedupe key (and the sender's id) is the `webhook-id` header: the spec makes it the same
//!   on every attempt of a message and recommends it for de-duplication. The verifier already
//!   refused a request without it (under `standard_webhooks`); under another scheme its absence
//!   is a 422.
//! - The body must be a JSON object: the spec's payload is `{"type", "timestamp", "data"}`.
//!   Only `type` is read, and it is the event type; the spec recommends rather than requires the
//!   structure, so a payload without `type` is stored without an event type. A `type` that is
//!   there must be a non-empty string (422 at `/type` otherwise). Every other field is the
//!   sender's business.

use std::borrow::Cow;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::Deserialize;

use super::error::SourceError;
use super::kind::{Kind, ParsedEvent, Registration, without_options};
use super::parse::{check_depth, from_json};

/// `kind: standard`. It takes no options.
pub const KIND: Registration = Registration {
    name: "standard",
    options: &[],
    build: without_options::<Standard>,
};

/// The header whose value is the dedupe key.
const ID_HEADER: &str = "webhook-id";

/// A Standard Webhooks sender.
#[derive(Debug, Default)]
pub struct Standard;

impl Kind for Standard {
    fn name(&self) -> &'static str {
        KIND.name
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<ParsedEvent, SourceError> {
        parse(headers, body)
    }
}

/// The only field read: the spec's recommended `type`.
#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
}

/// Validates a Standard Webhooks body and finds its event type, with `webhook-id` as the dedupe
/// key.
///
/// # Errors
/// 400 for bad JSON; 422 for a body that is not an object, a `type` that is not a non-empty
/// string, or a missing, repeated or unreadable `webhook-id`.
pub fn parse(headers: &HeaderMap, body: &Bytes) -> Result<ParsedEvent, SourceError> {
    check_depth(body)?;
    let payload: Payload<'_> = from_json(body, "")?;
    if payload.kind.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(SourceError::invalid("/type", "must not be empty"));
    }
    let id = webhook_id(headers)?;
    Ok(ParsedEvent {
        event_type: payload.kind.map(Cow::into_owned),
        dedupe_key: id.clone(),
        sender_id: Some(id),
        projection: None,
    })
}

/// The `webhook-id` header's value.
fn webhook_id(headers: &HeaderMap) -> Result<String, SourceError> {
    let name = HeaderName::from_static(ID_HEADER);
    let mut values = headers.get_all(&name).iter();
    let why = match (values.next(), values.next()) {
        (Some(v), None) => match v.to_str().map(str::trim) {
            Ok(id) if !id.is_empty() => return Ok(id.to_string()),
            Ok(_) => "is empty",
            Err(_) => "is not visible ASCII",
        },
        (None, _) => "is missing (Standard Webhooks senders send it with every message)",
        (Some(_), Some(_)) => "is given more than once",
    };
    Err(SourceError::invalid(
        "",
        format!("the {ID_HEADER} header, this source's dedupe key, {why}"),
    ))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    /// PROTOCOLS.md §6.3: the spec's thin payload.
    const BODY: &str = r#"{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}"#;
    const ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";

    fn with_id(id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ID_HEADER, HeaderValue::from_str(id).unwrap());
        h
    }

    fn refused_at(headers: &HeaderMap, body: &str) -> (String, String) {
        match parse(headers, &Bytes::from(body.to_string())) {
            Err(SourceError::Invalid { errors, .. }) => {
                (errors[0].pointer.clone(), errors[0].detail.clone())
            }
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn the_webhook_id_is_the_dedupe_key_and_type_the_event_type() {
        let p = parse(&with_id(ID), &Bytes::from_static(BODY.as_bytes())).unwrap();
        assert_eq!(p.dedupe_key, ID);
        assert_eq!(p.sender_id.as_deref(), Some(ID));
        assert_eq!(p.event_type.as_deref(), Some("contact.created"));
    }

    #[test]
    fn a_payload_without_type_is_stored_without_an_event_type() {
        let p = parse(&with_id(ID), &Bytes::from_static(br#"{"data":{}}"#)).unwrap();
        assert_eq!(p.event_type, None);
        assert_eq!(p.dedupe_key, ID);
    }

    #[test]
    fn payloads_that_do_not_fit_name_the_field() {
        let h = with_id(ID);
        assert_eq!(refused_at(&h, "[1]").0, "");
        assert_eq!(refused_at(&h, r#""text""#).0, "");
        assert_eq!(refused_at(&h, r#"{"type":7}"#).0, "/type");
        assert_eq!(refused_at(&h, r#"{"type":" "}"#).0, "/type");
        assert!(matches!(
            parse(&h, &Bytes::from_static(b"{\"type\":")),
            Err(SourceError::Malformed(_))
        ));
    }

    #[test]
    fn a_missing_or_repeated_webhook_id_is_named() {
        let (pointer, detail) = refused_at(&HeaderMap::new(), BODY);
        assert_eq!(pointer, "");
        assert!(detail.contains("webhook-id header") && detail.contains("missing"));
        let mut twice = with_id(ID);
        twice.append(ID_HEADER, HeaderValue::from_static("msg_other"));
        assert!(refused_at(&twice, BODY).1.contains("more than once"));
        assert!(refused_at(&with_id(" "), BODY).1.contains("empty"));
    }
}
