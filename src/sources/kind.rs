//! [`Kind`]: the trait every sender kind implements, and how a kind is registered.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;

use super::error::SourceError;
use crate::store::{EventId, Projection};

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

    /// What to do with a payload that [`Kind::parse`] accepted, decided before it is stored:
    /// store it and answer with [`Kind::accepted`] (the default), store it and answer otherwise,
    /// or not store it at all (a Kratos `respond` rule interrupting the flow). The same body
    /// must get the same decision, so that a retry of a stored event gets the same answer.
    fn decide(&self, _body: &Bytes) -> Decision {
        Decision::Store(None)
    }
}

/// What [`Kind::decide`] chose for a valid payload.
#[derive(Debug)]
pub enum Decision {
    /// Store the event; answer with this instead of [`Kind::accepted`] when given (after the
    /// commit, as every 2xx; the caller adds `Hookgate-Event-Id`).
    Store(Option<Response>),
    /// Do not store the event: answer this. `why` is for the log (from the configuration,
    /// never from the body).
    Interrupt {
        /// The answer.
        answer: Response,
        /// What interrupted it, for the log.
        why: String,
    },
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
pub type Options = serde_json::Map<String, serde_json::Value>;

/// One field of a source block that is wrong: its path under the block (`events[0]`), and why.
pub type OptionError = (String, String);

/// What builds a kind from a source block's options.
pub type Builder = fn(&Options) -> Result<Arc<dyn Kind>, Vec<OptionError>>;

/// The [`Builder`] of a kind that takes no options.
///
/// # Errors
/// None: options it does not take are refused before a builder is called.
pub fn without_options<K: Kind + Default>(_: &Options) -> Result<Arc<dyn Kind>, Vec<OptionError>> {
    Ok(Arc::new(K::default()))
}

/// How a kind is listed in [`super::KINDS`].
pub struct Registration {
    /// The name `kind:` takes.
    pub name: &'static str,
    /// The option keys it takes besides the common ones (`kind`, `path`, `verify`,
    /// `body_limit`).
    pub options: &'static [&'static str],
    /// Builds the kind from a source block's options (only keys of `options` are given).
    pub build: Builder,
}

/// Reads a kind's options into its own type, naming the failing field.
///
/// # Errors
/// The field and why its value does not fit.
pub fn read_options<T: DeserializeOwned>(options: &Options) -> Result<T, Vec<OptionError>> {
    serde_path_to_error::deserialize(serde_json::Value::Object(options.clone())).map_err(|e| {
        let path = e.path().to_string();
        vec![(path, e.into_inner().to_string())]
    })
}
