//! Request verification: proving a request came from the sender before its body is trusted,
//! and (for outbound delivery) signing what hookgate sends the way a receiver checks it.
//!
//! # Layout
//! - [`Verifier`]: one runtime value per source, built once from its `verify` block. Checking
//!   happens in two steps, so that nothing is read before the headers pass:
//!   [`Verifier::check_headers`], then [`Verifier::check_body`] over the exact bytes, which gives
//!   a [`VerifiedBody`]; nothing else can make one.
//! - one file per scheme: [`api_key`], [`basic`], [`bearer`], [`abp_signature`].
//!
//! Every failure is answered with the same 401 body ([`Verifier::unauthorized`]); the caller
//! logs the [`Failure`], which never holds the secret or the expected value.
//!
//! A leaf: it may call `config` (the `verify` block's types) and `http` (the 401 answer) only.

pub mod abp_signature;
pub mod api_key;
pub mod basic;
pub mod bearer;

use std::fmt;

use axum::response::Response;
use bytes::Bytes;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{Scheme, SchemeSettings, VerifySettings};
use crate::http::problem::problem;

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
        match &v.scheme {
            SchemeSettings::ApiKeyHeader(header) => Verifier::ApiKey(api_key::ApiKey::header(
                header
                    .as_deref()
                    .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                    .unwrap_or(HeaderName::from_static(api_key::DEFAULT_HEADER)),
                secrets(),
            )),
            SchemeSettings::ApiKeyCookie(cookie) => Verifier::ApiKey(api_key::ApiKey::cookie(
                cookie.clone().unwrap_or_default(),
                secrets(),
            )),
            SchemeSettings::Basic => Verifier::Basic(basic::Basic::new(secrets())),
            SchemeSettings::Bearer => Verifier::Bearer(bearer::Bearer::new(secrets())),
            SchemeSettings::AbpSignature => {
                Verifier::AbpSignature(abp_signature::AbpSignature::new(
                    v.secrets.iter().map(|s| s.expose_secret().as_bytes()),
                ))
            }
            SchemeSettings::None => Verifier::None,
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

    /// Checks what can be checked from the headers alone (all but body signatures), before
    /// the body is read.
    ///
    /// # Errors
    /// Why the request does not verify.
    pub fn check_headers(&self, headers: &HeaderMap) -> Result<HeadersChecked, Failure> {
        match self {
            Verifier::ApiKey(v) => v.verify(headers),
            Verifier::Basic(v) => v.verify(headers),
            Verifier::Bearer(v) => v.verify(headers),
            Verifier::AbpSignature(_) | Verifier::None => Ok(()),
        }
        .map(|()| HeadersChecked(()))
    }

    /// Checks a signature over the exact body bytes, for the schemes that sign the body, and
    /// hands the bytes on as verified.
    ///
    /// # Errors
    /// Why the request does not verify.
    pub fn check_body(
        &self,
        _: HeadersChecked,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<VerifiedBody, Failure> {
        match self {
            Verifier::AbpSignature(v) => v.verify(headers, &body)?,
            Verifier::ApiKey(_) | Verifier::Basic(_) | Verifier::Bearer(_) | Verifier::None => {}
        }
        Ok(VerifiedBody(body))
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
/// and only [`Verifier::check_body`] makes one.
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

/// Proof that a request's headers passed [`Verifier::check_headers`]; [`Verifier::check_body`]
/// takes it, so the body check cannot run without the header check.
#[derive(Debug)]
pub struct HeadersChecked(());

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
