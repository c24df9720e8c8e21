//! [`Source`]: one configured or registered endpoint, built once: its kind, its verifier, its
//! limit, its metrics.

use std::sync::Arc;

use http::{HeaderMap, HeaderName};

use super::metrics::SourceMetrics;
use crate::config::{Destination, SourceSettings};
use crate::sources::Kind;
use crate::store::hooks::{HOOK_ID_HEADER, hook_dedupe_key};
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
    /// The destinations that take every event of this source: shared, so that an event
    /// queues them without an allocation.
    every: Arc<[Arc<str>]>,
    /// The destinations of this source that take some event types only, with their ids.
    by_type: Vec<(Arc<str>, Destination)>,
    /// The registered hook this source serves (`super::hooks`), if it is one.
    hook: Option<Arc<str>>,
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
        let verifier = Verifier::from_settings(&settings.verify);
        Self::build(id, settings.path.clone(), kind, verifier, body_limit, store)
    }

    /// Builds source `id` at `path` from its parts (a registered hook's come from the store).
    pub fn build(
        id: &str,
        path: String,
        kind: Arc<dyn Kind>,
        verifier: Verifier,
        body_limit: u64,
        store: Arc<dyn Store>,
    ) -> Self {
        let id: Arc<str> = Arc::from(id);
        Self {
            metrics: SourceMetrics::new(&id, verifier.scheme()),
            credential_header: verifier.credential_header(),
            id,
            path,
            kind,
            verifier,
            body_limit: usize::try_from(body_limit).unwrap_or(usize::MAX),
            store,
            every: Arc::from([]),
            by_type: Vec::new(),
            hook: None,
        }
    }

    /// Makes this the source of registered hook `hook_id`: its events' dedupe keys are the
    /// hook's own, and they keep the hook's id with their headers.
    pub fn for_hook(mut self, hook_id: &str) -> Self {
        self.hook = Some(Arc::from(hook_id));
        self
    }

    /// The dedupe key an event with the kind's key `key` is stored with: unique per hook for a
    /// registered hook's source (`crate::store::hooks`), else the kind's.
    pub(super) fn dedupe_key(&self, key: String) -> String {
        match &self.hook {
            Some(hook) => hook_dedupe_key(hook, &key),
            None => key,
        }
    }

    /// Keeps, of `all`, the destinations that take this source's events.
    pub fn with_destinations(mut self, all: &[Destination]) -> Self {
        let mine = all.iter().filter(|d| d.takes_source(&self.id));
        let (every, by_type): (Vec<&Destination>, Vec<&Destination>) =
            mine.partition(|d| d.event_types.is_none());
        self.every = every.iter().map(|d| Arc::from(d.id.as_str())).collect();
        self.by_type = by_type
            .into_iter()
            .map(|d| (Arc::from(d.id.as_str()), d.clone()))
            .collect();
        self
    }

    /// The destinations an event of this type goes to: the shared list, unless a destination
    /// filters by event type.
    pub fn deliveries_for(&self, event_type: Option<&str>) -> Arc<[Arc<str>]> {
        if self.by_type.is_empty() {
            return self.every.clone();
        }
        self.every
            .iter()
            .cloned()
            .chain(
                self.by_type
                    .iter()
                    .filter(|(_, d)| d.takes_type(event_type))
                    .map(|(id, _)| id.clone()),
            )
            .collect()
    }

    /// The header carrying this source's credential, if it has one.
    pub fn credential_header(&self) -> Option<&HeaderName> {
        self.credential_header.as_ref()
    }

    /// Selected headers as a JSON object, leaving out this source's credential header; a
    /// registered hook's events add the hook's id (`hookgate-hook-id`).
    pub(super) fn stored_headers(&self, headers: &HeaderMap) -> String {
        let secret = self.credential_header.as_ref();
        string_object(
            STORED_HEADERS
                .iter()
                .filter(|name| secret.is_none_or(|s| s.as_str() != **name))
                .filter_map(|name| Some((*name, headers.get(*name)?.to_str().ok()?)))
                .chain(self.hook.as_deref().map(|hook| (HOOK_ID_HEADER, hook))),
        )
    }
}
