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
    /// When that event was received (RFC 3339).
    pub updated_at: String,
    /// The thing's JSON, as received.
    pub body: Bytes,
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
