//! `json`: any sender of JSON. The body may be any JSON value; the options say where the dedupe
//! key and the event type are:
//!
//! ```yaml
//! dedupe: { header: X-GitHub-Delivery }   # or { pointer: /id }; else the body's SHA-256
//! event_type: { header: X-GitHub-Event }  # or { pointer: /type }; else none
//! ```
//!
//! - A configured dedupe source must give a value: a missing header or pointer, an empty value,
//!   or a value that is neither a string nor a number is a 422 naming it. Without its key an
//!   event could only be stored under another one, and its retries would be stored twice.
//! - An event type is a label: when its header or pointer is missing (or `null`), the event is
//!   stored without one. A value that is there must be a non-empty string (422 otherwise).
//! - Pointers are RFC 6901 (`/data/id`, `/items/0/id`, `~1` for `/`, `~0` for `~`). The walk reads
//!   only the objects and arrays on the pointer's path, borrowing from the body.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::error::SourceError;
use super::kind::{Kind, OptionError, Options, ParsedEvent, Registration, read_options};
use super::parse::{body_digest, check_depth, pointer_tokens};

/// `kind: json`, with its options `dedupe` and `event_type`.
pub const KIND: Registration = Registration {
    name: "json",
    options: &["dedupe", "event_type"],
    build,
};

/// The options of a `json` source.
#[derive(Debug, Default, Deserialize)]
struct JsonOptions {
    /// Where the dedupe key is.
    #[serde(default)]
    dedupe: Option<FromSettings>,
    /// Where the event type is.
    #[serde(default)]
    event_type: Option<FromSettings>,
}

/// `{header: NAME}` or `{pointer: /json/pointer}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FromSettings {
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    pointer: Option<String>,
}

/// Where a value is found in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Locator {
    /// In a header (its first and only value).
    Header(HeaderName),
    /// In the body: the pointer as written (for answers) and its unescaped reference tokens.
    Pointer(String, Vec<String>),
}

fn locator(field: &str, from: &FromSettings, errors: &mut Vec<OptionError>) -> Option<Locator> {
    match (&from.header, &from.pointer) {
        (Some(h), None) => match HeaderName::from_bytes(h.as_bytes()) {
            Ok(name) => Some(Locator::Header(name)),
            Err(_) => {
                errors.push((
                    format!("{field}.header"),
                    format!("`{h}` is not a valid header name"),
                ));
                None
            }
        },
        // `""` is the whole document (RFC 6901).
        (None, Some(p)) if p.is_empty() => Some(Locator::Pointer(p.clone(), Vec::new())),
        (None, Some(p)) => match pointer_tokens(p, "/data/id") {
            Ok(t) => Some(Locator::Pointer(p.clone(), t)),
            Err(why) => {
                errors.push((format!("{field}.pointer"), why));
                None
            }
        },
        (Some(_), Some(_)) => {
            errors.push((
                field.to_string(),
                "give `header` or `pointer`, not both".into(),
            ));
            None
        }
        (None, None) => {
            errors.push((
                field.to_string(),
                "needs `header: <name>` or `pointer: /json/pointer`".into(),
            ));
            None
        }
    }
}

fn build(options: &Options) -> Result<Arc<dyn Kind>, Vec<OptionError>> {
    let o: JsonOptions = read_options(options)?;
    let mut errors = Vec::new();
    let dedupe = o
        .dedupe
        .as_ref()
        .and_then(|d| locator("dedupe", d, &mut errors));
    let event_type = o
        .event_type
        .as_ref()
        .and_then(|d| locator("event_type", d, &mut errors));
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Arc::new(Json { dedupe, event_type }))
}

/// Any JSON sender.
#[derive(Debug, Default)]
pub struct Json {
    /// Where the dedupe key is; the body's SHA-256 when `None`.
    dedupe: Option<Locator>,
    /// Where the event type is; none when `None`.
    event_type: Option<Locator>,
}

impl Kind for Json {
    fn name(&self) -> &'static str {
        KIND.name
    }

    fn parse(&self, headers: &HeaderMap, body: &Bytes) -> Result<ParsedEvent, SourceError> {
        check_depth(body)?;
        // Validates the whole body (any JSON value) without building it.
        let root: &RawValue =
            serde_json::from_slice(body).map_err(|e| SourceError::malformed(&e))?;
        let (dedupe_key, sender_id) = match &self.dedupe {
            None => (body_digest(body), None),
            Some(at) => {
                let key = match find(at, headers, root)? {
                    Found::Value(Value::Text(t)) => t.into_owned(),
                    Found::Value(Value::Number(n)) => n.to_string(),
                    Found::Value(Value::Other) => {
                        return Err(refuse(at, "must be a string or a number (the dedupe key)"));
                    }
                    Found::Missing | Found::Value(Value::Null) => {
                        return Err(refuse(
                            at,
                            "is required: this source takes its dedupe key from it",
                        ));
                    }
                };
                if key.trim().is_empty() {
                    return Err(refuse(at, "must not be empty (it is the dedupe key)"));
                }
                (key.clone(), Some(key))
            }
        };
        let event_type = match &self.event_type {
            None => None,
            Some(at) => match find(at, headers, root)? {
                Found::Missing | Found::Value(Value::Null) => None,
                Found::Value(Value::Text(t)) if !t.trim().is_empty() => Some(t.into_owned()),
                Found::Value(_) => {
                    return Err(refuse(at, "must be a non-empty string (the event type)"));
                }
            },
        };
        Ok(ParsedEvent {
            event_type,
            dedupe_key,
            sender_id,
            projection: None,
        })
    }
}

/// The 422 for a value at `at`: at its pointer, or naming its header.
fn refuse(at: &Locator, why: &str) -> SourceError {
    match at {
        Locator::Pointer(p, _) => SourceError::invalid(p.clone(), why.to_string()),
        Locator::Header(h) => SourceError::invalid("", format!("the {h} header {why}")),
    }
}

/// What a locator found.
enum Found<'a> {
    /// Nothing there.
    Missing,
    /// A value.
    Value(Value<'a>),
}

/// A found value, as far as a key or a type can use it.
enum Value<'a> {
    /// A string (a header's text, or a JSON string unescaped).
    Text(Cow<'a, str>),
    /// A JSON number, as written.
    Number(&'a str),
    /// JSON `null`.
    Null,
    /// An object, an array or a boolean.
    Other,
}

fn find<'a>(
    at: &Locator,
    headers: &'a HeaderMap,
    root: &'a RawValue,
) -> Result<Found<'a>, SourceError> {
    match at {
        Locator::Header(name) => {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (None, _) => Ok(Found::Missing),
                (Some(v), None) => match v.to_str() {
                    Ok(t) => Ok(Found::Value(Value::Text(Cow::Borrowed(t.trim())))),
                    Err(_) => Err(refuse(at, "is not visible ASCII")),
                },
                (Some(_), Some(_)) => Err(refuse(at, "is given more than once")),
            }
        }
        Locator::Pointer(_, tokens) => {
            let mut current = root;
            for token in tokens {
                match step(current, token) {
                    Some(next) => current = next,
                    None => return Ok(Found::Missing),
                }
            }
            Ok(Found::Value(leaf(current)))
        }
    }
}

/// What a raw value is, reading a string only when it is one.
fn leaf(raw: &RawValue) -> Value<'_> {
    let text = raw.get().trim_ascii_start();
    match text.as_bytes().first() {
        Some(b'"') => {
            serde_json::from_str::<StrValue<'_>>(text).map_or(Value::Other, |s| Value::Text(s.0))
        }
        Some(b'-' | b'0'..=b'9') => Value::Number(text.trim_ascii_end()),
        Some(b'n') => Value::Null,
        _ => Value::Other,
    }
}

/// The member `token` of an object, or the element at index `token` of an array.
fn step<'a>(raw: &'a RawValue, token: &str) -> Option<&'a RawValue> {
    let text = raw.get().trim_ascii_start();
    let mut de = serde_json::Deserializer::from_str(text);
    match text.as_bytes().first() {
        Some(b'{') => de.deserialize_map(Member(token)).ok().flatten(),
        Some(b'[') => {
            // RFC 6901: an index is `0` or digits without a leading zero.
            let plain = token.bytes().all(|b| b.is_ascii_digit())
                && (token == "0" || (!token.starts_with('0') && !token.is_empty()));
            let index: usize = token.parse().ok().filter(|_| plain)?;
            de.deserialize_seq(Element(index)).ok().flatten()
        }
        _ => None,
    }
}

/// A string that borrows from the body when it has no escapes.
struct StrValue<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for StrValue<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(StrValue(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(StrValue(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Finds one member of an object (the last, if a key is repeated, as most JSON readers do).
struct Member<'t>(&'t str);

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<StrValue<'de>>()? {
            if key.0 == self.0 {
                found = Some(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Finds one element of an array.
struct Element(usize);

impl<'de> Visitor<'de> for Element {
    type Value = Option<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut i = 0usize;
        loop {
            if i == self.0 {
                match seq.next_element::<&'de RawValue>()? {
                    Some(v) => found = Some(v),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i = i.saturating_add(1);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn kind(options: serde_json::Value) -> Arc<dyn Kind> {
        let options: Options = serde_json::from_value(options).unwrap();
        match build(&options) {
            Ok(k) => k,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn errors(options: serde_json::Value) -> Vec<OptionError> {
        let options: Options = serde_json::from_value(options).unwrap();
        match build(&options) {
            Ok(_) => panic!("built"),
            Err(e) => e,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn refused(k: &Arc<dyn Kind>, h: &HeaderMap, body: &str) -> (String, String) {
        match k.parse(h, &Bytes::from(body.to_string())) {
            Err(SourceError::Invalid { errors, .. }) => {
                (errors[0].pointer.clone(), errors[0].detail.clone())
            }
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn without_options_any_json_is_keyed_by_its_digest() {
        let k = kind(serde_json::json!({}));
        for body in [r#"{"a":1}"#, "[1,2]", "\"text\"", "3"] {
            let b = Bytes::from(body.to_string());
            let p = k.parse(&HeaderMap::new(), &b).unwrap();
            assert_eq!(p.dedupe_key, body_digest(&b));
            assert_eq!(p.event_type, None);
            assert_eq!(p.sender_id, None);
        }
        assert!(matches!(
            k.parse(&HeaderMap::new(), &Bytes::from_static(b"{\"a\":")),
            Err(SourceError::Malformed(_))
        ));
    }

    #[test]
    fn headers_give_the_dedupe_key_and_event_type_as_github_sends_them() {
        let k = kind(serde_json::json!({
            "dedupe": {"header": "X-GitHub-Delivery"},
            "event_type": {"header": "X-GitHub-Event"},
        }));
        let h = headers(&[
            ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ("x-github-event", "push"),
        ]);
        let p = k.parse(&h, &Bytes::from_static(br#"{"zen":"x"}"#)).unwrap();
        assert_eq!(p.dedupe_key, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(p.sender_id.as_deref(), Some(p.dedupe_key.as_str()));
        assert_eq!(p.event_type.as_deref(), Some("push"));
        // No event header: stored without a type. No delivery header: 422 naming it.
        let only_delivery = headers(&[("x-github-delivery", "d1")]);
        let p = k.parse(&only_delivery, &Bytes::from_static(b"{}")).unwrap();
        assert_eq!(p.event_type, None);
        let (pointer, detail) = refused(&k, &headers(&[("x-github-event", "push")]), "{}");
        assert_eq!(pointer, "");
        assert!(
            detail.starts_with("the x-github-delivery header is required"),
            "{detail}"
        );
        let twice = headers(&[("x-github-delivery", "a"), ("x-github-delivery", "b")]);
        assert!(refused(&k, &twice, "{}").1.contains("more than once"));
    }

    #[test]
    fn pointers_give_the_dedupe_key_and_event_type() {
        let k = kind(serde_json::json!({
            "dedupe": {"pointer": "/data/items/1/id"},
            "event_type": {"pointer": "/meta/a~1b"},
        }));
        let body = r#"{"meta":{"a/b":"order.paid","other":[1,{"x":2}]},"data":{"items":[{"id":"no"},{"id":"it\"em-2"}]}}"#;
        let p = k
            .parse(&HeaderMap::new(), &Bytes::from(body.to_string()))
            .unwrap();
        assert_eq!(p.dedupe_key, "it\"em-2");
        assert_eq!(p.event_type.as_deref(), Some("order.paid"));
        // A number is a key as written.
        let k = kind(serde_json::json!({"dedupe": {"pointer": "/id"}}));
        let p = k
            .parse(
                &HeaderMap::new(),
                &Bytes::from_static(br#"{"id": 820982911946154508}"#),
            )
            .unwrap();
        assert_eq!(p.dedupe_key, "820982911946154508");
    }

    #[test]
    fn a_missing_or_unusable_dedupe_value_is_a_422_at_its_pointer() {
        let k = kind(serde_json::json!({
            "dedupe": {"pointer": "/id"},
            "event_type": {"pointer": "/type"},
        }));
        let h = HeaderMap::new();
        for (body, detail) in [
            (r#"{"type":"a"}"#, "is required"),
            (r#"{"id":null}"#, "is required"),
            (r#"{"id":""}"#, "must not be empty"),
            (r#"{"id":{"a":1}}"#, "must be a string or a number"),
            (r#"{"id":true}"#, "must be a string or a number"),
            ("[1]", "is required"),
            ("\"id\"", "is required"),
        ] {
            let (pointer, got) = refused(&k, &h, body);
            assert_eq!(pointer, "/id", "{body}");
            assert!(got.starts_with(detail), "{body}: {got}");
        }
        let (pointer, _) = refused(&k, &h, r#"{"id":"a","type":3}"#);
        assert_eq!(pointer, "/type");
        let p = k.parse(&h, &Bytes::from_static(br#"{"id":"a"}"#)).unwrap();
        assert_eq!(p.event_type, None, "a missing event type is no event type");
    }

    #[test]
    fn array_indexes_follow_rfc_6901() {
        let body = Bytes::from_static(br#"{"a":["x","y"]}"#);
        for (pointer, found) in [
            ("/a/0", true),
            ("/a/1", true),
            ("/a/2", false),
            ("/a/01", false),
            ("/a/-", false),
            ("/a/+1", false),
        ] {
            let k = kind(serde_json::json!({"dedupe": {"pointer": pointer}}));
            assert_eq!(
                k.parse(&HeaderMap::new(), &body).is_ok(),
                found,
                "{pointer}"
            );
        }
    }

    #[test]
    fn options_are_checked_naming_the_field() {
        let e = errors(serde_json::json!({"dedupe": {"header": "X-A", "pointer": "/a"}}));
        assert_eq!(e[0].0, "dedupe");
        let e = errors(serde_json::json!({"event_type": {}}));
        assert_eq!(e[0].0, "event_type");
        let e = errors(serde_json::json!({"dedupe": {"pointer": "id"}}));
        assert_eq!(e[0].0, "dedupe.pointer");
        let e = errors(serde_json::json!({"dedupe": {"pointer": "/a~2"}}));
        assert_eq!(e[0].0, "dedupe.pointer");
        let e = errors(serde_json::json!({"event_type": {"header": "X Y"}}));
        assert_eq!(e[0].0, "event_type.header");
        let e = errors(serde_json::json!({"dedupe": {"heder": "X"}}));
        assert!(e[0].0.starts_with("dedupe"), "{e:?}");
    }
}
