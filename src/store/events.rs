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
use uuid::Uuid;

use super::{Projection, StoreError};

/// hookgate's id of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A fresh id: UUID v7 (RFC 9562), time-ordered; ids made by one process sort in the order
    /// they were made.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

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
}

/// The outcome of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// hookgate's id of the stored event (the first copy's, for a retry).
    pub event_id: EventId,
    /// True when this was a retry of an event already stored.
    pub duplicate: bool,
}

/// A position in the feed, in commit order. Only the backend that made it can read it; clients
/// get it as opaque text and give it back as `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// Wraps a backend's text form of a position (for backends; clients never build one).
    pub fn from_backend(text: String) -> Self {
        Self(text)
    }

    /// Text a client gave as `after`; the backend says whether it is one of its cursors
    /// ([`StoreError::InvalidCursor`] when not).
    pub fn from_client(text: &str) -> Self {
        Self(text.to_string())
    }

    /// The text form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
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
    /// At most this many (1..=1000).
    pub limit: u32,
    /// Only events after this position.
    pub after: Option<Cursor>,
}

/// One page of events, oldest first.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events.
    pub events: Vec<StoredEvent>,
    /// The cursor for the next page, if there is more.
    pub next: Option<Cursor>,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_are_v7_distinct_and_sort_by_time() {
        let ids: Vec<EventId> = (0..1000).map(|_| EventId::new()).collect();
        for id in &ids {
            assert_eq!(id.0.get_version_num(), 7);
            assert_eq!(id.0.get_variant(), uuid::Variant::RFC4122);
        }
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "no id repeats");
        assert_eq!(sorted, ids, "ids made one after another sort in that order");
    }
}
