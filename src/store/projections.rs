//! Projections: the latest state of each thing the events talk about (a Kratos identity, an
//! Identus connection), kept up to date in the same transaction as the event.
//!
//! The store knows no sender: a kind's parser names the view (`kratos/identities`), the key and
//! the ordering rule, and points at the JSON inside the event body (stored once, with the
//! event). A new kind with a projection needs nothing new here.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;

use super::error::StoreError;
use super::ids::{Cursor, EventId};

/// What an event says about the current state of one thing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    /// The view it belongs to, named by the kind (`kratos/identities`, `identus/connections`).
    pub view: &'static str,
    /// The partition within the view (Identus: the wallet id); empty when the view has none.
    pub scope: String,
    /// The thing's id within the view and scope.
    pub key: String,
    /// Its state, as the sender names it.
    pub state: Option<String>,
    /// A few named values shown beside the state (`schema_id`, `ts`).
    pub attrs: Vec<(&'static str, String)>,
    /// When set, an update never replaces one with a higher value (senders that deliver out of
    /// order: Identus `ts` in nanoseconds); when `None`, the later commit wins.
    pub order: Option<i64>,
    /// Where the thing's JSON lies in the event body.
    pub range: Range<usize>,
}

/// The current state of one thing, as the last event that changed it left it.
#[derive(Debug, Clone)]
pub struct ProjectionRow {
    /// The partition within the view.
    pub scope: String,
    /// The thing's id.
    pub key: String,
    /// Its state.
    pub state: Option<String>,
    /// The named values kept with it, as a JSON object.
    pub attrs: String,
    /// The event that set it.
    pub event_id: EventId,
    /// The events that set it, newest first (`event_id` first), at most [`HISTORY_LEN`]; older
    /// ones are dropped. An id may name an event retention has deleted since.
    pub history: Vec<EventId>,
    /// When that event was received (RFC 3339).
    pub updated_at: String,
    /// The thing's JSON, as received.
    pub body: Bytes,
}

/// How many of the events that set a row it keeps the ids of ([`ProjectionRow::history`]).
pub const HISTORY_LEN: usize = 50;

impl ProjectionRow {
    /// The events that set it, newest first, starting with `event_id` (a row whose history
    /// does not start with it, which no write makes, still shows it first).
    pub fn events(&self) -> Vec<EventId> {
        if self.history.first() == Some(&self.event_id) {
            return self.history.clone();
        }
        let mut events = Vec::with_capacity(self.history.len() + 1);
        events.push(self.event_id);
        events.extend(self.history.iter().filter(|&&id| id != self.event_id));
        events.truncate(HISTORY_LEN);
        events
    }
}

/// A history as SQLite stores it: the ids' 16 bytes one after the other.
pub fn history_bytes(history: &[EventId]) -> Vec<u8> {
    history.iter().flat_map(|id| *id.0.as_bytes()).collect()
}

/// A history from [`history_bytes`]; a trailing partial id (none is written) is skipped.
pub fn history_from_bytes(bytes: &[u8]) -> Vec<EventId> {
    bytes
        .chunks_exact(16)
        .filter_map(|id| uuid::Uuid::from_slice(id).ok().map(EventId))
        .collect()
}

/// Which row to read.
#[derive(Debug, Clone)]
pub struct ProjectionKey<'a> {
    /// The view.
    pub view: &'a str,
    /// The thing's id.
    pub key: &'a str,
    /// The partition; with none given, the row of the highest order across partitions.
    pub scope: Option<&'a str>,
}

/// Named values ([`Projection::attrs`]) a backend indexes, so that
/// [`ProjectionQuery::attr`] finds rows without reading the whole view. A new one needs a
/// migration that indexes it.
pub const SEARCHABLE_ATTRS: [&str; 1] = ["email"];

/// A page request over one view: its rows in order of key, then scope.
#[derive(Debug, Clone)]
pub struct ProjectionQuery {
    /// The view.
    pub view: &'static str,
    /// Only rows in this state.
    pub state: Option<String>,
    /// Only rows of this partition (Identus: the wallet id).
    pub scope: Option<String>,
    /// Only rows whose named value is exactly this; the name is one of [`SEARCHABLE_ATTRS`].
    pub attr: Option<(&'static str, String)>,
    /// Only rows after this position (the `next` of an earlier page).
    pub after: Option<Cursor>,
    /// At most this many (1..=1000).
    pub limit: u32,
}

/// One page of a view.
#[derive(Debug, Clone)]
pub struct ProjectionPage {
    /// The rows, by key, then scope.
    pub rows: Vec<ProjectionRow>,
    /// The position after the last row, when more rows may follow; `None` at the end.
    pub next: Option<Cursor>,
}

impl ProjectionPage {
    /// The page from what a backend read: up to `limit + 1` rows (the extra one only says that
    /// more follow, and `next` is then past the last row shown).
    pub fn from_read(mut rows: Vec<ProjectionRow>, limit: i64) -> Self {
        let shown = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > shown;
        rows.truncate(shown);
        let next = more
            .then(|| rows.last().map(|r| Cursor::of_position(&r.key, &r.scope)))
            .flatten();
        Self { rows, next }
    }
}

/// Reading projections.
#[async_trait]
pub trait ProjectionStore: Send + Sync + 'static {
    /// The current state of one thing.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn projection(&self, key: ProjectionKey<'_>)
    -> Result<Option<ProjectionRow>, StoreError>;

    /// A page of one view's rows, filtered.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] when `after` is not a position this store made,
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn list_projections(&self, query: ProjectionQuery) -> Result<ProjectionPage, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> EventId {
        EventId(uuid::Uuid::from_u128(n))
    }

    fn row(event_id: EventId, history: Vec<EventId>) -> ProjectionRow {
        ProjectionRow {
            scope: String::new(),
            key: "k".into(),
            state: None,
            attrs: "{}".into(),
            event_id,
            history,
            updated_at: String::new(),
            body: Bytes::new(),
        }
    }

    #[test]
    fn a_history_reads_back_from_its_bytes() {
        let history = vec![id(3), id(2), id(1)];
        let bytes = history_bytes(&history);
        assert_eq!(bytes.len(), 48);
        assert_eq!(history_from_bytes(&bytes), history);
        assert_eq!(history_from_bytes(&bytes[..40]), history[..2]);
    }

    #[test]
    fn the_events_start_with_the_event_that_set_the_row() {
        assert_eq!(row(id(2), vec![id(2), id(1)]).events(), [id(2), id(1)]);
        assert_eq!(row(id(2), vec![]).events(), [id(2)]);
        assert_eq!(row(id(3), vec![id(2), id(3)]).events(), [id(3), id(2)]);
    }
}
