//! Reads: a small pool of read-only connections, used on the blocking thread pool, and the
//! queries of the admin API. In WAL mode readers see only committed data and never block the
//! writer.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use time::OffsetDateTime;
use uuid::Uuid;

use super::prune::last_before;
use crate::store::error::StoreError;
use crate::store::events::{
    EventPage, EventQuery, RECEIVED_ORDER_SLACK, SourceActivity, StoredEvent,
};
use crate::store::ids::{Cursor, EventId};
use crate::store::outbox::{AttemptRecord, DeliveryRow, DeliveryState};
use crate::store::projections::{
    ProjectionKey, ProjectionPage, ProjectionQuery, ProjectionRow, SEARCHABLE_ATTRS,
    history_from_bytes,
};
use crate::store::retention::cutoff_text;

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
        cursor: seq_cursor(r.get(0)?),
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

pub(super) fn parse_id(col: usize, s: String) -> rusqlite::Result<EventId> {
    Uuid::parse_str(&s).map(EventId).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(col, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// The cursor of a feed position (`0`: the start, before every event).
fn seq_cursor(seq: i64) -> Cursor {
    Cursor::new(seq.to_string())
}

/// The feed position a client's cursor names: a `seq` (one writer commits in `seq` order).
fn seq_of(cursor: &Cursor) -> Result<i64, StoreError> {
    let text = cursor.as_str();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(StoreError::InvalidCursor);
    }
    text.parse::<i64>().map_err(|_| StoreError::InvalidCursor)
}

pub(super) fn list_events(c: &Connection, q: &EventQuery) -> Result<EventPage, StoreError> {
    let given = q.after.as_ref().map(seq_of).transpose()?.unwrap_or(0);
    let limit = i64::from(q.limit.clamp(1, 1000));
    let (floor, ceiling) = time_bounds(c, q.from, q.to).map_err(unavailable)?;
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events
             WHERE seq > ?1 AND (?2 IS NULL OR source = ?2) AND (?3 IS NULL OR event_type = ?3)
               AND (?5 IS NULL OR (source = 'hooks' AND dedupe_key > ?5 || ':' AND dedupe_key < ?5 || ';'))
               AND (?6 IS NULL OR seq <= ?6)
               AND (?7 IS NULL OR unixepoch(received_at, 'subsec') >= ?7)
               AND (?8 IS NULL OR unixepoch(received_at, 'subsec') <= ?8)
             ORDER BY seq LIMIT ?4"
        ))
        .map_err(unavailable)?;
    // A hook's events have dedupe keys `{hook id}:{key}` (`store::hooks`): those sort between
    // `{id}:` and `{id};`.
    let events = stmt
        .query_map(
            params![
                given.max(floor),
                q.source,
                q.event_type,
                limit + 1,
                q.hook,
                ceiling,
                q.from.map(|t| epoch_seconds(t, false)),
                q.to.map(|t| epoch_seconds(t, true))
            ],
            event_from_row,
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(unavailable)?;
    // Always a cursor: past the last event returned, else where the caller already was.
    Ok(EventPage::from_read(events, limit, seq_cursor(given)))
}

/// A time as `unixepoch(received_at, 'subsec')` gives it: SQLite keeps times to the
/// millisecond and divides those by 1000.0, so the same arithmetic makes equal times compare
/// equal (nanoseconds divided by 1e9 can differ in the last bit). A bound of a range is taken
/// outward to the millisecond (`up` for an upper bound), since `received_at` has nanoseconds
/// SQLite rounds: every event of the range is in, and at most one millisecond more.
pub(super) fn epoch_seconds(t: OffsetDateTime, up: bool) -> f64 {
    let nanos = t.unix_timestamp_nanos();
    let ms = if up {
        nanos.div_euclid(1_000_000) + i128::from(nanos.rem_euclid(1_000_000) != 0)
    } else {
        nanos.div_euclid(1_000_000)
    };
    i64::try_from(ms).unwrap_or(i64::MAX) as f64 / 1000.0
}

/// The `seq` range that can hold events received from `from` to `to`: every event at or below
/// the floor was received before `from`, every event above the ceiling after `to` (with
/// [`RECEIVED_ORDER_SLACK`] between commit order and time order). Found by binary search on the
/// primary key, as retention finds its end, so a time filter does not read the feed from its
/// start. A ceiling of `i64::MIN`: nothing was received by `to`.
fn time_bounds(
    c: &Connection,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> rusqlite::Result<(i64, Option<i64>)> {
    let floor = match from {
        Some(from) => last_before(c, &cutoff_text(from - RECEIVED_ORDER_SLACK))?.unwrap_or(0),
        None => 0,
    };
    let ceiling = match to {
        // The cutoff is to the second: one more covers the rest of `to`'s second.
        Some(to) => Some(
            last_before(
                c,
                &cutoff_text(to + RECEIVED_ORDER_SLACK + std::time::Duration::from_secs(1)),
            )?
            .unwrap_or(i64::MIN),
        ),
        None => None,
    };
    Ok((floor, ceiling))
}

/// Each source's events received at or after `since`, and its newest one's time.
pub(super) fn source_activity(
    c: &Connection,
    since: OffsetDateTime,
) -> Result<Vec<SourceActivity>, StoreError> {
    let (floor, _) = time_bounds(c, Some(since), None).map_err(unavailable)?;
    c.prepare_cached(
        "SELECT a.source, a.n, e.received_at FROM
           (SELECT source, count(*) AS n, max(seq) AS newest FROM events
            WHERE seq > ?1 AND unixepoch(received_at, 'subsec') >= ?2
            GROUP BY source) a
         JOIN events e ON e.seq = a.newest
         ORDER BY a.source",
    )
    .and_then(|mut s| {
        s.query_map(params![floor, epoch_seconds(since, false)], |r| {
            Ok(SourceActivity {
                source: r.get(0)?,
                events: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                last_received_at: r.get(2)?,
            })
        })?
        .collect()
    })
    .map_err(unavailable)
}

pub(super) fn get_event(c: &Connection, id: EventId) -> Result<Option<StoredEvent>, StoreError> {
    let mut buf = Uuid::encode_buffer();
    let id = id.0.hyphenated().encode_lower(&mut buf);
    c.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))
        .and_then(|mut s| s.query_row(params![&*id], event_from_row).optional())
        .map_err(unavailable)
}

/// What a projection row is read as: the row, and the event that set it (its id, when it was
/// received, and the thing's JSON), or the row's own copy of those once the event is pruned.
/// A `LEFT JOIN`: a projection outlives its event.
pub(super) const PROJECTION_SELECT: &str = "SELECT p.scope, p.key, p.state, p.attrs, \
     coalesce(p.event_id, e.id), \
     coalesce(p.updated_at, e.received_at), \
     coalesce(p.body, substr(e.body, p.body_start + 1, p.body_len)), \
     p.history \
     FROM projections p LEFT JOIN events e ON e.seq = p.event_seq";

fn projection_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ProjectionRow> {
    Ok(ProjectionRow {
        scope: r.get(0)?,
        key: r.get(1)?,
        state: r.get(2)?,
        attrs: r.get(3)?,
        event_id: parse_id(4, r.get(4)?)?,
        updated_at: r.get(5)?,
        body: Bytes::from(r.get::<_, Vec<u8>>(6)?),
        history: r
            .get::<_, Option<Vec<u8>>>(7)?
            .map(|b| history_from_bytes(&b))
            .unwrap_or_default(),
    })
}

pub(super) fn projection(
    c: &Connection,
    key: &ProjectionKey<'_>,
) -> Result<Option<ProjectionRow>, StoreError> {
    c.prepare_cached(&format!(
        "{PROJECTION_SELECT}
         WHERE p.view = ?1 AND p.key = ?2 AND (?3 IS NULL OR p.scope = ?3)
         ORDER BY p.ord DESC LIMIT 1"
    ))
    .and_then(|mut s| {
        s.query_row(params![key.view, key.key, key.scope], projection_from_row)
            .optional()
    })
    .map_err(unavailable)
}

/// Named parameters of a statement, by name.
type Args<'q> = Vec<(&'static str, &'q dyn rusqlite::ToSql)>;

/// The statement of a page of one view. The SQL names only the filters given, and the index
/// that serves them (migration 0005: by state, by scope, by each searchable attribute, by the
/// expression its index is built on), each ending in the list order. Named, because without
/// statistics (`ANALYZE`) SQLite prefers the primary key, which orders the rows for free but
/// reads the whole view to filter them.
fn list_statement<'q>(
    q: &'q ProjectionQuery,
    after: Option<&'q (String, String)>,
    fetch: &'q i64,
) -> Result<(String, Args<'q>), StoreError> {
    // Only names from the fixed list go into the SQL text.
    if let Some((name, _)) = &q.attr {
        if !SEARCHABLE_ATTRS.contains(name) {
            return Err(StoreError::Unavailable(format!(
                "the attribute {name} is not indexed for search"
            )));
        }
    }
    let index = match (&q.attr, &q.scope, &q.state) {
        (Some((name, _)), _, _) => format!("projections_by_{name}"),
        (None, Some(_), _) => "projections_by_scope".into(),
        (None, None, Some(_)) => "projections_by_state".into(),
        (None, None, None) => String::new(),
    };
    let from = if index.is_empty() {
        PROJECTION_SELECT.to_string()
    } else {
        PROJECTION_SELECT.replace(
            "projections p",
            &format!("projections p INDEXED BY {index}"),
        )
    };
    let mut sql = format!("{from} WHERE p.view = :view");
    let mut args: Args<'q> = vec![(":view", &q.view)];
    if let Some(state) = &q.state {
        sql.push_str(" AND p.state = :state");
        args.push((":state", state));
    }
    if let Some(scope) = &q.scope {
        sql.push_str(" AND p.scope = :scope");
        args.push((":scope", scope));
    }
    if let Some((name, value)) = &q.attr {
        sql.push_str(&format!(" AND json_extract(p.attrs, '$.{name}') = :attr"));
        args.push((":attr", value));
    }
    if let Some((key, scope)) = after {
        sql.push_str(" AND (p.key, p.scope) > (:key, :after_scope)");
        args.push((":key", key));
        args.push((":after_scope", scope));
    }
    sql.push_str(" ORDER BY p.key, p.scope LIMIT :limit");
    args.push((":limit", fetch));
    Ok((sql, args))
}

/// A page of one view, by key then scope.
pub(super) fn list_projections(
    c: &Connection,
    q: &ProjectionQuery,
) -> Result<ProjectionPage, StoreError> {
    let after = q.after.as_ref().map(Cursor::position).transpose()?;
    let limit = i64::from(q.limit.clamp(1, 1000));
    let fetch = limit + 1;
    let (sql, args) = list_statement(q, after.as_ref(), &fetch)?;
    let rows = c
        .prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(args.as_slice(), projection_from_row)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        })
        .map_err(unavailable)?;
    Ok(ProjectionPage::from_read(rows, limit))
}

/// The columns [`delivery_from_row`] reads, of `deliveries d JOIN events e`. A fresh delivery
/// (`next_attempt_at` NULL) is due since it was made.
pub(super) const DELIVERY_COLUMNS: &str = "d.id, e.id, d.destination, d.state, d.attempts, \
     coalesce(d.next_attempt_at, CASE WHEN d.state = 'pending' THEN d.created_at END), \
     d.delivered_at, d.last_error, d.created_at";

/// A delivery as the admin API shows it, from [`DELIVERY_COLUMNS`].
pub(super) fn delivery_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    let state: String = r.get(3)?;
    Ok(DeliveryRow {
        id: r.get(0)?,
        event_id: parse_id(1, r.get::<_, String>(1)?)?,
        destination: r.get(2)?,
        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Pending),
        attempts_made: u32::try_from(r.get::<_, i64>(4)?).unwrap_or(0),
        next_attempt_at: r.get(5)?,
        delivered_at: r.get(6)?,
        last_error: r.get(7)?,
        created_at: r.get(8)?,
    })
}

/// A delivery's attempts, in order.
pub(super) fn attempts_of(c: &Connection, id: i64) -> rusqlite::Result<Vec<AttemptRecord>> {
    c.prepare_cached(
        "SELECT number, at, duration_ms, status, error, response FROM delivery_attempts
         WHERE delivery_id = ?1 ORDER BY number",
    )?
    .query_map([id], |r| {
        Ok(AttemptRecord {
            number: u32::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
            at: r.get(1)?,
            duration_ms: r.get(2)?,
            status: r
                .get::<_, Option<i64>>(3)?
                .and_then(|s| u16::try_from(s).ok()),
            error: r.get(4)?,
            response: r.get(5)?,
        })
    })?
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::schema;

    /// A store with `n` connections in two wallets and two states, and two identities.
    fn store(n: usize) -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        schema::migrate(&mut c).unwrap();
        c.execute(
            "INSERT INTO events (seq, id, source, kind, dedupe_key, received_at, headers, body)
             VALUES (1, '0190f0a0-0000-7000-8000-000000000000', 's', 'k', 'd', 't', '{}', x'7b7d')",
            [],
        )
        .unwrap();
        for i in 0..n {
            c.execute(
                "INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len) VALUES ('identus/connections', ?1, ?2, ?3, '{}', 1, 1, 0, 2)",
                params![
                    format!("c-{i:04}"),
                    ["w-1", "w-2"][i % 2],
                    ["Done", "Sent"][i % 3 % 2]
                ],
            )
            .unwrap();
        }
        for (key, email) in [("i-1", "ann@x.io"), ("i-2", "bo@x.io")] {
            c.execute(
                "INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len) VALUES ('kratos/identities', ?1, '', 'active', json_object('email', ?2), NULL, 1, 0, 2)",
                params![key, email],
            )
            .unwrap();
        }
        c
    }

    fn query(view: &'static str) -> ProjectionQuery {
        ProjectionQuery {
            view,
            state: None,
            scope: None,
            attr: None,
            after: None,
            limit: 1000,
        }
    }

    fn keys(page: &ProjectionPage) -> Vec<(String, String)> {
        page.rows
            .iter()
            .map(|r| (r.key.clone(), r.scope.clone()))
            .collect()
    }

    #[test]
    fn pages_follow_the_key_order_and_filters_combine() {
        let c = store(30);
        let all = list_projections(&c, &query("identus/connections")).unwrap();
        assert_eq!(all.rows.len(), 30);
        assert!(all.next.is_none());
        let mut paged = Vec::new();
        let mut q = ProjectionQuery {
            limit: 7,
            ..query("identus/connections")
        };
        loop {
            let page = list_projections(&c, &q).unwrap();
            assert!(page.rows.len() <= 7);
            paged.extend(keys(&page));
            match page.next {
                Some(next) => q.after = Some(next),
                None => break,
            }
        }
        assert_eq!(paged, keys(&all));
        let filtered = list_projections(
            &c,
            &ProjectionQuery {
                state: Some("Done".into()),
                scope: Some("w-2".into()),
                ..query("identus/connections")
            },
        )
        .unwrap();
        let want: Vec<_> = keys(&all)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == 1 && i % 3 % 2 == 0)
            .map(|(_, k)| k)
            .collect();
        assert_eq!(keys(&filtered), want);
        let by_email = list_projections(
            &c,
            &ProjectionQuery {
                attr: Some(("email", "bo@x.io".into())),
                ..query("kratos/identities")
            },
        )
        .unwrap();
        assert_eq!(keys(&by_email), [("i-2".to_string(), String::new())]);
        for bad in ["", "!!", "eyJ4Ijox", "W10"] {
            let q = ProjectionQuery {
                after: Some(Cursor::new(bad)),
                ..query("kratos/identities")
            };
            assert!(
                matches!(list_projections(&c, &q), Err(StoreError::InvalidCursor)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn every_filter_reads_through_an_index_in_list_order() {
        let c = store(10);
        let after = ("c-0003".to_string(), "w-2".to_string());
        let fetch = 10;
        for (q, index) in [
            // The UNIQUE (view, key, scope) of migration 0004.
            (
                query("identus/connections"),
                "sqlite_autoindex_projections_1",
            ),
            (
                ProjectionQuery {
                    state: Some("Done".into()),
                    ..query("identus/connections")
                },
                "projections_by_state",
            ),
            (
                ProjectionQuery {
                    scope: Some("w-1".into()),
                    ..query("identus/connections")
                },
                "projections_by_scope",
            ),
            (
                ProjectionQuery {
                    attr: Some(("email", "ann@x.io".into())),
                    ..query("kratos/identities")
                },
                "projections_by_email",
            ),
        ] {
            for after in [None, Some(&after)] {
                let (sql, args) = list_statement(&q, after, &fetch).unwrap();
                let mut stmt = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let plan: Vec<String> = stmt
                    .query_map(args.as_slice(), |r| r.get(3))
                    .unwrap()
                    .collect::<rusqlite::Result<_>>()
                    .unwrap();
                let plan = plan.join("; ");
                assert!(
                    plan.contains(&format!("SEARCH p USING {index}"))
                        || plan.contains(&format!("SEARCH p USING INDEX {index}"))
                        || plan.contains(&format!("SEARCH p USING COVERING INDEX {index}")),
                    "{sql}: {plan}"
                );
                assert!(!plan.contains("TEMP B-TREE"), "{sql}: {plan}");
            }
        }
    }
}
