//! `store.retention`: old events are deleted in batches while new ones keep arriving, nothing
//! younger than the retention goes, projections keep their state, the feed cursor never goes
//! back, the file gives space back, and the size gauges follow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookgate::config::{HumanDuration, Settings};
use hookgate::store::{EventId, NewEvent, Store};
use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::helpers::{
    GUIDE_IDENTITY, TestApp, connection_event, kratos_body, metrics_text, spawn_app_with, spawn_in,
    sqlite_only, start_binary,
};

/// How long any condition below may take to come true: generous for a loaded CI machine, while
/// every wait ends as soon as its condition holds.
const DEADLINE: Duration = Duration::from_secs(30);

fn retention(r: &str) -> impl FnOnce(&mut Settings) {
    let r = humantime::parse_duration(r).unwrap();
    move |s| s.store.retention = HumanDuration(r)
}

/// Polls `check` every 50 ms until it returns `Some`, failing with `what` after [`DEADLINE`].
async fn until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Stores `n` Identus-sized events (≈1.5 KiB) received at `at`, straight through the store, as
/// group commits; returns their ids.
async fn seed(store: &Arc<dyn Store>, n: usize, at: OffsetDateTime) -> Vec<String> {
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let store = store.clone();
        let received_at = rfc3339(at);
        tasks.spawn(async move {
            let id = EventId::new();
            let body = connection_event(
                &id.to_string(),
                &format!("conn-{i}"),
                "ConnectionResponseSent",
                "2024-05-01T10:20:30Z",
            );
            let body = format!("{body:<1536}");
            store
                .append(NewEvent {
                    id,
                    source: "identus".into(),
                    kind: "identus",
                    event_type: Some("ConnectionUpdated".into()),
                    dedupe_key: id.to_string(),
                    sender_id: None,
                    received_at,
                    headers: "{}".into(),
                    body: body.into(),
                    projection: None,
                    deliveries: Default::default(),
                    trace_context: None,
                })
                .await
                .unwrap();
            id.to_string()
        });
    }
    tasks.join_all().await
}

/// The ids of every stored event, and when the listing was answered.
async fn listed(app: &TestApp) -> (std::collections::HashSet<String>, OffsetDateTime) {
    let events = app.all_events().await;
    let at = OffsetDateTime::now_utc();
    let ids = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    (ids, at)
}

/// One acknowledged event: its id, when its request was sent, when its 2xx came back.
struct Acked {
    id: String,
    sent: OffsetDateTime,
    acked: OffsetDateTime,
}

#[tokio::test]
async fn old_events_are_pruned_in_batches_while_new_ones_keep_arriving_and_none_goes_before_its_age()
 {
    // Arrange: a backlog of old events (more than two batches), and senders that keep posting.
    let app = Arc::new(spawn_app_with(retention("1s")).await);
    let backlog = seed(
        &app.store,
        hookgate::store::retention::PRUNE_BATCH * 2 + 500,
        OffsetDateTime::now_utc() - Duration::from_secs(3600),
    )
    .await;
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let running = Arc::new(AtomicBool::new(true));
    let mut senders = JoinSet::new();
    for sender in 0..4 {
        let (app, running, acked) = (app.clone(), running.clone(), acked.clone());
        senders.spawn(async move {
            let mut n = 0;
            while running.load(Ordering::Relaxed) {
                n += 1;
                let body = connection_event(
                    &uuid::Uuid::new_v4().to_string(),
                    &format!("live-{sender}-{n}"),
                    "ConnectionResponseSent",
                    "2024-05-01T10:20:30Z",
                );
                let sent = OffsetDateTime::now_utc();
                let res = app.identus(&body).await;
                assert_eq!(
                    res.status(),
                    200,
                    "every event sent while pruning is stored"
                );
                let id = res.headers()["hookgate-event-id"]
                    .to_str()
                    .unwrap()
                    .to_string();
                acked.lock().unwrap().push(Acked {
                    id,
                    sent,
                    acked: OffsetDateTime::now_utc(),
                });
                // A steady trickle, so that one page of the feed holds every live event.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    // Act and assert: look again and again until the backlog is gone and live events have
    // aged out too; at every look, each acknowledged event younger than the retention is there.
    until("the backlog and aged live events are pruned", || async {
        let asked = OffsetDateTime::now_utc();
        let (ids, answered) = listed(&app).await;
        let acked = acked.lock().unwrap();
        for a in acked.iter() {
            // Committed before the listing was asked for, and sent less than the retention
            // before it was answered: younger than the retention all through the listing.
            if a.acked < asked && answered - a.sent < Duration::from_secs(1) {
                assert!(ids.contains(&a.id), "acknowledged event {} is stored", a.id);
            }
        }
        let backlog_gone = backlog.iter().all(|id| !ids.contains(id));
        let live_gone = acked
            .iter()
            .any(|a| a.acked < asked && !ids.contains(&a.id));
        (backlog_gone && live_gone).then_some(())
    })
    .await;
    running.store(false, Ordering::Relaxed);
    senders.join_all().await;
}

#[tokio::test]
async fn a_retention_of_zero_keeps_everything() {
    // Arrange: the same old events in a store that keeps everything and in one that prunes.
    let keeping = spawn_app_with(retention("0")).await;
    let pruning = spawn_app_with(retention("1s")).await;
    let long_ago = OffsetDateTime::now_utc() - Duration::from_secs(400 * 24 * 3600);
    let kept = seed(&keeping.store, 50, long_ago).await;
    seed(&pruning.store, 50, long_ago).await;

    // Act: give the pruning one the time it needs to prune them.
    until("the pruning store has pruned its old events", || async {
        pruning.all_events().await.is_empty().then_some(())
    })
    .await;

    // Assert: the other has every one.
    let (ids, _) = listed(&keeping).await;
    assert!(kept.iter().all(|id| ids.contains(id)), "every event kept");
    keeping.stop().await;
    pruning.stop().await;
}

#[tokio::test]
async fn a_kratos_identity_is_still_answered_the_same_after_its_event_is_pruned() {
    let app = spawn_app_with(retention("1s")).await;
    let res = app.kratos(&kratos_body(GUIDE_IDENTITY), &[]).await;
    assert_eq!(res.status(), 200);
    let event_id = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    let path = "/admin/kratos/identities/3a5293f1-f4d6-49f4-b34f-6da62c360604";
    let before = app.admin_json(path).await;
    assert_eq!(before["event_id"], event_id.as_str());

    until("the identity's event is pruned", || async {
        (app.admin_get(&format!("/admin/events/{event_id}"))
            .await
            .status()
            == 404)
            .then_some(())
    })
    .await;

    assert_eq!(app.admin_json(path).await, before);
    // A newer event for the same identity takes over again.
    let updated = GUIDE_IDENTITY.replace("\"state\": \"active\"", "\"state\": \"inactive\"");
    assert_eq!(app.kratos(&kratos_body(&updated), &[]).await.status(), 200);
    let after = app.admin_json(path).await;
    assert_eq!(after["state"], "inactive");
    assert_ne!(after["event_id"], before["event_id"]);
    app.stop().await;
}

/// Posts one Identus event and returns its event id.
async fn post_one(app: &TestApp, name: &str) -> String {
    let body = connection_event(
        &uuid::Uuid::new_v4().to_string(),
        name,
        "ConnectionResponseSent",
        "2024-05-01T10:20:30Z",
    );
    let res = app.identus(&body).await;
    assert_eq!(res.status(), 200);
    res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string()
}

/// The ids of a feed page, and its `next` cursor.
async fn page(app: &TestApp, query: &str) -> (Vec<String>, String) {
    let page = app.admin_json(&format!("/admin/events?{query}")).await;
    let ids = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    (ids, page["next"].as_str().unwrap_or_default().to_string())
}

#[tokio::test]
async fn the_feed_cursor_never_goes_back_after_everything_is_pruned_even_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // 3 s, not 1 s: each page below is read right after its events are posted and must still
    // find them; an event received late in a second can go 1.0 s later with a 1 s retention,
    // too close for a loaded machine.
    let app = spawn_in(dir.path(), retention("3s")).await;
    let first = post_one(&app, "c1").await;
    post_one(&app, "c2").await;
    // A consumer has read the first event and holds the cursor after it.
    let (ids, held) = page(&app, "limit=1").await;
    assert_eq!(ids, [first]);
    until("every event is pruned", || async {
        app.all_events().await.is_empty().then_some(())
    })
    .await;

    // What comes next is still after the cursor it holds.
    let next = post_one(&app, "after-prune").await;
    post_one(&app, "after-prune-2").await;
    let (ids, held) = page(&app, &format!("limit=1&after={held}")).await;
    assert_eq!(ids, [next]);
    until("those are pruned too", || async {
        app.all_events().await.is_empty().then_some(())
    })
    .await;
    app.stop().await;

    // Also after a restart on the emptied store.
    let app = spawn_in(dir.path(), retention("1h")).await;
    let next = post_one(&app, "after-restart").await;
    let (ids, _) = page(&app, &format!("after={held}")).await;
    assert_eq!(ids, [next]);
    app.stop().await;
}

fn file_size(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test]
async fn the_file_shrinks_after_a_large_prune() {
    if sqlite_only("the_file_shrinks_after_a_large_prune") {
        return;
    }
    // Arrange: a store of 3000 events (≈5 MiB), closed so that its WAL is folded in.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hookgate.db");
    let app = spawn_in(dir.path(), retention("0")).await;
    seed(
        &app.store,
        3000,
        OffsetDateTime::now_utc() - Duration::from_secs(3600),
    )
    .await;
    app.stop().await;
    let full = file_size(&db);
    assert!(full > 4 * 1024 * 1024, "{full} bytes");

    // Act: open it with a retention that makes every event old.
    let app = spawn_in(dir.path(), retention("1m")).await;

    // Assert: the file itself gets smaller, to a fraction of what it was.
    let small = until("the file gives space back", || async {
        let now = file_size(&db);
        (now * 4 < full).then_some(now)
    })
    .await;
    assert!(app.all_events().await.is_empty());
    assert!(small > 0);
    app.stop().await;
}

/// The value of an unlabelled gauge in a Prometheus text.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn the_size_gauges_follow_appends_and_prunes() {
    // The real binary: gauges are per process, and other tests' stores share this one's.
    let dir = tempfile::tempdir().unwrap();
    // 5 s: the 40 posts and the scrape that counts them all must end before the first one can
    // be pruned (as little as the retention after it was received), even on a loaded machine.
    let bin = start_binary(dir.path(), &[("HOOKGATE__STORE__RETENTION", "5s")], &[]);
    let client = reqwest::Client::new();
    let admin = format!("http://{}", bin.admin);
    let scrape = || async { metrics_text(&client, &admin).await };
    let start = scrape().await;
    assert_eq!(gauge(&start, "hookgate_store_events"), Some(0.0), "{start}");
    let bytes_at_start = gauge(&start, "hookgate_store_bytes").unwrap();
    assert!(bytes_at_start > 0.0);

    for i in 0..40 {
        let body = connection_event(
            &uuid::Uuid::new_v4().to_string(),
            &format!("g{i}"),
            "ConnectionResponseSent",
            "2024-05-01T10:20:30Z",
        );
        let res = client
            .post(format!("http://{}/identus/events", bin.public))
            .header("content-type", "application/json")
            .bearer_auth(crate::helpers::IDENTUS_TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    let text = scrape().await;
    assert_eq!(gauge(&text, "hookgate_store_events"), Some(40.0), "{text}");
    until("the bytes gauge shows the events written", || async {
        let text = scrape().await;
        (gauge(&text, "hookgate_store_bytes")? > bytes_at_start).then_some(())
    })
    .await;
    until(
        "the events gauge drops to 0 once they are pruned",
        || async {
            let text = scrape().await;
            (gauge(&text, "hookgate_store_events")? == 0.0).then_some(())
        },
    )
    .await;
    assert!(bin.all_events(&client).await.is_empty());
    bin.signal("TERM");
    assert!(bin.wait().await.success());
}
