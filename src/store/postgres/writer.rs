//! The writer task and group commit, as on SQLite (`sqlite/writer.rs`): requests hand their
//! event to one task through a bounded queue and wait on a oneshot; a committer takes whatever
//! is waiting (up to `store.max_batch`), writes it in ONE transaction and commits once
//! (`synchronous_commit` on: the commit returns once the WAL is flushed), then answers each.
//! One batch is in flight at a time, as measured best (`run_writer`).
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

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use futures_util::future::{MaybeDone, maybe_done, try_join_all};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::types::ToSql;

use super::text::{enc, enc_opt};
use crate::store::error::{LastFailure, StoreError};
use crate::store::events::{Appended, NewEvent, string_object};
use crate::store::handoff::{Batch, answer_committed, answer_failed};
use crate::store::ids::EventId;
use crate::store::projections::Projection;
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
    pub(super) last_failure: LastFailure,
    /// Dedupe keys this process committed recently (only committed ones: a hit means stored).
    pub(super) recent: Mutex<RecentKeys>,
    /// Counts commits that stored something new, here or (through `NOTIFY`) in any replica.
    pub(super) commits: watch::Sender<u64>,
    /// Counts changes that may have made deliveries due (`OutboxStore::deliveries_queued`):
    /// every commit that stored something new (here or in any replica), retries, replays.
    pub(super) queued: watch::Sender<u64>,
}

impl Shared {
    /// Wakes every waiter of the feed.
    pub(super) fn note_commit(&self) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
        self.note_queued();
    }

    /// Wakes the delivery workers.
    pub(super) fn note_queued(&self) {
        self.queued.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The writer task: takes whatever is waiting in the queue (up to `max_batch`), writes it in one
/// transaction, answers each request, and takes the next. One batch in flight: since a batch
/// is one round trip of a few statements, more batches at once (each on its own connection)
/// only contend on the server for the same index pages and WAL. Measured (docs/performance.md,
/// "PostgreSQL"): Identus inserts at 32 connections, 12.6k/s with one, 9.7k/s with two, 8.5k/s
/// with four. Runs until the queue closes or a `Close` arrives; then what was queued before
/// the close is committed, and the close is answered.
pub(super) async fn run_writer(
    pool: Pool,
    mut rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    answer_within: Duration,
    shared: &Shared,
) {
    let max_batch = max_batch.max(1);
    let mut batch: Batch = Vec::with_capacity(max_batch);
    let mut closing = None;
    // `None` once the queue is closed (by a `Close`, or the store dropped) and empty.
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Write(ev, reply) => batch.push((ev, reply)),
                Msg::Close(ack) => {
                    // No new requests; what is queued is still taken and committed.
                    rx.close();
                    closing = Some(ack);
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
        let _ = ack.send(());
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
            shared.last_failure.set(None);
            if let Some(xid) = xid {
                shared.committed_xid.fetch_max(xid, Ordering::SeqCst);
            }
            // Woken before the answers go: whoever is told "stored" finds the feed and the
            // workers already woken.
            if results.iter().any(|r| !r.duplicate) {
                shared.note_commit();
            }
            answer_committed(&shared.recent, batch, results);
        }
        Err(reason) => {
            shared.last_failure.set(Some(reason.clone()));
            answer_failed(batch, &reason);
        }
    }
}

/// Inserts the batch's events (arrays, one element per event, in lock order), each unless its
/// `(source, dedupe_key)` is stored: one statement for the whole batch, so the server plans
/// and runs one insert, not one per event. Answers the ids of the events it inserted; the
/// first copy of each other one is read by [`FIRST_COPY`] after the commit (retries are rare
/// here: most are answered from memory before they reach the writer). No join: a plan chosen
/// while the table was small (a new database) stays right as it grows. The caller sends each
/// `(source, dedupe_key)` once.
const INSERT_EVENTS: &str = "INSERT INTO events
    (id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body)
SELECT id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::bytea[]) WITH ORDINALITY
    AS t(id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body, n)
ORDER BY n
ON CONFLICT (source, dedupe_key) DO NOTHING
RETURNING id";

/// [`INSERT_EVENTS`] with each event's trace context (`$10`), for a batch in which some event
/// has one (traces on): without traces the batch sends no array of NULLs.
const INSERT_TRACED_EVENTS: &str = "INSERT INTO events
    (id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body,
     trace_context)
SELECT id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body,
       trace_context
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::bytea[], $10::text[]) WITH ORDINALITY
    AS t(id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body,
         trace_context, n)
ORDER BY n
ON CONFLICT (source, dedupe_key) DO NOTHING
RETURNING id";

/// Queues the deliveries of a batch's new events, in the batch's transaction: a pair per
/// (event, destination). An event that was not inserted (a duplicate: its new id is in no row)
/// gets none. No join with `events` (see `writer.rs`): its `seq` comes from a subquery by id.
const QUEUE_DELIVERIES: &str = "INSERT INTO deliveries
    (event_seq, destination, state, next_attempt_at, created_at)
SELECT seq, destination, 'pending', $3, $3 FROM (
    SELECT (SELECT e.seq FROM events e WHERE e.id = d.event_id) AS seq, d.destination, d.n
    FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS d(event_id, destination, n)) q
WHERE seq IS NOT NULL ORDER BY n";

/// The first copy of an event, in a statement of its own (a snapshot taken after the insert).
const FIRST_COPY: &str = "SELECT seq, id FROM events WHERE source = $1 AND dedupe_key = $2";

/// Points each projection row at its event unless the row holds a newer state (`ord`), exactly
/// as `sqlite/writer.rs` does, for the events that were inserted (their id, `$7`, is in
/// `events`; a duplicate's is not); the row's own copy of the JSON (made when its previous
/// event was pruned) is dropped: the event holds it now. One statement for many rows, in lock
/// order; a statement may not update one row twice, so the caller sends each thing at most
/// once per statement.
const UPSERT_PROJECTIONS: &str = "WITH u AS MATERIALIZED (
    SELECT u.*, (SELECT e.seq FROM events e WHERE e.id = u.event_id) AS seq
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[],
                $7::uuid[], $8::int4[], $9::int4[]) WITH ORDINALITY
        AS u(view, key, scope, state, attrs, ord, event_id, body_start, body_len, n))
INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len)
SELECT view, key, scope, state, attrs, ord, seq, body_start, body_len
FROM u WHERE seq IS NOT NULL ORDER BY n
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
    /// The events' insert: the ids of the events it inserted.
    Events(Vec<uuid::Uuid>),
    /// The transaction's id, when it wrote anything.
    Xid(Option<i64>),
}

type Step<'a> = Pin<Box<dyn Future<Output = Result<Done, tokio_postgres::Error>> + Send + 'a>>;

/// The events' columns as arrays, for [`INSERT_EVENTS`].
#[derive(Default)]
struct EventColumns<'a> {
    id: Vec<uuid::Uuid>,
    source: Vec<&'a str>,
    kind: Vec<&'a str>,
    event_type: Vec<Option<Cow<'a, str>>>,
    dedupe_key: Vec<Cow<'a, str>>,
    sender_id: Vec<Option<Cow<'a, str>>>,
    received_at: Vec<&'a str>,
    headers: Vec<&'a str>,
    body: Vec<&'a [u8]>,
    /// Filled only when some event of the batch has a trace context ([`INSERT_TRACED_EVENTS`]).
    traced: bool,
    trace_context: Vec<Option<&'a str>>,
}

impl<'a> EventColumns<'a> {
    fn push(&mut self, ev: &'a NewEvent) {
        if self.traced {
            self.trace_context.push(ev.trace_context.as_deref());
        }
        self.id.push(ev.id.0);
        self.source.push(&ev.source);
        self.kind.push(ev.kind);
        self.event_type.push(enc_opt(ev.event_type.as_deref()));
        self.dedupe_key.push(enc(&ev.dedupe_key));
        self.sender_id.push(enc_opt(ev.sender_id.as_deref()));
        self.received_at.push(&ev.received_at);
        self.headers.push(&ev.headers);
        self.body.push(&ev.body);
    }
}

/// The projections' columns as arrays, for [`UPSERT_PROJECTIONS`].
#[derive(Default)]
struct ProjectionColumns<'a> {
    view: Vec<&'static str>,
    key: Vec<Cow<'a, str>>,
    scope: Vec<Cow<'a, str>>,
    state: Vec<Option<Cow<'a, str>>>,
    attrs: Vec<String>,
    ord: Vec<Option<i64>>,
    event_id: Vec<uuid::Uuid>,
    body_start: Vec<i32>,
    body_len: Vec<i32>,
}

impl<'a> ProjectionColumns<'a> {
    fn push(&mut self, p: &'a Projection, event_id: uuid::Uuid) -> Result<(), String> {
        self.body_start.push(
            i32::try_from(p.range.start)
                .map_err(|_| "a projection starts past 2 GiB into its body".to_string())?,
        );
        self.body_len.push(
            i32::try_from(p.range.len())
                .map_err(|_| "a projection is longer than 2 GiB".to_string())?,
        );
        self.view.push(p.view);
        self.key.push(enc(&p.key));
        self.scope.push(enc(&p.scope));
        self.state.push(enc_opt(p.state.as_deref()));
        self.attrs
            .push(string_object(p.attrs.iter().map(|(k, v)| (*k, v.as_str()))));
        self.ord.push(p.order);
        self.event_id.push(event_id);
        Ok(())
    }
}

/// Writes the batch in one transaction in ONE round trip: every statement, from `BEGIN` to
/// `COMMIT`, is sent before any answer is read (tokio-postgres sends a query when its future is
/// first polled), and the events go in one statement, their projections in one more (or a few,
/// when one thing changes several times in the batch). A statement that fails aborts the
/// transaction, so the statements after it fail and `COMMIT` rolls back: the batch is written
/// whole or not at all, and every answer is checked. Answers the outcome of each event, in the
/// batch's order, and the transaction's id (none when it wrote nothing).
///
/// On any error the connection may be inside a transaction: the caller must not pool it.
async fn write_batch(
    client: &deadpool_postgres::Client,
    batch: &Batch,
) -> Result<(Vec<Appended>, Option<i64>), String> {
    let describe = |e: tokio_postgres::Error| super::errors::describe(&e);
    let insert = client
        .prepare_cached(INSERT_EVENTS)
        .await
        .map_err(describe)?;
    let upsert = client
        .prepare_cached(UPSERT_PROJECTIONS)
        .await
        .map_err(describe)?;
    let finish = client.prepare_cached(FINISH).await.map_err(describe)?;
    // The deliveries of the batch's events: a pair per (event, destination), sent with the
    // events (only those inserted get rows: see QUEUE_DELIVERIES).
    let mut delivery_events: Vec<uuid::Uuid> = Vec::new();
    let mut delivery_destinations: Vec<&str> = Vec::new();
    for (ev, _) in batch {
        for d in ev.deliveries.iter() {
            delivery_events.push(ev.id.0);
            delivery_destinations.push(d);
        }
    }
    let queue = if delivery_events.is_empty() {
        None
    } else {
        Some(
            client
                .prepare_cached(QUEUE_DELIVERIES)
                .await
                .map_err(describe)?,
        )
    };
    let now = crate::store::outbox::now_ms();
    // Events in lock order (see the module doc); a stable sort keeps a batch's duplicates in
    // arrival order, so the first to arrive is the one sent (and stored); a later copy is
    // answered with the first one's id after the commit.
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|&a, &b| {
        let (ea, eb) = (&batch[a].0, &batch[b].0);
        (&*ea.source, &ea.dedupe_key).cmp(&(&*eb.source, &eb.dedupe_key))
    });
    let mut events = EventColumns {
        traced: batch.iter().any(|(ev, _)| ev.trace_context.is_some()),
        ..EventColumns::default()
    };
    let insert = if events.traced {
        client
            .prepare_cached(INSERT_TRACED_EVENTS)
            .await
            .map_err(describe)?
    } else {
        insert
    };
    let mut first_of_key: Option<&NewEvent> = None;
    for &i in &order {
        let ev = &batch[i].0;
        if first_of_key.is_some_and(|f| f.source == ev.source && f.dedupe_key == ev.dedupe_key) {
            continue;
        }
        events.push(ev);
        first_of_key = Some(ev);
    }
    // Projections in lock order too; stable, so that within one thing the batch's order (the
    // commit order SQLite would give) decides among updates without `ord`. A thing's k-th
    // update in the batch goes in the k-th statement, so the statements apply them in order.
    let mut updates: Vec<usize> = (0..batch.len())
        .filter(|&i| batch[i].0.projection.is_some())
        .collect();
    let thing = |i: usize| {
        batch[i]
            .0
            .projection
            .as_ref()
            .map(|p| (p.view, p.key.as_str(), p.scope.as_str()))
    };
    updates.sort_by(|&a, &b| thing(a).cmp(&thing(b)));
    let mut rounds: Vec<ProjectionColumns<'_>> = Vec::new();
    let mut previous: Option<(usize, usize)> = None; // (event, its round)
    for &i in &updates {
        let round = match previous {
            Some((p, r)) if thing(p) == thing(i) => r + 1,
            _ => 0,
        };
        previous = Some((i, round));
        if rounds.len() <= round {
            rounds.push(ProjectionColumns::default());
        }
        let ev = &batch[i].0;
        if let (Some(columns), Some(p)) = (rounds.get_mut(round), ev.projection.as_ref()) {
            columns.push(p, ev.id.0)?;
        }
    }

    let mut steps: Vec<MaybeDone<Step<'_>>> = Vec::with_capacity(rounds.len() + 4);
    steps.push(maybe_done(Box::pin(async {
        client.batch_execute("BEGIN").await.map(|()| Done::Nothing)
    })));
    let insert = &insert;
    let events = &events;
    steps.push(maybe_done(Box::pin(async move {
        let params: [&(dyn ToSql + Sync); 10] = [
            &events.id,
            &events.source,
            &events.kind,
            &events.event_type,
            &events.dedupe_key,
            &events.sender_id,
            &events.received_at,
            &events.headers,
            &events.body,
            &events.trace_context,
        ];
        // The untraced statement takes the first nine.
        let used = if events.traced {
            &params[..]
        } else {
            &params[..9]
        };
        let rows = client.query(insert, used).await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            found.push(row.try_get(0)?);
        }
        Ok(Done::Events(found))
    })));
    if let Some(queue) = &queue {
        let (ids, dests, now) = (&delivery_events, &delivery_destinations, &now);
        steps.push(maybe_done(Box::pin(async move {
            client
                .execute(queue, &[ids, dests, now])
                .await
                .map(|_| Done::Nothing)
        })));
    }
    let upsert = &upsert;
    for p in &rounds {
        steps.push(maybe_done(Box::pin(async move {
            let params: [&(dyn ToSql + Sync); 9] = [
                &p.view,
                &p.key,
                &p.scope,
                &p.state,
                &p.attrs,
                &p.ord,
                &p.event_id,
                &p.body_start,
                &p.body_len,
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
    let mut inserted: Vec<uuid::Uuid> = Vec::new();
    let mut xid = None;
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
            Done::Events(ids) => inserted = ids,
            Done::Xid(x) => xid = x,
        }
    }
    // Committed. The first copy of every event that was not inserted is read now (the reads
    // pipelined, as the batch was).
    inserted.sort_unstable();
    let first_copy = client.prepare_cached(FIRST_COPY).await.map_err(describe)?;
    let first_copy = &first_copy;
    let ids = try_join_all(batch.iter().map(|(ev, _)| {
        let new = inserted.binary_search(&ev.id.0).is_ok();
        async move {
            if new {
                return Ok(ev.id.0);
            }
            let source: &str = &ev.source;
            let dedupe_key = enc(&ev.dedupe_key);
            let row = client
                .query_opt(first_copy, &[&source, &dedupe_key])
                .await
                .map_err(describe)?
                .ok_or_else(|| {
                    format!(
                        "the first copy of an event of source {source} was neither inserted nor found"
                    )
                })?;
            row.try_get::<_, uuid::Uuid>(1).map_err(describe)
        }
    }))
    .await?;
    let results = batch
        .iter()
        .zip(ids)
        .map(|((ev, _), id)| Appended {
            event_id: EventId(id),
            duplicate: id != ev.id.0,
        })
        .collect();
    Ok((results, xid))
}
