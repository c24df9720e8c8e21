//! Fuzz entry points: one plain function per libFuzzer target in `tests/fuzz`.
//!
//! Each function feeds arbitrary bytes to a parser that untrusted input reaches, exactly as the
//! request path does, and checks a few invariants that must hold for every input. None of them
//! may panic: a panic is a bug. `tests/api/fuzz_corpus.rs` replays the kept corpus and every
//! regression input through [`TARGETS`], so `cargo test` runs the same code as the fuzzer.
//!
//! Input formats:
//! - payload targets (`kratos`, `identus`, `abp_envelope`, `abp_bare`, `standard`, `json_kind`):
//!   the whole input is the request body (`standard` with a fixed `webhook-id`; `json_kind` parsed
//!   by a `json` source with pointers and by one with headers).
//! - header targets (`api_key_header`, `api_key_cookie`, `basic`, `bearer`, `abp_signature`): the
//!   bytes before the first `\n` are the credential header, the rest is the body. `\r` (never valid
//!   in a header value) separates several values of that header. An input whose header part is
//!   not a valid header value is skipped, as the HTTP server would refuse it.
//! - `standard_webhooks`: three lines, `webhook-id`, `webhook-timestamp` and `webhook-signature`
//!   (each empty line: no such header; `\r` separates several values), then the body. Checked at a
//!   fixed "now", [`SW_NOW`].
//! - `hmac`: two lines, the signature header and the timestamp header (as above), then the body;
//!   checked by a GitHub-like, a Shopify-like and a Slack-like verifier at [`SW_NOW`].
//! - `config_yaml`: the bytes before the first NUL are the YAML text; after it, `NAME=value`
//!   lines form the environment.
//! - `kratos_respond`: the bytes before the first NUL are a Kratos body; after it, if there is a
//!   NUL, a JSON `patch` block that replaces the harness's own when it is a valid one.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use crate::config::destinations::{Encoding, HmacAlgorithm};
use crate::config::{HmacSettings, SignedTemplate, TimestampSettings};
use crate::sources::kind::Decision;
use crate::sources::kratos::respond::{Outcome, PATCH_FIELDS, Respond};
use crate::sources::{self, Kind, Options, ParsedEvent, SourceError, valid_json};
use crate::verify::abp_signature::{self, AbpSignature};
use crate::verify::api_key::ApiKey;
use crate::verify::basic::Basic;
use crate::verify::bearer::Bearer;
use crate::verify::hmac::{self as hmac_scheme, HmacSignature};
use crate::verify::standard_webhooks::{self, StandardWebhooks};
use crate::verify::{Failure, SecretDigests};

/// A fuzz target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target, by the name of its file in `tests/fuzz/fuzz_targets`.
pub const TARGETS: &[(&str, Target)] = &[
    ("kratos", kratos),
    ("identus", identus),
    ("abp_envelope", abp_envelope),
    ("abp_bare", abp_bare),
    ("api_key_header", api_key_header),
    ("api_key_cookie", api_key_cookie),
    ("basic", basic),
    ("bearer", bearer),
    ("abp_signature", abp_signature),
    ("config_yaml", config_yaml),
    ("kratos_respond", kratos_respond),
    ("standard", standard),
    ("json_kind", json_kind),
    ("standard_webhooks", standard_webhooks),
    ("hmac", hmac),
];

/// A string that, placed in a body, must never show up in [`SourceError::summary`].
pub const MARKER: &str = "M4RK3R";

/// A fixed 32-byte random secret: no fuzz input should ever match it.
const RANDOM_SECRET: &[u8] = b"TN6Oa5yAFccZSJ4SCZnOth4EEqqz1PYG";
/// The API key the header and cookie targets also accept (the development default).
const API_KEY: &[u8] = b"dev-only-kratos-api-key";
/// The cookie the cookie target reads.
const COOKIE_NAME: &str = "hook_key";
/// The `user:password` the basic target also accepts (docs/senders.md, Kratos Basic auth example).
const BASIC_PAIR: &[u8] = b"kratos:s3cret";
/// `base64(BASIC_PAIR)`.
const BASIC_B64: &[u8] = b"a3JhdG9zOnMzY3JldA==";
/// The token the bearer target also accepts (the development default).
const BEARER_TOKEN: &[u8] = b"dev-only-identus-token";
/// The ABP subscription secret of the test vectors in docs/senders.md, so the seed vectors verify.
const ABP_SECRET: &[u8] = b"whs_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b";
/// The allow-list of the `abp_envelope` target's second parse.
const ABP_EVENTS: [&str; 2] = ["NewUserRegistered", "TenantDeleted"];
/// The trigger id the Kratos target sends with its second parse.
const TRIGGER: &str = "5f8e6a7c-0000-4000-8000-000000000001";
/// The `webhook-id` the `standard` target sends.
const WEBHOOK_ID: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
/// The Standard Webhooks key of PROTOCOLS.md §6.3 (bytes 00..1f), so the seed vectors verify.
const SW_KEY: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31,
];
/// "Now" for the signed-timestamp targets: the timestamp of PROTOCOLS.md §6.3.
pub const SW_NOW: i64 = 1_674_087_231;
/// The tolerance of the signed-timestamp targets, in seconds (the default, 5 minutes).
const TOLERANCE: i64 = 300;
/// GitHub's documented secret, so its documented vector (a seed) verifies.
const GITHUB_SECRET: &[u8] = b"It's a Secret to Everybody";
/// Slack's documented signing secret.
const SLACK_SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";

struct Verifiers {
    header: ApiKey,
    header_random: ApiKey,
    cookie: ApiKey,
    cookie_random: ApiKey,
    basic: Basic,
    basic_random: Basic,
    bearer: Bearer,
    bearer_random: Bearer,
    abp: AbpSignature,
    abp_random: AbpSignature,
    abp_events: HashSet<String>,
    kratos: Arc<dyn Kind>,
    identus: Arc<dyn Kind>,
    abp_envelope: Arc<dyn Kind>,
    abp_listed: Arc<dyn Kind>,
    abp_bare: Arc<dyn Kind>,
    kratos_respond: Arc<dyn Kind>,
    respond: Respond,
    standard: Arc<dyn Kind>,
    json_pointers: Arc<dyn Kind>,
    json_headers: Arc<dyn Kind>,
    json_digest: Arc<dyn Kind>,
    sw: StandardWebhooks,
    sw_random: StandardWebhooks,
    github: HmacSignature,
    shopify: HmacSignature,
    slack: HmacSignature,
    hmac_random: HmacSignature,
}

/// The settings of an `hmac` verifier of the `hmac` target.
fn hmac_settings(encoding: Encoding, prefix: &str, template: Option<&str>) -> HmacSettings {
    HmacSettings {
        header: Some("x-signature".into()),
        algorithm: HmacAlgorithm::Sha256,
        encoding,
        prefix: prefix.into(),
        signed: template
            .and_then(|t| SignedTemplate::parse(t).ok())
            .unwrap_or_default(),
        timestamp: template.map(|_| TimestampSettings {
            header: "x-timestamp".into(),
            tolerance: None,
        }),
    }
}

/// A kind built through the registry from `options` (a JSON object), as `serve` builds it.
fn kind(name: &str, options: serde_json::Value) -> Arc<dyn Kind> {
    let options: Options = serde_json::from_value(options).unwrap_or_default();
    match sources::build_kind(name, &options) {
        Ok(kind) => kind,
        Err(e) => panic!("the fuzz harness cannot build kind {name}: {e:?}"),
    }
}

static VERIFIERS: LazyLock<Verifiers> = LazyLock::new(|| {
    let with = |known: &'static [u8]| SecretDigests::new([RANDOM_SECRET, known]);
    let random = || SecretDigests::new([RANDOM_SECRET]);
    let api_key_header = HeaderName::from_static(crate::verify::api_key::DEFAULT_HEADER);
    Verifiers {
        header: ApiKey::header(api_key_header.clone(), with(API_KEY)),
        header_random: ApiKey::header(api_key_header, random()),
        cookie: ApiKey::cookie(COOKIE_NAME.into(), with(API_KEY)),
        cookie_random: ApiKey::cookie(COOKIE_NAME.into(), random()),
        basic: Basic::new(with(BASIC_PAIR)),
        basic_random: Basic::new(random()),
        bearer: Bearer::new(with(BEARER_TOKEN)),
        bearer_random: Bearer::new(random()),
        abp: AbpSignature::new([RANDOM_SECRET, ABP_SECRET]),
        abp_random: AbpSignature::new([RANDOM_SECRET]),
        abp_events: ABP_EVENTS.into_iter().map(String::from).collect(),
        kratos: kind("kratos", serde_json::json!({})),
        identus: kind("identus", serde_json::json!({})),
        abp_envelope: kind("abp", serde_json::json!({})),
        abp_listed: kind("abp", serde_json::json!({ "events": ABP_EVENTS })),
        abp_bare: kind("abp", serde_json::json!({ "envelope": false })),
        kratos_respond: kind(
            "kratos",
            serde_json::json!({ "respond": respond_block(None) }),
        ),
        respond: match Respond::from_options(&respond_block(None)) {
            Ok(r) => r,
            Err(e) => panic!("the fuzz harness's respond block is refused: {e:?}"),
        },
        standard: kind("standard", serde_json::json!({})),
        json_pointers: kind(
            "json",
            serde_json::json!({"dedupe": {"pointer": "/id"}, "event_type": {"pointer": "/a/0/~1b"}}),
        ),
        json_headers: kind(
            "json",
            serde_json::json!({"dedupe": {"header": "x-id"}, "event_type": {"header": "x-type"}}),
        ),
        json_digest: kind("json", serde_json::json!({})),
        sw: StandardWebhooks::new(
            [RANDOM_SECRET, SW_KEY.as_slice()],
            std::time::Duration::from_secs(300),
        ),
        sw_random: StandardWebhooks::new([RANDOM_SECRET], std::time::Duration::from_secs(300)),
        github: HmacSignature::new(
            &hmac_settings(Encoding::Hex, "sha256=", None),
            HeaderName::from_static("x-signature"),
            [RANDOM_SECRET, GITHUB_SECRET],
        ),
        shopify: HmacSignature::new(
            &hmac_settings(Encoding::Base64, "", None),
            HeaderName::from_static("x-signature"),
            [GITHUB_SECRET],
        ),
        slack: HmacSignature::new(
            &hmac_settings(Encoding::Hex, "v0=", Some("v0:{timestamp}:{body}")),
            HeaderName::from_static("x-signature"),
            [SLACK_SECRET],
        ),
        hmac_random: HmacSignature::new(
            &hmac_settings(Encoding::Hex, "", None),
            HeaderName::from_static("x-signature"),
            [RANDOM_SECRET],
        ),
    }
});

/// The `kratos_respond` target's rules: one of each kind, on values a body rarely has, so that
/// most inputs reach the patch.
fn respond_rules() -> serde_json::Value {
    serde_json::json!([
        {"pointer": "/identity/traits/email", "matches": "^x@blocked\\.example$",
         "message": {"id": 4000001, "text": "blocked"}},
        {"pointer": "/identity/traits/name", "not_matches": "^[A-Za-z ]{0,40}$",
         "message": {"id": 4000002, "text": "name", "type": "info", "context": {"a": [1]}}},
        {"pointer": "/identity/state", "equals": "inactive",
         "message": {"id": 4000003, "text": "inactive"}},
        {"pointer": "/identity/verifiable_addresses/0/verified", "equals": false,
         "message": {"id": 4000004, "text": "unverified"}},
        {"pointer": "/identity/metadata_public/a~1b~0", "missing": false,
         "message": {"id": 4000005, "text": "odd key"}},
        {"pointer": "/flow/id", "missing": false,
         "message": {"id": 4000006, "text": "flow-level"}},
    ])
}

/// The `kratos_respond` target's patch unless the input brings one.
fn respond_patch() -> serde_json::Value {
    serde_json::json!({
        "traits": {"x": {"y": 1, "z": null}, "email": "patched@example.org"},
        "metadata_public": {"m": [null, {"n": null}], "o": {"p": null}},
        "metadata_admin": {"a": 1},
        "state": "active",
    })
}

fn respond_block(patch: Option<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({"rules": respond_rules(), "patch": patch.unwrap_or_else(respond_patch)})
}

/// What must hold for any answer of a payload parser.
fn check_parsed(target: &str, body: &[u8], r: &Result<ParsedEvent, SourceError>) {
    match r {
        Ok(p) => {
            assert!(
                !p.dedupe_key.is_empty(),
                "{target}: accepted with an empty dedupe key"
            );
            assert!(
                valid_json(body),
                "{target}: accepted a body that is not JSON"
            );
            if let Some(p) = &p.projection {
                let range = &p.range;
                let part = body.get(range.clone());
                assert!(
                    part.is_some_and(valid_json),
                    "{target}: projection range {range:?} is not a JSON value of the body"
                );
            }
        }
        Err(e) => {
            if let SourceError::Invalid { errors, .. } = e {
                assert!(!errors.is_empty(), "{target}: 422 naming no field");
                if depth_limited(e) {
                    let brackets = body.iter().filter(|b| matches!(b, b'[' | b'{')).count();
                    assert!(
                        brackets > sources::MAX_JSON_DEPTH,
                        "{target}: refused as too deep with {brackets} brackets"
                    );
                } else {
                    // 422 is for JSON that does not fit; bytes that are not JSON at all get
                    // 400. (The depth check comes first, so it may answer 422 to broken JSON.)
                    assert!(
                        valid_json(body),
                        "{target}: a body that is not JSON was answered 422 (not 400): {e:?}"
                    );
                }
            }
            // The summary names keys (its pointers say where the payload is wrong), never
            // values: the marker may show only where the body uses it as a key.
            if contains(body, MARKER.as_bytes()) && !used_as_key(body) {
                let summary = e.summary();
                assert!(
                    !summary.contains(MARKER),
                    "{target}: the summary quotes the body: {summary:?}"
                );
            }
        }
    }
}

/// The 422 for JSON nested deeper than [`sources::MAX_JSON_DEPTH`].
fn depth_limited(e: &SourceError) -> bool {
    let detail = format!(
        "the JSON is nested deeper than {} levels",
        sources::MAX_JSON_DEPTH
    );
    matches!(e, SourceError::Invalid { errors, .. }
        if errors.len() == 1 && errors[0].pointer.is_empty() && errors[0].detail == detail)
}

/// Whether [`MARKER`] appears as an object key (`"M4RK3R"` then optional whitespace and `:`).
fn used_as_key(body: &[u8]) -> bool {
    let quoted = format!("{MARKER}\"");
    body.windows(quoted.len())
        .enumerate()
        .filter(|(_, w)| *w == quoted.as_bytes())
        .any(|(i, _)| {
            body.get(i + quoted.len()..)
                .and_then(|rest| rest.iter().find(|b| !b.is_ascii_whitespace()))
                == Some(&b':')
        })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `kratos`: the whole input is the body; parsed without and with a trigger id header.
pub fn kratos(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let kratos = &VERIFIERS.kratos;
    let plain = kratos.parse(&HeaderMap::new(), &body);
    check_parsed("kratos", data, &plain);
    if let Ok(p) = &plain {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(data)));
        assert_eq!(
            p.dedupe_key, digest,
            "kratos: without a trigger id the key is the body digest"
        );
    }
    let mut headers = HeaderMap::new();
    headers.insert("ory-webhook-trigger-id", HeaderValue::from_static(TRIGGER));
    let triggered = kratos.parse(&headers, &body);
    check_parsed("kratos", data, &triggered);
    assert_eq!(
        plain.is_ok(),
        triggered.is_ok(),
        "kratos: a header changed whether the body is accepted"
    );
    if let Ok(p) = &triggered {
        assert_eq!(p.dedupe_key, format!("trigger:{TRIGGER}"));
    }
}

/// `identus`: the whole input is the body.
pub fn identus(data: &[u8]) {
    let r = VERIFIERS
        .identus
        .parse(&HeaderMap::new(), &Bytes::copy_from_slice(data));
    check_parsed("identus", data, &r);
    if let Ok(p) = &r {
        assert_eq!(p.sender_id.as_deref(), Some(p.dedupe_key.as_str()));
        assert!(
            p.event_type
                .as_deref()
                .is_some_and(|t| !t.trim().is_empty())
        );
    }
}

/// `abp` with `envelope: true`: without and with an `events` allow-list.
pub fn abp_envelope(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let open = VERIFIERS.abp_envelope.parse(&HeaderMap::new(), &body);
    check_parsed("abp_envelope", data, &open);
    if let Ok(p) = &open {
        assert!(!p.dedupe_key.trim().is_empty());
    }
    let allowed = &VERIFIERS.abp_events;
    let listed = VERIFIERS.abp_listed.parse(&HeaderMap::new(), &body);
    check_parsed("abp_envelope", data, &listed);
    if let Ok(p) = &listed {
        assert!(open.is_ok(), "abp_envelope: an allow-list let more through");
        assert!(
            p.event_type.as_ref().is_some_and(|t| allowed.contains(t)),
            "abp_envelope: accepted a webhook outside the allow-list"
        );
    }
}

/// `abp` with `envelope: false` (bare data, keyed by its digest).
pub fn abp_bare(data: &[u8]) {
    let r = VERIFIERS
        .abp_bare
        .parse(&HeaderMap::new(), &Bytes::copy_from_slice(data));
    check_parsed("abp_bare", data, &r);
    match &r {
        Ok(p) => assert_eq!(
            p.dedupe_key,
            format!("sha256:{}", hex::encode(Sha256::digest(data)))
        ),
        Err(e) => assert!(
            depth_limited(e) || !valid_json(data),
            "abp_bare: refused valid JSON: {e:?}"
        ),
    }
}

/// Splits a header-target input into the header's values and the body; `None` when a value is
/// not a valid header value.
fn header_input(data: &[u8]) -> Option<(Vec<HeaderValue>, &[u8])> {
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let values = if head.is_empty() {
        Vec::new()
    } else {
        head.split(|b| *b == b'\r')
            .map(HeaderValue::from_bytes)
            .collect::<Result<Vec<_>, _>>()
            .ok()?
    };
    Some((values, body))
}

fn headers_with(name: &HeaderName, values: &[HeaderValue]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        h.append(name.clone(), v.clone());
    }
    h
}

/// The failures every single-header scheme gives for no value and for several values.
fn check_count(target: &str, values: &[HeaderValue], r: Result<(), Failure>) {
    match values.len() {
        0 => assert_eq!(r, Err(Failure::Missing), "{target}: no header"),
        1 => assert_ne!(
            r,
            Err(Failure::Missing),
            "{target}: one header is not missing"
        ),
        _ => assert_eq!(r, Err(Failure::Repeated), "{target}: several headers"),
    }
}

/// `api_key` in the `X-Api-Key` header.
pub fn api_key_header(data: &[u8]) {
    let Some((values, _)) = header_input(data) else {
        return;
    };
    let v = &*VERIFIERS;
    let headers = headers_with(&HeaderName::from_static("x-api-key"), &values);
    let r = v.header.verify(&headers);
    check_count("api_key_header", &values, r);
    if r.is_ok() {
        assert_eq!(
            values[0].as_bytes(),
            API_KEY,
            "api_key_header: accepted a wrong key"
        );
    }
    assert!(
        v.header_random.verify(&headers).is_err(),
        "api_key_header: a random secret matched"
    );
}

/// `api_key` in the `hook_key` cookie, among all `Cookie` headers.
pub fn api_key_cookie(data: &[u8]) {
    let Some((values, _)) = header_input(data) else {
        return;
    };
    let v = &*VERIFIERS;
    let headers = headers_with(&http::header::COOKIE, &values);
    let r = v.cookie.verify(&headers);
    if values.is_empty() {
        assert_eq!(r, Err(Failure::Missing));
    }
    if r.is_ok() {
        assert!(
            values
                .iter()
                .any(|h| contains(h.as_bytes(), API_KEY) && contains(h.as_bytes(), b"hook_key")),
            "api_key_cookie: accepted without the key"
        );
    }
    assert!(
        v.cookie_random.verify(&headers).is_err(),
        "api_key_cookie: a random secret matched"
    );
}

/// `Authorization: Basic`.
pub fn basic(data: &[u8]) {
    let v = &*VERIFIERS;
    authorization_target(
        data,
        "basic",
        b"basic ",
        BASIC_B64,
        |h| v.basic.verify(h),
        |h| v.basic_random.verify(h),
    );
}

/// `Authorization: Bearer`.
pub fn bearer(data: &[u8]) {
    let v = &*VERIFIERS;
    authorization_target(
        data,
        "bearer",
        b"bearer ",
        BEARER_TOKEN,
        |h| v.bearer.verify(h),
        |h| v.bearer_random.verify(h),
    );
}

/// What `basic` and `bearer` share: `Authorization: <scheme> <credential>` is accepted only
/// with the configured credential, and never by a verifier holding a random secret.
fn authorization_target(
    data: &[u8],
    target: &str,
    scheme: &[u8],
    credential: &[u8],
    verify: impl Fn(&HeaderMap) -> Result<(), Failure>,
    verify_random: impl Fn(&HeaderMap) -> Result<(), Failure>,
) {
    let Some((values, _)) = header_input(data) else {
        return;
    };
    let headers = headers_with(&http::header::AUTHORIZATION, &values);
    let r = verify(&headers);
    check_count(target, &values, r);
    if r.is_ok() {
        let value = values[0].as_bytes();
        assert!(
            value.len() > scheme.len()
                && value[..scheme.len()].eq_ignore_ascii_case(scheme)
                && value[scheme.len()..].trim_ascii() == credential,
            "{target}: accepted {value:?}"
        );
    }
    assert!(
        verify_random(&headers).is_err(),
        "{target}: a random secret matched"
    );
}

/// `abp-webhook-signature` over the body.
pub fn abp_signature(data: &[u8]) {
    let Some((values, body)) = header_input(data) else {
        return;
    };
    let v = &*VERIFIERS;
    let headers = headers_with(&HeaderName::from_static(abp_signature::HEADER), &values);
    let r = v.abp.verify(&headers, body);
    check_count("abp_signature", &values, r);
    if r.is_ok() {
        // The one accepted signature: HMAC(ABP_SECRET, body), in any case, dashed or not.
        let want = abp_signature::sign(ABP_SECRET, body).replace('-', "");
        let got: String = String::from_utf8_lossy(values[0].as_bytes().trim_ascii())
            .replace('-', "")
            .to_ascii_uppercase();
        assert_eq!(
            got,
            want.to_ascii_uppercase(),
            "abp_signature: accepted a wrong signature"
        );
    }
    assert!(
        v.abp_random.verify(&headers, body).is_err(),
        "abp_signature: a random secret matched"
    );
}

/// `standard`: the whole input is the body, sent with a fixed `webhook-id`.
pub fn standard(data: &[u8]) {
    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_static(WEBHOOK_ID));
    let body = Bytes::copy_from_slice(data);
    let r = VERIFIERS.standard.parse(&headers, &body);
    check_parsed("standard", data, &r);
    if let Ok(p) = &r {
        assert_eq!(
            p.dedupe_key, WEBHOOK_ID,
            "standard: the key is the webhook-id"
        );
        assert!(
            data.trim_ascii_start().starts_with(b"{"),
            "standard: accepted a body that is not an object"
        );
        if let Some(t) = &p.event_type {
            assert!(!t.trim().is_empty(), "standard: an empty event type");
        }
    }
    let without = VERIFIERS.standard.parse(&HeaderMap::new(), &body);
    assert!(without.is_err(), "standard: accepted without a webhook-id");
}

/// `json_kind`: the whole input is the body; parsed by a source keyed by pointers (checked
/// against serde_json's own `Value::pointer`), one keyed by headers and one by the digest.
pub fn json_kind(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let v = &*VERIFIERS;
    let digest = v.json_digest.parse(&HeaderMap::new(), &body);
    check_parsed("json_kind", data, &digest);
    match &digest {
        Ok(p) => assert_eq!(
            p.dedupe_key,
            format!("sha256:{}", hex::encode(Sha256::digest(data)))
        ),
        // `valid_json` skips strings without checking their UTF-8; the kind reads them (as RFC
        // 8259 asks, and as every other parse of a stored body will), so invalid UTF-8 is a 400.
        Err(e) => assert!(
            depth_limited(e) || !valid_json(data) || std::str::from_utf8(data).is_err(),
            "json_kind: refused valid JSON: {e:?}"
        ),
    }
    let pointers = v.json_pointers.parse(&HeaderMap::new(), &body);
    check_parsed("json_kind", data, &pointers);
    // The hand-written walk finds what serde_json's own `Value::pointer` finds.
    if let Some(value) = digest
        .is_ok()
        .then(|| serde_json::from_slice::<serde_json::Value>(data).ok())
        .flatten()
    {
        use serde_json::Value;
        let refused_at = |r: &Result<ParsedEvent, SourceError>, pointer: &str| matches!(r, Err(SourceError::Invalid { errors, .. }) if errors[0].pointer == pointer);
        match value.pointer("/id") {
            Some(Value::String(s)) if !s.trim().is_empty() => match &pointers {
                Ok(p) => assert_eq!(&p.dedupe_key, s, "json_kind: /id"),
                Err(_) => assert!(
                    refused_at(&pointers, "/a/0/~1b"),
                    "json_kind: refused a body with an /id: {pointers:?}"
                ),
            },
            Some(Value::Number(n)) => {
                if let Ok(p) = &pointers {
                    // Read back with serde_json's own float parser, which `n` came from (it may
                    // round the last digit differently from `str::parse`).
                    let written: Option<f64> = serde_json::from_str(&p.dedupe_key).ok();
                    assert_eq!(written, n.as_f64(), "json_kind: /id as written");
                }
            }
            _ => assert!(
                refused_at(&pointers, "/id"),
                "json_kind: no usable /id, yet {pointers:?}"
            ),
        }
        if let Ok(p) = &pointers {
            let want = match value.pointer("/a/0/~1b") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            assert_eq!(p.event_type, want, "json_kind: /a/0/~1b");
        }
    }
    let mut headers = HeaderMap::new();
    headers.insert("x-id", HeaderValue::from_static("delivery-1"));
    let keyed = v.json_headers.parse(&headers, &body);
    check_parsed("json_kind", data, &keyed);
    assert_eq!(
        keyed.is_ok(),
        digest.is_ok(),
        "json_kind: a header changed the answer"
    );
}

/// Splits the first `n` lines off an input: each line is a header's values (`\r` between them;
/// an empty line is no header), the rest is the body. `None` when a value is not a valid header
/// value.
fn header_lines(data: &[u8], n: usize) -> Option<(Vec<Vec<HeaderValue>>, &[u8])> {
    let mut rest = data;
    let mut lines = Vec::with_capacity(n);
    for _ in 0..n {
        let (line, after) = match rest.iter().position(|b| *b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let values = if line.is_empty() {
            Vec::new()
        } else {
            line.split(|b| *b == b'\r')
                .map(HeaderValue::from_bytes)
                .collect::<Result<Vec<_>, _>>()
                .ok()?
        };
        lines.push(values);
        rest = after;
    }
    Some((lines, rest))
}

/// `standard_webhooks`: `webhook-id`, `webhook-timestamp`, `webhook-signature` lines, then the
/// body.
pub fn standard_webhooks(data: &[u8]) {
    let Some((lines, body)) = header_lines(data, 3) else {
        return;
    };
    let names = [
        standard_webhooks::ID_HEADER,
        standard_webhooks::TIMESTAMP_HEADER,
        standard_webhooks::SIGNATURE_HEADER,
    ];
    let mut headers = HeaderMap::new();
    for (name, values) in names.iter().zip(&lines) {
        for v in values {
            headers.append(HeaderName::from_static(name), v.clone());
        }
    }
    let v = &*VERIFIERS;
    let head = v.sw.check_headers(&headers, SW_NOW);
    let r = v.sw.verify(&headers, body, SW_NOW);
    if let Err(e) = head {
        assert_eq!(
            r,
            Err(e),
            "standard_webhooks: the header check and the whole check differ"
        );
    }
    // The headers are read in order (id, timestamp, signature): a missing id is reported as
    // such; a later missing header may come after an earlier malformed one.
    if lines[0].is_empty() {
        assert_eq!(r, Err(Failure::Missing), "standard_webhooks: no webhook-id");
    }
    if lines.iter().any(Vec::is_empty) {
        assert!(
            r.is_err(),
            "standard_webhooks: accepted with a header missing"
        );
    }
    if r.is_ok() {
        let one = |i: usize| {
            lines[i]
                .first()
                .map(HeaderValue::as_bytes)
                .unwrap_or_default()
        };
        assert!(
            lines.iter().all(|l| l.len() == 1),
            "standard_webhooks: a repeated header"
        );
        let id = String::from_utf8_lossy(one(0));
        let ts: i64 = std::str::from_utf8(one(1).trim_ascii())
            .ok()
            .and_then(|t| t.parse().ok())
            .unwrap_or_else(|| {
                panic!("standard_webhooks: accepted a timestamp that is no integer")
            });
        assert!(
            (ts - SW_NOW).abs() <= TOLERANCE,
            "standard_webhooks: outside the tolerance"
        );
        // Only valid UTF-8 ids can be compared as text: the signature is over the header's bytes.
        if std::str::from_utf8(one(0)).is_ok() {
            let want = standard_webhooks::sign(&SW_KEY, &id, ts, body);
            assert!(
                one(2)
                    .split(|b| *b == b' ')
                    .any(|entry| entry == want.as_bytes()),
                "standard_webhooks: accepted without the signature of the known key"
            );
        }
    }
    assert!(
        v.sw_random.verify(&headers, body, SW_NOW).is_err(),
        "standard_webhooks: a random secret matched"
    );
}

/// `hmac`: the signature header's line and the timestamp header's line, then the body.
pub fn hmac(data: &[u8]) {
    let Some((lines, body)) = header_lines(data, 2) else {
        return;
    };
    let mut headers = HeaderMap::new();
    for (name, values) in ["x-signature", "x-timestamp"].iter().zip(&lines) {
        for v in values {
            headers.append(HeaderName::from_static(name), v.clone());
        }
    }
    let v = &*VERIFIERS;
    let signature = lines[0].first().map(|h| h.as_bytes().trim_ascii());
    let cases = [
        (
            "github",
            &v.github,
            GITHUB_SECRET,
            Encoding::Hex,
            "sha256=",
            None,
        ),
        (
            "shopify",
            &v.shopify,
            GITHUB_SECRET,
            Encoding::Base64,
            "",
            None,
        ),
        (
            "slack",
            &v.slack,
            SLACK_SECRET,
            Encoding::Hex,
            "v0=",
            Some("v0:{timestamp}:{body}"),
        ),
    ];
    for (name, verifier, secret, encoding, prefix, template) in cases {
        let head = verifier.check_headers(&headers, SW_NOW);
        let r = verifier.verify(&headers, body, SW_NOW);
        if let Err(e) = head {
            assert_eq!(
                r,
                Err(e),
                "hmac {name}: the header check and the whole check differ"
            );
        }
        // The signature header is read first: its absence or repetition is what is reported.
        match lines[0].len() {
            0 => assert_eq!(r, Err(Failure::Missing), "hmac {name}: no signature"),
            1 => {}
            _ => assert_eq!(r, Err(Failure::Repeated), "hmac {name}: several signatures"),
        }
        if r.is_ok() {
            let timestamp = if template.is_some() {
                assert_eq!(lines[1].len(), 1, "hmac {name}: timestamp not given once");
                let t = lines[1][0].as_bytes().trim_ascii();
                let ts: i64 = std::str::from_utf8(t)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or_else(|| {
                        panic!("hmac {name}: accepted a timestamp that is no integer")
                    });
                assert!(
                    (ts - SW_NOW).abs() <= TOLERANCE,
                    "hmac {name}: outside the tolerance"
                );
                String::from_utf8_lossy(t).into_owned()
            } else {
                String::new()
            };
            let template = template
                .and_then(|t| SignedTemplate::parse(t).ok())
                .unwrap_or_default();
            let want = hmac_scheme::sign(
                HmacAlgorithm::Sha256,
                encoding,
                prefix,
                &template,
                secret,
                &timestamp,
                body,
            );
            let got = String::from_utf8_lossy(signature.unwrap_or_default()).into_owned();
            // The prefix is matched whatever its case; hex whatever its case; base64 with or
            // without its padding.
            let same = match encoding {
                Encoding::Hex => got.eq_ignore_ascii_case(&want),
                Encoding::Base64 => got.trim_end_matches('=') == want.trim_end_matches('='),
            };
            assert!(
                same,
                "hmac {name}: accepted {got:?}, the signature is {want:?}"
            );
        }
    }
    assert!(
        v.hmac_random.verify(&headers, body, SW_NOW).is_err(),
        "hmac: a random secret matched"
    );
}

/// The configuration loader: YAML text, then after a NUL the environment as `NAME=value` lines.
pub fn config_yaml(data: &[u8]) {
    let (yaml, env) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &data[data.len()..]),
    };
    let Ok(yaml) = std::str::from_utf8(yaml) else {
        return;
    };
    let env: HashMap<String, String> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    match crate::startup::load_settings_from_str(yaml, &env) {
        Ok(settings) => {
            let production = env
                .get(crate::config::ENV_NAME_VAR)
                .is_some_and(|e| e == "production");
            assert!(
                settings.validate(production).is_ok(),
                "config_yaml: loaded settings fail their own validation"
            );
            // What start-up does with each source.
            for s in settings.sources.values() {
                let verifier = crate::verify::Verifier::from_settings(&s.verify);
                let _ = verifier.credential_header();
                let _ = settings.body_limit_for(s);
                assert!(
                    sources::build(s).is_ok(),
                    "config_yaml: a checked source's kind does not build"
                );
            }
        }
        Err(e) => assert!(!e.0.is_empty(), "config_yaml: an error with no message"),
    }
}

/// `kratos_respond`: a `respond` block's rules and patch over a body (before the first NUL),
/// with the harness's patch or the input's own (after the NUL). Checked against a plain
/// implementation over `serde_json::Value`: the first rule whose condition holds at its
/// pointer interrupts; otherwise the answer is `{"identity": {…}}` with exactly the patch's
/// fields, each the RFC 7396 merge of the identity's value, never `null`.
pub fn kratos_respond(data: &[u8]) {
    let (body, patch) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], data.get(i + 1..)),
        None => (data, None),
    };
    let custom = patch
        .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
        .and_then(|p| {
            let block = respond_block(Some(p.clone()));
            Respond::from_options(&block).ok().map(|r| (r, p))
        });
    let (respond, patch) = match &custom {
        Some((r, p)) => (r, p.clone()),
        None => (&VERIFIERS.respond, respond_patch()),
    };
    let outcome = respond.evaluate(body);

    // Through the kind, as the request path calls it (the harness's own block).
    let bytes = Bytes::copy_from_slice(body);
    if VERIFIERS.kratos.parse(&HeaderMap::new(), &bytes).is_ok() {
        match VERIFIERS.kratos_respond.decide(&bytes) {
            Decision::Interrupt { answer, .. } => assert_eq!(answer.status(), 400),
            Decision::Store(Some(answer)) => assert_eq!(answer.status(), 200),
            Decision::Store(None) => panic!("kratos_respond: a patch block answered nothing"),
        }
    }

    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        if let Outcome::Patched(s) = &outcome {
            assert!(
                valid_json(s.as_bytes()),
                "kratos_respond: the patch answer is not JSON: {s}"
            );
        }
        return;
    };
    let rules = respond_rules();
    let first = rules
        .as_array()
        .into_iter()
        .flatten()
        .position(|rule| reference_holds(rule, &doc));
    match (&outcome, first) {
        (Outcome::Interrupt(i), Some(want)) => {
            assert_eq!(i.rule, want, "kratos_respond: not the first matching rule");
            let pointer = rules[want]["pointer"].as_str().unwrap_or_default();
            let want_ptr = pointer.strip_prefix("/identity/").map(|r| format!("#/{r}"));
            assert_eq!(i.instance_ptr, want_ptr.as_deref());
        }
        (Outcome::Patched(s), None) => {
            let answer: serde_json::Value = match serde_json::from_str(s) {
                Ok(v) => v,
                // A number out of f64's range, copied from the body as it was.
                Err(_) => {
                    assert!(valid_json(s.as_bytes()), "kratos_respond: not JSON: {s}");
                    return;
                }
            };
            let identity = answer.get("identity").and_then(|i| i.as_object());
            let Some(identity) =
                identity.filter(|_| answer.as_object().is_some_and(|o| o.len() == 1))
            else {
                panic!("kratos_respond: not {{\"identity\": {{…}}}}: {s}");
            };
            let named: Vec<&str> = PATCH_FIELDS
                .iter()
                .copied()
                .filter(|f| patch.get(*f).is_some())
                .collect();
            let got: Vec<&str> = identity.keys().map(String::as_str).collect();
            let mut want_keys = named.clone();
            want_keys.sort_unstable();
            let mut got_keys = got.clone();
            got_keys.sort_unstable();
            assert_eq!(
                got_keys, want_keys,
                "kratos_respond: not the patch's fields"
            );
            for field in named {
                let value = &identity[field];
                assert!(!value.is_null(), "kratos_respond: {field} answered null");
                let want = match &patch[field] {
                    serde_json::Value::Object(_) => {
                        let current = doc.get("identity").and_then(|i| i.get(field));
                        reference_merge(current.cloned(), &patch[field])
                    }
                    other => other.clone(),
                };
                assert_eq!(value, &want, "kratos_respond: {field} is not the merge");
            }
        }
        (Outcome::Store, _) => panic!("kratos_respond: a patch block answered nothing"),
        (got, want) => panic!("kratos_respond: {got:?}, but the first matching rule is {want:?}"),
    }
}

/// Whether one of [`respond_rules`] holds for `doc`, over `serde_json::Value`.
fn reference_holds(rule: &serde_json::Value, doc: &serde_json::Value) -> bool {
    let value = rule["pointer"].as_str().and_then(|p| doc.pointer(p));
    let present = value.filter(|v| !v.is_null());
    let regex = |key: &str| regex::Regex::new(rule[key].as_str().unwrap_or_default()).ok();
    if rule.get("matches").is_some() {
        let re = regex("matches");
        present
            .and_then(|v| v.as_str())
            .is_some_and(|s| re.is_some_and(|re| re.is_match(s)))
    } else if rule.get("not_matches").is_some() {
        let re = regex("not_matches");
        present.is_some()
            && !present
                .and_then(|v| v.as_str())
                .is_some_and(|s| re.is_some_and(|re| re.is_match(s)))
    } else if let Some(want) = rule.get("equals") {
        value == Some(want)
    } else {
        present.is_none() == (rule["missing"] == true)
    }
}

/// RFC 7396 `MergePatch(target, patch)`, as the RFC writes it.
fn reference_merge(
    target: Option<serde_json::Value>,
    patch: &serde_json::Value,
) -> serde_json::Value {
    let serde_json::Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut t = match target {
        Some(serde_json::Value::Object(t)) => t,
        _ => serde_json::Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            let current = t.remove(k);
            t.insert(k.clone(), reference_merge(current, v));
        }
    }
    serde_json::Value::Object(t)
}
