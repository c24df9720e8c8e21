//! `abp_signature`: ASP.NET Boilerplate's `abp-webhook-signature: sha256=XX-XX-…`, the
//! HMAC-SHA256 of the exact body bytes keyed with the UTF-8 bytes of the subscription secret
//! (`whs_` prefix included), written by .NET's `BitConverter.ToString` as upper-case hex pairs
//! joined by `-`. Lower-case and undashed hex are accepted too.

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

use super::credential::{Failure, single};

/// The header ABP's `WebhookManager.SignWebhookRequest` sets.
pub const HEADER: &str = "abp-webhook-signature";
/// The only algorithm ABP writes.
const PREFIX: &[u8] = b"sha256=";

/// Verifies an ABP body signature against each configured secret.
#[derive(Clone)]
pub struct AbpSignature {
    /// One keyed HMAC state per secret, prepared once; each request clones it.
    keys: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for AbpSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AbpSignature([{} redacted])", self.keys.len())
    }
}

impl AbpSignature {
    /// Prepares the keys.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let keys = secrets
            .into_iter()
            .filter_map(|s| Hmac::<Sha256>::new_from_slice(s).ok())
            .collect();
        Self { keys }
    }

    /// Checks the signature header over `body`.
    ///
    /// # Errors
    /// Missing, repeated, malformed or non-matching signature.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), Failure> {
        let value = single(headers, &HeaderName::from_static(HEADER))?
            .as_bytes()
            .trim_ascii();
        let digest = parse_header(value)?;
        let matched = self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(body);
            mac.verify_slice(&digest).is_ok()
        });
        if matched {
            Ok(())
        } else {
            Err(Failure::Mismatch)
        }
    }
}

/// Parses `sha256=` + 32 bytes of hex, dashed in pairs or not, in either case.
fn parse_header(value: &[u8]) -> Result<[u8; 32], Failure> {
    let hex_part = match value.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => value.get(PREFIX.len()..).unwrap_or_default(),
        _ => return Err(Failure::Malformed("signature does not start with sha256=")),
    };
    let mut out = [0u8; 32];
    let undashed: Vec<u8>;
    let hex_bytes: &[u8] = if hex_part.contains(&b'-') {
        // `BitConverter.ToString`: pairs joined by single dashes, 32 * 3 - 1 characters.
        let well_formed = hex_part.len() == 95
            && hex_part
                .iter()
                .enumerate()
                .all(|(i, b)| (i % 3 == 2) == (*b == b'-'));
        if !well_formed {
            return Err(Failure::Malformed(
                "dashed signature is not 32 dash-separated hex pairs",
            ));
        }
        undashed = hex_part.iter().copied().filter(|b| *b != b'-').collect();
        &undashed
    } else {
        hex_part
    };
    hex::decode_to_slice(hex_bytes, &mut out)
        .map_err(|_| Failure::Malformed("signature is not 32 bytes of hex"))?;
    Ok(out)
}

/// Signs `body` as ABP does (for `hookgate sign` and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let pairs: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    format!("sha256={}", pairs.join("-"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    // docs/senders.md, ABP test vectors 1 and 2.
    const SECRET: &str = "whs_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b";
    const BODY_1: &str = include_str!("../../tests/fixtures/abp_body_1.json");
    const SIG_1: &str = "sha256=5E-02-C9-FE-C9-25-7D-71-76-F0-2D-59-A1-41-45-4F-3A-A1-B1-09-64-15-4A-D2-8D-8B-E3-F5-E6-F3-C5-7F";
    const BODY_2: &str = include_str!("../../tests/fixtures/abp_body_2.json");
    const SIG_2: &str = "sha256=EF-30-3B-98-AC-51-C1-F2-C1-94-5A-32-57-C4-36-91-40-49-7B-97-B3-9A-67-A3-F0-F8-56-91-DC-A7-98-5A";

    fn sig(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.append(
            HeaderName::from_static(HEADER),
            HeaderValue::from_str(v).unwrap(),
        );
        h
    }

    fn verifier(secrets: &[&str]) -> AbpSignature {
        AbpSignature::new(secrets.iter().map(|s| s.as_bytes()))
    }

    #[test]
    fn the_protocol_vectors_verify_and_sign_alike() {
        assert_eq!(BODY_1.len(), 210);
        assert_eq!(BODY_2.len(), 195);
        let v = verifier(&[SECRET]);
        assert_eq!(v.verify(&sig(SIG_1), BODY_1.as_bytes()), Ok(()));
        assert_eq!(v.verify(&sig(SIG_2), BODY_2.as_bytes()), Ok(()));
        assert_eq!(sign(SECRET.as_bytes(), BODY_1.as_bytes()), SIG_1);
        assert_eq!(sign(SECRET.as_bytes(), BODY_2.as_bytes()), SIG_2);
    }

    #[test]
    fn lower_case_and_undashed_hex_are_accepted() {
        let v = verifier(&[SECRET]);
        let lower = SIG_1.to_ascii_lowercase();
        let undashed = SIG_1.replace('-', "");
        let both = undashed.to_ascii_lowercase();
        for s in [&lower, &undashed, &both, &SIG_1.replace("sha256", "SHA256")] {
            assert_eq!(v.verify(&sig(s), BODY_1.as_bytes()), Ok(()), "{s}");
        }
    }

    #[test]
    fn a_rotated_secret_list_accepts_either_secret() {
        let v = verifier(&["whs_new", SECRET]);
        assert_eq!(v.verify(&sig(SIG_1), BODY_1.as_bytes()), Ok(()));
        assert_eq!(
            v.verify(
                &sig(&sign(b"whs_new", BODY_1.as_bytes())),
                BODY_1.as_bytes()
            ),
            Ok(())
        );
    }

    #[test]
    fn tampered_bodies_fail() {
        let v = verifier(&[SECRET]);
        let tampered = [
            BODY_1.replace("john.doe@", "jane.doe@"),
            BODY_1.replace("\"Attempt\":1", "\"Attempt\":2"),
            format!("{BODY_1}\n"),
            format!(" {BODY_1}"),
            BODY_1.replace(':', ": "),
            BODY_2.replace("zoë", "zoe"),
            String::new(),
        ];
        for body in &tampered {
            assert_eq!(
                v.verify(&sig(SIG_1), body.as_bytes()),
                Err(Failure::Mismatch),
                "{body}"
            );
        }
    }

    #[test]
    fn wrong_and_near_miss_secrets_fail() {
        for secret in [
            "whs_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3c",
            "3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b",
            "WHS_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b",
            "whs_3f2a9c4e7b1d4e8a9f0c6b5d2e1a7c3b ",
        ] {
            assert_eq!(
                verifier(&[secret]).verify(&sig(SIG_1), BODY_1.as_bytes()),
                Err(Failure::Mismatch),
                "{secret}"
            );
        }
    }

    #[test]
    fn wrong_prefixes_and_encodings_fail() {
        let v = verifier(&[SECRET]);
        let dashed_hex = SIG_1.trim_start_matches("sha256=");
        let bytes = hex::decode(dashed_hex.replace('-', "")).unwrap();
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
        let cases = [
            (dashed_hex.to_string(), "no prefix"),
            (format!("sha1={dashed_hex}"), "other algorithm"),
            (format!("sha256:{dashed_hex}"), "colon instead of ="),
            (format!("sha256={b64}"), "base64"),
            (format!("sha256={}", &dashed_hex[..92]), "one byte short"),
            (format!("sha256={dashed_hex}-00"), "one byte long"),
            (
                format!("sha256={}", dashed_hex.replacen('-', "", 1)),
                "a dash missing",
            ),
            (format!("sha256={}", dashed_hex.replace('-', ":")), "colons"),
            (
                format!("sha256={}", dashed_hex.replace('E', "G")),
                "not hex",
            ),
            ("sha256=".to_string(), "empty"),
        ];
        for (value, case) in cases {
            assert!(
                matches!(
                    v.verify(&sig(&value), BODY_1.as_bytes()),
                    Err(Failure::Malformed(_))
                ),
                "{case}: {value}"
            );
        }
        let flipped = SIG_1.replace("5E-02", "5E-03");
        assert_eq!(
            v.verify(&sig(&flipped), BODY_1.as_bytes()),
            Err(Failure::Mismatch)
        );
        assert_eq!(
            v.verify(&HeaderMap::new(), BODY_1.as_bytes()),
            Err(Failure::Missing)
        );
        let mut twice = sig(SIG_1);
        twice.append(
            HeaderName::from_static(HEADER),
            HeaderValue::from_static(SIG_1),
        );
        assert_eq!(v.verify(&twice, BODY_1.as_bytes()), Err(Failure::Repeated));
    }
}
