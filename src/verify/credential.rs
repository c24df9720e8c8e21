//! What every scheme shares: why a check failed, constant-time comparison of secrets, and the
//! header parsing that must refuse ambiguity.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

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
    /// The signed timestamp is further from now than the tolerance, in the past or the future
    /// (a replay, or a sender's clock far off).
    OutsideTolerance,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Missing => f.write_str("credential missing"),
            Failure::Repeated => f.write_str("credential given more than once"),
            Failure::Malformed(why) => write!(f, "credential malformed: {why}"),
            Failure::Mismatch => f.write_str("credential matches no configured secret"),
            Failure::OutsideTolerance => {
                f.write_str("signed timestamp is further from now than the tolerance")
            }
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

    /// The digests themselves, made earlier by SHA-256 of each secret (a registered hook keeps
    /// only these for the schemes that compare a presented secret: `api_key`, `basic`,
    /// `bearer`).
    pub fn from_digests(digests: Vec<[u8; 32]>) -> Self {
        Self(digests)
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

/// Now, in Unix seconds (0 if the clock is before 1970, which refuses every signed timestamp
/// rather than panicking).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Reads a signed Unix-seconds timestamp header and checks it is within `tolerance` seconds of
/// `now`, either way; gives the value as sent (some schemes sign its text).
///
/// # Errors
/// Missing, repeated, not an integer, or outside the tolerance.
pub fn timestamp<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
    now: i64,
    tolerance: i64,
) -> Result<(&'a [u8], i64), Failure> {
    let raw = single(headers, name)?.as_bytes().trim_ascii();
    let ts = std::str::from_utf8(raw)
        .ok()
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or(Failure::Malformed(
            "timestamp is not an integer of Unix seconds",
        ))?;
    if now.saturating_sub(ts) > tolerance || ts.saturating_sub(now) > tolerance {
        return Err(Failure::OutsideTolerance);
    }
    Ok((raw, ts))
}

/// The single value of a header that must appear at most once.
pub fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<&'a HeaderValue, Failure> {
    let mut it = headers.get_all(name).iter();
    match (it.next(), it.next()) {
        (None, _) => Err(Failure::Missing),
        (Some(v), None) => Ok(v),
        (Some(_), Some(_)) => Err(Failure::Repeated),
    }
}

/// Splits `Scheme credentials` with a case-insensitive scheme word (RFC 9110 §11.1).
pub fn auth_param<'a>(value: &'a HeaderValue, scheme: &str) -> Result<&'a [u8], Failure> {
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
        let kept = SecretDigests::from_digests(vec![Sha256::digest(b"alpha").into()]);
        assert!(kept.matches(b"alpha"));
        assert!(!kept.matches(b"beta"));
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
