//! Delivery (DESIGN.md "Delivery"): stored events reach an HTTP sink (tests/api/sink.rs) with
//! their exact bytes, signed; failures are retried on schedule, logged attempt by attempt,
//! paused and resumed; retries, replays and filters; one destination never holds up another.
//! On either backend (`HOOKGATE_TEST_BACKEND`).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, GUIDE_IDENTITY, TestApp, connection_event, eventually, kratos_body,
    spawn_app_with, spawn_in,
};
use crate::sink::{Mode, Sink};

/// A Standard Webhooks secret (24 bytes of key).
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn destination(settings: &mut hookgate::config::Settings, id: &str, block: Value) {
    settings.destinations.insert(
        id.into(),
        serde_json::from_value(block).expect("destination block"),
    );
}

/// Posts an Identus connection event; answers hookgate's event id.
async fn identus_event(app: &TestApp, n: usize) -> String {
    let body = connection_event(
        &uuid::Uuid::new_v4().to_string(),
        &uuid::Uuid::new_v4().to_string(),
        "ConnectionResponseSent",
        &format!("2024-05-01T10:20:{:02}.000000Z", n % 60),
    );
    let res = app.identus(&body).await;
    assert_eq!(res.status(), 200, "the event is accepted");
    res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string()
}

async fn admin_post(app: &TestApp, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("{}{path}", app.admin))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// The destination `id` from `/admin/destinations`.
async fn destination_status(app: &TestApp, id: &str) -> Value {
    let all = app.admin_json("/admin/destinations").await;
    all["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no destination {id} in {all:#}"))
}

#[tokio::test]
async fn an_event_reaches_the_destination_with_its_exact_bytes_signed() {
    let sink = Sink::start().await;
    let url = sink.url("/hooks?from=hookgate");
    let app = spawn_app_with(|s| {
        destination(
            s,
            "app",
            json!({"kind": "http", "url": url, "sign": {"scheme": "standard_webhooks", "secret": WHSEC},
                   "headers": {"Authorization": "Bearer app-token-0123456789"}}),
        )
    })
    .await;
    let body = connection_event(
        &uuid::Uuid::new_v4().to_string(),
        &uuid::Uuid::new_v4().to_string(),
        "ConnectionResponseSent",
        "2024-05-01T10:20:30.123456Z",
    );
    let res = app.identus(&body).await;
    assert_eq!(res.status(), 200);
    let id = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    let r = &got[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/hooks?from=hookgate");
    assert_eq!(&r.body[..], body.as_bytes(), "the exact bytes received");
    assert_eq!(r.header("content-type"), "application/json");
    assert_eq!(r.header("hookgate-event-id"), id);
    assert_eq!(r.header("hookgate-source"), "identus");
    assert_eq!(r.header("hookgate-event-type"), "ConnectionUpdated");
    assert_eq!(r.header("hookgate-attempt"), "1");
    assert_eq!(r.header("authorization"), "Bearer app-token-0123456789");
    assert_eq!(r.header("webhook-id"), id);
    // An independent implementation checks the signature.
    let wh = standardwebhooks::Webhook::new(WHSEC).unwrap();
    wh.verify(&r.body, &r.headers)
        .expect("the standardwebhooks crate accepts the signature");
    readme_consumer_accepts(r);
    // The event shows its delivery, delivered, with its one attempt.
    let event = eventually(
        &app,
        &format!("/admin/events/{id}"),
        Duration::from_secs(5),
        |e| e["deliveries"][0]["state"] == "delivered",
    )
    .await;
    let d = &event["deliveries"][0];
    assert_eq!(d["destination"], "app");
    assert_eq!(d["attempts_made"], 1);
    assert_eq!(d["event_id"], id.as_str());
    assert!(d["delivered_at"].is_string());
    let one = app
        .admin_json(&format!("/admin/deliveries/{}", d["id"]))
        .await;
    assert_eq!(one["attempts"][0]["status"], 200);
    assert_eq!(one["attempts"][0]["number"], 1);
    assert_eq!(one["attempts"][0]["error"], Value::Null);
    assert_eq!(one["attempts"][0]["response"], "ok");
    let status = destination_status(&app, "app").await;
    assert_eq!(status["state"], "active");
    assert_eq!(status["kind"], "http");
    assert_eq!(status["pending"], 0);
    assert!(status["last_success_at"].is_string(), "{status:#}");
    // A retry by the sender stores nothing new and delivers nothing more.
    assert_eq!(app.identus(&body).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.requests().len(),
        1,
        "a sender's retry is not delivered again"
    );
    let list = app
        .admin_json(&format!("/admin/deliveries?event_id={id}"))
        .await;
    assert_eq!(list["deliveries"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn failures_are_retried_on_schedule_and_every_attempt_is_logged() {
    let sink = Sink::start().await;
    sink.script(vec![Mode::Fail, Mode::Unavailable(1), Mode::Ok]);
    let url = sink.url("/");
    let app = spawn_app_with(|s| {
        destination(
            s,
            "app",
            json!({"kind": "http", "url": url, "retry": ["100ms", "100ms", "100ms"]}),
        )
    })
    .await;
    let id = identus_event(&app, 1).await;
    let got = sink.wait_for(3, Duration::from_secs(10)).await;
    let attempts: Vec<&str> = got.iter().map(|r| r.header("hookgate-attempt")).collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    assert!(
        got.iter().all(|r| r.header("hookgate-event-id") == id),
        "one id on every attempt"
    );
    // The 503 asked for a second: the third attempt waited for it.
    let waited = got[2].at - got[1].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After honoured: {waited:?}"
    );
    let event = eventually(
        &app,
        &format!("/admin/events/{id}"),
        Duration::from_secs(5),
        |e| e["deliveries"][0]["state"] == "delivered",
    )
    .await;
    let delivery = app
        .admin_json(&format!(
            "/admin/deliveries/{}",
            event["deliveries"][0]["id"]
        ))
        .await;
    let statuses: Vec<&Value> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(503), &json!(200)]);
    assert_eq!(delivery["attempts"][0]["response"], "sink failure");
    assert_eq!(delivery["attempts_made"], 3);
    assert_eq!(delivery["last_error"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn after_the_last_retry_a_delivery_fails_and_an_operator_can_retry_it() {
    let sink = Sink::start().await;
    sink.set(Mode::Fail);
    let url = sink.url("/");
    let app = spawn_app_with(|s| {
        destination(
            s,
            "app",
            json!({"kind": "http", "url": url, "retry": ["50ms"]}),
        )
    })
    .await;
    let id = identus_event(&app, 2).await;
    let failed = eventually(
        &app,
        "/admin/deliveries?state=failed",
        Duration::from_secs(10),
        |v| v["deliveries"].as_array().is_some_and(|d| d.len() == 1),
    )
    .await;
    let old = &failed["deliveries"][0];
    assert_eq!(old["event_id"], id.as_str());
    assert_eq!(old["attempts_made"], 2);
    assert_eq!(old["last_error"], "HTTP 500");
    assert_eq!(old["next_attempt_at"], Value::Null);
    assert_eq!(sink.requests().len(), 2, "two attempts, no more");
    assert_eq!(destination_status(&app, "app").await["failed"], 1);
    sink.set(Mode::Ok);
    let (status, body) = admin_post(
        &app,
        &format!("/admin/deliveries/{}/retry", old["id"]),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let new_id = body["delivery_id"].as_i64().unwrap();
    assert_ne!(json!(new_id), old["id"]);
    eventually(
        &app,
        &format!("/admin/deliveries/{new_id}"),
        Duration::from_secs(5),
        |d| d["state"] == "delivered",
    )
    .await;
    let got = sink.requests();
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[2].header("hookgate-event-id"),
        id,
        "the same event, with its id"
    );
    assert_eq!(
        got[2].header("hookgate-attempt"),
        "1",
        "a new delivery starts again at 1"
    );
    let old_now = app
        .admin_json(&format!("/admin/deliveries/{}", old["id"]))
        .await;
    assert_eq!(
        old_now["state"], "failed",
        "the old delivery keeps its state"
    );
    let (status, _) = admin_post(&app, "/admin/deliveries/999999/retry", None).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn timeouts_and_refused_connections_are_logged_by_their_kind() {
    let hanging = Sink::start().await;
    hanging.set(Mode::Hang);
    let gone = Sink::start().await;
    let gone_url = gone.url("/");
    gone.stop().await;
    let hang_url = hanging.url("/");
    let app = spawn_app_with(|s| {
        destination(
            s,
            "slow",
            json!({"kind": "http", "url": hang_url, "timeout": "300ms", "retry": ["1h"]}),
        );
        destination(
            s,
            "down",
            json!({"kind": "http", "url": gone_url, "retry": ["1h"]}),
        );
    })
    .await;
    let id = identus_event(&app, 3).await;
    for (dest, kind) in [("slow", "timeout"), ("down", "connect")] {
        let list = eventually(
            &app,
            &format!("/admin/deliveries?destination={dest}"),
            Duration::from_secs(10),
            |v| v["deliveries"][0]["attempts_made"] == 1,
        )
        .await;
        let d = &list["deliveries"][0];
        assert_eq!(d["event_id"], id.as_str());
        assert_eq!(d["state"], "pending");
        assert!(d["next_attempt_at"].is_string());
        let one = app
            .admin_json(&format!("/admin/deliveries/{}", d["id"]))
            .await;
        assert_eq!(one["attempts"][0]["error"], kind, "{one:#}");
        assert_eq!(one["attempts"][0]["status"], Value::Null);
        if kind == "timeout" {
            let ms = one["attempts"][0]["duration_ms"].as_i64().unwrap();
            assert!((250..2000).contains(&ms), "about the timeout: {ms} ms");
        }
        let status = destination_status(&app, dest).await;
        assert_eq!(status["consecutive_failures"], 1);
        assert_eq!(status["pending"], 1);
        assert!(status["oldest_pending_seconds"].as_f64().is_some());
    }
    app.stop().await;
}

#[tokio::test]
async fn a_destination_failing_for_pause_after_is_paused_and_resume_sends_its_backlog() {
    let sink = Sink::start().await;
    sink.set(Mode::Fail);
    let url = sink.url("/");
    let retry = vec!["100ms"; 50];
    let app = spawn_app_with(|s| {
        destination(
            s,
            "app",
            json!({"kind": "http", "url": url, "retry": retry, "pause_after": "400ms"}),
        )
    })
    .await;
    identus_event(&app, 4).await;
    let paused = eventually(&app, "/admin/destinations", Duration::from_secs(10), |v| {
        v["destinations"][0]["state"] == "paused"
    })
    .await;
    assert!(
        paused["destinations"][0]["paused_reason"]
            .as_str()
            .unwrap()
            .contains("pause_after"),
        "{paused:#}"
    );
    // Paused: new events are stored and queued, not attempted.
    identus_event(&app, 5).await;
    identus_event(&app, 6).await;
    let before = sink.requests().len();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        sink.requests().len(),
        before,
        "nothing is attempted while paused"
    );
    assert_eq!(
        destination_status(&app, "app").await["pending"],
        3,
        "the backlog is kept"
    );
    sink.set(Mode::Ok);
    let (status, body) = admin_post(&app, "/admin/destinations/app/resume", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], "active");
    eventually(&app, "/admin/destinations", Duration::from_secs(10), |v| {
        v["destinations"][0]["pending"] == 0
    })
    .await;
    let delivered = app.admin_json("/admin/deliveries?state=delivered").await;
    assert_eq!(delivered["deliveries"].as_array().unwrap().len(), 3);
    // An operator's pause holds too.
    let (status, body) = admin_post(&app, "/admin/destinations/app/pause", None).await;
    assert_eq!((status, &body["state"]), (200, &json!("paused")));
    let (status, _) = admin_post(&app, "/admin/destinations/nope/pause", None).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_410_pauses_the_destination_at_once_and_the_delivery_waits() {
    let sink = Sink::start().await;
    sink.set(Mode::Gone);
    let url = sink.url("/");
    let app = spawn_app_with(|s| {
        destination(
            s,
            "app",
            json!({"kind": "http", "url": url, "retry": ["50ms", "50ms"]}),
        )
    })
    .await;
    identus_event(&app, 7).await;
    let v = eventually(&app, "/admin/destinations", Duration::from_secs(10), |v| {
        v["destinations"][0]["state"] == "paused"
    })
    .await;
    assert!(
        v["destinations"][0]["paused_reason"]
            .as_str()
            .unwrap()
            .contains("410")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.requests().len(), 1, "no attempt after the 410");
    let d = app.admin_json("/admin/deliveries").await;
    assert_eq!(
        d["deliveries"][0]["state"], "pending",
        "the delivery waits with the others"
    );
    app.stop().await;
}

#[tokio::test]
async fn sources_and_event_types_choose_the_destinations() {
    let kratos_sink = Sink::start().await;
    let typed_sink = Sink::start().await;
    let (k, t) = (kratos_sink.url("/"), typed_sink.url("/"));
    let app = spawn_app_with(|s| {
        destination(
            s,
            "kratos-only",
            json!({"kind": "http", "url": k, "sources": ["kratos"]}),
        );
        destination(
            s,
            "connections",
            json!({"kind": "http", "url": t, "event_types": ["ConnectionUpdated"]}),
        );
    })
    .await;
    let res = app.kratos(&kratos_body(GUIDE_IDENTITY), &[]).await;
    assert_eq!(res.status(), 200);
    identus_event(&app, 8).await;
    let k = kratos_sink.wait_for(1, Duration::from_secs(10)).await;
    let t = typed_sink.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kratos_sink.requests().len(), 1);
    assert_eq!(typed_sink.requests().len(), 1);
    assert_eq!(k[0].header("hookgate-source"), "kratos");
    assert_eq!(t[0].header("hookgate-source"), "identus");
    app.stop().await;
}

#[tokio::test]
async fn replay_backfills_a_destination_added_after_the_events() {
    let tmp = tempfile::tempdir().unwrap();
    let app = spawn_in(tmp.path(), |_| {}).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(identus_event(&app, 10 + n).await);
    }
    let kratos = app.kratos(&kratos_body(GUIDE_IDENTITY), &[]).await;
    assert_eq!(kratos.status(), 200);
    app.stop().await;
    let sink = Sink::start().await;
    let url = sink.url("/");
    let app = spawn_in(tmp.path(), |s| {
        destination(
            s,
            "late",
            json!({"kind": "http", "url": url, "sources": ["identus"]}),
        )
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        sink.requests().is_empty(),
        "a new destination gets only new events until a replay"
    );
    let (status, body) = admin_post(&app, "/admin/destinations/late/replay", Some(json!({}))).await;
    assert_eq!(status, 202);
    assert_eq!(
        body["queued"], 3,
        "the destination's own filter holds: identus only"
    );
    let got = sink.wait_for(3, Duration::from_secs(10)).await;
    let mut seen: Vec<&str> = got.iter().map(|r| r.header("hookgate-event-id")).collect();
    seen.sort_unstable();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(seen, want);
    // A time window that holds nothing queues nothing; a bad time is 400.
    let (status, body) = admin_post(
        &app,
        "/admin/destinations/late/replay",
        Some(json!({"to": "2000-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!((status, &body["queued"]), (202, &json!(0)));
    let (status, _) = admin_post(
        &app,
        "/admin/destinations/late/replay",
        Some(json!({"from": "yesterday"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = admin_post(
        &app,
        "/admin/destinations/late/replay",
        Some(json!({"event_type": "ConnectionUpdated", "from": "2000-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!((status, &body["queued"]), (202, &json!(3)));
    sink.wait_for(6, Duration::from_secs(10)).await;
    app.stop().await;
}

#[tokio::test]
async fn a_dead_destination_does_not_hold_up_another() {
    let dead = Sink::start().await;
    dead.set(Mode::Hang);
    let fast = Sink::start().await;
    let (d, f) = (dead.url("/"), fast.url("/"));
    let app = spawn_app_with(|s| {
        destination(
            s,
            "dead",
            json!({"kind": "http", "url": d, "timeout": "30s", "max_in_flight": 2}),
        );
        // The attempts hanging at the end are cut off (and given back) at once.
        s.server.shutdown_timeout = hookgate::config::HumanDuration(Duration::from_millis(300));
        destination(s, "fast", json!({"kind": "http", "url": f}));
    })
    .await;
    let started = Instant::now();
    for n in 0..10 {
        identus_event(&app, 20 + n).await;
    }
    fast.wait_for(10, Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        dead.requests().len(),
        2,
        "max_in_flight: two attempts at once to the dead one"
    );
    assert_eq!(destination_status(&app, "dead").await["pending"], 10);
    app.stop().await;
}

/// The consumer's check in the README ("Delivering events"), run with python3 on what the sink
/// received: it accepts it, and refuses it with one byte of the body changed.
fn readme_consumer_accepts(r: &crate::sink::Received) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("def verified(")
        .expect("the README shows the consumer's check");
    let block_start = readme[..start].rfind("```python\n").unwrap() + "```python\n".len();
    let block_end = block_start + readme[block_start..].find("```").unwrap();
    let snippet = &readme[block_start..block_end];
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    std::fs::write(&body, &r.body).unwrap();
    let mut tampered = r.body.to_vec();
    tampered[0] ^= 1;
    let bad = dir.path().join("bad");
    std::fs::write(&bad, &tampered).unwrap();
    let script = format!(
        "{snippet}\nimport sys\nh = {{'webhook-id': sys.argv[1], 'webhook-timestamp': sys.argv[2], 'webhook-signature': sys.argv[3]}}\nprint(verified('{WHSEC}', h, open(sys.argv[4], 'rb').read()), verified('{WHSEC}', h, open(sys.argv[5], 'rb').read()))\n"
    );
    let out = match std::process::Command::new("python3")
        .args([
            "-c",
            &script,
            r.header("webhook-id"),
            r.header("webhook-timestamp"),
            r.header("webhook-signature"),
        ])
        .arg(&body)
        .arg(&bad)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            println!("the README's python check: skipped (no python3: {e})");
            return;
        }
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "True False");
}
