//! The PostgreSQL store, shared by any number of hookgate replicas on one database.
//!
//! Selected by `store.url: postgres://…` ([`crate::config::StoreSettings::backend`]), with
//! `store.pool_size` connections at most and `store.busy_timeout` as `statement_timeout`.
//!
//! # Faults
//! A statement the server does not finish within `statement_timeout` is cancelled by it; one
//! the client hears nothing about for [`CLIENT_GRACE`] longer (a network or server gone silent)
//! is given up by the client, and its connection dropped rather than pooled. A connection that
//! died (killed, server restarted) fails the batch or read using it (503) and is not handed out
//! again (deadpool checks `is_closed` when recycling); the next one is made fresh. An
//! unreachable server fails within `connect_timeout` (3 s unless the URL sets it). So every
//! fault answers 503 with `Retry-After` within seconds, and the store works again once the
//! database does, without a restart.
//!
//! # Layout
//! - [`schema`]: migrations, as SQL files under `migrations/`, applied at open under an
//!   advisory lock.
//! - `writer`: one task per process group-commits whatever requests are waiting as one
//!   transaction, as on SQLite; what one writer gave SQLite is done in SQL here (unique
//!   dedupe key, the projection's `ord` rule, lock order).
//! - `read`: the admin API's queries.
//! - `hooks`: registered hooks, plain statements on pooled connections.
//! - this file: opening the pool, the `NOTIFY` listener, and the store traits.
//!
//! # Driver
//! `tokio-postgres` with the `deadpool-postgres` pool, rather than `sqlx`, from a measurement
//! (docs/pg-driver.md, `benches/pg-driver/`): on hookgate's write, sqlx costs the client
//! 1.6–1.9× the CPU per event, and without pipelining (sqlx runs one query at a time per
//! connection) a batch's statements cost a round trip each. tokio-postgres sends every query
//! whose future is polled without waiting for the previous answer, which the writer uses to
//! send a whole batch, `BEGIN` to `COMMIT`, in one round trip; it caches prepared statements
//! per connection (`prepare_cached`), and has binary `COPY` for `copy-store`. Runtime queries
//! only (no compile-time checking against a database).
//! TLS: `tls.rs` (rustls), from the URL's `sslmode` and `sslrootcert`.
//!
//! # The feed
//! Sequence values commit out of order across replicas (and across a replica's own pool):
//! replica A takes seq 10, replica B takes 11 and commits first; a reader that saw 11 and kept
//! it as its cursor would never see 10. So the cursor is not `seq`. Every row records the id
//! of the transaction that wrote it (`xid`, `pg_current_xact_id()`, one per batch), the feed is
//! ordered by `(xid, seq)`, and a page shows only rows whose `xid` is below a horizon
//! (`read::feed_horizon`, read in a statement before the page's): the smallest of the next
//! transaction id and the ids of the transactions holding a lock on this database's `events`
//! table. Every transaction below it that writes events has finished (a writer takes the
//! table's lock before its first row gives it an id), and every one that writes later gets an
//! id at or above it. So once a row is shown, no row can ever appear before it: paging with
//! `next` sees every committed event exactly once, in a single order every reader shares (the
//! order of the writing transactions' ids, which is the commit order except among transactions
//! that were running at the same time). It costs the writer nothing (no lock, no second write),
//! and a read one look at `pg_locks`.
//! The price: an event appears in the feed only once every transaction writing events that
//! began before it has finished (other replicas' batches, a `copy-store` batch; milliseconds).
//! Other programs' transactions on the same server do not hold it back (the server-wide
//! snapshot `xmin` would: an earlier version used it, and any long transaction anywhere delayed
//! the feed). A long poll woken by a commit that is still held back finds nothing and waits for
//! the next commit, or its `wait`. Within one process, a read of the feed waits up to half a
//! second for the transactions older than that process's last commit, so an event answered 2xx
//! is in the same replica's feed at once; another replica's feed may show it a moment later.
//!
//! # Long polls
//! Each commit that stored something new sends `NOTIFY hookgate_events`; every replica keeps a
//! connection that `LISTEN`s and counts them into [`EventStore::commits`] (and its own commits
//! directly). When that connection is lost it is made again, and the count moves once (a
//! commit may have been missed meanwhile).

pub mod schema;

mod copy;
mod errors;
mod hooks;
mod outbox;
mod read;
mod text;
pub mod tls;
mod writer;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::StreamExt as _;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

pub use self::errors::describe;
use self::writer::{CHANNEL, Msg, Shared, run_writer};
use crate::config::{StoreSettings, redact_url};
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

/// Keys kept per generation in [`RecentKeys`], as on SQLite.
const RECENT_KEYS: usize = 8192;

/// How long a request waits for a pooled connection, or for a new one to be made, before the
/// store counts as unavailable (a 503 within a few seconds, not the request timeout). With the
/// defaults, a request queued behind a batch that hangs on a silent server answers 503 after at
/// most `busy_timeout` 5 s + [`CLIENT_GRACE`] 1 s + this 3 s: within `request_timeout`'s 10 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// `statement_timeout` when `store.busy_timeout` is not set.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// How much longer than `statement_timeout` the client waits for an answer before giving up on
/// the connection itself (a server or network that stopped answering cannot cancel anything).
const CLIENT_GRACE: Duration = Duration::from_secs(1);

/// A feed read waits for the transactions older than this process's last commit in steps of
/// this long, at most [`OWN_COMMITS_WAIT_STEPS`] of them (then it answers what it sees).
const OWN_COMMITS_WAIT_STEP: Duration = Duration::from_millis(5);
const OWN_COMMITS_WAIT_STEPS: u32 = 100;

/// How often the size gauges are refreshed.
const SIZE_EVERY: Duration = Duration::from_secs(30);

/// How long the listener waits before connecting again after losing its connection.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// The PostgreSQL store.
pub struct PostgresStore {
    pool: Pool,
    /// Queue to the writer task; bounded by `store.queue_capacity`.
    queue: mpsc::Sender<Msg>,
    writer: Mutex<Option<JoinHandle<()>>>,
    listener: JoinHandle<()>,
    /// Refreshes the size gauges every [`SIZE_EVERY`].
    sizer: JoinHandle<()>,
    shared: Arc<Shared>,
    /// How long a statement may take before its connection is given up (`statement_timeout`
    /// plus a grace for the server's own cancellation to arrive).
    answer_within: Duration,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`, libpq's parameters such as
    /// `options=-csearch_path%3Dname` allowed), migrates the schema under an advisory lock and
    /// starts the writer and the listener. `pool_size` connections at most.
    ///
    /// # Errors
    /// When the URL cannot be read, the database cannot be reached or cannot be migrated (the
    /// message names the URL with its password hidden).
    pub async fn open(
        url: &str,
        pool_size: usize,
        settings: &StoreSettings,
    ) -> anyhow::Result<Self> {
        let shown = redact_url(url);
        let (mut config, tls) = tls::prepare(url)?;
        // `2xx means stored`: a commit returns only once it is flushed, whatever the server's
        // or the role's default says. A statement that hangs (a lock held by another program,
        // an overloaded server) is cancelled by the server after `store.busy_timeout`, so the
        // request answers 503 within seconds rather than running into its own timeout.
        let statement_timeout = settings
            .busy_timeout
            .map_or(DEFAULT_STATEMENT_TIMEOUT, |d| d.0);
        let ours = format!(
            "-c synchronous_commit=on -c statement_timeout={}",
            statement_timeout.as_millis().max(1)
        );
        let options = match config.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} {ours}"),
            _ => ours,
        };
        config.options(&options);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("hookgate");
        }
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(2))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .with_context(|| {
                format!("store.url: {shown}: the connection pool could not be made")
            })?;
        {
            let mut client = pool
                .get()
                .await
                .map_err(|e| anyhow::anyhow!(tls::unreachable(url, &describe(&e))))?;
            let client: &mut tokio_postgres::Client = &mut client;
            schema::migrate(client)
                .await
                .with_context(|| format!("store.url: the database {shown} cannot be migrated"))?;
        }
        let shared = Arc::new(Shared {
            writer_alive: AtomicBool::new(true),
            committed_xid: AtomicI64::new(0),
            last_failure: LastFailure::default(),
            recent: Mutex::new(RecentKeys::new(RECENT_KEYS)),
            commits: watch::Sender::new(0),
            queued: watch::Sender::new(0),
        });
        let (tx, rx) = mpsc::channel(settings.queue_capacity.max(1));
        let writer = {
            let shared = shared.clone();
            let pool = pool.clone();
            let max_batch = settings.max_batch;
            let answer_within = statement_timeout + CLIENT_GRACE;
            tokio::spawn(async move {
                run_writer(pool, rx, max_batch, answer_within, &shared).await;
                shared.writer_alive.store(false, Ordering::SeqCst);
            })
        };
        let listener = tokio::spawn(listen(config, tls, shared.clone()));
        let sizer = tokio::spawn(show_size(pool.clone()));
        Ok(Self {
            pool,
            queue: tx,
            writer: Mutex::new(Some(writer)),
            listener,
            sizer,
            shared,
            answer_within: statement_timeout + CLIENT_GRACE,
        })
    }

    /// A pooled connection, or why there is none.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("no connection to PostgreSQL: {e}")))
    }

    /// The events in the store and the bytes its tables take (with indexes and TOAST), as
    /// `hookgate_store_events` and `hookgate_store_bytes` show them.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be read.
    pub async fn size(&self) -> Result<(u64, u64), StoreError> {
        let client = self.client().await?;
        let answered = tokio::time::timeout(self.answer_within, read::size(&client)).await;
        self.answered(client, answered)
    }

    /// Runs `work` on a pooled connection, giving the connection up (not back to the pool) when
    /// no answer comes within [`Self::answer_within`].
    async fn with_client<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(
            &'c tokio_postgres::Client,
        ) -> futures_util::future::BoxFuture<'c, Result<T, StoreError>>,
    {
        let client = self.client().await?;
        let answered = tokio::time::timeout(self.answer_within, work(&client)).await;
        self.answered(client, answered)
    }

    /// The result of a timed statement; on a timeout the connection is dropped, not pooled.
    fn answered<T>(
        &self,
        client: deadpool_postgres::Object,
        answered: Result<Result<T, StoreError>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        match answered {
            Ok(result) => result,
            Err(_) => {
                drop(deadpool_postgres::Object::take(client));
                Err(StoreError::Unavailable(format!(
                    "PostgreSQL did not answer within {} ms",
                    self.answer_within.as_millis()
                )))
            }
        }
    }
}

/// Sets `hookgate_store_events` and `hookgate_store_bytes` now and every [`SIZE_EVERY`]
/// (a `count(*)` and three size lookups: far too much for every scrape, nothing every 30 s).
/// Runs until the store is closed (aborted).
async fn show_size(pool: Pool) {
    let mut every = tokio::time::interval(SIZE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Ok(client) = pool.get().await else {
            continue;
        };
        match tokio::time::timeout(SIZE_EVERY, read::size(&client)).await {
            Ok(Ok((events, bytes))) => {
                metrics::gauge!("hookgate_store_events").set(events as f64);
                metrics::gauge!("hookgate_store_bytes").set(bytes as f64);
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "the store's size could not be read"),
            Err(_) => drop(deadpool_postgres::Object::take(client)),
        }
    }
}

/// Counts every `NOTIFY` of [`CHANNEL`] into the commit counter, connecting again whenever the
/// connection is lost. Runs until the store is closed (aborted).
async fn listen(config: tokio_postgres::Config, tls: MakeRustlsConnect, shared: Arc<Shared>) {
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let mut messages =
                    futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                let listening = async {
                    client
                        .batch_execute(&format!("LISTEN {CHANNEL}"))
                        .await
                        .map(|()| futures_util::future::pending::<()>())
                };
                // The connection is driven by `messages`; LISTEN's answer comes through it.
                tokio::pin!(listening);
                let mut listened = false;
                loop {
                    tokio::select! {
                        done = &mut listening, if !listened => {
                            listened = true;
                            if let Err(e) = done {
                                tracing::warn!(error = %e, "the store's LISTEN failed; long polls wait for their timeout until it works");
                                break;
                            }
                            // A commit may have been missed while not listening.
                            shared.note_commit();
                        }
                        message = messages.next() => match message {
                            Some(Ok(AsyncMessage::Notification(_))) => shared.note_commit(),
                            Some(Ok(_)) => {}
                            Some(Err(e)) => {
                                tracing::warn!(error = %e, "the store's LISTEN connection was lost; connecting again");
                                break;
                            }
                            None => break,
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "the store's LISTEN connection could not be made; trying again");
            }
        }
        tokio::time::sleep(LISTEN_RETRY).await;
    }
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        append_through(&self.shared.recent, &self.queue, event, Msg::Write).await
    }

    async fn list_events(&self, q: EventQuery) -> Result<EventPage, StoreError> {
        let own = self.shared.committed_xid.load(Ordering::SeqCst);
        self.with_client(|c| {
            Box::pin(async move {
                // Read your writes: wait (briefly) for the transactions older than this
                // process's last commit to finish, so its own events are in the page.
                let mut xmin = read::feed_horizon(c).await?;
                let mut waits = 0;
                while xmin <= own && waits < OWN_COMMITS_WAIT_STEPS {
                    tokio::time::sleep(OWN_COMMITS_WAIT_STEP).await;
                    xmin = read::feed_horizon(c).await?;
                    waits += 1;
                }
                read::list_events(c, &q, xmin).await
            })
        })
        .await
    }

    async fn get_event(&self, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
        self.with_client(|c| Box::pin(read::get_event(c, id))).await
    }

    fn commits(&self) -> watch::Receiver<u64> {
        self.shared.commits.subscribe()
    }

    async fn source_activity(
        &self,
        since: OffsetDateTime,
    ) -> Result<Vec<crate::store::events::SourceActivity>, StoreError> {
        self.with_client(|c| Box::pin(read::source_activity(c, since)))
            .await
    }
}

#[async_trait]
impl ProjectionStore for PostgresStore {
    async fn projection(
        &self,
        key: ProjectionKey<'_>,
    ) -> Result<Option<ProjectionRow>, StoreError> {
        let client = self.client().await?;
        let answered =
            tokio::time::timeout(self.answer_within, read::projection(&client, &key)).await;
        self.answered(client, answered)
    }

    async fn list_projections(&self, q: ProjectionQuery) -> Result<ProjectionPage, StoreError> {
        self.with_client(|c| Box::pin(async move { read::list_projections(c, &q).await }))
            .await
    }
}

/// One prune batch, in one statement (so one transaction): the oldest events before the cutoff
/// without a delivery pending or failed, skipping rows another replica's pruner holds; every
/// projection pointing at one of them gets its own copy of its JSON first (the statement's
/// parts share one snapshot, so the copy reads the events the delete takes).
const PRUNE: &str = "WITH victims AS (
    SELECT e.seq FROM events e
    WHERE e.seq <= $3 AND e.received_at < $1
      AND NOT EXISTS (SELECT 1 FROM deliveries d
                      WHERE d.event_seq = e.seq AND d.state IN ('pending', 'failed'))
    ORDER BY e.seq LIMIT $2
    FOR UPDATE SKIP LOCKED
), kept AS (
    UPDATE projections p
    SET body = substring(e.body FROM p.body_start + 1 FOR p.body_len),
        event_id = e.id, updated_at = e.received_at
    FROM events e
    WHERE e.seq IN (SELECT seq FROM victims) AND p.event_seq = e.seq AND p.body IS NULL
), finished AS (
    DELETE FROM deliveries WHERE event_seq IN (SELECT seq FROM victims) RETURNING id
), attempts AS (
    DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM finished)
)
DELETE FROM events WHERE seq IN (SELECT seq FROM victims)";

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn prune(&self, cutoff: OffsetDateTime, limit: usize) -> Result<Pruned, StoreError> {
        let cutoff = crate::store::retention::cutoff_text(cutoff);
        let limit = limit.max(1);
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        let deleted = self
            .with_client(|c| {
                Box::pin(async move {
                    let Some(last) = read::last_before(c, &cutoff).await? else {
                        return Ok(0);
                    };
                    c.execute(PRUNE, &[&cutoff, &limit_sql, &last])
                        .await
                        .map_err(read::unavailable)
                })
            })
            .await?;
        Ok(Pruned {
            deleted,
            more: deleted >= limit as u64,
        })
    }

    /// Nothing to do: PostgreSQL's autovacuum makes deleted rows' space reusable.
    async fn reclaim(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
}

#[async_trait]
impl CopyStore for PostgresStore {
    async fn count_events(&self) -> Result<u64, StoreError> {
        self.with_client(|c| {
            Box::pin(async move {
                c.query_one("SELECT count(*) FROM events", &[])
                    .await
                    .and_then(|r| r.try_get::<_, i64>(0))
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .map_err(read::unavailable)
            })
        })
        .await
    }

    async fn import_events(&self, events: Vec<StoredEvent>) -> Result<Imported, StoreError> {
        let mut client = self.client().await?;
        let answered = tokio::time::timeout(
            self.answer_within,
            copy::import_events(&mut client, &events),
        )
        .await;
        let (done, xid) = self.answered(client, answered)?;
        // This process's reads of the feed wait for it, as for its own appends.
        self.shared.committed_xid.fetch_max(xid, Ordering::SeqCst);
        if done.copied > 0 {
            self.shared.note_commit();
        }
        Ok(done)
    }

    async fn export_projections(
        &self,
        after: Option<ProjectionPosition>,
        limit: u32,
    ) -> Result<Vec<RawProjection>, StoreError> {
        self.with_client(|c| {
            Box::pin(async move { copy::export_projections(c, after.as_ref(), limit).await })
        })
        .await
    }

    async fn import_projections(&self, rows: Vec<RawProjection>) -> Result<Imported, StoreError> {
        let mut client = self.client().await?;
        let answered = tokio::time::timeout(
            self.answer_within,
            copy::import_projections(&mut client, &rows),
        )
        .await;
        self.answered(client, answered)
    }

    async fn export_deliveries(
        &self,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<RawDelivery>, StoreError> {
        self.with_client(|c| {
            Box::pin(async move { copy::export_deliveries(c, after, limit).await })
        })
        .await
    }

    async fn import_deliveries(&self, rows: Vec<RawDelivery>) -> Result<Imported, StoreError> {
        let pending = rows
            .iter()
            .any(|r| r.delivery.state == DeliveryState::Pending);
        let mut client = self.client().await?;
        let answered = tokio::time::timeout(
            self.answer_within,
            copy::import_deliveries(&mut client, &rows),
        )
        .await;
        let done = self.answered(client, answered)?;
        // Copied deliveries may be due: this process's workers look (the others poll).
        if pending && done.copied > 0 {
            self.shared.note_queued();
        }
        Ok(done)
    }

    async fn export_destinations(&self) -> Result<Vec<RawDestination>, StoreError> {
        self.with_client(|c| Box::pin(async move { copy::export_destinations(c).await }))
            .await
    }

    async fn import_destinations(&self, rows: Vec<RawDestination>) -> Result<Imported, StoreError> {
        self.with_client(|c| Box::pin(async move { copy::import_destinations(c, &rows).await }))
            .await
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> Result<(), StoreError> {
        if !self.shared.writer_alive.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(
                "the store's writer has stopped".into(),
            ));
        }
        self.with_client(|c| {
            Box::pin(async move {
                c.query_one("SELECT 1", &[])
                    .await
                    .map(|_| ())
                    .map_err(read::unavailable)
            })
        })
        .await
    }

    async fn close(&self) {
        let (ack, done) = oneshot::channel();
        if self.queue.send(Msg::Close(ack)).await.is_ok() {
            let _ = done.await;
        }
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = writer {
            let _ = w.await;
        }
        self.listener.abort();
        self.sizer.abort();
        self.pool.close();
    }
}
