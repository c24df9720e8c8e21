//! ABP sources: signed payloads, retries with changing bodies, allow-lists, bare data.

use crate::helpers::*;

#[tokio::test]
async fn a_retry_with_a_new_body_is_recognised_by_its_id_and_the_first_bytes_are_kept() {
    let app = spawn_app().await;
    let (first, dup) = accepted(app.abp(ABP_BODY_1).await).await;
    assert!(!dup);
    // Attempt 2: new Attempt and CreationTimeUtc, so other bytes and another signature.
    let (second, dup) = accepted(app.abp(ABP_BODY_2).await).await;
    assert!(dup);
    assert_eq!(first, second);
    let raw = app.admin_get(&format!("/admin/events/{first}/raw")).await;
    assert_eq!(
        raw.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(raw.bytes().await.unwrap(), ABP_BODY_1.as_bytes());
    let event = app.admin_json(&format!("/admin/events/{first}")).await;
    assert_eq!(event["event_type"], "NewUserRegistered");
    assert_eq!(event["dedupe_key"], "5a0c4c1e-8c2b-4f6e-9d3a-2b7e1f0a9c44");
    assert_eq!(event["payload"]["Data"]["UserName"], "john.doe");
    app.stop().await;
}

#[tokio::test]
async fn the_allow_list_refuses_other_webhook_names_with_422() {
    let app = spawn_app().await;
    let res = app.abp_at("/abp/filtered", ABP_BODY_1).await;
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["pointer"], "/WebhookEvent");
    let allowed = ABP_BODY_1.replace("NewUserRegistered", "TenantDeleted");
    accepted(app.abp_at("/abp/filtered", &allowed).await).await;
    assert_eq!(app.all_events().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn bare_data_from_send_exact_same_data_is_keyed_by_its_bytes() {
    let app = spawn_app().await;
    let data = r#"{"UserName":"john.doe","EmailAddress":"john.doe@example.com"}"#;
    let (a, dup_a) = accepted(app.abp_at("/abp/bare", data).await).await;
    let (b, dup_b) = accepted(app.abp_at("/abp/bare", data).await).await;
    assert_eq!((a.as_str(), dup_a, dup_b), (b.as_str(), false, true));
    let other = data.replace("john", "jane");
    let (c, _) = accepted(app.abp_at("/abp/bare", &other).await).await;
    assert_ne!(a, c);
    app.stop().await;
}

#[tokio::test]
async fn payloads_that_do_not_fit_name_the_field() {
    let app = spawn_app().await;
    let res = app
        .abp(&ABP_BODY_1.replace("\"Attempt\":1", "\"Attempt\":\"first\""))
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["errors"][0]["pointer"],
        "/Attempt"
    );
    let res = app.abp(r#"{"WebhookEvent":"X"}"#).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["errors"][0]["pointer"],
        "/Id"
    );
    let res = app.abp("{not json").await;
    assert_eq!(res.status(), 400);
    assert!(app.all_events().await.is_empty());
    app.stop().await;
}
