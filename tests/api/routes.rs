//! Sources added and removed while hookgate runs (the routing that registered hooks will use):
//! served at once, counted in the metrics under their own id, refused once removed.

use std::sync::Arc;

use hookgate::config::SourceSettings;
use hookgate::receive::Source;

use crate::helpers::{IDENTUS_DID, connection_event, metrics_text, spawn_app};

const LATE_TOKEN: &str = "late-token-0123456789abcdef";

fn late_source(path: &str) -> SourceSettings {
    serde_json::from_value(serde_json::json!({
        "kind": "identus",
        "path": path,
        "verify": { "scheme": "bearer", "secrets": [LATE_TOKEN] },
    }))
    .unwrap()
}

#[tokio::test]
async fn a_source_added_while_running_is_served_counted_and_removed_at_once() {
    // Arrange
    let app = spawn_app().await;
    let auth = format!("Bearer {LATE_TOKEN}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    let body = connection_event(
        "5d0a5e1c-0000-4000-8000-0000000001a7",
        "c-late",
        "ConnectionResponseSent",
        "2024-05-01T10:00:00Z",
    );
    let before = app.post("/late/events", &headers, body.clone()).await;
    assert_eq!(
        before.status(),
        404,
        "nothing is there before the source is added"
    );

    // Act
    let settings = late_source("/late/events");
    let kind = hookgate::sources::build(&settings).unwrap();
    let source = Source::new("late", &settings, kind, 64 * 1024, app.store.clone());
    app.routes.add(Arc::new(source)).unwrap();

    // Assert: verified, stored under its own source id, answered like any identus source.
    let unauthorized = app
        .post(
            "/late/events",
            &[("content-type", "application/json")],
            body.clone(),
        )
        .await;
    assert_eq!(unauthorized.status(), 401);
    let res = app.post("/late/events", &headers, body.clone()).await;
    assert_eq!(res.status(), 200);
    let event_id = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    let again = app.post("/late/events", &headers, body.clone()).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["hookgate-event-id"], event_id.as_str());
    let stored = app.admin_json(&format!("/admin/events/{event_id}")).await;
    assert_eq!(stored["source"], "late");
    assert_eq!(stored["kind"], "identus");
    let metrics = metrics_text(&app.client, &app.admin).await;
    for line in [
        r#"hookgate_requests_total{source="late",status="200"} 2"#,
        r#"hookgate_requests_total{source="late",status="401"} 1"#,
        r#"hookgate_verification_failures_total{source="late",scheme="bearer"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}\n{metrics}"
        );
    }

    // A path that is taken is refused; the configured sources still work.
    let clash = late_source("/identus/events");
    let kind = hookgate::sources::build(&clash).unwrap();
    let taken = app
        .routes
        .add(Arc::new(Source::new(
            "clash",
            &clash,
            kind,
            1024,
            app.store.clone(),
        )))
        .unwrap_err();
    assert_eq!(&*taken.owner, "identus");
    assert_eq!(app.identus(IDENTUS_DID).await.status(), 200);

    // Removed: 404 again, nothing more stored.
    assert!(app.routes.remove("/late/events").is_some());
    let after = app.post("/late/events", &headers, body).await;
    assert_eq!(after.status(), 404);
    app.stop().await;
}
