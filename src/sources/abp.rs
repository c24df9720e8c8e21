//! `abp`: ASP.NET Boilerplate's `WebhookPayload`
//! (`{"Id","WebhookEvent","Attempt","Data","CreationTimeUtc"}`), or the bare data for publishers
//! set to `SendExactSameData` (`envelope: false`).
//!
//! The dedupe key is the payload `Id`: the body itself changes on every attempt (`Attempt`,
//! `CreationTimeUtc`). With `envelope: false` the body is the same on every attempt, so its
//! SHA-256 is the key.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::error::SourceError;
use super::kind::{Kind, OptionError, Options, ParsedEvent, Registration, read_options};
use super::parse::{body_digest, check_depth, from_json};
use crate::config::de::lenient_bool_opt;

/// `kind: abp`, with its options `events` and `envelope`.
pub const KIND: Registration = Registration {
    name: "abp",
    options: &["events", "envelope"],
    build,
};

/// The options of an `abp` source.
#[derive(Debug, Default, Deserialize)]
struct AbpOptions {
    /// Accept only these webhook names (others get 422).
    #[serde(default)]
    events: Option<Vec<String>>,
    /// `false` for publishers set to `SendExactSameData` (the body is the bare data).
    #[serde(default, deserialize_with = "lenient_bool_opt")]
    envelope: Option<bool>,
}

fn build(options: &Options) -> Result<Arc<dyn Kind>, Vec<OptionError>> {
    let o: AbpOptions = read_options(options)?;
    let mut errors = Vec::new();
    if let Some(events) = &o.events {
        if o.envelope == Some(false) {
            errors.push((
                "events".into(),
                "a source with `envelope: false` receives bare data with no webhook name to filter on; remove `events`".into(),
            ));
        }
        if events.iter().any(|n| n.trim().is_empty()) {
            errors.push(("events".into(), "names must not be empty".into()));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Arc::new(Abp {
        envelope: o.envelope.unwrap_or(true),
        events: o.events.map(|e| e.into_iter().collect()),
    }))
}

/// ASP.NET Boilerplate.
#[derive(Debug)]
pub struct Abp {
    /// False when the body is the bare data (`SendExactSameData`).
    envelope: bool,
    /// The allowed webhook names, if restricted.
    events: Option<HashSet<String>>,
}

impl Kind for Abp {
    fn name(&self) -> &'static str {
        KIND.name
    }

    fn parse(&self, _: &HeaderMap, body: &Bytes) -> Result<ParsedEvent, SourceError> {
        parse(body, self.envelope, self.events.as_ref())
    }
}

/// The payload, PascalCase as ABP writes it (camelCase accepted for custom serializer options).
#[derive(Deserialize)]
#[allow(dead_code)]
struct Payload<'a> {
    #[serde(rename = "Id", alias = "id", borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "WebhookEvent", alias = "webhookEvent", borrow)]
    webhook_event: Cow<'a, str>,
    #[serde(rename = "Attempt", alias = "attempt", default)]
    attempt: Option<i64>,
    #[serde(rename = "Data", alias = "data", default)]
    data: Option<IgnoredAny>,
    #[serde(rename = "CreationTimeUtc", alias = "creationTimeUtc", default, borrow)]
    creation_time_utc: Option<Cow<'a, str>>,
}

/// Validates an ABP body and finds its dedupe key.
///
/// # Errors
/// 400 for bad JSON, 422 naming the field for a payload that does not fit or a webhook name
/// outside the source's `events` allow-list.
pub fn parse(
    body: &Bytes,
    envelope: bool,
    allowed: Option<&HashSet<String>>,
) -> Result<ParsedEvent, SourceError> {
    check_depth(body)?;
    if !envelope {
        serde_json::from_slice::<IgnoredAny>(body).map_err(|e| SourceError::malformed(&e))?;
        return Ok(ParsedEvent {
            event_type: None,
            dedupe_key: body_digest(body),
            sender_id: None,
            projection: None,
        });
    }
    let p: Payload<'_> = from_json(body, "")?;
    if p.id.trim().is_empty() {
        return Err(SourceError::invalid("/Id", "must not be empty"));
    }
    if p.webhook_event.trim().is_empty() {
        return Err(SourceError::invalid("/WebhookEvent", "must not be empty"));
    }
    if let Some(allowed) = allowed {
        if !allowed.contains(&*p.webhook_event) {
            return Err(SourceError::invalid(
                "/WebhookEvent",
                format!(
                    "`{}` is not one of the webhooks this source accepts",
                    p.webhook_event
                ),
            ));
        }
    }
    Ok(ParsedEvent {
        event_type: Some(p.webhook_event.into_owned()),
        dedupe_key: p.id.to_string(),
        sender_id: Some(p.id.into_owned()),
        projection: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/senders.md, ABP test vectors 1 and 2.
    const BODY_1: &str = include_str!("../../tests/fixtures/abp_body_1.json");
    const BODY_2: &str = include_str!("../../tests/fixtures/abp_body_2.json");

    fn ok(body: &str) -> ParsedEvent {
        parse(&Bytes::from(body.to_string()), true, None).unwrap()
    }

    #[test]
    fn both_attempts_of_the_sample_share_one_dedupe_key() {
        let a = ok(BODY_1);
        let b = ok(BODY_2);
        assert_eq!(a.dedupe_key, "5a0c4c1e-8c2b-4f6e-9d3a-2b7e1f0a9c44");
        assert_eq!(a.dedupe_key, b.dedupe_key);
        assert_eq!(a.event_type.as_deref(), Some("NewUserRegistered"));
    }

    #[test]
    fn camel_case_payloads_and_unknown_fields_are_accepted() {
        let p =
            ok(r#"{"id":"a","webhookEvent":"TenantDeleted","attempt":1,"data":null,"extra":true}"#);
        assert_eq!(p.event_type.as_deref(), Some("TenantDeleted"));
    }

    #[test]
    fn the_allow_list_refuses_other_webhooks() {
        let allowed: HashSet<String> = ["TenantDeleted".to_string()].into();
        let b = Bytes::from_static(BODY_1.as_bytes());
        match parse(&b, true, Some(&allowed)) {
            Err(SourceError::Invalid { errors, .. }) => {
                assert_eq!(errors[0].pointer, "/WebhookEvent")
            }
            other => panic!("{other:?}"),
        }
        let allowed: HashSet<String> = ["NewUserRegistered".to_string()].into();
        assert!(parse(&b, true, Some(&allowed)).is_ok());
    }

    #[test]
    fn payloads_that_do_not_fit_name_the_field() {
        for (body, pointer) in [
            (
                BODY_1.replace("\"Id\":\"5a0c4c1e-8c2b-4f6e-9d3a-2b7e1f0a9c44\",", ""),
                "/Id",
            ),
            (
                BODY_1.replace(
                    "\"WebhookEvent\":\"NewUserRegistered\"",
                    "\"WebhookEvent\":\"\"",
                ),
                "/WebhookEvent",
            ),
            (
                BODY_1.replace("\"Attempt\":1", "\"Attempt\":\"one\""),
                "/Attempt",
            ),
            ("[]".to_string(), ""),
        ] {
            match parse(&Bytes::from(body.clone()), true, None) {
                Err(SourceError::Invalid { errors, .. }) => {
                    assert_eq!(errors[0].pointer, pointer, "{body}")
                }
                other => panic!("expected 422 at {pointer}, got {other:?}"),
            }
        }
    }

    #[test]
    fn bare_data_is_keyed_by_its_digest() {
        let data = Bytes::from_static(br#"{"UserName":"john.doe"}"#);
        let p = parse(&data, false, None).unwrap();
        assert_eq!(p.dedupe_key, body_digest(&data));
        assert!(p.event_type.is_none());
        assert!(matches!(
            parse(&Bytes::from_static(b"{"), false, None),
            Err(SourceError::Malformed(_))
        ));
    }
}
