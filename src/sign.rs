//! `hookgate sign`: the headers a sender would send with a body, for curl and tests.

use base64::Engine as _;

pub use crate::verify::hmac::SignedTemplate;
use crate::verify::hmac::{self, Encoding, HmacAlgorithm};
use crate::verify::{abp_signature, standard_webhooks};

/// Schemes `hookgate sign` can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum SignScheme {
    /// `X-Api-Key: <secret>` (or `--header`, or a cookie with `--cookie`).
    ApiKey,
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// `Authorization: Basic base64(<secret>)`, the secret being `user:password`.
    Basic,
    /// `abp-webhook-signature: sha256=XX-XX-…` over the body.
    AbpSignature,
    /// `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,…` (the secret is `whsec_…`).
    StandardWebhooks,
    /// An HMAC of the body (or of `--signed`) in `--header`.
    Hmac,
}

/// What a scheme may take besides the secret and the body.
#[derive(Debug, Clone, Default)]
pub struct SignOptions {
    /// `api_key`: the header name (default `X-Api-Key`); `hmac`: the signature header (required).
    pub header: Option<String>,
    /// `api_key`: send the key in this cookie instead.
    pub cookie: Option<String>,
    /// `standard_webhooks`: the `webhook-id` (default: a fresh `msg_…` id).
    pub id: Option<String>,
    /// `standard_webhooks`, and `hmac` templates with `{timestamp}`: Unix seconds (default: now).
    pub timestamp: Option<i64>,
    /// `hmac`: the hash (default sha256).
    pub algorithm: Option<HmacAlgorithm>,
    /// `hmac`: how the MAC is written (default hex).
    pub encoding: Option<Encoding>,
    /// `hmac`: text before the MAC.
    pub prefix: String,
    /// `hmac`: what is signed (default `{body}`).
    pub signed: Option<SignedTemplate>,
    /// `hmac` templates with `{timestamp}`: the header that carries it.
    pub timestamp_header: Option<String>,
}

/// Reads `--algorithm`.
///
/// # Errors
/// A name that is not sha1, sha256 or sha512.
pub fn algorithm(name: &str) -> Result<HmacAlgorithm, String> {
    match name {
        "sha1" => Ok(HmacAlgorithm::Sha1),
        "sha256" => Ok(HmacAlgorithm::Sha256),
        "sha512" => Ok(HmacAlgorithm::Sha512),
        other => Err(format!(
            "`{other}` is not an algorithm: sha1, sha256 or sha512"
        )),
    }
}

/// Reads `--encoding`.
///
/// # Errors
/// A name that is not hex or base64.
pub fn encoding(name: &str) -> Result<Encoding, String> {
    match name {
        "hex" => Ok(Encoding::Hex),
        "base64" => Ok(Encoding::Base64),
        other => Err(format!("`{other}` is not an encoding: hex or base64")),
    }
}

/// The headers, in order, as `(name, value)` pairs, for the schemes that need no options
/// beyond a header name or cookie. `standard_webhooks` signs with a fresh id and now (and makes
/// no signature when the secret gives no key: [`headers_with`] says why); `hmac` is HMAC-SHA256
/// in hex over the body, in `header`.
pub fn headers(
    scheme: SignScheme,
    secret: &str,
    body: &[u8],
    header: &str,
    cookie: Option<&str>,
) -> Vec<(String, String)> {
    let options = SignOptions {
        header: Some(header.to_string()),
        cookie: cookie.map(str::to_string),
        ..SignOptions::default()
    };
    match headers_with(scheme, secret, body, &options) {
        Ok(h) => h,
        Err(_) => vec![("Content-Type".to_string(), "application/json".to_string())],
    }
}

/// The headers, in order, as `(name, value)` pairs.
///
/// # Errors
/// A `standard_webhooks` secret that gives no key, an `hmac` without `header`, or a template with
/// `{timestamp}` without `timestamp_header`; never quoting the secret.
pub fn headers_with(
    scheme: SignScheme,
    secret: &str,
    body: &[u8],
    o: &SignOptions,
) -> Result<Vec<(String, String)>, String> {
    let mut out = vec![("Content-Type".to_string(), "application/json".to_string())];
    let now = || {
        o.timestamp
            .unwrap_or_else(crate::verify::credential::unix_now)
    };
    match scheme {
        SignScheme::ApiKey => match &o.cookie {
            Some(name) => out.push(("Cookie".into(), format!("{name}={secret}"))),
            None => out.push((
                o.header.clone().unwrap_or_else(|| "X-Api-Key".into()),
                secret.to_string(),
            )),
        },
        SignScheme::Bearer => out.push(("Authorization".into(), format!("Bearer {secret}"))),
        SignScheme::Basic => out.push((
            "Authorization".into(),
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(secret)
            ),
        )),
        SignScheme::AbpSignature => {
            out.push((
                abp_signature::HEADER.into(),
                abp_signature::sign(secret.as_bytes(), body),
            ));
        }
        SignScheme::StandardWebhooks => {
            let key =
                standard_webhooks::secret_key(secret).map_err(|why| format!("the secret {why}"))?;
            let id =
                o.id.clone()
                    .unwrap_or_else(|| format!("msg_{}", uuid::Uuid::new_v4().simple()));
            let ts = now();
            out.push((standard_webhooks::ID_HEADER.into(), id.clone()));
            out.push((standard_webhooks::TIMESTAMP_HEADER.into(), ts.to_string()));
            out.push((
                standard_webhooks::SIGNATURE_HEADER.into(),
                standard_webhooks::sign(&key, &id, ts, body),
            ));
        }
        SignScheme::Hmac => {
            let header = o
                .header
                .clone()
                .ok_or("`hmac` needs --header, the header that carries the signature")?;
            let template = o.signed.clone().unwrap_or_default();
            let timestamp = if template.uses_timestamp() {
                let name = o.timestamp_header.clone().ok_or(
                    "the template signs {timestamp}: give --timestamp-header, the header that \
                     carries it",
                )?;
                let ts = now().to_string();
                out.push((name, ts.clone()));
                ts
            } else {
                String::new()
            };
            let signature = hmac::sign(
                o.algorithm.unwrap_or(HmacAlgorithm::Sha256),
                o.encoding.unwrap_or(Encoding::Hex),
                &o.prefix,
                &template,
                secret.as_bytes(),
                &timestamp,
                body,
            );
            out.push((header, signature));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abp_headers_match_the_protocol_vector() {
        let body = include_bytes!("../tests/fixtures/abp_body_1.json");
        let h = headers(
            SignScheme::AbpSignature,
            "whs_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b",
            body,
            "X-Api-Key",
            None,
        );
        assert_eq!(h[1].0, "abp-webhook-signature");
        assert_eq!(
            h[1].1,
            "sha256=5E-02-C9-FE-C9-25-7D-71-76-F0-2D-59-A1-41-45-4F-3A-A1-B1-09-64-15-4A-D2-8D-8B-E3-F5-E6-F3-C5-7F"
        );
    }

    #[test]
    fn header_schemes_carry_the_secret_where_the_sender_would() {
        assert_eq!(
            headers(SignScheme::Bearer, "t", b"", "X-Api-Key", None)[1],
            ("Authorization".into(), "Bearer t".into())
        );
        assert_eq!(
            headers(SignScheme::Basic, "u:p", b"", "X-Api-Key", None)[1].1,
            "Basic dTpw"
        );
        assert_eq!(
            headers(SignScheme::ApiKey, "k", b"", "X-Hook-Key", None)[1],
            ("X-Hook-Key".into(), "k".into())
        );
        assert_eq!(
            headers(SignScheme::ApiKey, "k", b"", "X-Api-Key", Some("c"))[1],
            ("Cookie".into(), "c=k".into())
        );
    }

    #[test]
    fn standard_webhooks_headers_match_the_official_vector() {
        // PROTOCOLS.md §5.4, the Python/Go libraries' vector.
        let o = SignOptions {
            id: Some("msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
            timestamp: Some(1_614_265_330),
            ..SignOptions::default()
        };
        let h = headers_with(
            SignScheme::StandardWebhooks,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            br#"{"test": 2432232314}"#,
            &o,
        )
        .unwrap();
        assert_eq!(
            h[1..],
            [
                ("webhook-id".into(), "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
                ("webhook-timestamp".into(), "1614265330".into()),
                (
                    "webhook-signature".into(),
                    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into()
                ),
            ]
        );
        // Without --id and --timestamp: a fresh id and now.
        let h = headers_with(
            SignScheme::StandardWebhooks,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            b"{}",
            &SignOptions::default(),
        )
        .unwrap();
        assert!(h[1].1.starts_with("msg_") && h[1].1.len() > 20, "{h:?}");
        let ts: i64 = h[2].1.parse().unwrap();
        assert!((ts - crate::verify::credential::unix_now()).abs() < 5);
        let e = headers_with(
            SignScheme::StandardWebhooks,
            "whsec_not base64 sekrit",
            b"{}",
            &SignOptions::default(),
        )
        .unwrap_err();
        assert!(e.contains("not `whsec_` followed by base64") && !e.contains("sekrit"));
    }

    #[test]
    fn hmac_headers_match_slacks_documented_example() {
        let o = SignOptions {
            header: Some("X-Slack-Signature".into()),
            timestamp: Some(1_531_420_618),
            prefix: "v0=".into(),
            signed: Some(SignedTemplate::parse("v0:{timestamp}:{body}").unwrap()),
            timestamp_header: Some("X-Slack-Request-Timestamp".into()),
            ..SignOptions::default()
        };
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let h = headers_with(
            SignScheme::Hmac,
            "8f742231b10e8888abcd99yyyzzz85a5",
            body.as_bytes(),
            &o,
        )
        .unwrap();
        assert_eq!(
            h[1..],
            [
                ("X-Slack-Request-Timestamp".into(), "1531420618".into()),
                (
                    "X-Slack-Signature".into(),
                    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503".into()
                ),
            ]
        );
        let mut no_ts = o.clone();
        no_ts.timestamp_header = None;
        assert!(headers_with(SignScheme::Hmac, "s", b"", &no_ts).is_err());
        assert!(headers_with(SignScheme::Hmac, "s", b"", &SignOptions::default()).is_err());
        assert!(algorithm("md5").is_err() && encoding("base32").is_err());
    }
}
