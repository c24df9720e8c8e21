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

/// Every page of a projection list (`name` holds the items), following `next` to its end.
async fn whole_list(app: &TestApp, path: &str, name: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut url = path.to_string();
    loop {
        let page = app.admin_json(&url).await;
        out.extend(page[name].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => url = format!("{path}{sep}after={next}"),
            None => return out,
        }
    }
}

#[tokio::test]
async fn identities_are_listed_by_id_and_found_by_email_whatever_its_case() {
    let app = spawn_app().await;
    // Arrange: three identities, sent out of id order; the third has no traits.email, only an
    // address that Kratos verifies by e-mail.
    let identities = [
        (
            "c0000000-0000-4000-8000-000000000003",
            r#""traits":{"phone":"+100"},"verifiable_addresses":[{"value":"+100","via":"sms"},{"value":"Cy@X.io","via":"email"}]"#,
        ),
        (
            "a0000000-0000-4000-8000-000000000001",
            r#""traits":{"email":"Ann@Example.com"}"#,
        ),
        (
            "b0000000-0000-4000-8000-000000000002",
            r#""traits":{"email":"bo@x.io"}"#,
        ),
    ];
    for (id, rest) in identities {
        let identity = format!(r#"{{"id":"{id}","schema_id":"default","state":"active",{rest}}}"#);
        assert_eq!(app.kratos(&kratos_body(&identity), &[]).await.status(), 200);
    }
    let mut ids: Vec<&str> = identities.iter().map(|(id, _)| *id).collect();
    ids.sort();

    // Act and assert: the list, in id order, each item what the single GET answers.
    let all = whole_list(&app, "/admin/kratos/identities", "identities").await;
    let listed: Vec<&str> = all
        .iter()
        .map(|i| i["identity_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids);
    for item in &all {
        let one = app
            .admin_json(&format!(
                "/admin/kratos/identities/{}",
                item["identity_id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(item, &one);
    }
    // Pages of one, followed by `next`, see the same list; the last page's `next` is null.
    let paged = whole_list(&app, "/admin/kratos/identities?limit=1", "identities").await;
    assert_eq!(paged, all);
    let last = app
        .admin_json(&format!(
            "/admin/kratos/identities?limit=1&after={}",
            app.admin_json("/admin/kratos/identities?limit=2").await["next"]
                .as_str()
                .unwrap()
        ))
        .await;
    assert_eq!(last["identities"].as_array().unwrap().len(), 1);
    assert_eq!(last["next"], serde_json::Value::Null);

    for (email, want) in [
        ("ann@example.com", Some(ids[0])),
        ("ANN@EXAMPLE.COM", Some(ids[0])),
        ("Bo@X.io", Some(ids[1])),
        ("cy@x.io", Some(ids[2])),
        ("%2B100", None),
        ("nobody@x.io", None),
    ] {
        let found = app
            .admin_json(&format!("/admin/kratos/identities?email={email}"))
            .await;
        let found: Vec<&str> = found["identities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["identity_id"].as_str().unwrap())
            .collect();
        assert_eq!(found, want.into_iter().collect::<Vec<_>>(), "email={email}");
    }

    for (bad, says) in [
        ("mail=a@b.c", "email, after and limit"),
        ("state=active", "email, after and limit"),
        ("limit=0", "limit must be"),
        ("after=not-a-cursor", "after must be the `next`"),
    ] {
        let res = app
            .admin_get(&format!("/admin/kratos/identities?{bad}"))
            .await;
        assert_eq!(res.status(), 400, "{bad}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().contains(says),
            "{bad}: {body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn identus_records_are_listed_by_id_and_wallet_and_found_by_state_and_wallet() {
    let app = spawn_app().await;
    // Arrange: six connections in two wallets and two states, one connection in both wallets.
    let wallets = [
        "11111111-0000-4000-8000-000000000000",
        "22222222-0000-4000-8000-000000000000",
    ];
    let mut expected = Vec::new();
    for (n, (conn, wallet, state)) in [
        ("conn-5", 0, "ConnectionResponseSent"),
        ("conn-1", 1, "InvitationGenerated"),
        ("conn-3", 0, "InvitationGenerated"),
        ("conn-1", 0, "ConnectionResponseSent"),
        ("conn-4", 1, "ConnectionResponseSent"),
        ("conn-2", 1, "InvitationGenerated"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = connection_event(
            &uuid::Uuid::new_v4().to_string(),
            conn,
            state,
            &format!("2024-05-01T10:00:0{n}Z"),
        )
        .replace("00000000-0000-0000-0000-000000000000", wallets[wallet]);
        accepted(app.identus(&body).await).await;
        expected.push((conn.to_string(), wallets[wallet].to_string(), state));
    }
    expected.sort();
    let key = |r: &serde_json::Value| {
        (
            r["id"].as_str().unwrap().to_string(),
            r["wallet_id"].as_str().unwrap().to_string(),
        )
    };

    // Act and assert: by id, then wallet; the same in pages of two; each item the single GET.
    let all = whole_list(&app, "/admin/identus/connections", "connections").await;
    let listed: Vec<_> = all.iter().map(key).collect();
    let want: Vec<_> = expected
        .iter()
        .map(|(c, w, _)| (c.clone(), w.clone()))
        .collect();
    assert_eq!(listed, want);
    assert_eq!(
        whole_list(&app, "/admin/identus/connections?limit=2", "connections").await,
        all
    );
    for item in &all {
        let (id, wallet) = key(item);
        let one = app
            .admin_json(&format!(
                "/admin/identus/connections/{id}?wallet_id={wallet}"
            ))
            .await;
        assert_eq!(item, &one);
    }
    for (filter, keep) in [
        (
            "state=InvitationGenerated".to_string(),
            Box::new(|_: &str, s: &str| s == "InvitationGenerated")
                as Box<dyn Fn(&str, &str) -> bool>,
        ),
        (
            format!("wallet_id={}", wallets[0]),
            Box::new(|w: &str, _: &str| w == wallets[0]),
        ),
        (
            format!("wallet_id={}&state=ConnectionResponseSent", wallets[1]),
            Box::new(|w: &str, s: &str| w == wallets[1] && s == "ConnectionResponseSent"),
        ),
    ] {
        let want: Vec<_> = expected
            .iter()
            .filter(|(_, w, s)| keep(w, s))
            .map(|(c, w, _)| (c.clone(), w.clone()))
            .collect();
        for limit in ["", "&limit=1"] {
            let found = whole_list(
                &app,
                &format!("/admin/identus/connections?{filter}{limit}"),
                "connections",
            )
            .await;
            assert_eq!(
                found.iter().map(key).collect::<Vec<_>>(),
                want,
                "{filter}{limit}"
            );
        }
    }
    // Other kinds answer under their own name; an unknown kind is 404, an unknown filter 400.
    let dids = app.admin_json("/admin/identus/dids").await;
    assert_eq!(dids["dids"], serde_json::json!([]));
    assert_eq!(dids["next"], serde_json::Value::Null);
    assert_eq!(app.admin_get("/admin/identus/wallets").await.status(), 404);
    let res = app
        .admin_get("/admin/identus/connections?email=a@b.c")
        .await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("state, wallet_id, after and limit"),
        "{body}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_sources_overview_counts_the_last_hours_events_and_each_answer_class() {
    // A source id of this test's own: answer counts are kept per source id in the process.
    let id = format!(
        "overview-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let path = format!("/{id}/events");
    let app = spawn_app_with(|s| {
        let mut source = s.sources.get("identus").unwrap().clone();
        source.path = path.clone();
        s.sources.insert(id.clone(), source);
    })
    .await;
    let auth = format!("Bearer {IDENTUS_TOKEN}");
    let send = |body: String, auth: String| {
        let (app, path) = (&app, &path);
        async move {
            app.post(
                path,
                &[
                    ("content-type", "application/json"),
                    ("authorization", &auth),
                ],
                body,
            )
            .await
        }
    };
    for i in 0..3 {
        let body = connection_event(
            &uuid::Uuid::new_v4().to_string(),
            &format!("ov-{i}"),
            "InvitationGenerated",
            "2024-05-01T10:00:00Z",
        );
        accepted(send(body, auth.clone()).await).await;
    }
    let wrong = send(IDENTUS_DID.to_string(), "Bearer not-the-token".into()).await;
    assert_eq!(wrong.status(), 401);
    let broken = send("{not json".into(), auth.clone()).await;
    assert_eq!(broken.status(), 400);

    let overview = app.admin_json("/admin/sources").await;
    let rows = overview["sources"].as_array().unwrap();
    let row = rows.iter().find(|r| r["id"] == id.as_str()).unwrap();
    let events = app.admin_json(&format!("/admin/events?source={id}")).await;
    let newest = events["events"][2]["received_at"].clone();
    assert_eq!(
        row,
        &serde_json::json!({
            "id": id, "kind": "identus", "path": path, "events_last_hour": 3,
            "last_event_at": newest,
            "responses": {"2xx": 3, "401": 1, "4xx": 2, "5xx": 0},
        })
    );
    // Every configured source is listed, quiet ones too.
    let kratos = rows.iter().find(|r| r["id"] == "kratos").unwrap();
    assert_eq!(kratos["kind"], "kratos");
    assert_eq!(kratos["path"], "/kratos/sync-identity");
    assert_eq!(kratos["events_last_hour"], 0);
    assert_eq!(kratos["last_event_at"], serde_json::Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn events_are_found_by_when_they_were_received() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let body = connection_event(
            &uuid::Uuid::new_v4().to_string(),
            &format!("when-{i}"),
            "InvitationGenerated",
            "2024-05-01T10:00:00Z",
        );
        ids.push(accepted(app.identus(&body).await).await.0);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let all = app.admin_json("/admin/events?source=identus").await;
    let at: Vec<String> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["received_at"].as_str().unwrap().to_string())
        .collect();
    let found = |query: String| {
        let app = &app;
        async move {
            let page = app.admin_json(&format!("/admin/events?{query}")).await;
            page["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    let enc = |t: &str| t.replace('+', "%2B");
    // Inclusive at both ends.
    assert_eq!(
        found(format!("from={}&to={}", enc(&at[1]), enc(&at[2]))).await,
        ids[1..3]
    );
    assert_eq!(found(format!("from={}", enc(&at[3]))).await, ids[3..]);
    assert_eq!(found(format!("to={}", enc(&at[0]))).await, ids[..1]);
    for bad in ["from=yesterday", "to=2026-13-01T00:00:00Z"] {
        let res = app.admin_get(&format!("/admin/events?{bad}")).await;
        assert_eq!(res.status(), 400, "{bad}");
        let detail = res.json::<serde_json::Value>().await.unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_string();
        let name = bad.split('=').next().unwrap();
        assert!(
            detail.starts_with(&format!("{name} must be an RFC 3339 time")),
            "{detail}"
        );
    }
    app.stop().await;
}
