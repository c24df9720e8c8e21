//! [`CopyStore`]: what `hookgate copy-store` ([`super::copy`]) needs of a backend: counting
//! events, importing events with every column kept, and reading and writing projection rows as
//! they are stored.

use async_trait::async_trait;
use bytes::Bytes;

use super::error::StoreError;
use super::events::StoredEvent;
use super::ids::EventId;
use super::outbox::{AttemptRecord, DeliveryRow};

/// A projection row as stored, for copying: where its JSON is, whichever table holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct RawProjection {
    /// The view.
    pub view: String,
    /// The thing's id.
    pub key: String,
    /// The partition (empty when the view has none).
    pub scope: String,
    /// Its state.
    pub state: Option<String>,
    /// The named values, as a JSON object.
    pub attrs: String,
    /// The ordering value (`None`: the later write wins).
    pub ord: Option<i64>,
    /// Where its JSON starts in its event's body, and how long it is.
    pub body_start: i64,
    /// See `body_start`.
    pub body_len: i64,
    /// The event that set it (still stored or not).
    pub event_id: Option<EventId>,
    /// When that event was received.
    pub updated_at: Option<String>,
    /// Its JSON (from the event's body, or the row's own copy once the event was pruned).
    pub body: Option<Bytes>,
    /// The events that set it, newest first (stored or not).
    pub history: Vec<EventId>,
}

impl std::fmt::Debug for RawProjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body and the key may hold personal data.
        f.debug_struct("RawProjection")
            .field("view", &self.view)
            .field("state", &self.state)
            .field("event_id", &self.event_id)
            .finish_non_exhaustive()
    }
}

/// Where a page of projection rows ends: `(view, key, scope)` of its last row.
pub type ProjectionPosition = (String, String, String);

/// What an import wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Rows written.
    pub copied: u64,
    /// Rows already there (or, for a projection, one with a newer state there).
    pub skipped: u64,
}

/// A delivery as stored, with its attempts, for copying. Delivery ids belong to a store: the
/// copy gets the target's own; a delivery is the same one in both stores when its event,
/// destination and creation time are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDelivery {
    /// The delivery (its `id` is the source store's, for paging the export only).
    pub delivery: DeliveryRow,
    /// Its attempts, in order.
    pub attempts: Vec<AttemptRecord>,
}

/// A destination's row, for copying: paused or not (its health starts again in the target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawDestination {
    /// Its id.
    pub id: String,
    /// Paused.
    pub paused: bool,
    /// Why.
    pub paused_reason: Option<String>,
}

/// What a store offers `copy-store`, on both backends.
#[async_trait]
pub trait CopyStore: Send + Sync + 'static {
    /// The events in the store.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn count_events(&self) -> Result<u64, StoreError>;

    /// Inserts these events in one transaction, in this order, keeping their ids and every
    /// column; an event whose id or `(source, dedupe_key)` is already stored is skipped.
    /// Projections are not touched (see [`CopyStore::import_projections`]).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the transaction failed (nothing of it was written).
    async fn import_events(&self, events: Vec<StoredEvent>) -> Result<Imported, StoreError>;

    /// A page of projection rows, in order of `(view, key, scope)`, after `after`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn export_projections(
        &self,
        after: Option<ProjectionPosition>,
        limit: u32,
    ) -> Result<Vec<RawProjection>, StoreError>;

    /// Writes these projection rows in one transaction, each unless the stored row is the
    /// same or holds a higher `ord`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the transaction failed (nothing of it was written).
    async fn import_projections(&self, rows: Vec<RawProjection>) -> Result<Imported, StoreError>;

    /// A page of deliveries with their attempts, in order of id, after `after`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn export_deliveries(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<RawDelivery>, StoreError>;

    /// Writes these deliveries and their attempts in one transaction, each unless the same
    /// delivery (event, destination, creation time) is stored, or its event is not.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the transaction failed (nothing of it was written).
    async fn import_deliveries(&self, rows: Vec<RawDelivery>) -> Result<Imported, StoreError>;

    /// Every destination's row.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be read.
    async fn export_destinations(&self) -> Result<Vec<RawDestination>, StoreError>;

    /// Adds the destinations the store does not have (one it has keeps its own state).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the store cannot be written.
    async fn import_destinations(&self, rows: Vec<RawDestination>) -> Result<Imported, StoreError>;
}
