//! The embedded SQLite store.
//!
//! One writer thread owns the write connection. Requests hand it their event through a bounded
//! queue and wait on a oneshot for the outcome; the writer takes whatever is waiting (up to
//! `store.max_batch`), writes it in one `BEGIN IMMEDIATE` transaction and commits once, so a
//! single fsync (WAL, `synchronous=FULL`) covers the whole batch. That is group commit: the
//! answer still waits for the commit, but the commit cost is shared.
//!
//! Reads (admin API, readiness) use a small pool of separate connections on the blocking thread
//! pool; in WAL mode they see only committed data and never block the writer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{
    Appended, EventPage, EventQuery, IdentusKind, IdentusRecordRow, KratosIdentityRow, NewEvent,
    Projection, RecentKeys, Store, StoreError, StoredEvent,
};
use crate::config::StoreSettings;

/// The writer's page cache, in KiB (as a negative `cache_size`).
const WRITER_CACHE_KIB: i64 = -8 * 1024;
/// Idle read connections kept open.
const READ_POOL_SIZE: usize = 4;

const SCHEMA_V1: &str = r#"
-- seq is assigned by the single writer; the event id (a v7 UUID) carries it, so looking an
-- event up by id is a rowid lookup and no index on the id is needed.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    event_type  TEXT,
    dedupe_key  TEXT    NOT NULL,
    sender_id   TEXT,
    received_at TEXT    NOT NULL,
    headers     TEXT    NOT NULL,
    body        BLOB    NOT NULL,
    UNIQUE (source, dedupe_key)
);
CREATE INDEX events_by_source_type ON events (source, event_type, seq);
-- Projections point into the body of the event that set them (body_start, body_len) rather
-- than keeping a second copy of the JSON.
CREATE TABLE kratos_identities (
    identity_id TEXT PRIMARY KEY,
    event_seq   INTEGER NOT NULL,
    state       TEXT,
    schema_id   TEXT,
    updated_at  TEXT    NOT NULL,
    body_start  INTEGER NOT NULL,
    body_len    INTEGER NOT NULL
);
CREATE TABLE identus_records (
    kind        TEXT    NOT NULL,
    record_id   TEXT    NOT NULL,
    wallet_id   TEXT    NOT NULL,
    state       TEXT,
    ts          TEXT    NOT NULL,
    ts_ns       INTEGER NOT NULL,
    event_seq   INTEGER NOT NULL,
    body_start  INTEGER NOT NULL,
    body_len    INTEGER NOT NULL,
    -- Kind and id first: the admin API looks records up by them, with or without a wallet.
    PRIMARY KEY (kind, record_id, wallet_id)
) WITHOUT ROWID;
"#;

/// A message to the writer thread.
// Nearly every message is a `Write`; boxing it would add an allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
enum Msg {
    /// Store this event and answer on the oneshot.
    Write(NewEvent, oneshot::Sender<Result<Appended, StoreError>>),
    /// Commit everything queued so far, then stop.
    Close(oneshot::Sender<()>),
    /// Write and commit one small row, to find out whether a failed store works again.
    Probe(oneshot::Sender<Result<(), String>>),
}

/// State shared between the store handle and its writer thread.
struct Shared {
    /// False once the writer thread has stopped (closed, or died).
    writer_alive: AtomicBool,
    /// The reason the last commit failed, cleared by the next successful one (or probe).
    last_failure: Mutex<Option<String>>,
    /// Recently committed dedupe keys, filled by the writer after each commit: retries are
    /// answered from here without a trip through the writer.
    recent: Mutex<RecentKeys>,
}

impl Shared {
    /// Whether the last commit failed.
    fn failed(&self) -> bool {
        self.last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Records the outcome of a commit (`None`: it worked), saying so when the store recovers.
    fn set_failure(&self, failure: Option<String>) {
        let mut last = self
            .last_failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if failure.is_none() && last.is_some() {
            tracing::info!("the store commits again");
        }
        *last = failure;
    }
}

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

/// What the probe commit writes: more than a batch of ordinary events needs, so a store with
/// room for the probe (a disk that is not quite full) has room for events too.
const PROBE_BYTES: i64 = 64 * 1024;

/// How long a readiness check waits for the writer's probe commit.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Keys kept per generation in [`RecentKeys`] (two generations: ~2 × this many, a few MiB).
const RECENT_KEYS: usize = 8192;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, migrates it and starts the writer.
    ///
    /// # Errors
    /// When the file cannot be created, opened or migrated.
    pub async fn open(path: &Path, settings: &StoreSettings) -> anyhow::Result<Self> {
        let path = path.to_path_buf();
        let busy = settings.busy_timeout.0;
        let conn = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || open_writer(&path, busy))
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
            last_failure: Mutex::new(None),
            recent: Mutex::new(RecentKeys::new(RECENT_KEYS)),
        });
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
            reads: Arc::new(ReadPool {
                path,
                busy,
                idle: Mutex::new(Vec::new()),
            }),
        })
    }

    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
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
    let conn = Connection::open(path).with_context(|| {
        format!(
            "store.url: the database {} cannot be opened",
            path.display()
        )
    })?;
    conn.busy_timeout(busy)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        anyhow::bail!(
            "store.url: {} cannot use WAL journaling (got {mode})",
            path.display()
        );
    }
    // FULL: the WAL is fsynced at every commit, so a committed event survives power loss.
    conn.pragma_update(None, "synchronous", "FULL")?;
    // The unique (source, dedupe_key) index takes random keys; a larger page cache keeps its
    // upper levels in memory instead of re-reading them from the OS at every insert.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    // SQLite's automatic checkpoint runs inside a commit, while that batch's requests wait.
    // The writer checkpoints itself instead, right after answering a batch (`maybe_checkpoint`);
    // the hook (which replaces the automatic checkpoint) reports how large the WAL has grown.
    conn.wal_hook(Some(note_wal_frames));
    migrate(&conn)
        .with_context(|| format!("the database {} cannot be migrated", path.display()))?;
    Ok(conn)
}

/// WAL frames after which the writer lets the WAL start over (2048 frames of 4 KiB: 8 MiB). A
/// small WAL keeps each checkpoint cheap: SQLite sorts the whole WAL index for every one.
const CHECKPOINT_FRAMES: i32 = 2048;

thread_local! {
    /// Frames in the WAL after the writer's last commit (the writer thread's own connection).
    static WAL_FRAMES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: std::os::raw::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(frames));
    Ok(())
}

/// Lets the WAL start over once it has grown past [`CHECKPOINT_FRAMES`]: run by the writer
/// between batches, so no commit adds frames meanwhile and the next commit can write from the
/// start of the file. The checkpoint thread has usually copied most frames already, so this is
/// short. PASSIVE never waits for readers (if one holds an old snapshot, a later call finishes).
fn maybe_checkpoint(conn: &Connection) {
    if WAL_FRAMES.with(std::cell::Cell::get) < CHECKPOINT_FRAMES {
        return;
    }
    let started = Instant::now();
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    }) {
        Ok((log, done)) => {
            if log == done {
                WAL_FRAMES.with(|f| f.set(0));
            }
            metrics::histogram!("hookgate_store_checkpoint_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        Err(e) => {
            tracing::warn!(error = %e, "WAL checkpoint failed; will retry after the next batch")
        }
    }
}

/// The pause after each checkpoint, during which kicks coalesce.
const CHECKPOINT_PAUSE: Duration = Duration::from_millis(5);

fn run_checkpointer(conn: &Connection, kicks: &std::sync::mpsc::Receiver<()>) {
    let checkpoint = |mode: &str| {
        if let Err(e) = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(())) {
            tracing::warn!(error = %e, mode, "WAL checkpoint failed; will retry");
        }
    };
    while kicks.recv().is_ok() {
        checkpoint("PASSIVE");
        // Let a few commits gather: each checkpoint has a fixed cost (it sorts the WAL index).
        std::thread::sleep(CHECKPOINT_PAUSE);
    }
    checkpoint("TRUNCATE");
}

/// One row the writer rewrites to find out whether a store that failed a commit (disk full,
/// locked, read-only) can commit again, without waiting for an event to try.
const SCHEMA_V2: &str = r#"
CREATE TABLE probe (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    at  TEXT NOT NULL,
    pad BLOB
);
"#;

fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < 1 {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA_V1} PRAGMA user_version = 1; COMMIT;"
        ))?;
    }
    if version < 2 {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA_V2} PRAGMA user_version = 2; COMMIT;"
        ))?;
    }
    Ok(())
}

/// What the writer thread owns.
struct Writer<'a> {
    conn: Connection,
    /// The `seq` the next new event gets. The writer assigns it (it is the only writer), so an
    /// event's id can carry it and no index on the id is needed.
    next_seq: i64,
    shared: &'a Shared,
}

fn run_writer(
    conn: Connection,
    mut rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    shared: &Shared,
    checkpoint: &std::sync::mpsc::SyncSender<()>,
) {
    let next_seq = match conn.query_row("SELECT coalesce(max(seq), 0) + 1 FROM events", [], |r| {
        r.get(0)
    }) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "the store's writer cannot read the last sequence number; stopping");
            return;
        }
    };
    let mut w = Writer {
        conn,
        next_seq,
        shared,
    };
    let mut batch: Batch = Vec::with_capacity(max_batch);
    let mut probes = Vec::new();
    let mut closing: Option<oneshot::Sender<()>> = None;
    while closing.is_none() {
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Write(ev, reply) => batch.push((ev, reply)),
                Msg::Close(ack) => {
                    closing = Some(ack);
                    break;
                }
                Msg::Probe(reply) => probes.push(reply),
            }
            if batch.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() && w.commit_batch(&mut batch) {
            maybe_checkpoint(&w.conn);
            // Full means a kick is already pending: the checkpoint thread will see this commit too.
            let _ = checkpoint.try_send(());
        }
        if !probes.is_empty() {
            let outcome = w.probe();
            for reply in probes.drain(..) {
                let _ = reply.send(outcome.clone());
            }
        }
    }
    if let Some(ack) = closing {
        // Flush what was queued before the close, then refuse the rest by dropping the queue.
        rx.close();
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Write(ev, reply) = msg {
                batch.push((ev, reply));
                if batch.len() >= max_batch {
                    w.commit_batch(&mut batch);
                }
            }
        }
        if !batch.is_empty() {
            w.commit_batch(&mut batch);
        }
        let _ = ack.send(());
    }
}

type Batch = Vec<(NewEvent, oneshot::Sender<Result<Appended, StoreError>>)>;

/// The sequence number an event id carries in its last 62 bits (RFC 9562 v7 `rand_b`, used as
/// a counter), or `None` for an id hookgate did not make.
pub(crate) fn seq_of(id: Uuid) -> Option<i64> {
    if id.get_version_num() != 7 {
        return None;
    }
    let b = id.as_bytes();
    let tail: [u8; 8] = b[8..16].try_into().ok()?;
    i64::try_from(u64::from_be_bytes(tail) & ((1 << 62) - 1)).ok()
}

/// A time-ordered v7 id: the received time in milliseconds, then `seq` as the counter (RFC 9562
/// §6.2, method 1, with `rand_a` left zero), so ids sort in the order events were stored.
fn event_id(seq: i64) -> Uuid {
    let ms = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000)
        .unwrap_or(0);
    let seq = u64::try_from(seq).unwrap_or(0) & ((1 << 62) - 1);
    let mut b = [0u8; 16];
    b[0..6].copy_from_slice(&ms.to_be_bytes()[2..8]);
    b[6..8].copy_from_slice(&0x7000_u16.to_be_bytes());
    b[8..16].copy_from_slice(&((0b10 << 62) | seq).to_be_bytes());
    Uuid::from_bytes(b)
}

impl Writer<'_> {
    /// Commits a write of [`PROBE_BYTES`] to the probe row: clears the last failure when it
    /// works, records it when it does not.
    fn probe(&mut self) -> Result<(), String> {
        // A batch committed since the failure was seen has answered the question already.
        if !self.shared.failed() {
            return Ok(());
        }
        let at = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let outcome = self
            .conn
            .execute(
                "INSERT INTO probe (id, at, pad) VALUES (1, ?1, zeroblob(?2)) \
                 ON CONFLICT (id) DO UPDATE SET at = excluded.at, pad = excluded.pad",
                params![at, PROBE_BYTES],
            )
            .map(|_| ())
            .map_err(|e| e.to_string());
        self.shared.set_failure(outcome.as_ref().err().cloned());
        outcome
    }

    /// Writes and commits a batch and answers each request. True when anything new was written.
    fn commit_batch(&mut self, batch: &mut Batch) -> bool {
        let started = Instant::now();
        let size = batch.len();
        let first_seq = self.next_seq;
        let mut next_seq = first_seq;
        let outcome = (|| -> rusqlite::Result<Vec<Appended>> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut results = Vec::with_capacity(batch.len());
            for (ev, _) in batch.iter() {
                results.push(insert_event(&tx, ev, &mut next_seq)?);
            }
            tx.commit()?;
            Ok(results)
        })();
        metrics::histogram!("hookgate_store_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::histogram!("hookgate_store_batch_size").record(size as f64);
        match outcome {
            Ok(results) => {
                self.next_seq = next_seq;
                self.shared.set_failure(None);
                let mut recent = self
                    .shared
                    .recent
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                for ((ev, reply), result) in batch.drain(..).zip(results) {
                    recent.insert(&ev.source, ev.dedupe_key, result.event_id);
                    // The requester may have timed out; the event is stored either way.
                    let _ = reply.send(Ok(result));
                }
                next_seq > first_seq
            }
            Err(e) => {
                // Rolled back: the sequence numbers were not used.
                let reason = e.to_string();
                tracing::error!(error = %reason, batch = size, "store commit failed; answering 503 to the batch");
                self.shared.set_failure(Some(reason.clone()));
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(StoreError::Unavailable(reason.clone())));
                }
                false
            }
        }
    }
}

fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    ev: &NewEvent,
    next_seq: &mut i64,
) -> rusqlite::Result<Appended> {
    let seq = *next_seq;
    let id = event_id(seq);
    let mut id_buf = Uuid::encode_buffer();
    let id_str: &str = id.hyphenated().encode_lower(&mut id_buf);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO events (seq, id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (source, dedupe_key) DO NOTHING",
        )?
        .execute(params![
            seq,
            id_str,
            &*ev.source,
            ev.kind,
            ev.event_type,
            ev.dedupe_key,
            ev.sender_id,
            ev.received_at,
            ev.headers,
            &ev.body[..],
        ])?;
    if inserted == 0 {
        let first: String = tx
            .prepare_cached("SELECT id FROM events WHERE source = ?1 AND dedupe_key = ?2")?
            .query_row(params![&*ev.source, ev.dedupe_key], |r| r.get(0))?;
        let event_id = Uuid::parse_str(&first)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        return Ok(Appended {
            event_id,
            duplicate: true,
        });
    }
    *next_seq += 1;
    let range = |r: &std::ops::Range<usize>| -> rusqlite::Result<(i64, i64)> {
        let start = i64::try_from(r.start)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        let len = i64::try_from(r.len())
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok((start, len))
    };
    match &ev.projection {
        None => {}
        Some(Projection::KratosIdentity {
            identity_id,
            state,
            schema_id,
            identity,
        }) => {
            let (start, len) = range(identity)?;
            tx.prepare_cached(
                "INSERT INTO kratos_identities (identity_id, event_seq, state, schema_id, updated_at, body_start, body_len)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (identity_id) DO UPDATE SET event_seq = excluded.event_seq, state = excluded.state,
                   schema_id = excluded.schema_id, updated_at = excluded.updated_at,
                   body_start = excluded.body_start, body_len = excluded.body_len",
            )?
            .execute(params![identity_id, seq, state, schema_id, ev.received_at, start, len])?;
        }
        Some(Projection::IdentusRecord {
            wallet_id,
            kind,
            record_id,
            state,
            ts,
            ts_ns,
            data,
        }) => {
            let (start, len) = range(data)?;
            tx.prepare_cached(
                "INSERT INTO identus_records (kind, record_id, wallet_id, state, ts, ts_ns, event_seq, body_start, body_len)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (kind, record_id, wallet_id) DO UPDATE SET state = excluded.state, ts = excluded.ts,
                   ts_ns = excluded.ts_ns, event_seq = excluded.event_seq,
                   body_start = excluded.body_start, body_len = excluded.body_len
                 WHERE excluded.ts_ns > identus_records.ts_ns",
            )?
            .execute(params![kind.as_str(), record_id, wallet_id, state, ts, ts_ns, seq, start, len])?;
        }
    }
    Ok(Appended {
        event_id: id,
        duplicate: false,
    })
}

/// Read connections, opened on demand and kept idle up to [`READ_POOL_SIZE`].
struct ReadPool {
    path: PathBuf,
    busy: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let unavailable = |e: rusqlite::Error| StoreError::Unavailable(e.to_string());
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )
                .map_err(unavailable)?;
                c.busy_timeout(self.busy).map_err(unavailable)?;
                c.pragma_update(None, "query_only", true)
                    .map_err(unavailable)?;
                c
            }
        };
        let result = f(&conn).map_err(unavailable);
        if result.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < READ_POOL_SIZE {
                idle.push(conn);
            }
        }
        result
    }
}

const EVENT_COLUMNS: &str =
    "seq, id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body";

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let id: String = r.get(1)?;
    Ok(StoredEvent {
        seq: r.get(0)?,
        id: Uuid::parse_str(&id).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })?,
        source: r.get(2)?,
        kind: r.get(3)?,
        event_type: r.get(4)?,
        dedupe_key: r.get(5)?,
        sender_id: r.get(6)?,
        received_at: r.get(7)?,
        headers: r.get(8)?,
        body: Bytes::from(r.get::<_, Vec<u8>>(9)?),
    })
}

fn parse_uuid(col: usize, s: String) -> rusqlite::Result<Uuid> {
    Uuid::parse_str(&s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Waits, off the runtime, for a store thread to finish (once; later calls return at once).
async fn join_thread(slot: &Mutex<Option<JoinHandle<()>>>) {
    let handle = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(h) = handle {
        let _ = tokio::task::spawn_blocking(move || h.join()).await;
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        let recent = self
            .shared
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&event.source, &event.dedupe_key);
        if let Some(event_id) = recent {
            return Ok(Appended {
                event_id,
                duplicate: true,
            });
        }
        let (reply, outcome) = oneshot::channel();
        match self.queue.try_send(Msg::Write(event, reply)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => return Err(StoreError::Busy),
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(StoreError::Unavailable(
                    "the store's writer has stopped".into(),
                ));
            }
        }
        outcome.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the store's writer stopped before committing".into(),
            ))
        })
    }

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
        })
        .await
        .map(|_| ())
    }

    async fn list_events(&self, q: EventQuery) -> Result<EventPage, StoreError> {
        self.read(move |c| {
            let limit = i64::from(q.limit.clamp(1, 1000));
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events
                 WHERE seq > ?1 AND (?2 IS NULL OR source = ?2) AND (?3 IS NULL OR event_type = ?3)
                 ORDER BY seq LIMIT ?4"
            ))?;
            let mut events = stmt
                .query_map(
                    params![q.after.unwrap_or(0), q.source, q.event_type, limit + 1],
                    event_from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let more = events.len() as i64 > limit;
            events.truncate(usize::try_from(limit).unwrap_or(1000));
            let next = if more {
                events.last().map(|e| e.seq)
            } else {
                None
            };
            Ok(EventPage { events, next })
        })
        .await
    }

    async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError> {
        let Some(seq) = seq_of(id) else {
            return Ok(None);
        };
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?1 AND id = ?2"
            ))?
            .query_row(params![seq, id.hyphenated().to_string()], event_from_row)
            .optional()
        })
        .await
    }

    async fn kratos_identity(
        &self,
        identity_id: &str,
    ) -> Result<Option<KratosIdentityRow>, StoreError> {
        let identity_id = identity_id.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT k.identity_id, e.id, k.state, k.schema_id, k.updated_at, substr(e.body, k.body_start + 1, k.body_len)
                 FROM kratos_identities k JOIN events e ON e.seq = k.event_seq WHERE k.identity_id = ?1",
            )?
            .query_row([identity_id], |r| {
                Ok(KratosIdentityRow {
                    identity_id: r.get(0)?,
                    event_id: parse_uuid(1, r.get(1)?)?,
                    state: r.get(2)?,
                    schema_id: r.get(3)?,
                    updated_at: r.get(4)?,
                    identity: Bytes::from(r.get::<_, Vec<u8>>(5)?),
                })
            })
            .optional()
        })
        .await
    }

    async fn identus_record(
        &self,
        kind: IdentusKind,
        record_id: &str,
        wallet_id: Option<&str>,
    ) -> Result<Option<IdentusRecordRow>, StoreError> {
        let record_id = record_id.to_string();
        let wallet_id = wallet_id.map(str::to_string);
        self.read(move |c| {
            c.prepare_cached(
                "SELECT r.wallet_id, r.record_id, r.state, r.ts, e.id, substr(e.body, r.body_start + 1, r.body_len)
                 FROM identus_records r JOIN events e ON e.seq = r.event_seq
                 WHERE r.kind = ?1 AND r.record_id = ?2 AND (?3 IS NULL OR r.wallet_id = ?3)
                 ORDER BY r.ts_ns DESC LIMIT 1",
            )?
            .query_row(params![kind.as_str(), record_id, wallet_id], |r| {
                Ok(IdentusRecordRow {
                    wallet_id: r.get(0)?,
                    kind,
                    record_id: r.get(1)?,
                    state: r.get(2)?,
                    ts: r.get(3)?,
                    event_id: parse_uuid(4, r.get(4)?)?,
                    data: Bytes::from(r.get::<_, Vec<u8>>(5)?),
                })
            })
            .optional()
        })
        .await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_v7_and_carry_their_sequence_number() {
        for seq in [1_i64, 2, 4096, 1 << 40, (1 << 62) - 1] {
            let id = event_id(seq);
            assert_eq!(id.get_version_num(), 7);
            assert_eq!(id.get_variant(), uuid::Variant::RFC4122);
            assert_eq!(seq_of(id), Some(seq));
        }
        assert!(
            event_id(1) < event_id(2)
                || event_id(1).as_bytes()[0..6] != event_id(2).as_bytes()[0..6]
        );
        assert_eq!(
            seq_of(Uuid::new_v4()),
            None,
            "ids hookgate did not make are not looked up"
        );
    }
}
