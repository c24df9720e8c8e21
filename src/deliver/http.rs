//! `kind: http`: one attempt is one `POST` of the exact stored bytes to the destination's URL,
//! with the stored content type, the `Hookgate-*` headers, the static headers and the signature
//! headers (DESIGN.md "Delivery").
//!
//! One [`HttpSender`] per destination holds one `reqwest::Client` (so connections are pooled),
//! follows no redirect (a 3xx is a failed attempt), and bounds the whole attempt, connection and
//! answer included, by the destination's `timeout`. Only the first [`RESPONSE_BYTES`] of an
//! answer are read: a huge answer is cut off, not buffered.
//!
//! Nothing secret leaves here: the static header values and signatures are marked sensitive,
//! error texts carry no URL (it may hold credentials) and no header value, and `Debug` shows
//! neither the header values nor the URL's password.

use std::error::Error as _;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use secrecy::ExposeSecret;

use super::attempt::{Attempted, ErrorKind, Outgoing, RESPONSE_BYTES};
use super::sign::signature_headers;
use crate::config::destinations::{HttpTarget, Signing};
use crate::config::types::redact_url;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("hookgate/", env!("CARGO_PKG_VERSION"));
/// hookgate's id of the event, the same on every attempt and replay.
pub const EVENT_ID_HEADER: &str = "hookgate-event-id";
/// The source the event came from.
pub const SOURCE_HEADER: &str = "hookgate-source";
/// The sender's event type, when the payload names one.
pub const EVENT_TYPE_HEADER: &str = "hookgate-event-type";
/// This attempt's number, from 1.
pub const ATTEMPT_HEADER: &str = "hookgate-attempt";
/// The registered hook the event came through, for a hook's events only.
pub const HOOK_ID_HEADER: &str = "hookgate-hook-id";

/// Sends a destination's attempts over HTTP.
pub struct HttpSender {
    /// The destination's id, for error messages.
    id: String,
    /// Where to POST (parsed once; may hold credentials, so it is never shown whole).
    url: reqwest::Url,
    /// One client per destination: its pool keeps connections to the destination open between
    /// attempts; no redirects; the destination's timeout over each whole attempt.
    client: reqwest::Client,
    /// The configured static headers, values built once and marked sensitive.
    static_headers: HeaderMap,
    /// How each request is signed.
    sign: Signing,
    /// The destination's `timeout`, also enforced around the answer's reading.
    timeout: Duration,
}

impl fmt::Debug for HttpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSender")
            .field("id", &self.id)
            .field("url", &redact_url(self.url.as_str()))
            .field("headers", &self.static_headers.keys().collect::<Vec<_>>())
            .field("sign", &self.sign)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpSender {
    /// The sender of destination `id` to `target`.
    ///
    /// # Errors
    /// The URL does not parse, a static header value or the `hmac` prefix is not a valid header
    /// value, or the HTTP client cannot be built (its TLS setup). No error holds a secret.
    pub fn new(id: &str, target: &HttpTarget) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(&target.url).map_err(|e| {
            anyhow::anyhow!(
                "destinations.{id}.url: `{}` is not a URL: {e}",
                redact_url(&target.url)
            )
        })?;
        let mut static_headers = HeaderMap::new();
        for (name, value) in &target.headers {
            let mut value = HeaderValue::from_str(value.expose_secret()).map_err(|_| {
                anyhow::anyhow!(
                    "destinations.{id}.headers.{name}: the value is not a valid header value"
                )
            })?;
            value.set_sensitive(true);
            static_headers.append(name.clone(), value);
        }
        if let Signing::Hmac { prefix, .. } = &target.sign {
            HeaderValue::from_str(prefix).map_err(|_| {
                anyhow::anyhow!("destinations.{id}.sign.prefix: is not valid in a header value")
            })?;
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(target.timeout)
            .user_agent(USER_AGENT)
            .build()
            .with_context(|| format!("destinations.{id}: building the HTTP client"))?;
        Ok(Self {
            id: id.to_string(),
            url,
            client,
            static_headers,
            sign: target.sign.clone(),
            timeout: target.timeout,
        })
    }

    /// Makes one attempt: POSTs `out` and reads at most [`RESPONSE_BYTES`] of the answer.
    /// Never fails: a failure is an [`Attempted`] with its [`ErrorKind`].
    pub async fn send(&self, out: &Outgoing) -> Attempted {
        let started = Instant::now();
        // The client's timeout covers the attempt already; this one also bounds what the client
        // does not see as its own (it costs nothing when the client's fires first).
        let mut attempted = match tokio::time::timeout(self.timeout, self.exchange(out)).await {
            Ok(attempted) => attempted,
            Err(_) => failed(
                None,
                ErrorKind::Timeout,
                format!(
                    "no complete answer within {}",
                    humantime::format_duration(self.timeout)
                ),
            ),
        };
        attempted.duration = started.elapsed();
        attempted
    }

    /// The request and its answer, without the duration.
    async fn exchange(&self, out: &Outgoing) -> Attempted {
        let response = match self.request(out).send().await {
            Ok(response) => response,
            Err(e) => return failed(None, classify(&e), describe(e)),
        };
        let status = response.status();
        let retry_after = retry_after(status, response.headers(), SystemTime::now());
        match read_prefix(response).await {
            Ok(kept) => Attempted {
                status: Some(status.as_u16()),
                error: None,
                response: lossy_prefix(&kept),
                retry_after,
                duration: Duration::ZERO,
            },
            Err(e) => Attempted {
                retry_after,
                ..failed(Some(status.as_u16()), classify(&e), describe(e))
            },
        }
    }

    /// The POST of one attempt: the exact bytes (shared, not copied) and every header.
    fn request(&self, out: &Outgoing) -> reqwest::RequestBuilder {
        let event_id = out.event_id.to_string();
        let mut headers = self.static_headers.clone();
        let content_type = HeaderValue::from_str(&out.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        headers.insert(CONTENT_TYPE, content_type);
        headers.insert(
            HeaderName::from_static(EVENT_ID_HEADER),
            header_text(&event_id),
        );
        headers.insert(
            HeaderName::from_static(SOURCE_HEADER),
            header_text(&out.source),
        );
        if let Some(event_type) = &out.event_type {
            headers.insert(
                HeaderName::from_static(EVENT_TYPE_HEADER),
                header_text(event_type),
            );
        }
        headers.insert(
            HeaderName::from_static(ATTEMPT_HEADER),
            HeaderValue::from(out.attempt),
        );
        if let Some(hook) = &out.hook {
            headers.insert(HeaderName::from_static(HOOK_ID_HEADER), header_text(hook));
        }
        // The attempt span's trace context (traces on): W3C names, lower-case.
        for (name, value) in &out.trace {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        for (name, value) in signature_headers(&self.sign, &event_id, unix_now(), &out.body) {
            headers.insert(name, value);
        }
        self.client
            .post(self.url.clone())
            .headers(headers)
            .body(out.body.clone())
    }
}

/// `text` as a header value: as it is when it is printable ASCII, else percent-encoded (an
/// event type from a payload may hold anything).
fn header_text(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| {
        let encoded =
            percent_encoding::utf8_percent_encode(text, percent_encoding::CONTROLS).to_string();
        HeaderValue::from_str(&encoded).unwrap_or(HeaderValue::from_static(""))
    })
}

/// The current Unix seconds (0 for a clock before 1970).
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// An attempt without a usable answer.
fn failed(status: Option<u16>, error: ErrorKind, text: String) -> Attempted {
    Attempted {
        status,
        error: Some(error),
        response: text,
        retry_after: None,
        duration: Duration::ZERO,
    }
}

/// Reads the answer's body until [`RESPONSE_BYTES`] are kept or it ends; the rest is never read
/// (the connection is dropped with the response).
async fn read_prefix(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut kept = Vec::new();
    while kept.len() < RESPONSE_BYTES {
        let Some(chunk) = response.chunk().await? else {
            break;
        };
        let room = RESPONSE_BYTES - kept.len();
        kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    Ok(kept)
}

/// At most [`RESPONSE_BYTES`] of `bytes` as text: invalid UTF-8 replaced, a character cut in
/// two at the end dropped.
fn lossy_prefix(bytes: &[u8]) -> String {
    let mut bytes = &bytes[..bytes.len().min(RESPONSE_BYTES)];
    if let Err(e) = std::str::from_utf8(bytes) {
        if e.error_len().is_none() {
            bytes = &bytes[..e.valid_up_to()];
        }
    }
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    // Replacement characters can make the text longer than the bytes.
    let mut end = text.len().min(RESPONSE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// `Retry-After` of a 429 or 503 answer: delta seconds or an HTTP date (a past date is zero).
fn retry_after(status: StatusCode, headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The kind of a failed request: a timeout, then TLS (a handshake failure is also a connect
/// error to reqwest), then connect (DNS included), else a protocol failure.
fn classify(e: &reqwest::Error) -> ErrorKind {
    if e.is_timeout() {
        ErrorKind::Timeout
    } else if is_tls(e) {
        ErrorKind::Tls
    } else if e.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Protocol
    }
}

/// Whether a rustls error (or a certificate problem) is in the error's chain. An `io::Error`'s
/// `source` skips the error it wraps (reqwest's connector wraps rustls' error in two), so the
/// walk goes into the wrapped error instead.
fn is_tls(e: &reqwest::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if err.is::<rustls::Error>() || err.to_string().contains("certificate") {
            return true;
        }
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    false
}

/// A short text for the attempts log: the error and its causes, without the URL (it may hold
/// credentials); reqwest's errors never hold header values.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(err) = next {
        let cause = err.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        next = err.source();
    }
    lossy_prefix(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventId;
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn target(url: &str, timeout: Duration) -> HttpTarget {
        HttpTarget {
            url: url.to_string(),
            headers: Vec::new(),
            sign: Signing::None,
            timeout,
        }
    }

    fn outgoing() -> Outgoing {
        Outgoing {
            event_id: EventId::new(),
            source: "kratos".into(),
            event_type: Some("identity.created".into()),
            hook: None,
            content_type: "application/json".into(),
            body: Bytes::from_static(b"{\"a\":1}"),
            received_at: "2026-11-26T10:20:30.123Z".into(),
            attempt: 1,
            trace: Vec::new(),
        }
    }

    /// A server that reads each request head and answers `answer` (nothing when empty: it
    /// holds the connection open).
    async fn raw_server(answer: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    let _ = stream.read(&mut buf).await;
                    if answer.is_empty() {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    let _ = stream.write_all(answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        format!("127.0.0.1:{}", addr.port())
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date_for_429_and_503_only() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            h
        };
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        let cases = [
            (429, "7", Some(Duration::from_secs(7))),
            (503, " 120 ", Some(Duration::from_secs(120))),
            (429, later.as_str(), Some(Duration::from_secs(90))),
            (503, earlier.as_str(), Some(Duration::ZERO)),
            (429, "soon", None),
            (429, "-5", None),
            (500, "7", None),
            (200, "7", None),
        ];
        for (status, value, expected) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                retry_after(status, &with(value), now),
                expected,
                "{status} {value}"
            );
        }
        assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), now),
            None
        );
    }

    #[test]
    fn the_kept_answer_is_at_most_response_bytes_of_text() {
        assert_eq!(lossy_prefix(b"ok"), "ok");
        assert_eq!(lossy_prefix(&[b'x'; 10_000]).len(), RESPONSE_BYTES);
        // A character cut at the limit is dropped, not replaced.
        let mut cut = vec![b'x'; RESPONSE_BYTES - 1];
        cut.extend_from_slice("é".as_bytes());
        assert_eq!(lossy_prefix(&cut), "x".repeat(RESPONSE_BYTES - 1));
        // Replacement characters do not make it longer.
        let text = lossy_prefix(&[0xff; RESPONSE_BYTES]);
        assert!(text.len() <= RESPONSE_BYTES && text.starts_with('\u{fffd}'));
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let sender = HttpSender::new(
            "app",
            &target(
                &format!("http://user:pa55word@127.0.0.1:{port}/hooks?token=t0ken"),
                Duration::from_secs(5),
            ),
        )
        .unwrap();
        let a = sender.send(&outgoing()).await;
        assert_eq!(a.error, Some(ErrorKind::Connect), "{a:?}");
        assert_eq!(a.status, None);
        assert!(!a.delivered());
        assert!(!a.response.is_empty());
        for secret in ["pa55word", "t0ken", "/hooks"] {
            assert!(!a.response.contains(secret), "{}", a.response);
        }
    }

    #[tokio::test]
    async fn a_plain_http_server_behind_an_https_url_is_a_tls_error() {
        let addr = raw_server(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        let sender = HttpSender::new(
            "app",
            &target(&format!("https://{addr}/"), Duration::from_secs(5)),
        )
        .unwrap();
        let a = sender.send(&outgoing()).await;
        assert_eq!(a.error, Some(ErrorKind::Tls), "{a:?}");
        assert_eq!(a.status, None);
    }

    #[tokio::test]
    async fn a_silent_server_is_a_timeout_after_the_timeout() {
        let addr = raw_server(b"").await;
        let timeout = Duration::from_millis(200);
        let sender = HttpSender::new("app", &target(&format!("http://{addr}/"), timeout)).unwrap();
        let a = sender.send(&outgoing()).await;
        assert_eq!(a.error, Some(ErrorKind::Timeout), "{a:?}");
        assert!(
            a.duration >= timeout && a.duration < timeout * 5,
            "{:?}",
            a.duration
        );
    }

    #[tokio::test]
    async fn a_malformed_answer_is_a_protocol_error() {
        let addr = raw_server(b"this is not HTTP\r\n\r\n").await;
        let sender = HttpSender::new(
            "app",
            &target(&format!("http://{addr}/"), Duration::from_secs(5)),
        )
        .unwrap();
        let a = sender.send(&outgoing()).await;
        assert_eq!(a.error, Some(ErrorKind::Protocol), "{a:?}");
    }

    #[tokio::test]
    async fn an_answer_cut_short_keeps_its_status_and_is_not_delivered() {
        let addr = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this").await;
        let sender = HttpSender::new(
            "app",
            &target(&format!("http://{addr}/"), Duration::from_secs(5)),
        )
        .unwrap();
        let a = sender.send(&outgoing()).await;
        assert_eq!(a.status, Some(200));
        assert_eq!(a.error, Some(ErrorKind::Protocol), "{a:?}");
        assert!(!a.delivered());
    }

    #[test]
    fn new_refuses_bad_values_without_showing_them() {
        let mut t = target("http://a/", Duration::from_secs(1));
        t.headers.push((
            HeaderName::from_static("authorization"),
            secrecy::SecretString::from("Bearer s3cret\n"),
        ));
        let e = HttpSender::new("app", &t).unwrap_err().to_string();
        assert!(e.contains("destinations.app.headers.authorization"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
        let e = HttpSender::new("app", &target("not a url", Duration::from_secs(1)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("destinations.app.url"), "{e}");
    }

    #[test]
    fn debug_shows_no_header_value_and_no_password() {
        let mut t = target("https://user:pa55word@app/hooks", Duration::from_secs(1));
        t.headers.push((
            HeaderName::from_static("authorization"),
            secrecy::SecretString::from("Bearer s3cret"),
        ));
        t.sign = Signing::AbpSignature {
            secret: secrecy::SecretString::from("whs_0123456789abcdef"),
        };
        let shown = format!("{:?}", HttpSender::new("app", &t).unwrap());
        for secret in ["pa55word", "s3cret", "whs_0123456789abcdef"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("authorization"), "{shown}");
    }

    #[test]
    fn event_types_that_are_not_header_text_are_percent_encoded() {
        assert_eq!(header_text("a.b"), "a.b");
        assert_eq!(header_text("zoë\n"), "zo%C3%AB%0A");
    }
}
