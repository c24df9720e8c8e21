//! The store's contract, checked against every backend: SQLite always, PostgreSQL when
//! `HOOKGATE_TEST_POSTGRES_URL` is set (each test in a schema of its own, dropped after; the
//! test prints "skipped" otherwise).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::{
    Cursor, EventId, EventQuery, NewEvent, Projection, ProjectionKey, ProjectionQuery, Store,
    StoreError,
};
use crate::config::{SqliteSettings, StoreSettings};

const PG_ENV: &str = "HOOKGATE_TEST_POSTGRES_URL";

/// Where a test's stores live.
enum Target {
    Sqlite(tempfile::TempDir),
    Postgres(PgSchema),
}

impl Target {
    fn name(&self) -> &'static str {
        match self {
            Target::Sqlite(_) => "sqlite",
            Target::Postgres(_) => "postgres",
        }
    }

    /// A store on this target (another one on the same database: another replica).
    async fn open(&self) -> Arc<dyn Store> {
        let settings = StoreSettings::default();
        match self {
            Target::Sqlite(dir) => Arc::new(
                SqliteStore::open(
                    &SqliteSettings {
                        path: dir.path().join("t.db"),
                        busy_timeout: Duration::from_secs(5),
                    },
                    &settings,
                )
                .await
                .unwrap(),
            ),
            Target::Postgres(pg) => {
                Arc::new(PostgresStore::open(&pg.url, 8, &settings).await.unwrap())
            }
        }
    }
}

/// A schema of its own on the test server, dropped when the test ends (even by a panic).
struct PgSchema {
    base: String,
    name: String,
    /// The base URL with `search_path` set to the schema.
    url: String,
}

impl PgSchema {
    async fn new(base: &str) -> Self {
        let name = format!("hg_test_{}", uuid::Uuid::new_v4().simple());
        let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        drop(client);
        let _ = driver.await;
        let sep = if base.contains('?') { '&' } else { '?' };
        Self {
            base: base.to_string(),
            url: format!("{base}{sep}options=-csearch_path%3D{name}"),
            name,
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        // Off the test's runtime, which may be gone or blocked here.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&base, tokio_postgres::NoTls).await
                {
                    let driver = tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA {name} CASCADE"))
                        .await;
                    drop(client);
                    let _ = driver.await;
                }
            });
        })
        .join();
    }
}

/// SQLite, and PostgreSQL when its URL is set.
async fn targets(test: &str) -> Vec<Target> {
    let mut out = vec![Target::Sqlite(tempfile::tempdir().unwrap())];
    match std::env::var(PG_ENV) {
        Ok(url) if !url.is_empty() => out.push(Target::Postgres(PgSchema::new(&url).await)),
        _ => println!("{test}: PostgreSQL skipped ({PG_ENV} is not set)"),
    }
    out
}

fn event(source: &str, key: &str, body: &[u8]) -> NewEvent {
    NewEvent {
        id: EventId::new(),
        source: Arc::from(source),
        kind: "identus",
        event_type: Some("ConnectionUpdated".into()),
        dedupe_key: key.into(),
        sender_id: Some(key.into()),
        received_at: "2026-01-02T03:04:05.678Z".into(),
        headers: r#"{"content-type":"application/json"}"#.into(),
        body: Bytes::copy_from_slice(body),
        projection: None,
        deliveries: Default::default(),
        trace_context: None,
    }
}

fn query(limit: u32, after: Option<Cursor>) -> EventQuery {
    EventQuery {
        limit,
        after,
        ..EventQuery::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appended_event_reads_back_byte_identical() {
    for target in targets("an_appended_event_reads_back_byte_identical").await {
        let store = target.open().await;
        // Not UTF-8, with a NUL, spaces and key order a JSON parser would not keep.
        let body = b"{ \"b\": 1,  \"a\" : \"\xff\x00\xfe\" }\n";
        let ev = event("src", "k-1", body);
        let appended = store.append(ev.clone()).await.unwrap();
        assert_eq!(appended.event_id, ev.id, "{}", target.name());
        assert!(!appended.duplicate);
        let got = store.get_event(ev.id).await.unwrap().unwrap();
        assert_eq!(&got.body[..], &body[..], "{}", target.name());
        assert_eq!(got.id, ev.id);
        assert_eq!(got.source, "src");
        assert_eq!(got.kind, "identus");
        assert_eq!(got.event_type.as_deref(), Some("ConnectionUpdated"));
        assert_eq!(got.dedupe_key, "k-1");
        assert_eq!(got.sender_id.as_deref(), Some("k-1"));
        assert_eq!(got.received_at, ev.received_at);
        assert_eq!(got.headers, ev.headers);
        assert!(store.get_event(EventId::new()).await.unwrap().is_none());
        store.ping().await.unwrap();
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_answers_the_first_copys_id() {
    for target in targets("a_duplicate_answers_the_first_copys_id").await {
        let name = target.name();
        let store = target.open().await;
        let first = event("src", "dup", b"{}");
        let a = store.append(first.clone()).await.unwrap();
        let b = store
            .append(event("src", "dup", b"{\"x\":1}"))
            .await
            .unwrap();
        assert_eq!((b.event_id, b.duplicate), (first.id, true), "{name}");
        // The same key in another source is another event.
        let other = store.append(event("other", "dup", b"{}")).await.unwrap();
        assert!(!other.duplicate && other.event_id != a.event_id, "{name}");
        // Copies arriving together (one batch, or several): stored once, one id for all.
        let copies = join_all((0..16).map(|i| {
            let store = store.clone();
            async move {
                store
                    .append(event("src", "together", format!("{i}").as_bytes()))
                    .await
            }
        }))
        .await;
        let copies: Vec<_> = copies.into_iter().map(Result::unwrap).collect();
        assert_eq!(copies.iter().filter(|c| !c.duplicate).count(), 1, "{name}");
        assert!(
            copies.iter().all(|c| c.event_id == copies[0].event_id),
            "{name}"
        );
        let page = store.list_events(query(100, None)).await.unwrap();
        assert_eq!(page.events.len(), 3, "{name}: stored once each");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_store_a_shared_event_once() {
    for target in targets("replicas_store_a_shared_event_once").await {
        let Target::Postgres(_) = &target else {
            continue;
        };
        let replicas = [
            target.open().await,
            target.open().await,
            target.open().await,
        ];
        for round in 0..4 {
            let key = format!("shared-{round}");
            let answers = join_all((0..24).map(|i| {
                let store = replicas[i % 3].clone();
                let ev = event("src", &key, format!("{i}").as_bytes());
                async move { store.append(ev).await }
            }))
            .await;
            let answers: Vec<_> = answers.into_iter().map(Result::unwrap).collect();
            assert_eq!(answers.iter().filter(|a| !a.duplicate).count(), 1);
            assert!(answers.iter().all(|a| a.event_id == answers[0].event_id));
            // Every replica reads it.
            for r in &replicas {
                assert!(r.get_event(answers[0].event_id).await.unwrap().is_some());
            }
        }
        let page = replicas[1].list_events(query(100, None)).await.unwrap();
        assert_eq!(page.events.len(), 4);
        for r in &replicas {
            r.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_pages_with_next_exactly_once_in_order() {
    for target in targets("the_feed_pages_with_next_exactly_once_in_order").await {
        let name = target.name();
        let store = target.open().await;
        let start = store.list_events(query(10, None)).await.unwrap();
        assert!(start.events.is_empty() && !start.more, "{name}");
        let mut ids = Vec::new();
        for i in 0..25 {
            let source = if i % 5 == 0 { "five" } else { "src" };
            let ev = event(source, &format!("e-{i}"), b"{}");
            ids.push(ev.id);
            store.append(ev).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut after = Some(start.next.clone());
        loop {
            let page = store.list_events(query(7, after.clone())).await.unwrap();
            assert!(page.events.len() <= 7, "{name}");
            seen.extend(page.events.iter().map(|e| e.id));
            if let Some(last) = page.events.last() {
                assert_eq!(page.next, last.cursor, "{name}");
            }
            if !page.more {
                // At the end: `next` is still a cursor, and asking again finds nothing new.
                let again = store
                    .list_events(query(7, Some(page.next.clone())))
                    .await
                    .unwrap();
                assert!(again.events.is_empty() && !again.more, "{name}");
                assert_eq!(again.next, page.next, "{name}");
                break;
            }
            after = Some(page.next);
        }
        assert_eq!(seen, ids, "{name}: every event once, in commit order");
        let five = store
            .list_events(EventQuery {
                source: Some("five".into()),
                ..query(100, None)
            })
            .await
            .unwrap();
        assert_eq!(five.events.len(), 5, "{name}");
        // A later commit wakes a long poll and appears after the cursor kept.
        let mut commits = store.commits();
        commits.borrow_and_update();
        let late = event("src", "late", b"{}");
        store.append(late.clone()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), commits.changed())
            .await
            .unwrap()
            .unwrap();
        let last = store.list_events(query(7, after)).await.unwrap();
        assert_eq!(last.events.last().map(|e| e.id), Some(late.id), "{name}");
        for bad in ["", "x", "-1", "1-", "1-2-3", "99999999999999999999"] {
            let got = store.list_events(query(7, Some(Cursor::new(bad)))).await;
            assert!(
                matches!(got, Err(StoreError::InvalidCursor)),
                "{name}: {bad:?}"
            );
        }
        store.close().await;
    }
}

fn with_projection(key: &str, body: &[u8], ord: Option<i64>, state: &str) -> NewEvent {
    let mut ev = event("src", key, body);
    ev.projection = Some(Projection {
        view: "identus/connections",
        scope: "wallet-1".into(),
        key: "conn-1".into(),
        state: Some(state.into()),
        attrs: vec![("ts", format!("{ord:?}"))],
        order: ord,
        range: 1..body.len() - 1,
    });
    ev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_update_never_replaces_a_newer_projection() {
    for target in targets("an_older_update_never_replaces_a_newer_projection").await {
        let name = target.name();
        let store = target.open().await;
        let key = ProjectionKey {
            view: "identus/connections",
            key: "conn-1",
            scope: None,
        };
        let newer = with_projection("p-5", b"[\"five\"]", Some(5), "Five");
        store.append(newer.clone()).await.unwrap();
        store
            .append(with_projection("p-3", b"[\"three\"]", Some(3), "Three"))
            .await
            .unwrap();
        let row = store.projection(key.clone()).await.unwrap().unwrap();
        assert_eq!(
            (row.event_id, row.state.as_deref()),
            (newer.id, Some("Five")),
            "{name}"
        );
        assert_eq!(&row.body[..], b"\"five\"", "{name}");
        // An equal order does not replace it either (as SQLite: strictly newer wins).
        store
            .append(with_projection("p-5b", b"[\"again\"]", Some(5), "Again"))
            .await
            .unwrap();
        let row = store.projection(key.clone()).await.unwrap().unwrap();
        assert_eq!(row.event_id, newer.id, "{name}");
        let newest = with_projection("p-7", b"[\"seven\"]", Some(7), "Seven");
        store.append(newest.clone()).await.unwrap();
        let row = store.projection(key.clone()).await.unwrap().unwrap();
        assert_eq!(
            (row.event_id, row.state.as_deref()),
            (newest.id, Some("Seven")),
            "{name}"
        );
        assert_eq!(row.scope, "wallet-1");
        let page = store
            .list_projections(ProjectionQuery {
                view: "identus/connections",
                state: Some("Seven".into()),
                scope: Some("wallet-1".into()),
                attr: None,
                after: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(page.rows.len(), 1, "{name}");
        assert!(page.next.is_none());
        store.close().await;
    }
}

/// Appends sent at the same moment share batches: one thing updated many times in a batch,
/// and copies of one event in a batch, end as they would one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_and_copies_sharing_a_batch_end_as_one_by_one() {
    for target in targets("updates_and_copies_sharing_a_batch_end_as_one_by_one").await {
        let name = target.name();
        let store = target.open().await;
        for round in 0..5 {
            // Orders shuffled; the highest must win whatever the arrival order.
            let mut appends = Vec::new();
            for ord in [3, 8, 1, 6, 2, 7, 5, 4] {
                let ord = round * 10 + ord;
                let body = format!("[\"{ord}\"]");
                let ev = with_projection(
                    &format!("r{round}-{ord}"),
                    body.as_bytes(),
                    Some(ord),
                    &ord.to_string(),
                );
                appends.push(ev);
            }
            let copies: Vec<NewEvent> = (0..6)
                .map(|_| event("src", &format!("copy-{round}"), b"{}"))
                .collect();
            let stores = (0..appends.len() + copies.len()).map(|_| store.clone());
            let answers = join_all(
                appends
                    .into_iter()
                    .chain(copies)
                    .zip(stores)
                    .map(|(ev, s)| async move { s.append(ev).await.unwrap() }),
            )
            .await;
            let (updates, copies) = answers.split_at(8);
            assert!(updates.iter().all(|a| !a.duplicate), "{name}");
            let first = copies[0].event_id;
            assert!(
                copies.iter().all(|a| a.event_id == first),
                "{name}: {copies:?}"
            );
            assert_eq!(copies.iter().filter(|a| !a.duplicate).count(), 1, "{name}");
            let row = store
                .projection(ProjectionKey {
                    view: "identus/connections",
                    key: "conn-1",
                    scope: None,
                })
                .await
                .unwrap()
                .unwrap();
            let top = (round * 10 + 8).to_string();
            assert_eq!(row.state.as_deref(), Some(top.as_str()), "{name}");
            assert_eq!(&row.body[..], format!("\"{top}\"").as_bytes(), "{name}");
        }
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_twice_and_concurrently() {
    for target in targets("migrations_run_twice_and_concurrently").await {
        let name = target.name();
        let first = target.open().await;
        first.append(event("src", "kept", b"{}")).await.unwrap();
        first.close().await;
        let again = target.open().await;
        assert_eq!(
            again
                .list_events(query(10, None))
                .await
                .unwrap()
                .events
                .len(),
            1,
            "{name}"
        );
        again.close().await;
        let Target::Postgres(pg) = &target else {
            continue;
        };
        // Three replicas starting at the same moment, on a fresh schema.
        let fresh = PgSchema::new(&pg.base).await;
        let settings = StoreSettings::default();
        let opened = join_all((0..3).map(|_| PostgresStore::open(&fresh.url, 4, &settings))).await;
        for store in opened {
            let store = store.unwrap();
            store.ping().await.unwrap();
            store.close().await;
        }
        let (client, conn) = tokio_postgres::connect(&fresh.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let versions: i64 = client
            .query_one("SELECT count(*) FROM schema_version", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(versions, i64::from(super::postgres::schema::latest()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_paging_while_replicas_insert_misses_nothing_and_repeats_nothing() {
    for target in
        targets("a_reader_paging_while_replicas_insert_misses_nothing_and_repeats_nothing").await
    {
        let Target::Postgres(_) = &target else {
            continue;
        };
        let replicas = [
            target.open().await,
            target.open().await,
            target.open().await,
        ];
        let reader = target.open().await;
        let writers = join_all(replicas.iter().enumerate().map(|(r, store)| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for round in 0..20 {
                    let batch =
                        join_all((0..8).map(|i| {
                            store.append(event("src", &format!("r{r}-{round}-{i}"), b"{}"))
                        }))
                        .await;
                    ids.extend(batch.into_iter().map(|a| a.unwrap().event_id));
                }
                ids
            })
        }));
        let mut seen = Vec::new();
        let mut after = None;
        let written = tokio::spawn(writers);
        let mut done = false;
        while !done {
            done = written.is_finished();
            loop {
                let page = reader.list_events(query(13, after.clone())).await.unwrap();
                seen.extend(page.events.iter().map(|e| e.id));
                after = Some(page.next);
                if !page.more {
                    break;
                }
            }
        }
        let mut expected: Vec<EventId> = written
            .await
            .unwrap()
            .into_iter()
            .flat_map(Result::unwrap)
            .collect();
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "no event twice in the feed");
        expected.sort();
        assert_eq!(unique, expected, "every event in the feed");
        for r in replicas.iter().chain([&reader]) {
            r.close().await;
        }
    }
}

// Faults, on PostgreSQL only (SQLite's are in tests/api/faults.rs).

/// `url` with `application_name` set, so a test can kill its own connections and no other's.
fn named(url: &str, app: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={app}")
}

/// Settings whose statements time out after one second.
fn quick_settings() -> StoreSettings {
    StoreSettings {
        busy_timeout: Some(crate::config::HumanDuration(Duration::from_secs(1))),
        ..StoreSettings::default()
    }
}

async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_statement_fails_within_seconds_and_the_store_recovers() {
    for target in targets("a_hanging_statement_fails_within_seconds_and_the_store_recovers").await {
        let Target::Postgres(pg) = &target else {
            continue;
        };
        let store: Arc<dyn Store> = Arc::new(
            PostgresStore::open(&pg.url, 4, &quick_settings())
                .await
                .unwrap(),
        );
        let stored = event("src", "before", b"{}");
        store.append(stored.clone()).await.unwrap();
        // Another program holds the table: every write to it waits. (SHARE, not ACCESS
        // EXCLUSIVE: that one takes a transaction id, which would hold back the feed of every
        // other test running on the server meanwhile.)
        let mut blocker = admin_client(&pg.url).await;
        let tx = blocker.transaction().await.unwrap();
        tx.batch_execute("LOCK TABLE events IN SHARE MODE")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let hung = event("src", "during", b"{}");
        let got = store.append(hung.clone()).await;
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
        // Reads still work meanwhile.
        assert!(store.get_event(stored.id).await.unwrap().is_some());
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "answered after {:?}",
            started.elapsed()
        );
        tx.rollback().await.unwrap();
        // Nothing of the failed append was kept; a retry stores it, once.
        assert!(store.get_event(hung.id).await.unwrap().is_none());
        let again = store.append(hung.clone()).await.unwrap();
        assert_eq!((again.event_id, again.duplicate), (hung.id, false));
        store.ping().await.unwrap();
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_fail_their_batch_and_the_next_batch_works() {
    for target in targets("killed_connections_fail_their_batch_and_the_next_batch_works").await {
        let Target::Postgres(pg) = &target else {
            continue;
        };
        let app = format!("hg_kill_{}", uuid::Uuid::new_v4().simple());
        let store: Arc<dyn Store> = Arc::new(
            PostgresStore::open(&named(&pg.url, &app), 4, &quick_settings())
                .await
                .unwrap(),
        );
        let admin = admin_client(&pg.base).await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let killer = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut killed = 0u64;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let rows = admin
                        .query(
                            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                             WHERE application_name = $1",
                            &[&app],
                        )
                        .await
                        .unwrap();
                    killed += rows.len() as u64;
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
                killed
            })
        };
        let appenders = join_all((0..4).map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ok = Vec::new();
                let mut failed = Vec::new();
                for i in 0..40 {
                    let answers = join_all((0..4).map(|j| {
                        let ev = event("src", &format!("w{w}-{i}-{j}"), b"{}");
                        let store = store.clone();
                        async move { (ev.clone(), store.append(ev).await) }
                    }))
                    .await;
                    for (ev, answer) in answers {
                        match answer {
                            Ok(a) => ok.push((ev, a)),
                            Err(StoreError::Unavailable(_)) => failed.push(ev),
                            Err(e) => panic!("unexpected error: {e}"),
                        }
                    }
                }
                (ok, failed)
            })
        }))
        .await;
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let killed = killer.await.unwrap();
        assert!(killed > 0, "the test killed no connection");
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        for a in appenders {
            let (o, f) = a.unwrap();
            ok.extend(o);
            failed.extend(f);
        }
        assert!(
            !ok.is_empty(),
            "no append worked while connections were killed"
        );
        println!(
            "killed {killed} connections; {} appends answered Ok, {} failed",
            ok.len(),
            failed.len()
        );
        // Every failed append, retried now, is stored (once: a batch whose commit went through
        // before its connection died answers the first copy's id).
        for ev in failed {
            let mut tries = 0;
            let answer = loop {
                match store.append(ev.clone()).await {
                    Ok(a) => break a,
                    Err(e) if tries < 10 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let _ = e;
                    }
                    Err(e) => panic!("a retry still fails after the kills stopped: {e}"),
                }
            };
            ok.push((ev, answer));
        }
        // Every event that was answered Ok is readable, under the id answered, exactly once.
        let mut listed = Vec::new();
        let mut after = None;
        loop {
            let page = store.list_events(query(500, after)).await.unwrap();
            listed.extend(page.events.iter().map(|e| (e.dedupe_key.clone(), e.id)));
            after = Some(page.next);
            if !page.more {
                break;
            }
        }
        assert_eq!(listed.len(), ok.len(), "every event stored exactly once");
        let by_key: std::collections::HashMap<_, _> = listed.into_iter().collect();
        assert_eq!(by_key.len(), ok.len(), "no dedupe key twice");
        for (ev, a) in &ok {
            assert_eq!(
                by_key.get(&ev.dedupe_key),
                Some(&a.event_id),
                "{}",
                ev.dedupe_key
            );
        }
        store.ping().await.unwrap();
        store.close().await;
    }
}

/// A TCP proxy to the test server that can be cut (every connection closed, new ones refused)
/// or frozen (connections stay open, nothing goes through: a server gone silent), and restored:
/// the database "goes away" without stopping the shared server.
struct Proxy {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    frozen: tokio::sync::watch::Sender<bool>,
    links: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

/// Copies `from` to `to`, holding what it reads while `frozen` is true.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while *frozen.borrow_and_update() {
            if frozen.changed().await.is_err() {
                return;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Proxy {
    async fn to(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let frozen = tokio::sync::watch::Sender::new(false);
        let links = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accept = {
            let (up, links, frozen) = (up.clone(), links.clone(), frozen.clone());
            tokio::spawn(async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    if !up.load(std::sync::atomic::Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection closed
                    }
                    let upstream = upstream.clone();
                    let frozen = frozen.clone();
                    links.lock().unwrap().push(tokio::spawn(async move {
                        if let Ok(out) = tokio::net::TcpStream::connect(upstream).await {
                            let (ri, wi) = inbound.into_split();
                            let (ro, wo) = out.into_split();
                            tokio::join!(
                                pump(ri, wo, frozen.subscribe()),
                                pump(ro, wi, frozen.subscribe())
                            );
                        }
                    }));
                }
            })
        };
        Self {
            port,
            up,
            frozen,
            links,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }

    fn restore(&self) {
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
        self.freeze(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `url` with its `host:port` replaced by 127.0.0.1:`port`; also answers the old `host:port`.
fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (user, rest) = match rest.split_once('@') {
        Some((u, r)) => (format!("{u}@"), r),
        None => (String::new(), rest),
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let hostport = &rest[..end];
    let upstream = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    };
    (
        format!("{scheme}://{user}127.0.0.1:{port}{}", &rest[end..]),
        upstream,
    )
}

/// A store on PostgreSQL reached through a [`Proxy`] the test can cut or freeze, with one event
/// already stored through it.
async fn behind_proxy(pg_url: &str) -> (Proxy, Arc<dyn Store>, NewEvent) {
    let (_, upstream) = through(pg_url, 0);
    let proxy = Proxy::to(upstream).await;
    let (url, _) = through(pg_url, proxy.port);
    let store: Arc<dyn Store> = Arc::new(
        PostgresStore::open(&url, 4, &quick_settings())
            .await
            .unwrap(),
    );
    let before = event("src", "before", b"{}");
    store.append(before.clone()).await.unwrap();
    (proxy, store, before)
}

/// Waits (5 s at most) until the store's ping works again, without a restart.
async fn until_ping_works(store: &Arc<dyn Store>) {
    let mut tries = 0;
    while store.ping().await.is_err() {
        tries += 1;
        assert!(tries < 50, "ping still fails after the database came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_fails_within_seconds_and_ping_recovers() {
    for target in targets("an_unreachable_database_fails_within_seconds_and_ping_recovers").await {
        let Target::Postgres(pg) = &target else {
            continue;
        };
        let (proxy, store, before) = behind_proxy(&pg.url).await;
        store.ping().await.unwrap();

        proxy.cut();
        let started = std::time::Instant::now();
        let during = event("src", "during", b"{}");
        let got = store.append(during.clone()).await;
        assert!(matches!(got, Err(StoreError::Unavailable(_))), "{got:?}");
        let pinged = store.ping().await;
        assert!(
            matches!(pinged, Err(StoreError::Unavailable(_))),
            "{pinged:?}"
        );
        let read = store.get_event(before.id).await;
        assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "answered after {:?}",
            started.elapsed()
        );

        // Back without a restart: ping works, the failed append is stored once on retry.
        proxy.restore();
        until_ping_works(&store).await;
        let again = store.append(during.clone()).await.unwrap();
        assert_eq!((again.event_id, again.duplicate), (during.id, false));
        assert!(store.get_event(before.id).await.unwrap().is_some());
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_with_nul_characters_is_stored_and_found_exactly() {
    for target in targets("text_with_nul_characters_is_stored_and_found_exactly").await {
        let name = target.name();
        let store = target.open().await;
        let mut ev = event("src", "k\0ey\u{1}", b"[\"x\"]");
        ev.event_type = Some("T\0".into());
        ev.sender_id = Some("\0".into());
        ev.projection = Some(Projection {
            view: "identus/connections",
            scope: "w\0".into(),
            key: "c\0\u{1}0".into(),
            state: Some("S\0".into()),
            attrs: vec![("email", "a\0@b".into())],
            order: None,
            range: 1..4,
        });
        let a = store.append(ev.clone()).await.unwrap();
        assert!(!a.duplicate, "{name}");
        // The same key is the same event; a key differing only where the escape would be is not.
        let again = store
            .append(event("src", "k\0ey\u{1}", b"{}"))
            .await
            .unwrap();
        assert!(again.duplicate && again.event_id == ev.id, "{name}");
        let other = store
            .append(event("src", "k\u{1}0ey\u{1}", b"{}"))
            .await
            .unwrap();
        assert!(!other.duplicate, "{name}");
        let got = store.get_event(ev.id).await.unwrap().unwrap();
        assert_eq!(got.dedupe_key, ev.dedupe_key, "{name}");
        assert_eq!(got.event_type, ev.event_type, "{name}");
        assert_eq!(got.sender_id, ev.sender_id, "{name}");
        let typed = store
            .list_events(EventQuery {
                event_type: Some("T\0".into()),
                ..query(10, None)
            })
            .await
            .unwrap();
        assert_eq!(typed.events.len(), 1, "{name}");
        let row = store
            .projection(ProjectionKey {
                view: "identus/connections",
                key: "c\0\u{1}0",
                scope: Some("w\0"),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.key.as_str(), row.scope.as_str(), row.state.as_deref()),
            ("c\0\u{1}0", "w\0", Some("S\0")),
            "{name}"
        );
        let page = store
            .list_projections(ProjectionQuery {
                view: "identus/connections",
                state: Some("S\0".into()),
                scope: Some("w\0".into()),
                attr: Some(("email", "a\0@b".into())),
                after: None,
                limit: 10,
            })
            .await
            .unwrap();
        assert_eq!(page.rows.len(), 1, "{name}");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_old_events_in_batches_and_projections_keep_their_json() {
    for target in
        targets("prune_deletes_old_events_in_batches_and_projections_keep_their_json").await
    {
        let name = target.name();
        let store = target.open().await;
        let old = |key: &str| {
            let mut ev = event("src", key, b"{}");
            ev.received_at = "2020-01-01T00:00:00.000Z".into();
            ev
        };
        for i in 0..4 {
            store.append(old(&format!("old-{i}"))).await.unwrap();
        }
        let mut with_row = with_projection("old-p", b"[\"kept\"]", Some(1), "Kept");
        with_row.received_at = "2020-01-01T00:00:00.000Z".into();
        store.append(with_row.clone()).await.unwrap();
        let young = event("src", "young", b"{}");
        store.append(young.clone()).await.unwrap();
        let cutoff = time::macros::datetime!(2025-01-01 0:00 UTC);
        let mut deleted = 0;
        let mut rounds = 0;
        loop {
            let pruned = store.prune(cutoff, 2).await.unwrap();
            assert!(pruned.deleted <= 2, "{name}");
            deleted += pruned.deleted;
            rounds += 1;
            if !pruned.more {
                break;
            }
            assert!(rounds < 10, "{name}: prune never ends");
        }
        assert_eq!(deleted, 5, "{name}");
        let left = store.list_events(query(100, None)).await.unwrap();
        assert_eq!(
            left.events.iter().map(|e| e.id).collect::<Vec<_>>(),
            [young.id],
            "{name}"
        );
        // The projection outlives its event, with the same JSON and the event's id.
        let row = store
            .projection(ProjectionKey {
                view: "identus/connections",
                key: "conn-1",
                scope: None,
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&row.body[..], b"\"kept\"", "{name}");
        assert_eq!(row.event_id, with_row.id, "{name}");
        let again = store.prune(cutoff, 2).await.unwrap();
        assert_eq!((again.deleted, again.more), (0, false), "{name}");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_size_counts_events_and_bytes() {
    for target in targets("the_postgres_size_counts_events_and_bytes").await {
        let Target::Postgres(pg) = &target else {
            continue;
        };
        let store = PostgresStore::open(&pg.url, 4, &StoreSettings::default())
            .await
            .unwrap();
        let (events, bytes) = store.size().await.unwrap();
        assert_eq!(events, 0);
        assert!(bytes > 0, "the empty tables' indexes take pages");
        let big = vec![b'x'; 64 * 1024];
        for i in 0..5 {
            crate::store::EventStore::append(&store, event("src", &format!("s-{i}"), &big))
                .await
                .unwrap();
        }
        let (events, grown) = store.size().await.unwrap();
        assert_eq!(events, 5);
        assert!(grown > bytes, "{grown} > {bytes}");
        Store::close(&store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_database_fails_within_seconds_and_the_store_recovers() {
    for target in targets("a_silent_database_fails_within_seconds_and_the_store_recovers").await {
        let Target::Postgres(pg) = &target else {
            continue;
        };
        let (proxy, store, before) = behind_proxy(&pg.url).await;

        // Connections stay open but nothing answers: only the client's own deadline ends it.
        proxy.freeze(true);
        let started = std::time::Instant::now();
        let during = event("src", "during", b"{}");
        let (appended, read, pinged) = tokio::join!(
            store.append(during.clone()),
            store.get_event(before.id),
            store.ping()
        );
        assert!(
            matches!(appended, Err(StoreError::Unavailable(_))),
            "{appended:?}"
        );
        assert!(matches!(read, Err(StoreError::Unavailable(_))), "{read:?}");
        assert!(
            matches!(pinged, Err(StoreError::Unavailable(_))),
            "{pinged:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "answered after {:?}",
            started.elapsed()
        );

        proxy.restore();
        until_ping_works(&store).await;
        // The frozen append may have committed once the held bytes went through: a retry is
        // stored once either way, under the same id.
        let again = store.append(during.clone()).await.unwrap();
        assert_eq!(again.event_id, during.id);
        assert!(store.get_event(during.id).await.unwrap().is_some());
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_waits_for_another_replicas_migration_past_the_statement_timeout() {
    for target in
        targets("a_start_waits_for_another_replicas_migration_past_the_statement_timeout").await
    {
        let Target::Postgres(pg) = &target else {
            continue;
        };
        // Another replica holds the migration lock for longer than `statement_timeout` (1 s).
        let other = admin_client(&pg.url).await;
        other
            .execute(
                "SELECT pg_advisory_lock($1, hashtext(current_schema()))",
                &[&super::postgres::schema::LOCK_CLASS],
            )
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            drop(other);
        });
        let store: Arc<dyn Store> = Arc::new(
            PostgresStore::open(&pg.url, 2, &quick_settings())
                .await
                .unwrap(),
        );
        assert!(started.elapsed() >= Duration::from_secs(2));
        release.await.unwrap();
        // Requests still get the short timeout: the migration's session setting was reset.
        let mut blocker = admin_client(&pg.url).await;
        let tx = blocker.transaction().await.unwrap();
        tx.batch_execute("LOCK TABLE events IN SHARE MODE")
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let got = store.append(event("src", "held", b"{}")).await;
        assert!(
            matches!(got, Err(StoreError::Unavailable(ref e)) if e.contains("statement timeout")),
            "{got:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        tx.rollback().await.unwrap();
        store.close().await;
    }
}

/// Every event and projection row of `store`, in feed order and key order.
async fn everything(
    store: &dyn Store,
) -> (Vec<super::StoredEvent>, Vec<super::copy::RawProjection>) {
    let mut events = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_events(query(1000, after)).await.unwrap();
        events.extend(page.events);
        after = Some(page.next);
        if !page.more {
            break;
        }
    }
    let rows = store.export_projections(None, 100_000).await.unwrap();
    (events, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_store_keeps_every_byte_and_a_second_run_copies_nothing() {
    let test = "copy_store_keeps_every_byte_and_a_second_run_copies_nothing";
    for source_target in targets(test).await {
        let source = source_target.open().await;
        // An event whose projection row outlives it (pruned: the row's own copy).
        let mut pruned = with_projection("old-p", b"[\"kept\"]", Some(1), "Kept");
        if let Some(p) = pruned.projection.as_mut() {
            p.key = "conn-pruned".into();
        }
        pruned.received_at = "2020-01-01T00:00:00.000Z".into();
        source.append(pruned.clone()).await.unwrap();
        source
            .prune(time::macros::datetime!(2025-01-01 0:00 UTC), 10)
            .await
            .unwrap();
        // 1 200 events (more than one batch): bodies not UTF-8, a NUL in a dedupe key.
        for chunk in 0..6 {
            join_all((0..200).map(|i| {
                let n = chunk * 200 + i;
                let mut body = vec![0xff, 0xfe, 0x00, b'{'];
                body.extend_from_slice(format!("{n}").as_bytes());
                let mut ev = event("src", &format!("key-{n}\0x"), &body);
                ev.received_at = format!("2026-01-02T03:04:{:02}.{n:03}Z", n % 60);
                ev.headers = format!(r#"{{"x-n":"{n}"}}"#);
                ev.event_type = (n % 3 == 0).then(|| "T".to_string());
                let source = source.clone();
                async move { source.append(ev).await.unwrap() }
            }))
            .await;
        }
        source
            .append(with_projection("p1", b"[\"a\"]", Some(5), "A"))
            .await
            .unwrap();
        source
            .append(with_projection("p2", b"[\"b\"]", Some(3), "B"))
            .await
            .unwrap();
        let (events, rows) = everything(source.as_ref()).await;
        assert_eq!(events.len(), 1202, "{}", source_target.name());
        assert_eq!(rows.len(), 2, "{}", source_target.name());
        for dest_target in targets(test).await {
            let name = format!("{} to {}", source_target.name(), dest_target.name());
            let dest = dest_target.open().await;
            let mut reports = 0;
            let first = super::copy::copy(source.as_ref(), dest.as_ref(), |_| reports += 1)
                .await
                .unwrap();
            assert!(reports >= 2, "{name}");
            assert_eq!(
                (first.total, first.copied, first.skipped, first.projections),
                (1202, 1202, 0, 2),
                "{name}"
            );
            let (copied, copied_rows) = everything(dest.as_ref()).await;
            assert_eq!(copied.len(), events.len(), "{name}");
            for (a, b) in events.iter().zip(&copied) {
                assert_eq!(
                    (
                        a.id,
                        &a.source,
                        &a.kind,
                        &a.event_type,
                        &a.dedupe_key,
                        &a.sender_id,
                        &a.received_at,
                        &a.headers,
                        &a.body
                    ),
                    (
                        b.id,
                        &b.source,
                        &b.kind,
                        &b.event_type,
                        &b.dedupe_key,
                        &b.sender_id,
                        &b.received_at,
                        &b.headers,
                        &b.body
                    ),
                    "{name}"
                );
            }
            assert!(copied_rows == rows, "{name}: projections differ");
            let row = dest
                .projection(ProjectionKey {
                    view: "identus/connections",
                    key: "conn-pruned",
                    scope: None,
                })
                .await
                .unwrap()
                .unwrap();
            assert_eq!((&row.body[..], row.event_id), (&b"\"kept\""[..], pruned.id));
            // A second run copies nothing, and changes nothing.
            let second = super::copy::copy(source.as_ref(), dest.as_ref(), |_| {})
                .await
                .unwrap();
            assert_eq!(
                (second.copied, second.skipped, second.projections),
                (0, 1202, 0),
                "{name}"
            );
            let (again, again_rows) = everything(dest.as_ref()).await;
            assert_eq!(again.len(), copied.len(), "{name}");
            assert!(again_rows == rows, "{name}: projections changed");
            // Appends still work after a copy, and a retry of a copied event is a duplicate.
            let retry = event("src", "key-7\0x", b"{}");
            assert!(dest.append(retry).await.unwrap().duplicate, "{name}");
            dest.close().await;
        }
        source.close().await;
    }
}

/// A move while the destination's replicas already take events: a sender retrying some of the
/// events being copied reaches the destination during the copy. Nothing deadlocks (the copy's
/// order is the source's feed, the writers' is their lock order), every answer is a success,
/// and every event is there once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_store_into_a_store_taking_the_same_events_at_the_same_time() {
    let test = "copy_store_into_a_store_taking_the_same_events_at_the_same_time";
    let source_target = Target::Sqlite(tempfile::tempdir().unwrap());
    let source = source_target.open().await;
    const N: usize = 3000;
    // Stored in the opposite of the key order (the copy's order is the source's).
    for chunk in (0..(N / 100)).rev() {
        join_all((0..100).rev().map(|i| {
            let source = source.clone();
            let n = chunk * 100 + i;
            async move {
                source
                    .append(event("src", &format!("k-{n}"), format!("[{n}]").as_bytes()))
                    .await
                    .unwrap()
            }
        }))
        .await;
    }
    for dest_target in targets(test).await {
        let name = dest_target.name();
        let dest = dest_target.open().await;
        // Retries of the same events while they are copied, many at once (so in batches, each
        // in the writers' lock order, which is not the copy's).
        let retries = {
            let dest = dest.clone();
            tokio::spawn(async move {
                for chunk in (0..(N / 100)).rev() {
                    let answers = join_all((0..100).rev().map(|i| {
                        let dest = dest.clone();
                        let n = chunk * 100 + i;
                        async move {
                            dest.append(event(
                                "src",
                                &format!("k-{n}"),
                                format!("[{n}]").as_bytes(),
                            ))
                            .await
                        }
                    }))
                    .await;
                    for answer in answers {
                        answer.expect("a retry during the copy is stored or recognised");
                    }
                    // Spread over the copy's duration, so they meet its batches.
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            })
        };
        let copied = super::copy::copy(source.as_ref(), dest.as_ref(), |_| {})
            .await
            .unwrap();
        retries.await.unwrap();
        assert_eq!(copied.copied + copied.skipped, N as u64, "{name}");
        let (stored, _) = everything(dest.as_ref()).await;
        let mut keys: Vec<&str> = stored.iter().map(|e| e.dedupe_key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!((stored.len(), keys.len()), (N, N), "{name}");
        dest.close().await;
    }
    source.close().await;
}

/// The feed waits for transactions that write events, and only for those: a long transaction
/// of another program on the same server does not hold it back, one still writing `events`
/// does (what it writes must not appear before what is already shown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_waits_only_for_transactions_writing_events() {
    for target in targets("the_feed_waits_only_for_transactions_writing_events").await {
        let Target::Postgres(pg) = &target else {
            continue;
        };
        let writer = target.open().await;
        // Another replica: it has committed nothing itself, so it does not wait for its own.
        let reader = target.open().await;
        let ids = |page: super::EventPage| page.events.iter().map(|e| e.id).collect::<Vec<_>>();

        // Another program's long transaction, with a transaction id, on another table.
        let mut other = admin_client(&pg.url).await;
        other
            .batch_execute("CREATE TABLE other_program (x int)")
            .await
            .unwrap();
        let long = other.transaction().await.unwrap();
        long.execute("INSERT INTO other_program VALUES (1)", &[])
            .await
            .unwrap();
        let first = writer.append(event("src", "first", b"{}")).await.unwrap();
        let page = reader.list_events(query(10, None)).await.unwrap();
        assert_eq!(
            ids(page),
            [first.event_id],
            "not held back by another table's writer"
        );

        // A transaction writing events, still open: what commits after it waits for it.
        let mut raw = admin_client(&pg.url).await;
        let held = raw.transaction().await.unwrap();
        held.execute(
            "INSERT INTO events (id, source, kind, dedupe_key, received_at, headers, body)
             VALUES ($1, 'src', 'identus', 'held', 'now', '{}', '\\x7b7d')",
            &[&uuid::Uuid::new_v4()],
        )
        .await
        .unwrap();
        let second = writer.append(event("src", "second", b"{}")).await.unwrap();
        let page = reader.list_events(query(10, None)).await.unwrap();
        assert_eq!(
            ids(page),
            [first.event_id],
            "held back by an open writer of events"
        );
        held.commit().await.unwrap();
        let page = reader.list_events(query(10, None)).await.unwrap();
        let shown = ids(page);
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert_eq!((shown[0], shown[2]), (first.event_id, second.event_id));
        long.rollback().await.unwrap();
        writer.close().await;
        reader.close().await;
    }
}

/// An event queued for `destinations`.
fn delivered_to(key: &str, destinations: &[&str]) -> NewEvent {
    let mut ev = event("src", key, b"{\"d\":1}");
    ev.deliveries = destinations.iter().map(|d| Arc::from(*d)).collect();
    ev
}

fn finish(
    c: &super::outbox::Claimed,
    next: super::outbox::Next,
    status: u16,
) -> super::outbox::Finish {
    super::outbox::Finish {
        delivery_id: c.delivery_id,
        lease: c.lease,
        destination: "app".into(),
        attempt: super::outbox::AttemptRecord {
            number: c.attempts_made + 1,
            at: super::outbox::now_ms(),
            duration_ms: 12,
            status: Some(status),
            error: None,
            response: Some(format!("answer {status}")),
        },
        next,
        gone: false,
        pause_after_ms: 60_000,
        last_error: (status != 200).then(|| format!("HTTP {status}")),
    }
}

/// The outbox on every backend: a new event queues one delivery per destination, a duplicate
/// none; a claim hands out each due delivery once (what is in flight, or leased, is left out);
/// a finish records the attempt and moves the delivery on; retries and replays are new
/// deliveries of the same event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_queues_claims_and_finishes_each_delivery_once() {
    use super::outbox::{DeliveryQuery, DeliveryState, Next, ReplayFilter, now_ms};
    for target in targets("the_outbox_queues_claims_and_finishes_each_delivery_once").await {
        let name = target.name();
        let store = target.open().await;
        store
            .register_destinations(&["app".into(), "bus".into()])
            .await
            .unwrap();
        let mut queued = store.deliveries_queued();
        queued.borrow_and_update();
        let first = store
            .append(delivered_to("a", &["app", "bus"]))
            .await
            .unwrap();
        assert!(
            queued.has_changed().unwrap(),
            "{name}: the workers are woken"
        );
        let dup = store
            .append(delivered_to("a", &["app", "bus"]))
            .await
            .unwrap();
        assert!(dup.duplicate, "{name}");
        store.append(delivered_to("b", &["app"])).await.unwrap();
        store.append(delivered_to("c", &[])).await.unwrap();
        let all = store
            .list_deliveries(DeliveryQuery {
                limit: 100,
                ..DeliveryQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 3, "{name}: a duplicate queues nothing");
        assert!(
            all.iter()
                .all(|d| d.state == DeliveryState::Pending && d.attempts_made == 0)
        );
        assert!(
            all.iter().all(|d| d.next_attempt_at.is_some()),
            "{name}: a new delivery is due from the start"
        );
        let status = store.destinations().await.unwrap();
        let app = status.iter().find(|d| d.id == "app").unwrap();
        assert_eq!(app.pending, 2, "{name}: new deliveries count as pending");
        assert!(app.oldest_pending_at.is_some(), "{name}");
        let due = store.next_due("app", now_ms(), &[]).await.unwrap();
        assert!(due.is_some_and(|t| t <= now_ms()), "{name}: due now");
        // Two claims at once hand out each due delivery once.
        let now = now_ms();
        let (one, two) = tokio::join!(
            store.claim("app", 1, now, 60_000, &[]),
            store.claim("app", 10, now, 60_000, &[])
        );
        let (one, two) = (one.unwrap(), two.unwrap());
        let mut ids: Vec<i64> = one.iter().chain(&two).map(|c| c.delivery_id).collect();
        // On SQLite the claim writes nothing: the worker passes what it has in flight.
        if name == "sqlite" {
            ids.dedup();
            let again = store.claim("app", 10, now, 60_000, &ids).await.unwrap();
            assert!(again.is_empty(), "{name}: what is in flight is left out");
        } else {
            assert_eq!(ids.len(), 2, "{name}: no delivery is leased twice");
            assert!(
                store
                    .claim("app", 10, now, 60_000, &[])
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        let claimed: Vec<_> = if name == "sqlite" {
            two
        } else {
            one.into_iter().chain(two).collect()
        };
        assert_eq!(claimed.len(), 2, "{name}");
        let c = claimed
            .iter()
            .find(|c| c.event_id == first.event_id)
            .unwrap();
        assert_eq!(&c.body[..], b"{\"d\":1}");
        assert_eq!(c.source, "src");
        let other = claimed
            .iter()
            .find(|c| c.event_id != first.event_id)
            .unwrap();
        // One delivered; the other failed once, due again later.
        let later = now + 3_600_000;
        let paused = store
            .finish(
                vec![
                    finish(c, Next::Delivered, 200),
                    finish(other, Next::RetryAt(later), 500),
                ],
                now_ms(),
            )
            .await
            .unwrap();
        assert!(paused.is_empty(), "{name}");
        assert!(
            store
                .claim("app", 10, now_ms(), 60_000, &[])
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        assert_eq!(
            store.next_due("app", now_ms(), &[]).await.unwrap(),
            Some(later),
            "{name}"
        );
        let (row, attempts) = store
            .get_delivery(other.delivery_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (row.state, row.attempts_made, row.next_attempt_at),
            (DeliveryState::Pending, 1, Some(later))
        );
        assert_eq!(row.last_error.as_deref(), Some("HTTP 500"));
        assert_eq!(attempts.len(), 1);
        assert_eq!(
            (attempts[0].status, attempts[0].response.as_deref()),
            (Some(500), Some("answer 500"))
        );
        let status = store.destinations().await.unwrap();
        let app = status.iter().find(|d| d.id == "app").unwrap();
        assert_eq!(
            (app.pending, app.failed, app.consecutive_failures),
            (1, 0, 1),
            "{name}"
        );
        assert!(app.last_success_at.is_some() && app.last_failure_at.is_some());
        // A finish under a lease that is not the delivery's (another replica took it over) is
        // dropped on PostgreSQL.
        if name == "postgres" {
            let mut stale = finish(other, Next::Delivered, 200);
            stale.lease = c.lease.wrapping_add(1);
            store.finish(vec![stale], now_ms()).await.unwrap();
            let (row, _) = store
                .get_delivery(other.delivery_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                row.state,
                DeliveryState::Pending,
                "{name}: a stale lease changes nothing"
            );
        }
        // Resume makes the backlog due now; a retry and a replay are new deliveries.
        assert!(
            store
                .set_paused("app", true, Some("test".into()), now_ms())
                .await
                .unwrap()
        );
        assert!(
            store
                .claim("app", 10, now_ms(), 60_000, &[])
                .await
                .unwrap()
                .is_empty(),
            "{name}: paused"
        );
        assert!(
            store
                .set_paused("app", false, None, now_ms())
                .await
                .unwrap()
        );
        assert!(
            !store
                .set_paused("nope", false, None, now_ms())
                .await
                .unwrap()
        );
        let due = store.claim("app", 10, now_ms(), 60_000, &[]).await.unwrap();
        assert_eq!(due.len(), 1, "{name}: resumed, due now");
        let retried = store
            .retry_delivery(c.delivery_id, now_ms())
            .await
            .unwrap()
            .unwrap();
        assert_ne!(retried, c.delivery_id);
        assert_eq!(store.retry_delivery(987_654, now_ms()).await.unwrap(), None);
        let replayed = store
            .replay(
                "bus",
                ReplayFilter {
                    source: Some("src".into()),
                    ..ReplayFilter::default()
                },
                now_ms(),
            )
            .await
            .unwrap();
        assert_eq!(replayed, 3, "{name}: every stored event of the source");
        let of_first = store
            .list_deliveries(DeliveryQuery {
                event_id: Some(first.event_id),
                limit: 100,
                ..DeliveryQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(of_first.len(), 4, "{name}: app, bus, the retry, the replay");
        store.close().await;
    }
}

/// `copy-store` carries deliveries with their attempts and the destinations' pauses, and a
/// second run copies none of them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_store_carries_deliveries_and_their_attempts() {
    use super::outbox::{DeliveryQuery, Next, now_ms};
    let test = "copy_store_carries_deliveries_and_their_attempts";
    for source_target in targets(test).await {
        let source = source_target.open().await;
        source.register_destinations(&["app".into()]).await.unwrap();
        for k in ["x", "y", "z"] {
            source.append(delivered_to(k, &["app"])).await.unwrap();
        }
        let claimed = source.claim("app", 2, now_ms(), 60_000, &[]).await.unwrap();
        source
            .finish(
                vec![
                    finish(&claimed[0], Next::Delivered, 200),
                    finish(&claimed[1], Next::Failed, 500),
                ],
                now_ms(),
            )
            .await
            .unwrap();
        source
            .set_paused("app", true, Some("held".into()), now_ms())
            .await
            .unwrap();
        let list = |s: Arc<dyn Store>| async move {
            let mut rows = s
                .list_deliveries(DeliveryQuery {
                    limit: 100,
                    ..DeliveryQuery::default()
                })
                .await
                .unwrap();
            rows.sort_by_key(|d| d.event_id);
            let mut out = Vec::new();
            for d in rows {
                let (_, attempts) = s.get_delivery(d.id).await.unwrap().unwrap();
                out.push((
                    d.event_id,
                    d.destination,
                    d.state,
                    d.attempts_made,
                    d.next_attempt_at,
                    d.created_at,
                    d.last_error,
                    attempts,
                ));
            }
            out
        };
        let want = list(source.clone()).await;
        assert_eq!(want.len(), 3);
        for dest_target in targets(test).await {
            let name = format!("{} to {}", source_target.name(), dest_target.name());
            let dest = dest_target.open().await;
            let first = super::copy::copy(source.as_ref(), dest.as_ref(), |_| {})
                .await
                .unwrap();
            assert_eq!(
                (first.deliveries, first.deliveries_skipped),
                (3, 0),
                "{name}"
            );
            assert_eq!(list(dest.clone()).await, want, "{name}");
            let paused = dest.destinations().await.unwrap();
            assert!(
                paused.iter().any(|d| d.id == "app"
                    && d.paused
                    && d.paused_reason.as_deref() == Some("held")),
                "{name}"
            );
            let second = super::copy::copy(source.as_ref(), dest.as_ref(), |_| {})
                .await
                .unwrap();
            assert_eq!(
                (second.deliveries, second.deliveries_skipped),
                (0, 3),
                "{name}"
            );
            assert_eq!(list(dest.clone()).await.len(), 3, "{name}");
            dest.close().await;
        }
        source.close().await;
    }
}

/// Retention never removes an event whose delivery is pending or failed; an event whose
/// deliveries are all delivered goes, with its deliveries and their attempts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_every_event_with_a_delivery_pending_or_failed() {
    use super::outbox::{DeliveryQuery, Next, now_ms};
    for target in targets("retention_keeps_every_event_with_a_delivery_pending_or_failed").await {
        let name = target.name();
        let store = target.open().await;
        store.register_destinations(&["app".into()]).await.unwrap();
        let mut ids = Vec::new();
        for k in ["delivered", "failed", "pending", "none"] {
            let mut ev = if k == "none" {
                event("src", k, b"{}")
            } else {
                delivered_to(k, &["app"])
            };
            ev.received_at = "2020-01-01T00:00:00.000Z".into();
            ids.push((k, store.append(ev).await.unwrap().event_id));
        }
        let claimed = store.claim("app", 10, now_ms(), 60_000, &[]).await.unwrap();
        let of = |k: &str| {
            let id = ids.iter().find(|(n, _)| *n == k).unwrap().1;
            claimed.iter().find(|c| c.event_id == id).unwrap().clone()
        };
        store
            .finish(
                vec![
                    finish(&of("delivered"), Next::Delivered, 200),
                    finish(&of("failed"), Next::Failed, 500),
                    finish(&of("pending"), Next::RetryAt(now_ms() + 3_600_000), 503),
                ],
                now_ms(),
            )
            .await
            .unwrap();
        let pruned = store
            .prune(time::macros::datetime!(2025-01-01 0:00 UTC), 100)
            .await
            .unwrap();
        assert_eq!(
            pruned.deleted, 2,
            "{name}: the delivered one and the one without deliveries"
        );
        for (k, id) in &ids {
            let kept = store.get_event(*id).await.unwrap().is_some();
            assert_eq!(kept, matches!(*k, "failed" | "pending"), "{name}: {k}");
        }
        let left = store
            .list_deliveries(DeliveryQuery {
                limit: 100,
                ..DeliveryQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            left.len(),
            2,
            "{name}: the pruned event's delivery went with it"
        );
        assert!(
            store
                .get_delivery(of("delivered").delivery_id)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        store.close().await;
    }
}

fn hook_row(id: &str, verify: Option<&str>) -> super::HookRow {
    super::HookRow {
        id: id.into(),
        label: Some("shop \"42\" ünïcode".into()),
        kind: "identus".into(),
        payload: Some(r#"{"portal": 7, "nested": [1, {"a": null}]}"#.into()),
        verify: verify.map(|v| secrecy::SecretString::from(v.to_string())),
        expires_at: Some("2099-01-01T00:00:00Z".into()),
        created_at: "2026-12-01T10:00:00Z".into(),
        deleted_at: None,
    }
}

/// The id of hook `n` of a test: 32 hex digits.
fn hook_id(n: u32) -> String {
    format!("{n:032x}")
}

/// A hook is stored, read back whole on another replica, listed by id in pages, deleted once
/// (losing its secrets, keeping its label and payload), and never touched by retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_are_stored_listed_deleted_and_survive_retention() {
    use secrecy::ExposeSecret as _;
    let verify = r#"{"scheme":"bearer","secrets":["a-secret-of-enough-bytes"]}"#;
    for target in targets("hooks_are_stored_listed_deleted_and_survive_retention").await {
        let name = target.name();
        let store = target.open().await;
        let other = target.open().await;
        for n in (0..5).rev() {
            store
                .create_hook(hook_row(&hook_id(n), Some(verify)))
                .await
                .unwrap();
        }
        // Another replica (or a restart) reads it whole.
        let h = other.hook(&hook_id(3)).await.unwrap().unwrap();
        assert_eq!(h.label.as_deref(), Some("shop \"42\" ünïcode"), "{name}");
        assert_eq!(h.kind, "identus", "{name}");
        assert_eq!(
            h.payload.as_deref(),
            Some(r#"{"portal": 7, "nested": [1, {"a": null}]}"#),
            "{name}"
        );
        assert_eq!(
            h.verify.as_ref().map(|v| v.expose_secret().to_string()),
            Some(verify.to_string()),
            "{name}"
        );
        assert_eq!(
            h.expires_at.as_deref(),
            Some("2099-01-01T00:00:00Z"),
            "{name}"
        );
        assert!(h.deleted_at.is_none(), "{name}");
        assert!(other.hook(&hook_id(99)).await.unwrap().is_none(), "{name}");
        // Pages by id.
        let first = store.list_hooks(None, 2, false).await.unwrap();
        let ids: Vec<String> = first.iter().map(|h| h.id.clone()).collect();
        assert_eq!(ids, [hook_id(0), hook_id(1)], "{name}");
        let rest = store.list_hooks(Some(hook_id(1)), 10, false).await.unwrap();
        assert_eq!(rest.len(), 3, "{name}");
        // Deleted once; the row stays without its secrets, out of the list.
        assert!(
            store
                .delete_hook(&hook_id(2), "2026-12-01T11:00:00Z".into())
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !other
                .delete_hook(&hook_id(2), "2026-12-01T12:00:00Z".into())
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !store
                .delete_hook(&hook_id(99), "2026-12-01T12:00:00Z".into())
                .await
                .unwrap(),
            "{name}"
        );
        let gone = other.hook(&hook_id(2)).await.unwrap().unwrap();
        assert_eq!(
            gone.deleted_at.as_deref(),
            Some("2026-12-01T11:00:00Z"),
            "{name}"
        );
        assert!(
            gone.verify.is_none(),
            "{name}: a deleted hook keeps no secret"
        );
        assert_eq!(gone.label, h.label, "{name}");
        let alive = store.list_hooks(None, 100, false).await.unwrap();
        assert_eq!(alive.len(), 4, "{name}");
        assert!(alive.iter().all(|h| h.id != hook_id(2)), "{name}");
        assert_eq!(
            store.list_hooks(None, 100, true).await.unwrap().len(),
            5,
            "{name}"
        );
        // Retention prunes events, never hooks.
        let mut old = event(super::HOOKS_SOURCE, &format!("{}:k", hook_id(0)), b"{}");
        old.received_at = "2020-01-01T00:00:00.000Z".into();
        store.append(old).await.unwrap();
        let pruned = store
            .prune(time::macros::datetime!(2025-01-01 0:00 UTC), 100)
            .await
            .unwrap();
        assert_eq!(pruned.deleted, 1, "{name}");
        assert_eq!(
            store.list_hooks(None, 100, true).await.unwrap().len(),
            5,
            "{name}"
        );
        other.close().await;
        store.close().await;
    }
}

/// `?hook=` finds exactly the events of one hook, and the same dedupe key sent to two hooks is
/// two events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_filters_by_hook_and_each_hook_has_its_own_dedupe_keys() {
    use super::hooks::hook_dedupe_key;
    for target in targets("the_feed_filters_by_hook_and_each_hook_has_its_own_dedupe_keys").await {
        let name = target.name();
        let store = target.open().await;
        let (a, b) = (hook_id(0xa), hook_id(0xb));
        for hook in [&a, &b] {
            for k in ["same", "other"] {
                let appended = store
                    .append(event(super::HOOKS_SOURCE, &hook_dedupe_key(hook, k), b"{}"))
                    .await
                    .unwrap();
                assert!(!appended.duplicate, "{name}");
            }
        }
        // A configured source whose key starts like a hook's is not a hook's event.
        store
            .append(event("identus", &hook_dedupe_key(&a, "x"), b"{}"))
            .await
            .unwrap();
        let again = store
            .append(event(
                super::HOOKS_SOURCE,
                &hook_dedupe_key(&a, "same"),
                b"{}",
            ))
            .await
            .unwrap();
        assert!(again.duplicate, "{name}");
        for hook in [&a, &b] {
            let page = store
                .list_events(EventQuery {
                    hook: Some(hook.clone()),
                    ..query(100, None)
                })
                .await
                .unwrap();
            let keys: Vec<&str> = page.events.iter().map(|e| e.dedupe_key.as_str()).collect();
            assert_eq!(
                keys,
                [
                    hook_dedupe_key(hook, "same"),
                    hook_dedupe_key(hook, "other")
                ],
                "{name}"
            );
        }
        let none = store
            .list_events(EventQuery {
                hook: Some(hook_id(0xc)),
                ..query(100, None)
            })
            .await
            .unwrap();
        assert!(none.events.is_empty(), "{name}");
        store.close().await;
    }
}

/// `copy-store` carries every hook, deleted ones as deleted, and a second run copies none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_store_carries_hooks() {
    let test = "copy_store_carries_hooks";
    for source_target in targets(test).await {
        let source = source_target.open().await;
        for n in 0..3 {
            source
                .create_hook(hook_row(&hook_id(n), Some(r#"{"scheme":"none"}"#)))
                .await
                .unwrap();
        }
        source
            .delete_hook(&hook_id(1), "2026-12-01T11:00:00Z".into())
            .await
            .unwrap();
        for dest_target in targets(test).await {
            let name = format!("{} to {}", source_target.name(), dest_target.name());
            let dest = dest_target.open().await;
            // The destination has hook 1 alive: the copied deletion deletes it.
            dest.create_hook(hook_row(&hook_id(1), None)).await.unwrap();
            let first = super::copy::copy(source.as_ref(), dest.as_ref(), |_| {})
                .await
                .unwrap();
            assert_eq!((first.hooks, first.hooks_skipped), (3, 0), "{name}");
            let alive: Vec<String> = dest
                .list_hooks(None, 100, false)
                .await
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect();
            assert_eq!(alive, [hook_id(0), hook_id(2)], "{name}");
            let h = dest.hook(&hook_id(2)).await.unwrap().unwrap();
            assert_eq!(h.payload, hook_row("", None).payload, "{name}");
            let second = super::copy::copy(source.as_ref(), dest.as_ref(), |_| {})
                .await
                .unwrap();
            assert_eq!((second.hooks, second.hooks_skipped), (0, 3), "{name}");
            dest.close().await;
        }
        source.close().await;
    }
}

/// Traces (`telemetry.otlp`): the trace context an event is received in is stored with it and
/// comes back with every claim of its deliveries, first attempt or retry; an event received
/// without one (traces off) comes back without. Events with and without a context share a
/// batch (PostgreSQL writes such a batch with a statement of its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_context_comes_back_with_each_claim_of_the_events_deliveries() {
    use super::outbox::{Next, now_ms};
    const CONTEXT: &str =
        r#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#;
    for target in
        targets("the_trace_context_comes_back_with_each_claim_of_the_events_deliveries").await
    {
        let name = target.name();
        let store = target.open().await;
        store.register_destinations(&["app".into()]).await.unwrap();
        let events: Vec<NewEvent> = (0..6)
            .map(|i| {
                let mut ev = delivered_to(&format!("t{i}"), &["app"]);
                ev.trace_context = (i % 2 == 0).then(|| CONTEXT.to_string());
                ev
            })
            .collect();
        let want: std::collections::HashMap<EventId, Option<String>> = events
            .iter()
            .map(|e| (e.id, e.trace_context.clone()))
            .collect();
        for appended in join_all(events.into_iter().map(|e| store.append(e))).await {
            assert!(!appended.unwrap().duplicate, "{name}");
        }
        // Alone in its batch, without a context (the untraced statement).
        let plain = store.append(delivered_to("plain", &["app"])).await.unwrap();
        let claimed = store.claim("app", 10, now_ms(), 60_000, &[]).await.unwrap();
        assert_eq!(claimed.len(), 7, "{name}");
        for c in &claimed {
            let expected = want.get(&c.event_id).cloned().flatten();
            if c.event_id == plain.event_id {
                assert_eq!(c.trace_context, None, "{name}");
            } else {
                assert_eq!(c.trace_context, expected, "{name}: {:?}", c.event_id);
            }
        }
        // A retry is claimed with it too.
        let traced = claimed.iter().find(|c| c.trace_context.is_some()).unwrap();
        store
            .finish(vec![finish(traced, Next::RetryAt(now_ms()), 500)], now_ms())
            .await
            .unwrap();
        let busy: Vec<i64> = claimed
            .iter()
            .filter(|c| c.delivery_id != traced.delivery_id)
            .map(|c| c.delivery_id)
            .collect();
        let again = store
            .claim("app", 10, now_ms() + 1, 60_000, &busy)
            .await
            .unwrap();
        let retry = again
            .iter()
            .find(|c| c.delivery_id == traced.delivery_id)
            .unwrap_or_else(|| panic!("{name}: the retry is claimed: {again:?}"));
        assert_eq!(retry.trace_context.as_deref(), Some(CONTEXT), "{name}");
        store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_range_reads_exactly_the_events_received_in_it() {
    use time::format_description::well_known::Rfc3339;
    let base = time::macros::datetime!(2026-03-04 10:00:00 UTC);
    // 150 events 53 s apart (about 2 h 12 min), every third at a whole second (no fraction, as
    // RFC 3339 writes it), from two sources.
    let at = |i: i64| {
        let t = base + time::Duration::seconds(53 * i);
        if i % 3 == 0 {
            t
        } else {
            t + time::Duration::milliseconds(250 * (i % 4))
        }
    };
    for target in targets("a_time_range_reads_exactly_the_events_received_in_it").await {
        let name = target.name();
        let store = target.open().await;
        let mut ids = Vec::new();
        for i in 0..150 {
            let source = if i % 2 == 0 { "even" } else { "odd" };
            let mut ev = event(source, &format!("t-{i}"), b"{}");
            ev.received_at = at(i).format(&Rfc3339).unwrap();
            store.append(ev.clone()).await.unwrap();
            ids.push(ev.id);
        }
        let read_all = |q: EventQuery| {
            let store = store.clone();
            async move {
                let mut got = Vec::new();
                let mut q = EventQuery { limit: 7, ..q };
                loop {
                    let page = store.list_events(q.clone()).await.unwrap();
                    got.extend(page.events.iter().map(|e| e.id));
                    if !page.more {
                        return got;
                    }
                    q.after = Some(page.next);
                }
            }
        };
        // Inclusive at both ends, to the millisecond, whole seconds and fractions alike.
        for (lo, hi) in [(30, 90), (31, 32), (0, 149), (149, 149), (60, 60)] {
            let got = read_all(EventQuery {
                from: Some(at(lo)),
                to: Some(at(hi)),
                ..EventQuery::default()
            })
            .await;
            assert_eq!(got, ids[lo as usize..=hi as usize], "{name} {lo}..={hi}");
        }
        // Open at either end, with another filter.
        let from = read_all(EventQuery {
            from: Some(at(140) + time::Duration::milliseconds(1)),
            ..EventQuery::default()
        })
        .await;
        assert_eq!(from, ids[141..], "{name}");
        let to = read_all(EventQuery {
            to: Some(at(10) - time::Duration::milliseconds(1)),
            source: Some("odd".into()),
            ..EventQuery::default()
        })
        .await;
        assert_eq!(to, [ids[1], ids[3], ids[5], ids[7], ids[9]], "{name}");
        // Before the first and after the last: nothing.
        let none = read_all(EventQuery {
            to: Some(base - time::Duration::seconds(1)),
            ..EventQuery::default()
        })
        .await;
        assert!(none.is_empty(), "{name}");
        let none = read_all(EventQuery {
            from: Some(at(149) + time::Duration::seconds(1)),
            ..EventQuery::default()
        })
        .await;
        assert!(none.is_empty(), "{name}");

        // What each source stored since a time, and its newest event's time.
        let since = store.source_activity(at(100)).await.unwrap();
        let expect = |source: &str, events: u64, newest: i64| crate::store::SourceActivity {
            source: source.into(),
            events,
            last_received_at: at(newest).format(&Rfc3339).unwrap(),
        };
        assert_eq!(
            since,
            [expect("even", 25, 148), expect("odd", 25, 149)],
            "{name}"
        );
        assert!(
            store
                .source_activity(at(149) + time::Duration::seconds(1))
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        store.close().await;
    }
}
