//! `kind: nats`: one attempt is one JetStream publish, delivered on the stream's
//! acknowledgement (a `duplicate` one too) (DESIGN.md "Delivery"; research:
//! `../shared/DELIVERY.md` §2).
//!
//! The subject is the template with `{source}` and `{event_type}` filled in (values made
//! subject-safe). `Nats-Msg-Id` is the event id, so the stream's duplicate window drops a
//! repeat: an attempt whose acknowledgement was lost, made again, stores nothing new. Headers
//! `Hookgate-Event-Id`, `-Source`, `-Event-Type`, `-Attempt` and `Content-Type` go with it.
//!
//! One client per destination ([`Connector`]: made at the first attempt, with a backoff while
//! the server cannot be reached; the client reconnects by itself after that).

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, Context};

use super::attempt::{Attempted, ErrorKind, Outgoing, fill};
use super::links::{Connector, Links};
use crate::config::destinations::NatsTarget;
use crate::config::types::redact_url;

/// Publishes a destination's attempts to JetStream.
pub struct NatsSender {
    id: String,
    target: NatsTarget,
    link: Connector<Context>,
}

impl fmt::Debug for NatsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsSender")
            .field("id", &self.id)
            .field("url", &redact_url(&self.target.url))
            .field("subject", &self.target.subject)
            .finish()
    }
}

impl NatsSender {
    /// The sender of destination `id` to `target` (nothing is connected before an attempt).
    pub fn new(id: &str, target: &NatsTarget, links: Arc<Links>) -> Self {
        Self {
            id: id.to_string(),
            target: target.clone(),
            link: Connector::new(id, "NATS", redact_url(&target.url), links),
        }
    }

    /// Makes one attempt.
    pub async fn send(&self, out: &Outgoing) -> Attempted {
        let started = Instant::now();
        let done = |error, response| Attempted::broker(started, error, response);
        let context = match self
            .link
            .get(self.target.timeout, |_| true, || self.connect())
            .await
        {
            Ok(c) => c,
            Err(why) => return done(Some(ErrorKind::Connect), why),
        };
        let id = out.event_id.to_string();
        let mut headers = HeaderMap::new();
        out.hookgate_headers(&id, |name, value| headers.insert(name, value));
        headers.insert("Content-Type", out.content_type.as_str());
        let subject = fill(&self.target.subject, &out.source, out.event_type.as_deref());
        let publish = async {
            context
                .send_publish(
                    subject.clone(),
                    PublishMessage::build()
                        .payload(out.body.clone())
                        .headers(headers)
                        .message_id(&id),
                )
                .await?
                .await
        };
        match tokio::time::timeout(self.target.timeout, publish).await {
            Err(_) => done(
                Some(ErrorKind::Timeout),
                format!(
                    "the stream did not acknowledge within {:?}",
                    self.target.timeout
                ),
            ),
            Ok(Ok(ack)) => {
                self.link.note(true);
                done(
                    None,
                    format!(
                        "stream {} sequence {}{}",
                        ack.stream,
                        ack.sequence,
                        if ack.duplicate { " (duplicate)" } else { "" }
                    ),
                )
            }
            Ok(Err(e)) => {
                let kind = match e.kind() {
                    PublishErrorKind::StreamNotFound => ErrorKind::Unroutable,
                    PublishErrorKind::TimedOut => ErrorKind::Timeout,
                    PublishErrorKind::BrokenPipe => {
                        self.link.note(false);
                        ErrorKind::Connect
                    }
                    _ => ErrorKind::Rejected,
                };
                let why = if kind == ErrorKind::Unroutable {
                    format!("no JetStream stream captures subject `{subject}`: {e}")
                } else {
                    format!("the publish to `{subject}` failed: {e}")
                };
                done(Some(kind), why)
            }
        }
    }

    /// A client and its JetStream context; the stream is created when asked and missing.
    async fn connect(&self) -> Result<Context, String> {
        let url = redact_url(&self.target.url);
        let client = async_nats::ConnectOptions::new()
            .name(format!("hookgate {}", self.id))
            .connection_timeout(self.target.timeout)
            .connect(self.target.url.as_str())
            .await
            .map_err(|e| format!("cannot connect to {url}: {e}"))?;
        let context = jetstream::ContextBuilder::new()
            .timeout(self.target.timeout)
            .build(client);
        if let Some((name, subjects)) = &self.target.create_stream {
            context
                .get_or_create_stream(jetstream::stream::Config {
                    name: name.clone(),
                    subjects: vec![subjects.clone()],
                    ..Default::default()
                })
                .await
                .map_err(|e| format!("cannot find or create stream `{name}` on {url}: {e}"))?;
        }
        Ok(context)
    }
}
