//! `copy-store` on SQLite: imports run on the writer's connection (`Msg::Exclusive`), between
//! two group commits; exports on the read pool.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use uuid::Uuid;

use super::read::parse_id;
use super::read::{DELIVERY_COLUMNS, attempts_of, delivery_from_row};
use crate::store::bulk::{
    Imported, ProjectionPosition, RawDelivery, RawDestination, RawProjection,
};
use crate::store::events::StoredEvent;
use crate::store::projections::{history_bytes, history_from_bytes};

/// Inserts the events in order in one transaction, skipping any whose id or
/// `(source, dedupe_key)` is stored.
pub(super) fn import_events(
    conn: &mut Connection,
    events: &[StoredEvent],
) -> rusqlite::Result<Imported> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut done = Imported::default();
    {
        // No conflict target: either unique index (id, or source and dedupe key) skips it.
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT DO NOTHING",
        )?;
        for ev in events {
            let mut buf = Uuid::encode_buffer();
            let id: &str = ev.id.0.hyphenated().encode_lower(&mut buf);
            let n = insert.execute(params![
                id,
                ev.source,
                ev.kind,
                ev.event_type,
                ev.dedupe_key,
                ev.sender_id,
                ev.received_at,
                ev.headers,
                &ev.body[..],
            ])?;
            if n > 0 {
                done.copied += 1;
            } else {
                done.skipped += 1;
            }
        }
    }
    tx.commit()?;
    Ok(done)
}

/// A page of projection rows after `after`, by `(view, key, scope)`.
pub(super) fn export_projections(
    c: &Connection,
    after: Option<&ProjectionPosition>,
    limit: u32,
) -> rusqlite::Result<Vec<RawProjection>> {
    let (view, key, scope) = match after {
        Some((v, k, s)) => (Some(v.as_str()), k.as_str(), s.as_str()),
        None => (None, "", ""),
    };
    let mut stmt = c.prepare_cached(
        "SELECT p.view, p.key, p.scope, p.state, p.attrs, p.ord, p.body_start, p.body_len,
                coalesce(p.event_id, e.id), coalesce(p.updated_at, e.received_at),
                coalesce(p.body, substr(e.body, p.body_start + 1, p.body_len)), p.history
         FROM projections p LEFT JOIN events e ON e.seq = p.event_seq
         WHERE ?1 IS NULL OR (p.view, p.key, p.scope) > (?1, ?2, ?3)
         ORDER BY p.view, p.key, p.scope LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![view, key, scope, i64::from(limit)], |r| {
        let event_id: Option<String> = r.get(8)?;
        let event_id = event_id.map(|s| parse_id(8, s)).transpose()?;
        Ok(RawProjection {
            view: r.get(0)?,
            key: r.get(1)?,
            scope: r.get(2)?,
            state: r.get(3)?,
            attrs: r.get(4)?,
            ord: r.get(5)?,
            body_start: r.get(6)?,
            body_len: r.get(7)?,
            event_id,
            updated_at: r.get(9)?,
            body: r.get::<_, Option<Vec<u8>>>(10)?.map(Bytes::from),
            history: r
                .get::<_, Option<Vec<u8>>>(11)?
                .map(|b| history_from_bytes(&b))
                .unwrap_or_default(),
        })
    })?;
    rows.collect()
}

/// Writes each row unless the stored one is the same or has a higher `ord`: pointing at its
/// event when the event is here, with its own copy of the JSON otherwise.
pub(super) fn import_projections(
    conn: &mut Connection,
    rows: &[RawProjection],
) -> rusqlite::Result<Imported> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut done = Imported::default();
    {
        let mut find = tx.prepare_cached("SELECT seq FROM events WHERE id = ?1")?;
        let mut upsert = tx.prepare_cached(
            "INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start,
                                      body_len, body, event_id, updated_at, history)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (view, key, scope) DO UPDATE SET state = excluded.state,
               attrs = excluded.attrs, ord = excluded.ord, event_seq = excluded.event_seq,
               body_start = excluded.body_start, body_len = excluded.body_len,
               body = excluded.body, event_id = excluded.event_id, updated_at = excluded.updated_at,
               history = excluded.history
             WHERE (excluded.ord IS NULL OR projections.ord IS NULL OR excluded.ord >= projections.ord)
               AND (projections.state IS NOT excluded.state OR projections.attrs IS NOT excluded.attrs
                 OR projections.ord IS NOT excluded.ord OR projections.event_seq IS NOT excluded.event_seq
                 OR projections.body_start IS NOT excluded.body_start
                 OR projections.body_len IS NOT excluded.body_len
                 OR projections.body IS NOT excluded.body OR projections.event_id IS NOT excluded.event_id
                 OR projections.updated_at IS NOT excluded.updated_at
                 OR projections.history IS NOT excluded.history)",
        )?;
        for row in rows {
            let history = history_bytes(&row.history);
            let mut buf = Uuid::encode_buffer();
            let id = row
                .event_id
                .map(|id| &*id.0.hyphenated().encode_lower(&mut buf));
            let seq: Option<i64> = match id {
                Some(id) => find.query_row([id], |r| r.get(0)).optional()?,
                None => None,
            };
            let n = match seq {
                // The event is here: point at its body, as an append would have.
                Some(seq) => upsert.execute(params![
                    row.view,
                    row.key,
                    row.scope,
                    row.state,
                    row.attrs,
                    row.ord,
                    seq,
                    row.body_start,
                    row.body_len,
                    None::<Vec<u8>>,
                    None::<String>,
                    None::<String>,
                    history,
                ])?,
                // Its event is not here (pruned in the source): the row's own copy. `event_seq`
                // 0 is no event's (sequence numbers start at 1).
                None => match &row.body {
                    Some(body) => upsert.execute(params![
                        row.view,
                        row.key,
                        row.scope,
                        row.state,
                        row.attrs,
                        row.ord,
                        0_i64,
                        row.body_start,
                        row.body_len,
                        &body[..],
                        id,
                        row.updated_at,
                        history,
                    ])?,
                    // Neither event nor copy in the source: nothing to point at.
                    None => 0,
                },
            };
            if n > 0 {
                done.copied += 1;
            } else {
                done.skipped += 1;
            }
        }
    }
    tx.commit()?;
    Ok(done)
}

/// A page of deliveries after `after`, by id, each with its attempts.
pub(super) fn export_deliveries(
    c: &Connection,
    after: Option<i64>,
    limit: u32,
) -> rusqlite::Result<Vec<RawDelivery>> {
    let rows: Vec<_> = c
        .prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d JOIN events e ON e.seq = d.event_seq
             WHERE d.id > ?1 ORDER BY d.id LIMIT ?2"
        ))?
        .query_map(params![after.unwrap_or(0), limit], delivery_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    rows.into_iter()
        .map(|delivery| {
            Ok(RawDelivery {
                attempts: attempts_of(c, delivery.id)?,
                delivery,
            })
        })
        .collect()
}

/// Writes the deliveries (new ids) and their attempts, skipping those already stored and those
/// whose event is not.
pub(super) fn import_deliveries(
    conn: &mut Connection,
    rows: &[RawDelivery],
) -> rusqlite::Result<Imported> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut done = Imported::default();
    {
        let mut event = tx.prepare_cached("SELECT seq FROM events WHERE id = ?1")?;
        let mut same = tx.prepare_cached(
            "SELECT 1 FROM deliveries WHERE event_seq = ?1 AND destination = ?2 AND created_at = ?3",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO deliveries (event_seq, destination, state, attempts, next_attempt_at,
               created_at, delivered_at, last_error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        )?;
        let mut attempt = tx.prepare_cached(
            "INSERT OR IGNORE INTO delivery_attempts
               (delivery_id, number, at, duration_ms, status, error, response)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for raw in rows {
            let r = &raw.delivery;
            let mut buf = Uuid::encode_buffer();
            let id: &str = r.event_id.0.hyphenated().encode_lower(&mut buf);
            let seq: Option<i64> = event.query_row([id], |row| row.get(0)).optional()?;
            let Some(seq) = seq else {
                done.skipped += 1;
                continue;
            };
            if same.exists(params![seq, r.destination, r.created_at])? {
                done.skipped += 1;
                continue;
            }
            let new: i64 = insert.query_row(
                params![
                    seq,
                    r.destination,
                    r.state.as_str(),
                    r.attempts_made,
                    r.next_attempt_at,
                    r.created_at,
                    r.delivered_at,
                    r.last_error
                ],
                |row| row.get(0),
            )?;
            for a in &raw.attempts {
                attempt.execute(params![
                    new,
                    a.number,
                    a.at,
                    a.duration_ms,
                    a.status,
                    a.error,
                    a.response
                ])?;
            }
            done.copied += 1;
        }
    }
    tx.commit()?;
    Ok(done)
}

/// Every destination's row.
pub(super) fn export_destinations(c: &Connection) -> rusqlite::Result<Vec<RawDestination>> {
    c.prepare_cached("SELECT id, paused, paused_reason FROM destinations ORDER BY id")?
        .query_map([], |r| {
            Ok(RawDestination {
                id: r.get(0)?,
                paused: r.get(1)?,
                paused_reason: r.get(2)?,
            })
        })?
        .collect()
}

/// Adds the destinations that are not stored.
pub(super) fn import_destinations(
    conn: &mut Connection,
    rows: &[RawDestination],
) -> rusqlite::Result<Imported> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut done = Imported::default();
    {
        let mut insert = tx.prepare_cached(
            "INSERT OR IGNORE INTO destinations (id, paused, paused_reason) VALUES (?1, ?2, ?3)",
        )?;
        for r in rows {
            if insert.execute(params![r.id, r.paused, r.paused_reason])? > 0 {
                done.copied += 1;
            } else {
                done.skipped += 1;
            }
        }
    }
    tx.commit()?;
    Ok(done)
}
