//! The signature headers of an outgoing request, by the destination's `sign` scheme, made with
//! the same code that checks them on receipt (`verify::standard_webhooks`,
//! `verify::abp_signature`, `verify::hmac`).
//!
//! Secrets are exposed only here, at the point of use, and never end up in a log or an error.

use http::{HeaderName, HeaderValue};
use secrecy::ExposeSecret;

use crate::config::destinations::Signing;
use crate::verify::hmac::{self, SignedTemplate};
use crate::verify::{abp_signature, standard_webhooks};

/// The headers that sign `body` for `signing`: none for [`Signing::None`]; `webhook-id`,
/// `webhook-timestamp` and `webhook-signature` (one `v1,` entry per key, joined by a space) for
/// Standard Webhooks; `abp-webhook-signature` for ABP; the configured header for `hmac`.
///
/// `event_id` is the id that stays the same on every attempt; `timestamp` is this attempt's Unix
/// seconds. A value that cannot be a header value (an `hmac` prefix with a line break: refused
/// when the sender is built) is left out rather than sent wrong.
pub fn signature_headers(
    signing: &Signing,
    event_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Vec<(HeaderName, HeaderValue)> {
    let mut out = Vec::new();
    match signing {
        Signing::None => {}
        Signing::StandardWebhooks { keys } => {
            let signature = keys
                .iter()
                .map(|key| standard_webhooks::sign(key.expose_secret(), event_id, timestamp, body))
                .collect::<Vec<_>>()
                .join(" ");
            push(&mut out, standard_webhooks::ID_HEADER, event_id);
            push(
                &mut out,
                standard_webhooks::TIMESTAMP_HEADER,
                &timestamp.to_string(),
            );
            push(&mut out, standard_webhooks::SIGNATURE_HEADER, &signature);
        }
        Signing::AbpSignature { secret } => {
            let signature = abp_signature::sign(secret.expose_secret().as_bytes(), body);
            push(&mut out, abp_signature::HEADER, &signature);
        }
        Signing::Hmac {
            header,
            algorithm,
            encoding,
            prefix,
            secret,
        } => {
            let signature = hmac::sign(
                *algorithm,
                *encoding,
                prefix,
                &SignedTemplate::default(),
                secret.expose_secret().as_bytes(),
                "",
                body,
            );
            if let Ok(mut value) = HeaderValue::from_str(&signature) {
                value.set_sensitive(true);
                out.push((header.clone(), value));
            }
        }
    }
    out
}

/// Adds `name: value` when `value` is a valid header value; signature values are marked
/// sensitive so that no layer logs them.
fn push(out: &mut Vec<(HeaderName, HeaderValue)>, name: &'static str, value: &str) {
    if let Ok(mut value) = HeaderValue::from_str(value) {
        value.set_sensitive(true);
        out.push((HeaderName::from_static(name), value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::destinations::{Encoding, HmacAlgorithm};
    use secrecy::{SecretSlice, SecretString};

    fn keys(hex_keys: &[&str]) -> Signing {
        Signing::StandardWebhooks {
            keys: hex_keys
                .iter()
                .map(|k| SecretSlice::from(hex::decode(k).unwrap()))
                .collect(),
        }
    }

    fn value<'a>(headers: &'a [(HeaderName, HeaderValue)], name: &str) -> &'a str {
        let found: Vec<_> = headers.iter().filter(|(n, _)| n == name).collect();
        assert_eq!(found.len(), 1, "{name} in {headers:?}");
        found[0].1.to_str().unwrap()
    }

    #[test]
    fn none_adds_nothing() {
        assert!(signature_headers(&Signing::None, "id", 1, b"{}").is_empty());
    }

    #[test]
    fn standard_webhooks_matches_the_official_vectors() {
        // PROTOCOLS.md §5.4.
        let cases = [
            (
                "31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#,
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
            (
                "0b6155b0140886bb1c0a195020c57e6f9b1262ca686fba03",
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1_649_367_553,
                r#"{"email":"test@example.com","username":"test_user"}"#,
                "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            ),
        ];
        for (key, id, ts, body, expected) in cases {
            let h = signature_headers(&keys(&[key]), id, ts, body.as_bytes());
            assert_eq!(h.len(), 3);
            assert_eq!(value(&h, "webhook-id"), id);
            assert_eq!(value(&h, "webhook-timestamp"), ts.to_string());
            assert_eq!(value(&h, "webhook-signature"), expected);
        }
    }

    #[test]
    fn standard_webhooks_signs_with_every_key_of_a_rotation() {
        // PROTOCOLS.md §6.3: keys 00..1f and ff..e0.
        let old: String = (0u8..32).map(|b| format!("{b:02x}")).collect();
        let new: String = (0u8..32).map(|b| format!("{:02x}", 0xff - b)).collect();
        let body = br#"{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}"#;
        assert_eq!(body.len(), 121);
        let h = signature_headers(
            &keys(&[&new, &old]),
            "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
            1_674_087_231,
            body,
        );
        assert_eq!(
            value(&h, "webhook-signature"),
            "v1,fxW6Ku2XZ4nIXns+MZghA06ndMdorgp9w1kDUBcSB7Q= \
             v1,4PMU5Dl90B4kgwxDpwuMZ/cnZ5ztf+Y+kviYQD66rJg="
        );
        // Either key alone accepts the header carrying both.
        for key in [&old, &new] {
            let k = hex::decode(key).unwrap();
            assert_eq!(
                standard_webhooks::verify(
                    [k.as_slice()],
                    "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W",
                    1_674_087_231,
                    body,
                    value(&h, "webhook-signature").as_bytes()
                ),
                Ok(())
            );
        }
    }

    #[test]
    fn abp_signature_matches_the_protocol_vector() {
        // PROTOCOLS.md §6.1 (the vector of verify::abp_signature's tests).
        let body = include_bytes!("../../tests/fixtures/abp_body_1.json");
        let signing = Signing::AbpSignature {
            secret: SecretString::from("whs_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b"),
        };
        let h = signature_headers(&signing, "ignored", 0, body);
        assert_eq!(h.len(), 1);
        assert_eq!(
            value(&h, "abp-webhook-signature"),
            "sha256=5E-02-C9-FE-C9-25-7D-71-76-F0-2D-59-A1-41-45-4F-3A-A1-B1-09-64-15-4A-D2-8D-8B-E3-F5-E6-F3-C5-7F"
        );
    }

    fn hmac_signing(algorithm: HmacAlgorithm, encoding: Encoding, prefix: &str) -> Signing {
        Signing::Hmac {
            header: HeaderName::from_static("x-hub-signature-256"),
            algorithm,
            encoding,
            prefix: prefix.to_string(),
            secret: SecretString::from("It's a Secret to Everybody"),
        }
    }

    #[test]
    fn hmac_matches_values_computed_with_openssl() {
        // GitHub's documented example, each expected value made on 2026-12-01 with
        //   printf '%s' 'Hello, World!' | openssl dgst -sha256 -hmac "It's a Secret to Everybody"
        // (-sha1 for SHA-1; -sha512 -binary | base64 -w0 for the base64 SHA-512).
        let body = b"Hello, World!";
        let cases = [
            (
                HmacAlgorithm::Sha256,
                Encoding::Hex,
                "sha256=",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            ),
            (
                HmacAlgorithm::Sha1,
                Encoding::Hex,
                "sha1=",
                "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59",
            ),
            (
                HmacAlgorithm::Sha512,
                Encoding::Base64,
                "",
                "Ee01WmF+mBNOhCASp5RMz1nBAlbLGCNXvX46QgE/8Hw3b4wUz1zBkj2iC1HWQlay+4678QCqZ6YTJvYf6oERvA==",
            ),
        ];
        for (algorithm, encoding, prefix, expected) in cases {
            let h = signature_headers(&hmac_signing(algorithm, encoding, prefix), "id", 0, body);
            assert_eq!(h.len(), 1, "{algorithm:?}");
            assert_eq!(value(&h, "X-Hub-Signature-256"), expected, "{algorithm:?}");
        }
    }

    #[test]
    fn signature_values_are_sensitive() {
        let h = signature_headers(
            &hmac_signing(HmacAlgorithm::Sha256, Encoding::Hex, "sha256="),
            "id",
            0,
            b"x",
        );
        assert!(h.iter().all(|(_, v)| v.is_sensitive()));
        assert_eq!(format!("{:?}", h[0].1), "Sensitive");
    }

    mod standard_webhooks_crate {
        //! Round trips with the `standardwebhooks` crate (the reference Rust library), which
        //! checks the timestamp against the clock (±5 minutes): hence the current time.
        use super::*;
        use standardwebhooks::Webhook;

        const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

        fn now() -> i64 {
            time::OffsetDateTime::now_utc().unix_timestamp()
        }

        fn our_keys() -> Signing {
            Signing::StandardWebhooks {
                keys: vec![SecretSlice::from(
                    crate::config::destinations::whsec_key(WHSEC).unwrap(),
                )],
            }
        }

        #[test]
        fn the_crate_accepts_what_we_sign() {
            let body = br#"{"type":"user.created","data":{"id":"zo\u00eb"}}"#;
            let mut headers = http::HeaderMap::new();
            for (name, value) in signature_headers(&our_keys(), "msg_hookgate_1", now(), body) {
                headers.append(name, value);
            }
            Webhook::new(WHSEC)
                .unwrap()
                .verify(body, &headers)
                .expect("standardwebhooks accepts hookgate's signature");
        }

        #[test]
        fn we_accept_what_the_crate_signs_and_refuse_a_tampered_body() {
            let body = br#"{"type":"user.created","data":{"id":"1"}}"#;
            let ts = now();
            let signature = Webhook::new(WHSEC)
                .unwrap()
                .sign("msg_crate_1", ts, body)
                .unwrap();
            let key = crate::config::destinations::whsec_key(WHSEC).unwrap();
            assert_eq!(
                standard_webhooks::verify(
                    [key.as_slice()],
                    "msg_crate_1",
                    ts,
                    body,
                    signature.as_bytes()
                ),
                Ok(())
            );
            let tampered = br#"{"type":"user.created","data":{"id":"2"}}"#;
            assert_eq!(
                standard_webhooks::verify(
                    [key.as_slice()],
                    "msg_crate_1",
                    ts,
                    tampered,
                    signature.as_bytes()
                ),
                Err(crate::verify::Failure::Mismatch)
            );
        }
    }
}
