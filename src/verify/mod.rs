//! Request verification: proving a request came from the sender before its body is trusted.
//!
//! # Layout
//! - [`Verifier`]: one runtime value per source, built once from its `verify` block.
//! - one file per scheme: [`api_key`], [`basic`], [`bearer`], [`abp_signature`].
//! - [`verify_request`]: the axum middleware in front of each source's route. It checks the
//!   headers, reads the body once (under the source's size limit), checks signatures over those
//!   exact bytes, and hands them on as a [`VerifiedBody`], which nothing else can construct.
//!
//! Every failure is answered with the same 401 body; the reason goes to the log at warn, never
//! with the secret or the expected value.

pub mod abp_signature;
pub mod api_key;
pub mod basic;
pub mod bearer;

use std::fmt;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use bytes::BytesMut;
use http::header::{CONTENT_LENGTH, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{KeyLocation, Scheme, VerifySettings};
use crate::error::problem;
use crate::sources::{SourceError, SourceState};

/// Why a request failed verification. Logged, never sent to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The credential header (or cookie) is absent.
    Missing,
    /// The credential appears more than once, so which one counts would be ambiguous.
    Repeated,
    /// The credential is present but not in the scheme's format.
    Malformed(&'static str),
    /// The credential is well-formed and matches no configured secret.
    Mismatch,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Missing => f.write_str("credential missing"),
            Failure::Repeated => f.write_str("credential given more than once"),
            Failure::Malformed(why) => write!(f, "credential malformed: {why}"),
            Failure::Mismatch => f.write_str("credential matches no configured secret"),
        }
    }
}

/// SHA-256 digests of the accepted secrets.
///
/// Comparing digests rather than the secrets themselves keeps the comparison constant-time
/// whatever the lengths (a plain slice compare returns early on a length mismatch), and every
/// secret is compared on every request, so timing tells nothing about which one matched.
#[derive(Clone)]
pub struct SecretDigests(Vec<[u8; 32]>);

impl SecretDigests {
    /// Digests each secret once, at start-up.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Self {
        Self(
            secrets
                .into_iter()
                .map(|s| Sha256::digest(s).into())
                .collect(),
        )
    }

    /// True when `presented` equals one of the secrets (constant-time).
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        self.0
            .iter()
            .fold(subtle::Choice::from(0u8), |acc, d| acc | d.ct_eq(&digest))
            .into()
    }
}

impl fmt::Debug for SecretDigests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretDigests([{} redacted])", self.0.len())
    }
}

/// The verifier of one source.
#[derive(Debug, Clone)]
pub enum Verifier {
    /// A static key in a header or cookie.
    ApiKey(api_key::ApiKey),
    /// HTTP Basic credentials.
    Basic(basic::Basic),
    /// An RFC 6750 bearer token.
    Bearer(bearer::Bearer),
    /// ABP's HMAC-SHA256 body signature.
    AbpSignature(abp_signature::AbpSignature),
    /// Nothing is checked (configured explicitly, warned about at start).
    None,
}

impl Verifier {
    /// Builds the runtime verifier from a (validated) `verify` block.
    pub fn from_settings(v: &VerifySettings) -> Self {
        let secrets = || SecretDigests::new(v.secrets.iter().map(|s| s.expose_secret().as_bytes()));
        match v.scheme {
            Scheme::ApiKey => Verifier::ApiKey(match v.location.unwrap_or_default() {
                KeyLocation::Header => api_key::ApiKey::header(
                    v.header
                        .as_deref()
                        .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                        .unwrap_or(HeaderName::from_static(api_key::DEFAULT_HEADER)),
                    secrets(),
                ),
                KeyLocation::Cookie => {
                    api_key::ApiKey::cookie(v.cookie.clone().unwrap_or_default(), secrets())
                }
            }),
            Scheme::Basic => Verifier::Basic(basic::Basic::new(secrets())),
            Scheme::Bearer => Verifier::Bearer(bearer::Bearer::new(secrets())),
            Scheme::AbpSignature => Verifier::AbpSignature(abp_signature::AbpSignature::new(
                v.secrets.iter().map(|s| s.expose_secret().as_bytes()),
            )),
            Scheme::None => Verifier::None,
        }
    }

    /// The scheme's name, for logs and metrics.
    pub fn scheme(&self) -> &'static str {
        match self {
            Verifier::ApiKey(_) => Scheme::ApiKey.as_str(),
            Verifier::Basic(_) => Scheme::Basic.as_str(),
            Verifier::Bearer(_) => Scheme::Bearer.as_str(),
            Verifier::AbpSignature(_) => Scheme::AbpSignature.as_str(),
            Verifier::None => Scheme::None.as_str(),
        }
    }

    /// Checks what can be checked from the headers alone (all but body signatures).
    ///
    /// # Errors
    /// Why the request does not verify.
    pub fn verify_headers(&self, headers: &HeaderMap) -> Result<(), Failure> {
        match self {
            Verifier::ApiKey(v) => v.verify(headers),
            Verifier::Basic(v) => v.verify(headers),
            Verifier::Bearer(v) => v.verify(headers),
            Verifier::AbpSignature(_) | Verifier::None => Ok(()),
        }
    }

    /// Checks a signature over the exact body bytes, for the schemes that sign the body.
    ///
    /// # Errors
    /// Why the request does not verify.
    pub fn verify_body(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Failure> {
        match self {
            Verifier::AbpSignature(v) => v.verify(headers, body),
            _ => Ok(()),
        }
    }

    /// The header that carries this scheme's credential, never to be stored or logged.
    pub fn credential_header(&self) -> Option<HeaderName> {
        match self {
            Verifier::ApiKey(v) => v.header_name().cloned(),
            Verifier::AbpSignature(_) => Some(HeaderName::from_static(abp_signature::HEADER)),
            Verifier::Basic(_) | Verifier::Bearer(_) => Some(http::header::AUTHORIZATION),
            Verifier::None => None,
        }
    }

    /// The 401 answer, the same for every reason.
    pub fn unauthorized(&self, headers: &HeaderMap) -> Response {
        let mut res = problem(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The request could not be authenticated.",
        );
        let challenge = match self {
            Verifier::Bearer(_) if headers.contains_key(http::header::AUTHORIZATION) => {
                Some(r#"Bearer realm="hookgate", error="invalid_token""#)
            }
            Verifier::Bearer(_) => Some(r#"Bearer realm="hookgate""#),
            Verifier::Basic(_) => Some(r#"Basic realm="hookgate", charset="UTF-8""#),
            _ => None,
        };
        if let Some(c) = challenge {
            res.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        res
    }
}

/// The request body, read once and verified: handlers can only get a body through this type,
/// and only [`verify_request`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedBody(Bytes);

impl VerifiedBody {
    /// The exact bytes received.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Takes the bytes (no copy).
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

/// Middleware in front of a source's route: verify headers, read the body under the limit,
/// verify body signatures, then hand on a [`VerifiedBody`].
pub async fn verify_request(
    State(src): State<Arc<SourceState>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != http::Method::POST {
        // Say what the route takes rather than asking for credentials it would not use.
        let mut res = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method Not Allowed",
            "webhooks are delivered with POST",
        );
        res.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
        return res;
    }
    let (mut parts, body) = req.into_parts();
    if let Err(f) = src.verifier.verify_headers(&parts.headers) {
        return reject(&src, &parts.headers, f);
    }
    let bytes = match read_body(body, &parts.headers, src.body_limit).await {
        Ok(b) => b,
        Err(e) => return src.error_response(e),
    };
    if let Err(f) = src.verifier.verify_body(&parts.headers, &bytes) {
        return reject(&src, &parts.headers, f);
    }
    parts.extensions.insert(VerifiedBody(bytes));
    next.run(Request::from_parts(parts, axum::body::Body::empty()))
        .await
}

fn reject(src: &SourceState, headers: &HeaderMap, failure: Failure) -> Response {
    let scheme = src.verifier.scheme();
    src.metrics.verification_failures.increment(1);
    tracing::warn!(source = %src.id, scheme, reason = %failure, "request failed verification");
    src.verifier.unauthorized(headers).into_response()
}

/// Reads the whole body, refusing more than `limit` bytes without buffering them.
async fn read_body(
    mut body: axum::body::Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, SourceError> {
    let mut announced = None;
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        match len.to_str().ok().and_then(|s| s.parse::<u64>().ok()) {
            Some(n) if n > limit as u64 => return Err(SourceError::TooLarge { limit }),
            Some(n) => announced = usize::try_from(n).ok(),
            None => {
                return Err(SourceError::BadRequest(
                    "the Content-Length header is not a number".into(),
                ));
            }
        }
    }
    // A body that arrives in one chunk is kept as it is (no copy). One that arrives in several
    // is copied once into a buffer sized from Content-Length, each chunk freed as it is copied,
    // so a request never holds its body twice.
    let mut first: Option<Bytes> = None;
    let mut buf = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::debug!(error = %e, "request body could not be read");
            SourceError::BadRequest("the request body could not be read in full".into())
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let so_far = first.as_ref().map_or(0, Bytes::len) + buf.len();
        if so_far + data.len() > limit {
            return Err(SourceError::TooLarge { limit });
        }
        match first.take() {
            None if buf.is_empty() => first = Some(data),
            None => buf.extend_from_slice(&data),
            Some(f) => {
                buf.reserve(announced.unwrap_or(0).max(f.len() + data.len()));
                buf.extend_from_slice(&f);
                buf.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| buf.freeze()))
}

/// The single value of a header that must appear at most once.
pub(crate) fn single<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<&'a HeaderValue, Failure> {
    let mut it = headers.get_all(name).iter();
    match (it.next(), it.next()) {
        (None, _) => Err(Failure::Missing),
        (Some(v), None) => Ok(v),
        (Some(_), Some(_)) => Err(Failure::Repeated),
    }
}

/// Splits `Scheme credentials` with a case-insensitive scheme word (RFC 9110 §11.1).
pub(crate) fn auth_param<'a>(value: &'a HeaderValue, scheme: &str) -> Result<&'a [u8], Failure> {
    let v = value.as_bytes();
    let n = scheme.len();
    if v.len() <= n || !v[..n].eq_ignore_ascii_case(scheme.as_bytes()) || v[n] != b' ' {
        return Err(Failure::Malformed("wrong authorization scheme"));
    }
    let rest = v[n..].trim_ascii();
    if rest.is_empty() {
        return Err(Failure::Malformed("empty credentials"));
    }
    Ok(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_match_only_the_exact_secret() {
        let d = SecretDigests::new([b"alpha".as_slice(), b"beta".as_slice()]);
        assert!(d.matches(b"alpha"));
        assert!(d.matches(b"beta"));
        for wrong in [&b"alph"[..], b"alphaa", b"Alpha", b"", b"beta ", b"gamma"] {
            assert!(!d.matches(wrong), "{wrong:?}");
        }
        assert_eq!(format!("{d:?}"), "SecretDigests([2 redacted])");
    }

    #[test]
    fn auth_param_takes_the_scheme_word_in_any_case() {
        let ok = |s: &'static str| {
            auth_param(&HeaderValue::from_static(s), "Bearer").map(<[u8]>::to_vec)
        };
        assert_eq!(ok("Bearer abc").unwrap(), b"abc");
        assert_eq!(ok("bearer abc").unwrap(), b"abc");
        assert_eq!(ok("BEARER  abc").unwrap(), b"abc");
        assert!(ok("Bearerabc").is_err());
        assert!(ok("Basic abc").is_err());
        assert!(ok("Bearer ").is_err());
        assert!(ok("Bearer").is_err());
    }
}
