//! Retention on SQLite: one prune batch and one step of giving space back, each run by the
//! writer thread between two group commits (it owns the only write connection), so a batch
//! never waits for a lock and the writes queued behind it wait only for that one short
//! transaction.
//!
//! The file uses `auto_vacuum = INCREMENTAL` (set in `open_writer`): deleted pages go to the
//! freelist, and [`reclaim_step`] moves up to [`RECLAIM_PAGES`] of them to the end of the file
//! and cuts them off (`PRAGMA incremental_vacuum`), so the file shrinks after a large prune
//! instead of only ever growing. In WAL mode the file itself shrinks at the next checkpoint.

use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension as _, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::store::retention::{OldEnd, Pruned, cutoff_text};

/// Free pages given back per step at most (4 KiB pages: 1 MiB): one short transaction.
pub(super) const RECLAIM_PAGES: i64 = 256;

/// The work of one prune batch or vacuum step stops after this long (then commits), whatever
/// is left of its rows or pages: the writes queued behind it wait about this long, plus the
/// commit. Moving pages costs more near the end of a large vacuum and in a large file, so a
/// count alone would not bound it (docs/bench.md, "Retention").
pub(super) const STEP_BUDGET: Duration = Duration::from_millis(4);

/// Free pages left alone: SQLite reuses them for the next events without growing the file, so
/// giving back fewer than this would only make the file grow again.
pub(super) const KEEP_FREE_PAGES: i64 = 256;

/// Deletes up to `limit` of the oldest events received before `cutoff` that have no delivery
/// pending or failed, in one transaction: first every projection pointing at one of them gets
/// its own copy of its JSON, with the event's id and time; then the event's finished
/// deliveries and the event itself go. Stops early, with `more`, after [`STEP_BUDGET`].
pub(super) fn prune_batch(
    conn: &mut Connection,
    cutoff: OffsetDateTime,
    limit: usize,
) -> rusqlite::Result<Pruned> {
    let cutoff = cutoff_text(cutoff);
    let limit = limit.max(1);
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let started = Instant::now();
    let mut deleted = 0usize;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Oldest first, in `seq` order up to the last event received before the cutoff
    // ([`OldEnd`]: there is no index on `received_at`). An old event waiting
    // for a delivery is stepped over by every batch; issue 11 can index them if that ever adds
    // up.
    let Some(last) = last_before(&tx, &cutoff)? else {
        tx.commit()?;
        return Ok(Pruned {
            deleted: 0,
            more: false,
        });
    };
    let seqs: Vec<i64> = tx
        .prepare_cached(
            "SELECT e.seq FROM events e
             WHERE e.seq <= ?1 AND e.received_at < ?2
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.event_seq = e.seq AND d.state IN ('pending', 'failed'))
             ORDER BY e.seq LIMIT ?3",
        )?
        .query_map(params![last, cutoff, limit_sql], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    {
        let mut keep = tx.prepare_cached(
            "UPDATE projections
             SET body = substr(e.body, projections.body_start + 1, projections.body_len),
                 event_id = e.id, updated_at = e.received_at
             FROM events e
             WHERE e.seq = ?1 AND projections.event_seq = ?1 AND projections.body IS NULL",
        )?;
        let mut attempts = tx.prepare_cached(
            "DELETE FROM delivery_attempts
             WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq = ?1)",
        )?;
        let mut finished = tx.prepare_cached("DELETE FROM deliveries WHERE event_seq = ?1")?;
        let mut delete = tx.prepare_cached("DELETE FROM events WHERE seq = ?1")?;
        for seq in &seqs {
            keep.execute([seq])?;
            attempts.execute([seq])?;
            finished.execute([seq])?;
            deleted += delete.execute([seq])?;
            if started.elapsed() >= STEP_BUDGET {
                break;
            }
        }
    }
    tx.commit()?;
    Ok(Pruned {
        deleted: deleted as u64,
        more: deleted < seqs.len() || seqs.len() >= limit,
    })
}

/// The largest `seq` received before `cutoff` ([`OldEnd`]), or `None` when the oldest event is
/// not old.
pub(super) fn last_before(tx: &Connection, cutoff: &str) -> rusqlite::Result<Option<i64>> {
    // The first event at or after `seq`, with whether it is older than the cutoff.
    let mut at = tx.prepare_cached(
        "SELECT seq, received_at < ?2 FROM events WHERE seq >= ?1 ORDER BY seq LIMIT 1",
    )?;
    let mut probe = |seq: i64| -> rusqlite::Result<Option<(i64, bool)>> {
        at.query_row(params![seq, cutoff], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
    };
    let Some((oldest, true)) = probe(i64::MIN)? else {
        return Ok(None);
    };
    let newest: i64 = tx.query_row("SELECT max(seq) FROM events", [], |r| r.get(0))?;
    let mut search = OldEnd::new(oldest, newest);
    while let Some(seq) = search.next_probe() {
        let found = probe(seq)?;
        search.answer(seq, found);
    }
    Ok(Some(search.end()))
}

/// Gives up to [`RECLAIM_PAGES`] free pages back (as many as [`STEP_BUDGET`] allows) when more
/// than [`KEEP_FREE_PAGES`] are free.
/// True when, after it, more are worth giving back.
pub(super) fn reclaim_step(conn: &Connection) -> rusqlite::Result<bool> {
    let free = freelist(conn)?;
    if free <= KEEP_FREE_PAGES {
        return Ok(false);
    }
    let pages = (free - KEEP_FREE_PAGES).min(RECLAIM_PAGES);
    // Each step of the statement frees one page (`execute_batch` would stop after the first):
    // step it until done or out of time; the pages freed so far are committed either way.
    let started = Instant::now();
    let mut stmt = conn.prepare_cached(&format!("PRAGMA incremental_vacuum({pages})"))?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() && started.elapsed() < STEP_BUDGET {}
    drop(rows);
    Ok(freelist(conn)? > KEEP_FREE_PAGES)
}

fn freelist(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;

    /// A store file opened as hookgate opens it (WAL, incremental auto-vacuum, migrated).
    fn open(dir: &std::path::Path) -> Connection {
        super::super::open_writer(&dir.join("t.db"), Duration::from_secs(5)).unwrap()
    }

    /// Inserts an event received at `at` with a body of `len` bytes; returns its seq.
    fn insert(c: &Connection, id: &str, at: &str, len: usize) -> i64 {
        let body = format!(
            "{{\"identity\":{{\"id\":\"{id}\",\"pad\":\"{}\"}}}}",
            "x".repeat(len)
        );
        c.execute(
            "INSERT INTO events (id, source, kind, dedupe_key, received_at, headers, body)
             VALUES (?1, 'kratos', 'kratos', ?1, ?2, '{}', ?3)",
            params![id, at, body.as_bytes()],
        )
        .unwrap();
        c.last_insert_rowid()
    }

    fn ids(c: &Connection) -> Vec<String> {
        c.prepare("SELECT id FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    const NOW: OffsetDateTime = datetime!(2025-06-01 12:00:00 UTC);

    #[test]
    fn the_cutoff_never_takes_an_event_of_its_own_second() {
        let cutoff = cutoff_text(datetime!(2025-06-01 12:00:30.75 UTC));
        assert_eq!(cutoff, "2025-06-01T12:00:30");
        for (received_at, older) in [
            ("2025-06-01T12:00:29.999999Z", true),
            ("2025-06-01T12:00:29Z", true),
            ("2025-06-01T12:00:30Z", false),
            ("2025-06-01T12:00:30.5Z", false),
            ("2025-06-01T12:00:31Z", false),
        ] {
            assert_eq!(received_at < cutoff.as_str(), older, "{received_at}");
        }
        // Offsets other than UTC are turned into UTC first.
        assert_eq!(
            cutoff_text(datetime!(2025-06-01 14:00:30 +02:00)),
            "2025-06-01T12:00:30"
        );
    }

    #[test]
    fn only_events_older_than_the_cutoff_go_in_batches_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        for i in 0..5 {
            insert(
                &c,
                &format!("old-{i}"),
                &format!("2025-05-01T00:00:0{i}Z"),
                10,
            );
        }
        insert(&c, "new", "2025-06-01T12:00:00.5Z", 10);

        let first = prune_batch(&mut c, NOW, 3).unwrap();
        assert_eq!(
            first,
            Pruned {
                deleted: 3,
                more: true
            }
        );
        assert_eq!(ids(&c), ["old-3", "old-4", "new"]);
        let second = prune_batch(&mut c, NOW, 3).unwrap();
        assert_eq!(
            second,
            Pruned {
                deleted: 2,
                more: false
            }
        );
        assert_eq!(ids(&c), ["new"]);
        assert_eq!(prune_batch(&mut c, NOW, 3).unwrap().deleted, 0);
    }

    #[test]
    fn the_end_of_the_old_events_is_found_across_gaps_and_a_younger_event_is_never_taken() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        for i in 0..100 {
            insert(&c, &format!("old-{i:03}"), "2025-05-01T00:00:00Z", 10);
        }
        // Gaps in `seq` where the search probes.
        c.execute(
            "DELETE FROM events WHERE seq % 7 = 0 OR seq BETWEEN 40 AND 60",
            [],
        )
        .unwrap();
        // Stored out of received order: a young event, then an old one after it.
        insert(&c, "young", "2025-06-01T12:00:00Z", 10);
        insert(&c, "old-late", "2025-05-01T00:00:00Z", 10);
        insert(&c, "newest", "2025-06-01T12:00:01Z", 10);

        // A batch stops early past its time budget (a busy machine): go on while it says more.
        while prune_batch(&mut c, NOW, 1000).unwrap().more {}

        // Every old event before the young one went; the young ones stayed. The old one stored
        // after a younger one may go now or once the younger one is old too.
        let left = ids(&c);
        assert!(!left.iter().any(|i| i.starts_with("old-0")), "{left:?}");
        assert!(
            left == ["young", "old-late", "newest"] || left == ["young", "newest"],
            "{left:?}"
        );
        let mut deleted = 0;
        loop {
            let later = prune_batch(&mut c, datetime!(2025-06-01 12:00:01 UTC), 1000).unwrap();
            deleted += later.deleted;
            if !later.more {
                break;
            }
        }
        assert_eq!(deleted as usize, left.len() - 1);
        assert_eq!(ids(&c), ["newest"]);
    }

    #[test]
    fn events_with_a_pending_or_failed_delivery_are_never_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        let mut seqs = Vec::new();
        for name in ["pending", "failed", "delivered", "none"] {
            seqs.push(insert(&c, name, "2025-01-01T00:00:00Z", 10));
        }
        for (seq, state) in seqs.iter().zip(["pending", "failed", "delivered"]) {
            c.execute(
                "INSERT INTO deliveries (event_seq, destination, state, created_at) VALUES (?1, 'app', ?2, 0)",
                params![seq, state],
            )
            .unwrap();
        }
        // A second destination already delivered does not free the pending one.
        c.execute(
            "INSERT INTO deliveries (event_seq, destination, state, created_at) VALUES (?1, 'bus', 'delivered', 0)",
            [seqs[0]],
        )
        .unwrap();

        let pruned = prune_batch(&mut c, NOW, 100).unwrap();

        assert_eq!(pruned.deleted, 2);
        assert_eq!(ids(&c), ["pending", "failed"]);
        // The pruned event's finished delivery went with it; the others stay.
        let left: Vec<(i64, String)> = c
            .prepare("SELECT event_seq, state FROM deliveries ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            left,
            [
                (seqs[0], "pending".to_string()),
                (seqs[1], "failed".to_string()),
                (seqs[0], "delivered".to_string())
            ]
        );
        // Once delivered, the event goes at the next prune.
        c.execute("UPDATE deliveries SET state = 'delivered'", [])
            .unwrap();
        assert_eq!(prune_batch(&mut c, NOW, 100).unwrap().deleted, 2);
        assert!(ids(&c).is_empty());
    }

    #[test]
    fn a_projection_keeps_its_json_event_id_and_time_when_its_event_is_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        let seq = insert(&c, "ev-1", "2025-01-01T00:00:00Z", 10);
        let body: Vec<u8> = c
            .query_row("SELECT body FROM events WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .unwrap();
        // The identity object inside the body, as the Kratos parser points at it.
        let start = 12;
        let len = body.len() - start - 1;
        c.execute(
            "INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len)
             VALUES ('kratos/identities', 'ev-1', '', 'active', '{}', NULL, ?1, ?2, ?3)",
            params![seq, start as i64, len as i64],
        )
        .unwrap();
        let read = |c: &Connection| {
            c.query_row(super::super::read::PROJECTION_SELECT, [], |r| {
                Ok((
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, Vec<u8>>(6)?,
                ))
            })
            .unwrap()
        };
        let before = read(&c);
        assert_eq!(before.2, body[start..start + len]);

        assert_eq!(prune_batch(&mut c, NOW, 10).unwrap().deleted, 1);

        assert!(ids(&c).is_empty());
        assert_eq!(read(&c), before);
        assert_eq!(before.0, "ev-1");
        assert_eq!(before.1, "2025-01-01T00:00:00Z");
    }

    #[test]
    fn the_feed_position_never_goes_back_after_pruning_everything_even_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        let mut last = 0;
        for i in 0..20 {
            last = insert(&c, &format!("e{i}"), "2025-01-01T00:00:00Z", 10);
        }
        prune_batch(&mut c, NOW, 100).unwrap();
        assert!(ids(&c).is_empty());

        let next = insert(&c, "after-prune", "2025-06-01T12:00:00Z", 10);
        assert!(next > last, "{next} after {last}");
        prune_batch(&mut c, datetime!(2030-01-01 00:00 UTC), 100).unwrap();
        drop(c);

        let c = open(dir.path());
        let reopened = insert(&c, "after-reopen", "2025-06-01T12:00:00Z", 10);
        assert!(reopened > next, "{reopened} after {next}");
    }

    #[test]
    fn the_file_gives_the_space_of_pruned_events_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = open(dir.path());
        let mode: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, 2, "incremental auto-vacuum");
        c.execute_batch("BEGIN").unwrap();
        for i in 0..2000 {
            insert(&c, &format!("e{i}"), "2025-01-01T00:00:00Z", 1500);
        }
        for i in 0..100 {
            insert(&c, &format!("n{i}"), "2025-06-01T12:00:00Z", 1500);
        }
        c.execute_batch("COMMIT").unwrap();
        let pages =
            |c: &Connection| -> i64 { c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap() };
        let full = pages(&c);

        while prune_batch(&mut c, NOW, 500).unwrap().more {}
        let mut steps = 0;
        while reclaim_step(&c).unwrap() {
            steps += 1;
            assert!(steps < 2000, "reclaiming ends");
        }
        c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();

        let after = pages(&c);
        // What is left: the 100 events kept, and the few free pages kept for the next events.
        assert!(after * 3 < full, "{after} pages left of {full}");
        assert!(freelist(&c).unwrap() <= KEEP_FREE_PAGES);
        let file = std::fs::metadata(dir.path().join("t.db")).unwrap().len();
        assert!(
            file <= (after as u64) * 4096,
            "the file shrank to {file} bytes"
        );
        assert_eq!(ids(&c).len(), 100);
    }

    #[test]
    fn an_existing_file_is_converted_to_incremental_auto_vacuum_once_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        {
            let mut c = Connection::open(&path).unwrap();
            c.pragma_update(None, "journal_mode", "WAL").unwrap();
            super::super::schema::migrate(&mut c).unwrap();
            insert(&c, "kept", "2025-01-01T00:00:00Z", 10);
            let mode: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
            assert_eq!(mode, 0);
        }
        let c = open(dir.path());
        let mode: i64 = c.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, 2);
        assert_eq!(ids(&c), ["kept"]);
    }
}
