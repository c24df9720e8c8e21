//! The schema: migrations as SQL files (`migrations/NNNN_*.sql`), applied in order at open.
//!
//! `PRAGMA user_version` holds the number of the last migration applied. Each migration runs in
//! its own `BEGIN IMMEDIATE` transaction that reads the version again first, so two processes
//! opening one new file at the same moment apply each migration once.

use rusqlite::{Connection, TransactionBehavior};

/// Every migration, by number, in order. A new one is a new file and a new line here.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_events.sql")),
    (2, include_str!("migrations/0002_probe.sql")),
    (3, include_str!("migrations/0003_ids_and_projections.sql")),
    (4, include_str!("migrations/0004_retention.sql")),
    (5, include_str!("migrations/0005_projection_search.sql")),
    (6, include_str!("migrations/0006_partial_email_index.sql")),
    (7, include_str!("migrations/0007_prune_by_seq.sql")),
    (8, include_str!("migrations/0008_delivery.sql")),
    (9, include_str!("migrations/0009_fresh_deliveries.sql")),
    (10, include_str!("migrations/0010_hooks.sql")),
    (11, include_str!("migrations/0011_trace_context.sql")),
];

/// The schema version this build writes.
pub const VERSION: i64 = 11;

/// Applies every migration the database has not had.
///
/// # Errors
/// When a migration fails (it is rolled back) or the database is newer than this build.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    for (version, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current > VERSION {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!(
                    "the database has schema version {current}, newer than this hookgate's {VERSION}; run a newer hookgate"
                )
                .into(),
            ));
        }
        if current < *version {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order_and_end_at_the_version() {
        for pair in MIGRATIONS.windows(2) {
            assert_eq!(pair[0].0 + 1, pair[1].0, "{} then {}", pair[0].0, pair[1].0);
        }
        assert_eq!(MIGRATIONS.last().map(|m| m.0), Some(VERSION));
    }

    #[test]
    fn rows_of_the_old_projection_tables_move_to_the_shared_one() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (_, sql) in &MIGRATIONS[..2] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO events (seq, id, source, kind, dedupe_key, received_at, headers, body)
               VALUES (1, 'a', 'k', 'kratos', 'd1', 't1', '{}', x'7b7d'),
                      (2, 'b', 'i', 'identus', 'd2', 't2', '{}', x'7b7d');
             INSERT INTO kratos_identities VALUES ('id-1', 1, 'active', 'default', 't1', 0, 2);
             INSERT INTO identus_records VALUES ('connections', 'c-1', 'w-1', 'Done', '2024-01-01T00:00:00Z', 5, 2, 0, 2);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        type Row = (String, String, String, Option<String>, String, Option<i64>);
        let rows: Vec<Row> = conn
            .prepare("SELECT view, key, scope, state, attrs, ord FROM projections ORDER BY view")
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (
                    "identus/connections".into(),
                    "c-1".into(),
                    "w-1".into(),
                    Some("Done".into()),
                    r#"{"ts":"2024-01-01T00:00:00Z"}"#.into(),
                    Some(5)
                ),
                (
                    "kratos/identities".into(),
                    "id-1".into(),
                    "".into(),
                    Some("active".into()),
                    r#"{"schema_id":"default"}"#.into(),
                    None
                ),
            ]
        );
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        // Applying again changes nothing.
        migrate(&mut conn).unwrap();
    }

    #[test]
    fn identities_stored_before_the_search_get_their_email() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (n, sql) in MIGRATIONS.iter().take_while(|(n, _)| *n <= 3) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", n).unwrap();
        }
        let bodies = [
            r#"{"identity":{"id":"a","schema_id":"s","traits":{"email":"Ann@Example.COM"}}}"#,
            r#"{"identity":{"id":"b","traits":{"phone":"1"},"verifiable_addresses":[{"value":"1","via":"sms"},{"value":"Bo@X.io","via":"email"}]}}"#,
            r#"{"identity":{"id":"c","traits":{},"recovery_addresses":[{"value":"C@x.io","via":"email"}]}}"#,
            r#"{"identity":{"id":"d","traits":{"email":5}}}"#,
        ];
        for (i, body) in bodies.iter().enumerate() {
            let start = body.find(":{").unwrap() + 1;
            let len = body.len() - start - 1;
            conn.execute(
                "INSERT INTO events (seq, id, source, kind, dedupe_key, received_at, headers, body)
                 VALUES (?1, ?1, 'k', 'kratos', ?1, 't', '{}', CAST(?2 AS BLOB))",
                rusqlite::params![i as i64 + 1, body],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len)
                 VALUES ('kratos/identities', ?1, '', NULL, ?2, NULL, ?3, ?4, ?5)",
                rusqlite::params![
                    ["a", "b", "c", "d"][i],
                    if i == 0 { r#"{"schema_id":"s"}"# } else { "{}" },
                    i as i64 + 1,
                    start as i64,
                    len as i64
                ],
            )
            .unwrap();
        }
        migrate(&mut conn).unwrap();
        let attrs: Vec<String> = conn
            .prepare("SELECT attrs FROM projections ORDER BY key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(
            attrs,
            [
                r#"{"schema_id":"s","email":"ann@example.com"}"#,
                r#"{"email":"bo@x.io"}"#,
                r#"{"email":"c@x.io"}"#,
                "{}",
            ]
        );
    }

    #[test]
    fn only_projections_with_an_email_enter_the_email_index_and_the_search_still_finds_them() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (n, sql) in MIGRATIONS.iter().take_while(|(n, _)| *n <= 5) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", n).unwrap();
        }
        conn.execute_batch(
            r#"INSERT INTO projections (view, key, scope, state, attrs, ord, event_seq, body_start, body_len)
               VALUES ('kratos/identities', 'i-1', '', 'active', '{"email":"ann@x.io"}', NULL, 1, 0, 2),
                      ('kratos/identities', 'i-2', '', 'active', '{}', NULL, 2, 0, 2),
                      ('identus/connections', 'c-1', 'w-1', 'Done', '{"ts":"t"}', 5, 3, 0, 2);"#,
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, VERSION);
        // Every row is still there.
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM projections", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3);
        // The index holds the one row with an e-mail, and a search by e-mail reads through it.
        let search = "SELECT key FROM projections INDEXED BY projections_by_email
                      WHERE view = 'kratos/identities' AND json_extract(attrs, '$.email') = ?1";
        let found: Vec<String> = conn
            .prepare(search)
            .unwrap()
            .query_map(["ann@x.io"], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(found, ["i-1"]);
        let entries: i64 = conn
            .query_row(
                "SELECT count(*) FROM projections INDEXED BY projections_by_email
                 WHERE json_extract(attrs, '$.email') IS NOT NULL",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(entries, 1);
        // Applying again changes nothing.
        migrate(&mut conn).unwrap();
    }

    #[test]
    fn events_of_an_older_schema_keep_their_seq_and_later_ones_come_after_the_largest() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (_, sql) in &MIGRATIONS[..3] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 3).unwrap();
        conn.execute_batch(
            "INSERT INTO events (seq, id, source, kind, dedupe_key, received_at, headers, body)
               VALUES (5, 'a', 'k', 'kratos', 'd1', 't1', '{}', x'7b7d'),
                      (9, 'b', 'k', 'kratos', 'd2', 't2', '{}', x'7b7d');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let seqs: Vec<(i64, String)> = conn
            .prepare("SELECT seq, id FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(seqs, [(5, "a".to_string()), (9, "b".to_string())]);
        // Even with every event gone, the next one comes after the largest seq ever used.
        conn.execute_batch(
            "DELETE FROM events;
             INSERT INTO events (id, source, kind, dedupe_key, received_at, headers, body)
               VALUES ('c', 'k', 'kratos', 'd3', 't3', '{}', x'7b7d');",
        )
        .unwrap();
        let next: i64 = conn
            .query_row("SELECT seq FROM events WHERE id = 'c'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(next, 10);
        // The indexes the feed and the unique dedupe key rely on are back.
        let indexes: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'
                   AND name IN ('events_by_source_type', 'events_by_id')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(indexes, 2);
        let dup = conn.execute(
            "INSERT INTO events (id, source, kind, dedupe_key, received_at, headers, body)
               VALUES ('d', 'k', 'kratos', 'd3', 't4', '{}', x'7b7d')",
            [],
        );
        assert!(dup.is_err(), "(source, dedupe_key) is still unique");
    }
}
