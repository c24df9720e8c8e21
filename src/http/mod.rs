//! HTTP plumbing that knows nothing of webhooks: the accept loop, the tower layer stack, the
//! health routes and the problem+json answers.
//!
//! # Layout
//! - [`serve`]: the accept loop (hyper http1 with the limits `axum::serve` does not set).
//! - [`stack`]: the public listener's layers, in the order a request meets them.
//! - [`health`]: `GET /healthz` and `GET /readyz`.
//! - [`problem`]: RFC 9457 answers, `503` with `Retry-After`.
//!
//! May call: `config`, `store` for readiness, and `telemetry` for the request span's trace
//! context (traces on).

pub mod health;
pub mod problem;
pub mod serve;
pub mod stack;
