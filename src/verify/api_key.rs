//! `api_key`: a static key in a header (Kratos `auth.type: api_key`, `in: header`) or in a cookie
//! (`in: cookie`, sent by Kratos as `Cookie: <name>=<value>`).

use http::header::COOKIE;
use http::{HeaderMap, HeaderName};

use super::credential::{Failure, SecretDigests, single};

/// The header Kratos' reference handler (LeanCode `KratosWebHookHandlerBase`) reads.
pub const DEFAULT_HEADER: &str = "x-api-key";

/// Where the key travels.
#[derive(Debug, Clone)]
enum Location {
    Header(HeaderName),
    Cookie(String),
}

/// Verifies a static API key.
#[derive(Debug, Clone)]
pub struct ApiKey {
    location: Location,
    secrets: SecretDigests,
}

impl ApiKey {
    /// A key in the header `name`.
    pub fn header(name: HeaderName, secrets: SecretDigests) -> Self {
        Self {
            location: Location::Header(name),
            secrets,
        }
    }

    /// A key in the cookie `name`.
    pub fn cookie(name: String, secrets: SecretDigests) -> Self {
        Self {
            location: Location::Cookie(name),
            secrets,
        }
    }

    /// The header holding the key, when it is a header.
    pub fn header_name(&self) -> Option<&HeaderName> {
        match &self.location {
            Location::Header(h) => Some(h),
            Location::Cookie(_) => None,
        }
    }

    /// Where the key is expected, for logs: `header X-Api-Key` or `cookie NAME`.
    pub fn expects(&self) -> String {
        match &self.location {
            Location::Header(h) => format!("header {h}"),
            Location::Cookie(c) => format!("cookie {c}"),
        }
    }

    /// Checks the key.
    ///
    /// # Errors
    /// Missing, repeated or wrong key.
    pub fn verify(&self, headers: &HeaderMap) -> Result<(), Failure> {
        let presented = match &self.location {
            Location::Header(name) => single(headers, name)?.as_bytes(),
            Location::Cookie(name) => cookie_value(headers, name)?,
        };
        if self.secrets.matches(presented) {
            Ok(())
        } else {
            Err(Failure::Mismatch)
        }
    }
}

/// Finds one cookie among all `Cookie` headers (HTTP/2 may split them). A cookie given twice is
/// refused, since which copy counts would be ambiguous.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a [u8], Failure> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        for pair in header.as_bytes().split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                continue;
            };
            let (k, v) = pair.split_at(eq);
            if k.trim_ascii() != name.as_bytes() {
                continue;
            }
            if found.is_some() {
                return Err(Failure::Repeated);
            }
            let v = v.get(1..).unwrap_or_default().trim_ascii();
            // Go's net/http quotes a value holding a space or a comma.
            let v = match v {
                [b'"', inner @ .., b'"'] => inner,
                other => other,
            };
            found = Some(v);
        }
    }
    found.ok_or(Failure::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    fn in_header() -> ApiKey {
        ApiKey::header(
            HeaderName::from_static(DEFAULT_HEADER),
            SecretDigests::new([b"new-key-2".as_slice(), b"old-key-1".as_slice()]),
        )
    }

    #[test]
    fn the_configured_header_with_any_active_key_verifies() {
        assert_eq!(
            in_header().verify(&headers(&[("x-api-key", "new-key-2")])),
            Ok(())
        );
        assert_eq!(
            in_header().verify(&headers(&[("x-api-key", "old-key-1")])),
            Ok(())
        );
    }

    #[test]
    fn wrong_near_miss_missing_and_repeated_keys_fail() {
        let v = in_header();
        for (case, h, want) in [
            (
                "wrong key",
                headers(&[("x-api-key", "nope")]),
                Failure::Mismatch,
            ),
            (
                "prefix of a key",
                headers(&[("x-api-key", "new-key-")]),
                Failure::Mismatch,
            ),
            (
                "key plus a byte",
                headers(&[("x-api-key", "new-key-22")]),
                Failure::Mismatch,
            ),
            (
                "other case",
                headers(&[("x-api-key", "NEW-KEY-2")]),
                Failure::Mismatch,
            ),
            ("empty", headers(&[("x-api-key", "")]), Failure::Mismatch),
            (
                "other header",
                headers(&[("x-api-token", "new-key-2")]),
                Failure::Missing,
            ),
            (
                "twice",
                headers(&[("x-api-key", "new-key-2"), ("x-api-key", "new-key-2")]),
                Failure::Repeated,
            ),
        ] {
            assert_eq!(v.verify(&h), Err(want), "{case}");
        }
    }

    #[test]
    fn a_key_in_a_cookie_is_found_among_others_and_unquoted() {
        let v = ApiKey::cookie("hook_key".into(), SecretDigests::new([b"k 1".as_slice()]));
        assert_eq!(
            v.verify(&headers(&[("cookie", "a=b; hook_key=\"k 1\"; c=d")])),
            Ok(())
        );
        assert_eq!(
            v.verify(&headers(&[
                ("cookie", "a=b"),
                ("cookie", "hook_key=\"k 1\"")
            ])),
            Ok(())
        );
        assert_eq!(
            v.verify(&headers(&[("cookie", "hook_key=k")])),
            Err(Failure::Mismatch)
        );
        assert_eq!(
            v.verify(&headers(&[("cookie", "hook_keyx=k 1")])),
            Err(Failure::Missing)
        );
        assert_eq!(
            v.verify(&headers(&[("x-api-key", "k 1")])),
            Err(Failure::Missing)
        );
        assert_eq!(
            v.verify(&headers(&[(
                "cookie",
                "hook_key=\"k 1\"; hook_key=\"k 1\""
            )])),
            Err(Failure::Repeated)
        );
    }
}
