//! A source's `verify` block: `scheme` picks the scheme, and each scheme takes its own keys.
//!
//! The block is a tagged enum ([`SchemeSettings`], tagged by `scheme`), read by hand rather than
//! with serde's `#[serde(tag = "scheme")]`: serde buffers an internally tagged enum before it
//! reads the variant, so `serde_path_to_error` could then only say `sources.x.verify` where the
//! user needs `sources.x.verify.secrets`. Read key by key, every error names its field.
//!
//! A key that exists but that the chosen scheme does not take (`header` under `bearer`) is kept in
//! [`VerifySettings::unused`] instead of failing the read, so that validation reports it with
//! every other mistake of the file in one run.

use std::fmt;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::de::secret_list;

/// Verification schemes, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// A static key in a header or a cookie (Kratos `api_key`).
    ApiKey,
    /// `Authorization: Basic` (Kratos `basic_auth`); each secret is `user:password`.
    Basic,
    /// `Authorization: Bearer` (RFC 6750; Identus).
    Bearer,
    /// `abp-webhook-signature: sha256=` HMAC-SHA256 of the body (ASP.NET Boilerplate).
    AbpSignature,
    /// No verification at all (warned about at start).
    None,
}

impl Scheme {
    /// The name used in config, logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::ApiKey => "api_key",
            Scheme::Basic => "basic",
            Scheme::Bearer => "bearer",
            Scheme::AbpSignature => "abp_signature",
            Scheme::None => "none",
        }
    }
}

/// Where an `api_key` is carried (`in:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeyLocation {
    /// In a header (`header`, default `X-Api-Key`).
    #[default]
    Header,
    /// In a cookie (`cookie` names it).
    Cookie,
}

/// The scheme, with the keys only it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemeSettings {
    /// `api_key` with `in: header` (the default): the header name, `X-Api-Key` when `None`.
    ApiKeyHeader(Option<String>),
    /// `api_key` with `in: cookie`: the cookie name (required; validation says so when missing).
    ApiKeyCookie(Option<String>),
    /// `basic`.
    Basic,
    /// `bearer`.
    Bearer,
    /// `abp_signature`.
    AbpSignature,
    /// `none`.
    None,
}

impl SchemeSettings {
    /// The scheme's name.
    pub fn scheme(&self) -> Scheme {
        match self {
            SchemeSettings::ApiKeyHeader(_) | SchemeSettings::ApiKeyCookie(_) => Scheme::ApiKey,
            SchemeSettings::Basic => Scheme::Basic,
            SchemeSettings::Bearer => Scheme::Bearer,
            SchemeSettings::AbpSignature => Scheme::AbpSignature,
            SchemeSettings::None => Scheme::None,
        }
    }
}

/// A source's `verify` block.
#[derive(Clone)]
pub struct VerifySettings {
    /// The scheme and its own keys.
    pub scheme: SchemeSettings,
    /// Accepted secrets; any one matching is enough, so a secret can be rotated without downtime.
    /// From an environment variable, a comma-separated list.
    pub secrets: Vec<SecretString>,
    /// Keys given that the scheme does not take; validation names each with what does take it.
    pub unused: Vec<&'static str>,
}

/// Every key a `verify` block may hold, whatever its scheme.
const KEYS: &[&str] = &["scheme", "secrets", "header", "in", "cookie"];

/// Why a key given under a scheme that does not take it is wrong, in words.
pub fn unused_reason(key: &str) -> &'static str {
    match key {
        "header" => {
            "only `api_key` with `in: header` uses a header name (when a later file or variable \
             changes the scheme or `in`, set `header: null` there to drop the earlier file's header)"
        }
        "in" => "only `api_key` has `in` (set `in: null` when a later file changes the scheme)",
        "cookie" => {
            "only `api_key` with `in: cookie` uses a cookie name (set `cookie: null` when a later \
             file changes the scheme or `in`)"
        }
        _ => "this scheme does not take it",
    }
}

impl fmt::Debug for VerifySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifySettings")
            .field("scheme", &self.scheme)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("unused", &self.unused)
            .finish()
    }
}

impl<'de> Deserialize<'de> for VerifySettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(BlockVisitor)
    }
}

/// `secrets`, read with [`secret_list`].
struct Secrets(Vec<SecretString>);

impl<'de> Deserialize<'de> for Secrets {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        secret_list(d).map(Secrets)
    }
}

/// Fails on the value of a key no scheme takes. Refusing while reading the value (rather than
/// the key) puts the key in the error's path: `sources.x.verify.sceme: unknown field`.
struct UnknownKey<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for UnknownKey<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        Err(de::Error::unknown_field(self.0, KEYS))
    }
}

struct BlockVisitor;

impl<'de> Visitor<'de> for BlockVisitor {
    type Value = VerifySettings;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a verify block like { scheme: bearer, secrets: [...] }")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VerifySettings, A::Error> {
        let mut scheme = None;
        let mut secrets = Vec::new();
        let mut header = None;
        let mut location = None;
        let mut cookie = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "scheme" => scheme = Some(map.next_value::<Scheme>()?),
                "secrets" => secrets = map.next_value::<Secrets>()?.0,
                "header" => header = map.next_value::<Option<String>>()?,
                "in" => location = map.next_value::<Option<KeyLocation>>()?,
                "cookie" => cookie = map.next_value::<Option<String>>()?,
                other => map.next_value_seed(UnknownKey(other))?,
            }
        }
        let scheme = scheme.ok_or_else(|| de::Error::missing_field("scheme"))?;
        let given = (header.is_some(), location.is_some(), cookie.is_some());
        let mut unused = Vec::new();
        let mut not_taken = |key: &'static str, given: bool| {
            if given {
                unused.push(key);
            }
        };
        let scheme = match scheme {
            Scheme::ApiKey => match location.unwrap_or_default() {
                KeyLocation::Header => {
                    not_taken("cookie", given.2);
                    SchemeSettings::ApiKeyHeader(header)
                }
                KeyLocation::Cookie => {
                    not_taken("header", given.0);
                    SchemeSettings::ApiKeyCookie(cookie)
                }
            },
            Scheme::Basic => SchemeSettings::Basic,
            Scheme::Bearer => SchemeSettings::Bearer,
            Scheme::AbpSignature => SchemeSettings::AbpSignature,
            Scheme::None => SchemeSettings::None,
        };
        if scheme.scheme() != Scheme::ApiKey {
            not_taken("header", given.0);
            not_taken("in", given.1);
            not_taken("cookie", given.2);
        }
        Ok(VerifySettings {
            scheme,
            secrets,
            unused,
        })
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    fn read(json: &str) -> Result<VerifySettings, String> {
        #[derive(Deserialize, Debug)]
        struct Outer {
            #[allow(dead_code)]
            verify: VerifySettings,
        }
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        serde_path_to_error::deserialize::<_, Outer>(value)
            .map(|o| o.verify)
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }

    #[test]
    fn each_scheme_reads_its_own_keys() {
        let v =
            read(r#"{"verify":{"scheme":"api_key","in":"cookie","cookie":"k","secrets":"a, b"}}"#)
                .unwrap();
        assert_eq!(v.scheme, SchemeSettings::ApiKeyCookie(Some("k".into())));
        let secrets: Vec<&str> = v.secrets.iter().map(|s| s.expose_secret()).collect();
        assert_eq!(secrets, ["a", "b"]);
        assert!(v.unused.is_empty());
        let v = read(r#"{"verify":{"scheme":"api_key","secrets":["a"]}}"#).unwrap();
        assert_eq!(v.scheme, SchemeSettings::ApiKeyHeader(None));
        let v = read(r#"{"verify":{"scheme":"none"}}"#).unwrap();
        assert_eq!(v.scheme, SchemeSettings::None);
        assert_eq!(v.scheme.scheme().as_str(), "none");
    }

    #[test]
    fn errors_name_the_field_inside_the_block() {
        for (json, want) in [
            (
                r#"{"verify":{"scheme":"bearer","secrets":{"a":1}}}"#,
                "verify.secrets: ",
            ),
            (
                r#"{"verify":{"scheme":"bearr","secrets":["a"]}}"#,
                "verify.scheme: unknown variant `bearr`",
            ),
            (
                r#"{"verify":{"scheme":"bearer","sekrets":["a"]}}"#,
                "verify.sekrets: unknown field `sekrets`",
            ),
            (
                r#"{"verify":{"secrets":["a"]}}"#,
                "verify: missing field `scheme`",
            ),
            (
                r#"{"verify":{"scheme":"api_key","in":"query","secrets":["a"]}}"#,
                "verify.in: unknown variant `query`",
            ),
        ] {
            let err = read(json).unwrap_err();
            assert!(err.starts_with(want), "{json}: {err}");
        }
    }

    #[test]
    fn keys_the_scheme_does_not_take_are_kept_for_validation() {
        let v = read(
            r#"{"verify":{"scheme":"bearer","header":"X","in":"header","cookie":"c","secrets":["a"]}}"#,
        )
        .unwrap();
        assert_eq!(v.scheme, SchemeSettings::Bearer);
        assert_eq!(v.unused, ["header", "in", "cookie"]);
        let v =
            read(r#"{"verify":{"scheme":"api_key","in":"cookie","header":"X","secrets":["a"]}}"#)
                .unwrap();
        assert_eq!(v.unused, ["header"]);
    }
}
