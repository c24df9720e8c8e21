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
//!
//! Also here, because validation and the verifier both need them: how a receiving
//! `standard_webhooks` secret gives its key ([`standard_webhooks_key`]), and the `hmac` scheme's
//! `signed` template ([`SignedTemplate`]).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::de::{HumanDuration, secret_list};
use super::destinations::{Encoding, HmacAlgorithm};

/// How far a signed timestamp may be from now, either way, when `tolerance` is not set: the
/// reference libraries' 5 minutes (PROTOCOLS.md §5.2), also Slack's.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

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
    /// Standard Webhooks: `webhook-signature: v1,<base64>` over `{id}.{timestamp}.{body}`.
    StandardWebhooks,
    /// An HMAC of the body (or of a template around it) in one header: GitHub, Shopify, Slack…
    Hmac,
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
            Scheme::StandardWebhooks => "standard_webhooks",
            Scheme::Hmac => "hmac",
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
    /// `standard_webhooks`, with how far `webhook-timestamp` may be from now either way.
    StandardWebhooks {
        /// `tolerance` (default [`DEFAULT_TOLERANCE`]).
        tolerance: Duration,
    },
    /// `hmac`, with its keys.
    Hmac(HmacSettings),
    /// `none`.
    None,
}

/// The keys of `scheme: hmac`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacSettings {
    /// `header`: the header that carries the signature (required; validation says so).
    pub header: Option<String>,
    /// `algorithm`: `sha1`, `sha256` (default) or `sha512`.
    pub algorithm: HmacAlgorithm,
    /// `encoding`: `hex` (default; either case accepted) or `base64`.
    pub encoding: Encoding,
    /// `prefix`: the text before the signature in the header (`sha256=`, `v0=`); none by default.
    pub prefix: String,
    /// `signed`: what is signed, `{body}` by default.
    pub signed: SignedTemplate,
    /// `timestamp`: where the `{timestamp}` of the template comes from, and how far from now it
    /// may be (required when the template uses it; validation says so).
    pub timestamp: Option<TimestampSettings>,
}

/// `timestamp: {header, tolerance}` of `scheme: hmac`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimestampSettings {
    /// The header with the Unix seconds the sender signed (`X-Slack-Request-Timestamp`).
    pub header: String,
    /// How far it may be from now, in the past or the future (default [`DEFAULT_TOLERANCE`]).
    #[serde(default)]
    pub tolerance: Option<HumanDuration>,
}

impl TimestampSettings {
    /// The tolerance, with its default.
    pub fn tolerance(&self) -> Duration {
        self.tolerance.map_or(DEFAULT_TOLERANCE, |t| t.0)
    }
}

/// One piece of a [`SignedTemplate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedPart {
    /// Text signed as it is written.
    Text(String),
    /// `{body}`: the exact body bytes.
    Body,
    /// `{timestamp}`: the timestamp header's value, as sent.
    Timestamp,
}

/// The `signed` template of `scheme: hmac`: `{body}`, `{timestamp}.{body}`,
/// `v0:{timestamp}:{body}`… `{body}` appears exactly once; `{timestamp}` at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTemplate(Vec<SignedPart>);

impl Default for SignedTemplate {
    fn default() -> Self {
        Self(vec![SignedPart::Body])
    }
}

impl SignedTemplate {
    /// Reads a template.
    ///
    /// # Errors
    /// Why it is not one, in words.
    pub fn parse(template: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        let (mut bodies, mut timestamps) = (0, 0);
        while !rest.is_empty() {
            let next = rest.find(['{', '}']).unwrap_or(rest.len());
            let (text, tail) = rest.split_at(next);
            if !text.is_empty() {
                parts.push(SignedPart::Text(text.to_string()));
            }
            if tail.is_empty() {
                break;
            }
            let close = tail
                .strip_prefix('{')
                .and_then(|t| t.find('}').map(|i| (&t[..i], &t[i + 1..])));
            let Some((name, after)) = close else {
                return Err(
                    "has a `{` or `}` that is not part of `{body}` or `{timestamp}`".to_string(),
                );
            };
            match name {
                "body" => {
                    bodies += 1;
                    parts.push(SignedPart::Body);
                }
                "timestamp" => {
                    timestamps += 1;
                    parts.push(SignedPart::Timestamp);
                }
                other => {
                    return Err(format!(
                        "`{{{other}}}` is not a placeholder; a template takes `{{body}}` and \
                         `{{timestamp}}`"
                    ));
                }
            }
            rest = after;
        }
        if bodies != 1 {
            return Err("must hold `{body}` exactly once (e.g. `v0:{timestamp}:{body}`)".into());
        }
        if timestamps > 1 {
            return Err("holds `{timestamp}` more than once".into());
        }
        Ok(Self(parts))
    }

    /// The pieces, in order.
    pub fn parts(&self) -> &[SignedPart] {
        &self.0
    }

    /// Whether the template signs a timestamp.
    pub fn uses_timestamp(&self) -> bool {
        self.0.contains(&SignedPart::Timestamp)
    }
}

impl<'de> Deserialize<'de> for SignedTemplate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(de::Error::custom)
    }
}

/// The key of a receiving `standard_webhooks` secret: the base64 after `whsec_`, decoded. As the
/// reference libraries, the prefix may be left out; as the Python one, the padding too.
///
/// # Errors
/// Why the secret gives no key, in words that never quote it.
pub fn standard_webhooks_key(secret: &str) -> Result<Vec<u8>, &'static str> {
    /// Standard base64, with or without its `=` padding.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let secret = secret.trim();
    if secret.starts_with("whsk_") || secret.starts_with("whpk_") {
        return Err(
            "is an ed25519 key (`whsk_`/`whpk_`, signatures `v1a`); hookgate checks `v1` \
                    (HMAC-SHA256) signatures: give the endpoint's `whsec_` secret",
        );
    }
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    match LENIENT.decode(b64) {
        Ok(key) if !key.is_empty() => Ok(key),
        _ => Err(
            "is not `whsec_` followed by base64 (copy the signing secret the sender shows \
                  for this endpoint)",
        ),
    }
}

impl SchemeSettings {
    /// The scheme's name.
    pub fn scheme(&self) -> Scheme {
        match self {
            SchemeSettings::ApiKeyHeader(_) | SchemeSettings::ApiKeyCookie(_) => Scheme::ApiKey,
            SchemeSettings::Basic => Scheme::Basic,
            SchemeSettings::Bearer => Scheme::Bearer,
            SchemeSettings::AbpSignature => Scheme::AbpSignature,
            SchemeSettings::StandardWebhooks { .. } => Scheme::StandardWebhooks,
            SchemeSettings::Hmac(_) => Scheme::Hmac,
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
const KEYS: &[&str] = &[
    "scheme",
    "secrets",
    "header",
    "in",
    "cookie",
    "tolerance",
    "algorithm",
    "encoding",
    "prefix",
    "signed",
    "timestamp",
];

/// Why a key given under a scheme that does not take it is wrong, in words.
pub fn unused_reason(key: &str) -> &'static str {
    match key {
        "header" => {
            "only `api_key` with `in: header` and `hmac` use a header name (when a later file or \
             variable changes the scheme or `in`, set `header: null` there to drop the earlier \
             file's header)"
        }
        "tolerance" => {
            "only `standard_webhooks` takes `tolerance` (`hmac` takes it under `timestamp`; set \
             `tolerance: null` when a later file changes the scheme)"
        }
        "algorithm" | "encoding" | "prefix" | "signed" | "timestamp" => {
            "only `hmac` takes it (set it to null when a later file changes the scheme)"
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
        let mut tolerance = None;
        let mut algorithm = None;
        let mut encoding = None;
        let mut prefix = None;
        let mut signed = None;
        let mut timestamp = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "scheme" => scheme = Some(map.next_value::<Scheme>()?),
                "secrets" => secrets = map.next_value::<Secrets>()?.0,
                "header" => header = map.next_value::<Option<String>>()?,
                "in" => location = map.next_value::<Option<KeyLocation>>()?,
                "cookie" => cookie = map.next_value::<Option<String>>()?,
                "tolerance" => tolerance = map.next_value::<Option<HumanDuration>>()?,
                "algorithm" => algorithm = map.next_value::<Option<HmacAlgorithm>>()?,
                "encoding" => encoding = map.next_value::<Option<Encoding>>()?,
                "prefix" => prefix = map.next_value::<Option<String>>()?,
                "signed" => signed = map.next_value::<Option<SignedTemplate>>()?,
                "timestamp" => timestamp = map.next_value::<Option<TimestampSettings>>()?,
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
        if scheme != Scheme::StandardWebhooks {
            not_taken("tolerance", tolerance.is_some());
        }
        if scheme != Scheme::Hmac {
            not_taken("algorithm", algorithm.is_some());
            not_taken("encoding", encoding.is_some());
            not_taken("prefix", prefix.is_some());
            not_taken("signed", signed.is_some());
            not_taken("timestamp", timestamp.is_some());
        }
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
            Scheme::StandardWebhooks => SchemeSettings::StandardWebhooks {
                tolerance: tolerance.map_or(DEFAULT_TOLERANCE, |t| t.0),
            },
            Scheme::Hmac => {
                not_taken("in", given.1);
                not_taken("cookie", given.2);
                SchemeSettings::Hmac(HmacSettings {
                    header,
                    algorithm: algorithm.unwrap_or(HmacAlgorithm::Sha256),
                    encoding: encoding.unwrap_or(Encoding::Hex),
                    prefix: prefix.unwrap_or_default(),
                    signed: signed.unwrap_or_default(),
                    timestamp,
                })
            }
            Scheme::None => SchemeSettings::None,
        };
        if !matches!(scheme.scheme(), Scheme::ApiKey | Scheme::Hmac) {
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
    fn standard_webhooks_and_hmac_read_their_keys_with_defaults() {
        let v =
            read(r#"{"verify":{"scheme":"standard_webhooks","secrets":["whsec_AAAA"]}}"#).unwrap();
        assert_eq!(
            v.scheme,
            SchemeSettings::StandardWebhooks {
                tolerance: DEFAULT_TOLERANCE
            }
        );
        let v = read(r#"{"verify":{"scheme":"standard_webhooks","tolerance":"30s"}}"#).unwrap();
        assert_eq!(
            v.scheme,
            SchemeSettings::StandardWebhooks {
                tolerance: Duration::from_secs(30)
            }
        );
        let v = read(r#"{"verify":{"scheme":"hmac","header":"X-Sig"}}"#).unwrap();
        let SchemeSettings::Hmac(h) = &v.scheme else {
            panic!("{v:?}")
        };
        assert_eq!(h.header.as_deref(), Some("X-Sig"));
        assert_eq!(h.algorithm, HmacAlgorithm::Sha256);
        assert_eq!(h.encoding, Encoding::Hex);
        assert_eq!(h.prefix, "");
        assert_eq!(h.signed, SignedTemplate::default());
        assert_eq!(h.timestamp, None);
        let v = read(
            r#"{"verify":{"scheme":"hmac","header":"X-Slack-Signature","algorithm":"sha512",
               "encoding":"base64","prefix":"v0=","signed":"v0:{timestamp}:{body}",
               "timestamp":{"header":"X-Slack-Request-Timestamp","tolerance":"1m"}}}"#,
        )
        .unwrap();
        let SchemeSettings::Hmac(h) = &v.scheme else {
            panic!("{v:?}")
        };
        assert_eq!(h.algorithm, HmacAlgorithm::Sha512);
        assert_eq!(h.encoding, Encoding::Base64);
        assert_eq!(
            h.signed.parts(),
            [
                SignedPart::Text("v0:".into()),
                SignedPart::Timestamp,
                SignedPart::Text(":".into()),
                SignedPart::Body
            ]
        );
        let ts = h.timestamp.as_ref().unwrap();
        assert_eq!(ts.header, "X-Slack-Request-Timestamp");
        assert_eq!(ts.tolerance(), Duration::from_secs(60));
        assert!(v.unused.is_empty());
    }

    #[test]
    fn templates_take_body_once_and_timestamp_at_most_once() {
        for bad in [
            "{timestamp}",
            "{body}{body}",
            "{timestamp}{timestamp}{body}",
            "{body",
            "body}",
            "{}{body}",
            "{Body}",
        ] {
            assert!(SignedTemplate::parse(bad).is_err(), "{bad}");
        }
        let t = SignedTemplate::parse("{timestamp}.{body}").unwrap();
        assert!(t.uses_timestamp());
        assert!(!SignedTemplate::default().uses_timestamp());
    }

    #[test]
    fn receiving_whsec_keys_decode_with_or_without_prefix_or_padding() {
        let want: Vec<u8> = (0u8..32).collect();
        for s in [
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            " whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= ",
        ] {
            assert_eq!(standard_webhooks_key(s).unwrap(), want, "{s}");
        }
        for bad in ["whsec_", "whsec_***", "whsec_AAECAw-_", "whsk_AAAA", ""] {
            let why = standard_webhooks_key(bad).unwrap_err();
            assert!(!why.contains("AAAA"), "{why}");
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
