//! Reads: the queries of the admin API, on connections of the pool.

use bytes::Bytes;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row};

use super::text::{dec, dec_opt, enc, enc_opt};
use crate::store::error::StoreError;
use crate::store::events::{
    EventPage, EventQuery, RECEIVED_ORDER_SLACK, SourceActivity, StoredEvent,
};
use crate::store::ids::{Cursor, EventId};
use crate::store::outbox::{AttemptRecord, DeliveryRow, DeliveryState};
use crate::store::projections::{
    ProjectionKey, ProjectionPage, ProjectionQuery, ProjectionRow, SEARCHABLE_ATTRS,
};
use time::OffsetDateTime;

use crate::store::retention::{OldEnd, cutoff_text};

/// A failed read: the store cannot be read right now.
pub(super) fn unavailable(e: tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(super::errors::describe(&e))
}

const EVENT_COLUMNS: &str =
    "xid, seq, id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body";

fn event_from_row(r: &Row) -> Result<StoredEvent, tokio_postgres::Error> {
    Ok(StoredEvent {
        cursor: feed_cursor(r.try_get(0)?, r.try_get(1)?),
        id: EventId(r.try_get(2)?),
        source: r.try_get(3)?,
        kind: r.try_get(4)?,
        event_type: dec_opt(r.try_get(5)?),
        dedupe_key: dec(r.try_get(6)?),
        sender_id: dec_opt(r.try_get(7)?),
        received_at: r.try_get(8)?,
        headers: r.try_get(9)?,
        body: Bytes::from(r.try_get::<_, Vec<u8>>(10)?),
    })
}

/// A feed position as text: `XID-SEQ` (`0-0`: the start, before every event).
fn feed_cursor(xid: i64, seq: i64) -> Cursor {
    Cursor::new(format!("{xid}-{seq}"))
}

/// The feed position a client's cursor names.
fn feed_position(cursor: &Cursor) -> Result<(i64, i64), StoreError> {
    let number = |s: &str| {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StoreError::InvalidCursor);
        }
        s.parse::<i64>().map_err(|_| StoreError::InvalidCursor)
    };
    let (xid, seq) = cursor
        .as_str()
        .split_once('-')
        .ok_or(StoreError::InvalidCursor)?;
    Ok((number(xid)?, number(seq)?))
}

/// The feed's horizon (mod.rs, "The feed"): every transaction below it that writes `events`
/// has finished. It is the smallest of the next transaction id to be given out (of this
/// statement's snapshot) and the ids of the transactions holding a lock on this database's
/// `events` table, that is writing it now (a writer takes the table's lock before its first
/// row gives it an id; one with the lock but no id yet gets one above the snapshot's next).
/// Other transactions on the server, however long, do not hold it back. Read in a statement
/// of its own, before the page's statement: a transaction that commits in between is in the
/// page's snapshot.
///
/// `backend_xid` is a 32-bit id: it is widened against the snapshot's 64-bit next id.
const HORIZON: &str = "WITH s AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next)
SELECT least(s.next, min(s.next - ((s.next % 4294967296) - a.backend_xid::text::bigint + 4294967296) % 4294967296))
FROM s
LEFT JOIN (pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid AND a.backend_xid IS NOT NULL)
  ON l.locktype = 'relation' AND l.relation = 'events'::regclass
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock')
GROUP BY s.next";

/// The feed's horizon: see [`HORIZON`].
pub(super) async fn feed_horizon(c: &Client) -> Result<i64, StoreError> {
    c.query_one(HORIZON, &[])
        .await
        .and_then(|row| row.try_get(0))
        .map_err(unavailable)
}

/// A page of the feed: events of transactions below `xmin` only (from [`feed_horizon`]), by
/// `(xid, seq)` (mod.rs, "The feed").
pub(super) async fn list_events(
    c: &Client,
    q: &EventQuery,
    xmin: i64,
) -> Result<EventPage, StoreError> {
    let (xid, seq) = q
        .after
        .as_ref()
        .map(feed_position)
        .transpose()?
        .unwrap_or((0, 0));
    let limit = i64::from(q.limit.clamp(1, 1000));
    let fetch = limit + 1;
    let event_type = enc_opt(q.event_type.as_deref());
    let (floor, ceiling) = time_bounds(c, q.from, q.to).await?;
    let (from, to) = (q.from.map(rfc3339), q.to.map(rfc3339));
    let rows = c
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events
                 WHERE (xid, seq) > ($1, $2)
                   AND xid < $6
                   AND ($3::text IS NULL OR source = $3)
                   AND ($4::text IS NULL OR event_type = $4)
                   AND ($7::text IS NULL
                        OR (source = 'hooks' AND dedupe_key > $7 || ':' AND dedupe_key < $7 || ';'))
                   AND seq > $8
                   AND ($9::bigint IS NULL OR seq <= $9)
                   AND ($10::text IS NULL OR received_at::timestamptz >= $10::timestamptz)
                   AND ($11::text IS NULL OR received_at::timestamptz <= $11::timestamptz)
                 ORDER BY xid, seq LIMIT $5"
            ),
            // A hook's events have dedupe keys `{hook id}:{key}` (`store::hooks`; hex and `:`
            // are never escaped by `enc`), which sort between `{id}:` and `{id};`.
            &[
                &xid,
                &seq,
                &q.source,
                &event_type,
                &fetch,
                &xmin,
                &q.hook,
                &floor,
                &ceiling,
                &from,
                &to,
            ],
        )
        .await
        .map_err(unavailable)?;
    let events = rows
        .iter()
        .map(event_from_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    // Always a cursor: past the last event returned, else where the caller already was.
    Ok(EventPage::from_read(events, limit, feed_cursor(xid, seq)))
}

/// The first event at or after a `seq`, and whether it was received before the cutoff.
const PROBE: &str = "SELECT seq, received_at < $2 FROM events WHERE seq >= $1 ORDER BY seq LIMIT 1";

/// The largest `seq` received before `cutoff` (text, [`cutoff_text`]; see [`OldEnd`]), or `None`
/// when the oldest event is not old.
pub(super) async fn last_before(
    c: &tokio_postgres::Client,
    cutoff: &str,
) -> Result<Option<i64>, StoreError> {
    let probe = |seq: i64| async move {
        c.query_opt(PROBE, &[&seq, &cutoff])
            .await
            .and_then(|row| row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose())
            .map_err(unavailable)
    };
    let Some((oldest, true)) = probe(i64::MIN).await? else {
        return Ok(None);
    };
    let newest: i64 = c
        .query_one("SELECT coalesce(max(seq), 0) FROM events", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(unavailable)?;
    let mut search = OldEnd::new(oldest, newest);
    while let Some(seq) = search.next_probe() {
        let found = probe(seq).await?;
        search.answer(seq, found);
    }
    Ok(Some(search.end()))
}

/// A time as PostgreSQL reads a `timestamptz` (RFC 3339).
fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The `seq` range that can hold events received from `from` to `to`, as SQLite's
/// (`sqlite/read.rs`, `time_bounds`): a floor (every event at or below it was received before
/// `from`) and a ceiling (every event above it after `to`; `i64::MIN` when none was received by
/// `to`), found by binary search on the primary key.
async fn time_bounds(
    c: &Client,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Result<(i64, Option<i64>), StoreError> {
    let floor = match from {
        Some(from) => last_before(c, &cutoff_text(from - RECEIVED_ORDER_SLACK))
            .await?
            .unwrap_or(i64::MIN),
        None => i64::MIN,
    };
    let ceiling = match to {
        // The cutoff is to the second: one more covers the rest of `to`'s second.
        Some(to) => Some(
            last_before(
                c,
                &cutoff_text(to + RECEIVED_ORDER_SLACK + std::time::Duration::from_secs(1)),
            )
            .await?
            .unwrap_or(i64::MIN),
        ),
        None => None,
    };
    Ok((floor, ceiling))
}

/// Each source's events received at or after `since`, and its newest one's time.
pub(super) async fn source_activity(
    c: &Client,
    since: OffsetDateTime,
) -> Result<Vec<SourceActivity>, StoreError> {
    let (floor, _) = time_bounds(c, Some(since), None).await?;
    let rows = c
        .query(
            "SELECT a.source, a.n, e.received_at FROM
               (SELECT source, count(*) AS n, max(seq) AS newest FROM events
                WHERE seq > $1 AND received_at::timestamptz >= $2::text::timestamptz
                GROUP BY source) a
             JOIN events e ON e.seq = a.newest
             ORDER BY a.source",
            &[&floor, &rfc3339(since)],
        )
        .await
        .map_err(unavailable)?;
    rows.iter()
        .map(|r| {
            Ok(SourceActivity {
                source: r.try_get(0)?,
                events: u64::try_from(r.try_get::<_, i64>(1)?).unwrap_or(0),
                last_received_at: r.try_get(2)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(unavailable)
}

pub(super) async fn get_event(c: &Client, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
    c.query_opt(
        &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = $1"),
        &[&id.0],
    )
    .await
    .map_err(unavailable)?
    .as_ref()
    .map(event_from_row)
    .transpose()
    .map_err(unavailable)
}

/// A projection row and the event that set it, or the row's own copy once the event is pruned
/// (a `LEFT JOIN`: a projection outlives its event). As `sqlite/read.rs`.
const PROJECTION_SELECT: &str = "SELECT p.scope, p.key, p.state, p.attrs, \
     coalesce(p.event_id, e.id), \
     coalesce(p.updated_at, e.received_at), \
     coalesce(p.body, substring(e.body FROM p.body_start + 1 FOR p.body_len)), \
     p.history \
     FROM projections p LEFT JOIN events e ON e.seq = p.event_seq";

fn projection_from_row(r: &Row) -> Result<ProjectionRow, tokio_postgres::Error> {
    Ok(ProjectionRow {
        scope: dec(r.try_get(0)?),
        key: dec(r.try_get(1)?),
        state: dec_opt(r.try_get(2)?),
        attrs: r.try_get(3)?,
        event_id: EventId(r.try_get(4)?),
        updated_at: r.try_get(5)?,
        body: Bytes::from(r.try_get::<_, Vec<u8>>(6)?),
        history: history(r, 7)?,
    })
}

/// A row's history (`uuid[]`; none before a write set it).
pub(super) fn history(r: &Row, i: usize) -> Result<Vec<EventId>, tokio_postgres::Error> {
    Ok(r.try_get::<_, Option<Vec<uuid::Uuid>>>(i)?
        .unwrap_or_default()
        .into_iter()
        .map(EventId)
        .collect())
}

pub(super) async fn projection(
    c: &Client,
    key: &ProjectionKey<'_>,
) -> Result<Option<ProjectionRow>, StoreError> {
    let (k, scope) = (enc(key.key), enc_opt(key.scope));
    // NULLS LAST: as SQLite orders a descending NULL.
    c.query_opt(
        &format!(
            "{PROJECTION_SELECT}
             WHERE p.view = $1 AND p.key = $2 AND ($3::text IS NULL OR p.scope = $3)
             ORDER BY p.ord DESC NULLS LAST LIMIT 1"
        ),
        &[&key.view, &k, &scope],
    )
    .await
    .map_err(unavailable)?
    .as_ref()
    .map(projection_from_row)
    .transpose()
    .map_err(unavailable)
}

/// A page of one view, by key then scope.
pub(super) async fn list_projections(
    c: &Client,
    q: &ProjectionQuery,
) -> Result<ProjectionPage, StoreError> {
    let after = q
        .after
        .as_ref()
        .map(Cursor::position)
        .transpose()?
        .map(|(k, s)| (enc(&k).into_owned(), enc(&s).into_owned()));
    let state = enc_opt(q.state.as_deref());
    let scope = enc_opt(q.scope.as_deref());
    let limit = i64::from(q.limit.clamp(1, 1000));
    let fetch = limit + 1;
    let mut sql = format!("{PROJECTION_SELECT} WHERE p.view = $1");
    let nul_free: String;
    let mut args: Vec<&(dyn ToSql + Sync)> = vec![&q.view];
    if let Some(state) = &state {
        args.push(state);
        sql.push_str(&format!(" AND p.state = ${}", args.len()));
    }
    if let Some(scope) = &scope {
        args.push(scope);
        sql.push_str(&format!(" AND p.scope = ${}", args.len()));
    }
    if let Some((name, value)) = &q.attr {
        // Only names from the fixed list go into the SQL text.
        if !SEARCHABLE_ATTRS.contains(name) {
            return Err(StoreError::Unavailable(format!(
                "the attribute {name} is not indexed for search"
            )));
        }
        // As the index (migration 0002): a NUL, which PostgreSQL text cannot hold, as U+FFFD.
        nul_free = value.replace('\0', "\u{fffd}");
        args.push(&nul_free);
        // The index's predicate (migration 0003), repeated so that the planner can use it.
        sql.push_str(&format!(
            " AND p.attrs LIKE '%\"{name}\":%' \
              AND ((replace(p.attrs, '\\u0000', '\\ufffd')::jsonb) ->> '{name}') = ${}",
            args.len()
        ));
    }
    if let Some((key, scope)) = &after {
        args.push(key);
        args.push(scope);
        sql.push_str(&format!(
            " AND (p.key, p.scope) > (${}, ${})",
            args.len() - 1,
            args.len()
        ));
    }
    args.push(&fetch);
    sql.push_str(&format!(" ORDER BY p.key, p.scope LIMIT ${}", args.len()));
    let rows = c
        .query(&sql, &args)
        .await
        .map_err(unavailable)?
        .iter()
        .map(projection_from_row)
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    Ok(ProjectionPage::from_read(rows, limit))
}

/// The events stored and the bytes the store's tables take, indexes and TOAST included.
pub(super) async fn size(c: &Client) -> Result<(u64, u64), StoreError> {
    let row = c
        .query_one(
            "SELECT (SELECT count(*) FROM events), \
             pg_total_relation_size('events') + pg_total_relation_size('projections') \
             + pg_total_relation_size('deliveries')",
            &[],
        )
        .await
        .map_err(unavailable)?;
    let events: i64 = row.try_get(0).map_err(unavailable)?;
    let bytes: i64 = row.try_get(1).map_err(unavailable)?;
    Ok((
        u64::try_from(events).unwrap_or(0),
        u64::try_from(bytes).unwrap_or(0),
    ))
}

/// The columns [`delivery_from_row`] reads, of `deliveries d JOIN events e`.
pub(super) const DELIVERY_COLUMNS: &str = "d.id, e.id, d.destination, d.state, d.attempts, \
    d.next_attempt_at, d.delivered_at, d.last_error, d.created_at";

/// A delivery as the admin API shows it, from [`DELIVERY_COLUMNS`].
pub(super) fn delivery_from_row(
    r: &tokio_postgres::Row,
) -> Result<DeliveryRow, tokio_postgres::Error> {
    let state: String = r.try_get(3)?;
    Ok(DeliveryRow {
        id: r.try_get(0)?,
        event_id: EventId(r.try_get(1)?),
        destination: r.try_get(2)?,
        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Pending),
        attempts_made: u32::try_from(r.try_get::<_, i32>(4)?).unwrap_or(0),
        next_attempt_at: r.try_get(5)?,
        delivered_at: r.try_get(6)?,
        last_error: r.try_get(7)?,
        created_at: r.try_get(8)?,
    })
}

/// A delivery's attempts, in order.
pub(super) async fn attempts_of(
    c: &tokio_postgres::Client,
    id: i64,
) -> Result<Vec<AttemptRecord>, tokio_postgres::Error> {
    c.query(
        "SELECT number, at, duration_ms, status, error, response
         FROM delivery_attempts WHERE delivery_id = $1 ORDER BY number",
        &[&id],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(AttemptRecord {
            number: u32::try_from(r.try_get::<_, i32>(0)?).unwrap_or(0),
            at: r.try_get(1)?,
            duration_ms: r.try_get(2)?,
            status: r
                .try_get::<_, Option<i32>>(3)?
                .and_then(|s| u16::try_from(s).ok()),
            error: r.try_get(4)?,
            response: r.try_get(5)?,
        })
    })
    .collect()
}
