//! More senders over HTTP: Standard Webhooks (signed by the independent `standardwebhooks`
//! crate), HMAC recipes (GitHub, Shopify, Slack) and any JSON sender, plus `hookgate sign` for
//! them.

use std::io::Write as _;
use std::process::{Command, Stdio};

use hmac::Mac as _;
use hookgate::config::{Settings, SourceSettings};
use serde_json::{Value, json};

use crate::helpers::*;

/// PROTOCOLS.md §6.3: keys `00 01 … 1f` and (rotated) `ff fe … e0`.
const WHSEC_OLD: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const WHSEC_NEW: &str = "whsec_//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA=";
/// The spec's thin payload (PROTOCOLS.md §6.3).
const THIN: &str = r#"{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}"#;
/// GitHub's documented secret ("Validating webhook deliveries").
const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const SHOPIFY_SECRET: &str = "shpss_hookgate-test-secret-0001";
const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const JSON_KEY: &str = "json-sender-key-0001";

/// Request headers as `(name, value)` pairs.
type Headers = Vec<(String, String)>;

const UNAUTHORIZED: &str = r#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"The request could not be authenticated."}"#;

fn source(block: Value) -> SourceSettings {
    serde_json::from_value(block).unwrap()
}

/// The README's recipes, as sources.
fn senders(s: &mut Settings) {
    for (id, block) in [
        (
            "sw",
            json!({"kind": "standard", "path": "/standard",
                   "verify": {"scheme": "standard_webhooks", "secrets": [WHSEC_NEW, WHSEC_OLD]}}),
        ),
        (
            "github",
            json!({"kind": "json", "path": "/github",
                   "verify": {"scheme": "hmac", "header": "X-Hub-Signature-256", "prefix": "sha256=",
                              "secrets": [GITHUB_SECRET]},
                   "dedupe": {"header": "X-GitHub-Delivery"},
                   "event_type": {"header": "X-GitHub-Event"}}),
        ),
        (
            "shopify",
            json!({"kind": "json", "path": "/shopify",
                   "verify": {"scheme": "hmac", "header": "X-Shopify-Hmac-Sha256", "encoding": "base64",
                              "secrets": [SHOPIFY_SECRET]},
                   "dedupe": {"header": "X-Shopify-Webhook-Id"},
                   "event_type": {"header": "X-Shopify-Topic"}}),
        ),
        (
            "slack",
            json!({"kind": "json", "path": "/slack/events",
                   "verify": {"scheme": "hmac", "header": "X-Slack-Signature", "prefix": "v0=",
                              "signed": "v0:{timestamp}:{body}",
                              "timestamp": {"header": "X-Slack-Request-Timestamp"},
                              "secrets": [SLACK_SECRET]},
                   "dedupe": {"pointer": "/event_id"},
                   "event_type": {"pointer": "/event/type"}}),
        ),
        (
            "anyjson",
            json!({"kind": "json", "path": "/json",
                   "verify": {"scheme": "api_key", "secrets": [JSON_KEY]},
                   "dedupe": {"pointer": "/id"},
                   "event_type": {"pointer": "/type"}}),
        ),
    ] {
        s.sources.insert(id.to_string(), source(block));
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The headers a Standard Webhooks sender sends, signed by the reference crate with each secret.
fn standard_headers(secrets: &[&str], id: &str, ts: i64, body: &str) -> Vec<(String, String)> {
    let signature = secrets
        .iter()
        .map(|s| {
            standardwebhooks::Webhook::new(s)
                .unwrap()
                .sign(id, ts, body.as_bytes())
                .unwrap()
        })
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        ("content-type".into(), "application/json".into()),
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts.to_string()),
        ("webhook-signature".into(), signature),
    ]
}

async fn post(
    app: &TestApp,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> reqwest::Response {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    app.post(path, &pairs, body.to_string()).await
}

async fn events_of(app: &TestApp, source: &str) -> Vec<Value> {
    app.admin_json(&format!("/admin/events?source={source}&limit=1000"))
        .await["events"]
        .as_array()
        .unwrap()
        .clone()
}

async fn assert_401(res: reqwest::Response, case: &str) {
    assert_eq!(res.status(), 401, "{case}");
    assert_eq!(res.text().await.unwrap(), UNAUTHORIZED, "{case}");
}

#[tokio::test]
async fn standard_webhooks_signed_by_the_reference_crate_are_stored_once_by_webhook_id() {
    let app = spawn_app_with(senders).await;
    let id = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
    let headers = standard_headers(&[WHSEC_OLD], id, now(), THIN);
    let (first, duplicate) = accepted(post(&app, "/standard", &headers, THIN).await).await;
    assert!(!duplicate);
    // The sender's retry: a new timestamp, so a new signature, the same webhook-id.
    let retry = standard_headers(&[WHSEC_OLD], id, now() + 1, THIN);
    let (second, duplicate) = accepted(post(&app, "/standard", &retry, THIN).await).await;
    assert!(duplicate);
    assert_eq!(first, second);

    let event = app.admin_json(&format!("/admin/events/{first}")).await;
    assert_eq!(event["source"], "sw");
    assert_eq!(event["kind"], "standard");
    assert_eq!(event["event_type"], "contact.created");
    assert_eq!(event["dedupe_key"], id);
    assert_eq!(event["sender_id"], id);
    assert_eq!(
        event["payload"]["data"]["id"],
        "1f81eb52-5198-4599-803e-771906343485"
    );
    let stored_headers = event["headers"].to_string();
    assert!(
        !stored_headers.contains("webhook-signature") && !stored_headers.contains("v1,"),
        "{stored_headers}"
    );
    assert_eq!(events_of(&app, "sw").await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_rotation_header_with_both_signatures_verifies_and_either_secret_alone_too() {
    let app = spawn_app_with(senders).await;
    for (i, secrets) in [
        vec![WHSEC_NEW, WHSEC_OLD],
        vec![WHSEC_OLD, WHSEC_NEW],
        vec![WHSEC_NEW],
        vec![WHSEC_OLD],
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("msg_rotation_{i}");
        let headers = standard_headers(&secrets, &id, now(), THIN);
        let (_, duplicate) = accepted(post(&app, "/standard", &headers, THIN).await).await;
        assert!(!duplicate, "{secrets:?}");
    }
    assert_eq!(events_of(&app, "sw").await.len(), 4);
    app.stop().await;
}

#[tokio::test]
async fn tampered_stale_future_and_incomplete_standard_webhooks_are_401_and_not_stored() {
    let app = spawn_app_with(senders).await;
    let id = "msg_refused";
    let t = now();
    let good = standard_headers(&[WHSEC_OLD], id, t, THIN);
    let with = |name: &str, value: Option<String>| -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> =
            good.iter().filter(|(k, _)| k != name).cloned().collect();
        if let Some(v) = value {
            h.push((name.to_string(), v));
        }
        h
    };
    let other_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let tampered = THIN.replace("contact.created", "contact.deleted");
    let cases: Vec<(&str, Headers, &str)> = vec![
        ("tampered body", good.clone(), tampered.as_str()),
        (
            "another secret",
            standard_headers(&[other_secret], id, t, THIN),
            THIN,
        ),
        (
            "stale: 6 minutes old",
            standard_headers(&[WHSEC_OLD], id, t - 360, THIN),
            THIN,
        ),
        (
            "future: 6 minutes ahead",
            standard_headers(&[WHSEC_OLD], id, t + 360, THIN),
            THIN,
        ),
        (
            "the timestamp changed after signing",
            with("webhook-timestamp", Some((t + 1).to_string())),
            THIN,
        ),
        (
            "the id changed after signing",
            with("webhook-id", Some("msg_other".into())),
            THIN,
        ),
        ("no webhook-id", with("webhook-id", None), THIN),
        (
            "no webhook-timestamp",
            with("webhook-timestamp", None),
            THIN,
        ),
        (
            "no webhook-signature",
            with("webhook-signature", None),
            THIN,
        ),
        (
            "a timestamp that is not a number",
            with("webhook-timestamp", Some("yesterday".into())),
            THIN,
        ),
        (
            "an ed25519 entry only",
            with("webhook-signature", Some("v1a,AAAA".into())),
            THIN,
        ),
    ];
    for (case, headers, body) in cases {
        assert_401(post(&app, "/standard", &headers, body).await, case).await;
    }
    assert!(events_of(&app, "sw").await.is_empty());
    // Within the tolerance, both ways, is fine.
    for (i, skew) in [-280i64, 280].into_iter().enumerate() {
        let h = standard_headers(&[WHSEC_OLD], &format!("msg_skew_{i}"), t + skew, THIN);
        accepted(post(&app, "/standard", &h, THIN).await).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_standard_webhooks_body_must_be_a_json_object_with_a_string_type_if_any() {
    let app = spawn_app_with(senders).await;
    for (body, status, pointer) in [
        ("[1,2]", 422, Some("")),
        (r#"{"type":42}"#, 422, Some("/type")),
        (r#"{"type":"#, 400, None),
    ] {
        let h = standard_headers(&[WHSEC_OLD], "msg_body", now(), body);
        let res = post(&app, "/standard", &h, body).await;
        assert_eq!(res.status(), status, "{body}");
        if let Some(p) = pointer {
            let answer: Value = res.json().await.unwrap();
            assert_eq!(answer["errors"][0]["pointer"], p, "{body}");
        }
    }
    let untyped = r#"{"data":{"n":1}}"#;
    let h = standard_headers(&[WHSEC_OLD], "msg_untyped", now(), untyped);
    let (id, _) = accepted(post(&app, "/standard", &h, untyped).await).await;
    let event = app.admin_json(&format!("/admin/events/{id}")).await;
    assert_eq!(event["event_type"], Value::Null);
    app.stop().await;
}

/// GitHub's headers for `body`, signed as GitHub documents (HMAC-SHA256, hex, `sha256=`).
fn github_headers(delivery: &str, event: &str, signature: &str) -> Vec<(String, String)> {
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-github-delivery".into(), delivery.into()),
        ("x-github-event".into(), event.into()),
        ("x-hub-signature-256".into(), signature.into()),
    ]
}

#[tokio::test]
async fn the_github_recipe_verifies_githubs_signature_and_dedupes_by_delivery() {
    let app = spawn_app_with(senders).await;
    // GitHub's documented example: the body "Hello, World!" is not JSON, so a `json` source
    // refuses it, but only after the signature passed (400, not 401).
    let documented = github_headers(
        "d0",
        "ping",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    );
    let res = post(&app, "/github", &documented, "Hello, World!").await;
    assert_eq!(res.status(), 400, "the documented signature verifies");
    assert_401(
        post(&app, "/github", &documented, "Hello, World?").await,
        "documented signature, other body",
    )
    .await;
    // A JSON body; signature from python3 `hmac.new(secret, body, hashlib.sha256).hexdigest()`.
    let body = r#"{"zen":"Keep it logically awesome.","hook_id":12345678}"#;
    let sig = "sha256=4a4e363ea574e50ab0fc49e82cbd000ea4bb308c621ea54216cd4974caf699bc";
    let delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
    let h = github_headers(delivery, "ping", sig);
    let (first, dup) = accepted(post(&app, "/github", &h, body).await).await;
    assert!(!dup);
    // GitHub's redelivery: same delivery id, same body.
    let (again, dup) = accepted(post(&app, "/github", &h, body).await).await;
    assert!(dup);
    assert_eq!(first, again);
    let event = app.admin_json(&format!("/admin/events/{first}")).await;
    assert_eq!(event["kind"], "json");
    assert_eq!(event["event_type"], "ping");
    assert_eq!(event["dedupe_key"], delivery);
    assert!(!event["headers"].to_string().contains("4a4e363e"));
    // Upper-case hex verifies too.
    let upper = format!("sha256={}", sig["sha256=".len()..].to_ascii_uppercase());
    accepted(post(&app, "/github", &github_headers("d2", "ping", &upper), body).await).await;
    // No delivery header: 422 naming it, nothing stored.
    let no_delivery: Vec<(String, String)> = h
        .iter()
        .filter(|(k, _)| k != "x-github-delivery")
        .cloned()
        .collect();
    let res = post(&app, "/github", &no_delivery, body).await;
    assert_eq!(res.status(), 422);
    let answer: Value = res.json().await.unwrap();
    assert!(
        answer["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("x-github-delivery header is required"),
        "{answer}"
    );
    assert_eq!(events_of(&app, "github").await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn the_shopify_recipe_verifies_a_base64_signature() {
    let app = spawn_app_with(senders).await;
    // Shopify's method (base64 of HMAC-SHA256 of the raw body); vector from python3 and openssl.
    let body = r#"{"id":820982911946154508,"email":"jon@example.com","topic":"orders/create"}"#;
    let h = |sig: &str| -> Vec<(String, String)> {
        vec![
            ("content-type".into(), "application/json".into()),
            ("x-shopify-topic".into(), "orders/create".into()),
            (
                "x-shopify-webhook-id".into(),
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into(),
            ),
            ("x-shopify-hmac-sha256".into(), sig.into()),
        ]
    };
    let (id, _) = accepted(
        post(
            &app,
            "/shopify",
            &h("pRQWiqYM67ODS2BlGGNtu7zMqvyFoHMBdWLfOJldH2I="),
            body,
        )
        .await,
    )
    .await;
    let event = app.admin_json(&format!("/admin/events/{id}")).await;
    assert_eq!(event["event_type"], "orders/create");
    assert_eq!(event["dedupe_key"], "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
    assert_401(
        post(
            &app,
            "/shopify",
            &h("qRQWiqYM67ODS2BlGGNtu7zMqvyFoHMBdWLfOJldH2I="),
            body,
        )
        .await,
        "one character changed",
    )
    .await;
    app.stop().await;
}

/// Slack's headers for `body` at `ts`, signed as Slack documents: `v0=` + hex HMAC-SHA256 of
/// `v0:{timestamp}:{body}` (computed here with the `hmac` crate, from the documented recipe).
fn slack_headers(ts: i64, body: &str) -> Vec<(String, String)> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SLACK_SECRET.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    vec![
        ("content-type".into(), "application/json".into()),
        ("x-slack-request-timestamp".into(), ts.to_string()),
        (
            "x-slack-signature".into(),
            format!("v0={}", hex::encode(mac.finalize().into_bytes())),
        ),
    ]
}

#[tokio::test]
async fn the_slack_recipe_verifies_events_api_requests_within_five_minutes() {
    let app = spawn_app_with(senders).await;
    let body = r#"{"token":"z26uFbvR1xHJEdHE1OQiO6t8","team_id":"T123ABC456","api_app_id":"A123ABC456","event":{"type":"app_mention","user":"U123ABC456","text":"hi","ts":"1515449522.000016","channel":"C123ABC456"},"type":"event_callback","event_id":"Ev123ABC456","event_time":1515449522}"#;
    let (id, _) =
        accepted(post(&app, "/slack/events", &slack_headers(now(), body), body).await).await;
    let event = app.admin_json(&format!("/admin/events/{id}")).await;
    assert_eq!(event["event_type"], "app_mention");
    assert_eq!(event["dedupe_key"], "Ev123ABC456");
    // Slack's retry of the same event: a new timestamp and signature, the same event_id.
    let (again, dup) =
        accepted(post(&app, "/slack/events", &slack_headers(now() + 2, body), body).await).await;
    assert!(dup);
    assert_eq!(again, id);
    for (case, ts) in [("stale", now() - 400), ("future", now() + 400)] {
        assert_401(
            post(&app, "/slack/events", &slack_headers(ts, body), body).await,
            case,
        )
        .await;
    }
    let mut moved = slack_headers(now(), body);
    moved[1].1 = (now() - 1).to_string();
    assert_401(
        post(&app, "/slack/events", &moved, body).await,
        "timestamp changed after signing",
    )
    .await;
    let no_ts: Vec<(String, String)> = slack_headers(now(), body)
        .into_iter()
        .filter(|(k, _)| k != "x-slack-request-timestamp")
        .collect();
    assert_401(
        post(&app, "/slack/events", &no_ts, body).await,
        "no timestamp",
    )
    .await;
    // A slash command is form-encoded: verified, then refused as not JSON (415).
    let form = "token=x&command=%2Fwebhook-collect&text=";
    let mut h = slack_headers(now(), form);
    h[0].1 = "application/x-www-form-urlencoded".into();
    assert_eq!(post(&app, "/slack/events", &h, form).await.status(), 415);
    assert_eq!(events_of(&app, "slack").await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn any_json_sender_is_keyed_by_a_pointer_and_answers_422_naming_a_missing_one() {
    let app = spawn_app_with(senders).await;
    let keyed = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("x-api-key".to_string(), JSON_KEY.to_string()),
    ];
    let body = r#"{"id":"evt_1","type":"invoice.paid","data":{"amount":3}}"#;
    let (first, dup) = accepted(post(&app, "/json", &keyed, body).await).await;
    assert!(!dup);
    // The same id with another body (a sender's retry that re-serialized): a duplicate.
    let retry = r#"{"data":{"amount":3},"type":"invoice.paid","id":"evt_1"}"#;
    let (second, dup) = accepted(post(&app, "/json", &keyed, retry).await).await;
    assert!(dup);
    assert_eq!(first, second);
    let event = app.admin_json(&format!("/admin/events/{first}")).await;
    assert_eq!(event["event_type"], "invoice.paid");
    assert_eq!(event["dedupe_key"], "evt_1");
    assert_eq!(event["sender_id"], "evt_1");
    // No id: 422 at /id. No type: stored without one.
    let res = post(&app, "/json", &keyed, r#"{"type":"x"}"#).await;
    assert_eq!(res.status(), 422);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["errors"][0]["pointer"], "/id");
    let untyped = r#"{"id":7}"#;
    let (id, _) = accepted(post(&app, "/json", &keyed, untyped).await).await;
    let event = app.admin_json(&format!("/admin/events/{id}")).await;
    assert_eq!(event["event_type"], Value::Null);
    assert_eq!(event["dedupe_key"], "7");
    assert_eq!(events_of(&app, "anyjson").await.len(), 2);
    app.stop().await;
}

fn sign_cli(args: &[&str], secret: &str, stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .arg("sign")
        .args(args)
        .env("HOOKGATE_SIGN_SECRET", secret)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn sign_prints_the_standard_webhooks_headers_of_the_official_vector() {
    let (ok, out, _) = sign_cli(
        &[
            "standard_webhooks",
            "--id",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "--timestamp",
            "1614265330",
        ],
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        r#"{"test": 2432232314}"#,
    );
    assert!(ok);
    assert_eq!(
        out,
        "Content-Type: application/json\nwebhook-id: msg_p5jXN8AQM9LWM0D4loKWxJek\n\
         webhook-timestamp: 1614265330\n\
         webhook-signature: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=\n"
    );
    let (ok, _, err) = sign_cli(&["standard_webhooks"], "whsec_*not-base64*", "{}");
    assert!(!ok);
    assert!(err.contains("not `whsec_` followed by base64") && !err.contains("not-base64*"));
}

#[test]
fn sign_prints_hmac_headers_as_github_and_slack_document_them() {
    let (ok, out, _) = sign_cli(
        &[
            "hmac",
            "--header",
            "X-Hub-Signature-256",
            "--prefix",
            "sha256=",
        ],
        GITHUB_SECRET,
        "Hello, World!",
    );
    assert!(ok);
    assert!(out.ends_with(
        "X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\n"
    ));
    let slash = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    let (ok, out, _) = sign_cli(
        &[
            "hmac",
            "--header",
            "X-Slack-Signature",
            "--prefix",
            "v0=",
            "--signed",
            "v0:{timestamp}:{body}",
            "--timestamp-header",
            "X-Slack-Request-Timestamp",
            "--timestamp",
            "1531420618",
        ],
        SLACK_SECRET,
        slash,
    );
    assert!(ok);
    assert!(
        out.ends_with(
            "X-Slack-Request-Timestamp: 1531420618\n\
             X-Slack-Signature: v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503\n"
        ),
        "{out}"
    );
    let (ok, _, err) = sign_cli(&["hmac"], "s", "{}");
    assert!(!ok && err.contains("--header"), "{err}");
}

#[tokio::test]
async fn headers_made_by_hookgate_sign_pass_each_recipe() {
    let app = spawn_app_with(senders).await;
    let body = r#"{"event_id":"Ev9","event":{"type":"message"},"type":"event_callback"}"#;
    let o = hookgate::sign::SignOptions {
        header: Some("X-Slack-Signature".into()),
        prefix: "v0=".into(),
        signed: Some(hookgate::sign::SignedTemplate::parse("v0:{timestamp}:{body}").unwrap()),
        timestamp_header: Some("X-Slack-Request-Timestamp".into()),
        ..Default::default()
    };
    let h = hookgate::sign::headers_with(
        hookgate::sign::SignScheme::Hmac,
        SLACK_SECRET,
        body.as_bytes(),
        &o,
    )
    .unwrap();
    accepted(post(&app, "/slack/events", &h, body).await).await;
    let h = hookgate::sign::headers_with(
        hookgate::sign::SignScheme::StandardWebhooks,
        WHSEC_NEW,
        THIN.as_bytes(),
        &Default::default(),
    )
    .unwrap();
    accepted(post(&app, "/standard", &h, THIN).await).await;
    app.stop().await;
}

/// A run of failed and passed verifications of the new schemes, logged at trace level through
/// the real binary: no secret, no signature sent and no signature hookgate computed appears in
/// the logs or the answers.
#[tokio::test]
async fn signatures_and_secrets_of_the_new_schemes_never_appear_in_logs_or_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let env = [
        ("HOOKGATE__LOG__LEVEL", "trace"),
        ("HOOKGATE__SOURCES__SW__KIND", "standard"),
        ("HOOKGATE__SOURCES__SW__PATH", "/standard"),
        ("HOOKGATE__SOURCES__SW__VERIFY__SCHEME", "standard_webhooks"),
        ("HOOKGATE__SOURCES__SW__VERIFY__SECRETS", WHSEC_OLD),
        ("HOOKGATE__SOURCES__GH__KIND", "json"),
        ("HOOKGATE__SOURCES__GH__PATH", "/github"),
        ("HOOKGATE__SOURCES__GH__VERIFY__SCHEME", "hmac"),
        (
            "HOOKGATE__SOURCES__GH__VERIFY__HEADER",
            "X-Hub-Signature-256",
        ),
        ("HOOKGATE__SOURCES__GH__VERIFY__PREFIX", "sha256="),
        ("HOOKGATE__SOURCES__GH__VERIFY__SECRETS", GITHUB_SECRET),
        ("HOOKGATE__SOURCES__SLACK__KIND", "json"),
        ("HOOKGATE__SOURCES__SLACK__PATH", "/slack"),
        ("HOOKGATE__SOURCES__SLACK__VERIFY__SCHEME", "hmac"),
        (
            "HOOKGATE__SOURCES__SLACK__VERIFY__HEADER",
            "X-Slack-Signature",
        ),
        ("HOOKGATE__SOURCES__SLACK__VERIFY__PREFIX", "v0="),
        (
            "HOOKGATE__SOURCES__SLACK__VERIFY__SIGNED",
            "v0:{timestamp}:{body}",
        ),
        (
            "HOOKGATE__SOURCES__SLACK__VERIFY__TIMESTAMP__HEADER",
            "X-Slack-Request-Timestamp",
        ),
        ("HOOKGATE__SOURCES__SLACK__VERIFY__SECRETS", SLACK_SECRET),
    ];
    let bin = start_binary(tmp.path(), &env, &[]);
    let client = reqwest::Client::new();
    let public = format!("http://{}", bin.public);
    let mut answers = String::new();
    // Every signature sent, and every signature hookgate would have expected.
    let mut signatures: Vec<String> = Vec::new();
    let hex_mac = |secret: &str, text: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    let send = |path: &str, headers: Headers, body: String| {
        let mut req = client
            .post(format!("{public}{path}"))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    for i in 0..20 {
        let body = format!(r#"{{"type":"leak.test","event_id":"Ev{i}","n":{i}}}"#);
        let tampered = format!("{body} ");
        let t = now();
        let id = format!("msg_leak_{i}");
        let cases: Vec<(&str, Headers, String, u16)> = vec![
            (
                "/standard",
                standard_headers(&[WHSEC_OLD], &id, t, &body),
                tampered.clone(),
                401,
            ),
            (
                "/standard",
                standard_headers(&[WHSEC_OLD], &id, t - 3600, &body),
                body.clone(),
                401,
            ),
            (
                "/standard",
                standard_headers(&[WHSEC_OLD], &id, t, &body),
                body.clone(),
                200,
            ),
            (
                "/github",
                vec![(
                    "x-hub-signature-256".into(),
                    format!("sha256={}", hex_mac(GITHUB_SECRET, &body)),
                )],
                tampered.clone(),
                401,
            ),
            (
                "/github",
                vec![(
                    "x-hub-signature-256".into(),
                    format!("sha256={}", hex_mac(GITHUB_SECRET, &body)),
                )],
                body.clone(),
                200,
            ),
            (
                "/slack",
                vec![
                    ("x-slack-request-timestamp".into(), t.to_string()),
                    (
                        "x-slack-signature".into(),
                        format!("v0={}", hex_mac(SLACK_SECRET, &format!("v0:{t}:{body}"))),
                    ),
                ],
                tampered.clone(),
                401,
            ),
        ];
        for (path, headers, sent, status) in cases {
            for (k, v) in &headers {
                if k.contains("signature") {
                    signatures.extend(v.split(' ').map(|s| {
                        s.trim_start_matches("v1,")
                            .trim_start_matches("sha256=")
                            .trim_start_matches("v0=")
                            .to_string()
                    }));
                }
            }
            let res = send(path, headers, sent).await.unwrap();
            assert_eq!(res.status(), status, "{path}");
            answers.push_str(&format!("{:?}", res.headers()));
            answers.push_str(&res.text().await.unwrap());
        }
        // What hookgate computed for the tampered bodies.
        signatures.push(hex_mac(GITHUB_SECRET, &tampered));
        signatures.push(hex_mac(SLACK_SECRET, &format!("v0:{t}:{tampered}")));
        let key = standardwebhooks::Webhook::new(WHSEC_OLD).unwrap();
        signatures.push(key.sign(&id, t, tampered.as_bytes()).unwrap()["v1,".len()..].to_string());
    }
    bin.signal("TERM");
    let mut logs = Vec::new();
    while let Ok(l) = bin.logs.recv_timeout(std::time::Duration::from_secs(10)) {
        logs.push(l);
    }
    assert!(bin.wait().await.success());
    assert!(
        logs.iter()
            .filter(|l| l.contains("request failed verification"))
            .count()
            >= 80,
        "the failures were logged"
    );
    // Request headers are logged at this level (so the check below means something), with the
    // signature headers' values redacted.
    assert!(
        logs.iter().any(|l| l.contains("x-slack-request-timestamp")),
        "the request headers were logged"
    );
    let mut secrets: Vec<String> = vec![
        WHSEC_OLD.into(),
        WHSEC_OLD["whsec_".len()..].into(),
        GITHUB_SECRET.into(),
        SLACK_SECRET.into(),
    ];
    secrets.extend(signatures);
    let everything = logs.join("\n") + &answers;
    for secret in &secrets {
        assert!(
            !everything.contains(secret.as_str()),
            "{secret} appears in the logs or answers"
        );
    }
}
