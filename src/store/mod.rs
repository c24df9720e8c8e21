//! Durable storage of events and the projections kept from them.
//!
//! # Layout
//! - [`events`]: [`EventStore`], the event log (append exactly once, read the feed), event ids
//!   and feed cursors.
//! - [`projections`]: [`ProjectionStore`], the latest state of each thing the events talk about.
//! - [`Store`]: what a backend implements, every trait above plus readiness and shutdown.
//!   Delivery adds its outbox here as one more trait of its own (`outbox.rs`), written in the
//!   same transaction as the event.
//! - [`recent`]: dedupe keys of recently committed events, kept in memory by a backend.
//! - [`sqlite`]: the embedded default, WAL with `synchronous=FULL`, one writer thread that
//!   group-commits whatever requests are waiting as one transaction.
//!
//! The promise kept here: [`EventStore::append`] returns only after the event (and its
//! projection update) is committed, so the 2xx that follows means stored.
//!
//! May call: `config` only. Nothing here knows a sender.

pub mod events;
pub mod projections;
pub mod recent;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

use crate::config::{Backend, StoreSettings};

pub use events::{
    Appended, Cursor, EventId, EventPage, EventQuery, EventStore, NewEvent, StoredEvent,
};
pub use projections::{Projection, ProjectionKey, ProjectionRow, ProjectionStore};
pub use recent::RecentKeys;

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Too many writes are waiting; the sender should retry shortly.
    #[error("the store's write queue is full")]
    Busy,
    /// The store cannot take writes or reads right now (disk, lock, writer gone).
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A client's `after` is not a cursor this store made.
    #[error("not a cursor of this store")]
    InvalidCursor,
}

/// A storage backend: every trait of the store, plus readiness and shutdown.
#[async_trait]
pub trait Store: EventStore + ProjectionStore {
    /// Checks that the store can be read and its writer is running.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] with the reason.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Commits every write already queued, then stops the writer. Appends after this fail.
    async fn close(&self);
}

/// Opens the store `store.url` names, applying migrations.
///
/// # Errors
/// When the URL is not supported or the database cannot be opened or migrated.
pub async fn connect(settings: &StoreSettings) -> anyhow::Result<Arc<dyn Store>> {
    match settings.backend().map_err(anyhow::Error::msg)? {
        Backend::Sqlite(sqlite) => Ok(Arc::new(
            sqlite::SqliteStore::open(&sqlite, settings).await?,
        )),
    }
}
