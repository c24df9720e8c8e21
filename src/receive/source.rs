//! [`Source`]: one configured or registered endpoint, built once: its kind, its verifier, its
//! limit, its metrics.

use std::sync::Arc;

use http::{HeaderMap, HeaderName};

use super::metrics::SourceMetrics;
use crate::config::{Destination, SourceSettings};
use crate::sources::Kind;
use crate::store::{Store, string_object};
use crate::verify::Verifier;

/// Request headers kept with an event (never credentials).
const STORED_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-request-id",
    "ory-webhook-request-id",
    "ory-webhook-trigger-id",
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
];

/// Everything a source's route needs, built once.
pub struct Source {
    /// Source id (metrics, logs, storage).
    pub id: Arc<str>,
    /// The path senders POST to.
    pub path: String,
    /// The sender kind: parser and answers.
    pub kind: Arc<dyn Kind>,
    /// Verification of its requests.
    pub verifier: Verifier,
    /// Body limit in bytes.
    pub body_limit: usize,
    /// Where events go.
    pub store: Arc<dyn Store>,
    /// This source's metric handles.
    pub metrics: SourceMetrics,
    /// The header carrying this source's credential (never stored), worked out once.
    credential_header: Option<HeaderName>,
    /// The destinations this source's events go to, each with its `event_types` filter.
    destinations: Vec<(Arc<str>, Option<Vec<String>>)>,
}

impl Source {
    /// Builds source `id` from its block; `kind` is built from the same block by
    /// [`crate::sources::build`], and `body_limit` is the effective limit in bytes.
    pub fn new(
        id: &str,
        settings: &SourceSettings,
        kind: Arc<dyn Kind>,
        body_limit: u64,
        store: Arc<dyn Store>,
    ) -> Self {
        let id: Arc<str> = Arc::from(id);
        let verifier = Verifier::from_settings(&settings.verify);
        Self {
            metrics: SourceMetrics::new(&id, verifier.scheme()),
            credential_header: verifier.credential_header(),
            id,
            path: settings.path.clone(),
            kind,
            verifier,
            body_limit: usize::try_from(body_limit).unwrap_or(usize::MAX),
            store,
            destinations: Vec::new(),
        }
    }

    /// Keeps, of `all`, the destinations that take this source's events.
    pub fn with_destinations(mut self, all: &[Destination]) -> Self {
        self.destinations = all
            .iter()
            .filter(|d| {
                d.sources
                    .as_ref()
                    .is_none_or(|s| s.iter().any(|x| **x == *self.id))
            })
            .map(|d| (Arc::from(d.id.as_str()), d.event_types.clone()))
            .collect();
        self
    }

    /// The destinations an event of this type goes to (no allocation when there are none).
    pub fn deliveries_for(&self, event_type: Option<&str>) -> Vec<Arc<str>> {
        self.destinations
            .iter()
            .filter(|(_, types)| {
                types
                    .as_ref()
                    .is_none_or(|t| event_type.is_some_and(|e| t.iter().any(|x| x == e)))
            })
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// The header carrying this source's credential, if it has one.
    pub fn credential_header(&self) -> Option<&HeaderName> {
        self.credential_header.as_ref()
    }

    /// Selected headers as a JSON object, leaving out this source's credential header.
    pub(super) fn stored_headers(&self, headers: &HeaderMap) -> String {
        let secret = self.credential_header.as_ref();
        string_object(
            STORED_HEADERS
                .iter()
                .filter(|name| secret.is_none_or(|s| s.as_str() != **name))
                .filter_map(|name| Some((*name, headers.get(*name)?.to_str().ok()?))),
        )
    }
}
