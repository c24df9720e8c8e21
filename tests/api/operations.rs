//! Operations: health, limits (413, 408, 503), the store's 503, restarts, SIGTERM.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness_answer_and_unknown_paths_are_404() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    let res = app
        .post("/nowhere", &[("content-type", "application/json")], "{}")
        .await;
    assert_eq!(res.status(), 404);
    let res = app.get("/identus/events").await;
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "POST");
    app.stop().await;
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_keeps_the_callers() {
    let app = spawn_app().await;
    let res = app.identus(IDENTUS_DID).await;
    assert!(res.headers().contains_key("x-request-id"));
    let auth = format!("Bearer {IDENTUS_TOKEN}");
    let res = app
        .post(
            "/identus/events",
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
                ("x-request-id", "proxy-42"),
            ],
            IDENTUS_DID,
        )
        .await;
    assert_eq!(res.headers()["x-request-id"], "proxy-42");
    app.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_whether_announced_or_streamed() {
    let app = spawn_app().await;
    // identus_by_key has body_limit 2KiB.
    let big = IDENTUS_DID.replace("PUBLISHED", &"P".repeat(3000));
    let res = app
        .post(
            "/identus/keyed",
            &[
                ("content-type", "application/json"),
                ("x-hook-key", "identus-api-key-0001"),
            ],
            big.clone(),
        )
        .await;
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // The same body is fine where the server-wide 1MiB applies.
    accepted(app.identus(&big).await).await;

    // Chunked, with no Content-Length to go by.
    let mut s = app.raw().await;
    let head = "POST /identus/keyed HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-hook-key: identus-api-key-0001\r\ntransfer-encoding: chunked\r\n\r\n";
    write_all(&mut s, head.as_bytes()).await;
    for _ in 0..4 {
        write_all(
            &mut s,
            format!("400\r\n{}\r\n", "x".repeat(1024)).as_bytes(),
        )
        .await;
    }
    write_all(&mut s, b"0\r\n\r\n").await;
    let answer = read_response(&mut s, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Kratos sources answer in Kratos' format.
    let app2 = spawn_app_with(|s| s.server.body_limit = hookgate::config::ByteSize(100)).await;
    let res = app2.kratos(&kratos_body(GUIDE_IDENTITY), &[]).await;
    assert_eq!(res.status(), 413);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["messages"][0]["messages"][0]["id"],
        6
    );
    assert_eq!(app.all_events().await.len(), 1);
    assert!(app2.all_events().await.is_empty());
    app.stop().await;
    app2.stop().await;
}

#[tokio::test]
async fn a_body_slower_than_the_request_timeout_is_408() {
    let app = spawn_app().await; // request_timeout: 2s
    let mut s = app.raw().await;
    let head = identus_head(IDENTUS_DID.len());
    write_all(&mut s, head.as_bytes()).await;
    write_all(&mut s, &IDENTUS_DID.as_bytes()[..20]).await;
    let started = std::time::Instant::now();
    let answer = read_response(&mut s, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"));
    assert!(started.elapsed() < Duration::from_secs(8));
    assert!(app.all_events().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn past_the_concurrency_limit_requests_are_shed_with_503_and_service_recovers() {
    let app = spawn_app_with(|s| s.server.max_concurrent_requests = 1).await;
    // One slow request holds the only slot.
    let mut slow = app.raw().await;
    let head = identus_head(IDENTUS_DID.len());
    write_all(&mut slow, head.as_bytes()).await;
    write_all(&mut slow, &IDENTUS_DID.as_bytes()[..10]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let res = app.identus(IDENTUS_CONNECTION).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");

    // The slow one finishes; the slot frees; the shed event now goes in.
    write_all(&mut slow, &IDENTUS_DID.as_bytes()[10..]).await;
    let answer = read_response(&mut slow, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(slow);
    accepted(app.identus(IDENTUS_CONNECTION).await).await;
    assert_eq!(app.all_events().await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn when_the_store_cannot_take_a_write_the_answer_is_503_and_it_recovers_alone() {
    if sqlite_only("when_the_store_cannot_take_a_write_the_answer_is_503_and_it_recovers_alone") {
        return;
    }
    let app = spawn_app_with(|s| {
        s.store.busy_timeout = Some(hookgate::config::HumanDuration(Duration::from_millis(200)))
    })
    .await;
    accepted(app.identus(IDENTUS_DID).await).await;

    // Another process holds the write lock.
    let db = rusqlite::Connection::open(app.dir.join("hookgate.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let res = app.identus(IDENTUS_CONNECTION).await;
    assert_eq!(res.status(), 503, "never a 2xx without a commit");
    assert!(res.headers().contains_key("retry-after"));
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503, "readiness reports the failing store");

    db.execute_batch("COMMIT").unwrap();
    drop(db);
    let (_, dup) = accepted(app.identus(IDENTUS_CONNECTION).await).await;
    assert!(
        !dup,
        "the refused event was not stored, so the retry is its first copy"
    );
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert_eq!(app.all_events().await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn stored_events_survive_a_restart_and_retries_still_dedupe() {
    let tmp = tempfile::tempdir().unwrap();
    let app = spawn_in(tmp.path(), |_| {}).await;
    let (id, _) = accepted(app.abp(ABP_BODY_1).await).await;
    accepted(app.identus(IDENTUS_CONNECTION).await).await;
    app.stop().await;

    let app = spawn_in(tmp.path(), |_| {}).await;
    let raw = app.admin_get(&format!("/admin/events/{id}/raw")).await;
    assert_eq!(raw.bytes().await.unwrap(), ABP_BODY_1.as_bytes());
    let (again, dup) = accepted(app.abp(ABP_BODY_2).await).await;
    assert_eq!((again.as_str(), dup), (id.as_str(), true));
    assert_eq!(
        app.admin_json("/admin/identus/connections/0527aea1-d131-3948-a34d-03af39aba8b4")
            .await["state"],
        "ConnectionResponseSent"
    );
    assert_eq!(app.all_events().await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_commits_and_exits_0() {
    if sqlite_only("sigterm_lets_in_flight_requests_finish_commits_and_exits_0") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut bin = start_binary(tmp.path(), &[], &[]);
    let (public, admin) = (bin.public.clone(), bin.admin.clone());
    let logs = std::mem::replace(&mut bin.logs, std::sync::mpsc::channel().1);
    let client = reqwest::Client::new();
    let auth = format!("Bearer {IDENTUS_TOKEN}");
    let res = client
        .post(format!("http://{public}/identus/events"))
        .header("content-type", "application/json")
        .header("authorization", &auth)
        .body(IDENTUS_DID)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // A request in flight when the signal comes.
    let mut s = tokio::net::TcpStream::connect(&public).await.unwrap();
    let head = identus_head(IDENTUS_CONNECTION.len());
    write_all(&mut s, head.as_bytes()).await;
    write_all(&mut s, &IDENTUS_CONNECTION.as_bytes()[..40]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    bin.signal("TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_all(&mut s, &IDENTUS_CONNECTION.as_bytes()[40..]).await;
    let answer = read_response(&mut s, Duration::from_secs(5)).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the in-flight request completes: {answer}"
    );
    drop(s);

    let status = bin.wait().await;
    assert!(status.success(), "exit status {status:?}");
    assert!(
        tokio::net::TcpStream::connect(&admin).await.is_err(),
        "listeners are closed"
    );

    // Both events are in the store: a new instance finds them.
    let app = spawn_in(tmp.path(), |_| {}).await;
    assert_eq!(app.all_events().await.len(), 2);
    app.stop().await;

    // One info line per accepted event, with its request id, and no body or secret in any line.
    let lines: Vec<String> = logs.try_iter().collect();
    let accepted_lines: Vec<serde_json::Value> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "event accepted")
        .collect();
    assert_eq!(accepted_lines.len(), 2, "{lines:#?}");
    for line in &accepted_lines {
        assert_eq!(line["level"], "INFO");
        assert!(
            line["span"]["request_id"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
            "{line}"
        );
        assert_eq!(line["fields"]["source"], "identus");
    }
    for line in &lines {
        for leak in [IDENTUS_TOKEN, "did:prism", "Peter", "did:peer"] {
            assert!(!line.contains(leak), "{leak} in log line {line}");
        }
    }
}

/// PostgreSQL's counterpart of the SQLite lock test above: another program holds the events
/// table; a write answers 503 with `Retry-After` within seconds (`store.busy_timeout` as
/// `statement_timeout`), never 2xx, and the store recovers alone.
#[tokio::test]
async fn on_postgres_a_write_held_up_by_a_lock_is_503_within_seconds_and_recovers() {
    if postgres_base().is_none() {
        println!("skipped: runs with HOOKGATE_TEST_BACKEND=postgres");
        return;
    }
    let app = spawn_app_with(|s| {
        s.store.busy_timeout = Some(hookgate::config::HumanDuration(Duration::from_millis(500)))
    })
    .await;
    accepted(app.identus(IDENTUS_DID).await).await;
    let (mut client, conn) = tokio_postgres::connect(&store_url(&app), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tx = client.transaction().await.unwrap();
    // SHARE, not ACCESS EXCLUSIVE: that one takes a transaction id, holding back the feed of
    // every other test on the server meanwhile.
    tx.batch_execute("LOCK TABLE events IN SHARE MODE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let res = app.identus(IDENTUS_CONNECTION).await;
    assert_eq!(res.status(), 503, "never a 2xx without a commit");
    assert!(res.headers().contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered after {:?}",
        started.elapsed()
    );
    tx.rollback().await.unwrap();
    accepted(app.identus(IDENTUS_CONNECTION).await).await;
    assert_eq!(app.all_events().await.len(), 2);
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.stop().await;
}
