//! The writer task and group commit, as on SQLite (`sqlite/writer.rs`): requests hand their
//! event to one task through a bounded queue and wait on a oneshot; a committer takes whatever
//! is waiting (up to `store.max_batch`), writes it in ONE transaction and commits once
//! (`synchronous_commit` on: the commit returns once the WAL is flushed), then answers each.
//! Unlike SQLite's single writer, a few committers have batches in flight at once (each on its
//! own connection): a commit here waits on the server, and meanwhile the next batch is sent.
//!
//! Every statement of a batch, `BEGIN` to `COMMIT`, is pipelined (sent without waiting for any
//! answer), so a batch costs one round trip, not one per event.
//!
//! Several replicas write at once, so what SQLite gets from having one writer is done in SQL:
//! - `INSERT … ON CONFLICT (source, dedupe_key) DO NOTHING` then the first copy's id: a retry
//!   reaching another replica, or the same event sent to two replicas at the same moment (the
//!   second insert waits for the first transaction and then finds its row), is stored once.
//! - projections: the upsert never replaces a row with a higher `ord`.
//! - deadlocks: a batch inserts its events in order of `(source, dedupe_key)`, then updates
//!   its projections in order of `(view, key, scope)`, so two batches on different replicas
//!   take their row locks in one global order and cannot wait for each other in a cycle.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use futures_util::future::{MaybeDone, join_all, maybe_done};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::types::ToSql;

use super::text::{enc, enc_opt};
use crate::store::error::StoreError;
use crate::store::events::{Appended, NewEvent, string_object};
use crate::store::ids::EventId;
use crate::store::recent::RecentKeys;

/// The channel of `NOTIFY` sent by every commit that stored something new: every replica's
/// listener wakes its long polls of the feed (`EventStore::commits`).
pub(super) const CHANNEL: &str = "hookgate_events";

/// A message to the writer task.
// Nearly every message is a `Write`; boxing it would add an allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Msg {
    /// Store this event and answer on the oneshot.
    Write(NewEvent, oneshot::Sender<Result<Appended, StoreError>>),
    /// Commit everything queued so far, then stop.
    Close(oneshot::Sender<()>),
}

/// What the store handle and the writer task share.
pub(super) struct Shared {
    /// False once the writer task has stopped.
    pub(super) writer_alive: AtomicBool,
    /// The transaction id of the newest batch this process committed (0: none yet): a read of
    /// the feed waits, briefly, until that transaction is below the snapshot's `xmin`, so what
    /// this process answered 2xx for is in its own feed at once (mod.rs, "The feed").
    pub(super) committed_xid: AtomicI64,
    /// The reason the last commit failed, cleared by the next successful one.
    pub(super) last_failure: Mutex<Option<String>>,
    /// Dedupe keys this process committed recently (only committed ones: a hit means stored).
    pub(super) recent: Mutex<RecentKeys>,
    /// Counts commits that stored something new, here or (through `NOTIFY`) in any replica.
    pub(super) commits: watch::Sender<u64>,
}

impl Shared {
    /// Wakes every waiter of the feed.
    pub(super) fn note_commit(&self) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Records the outcome of a commit (`None`: it worked), saying so when the store recovers.
    pub(super) fn set_failure(&self, failure: Option<String>) {
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

type Batch = Vec<(NewEvent, oneshot::Sender<Result<Appended, StoreError>>)>;

/// The writer task: `committers` batches in flight at once, each on its own connection. A
/// committer takes whatever is waiting in the queue (up to `max_batch`), writes it in one
/// transaction and answers each request; while it waits for its commit (the server's WAL
/// flush), the next committer is already taking the requests that arrived meanwhile, and the
/// server flushes concurrent commits together. Runs until the queue closes or a `Close`
/// arrives; then what was queued before the close is committed, and the close is answered.
pub(super) async fn run_writer(
    pool: Pool,
    rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    committers: usize,
    answer_within: Duration,
    shared: &Shared,
) {
    let rx = tokio::sync::Mutex::new(rx);
    let closing: Mutex<Option<oneshot::Sender<()>>> = Mutex::new(None);
    let max_batch = max_batch.max(1);
    join_all(
        (0..committers.max(1))
            .map(|_| committer(&pool, &rx, max_batch, answer_within, shared, &closing)),
    )
    .await;
    let ack = closing
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(ack) = ack {
        let _ = ack.send(());
    }
}

/// One committer's loop (see [`run_writer`]): ends once the queue is closed and empty.
async fn committer(
    pool: &Pool,
    rx: &tokio::sync::Mutex<mpsc::Receiver<Msg>>,
    max_batch: usize,
    answer_within: Duration,
    shared: &Shared,
    closing: &Mutex<Option<oneshot::Sender<()>>>,
) {
    let mut batch: Batch = Vec::with_capacity(max_batch);
    loop {
        {
            let mut rx = rx.lock().await;
            // `None` once the queue is closed (by a `Close`, or the store dropped) and empty.
            let Some(first) = rx.recv().await else {
                break;
            };
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Write(ev, reply) => batch.push((ev, reply)),
                    Msg::Close(ack) => {
                        // No new requests; what is queued is still taken and committed.
                        rx.close();
                        *closing.lock().unwrap_or_else(PoisonError::into_inner) = Some(ack);
                    }
                }
                if batch.len() < max_batch {
                    next = rx.try_recv().ok();
                }
            }
        }
        if !batch.is_empty() {
            commit_batch(pool, &mut batch, answer_within, shared).await;
        }
    }
}

/// Writes and commits a batch and answers each request.
async fn commit_batch(pool: &Pool, batch: &mut Batch, answer_within: Duration, shared: &Shared) {
    let started = Instant::now();
    let size = batch.len();
    let outcome = match pool.get().await {
        Ok(client) => {
            let outcome =
                match tokio::time::timeout(answer_within, write_batch(&client, batch)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(format!(
                        "PostgreSQL did not answer within {} ms",
                        answer_within.as_millis()
                    )),
                };
            if outcome.is_err() {
                // Not back to the pool: the connection may still be inside the transaction.
                drop(deadpool_postgres::Object::take(client));
            }
            outcome
        }
        Err(e) => Err(format!("no connection to PostgreSQL: {e}")),
    };
    metrics::histogram!("hookgate_store_commit_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("hookgate_store_batch_size").record(size as f64);
    match outcome {
        Ok((results, xid)) => {
            shared.set_failure(None);
            if let Some(xid) = xid {
                shared.committed_xid.fetch_max(xid, Ordering::SeqCst);
            }
            let wrote = results.iter().any(|r| !r.duplicate);
            let mut recent = shared.recent.lock().unwrap_or_else(PoisonError::into_inner);
            for ((ev, reply), result) in batch.drain(..).zip(results) {
                recent.insert(&ev.source, ev.dedupe_key, result.event_id.0);
                // The requester may have timed out; the event is stored either way.
                let _ = reply.send(Ok(result));
            }
            drop(recent);
            if wrote {
                shared.note_commit();
            }
        }
        Err(reason) => {
            tracing::error!(error = %reason, batch = size, "store commit failed; answering 503 to the batch");
            shared.set_failure(Some(reason.clone()));
            for (_, reply) in batch.drain(..) {
                let _ = reply.send(Err(StoreError::Unavailable(reason.clone())));
            }
        }
    }
}

/// Inserts an event unless its `(source, dedupe_key)` is stored; answers the stored row's
/// `seq` and `id`, and whether this statement inserted it. The second `SELECT` sees rows of
/// this transaction (a duplicate earlier in the batch) and of transactions committed before
/// the statement began; a copy committed by another replica while the insert waited for it is
/// not in the statement's snapshot, and is read by [`FIRST_COPY`] instead.
const INSERT_EVENT: &str = "WITH ins AS (
    INSERT INTO events (id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (source, dedupe_key) DO NOTHING
    RETURNING seq, id)
SELECT seq, id, true FROM ins
UNION ALL
SELECT seq, id, false FROM events
WHERE source = $2 AND dedupe_key = $5 AND NOT EXISTS (SELECT 1 FROM ins)";

/// The first copy of an event, in a statement of its own (a snapshot taken after the insert).
const FIRST_COPY: &str = "SELECT seq, id FROM events WHERE source = $1 AND dedupe_key = $2";

/// Points the projection row at this event unless the row holds a newer state (`ord`), exactly
/// as `sqlite/writer.rs` does, if the event (`$7`, its id) was inserted; the row's own copy of the JSON (made when its previous event was
/// pruned) is dropped: the event holds it now.
const UPSERT_PROJECTION: &str =
    "INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len)
SELECT $1, $2, $3, $4, $5, $6, seq, $8, $9 FROM events WHERE id = $7
ON CONFLICT (view, key, scope) DO UPDATE SET state = excluded.state, attrs = excluded.attrs,
  ord = excluded.ord, event_seq = excluded.event_seq,
  body_start = excluded.body_start, body_len = excluded.body_len,
  body = NULL, event_id = NULL, updated_at = NULL
WHERE excluded.ord IS NULL OR projections.ord IS NULL OR excluded.ord > projections.ord";

/// Ends a batch's transaction: its id (NULL when it wrote nothing, i.e. every event was a
/// duplicate), and a `NOTIFY` when it did (sent by the commit).
const FINISH: &str = "SELECT x, (SELECT pg_notify($1, '') IS NOT NULL WHERE x IS NOT NULL)
FROM (SELECT pg_current_xact_id_if_assigned()::text::bigint AS x) t";

/// What one statement of a batch answered.
enum Done {
    /// BEGIN, COMMIT, a projection upsert.
    Nothing,
    /// An event's insert: its row, or none when a copy committed by another transaction while
    /// the insert waited for it is not in the statement's snapshot (read after the commit).
    Event(Option<(i64, uuid::Uuid, bool)>),
    /// The transaction's id, when it wrote anything.
    Xid(Option<i64>),
}

type Step<'a> = Pin<Box<dyn Future<Output = Result<Done, tokio_postgres::Error>> + Send + 'a>>;

/// Writes the batch in one transaction in ONE round trip: every statement, from `BEGIN` to
/// `COMMIT`, is sent before any answer is read (tokio-postgres sends a query when its future is
/// first polled). A statement that fails aborts the transaction, so the statements after it
/// fail and `COMMIT` rolls back: the batch is written whole or not at all, and every answer is
/// checked. Answers the outcome of each event, in the batch's order, and the transaction's id
/// (none when it wrote nothing).
///
/// On any error the connection may be inside a transaction: the caller must not pool it.
async fn write_batch(
    client: &deadpool_postgres::Client,
    batch: &Batch,
) -> Result<(Vec<Appended>, Option<i64>), String> {
    let describe = |e: tokio_postgres::Error| super::errors::describe(&e);
    let insert = client
        .prepare_cached(INSERT_EVENT)
        .await
        .map_err(describe)?;
    let upsert = client
        .prepare_cached(UPSERT_PROJECTION)
        .await
        .map_err(describe)?;
    let finish = client.prepare_cached(FINISH).await.map_err(describe)?;
    // Events in lock order (see the module doc); a stable sort keeps a batch's duplicates in
    // arrival order, so the first to arrive is the one stored.
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| {
        let (ea, eb) = (&batch[a].0, &batch[b].0);
        (&*ea.source, &ea.dedupe_key).cmp(&(&*eb.source, &eb.dedupe_key))
    });
    // Projections in lock order too; stable, so that within one thing the batch's order (the
    // commit order SQLite would give) decides among updates without `ord`. Each is written
    // only if its own event was inserted (its id is in `events`): a duplicate's is not.
    let mut updates: Vec<usize> = (0..batch.len())
        .filter(|&i| batch[i].0.projection.is_some())
        .collect();
    updates.sort_by(|&a, &b| {
        let key = |i: usize| {
            batch[i]
                .0
                .projection
                .as_ref()
                .map(|p| (p.view, p.key.as_str(), p.scope.as_str()))
        };
        key(a).cmp(&key(b))
    });

    let mut steps: Vec<MaybeDone<Step<'_>>> = Vec::with_capacity(order.len() + updates.len() + 3);
    steps.push(maybe_done(Box::pin(async {
        client.batch_execute("BEGIN").await.map(|()| Done::Nothing)
    })));
    for &i in &order {
        let ev = &batch[i].0;
        let insert = &insert;
        steps.push(maybe_done(Box::pin(async move {
            let source: &str = &ev.source;
            let body: &[u8] = &ev.body;
            let event_type = enc_opt(ev.event_type.as_deref());
            let dedupe_key = enc(&ev.dedupe_key);
            let sender_id = enc_opt(ev.sender_id.as_deref());
            let params: [&(dyn ToSql + Sync); 9] = [
                &ev.id.0,
                &source,
                &ev.kind,
                &event_type,
                &dedupe_key,
                &sender_id,
                &ev.received_at,
                &ev.headers,
                &body,
            ];
            let rows = client.query(insert, &params).await?;
            let Some(row) = rows.first() else {
                return Ok(Done::Event(None));
            };
            Ok(Done::Event(Some((
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
            ))))
        })));
    }
    for &i in &updates {
        let ev = &batch[i].0;
        let Some(p) = ev.projection.as_ref() else {
            continue;
        };
        let start = i32::try_from(p.range.start)
            .map_err(|_| "a projection starts past 2 GiB into its body".to_string())?;
        let len = i32::try_from(p.range.len())
            .map_err(|_| "a projection is longer than 2 GiB".to_string())?;
        let upsert = &upsert;
        steps.push(maybe_done(Box::pin(async move {
            let attrs = string_object(p.attrs.iter().map(|(k, v)| (*k, v.as_str())));
            let (key, scope, state) = (enc(&p.key), enc(&p.scope), enc_opt(p.state.as_deref()));
            let params: [&(dyn ToSql + Sync); 9] = [
                &p.view, &key, &scope, &state, &attrs, &p.order, &ev.id.0, &start, &len,
            ];
            client.execute(upsert, &params).await.map(|_| Done::Nothing)
        })));
    }
    let finish = &finish;
    steps.push(maybe_done(Box::pin(async move {
        let row = client.query_one(finish, &[&CHANNEL]).await?;
        Ok(Done::Xid(row.try_get(0)?))
    })));
    steps.push(maybe_done(Box::pin(async {
        client.batch_execute("COMMIT").await.map(|()| Done::Nothing)
    })));

    // Send every statement, in order. One that fails before it is even sent (the connection
    // is closed) stops the sending: `COMMIT` is then never sent, and the caller drops the
    // connection, which rolls the transaction back.
    std::future::poll_fn(|cx| {
        for step in &mut steps {
            let _ = Pin::new(&mut *step).poll(cx);
            if matches!(step, MaybeDone::Done(Err(_))) {
                break;
            }
        }
        Poll::Ready(())
    })
    .await;
    let mut found: Vec<Option<(i64, uuid::Uuid, bool)>> = vec![None; batch.len()];
    let mut xid = None;
    let mut inserts = order.iter();
    for mut step in steps {
        if matches!(step, MaybeDone::Gone) {
            return Err("a statement of the batch was not sent".into());
        }
        (&mut step).await;
        let done = Pin::new(&mut step)
            .take_output()
            .ok_or_else(|| "a statement of the batch gave no answer".to_string())?;
        match done.map_err(describe)? {
            Done::Nothing => {}
            Done::Event(row) => {
                if let (Some(&i), Some(row)) = (inserts.next(), row)
                    && let Some(slot) = found.get_mut(i)
                {
                    *slot = Some(row);
                }
            }
            Done::Xid(x) => xid = x,
        }
    }
    // Committed. An insert that found its copy outside its snapshot reads it now.
    let mut results = Vec::with_capacity(batch.len());
    for ((ev, _), row) in batch.iter().zip(found) {
        let (id, inserted) = match row {
            Some((_, id, inserted)) => (id, inserted),
            None => {
                let source: &str = &ev.source;
                let dedupe_key = enc(&ev.dedupe_key);
                let row = client
                    .query_opt(FIRST_COPY, &[&source, &dedupe_key])
                    .await
                    .map_err(describe)?
                    .ok_or_else(|| {
                        format!(
                            "the first copy of an event of source {source} was neither inserted nor found"
                        )
                    })?;
                (row.try_get(1).map_err(describe)?, false)
            }
        };
        results.push(Appended {
            event_id: EventId(id),
            duplicate: !inserted,
        });
    }
    Ok((results, xid))
}
