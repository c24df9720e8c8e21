//! Nothing unverified gets in: every scheme, over HTTP.

use crate::helpers::*;

const UNAUTHORIZED: &str = r#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"The request could not be authenticated."}"#;

async fn assert_401(res: reqwest::Response, challenge: Option<&str>, case: &str) {
    assert_eq!(res.status(), 401, "{case}");
    assert_eq!(
        res.headers()["content-type"],
        "application/problem+json",
        "{case}"
    );
    assert_eq!(
        res.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string())
            .as_deref(),
        challenge,
        "{case}"
    );
    assert_eq!(
        res.text().await.unwrap(),
        UNAUTHORIZED,
        "{case}: every failure gets the same body"
    );
}

#[tokio::test]
async fn failed_verification_is_401_with_one_body_and_leaves_no_trace() {
    let app = spawn_app().await;
    let kratos = kratos_body(GUIDE_IDENTITY);
    let json = ("content-type", "application/json");

    for (case, headers) in [
        ("no key", vec![json]),
        ("wrong key", vec![json, ("x-api-key", "kratos-key-nev")]),
        (
            "key in another header",
            vec![json, ("x-api-token", KRATOS_KEY)],
        ),
        (
            "key as bearer",
            vec![json, ("authorization", "Bearer kratos-key-new-0001")],
        ),
        (
            "key twice",
            vec![json, ("x-api-key", KRATOS_KEY), ("x-api-key", KRATOS_KEY)],
        ),
    ] {
        assert_401(
            app.post("/kratos/sync-identity", &headers, kratos.clone())
                .await,
            None,
            case,
        )
        .await;
    }

    let bearer_missing = Some(r#"Bearer realm="hookgate""#);
    let bearer_invalid = Some(r#"Bearer realm="hookgate", error="invalid_token""#);
    for (case, headers, challenge) in [
        ("no token", vec![json], bearer_missing),
        (
            "wrong token",
            vec![json, ("authorization", "Bearer identus-token-2")],
            bearer_invalid,
        ),
        (
            "basic scheme",
            vec![json, ("authorization", "Basic aWRlbnR1cy10b2tlbi0x")],
            bearer_invalid,
        ),
        (
            "bare token",
            vec![json, ("authorization", IDENTUS_TOKEN)],
            bearer_invalid,
        ),
    ] {
        assert_401(
            app.post("/identus/events", &headers, IDENTUS_CONNECTION)
                .await,
            challenge,
            case,
        )
        .await;
    }

    let dashed = ABP_SIG_1.trim_start_matches("sha256=");
    for (case, headers, body) in [
        ("no signature", vec![json], ABP_BODY_1.to_string()),
        (
            "tampered body",
            vec![json, ("abp-webhook-signature", ABP_SIG_1)],
            ABP_BODY_1.replace("john", "jane"),
        ),
        (
            "signature of another body",
            vec![json, ("abp-webhook-signature", ABP_SIG_1)],
            ABP_BODY_2.to_string(),
        ),
        (
            "no prefix",
            vec![json, ("abp-webhook-signature", dashed)],
            ABP_BODY_1.to_string(),
        ),
        (
            "docs comment's shape: the secret itself",
            vec![
                json,
                (
                    "abp-webhook-signature",
                    "sha256=whs_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b",
                ),
            ],
            ABP_BODY_1.to_string(),
        ),
    ] {
        assert_401(app.post("/abp/webhooks", &headers, body).await, None, case).await;
    }

    assert_401(
        app.post(
            "/kratos/basic",
            &[json, ("authorization", "Basic a3JhdG9zOndyb25n")],
            kratos.clone(),
        )
        .await,
        Some(r#"Basic realm="hookgate", charset="UTF-8""#),
        "basic, wrong password",
    )
    .await;
    assert_401(
        app.post(
            "/kratos/cookie",
            &[json, ("cookie", "hook_key=nope")],
            kratos.clone(),
        )
        .await,
        None,
        "wrong cookie",
    )
    .await;

    assert!(
        app.all_events().await.is_empty(),
        "no failed request left a trace"
    );
    let metrics = metrics_text(&app.client, &app.admin).await;
    assert!(
        metrics.contains(
            r#"hookgate_verification_failures_total{source="abp",scheme="abp_signature"}"#
        ),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_abp_protocol_vector_verifies_over_http() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/abp/webhooks",
            &[
                ("content-type", "application/json; charset=utf-8"),
                ("abp-webhook-signature", ABP_SIG_1),
            ],
            ABP_BODY_1,
        )
        .await;
    let (_, duplicate) = accepted(res).await;
    assert!(!duplicate);
    // Lower-case, undashed hex of the same digest is the same signature.
    let plain = ABP_SIG_1.replace('-', "").to_lowercase();
    let res = app
        .post(
            "/abp/webhooks",
            &[
                ("content-type", "application/json"),
                ("abp-webhook-signature", &plain),
            ],
            ABP_BODY_1,
        )
        .await;
    assert!(accepted(res).await.1, "same Id: a retry");
    app.stop().await;
}

#[tokio::test]
async fn every_active_secret_verifies_so_keys_rotate_without_downtime() {
    let app = spawn_app().await;
    let body_new = kratos_body(GUIDE_IDENTITY);
    let body_old = kratos_body(&GUIDE_IDENTITY.replace("3a5293f1", "4b5293f1"));
    let json = ("content-type", "application/json");
    let res = app
        .post(
            "/kratos/sync-identity",
            &[json, ("x-api-key", KRATOS_KEY)],
            body_new,
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app
        .post(
            "/kratos/sync-identity",
            &[json, ("x-api-key", KRATOS_KEY_OLD)],
            body_old,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.all_events().await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn kratos_can_send_its_key_in_a_cookie_or_as_basic_auth() {
    let app = spawn_app().await;
    let json = ("content-type", "application/json");
    let res = app
        .post(
            "/kratos/cookie",
            &[json, ("cookie", "session=x; hook_key=cookie-key-000001")],
            kratos_body(GUIDE_IDENTITY),
        )
        .await;
    assert_eq!(res.status(), 200);
    // Go's SetBasicAuth("kratos", "s3cret").
    let res = app
        .post(
            "/kratos/basic",
            &[json, ("authorization", "Basic a3JhdG9zOnMzY3JldA==")],
            kratos_body(GUIDE_IDENTITY),
        )
        .await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn any_scheme_sits_on_any_source_and_none_is_explicit() {
    let app = spawn_app().await;
    let json = ("content-type", "application/json");
    let res = app
        .post(
            "/identus/keyed",
            &[json, ("x-hook-key", "identus-api-key-0001")],
            IDENTUS_DID,
        )
        .await;
    accepted(res).await;
    let res = app
        .post(
            "/identus/keyed",
            &[json, ("authorization", "Bearer identus-api-key-0001")],
            IDENTUS_CREDENTIAL,
        )
        .await;
    assert_eq!(res.status(), 401);
    let res = app.post("/identus/open", &[json], IDENTUS_DID).await;
    accepted(res).await;
    app.stop().await;
}

#[tokio::test]
async fn credentials_are_never_stored_with_the_event() {
    let app = spawn_app().await;
    let (id, _) = accepted(app.identus(IDENTUS_DID).await).await;
    let res = app
        .kratos(
            &kratos_body(GUIDE_IDENTITY),
            &[("ory-webhook-trigger-id", "t-1")],
        )
        .await;
    assert_eq!(res.status(), 200);
    let (abp_id, _) = accepted(app.abp(ABP_BODY_1).await).await;
    for event in app.all_events().await {
        let headers = event["headers"].to_string().to_lowercase();
        for secret in [
            IDENTUS_TOKEN,
            KRATOS_KEY,
            "authorization",
            "x-api-key",
            "abp-webhook-signature",
            "5e-02-c9",
        ] {
            assert!(!headers.contains(secret), "{headers} holds {secret}");
        }
    }
    let event = app.admin_json(&format!("/admin/events/{id}")).await;
    assert_eq!(event["headers"]["content-type"], "application/json");
    let event = app.admin_json(&format!("/admin/events/{abp_id}")).await;
    assert_eq!(
        event["headers"]["content-type"],
        "application/json; charset=utf-8"
    );
    app.stop().await;
}
