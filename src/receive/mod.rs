//! Receiving: the routes of the sources, and the pipeline every request to one goes through.
//!
//! # Layout
//! - [`routes`]: [`Routes`], the table of source paths, which can change while hookgate runs,
//!   and [`mount`], the router of one source.
//! - [`source`]: [`Source`], one configured or registered endpoint, built once.
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
pub mod routes;
pub mod source;

pub use pipeline::EVENT_ID_HEADER;
pub use routes::{PathTaken, Routes, mount};
pub use source::Source;
