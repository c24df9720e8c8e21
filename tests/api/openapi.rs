//! The admin API's OpenAPI description, `GET /admin/openapi.json` (issue 14): served without the
//! token, OpenAPI 3.1; every route a user can call is in it with its methods, and nothing else;
//! every `/admin/` route names the bearer scheme and really asks for it; real answers (lists,
//! single things, errors) validate against the schemas it gives for their status. On either
//! backend (`HOOKGATE_TEST_BACKEND`).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::eventually;
use crate::helpers::{
    ADMIN_TOKEN, GUIDE_IDENTITY, TestApp, connection_event, kratos_body, spawn_app, spawn_app_with,
};

/// What a user can call on the admin listener: (method, path as the description writes it).
/// (The console, `/console` in `src/admin/console.rs`, is a page over this API, not part of it.)
const ROUTES: &[(&str, &str)] = &[
    ("get", "/metrics"),
    ("get", "/admin/openapi.json"),
    ("get", "/admin/sources"),
    ("get", "/admin/events"),
    ("get", "/admin/events/{id}"),
    ("get", "/admin/events/{id}/raw"),
    ("get", "/admin/destinations"),
    ("post", "/admin/destinations/{id}/pause"),
    ("post", "/admin/destinations/{id}/resume"),
    ("post", "/admin/destinations/{id}/replay"),
    ("get", "/admin/deliveries"),
    ("get", "/admin/deliveries/{id}"),
    ("post", "/admin/deliveries/{id}/retry"),
    ("get", "/admin/hooks"),
    ("post", "/admin/hooks"),
    ("get", "/admin/hooks/{id}"),
    ("delete", "/admin/hooks/{id}"),
    ("get", "/admin/kratos/identities"),
    ("get", "/admin/kratos/identities/{id}"),
    ("get", "/admin/identus/{kind}"),
    ("get", "/admin/identus/{kind}/{id}"),
];

/// The routes that take no token (the admin listener is internal; neither holds a secret).
const OPEN: &[&str] = &["/metrics", "/admin/openapi.json"];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn routes() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_string(), (*p).to_string()))
        .collect()
}

/// The routes the admin router declares, read from its source (`.route("path", get(..).post(..))`),
/// so that a route added there and not here (nor in the description) fails the test.
fn router_routes() -> BTreeSet<(String, String)> {
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/admin/mod.rs"),
    )
    .unwrap();
    let mut out = BTreeSet::new();
    for (start, _) in source.match_indices(".route(") {
        let rest = &source[start + ".route(".len()..];
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .unwrap();
        let call = &rest[..end];
        let path = call.split('"').nth(1).unwrap();
        for method in METHODS {
            let found = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                !call[..i]
                    .chars()
                    .last()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
            });
            if found {
                out.insert((method.to_string(), path.to_string()));
            }
        }
    }
    out
}

async fn description(app: &TestApp) -> Value {
    let res = app
        .client
        .get(format!("{}/admin/openapi.json", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "served without the token");
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.unwrap()
}

fn operations(spec: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

/// A response of the description, its `$ref` followed.
fn response<'a>(spec: &'a Value, method: &str, path: &str, status: u16) -> &'a Value {
    let res = &spec["paths"][path][method]["responses"][status.to_string()];
    assert!(
        !res.is_null(),
        "{method} {path}: the description has no {status} answer"
    );
    match res["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/components/responses/").unwrap();
            &spec["components"]["responses"][name]
        }
        None => res,
    }
}

#[tokio::test]
async fn the_description_is_openapi_3_1_served_without_the_token_and_lists_every_route() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let spec = description(&app).await;

    // Assert
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "OpenAPI 3.1: {}",
        spec["openapi"]
    );
    assert_eq!(
        router_routes(),
        routes(),
        "the admin router's routes are the ones a user can call (add a new route to ROUTES, and \
         describe it with #[utoipa::path] in src/admin/openapi.rs)"
    );
    assert_eq!(
        operations(&spec),
        routes(),
        "the description has every route, with its methods, and no other"
    );
    assert_eq!(
        spec["components"]["securitySchemes"]["admin_token"],
        json!({"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer <admin.token>` (the `admin.token` setting)"}),
    );
    let mut ids = BTreeSet::new();
    for (method, path) in routes() {
        let op = &spec["paths"][&path][&method];
        assert!(
            ids.insert(op["operationId"].as_str().unwrap().to_string()),
            "{method} {path}: operation ids are unique"
        );
        if OPEN.contains(&path.as_str()) {
            assert!(
                op.get("security").is_none(),
                "{method} {path} takes no token"
            );
            continue;
        }
        assert_eq!(
            op["security"],
            json!([{"admin_token": []}]),
            "{method} {path} names the bearer scheme"
        );
        let answers = op["responses"].as_object().unwrap();
        for status in [401, 503] {
            let content = &response(&spec, &method, &path, status)["content"];
            assert!(
                content.get("application/problem+json").is_some(),
                "{method} {path}: {status} is a problem"
            );
        }
        for status in answers
            .keys()
            .filter(|s| s.starts_with('4') || s.starts_with('5'))
        {
            let content = &response(&spec, &method, &path, status.parse().unwrap())["content"];
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path}: {status} is described as a problem"
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn every_admin_route_asks_for_the_token_the_description_names() {
    let app = spawn_app().await;
    for (method, path) in routes() {
        let url = format!(
            "{}{}",
            app.admin,
            path.replace("{kind}", "connections").replace("{id}", "1")
        );
        let req = match method.as_str() {
            "get" => app.client.get(&url),
            "post" => app.client.post(&url),
            "delete" => app.client.delete(&url),
            other => panic!("no test for {other}"),
        };
        let res = req.send().await.unwrap();
        if OPEN.contains(&path.as_str()) {
            assert_eq!(res.status(), 200, "{method} {path} without a token");
            continue;
        }
        assert_eq!(res.status(), 401, "{method} {path} without a token");
        assert_eq!(
            res.headers()["www-authenticate"],
            r#"Bearer realm="hookgate-admin""#
        );
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    app.stop().await;
}

/// Checks that an answer of `method path` (the path as described) has a status, content type
/// and body the description gives for it.
struct Checker {
    spec: Value,
    client: reqwest::Client,
    admin: String,
}

impl Checker {
    async fn call(
        &self,
        method: &str,
        described: &str,
        path: &str,
        body: Option<Value>,
        token: bool,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.admin);
        let mut req = match method {
            "get" => self.client.get(&url),
            "post" => self.client.post(&url),
            "delete" => self.client.delete(&url),
            other => panic!("no test for {other}"),
        };
        if token {
            req = req.bearer_auth(ADMIN_TOKEN);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string());
        let bytes = res.bytes().await.unwrap();
        let described_answer = response(&self.spec, method, described, status);
        let Some(content) = described_answer["content"].as_object() else {
            assert!(bytes.is_empty(), "{method} {path} → {status}: no body");
            return (status, Value::Null);
        };
        let content_type = content_type.unwrap();
        let (_, media) = content
            .iter()
            .find(|(ct, _)| content_type.split(';').next() == Some(ct.as_str()))
            .unwrap_or_else(|| {
                panic!("{method} {path} → {status}: {content_type} is not described")
            });
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.spec["components"],
            "allOf": [media["schema"]],
        });
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} → {status} does not fit its schema: {errors:#?}\n{body:#}"
        );
        (status, body)
    }

    async fn get(&self, described: &str, path: &str) -> Value {
        let (status, body) = self.call("get", described, path, None, true).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }
}

#[tokio::test]
async fn real_answers_validate_against_the_schemas_of_the_description() {
    // Arrange: events of each kind, a hook and an event through it, deliveries that failed.
    let app = spawn_app_with(|s| {
        s.destinations.insert(
            "app".into(),
            serde_json::from_value(json!({
                "kind": "http",
                "url": "http://127.0.0.1:9/refused",
                "retry": ["1h"],
            }))
            .unwrap(),
        );
    })
    .await;
    let check = Checker {
        spec: description(&app).await,
        client: app.client.clone(),
        admin: app.admin.clone(),
    };
    assert_eq!(
        app.kratos(&kratos_body(GUIDE_IDENTITY), &[]).await.status(),
        200
    );
    let connection = uuid::Uuid::new_v4().to_string();
    let body = connection_event(
        &uuid::Uuid::new_v4().to_string(),
        &connection,
        "ConnectionResponseSent",
        "2024-05-01T10:20:00.000000Z",
    );
    assert_eq!(app.identus(&body).await.status(), 200);
    let (status, created) = check
        .call(
            "post",
            "/admin/hooks",
            "/admin/hooks",
            Some(
                json!({"kind": "json", "label": "shop 42", "payload": {"shop": 42},
                "verify": {"scheme": "bearer", "secrets": "generate"}}),
            ),
            true,
        )
        .await;
    assert_eq!(status, 201);
    assert!(created["secret"].is_string(), "the generated secret, once");
    let (_, open_hook) = check
        .call(
            "post",
            "/admin/hooks",
            "/admin/hooks",
            Some(json!({"kind": "json"})),
            true,
        )
        .await;
    let hook_path = open_hook["path"].as_str().unwrap();
    assert_eq!(
        app.post(
            hook_path,
            &[("content-type", "application/json")],
            r#"{"id": 7}"#
        )
        .await
        .status(),
        200
    );
    eventually(&app, "/admin/deliveries", Duration::from_secs(10), |d| {
        d["deliveries"]
            .as_array()
            .is_some_and(|all| all.len() == 3 && all.iter().all(|d| d["attempts_made"] == 1))
    })
    .await;

    // Act and assert: every list, every single thing, and the errors.
    let sources = check.get("/admin/sources", "/admin/sources").await;
    assert!(
        sources["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == "hooks" && s["events_last_hour"] == 1),
        "{sources}"
    );
    let since = check
        .get(
            "/admin/events",
            "/admin/events?from=2000-01-01T00:00:00Z&to=2999-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(since["events"].as_array().unwrap().len(), 3);
    let (status, _) = check
        .call(
            "get",
            "/admin/events",
            "/admin/events?from=yesterday",
            None,
            true,
        )
        .await;
    assert_eq!(status, 400);
    let events = check.get("/admin/events", "/admin/events?limit=10").await;
    let ids: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    for id in &ids {
        check
            .get("/admin/events/{id}", &format!("/admin/events/{id}"))
            .await;
    }
    let (status, _) = check
        .call("get", "/admin/events", "/admin/events?limit=0", None, true)
        .await;
    assert_eq!(status, 400);
    let (status, _) = check
        .call(
            "get",
            "/admin/events/{id}",
            &format!("/admin/events/{}", uuid::Uuid::new_v4()),
            None,
            true,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = check
        .call("get", "/admin/events", "/admin/events", None, false)
        .await;
    assert_eq!(status, 401);

    let deliveries = check.get("/admin/deliveries", "/admin/deliveries").await;
    let delivery = deliveries["deliveries"][0]["id"].as_i64().unwrap();
    let one = check
        .get(
            "/admin/deliveries/{id}",
            &format!("/admin/deliveries/{delivery}"),
        )
        .await;
    assert_eq!(one["attempts"][0]["error"], "connect");
    let (status, _) = check
        .call(
            "post",
            "/admin/deliveries/{id}/retry",
            &format!("/admin/deliveries/{delivery}/retry"),
            None,
            true,
        )
        .await;
    assert_eq!(status, 202);

    check
        .get("/admin/destinations", "/admin/destinations")
        .await;
    for action in ["pause", "resume"] {
        let (status, _) = check
            .call(
                "post",
                &format!("/admin/destinations/{{id}}/{action}"),
                &format!("/admin/destinations/app/{action}"),
                None,
                true,
            )
            .await;
        assert_eq!(status, 200);
    }
    let (status, _) = check
        .call(
            "post",
            "/admin/destinations/{id}/replay",
            "/admin/destinations/app/replay",
            Some(json!({"source": "identus"})),
            true,
        )
        .await;
    assert_eq!(status, 202);
    let (status, _) = check
        .call(
            "post",
            "/admin/destinations/{id}/replay",
            "/admin/destinations/app/replay",
            Some(json!({"from": "yesterday"})),
            true,
        )
        .await;
    assert_eq!(status, 400);

    check.get("/admin/hooks", "/admin/hooks").await;
    let hook = created["id"].as_str().unwrap();
    let shown = check
        .get("/admin/hooks/{id}", &format!("/admin/hooks/{hook}"))
        .await;
    assert!(shown.get("secret").is_none(), "never the secret again");
    let (status, problem) = check
        .call(
            "post",
            "/admin/hooks",
            "/admin/hooks",
            Some(json!({"kind": "nope", "label": 5})),
            true,
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);
    let (status, _) = check
        .call(
            "delete",
            "/admin/hooks/{id}",
            &format!("/admin/hooks/{hook}"),
            None,
            true,
        )
        .await;
    assert_eq!(status, 204);

    let identities = check
        .get("/admin/kratos/identities", "/admin/kratos/identities")
        .await;
    let identity = identities["identities"][0]["identity_id"].as_str().unwrap();
    check
        .get(
            "/admin/kratos/identities/{id}",
            &format!("/admin/kratos/identities/{identity}"),
        )
        .await;
    let connections = check
        .get("/admin/identus/{kind}", "/admin/identus/connections")
        .await;
    assert_eq!(connections["connections"][0]["id"], connection.as_str());
    check
        .get(
            "/admin/identus/{kind}/{id}",
            &format!("/admin/identus/connections/{connection}"),
        )
        .await;
    let (status, _) = check
        .call(
            "get",
            "/admin/identus/{kind}",
            "/admin/identus/wallets",
            None,
            true,
        )
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn odd_inputs_the_description_allows_get_the_answers_it_gives() {
    let app = spawn_app_with(|s| {
        s.destinations.insert(
            "app".into(),
            serde_json::from_value(json!({"kind": "http", "url": "http://127.0.0.1:9/refused"}))
                .unwrap(),
        );
    })
    .await;
    let check = Checker {
        spec: description(&app).await,
        client: app.client.clone(),
        admin: app.admin.clone(),
    };

    // A replay body of `null` (the description's body is optional, and nullable) sets no filter,
    // as an empty body does (schemathesis found it answered 400).
    let (status, body) = check
        .call(
            "post",
            "/admin/destinations/{id}/replay",
            "/admin/destinations/app/replay",
            Some(Value::Null),
            true,
        )
        .await;
    assert_eq!(status, 202, "{body}");

    // A repeated `wallet_id` is a problem answer naming it (it was axum's plain-text 400).
    let (status, body) = check
        .call(
            "get",
            "/admin/identus/{kind}/{id}",
            "/admin/identus/connections/c-1?wallet_id=a&wallet_id=b",
            None,
            true,
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("wallet_id"),
        "{body}"
    );
    app.stop().await;
}
