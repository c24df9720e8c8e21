//! `bearer`: `Authorization: Bearer <token>` (RFC 6750), as the Identus Cloud Agent sends with
//! `GLOBAL_WEBHOOK_API_KEY`. The scheme word is case-insensitive.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::credential::{Failure, SecretDigests, auth_param, single};

/// Verifies a bearer token.
#[derive(Debug, Clone)]
pub struct Bearer {
    secrets: SecretDigests,
}

impl Bearer {
    /// Accepts any of `secrets` as the token.
    pub fn new(secrets: SecretDigests) -> Self {
        Self { secrets }
    }

    /// Checks the token.
    ///
    /// # Errors
    /// Missing, repeated, malformed or wrong token.
    pub fn verify(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let token = auth_param(single(headers, &AUTHORIZATION)?, "Bearer")?;
        if self.secrets.matches(token) {
            Ok(())
        } else {
            Err(Failure::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_auth(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(AUTHORIZATION, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_token_verifies_whatever_the_case_of_the_scheme_word() {
        let v = Bearer::new(SecretDigests::new([b"identus-token".as_slice()]));
        for ok in [
            "Bearer identus-token",
            "bearer identus-token",
            "BEARER identus-token",
        ] {
            assert_eq!(v.verify(&with_auth(&[ok])), Ok(()), "{ok}");
        }
    }

    #[test]
    fn wrong_prefixes_tokens_and_repeats_fail() {
        let v = Bearer::new(SecretDigests::new([b"identus-token".as_slice()]));
        for (case, h, want) in [
            ("no header", with_auth(&[]), Failure::Missing),
            (
                "basic scheme",
                with_auth(&["Basic identus-token"]),
                Failure::Malformed("wrong authorization scheme"),
            ),
            (
                "no scheme",
                with_auth(&["identus-token"]),
                Failure::Malformed("wrong authorization scheme"),
            ),
            (
                "no space",
                with_auth(&["Beareridentus-token"]),
                Failure::Malformed("wrong authorization scheme"),
            ),
            (
                "empty token",
                with_auth(&["Bearer "]),
                Failure::Malformed("empty credentials"),
            ),
            (
                "near miss",
                with_auth(&["Bearer identus-tokem"]),
                Failure::Mismatch,
            ),
            (
                "token case",
                with_auth(&["Bearer IDENTUS-TOKEN"]),
                Failure::Mismatch,
            ),
            (
                "two headers",
                with_auth(&["Bearer identus-token", "Bearer identus-token"]),
                Failure::Repeated,
            ),
        ] {
            assert_eq!(v.verify(&h), Err(want), "{case}");
        }
    }
}
