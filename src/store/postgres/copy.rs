//! `copy-store` on PostgreSQL: imports in one transaction per batch on a pooled connection,
//! their statements pipelined, as the writer's batches are.
//!
//! Replicas may be writing to the destination meanwhile (events arriving during a move). An
//! import inserts in the source's feed order, not in the writers' lock order (`writer.rs`), so
//! each import transaction first takes [`LOCK_TABLES`]: the replicas' batches wait for it (one
//! batch of the copy, tens of milliseconds) instead of deadlocking with it.

use bytes::Bytes;
use futures_util::future::try_join_all;
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::errors::describe;
use super::read::{DELIVERY_COLUMNS, attempts_of, delivery_from_row, history};
use super::text::{dec, dec_opt, enc, enc_opt};
use super::writer::CHANNEL;
use crate::store::bulk::{
    Imported, ProjectionPosition, RawDelivery, RawDestination, RawProjection,
};
use crate::store::error::StoreError;
use crate::store::events::StoredEvent;
use crate::store::ids::EventId;

/// Conflicts with the row locks of the replicas' batches (`ROW EXCLUSIVE`), and with itself, but
/// not with reads.
const LOCK_TABLES: &str = "LOCK TABLE events, projections IN SHARE ROW EXCLUSIVE MODE";

fn failed(e: &tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(describe(e))
}

/// No conflict target: either unique index (id, or source and dedupe key) skips the event.
const IMPORT_EVENT: &str = "INSERT INTO events (id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT DO NOTHING";

/// Inserts the events in one transaction, in order (their `seq`, and so the feed, follows it),
/// skipping any whose id or `(source, dedupe_key)` is stored. Answers what it did and the
/// transaction's id.
pub(super) async fn import_events(
    client: &mut deadpool_postgres::Client,
    events: &[StoredEvent],
) -> Result<(Imported, i64), StoreError> {
    let tx = client.transaction().await.map_err(|e| failed(&e))?;
    tx.batch_execute(LOCK_TABLES)
        .await
        .map_err(|e| failed(&e))?;
    let insert = tx
        .prepare_cached(IMPORT_EVENT)
        .await
        .map_err(|e| failed(&e))?;
    // Sent in this order without waiting for each answer: the server runs them in order.
    let counts = try_join_all(events.iter().map(|ev| {
        let insert = &insert;
        let tx = &tx;
        async move {
            let body: &[u8] = &ev.body;
            let event_type = enc_opt(ev.event_type.as_deref());
            let dedupe_key = enc(&ev.dedupe_key);
            let sender_id = enc_opt(ev.sender_id.as_deref());
            let params: [&(dyn ToSql + Sync); 9] = [
                &ev.id.0,
                &ev.source,
                &ev.kind,
                &event_type,
                &dedupe_key,
                &sender_id,
                &ev.received_at,
                &ev.headers,
                &body,
            ];
            tx.execute(insert, &params).await
        }
    }))
    .await
    .map_err(|e| failed(&e))?;
    let copied = counts.iter().filter(|&&n| n > 0).count() as u64;
    let done = Imported {
        copied,
        skipped: events.len() as u64 - copied,
    };
    if copied > 0 {
        tx.execute("SELECT pg_notify($1, '')", &[&CHANNEL])
            .await
            .map_err(|e| failed(&e))?;
    }
    let xid: i64 = tx
        .query_one("SELECT pg_current_xact_id()::text::bigint", &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(|e| failed(&e))?;
    tx.commit().await.map_err(|e| failed(&e))?;
    Ok((done, xid))
}

/// A page of projection rows after `after`, by `(view, key, scope)`.
pub(super) async fn export_projections(
    c: &Client,
    after: Option<&ProjectionPosition>,
    limit: u32,
) -> Result<Vec<RawProjection>, StoreError> {
    let (view, key, scope) = match after {
        Some((v, k, s)) => (Some(v.as_str()), enc(k), enc(s)),
        None => (None, "".into(), "".into()),
    };
    let limit = i64::from(limit);
    let rows = c
        .query(
            "SELECT p.view, p.key, p.scope, p.state, p.attrs, p.ord, p.body_start, p.body_len,
                    coalesce(p.event_id, e.id), coalesce(p.updated_at, e.received_at),
                    coalesce(p.body, substring(e.body FROM p.body_start + 1 FOR p.body_len)),
                    p.history
             FROM projections p LEFT JOIN events e ON e.seq = p.event_seq
             WHERE $1::text IS NULL OR (p.view, p.key, p.scope) > ($1::text, $2::text, $3::text)
             ORDER BY p.view, p.key, p.scope LIMIT $4",
            &[&view, &key, &scope, &limit],
        )
        .await
        .map_err(|e| failed(&e))?;
    rows.iter()
        .map(|r| {
            Ok(RawProjection {
                view: r.try_get(0)?,
                key: dec(r.try_get(1)?),
                scope: dec(r.try_get(2)?),
                state: dec_opt(r.try_get(3)?),
                attrs: r.try_get(4)?,
                ord: r.try_get(5)?,
                body_start: i64::from(r.try_get::<_, i32>(6)?),
                body_len: i64::from(r.try_get::<_, i32>(7)?),
                event_id: r.try_get::<_, Option<uuid::Uuid>>(8)?.map(EventId),
                updated_at: r.try_get(9)?,
                body: r.try_get::<_, Option<Vec<u8>>>(10)?.map(Bytes::from),
                history: history(r, 11)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(|e| failed(&e))
}

/// Writes the row unless the stored one is the same or has a higher `ord`. `$7` is the
/// event's `seq` here, or NULL when the event is not here: then the row keeps its own copy of
/// the JSON (`$10`), and `event_seq` 0, no event's.
const IMPORT_PROJECTION: &str =
    "INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start,
                         body_len, body, event_id, updated_at, history)
SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::bigint, coalesce(e.seq, 0),
       $8::integer, $9::integer,
       CASE WHEN e.seq IS NULL THEN $10::bytea END,
       CASE WHEN e.seq IS NULL THEN $11::uuid END,
       CASE WHEN e.seq IS NULL THEN $12::text END,
       $13::uuid[]
FROM (SELECT 1) one LEFT JOIN events e ON e.id = $7::uuid
WHERE e.seq IS NOT NULL OR $10::bytea IS NOT NULL
ON CONFLICT (view, key, scope) DO UPDATE SET state = excluded.state,
  attrs = excluded.attrs, ord = excluded.ord, event_seq = excluded.event_seq,
  body_start = excluded.body_start, body_len = excluded.body_len,
  body = excluded.body, event_id = excluded.event_id, updated_at = excluded.updated_at,
  history = excluded.history
WHERE (excluded.ord IS NULL OR projections.ord IS NULL OR excluded.ord >= projections.ord)
  AND (projections.state, projections.attrs, projections.ord, projections.event_seq,
       projections.body_start, projections.body_len, projections.body, projections.event_id,
       projections.updated_at, projections.history)
      IS DISTINCT FROM
      (excluded.state, excluded.attrs, excluded.ord, excluded.event_seq, excluded.body_start,
       excluded.body_len, excluded.body, excluded.event_id, excluded.updated_at,
       excluded.history)";

/// Writes each row unless the stored one is the same or has a higher `ord`: pointing at its
/// event when the event is here, with its own copy of the JSON otherwise.
pub(super) async fn import_projections(
    client: &mut deadpool_postgres::Client,
    rows: &[RawProjection],
) -> Result<Imported, StoreError> {
    let tx = client.transaction().await.map_err(|e| failed(&e))?;
    tx.batch_execute(LOCK_TABLES)
        .await
        .map_err(|e| failed(&e))?;
    let upsert = tx
        .prepare_cached(IMPORT_PROJECTION)
        .await
        .map_err(|e| failed(&e))?;
    let mut prepared = Vec::with_capacity(rows.len());
    for row in rows {
        let start = i32::try_from(row.body_start).map_err(|_| {
            StoreError::Unavailable("a projection starts past 2 GiB into its body".into())
        })?;
        let len = i32::try_from(row.body_len)
            .map_err(|_| StoreError::Unavailable("a projection is longer than 2 GiB".into()))?;
        let text = (
            enc(&row.key),
            enc(&row.scope),
            enc_opt(row.state.as_deref()),
        );
        let history: Vec<uuid::Uuid> = row.history.iter().map(|id| id.0).collect();
        prepared.push((row, text, start, len, row.body.as_deref(), history));
    }
    let counts = try_join_all(prepared.iter().map(
        |(row, (key, scope, state), start, len, body, history)| {
            let id = row.event_id.map(|id| id.0);
            let upsert = &upsert;
            let tx = &tx;
            async move {
                let params: [&(dyn ToSql + Sync); 13] = [
                    &row.view,
                    key,
                    scope,
                    state,
                    &row.attrs,
                    &row.ord,
                    &id,
                    start,
                    len,
                    body,
                    &id,
                    &row.updated_at,
                    history,
                ];
                tx.execute(upsert, &params).await
            }
        },
    ))
    .await
    .map_err(|e| failed(&e))?;
    tx.commit().await.map_err(|e| failed(&e))?;
    let copied = counts.iter().filter(|&&n| n > 0).count() as u64;
    Ok(Imported {
        copied,
        skipped: rows.len() as u64 - copied,
    })
}

/// A page of deliveries after `after`, by id, each with its attempts.
pub(super) async fn export_deliveries(
    c: &Client,
    after: Option<i64>,
    limit: u32,
) -> Result<Vec<RawDelivery>, StoreError> {
    let limit = i64::from(limit);
    let rows = c
        .query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
                 WHERE d.id > $1 ORDER BY d.id LIMIT $2"
            ),
            &[&after.unwrap_or(0), &limit],
        )
        .await
        .map_err(|e| failed(&e))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let delivery = delivery_from_row(r).map_err(|e| failed(&e))?;
        let attempts = attempts_of(c, delivery.id).await.map_err(|e| failed(&e))?;
        out.push(RawDelivery { delivery, attempts });
    }
    Ok(out)
}

/// Writes the deliveries (new ids) with their attempts in one transaction, skipping those
/// already stored (same event, destination and creation time) and those whose event is not.
pub(super) async fn import_deliveries(
    client: &mut deadpool_postgres::Client,
    rows: &[RawDelivery],
) -> Result<Imported, StoreError> {
    let tx = client.transaction().await.map_err(|e| failed(&e))?;
    let mut done = Imported::default();
    for raw in rows {
        let r = &raw.delivery;
        let attempts = i32::try_from(r.attempts_made).unwrap_or(i32::MAX);
        let new = tx
            .query_opt(
                "INSERT INTO deliveries (event_seq, destination, state, attempts, next_attempt_at,
                   created_at, delivered_at, last_error)
                 SELECT e.seq, $2, $3, $4, $5, $6, $7, $8 FROM events e
                 WHERE e.id = $1
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq
                                   AND d.destination = $2 AND d.created_at = $6)
                 RETURNING id",
                &[
                    &r.event_id.0,
                    &r.destination,
                    &r.state.as_str(),
                    &attempts,
                    &r.next_attempt_at,
                    &r.created_at,
                    &r.delivered_at,
                    &r.last_error,
                ],
            )
            .await
            .map_err(|e| failed(&e))?;
        let Some(new) = new else {
            done.skipped += 1;
            continue;
        };
        let new: i64 = new.try_get(0).map_err(|e| failed(&e))?;
        for a in &raw.attempts {
            let number = i32::try_from(a.number).unwrap_or(i32::MAX);
            let status = a.status.map(i32::from);
            tx.execute(
                "INSERT INTO delivery_attempts
                   (delivery_id, number, at, duration_ms, status, error, response)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                &[
                    &new,
                    &number,
                    &a.at,
                    &a.duration_ms,
                    &status,
                    &a.error,
                    &a.response,
                ],
            )
            .await
            .map_err(|e| failed(&e))?;
        }
        done.copied += 1;
    }
    tx.commit().await.map_err(|e| failed(&e))?;
    Ok(done)
}

/// Every destination's row.
pub(super) async fn export_destinations(c: &Client) -> Result<Vec<RawDestination>, StoreError> {
    let rows = c
        .query(
            "SELECT id, paused, paused_reason FROM destinations ORDER BY id",
            &[],
        )
        .await
        .map_err(|e| failed(&e))?;
    rows.iter()
        .map(|r| {
            Ok(RawDestination {
                id: r.try_get(0)?,
                paused: r.try_get(1)?,
                paused_reason: r.try_get(2)?,
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .map_err(|e| failed(&e))
}

/// Adds the destinations that are not stored.
pub(super) async fn import_destinations(
    c: &Client,
    rows: &[RawDestination],
) -> Result<Imported, StoreError> {
    let mut done = Imported::default();
    for r in rows {
        let n = c
            .execute(
                "INSERT INTO destinations (id, paused, paused_reason) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&r.id, &r.paused, &r.paused_reason],
            )
            .await
            .map_err(|e| failed(&e))?;
        if n > 0 {
            done.copied += 1;
        } else {
            done.skipped += 1;
        }
    }
    Ok(done)
}
