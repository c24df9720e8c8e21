//! The MassTransit envelope (`application/vnd.masstransit+json`), as MassTransit's default
//! System.Text.Json serializer reads it (research: `../shared/DELIVERY.md` §1.2).
//!
//! - `messageId` (and `conversationId`) is the hookgate event id: a GUID string, the same on
//!   every attempt and replay, so the EF inbox/outbox a consumer runs can drop repeats.
//! - `messageType` is a list of one URN; `message` is the payload, never `null`.
//! - Address and id fields hookgate has nothing for are `null`, never a relative URI or a
//!   non-GUID (either makes the consumer fault).
//! - The payload is spliced from the stored bytes (`serde_json::value::RawValue`), never
//!   re-serialized: what the sender sent is what the consumer reads.

use serde::Serialize;
use serde_json::value::RawValue;

/// The content type of the envelope.
pub const CONTENT_TYPE: &str = "application/vnd.masstransit+json";

/// What goes in the envelope's `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// The stored JSON body as it is.
    Body,
    /// LeanCode's `KratosIdentityUpdated(Guid Id, DateTime DateOccurred, Identity Identity)`:
    /// `{"id", "dateOccurred", "identity"}` with `identity` from the stored Kratos body.
    KratosIdentityUpdated,
}

/// One event, as the envelope needs it.
#[derive(Debug, Clone, Copy)]
pub struct Parts<'a> {
    /// The hookgate event id.
    pub event_id: uuid::Uuid,
    /// The source it came from.
    pub source: &'a str,
    /// The message type URN (`urn:message:Namespace:TypeName`).
    pub message_type: &'a str,
    /// What `message` holds.
    pub message: Message,
    /// When hookgate received the event (RFC 3339): the Kratos message's `dateOccurred`.
    pub received_at: &'a str,
    /// Now (RFC 3339): `sentTime`.
    pub sent_time: &'a str,
    /// The stored body.
    pub body: &'a [u8],
}

/// Why an event cannot be put in an envelope (the delivery fails; retrying does not help).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The stored body is not JSON, so it cannot be a MassTransit `message`.
    #[error(
        "the event's body is not JSON, so it cannot be a MassTransit message: use `format: raw` for this source"
    )]
    NotJson,
    /// `message: kratos_identity_updated` for a body without an `identity` object.
    #[error(
        "the event's body has no `identity` object: `message: kratos_identity_updated` is for Kratos sources only"
    )]
    NoIdentity,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    message_id: String,
    request_id: Option<()>,
    correlation_id: Option<()>,
    conversation_id: &'a str,
    initiator_id: Option<()>,
    source_address: Option<()>,
    destination_address: Option<()>,
    response_address: Option<()>,
    fault_address: Option<()>,
    message_type: [&'a str; 1],
    message: &'a RawValue,
    expiration_time: Option<()>,
    sent_time: &'a str,
    headers: Headers<'a>,
    host: Host,
}

#[derive(Serialize)]
struct Headers<'a> {
    #[serde(rename = "Hookgate-Event-Id")]
    event_id: &'a str,
    #[serde(rename = "Hookgate-Source")]
    source: &'a str,
}

/// MassTransit's `HostInfo`: who sent it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Host {
    machine_name: String,
    process_name: &'static str,
    process_id: u32,
    assembly: &'static str,
    assembly_version: &'static str,
    framework_version: Option<()>,
    mass_transit_version: Option<()>,
    operating_system_version: &'static str,
}

impl Host {
    fn this() -> Self {
        Host {
            machine_name: std::env::var("HOSTNAME").unwrap_or_else(|_| "hookgate".into()),
            process_name: "hookgate",
            process_id: std::process::id(),
            assembly: "hookgate",
            assembly_version: env!("CARGO_PKG_VERSION"),
            framework_version: None,
            mass_transit_version: None,
            operating_system_version: std::env::consts::OS,
        }
    }
}

/// The Kratos body's identity, its bytes kept.
#[derive(serde::Deserialize)]
struct KratosBody<'a> {
    #[serde(borrow)]
    identity: Option<&'a RawValue>,
}

/// `KratosIdentityUpdated` as LeanCode's record serializes (camelCase).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IdentityUpdated<'a> {
    id: &'a str,
    date_occurred: &'a str,
    identity: &'a RawValue,
}

/// The envelope's bytes for one event.
///
/// # Errors
/// [`EnvelopeError`] when the body cannot be the message asked for.
pub fn envelope(p: &Parts<'_>) -> Result<Vec<u8>, EnvelopeError> {
    let text = std::str::from_utf8(p.body).map_err(|_| EnvelopeError::NotJson)?;
    let mut id_buf = uuid::Uuid::encode_buffer();
    let id: &str = p.event_id.hyphenated().encode_lower(&mut id_buf);
    let built;
    let message: &RawValue = match p.message {
        Message::Body => serde_json::from_str(text).map_err(|_| EnvelopeError::NotJson)?,
        Message::KratosIdentityUpdated => {
            let body: KratosBody<'_> =
                serde_json::from_str(text).map_err(|_| EnvelopeError::NotJson)?;
            let identity = body
                .identity
                .filter(|i| i.get().trim_start().starts_with('{'))
                .ok_or(EnvelopeError::NoIdentity)?;
            let json = serde_json::to_string(&IdentityUpdated {
                id,
                date_occurred: p.received_at,
                identity,
            })
            .map_err(|_| EnvelopeError::NotJson)?;
            built = RawValue::from_string(json).map_err(|_| EnvelopeError::NotJson)?;
            &built
        }
    };
    serde_json::to_vec(&Envelope {
        message_id: id.to_string(),
        request_id: None,
        correlation_id: None,
        conversation_id: id,
        initiator_id: None,
        source_address: None,
        destination_address: None,
        response_address: None,
        fault_address: None,
        message_type: [p.message_type],
        message,
        expiration_time: None,
        sent_time: p.sent_time,
        headers: Headers {
            event_id: id,
            source: p.source,
        },
        host: Host::this(),
    })
    .map_err(|_| EnvelopeError::NotJson)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URN: &str = "urn:message:ExampleApp.Examples.Handlers.Identities:KratosIdentityUpdated";
    // Odd spacing and key order on purpose: the identity must arrive exactly as stored.
    const KRATOS: &str = r#"{"identity":  {"id":"3a5293f1-f4d6-49f4-b34f-6da62c360604", "traits":{"email":"joe@example.org"},"schema_id":"default","metadata_public":null,"n":1.50}}"#;

    fn parts(body: &str, message: Message) -> Parts<'_> {
        Parts {
            event_id: uuid::Uuid::parse_str("0193a5c2-7b1e-7d3a-9f64-2c8e5b1d4a70").unwrap(),
            source: "kratos",
            message_type: URN,
            message,
            received_at: "2026-11-26T10:20:30.123Z",
            sent_time: "2026-11-26T10:20:30.456Z",
            body: body.as_bytes(),
        }
    }

    #[test]
    fn a_kratos_event_becomes_kratos_identity_updated_with_the_identity_byte_for_byte() {
        let bytes = envelope(&parts(KRATOS, Message::KratosIdentityUpdated)).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let stored_identity = &KRATOS[KRATOS.find(" {").unwrap() + 1..KRATOS.len() - 1];
        assert!(
            text.contains(&format!("\"identity\":{stored_identity}")),
            "{text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let id = "0193a5c2-7b1e-7d3a-9f64-2c8e5b1d4a70";
        assert_eq!(v["messageId"], id);
        assert_eq!(v["conversationId"], id);
        assert_eq!(v["messageType"], serde_json::json!([URN]));
        assert_eq!(v["message"]["id"], id);
        assert_eq!(v["message"]["dateOccurred"], "2026-11-26T10:20:30.123Z");
        assert_eq!(
            v["message"]["identity"]["traits"]["email"],
            "joe@example.org"
        );
        assert_eq!(v["sentTime"], "2026-11-26T10:20:30.456Z");
        assert_eq!(v["headers"]["Hookgate-Event-Id"], id);
        assert_eq!(v["headers"]["Hookgate-Source"], "kratos");
        assert!(v["host"]["processId"].is_u64());
        // No field a consumer would fault on: ids GUIDs or null, addresses null.
        for f in [
            "requestId",
            "correlationId",
            "initiatorId",
            "sourceAddress",
            "destinationAddress",
            "responseAddress",
            "faultAddress",
            "expirationTime",
        ] {
            assert!(v[f].is_null(), "{f}");
        }
    }

    #[test]
    fn message_body_is_the_stored_json_as_it_is() {
        let body = r#"{ "type": "ConnectionUpdated",  "data": {"n": 1.0} }"#;
        let text = String::from_utf8(envelope(&parts(body, Message::Body)).unwrap()).unwrap();
        assert!(text.contains(&format!("\"message\":{body}")), "{text}");
    }

    #[test]
    fn a_body_that_cannot_be_the_message_is_refused_by_name() {
        assert_eq!(
            envelope(&parts("not json", Message::Body)),
            Err(EnvelopeError::NotJson)
        );
        assert_eq!(
            envelope(&Parts {
                body: &[0xff, 0xfe],
                ..parts("", Message::Body)
            }),
            Err(EnvelopeError::NotJson)
        );
        for body in [
            r#"{"a":1}"#,
            r#"{"identity":null}"#,
            r#"{"identity":"x"}"#,
            "[1]",
        ] {
            assert!(
                envelope(&parts(body, Message::KratosIdentityUpdated)).is_err(),
                "{body}"
            );
        }
    }
}
