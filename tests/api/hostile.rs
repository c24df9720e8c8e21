//! Hostile requests, byte for byte on a raw connection: each gets a clear 4xx and nothing is
//! stored. And secrets: a run full of failed verifications, logged at every level, never shows a
//! configured secret, an expected signature or the admin token.

use std::time::Duration;

use hookgate::verify::abp_signature;
use tokio::io::AsyncWriteExt as _;

use crate::helpers::*;

/// One hostile request and the status it must get.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    status: u16,
}

fn post(path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut r = format!("POST {path} HTTP/1.1\r\nhost: hookgate\r\nconnection: close\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    let mut r = r.into_bytes();
    r.extend_from_slice(body);
    r
}

/// A POST to the Identus source with a valid token and an honest length.
fn identus(body: &[u8]) -> Vec<u8> {
    identus_with(&[], body)
}

fn identus_with(extra: &[&str], body: &[u8]) -> Vec<u8> {
    let auth = format!("authorization: Bearer {IDENTUS_TOKEN}");
    let len = format!("content-length: {}", body.len());
    let mut headers = vec![
        "content-type: application/json",
        auth.as_str(),
        len.as_str(),
    ];
    headers.extend_from_slice(extra);
    post("/identus/events", &headers, body)
}

/// A signed ABP POST.
fn abp(body: &[u8]) -> Vec<u8> {
    abp_signed(body, 1)
}

/// An ABP POST carrying its (correct) signature header `copies` times.
fn abp_signed(body: &[u8], copies: usize) -> Vec<u8> {
    let sig = format!(
        "abp-webhook-signature: {}",
        abp_signature::sign(ABP_SECRET.as_bytes(), body)
    );
    let len = format!("content-length: {}", body.len());
    let mut headers = vec!["content-type: application/json", len.as_str()];
    headers.extend(std::iter::repeat_n(sig.as_str(), copies));
    post("/abp/webhooks", &headers, body)
}

fn cases() -> Vec<Case> {
    let event = connection_event(
        "0b5e7a1c-0000-4000-8000-000000000051",
        "conn-1",
        "InvitationGenerated",
        "2024-05-01T10:20:30Z",
    );
    let auth = format!("authorization: Bearer {IDENTUS_TOKEN}");
    let mut cases = vec![
        Case {
            name: "Content-Length past the 1 MiB limit",
            request: post(
                "/identus/events",
                &["content-type: application/json", &auth, "content-length: 10485760"],
                b"{}",
            ),
            status: 413,
        },
        Case {
            name: "Content-Length shorter than the body (the rest is not a request)",
            request: identus_with(&[], event.as_bytes())
                .into_iter()
                .collect::<Vec<u8>>()
                .replace_first(
                    format!("content-length: {}", event.len()).as_bytes(),
                    b"content-length: 40",
                ),
            status: 400,
        },
        Case {
            name: "two different Content-Length headers",
            request: post(
                "/identus/events",
                &[
                    "content-type: application/json",
                    &auth,
                    "content-length: 2",
                    "content-length: 3",
                ],
                b"{}",
            ),
            status: 400,
        },
        Case {
            name: "Content-Length that is not a number",
            request: post(
                "/identus/events",
                &["content-type: application/json", &auth, "content-length: 12abc"],
                b"{}",
            ),
            status: 400,
        },
        Case {
            name: "chunked body past the limit",
            request: {
                let mut r = post(
                    "/identus/events",
                    &[
                        "content-type: application/json",
                        &auth,
                        "transfer-encoding: chunked",
                    ],
                    b"",
                );
                let chunk = vec![b' '; 64 * 1024];
                for _ in 0..20 {
                    r.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    r.extend_from_slice(&chunk);
                    r.extend_from_slice(b"\r\n");
                }
                r.extend_from_slice(b"0\r\n\r\n");
                r
            },
            status: 413,
        },
        Case {
            name: "chunked with a malformed chunk size",
            request: post(
                "/identus/events",
                &[
                    "content-type: application/json",
                    &auth,
                    "transfer-encoding: chunked",
                ],
                b"zz\r\n{}\r\n0\r\n\r\n",
            ),
            status: 400,
        },
        Case {
            name: "invalid UTF-8 in a string",
            request: identus(&event.as_bytes().replace_first(b"Peter", b"Pe\xff\xfer")),
            status: 400,
        },
        Case {
            name: "JSON nested 100 000 deep",
            request: identus(
                format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000)).as_bytes(),
            ),
            status: 422,
        },
        Case {
            name: "JSON nested 129 deep inside a free-form field",
            request: identus(
                event
                    .replacen(
                        "\"data\":{",
                        &format!("\"data\":{{\"x\":{}1{},", "[".repeat(129), "]".repeat(129)),
                        1,
                    )
                    .as_bytes(),
            ),
            status: 422,
        },
        Case {
            name: "a number past f64 in a typed field",
            request: abp(br#"{"Id":"h-1","WebhookEvent":"E","Attempt":1e400,"Data":{}}"#),
            status: 422,
        },
        Case {
            name: "an integer past i64 in a typed field",
            request: abp(
                br#"{"Id":"h-2","WebhookEvent":"E","Attempt":123456789012345678901234567890,"Data":{}}"#,
            ),
            status: 422,
        },
        Case {
            name: "a duplicate key in a typed field",
            request: identus(event.replacen("{\"type\":", "{\"id\":\"other\",\"type\":", 1).as_bytes()),
            status: 422,
        },
        Case {
            name: "a NUL byte outside strings",
            request: identus(&event.as_bytes().replace_first(b"{", b"\0{")),
            status: 400,
        },
        Case {
            name: "a raw NUL byte inside a string",
            request: identus(&event.as_bytes().replace_first(b"Peter", b"Pe\0ter")),
            status: 400,
        },
        Case {
            name: "a JSON array instead of an event",
            request: identus(format!("[{event}]").as_bytes()),
            status: 422,
        },
        Case {
            name: "a header value with a control character",
            request: identus_with(&["x-note: a\x01b"], event.as_bytes()),
            status: 400,
        },
        Case {
            name: "a header line of 100 KiB",
            request: identus_with(
                &[&format!("x-long: {}", "a".repeat(100 * 1024))],
                event.as_bytes(),
            ),
            status: 431,
        },
        Case {
            name: "200 headers",
            request: identus_with(
                &(0..200)
                    .map(|i| format!("x-h{i}: v"))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>(),
                event.as_bytes(),
            ),
            status: 431,
        },
        Case {
            name: "a repeated Authorization header (the token twice)",
            request: identus_with(&[&auth], event.as_bytes()),
            status: 401,
        },
        Case {
            name: "a repeated ABP signature header",
            request: abp_signed(ABP_BODY_1.as_bytes(), 2),
            status: 401,
        },
        Case {
            name: "an unknown method",
            request: b"BREW /identus/events HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 0\r\n\r\n".to_vec(),
            status: 405,
        },
        Case {
            name: "a method that is not a token",
            request: b"PO(ST /identus/events HTTP/1.1\r\nhost: x\r\n\r\n".to_vec(),
            status: 400,
        },
        Case {
            name: "a request line that is not HTTP",
            request: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            status: 400,
        },
        Case {
            name: "a request line of 64 KiB",
            request: format!(
                "POST /{} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
                "a".repeat(64 * 1024)
            )
            .into_bytes(),
            status: 431,
        },
        Case {
            name: "a body that is not JSON, sent as JSON",
            request: identus(b"hello"),
            status: 400,
        },
        Case {
            name: "form data instead of JSON",
            request: post(
                "/identus/events",
                &[
                    "content-type: application/x-www-form-urlencoded",
                    &auth,
                    "content-length: 3",
                ],
                b"a=b",
            ),
            status: 415,
        },
    ];
    // The same checks for a Kratos sender: its answers are in Kratos' own format.
    let deep = format!(
        "{{\"identity\":{}1{}}}",
        "{\"a\":".repeat(200),
        "}".repeat(200)
    );
    cases.push(Case {
        name: "Kratos: JSON nested past the limit",
        request: post(
            "/kratos/sync-identity",
            &[
                "content-type: application/json",
                &format!("x-api-key: {KRATOS_KEY}"),
                &format!("content-length: {}", deep.len()),
            ],
            deep.as_bytes(),
        ),
        status: 422,
    });
    // Broken JSON stays a 400, however deep.
    let deep_and_broken = "{\"a\":".repeat(200);
    cases.push(Case {
        name: "Kratos: broken JSON nested past the limit",
        request: post(
            "/kratos/sync-identity",
            &[
                "content-type: application/json",
                &format!("x-api-key: {KRATOS_KEY}"),
                &format!("content-length: {}", deep_and_broken.len()),
            ],
            deep_and_broken.as_bytes(),
        ),
        status: 400,
    });
    cases
}

trait ReplaceFirst {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceFirst for [u8] {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = self
            .windows(from.len())
            .position(|w| w == from)
            .expect("the text to replace is there");
        [&self[..at], to, &self[at + from.len()..]].concat()
    }
}

impl ReplaceFirst for Vec<u8> {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        self.as_slice().replace_first(from, to)
    }
}

#[tokio::test]
async fn every_hostile_request_gets_a_clear_4xx_and_nothing_is_stored() {
    let app = spawn_app().await;
    let mut failures = Vec::new();
    for case in cases() {
        let mut s = app.raw().await;
        // The server may answer (and close) before reading everything: a failed write is fine.
        let _ = s.write_all(&case.request).await;
        let answer = read_response(&mut s, Duration::from_secs(5)).await;
        let status: u16 = answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|r| r.get(..3))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if status != case.status {
            failures.push(format!(
                "{}: expected {}, got {status}: {}",
                case.name,
                case.status,
                answer.lines().next().unwrap_or("(nothing)")
            ));
        }
        // hookgate's own answers explain themselves (hyper's bare parse errors carry no body).
        if status >= 401 && status != 431 && !case.name.contains("not HTTP") {
            let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
            if !body.is_empty() {
                let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
                let kratos_text = &v["messages"][0]["messages"][0]["text"];
                if !(v["detail"].is_string() || kratos_text.is_string()) {
                    failures.push(format!(
                        "{}: answer without an explanation: {body}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(app.all_events().await.is_empty(), "nothing was stored");
    // Still serving.
    assert_eq!(app.identus(IDENTUS_DID).await.status(), 200);
    app.stop().await;
}

/// A run full of failed verifications, logged at every level (trace), with the answers kept:
/// no configured secret, no signature hookgate expected, no admin token appears anywhere.
#[tokio::test]
async fn secrets_never_appear_in_logs_or_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = start_binary(tmp.path(), &[("HOOKGATE__LOG__LEVEL", "trace")], &[]);
    let client = reqwest::Client::new();
    let public = format!("http://{}", bin.public);
    let mut answers = String::new();
    let mut expected_signatures = Vec::new();
    let near = |s: &str| format!("{}x", &s[..s.len() - 1]);
    for i in 0..40 {
        let body = connection_event(
            &format!("1eac0000-0000-4000-8000-{i:012}"),
            "c",
            "InvitationGenerated",
            "2024-05-01T10:20:30Z",
        );
        let tampered = format!("{body} ");
        let requests = vec![
            // Near-miss credentials on every scheme.
            client
                .post(format!("{public}/kratos/sync-identity"))
                .header("x-api-key", near(KRATOS_KEY))
                .body(body.clone()),
            client
                .post(format!("{public}/identus/events"))
                .bearer_auth(near(IDENTUS_TOKEN))
                .body(body.clone()),
            client
                .post(format!("{public}/kratos/basic"))
                .basic_auth("kratos", Some("s3creX"))
                .body(body.clone()),
            client
                .post(format!("{public}/kratos/cookie"))
                .header("cookie", "hook_key=cookie-kex")
                .body(body.clone()),
            // A body changed after signing: hookgate computes the signature it expected.
            client
                .post(format!("{public}/abp/webhooks"))
                .header(
                    abp_signature::HEADER,
                    abp_signature::sign(ABP_SECRET.as_bytes(), body.as_bytes()),
                )
                .body(tampered.clone()),
            // The right credential in the wrong place.
            client
                .post(format!("{public}/identus/events"))
                .header("x-api-key", IDENTUS_TOKEN)
                .body(body.clone()),
        ];
        expected_signatures.push(abp_signature::sign(
            ABP_SECRET.as_bytes(),
            tampered.as_bytes(),
        ));
        for req in requests {
            let res = req
                .header("content-type", "application/json")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 401);
            answers.push_str(&format!("{:?}", res.headers()));
            answers.push_str(&res.text().await.unwrap());
        }
        // The admin API with a wrong token, and with the token in the query string.
        for url in [
            format!("http://{}/admin/events", bin.admin),
            format!("http://{}/admin/events?token={ADMIN_TOKEN}", bin.admin),
        ] {
            let res = client
                .get(url)
                .bearer_auth(near(ADMIN_TOKEN))
                .send()
                .await
                .unwrap();
            assert!(res.status().is_client_error());
            answers.push_str(&res.text().await.unwrap());
        }
    }
    // One good request of each, so the success path is logged too.
    let ok = client
        .post(format!("{public}/identus/events"))
        .bearer_auth(IDENTUS_TOKEN)
        .header("content-type", "application/json")
        .body(IDENTUS_DID)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    bin.signal("TERM");
    let logs: Vec<String> = {
        let rx = &bin.logs;
        let mut lines = Vec::new();
        while let Ok(l) = rx.recv_timeout(Duration::from_secs(10)) {
            lines.push(l);
        }
        lines
    };
    assert!(bin.wait().await.success());
    assert!(
        logs.iter()
            .any(|l| l.contains("\"TRACE\"") || l.contains("\"DEBUG\"")),
        "the run logged below info"
    );
    assert!(
        logs.iter()
            .filter(|l| l.contains("request failed verification"))
            .count()
            >= 200,
        "the failures were logged"
    );
    let basic = hookgate::sign::headers(
        hookgate::sign::SignScheme::Basic,
        "kratos:s3cret",
        b"",
        "",
        None,
    );
    let mut secrets: Vec<String> = vec![
        KRATOS_KEY.into(),
        KRATOS_KEY_OLD.into(),
        IDENTUS_TOKEN.into(),
        ABP_SECRET.into(),
        ADMIN_TOKEN.into(),
        "cookie-key-000001".into(),
        "s3cret".into(),
        "identus-api-key-0001".into(),
    ];
    secrets.extend(
        basic
            .into_iter()
            .map(|(_, v)| v.trim_start_matches("Basic ").to_string()),
    );
    for sig in &expected_signatures {
        let hex: String = sig
            .trim_start_matches("sha256=")
            .chars()
            .filter(|c| *c != '-')
            .collect();
        secrets.push(hex.clone());
        secrets.push(hex.to_lowercase());
        secrets.push(sig.trim_start_matches("sha256=").to_string());
    }
    let everything = logs.join("\n") + &answers;
    for secret in &secrets {
        assert!(
            !everything.contains(secret.as_str()),
            "{secret} appears in the logs or answers"
        );
    }
    println!(
        "secrets: {} log lines and {} bytes of answers checked for {} secret strings",
        logs.len(),
        answers.len(),
        secrets.len()
    );
}
