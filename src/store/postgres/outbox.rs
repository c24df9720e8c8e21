//! The outbox on PostgreSQL, shared by replicas: a claim leases rows (`FOR UPDATE SKIP
//! LOCKED`, then a lease token and an expiry, in one short statement; no transaction is held
//! across an attempt), a finish is accepted only under the lease it was claimed with, and a
//! lease that expires (its replica died mid-attempt) makes the row claimable again.
//!
//! Delivery rows for new events are written by the writer, in the events' transaction
//! (`writer.rs`, `QUEUE_DELIVERIES`).

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::FutureExt as _;
use tokio::sync::watch;

use super::PostgresStore;
use super::read::{DELIVERY_COLUMNS, attempts_of, delivery_from_row, unavailable};
use super::text::{dec, enc};
use crate::store::error::StoreError;
use crate::store::ids::EventId;
use crate::store::outbox::{
    AttemptRecord, Claimed, DeliveryQuery, DeliveryRow, DeliveryState, DestinationStatus, Finish,
    Health, Next, OutboxStore, ReplayFilter,
};

/// Events looked at by one replay statement (by `seq`).
const REPLAY_CHUNK: i64 = 5000;

const CLAIM: &str = "WITH c AS (
    SELECT id FROM deliveries
    WHERE destination = $1 AND state = 'pending' AND next_attempt_at <= $2
      AND (lease_until IS NULL OR lease_until < $2)
      AND NOT EXISTS (SELECT 1 FROM destinations WHERE id = $1 AND paused)
    ORDER BY next_attempt_at, id LIMIT $3
    FOR UPDATE SKIP LOCKED
), l AS (
    UPDATE deliveries d SET lease = $5, lease_until = $2 + $4
    FROM c WHERE d.id = c.id
    RETURNING d.id, d.attempts, d.event_seq, d.next_attempt_at
)
SELECT l.id, l.attempts, e.id, e.source, e.event_type, e.headers, e.body, e.received_at,
       e.trace_context
FROM l CROSS JOIN LATERAL (SELECT id, source, event_type, headers, body, received_at,
                                  trace_context
                           FROM events WHERE seq = l.event_seq) e
ORDER BY l.next_attempt_at, l.id";

const FINISH_ONE: &str = "WITH u AS (
    UPDATE deliveries SET attempts = greatest(attempts, $3), state = $4, next_attempt_at = $5,
        delivered_at = $6, last_error = $7, lease = NULL, lease_until = NULL
    WHERE id = $1 AND state = 'pending' AND lease IS NOT DISTINCT FROM $2
    RETURNING id)
INSERT INTO delivery_attempts (delivery_id, number, at, duration_ms, status, error, response)
SELECT id, $3, $8, $9, $10, $11, $12 FROM u
ON CONFLICT DO NOTHING";

const HEALTH: &str = "UPDATE destinations SET
    consecutive_failures = CASE WHEN $2 THEN $3 ELSE consecutive_failures + $3 END,
    failing_since = CASE WHEN $2 THEN $4 ELSE coalesce(failing_since, $4) END,
    last_success_at = CASE WHEN $5::int8 IS NULL THEN last_success_at
                           ELSE greatest(coalesce(last_success_at, 0), $5) END,
    last_failure_at = CASE WHEN $6::int8 IS NULL THEN last_failure_at
                           ELSE greatest(coalesce(last_failure_at, 0), $6) END
WHERE id = $1";

const PAUSE: &str = "UPDATE destinations SET paused = true, paused_reason = $2
WHERE id = $1 AND NOT paused AND ($3 OR failing_since <= $4)
RETURNING id";

/// A fresh lease token.
fn lease_token() -> i64 {
    // 63 random bits: never 0, so no lease is ever "no lease".
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 1;
    i64::try_from(bits).unwrap_or(i64::MAX).max(1)
}

impl PostgresStore {
    /// Runs `work` in a transaction of its own, within the statement time limit.
    async fn in_transaction<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: for<'c> FnOnce(
            &'c tokio_postgres::Transaction<'c>,
        )
            -> futures_util::future::BoxFuture<'c, Result<T, tokio_postgres::Error>>,
    {
        let mut client = self.client().await?;
        let answered = tokio::time::timeout(self.answer_within, async {
            let tx = client.transaction().await.map_err(unavailable)?;
            let out = work(&tx).await.map_err(unavailable)?;
            tx.commit().await.map_err(unavailable)?;
            Ok(out)
        })
        .await;
        self.answered(client, answered)
    }
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn register_destinations(&self, ids: &[String]) -> Result<(), StoreError> {
        let ids = ids.to_vec();
        self.with_client(|c| {
            async move {
                c.execute(
                    "INSERT INTO destinations (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                    &[&ids],
                )
                .await
                .map(|_| ())
                .map_err(unavailable)
            }
            .boxed()
        })
        .await
    }

    async fn claim(
        &self,
        destination: &str,
        limit: usize,
        now: i64,
        lease_ms: i64,
        _in_flight: &[i64],
    ) -> Result<Vec<Claimed>, StoreError> {
        let destination = destination.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let lease = lease_token();
        self.with_client(|c| {
            async move {
                let rows = c
                    .query(CLAIM, &[&destination, &now, &limit, &lease_ms, &lease])
                    .await
                    .map_err(unavailable)?;
                rows.iter()
                    .map(|r| {
                        Ok(Claimed {
                            delivery_id: r.try_get(0)?,
                            lease,
                            attempts_made: u32::try_from(r.try_get::<_, i32>(1)?).unwrap_or(0),
                            event_id: EventId(r.try_get(2)?),
                            source: r.try_get(3)?,
                            event_type: r.try_get::<_, Option<String>>(4)?.map(dec),
                            headers: r.try_get(5)?,
                            body: Bytes::from(r.try_get::<_, Vec<u8>>(6)?),
                            received_at: r.try_get(7)?,
                            trace_context: r.try_get(8)?,
                        })
                    })
                    .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                    .map_err(unavailable)
            }
            .boxed()
        })
        .await
    }

    async fn next_due(
        &self,
        destination: &str,
        now: i64,
        _in_flight: &[i64],
    ) -> Result<Option<i64>, StoreError> {
        let destination = destination.to_string();
        // Rows under a live lease (this replica's attempts in flight, or another's) are left
        // out, as a claim leaves them out; an expired lease is seen within the worker's POLL.
        self.with_client(|c| {
            async move {
                c.query_one(
                    "SELECT min(next_attempt_at) FROM deliveries
                     WHERE destination = $1 AND state = 'pending'
                       AND (lease_until IS NULL OR lease_until < $2)
                       AND NOT EXISTS (SELECT 1 FROM destinations WHERE id = $1 AND paused)",
                    &[&destination, &now],
                )
                .await
                .and_then(|r| r.try_get(0))
                .map_err(unavailable)
            }
            .boxed()
        })
        .await
    }

    async fn finish(&self, done: Vec<Finish>, now: i64) -> Result<Vec<String>, StoreError> {
        let paused = self
            .in_transaction(|tx| {
                async move {
                    let mut paused = Vec::new();
                    // Every delivery's statement sent at once (pipelined on the connection).
                    let rows: Vec<_> = done
                        .iter()
                        .map(|f| {
                            let (state, next_at, delivered_at) = match f.next {
                                Next::Delivered => ("delivered", None, Some(now)),
                                Next::RetryAt(at) => ("pending", Some(at), None),
                                Next::Failed => ("failed", None, None),
                            };
                            (
                                f,
                                i32::try_from(f.attempt.number).unwrap_or(i32::MAX),
                                (f.lease != 0).then_some(f.lease),
                                f.attempt.status.map(i32::from),
                                state,
                                next_at,
                                delivered_at,
                            )
                        })
                        .collect();
                    futures_util::future::try_join_all(rows.iter().map(
                        |(f, number, lease, status, state, next_at, delivered_at)| async move {
                            let a = &f.attempt;
                            tx.execute(
                                FINISH_ONE,
                                &[
                                    &f.delivery_id,
                                    lease,
                                    number,
                                    state,
                                    next_at,
                                    delivered_at,
                                    &f.last_error,
                                    &a.at,
                                    &a.duration_ms,
                                    status,
                                    &a.error,
                                    &a.response,
                                ],
                            )
                            .await
                        },
                    ))
                    .await?;
                    for h in Health::of(&done) {
                        tx.execute(
                            HEALTH,
                            &[
                                &h.destination,
                                &h.succeeded,
                                &h.trailing_failures,
                                &h.first_failure_at,
                                &h.last_success_at,
                                &h.last_failure_at,
                            ],
                        )
                        .await?;
                        if h.trailing_failures == 0 {
                            continue;
                        }
                        let since = now.saturating_sub(h.pause_after_ms);
                        if let Some(row) = tx
                            .query_opt(PAUSE, &[&h.destination, &h.pause_reason(), &h.gone, &since])
                            .await?
                        {
                            paused.push(row.try_get(0)?);
                        }
                    }
                    Ok(paused)
                }
                .boxed()
            })
            .await?;
        Ok(paused)
    }

    async fn release(&self, claims: Vec<(i64, i64)>) -> Result<(), StoreError> {
        let (ids, leases): (Vec<i64>, Vec<i64>) = claims.into_iter().unzip();
        self.with_client(|c| {
            async move {
                c.execute(
                    "UPDATE deliveries d SET lease = NULL, lease_until = NULL
                     FROM unnest($1::int8[], $2::int8[]) AS r(id, lease)
                     WHERE d.id = r.id AND d.lease = r.lease",
                    &[&ids, &leases],
                )
                .await
                .map(|_| ())
                .map_err(unavailable)
            }
            .boxed()
        })
        .await
    }

    async fn destinations(&self) -> Result<Vec<DestinationStatus>, StoreError> {
        self.with_client(|c| {
            async move {
                let rows = c
                    .query(
                        "SELECT t.id, t.paused, t.paused_reason, t.consecutive_failures,
                           t.last_success_at, t.last_failure_at,
                           (SELECT count(*) FROM deliveries
                            WHERE destination = t.id AND state = 'pending'),
                           (SELECT count(*) FROM deliveries
                            WHERE destination = t.id AND state = 'failed'),
                           (SELECT min(created_at) FROM deliveries
                            WHERE destination = t.id AND state = 'pending')
                         FROM destinations t ORDER BY t.id",
                        &[],
                    )
                    .await
                    .map_err(unavailable)?;
                rows.iter()
                    .map(|r| {
                        Ok(DestinationStatus {
                            id: r.try_get(0)?,
                            paused: r.try_get(1)?,
                            paused_reason: r.try_get(2)?,
                            consecutive_failures: r.try_get(3)?,
                            last_success_at: r.try_get(4)?,
                            last_failure_at: r.try_get(5)?,
                            pending: r.try_get(6)?,
                            failed: r.try_get(7)?,
                            oldest_pending_at: r.try_get(8)?,
                        })
                    })
                    .collect::<Result<Vec<_>, tokio_postgres::Error>>()
                    .map_err(unavailable)
            }
            .boxed()
        })
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
        let changed = self
            .in_transaction(|tx| {
                async move {
                    let changed = if paused {
                        tx.execute(
                            "UPDATE destinations SET paused = true, paused_reason = $2 WHERE id = $1",
                            &[&destination, &reason],
                        )
                        .await?
                    } else {
                        tx.execute(
                            "UPDATE destinations SET paused = false, paused_reason = NULL,
                               failing_since = NULL, consecutive_failures = 0
                             WHERE id = $1",
                            &[&destination],
                        )
                        .await?
                    };
                    if !paused && changed > 0 {
                        tx.execute(
                            "UPDATE deliveries SET next_attempt_at = $2
                             WHERE destination = $1 AND state = 'pending' AND next_attempt_at > $2",
                            &[&destination, &now],
                        )
                        .await?;
                    }
                    Ok(changed > 0)
                }
                .boxed()
            })
            .await?;
        if changed && !paused {
            self.shared.note_queued();
        }
        Ok(changed)
    }

    async fn list_deliveries(&self, q: DeliveryQuery) -> Result<Vec<DeliveryRow>, StoreError> {
        self.with_client(|c| {
            async move {
                let sql = format!(
                    "SELECT {DELIVERY_COLUMNS}
                     FROM deliveries d JOIN events e ON e.seq = d.event_seq
                     WHERE ($1::text IS NULL OR d.destination = $1)
                       AND ($2::text IS NULL OR d.state = $2)
                       AND ($3::uuid IS NULL OR d.event_seq = (SELECT seq FROM events WHERE id = $3))
                       AND ($4::int8 IS NULL OR d.id < $4)
                     ORDER BY d.id DESC LIMIT $5"
                );
                let state = q.state.map(DeliveryState::as_str);
                let event = q.event_id.map(|e| e.0);
                let limit = i64::from(q.limit.clamp(1, 1000));
                let rows = c
                    .query(&sql, &[&q.destination, &state, &event, &q.after, &limit])
                    .await
                    .map_err(unavailable)?;
                rows.iter()
                    .map(delivery_from_row)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unavailable)
            }
            .boxed()
        })
        .await
    }

    async fn get_delivery(
        &self,
        id: i64,
    ) -> Result<Option<(DeliveryRow, Vec<AttemptRecord>)>, StoreError> {
        self.with_client(|c| {
            async move {
                let sql = format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
                     WHERE d.id = $1"
                );
                let Some(row) = c.query_opt(&sql, &[&id]).await.map_err(unavailable)? else {
                    return Ok(None);
                };
                let row = delivery_from_row(&row).map_err(unavailable)?;
                let attempts = attempts_of(c, id).await.map_err(unavailable)?;
                Ok(Some((row, attempts)))
            }
            .boxed()
        })
        .await
    }

    async fn retry_delivery(&self, id: i64, now: i64) -> Result<Option<i64>, StoreError> {
        let new: Option<i64> = self
            .with_client(|c| {
                async move {
                    c.query_opt(
                        "INSERT INTO deliveries (event_seq, destination, state, next_attempt_at,
                           created_at)
                         SELECT event_seq, destination, 'pending', $2, $2 FROM deliveries
                         WHERE id = $1
                         RETURNING id",
                        &[&id, &now],
                    )
                    .await
                    .and_then(|r| r.map(|r| r.try_get(0)).transpose())
                    .map_err(unavailable)
                }
                .boxed()
            })
            .await?;
        if new.is_some() {
            self.shared.note_queued();
        }
        Ok(new)
    }

    async fn replay(
        &self,
        destination: &str,
        filter: ReplayFilter,
        now: i64,
    ) -> Result<u64, StoreError> {
        let (lo, hi): (Option<i64>, Option<i64>) = self
            .with_client(|c| {
                async move {
                    c.query_one("SELECT min(seq), max(seq) FROM events", &[])
                        .await
                        .and_then(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                        .map_err(unavailable)
                }
                .boxed()
            })
            .await?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok(0);
        };
        let source = filter.source.clone();
        let event_type = filter.event_type.as_deref().map(|t| enc(t).into_owned());
        let sources = filter.sources.clone();
        let types: Option<Vec<String>> = filter
            .event_types
            .as_ref()
            .map(|l| l.iter().map(|t| enc(t).into_owned()).collect());
        let mut queued = 0u64;
        let mut start = lo;
        while start <= hi {
            let end = start.saturating_add(REPLAY_CHUNK);
            let (destination, source, event_type, sources, types, from, to) = (
                destination.to_string(),
                source.clone(),
                event_type.clone(),
                sources.clone(),
                types.clone(),
                filter.from.clone(),
                filter.to.clone(),
            );
            let n = self
                .with_client(|c| {
                    async move {
                        c.execute(
                            "INSERT INTO deliveries (event_seq, destination, state,
                               next_attempt_at, created_at)
                             SELECT seq, $1, 'pending', $2, $2 FROM events
                             WHERE seq >= $3 AND seq < $4
                               AND ($5::text IS NULL OR source = $5)
                               AND ($6::text IS NULL OR event_type = $6)
                               AND ($7::text[] IS NULL OR source = ANY($7))
                               AND ($8::text[] IS NULL OR event_type = ANY($8))
                               AND ($9::text IS NULL OR received_at::timestamptz >= $9::timestamptz)
                               AND ($10::text IS NULL OR received_at::timestamptz <= $10::timestamptz)
                             ORDER BY seq",
                            &[
                                &destination,
                                &now,
                                &start,
                                &end,
                                &source,
                                &event_type,
                                &sources,
                                &types,
                                &from,
                                &to,
                            ],
                        )
                        .await
                        .map_err(unavailable)
                    }
                    .boxed()
                })
                .await?;
            queued += n;
            start = end;
        }
        if queued > 0 {
            self.shared.note_queued();
        }
        Ok(queued)
    }

    fn deliveries_queued(&self) -> watch::Receiver<u64> {
        self.shared.queued.subscribe()
    }
}
