//! `hookgate copy-store FROM TO`: copies a whole store to another, of either backend.
//!
//! What is copied: every event (its id, `received_at`, headers, source, kind, event type,
//! dedupe key, sender id and exact body bytes), in the source's feed order so the destination's
//! feed keeps it; then every projection row as it is (its latest state). Deliveries are not
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use bytes::Bytes;

use super::backend::Store;
use super::error::StoreError;
use super::events::{EventQuery, StoredEvent};
use super::ids::EventId;
use crate::config::{Backend, StoreSettings, redact_url};

/// Events read and imported per transaction.
pub const BATCH: u32 = 1000;

/// Projection rows read and imported per transaction.
const PROJECTION_BATCH: u32 = 1000;

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
}

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
    progress.elapsed = started.elapsed();
    Ok(progress)
}

/// Opens the store a URL names, without a configuration file (the defaults of `store.*`).
/// `must_exist`: a SQLite file that is not there is an error rather than a new empty store.
///
/// # Errors
/// When the URL names no supported store, or it cannot be opened or migrated (the message
/// names the URL, its password hidden).
pub async fn open_url(url: &str, must_exist: bool) -> anyhow::Result<Arc<dyn Store>> {
    let shown = redact_url(url);
    let settings = StoreSettings {
        url: url.to_string(),
        // Long enough for a batch of BATCH large events on a slow disk or server.
        busy_timeout: Some(crate::config::HumanDuration(Duration::from_secs(60))),
        ..StoreSettings::default()
    };
    match settings
        .backend()
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?
    {
        Backend::Sqlite(sqlite) => {
            if must_exist && !sqlite.path.exists() {
                anyhow::bail!(
                    "{shown}: there is no file {}; name an existing store to copy from",
                    sqlite.path.display()
                );
            }
            Ok(Arc::new(
                super::sqlite::SqliteStore::open(&sqlite, &settings)
                    .await
                    .with_context(|| format!("{shown} cannot be opened"))?,
            ))
        }
        Backend::Postgres(pg) => Ok(Arc::new(
            super::postgres::PostgresStore::open(&pg.url, pg.pool_size, &settings).await?,
        )),
    }
}
