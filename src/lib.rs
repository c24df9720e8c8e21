//! hookgate: a webhook receiver that verifies, validates and stores webhooks from Ory Kratos,
//! Hyperledger Identus Cloud Agents and ASP.NET Boilerplate applications, exactly once.
//!
//! # Layout
//! - [`config`]: the `Settings` tree, layered from YAML files and `HOOKGATE__…` variables.
//! - [`telemetry`]: logging (pretty or JSON) and the Prometheus recorder.
//! - [`startup`]: [`startup::Application`]: listeners, routers, the tower stack, shutdown.
//! - [`verify`]: one verifier per scheme and the middleware that runs them.
//! - [`sources`]: the typed payloads of each sender kind and the receive handler.
//! - [`store`]: the `Store` trait and its SQLite backend (group commit).
//! - [`admin`]: the admin API and `/metrics`.
//! - [`error`]: problem+json and Kratos `messages` answers.
//! - [`sign`]: `hookgate sign`, the headers a sender would send.

pub mod admin;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod serve;
pub mod sign;
pub mod sources;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod verify;
