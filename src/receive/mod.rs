//! Receiving: the routes of the sources, and the pipeline every request to one goes through.
//!
//! # Layout
//! - this file: [`Source`] (one configured or registered endpoint, built once) and [`Routes`],
//!   the table of source paths, which can change while hookgate runs.
//! - [`pipeline`]: every step of a request, in order, with the statuses each can answer.
//! - [`body`]: reading the body under the limit; the content type.
//! - [`metrics`]: per-source request metrics, registered when a source is built.
//!
//! The router users were promised: per source, an axum `Router` mounts the verifier in front
//! of the handler for the source's kind ([`mount`]). [`Routes::router`] is the public
//! listener's entry to them: it finds the source by path at request time, so a source added or
//! removed while hookgate runs takes effect at once, without rebuilding any router.
//!
//! May call: `config`, `http`, `verify`, `sources`, `store`.

pub mod body;
pub mod metrics;
pub mod pipeline;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::{HeaderMap, HeaderName, StatusCode};
use tower::ServiceExt as _;

use self::metrics::SourceMetrics;
use crate::config::SourceSettings;
use crate::http::problem::problem;
use crate::sources::Kind;
use crate::store::Store;
use crate::verify::Verifier;

/// The header every accepted answer carries.
pub const EVENT_ID_HEADER: &str = "hookgate-event-id";

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
        }
    }

    /// The header carrying this source's credential, if it has one.
    pub fn credential_header(&self) -> Option<&HeaderName> {
        self.credential_header.as_ref()
    }

    /// Selected headers as a JSON object, leaving out this source's credential header.
    fn stored_headers(&self, headers: &HeaderMap) -> String {
        let secret = self.credential_header.as_ref();
        let mut out = Vec::with_capacity(160);
        out.push(b'{');
        for name in STORED_HEADERS {
            if secret.is_some_and(|s| s.as_str() == *name) {
                continue;
            }
            if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok()) {
                if out.len() > 1 {
                    out.push(b',');
                }
                // Names are lower-case ASCII constants; values are escaped by serde_json.
                out.push(b'"');
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":");
                if serde_json::to_writer(&mut out, v).is_err() {
                    out.extend_from_slice(b"null");
                }
            }
        }
        out.push(b'}');
        String::from_utf8(out).unwrap_or_else(|_| "{}".to_string())
    }
}

/// The route of one source: the verifier in front of the handler for the source's kind
/// ([`pipeline::handle`] runs [`pipeline::verify`], then [`pipeline::receive`]).
pub fn mount(src: Arc<Source>) -> Router {
    let path = src.path.clone();
    Router::new().route(&path, any(pipeline::handle).with_state(src))
}

/// A path that is already some source's.
#[derive(Debug, thiserror::Error)]
#[error("`{path}` is already the path of source {owner}")]
pub struct PathTaken {
    /// The path.
    pub path: String,
    /// The source that has it.
    pub owner: Arc<str>,
}

/// The source routes by path. Cheap to clone (one shared table); reads take a read lock for the
/// time of a hash lookup.
#[derive(Clone, Default)]
pub struct Routes {
    table: Arc<RwLock<HashMap<String, Mounted>>>,
}

/// A source and its router.
type Mounted = (Arc<Source>, Router);

impl Routes {
    /// Adds a source's route; requests to its path reach it from now on.
    ///
    /// # Errors
    /// When another source has the path.
    pub fn add(&self, src: Arc<Source>) -> Result<(), PathTaken> {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        if let Some((owner, _)) = table.get(&src.path) {
            return Err(PathTaken {
                path: src.path.clone(),
                owner: owner.id.clone(),
            });
        }
        let router = mount(src.clone());
        table.insert(src.path.clone(), (src, router));
        Ok(())
    }

    /// Removes the source at `path`; requests to it get 404 from now on (those in flight finish).
    pub fn remove(&self, path: &str) -> Option<Arc<Source>> {
        self.table
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(path)
            .map(|(src, _)| src)
    }

    /// The source at `path`.
    pub fn get(&self, path: &str) -> Option<Arc<Source>> {
        self.route(path).map(|(src, _)| src)
    }

    /// Every source, in no particular order.
    pub fn sources(&self) -> Vec<Arc<Source>> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|(src, _)| src.clone())
            .collect()
    }

    fn route(&self, path: &str) -> Option<Mounted> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .cloned()
    }

    /// A router that sends each request to the route of the source at its path (404 when there
    /// is none), looked up at request time.
    pub fn router(&self) -> Router {
        Router::new().fallback(dispatch).with_state(self.clone())
    }
}

async fn dispatch(State(routes): State<Routes>, req: Request) -> Response {
    match routes.route(req.uri().path()) {
        Some((_, router)) => match router.oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        },
        None => problem(
            StatusCode::NOT_FOUND,
            "Not Found",
            "no source is configured at this path",
        )
        .into_response(),
    }
}
