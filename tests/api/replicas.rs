//! Several replicas on one PostgreSQL database, over HTTP (issue 10, "Done when"): copies of one
//! event spread over three replicas are stored once under one id, a reader paging the feed while
//! they insert misses nothing and repeats nothing, and killed database connections under load
//! lose no acknowledged event and store none twice.
//!
//! PostgreSQL only: each test runs when `HOOKGATE_TEST_POSTGRES_URL` is set (whatever
//! `HOOKGATE_TEST_BACKEND` says), on a fresh schema of its own, dropped after, and says
//! "skipped" otherwise. The replicas are [`Application`](hookgate::startup::Application)s of
//! this process with the same configuration and the same store URL; their connections carry an
//! `application_name` of this test alone, so a test kills its own connections and no other's.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::helpers::{
    IDENTUS_TOKEN, PgSchemaGuard, TestApp, accepted, connection_event, kratos_body, pg_execute,
    spawn_app_with, spawn_in,
};

async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("the PostgreSQL test server answers");
    tokio::spawn(conn);
    client
}

/// `n` replicas on one fresh schema.
struct Replicas {
    apps: Vec<TestApp>,
    /// The `application_name` of every connection the replicas make.
    app_name: String,
    /// The test server, for a connection of the test's own.
    base: String,
    schema: PgSchemaGuard,
}

impl Replicas {
    /// Stops every replica (as SIGTERM would), then drops the schema.
    async fn stop(self) {
        for app in self.apps {
            app.stop().await;
        }
        drop(self.schema);
    }
}

/// Starts `n` replicas with the test configuration on one new schema, or says the test is
/// skipped and returns `None` when `HOOKGATE_TEST_POSTGRES_URL` is unset. `busy_timeout`:
/// the store's `statement_timeout`.
async fn replicas(test: &str, n: usize, busy_timeout: Option<Duration>) -> Option<Replicas> {
    let Ok(base) = std::env::var("HOOKGATE_TEST_POSTGRES_URL") else {
        println!("{test}: skipped (HOOKGATE_TEST_POSTGRES_URL is unset)");
        return None;
    };
    let tag = uuid::Uuid::new_v4().simple().to_string();
    // `hg_api_PID_…`: a later run of the suite drops it if this process dies first.
    let schema = PgSchemaGuard {
        base: base.clone(),
        schema: format!("hg_api_{}_rep{tag}", std::process::id()),
    };
    pg_execute(&base, &format!("CREATE SCHEMA {}", schema.schema));
    let app_name = format!("hookgate_rep_{tag}");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!(
        "{base}{sep}options=-csearch_path%3D{}&application_name={app_name}",
        schema.schema
    );
    let customize = |s: &mut hookgate::config::Settings| {
        s.store.url = url.clone();
        s.store.pool_size = 8;
        if let Some(t) = busy_timeout {
            s.store.busy_timeout = Some(hookgate::config::HumanDuration(t));
        }
    };
    // The first owns the folder (its configuration file, and on a PostgreSQL run of the suite
    // the folder's own schema, unused here, which it drops); the others share it.
    let first = spawn_app_with(customize).await;
    let dir = first.dir.clone();
    let mut apps = vec![first];
    for _ in 1..n {
        apps.push(spawn_in(&dir, customize).await);
    }
    Some(Replicas {
        apps,
        app_name,
        base,
        schema,
    })
}

/// Polls `check` until it returns `Some`, panicking with `what` after `within`.
async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An Identus connection event whose envelope `id` is `id`.
fn identus_event(id: &str) -> String {
    connection_event(
        id,
        &uuid::Uuid::new_v4().to_string(),
        "ConnectionResponseSent",
        "2024-05-01T10:20:30.123456Z",
    )
}

/// A Kratos identity body of its own.
fn kratos_event(identity_id: &str) -> String {
    kratos_body(&format!(
        r#"{{"id":"{identity_id}","schema_id":"default","state":"active","traits":{{"email":"{identity_id}@example.org"}}}}"#
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copies_of_one_event_spread_over_three_replicas_are_stored_once_under_one_id() {
    let test = "copies_of_one_event_spread_over_three_replicas_are_stored_once_under_one_id";
    let started = Instant::now();
    let Some(r) = replicas(test, 3, None).await else {
        return;
    };
    const COPIES: usize = 64;
    // (dedupe key, stored id) of each event sent.
    let mut stored: Vec<(String, String)> = Vec::new();
    for round in 0..5 {
        let kratos = round >= 3;
        let key = uuid::Uuid::new_v4().to_string();
        let body = if kratos {
            kratos_event(&uuid::Uuid::new_v4().to_string())
        } else {
            identus_event(&key)
        };
        let answers = join_all((0..COPIES).map(|i| {
            let (app, body, key) = (&r.apps[i % r.apps.len()], &body, &key);
            async move {
                let res = if kratos {
                    // Kratos v25.4+: one trigger id, a request id per attempt.
                    let request = format!("request-{i}");
                    app.kratos(
                        body,
                        &[
                            ("ory-webhook-trigger-id", key.as_str()),
                            ("ory-webhook-request-id", request.as_str()),
                        ],
                    )
                    .await
                } else {
                    app.identus(body).await
                };
                if kratos {
                    kratos_accepted(res).await
                } else {
                    let (id, duplicate) = accepted(res).await;
                    (id, Some(duplicate))
                }
            }
        }))
        .await;
        let id = answers[0].0.clone();
        assert!(
            answers.iter().all(|(got, _)| *got == id),
            "round {round}: one id in every answer: {answers:?}"
        );
        if !kratos {
            let firsts = answers
                .iter()
                .filter(|(_, dup)| *dup == Some(false))
                .count();
            assert_eq!(firsts, 1, "round {round}: one answer stored it");
        }
        for app in &r.apps {
            // Straight from the store of any replica...
            let event = app.admin_json(&format!("/admin/events/{id}")).await;
            assert_eq!(event["id"], id.as_str());
            if !kratos {
                assert_eq!(event["dedupe_key"], key.as_str());
            }
        }
        stored.push((event_dedupe_key(&r.apps[0], &id).await, id));
    }
    // ... and in the feed of every replica: each event once, nothing else.
    let expected: HashMap<String, String> = stored.iter().cloned().collect();
    assert_eq!(expected.len(), stored.len(), "one dedupe key per event");
    for (n, app) in r.apps.iter().enumerate() {
        let events = eventually(
            &format!("replica {n} shows every event"),
            Duration::from_secs(5),
            || async {
                let events = app.all_events().await;
                (events.len() >= stored.len()).then_some(events)
            },
        )
        .await;
        let got: HashMap<String, String> = events
            .iter()
            .map(|e| {
                (
                    e["dedupe_key"].as_str().unwrap().to_string(),
                    e["id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(events.len(), stored.len(), "replica {n}: each event once");
        assert_eq!(got, expected, "replica {n}");
    }
    println!(
        "{test}: {} events ({} Identus, {} Kratos trigger ids) x {COPIES} copies over {} replicas: stored once each ({:.1?})",
        stored.len(),
        3,
        2,
        r.apps.len(),
        started.elapsed()
    );
    r.stop().await;
}

/// The event id of a Kratos 200: in `Hookgate-Event-Id` only (the body is Kratos' `{}`, which
/// says nothing about duplicates).
async fn kratos_accepted(res: reqwest::Response) -> (String, Option<bool>) {
    assert_eq!(res.status(), 200);
    let id = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({}));
    (id, None)
}

async fn event_dedupe_key(app: &TestApp, id: &str) -> String {
    let event = app.admin_json(&format!("/admin/events/{id}")).await;
    event["dedupe_key"].as_str().unwrap().to_string()
}

/// Posts an Identus event until it is answered 2xx, retrying each 503 (which must carry
/// `Retry-After`; any other answer fails the test), within `deadline`. Returns the event id of the 2xx and how
/// many attempts were retried.
async fn post_until_accepted(app: &TestApp, body: &str, deadline: Instant) -> (String, u64) {
    let auth = format!("Bearer {IDENTUS_TOKEN}");
    let mut retries = 0;
    loop {
        let res = app
            .client
            .post(format!("{}/identus/events", app.base))
            .header("content-type", "application/json")
            .header("authorization", &auth)
            .body(body.to_string())
            .send()
            .await;
        match res {
            Ok(res) if res.status().is_success() => return (accepted(res).await.0, retries),
            Ok(res) => {
                // A fault of the store is a 503 with `Retry-After`, nothing else.
                assert_eq!(
                    res.status(),
                    503,
                    "{}",
                    res.text().await.unwrap_or_default()
                );
                assert!(
                    res.headers().contains_key("retry-after"),
                    "503 without Retry-After"
                );
            }
            Err(e) => panic!("the replica dropped a request: {e}"),
        }
        retries += 1;
        assert!(Instant::now() < deadline, "an event not accepted in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_paging_the_feed_while_three_replicas_insert_sees_each_event_once_in_one_order() {
    let test =
        "a_reader_paging_the_feed_while_three_replicas_insert_sees_each_event_once_in_one_order";
    let started = Instant::now();
    let Some(r) = replicas(test, 3, None).await else {
        return;
    };
    const PER_REPLICA: usize = 300;
    const IN_FLIGHT: usize = 8;
    let deadline = Instant::now() + Duration::from_secs(25);
    let done = AtomicBool::new(false);
    let senders = async {
        let acked = join_all(r.apps.iter().flat_map(|app| {
            (0..IN_FLIGHT).map(move |w| async move {
                let mut ids = Vec::new();
                for _ in (w..PER_REPLICA).step_by(IN_FLIGHT) {
                    let body = identus_event(&uuid::Uuid::new_v4().to_string());
                    ids.push(post_until_accepted(app, &body, deadline).await.0);
                }
                ids
            })
        }))
        .await;
        done.store(true, Ordering::SeqCst);
        acked.into_iter().flatten().collect::<Vec<_>>()
    };
    // The reader: pages from the start with `next` on the first replica.
    let reader = async {
        let app = &r.apps[0];
        let mut seen: Vec<String> = Vec::new();
        let mut after = String::new();
        let mut pages = 0u64;
        let mut seen_while_inserting = 0;
        loop {
            let finished = done.load(Ordering::SeqCst);
            if !finished {
                seen_while_inserting = seen.len();
            }
            let page = app
                .admin_json(&format!("/admin/events?limit=50&after={after}"))
                .await;
            pages += 1;
            let events = page["events"].as_array().unwrap();
            seen.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_string()));
            after = page["next"].as_str().unwrap().to_string();
            if page["more"] != true {
                // Caught up with what it may see: once the senders were done before this read
                // and it shows everything, stop.
                if finished && seen.len() >= r.apps.len() * PER_REPLICA {
                    return (seen, pages, seen_while_inserting);
                }
                assert!(Instant::now() < deadline, "the reader did not catch up");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    let (acked, (seen, pages, seen_while_inserting)) = tokio::join!(senders, reader);
    assert!(
        seen_while_inserting > 0,
        "the reader saw nothing while the replicas inserted"
    );
    let acked_set: HashSet<&String> = acked.iter().collect();
    assert_eq!(
        acked_set.len(),
        acked.len(),
        "every event acknowledged once"
    );
    let seen_set: HashSet<&String> = seen.iter().collect();
    assert_eq!(seen_set.len(), seen.len(), "the reader saw an event twice");
    assert_eq!(
        seen_set, acked_set,
        "the reader saw exactly the acknowledged events"
    );
    // The order it saw is the feed's order for good, on every replica.
    for (n, app) in r.apps.iter().enumerate() {
        let again: Vec<String> = app
            .all_events()
            .await
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        assert!(
            again == seen,
            "replica {n}: a re-read from the start shows another order"
        );
    }
    println!(
        "{test}: {} events acknowledged by {} replicas, seen once each in {pages} pages ({seen_while_inserting} of them while they were being inserted), same order on re-read from every replica ({:.1?})",
        acked.len(),
        r.apps.len(),
        started.elapsed()
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_database_connections_under_load_lose_no_acknowledged_event_and_store_none_twice() {
    let test =
        "killed_database_connections_under_load_lose_no_acknowledged_event_and_store_none_twice";
    let started = Instant::now();
    let Some(r) = replicas(test, 2, Some(Duration::from_secs(1))).await else {
        return;
    };
    const PER_REPLICA: usize = 400;
    const IN_FLIGHT: usize = 8;
    let deadline = Instant::now() + Duration::from_secs(25);
    let done = AtomicBool::new(false);
    let retries = AtomicU64::new(0);
    let admin = pg_client(&r.base).await;
    let senders = async {
        let acked = join_all(r.apps.iter().flat_map(|app| {
            let retries = &retries;
            (0..IN_FLIGHT).map(move |w| async move {
                let mut acked = Vec::new();
                for _ in (w..PER_REPLICA).step_by(IN_FLIGHT) {
                    let key = uuid::Uuid::new_v4().to_string();
                    let (id, retried) =
                        post_until_accepted(app, &identus_event(&key), deadline).await;
                    retries.fetch_add(retried, Ordering::Relaxed);
                    acked.push((key, id));
                }
                acked
            })
        }))
        .await;
        done.store(true, Ordering::SeqCst);
        acked.into_iter().flatten().collect::<Vec<_>>()
    };
    let killer = async {
        let (mut kills, mut rounds) = (0u64, 0u64);
        while !done.load(Ordering::SeqCst) {
            let rows = admin
                .query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid() \
                       AND application_name = $1",
                    &[&r.app_name],
                )
                .await
                .unwrap();
            kills += rows.len() as u64;
            rounds += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        (kills, rounds)
    };
    let (acked, (kills, rounds)) = tokio::join!(senders, killer);
    assert!(kills > 0, "no connection of the replicas was killed");
    // Every replica recovers without a restart.
    for (n, app) in r.apps.iter().enumerate() {
        eventually(
            &format!("replica {n}: /readyz 200 again"),
            Duration::from_secs(10),
            || async { (app.get("/readyz").await.status() == 200).then_some(()) },
        )
        .await;
    }
    // Every acknowledged event is stored once, under the id it was acknowledged with.
    let expected: HashMap<String, String> = acked.iter().cloned().collect();
    assert_eq!(expected.len(), acked.len(), "distinct events");
    for (n, app) in r.apps.iter().enumerate() {
        let events = app.all_events().await;
        let mut got: HashMap<String, String> = HashMap::new();
        for e in &events {
            let key = e["dedupe_key"].as_str().unwrap().to_string();
            let id = e["id"].as_str().unwrap().to_string();
            assert!(
                got.insert(key.clone(), id).is_none(),
                "replica {n}: {key} stored twice"
            );
        }
        let lost = expected.keys().filter(|k| !got.contains_key(*k)).count();
        let wrong_id = expected
            .iter()
            .filter(|(k, id)| got.get(*k).is_some_and(|g| g != *id))
            .count();
        assert_eq!(
            (lost, wrong_id),
            (0, 0),
            "replica {n}: acknowledged events lost / stored under another id"
        );
        assert_eq!(
            events.len(),
            expected.len(),
            "replica {n}: total = distinct"
        );
    }
    // And they take events again.
    for app in &r.apps {
        let key = uuid::Uuid::new_v4().to_string();
        assert!(!accepted(app.identus(&identus_event(&key)).await).await.1);
    }
    println!(
        "{test}: {} events acknowledged by {} replicas; {kills} connections killed in {rounds} rounds; {} retries (503 answers); 0 lost, 0 twice; /readyz 200 again ({:.1?})",
        acked.len(),
        r.apps.len(),
        retries.load(Ordering::Relaxed),
        started.elapsed()
    );
    r.stop().await;
}
