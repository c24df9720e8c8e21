//! Delivery: stored events handed on to the services that act on them (DESIGN.md "Delivery").
//!
//! # Layout
//! - [`attempt`]: what an attempt sends ([`attempt::Outgoing`]) and what came of it
//!   ([`attempt::Attempted`]), for every destination kind.
//! - [`schedule`]: when a failed delivery is attempted again (jittered waits, `Retry-After`).
//! - [`worker`]: a task per destination: claim due deliveries, attempt them, record the outcome.
//! - [`sign`]: the signature headers of an outgoing request (`standard_webhooks`,
//!   `abp_signature`, `hmac`), made with the same code that verifies them.
//! - [`http`]: `kind: http`: one POST of the exact stored bytes.
//! - [`masstransit`]: the MassTransit envelope `kind: rabbitmq` publishes (`format:
//!   masstransit`), with the stored payload spliced in byte for byte.

pub mod attempt;
pub mod http;
pub mod masstransit;
pub mod schedule;
pub mod sign;
pub mod worker;

pub use worker::start;

use crate::config::Destination;

/// A worker for each destination, with its sender (a connection pool, for HTTP).
///
/// # Errors
/// When a destination's client cannot be built (its TLS setup).
pub fn workers(destinations: &[Destination]) -> anyhow::Result<Vec<worker::Worker>> {
    destinations
        .iter()
        .map(|d| {
            let (sender, timeout): (std::sync::Arc<dyn worker::Sender>, _) = match &d.target {
                crate::config::Target::Http(t) => (
                    std::sync::Arc::new(self::http::HttpSender::new(&d.id, t)?),
                    t.timeout,
                ),
            };
            Ok(worker::Worker {
                destination: d.clone(),
                sender,
                timeout,
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl worker::Sender for self::http::HttpSender {
    async fn send(&self, out: &attempt::Outgoing) -> attempt::Attempted {
        self::http::HttpSender::send(self, out).await
    }
}
