//! The admin listener: token, event list and cursor, single events, projections, metrics.

use crate::helpers::*;

#[tokio::test]
async fn the_admin_api_needs_the_token_but_metrics_do_not() {
    let app = spawn_app().await;
    for auth in [None, Some("Bearer wrong-token"), Some("Basic YWRtaW4=")] {
        let mut req = app.client.get(format!("{}/admin/events", app.admin));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
        assert!(res.headers().contains_key("www-authenticate"));
    }
    accepted(app.identus(IDENTUS_DID).await).await;
    let _ = app
        .post(
            "/identus/events",
            &[("content-type", "application/json")],
            IDENTUS_DID,
        )
        .await;
    let text = metrics_text(&app.client, &app.admin).await;
    for name in [
        r#"hookgate_requests_total{source="identus",status="200"}"#,
        r#"hookgate_requests_total{source="identus",status="401"}"#,
        r#"hookgate_verification_failures_total{source="identus",scheme="bearer"}"#,
        "hookgate_store_commit_seconds_bucket",
        "hookgate_store_batch_size_bucket",
        "hookgate_requests_in_flight",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    assert!(
        !text.contains(IDENTUS_TOKEN) && !text.contains("4e5f6a7b"),
        "no secrets or event ids in metrics"
    );
    app.stop().await;
}

#[tokio::test]
async fn events_are_listed_oldest_first_in_pages_with_filters() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = connection_event(
            &uuid::Uuid::new_v4().to_string(),
            &format!("conn-{i}"),
            "InvitationGenerated",
            "2024-05-01T10:00:00Z",
        );
        ids.push(accepted(app.identus(&body).await).await.0);
    }
    ids.push(accepted(app.abp(ABP_BODY_1).await).await.0);

    let mut seen = Vec::new();
    let mut path = "/admin/events?limit=2".to_string();
    loop {
        let page = app.admin_json(&path).await;
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= 2);
        seen.extend(events.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        if page["more"] != true {
            break;
        }
        path = format!(
            "/admin/events?limit=2&after={}",
            page["next"].as_str().unwrap()
        );
    }
    assert_eq!(seen, ids, "every event once, newest last");

    let abp = app.admin_json("/admin/events?source=abp").await;
    assert_eq!(abp["events"].as_array().unwrap().len(), 1);
    assert_eq!(abp["more"], false);
    assert_eq!(abp["next"], abp["events"][0]["cursor"]);
    let typed = app
        .admin_json("/admin/events?event_type=ConnectionUpdated&limit=10")
        .await;
    assert_eq!(typed["events"].as_array().unwrap().len(), 5);
    let event = &typed["events"][0];
    for key in [
        "id",
        "source",
        "kind",
        "event_type",
        "dedupe_key",
        "received_at",
        "payload",
    ] {
        assert!(!event[key].is_null(), "{key}");
    }
    let none = app.admin_json("/admin/events?source=nobody").await;
    assert!(none["events"].as_array().unwrap().is_empty());

    for bad in [
        "limit=0",
        "limit=5000",
        "limit=x",
        "after=-1",
        "after=abc",
        "colour=red",
    ] {
        assert_eq!(
            app.admin_get(&format!("/admin/events?{bad}"))
                .await
                .status(),
            400,
            "{bad}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let app = spawn_app().await;
    accepted(app.identus(IDENTUS_DID).await).await;
    for path in [
        "/admin/events/0190f0a0-0000-7000-8000-000000000000",
        "/admin/events/not-a-uuid",
        "/admin/events/0190f0a0-0000-7000-8000-000000000000/raw",
        "/admin/kratos/identities/3a5293f1-f4d6-49f4-b34f-6da62c360604",
        "/admin/identus/connections/0527aea1-d131-3948-a34d-03af39aba8b4",
        "/admin/identus/dids/did:prism:0000",
        "/admin/identus/wallets/x",
        "/admin/nothing",
    ] {
        let res = app.admin_get(path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert_eq!(
            res.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
    }
    let wrong_wallet = "/admin/identus/dids/did:prism:4a5b5cf0a513e83b598bbea25cd6196746747f361a73ef77068268bc9bd732ff?wallet_id=other";
    assert_eq!(app.admin_get(wrong_wallet).await.status(), 404);
    app.stop().await;
}
