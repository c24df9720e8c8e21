//! The writer task and group commit, as on SQLite (`sqlite/writer.rs`): requests hand their
//! event to one task through a bounded queue and wait on a oneshot; the task takes whatever is
//! waiting (up to `store.max_batch`), writes it in ONE transaction and commits once
//! (`synchronous_commit` on: the commit returns once the WAL is flushed), then answers each.
//!
//! The statements of a batch are pipelined (sent without waiting for each answer), so a batch
//! costs a few round trips, not one per event.
//!
//! Several replicas write at once, so what SQLite gets from having one writer is done in SQL:
//! - `INSERT … ON CONFLICT (source, dedupe_key) DO NOTHING` then the first copy's id: a retry
//!   reaching another replica, or the same event sent to two replicas at the same moment (the
//!   second insert waits for the first transaction and then finds its row), is stored once.
//! - projections: the upsert never replaces a row with a higher `ord`.
//! - deadlocks: a batch inserts its events in order of `(source, dedupe_key)`, then updates
//!   its projections in order of `(view, key, scope)`, so two batches on different replicas
//!   take their row locks in one global order and cannot wait for each other in a cycle.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use futures_util::future::try_join_all;
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

/// The writer task's loop: batches until the queue closes or a `Close` arrives, then commits
/// what was queued before the close.
pub(super) async fn run_writer(
    pool: Pool,
    mut rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    answer_within: Duration,
    shared: &Shared,
) {
    let max_batch = max_batch.max(1);
    let mut batch: Batch = Vec::with_capacity(max_batch);
    let mut closing: Option<oneshot::Sender<()>> = None;
    while closing.is_none() {
        let Some(first) = rx.recv().await else {
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
            }
            if batch.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_batch(&pool, &mut batch, answer_within, shared).await;
        }
    }
    if let Some(ack) = closing {
        rx.close();
        while let Ok(msg) = rx.try_recv() {
            if let Msg::Write(ev, reply) = msg {
                batch.push((ev, reply));
                if batch.len() >= max_batch {
                    commit_batch(&pool, &mut batch, answer_within, shared).await;
                }
            }
        }
        if !batch.is_empty() {
            commit_batch(&pool, &mut batch, answer_within, shared).await;
        }
        let _ = ack.send(());
    }
}

/// Writes and commits a batch and answers each request.
async fn commit_batch(pool: &Pool, batch: &mut Batch, answer_within: Duration, shared: &Shared) {
    let started = Instant::now();
    let size = batch.len();
    let outcome = match pool.get().await {
        Ok(mut client) => {
            match tokio::time::timeout(answer_within, write_batch(&mut client, batch)).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    // Not back to the pool: the connection may still be inside the transaction.
                    drop(deadpool_postgres::Object::take(client));
                    Err(format!(
                        "PostgreSQL did not answer within {} ms",
                        answer_within.as_millis()
                    ))
                }
            }
        }
        Err(e) => Err(format!("no connection to PostgreSQL: {e}")),
    };
    metrics::histogram!("hookgate_store_commit_seconds").record(started.elapsed().as_secs_f64());
    metrics::histogram!("hookgate_store_batch_size").record(size as f64);
    match outcome {
        Ok((results, xid)) => {
            shared.set_failure(None);
            shared.committed_xid.fetch_max(xid, Ordering::SeqCst);
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
/// as `sqlite/writer.rs` does; the row's own copy of the JSON (made when its previous event was
/// pruned) is dropped: the event holds it now.
const UPSERT_PROJECTION: &str =
    "INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (view, key, scope) DO UPDATE SET state = excluded.state, attrs = excluded.attrs,
  ord = excluded.ord, event_seq = excluded.event_seq,
  body_start = excluded.body_start, body_len = excluded.body_len,
  body = NULL, event_id = NULL, updated_at = NULL
WHERE excluded.ord IS NULL OR projections.ord IS NULL OR excluded.ord > projections.ord";

/// Writes the batch in one transaction: the outcome of each event, in the batch's order, and
/// the transaction's id.
async fn write_batch(
    client: &mut deadpool_postgres::Client,
    batch: &Batch,
) -> Result<(Vec<Appended>, i64), String> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| super::errors::describe(&e))?;
    let insert = tx
        .prepare_cached(INSERT_EVENT)
        .await
        .map_err(|e| super::errors::describe(&e))?;
    // Events in lock order (see the module doc); a stable sort keeps a batch's duplicates in
    // arrival order, so the first to arrive is the one stored.
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| {
        let (ea, eb) = (&batch[a].0, &batch[b].0);
        (&*ea.source, &ea.dedupe_key).cmp(&(&*eb.source, &eb.dedupe_key))
    });
    let rows = try_join_all(order.iter().map(|&i| {
        let ev = &batch[i].0;
        let insert = &insert;
        let tx = &tx;
        async move {
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
            tx.query(insert, &params).await
        }
    }))
    .await
    .map_err(|e| super::errors::describe(&e))?;
    // (seq, outcome) per event, in the batch's order.
    let mut results: Vec<Option<(i64, Appended)>> = vec![None; batch.len()];
    for (&i, found) in order.iter().zip(rows) {
        let ev = &batch[i].0;
        let (seq, id, inserted) = match found.first() {
            Some(row) => (
                row.try_get::<_, i64>(0)
                    .map_err(|e| super::errors::describe(&e))?,
                row.try_get::<_, uuid::Uuid>(1)
                    .map_err(|e| super::errors::describe(&e))?,
                row.try_get::<_, bool>(2)
                    .map_err(|e| super::errors::describe(&e))?,
            ),
            None => {
                let source: &str = &ev.source;
                let dedupe_key = enc(&ev.dedupe_key);
                let row = tx
                    .query_opt(FIRST_COPY, &[&source, &dedupe_key])
                    .await
                    .map_err(|e| super::errors::describe(&e))?
                    .ok_or_else(|| {
                        format!(
                            "the first copy of an event of source {source} was neither inserted nor found"
                        )
                    })?;
                (
                    row.try_get::<_, i64>(0)
                        .map_err(|e| super::errors::describe(&e))?,
                    row.try_get::<_, uuid::Uuid>(1)
                        .map_err(|e| super::errors::describe(&e))?,
                    false,
                )
            }
        };
        if let Some(slot) = results.get_mut(i) {
            *slot = Some((
                seq,
                Appended {
                    event_id: EventId(id),
                    duplicate: !inserted,
                },
            ));
        }
    }
    // Projections of the new events, in lock order; stable, so that within one thing the
    // batch's order (the commit order SQLite would give) decides among updates without `ord`.
    let mut updates: Vec<(usize, i64)> = results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match r {
            Some((seq, a)) if !a.duplicate && batch[i].0.projection.is_some() => Some((i, *seq)),
            _ => None,
        })
        .collect();
    updates.sort_by(|&(a, _), &(b, _)| {
        let key = |i: usize| {
            batch[i]
                .0
                .projection
                .as_ref()
                .map(|p| (p.view, p.key.as_str(), p.scope.as_str()))
        };
        key(a).cmp(&key(b))
    });
    if !updates.is_empty() {
        let upsert = tx
            .prepare_cached(UPSERT_PROJECTION)
            .await
            .map_err(|e| super::errors::describe(&e))?;
        let mut prepared = Vec::with_capacity(updates.len());
        for &(i, seq) in &updates {
            let Some(p) = batch[i].0.projection.as_ref() else {
                continue;
            };
            let start = i32::try_from(p.range.start)
                .map_err(|_| "a projection starts past 2 GiB into its body".to_string())?;
            let len = i32::try_from(p.range.len())
                .map_err(|_| "a projection is longer than 2 GiB".to_string())?;
            let attrs = string_object(p.attrs.iter().map(|(k, v)| (*k, v.as_str())));
            let text = (enc(&p.key), enc(&p.scope), enc_opt(p.state.as_deref()));
            prepared.push((p, text, attrs, seq, start, len));
        }
        try_join_all(
            prepared
                .iter()
                .map(|(p, (key, scope, state), attrs, seq, start, len)| {
                    let params: [&(dyn ToSql + Sync); 9] =
                        [&p.view, key, scope, state, attrs, &p.order, seq, start, len];
                    let upsert = &upsert;
                    let tx = &tx;
                    async move { tx.execute(upsert, &params).await }
                }),
        )
        .await
        .map_err(|e| super::errors::describe(&e))?;
    }
    if results.iter().flatten().any(|(_, a)| !a.duplicate) {
        tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL])
            .await
            .map_err(|e| super::errors::describe(&e))?;
    }
    let xid: i64 = tx
        .query_one("SELECT pg_current_xact_id()::text::bigint", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| super::errors::describe(&e))?;
    tx.commit().await.map_err(|e| super::errors::describe(&e))?;
    let results = results
        .into_iter()
        .map(|r| r.map(|(_, a)| a))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| "an event of the batch got no outcome".to_string())?;
    Ok((results, xid))
}
