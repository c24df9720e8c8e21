//! Kratos sources: the identity body, Kratos' error language, retries.

use crate::helpers::*;

fn messages(id: u32, text: &str) -> serde_json::Value {
    serde_json::json!({"messages":[{"instance_ptr":null,"messages":[{"id":id,"text":text,"type":"error","context":null}]}]})
}

#[tokio::test]
async fn an_identity_is_stored_answered_with_an_empty_object_and_projected() {
    let app = spawn_app().await;
    let body = kratos_body(GUIDE_IDENTITY);
    let res = app
        .kratos(
            &body,
            &[(
                "ory-webhook-trigger-id",
                "0a8c2b44-0000-4000-8000-000000000001",
            )],
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let event_id = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        res.text().await.unwrap(),
        "{}",
        "Kratos with response.parse needs a JSON body; {{}} changes nothing"
    );

    let raw = app
        .admin_get(&format!("/admin/events/{event_id}/raw"))
        .await;
    assert_eq!(
        raw.bytes().await.unwrap(),
        body.as_bytes(),
        "the exact bytes, jsonnet indentation included"
    );

    let identity = app
        .admin_json("/admin/kratos/identities/3a5293f1-f4d6-49f4-b34f-6da62c360604")
        .await;
    assert_eq!(identity["state"], "active");
    assert_eq!(identity["schema_id"], "default");
    assert_eq!(identity["event_id"], event_id.as_str());
    assert_eq!(
        identity["identity"]["traits"]["email"],
        "0.g5vv0qpoxl@ory.sh"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_latest_identity_replaces_the_previous_one() {
    let app = spawn_app().await;
    let first = kratos_body(GUIDE_IDENTITY);
    let second =
        kratos_body(&GUIDE_IDENTITY.replace("\"state\": \"active\"", "\"state\": \"inactive\""));
    assert_eq!(
        app.kratos(&first, &[("ory-webhook-trigger-id", "t-1")])
            .await
            .status(),
        200
    );
    let res = app
        .kratos(&second, &[("ory-webhook-trigger-id", "t-2")])
        .await;
    let second_id = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    let identity = app
        .admin_json("/admin/kratos/identities/3a5293f1-f4d6-49f4-b34f-6da62c360604")
        .await;
    assert_eq!(identity["state"], "inactive");
    assert_eq!(identity["event_id"], second_id.as_str());
    app.stop().await;
}

#[tokio::test]
async fn an_identity_lists_the_events_that_made_it_newest_first() {
    // Arrange: three webhooks for one identity (registered, deactivated, reactivated).
    let app = spawn_app().await;
    let mut sent = Vec::new();
    for (n, state) in ["active", "inactive", "active"].into_iter().enumerate() {
        let body = kratos_body(
            &GUIDE_IDENTITY.replace("\"state\": \"active\"", &format!("\"state\": \"{state}\"")),
        );
        let res = app
            .kratos(&body, &[("ory-webhook-trigger-id", &format!("t-{n}"))])
            .await;
        assert_eq!(res.status(), 200);
        sent.push(
            res.headers()["hookgate-event-id"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    sent.reverse();

    // Act
    let identity = app
        .admin_json("/admin/kratos/identities/3a5293f1-f4d6-49f4-b34f-6da62c360604")
        .await;
    let list = app.admin_json("/admin/kratos/identities").await;

    // Assert: newest first, the current event first; the list shows the same.
    assert_eq!(identity["events"], serde_json::json!(sent));
    assert_eq!(identity["event_id"], sent[0].as_str());
    assert_eq!(list["identities"][0]["events"], serde_json::json!(sent));
    // Each is an event the admin API finds.
    for id in &sent {
        let event = app.admin_json(&format!("/admin/events/{id}")).await;
        assert_eq!(event["id"], id.as_str());
    }
    app.stop().await;
}

#[tokio::test]
async fn retries_are_stored_once_by_trigger_id_or_by_body() {
    let app = spawn_app().await;
    let body = kratos_body(GUIDE_IDENTITY);
    // Kratos v25.4+: the trigger id stays, the request id changes per attempt.
    let mut ids = Vec::new();
    for attempt in ["r-1", "r-2", "r-3"] {
        let res = app
            .kratos(
                &body,
                &[
                    ("ory-webhook-trigger-id", "trigger-a"),
                    ("ory-webhook-request-id", attempt),
                ],
            )
            .await;
        assert_eq!(res.status(), 200);
        ids.push(
            res.headers()["hookgate-event-id"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(ids.iter().all(|i| *i == ids[0]), "{ids:?}");
    // Kratos v1.x sends no trigger id: the same body is the same event.
    let old = kratos_body(&GUIDE_IDENTITY.replace("3a5293f1", "5c5293f1"));
    let a = app
        .kratos(&old, &[("ory-webhook-request-id", "r-4")])
        .await
        .headers()["hookgate-event-id"]
        .clone();
    let b = app
        .kratos(&old, &[("ory-webhook-request-id", "r-5")])
        .await
        .headers()["hookgate-event-id"]
        .clone();
    assert_eq!(a, b);
    assert_eq!(app.all_events().await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn bad_bodies_are_answered_in_kratos_messages_format() {
    let app = spawn_app().await;
    let res = app.kratos(r#"{"identity": null}"#, &[]).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        messages(1, "identity is null")
    );

    let res = app
        .kratos(&kratos_body(r#"{"id": "", "traits": {}}"#), &[])
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        messages(2, "identity.id is empty")
    );

    let res = app
        .kratos(
            &kratos_body(r#"{"id": "x", "verifiable_addresses": [{"verified": true}]}"#),
            &[],
        )
        .await;
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    let detail = &body["messages"][0]["messages"][0];
    assert_eq!(detail["id"], 4);
    assert_eq!(
        detail["context"]["pointer"],
        "/identity/verifiable_addresses/0/value"
    );

    let res = app.kratos("{\"identity\": {", &[]).await;
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["messages"][0]["messages"][0]["id"], 3);

    let res = app
        .post(
            "/kratos/sync-identity",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("x-api-key", KRATOS_KEY),
            ],
            "identity=x",
        )
        .await;
    assert_eq!(res.status(), 415);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["messages"][0]["messages"][0]["id"], 5);

    assert!(app.all_events().await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_body_without_its_wrapper_gets_a_hint_and_a_non_uuid_id_is_refused() {
    let app = spawn_app().await;
    let hint_of = |body: &serde_json::Value| {
        body["messages"][0]["messages"][0]["context"]["hint"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // `{}`: what the reference handler says, plus what the jsonnet must be.
    let res = app.kratos("{}", &[]).await;
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["messages"][0]["messages"][0]["id"], 1);
    assert_eq!(
        body["messages"][0]["messages"][0]["text"],
        "identity is null"
    );
    assert!(
        hint_of(&body).contains("function(ctx) { identity: ctx.identity }"),
        "{body}"
    );
    // A bare identity (the usual jsonnet mistake) is named as such.
    let res = app.kratos(GUIDE_IDENTITY, &[]).await;
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["messages"][0]["messages"][0]["id"], 1);
    assert!(
        hint_of(&body).starts_with("this is a bare identity"),
        "{body}"
    );

    // An id that is not a UUID cannot be a Kratos identity.
    let identity: serde_json::Value = serde_json::from_str(GUIDE_IDENTITY).unwrap();
    let mut bad = identity.clone();
    bad["id"] = "abc".into();
    let res = app.kratos(&kratos_body(&bad.to_string()), &[]).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"messages":[{"instance_ptr":null,"messages":[{"id":8,
            "text":"identity.id is not a UUID","type":"error",
            "context":{"pointer":"/identity/id"}}]}]})
    );
    assert!(
        app.all_events().await.is_empty(),
        "nothing refused is stored"
    );

    // Upper-case UUIDs are UUIDs too.
    let mut upper = identity;
    upper["id"] = identity_id_upper(&upper).into();
    let res = app.kratos(&kratos_body(&upper.to_string()), &[]).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

fn identity_id_upper(identity: &serde_json::Value) -> String {
    identity["id"].as_str().unwrap().to_ascii_uppercase()
}

#[tokio::test]
async fn the_nil_uuid_is_an_empty_identity_id_as_the_reference_handler_says() {
    // LeanCode's handler refuses `identity.Id == default`, and a C# Guid's default is the nil
    // UUID: Kratos never sends it as an identity id.
    let app = spawn_app().await;
    let mut identity: serde_json::Value = serde_json::from_str(GUIDE_IDENTITY).unwrap();
    identity["id"] = "00000000-0000-0000-0000-000000000000".into();
    let res = app.kratos(&kratos_body(&identity.to_string()), &[]).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap(),
        messages(2, "identity.id is empty")
    );
    assert!(app.all_events().await.is_empty(), "nothing is stored");

    // Its neighbour is an id like any other.
    identity["id"] = "00000000-0000-0000-0000-000000000001".into();
    let res = app.kratos(&kratos_body(&identity.to_string()), &[]).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}
