//! Sender kinds: what each sender's payload must look like, how a retry is recognised, and how
//! hookgate answers it.
//!
//! # Layout
//! - [`Kind`]: the one trait every kind implements (parse, accepted answer, refusal answer).
//! - [`KINDS`]: every kind, by the name `kind:` takes. **A new kind is one file here and one
//!   line in that list**: its options, checks, parser and answers live in its file.
//! - one file per kind: [`kratos`], [`identus`], [`abp`].
//! - [`json`]: what every parser shares (depth limit, object check, field-naming errors).
//! - [`error`]: [`SourceError`], why a request was refused, and the problem+json answer.
//!
//! May call: `config` (a source block's options), `http` (answers), `store` (the projection
//! type a parser fills in). The request path that calls a kind is `crate::receive`.

pub mod abp;
pub mod error;
pub mod identus;
pub mod json;
pub mod kratos;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;

use crate::config::{SOURCE_KEYS, Settings, SourceSettings};
use crate::store::{EventId, Projection};

pub use error::SourceError;
pub use json::{MAX_JSON_DEPTH, valid_json};

/// A sender kind, built from a source's options: how its payloads are read and answered.
pub trait Kind: Send + Sync + 'static {
    /// The kind's name (`kratos`), stored with each event.
    fn name(&self) -> &'static str;

    /// Validates a verified body and finds its event type, dedupe key, sender id and projection.
    ///
    /// # Errors
    /// 400 ([`SourceError::Malformed`]) for a body that is not JSON, 422
    /// ([`SourceError::Invalid`], naming the fields) for one that does not fit the format.
    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<ParsedEvent, SourceError>;

    /// The body of the 2xx answer to a stored event (`Hookgate-Event-Id` is added by the
    /// caller): `{"status":"accepted","event_id":…,"duplicate":…}` unless the sender needs
    /// something else.
    fn accepted(&self, event_id: EventId, duplicate: bool) -> Response {
        let body =
            format!(r#"{{"status":"accepted","event_id":"{event_id}","duplicate":{duplicate}}}"#);
        (
            StatusCode::OK,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response()
    }

    /// The answer to a request refused before it was stored, in the sender's error language
    /// (problem+json unless the sender has its own).
    fn refused(&self, e: SourceError) -> Response {
        e.into_problem()
    }
}

/// What a kind's parser found in a valid payload.
#[derive(Debug)]
pub struct ParsedEvent {
    /// The sender's event type.
    pub event_type: Option<String>,
    /// The key that recognises retries.
    pub dedupe_key: String,
    /// The sender's own id of the event.
    pub sender_id: Option<String>,
    /// The projection row this event updates.
    pub projection: Option<Projection>,
}

/// A source block's keys beyond the ones every source has: the kind's own options.
pub type Options = BTreeMap<String, serde_json::Value>;

/// One field of a source block that is wrong: its path under the block (`events[0]`), and why.
pub type OptionError = (String, String);

/// What builds a kind from a source block's options.
pub type Builder = fn(&Options) -> Result<Arc<dyn Kind>, Vec<OptionError>>;

/// How a kind is listed in [`KINDS`].
pub struct Registration {
    /// The name `kind:` takes.
    pub name: &'static str,
    /// The option keys it takes besides the common ones (`kind`, `path`, `verify`,
    /// `body_limit`).
    pub options: &'static [&'static str],
    /// Builds the kind from a source block's options (only keys of `options` are given).
    pub build: Builder,
}

/// Every kind hookgate knows.
pub const KINDS: &[Registration] = &[kratos::KIND, identus::KIND, abp::KIND];

/// The registration of kind `name`.
pub fn registration(name: &str) -> Option<&'static Registration> {
    KINDS.iter().find(|k| k.name == name)
}

/// Builds a source's kind from its block.
///
/// # Errors
/// Every problem found, each naming its field under the block (`kind`, `events`, …): an unknown
/// kind, an option the kind does not take, or an option value it refuses.
pub fn build(source: &SourceSettings) -> Result<Arc<dyn Kind>, Vec<OptionError>> {
    let Some(reg) = registration(&source.kind) else {
        let names: Vec<String> = KINDS.iter().map(|k| format!("`{}`", k.name)).collect();
        return Err(vec![(
            "kind".into(),
            format!(
                "unknown variant `{}`, expected one of {}",
                source.kind,
                names.join(", ")
            ),
        )]);
    };
    let mut errors = Vec::new();
    for key in source.options.keys() {
        if reg.options.contains(&key.as_str()) {
            continue;
        }
        let takers: Vec<String> = KINDS
            .iter()
            .filter(|k| k.options.contains(&key.as_str()))
            .map(|k| format!("`{}`", k.name))
            .collect();
        let why = if takers.is_empty() {
            let mut expected: Vec<String> = SOURCE_KEYS.iter().map(|k| format!("`{k}`")).collect();
            expected.extend(reg.options.iter().map(|k| format!("`{k}`")));
            format!(
                "unknown field `{key}`, expected one of {}",
                expected.join(", ")
            )
        } else {
            format!("only {} sources take `{key}`", takers.join(" and "))
        };
        errors.push((key.clone(), why));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    (reg.build)(&source.options)
}

/// Checks every source's kind and options, as `serve` would build them.
pub fn check(settings: &Settings) -> Vec<String> {
    let mut errors = Vec::new();
    for (id, source) in &settings.sources {
        if let Err(e) = build(source) {
            errors.extend(
                e.into_iter()
                    .map(|(field, why)| format!("sources.{id}.{field}: {why}")),
            );
        }
    }
    errors
}

/// Reads a kind's options into its own type, naming the failing field.
///
/// # Errors
/// The field and why its value does not fit.
pub fn read_options<T: DeserializeOwned>(options: &Options) -> Result<T, Vec<OptionError>> {
    let value = serde_json::Value::Object(
        options
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        vec![(path, e.into_inner().to_string())]
    })
}

#[cfg(test)]
mod tests;
