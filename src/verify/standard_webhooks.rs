//! `standard_webhooks`: Standard Webhooks' `v1` signature (PROTOCOLS.md §5): the standard
//! base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the bytes
//! after `whsec_` (decoded), written `v1,<base64>` in `webhook-signature`, one entry per key,
//! joined by spaces. Delivery signs with [`sign`]; receiving checks with [`verify`].
//!
//! [`StandardWebhooks`] is the receiving scheme: the three headers, the timestamp within the
//! tolerance (both ways), and any `v1` entry matching any configured key.
//!
//! Both work on the body's bytes as they are: nothing is re-serialized, and the body need not be
//! UTF-8.

use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName};
use sha2::Sha256;

use super::credential::{Failure, single, timestamp};
/// The key of a `whsec_…` secret (prefix and padding optional), as the receiving scheme reads it.
pub use crate::config::standard_webhooks_key as secret_key;

/// The header with the message id (the same on every attempt).
pub const ID_HEADER: &str = "webhook-id";
/// The header with the Unix seconds of this attempt.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header with the space-separated signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// The version tag of an HMAC-SHA256 signature (`v1a` is ed25519, which is not implemented).
const V1: &str = "v1,";
/// Bytes of an HMAC-SHA256.
const MAC_BYTES: usize = 32;

/// A keyed HMAC state, ready to sign.
fn keyed(key: &[u8]) -> Option<Hmac<Sha256>> {
    // HMAC takes keys of any length, so this only fails in theory.
    Hmac::<Sha256>::new_from_slice(key).ok()
}

/// `mac` fed the signed content `{id}.{timestamp}.{body}`, in pieces so that the body is never
/// copied.
fn signed(mut mac: Hmac<Sha256>, id: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    mac.update(id);
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `v1,<base64>` signature of `body` with one key (a `webhook-signature` entry).
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let digest = keyed(key)
        .map(|m| {
            signed(m, id.as_bytes(), timestamp, body)
                .finalize()
                .into_bytes()
                .to_vec()
        })
        .unwrap_or_default();
    format!(
        "{V1}{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Checks a `webhook-signature` header value against every key: it passes when any `v1` entry
/// is the signature of `body` with any key. Entries of other versions (`v1a`) are skipped, as
/// the reference libraries do. The timestamp's tolerance is the caller's to check.
///
/// # Errors
/// [`Failure::Malformed`] when the value holds no well-formed `v1` entry; [`Failure::Mismatch`]
/// when none matches.
pub fn verify<'a>(
    keys: impl IntoIterator<Item = &'a [u8]>,
    id: &str,
    timestamp: i64,
    body: &[u8],
    header: &[u8],
) -> Result<(), Failure> {
    check(
        keys.into_iter().filter_map(keyed),
        id.as_bytes(),
        timestamp,
        body,
        header,
    )
}

/// [`verify`] with keyed states. Every entry is compared with every key, each comparison in
/// constant time, and none is skipped once one matched: the time taken says nothing about
/// which key or entry matched.
fn check(
    keys: impl Iterator<Item = Hmac<Sha256>>,
    id: &[u8],
    timestamp: i64,
    body: &[u8],
    header: &[u8],
) -> Result<(), Failure> {
    let signatures: Vec<Vec<u8>> = header
        .split(|b| *b == b' ')
        .filter_map(|entry| entry.strip_prefix(V1.as_bytes()))
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .filter(|sig| sig.len() == MAC_BYTES)
        .collect();
    if signatures.is_empty() {
        return Err(Failure::Malformed("no v1,<base64 HMAC-SHA256> signature"));
    }
    let matched = keys.fold(false, |matched, key| {
        let mac = signed(key, id, timestamp, body);
        signatures.iter().fold(matched, |matched, sig| {
            mac.clone().verify_slice(sig).is_ok() | matched
        })
    });
    if matched {
        Ok(())
    } else {
        Err(Failure::Mismatch)
    }
}

/// `scheme: standard_webhooks`, receiving: the keys of the configured secrets and the
/// timestamp tolerance.
#[derive(Clone)]
pub struct StandardWebhooks {
    /// One keyed HMAC state per secret, prepared once; each request clones it.
    keys: Vec<Hmac<Sha256>>,
    /// How far `webhook-timestamp` may be from now, either way, in seconds.
    tolerance: i64,
}

impl std::fmt::Debug for StandardWebhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StandardWebhooks([{} redacted], tolerance {}s)",
            self.keys.len(),
            self.tolerance
        )
    }
}

impl StandardWebhooks {
    /// Prepares the keys (the bytes of each secret's base64).
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a [u8]>, tolerance: Duration) -> Self {
        Self {
            keys: keys.into_iter().filter_map(keyed).collect(),
            tolerance: i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX),
        }
    }

    /// What the headers alone tell, before the body is read: the three headers are there once
    /// each, and `webhook-timestamp` is an integer within the tolerance of `now`.
    ///
    /// # Errors
    /// Missing, repeated or malformed headers; a timestamp outside the tolerance.
    pub fn check_headers(&self, headers: &HeaderMap, now: i64) -> Result<(), Failure> {
        single(headers, &HeaderName::from_static(ID_HEADER))?;
        timestamp(
            headers,
            &HeaderName::from_static(TIMESTAMP_HEADER),
            now,
            self.tolerance,
        )?;
        single(headers, &HeaderName::from_static(SIGNATURE_HEADER))?;
        Ok(())
    }

    /// The whole check: [`Self::check_headers`], then the signature over `body`.
    ///
    /// # Errors
    /// As [`Self::check_headers`]; no well-formed `v1` entry; no entry matching any key.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), Failure> {
        let id = single(headers, &HeaderName::from_static(ID_HEADER))?;
        let (_, ts) = timestamp(
            headers,
            &HeaderName::from_static(TIMESTAMP_HEADER),
            now,
            self.tolerance,
        )?;
        let signature = single(headers, &HeaderName::from_static(SIGNATURE_HEADER))?;
        check(
            self.keys.iter().cloned(),
            id.as_bytes(),
            ts,
            body,
            signature.as_bytes(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // PROTOCOLS.md §5.4, the Python/Go libraries' vector.
    const KEY_PY: &str = "31f290f6bf06298aab4f08d43c3f082cf648a362da2da4b0";
    const ID_PY: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS_PY: i64 = 1_614_265_330;
    const BODY_PY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG_PY: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    // PROTOCOLS.md §5.4, the Rust library's vector.
    const KEY_RS: &str = "0b6155b0140886bb1c0a195020c57e6f9b1262ca686fba03";
    const ID_RS: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS_RS: i64 = 1_649_367_553;
    const BODY_RS: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const SIG_RS: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn key(hex_key: &str) -> Vec<u8> {
        hex::decode(hex_key).unwrap()
    }

    #[test]
    fn the_official_vectors_sign_and_verify() {
        assert_eq!(sign(&key(KEY_PY), ID_PY, TS_PY, BODY_PY), SIG_PY);
        assert_eq!(sign(&key(KEY_RS), ID_RS, TS_RS, BODY_RS), SIG_RS);
        let k = key(KEY_PY);
        assert_eq!(
            verify([k.as_slice()], ID_PY, TS_PY, BODY_PY, SIG_PY.as_bytes()),
            Ok(())
        );
    }

    #[test]
    fn any_matching_entry_with_any_key_passes_and_other_versions_are_skipped() {
        let (py, rs) = (key(KEY_PY), key(KEY_RS));
        let header = format!("v1a,AAAA {SIG_RS} {SIG_PY}");
        assert_eq!(
            verify(
                [rs.as_slice(), py.as_slice()],
                ID_PY,
                TS_PY,
                BODY_PY,
                header.as_bytes()
            ),
            Ok(())
        );
    }

    #[test]
    fn tampering_with_anything_signed_fails() {
        let k = key(KEY_PY);
        let keys = || [k.as_slice()];
        let sig = SIG_PY.as_bytes();
        assert_eq!(
            verify(keys(), ID_PY, TS_PY, br#"{"test": 2432232315}"#, sig),
            Err(Failure::Mismatch)
        );
        assert_eq!(
            verify(keys(), ID_PY, TS_PY + 1, BODY_PY, sig),
            Err(Failure::Mismatch)
        );
        assert_eq!(
            verify(keys(), "msg_other", TS_PY, BODY_PY, sig),
            Err(Failure::Mismatch)
        );
        let other = key(KEY_RS);
        assert_eq!(
            verify([other.as_slice()], ID_PY, TS_PY, BODY_PY, sig),
            Err(Failure::Mismatch)
        );
    }

    #[test]
    fn headers_without_a_v1_entry_are_malformed() {
        let k = key(KEY_PY);
        for header in [
            "",
            "v1a,AAAA",
            "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            "v1,not base64!",
            "v1,AAAA",
        ] {
            assert!(
                matches!(
                    verify([k.as_slice()], ID_PY, TS_PY, BODY_PY, header.as_bytes()),
                    Err(Failure::Malformed(_))
                ),
                "{header}"
            );
        }
    }

    #[test]
    fn bodies_that_are_not_utf8_are_signed_as_bytes() {
        let k = key(KEY_PY);
        let body = [0xff, 0x00, 0xfe, b'.', 0x80];
        let sig = sign(&k, ID_PY, TS_PY, &body);
        assert_eq!(
            verify([k.as_slice()], ID_PY, TS_PY, &body, sig.as_bytes()),
            Ok(())
        );
    }

    // PROTOCOLS.md §6.3: the own vector, keys 00..1f and (rotated) ff..e0.
    const SECRET_OLD: &str = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const SECRET_NEW: &str = "whsec_//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA=";
    const ID_OWN: &str = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W";
    const TS_OWN: i64 = 1_674_087_231;
    const BODY_OWN: &[u8] = br#"{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z","data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}"#;
    const SIG_OLD: &str = "v1,4PMU5Dl90B4kgwxDpwuMZ/cnZ5ztf+Y+kviYQD66rJg=";
    const SIG_NEW: &str = "v1,fxW6Ku2XZ4nIXns+MZghA06ndMdorgp9w1kDUBcSB7Q=";

    fn receiver(secrets: &[&str]) -> StandardWebhooks {
        let keys: Vec<Vec<u8>> = secrets.iter().map(|s| secret_key(s).unwrap()).collect();
        StandardWebhooks::new(keys.iter().map(Vec::as_slice), Duration::from_secs(5 * 60))
    }

    fn headers(id: &str, ts: &str, signature: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in [
            (ID_HEADER, id),
            (TIMESTAMP_HEADER, ts),
            (SIGNATURE_HEADER, signature),
        ] {
            if !value.is_empty() {
                h.append(name, http::HeaderValue::from_str(value).unwrap());
            }
        }
        h
    }

    #[test]
    fn the_own_vector_signs_with_each_key_and_a_rotation_header_verifies_with_either() {
        assert_eq!(BODY_OWN.len(), 121);
        let old = secret_key(SECRET_OLD).unwrap();
        let new = secret_key(SECRET_NEW).unwrap();
        assert_eq!(old, (0u8..32).collect::<Vec<_>>());
        assert_eq!(sign(&old, ID_OWN, TS_OWN, BODY_OWN), SIG_OLD);
        assert_eq!(sign(&new, ID_OWN, TS_OWN, BODY_OWN), SIG_NEW);
        let both = format!("{SIG_NEW} {SIG_OLD}");
        let h = headers(ID_OWN, &TS_OWN.to_string(), &both);
        for secrets in [
            [SECRET_OLD].as_slice(),
            &[SECRET_NEW],
            &[SECRET_NEW, SECRET_OLD],
        ] {
            assert_eq!(
                receiver(secrets).verify(&h, BODY_OWN, TS_OWN),
                Ok(()),
                "{secrets:?}"
            );
        }
        let other = receiver(&["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
        assert_eq!(other.verify(&h, BODY_OWN, TS_OWN), Err(Failure::Mismatch));
    }

    #[test]
    fn the_official_vectors_verify_as_a_receiving_scheme() {
        // PROTOCOLS.md §5.4: the secrets as the libraries' tests write them.
        for (secret, id, ts, body, sig) in [
            (
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                ID_PY,
                TS_PY,
                BODY_PY,
                SIG_PY,
            ),
            (
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                ID_RS,
                TS_RS,
                BODY_RS,
                SIG_RS,
            ),
        ] {
            let h = headers(id, &ts.to_string(), sig);
            assert_eq!(receiver(&[secret]).check_headers(&h, ts), Ok(()));
            assert_eq!(receiver(&[secret]).verify(&h, body, ts), Ok(()), "{id}");
            let mut tampered = body.to_vec();
            tampered.push(b' ');
            assert_eq!(
                receiver(&[secret]).verify(&h, &tampered, ts),
                Err(Failure::Mismatch)
            );
        }
    }

    #[test]
    fn timestamps_past_the_tolerance_either_way_fail_before_the_body() {
        let r = receiver(&[SECRET_OLD]);
        let h = headers(ID_OWN, &TS_OWN.to_string(), SIG_OLD);
        for now in [TS_OWN - 300, TS_OWN + 300] {
            assert_eq!(r.verify(&h, BODY_OWN, now), Ok(()), "now {now}");
        }
        for now in [TS_OWN - 301, TS_OWN + 301, 0, i64::MAX, i64::MIN] {
            assert_eq!(
                r.check_headers(&h, now),
                Err(Failure::OutsideTolerance),
                "now {now}"
            );
            assert_eq!(r.verify(&h, BODY_OWN, now), Err(Failure::OutsideTolerance));
        }
    }

    #[test]
    fn missing_repeated_and_malformed_headers_fail() {
        let r = receiver(&[SECRET_OLD]);
        let ts = TS_OWN.to_string();
        for (h, want) in [
            (headers("", &ts, SIG_OLD), Failure::Missing),
            (headers(ID_OWN, "", SIG_OLD), Failure::Missing),
            (headers(ID_OWN, &ts, ""), Failure::Missing),
        ] {
            assert_eq!(r.check_headers(&h, TS_OWN), Err(want));
        }
        let mut twice = headers(ID_OWN, &ts, SIG_OLD);
        twice.append(ID_HEADER, http::HeaderValue::from_static("msg_2"));
        assert_eq!(r.check_headers(&twice, TS_OWN), Err(Failure::Repeated));
        for bad in ["soon", "1674087231.5", "0x63c", "1e9"] {
            let h = headers(ID_OWN, bad, SIG_OLD);
            assert!(
                matches!(r.check_headers(&h, TS_OWN), Err(Failure::Malformed(_))),
                "{bad}"
            );
        }
        assert!(!format!("{r:?}").contains("AAEC"));
    }
}
