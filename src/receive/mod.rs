//! Receiving: the routes of the sources, and the pipeline every request to one goes through.
//!
//! # Layout
//! - [`routes`]: [`Routes`], the table of source paths, which can change while hookgate runs,
//!   and the axum router over it.
//! - [`source`]: [`Source`], one configured or registered endpoint, built once.
//! - [`hooks`]: [`Hooks`], the registered hooks served under `/hooks/{id}` (source `hooks`):
//!   found in the store, kept in a short-lived cache.
//! - [`pipeline`]: every step of a request, in order, with the statuses each can answer.
//! - [`body`]: reading the body under the limit; the content type.
//! - [`metrics`]: per-source request metrics, registered when a source is built.
//!
//! The router users were promised: the public listener's axum router ([`Routes::router`])
//! sends each source path to [`pipeline::handle`], which puts the source's verifier in front
//! of the handler for its kind. The source is found by path at request time (one hash lookup,
//! the only path match), so a source added or removed while hookgate runs takes effect at once,
//! without rebuilding any router.
//!
//! May call: `config`, `http`, `verify`, `sources`, `store`, `telemetry` (the trace context of
//! a request, when traces are on).

pub mod body;
pub mod hooks;
pub mod metrics;
pub mod pipeline;
pub mod routes;
pub mod source;

pub use hooks::Hooks;
pub use pipeline::EVENT_ID_HEADER;
pub use routes::{PathTaken, Routes};
pub use source::Source;
