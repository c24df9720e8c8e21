//! What one attempt to deliver an event sends and what came of it, whatever the destination
//! kind: the worker hands an [`Outgoing`] to a sender and records the [`Attempted`] it gets back.

use std::time::Duration;

use bytes::Bytes;

use crate::store::EventId;

/// The most bytes of an answer kept in the attempts log.
pub const RESPONSE_BYTES: usize = 4096;

/// One event on its way to a destination.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// hookgate's id of the event: the same on every attempt and every replay.
    pub event_id: EventId,
    /// The source it came from.
    pub source: String,
    /// The sender's event type, when the payload names one.
    pub event_type: Option<String>,
    /// The registered hook it came through (`Hookgate-Hook-Id`), if any.
    pub hook: Option<String>,
    /// The content type it was received with (`application/json` when none was stored).
    pub content_type: String,
    /// The exact stored bytes.
    pub body: Bytes,
    /// When hookgate received it (RFC 3339).
    pub received_at: String,
    /// This attempt's number for the delivery, from 1.
    pub attempt: u32,
    /// The W3C headers carrying the attempt span's trace context (`traceparent`, and
    /// `tracestate` when the trace has one) to the destination; empty when traces are off.
    pub trace: Vec<(&'static str, String)>,
}

impl Outgoing {
    /// Hands each `Hookgate-*` header of this attempt to `put`, named as the brokers carry them
    /// (RabbitMQ `raw` and NATS; HTTP sends the same, lower-case): `Hookgate-Event-Id` (the
    /// caller's formatted `event_id`), `-Source`, `-Event-Type` and `-Hook-Id` when there is
    /// one, `-Attempt`; then, with traces on, the W3C `traceparent` (and `tracestate`).
    pub fn hookgate_headers(&self, event_id: &str, mut put: impl FnMut(&'static str, &str)) {
        put("Hookgate-Event-Id", event_id);
        put("Hookgate-Source", &self.source);
        if let Some(t) = &self.event_type {
            put("Hookgate-Event-Type", t);
        }
        put("Hookgate-Attempt", &self.attempt.to_string());
        if let Some(hook) = &self.hook {
            put("Hookgate-Hook-Id", hook);
        }
        for (name, value) in &self.trace {
            put(name, value);
        }
    }
}

/// Why an attempt failed before (or without) an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No complete answer within the destination's `timeout`.
    Timeout,
    /// The connection could not be made (refused, unreachable, DNS).
    Connect,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// The peer broke the protocol (a malformed answer, a connection closed mid-answer).
    Protocol,
    /// A broker could route the message to no queue.
    Unroutable,
    /// A broker refused the message.
    Rejected,
}

impl ErrorKind {
    /// Its name in the attempts log and the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connect => "connect",
            Self::Tls => "tls",
            Self::Protocol => "protocol",
            Self::Unroutable => "unroutable",
            Self::Rejected => "rejected",
        }
    }

    /// The kind named `s`, as stored.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "timeout" => Self::Timeout,
            "connect" => Self::Connect,
            "tls" => Self::Tls,
            "protocol" => Self::Protocol,
            "unroutable" => Self::Unroutable,
            "rejected" => Self::Rejected,
            _ => return None,
        })
    }
}

/// What came of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempted {
    /// The HTTP status, when an answer's head arrived.
    pub status: Option<u16>,
    /// Why it failed without a usable answer, if it did.
    pub error: Option<ErrorKind>,
    /// The first [`RESPONSE_BYTES`] of the answer's body (lossy UTF-8), or the error's text.
    pub response: String,
    /// `Retry-After` of a 429 or 503 answer (seconds or an HTTP date), uncapped.
    pub retry_after: Option<Duration>,
    /// From the start of the attempt to the end of reading the answer.
    pub duration: Duration,
}

impl Attempted {
    /// A broker's outcome (no HTTP status) of an attempt that began at `started`: delivered
    /// when `error` is `None`.
    pub fn broker(started: std::time::Instant, error: Option<ErrorKind>, response: String) -> Self {
        Self {
            status: None,
            error,
            response,
            retry_after: None,
            duration: started.elapsed(),
        }
    }

    /// A 2xx answer (HTTP), or a broker's acknowledgement (no status, no error), and nothing
    /// else, is a delivery.
    pub fn delivered(&self) -> bool {
        self.error.is_none() && self.status.is_none_or(|s| (200..300).contains(&s))
    }

    /// A 410 Gone: the destination asks not to be sent anything more (it is paused at once).
    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }
}

/// A routing key or subject template with `{source}` and `{event_type}` filled in, each value
/// made safe (characters other than `A-Za-z0-9_-` become `_`; no event type: `_`).
pub fn fill(template: &str, source: &str, event_type: Option<&str>) -> String {
    fn safe(v: &str) -> String {
        if v.is_empty() {
            return "_".into();
        }
        v.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
    template
        .replace("{source}", &safe(source))
        .replace("{event_type}", &safe(event_type.unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brokers_headers_carry_the_attempts_trace_context_when_there_is_one() {
        let mut out = Outgoing {
            event_id: EventId::new(),
            source: "kratos".into(),
            event_type: None,
            hook: None,
            content_type: "application/json".into(),
            body: Bytes::from_static(b"{}"),
            received_at: "2026-11-26T10:20:30.123Z".into(),
            attempt: 2,
            trace: Vec::new(),
        };
        let names = |out: &Outgoing| {
            let mut names = Vec::new();
            out.hookgate_headers("id", |name, _| names.push(name));
            names
        };
        assert_eq!(
            names(&out),
            ["Hookgate-Event-Id", "Hookgate-Source", "Hookgate-Attempt"]
        );
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        out.trace = vec![("traceparent", traceparent.into())];
        let mut sent = Vec::new();
        out.hookgate_headers("id", |name, value| sent.push((name, value.to_string())));
        assert_eq!(sent.last(), Some(&("traceparent", traceparent.to_string())));
    }

    #[test]
    fn template_values_are_made_safe() {
        assert_eq!(
            fill(
                "{source}.{event_type}",
                "kratos",
                Some("identity.created v2")
            ),
            "kratos.identity_created_v2"
        );
        assert_eq!(fill("hg.{source}.{event_type}", "a*b", None), "hg.a_b._");
    }
}
