//! `copy-store` on SQLite: imports run on the writer's connection (`Msg::Exclusive`), between
//! two group commits; exports on the read pool.

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use uuid::Uuid;

use super::read::parse_id;
use crate::store::bulk::{Imported, ProjectionPosition, RawProjection};
use crate::store::events::StoredEvent;

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
                coalesce(p.body, substr(e.body, p.body_start + 1, p.body_len))
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
                                      body_len, body, event_id, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (view, key, scope) DO UPDATE SET state = excluded.state,
               attrs = excluded.attrs, ord = excluded.ord, event_seq = excluded.event_seq,
               body_start = excluded.body_start, body_len = excluded.body_len,
               body = excluded.body, event_id = excluded.event_id, updated_at = excluded.updated_at
             WHERE (excluded.ord IS NULL OR projections.ord IS NULL OR excluded.ord >= projections.ord)
               AND (projections.state IS NOT excluded.state OR projections.attrs IS NOT excluded.attrs
                 OR projections.ord IS NOT excluded.ord OR projections.event_seq IS NOT excluded.event_seq
                 OR projections.body_start IS NOT excluded.body_start
                 OR projections.body_len IS NOT excluded.body_len
                 OR projections.body IS NOT excluded.body OR projections.event_id IS NOT excluded.event_id
                 OR projections.updated_at IS NOT excluded.updated_at)",
        )?;
        for row in rows {
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
