//! The writer thread and group commit.
//!
//! One thread owns the write connection. Requests hand it their event through a bounded queue
//! and wait on a oneshot for the outcome; the writer takes whatever is waiting (up to
//! `store.max_batch`), writes it in one `BEGIN IMMEDIATE` transaction and commits once, so a
//! single fsync (WAL, `synchronous=FULL`) covers the whole batch. The answer still waits for the
//! commit, but the commit cost is shared.

use std::time::Instant;

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot};

use super::checkpoint::maybe_checkpoint;
use super::prune::{prune_batch, reclaim_step};
use super::shared::Shared;
use crate::store::error::StoreError;
use crate::store::events::{Appended, NewEvent, string_object};
use crate::store::handoff::{Batch, answer_committed, answer_failed};
use crate::store::ids::EventId;
use crate::store::projections::Projection;
use crate::store::retention::Pruned;

/// A message to the writer thread.
// Nearly every message is a `Write`; boxing it would add an allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Msg {
    /// Store this event and answer on the oneshot.
    Write(NewEvent, oneshot::Sender<Result<Appended, StoreError>>),
    /// Commit everything queued so far, then stop.
    Close(oneshot::Sender<()>),
    /// Write and commit one small row, to find out whether a failed store works again.
    Probe(oneshot::Sender<Result<(), String>>),
    /// Retention: run one prune batch (events received before the time, at most that many),
    /// after the writes already taken have been committed.
    Prune(
        time::OffsetDateTime,
        usize,
        oneshot::Sender<Result<Pruned, String>>,
    ),
    /// Retention: give one step of free pages back to the file system (true: more to give).
    Reclaim(oneshot::Sender<Result<bool, String>>),
    /// `copy-store`: run this on the write connection between two group commits; it answers
    /// its caller itself and returns how many events it added.
    Exclusive(Exclusive),
    /// Delivery bookkeeping (attempts, states, retries, replays), written in the next group
    /// commit with the events; answered after that commit.
    Tx(TxWork, oneshot::Sender<Result<TxDone, StoreError>>),
}

/// Work done inside a group commit's transaction: what it answers once committed.
pub(super) type TxWork =
    Box<dyn FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<TxDone> + Send>;

/// What a [`TxWork`] wrote: a number for its caller (an id, a count), the destinations it
/// paused, and whether deliveries became due (the workers are woken after the commit).
#[derive(Debug, Default)]
pub(super) struct TxDone {
    pub(super) value: i64,
    pub(super) paused: Vec<String>,
    pub(super) queued: bool,
}

/// Work run on the writer's connection (`copy-store`'s imports).
pub(super) type Exclusive = Box<dyn FnOnce(&mut Connection) -> i64 + Send>;

/// Retention work taken from the queue, done after the batch it arrived with is committed.
enum Chore {
    Prune(
        time::OffsetDateTime,
        usize,
        oneshot::Sender<Result<Pruned, String>>,
    ),
    Reclaim(oneshot::Sender<Result<bool, String>>),
    Exclusive(Exclusive),
}

/// What the probe commit writes: more than a batch of ordinary events needs, so a store with
/// room for the probe (a disk that is not quite full) has room for events too. A commit of one
/// event writes ~25 pages (a leaf of each b-tree it enters, page 1, a pointer-map page), of 32
/// events ~60: 256 KiB is 64 pages of overflow alone. At 64 KiB, `/readyz` said ready on a disk
/// with room for the probe but not for one event (the full-disk test saw it).
const PROBE_BYTES: i64 = 256 * 1024;

/// What the writer thread owns.
struct Writer<'a> {
    conn: Connection,
    shared: &'a Shared,
    ids: DeliveryIds,
}

/// Numbers the fresh deliveries queued with events, so that no id is ever below one given
/// before (the claim's [`FreshFloors`](super::shared::FreshFloors) relies on it). SQLite's own
/// next rowid is the largest plus one, which goes back when the newest rows are pruned.
/// Synced with the table once per batch that queues any (other inserts, replays and copies,
/// take SQLite's next rowid, which is then above every id given here).
#[derive(Default)]
struct DeliveryIds {
    next: i64,
    synced: bool,
}

impl DeliveryIds {
    /// The next id, the first time in a batch after reading the table's largest.
    fn take(&mut self, tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<i64> {
        if !self.synced {
            let largest: i64 = tx
                .prepare_cached("SELECT coalesce(max(id), 0) FROM deliveries")?
                .query_row([], |r| r.get(0))?;
            self.next = self.next.max(largest.saturating_add(1));
            self.synced = true;
        }
        let id = self.next;
        self.next = self.next.saturating_add(1);
        Ok(id)
    }
}

/// The writer thread's loop: batches until the queue closes or a `Close` arrives, then commits
/// what was queued before the close.
pub(super) fn run_writer(
    conn: Connection,
    mut rx: mpsc::Receiver<Msg>,
    max_batch: usize,
    shared: &Shared,
    checkpoint: &std::sync::mpsc::SyncSender<()>,
) {
    let mut w = Writer {
        conn,
        shared,
        ids: DeliveryIds::default(),
    };
    let mut batch: Batch = Vec::with_capacity(max_batch);
    let mut probes = Vec::new();
    let mut chores = Vec::new();
    let mut work: Vec<(TxWork, oneshot::Sender<Result<TxDone, StoreError>>)> = Vec::new();
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
                Msg::Prune(cutoff, limit, reply) => chores.push(Chore::Prune(cutoff, limit, reply)),
                Msg::Reclaim(reply) => chores.push(Chore::Reclaim(reply)),
                Msg::Exclusive(job) => chores.push(Chore::Exclusive(job)),
                Msg::Tx(job, reply) => work.push((job, reply)),
            }
            if batch.len() + work.len() < max_batch {
                next = rx.try_recv().ok();
            }
        }
        if (!batch.is_empty() || !work.is_empty()) && w.commit_batch(&mut batch, &mut work) {
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
        // Retention between two group commits: the writes that arrive meanwhile wait for this
        // one short transaction, then go first (the pruner asks for the next batch only once
        // this one is answered).
        if !chores.is_empty() {
            for chore in chores.drain(..) {
                w.chore(chore);
            }
            maybe_checkpoint(&w.conn);
            let _ = checkpoint.try_send(());
        }
    }
    if let Some(ack) = closing {
        // Flush what was queued before the close, then refuse the rest by dropping the queue.
        rx.close();
        while let Ok(msg) = rx.try_recv() {
            match msg {
                Msg::Write(ev, reply) => batch.push((ev, reply)),
                Msg::Tx(job, reply) => work.push((job, reply)),
                _ => {}
            }
            if batch.len() + work.len() >= max_batch {
                w.commit_batch(&mut batch, &mut work);
            }
        }
        if !batch.is_empty() || !work.is_empty() {
            w.commit_batch(&mut batch, &mut work);
        }
        let _ = ack.send(());
    }
}

impl Writer<'_> {
    /// Runs one piece of retention work and answers it.
    fn chore(&mut self, chore: Chore) {
        match chore {
            Chore::Prune(cutoff, limit, reply) => {
                let outcome = prune_batch(&mut self.conn, cutoff, limit).map_err(|e| e.to_string());
                if let Ok(p) = &outcome {
                    self.shared
                        .count_events(-i64::try_from(p.deleted).unwrap_or(i64::MAX));
                }
                let _ = reply.send(outcome);
            }
            Chore::Reclaim(reply) => {
                let _ = reply.send(reclaim_step(&self.conn).map_err(|e| e.to_string()));
            }
            Chore::Exclusive(work) => {
                let added = work(&mut self.conn);
                if added > 0 {
                    self.shared.count_events(added);
                    self.shared.note_commit();
                }
            }
        }
    }

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
        self.shared
            .last_failure
            .set(outcome.as_ref().err().cloned());
        outcome
    }

    /// Writes and commits a batch of events and of delivery bookkeeping, and answers each.
    /// True when anything was written.
    fn commit_batch(
        &mut self,
        batch: &mut Batch,
        work: &mut Vec<(TxWork, oneshot::Sender<Result<TxDone, StoreError>>)>,
    ) -> bool {
        let started = Instant::now();
        let size = batch.len();
        let now = crate::store::outbox::now_ms();
        let (jobs, replies): (Vec<TxWork>, Vec<_>) = work.drain(..).unzip();
        let outcome = (|| -> rusqlite::Result<(Vec<Appended>, bool, Vec<TxDone>)> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut results = Vec::with_capacity(batch.len());
            let mut queued = false;
            self.ids.synced = false;
            for (ev, _) in batch.iter() {
                let (appended, delivering) = insert_event(&tx, ev, now, &mut self.ids)?;
                queued |= delivering;
                results.push(appended);
            }
            let mut done = Vec::with_capacity(jobs.len());
            for job in jobs {
                done.push(job(&tx)?);
            }
            tx.commit()?;
            Ok((results, queued, done))
        })();
        metrics::histogram!("hookgate_store_commit_seconds")
            .record(started.elapsed().as_secs_f64());
        if size > 0 {
            metrics::histogram!("hookgate_store_batch_size").record(size as f64);
        }
        match outcome {
            Ok((results, queued, done)) => {
                self.shared.last_failure.set(None);
                // Woken before the answers go: whoever is told "stored" finds the feed and the
                // delivery workers already woken.
                let added = results.iter().filter(|r| !r.duplicate).count();
                self.shared
                    .count_events(i64::try_from(added).unwrap_or(i64::MAX));
                if added > 0 {
                    self.shared.note_commit();
                }
                if queued || done.iter().any(|d| d.queued) {
                    self.shared.note_queued();
                }
                answer_committed(&self.shared.recent, batch, results);
                let wrote = added > 0 || !replies.is_empty();
                for (reply, d) in replies.into_iter().zip(done) {
                    let _ = reply.send(Ok(d));
                }
                wrote
            }
            Err(e) => {
                let reason = e.to_string();
                self.shared.last_failure.set(Some(reason.clone()));
                answer_failed(batch, &reason);
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(reason.clone())));
                }
                false
            }
        }
    }
}

fn conversion(e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::ToSqlConversionFailure(Box::new(e))
}

/// Inserts one event (or finds the first copy of it), updates its projection and queues its
/// deliveries. Also answers whether it queued any.
fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    ev: &NewEvent,
    now: i64,
    ids: &mut DeliveryIds,
) -> rusqlite::Result<(Appended, bool)> {
    let mut id_buf = uuid::Uuid::encode_buffer();
    let id_str: &str = ev.id.0.hyphenated().encode_lower(&mut id_buf);
    // `seq` is left to SQLite: the next rowid, in commit order since this is the only writer.
    let inserted = tx
        .prepare_cached(
            "INSERT INTO events (id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body, trace_context)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (source, dedupe_key) DO NOTHING",
        )?
        .execute(params![
            id_str,
            &*ev.source,
            ev.kind,
            ev.event_type,
            ev.dedupe_key,
            ev.sender_id,
            ev.received_at,
            ev.headers,
            &ev.body[..],
            ev.trace_context,
        ])?;
    if inserted == 0 {
        let first: String = tx
            .prepare_cached("SELECT id FROM events WHERE source = ?1 AND dedupe_key = ?2")?
            .query_row(params![&*ev.source, ev.dedupe_key], |r| r.get(0))?;
        let event_id = uuid::Uuid::parse_str(&first).map_err(conversion)?;
        return Ok((
            Appended {
                event_id: EventId(event_id),
                duplicate: true,
            },
            false,
        ));
    }
    let seq = tx.last_insert_rowid();
    if let Some(p) = &ev.projection {
        upsert_projection(tx, p, seq)?;
    }
    if !ev.deliveries.is_empty() {
        // Fresh: due from now (`next_attempt_at` NULL), found by id rather than by an index
        // entry that would be written now and deleted at delivery.
        let mut queue = tx.prepare_cached(
            "INSERT INTO deliveries (id, event_seq, destination, state, created_at)
             VALUES (?1, ?2, ?3, 'pending', ?4)",
        )?;
        for destination in ev.deliveries.iter() {
            queue.execute(params![ids.take(tx)?, seq, &**destination, now])?;
        }
    }
    Ok((
        Appended {
            event_id: ev.id,
            duplicate: false,
        },
        !ev.deliveries.is_empty(),
    ))
}

/// Points the projection row at this event, unless the row holds a newer state (`ord`). The
/// row's own copy of the JSON (made when its previous event was pruned) is dropped: the event
/// holds it now.
fn upsert_projection(
    tx: &rusqlite::Transaction<'_>,
    p: &Projection,
    seq: i64,
) -> rusqlite::Result<()> {
    let start = i64::try_from(p.range.start).map_err(conversion)?;
    let len = i64::try_from(p.range.len()).map_err(conversion)?;
    tx.prepare_cached(
        "INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (view, key, scope) DO UPDATE SET state = excluded.state, attrs = excluded.attrs,
           ord = excluded.ord, event_seq = excluded.event_seq,
           body_start = excluded.body_start, body_len = excluded.body_len,
           body = NULL, event_id = NULL, updated_at = NULL
         WHERE excluded.ord IS NULL OR projections.ord IS NULL OR excluded.ord > projections.ord",
    )?
    .execute(params![
        p.view,
        p.key,
        p.scope,
        p.state,
        attrs_json(&p.attrs),
        p.order,
        seq,
        start,
        len
    ])?;
    Ok(())
}

/// `[("ts", "…")]` as `{"ts":"…"}`.
fn attrs_json(attrs: &[(&'static str, String)]) -> String {
    string_object(attrs.iter().map(|(k, v)| (*k, v.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_are_written_as_a_json_object() {
        assert_eq!(attrs_json(&[]), "{}");
        assert_eq!(
            attrs_json(&[("q", "a\"b".into()), ("ts", "2024-01-01T00:00:00Z".into())]),
            r#"{"q":"a\"b","ts":"2024-01-01T00:00:00Z"}"#
        );
    }
}
