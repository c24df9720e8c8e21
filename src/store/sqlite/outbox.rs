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
    async fn tx(&self, work: TxWork) -> Result<TxDone, StoreError> {
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

fn claim(
    c: &Connection,
    destination: &str,
    limit: usize,
    now: i64,
    in_flight: &[i64],
) -> rusqlite::Result<Vec<Claimed>> {
    if is_paused(c, destination)? {
        return Ok(Vec::new());
    }
    let fetch = i64::try_from(limit.saturating_add(in_flight.len())).unwrap_or(i64::MAX);
    let mut stmt = c.prepare_cached(
        "SELECT d.id, d.attempts, e.id, e.source, e.event_type, e.headers, e.body
         FROM deliveries d JOIN events e ON e.seq = d.event_seq
         WHERE d.destination = ?1 AND d.state = 'pending' AND d.next_attempt_at <= ?2
         ORDER BY d.next_attempt_at, d.id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![destination, now, fetch], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, Option<String>>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Vec<u8>>(6)?,
        ))
    })?;
    let mut out = Vec::with_capacity(limit);
    for row in rows {
        let (id, attempts, event_id, source, event_type, headers, body) = row?;
        if in_flight.contains(&id) {
            continue;
        }
        out.push(Claimed {
            delivery_id: id,
            lease: 0,
            attempts_made: u32::try_from(attempts).unwrap_or(0),
            event_id: parse_id(2, event_id)?,
            source,
            event_type,
            headers,
            body: Bytes::from(body),
        });
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

/// When the first pending delivery of `destination` not in `in_flight` is due (in the order a
/// claim takes them, on the same index: at most `in_flight.len() + 1` rows are read).
fn next_due(c: &Connection, destination: &str, in_flight: &[i64]) -> rusqlite::Result<Option<i64>> {
    if is_paused(c, destination)? {
        return Ok(None);
    }
    let fetch = i64::try_from(in_flight.len().saturating_add(1)).unwrap_or(i64::MAX);
    let mut stmt = c.prepare_cached(
        "SELECT d.id, d.next_attempt_at FROM deliveries d
         WHERE d.destination = ?1 AND d.state = 'pending'
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

fn destinations(c: &Connection) -> rusqlite::Result<Vec<DestinationStatus>> {
    let mut stmt = c.prepare_cached(
        "SELECT t.id, t.paused, t.paused_reason, t.consecutive_failures, t.last_success_at,
           t.last_failure_at,
           (SELECT count(*) FROM deliveries WHERE destination = t.id AND state = 'pending'),
           (SELECT count(*) FROM deliveries WHERE destination = t.id AND state = 'failed'),
           (SELECT min(created_at) FROM deliveries WHERE destination = t.id AND state = 'pending')
         FROM destinations t ORDER BY t.id",
    )?;
    stmt.query_map([], |r| {
        Ok(DestinationStatus {
            id: r.get(0)?,
            paused: r.get(1)?,
            paused_reason: r.get(2)?,
            consecutive_failures: r.get(3)?,
            last_success_at: r.get(4)?,
            last_failure_at: r.get(5)?,
            pending: r.get(6)?,
            failed: r.get(7)?,
            oldest_pending_at: r.get(8)?,
        })
    })?
    .collect()
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
fn epoch(t: Option<&str>) -> Option<f64> {
    let t = time::OffsetDateTime::parse(t?, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp_nanos() as f64 / 1e9)
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
        self.read(move |c| claim(c, &destination, limit, now, &in_flight).map_err(unavailable))
            .await
    }

    async fn next_due(
        &self,
        destination: &str,
        _now: i64,
        in_flight: &[i64],
    ) -> Result<Option<i64>, StoreError> {
        let destination = destination.to_string();
        let in_flight = in_flight.to_vec();
        self.read(move |c| next_due(c, &destination, &in_flight).map_err(unavailable))
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
        self.read(|c| destinations(c).map_err(unavailable)).await
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
        let from = epoch(filter.from.as_deref());
        let to = epoch(filter.to.as_deref());
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

    /// Reads are plain blocking calls on a pooled connection, and writes go to the writer's
    /// thread through a channel: nothing is bound to a runtime.
    fn callable_from_any_runtime(&self) -> bool {
        true
    }
}
