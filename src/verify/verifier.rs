//! [`Verifier`]: the runtime verifier of one source, built from its `verify` block, and the
//! two-step check that makes a [`VerifiedBody`].

use axum::response::Response;
use bytes::Bytes;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use secrecy::ExposeSecret;

use super::credential::{Failure, SecretDigests, unix_now};
use super::{abp_signature, api_key, basic, bearer, hmac, standard_webhooks};
use crate::config::{Scheme, SchemeSettings, VerifySettings, standard_webhooks_key};
use crate::http::problem::problem;

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
    /// Standard Webhooks' `v1` signature and timestamp.
    StandardWebhooks(standard_webhooks::StandardWebhooks),
    /// An HMAC in a header, over the body or a template around it.
    Hmac(hmac::HmacSignature),
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
            SchemeSettings::StandardWebhooks { tolerance } => {
                // Validation refuses a secret that gives no key.
                let keys: Vec<Vec<u8>> = v
                    .secrets
                    .iter()
                    .filter_map(|s| standard_webhooks_key(s.expose_secret()).ok())
                    .collect();
                Verifier::StandardWebhooks(standard_webhooks::StandardWebhooks::new(
                    keys.iter().map(Vec::as_slice),
                    *tolerance,
                ))
            }
            SchemeSettings::Hmac(h) => Verifier::Hmac(hmac::HmacSignature::new(
                h,
                // Validation refuses a block without a valid header name; this stand-in is
                // never reached from a checked configuration.
                h.header
                    .as_deref()
                    .and_then(|name| HeaderName::from_bytes(name.as_bytes()).ok())
                    .unwrap_or(HeaderName::from_static("x-signature")),
                v.secrets.iter().map(|s| s.expose_secret().as_bytes()),
            )),
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
            Verifier::StandardWebhooks(_) => Scheme::StandardWebhooks.as_str(),
            Verifier::Hmac(_) => Scheme::Hmac.as_str(),
            Verifier::None => Scheme::None.as_str(),
        }
    }

    /// What a request must carry, for the log line of a failure (names only, never a value):
    /// `header x-api-key`, `cookie hook_key`, `header Authorization: Bearer …`.
    pub fn expects(&self) -> String {
        match self {
            Verifier::ApiKey(v) => v.expects(),
            Verifier::Basic(_) => "header Authorization: Basic …".into(),
            Verifier::Bearer(_) => "header Authorization: Bearer …".into(),
            Verifier::AbpSignature(_) => {
                format!("header {}: sha256=…", abp_signature::HEADER)
            }
            Verifier::StandardWebhooks(_) => format!(
                "headers {}, {}, {}: v1,…",
                standard_webhooks::ID_HEADER,
                standard_webhooks::TIMESTAMP_HEADER,
                standard_webhooks::SIGNATURE_HEADER
            ),
            Verifier::Hmac(v) => v.expects(),
            Verifier::None => "nothing".into(),
        }
    }

    /// Checks what can be checked from the headers alone (all but body signatures: presence,
    /// format, signed timestamps), before the body is read.
    ///
    /// # Errors
    /// Why the request does not verify.
    pub fn check_headers(&self, headers: &HeaderMap) -> Result<HeadersChecked, Failure> {
        match self {
            Verifier::ApiKey(v) => v.verify(headers),
            Verifier::Basic(v) => v.verify(headers),
            Verifier::Bearer(v) => v.verify(headers),
            Verifier::StandardWebhooks(v) => v.check_headers(headers, unix_now()),
            Verifier::Hmac(v) => v.check_headers(headers, unix_now()),
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
            Verifier::StandardWebhooks(v) => v.verify(headers, &body, unix_now())?,
            Verifier::Hmac(v) => v.verify(headers, &body, unix_now())?,
            Verifier::ApiKey(_) | Verifier::Basic(_) | Verifier::Bearer(_) | Verifier::None => {}
        }
        Ok(VerifiedBody(body))
    }

    /// The header that carries this scheme's credential, never to be stored or logged.
    pub fn credential_header(&self) -> Option<HeaderName> {
        match self {
            Verifier::ApiKey(v) => v.header_name().cloned(),
            Verifier::AbpSignature(_) => Some(HeaderName::from_static(abp_signature::HEADER)),
            Verifier::StandardWebhooks(_) => {
                Some(HeaderName::from_static(standard_webhooks::SIGNATURE_HEADER))
            }
            Verifier::Hmac(v) => Some(v.header().clone()),
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
