//! Reads: a small pool of read-only connections, used on the blocking thread pool, and the
//! queries of the admin API. In WAL mode readers see only committed data and never block the
//! writer.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use uuid::Uuid;

use crate::store::error::StoreError;
use crate::store::events::{EventPage, EventQuery, StoredEvent};
use crate::store::ids::{Cursor, EventId};
use crate::store::projections::{ProjectionKey, ProjectionRow};

/// Idle read connections kept open.
const READ_POOL_SIZE: usize = 4;

/// Read connections, opened on demand and kept idle up to [`READ_POOL_SIZE`].
pub(super) struct ReadPool {
    path: PathBuf,
    busy: Duration,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub(super) fn new(path: PathBuf, busy: Duration) -> Self {
        Self {
            path,
            busy,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on a pooled connection (opening one when none is idle).
    pub(super) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_WRITE
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )
                .map_err(unavailable)?;
                c.busy_timeout(self.busy).map_err(unavailable)?;
                c.pragma_update(None, "query_only", true)
                    .map_err(unavailable)?;
                c
            }
        };
        let result = f(&conn);
        if !matches!(result, Err(StoreError::Unavailable(_))) {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < READ_POOL_SIZE {
                idle.push(conn);
            }
        }
        result
    }
}

/// A failed read: the store cannot be read right now.
pub(super) fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

const EVENT_COLUMNS: &str =
    "seq, id, source, kind, event_type, dedupe_key, sender_id, received_at, headers, body";

fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        cursor: Cursor::new(r.get::<_, i64>(0)?.to_string()),
        id: parse_id(1, r.get(1)?)?,
        source: r.get(2)?,
        kind: r.get(3)?,
        event_type: r.get(4)?,
        dedupe_key: r.get(5)?,
        sender_id: r.get(6)?,
        received_at: r.get(7)?,
        headers: r.get(8)?,
        body: Bytes::from(r.get::<_, Vec<u8>>(9)?),
    })
}

fn parse_id(col: usize, s: String) -> rusqlite::Result<EventId> {
    Uuid::parse_str(&s).map(EventId).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The feed position a client's cursor names: a `seq` (one writer commits in `seq` order).
fn seq_of(cursor: &Cursor) -> Result<i64, StoreError> {
    match cursor.as_str().parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n),
        _ => Err(StoreError::InvalidCursor),
    }
}

pub(super) fn list_events(c: &Connection, q: &EventQuery) -> Result<EventPage, StoreError> {
    let after = q.after.as_ref().map(seq_of).transpose()?.unwrap_or(0);
    let limit = i64::from(q.limit.clamp(1, 1000));
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE seq > ?1 AND (?2 IS NULL OR source = ?2) AND (?3 IS NULL OR event_type = ?3)
             ORDER BY seq LIMIT ?4"
        ))
        .map_err(unavailable)?;
    let mut events = stmt
        .query_map(
            params![after, q.source, q.event_type, limit + 1],
            event_from_row,
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(unavailable)?;
    let more = events.len() as i64 > limit;
    events.truncate(usize::try_from(limit).unwrap_or(1000));
    let next = if more {
        events.last().map(|e| e.cursor.clone())
    } else {
        None
    };
    Ok(EventPage { events, next })
}

pub(super) fn get_event(c: &Connection, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
    let mut buf = Uuid::encode_buffer();
    let id = id.0.hyphenated().encode_lower(&mut buf);
    c.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))
        .and_then(|mut s| s.query_row(params![&*id], event_from_row).optional())
        .map_err(unavailable)
}

/// The event id, time and JSON of a projection row `p` (`LEFT JOIN events e ON e.seq =
/// p.event_seq`): from its event while that exists, else the row's own copy, made when the
/// event was pruned (see `prune.rs`).
pub(super) const PROJECTION_SOURCE: &str = "coalesce(p.event_id, e.id), \
     coalesce(p.updated_at, e.received_at), \
     coalesce(p.body, substr(e.body, p.body_start + 1, p.body_len))";

pub(super) fn projection(
    c: &Connection,
    key: &ProjectionKey<'_>,
) -> Result<Option<ProjectionRow>, StoreError> {
    c.prepare_cached(&format!(
        "SELECT p.scope, p.key, p.state, p.attrs, {PROJECTION_SOURCE}
         FROM projections p LEFT JOIN events e ON e.seq = p.event_seq
         WHERE p.view = ?1 AND p.key = ?2 AND (?3 IS NULL OR p.scope = ?3)
         ORDER BY p.ord DESC LIMIT 1"
    ))
    .and_then(|mut s| {
        s.query_row(params![key.view, key.key, key.scope], |r| {
            Ok(ProjectionRow {
                scope: r.get(0)?,
                key: r.get(1)?,
                state: r.get(2)?,
                attrs: r.get(3)?,
                event_id: parse_id(4, r.get(4)?)?,
                updated_at: r.get(5)?,
                body: Bytes::from(r.get::<_, Vec<u8>>(6)?),
            })
        })
        .optional()
    })
    .map_err(unavailable)
}
