//! Registered hooks (DESIGN.md "Registered hooks"): `POST /admin/hooks` gives a fresh
//! `/hooks/{id}` that is verified and validated like a configured source, survives restarts,
//! works on every replica within a second, and answers 404 (storing nothing) once deleted or
//! expired. Its events carry `hook` in the admin API and `Hookgate-Hook-Id` when delivered.
//! On either backend (`HOOKGATE_TEST_BACKEND`); the replica test on PostgreSQL only.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::helpers::{
    ADMIN_TOKEN, TestApp, connection_event, metrics_text, spawn_app, spawn_app_with, spawn_in,
};
use crate::sink::Sink;

/// `POST /admin/hooks` with `body`: the status and the JSON answer.
async fn register(app: &TestApp, body: &Value) -> (u16, Value) {
    let res = app
        .client
        .post(format!("{}/admin/hooks", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Registers a hook that must be accepted; answers the 201's body.
async fn registered(app: &TestApp, body: Value) -> Value {
    let (status, hook) = register(app, &body).await;
    assert_eq!(status, 201, "{hook:#}");
    hook
}

async fn delete_hook(app: &TestApp, id: &str) -> u16 {
    app.client
        .delete(format!("{}/admin/hooks/{id}", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A new Identus connection event (its own envelope id).
fn identus_body() -> String {
    connection_event(
        &uuid::Uuid::new_v4().to_string(),
        &uuid::Uuid::new_v4().to_string(),
        "ConnectionResponseSent",
        "2024-05-01T10:20:30.123456Z",
    )
}

/// Posts a new Identus event to `path` with `headers`: the status and the event id answered.
async fn post_event(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    let res = app.post(path, &h, identus_body()).await;
    let id = res
        .headers()
        .get("hookgate-event-id")
        .map(|v| v.to_str().unwrap().to_string());
    (res.status().as_u16(), id)
}

/// Every event stored through hooks.
async fn hook_events(app: &TestApp) -> Vec<Value> {
    app.all_events()
        .await
        .into_iter()
        .filter(|e| e["source"] == "hooks")
        .collect()
}

/// Every hook listed by `GET /admin/hooks`, following `next` with pages of `limit`.
async fn listed_hooks(app: &TestApp, limit: u32) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = app
            .admin_json(&format!("/admin/hooks?limit={limit}&after={after}"))
            .await;
        out.extend(page["hooks"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => return out,
        }
    }
}

/// Posts one new event to each path at once (`limit` in flight): the answers, in order.
async fn post_each(app: &TestApp, paths: &[String]) -> Vec<(u16, Option<String>)> {
    futures_util::stream::iter(paths.iter())
        .map(|p| post_event(app, p, &[]))
        .buffered(64)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_hooks_answer_and_store_and_deleted_ones_stay_gone_after_a_restart() {
    // Arrange: 1 000 hooks, each with its own payload.
    const N: usize = 1000;
    let tmp = tempfile::tempdir().unwrap();
    let app = spawn_in(tmp.path(), |_| {}).await;
    let hooks: Vec<Value> = futures_util::stream::iter(0..N)
        .map(|n| {
            registered(
                &app,
                json!({"label": format!("shop {n}"), "kind": "identus", "payload": {"n": n, "tags": ["a", n]}}),
            )
        })
        .buffered(32)
        .collect()
        .await;
    let ids: Vec<String> = hooks
        .iter()
        .map(|h| h["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        N,
        "ids are unique"
    );
    for (n, h) in hooks.iter().enumerate() {
        let id = h["id"].as_str().unwrap();
        assert!(
            id.len() == 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{id}"
        );
        assert_eq!(h["path"], format!("/hooks/{id}"));
        assert_eq!(h["label"], format!("shop {n}"));
        assert_eq!(h["kind"], "identus");
        assert_eq!(h["payload"], json!({"n": n, "tags": ["a", n]}));
        assert!(h["created_at"].is_string());
        assert!(h.get("secret").is_none(), "no secret was asked for");
    }
    let paths: Vec<String> = hooks
        .iter()
        .map(|h| h["path"].as_str().unwrap().to_string())
        .collect();

    // Act 1: an event to each.
    let first = post_each(&app, &paths).await;
    assert!(
        first.iter().all(|(s, id)| *s == 200 && id.is_some()),
        "every hook takes its event: {:?}",
        first.iter().find(|(s, _)| *s != 200)
    );
    // Delete every even one.
    let deleted: HashSet<usize> = (0..N).filter(|n| n % 2 == 0).collect();
    let statuses: Vec<u16> = futures_util::stream::iter(deleted.iter())
        .map(|n| delete_hook(&app, &ids[*n]))
        .buffered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    assert_eq!(delete_hook(&app, &ids[0]).await, 404, "deleted once");
    let second = post_each(&app, &paths).await;
    app.stop().await;

    // Act 2: the same store after a restart.
    let app = spawn_in(tmp.path(), |_| {}).await;
    let third = post_each(&app, &paths).await;

    // Assert: deleted hooks answer 404 and stored nothing; the others stored each event.
    for (n, answers) in [&second, &third].iter().flat_map(|a| a.iter().enumerate()) {
        let (status, event_id) = answers;
        if deleted.contains(&n) {
            assert_eq!((*status, event_id.as_deref()), (404, None), "hook {n}");
        } else {
            assert_eq!(*status, 200, "hook {n}");
        }
    }
    let events = hook_events(&app).await;
    assert_eq!(
        events.len(),
        N + N / 2 + N / 2,
        "nothing stored through a deleted hook"
    );
    let by_id: HashMap<&str, &Value> = events
        .iter()
        .map(|e| (e["id"].as_str().unwrap(), e))
        .collect();
    let answered = first
        .iter()
        .enumerate()
        .chain(second.iter().enumerate())
        .chain(third.iter().enumerate())
        .filter_map(|(n, (_, id))| Some((n, id.as_deref()?)));
    for (n, event_id) in answered {
        let e = by_id
            .get(event_id)
            .unwrap_or_else(|| panic!("event {event_id} of hook {n}"));
        assert_eq!(e["kind"], "identus");
        // Deleted hooks keep describing the events they stored.
        assert_eq!(
            e["hook"],
            json!({"id": ids[n], "label": format!("shop {n}"), "payload": {"n": n, "tags": ["a", n]}}),
            "event of hook {n}"
        );
    }
    // `?hook=` gives one hook's events only: 3 for a kept hook, 1 for a deleted one.
    for n in [0, 1, N - 1] {
        let page = app
            .admin_json(&format!("/admin/events?hook={}", ids[n]))
            .await;
        let got = page["events"].as_array().unwrap();
        assert_eq!(got.len(), if n % 2 == 0 { 1 } else { 3 }, "hook {n}");
        assert!(got.iter().all(|e| e["hook"]["id"] == ids[n].as_str()));
    }
    // The list holds the kept hooks, paged by id.
    let listed = listed_hooks(&app, 300).await;
    let listed_ids: HashSet<&str> = listed.iter().map(|h| h["id"].as_str().unwrap()).collect();
    let kept: HashSet<&str> = (0..N)
        .filter(|n| !deleted.contains(n))
        .map(|n| ids[n].as_str())
        .collect();
    assert_eq!(listed_ids, kept);
    assert_eq!(listed.len(), kept.len(), "no hook listed twice");
    // Metrics have one `hooks` label, no label per hook.
    let metrics = metrics_text(&app.client, &app.admin).await;
    assert!(metrics.contains(r#"source="hooks""#), "{metrics}");
    assert!(ids.iter().all(|id| !metrics.contains(id.as_str())));
    app.stop().await;
}

#[tokio::test]
async fn unknown_deleted_expired_and_malformed_hook_ids_get_the_same_404_and_store_nothing() {
    let app = spawn_app().await;
    let deleted = registered(&app, json!({"kind": "identus"})).await;
    let deleted_id = deleted["id"].as_str().unwrap();
    assert_eq!(delete_hook(&app, deleted_id).await, 204);
    let at = time::OffsetDateTime::now_utc() + Duration::from_millis(1500);
    let expiring = registered(
        &app,
        json!({"kind": "identus", "expires_at": at.format(&time::format_description::well_known::Rfc3339).unwrap()}),
    )
    .await;
    let expiring_path = expiring["path"].as_str().unwrap();
    assert_eq!(
        post_event(&app, expiring_path, &[]).await.0,
        200,
        "served until it expires"
    );
    tokio::time::sleep_until(Instant::now() + Duration::from_millis(1600)).await;

    let mut bodies = HashSet::new();
    for path in [
        expiring_path.to_string(),
        format!("/hooks/{deleted_id}"),
        format!("/hooks/{}", "0".repeat(32)),
        format!("/hooks/{}", deleted_id.to_uppercase()),
        "/hooks/not-an-id".to_string(),
        format!("/hooks/{deleted_id}/more"),
    ] {
        let res = app
            .post(
                &path,
                &[("content-type", "application/json")],
                identus_body(),
            )
            .await;
        assert_eq!(res.status(), 404, "{path}");
        bodies.insert(res.text().await.unwrap());
    }
    assert_eq!(bodies.len(), 1, "one answer for every reason: {bodies:?}");
    assert_eq!(
        hook_events(&app).await.len(),
        1,
        "only the event sent before expiry"
    );
    // The admin API: a deleted hook is unknown; an expired one is still shown.
    assert_eq!(
        app.admin_get(&format!("/admin/hooks/{deleted_id}"))
            .await
            .status(),
        404
    );
    let shown = app
        .admin_json(&format!(
            "/admin/hooks/{}",
            expiring["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(shown["expires_at"], expiring["expires_at"]);
    app.stop().await;
}

#[tokio::test]
async fn a_generated_secret_is_shown_once_and_verifies_requests() {
    let app = spawn_app().await;
    // Bearer: a random token.
    let hook = registered(
        &app,
        json!({"kind": "identus", "label": "agent", "verify": {"scheme": "bearer", "secrets": "generate"}}),
    )
    .await;
    let secret = hook["secret"]
        .as_str()
        .expect("the generated secret")
        .to_string();
    assert!(secret.len() >= 32, "{secret}");
    let id = hook["id"].as_str().unwrap();
    let path = hook["path"].as_str().unwrap();
    // Never shown again.
    let one = app
        .admin_get(&format!("/admin/hooks/{id}"))
        .await
        .text()
        .await
        .unwrap();
    let list = app.admin_get("/admin/hooks").await.text().await.unwrap();
    for text in [&one, &list] {
        assert!(text.contains(id), "{text}");
        assert!(
            !text.contains(&secret) && !text.contains("\"secret\""),
            "{text}"
        );
    }
    assert_eq!(post_event(&app, path, &[]).await.0, 401, "unsigned");
    assert_eq!(
        post_event(
            &app,
            path,
            &[("authorization", "Bearer wrong-token-of-enough-bytes")]
        )
        .await
        .0,
        401
    );
    let auth = format!("Bearer {secret}");
    let (status, event_id) = post_event(&app, path, &[("authorization", &auth)]).await;
    assert_eq!(status, 200);
    let event = app
        .admin_json(&format!("/admin/events/{}", event_id.unwrap()))
        .await;
    assert_eq!(event["source"], "hooks");
    assert_eq!(
        event["hook"],
        json!({"id": id, "label": "agent", "payload": null})
    );
    assert!(
        !event.to_string().contains(&secret),
        "the credential is not stored"
    );
    // The store keeps only a digest of a compared secret: a copy of the database holds no
    // usable token.
    use secrecy::ExposeSecret as _;
    let row = app.store.hook(id).await.unwrap().unwrap();
    let kept = row.verify.as_ref().unwrap().expose_secret().to_string();
    assert!(!kept.contains(&secret), "{kept}");

    // API key in a header of the registrant's choice.
    let hook = registered(
        &app,
        json!({"kind": "identus", "verify": {"scheme": "api_key", "header": "X-Hook-Key", "secrets": "generate"}}),
    )
    .await;
    let key = hook["secret"].as_str().unwrap();
    let path = hook["path"].as_str().unwrap();
    assert_eq!(post_event(&app, path, &[("x-hook-key", key)]).await.0, 200);
    assert_eq!(post_event(&app, path, &[("x-api-key", key)]).await.0, 401);

    // ABP: a signature keyed with the generated secret.
    let hook = registered(
        &app,
        json!({"kind": "abp", "verify": {"scheme": "abp_signature", "secrets": "generate"}}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap();
    let path = hook["path"].as_str().unwrap();
    let body = include_str!("../fixtures/abp_body_1.json");
    let send = |headers: Vec<(String, String)>| {
        let mut req = app.client.post(format!("{}{path}", app.base)).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let signed = hookgate::sign::headers(
        hookgate::sign::SignScheme::AbpSignature,
        secret,
        body.as_bytes(),
        "X-Api-Key",
        None,
    );
    assert_eq!(send(signed).await.unwrap().status(), 200);
    let other = hookgate::sign::headers(
        hookgate::sign::SignScheme::AbpSignature,
        "whs_another-secret-of-enough-bytes",
        body.as_bytes(),
        "X-Api-Key",
        None,
    );
    assert_eq!(send(other).await.unwrap().status(), 401);
    let unsigned = vec![("content-type".to_string(), "application/json".to_string())];
    assert_eq!(send(unsigned).await.unwrap().status(), 401);

    // Standard Webhooks: a `whsec_` secret the reference library takes as it is.
    let hook = registered(
        &app,
        json!({"kind": "standard", "verify": {"scheme": "standard_webhooks", "secrets": "generate"}}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let path = hook["path"].as_str().unwrap();
    let body = r#"{"type":"invoice.paid","data":{"n":1}}"#;
    let now = time::OffsetDateTime::now_utc();
    let signature = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign("msg_hook1", now.unix_timestamp(), body.as_bytes())
        .unwrap();
    let ts = now.unix_timestamp().to_string();
    let post = |sig: &str| {
        app.client
            .post(format!("{}{path}", app.base))
            .header("content-type", "application/json")
            .header("webhook-id", "msg_hook1")
            .header("webhook-timestamp", ts.as_str())
            .header("webhook-signature", sig)
            .body(body)
            .send()
    };
    assert_eq!(post(&signature).await.unwrap().status(), 200);
    let forged = standardwebhooks::Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap()
        .sign("msg_hook1", now.unix_timestamp(), body.as_bytes())
        .unwrap();
    assert_eq!(post(&forged).await.unwrap().status(), 401);

    // HMAC in the registrant's header: the generated secret's UTF-8 bytes are the key.
    let hook = registered(
        &app,
        json!({"kind": "json", "verify": {"scheme": "hmac", "header": "X-Signature",
               "prefix": "sha256=", "secrets": "generate"}}),
    )
    .await;
    let secret = hook["secret"].as_str().unwrap();
    let path = hook["path"].as_str().unwrap();
    let sign = |key: &str| {
        use hmac::Mac as _;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let post = |sig: String| {
        app.client
            .post(format!("{}{path}", app.base))
            .header("content-type", "application/json")
            .header("x-signature", sig)
            .body(body)
            .send()
    };
    assert_eq!(post(sign(secret)).await.unwrap().status(), 200);
    assert_eq!(
        post(sign("another-secret-of-enough-bytes"))
            .await
            .unwrap()
            .status(),
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn a_registration_is_checked_like_a_source_block_and_each_error_names_its_field() {
    let app = spawn_app().await;
    for (body, pointer) in [
        (json!({"label": "no kind"}), "/kind"),
        (json!({"kind": "github"}), "/kind"),
        (json!({"kind": 7}), "/kind"),
        (
            json!({"kind": "identus", "verify": {"scheme": "bearr", "secrets": "generate"}}),
            "/verify/scheme",
        ),
        (
            json!({"kind": "identus", "verify": {"scheme": "bearer", "secrets": ["short"]}}),
            "/verify/secrets/0",
        ),
        (
            json!({"kind": "identus", "verify": {"scheme": "bearer"}}),
            "/verify/secrets",
        ),
        (
            json!({"kind": "identus", "verify": {"scheme": "bearer", "header": "X", "secrets": "generate"}}),
            "/verify/header",
        ),
        (
            json!({"kind": "identus", "verify": {"scheme": "none", "secrets": "generate"}}),
            "/verify/secrets",
        ),
        (
            json!({"kind": "identus", "expires_at": "tomorrow"}),
            "/expires_at",
        ),
        (
            json!({"kind": "identus", "expires_at": "2020-01-01T00:00:00Z"}),
            "/expires_at",
        ),
        (json!({"kind": "identus", "label": 5}), "/label"),
    ] {
        let (status, problem) = register(&app, &body).await;
        assert_eq!(status, 422, "{body}: {problem:#}");
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["pointer"] == pointer && !e["detail"].as_str().unwrap().is_empty()),
            "{body}: expected an error at {pointer}: {problem:#}"
        );
    }
    let (status, problem) = register(&app, &json!({"kind": "identus", "lable": "x"})).await;
    assert_eq!(status, 422);
    assert!(problem.to_string().contains("lable"), "{problem}");
    let res = app
        .client
        .post(format!("{}/admin/hooks", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .client
        .post(format!("{}/admin/hooks", app.admin))
        .json(&json!({"kind": "identus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "the admin token is required");
    assert!(
        listed_hooks(&app, 100).await.is_empty(),
        "nothing was registered"
    );
    // A configured user-given secret works too (and is never shown).
    let hook = registered(
        &app,
        json!({"kind": "identus", "verify": {"scheme": "bearer", "secrets": ["a-token-of-enough-bytes-1"]}}),
    )
    .await;
    assert!(hook.get("secret").is_none());
    let path = hook["path"].as_str().unwrap();
    let ok = post_event(
        &app,
        path,
        &[("authorization", "Bearer a-token-of-enough-bytes-1")],
    )
    .await;
    assert_eq!(ok.0, 200);
    // The payload is checked as the kind's: a body that is not an Identus event is 422.
    let res = app
        .post(
            path,
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer a-token-of-enough-bytes-1"),
            ],
            "{}",
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(app.admin_get("/admin/hooks?after=xyz").await.status(), 400);
    assert_eq!(app.admin_get("/admin/events?hook=xyz").await.status(), 400);
    app.stop().await;
}

#[tokio::test]
async fn a_hooks_events_are_delivered_with_its_id_to_destinations_taking_hooks() {
    let sink = Sink::start().await;
    let url = sink.url("/");
    let app = spawn_app_with(|s| {
        s.destinations.insert(
            "app".into(),
            serde_json::from_value(json!({"kind": "http", "url": url, "sources": ["hooks"]}))
                .unwrap(),
        );
    })
    .await;
    let hook = registered(&app, json!({"kind": "identus", "payload": {"portal": 1}})).await;
    let (status, event_id) = post_event(&app, hook["path"].as_str().unwrap(), &[]).await;
    assert_eq!(status, 200);
    // A configured source's event does not go to a destination taking only hooks.
    assert_eq!(app.identus(&identus_body()).await.status(), 200);
    let got = sink.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.requests().len(), 1, "only the hook's event");
    assert_eq!(
        got[0].header("hookgate-hook-id"),
        hook["id"].as_str().unwrap()
    );
    assert_eq!(got[0].header("hookgate-source"), "hooks");
    assert_eq!(got[0].header("hookgate-event-id"), event_id.unwrap());
    app.stop().await;
    sink.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hook_made_on_one_replica_is_served_by_another_within_a_second_and_so_is_its_deletion() {
    let Ok(base) = std::env::var("HOOKGATE_TEST_POSTGRES_URL") else {
        println!("a_hook_made_on_one_replica…: skipped (HOOKGATE_TEST_POSTGRES_URL is unset)");
        return;
    };
    let schema = crate::helpers::PgSchemaGuard {
        base: base.clone(),
        schema: format!(
            "hg_api_{}_hooks{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ),
    };
    crate::helpers::pg_execute(&base, &format!("CREATE SCHEMA {}", schema.schema));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-csearch_path%3D{}", schema.schema);
    let on_schema = |s: &mut hookgate::config::Settings| s.store.url = url.clone();
    let a = spawn_app_with(on_schema).await;
    let b = spawn_in(&a.dir, on_schema).await;

    // A registers the hook; B serves it (at once: B has never looked the id up).
    let hook = registered(&a, json!({"kind": "identus", "label": "replicated"})).await;
    let path = hook["path"].as_str().unwrap().to_string();
    let made = Instant::now();
    loop {
        let (status, _) = post_event(&b, &path, &[]).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 404);
        assert!(
            made.elapsed() < Duration::from_secs(1),
            "B serves A's hook within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A deletes it: B stops serving it within a second, and stores nothing after that.
    assert_eq!(delete_hook(&a, hook["id"].as_str().unwrap()).await, 204);
    let deleted = Instant::now();
    loop {
        let (status, _) = post_event(&b, &path, &[]).await;
        if status == 404 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            deleted.elapsed() < Duration::from_secs(1),
            "B drops A's deleted hook within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = hook_events(&a).await.len();
    assert_eq!(post_event(&b, &path, &[]).await.0, 404);
    assert_eq!(post_event(&a, &path, &[]).await.0, 404);
    assert_eq!(hook_events(&b).await.len(), before);
    b.stop().await;
    a.stop().await;
    drop(schema);
}

#[test]
fn the_source_id_hooks_and_paths_under_hooks_are_reserved_for_registered_hooks() {
    let yaml = crate::helpers::TEST_CONFIG.replace(
        "  open:\n",
        "  hooks:\n    kind: identus\n    path: /hooks/0123456789abcdef0123456789abcdef\n    verify: { scheme: none }\n  open:\n",
    );
    let errors = hookgate::startup::load_settings_from_str(&yaml, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        errors.contains("sources.hooks: `hooks` is the source of registered hooks"),
        "{errors}"
    );
    assert!(
        errors.contains("sources.hooks.path: paths under /hooks/ are the registered hooks'"),
        "{errors}"
    );
    // A destination may take every hook's events by that source id.
    let yaml = format!(
        "{}destinations:\n  app:\n    kind: http\n    url: http://127.0.0.1:1/x\n    sources: [hooks, identus]\n",
        crate::helpers::TEST_CONFIG
    );
    let settings = hookgate::startup::load_settings_from_str(&yaml, &HashMap::new()).unwrap();
    assert!(settings.resolved_destinations().is_ok());
}

#[tokio::test]
async fn a_hooks_events_carry_its_id_to_rabbitmq_raw_and_nats() {
    use crate::broker::{
        amqp_url, bound_queue, channel, cleanup, header, nats_url, next_message, unique,
    };
    let test = "a_hooks_events_carry_its_id_to_rabbitmq_raw_and_nats";
    let (Some(amqp), Some(nats)) = (amqp_url(test), nats_url(test)) else {
        return;
    };
    // Arrange: a raw exchange and a JetStream stream, both taking hooks' events only.
    let exchange = format!("hookgate-test-{}", unique());
    let (_conn, ch) = channel(&amqp).await;
    let queue = bound_queue(&ch, &exchange, lapin::ExchangeKind::Topic, "hg.hooks.#").await;
    let u = unique();
    let (stream, prefix) = (format!("HGHOOK{u}"), format!("hghook{u}"));
    let app = spawn_app_with(|s| {
        for (id, block) in [
            (
                "raw",
                json!({"kind": "rabbitmq", "url": amqp, "format": "raw", "exchange": exchange,
                       "routing_key": "hg.{source}.{event_type}", "sources": ["hooks"]}),
            ),
            (
                "stream",
                json!({"kind": "nats", "url": nats, "subject": format!("{prefix}.{{source}}.{{event_type}}"),
                       "stream": {"name": stream, "create": true}, "sources": ["hooks"]}),
            ),
        ] {
            s.destinations
                .insert(id.into(), serde_json::from_value(block).unwrap());
        }
    })
    .await;
    let hook = registered(&app, json!({"kind": "identus"})).await;
    let hook_id = hook["id"].as_str().unwrap();

    // Act
    let (status, event_id) = post_event(&app, hook["path"].as_str().unwrap(), &[]).await;
    assert_eq!(status, 200);
    let event_id = event_id.unwrap();

    // Assert: RabbitMQ raw, as an AMQP header.
    let m = next_message(&ch, &queue).await;
    assert_eq!(header(&m, "Hookgate-Hook-Id"), hook_id);
    assert_eq!(header(&m, "Hookgate-Event-Id"), event_id);
    assert_eq!(header(&m, "Hookgate-Source"), "hooks");
    // NATS JetStream, as a message header.
    crate::helpers::eventually(
        &app,
        &format!("/admin/deliveries?destination=stream&event_id={event_id}"),
        Duration::from_secs(10),
        |d| d["deliveries"][0]["state"] == "delivered",
    )
    .await;
    let client = async_nats::connect(nats.as_str()).await.expect("NATS");
    let js = async_nats::jetstream::new(client);
    let s = js
        .get_stream(&stream)
        .await
        .expect("the stream was created");
    let msg = s.get_raw_message(1).await.expect("message 1");
    assert_eq!(
        msg.headers.get("Hookgate-Hook-Id").map(|v| v.as_str()),
        Some(hook_id)
    );
    assert_eq!(
        msg.subject.as_str(),
        format!("{prefix}.hooks.ConnectionUpdated")
    );
    app.stop().await;
    let _ = js.delete_stream(&stream).await;
    cleanup(&amqp, &[&exchange], &[&queue]).await;
}
