//! Typed sources: what each sender's payload must look like, how a retry is recognised, and
//! how hookgate answers it.
//!
//! # Layout
//! - [`SourceState`]: one per configured source, built once at start-up.
//! - [`receive`]: the handler behind each source's route (after [`crate::verify::verify_request`]):
//!   content type → parse and validate → store (waits for the commit) → answer.
//! - one file per kind: [`kratos`], [`identus`], [`abp`], each with its payload types and its
//!   `parse` function turning verified bytes into a [`ParsedEvent`].

pub mod abp;
pub mod identus;
pub mod kratos;

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::de::IgnoredAny;
use sha2::{Digest, Sha256};

use crate::config::{Settings, SourceKind, SourceSettings};
use crate::error::{FieldError, problem, problem_with, unavailable};
use crate::store::{Appended, NewEvent, Projection, Store, StoreError};
use crate::verify::{VerifiedBody, Verifier};

/// The header every accepted answer carries.
pub const EVENT_ID_HEADER: &str = "hookgate-event-id";

/// Request headers kept with an event (never credentials).
const STORED_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "x-request-id",
    "ory-webhook-request-id",
    "ory-webhook-trigger-id",
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
];

/// Everything a source's route needs, built once from its configuration.
pub struct SourceState {
    /// Source id.
    pub id: Arc<str>,
    /// Payload type.
    pub kind: SourceKind,
    /// Verification of its requests.
    pub verifier: Verifier,
    /// Body limit in bytes.
    pub body_limit: usize,
    /// `abp`: the allowed webhook names, if restricted.
    pub abp_events: Option<HashSet<String>>,
    /// `abp`: false when the body is the bare data (`SendExactSameData`).
    pub abp_envelope: bool,
    /// Where events go.
    pub store: Arc<dyn Store>,
    /// This source's metric handles, registered once.
    pub metrics: SourceMetrics,
    /// The header carrying this source's credential (never stored), worked out once.
    credential_header: Option<HeaderName>,
}

/// Metric handles of one source, registered at start-up so the request path does no registry
/// lookup and builds no label strings.
pub struct SourceMetrics {
    source: metrics::SharedString,
    by_status: Vec<(StatusCode, metrics::Counter)>,
    /// `hookgate_verification_failures_total{source, scheme}`.
    pub verification_failures: metrics::Counter,
}

impl SourceMetrics {
    /// The statuses a source answers; others are counted through the registry.
    const STATUSES: [&'static str; 10] = [
        "200", "400", "401", "405", "408", "413", "415", "422", "500", "503",
    ];

    fn new(id: &Arc<str>, scheme: &'static str) -> Self {
        let source = metrics::SharedString::from(id.clone());
        let by_status = Self::STATUSES
            .iter()
            .filter_map(|code| {
                let status = StatusCode::from_bytes(code.as_bytes()).ok()?;
                let counter = metrics::counter!("hookgate_requests_total", "source" => source.clone(), "status" => *code);
                Some((status, counter))
            })
            .collect();
        let verification_failures = metrics::counter!(
            "hookgate_verification_failures_total",
            "source" => source.clone(),
            "scheme" => scheme
        );
        Self {
            source,
            by_status,
            verification_failures,
        }
    }

    fn count(&self, status: StatusCode) {
        match self.by_status.iter().find(|(s, _)| *s == status) {
            Some((_, counter)) => counter.increment(1),
            None => metrics::counter!(
                "hookgate_requests_total",
                "source" => self.source.clone(),
                "status" => status.as_u16().to_string()
            )
            .increment(1),
        }
    }
}

impl SourceState {
    /// Builds the state of source `id`.
    pub fn new(id: &str, s: &SourceSettings, settings: &Settings, store: Arc<dyn Store>) -> Self {
        let id: Arc<str> = Arc::from(id);
        let verifier = Verifier::from_settings(&s.verify);
        Self {
            metrics: SourceMetrics::new(&id, verifier.scheme()),
            credential_header: verifier.credential_header(),
            id,
            kind: s.kind,
            verifier,
            body_limit: usize::try_from(settings.body_limit_for(s)).unwrap_or(usize::MAX),
            abp_events: s.events.as_ref().map(|e| e.iter().cloned().collect()),
            abp_envelope: s.envelope.unwrap_or(true),
            store,
        }
    }

    /// The answer to a request that failed before it could be stored, in the sender's language.
    pub fn error_response(&self, e: SourceError) -> Response {
        match self.kind {
            SourceKind::Kratos => kratos::error_response(e),
            _ => generic_error_response(e),
        }
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<ParsedEvent, SourceError> {
        match self.kind {
            SourceKind::Kratos => kratos::parse(headers, body),
            SourceKind::Identus => identus::parse(body),
            SourceKind::Abp => abp::parse(body, self.abp_envelope, self.abp_events.as_ref()),
        }
    }

    fn accepted(&self, appended: Appended) -> Response {
        let mut buf = uuid::Uuid::encode_buffer();
        let id = appended.event_id.hyphenated().encode_lower(&mut buf);
        let body = match self.kind {
            // Kratos with `response.parse: true` needs a JSON body; `{}` changes nothing.
            SourceKind::Kratos => Bytes::from_static(b"{}"),
            _ => Bytes::from(format!(
                r#"{{"status":"accepted","event_id":"{id}","duplicate":{}}}"#,
                appended.duplicate
            )),
        };
        let mut res = (
            StatusCode::OK,
            [(CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            body,
        )
            .into_response();
        if let Ok(v) = HeaderValue::from_str(id) {
            res.headers_mut()
                .insert(HeaderName::from_static(EVENT_ID_HEADER), v);
        }
        res
    }

    /// Selected headers as a JSON object, leaving out this source's credential header.
    fn stored_headers(&self, headers: &HeaderMap) -> String {
        let secret = self.credential_header.as_ref();
        let mut out = Vec::with_capacity(160);
        out.push(b'{');
        for name in STORED_HEADERS {
            if secret.is_some_and(|s| s.as_str() == *name) {
                continue;
            }
            if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok()) {
                if out.len() > 1 {
                    out.push(b',');
                }
                // Names are lower-case ASCII constants; values are escaped by serde_json.
                out.push(b'"');
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":");
                if serde_json::to_writer(&mut out, v).is_err() {
                    out.extend_from_slice(b"null");
                }
            }
        }
        out.push(b'}');
        String::from_utf8(out).unwrap_or_else(|_| "{}".to_string())
    }
}

/// The deepest nesting of arrays and objects a body may have: serde_json's own recursion limit,
/// which every parse of a body (and of a stored body, later) goes through.
pub const MAX_JSON_DEPTH: usize = 128;

/// What a source's parser found in a valid payload.
#[derive(Debug)]
pub struct ParsedEvent {
    /// The sender's event type.
    pub event_type: Option<String>,
    /// The key that recognises retries.
    pub dedupe_key: String,
    /// The sender's own id of the event.
    pub sender_id: Option<String>,
    /// The projection row this event updates.
    pub projection: Option<Projection>,
}

/// Why a request was refused before it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// 413: the body is larger than the source's limit.
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// 400: the body could not be read (or its length header is bad).
    BadRequest(String),
    /// 415: the content type is not JSON.
    UnsupportedMediaType(String),
    /// 400: the body is not JSON.
    Malformed(String),
    /// 422: JSON that does not fit the sender's format.
    Invalid {
        /// The message id a Kratos source answers with (see [`kratos`]).
        kratos_id: u32,
        /// The fields that are wrong.
        errors: Vec<FieldError>,
    },
}

impl SourceError {
    /// A short description for logs above debug: where the payload is wrong, never a value
    /// from the body. The pointers name keys as the sender wrote them; a key that is not a
    /// plain name (over 64 characters, or anything but letters, digits and `_-.$@`) shows as
    /// `*`, so a sender cannot write into the log line.
    pub fn summary(&self) -> String {
        match self {
            SourceError::TooLarge { limit } => format!("body over {limit} bytes"),
            SourceError::BadRequest(_) => "body unreadable".into(),
            SourceError::UnsupportedMediaType(_) => "content type is not JSON".into(),
            SourceError::Malformed(_) => "body is not valid JSON".into(),
            SourceError::Invalid { errors, .. } => {
                let mut out = String::from("payload does not fit at ");
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    for segment in e.pointer.split('/').skip(1) {
                        out.push('/');
                        let plain = segment.len() <= 64
                            && segment
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_-.$@~".contains(c));
                        out.push_str(if plain { segment } else { "*" });
                    }
                }
                out
            }
        }
    }

    /// 400 for a body that is not JSON; 422 for JSON nested deeper than [`MAX_JSON_DEPTH`]
    /// (it may be valid JSON, but no sender's format comes near that depth, and parsing it
    /// further would only spend stack).
    pub fn malformed(e: &serde_json::Error) -> Self {
        if e.to_string().starts_with("recursion limit exceeded") {
            SourceError::too_deep()
        } else {
            SourceError::Malformed(format!("the body is not valid JSON: {e}"))
        }
    }

    /// The 422 for JSON nested deeper than [`MAX_JSON_DEPTH`].
    fn too_deep() -> Self {
        SourceError::invalid(
            "",
            format!("the JSON is nested deeper than {MAX_JSON_DEPTH} levels"),
        )
    }

    /// A 422 for one field.
    pub fn invalid(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        SourceError::Invalid {
            kratos_id: kratos::MSG_INVALID_FIELD,
            errors: vec![FieldError {
                pointer: pointer.into(),
                detail: detail.into(),
            }],
        }
    }

    /// Turns a deserialization error into 400 (bad JSON) or 422 (JSON that does not fit),
    /// naming the field with a JSON pointer under `base`.
    pub fn from_json(
        body: &[u8],
        base: &str,
        e: serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let path = e.path().clone();
        let inner = e.into_inner();
        // A number past f64's range is valid JSON (RFC 8259 sets no limit) that does not fit
        // the field: 422 naming it, like any other value that does not fit.
        let out_of_range = inner.to_string().starts_with("number out of range");
        if (!out_of_range && (inner.is_syntax() || inner.is_eof())) || !valid_json(body) {
            return SourceError::malformed(&inner);
        }
        let mut pointer = base.to_string();
        for seg in path.iter() {
            use serde_path_to_error::Segment;
            match seg {
                Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
                Segment::Map { key } => {
                    pointer.push('/');
                    pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                }
                Segment::Enum { variant } => {
                    pointer.push('/');
                    pointer.push_str(variant);
                }
                Segment::Unknown => {}
            }
        }
        let msg = inner.to_string();
        let msg = msg
            .rsplit_once(" at line ")
            .map_or(msg.as_str(), |(m, _)| m);
        if let Some(field) = msg
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            pointer.push('/');
            pointer.push_str(field);
            return SourceError::invalid(pointer, "is required");
        }
        SourceError::invalid(pointer, msg.to_string())
    }
}

/// The problem+json answer every non-Kratos source uses.
fn generic_error_response(e: SourceError) -> Response {
    match e {
        SourceError::TooLarge { limit } => problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Content Too Large",
            &format!("the body is larger than this source's limit of {limit} bytes"),
        ),
        SourceError::BadRequest(d) | SourceError::Malformed(d) => {
            problem(StatusCode::BAD_REQUEST, "Bad Request", &d)
        }
        SourceError::UnsupportedMediaType(d) => problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Media Type",
            &d,
        ),
        SourceError::Invalid { errors, .. } => problem_with(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unprocessable Content",
            "the payload does not fit the sender's format",
            &errors,
        ),
    }
}

/// True for `application/json` and `application/*+json`, with any parameters.
fn is_json(headers: &HeaderMap) -> Result<(), SourceError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(SourceError::UnsupportedMediaType(
            "a Content-Type of application/json is required".into(),
        ));
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim();
    let ok = essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > "application/+json".len()
            && essence
                .get(..12)
                .is_some_and(|p| p.eq_ignore_ascii_case("application/"))
            && essence
                .get(essence.len() - 5..)
                .is_some_and(|s| s.eq_ignore_ascii_case("+json")));
    if ok {
        Ok(())
    } else {
        Err(SourceError::UnsupportedMediaType(format!(
            "the Content-Type must be application/json, not {}",
            if essence.is_empty() { "empty" } else { essence }
        )))
    }
}

/// Refuses valid JSON that is not an object where an object is expected, with 422 at `pointer`.
///
/// serde's derived structs also read a JSON array, field by field in order; no sender writes
/// its events that way, and accepting `["id","type",…]` as an event would store what is not the
/// sender's format. Input that is not JSON at all is left to the parser (400).
pub(crate) fn require_object(input: &[u8], pointer: &str) -> Result<(), SourceError> {
    let first = input
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first == Some(&b'{') || !valid_json(input) {
        return Ok(());
    }
    Err(SourceError::invalid(pointer, "must be a JSON object"))
}

/// Deserializes `input` as `T`. The fast path is plain serde_json; only when that fails is the
/// input parsed again, tracking the path, to name the field in the 400/422 answer.
pub(crate) fn from_json<'a, T: serde::Deserialize<'a>>(
    input: &'a [u8],
    base: &str,
) -> Result<T, SourceError> {
    require_object(input, base)?;
    match serde_json::from_slice::<T>(input) {
        Ok(v) => Ok(v),
        Err(first) => {
            let mut de = serde_json::Deserializer::from_slice(input);
            match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(e) => Err(SourceError::from_json(input, base, e)),
                // Only trailing bytes after the value make the first parse fail and this one pass.
                Ok(_) => Err(SourceError::malformed(&first)),
            }
        }
    }
}

/// Refuses a body whose arrays and objects nest deeper than [`MAX_JSON_DEPTH`], with 422.
///
/// serde_json limits the depth of what it deserializes, but not of what it skips (unknown fields,
/// raw values), and every format here has places where any JSON is allowed: without this check a
/// body could be stored that no consumer's JSON parser would read back. One pass over the bytes,
/// no allocation; strings are skipped so brackets inside them do not count.
pub(crate) fn check_depth(body: &[u8]) -> Result<(), SourceError> {
    let mut depth = 0usize;
    let mut bytes = body.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'"' => loop {
                match bytes.next() {
                    Some(b'\\') => {
                        bytes.next();
                    }
                    Some(b'"') | None => break,
                    Some(_) => {}
                }
            },
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    // Broken JSON stays a 400 however deep it is (skipping values has no depth
                    // limit in serde_json, so this parse is safe).
                    return Err(match serde_json::from_slice::<IgnoredAny>(body) {
                        Err(e) => SourceError::malformed(&e),
                        Ok(_) => SourceError::too_deep(),
                    });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `input` is one JSON value (of any depth: serde_json skips values without recursing).
/// For error paths, where a parse into a type failed and the answer is 400 or 422.
pub(crate) fn valid_json(input: &[u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(input).is_ok()
}

/// SHA-256 of the body, as a dedupe key for senders that give no id.
pub(crate) fn body_digest(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(body)))
}

/// Where in `body` a `&str` parsed out of it lies, so a projection can point into the stored
/// body instead of keeping a second copy. `None` if `part` is not inside `body`.
pub(crate) fn sub_range(body: &[u8], part: &str) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= body.len()).then_some(start..end)
}

/// The handler behind every source route.
pub async fn receive(State(src): State<Arc<SourceState>>, req: Request) -> Response {
    // The request itself rather than extractors: a `HeaderMap` extractor clones every header.
    let (mut parts, _) = req.into_parts();
    let headers = &parts.headers;
    let Some(body) = parts.extensions.remove::<VerifiedBody>() else {
        tracing::error!(source = %src.id, "a source route was reached without verification");
        return crate::error::problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            "the request could not be handled",
        );
    };
    if let Err(e) = is_json(headers) {
        return src.error_response(e);
    }
    let body = body.into_bytes();
    let parsed = match src.parse(headers, &body) {
        Ok(p) => p,
        Err(e) => {
            // Only where the problem is: the details may quote values from the body.
            tracing::info!(source = %src.id, problem = e.summary(), "payload refused");
            tracing::debug!(source = %src.id, error = ?e, "payload refused (details)");
            return src.error_response(e);
        }
    };
    let received_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let event = NewEvent {
        source: src.id.clone(),
        kind: src.kind.as_str(),
        event_type: parsed.event_type,
        dedupe_key: parsed.dedupe_key,
        sender_id: parsed.sender_id,
        received_at,
        headers: src.stored_headers(headers),
        body,
        projection: parsed.projection,
    };
    // The accepted line needs these after the event has moved into the store; copy them only
    // when that line will be written.
    let logged = tracing::enabled!(tracing::Level::INFO)
        .then(|| (event.event_type.clone(), event.sender_id.clone()));
    match src.store.append(event).await {
        Ok(appended) => {
            if let Some((event_type, sender_id)) = logged {
                tracing::info!(
                    source = %src.id,
                    event_type = event_type.as_deref().unwrap_or(""),
                    event_id = %appended.event_id,
                    sender_id = sender_id.as_deref().unwrap_or(""),
                    duplicate = appended.duplicate,
                    "event accepted"
                );
            }
            src.accepted(appended)
        }
        Err(StoreError::Busy) => {
            tracing::warn!(source = %src.id, "store queue full; answering 503");
            unavailable("the store is busy; retry shortly", 1)
        }
        Err(e) => {
            tracing::error!(source = %src.id, error = %e, "event could not be stored; answering 503");
            unavailable("the event could not be stored; retry later", 5)
        }
    }
}

/// The in-flight gauge, registered once (a registry lookup per request otherwise).
fn in_flight() -> &'static metrics::Gauge {
    static GAUGE: std::sync::OnceLock<metrics::Gauge> = std::sync::OnceLock::new();
    GAUGE.get_or_init(|| metrics::gauge!("hookgate_requests_in_flight"))
}

/// Counts requests per source and status, and the requests in flight.
pub async fn track(State(src): State<Arc<SourceState>>, req: Request, next: Next) -> Response {
    struct InFlight;
    impl Drop for InFlight {
        fn drop(&mut self) {
            in_flight().decrement(1.0);
        }
    }
    in_flight().increment(1.0);
    let _guard = InFlight;
    tracing::Span::current().record("source", &*src.id);
    let res = next.run(req).await;
    src.metrics.count(res.status());
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ct(v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn json_content_types_are_recognised_with_parameters() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/cloudevents+json",
        ] {
            assert_eq!(is_json(&ct(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
            "application/+json",
            "",
        ] {
            assert!(is_json(&ct(bad)).is_err(), "{bad}");
        }
        assert!(is_json(&HeaderMap::new()).is_err());
    }

    #[test]
    fn sub_range_finds_a_parsed_slice_in_the_body() {
        let body = br#"{"a":{"b":1}}"#;
        let inner = &std::str::from_utf8(body).unwrap()[5..12];
        let range = sub_range(body, inner).unwrap();
        assert_eq!(range, 5..12);
        assert_eq!(&body[range], br#"{"b":1}"#);
        assert_eq!(sub_range(body, "elsewhere"), None);
    }

    /// `depth` nested arrays around a number.
    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    /// Each sender's sample with `value` put where its format allows any JSON.
    fn samples_with(value: &str) -> Vec<(&'static str, Result<ParsedEvent, SourceError>)> {
        let identity = include_str!("../../tests/fixtures/kratos_guide_identity.json").replacen(
            '{',
            &format!("{{\"extra\":{value},"),
            1,
        );
        let kratos_body = Bytes::from(format!("{{\"identity\":{identity}}}"));
        let identus_body = Bytes::from(
            include_str!("../../tests/fixtures/identus_connection.json").replacen(
                "\"data\":{",
                &format!("\"data\":{{\"extra\":{value},"),
                1,
            ),
        );
        let abp_body = Bytes::from(format!(
            "{{\"Id\":\"e1\",\"WebhookEvent\":\"Deep\",\"Attempt\":1,\"Data\":{value}}}"
        ));
        vec![
            ("kratos", kratos::parse(&HeaderMap::new(), &kratos_body)),
            ("identus", identus::parse(&identus_body)),
            ("abp", abp::parse(&abp_body, true, None)),
            (
                "abp bare",
                abp::parse(&Bytes::from(value.to_string()), false, None),
            ),
        ]
    }

    #[test]
    fn json_nested_past_the_limit_is_a_422_naming_the_limit() {
        for (parser, outcome) in samples_with(&nested(MAX_JSON_DEPTH + 1)) {
            match outcome {
                Err(SourceError::Invalid { errors, .. }) => {
                    assert!(
                        errors[0].detail.contains("nested deeper than 128 levels"),
                        "{parser}: {errors:?}"
                    );
                }
                other => panic!("{parser}: {other:?}"),
            }
        }
        // Far past it (a stack overflow in a recursive parser without a limit).
        for (parser, outcome) in samples_with(&nested(100_000)) {
            assert!(
                matches!(outcome, Err(SourceError::Invalid { .. })),
                "{parser}: {outcome:?}"
            );
        }
    }

    #[test]
    fn brackets_inside_strings_do_not_count_towards_the_depth() {
        let deep_text = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert_eq!(check_depth(deep_text.as_bytes()), Ok(()));
        assert!(check_depth(nested(MAX_JSON_DEPTH).as_bytes()).is_ok());
        assert!(check_depth(nested(MAX_JSON_DEPTH + 1).as_bytes()).is_err());
        // Unbalanced or truncated input is left to the parser.
        assert_eq!(check_depth(b"]]]}}\"\\"), Ok(()));
    }

    #[test]
    fn json_nested_within_the_limit_is_accepted() {
        // The value sits one or two levels down in each format.
        for (parser, outcome) in samples_with(&nested(MAX_JSON_DEPTH - 3)) {
            assert!(outcome.is_ok(), "{parser}: {outcome:?}");
        }
        // Broken JSON stays a 400.
        for (parser, outcome) in samples_with("[[[1,]]]") {
            assert!(
                matches!(outcome, Err(SourceError::Malformed(_))),
                "{parser}: {outcome:?}"
            );
        }
    }

    #[test]
    fn a_summary_names_keys_that_are_plain_names_and_hides_the_others() {
        let e = SourceError::Invalid {
            kratos_id: kratos::MSG_INVALID_FIELD,
            errors: vec![
                crate::error::FieldError {
                    pointer: "/identity/credentials/line\nbreak/version".into(),
                    detail: "invalid".into(),
                },
                crate::error::FieldError {
                    pointer: "/data/connectionId".into(),
                    detail: "invalid".into(),
                },
            ],
        };
        assert_eq!(
            e.summary(),
            "payload does not fit at /identity/credentials/*/version, /data/connectionId"
        );
    }

    #[test]
    fn broken_json_is_a_400_whatever_else_is_wrong_with_it() {
        let deep_and_broken = format!("{}1", "[".repeat(MAX_JSON_DEPTH + 5));
        for body in [
            "1[",
            "\"state\"{}",
            "1e999\u{fe}",
            "[-1e999",
            deep_and_broken.as_str(),
        ] {
            let body = Bytes::from(body.to_string());
            for (parser, outcome) in [
                ("kratos", kratos::parse(&HeaderMap::new(), &body)),
                ("identus", identus::parse(&body)),
                ("abp", abp::parse(&body, true, None)),
            ] {
                assert!(
                    matches!(outcome, Err(SourceError::Malformed(_))),
                    "{parser} {body:?}: {outcome:?}"
                );
            }
        }
    }
}
