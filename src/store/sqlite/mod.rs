//! The embedded SQLite store.
//!
//! # Layout
//! - `writer`: one writer thread owns the write connection and group-commits whatever requests
//!   are waiting as one transaction (WAL, `synchronous=FULL`: one fsync per batch).
//! - `checkpoint`: keeps the WAL small without making a commit wait for it; shows the file's
//!   size (`hookgate_store_bytes`) after each checkpoint.
//! - `prune`: retention: a prune batch and a step of giving space back (incremental vacuum),
//!   both run by the writer between group commits.
//! - `outbox`: the deliveries (`OutboxStore`): reads on the read pool, writes in the writer's
//!   group commits.
//! - `hooks`: registered hooks: reads on the read pool, writes in the writer's group commits.
//! - `read`: a small pool of read connections for the admin API and readiness; in WAL mode
//!   they see only committed data and never block the writer.
//! - [`schema`]: migrations, as SQL files under `migrations/`.
//! - `shared`: what the store handle and the writer thread share (failure state, recent keys).
//! - `walbuf`: the writer's connection goes through a VFS that writes a commit's WAL frames with
//!   one `pwrite` instead of two per frame (no change to durability).
//! - this file: opening the database, and the store traits over the parts above.

pub mod check;
mod checkpoint;
mod copy;
mod hooks;
mod outbox;
mod prune;
mod read;
pub mod schema;
mod shared;
mod walbuf;
mod writer;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, watch};

use self::checkpoint::{note_wal_frames, record_size, run_checkpointer};
use self::read::ReadPool;
use self::shared::Shared;
use self::writer::{Msg, run_writer};
use crate::config::{SqliteSettings, StoreSettings};
use crate::store::backend::Store;
use crate::store::bulk::{
    CopyStore, Imported, ProjectionPosition, RawDelivery, RawDestination, RawProjection,
};
use crate::store::error::{LastFailure, StoreError};
use crate::store::events::{Appended, EventPage, EventQuery, EventStore, NewEvent, StoredEvent};
use crate::store::handoff::append_through;
use crate::store::ids::EventId;
use crate::store::outbox::DeliveryState;
use crate::store::projections::{
    ProjectionKey, ProjectionPage, ProjectionQuery, ProjectionRow, ProjectionStore,
};
use crate::store::recent::RecentKeys;
use crate::store::retention::{Pruned, RetentionStore};

/// The writer's page cache, in KiB (as a negative `cache_size`).
const WRITER_CACHE_KIB: i64 = -8 * 1024;

/// The SQLite store.
pub struct SqliteStore {
    /// Queue to the writer; bounded by `store.queue_capacity`.
    queue: mpsc::Sender<Msg>,
    /// The writer thread, joined on close.
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The checkpoint thread; it stops when the writer does, and is joined on close after it.
    checkpointer: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<Shared>,
    reads: Arc<ReadPool>,
}

/// How long a readiness check waits for the writer's probe commit.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Keys kept per generation in [`RecentKeys`] (two generations: ~2 × this many, a few MiB).
const RECENT_KEYS: usize = 8192;

impl SqliteStore {
    /// Opens (creating if needed) the database file, migrates it and starts the writer.
    ///
    /// # Errors
    /// When the file cannot be created, opened or migrated.
    pub async fn open(sqlite: &SqliteSettings, settings: &StoreSettings) -> anyhow::Result<Self> {
        let path = sqlite.path.clone();
        let busy = sqlite.busy_timeout;
        let (conn, events) = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<(Connection, i64)> {
                let conn = open_writer(&path, busy)?;
                // Once, at open: from here the writer keeps the count (`Shared::count_events`).
                let events = conn
                    .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
                    .context("the store's events cannot be counted")?;
                record_size(&path);
                Ok((conn, events))
            })
            .await
            .context("the store's open task failed")??
        };
        // After each commit the writer kicks the checkpoint thread; kicks coalesce (capacity 1).
        let (kick_tx, kick_rx) = std::sync::mpsc::sync_channel::<()>(1);
        let checkpointer = {
            let path = path.clone();

            let conn = tokio::task::spawn_blocking(move || -> rusqlite::Result<Connection> {
                let c = Connection::open(&path)?;
                c.busy_timeout(busy)?;
                Ok(c)
            })
            .await
            .context("the store's open task failed")?
            .context("store.url: the database cannot be opened for checkpoints")?;
            std::thread::Builder::new()
                .name("hookgate-checkpoint".into())
                .spawn(move || run_checkpointer(&conn, &kick_rx))
                .context("the store's checkpoint thread could not be started")?
        };
        let (tx, rx) = mpsc::channel(settings.queue_capacity);
        let shared = Arc::new(Shared {
            writer_alive: AtomicBool::new(true),
            last_failure: LastFailure::default(),
            recent: Mutex::new(RecentKeys::new(RECENT_KEYS)),
            commits: watch::Sender::new(0),
            queued: watch::Sender::new(0),
            events: AtomicI64::new(0),
            fresh: shared::FreshFloors::default(),
        });
        shared.count_events(events);
        let max_batch = settings.max_batch;
        let writer_shared = shared.clone();
        let handle = std::thread::Builder::new()
            .name("hookgate-writer".into())
            .spawn(move || {
                run_writer(conn, rx, max_batch, &writer_shared, &kick_tx);
                writer_shared.writer_alive.store(false, Ordering::SeqCst);
            })
            .context("the store's writer thread could not be started")?;
        Ok(Self {
            queue: tx,
            writer: Mutex::new(Some(handle)),
            checkpointer: Mutex::new(Some(checkpointer)),
            shared,
            reads: Arc::new(ReadPool::new(path, busy)),
        })
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.reads.clone();
        tokio::task::spawn_blocking(move || pool.with(f))
            .await
            .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }
}

fn open_writer(path: &Path, busy: Duration) -> anyhow::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("store.url: the folder {} cannot be created", dir.display())
        })?;
    }
    // Through the WAL write buffer (`walbuf`), which also sets `synchronous=FULL` at once: the
    // WAL is fsynced at every commit, so a committed event survives power loss.
    let conn = walbuf::open(path).with_context(|| {
        format!(
            "store.url: the database {} cannot be opened",
            path.display()
        )
    })?;
    conn.busy_timeout(busy)?;
    // Only a new file takes it (before its first table); an existing one keeps its own.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    // Before WAL: switching a new file to WAL writes its header, and with it auto_vacuum's value.
    use_incremental_vacuum(&conn, path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        anyhow::bail!(
            "store.url: {} cannot use WAL journaling (got {mode})",
            path.display()
        );
    }
    // A prune or vacuum step can grow the WAL past its usual few MiB; once checkpointed, cut it
    // back to this rather than keep the largest size it ever had.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    // FULL (again, as `walbuf::open` set it: the buffer relies on it): the WAL is fsynced at
    // every commit, so a committed event survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The unique (source, dedupe_key) index takes random keys; a larger page cache keeps its
    // upper levels in memory instead of re-reading them from the OS at every insert.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    // SQLite's automatic checkpoint runs inside a commit, while that batch's requests wait.
    // The writer checkpoints itself instead, right after answering a batch (`maybe_checkpoint`);
    // the hook (which replaces the automatic checkpoint) reports how large the WAL has grown.
    conn.wal_hook(Some(note_wal_frames));
    let mut conn = conn;
    schema::migrate(&mut conn)
        .with_context(|| format!("the database {} cannot be migrated", path.display()))?;
    Ok(conn)
}

/// The page size of a new store, in bytes.
const PAGE_SIZE: i64 = 4096;

/// The WAL's size, in bytes, kept after a checkpoint (`journal_size_limit`).
const WAL_SIZE_LIMIT: i64 = 32 * 1024 * 1024;

/// Makes the file give space back (`auto_vacuum = INCREMENTAL`, see `prune`). A new file gets it
/// before its first table; an existing one is rewritten once by `VACUUM` (outside any
/// transaction; as long as copying the file takes, and as much free disk).
fn use_incremental_vacuum(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode == INCREMENTAL {
        return Ok(());
    }
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables == 0 {
        return Ok(());
    }
    let started = std::time::Instant::now();
    tracing::info!(database = %path.display(), "converting the store to incremental auto-vacuum, once (VACUUM): the file will give space back after pruning");
    conn.execute_batch("VACUUM").with_context(|| {
        format!(
            "store.url: {} could not be converted to incremental auto-vacuum (VACUUM needs free disk space as large as the file); free some space or run `sqlite3 FILE 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM'` by hand",
            path.display()
        )
    })?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "store converted to incremental auto-vacuum"
    );
    Ok(())
}

/// Waits, off the runtime, for a store thread to finish (once; later calls return at once).
async fn join_thread(slot: &Mutex<Option<JoinHandle<()>>>) {
    let handle = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(h) = handle {
        let _ = tokio::task::spawn_blocking(move || h.join()).await;
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        append_through(&self.shared.recent, &self.queue, event, Msg::Write).await
    }

    async fn list_events(&self, q: EventQuery) -> Result<EventPage, StoreError> {
        self.read(move |c| read::list_events(c, &q)).await
    }

    async fn get_event(&self, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
        self.read(move |c| read::get_event(c, id)).await
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.shared.commits.subscribe()
    }

    async fn source_activity(
        &self,
        since: time::OffsetDateTime,
    ) -> Result<Vec<crate::store::events::SourceActivity>, StoreError> {
        self.read(move |c| read::source_activity(c, since)).await
    }
}

#[async_trait]
impl ProjectionStore for SqliteStore {
    async fn projection(
        &self,
        key: ProjectionKey<'_>,
    ) -> Result<Option<ProjectionRow>, StoreError> {
        let (view, id, scope) = (
            key.view.to_string(),
            key.key.to_string(),
            key.scope.map(str::to_string),
        );
        self.read(move |c| {
            read::projection(
                c,
                &ProjectionKey {
                    view: &view,
                    key: &id,
                    scope: scope.as_deref(),
                },
            )
        })
        .await
    }

    async fn list_projections(&self, q: ProjectionQuery) -> Result<ProjectionPage, StoreError> {
        self.read(move |c| read::list_projections(c, &q)).await
    }
}

impl SqliteStore {
    /// Sends a retention message to the writer (waiting for room in the queue, like no request
    /// does: the pruner is in no hurry) and waits for its answer.
    async fn chore<T>(
        &self,
        msg: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Msg,
    ) -> Result<T, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(msg(reply))
            .await
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?
            .map_err(StoreError::Unavailable)
    }
}

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn prune(
        &self,
        cutoff: time::OffsetDateTime,
        limit: usize,
    ) -> Result<Pruned, StoreError> {
        self.chore(|reply| Msg::Prune(cutoff, limit, reply)).await
    }

    async fn reclaim(&self) -> Result<bool, StoreError> {
        self.chore(Msg::Reclaim).await
    }
}

impl SqliteStore {
    /// Runs `work` in a transaction of its own on the writer's connection, between two group
    /// commits (waiting for room in the queue), and answers what it wrote.
    async fn import<F>(&self, work: F) -> Result<Imported, StoreError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<(Imported, i64)> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel();
        let job: writer::Exclusive = Box::new(move |conn| {
            let result = work(conn);
            let added = result.as_ref().map_or(0, |(_, added)| *added);
            let _ = reply.send(result.map(|(done, _)| done).map_err(read::unavailable));
            added
        });
        self.queue
            .send(Msg::Exclusive(job))
            .await
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?
    }
}

#[async_trait]
impl CopyStore for SqliteStore {
    async fn count_events(&self) -> Result<u64, StoreError> {
        self.read(|c| {
            c.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(read::unavailable)
        })
        .await
    }

    async fn import_events(&self, events: Vec<StoredEvent>) -> Result<Imported, StoreError> {
        self.import(move |conn| {
            let done = copy::import_events(conn, &events)?;
            Ok((done, i64::try_from(done.copied).unwrap_or(i64::MAX)))
        })
        .await
    }

    async fn export_projections(
        &self,
        after: Option<ProjectionPosition>,
        limit: u32,
    ) -> Result<Vec<RawProjection>, StoreError> {
        self.read(move |c| {
            copy::export_projections(c, after.as_ref(), limit).map_err(read::unavailable)
        })
        .await
    }

    async fn import_projections(&self, rows: Vec<RawProjection>) -> Result<Imported, StoreError> {
        self.import(move |conn| Ok((copy::import_projections(conn, &rows)?, 0)))
            .await
    }

    async fn export_deliveries(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<RawDelivery>, StoreError> {
        self.read(move |c| copy::export_deliveries(c, after, limit).map_err(read::unavailable))
            .await
    }

    async fn import_deliveries(&self, rows: Vec<RawDelivery>) -> Result<Imported, StoreError> {
        let pending = rows
            .iter()
            .any(|r| r.delivery.state == DeliveryState::Pending);
        let done = self
            .import(move |conn| Ok((copy::import_deliveries(conn, &rows)?, 0)))
            .await?;
        // Copied deliveries may be due: the workers look.
        if pending && done.copied > 0 {
            self.shared.note_queued();
        }
        Ok(done)
    }

    async fn export_destinations(&self) -> Result<Vec<RawDestination>, StoreError> {
        self.read(|c| copy::export_destinations(c).map_err(read::unavailable))
            .await
    }

    async fn import_destinations(&self, rows: Vec<RawDestination>) -> Result<Imported, StoreError> {
        self.import(move |conn| Ok((copy::import_destinations(conn, &rows)?, 0)))
            .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        if !self.shared.writer_alive.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "the store's writer has stopped".into(),
            ));
        }
        if self.shared.failed() {
            // Find out whether the fault has cleared (no event may arrive to try while a load
            // balancer keeps traffic away from an instance that is not ready).
            let (reply, outcome) = oneshot::channel();
            self.queue
                .try_send(Msg::Probe(reply))
                .map_err(|_| StoreError::Busy)?;
            match tokio::time::timeout(PROBE_TIMEOUT, outcome).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(reason))) => {
                    return Err(StoreError::Unavailable(format!(
                        "the store cannot commit: {reason}"
                    )));
                }
                Ok(Err(_)) | Err(_) => {
                    return Err(StoreError::Unavailable(
                        "the store's writer did not answer a probe".into(),
                    ));
                }
            }
        }
        self.read(|c| {
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(read::unavailable)
        })
        .await
        .map(|_| ())
    }

    async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.queue.send(Msg::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
        // The writer first (it stops the checkpoint thread by dropping its kicks), then that.
        join_thread(&self.writer).await;
        join_thread(&self.checkpointer).await;
    }
}
