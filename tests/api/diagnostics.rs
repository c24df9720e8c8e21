//! What an operator reads in the log when a sender is misconfigured: every refusal is logged
//! with what was expected, and admin paths on the public port point at the admin listener.

use std::time::{Duration, Instant};

use crate::helpers::*;

/// The log lines (JSON) the binary writes until one holds `needle` (or 10 s pass).
fn log_line_with(bin: &Binary, needle: &str) -> Option<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let line = bin.logs.recv_timeout(left).ok()?;
        if line.contains(needle) {
            return serde_json::from_str(&line).ok();
        }
    }
    None
}

#[tokio::test]
async fn refusals_are_logged_with_what_was_expected_and_admin_paths_point_at_the_admin_listener() {
    let dir = tempfile::tempdir().unwrap();
    let bin = start_binary(dir.path(), &[], &[]);
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{}{path}", bin.public);

    let post = |path: &str, headers: &[(&str, String)], body: String| {
        let mut req = client.post(url(path)).body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        async move { req.send().await.unwrap().status() }
    };

    // 415 is logged, naming the content type that came.
    let identus = [
        ("authorization", format!("Bearer {IDENTUS_TOKEN}")),
        ("content-type", "text/plain".to_string()),
    ];
    assert_eq!(post("/identus/events", &identus, "{}".into()).await, 415);
    let line = log_line_with(&bin, "payload refused: 415").expect("a 415 log line");
    assert_eq!(line["fields"]["source"], "identus");
    assert_eq!(line["fields"]["content_type"], "text/plain");

    // A missing credential names the header expected and the header names that came instead.
    let json = ("content-type", "application/json".to_string());
    let bearer = [
        json.clone(),
        ("authorization", format!("Bearer {KRATOS_KEY}")),
    ];
    let identity = kratos_body(GUIDE_IDENTITY);
    assert_eq!(
        post("/kratos/sync-identity", &bearer, identity.clone()).await,
        401
    );
    let line = log_line_with(&bin, "request failed verification").expect("a 401 log line");
    assert_eq!(line["fields"]["source"], "kratos");
    assert_eq!(line["fields"]["reason"], "credential missing");
    assert_eq!(line["fields"]["expected"], "header x-api-key");
    let present = line["fields"]["headers_present"].as_str().unwrap();
    assert!(present.contains("authorization"), "{present}");
    assert!(
        !line.to_string().contains(KRATOS_KEY),
        "a credential is never logged: {line}"
    );

    // A wrong cookie name for a cookie source.
    let cookie = [json, ("cookie", "session=abc".to_string())];
    assert_eq!(post("/kratos/cookie", &cookie, identity).await, 401);
    let line = log_line_with(&bin, "request failed verification").expect("a 401 log line");
    assert_eq!(line["fields"]["expected"], "cookie hook_key");

    // Admin paths asked of the public listener say where they are.
    for path in ["/admin/events", "/metrics"] {
        let res = client.get(url(path)).send().await.unwrap();
        assert_eq!(res.status(), 404);
        let body: serde_json::Value = res.json().await.unwrap();
        assert!(
            body["detail"].as_str().unwrap().starts_with(
                "the admin API and /metrics are served on the admin listener (admin.listen"
            ),
            "{body}"
        );
    }
    let res = client.get(url("/nothing-here")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "no source is configured at this path");
}
