//! The outbox on SQLite: reads on the read pool, writes as work in the writer's next group
//! commit ([`Msg::Tx`]), so delivery bookkeeping shares the commits (and the fsyncs) of the
//! events, and never takes the write lock on its own.
//!
//! One process owns the file, so a claim writes nothing: the workers leave out what they have
//! in flight, and after a crash every pending delivery is due again (see `store::outbox`).

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{oneshot, watch};

use super::SqliteStore;
use super::read::{DELIVERY_COLUMNS, attempts_of, delivery_from_row, parse_id, unavailable};
use super::shared::FreshFloors;
use super::writer::{Msg, TxDone, TxWork};
use crate::store::error::StoreError;
use crate::store::outbox::{
    AttemptRecord, Claimed, DeliveryQuery, DeliveryRow, DeliveryState, DestinationStatus, Finish,
    Health, Next, OutboxStore, ReplayFilter,
};

/// Events looked at by one replay transaction (by `seq`): a replay of a long history is many
/// short transactions, so the events arriving meanwhile never wait long for the writer.
const REPLAY_CHUNK: i64 = 5000;

impl SqliteStore {
    /// Runs `work` in the writer's next group commit and answers what it did once committed.
    pub(super) async fn tx(&self, work: TxWork) -> Result<TxDone, StoreError> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Msg::Tx(work, reply))
            .await
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Unavailable("the store's writer has stopped".into()))?
    }
}

/// Whether `destination` is paused. Asked before a claim reads deliveries: SQLite would test a
/// `NOT EXISTS (… paused)` in the claim row by row, reading a paused destination's whole
/// backlog each time to take none of it.
fn is_paused(c: &Connection, destination: &str) -> rusqlite::Result<bool> {
    c.prepare_cached("SELECT paused FROM destinations WHERE id = ?1")?
        .query_row([destination], |r| r.get(0))
        .optional()
        .map(|p| p.unwrap_or(false))
}

/// Claims up to `limit` deliveries of `destination` due at `now` and not in `in_flight`: first
/// those due at a time (retries, replays, an operator's retry, on the `deliveries_due` index),
/// then fresh ones (queued with their event), by id from the destination's floor. SQLite
/// writes nothing to claim: the worker leaves out what it has in flight.
fn claim(
    c: &Connection,
    floors: &FreshFloors,
    destination: &str,
    limit: usize,
    now: i64,
    in_flight: &[i64],
) -> rusqlite::Result<Vec<Claimed>> {
    // One snapshot: the fresh deliveries read and the floor set from them agree.
    let tx = c.unchecked_transaction()?;
    if is_paused(&tx, destination)? {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(limit);
    let fetch = |n: usize| i64::try_from(n.saturating_add(in_flight.len())).unwrap_or(i64::MAX);
    let due: Vec<(i64, i64, i64)> = tx
        .prepare_cached(
            "SELECT d.id, d.attempts, d.event_seq FROM deliveries d
             WHERE d.destination = ?1 AND d.state = 'pending'
               AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?2
             ORDER BY d.next_attempt_at, d.id LIMIT ?3",
        )?
        .query_map(params![destination, now, fetch(limit)], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (id, attempts, seq) in due {
        if out.len() < limit && !in_flight.contains(&id) {
            out.push(load(&tx, id, attempts, seq)?);
        }
    }
    if out.len() < limit {
        let floor = floor_of(&tx, floors, destination)?;
        let fresh = fresh_from(&tx, destination, floor, fetch(limit - out.len()))?;
        // Nothing below the first fresh one seen (claimed now or in flight) is fresh any more.
        let raised = match fresh.first() {
            Some((id, _)) => *id,
            None => next_id(&tx)?,
        };
        for (id, seq) in fresh {
            if out.len() < limit && !in_flight.contains(&id) {
                out.push(load(&tx, id, 0, seq)?);
            }
        }
        floors.raise(destination, raised);
    }
    Ok(out)
}

/// A claimed delivery with its event.
fn load(c: &Connection, id: i64, attempts: i64, seq: i64) -> rusqlite::Result<Claimed> {
    c.prepare_cached(
        "SELECT id, source, event_type, headers, body, received_at, trace_context FROM events
         WHERE seq = ?1",
    )?
    .query_row([seq], |r| {
        Ok(Claimed {
            delivery_id: id,
            lease: 0,
            attempts_made: u32::try_from(attempts).unwrap_or(0),
            event_id: parse_id(0, r.get::<_, String>(0)?)?,
            source: r.get(1)?,
            event_type: r.get(2)?,
            headers: r.get(3)?,
            body: Bytes::from(r.get::<_, Vec<u8>>(4)?),
            received_at: r.get(5)?,
            trace_context: r.get(6)?,
        })
    })
}

/// The first `limit` fresh deliveries of `destination` from `floor`: (id, event seq).
fn fresh_from(
    c: &Connection,
    destination: &str,
    floor: i64,
    limit: i64,
) -> rusqlite::Result<Vec<(i64, i64)>> {
    c.prepare_cached(
        "SELECT d.id, d.event_seq FROM deliveries d
         WHERE d.id >= ?1 AND d.destination = ?2 AND d.state = 'pending'
           AND d.next_attempt_at IS NULL
         ORDER BY d.id LIMIT ?3",
    )?
    .query_map(params![floor, destination, limit], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?
    .collect()
}

/// The id after the largest.
fn next_id(c: &Connection) -> rusqlite::Result<i64> {
    c.prepare_cached("SELECT coalesce(max(id), 0) + 1 FROM deliveries")?
        .query_row([], |r| r.get(0))
}

/// The floor of `destination`'s fresh deliveries: known, or found by reading the table once
/// (after a start) and remembered.
fn floor_of(c: &Connection, floors: &FreshFloors, destination: &str) -> rusqlite::Result<i64> {
    if let Some(f) = floors.get(destination) {
        return Ok(f);
    }
    let first: Option<i64> = c
        .prepare_cached(
            "SELECT min(id) FROM deliveries
             WHERE destination = ?1 AND state = 'pending' AND next_attempt_at IS NULL",
        )?
        .query_row([destination], |r| r.get(0))?;
    let floor = match first {
        Some(f) => f,
        None => next_id(c)?,
    };
    floors.raise(destination, floor);
    Ok(floor)
}

/// When the first pending delivery of `destination` not in `in_flight` is due: now if a fresh
/// one is free, else the first due at a time (in the order a claim takes them: at most
/// `in_flight.len() + 1` rows are read of each).
fn next_due(
    c: &Connection,
    floors: &FreshFloors,
    destination: &str,
    now: i64,
    in_flight: &[i64],
) -> rusqlite::Result<Option<i64>> {
    let tx = c.unchecked_transaction()?;
    if is_paused(&tx, destination)? {
        return Ok(None);
    }
    let fetch = i64::try_from(in_flight.len().saturating_add(1)).unwrap_or(i64::MAX);
    let floor = floor_of(&tx, floors, destination)?;
    let fresh = fresh_from(&tx, destination, floor, fetch)?;
    if fresh.iter().any(|(id, _)| !in_flight.contains(id)) {
        return Ok(Some(now));
    }
    let mut stmt = tx.prepare_cached(
        "SELECT d.id, d.next_attempt_at FROM deliveries d
         WHERE d.destination = ?1 AND d.state = 'pending' AND d.next_attempt_at IS NOT NULL
         ORDER BY d.next_attempt_at, d.id LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![destination, fetch])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        if !in_flight.contains(&id) {
            return row.get(1);
        }
    }
    Ok(None)
}

/// Records each attempt, moves each delivery on, and keeps each destination's health; pauses
/// a destination that answered 410 or has failed only for its `pause_after`.
fn finish(tx: &rusqlite::Transaction<'_>, done: &[Finish], now: i64) -> rusqlite::Result<TxDone> {
    let mut out = TxDone::default();
    let mut attempt = tx.prepare_cached(
        "INSERT OR IGNORE INTO delivery_attempts
           (delivery_id, number, at, duration_ms, status, error, response)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut update = tx.prepare_cached(
        "UPDATE deliveries SET attempts = max(attempts, ?2), state = ?3, next_attempt_at = ?4,
           delivered_at = ?5, last_error = ?6
         WHERE id = ?1 AND state = 'pending'",
    )?;
    for f in done {
        let a = &f.attempt;
        attempt.execute(params![
            f.delivery_id,
            a.number,
            a.at,
            a.duration_ms,
            a.status,
            a.error,
            a.response
        ])?;
        let (state, next_at, delivered_at) = match f.next {
            Next::Delivered => ("delivered", None, Some(now)),
            Next::RetryAt(at) => ("pending", Some(at), None),
            Next::Failed => ("failed", None, None),
        };
        update.execute(params![
            f.delivery_id,
            a.number,
            state,
            next_at,
            delivered_at,
            f.last_error
        ])?;
    }
    for h in Health::of(done) {
        tx.prepare_cached(
            "UPDATE destinations SET
               consecutive_failures = CASE WHEN ?2 THEN ?3 ELSE consecutive_failures + ?3 END,
               failing_since = CASE WHEN ?2 THEN ?4 ELSE coalesce(failing_since, ?4) END,
               last_success_at = CASE WHEN ?5 IS NULL THEN last_success_at
                                      ELSE max(coalesce(last_success_at, 0), ?5) END,
               last_failure_at = CASE WHEN ?6 IS NULL THEN last_failure_at
                                      ELSE max(coalesce(last_failure_at, 0), ?6) END
             WHERE id = ?1",
        )?
        .execute(params![
            h.destination,
            h.succeeded,
            h.trailing_failures,
            h.first_failure_at,
            h.last_success_at,
            h.last_failure_at
        ])?;
        if h.trailing_failures == 0 {
            continue;
        }
        let paused: Option<String> = tx
            .prepare_cached(
                "UPDATE destinations SET paused = 1, paused_reason = ?2
                 WHERE id = ?1 AND NOT paused AND (?3 OR failing_since <= ?4)
                 RETURNING id",
            )?
            .query_row(
                params![
                    h.destination,
                    h.pause_reason(),
                    h.gone,
                    now.saturating_sub(h.pause_after_ms)
                ],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = paused {
            out.paused.push(id);
        }
    }
    Ok(out)
}

fn destinations(c: &Connection, floors: &FreshFloors) -> rusqlite::Result<Vec<DestinationStatus>> {
    let tx = c.unchecked_transaction()?;
    let mut all: Vec<DestinationStatus> = tx
        .prepare_cached(
            "SELECT t.id, t.paused, t.paused_reason, t.consecutive_failures, t.last_success_at,
               t.last_failure_at,
               (SELECT count(*) FROM deliveries WHERE destination = t.id AND state = 'failed')
             FROM destinations t ORDER BY t.id",
        )?
        .query_map([], |r| {
            Ok(DestinationStatus {
                id: r.get(0)?,
                paused: r.get(1)?,
                paused_reason: r.get(2)?,
                consecutive_failures: r.get(3)?,
                last_success_at: r.get(4)?,
                last_failure_at: r.get(5)?,
                pending: 0,
                failed: r.get(6)?,
                oldest_pending_at: None,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    // Pending: those due at a time (on their index), and the fresh ones from the floor.
    for d in &mut all {
        let floor = floor_of(&tx, floors, &d.id)?;
        let (due, due_oldest): (i64, Option<i64>) = tx
            .prepare_cached(
                "SELECT count(*), min(created_at) FROM deliveries
                 WHERE destination = ?1 AND state = 'pending' AND next_attempt_at IS NOT NULL",
            )?
            .query_row([&d.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (fresh, fresh_oldest): (i64, Option<i64>) = tx
            .prepare_cached(
                "SELECT count(*), min(created_at) FROM deliveries
                 WHERE id >= ?1 AND destination = ?2 AND state = 'pending'
                   AND next_attempt_at IS NULL",
            )?
            .query_row(params![floor, &d.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        d.pending = due + fresh;
        d.oldest_pending_at = match (due_oldest, fresh_oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(all)
}

fn list(c: &Connection, q: &DeliveryQuery) -> rusqlite::Result<Vec<DeliveryRow>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS}
         FROM deliveries d JOIN events e ON e.seq = d.event_seq
         WHERE (?1 IS NULL OR d.destination = ?1) AND (?2 IS NULL OR d.state = ?2)
           AND (?3 IS NULL OR d.event_seq = (SELECT seq FROM events WHERE id = ?3))
           AND (?4 IS NULL OR d.id < ?4)
         ORDER BY d.id DESC LIMIT ?5"
    ))?;
    let event = q.event_id.map(|e| e.to_string());
    stmt.query_map(
        params![
            q.destination,
            q.state.map(DeliveryState::as_str),
            event,
            q.after,
            i64::from(q.limit.clamp(1, 1000))
        ],
        delivery_from_row,
    )?
    .collect()
}

fn get(c: &Connection, id: i64) -> rusqlite::Result<Option<(DeliveryRow, Vec<AttemptRecord>)>> {
    let row = c
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
             WHERE d.id = ?1"
        ))?
        .query_row([id], delivery_from_row)
        .optional()?;
    let Some(row) = row else {
        return Ok(None);
    };
    let attempts = attempts_of(c, id)?;
    Ok(Some((row, attempts)))
}

/// A JSON array of the list, for `json_each` (NULL: no filter).
fn json_list(list: Option<&Vec<String>>) -> Option<String> {
    list.map(|l| serde_json::Value::from(l.clone()).to_string())
}

/// An RFC 3339 time as Unix seconds (with fractions), for comparing with `received_at`.
fn epoch(t: Option<&str>, up: bool) -> Option<f64> {
    let t = time::OffsetDateTime::parse(t?, &time::format_description::well_known::Rfc3339).ok()?;
    Some(super::read::epoch_seconds(t, up))
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn register_destinations(&self, ids: &[String]) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.tx(Box::new(move |tx| {
            let mut add =
                tx.prepare_cached("INSERT OR IGNORE INTO destinations (id) VALUES (?1)")?;
            for id in &ids {
                add.execute([id])?;
            }
            Ok(TxDone::default())
        }))
        .await
        .map(|_| ())
    }

    async fn claim(
        &self,
        destination: &str,
        limit: usize,
        now: i64,
        _lease_ms: i64,
        in_flight: &[i64],
    ) -> Result<Vec<Claimed>, StoreError> {
        let destination = destination.to_string();
        let in_flight = in_flight.to_vec();
        let shared = self.shared.clone();
        self.read(move |c| {
            claim(c, &shared.fresh, &destination, limit, now, &in_flight).map_err(unavailable)
        })
        .await
    }

    async fn next_due(
        &self,
        destination: &str,
        now: i64,
        in_flight: &[i64],
    ) -> Result<Option<i64>, StoreError> {
        let destination = destination.to_string();
        let in_flight = in_flight.to_vec();
        let shared = self.shared.clone();
        self.read(move |c| {
            next_due(c, &shared.fresh, &destination, now, &in_flight).map_err(unavailable)
        })
        .await
    }

    async fn finish(&self, done: Vec<Finish>, now: i64) -> Result<Vec<String>, StoreError> {
        self.tx(Box::new(move |tx| finish(tx, &done, now)))
            .await
            .map(|d| d.paused)
    }

    async fn release(&self, _claims: Vec<(i64, i64)>) -> Result<(), StoreError> {
        // Nothing was written to claim them: they are pending, due, for the next start.
        Ok(())
    }

    async fn destinations(&self) -> Result<Vec<DestinationStatus>, StoreError> {
        let shared = self.shared.clone();
        self.read(move |c| destinations(c, &shared.fresh).map_err(unavailable))
            .await
    }

    async fn set_paused(
        &self,
        destination: &str,
        paused: bool,
        reason: Option<String>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let destination = destination.to_string();
        let done = self
            .tx(Box::new(move |tx| {
                let changed = if paused {
                    tx.execute(
                        "UPDATE destinations SET paused = 1, paused_reason = ?2 WHERE id = ?1",
                        params![destination, reason],
                    )?
                } else {
                    tx.execute(
                        "UPDATE destinations SET paused = 0, paused_reason = NULL,
                           failing_since = NULL, consecutive_failures = 0
                         WHERE id = ?1",
                        [&destination],
                    )?
                };
                let queued = !paused && changed > 0;
                if queued {
                    tx.execute(
                        "UPDATE deliveries SET next_attempt_at = ?2
                         WHERE destination = ?1 AND state = 'pending' AND next_attempt_at > ?2",
                        params![destination, now],
                    )?;
                }
                Ok(TxDone {
                    value: i64::try_from(changed).unwrap_or(0),
                    paused: Vec::new(),
                    queued,
                })
            }))
            .await?;
        Ok(done.value > 0)
    }

    async fn list_deliveries(&self, query: DeliveryQuery) -> Result<Vec<DeliveryRow>, StoreError> {
        self.read(move |c| list(c, &query).map_err(unavailable))
            .await
    }

    async fn get_delivery(
        &self,
        id: i64,
    ) -> Result<Option<(DeliveryRow, Vec<AttemptRecord>)>, StoreError> {
        self.read(move |c| get(c, id).map_err(unavailable)).await
    }

    async fn retry_delivery(&self, id: i64, now: i64) -> Result<Option<i64>, StoreError> {
        let done = self
            .tx(Box::new(move |tx| {
                let new: Option<i64> = tx
                    .query_row(
                        "INSERT INTO deliveries (event_seq, destination, state, next_attempt_at,
                           created_at)
                         SELECT event_seq, destination, 'pending', ?2, ?2 FROM deliveries
                         WHERE id = ?1
                         RETURNING id",
                        params![id, now],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(TxDone {
                    value: new.unwrap_or(0),
                    paused: Vec::new(),
                    queued: new.is_some(),
                })
            }))
            .await?;
        Ok((done.value > 0).then_some(done.value))
    }

    async fn replay(
        &self,
        destination: &str,
        filter: ReplayFilter,
        now: i64,
    ) -> Result<u64, StoreError> {
        let (lo, hi): (Option<i64>, Option<i64>) = self
            .read(|c| {
                c.query_row("SELECT min(seq), max(seq) FROM events", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(unavailable)
            })
            .await?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(0);
        };
        let sources = json_list(filter.sources.as_ref());
        let types = json_list(filter.event_types.as_ref());
        let from = epoch(filter.from.as_deref(), false);
        let to = epoch(filter.to.as_deref(), true);
        let mut queued = 0u64;
        let mut start = lo;
        while start <= hi {
            let end = start.saturating_add(REPLAY_CHUNK);
            let (destination, source, event_type, sources, types) = (
                destination.to_string(),
                filter.source.clone(),
                filter.event_type.clone(),
                sources.clone(),
                types.clone(),
            );
            let done = self
                .tx(Box::new(move |tx| {
                    let n = tx.execute(
                        "INSERT INTO deliveries (event_seq, destination, state, next_attempt_at,
                           created_at)
                         SELECT seq, ?1, 'pending', ?2, ?2 FROM events
                         WHERE seq >= ?3 AND seq < ?4
                           AND (?5 IS NULL OR source = ?5)
                           AND (?6 IS NULL OR event_type = ?6)
                           AND (?7 IS NULL OR source IN (SELECT value FROM json_each(?7)))
                           AND (?8 IS NULL OR event_type IN (SELECT value FROM json_each(?8)))
                           AND (?9 IS NULL OR unixepoch(received_at, 'subsec') >= ?9)
                           AND (?10 IS NULL OR unixepoch(received_at, 'subsec') <= ?10)
                         ORDER BY seq",
                        params![
                            destination,
                            now,
                            start,
                            end,
                            source,
                            event_type,
                            sources,
                            types,
                            from,
                            to
                        ],
                    )?;
                    Ok(TxDone {
                        value: i64::try_from(n).unwrap_or(i64::MAX),
                        paused: Vec::new(),
                        queued: n > 0,
                    })
                }))
                .await?;
            queued += u64::try_from(done.value).unwrap_or(0);
            start = end;
        }
        Ok(queued)
    }

    fn deliveries_queued(&self) -> watch::Receiver<u64> {
        self.shared.queued.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    use crate::config::{SqliteSettings, StoreSettings};
    use crate::store::outbox::{Next, OutboxStore, now_ms};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{EventId, EventStore, NewEvent};

    fn for_app(key: &str) -> NewEvent {
        NewEvent {
            id: EventId::new(),
            source: Arc::from("src"),
            kind: "identus",
            event_type: None,
            dedupe_key: key.into(),
            sender_id: None,
            received_at: "2026-01-02T03:04:05.678Z".into(),
            headers: "{}".into(),
            body: Bytes::from_static(b"{}"),
            projection: None,
            deliveries: Arc::from([Arc::from("app")]),
            trace_context: None,
        }
    }

    /// New deliveries are found by id from where the last claim left off. SQLite would give
    /// a new row the largest id plus one, which goes back once the newest rows are deleted
    /// (pruned after a replay of old events, say): a delivery queued then must still be found.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_delivery_is_claimed_after_the_newest_deliveries_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = SqliteStore::open(
            &SqliteSettings {
                path: path.clone(),
                busy_timeout: Duration::from_secs(5),
            },
            &StoreSettings::default(),
        )
        .await
        .unwrap();
        store.register_destinations(&["app".into()]).await.unwrap();
        for key in ["a", "b", "c"] {
            store.append(for_app(key)).await.unwrap();
        }
        let claimed = store.claim("app", 10, now_ms(), 0, &[]).await.unwrap();
        assert_eq!(claimed.len(), 3);
        let largest = claimed.iter().map(|c| c.delivery_id).max().unwrap();
        // The floor is now past all three; the two newest deliveries go.
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute("DELETE FROM deliveries WHERE id >= ?1", [largest - 1])
            .unwrap();
        let first = claimed.iter().map(|c| c.delivery_id).min().unwrap();
        let done = claimed
            .iter()
            .filter(|c| c.delivery_id == first)
            .map(|c| crate::store::outbox::Finish {
                delivery_id: c.delivery_id,
                lease: 0,
                destination: "app".into(),
                attempt: crate::store::outbox::AttemptRecord {
                    number: 1,
                    at: now_ms(),
                    duration_ms: 1,
                    status: Some(200),
                    error: None,
                    response: None,
                },
                next: Next::Delivered,
                gone: false,
                pause_after_ms: 60_000,
                last_error: None,
            })
            .collect();
        store.finish(done, now_ms()).await.unwrap();
        assert!(
            store
                .claim("app", 10, now_ms(), 0, &[])
                .await
                .unwrap()
                .is_empty()
        );
        let new = store.append(for_app("d")).await.unwrap();
        let again = store.claim("app", 10, now_ms(), 0, &[]).await.unwrap();
        assert_eq!(again.len(), 1, "the new delivery is claimed");
        assert_eq!(again[0].event_id, new.event_id);
        assert!(
            again[0].delivery_id > largest,
            "its id is above every earlier one"
        );
    }
}
