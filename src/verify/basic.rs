//! `basic`: `Authorization: Basic base64(user:password)`, as Kratos sends with
//! `auth.type: basic_auth`. Each configured secret is a whole `user:password` pair, so rotating
//! either part is one more list entry.

use base64::Engine as _;
use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::credential::{Failure, SecretDigests, auth_param, single};

/// Verifies HTTP Basic credentials.
#[derive(Debug, Clone)]
pub struct Basic {
    secrets: SecretDigests,
}

impl Basic {
    /// Accepts any of `secrets` (each `user:password`).
    pub fn new(secrets: SecretDigests) -> Self {
        Self { secrets }
    }

    /// Checks the credentials.
    ///
    /// # Errors
    /// Missing, repeated, malformed or wrong credentials.
    pub fn verify(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let encoded = auth_param(single(headers, &AUTHORIZATION)?, "Basic")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| Failure::Malformed("credentials are not base64"))?;
        if !decoded.contains(&b':') {
            return Err(Failure::Malformed("credentials have no `:`"));
        }
        if self.secrets.matches(&decoded) {
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

    fn basic(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn the_pair_kratos_sends_verifies() {
        // Go's SetBasicAuth("kratos", "s3cret") writes exactly this header.
        let v = Basic::new(SecretDigests::new([b"kratos:s3cret".as_slice()]));
        assert_eq!(
            basic("Basic a3JhdG9zOnMzY3JldA==")
                .get(AUTHORIZATION)
                .unwrap(),
            &format!("Basic {}", b64("kratos:s3cret"))
        );
        assert_eq!(v.verify(&basic("Basic a3JhdG9zOnMzY3JldA==")), Ok(()));
        assert_eq!(v.verify(&basic("basic a3JhdG9zOnMzY3JldA==")), Ok(()));
    }

    #[test]
    fn wrong_users_passwords_and_encodings_fail() {
        let v = Basic::new(SecretDigests::new([b"kratos:s3cret".as_slice()]));
        for (case, header, want) in [
            (
                "wrong password",
                format!("Basic {}", b64("kratos:s3cres")),
                Failure::Mismatch,
            ),
            (
                "wrong user",
                format!("Basic {}", b64("kratoz:s3cret")),
                Failure::Mismatch,
            ),
            (
                "password only",
                format!("Basic {}", b64(":s3cret")),
                Failure::Mismatch,
            ),
            (
                "no colon",
                format!("Basic {}", b64("kratoss3cret")),
                Failure::Malformed("credentials have no `:`"),
            ),
            (
                "not base64",
                "Basic !!!".to_string(),
                Failure::Malformed("credentials are not base64"),
            ),
            (
                "plain text",
                "Basic kratos:s3cret".to_string(),
                Failure::Malformed("credentials are not base64"),
            ),
            (
                "bearer",
                format!("Bearer {}", b64("kratos:s3cret")),
                Failure::Malformed("wrong authorization scheme"),
            ),
        ] {
            assert_eq!(v.verify(&basic(&header)), Err(want), "{case}");
        }
    }
}
