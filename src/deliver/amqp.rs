//! `kind: rabbitmq`: one attempt is one persistent, `mandatory` publish on a channel in confirm
//! mode, delivered only when the broker acknowledges it (DESIGN.md "Delivery"; research:
//! `../shared/DELIVERY.md` §1 and §3).
//!
//! - `format: masstransit`: the envelope of [`super::masstransit`] to the durable fanout
//!   exchange named like MassTransit's (`Namespace:TypeName`, declared if missing), routing key
//!   empty, `content_type` `application/vnd.masstransit+json`, `message_id` the event id.
//! - `format: raw`: the stored bytes and content type, the `Hookgate-*` headers as AMQP headers,
//!   to the configured durable topic exchange with the routing key template filled in.
//!
//! An acknowledgement that comes with the message returned (no queue took it) is a failed
//! attempt (`unroutable`), a `nack` too (`rejected`). One connection and one channel per
//! destination ([`Connector`]: made at the first attempt and again after any error, with a
//! backoff while the broker cannot be reached).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};

use super::attempt::{Attempted, ErrorKind, Outgoing, fill};
use super::links::{Connector, Links};
use super::masstransit::{self, Message, Parts};
use crate::config::destinations::{AmqpFormat, AmqpTarget, MassTransitMessage};
use crate::config::types::redact_url;

/// Publishes a destination's attempts to RabbitMQ.
pub struct AmqpSender {
    id: String,
    target: AmqpTarget,
    link: Connector<Link>,
}

impl fmt::Debug for AmqpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AmqpSender")
            .field("id", &self.id)
            .field("url", &redact_url(&self.target.url))
            .field("exchange", &self.target.exchange)
            .finish()
    }
}

/// An open connection and its publishing channel (in confirm mode).
#[derive(Clone)]
struct Link {
    _connection: Arc<Connection>,
    channel: Channel,
}

impl AmqpSender {
    /// The sender of destination `id` to `target` (nothing is connected before an attempt).
    pub fn new(id: &str, target: &AmqpTarget, links: Arc<Links>) -> Self {
        Self {
            id: id.to_string(),
            target: target.clone(),
            link: Connector::new(id, "RabbitMQ", redact_url(&target.url), links),
        }
    }

    /// Makes one attempt.
    pub async fn send(&self, out: &Outgoing) -> Attempted {
        let started = Instant::now();
        let done = |error, response| Attempted::broker(started, error, response);
        let (payload, properties, routing_key) = match self.message(out) {
            Ok(m) => m,
            Err(e) => return done(Some(ErrorKind::Rejected), e.to_string()),
        };
        let channel = match self.channel().await {
            Ok(c) => c,
            Err(why) => return done(Some(ErrorKind::Connect), why),
        };
        let publish = async {
            channel
                .basic_publish(
                    ShortString::from(self.target.exchange.as_str()),
                    ShortString::from(routing_key.as_str()),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &payload,
                    properties,
                )
                .await?
                .await
        };
        match tokio::time::timeout(self.target.timeout, publish).await {
            Err(_) => done(
                Some(ErrorKind::Timeout),
                format!(
                    "the broker did not confirm the publish within {:?}",
                    self.target.timeout
                ),
            ),
            Ok(Err(e)) => {
                // The channel or connection broke: connect again at the next attempt.
                self.link.broken().await;
                done(Some(ErrorKind::Connect), format!("the publish failed: {e}"))
            }
            Ok(Ok(Confirmation::Ack(None))) => done(None, "confirmed".into()),
            Ok(Ok(Confirmation::Ack(Some(returned)))) => done(
                Some(ErrorKind::Unroutable),
                format!(
                    "the broker routed it to no queue ({} {}): bind a queue to exchange `{}`",
                    returned.reply_code,
                    returned.reply_text.as_str(),
                    self.target.exchange
                ),
            ),
            Ok(Ok(Confirmation::Nack(_))) => done(
                Some(ErrorKind::Rejected),
                "the broker refused the message (nack)".into(),
            ),
            Ok(Ok(Confirmation::NotRequested)) => done(
                Some(ErrorKind::Protocol),
                "the channel is not in confirm mode".into(),
            ),
        }
    }

    /// The payload, its properties and the routing key of `out`.
    fn message(
        &self,
        out: &Outgoing,
    ) -> Result<(Vec<u8>, BasicProperties, String), masstransit::EnvelopeError> {
        let id = out.event_id.to_string();
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_message_id(ShortString::from(id.as_str()));
        match &self.target.format {
            AmqpFormat::MassTransit {
                message_type,
                message,
            } => {
                let sent = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                let payload = masstransit::envelope(&Parts {
                    event_id: out.event_id.0,
                    source: &out.source,
                    message_type,
                    message: match message {
                        MassTransitMessage::Body => Message::Body,
                        MassTransitMessage::KratosIdentityUpdated => Message::KratosIdentityUpdated,
                    },
                    received_at: &out.received_at,
                    sent_time: &sent,
                    body: &out.body,
                })?;
                let properties =
                    properties.with_content_type(ShortString::from(masstransit::CONTENT_TYPE));
                Ok((payload, properties, String::new()))
            }
            AmqpFormat::Raw { routing_key } => {
                let mut headers = FieldTable::default();
                let mut put = |k: &str, v: &str| {
                    headers.insert(
                        ShortString::from(k),
                        AMQPValue::LongString(LongString::from(v)),
                    );
                };
                out.hookgate_headers(&id, &mut put);
                let properties = properties
                    .with_content_type(ShortString::from(out.content_type.as_str()))
                    .with_headers(headers);
                let key = fill(routing_key, &out.source, out.event_type.as_deref());
                Ok((out.body.to_vec(), properties, key))
            }
        }
    }

    /// The publishing channel: the open one, or a new connection's.
    async fn channel(&self) -> Result<Channel, String> {
        self.link
            .get(
                self.target.timeout,
                |l| l.channel.status().connected(),
                || self.connect(),
            )
            .await
            .map(|l| l.channel)
    }

    /// A connection, and a channel in confirm mode with the exchange declared.
    async fn connect(&self) -> Result<Link, String> {
        let url = redact_url(&self.target.url);
        let connection = Connection::connect(
            &self.target.url,
            ConnectionProperties::default()
                .with_connection_name(LongString::from(format!("hookgate {}", self.id))),
        )
        .await
        .map_err(|e| format!("cannot connect to {url}: {e}"))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| format!("cannot open a channel on {url}: {e}"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| format!("cannot turn on publisher confirms on {url}: {e}"))?;
        let kind = match self.target.format {
            AmqpFormat::MassTransit { .. } => ExchangeKind::Fanout,
            AmqpFormat::Raw { .. } => ExchangeKind::Topic,
        };
        channel
            .exchange_declare(
                ShortString::from(self.target.exchange.as_str()),
                kind,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| {
                format!(
                    "cannot declare exchange `{}` on {url} (an exchange of that name but another \
                     type or durability exists?): {e}",
                    self.target.exchange
                )
            })?;
        Ok(Link {
            _connection: Arc::new(connection),
            channel,
        })
    }
}
