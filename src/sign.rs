//! `hookgate sign`: the headers a sender would send with a body, for curl and tests.

use base64::Engine as _;

use crate::verify::abp_signature;

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
}

/// The headers, in order, as `(name, value)` pairs.
pub fn headers(
    scheme: SignScheme,
    secret: &str,
    body: &[u8],
    header: &str,
    cookie: Option<&str>,
) -> Vec<(String, String)> {
    let mut out = vec![("Content-Type".to_string(), "application/json".to_string())];
    match scheme {
        SignScheme::ApiKey => match cookie {
            Some(name) => out.push(("Cookie".into(), format!("{name}={secret}"))),
            None => out.push((header.to_string(), secret.to_string())),
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
    }
    out
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
}
