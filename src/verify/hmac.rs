//! `hmac`: a signature in one header over the body, or over a template around it, as GitHub
//! (`X-Hub-Signature-256: sha256=<hex>`), Shopify (`X-Shopify-Hmac-Sha256: <base64>`), Slack
//! (`X-Slack-Signature: v0=<hex>` over `v0:{timestamp}:{body}`) and most SaaS senders sign.
//!
//! The key is the UTF-8 bytes of the configured secret, as those senders use theirs. The
//! signature is HMAC-SHA1, -SHA256 or -SHA512, written in hex (either case accepted) or standard
//! base64 (padding optional), after an optional `prefix` (matched without regard to ASCII case).
//! When the template signs a timestamp, the timestamp header must be an integer of Unix seconds
//! within the tolerance of now, in the past or the future, and its text as sent is what is
//! signed.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use super::credential::{Failure, single, timestamp};
pub use crate::config::SignedTemplate;
pub use crate::config::destinations::{Encoding, HmacAlgorithm};
use crate::config::{HmacSettings, SignedPart};

/// Standard base64, with or without its `=` padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A keyed HMAC state of one of the algorithms.
#[derive(Clone)]
enum Keyed {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl Keyed {
    /// `None` only in theory: HMAC takes keys of any length.
    fn new(algorithm: HmacAlgorithm, key: &[u8]) -> Option<Self> {
        Some(match algorithm {
            HmacAlgorithm::Sha1 => Keyed::Sha1(Hmac::new_from_slice(key).ok()?),
            HmacAlgorithm::Sha256 => Keyed::Sha256(Hmac::new_from_slice(key).ok()?),
            HmacAlgorithm::Sha512 => Keyed::Sha512(Hmac::new_from_slice(key).ok()?),
        })
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            Keyed::Sha1(m) => m.update(data),
            Keyed::Sha256(m) => m.update(data),
            Keyed::Sha512(m) => m.update(data),
        }
    }

    /// Constant-time comparison with `signature`.
    fn verify(self, signature: &[u8]) -> bool {
        match self {
            Keyed::Sha1(m) => m.verify_slice(signature).is_ok(),
            Keyed::Sha256(m) => m.verify_slice(signature).is_ok(),
            Keyed::Sha512(m) => m.verify_slice(signature).is_ok(),
        }
    }

    fn finalize(self) -> Vec<u8> {
        match self {
            Keyed::Sha1(m) => m.finalize().into_bytes().to_vec(),
            Keyed::Sha256(m) => m.finalize().into_bytes().to_vec(),
            Keyed::Sha512(m) => m.finalize().into_bytes().to_vec(),
        }
    }

    /// Feeds the template, with the body and the timestamp's text in their places (the body is
    /// never copied).
    fn feed(&mut self, template: &SignedTemplate, timestamp: &[u8], body: &[u8]) {
        for part in template.parts() {
            match part {
                SignedPart::Text(t) => self.update(t.as_bytes()),
                SignedPart::Body => self.update(body),
                SignedPart::Timestamp => self.update(timestamp),
            }
        }
    }
}

/// Bytes of the longest MAC (SHA-512).
const MAX_MAC: usize = 64;

/// Bytes of a MAC of `algorithm`.
fn mac_len(algorithm: HmacAlgorithm) -> usize {
    match algorithm {
        HmacAlgorithm::Sha1 => 20,
        HmacAlgorithm::Sha256 => 32,
        HmacAlgorithm::Sha512 => 64,
    }
}

/// The header value a sender signing `body` with `key` sends (for `hookgate sign` and tests);
/// `timestamp` is the text the template's `{timestamp}` stands for.
pub fn sign(
    algorithm: HmacAlgorithm,
    encoding: Encoding,
    prefix: &str,
    template: &SignedTemplate,
    key: &[u8],
    timestamp: &str,
    body: &[u8],
) -> String {
    let Some(mut mac) = Keyed::new(algorithm, key) else {
        return String::new();
    };
    mac.feed(template, timestamp.as_bytes(), body);
    let digest = mac.finalize();
    let encoded = match encoding {
        Encoding::Hex => hex::encode(digest),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(digest),
    };
    format!("{prefix}{encoded}")
}

/// `scheme: hmac`, receiving.
#[derive(Clone)]
pub struct HmacSignature {
    /// The header with the signature.
    header: HeaderName,
    /// The hash.
    algorithm: HmacAlgorithm,
    /// One keyed state per secret, prepared once; each request clones it.
    keys: Vec<Keyed>,
    /// How the signature is written.
    encoding: Encoding,
    /// Text before the signature.
    prefix: String,
    /// What is signed.
    template: SignedTemplate,
    /// The timestamp header and its tolerance in seconds, when the template signs one.
    timestamp: Option<(HeaderName, i64)>,
}

impl std::fmt::Debug for HmacSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacSignature")
            .field("header", &self.header)
            .field("algorithm", &self.algorithm)
            .field("keys", &format_args!("[{} redacted]", self.keys.len()))
            .field("encoding", &self.encoding)
            .field("prefix", &self.prefix)
            .field("template", &self.template)
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

impl HmacSignature {
    /// Prepares the keys of a (validated) `hmac` block; the secrets are the UTF-8 bytes of
    /// each configured string. `header` is the parsed `header` (validation refuses a block
    /// without a valid one).
    pub fn new<'a>(
        settings: &HmacSettings,
        header: HeaderName,
        secrets: impl IntoIterator<Item = &'a [u8]>,
    ) -> Self {
        let timestamp = settings
            .timestamp
            .as_ref()
            .filter(|_| settings.signed.uses_timestamp())
            .and_then(|t| {
                let name = HeaderName::from_bytes(t.header.as_bytes()).ok()?;
                Some((name, secs(t.tolerance())))
            });
        Self {
            header,
            algorithm: settings.algorithm,
            keys: secrets
                .into_iter()
                .filter_map(|k| Keyed::new(settings.algorithm, k))
                .collect(),
            encoding: settings.encoding,
            prefix: settings.prefix.clone(),
            template: settings.signed.clone(),
            timestamp,
        }
    }

    /// The header that carries the signature.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// What a request must carry, for a log line (names only).
    pub fn expects(&self) -> String {
        match &self.timestamp {
            Some((ts, _)) => format!("header {}: {}…, header {ts}", self.header, self.prefix),
            None => format!("header {}: {}…", self.header, self.prefix),
        }
    }

    /// The signature's bytes, decoded from the header into a buffer on the stack (no
    /// allocation per request): `(buffer, length)`.
    fn signature(&self, headers: &HeaderMap) -> Result<([u8; MAX_MAC], usize), Failure> {
        let value = single(headers, &self.header)?.as_bytes().trim_ascii();
        let encoded = match value.get(..self.prefix.len()) {
            Some(p) if p.eq_ignore_ascii_case(self.prefix.as_bytes()) => {
                value.get(self.prefix.len()..).unwrap_or_default()
            }
            _ => {
                return Err(Failure::Malformed(
                    "signature does not start with the configured prefix",
                ));
            }
        };
        let len = mac_len(self.algorithm);
        let mut buf = [0u8; MAX_MAC];
        let decoded = match (self.encoding, buf.get_mut(..len)) {
            (Encoding::Hex, Some(out)) => hex::decode_to_slice(encoded, out).is_ok(),
            // A decoded length other than the MAC's is refused below; one that does not fit the
            // buffer fails to decode.
            (Encoding::Base64, _) => BASE64.decode_slice(encoded, &mut buf) == Ok(len),
            (Encoding::Hex, None) => false,
        };
        if decoded {
            Ok((buf, len))
        } else {
            Err(Failure::Malformed(
                "signature is not a MAC of the configured algorithm and encoding",
            ))
        }
    }

    /// The timestamp's text as sent, checked against the tolerance (empty when none is signed).
    fn timestamp<'h>(&self, headers: &'h HeaderMap, now: i64) -> Result<&'h [u8], Failure> {
        match &self.timestamp {
            Some((name, tolerance)) => Ok(timestamp(headers, name, now, *tolerance)?.0),
            None => Ok(b""),
        }
    }

    /// What the headers alone tell, before the body is read: a well-formed signature, and the
    /// timestamp (if signed) within the tolerance of `now`.
    ///
    /// # Errors
    /// Missing, repeated or malformed headers; a timestamp outside the tolerance.
    pub fn check_headers(&self, headers: &HeaderMap, now: i64) -> Result<(), Failure> {
        self.signature(headers)?;
        self.timestamp(headers, now)?;
        Ok(())
    }

    /// The whole check: [`Self::check_headers`], then the MAC of the template over `body` with
    /// every key, each compared in constant time.
    ///
    /// # Errors
    /// As [`Self::check_headers`]; [`Failure::Mismatch`] when no key gives the signature.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Failure> {
        let (buf, len) = self.signature(headers)?;
        let signature = buf.get(..len).unwrap_or_default();
        let timestamp = self.timestamp(headers, now)?;
        let matched = self.keys.iter().fold(false, |matched, key| {
            let mut mac = key.clone();
            mac.feed(&self.template, timestamp, body);
            mac.verify(signature) | matched
        });
        if matched {
            Ok(())
        } else {
            Err(Failure::Mismatch)
        }
    }
}

/// A tolerance in whole seconds.
fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;
    use crate::config::TimestampSettings;

    /// GitHub's documented example ("Validating webhook deliveries", docs.github.com).
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_BODY: &str = "Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    /// Slack's documented example ("Verifying requests from Slack", api.slack.com): a slash
    /// command, form-encoded.
    const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const SLACK_TIMESTAMP: i64 = 1_531_420_618;
    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SLACK_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    /// Shopify documents the method (base64 of the HMAC-SHA256 of the raw body with the app's
    /// client secret, in `X-Shopify-Hmac-Sha256`) but no vector; this one is from python3:
    /// `base64.b64encode(hmac.new(secret, body, hashlib.sha256).digest())`.
    const SHOPIFY_SECRET: &str = "shpss_hookgate-test-secret-0001";
    const SHOPIFY_BODY: &str =
        r#"{"id":820982911946154508,"email":"jon@example.com","topic":"orders/create"}"#;
    const SHOPIFY_SIGNATURE: &str = "pRQWiqYM67ODS2BlGGNtu7zMqvyFoHMBdWLfOJldH2I=";

    fn settings(header: &str, prefix: &str, encoding: Encoding) -> HmacSettings {
        HmacSettings {
            header: Some(header.into()),
            algorithm: HmacAlgorithm::Sha256,
            encoding,
            prefix: prefix.into(),
            signed: SignedTemplate::default(),
            timestamp: None,
        }
    }

    fn verifier(s: &HmacSettings, secrets: &[&str]) -> HmacSignature {
        let header = HeaderName::from_bytes(s.header.as_deref().unwrap().as_bytes()).unwrap();
        HmacSignature::new(s, header, secrets.iter().map(|s| s.as_bytes()))
    }

    fn github() -> HmacSignature {
        verifier(
            &settings("X-Hub-Signature-256", "sha256=", Encoding::Hex),
            &[GITHUB_SECRET],
        )
    }

    fn slack(tolerance: Option<&str>) -> HmacSignature {
        let mut s = settings("X-Slack-Signature", "v0=", Encoding::Hex);
        s.signed = SignedTemplate::parse("v0:{timestamp}:{body}").unwrap();
        s.timestamp = Some(TimestampSettings {
            header: "X-Slack-Request-Timestamp".into(),
            tolerance: tolerance
                .map(|t| crate::config::HumanDuration(humantime::parse_duration(t).unwrap())),
        });
        verifier(&s, &[SLACK_SECRET])
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn githubs_documented_example_verifies_in_either_case() {
        let v = github();
        let body = GITHUB_BODY.as_bytes();
        let h = headers(&[("x-hub-signature-256", GITHUB_SIGNATURE)]);
        assert_eq!(v.verify(&h, body, 0), Ok(()));
        let upper = format!(
            "sha256={}",
            GITHUB_SIGNATURE["sha256=".len()..].to_ascii_uppercase()
        );
        assert_eq!(
            v.verify(&headers(&[("x-hub-signature-256", &upper)]), body, 0),
            Ok(())
        );
        assert_eq!(
            sign(
                HmacAlgorithm::Sha256,
                Encoding::Hex,
                "sha256=",
                &SignedTemplate::default(),
                GITHUB_SECRET.as_bytes(),
                "",
                body
            ),
            GITHUB_SIGNATURE
        );
        assert_eq!(v.verify(&h, b"Hello, World?", 0), Err(Failure::Mismatch));
        let other = verifier(
            &settings("X-Hub-Signature-256", "sha256=", Encoding::Hex),
            &["It's a Secret to Everybody!"],
        );
        assert_eq!(other.verify(&h, body, 0), Err(Failure::Mismatch));
    }

    #[test]
    fn slacks_documented_example_verifies_within_the_tolerance_only() {
        let v = slack(None);
        let ts = SLACK_TIMESTAMP.to_string();
        let h = headers(&[
            ("x-slack-signature", SLACK_SIGNATURE),
            ("x-slack-request-timestamp", &ts),
        ]);
        let body = SLACK_BODY.as_bytes();
        for now in [
            SLACK_TIMESTAMP,
            SLACK_TIMESTAMP + 300,
            SLACK_TIMESTAMP - 300,
        ] {
            assert_eq!(v.check_headers(&h, now), Ok(()), "now {now}");
            assert_eq!(v.verify(&h, body, now), Ok(()), "now {now}");
        }
        for now in [SLACK_TIMESTAMP + 301, SLACK_TIMESTAMP - 301] {
            assert_eq!(
                v.check_headers(&h, now),
                Err(Failure::OutsideTolerance),
                "now {now}"
            );
        }
        // A wider tolerance is configurable.
        assert_eq!(
            slack(Some("1h")).verify(&h, body, SLACK_TIMESTAMP + 3600),
            Ok(())
        );
        // The timestamp is signed: another one with the same signature fails.
        let moved = headers(&[
            ("x-slack-signature", SLACK_SIGNATURE),
            ("x-slack-request-timestamp", "1531420619"),
        ]);
        assert_eq!(
            v.verify(&moved, body, SLACK_TIMESTAMP),
            Err(Failure::Mismatch)
        );
        let mut template_body = String::from(SLACK_BODY);
        template_body.push('&');
        assert_eq!(
            v.verify(&h, template_body.as_bytes(), SLACK_TIMESTAMP),
            Err(Failure::Mismatch)
        );
        assert_eq!(
            sign(
                HmacAlgorithm::Sha256,
                Encoding::Hex,
                "v0=",
                &SignedTemplate::parse("v0:{timestamp}:{body}").unwrap(),
                SLACK_SECRET.as_bytes(),
                &ts,
                body
            ),
            SLACK_SIGNATURE
        );
    }

    #[test]
    fn a_missing_or_malformed_timestamp_fails() {
        let v = slack(None);
        let body = SLACK_BODY.as_bytes();
        let no_ts = headers(&[("x-slack-signature", SLACK_SIGNATURE)]);
        assert_eq!(
            v.verify(&no_ts, body, SLACK_TIMESTAMP),
            Err(Failure::Missing)
        );
        for bad in ["", "soon", "1531420618.5", "99999999999999999999"] {
            let h = headers(&[
                ("x-slack-signature", SLACK_SIGNATURE),
                ("x-slack-request-timestamp", bad),
            ]);
            assert!(
                matches!(
                    v.verify(&h, body, SLACK_TIMESTAMP),
                    Err(Failure::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn shopifys_method_verifies_base64_with_or_without_padding() {
        let v = verifier(
            &settings("X-Shopify-Hmac-Sha256", "", Encoding::Base64),
            &["an-older-secret-0000001", SHOPIFY_SECRET],
        );
        let body = SHOPIFY_BODY.as_bytes();
        for sig in [SHOPIFY_SIGNATURE, SHOPIFY_SIGNATURE.trim_end_matches('=')] {
            let h = headers(&[("x-shopify-hmac-sha256", sig)]);
            assert_eq!(v.verify(&h, body, 0), Ok(()), "{sig}");
        }
        assert_eq!(
            sign(
                HmacAlgorithm::Sha256,
                Encoding::Base64,
                "",
                &SignedTemplate::default(),
                SHOPIFY_SECRET.as_bytes(),
                "",
                body
            ),
            SHOPIFY_SIGNATURE
        );
        let hex = hex::encode(BASE64.decode(SHOPIFY_SIGNATURE).unwrap());
        assert!(matches!(
            v.verify(&headers(&[("x-shopify-hmac-sha256", &hex)]), body, 0),
            Err(Failure::Malformed(_))
        ));
    }

    #[test]
    fn every_algorithm_signs_and_verifies_and_refuses_another_length() {
        let body = br#"{"a":1}"#;
        for algorithm in [
            HmacAlgorithm::Sha1,
            HmacAlgorithm::Sha256,
            HmacAlgorithm::Sha512,
        ] {
            let mut s = settings("X-Sig", "", Encoding::Hex);
            s.algorithm = algorithm;
            let v = verifier(&s, &["a-secret-of-16-bytes"]);
            let template = SignedTemplate::default();
            let sig = sign(
                algorithm,
                Encoding::Hex,
                "",
                &template,
                b"a-secret-of-16-bytes",
                "",
                body,
            );
            assert_eq!(sig.len(), mac_len(algorithm) * 2);
            assert_eq!(v.verify(&headers(&[("x-sig", &sig)]), body, 0), Ok(()));
            let short = &sig[2..];
            assert!(matches!(
                v.verify(&headers(&[("x-sig", short)]), body, 0),
                Err(Failure::Malformed(_))
            ));
        }
    }

    #[test]
    fn prefix_count_and_encoding_problems_are_named() {
        let v = github();
        let body = GITHUB_BODY.as_bytes();
        let bare = &GITHUB_SIGNATURE["sha256=".len()..];
        assert!(matches!(
            v.verify(&headers(&[("x-hub-signature-256", bare)]), body, 0),
            Err(Failure::Malformed(_))
        ));
        let sha1 = format!("sha1={bare}");
        assert!(matches!(
            v.verify(&headers(&[("x-hub-signature-256", &sha1)]), body, 0),
            Err(Failure::Malformed(_))
        ));
        assert_eq!(v.verify(&HeaderMap::new(), body, 0), Err(Failure::Missing));
        let twice = headers(&[
            ("x-hub-signature-256", GITHUB_SIGNATURE),
            ("x-hub-signature-256", GITHUB_SIGNATURE),
        ]);
        assert_eq!(v.verify(&twice, body, 0), Err(Failure::Repeated));
        let upper_prefix = GITHUB_SIGNATURE.replace("sha256=", "SHA256=");
        assert_eq!(
            v.verify(&headers(&[("x-hub-signature-256", &upper_prefix)]), body, 0),
            Ok(())
        );
        assert!(!format!("{v:?}").contains(GITHUB_SECRET));
    }
}
