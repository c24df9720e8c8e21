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
//! - [`amqp`]: `kind: rabbitmq`: one confirmed, persistent publish.
//! - [`nats`]: `kind: nats`: one JetStream publish, acknowledged by the stream.
//! - [`links`]: each broker destination's connection state, for the admin API.
//! - [`masstransit`]: the MassTransit envelope `kind: rabbitmq` publishes (`format:
//!   masstransit`), with the stored payload spliced in byte for byte.
//!
//! May call: `config`, `store`, `verify` (signing), `telemetry` (an attempt's span and the
//! trace context it sends on, when traces are on).

pub mod amqp;
pub mod attempt;
pub mod http;
pub mod links;
pub mod masstransit;
pub mod nats;
pub mod schedule;
pub mod sign;
pub mod worker;

pub use links::Links;
pub use worker::start;

use crate::config::Destination;

/// A worker for each destination, with its sender (a connection pool, for HTTP).
///
/// # Errors
/// When a destination's client cannot be built (its TLS setup).
pub fn workers(
    destinations: &[Destination],
    links: &std::sync::Arc<Links>,
) -> anyhow::Result<Vec<worker::Worker>> {
    destinations
        .iter()
        .map(|d| {
            let sender: std::sync::Arc<dyn worker::Sender> = match &d.target {
                crate::config::Target::Http(t) => {
                    std::sync::Arc::new(self::http::HttpSender::new(&d.id, t)?)
                }
                crate::config::Target::Rabbitmq(t) => {
                    std::sync::Arc::new(self::amqp::AmqpSender::new(&d.id, t, links.clone()))
                }
                crate::config::Target::Nats(t) => {
                    std::sync::Arc::new(self::nats::NatsSender::new(&d.id, t, links.clone()))
                }
            };
            let timeout = d.timeout();
            Ok(worker::Worker {
                destination: d.clone(),
                sender,
                timeout,
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl worker::Sender for self::amqp::AmqpSender {
    async fn send(&self, out: &attempt::Outgoing) -> attempt::Attempted {
        self::amqp::AmqpSender::send(self, out).await
    }
}

#[async_trait::async_trait]
impl worker::Sender for self::nats::NatsSender {
    async fn send(&self, out: &attempt::Outgoing) -> attempt::Attempted {
        self::nats::NatsSender::send(self, out).await
    }
}

#[async_trait::async_trait]
impl worker::Sender for self::http::HttpSender {
    async fn send(&self, out: &attempt::Outgoing) -> attempt::Attempted {
        self::http::HttpSender::send(self, out).await
    }
}
