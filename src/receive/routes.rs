//! [`Routes`]: the table of source paths, which can change while hookgate runs, and
//! [`mount`]: the router of one source.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use http::StatusCode;
use tower::ServiceExt as _;

use super::pipeline;
use super::source::Source;
use crate::http::problem::problem;

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
