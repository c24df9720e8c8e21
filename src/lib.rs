//! hookgate: a webhook receiver that verifies, validates and stores webhooks from Ory Kratos,
//! Hyperledger Identus Cloud Agents and ASP.NET Boilerplate applications, exactly once.
//!
//! # Layout
//! One folder per stage of the path an event takes. Each module's own doc says what it
//! promises and what it may call; calls only go down this list (no two modules call each
//! other), and `tests/api/layout.rs` checks it.
//!
//! - [`startup`]: [`startup::Application`]: the configuration checked whole, the store, the
//!   source routes, the listeners, and the order things stop in. It may call everything below.
//! - [`admin`]: the admin listener: the read API over events and projections, registered
//!   hooks, `/metrics`, and the API's OpenAPI description (`/admin/openapi.json`).
//! - [`deliver`]: delivery of stored events to the configured destinations: the workers that
//!   claim deliveries from the store's outbox, send them (HTTP), retry, pause and record attempts.
//! - [`receive`]: the source routes (a table that can change at run time) and the pipeline
//!   of a request: verify, read the body, parse, store, answer.
//! - [`sources`]: one file per sender kind behind the `Kind` trait, listed in `sources::KINDS`.
//! - [`verify`]: one file per verification scheme; a leaf, also used to sign (`hookgate sign`).
//! - [`sign`]: `hookgate sign`, the headers a sender would send.
//! - [`http`]: the accept loop, the layer stack, health routes, problem+json answers.
//! - [`store`]: the store traits (events, projections) and the SQLite backend.
//! - [`telemetry`]: logging (pretty or JSON), the Prometheus recorder, and traces
//!   (OpenTelemetry over OTLP/HTTP, `telemetry.otlp`): `http`, `receive` and `deliver` ask it
//!   whether traces are on and carry the W3C trace context through it.
//! - [`shutdown`]: the signals that stop hookgate, and the one that must not (SIGXFSZ).
//! - [`config`]: the `Settings` tree: types, loading, validation. It calls nothing.
//! - `fuzz` (with the `fuzzing` feature only): the entry points of the fuzz targets.

pub mod admin;
pub mod config;
pub mod deliver;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzz;
pub mod http;
pub mod receive;
pub mod shutdown;
pub mod sign;
pub mod sources;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod verify;
