//! [`Store`]: what a backend implements: every trait of the store, plus readiness and shutdown.

use async_trait::async_trait;

use super::bulk::CopyStore;
use super::error::StoreError;
use super::events::EventStore;
use super::hooks::HookStore;
use super::outbox::OutboxStore;
use super::projections::ProjectionStore;
use super::retention::RetentionStore;

/// A storage backend: every trait of the store, plus readiness and shutdown.
#[async_trait]
pub trait Store:
    EventStore + ProjectionStore + RetentionStore + CopyStore + OutboxStore + HookStore
{
    /// Checks that the store can be read and its writer is running.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] with the reason.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Commits every write already queued, then stops the writer. Appends after this fail.
    async fn close(&self);
}
