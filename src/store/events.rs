//! The event log: appending events exactly once, and reading them back as a feed.
//!
//! # Ids and the feed cursor
//! An event's id is made by the process that receives it ([`EventId::new`]: a UUID v7, the time
//! in milliseconds, then a counter that keeps one process's ids in order, started at a random
//! value, then random bits), so it is unique across any number of processes writing to one
//! store without asking the store for a number, and it survives a copy to another store.
//! A retry is recognised by `(source, dedupe_key)`, unique in the store, and answered with the
//! first copy's id; the new copy's id is dropped.
//!
//! The id says nothing about where the event sits in the feed. That is the [`Cursor`]: a
//! position in commit order that only the backend can make and read (SQLite: the row's sequence
//! number, since one writer commits in order; a backend with several writers needs more than a
//! sequence value, which commits out of order). Clients see it as opaque text.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::watch;

use super::error::StoreError;
use super::ids::{Cursor, EventId};
use super::projections::Projection;

/// An event that passed verification and validation, ready to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The id it gets if it is new (a retry is answered with the first copy's).
    pub id: EventId,
    /// Source id (from the configuration).
    pub source: Arc<str>,
    /// Source kind (`kratos`, `identus`, `abp`).
    pub kind: &'static str,
    /// The sender's event type, when the payload names one.
    pub event_type: Option<String>,
    /// The key that recognises a retry of the same event; unique per source.
    pub dedupe_key: String,
    /// The sender's own id of the event, when it has one.
    pub sender_id: Option<String>,
    /// When hookgate received it (RFC 3339, UTC).
    pub received_at: String,
    /// Selected request headers as a JSON object, never credentials.
    pub headers: String,
    /// The exact body received.
    pub body: Bytes,
    /// The projection row this event updates, if any.
    pub projection: Option<Projection>,
    /// The destinations it is delivered to: a delivery row each, written with the event if it
    /// is new (a retry of a stored event queues nothing).
    pub deliveries: Arc<[Arc<str>]>,
    /// The W3C trace context of the request span that received it (a JSON object of the
    /// `traceparent` and `tracestate` headers), the parent of its delivery attempts' spans;
    /// `None` when traces are off (`telemetry.otlp`).
    pub trace_context: Option<String>,
}

/// A JSON object of string values (`{"content-type":"…"}`), the form of the store's small
/// text columns ([`NewEvent::headers`], projection attributes), written straight into one
/// buffer with serde_json's escaping.
pub fn string_object<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = Vec::with_capacity(160);
    out.push(b'{');
    for (name, value) in pairs {
        if out.len() > 1 {
            out.push(b',');
        }
        // Writing a `&str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut out, name);
        out.push(b':');
        let _ = serde_json::to_writer(&mut out, value);
    }
    out.push(b'}');
    String::from_utf8(out).unwrap_or_else(|_| "{}".to_string())
}

/// The `Content-Type` an event was received with, from its stored headers (a JSON object of
/// strings, [`NewEvent::headers`]), if it had one.
pub fn stored_content_type(headers: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Kept {
        #[serde(rename = "content-type")]
        content_type: Option<String>,
    }
    serde_json::from_str::<Kept>(headers)
        .ok()
        .and_then(|h| h.content_type)
}

/// The outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// hookgate's id of the stored event (the first copy's, for a retry).
    pub event_id: EventId,
    /// True when this was a retry of an event already stored.
    pub duplicate: bool,
}

/// A stored event.
#[derive(Clone)]
pub struct StoredEvent {
    /// hookgate's id.
    pub id: EventId,
    /// Its position in the feed.
    pub cursor: Cursor,
    /// Source id.
    pub source: String,
    /// Source kind.
    pub kind: String,
    /// Sender's event type.
    pub event_type: Option<String>,
    /// Dedupe key.
    pub dedupe_key: String,
    /// Sender's id of the event.
    pub sender_id: Option<String>,
    /// When received (RFC 3339).
    pub received_at: String,
    /// Selected headers as a JSON object.
    pub headers: String,
    /// The exact body.
    pub body: Bytes,
}

impl fmt::Debug for StoredEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The body may hold personal data: never in debug output.
        f.debug_struct("StoredEvent")
            .field("id", &self.id)
            .field("source", &self.source)
            .field("event_type", &self.event_type)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A page request for the event feed.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// Only this source.
    pub source: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Only events of this registered hook (32 hex digits; see [`super::hooks`]).
    pub hook: Option<String>,
    /// At most this many (1..=1000).
    pub limit: u32,
    /// Only events after this position.
    pub after: Option<Cursor>,
    /// Only events received at or after this time.
    pub from: Option<time::OffsetDateTime>,
    /// Only events received at or before this time.
    pub to: Option<time::OffsetDateTime>,
}

/// How far apart, at most, the order events are committed in and the order they were received
/// in can be: an event is committed within its request's time (`server.request_timeout`,
/// seconds) of being received, and replicas' clocks agree to well within this. A time filter
/// looks for its first and last `seq` with this much slack (see [`crate::store::retention::OldEnd`]),
/// then compares each event's `received_at` exactly.
pub const RECEIVED_ORDER_SLACK: std::time::Duration = std::time::Duration::from_secs(300);

/// What one source stored since a time: how many events, and when the newest of them was
/// received (RFC 3339).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceActivity {
    /// The source id.
    pub source: String,
    /// Events received at or after the time asked about.
    pub events: u64,
    /// When the newest of them was received.
    pub last_received_at: String,
}

/// One page of events, oldest first.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events.
    pub events: Vec<StoredEvent>,
    /// Where the next page starts: the cursor of the last event on this page, or, when the page
    /// is empty, the `after` given (or the start of the feed). Always a cursor, so a consumer
    /// that keeps it and asks again sees every later event exactly once.
    pub next: Cursor,
    /// Whether more matching events are already committed past this page.
    pub more: bool,
}

impl EventPage {
    /// The page from what a backend read: up to `limit + 1` events (the extra one only says
    /// that more follow). `next` is past the last event shown, or `empty` when none is.
    pub fn from_read(mut events: Vec<StoredEvent>, limit: i64, empty: Cursor) -> Self {
        let shown = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = events.len() > shown;
        events.truncate(shown);
        let next = events.last().map_or(empty, |e| e.cursor.clone());
        Self { events, next, more }
    }
}

/// The event log. Every backend keeps the same promises: `append` returns after commit, and a
/// retried event (same source and dedupe key) is stored once and answered with the first id.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Stores an event and its projection in one transaction, or finds the first copy.
    ///
    /// # Errors
    /// [`StoreError::Busy`] when the write queue is full, [`StoreError::Unavailable`] when the
    /// commit failed; in both cases nothing was stored.
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError>;

    /// A page of the feed, in commit order.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] when `after` is not a cursor of this store,
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn list_events(&self, query: EventQuery) -> Result<EventPage, StoreError>;

    /// One event by id.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn get_event(&self, id: EventId) -> Result<Option<StoredEvent>, StoreError>;

    /// Commit notifications, for long polls of the feed: the value changes (it counts up)
    /// after every commit that stored at least one new event, in this process or, for a shared
    /// backend, in any process writing to the store. A waiter marks the value seen, reads the
    /// feed, and waits for the next change only when the read found nothing: so no commit
    /// between the read and the wait is missed, and nobody polls the database while waiting.
    fn commits(&self) -> watch::Receiver<u64>;

    /// Each source with an event received at or after `since`: how many, and the newest one's
    /// time. Sources with none are not listed.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn source_activity(
        &self,
        since: time::OffsetDateTime,
    ) -> Result<Vec<SourceActivity>, StoreError>;
}
