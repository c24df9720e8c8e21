//! `hookgate copy-store FROM TO`: copies a whole store to another, of either backend.
//!
//! What is copied: every event (its id, `received_at`, headers, source, kind, event type,
//! dedupe key, sender id and exact body bytes), in the source's feed order so the destination's
//! feed keeps it; then every projection row as it is (its latest state). Registered hooks are
//! copied first, deleted ones included (a copied deletion deletes the hook in the destination). Deliveries are not
//! copied (the table holds nothing yet that outlives a restart of delivery, issue 11).
//!
//! # Idempotent and resumable
//! An event is imported unless the destination already holds its id or its
//! `(source, dedupe_key)`; a projection row is written only when it differs from the
//! destination's, and never over one with a higher `ord` (the rule appends keep). Batches of
//! [`BATCH`] events commit one transaction each, so a copy killed half way leaves whole batches,
//! and running it again copies the rest (it reads the source again from the start and skips
//! what is there: a second run over 100 000 events takes seconds) and copies nothing twice.
//!
//! A projection row points at its event's body in the destination when that event is there
//! (same id), and otherwise keeps its own copy of its JSON (as a row whose event was pruned).

use std::time::{Duration, Instant};

use super::backend::Store;
use super::error::StoreError;
use super::events::EventQuery;

pub use super::bulk::{
    CopyStore, Imported, ProjectionPosition, RawDelivery, RawDestination, RawProjection,
};
pub use super::connect::open_url;

/// Events read and imported per transaction.
pub const BATCH: u32 = 1000;

/// Projection rows read and imported per transaction.
const PROJECTION_BATCH: u32 = 1000;

/// Where a copy stands, for progress reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Events in the source when the copy began.
    pub total: u64,
    /// Events read from the source so far.
    pub read: u64,
    /// Events written to the destination.
    pub copied: u64,
    /// Events the destination held already.
    pub skipped: u64,
    /// Projection rows written.
    pub projections: u64,
    /// Projection rows the destination held already (or held newer).
    pub projections_skipped: u64,
    /// Deliveries (with their attempts) written, and found already there.
    pub deliveries: u64,
    /// See `deliveries`.
    pub deliveries_skipped: u64,
    /// Registered hooks written (deleted ones too), and found already there.
    pub hooks: u64,
    /// See `hooks`.
    pub hooks_skipped: u64,
    /// Time since the copy began.
    pub elapsed: Duration,
}

impl Progress {
    /// Events read per second so far.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.read as f64 / secs
        } else {
            0.0
        }
    }
}

/// Copies every event, then every projection row, from `from` to `to`, calling `report` after
/// each batch.
///
/// # Errors
/// When either store fails; what was committed before stays, and a rerun continues.
pub async fn copy(
    from: &dyn Store,
    to: &dyn Store,
    mut report: impl FnMut(&Progress),
) -> Result<Progress, StoreError> {
    let started = Instant::now();
    let mut progress = Progress {
        total: from.count_events().await?,
        ..Progress::default()
    };
    // Registered hooks first (deleted ones too: their rows describe their events), so that a
    // hook's events are served with their hook as soon as they are there.
    let mut after = None;
    loop {
        let rows = from.list_hooks(after, HOOK_BATCH, true).await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = Some(last.id.clone());
        let full = rows.len() >= HOOK_BATCH as usize;
        let done = to.import_hooks(rows).await?;
        progress.hooks += done.copied;
        progress.hooks_skipped += done.skipped;
        if !full {
            break;
        }
    }
    let mut after = None;
    loop {
        let page = from
            .list_events(EventQuery {
                limit: BATCH,
                after: after.clone(),
                ..EventQuery::default()
            })
            .await?;
        if page.events.is_empty() {
            break;
        }
        progress.read += page.events.len() as u64;
        let done = to.import_events(page.events).await?;
        progress.copied += done.copied;
        progress.skipped += done.skipped;
        progress.elapsed = started.elapsed();
        report(&progress);
        after = Some(page.next);
        if !page.more {
            break;
        }
    }
    let mut after = None;
    loop {
        let rows = from.export_projections(after, PROJECTION_BATCH).await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = Some((last.view.clone(), last.key.clone(), last.scope.clone()));
        let full = rows.len() >= PROJECTION_BATCH as usize;
        let done = to.import_projections(rows).await?;
        progress.projections += done.copied;
        progress.projections_skipped += done.skipped;
        progress.elapsed = started.elapsed();
        report(&progress);
        if !full {
            break;
        }
    }
    // Destinations, then deliveries: after the events, so that every delivery finds its event.
    to.import_destinations(from.export_destinations().await?)
        .await?;
    let mut after = None;
    loop {
        let rows = from.export_deliveries(after, DELIVERY_BATCH).await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = Some(last.delivery.id);
        let full = rows.len() >= DELIVERY_BATCH as usize;
        let done = to.import_deliveries(rows).await?;
        progress.deliveries += done.copied;
        progress.deliveries_skipped += done.skipped;
        progress.elapsed = started.elapsed();
        report(&progress);
        if !full {
            break;
        }
    }
    progress.elapsed = started.elapsed();
    Ok(progress)
}

/// Registered hooks read and written at once.
const HOOK_BATCH: u32 = 1000;

/// Deliveries read and written at once.
const DELIVERY_BATCH: u32 = 1000;
