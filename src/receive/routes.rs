//! [`Routes`]: the table of source paths, which can change while hookgate runs, and the axum
//! router that serves it.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use http::StatusCode;

use super::hooks::{HOOKS_PREFIX, Hooks};
use super::pipeline;
use super::source::Source;
use crate::http::problem::{problem, unavailable};

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
    table: Arc<RwLock<HashMap<String, Arc<Source>>>>,
    /// The registered hooks, under `/hooks/` (none: that prefix is not served).
    hooks: Option<Hooks>,
}

impl Routes {
    /// Serves the registered hooks under `/hooks/{id}` too (a configured source's path wins).
    pub fn with_hooks(mut self, hooks: Hooks) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// Adds a source's route; requests to its path reach it from now on.
    ///
    /// # Errors
    /// When another source has the path.
    pub fn add(&self, src: Arc<Source>) -> Result<(), PathTaken> {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(owner) = table.get(&src.path) {
            return Err(PathTaken {
                path: src.path.clone(),
                owner: owner.id.clone(),
            });
        }
        table.insert(src.path.clone(), src);
        Ok(())
    }

    /// Removes the source at `path`; requests to it get 404 from now on (those in flight finish).
    pub fn remove(&self, path: &str) -> Option<Arc<Source>> {
        self.table
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(path)
    }

    /// The source at `path`.
    fn find(&self, path: &str) -> Option<Arc<Source>> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(path)
            .cloned()
    }

    /// The axum router of the source paths: each request goes to the source at its path (404
    /// when there is none), looked up at request time, so no router is rebuilt when the table
    /// changes.
    pub fn router(&self) -> Router {
        Router::new().fallback(dispatch).with_state(self.clone())
    }
}

/// The source at the request's path runs the pipeline (the verifier, then its kind's handler);
/// the path was matched here, once.
async fn dispatch(State(routes): State<Routes>, req: Request) -> Response {
    let path = req.uri().path();
    let hooks = routes
        .hooks
        .as_ref()
        .filter(|_| path.starts_with(HOOKS_PREFIX));
    match (routes.find(path), hooks) {
        (Some(src), _) => pipeline::handle(&src, req).await,
        (None, Some(hooks)) => match hooks.find(path).await {
            Ok(Some(src)) => pipeline::handle(&src, req).await,
            // Unknown, deleted, expired or not an id: one answer for all.
            Ok(None) => hook_not_found(),
            Err(e) => {
                tracing::warn!(error = %e, "a registered hook could not be looked up; answering 503");
                unavailable("the store cannot be read right now; retry shortly", 1)
            }
        },
        (None, None) if is_admin_path(path) => {
            tracing::info!(path, "an admin path was asked of the public listener");
            problem(
                StatusCode::NOT_FOUND,
                "Not Found",
                "the admin API and /metrics are served on the admin listener (admin.listen, \
                 127.0.0.1:9090 by default), not on this public one",
            )
        }
        (None, None) => {
            tracing::debug!(path, "no source is configured at this path");
            problem(
                StatusCode::NOT_FOUND,
                "Not Found",
                "no source is configured at this path",
            )
        }
    }
}

/// The answer for a `/hooks/` path that no hook is served at, whatever the reason.
fn hook_not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Not Found",
        "no hook is registered at this path",
    )
}

/// Paths of the admin listener, which people try on the public one first.
fn is_admin_path(path: &str) -> bool {
    path == "/metrics" || path == "/admin" || path.starts_with("/admin/")
}
