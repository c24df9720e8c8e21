//! How values are written in the configuration: durations, sizes, secrets, and numbers or
//! booleans that environment variables give as strings.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A duration written like `10s`, `1m 30s` or `250ms` (a bare number is seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StringOrNumber::deserialize(d)? {
            StringOrNumber::Number(n) => Ok(Self(Duration::from_secs(n))),
            StringOrNumber::String(s) => {
                humantime::parse_duration(s.trim()).map(Self).map_err(|e| {
                    de::Error::custom(format!(
                        "`{s}` is not a duration like `10s` or `500ms` ({e})"
                    ))
                })
            }
        }
    }
}

/// A size written like `1MiB`, `64KiB` or `512` (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match StringOrNumber::deserialize(d)? {
            StringOrNumber::Number(n) => Ok(Self(n)),
            StringOrNumber::String(s) => s
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| Self(b.as_u64()))
                .map_err(|e| {
                    de::Error::custom(format!("`{s}` is not a size like `1MiB` or `64KiB` ({e})"))
                }),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    Number(u64),
    String(String),
}

/// A whole number, also when written as a string (environment variables are strings).
pub fn lenient_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match StringOrNumber::deserialize(d)? {
        StringOrNumber::Number(n) => usize::try_from(n).map_err(de::Error::custom),
        StringOrNumber::String(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("`{s}` is not a whole number"))),
    }
}

/// An optional whole number, also when written as a string.
pub fn lenient_usize_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match Option::<StringOrNumber>::deserialize(d)? {
        None => Ok(None),
        Some(StringOrNumber::Number(n)) => usize::try_from(n).map(Some).map_err(de::Error::custom),
        Some(StringOrNumber::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| de::Error::custom(format!("`{s}` is not a whole number"))),
    }
}

/// A number, also when written as a string (environment variables are strings).
pub fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Number(f64),
        String(String),
    }
    match N::deserialize(d)? {
        N::Number(n) => Ok(n),
        N::String(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("`{s}` is not a number"))),
    }
}

/// An optional `true`/`false`, also when written as a string (environment variables are strings).
pub fn lenient_bool_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        String(String),
    }
    match Option::<B>::deserialize(d)? {
        None => Ok(None),
        Some(B::Bool(b)) => Ok(Some(b)),
        Some(B::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(de::Error::custom(format!("`{s}` is not `true` or `false`"))),
        },
    }
}

/// A scalar that stands for a secret: YAML may type `12345` as a number, yet it is a string here.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    String(String),
    Int(i64),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::String(s) => s,
            Scalar::Int(n) => n.to_string(),
        }
    }
}

/// An optional secret (a YAML number is read as its digits).
pub fn secret_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?.map(|s| SecretString::from(s.into_string())))
}

/// A list of secrets; a single string (typically from an environment variable) is a
/// comma-separated list.
pub fn secret_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Scalar>),
        One(Scalar),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::Many(v)) => v
            .into_iter()
            .map(|s| SecretString::from(s.into_string()))
            .collect(),
        // A single string (typically from an environment variable) is a comma-separated list.
        Some(OneOrMany::One(s)) => s
            .into_string()
            .split(',')
            .map(|p| SecretString::from(p.trim().to_string()))
            .collect(),
    })
}

/// A map of secrets by name (header values); YAML numbers are read as their digits.
pub fn secret_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, SecretString>, D::Error> {
    Ok(
        Option::<std::collections::BTreeMap<String, Scalar>>::deserialize(d)?
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v.into_string())))
            .collect(),
    )
}
