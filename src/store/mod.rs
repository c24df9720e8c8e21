//! Durable storage of events and the projections kept from them.
//!
//! # Layout
//! - [`events`]: [`EventStore`], the event log (append exactly once, read the feed).
//! - [`ids`]: [`EventId`] (made where an event is received) and [`Cursor`] (a feed position,
//!   made by the backend).
//! - [`projections`]: [`ProjectionStore`], the latest state of each thing the events talk about.
//! - [`retention`]: [`RetentionStore`] (delete old events in batches, give the space back) and
//!   [`retention::run_pruner`], the task that does it every so often (`store.retention`).
//! - [`backend`]: [`Store`], what a backend implements: every trait above plus readiness and
//!   shutdown. Delivery adds its outbox as one more trait of its own (`outbox.rs`), written in
//!   the same transaction as the event.
//! - [`hooks`]: [`HookStore`], registered hooks (`/admin/hooks`), and how a hook's events carry
//!   its id.
//! - [`bulk`]: [`bulk::CopyStore`], the bulk reads and writes `copy-store` needs of a backend.
//! - [`copy`]: `hookgate copy-store`: a whole store copied to another backend, idempotent and
//!   resumable.
//! - [`mod@connect`]: the backend `store.url` names.
//! - [`error`]: [`StoreError`], why the store could not do something.
//! - [`recent`]: dedupe keys of recently committed events, kept in memory by a backend.
//! - [`postgres`]: shared by replicas; group commit as on SQLite, the promises kept in SQL
//!   across processes; `store.url: postgres://…`.
//! - `contract_tests`: the same checks run against every backend.
//! - [`sqlite`]: the embedded default, WAL with `synchronous=FULL`, one writer thread that
//!   group-commits whatever requests are waiting as one transaction.
//!
//! The promise kept here: [`EventStore::append`] returns only after the event (and its
//! projection update) is committed, so the 2xx that follows means stored.
//!
//! May call: `config` only. Nothing here knows a sender.

pub mod backend;
pub mod bulk;
pub mod connect;
#[cfg(test)]
mod contract_tests;
pub mod copy;
pub mod error;
pub mod events;
pub mod handoff;
pub mod hooks;
pub mod ids;
pub mod outbox;
pub mod postgres;
pub mod projections;
pub mod recent;
pub mod retention;
pub mod sqlite;

pub use backend::Store;
pub use connect::connect;
pub use error::StoreError;
pub use events::{
    Appended, EventPage, EventQuery, EventStore, NewEvent, RECEIVED_ORDER_SLACK, SourceActivity,
    StoredEvent, stored_content_type, string_object,
};
pub use hooks::{HOOKS_SOURCE, HookRow, HookStore};
pub use ids::{Cursor, EventId};
pub use outbox::OutboxStore;
pub use projections::{
    Projection, ProjectionKey, ProjectionPage, ProjectionQuery, ProjectionRow, ProjectionStore,
    SEARCHABLE_ATTRS,
};
pub use recent::RecentKeys;
pub use retention::{Pruned, RetentionStore};
