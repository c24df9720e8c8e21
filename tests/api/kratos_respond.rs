//! Kratos flow answers (`respond`, DESIGN.md "Kratos flow answers"): each rule kind interrupts
//! a flow with Kratos' `messages` body (PROTOCOLS.md §1.6) and nothing is stored; a patch
//! answers `{"identity": {…}}` (§1.7) with only the named fields, deep-merged, never `null`;
//! a bad block is a configuration error naming its field.

use std::collections::HashMap;
use std::process::Command;

use serde_json::{Value, json};

use crate::helpers::*;

/// The `respond` block every test here uses, under a source id and path of the test's own
/// (the metrics of all the tests in this binary share one registry).
fn respond_source(id: &str) -> String {
    format!(
        r#"
  {id}:
    kind: kratos
    path: /kratos/{id}
    verify: {{ scheme: api_key, header: X-Api-Key, secrets: [kratos-key-new-0001] }}
    respond:
      rules:
        - pointer: /identity/traits/email
          matches: "@blocked\\.example$"
          message: {{ id: 4000001, text: "This e-mail domain is not allowed" }}
        - pointer: /identity/traits/email
          not_matches: "^[^@]+@[^@]+$"
          message: {{ id: 4000002, text: "Not an e-mail address", type: info, context: {{ hint: name@domain }} }}
        - pointer: /identity/traits/plan
          equals: {{ tier: legacy }}
          message: {{ id: 4000003, text: "Legacy plans are closed" }}
        - pointer: /identity/traits/consent
          missing: true
          message: {{ id: 4000004, text: "Please accept the terms" }}
        - pointer: /flow/transient_payload/invite
          equals: revoked
          message: {{ id: 4000005, text: "This invitation was revoked" }}
      patch:
        traits: {{ newsletterOptIn: false }}
        metadata_public: {{ synced_by: hookgate, flags: {{ beta: true, legacy: null }} }}
"#
    )
}

/// An app with the test configuration plus [`respond_source`] `id`, read by the real loader.
async fn spawn_with_respond(id: &str) -> TestApp {
    let yaml = format!("{TEST_CONFIG}{}", respond_source(id));
    let loaded = hookgate::startup::load_settings_from_str(&yaml, &HashMap::new())
        .unwrap_or_else(|e| panic!("the respond block loads: {e:?}"));
    let source = loaded.sources[id].clone();
    let id = id.to_string();
    spawn_app_with(move |s| {
        s.sources.insert(id, source);
    })
    .await
}

async fn post(app: &TestApp, id: &str, body: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut h = vec![
        ("content-type", "application/json"),
        ("x-api-key", KRATOS_KEY),
    ];
    h.extend_from_slice(extra);
    app.post(&format!("/kratos/{id}"), &h, body).await
}

/// A registration identity that passes every rule: the Ory guide's, with traits of its own.
fn identity(traits: Value) -> Value {
    let mut i: Value = serde_json::from_str(GUIDE_IDENTITY).unwrap();
    i["id"] = uuid::Uuid::new_v4().to_string().into();
    i["traits"] = traits;
    i
}

fn good_traits() -> Value {
    json!({"email": "ann@example.org", "consent": true, "plan": {"tier": "pro"}})
}

/// Kratos' error body with one message (PROTOCOLS.md §1.6).
fn messages(ptr: Option<&str>, id: i64, text: &str, kind: &str, context: Value) -> Value {
    json!({"messages": [{"instance_ptr": ptr, "messages": [
        {"id": id, "text": text, "type": kind, "context": context}
    ]}]})
}

async fn stored(app: &TestApp, id: &str) -> Vec<Value> {
    app.admin_json(&format!("/admin/events?source={id}")).await["events"]
        .as_array()
        .unwrap()
        .clone()
}

/// The paths of every `null` in `v`.
fn nulls(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Null => out.push(at.to_string()),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| nulls(x, &format!("{at}/{i}"), out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| nulls(x, &format!("{at}/{k}"), out)),
        _ => {}
    }
}

#[tokio::test]
async fn each_rule_kind_interrupts_the_flow_with_its_message_and_nothing_is_stored() {
    let id = "flow_rules";
    let app = spawn_with_respond(id).await;
    let traits = |f: &dyn Fn(&mut Value)| {
        let mut t = good_traits();
        f(&mut t);
        json!({ "identity": identity(t) })
    };
    let cases = [
        (
            "matches",
            traits(&|t| t["email"] = "eve@blocked.example".into()),
            messages(
                Some("#/traits/email"),
                4000001,
                "This e-mail domain is not allowed",
                "error",
                Value::Null,
            ),
        ),
        (
            "not_matches",
            traits(&|t| t["email"] = "not-an-address".into()),
            messages(
                Some("#/traits/email"),
                4000002,
                "Not an e-mail address",
                "info",
                json!({"hint": "name@domain"}),
            ),
        ),
        (
            "equals",
            traits(&|t| t["plan"] = json!({"tier": "legacy"})),
            messages(
                Some("#/traits/plan"),
                4000003,
                "Legacy plans are closed",
                "error",
                Value::Null,
            ),
        ),
        (
            "missing (absent)",
            traits(&|t| {
                t.as_object_mut().unwrap().remove("consent");
            }),
            messages(
                Some("#/traits/consent"),
                4000004,
                "Please accept the terms",
                "error",
                Value::Null,
            ),
        ),
        (
            "missing (null)",
            traits(&|t| t["consent"] = Value::Null),
            messages(
                Some("#/traits/consent"),
                4000004,
                "Please accept the terms",
                "error",
                Value::Null,
            ),
        ),
        (
            "a pointer outside the identity: a flow-level message",
            {
                let mut b = traits(&|_| {});
                b["flow"] = json!({"transient_payload": {"invite": "revoked"}});
                b
            },
            messages(
                None,
                4000005,
                "This invitation was revoked",
                "error",
                Value::Null,
            ),
        ),
        (
            "the first matching rule answers (rules 0 and 3 both match)",
            traits(&|t| {
                t["email"] = "eve@blocked.example".into();
                t.as_object_mut().unwrap().remove("consent");
            }),
            messages(
                Some("#/traits/email"),
                4000001,
                "This e-mail domain is not allowed",
                "error",
                Value::Null,
            ),
        ),
    ];
    for (name, body, want) in &cases {
        let res = post(&app, id, &body.to_string(), &[]).await;
        assert_eq!(res.status(), 400, "{name}: Kratos shows messages on a 4xx");
        assert_eq!(res.headers()["content-type"], "application/json", "{name}");
        assert!(
            res.headers().get("hookgate-event-id").is_none(),
            "{name}: no event"
        );
        let got: Value = res.json().await.unwrap();
        assert_eq!(&got, want, "{name}");
    }
    assert!(
        stored(&app, id).await.is_empty(),
        "an interrupted flow did not happen: nothing is stored"
    );
    let metrics = metrics_text(&app.client, &app.admin).await;
    let line = format!(
        "hookgate_flows_interrupted_total{{source=\"{id}\"}} {}",
        cases.len()
    );
    assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    assert!(
        metrics.contains(&format!(
            "hookgate_requests_total{{source=\"{id}\",status=\"400\"}} {}",
            cases.len()
        )),
        "{metrics}"
    );

    // A body that does not validate is still refused as before, before any rule.
    let res = post(&app, id, r#"{"identity": null}"#, &[]).await;
    assert_eq!(res.status(), 422);
    app.stop().await;
}

#[tokio::test]
async fn a_patch_answers_only_the_named_fields_deep_merged_and_a_retry_gets_the_same() {
    let id = "flow_patch";
    let app = spawn_with_respond(id).await;

    // The guide's identity: `metadata_public: null` gets just the patch's object.
    let first = identity(good_traits());
    let body = json!({ "identity": first }).to_string();
    let trigger = [(
        "ory-webhook-trigger-id",
        "2b0c1d3e-0000-4000-8000-000000000001",
    )];
    let res = post(&app, id, &body, &trigger).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let event_id = res.headers()["hookgate-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    let text = res.text().await.unwrap();
    let got: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        got,
        json!({"identity": {
            "traits": {"email": "ann@example.org", "consent": true, "plan": {"tier": "pro"},
                       "newsletterOptIn": false},
            "metadata_public": {"synced_by": "hookgate", "flags": {"beta": true}},
        }}),
        "only the named fields, merged into the identity's values; camelCase keys as written"
    );
    let mut found = Vec::new();
    nulls(&got, "", &mut found);
    assert!(
        found.is_empty(),
        "no null is ever sent: {found:?} in {text}"
    );

    // Stored, as every 2xx; a retry of the same trigger gets the same answer and event.
    let events = stored(&app, id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["id"], event_id.as_str());
    let again = post(&app, id, &body, &trigger).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["hookgate-event-id"], event_id.as_str());
    assert_eq!(
        again.text().await.unwrap(),
        text,
        "a retry gets the same answer"
    );
    assert_eq!(stored(&app, id).await.len(), 1);

    // Existing metadata: untouched keys stay, `null` in the patch removes `flags.legacy`,
    // nested objects merge.
    let mut second = identity(json!({"email": "bob@example.org", "consent": true,
        "newsletterOptIn": true, "name": {"first": "Bob"}}));
    second["metadata_public"] =
        json!({"keep": [1, {"x": 2}], "synced_by": "someone", "flags": {"legacy": true, "x": 1}});
    let res = post(&app, id, &json!({ "identity": second }).to_string(), &[]).await;
    assert_eq!(res.status(), 200);
    let got: Value = res.json().await.unwrap();
    assert_eq!(
        got,
        json!({"identity": {
            "traits": {"email": "bob@example.org", "consent": true, "newsletterOptIn": false,
                       "name": {"first": "Bob"}},
            "metadata_public": {"keep": [1, {"x": 2}], "synced_by": "hookgate",
                                "flags": {"x": 1, "beta": true}},
        }})
    );
    assert_eq!(stored(&app, id).await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn without_respond_a_kratos_source_answers_an_empty_object_as_before() {
    let app = spawn_app().await;
    let res = app.kratos(&kratos_body(GUIDE_IDENTITY), &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "{}");
    app.stop().await;
}

#[test]
fn a_bad_respond_block_is_a_configuration_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hookgate.yaml");
    let bad = r#"
  kratos_bad:
    kind: kratos
    path: /kratos/bad
    verify: { scheme: api_key, header: X-Api-Key, secrets: [kratos-key-new-0001] }
    respond:
      rules:
        - pointer: /identity/traits/email
          matches: "([a-z]+"
          message: { id: 1, text: "x" }
        - pointer: identity/traits/email
          missing: true
          message: { id: 2, text: "y" }
        - pointer: /identity/traits/email
          equals: x
          message: { text: "no id" }
        - pointer: /identity/traits/email
          message: { id: 4, text: "no condition" }
      patch:
        traits: null
        credentials: { password: {} }
"#;
    std::fs::write(&file, format!("{TEST_CONFIG}{bad}")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["--config", file.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "sources.kratos_bad.respond.rules[0].matches: not a valid regular expression: unclosed group",
        "sources.kratos_bad.respond.rules[1].pointer: `identity/traits/email` is not a JSON pointer",
        "sources.kratos_bad.respond.rules[2].message.id: is required",
        "sources.kratos_bad.respond.rules[3]: give exactly one of `matches`, `not_matches`, `equals`, `missing`",
        "sources.kratos_bad.respond.patch.traits: must be a mapping",
        "sources.kratos_bad.respond.patch.credentials: unknown field `credentials`",
    ] {
        assert!(err.contains(want), "{want}\nin:\n{err}");
    }

    // The same block with the mistakes fixed is valid.
    let good = format!("{TEST_CONFIG}{}", respond_source("kratos_good"));
    std::fs::write(&file, good).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(["--config", file.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
