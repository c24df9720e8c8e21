//! `respond`: the flow answers of a kratos source (DESIGN.md "Kratos flow answers";
//! PROTOCOLS.md §1.5–1.7).
//!
//! ```yaml
//! respond:
//!   rules:                               # in order; the first match interrupts the flow
//!     - pointer: /identity/traits/email
//!       matches: "@blocked\\.example$"   # or not_matches, equals, missing
//!       message: { id: 4000001, text: "This e-mail domain is not allowed" }
//!   patch:
//!     metadata_public: { synced_by: hookgate }
//! ```
//!
//! [`Respond::from_options`] reads and checks the block once, at start (every error names its
//! field, `respond.rules[0].matches: …`); [`Respond::evaluate`] runs on a body the kind has
//! already validated, and only for sources that have the block.
//!
//! The body is read as raw JSON ([`RawValue`]): a rule's pointer parses only the levels it walks
//! through, and a patch copies every value it does not touch byte for byte (no number or string
//! goes through a re-encoding that could change it).
//!
//! This file is a leaf: the Kratos answer bodies are written by its parent, `super`.

use std::collections::HashMap;

use regex::{Regex, RegexBuilder};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::sources::kind::OptionError;
use crate::sources::parse::pointer_tokens;

/// The most memory a rule's compiled regex may take (the `regex` crate's own default is 10 MiB).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The identity fields a patch may name: the ones Kratos applies from a 200 answer
/// (`parseWebhookResponse`, PROTOCOLS.md §1.7), merged objects first. Addresses are left out:
/// Kratos re-derives them from the traits.
pub const PATCH_FIELDS: &[&str] = &[
    "traits",
    "metadata_public",
    "metadata_admin",
    "schema_id",
    "state",
    "external_id",
];

/// The fields a patch deep-merges into the identity's current value (never answered `null`).
const MERGED: &[&str] = &["traits", "metadata_public", "metadata_admin"];

/// A kratos source's `respond` block, checked.
#[derive(Debug)]
pub struct Respond {
    rules: Vec<Rule>,
    patch: Vec<(&'static str, PatchValue)>,
}

/// One rule: where it looks, what it looks for, what it answers.
#[derive(Debug)]
struct Rule {
    /// The pointer as configured (for logs).
    pointer: String,
    /// Its reference tokens, unescaped (`~1` → `/`, `~0` → `~`).
    tokens: Vec<String>,
    condition: Condition,
    message: Message,
    /// `#/traits/email` for `/identity/traits/email`; `None` (a flow-level message) for a
    /// pointer outside the identity.
    instance_ptr: Option<String>,
}

#[derive(Debug)]
enum Condition {
    /// The value is a string the regex matches.
    Matches(Regex),
    /// The value is there (not `null`) and is not a string the regex matches.
    NotMatches(Regex),
    /// The value is this JSON value.
    Equals(Value),
    /// `true`: the value is absent or `null`; `false`: it is there.
    Missing(bool),
}

/// The message a matching rule answers, as Kratos shows it (PROTOCOLS.md §1.6).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Kratos' numeric message id.
    pub id: i64,
    /// The text shown to the user.
    pub text: String,
    /// `error` unless configured; Kratos shows any other type as `info`.
    pub kind: String,
    /// Any JSON, sent as it is (`null` when not configured).
    pub context: Option<Value>,
}

#[derive(Debug)]
enum PatchValue {
    /// Deep-merged into the identity's current value.
    Merge(Map<String, Value>),
    /// Replaces it (`schema_id`, `state`, `external_id`).
    Set(String),
}

/// A rule that matched: what to answer, and what to log.
#[derive(Debug)]
pub struct Interrupt<'a> {
    /// The rule's index in `rules`.
    pub rule: usize,
    /// The rule's pointer, as configured.
    pub pointer: &'a str,
    /// The derived `instance_ptr` (`None`: a flow-level message).
    pub instance_ptr: Option<&'a str>,
    /// The message.
    pub message: &'a Message,
}

/// What [`Respond::evaluate`] decided for one body.
#[derive(Debug)]
pub enum Outcome<'a> {
    /// A rule matched: answer 400 with its message, and do not store the event.
    Interrupt(Interrupt<'a>),
    /// No rule matched and there is a patch: store, and answer 200 with this
    /// `{"identity": {…}}` body.
    Patched(String),
    /// No rule matched and there is no patch: store and answer as without `respond`.
    Store,
}

impl Respond {
    /// Reads and checks a `respond` block. Error fields are relative to the source block
    /// (`respond.rules[0].matches`).
    ///
    /// # Errors
    /// Every problem found: a bad regex or pointer, a rule with no condition or two, a message
    /// without `id` or `text`, a patch field Kratos does not apply or a `null` one, unknown keys.
    pub fn from_options(value: &Value) -> Result<Self, Vec<OptionError>> {
        let mut errors = Vec::new();
        let Some(block) = value.as_object() else {
            return Err(vec![(
                "respond".into(),
                "must be a mapping with `rules`, `patch` or both".into(),
            )]);
        };
        unknown_keys(block, &["rules", "patch"], "respond", &mut errors);
        if !block.contains_key("rules") && !block.contains_key("patch") {
            errors.push((
                "respond".into(),
                "give `rules`, `patch` or both (or remove `respond`)".into(),
            ));
        }
        let mut rules = Vec::new();
        match block.get("rules") {
            None => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(rule) = rule(item, &format!("respond.rules[{i}]"), &mut errors) {
                        rules.push(rule);
                    }
                }
            }
            Some(_) => errors.push((
                "respond.rules".into(),
                "must be a list of rules like {pointer, matches, message}".into(),
            )),
        }
        let patch = match block.get("patch") {
            None => Vec::new(),
            Some(p) => patch(p, "respond.patch", &mut errors),
        };
        if errors.is_empty() {
            Ok(Self { rules, patch })
        } else {
            Err(errors)
        }
    }

    /// Checks the rules in order against a valid body, then makes the patch answer.
    ///
    /// The body has passed the kind's parser; a body that is not JSON after all matches no rule
    /// and is patched as an identity without values.
    pub fn evaluate<'s>(&'s self, body: &[u8]) -> Outcome<'s> {
        let root = serde_json::from_slice::<&RawValue>(body).ok();
        for (i, rule) in self.rules.iter().enumerate() {
            let value = root.and_then(|r| at(r, &rule.tokens));
            if rule.condition.holds(value) {
                return Outcome::Interrupt(Interrupt {
                    rule: i,
                    pointer: &rule.pointer,
                    instance_ptr: rule.instance_ptr.as_deref(),
                    message: &rule.message,
                });
            }
        }
        if self.patch.is_empty() {
            return Outcome::Store;
        }
        // The identity's members, read once for every field the patch names.
        let identity = root
            .and_then(|r| child(r, "identity"))
            .filter(|i| i.get().starts_with('{'))
            .and_then(|i| serde_json::from_str::<Entries<'_>>(i.get()).ok())
            .map(|e| e.0)
            .unwrap_or_default();
        let mut out = String::from(r#"{"identity":{"#);
        for (i, (field, value)) in self.patch.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_key(&mut out, field);
            match value {
                PatchValue::Merge(patch) => merge(&mut out, member(&identity, field), patch),
                PatchValue::Set(s) => push_json(&mut out, &Value::String(s.clone())),
            }
        }
        out.push_str("}}");
        Outcome::Patched(out)
    }
}

impl Condition {
    fn holds(&self, value: Option<&RawValue>) -> bool {
        let present = value.filter(|v| v.get() != "null");
        match self {
            Condition::Matches(re) => string(present).is_some_and(|s| re.is_match(&s)),
            Condition::NotMatches(re) => {
                present.is_some() && !string(present).is_some_and(|s| re.is_match(&s))
            }
            // `equals: null` matches an explicit `null`, not an absent value.
            Condition::Equals(want) => value
                .is_some_and(|v| serde_json::from_str::<Value>(v.get()).is_ok_and(|v| v == *want)),
            Condition::Missing(missing) => present.is_none() == *missing,
        }
    }
}

/// The value as a string, if it is one.
fn string(value: Option<&RawValue>) -> Option<String> {
    value.and_then(|v| serde_json::from_str::<String>(v.get()).ok())
}

// --- Reading the configuration ----------------------------------------------------------------

fn unknown_keys(
    block: &Map<String, Value>,
    known: &[&str],
    field: &str,
    errors: &mut Vec<OptionError>,
) {
    for key in block.keys().filter(|k| !known.contains(&k.as_str())) {
        let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
        errors.push((
            format!("{field}.{key}"),
            format!(
                "unknown field `{key}`, expected one of {}",
                expected.join(", ")
            ),
        ));
    }
}

fn rule(item: &Value, field: &str, errors: &mut Vec<OptionError>) -> Option<Rule> {
    let Some(r) = item.as_object() else {
        errors.push((
            field.into(),
            "must be a mapping like {pointer: /identity/traits/email, matches: \"…\", message: {id: 4000001, text: \"…\"}}".into(),
        ));
        return None;
    };
    let before = errors.len();
    unknown_keys(
        r,
        &[
            "pointer",
            "matches",
            "not_matches",
            "equals",
            "missing",
            "message",
        ],
        field,
        errors,
    );
    let pointer = match r.get("pointer") {
        Some(Value::String(p)) => match pointer_tokens(p, "/identity/traits/email") {
            Ok(t) => Some((p.clone(), t)),
            Err(why) => {
                errors.push((format!("{field}.pointer"), why));
                None
            }
        },
        Some(_) => {
            errors.push((
                format!("{field}.pointer"),
                "must be a JSON pointer string like /identity/traits/email".into(),
            ));
            None
        }
        None => {
            errors.push((
                format!("{field}.pointer"),
                "is required: the JSON pointer of the value the rule looks at, like /identity/traits/email".into(),
            ));
            None
        }
    };
    let given: Vec<&str> = ["matches", "not_matches", "equals", "missing"]
        .into_iter()
        .filter(|k| r.contains_key(*k))
        .collect();
    let condition = match given.as_slice() {
        [key] => condition(key, &r[*key], &format!("{field}.{key}"), errors),
        _ => {
            errors.push((
                field.into(),
                format!(
                    "give exactly one of `matches`, `not_matches`, `equals`, `missing` (found {})",
                    if given.is_empty() {
                        "none".to_string()
                    } else {
                        given.join(", ")
                    }
                ),
            ));
            None
        }
    };
    let message = match r.get("message") {
        Some(m) => message(m, &format!("{field}.message"), errors),
        None => {
            errors.push((
                format!("{field}.message"),
                "is required: {id: 4000001, text: \"what the user sees\"}".into(),
            ));
            None
        }
    };
    let ((pointer, tokens), condition, message) = (pointer?, condition?, message?);
    if errors.len() > before {
        return None;
    }
    let instance_ptr = instance_ptr(&pointer);
    Some(Rule {
        pointer,
        tokens,
        condition,
        message,
        instance_ptr,
    })
}

/// `#/traits/email` for `/identity/traits/email`: Kratos attaches the message to that UI node.
/// A pointer outside the identity (or `/identity` itself) gives a flow-level message.
fn instance_ptr(pointer: &str) -> Option<String> {
    pointer
        .strip_prefix("/identity/")
        .map(|rest| format!("#/{rest}"))
}

fn condition(
    key: &str,
    value: &Value,
    field: &str,
    errors: &mut Vec<OptionError>,
) -> Option<Condition> {
    match key {
        "matches" | "not_matches" => {
            let Some(pattern) = value.as_str() else {
                errors.push((
                    field.into(),
                    "must be a regular expression (a string)".into(),
                ));
                return None;
            };
            match RegexBuilder::new(pattern)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
            {
                Ok(re) if key == "matches" => Some(Condition::Matches(re)),
                Ok(re) => Some(Condition::NotMatches(re)),
                Err(e) => {
                    errors.push((field.into(), regex_error(&e)));
                    None
                }
            }
        }
        "equals" => Some(Condition::Equals(value.clone())),
        _ => match lenient_bool(value) {
            Some(b) => Some(Condition::Missing(b)),
            None => {
                errors.push((
                    field.into(),
                    "must be true (the value is absent or null) or false (it is there)".into(),
                ));
                None
            }
        },
    }
}

/// Why a pattern is refused, on one line: the regex crate's reason without its caret drawing.
fn regex_error(e: &regex::Error) -> String {
    match e {
        regex::Error::CompiledTooBig(limit) => format!(
            "the regular expression is too large (over {limit} bytes compiled); simplify it"
        ),
        other => {
            let text = other.to_string();
            let reason = text
                .lines()
                .filter_map(|l| l.trim().strip_prefix("error:"))
                .map(str::trim)
                .next_back()
                .unwrap_or_else(|| text.lines().next_back().unwrap_or_default().trim());
            format!("not a valid regular expression: {reason} (Rust `regex` syntax)")
        }
    }
}

/// A boolean, or its text (environment variables arrive as strings).
fn lenient_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn message(value: &Value, field: &str, errors: &mut Vec<OptionError>) -> Option<Message> {
    let Some(m) = value.as_object() else {
        errors.push((
            field.into(),
            "must be a mapping like {id: 4000001, text: \"what the user sees\"}".into(),
        ));
        return None;
    };
    let before = errors.len();
    unknown_keys(m, &["id", "text", "type", "context"], field, errors);
    let id = match m.get("id") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    if id.is_none() {
        let why = if m.contains_key("id") {
            "must be an integer (Kratos' numeric message id), like 4000001"
        } else {
            "is required: Kratos' numeric message id (an integer, like 4000001)"
        };
        errors.push((format!("{field}.id"), why.into()));
    }
    let text = m
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty());
    if text.is_none() {
        errors.push((
            format!("{field}.text"),
            "is required: the text Kratos shows the user (a non-empty string)".into(),
        ));
    }
    let kind = match m.get("type") {
        None => Some("error"),
        Some(Value::String(t)) if !t.trim().is_empty() => Some(t.as_str()),
        Some(_) => {
            errors.push((
                format!("{field}.type"),
                "must be `error` (the default) or another type such as `info`; Kratos shows any type but `error` as `info`".into(),
            ));
            None
        }
    };
    if errors.len() > before {
        return None;
    }
    Some(Message {
        id: id?,
        text: text?.to_string(),
        kind: kind?.to_string(),
        context: m.get("context").cloned(),
    })
}

fn patch(
    value: &Value,
    field: &str,
    errors: &mut Vec<OptionError>,
) -> Vec<(&'static str, PatchValue)> {
    let Some(p) = value.as_object() else {
        errors.push((
            field.into(),
            "must be a mapping of identity fields, like {metadata_public: {synced_by: hookgate}}"
                .into(),
        ));
        return Vec::new();
    };
    let before = errors.len();
    for key in p.keys().filter(|k| !PATCH_FIELDS.contains(&k.as_str())) {
        let expected: Vec<String> = PATCH_FIELDS.iter().map(|k| format!("`{k}`")).collect();
        errors.push((
            format!("{field}.{key}"),
            format!(
                "unknown field `{key}`: Kratos applies only {} from a webhook answer",
                expected.join(", ")
            ),
        ));
    }
    if p.is_empty() {
        errors.push((
            field.into(),
            "names no field: give at least one of traits, metadata_public, metadata_admin, schema_id, state, external_id (or remove `patch`)".into(),
        ));
    }
    let mut out = Vec::new();
    // In the order of PATCH_FIELDS, so that answers have one order whatever the YAML's.
    for name in PATCH_FIELDS {
        let Some(v) = p.get(*name) else { continue };
        let f = format!("{field}.{name}");
        match (v, MERGED.contains(name)) {
            (Value::Object(m), true) => out.push((*name, PatchValue::Merge(m.clone()))),
            (Value::Null, true) => errors.push((
                f,
                format!("must be a mapping: Kratos would erase the identity's {name} on a null"),
            )),
            (_, true) => errors.push((
                f,
                format!("must be a mapping, deep-merged into the identity's {name}"),
            )),
            (Value::String(s), false) => match *name {
                "state" if s != "active" && s != "inactive" => {
                    errors.push((f, "must be `active` or `inactive`".into()));
                }
                "schema_id" if s.trim().is_empty() => errors.push((
                    f,
                    "must not be empty (Kratos ignores an empty schema_id)".into(),
                )),
                _ => out.push((*name, PatchValue::Set(s.clone()))),
            },
            (_, false) => errors.push((f, "must be a string".into())),
        }
    }
    if errors.len() > before {
        return Vec::new();
    }
    out
}

// --- Reading the body -------------------------------------------------------------------------

/// The value at `tokens` under `root`, if there is one.
fn at<'a>(root: &'a RawValue, tokens: &[String]) -> Option<&'a RawValue> {
    tokens.iter().try_fold(root, |v, t| child(v, t))
}

/// The member `token` of an object, or the element `token` of an array.
fn child<'a>(value: &'a RawValue, token: &str) -> Option<&'a RawValue> {
    match value.get().as_bytes().first()? {
        b'{' => {
            let Entries(entries) = serde_json::from_str(value.get()).ok()?;
            member(&entries, token)
        }
        b'[' => {
            // RFC 6901: digits without a leading zero (`-` is past the end).
            if token.is_empty()
                || (token.len() > 1 && token.starts_with('0'))
                || !token.bytes().all(|b| b.is_ascii_digit())
            {
                return None;
            }
            let index: usize = token.parse().ok()?;
            let items: Vec<&'a RawValue> = serde_json::from_str(value.get()).ok()?;
            items.get(index).copied()
        }
        _ => None,
    }
}

/// The member `key` of an object's members: the last of duplicate keys, as Kratos' own decoder
/// reads them.
fn member<'a>(entries: &[(String, &'a RawValue)], key: &str) -> Option<&'a RawValue> {
    entries
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
}

/// An object's members in order, values raw.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Entries<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Entries<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

// --- Writing the answer -----------------------------------------------------------------------

fn push_key(out: &mut String, key: &str) {
    push_json(out, &Value::String(key.to_string()));
    out.push(':');
}

fn push_json(out: &mut String, value: &Value) {
    // Serializing a `Value` to a string cannot fail (its keys are strings).
    out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()));
}

/// Writes `current` deep-merged with `patch` (RFC 7396): members the patch does not name are
/// copied as they are, a `null` in the patch removes a member, an object is merged into the
/// current member if that is an object, anything else replaces it. The result is an object, so
/// never `null`.
fn merge(out: &mut String, current: Option<&RawValue>, patch: &Map<String, Value>) {
    let entries = current
        .filter(|c| c.get().starts_with('{'))
        .and_then(|c| serde_json::from_str::<Entries<'_>>(c.get()).ok())
        .map(|e| e.0)
        .unwrap_or_default();
    // The last of duplicate keys wins, as in Kratos' decoder.
    let last: HashMap<&str, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.as_str(), i))
        .collect();
    out.push('{');
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
    };
    for (i, (k, v)) in entries.iter().enumerate() {
        if last.get(k.as_str()) != Some(&i) || patch.contains_key(k) {
            continue;
        }
        sep(out);
        push_key(out, k);
        out.push_str(v.get());
    }
    for (k, v) in patch {
        match v {
            Value::Null => {}
            Value::Object(p) => {
                sep(out);
                push_key(out, k);
                let cur = last
                    .get(k.as_str())
                    .and_then(|i| entries.get(*i))
                    .map(|e| e.1);
                merge(out, cur, p);
            }
            other => {
                sep(out);
                push_key(out, k);
                push_json(out, other);
            }
        }
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn respond(v: Value) -> Respond {
        Respond::from_options(&v).unwrap()
    }

    fn errors(v: Value) -> Vec<OptionError> {
        Respond::from_options(&v).unwrap_err()
    }

    fn body(identity: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({ "identity": identity })).unwrap()
    }

    fn rule_of(r: &Respond, b: &[u8]) -> Option<usize> {
        match r.evaluate(b) {
            Outcome::Interrupt(i) => Some(i.rule),
            _ => None,
        }
    }

    #[test]
    fn each_rule_kind_matches_what_it_says() {
        let r = respond(json!({"rules": [
            {"pointer": "/identity/traits/email", "matches": "@blocked\\.example$",
             "message": {"id": 1, "text": "blocked"}},
            {"pointer": "/identity/traits/email", "not_matches": "@",
             "message": {"id": 2, "text": "not an e-mail"}},
            {"pointer": "/identity/traits/tier", "equals": {"a": [1, "x"]},
             "message": {"id": 3, "text": "tier"}},
            {"pointer": "/identity/traits/name", "missing": true,
             "message": {"id": 4, "text": "name"}},
        ]}));
        let ok = json!({"id": "x", "traits": {"email": "a@b.example", "name": "Ann"}});
        assert_eq!(rule_of(&r, &body(ok.clone())), None);
        let mut b = ok.clone();
        b["traits"]["email"] = "a@blocked.example".into();
        assert_eq!(rule_of(&r, &body(b)), Some(0));
        let mut b = ok.clone();
        b["traits"]["email"] = "nobody".into();
        assert_eq!(rule_of(&r, &body(b)), Some(1));
        let mut b = ok.clone();
        b["traits"]["email"] = 7.into();
        assert_eq!(rule_of(&r, &body(b)), Some(1), "not a string: not a match");
        let mut b = ok.clone();
        b["traits"]["tier"] = json!({"a": [1, "x"]});
        assert_eq!(rule_of(&r, &body(b)), Some(2));
        let mut b = ok.clone();
        b["traits"]["tier"] = json!({"a": [1, "y"]});
        assert_eq!(rule_of(&r, &body(b)), None);
        for name in [Value::Null, json!("absent")] {
            let mut b = ok.clone();
            if name.is_null() {
                b["traits"]["name"] = Value::Null;
            } else {
                b["traits"].as_object_mut().unwrap().remove("name");
            }
            assert_eq!(rule_of(&r, &body(b)), Some(3), "{name}");
        }
    }

    #[test]
    fn pointers_walk_arrays_and_escapes_and_the_first_match_wins() {
        let r = respond(json!({"rules": [
            {"pointer": "/identity/verifiable_addresses/1/verified", "equals": false,
             "message": {"id": 10, "text": "second address unverified"}},
            {"pointer": "/identity/traits/a~1b~0c", "missing": false,
             "message": {"id": 11, "text": "odd key present"}},
        ]}));
        let b = body(
            json!({"verifiable_addresses": [{"verified": true}, {"verified": false}],
            "traits": {"a/b~c": 1}}),
        );
        assert_eq!(rule_of(&r, &b), Some(0));
        let b = body(json!({"verifiable_addresses": [{"verified": true}], "traits": {"a/b~c": 1}}));
        assert_eq!(rule_of(&r, &b), Some(1));
        let b = body(json!({"traits": {}}));
        assert_eq!(rule_of(&r, &b), None);
    }

    #[test]
    fn instance_ptr_is_derived_from_the_pointer() {
        assert_eq!(
            instance_ptr("/identity/traits/email").as_deref(),
            Some("#/traits/email")
        );
        assert_eq!(instance_ptr("/identity").as_deref(), None);
        assert_eq!(instance_ptr("/flow/transient_payload/x").as_deref(), None);
    }

    #[test]
    fn a_patch_deep_merges_and_never_answers_null() {
        let r = respond(json!({"patch": {
            "metadata_public": {"synced_by": "hookgate", "nested": {"b": 2, "gone": null}},
            "traits": {"plan": "free"},
            "state": "inactive",
        }}));
        let b = br#"{"identity":{"id":"x","traits":{"email":"a@b.c","big":1.10000000000000000001,"plan":"pro"},
            "metadata_public":{"keep":[1,{"x":null}],"nested":{"a":1,"gone":3}}}}"#;
        let Outcome::Patched(s) = r.evaluate(b) else {
            panic!()
        };
        // Untouched numbers keep their bytes.
        assert!(s.contains(r#""big":1.10000000000000000001"#), "{s}");
        let v: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(
            v,
            json!({"identity": {
                "traits": {"email": "a@b.c", "big": 1.1, "plan": "free"},
                "metadata_public": {"keep": [1, {"x": null}], "nested": {"a": 1, "b": 2}, "synced_by": "hookgate"},
                "state": "inactive",
            }})
        );
        // Null or absent metadata: just the patch (its nulls dropped).
        for identity in [json!({"metadata_public": null}), json!({})] {
            let Outcome::Patched(s) = r.evaluate(&body(identity)) else {
                panic!()
            };
            let v: Value = serde_json::from_str(&s).unwrap();
            assert_eq!(
                v["identity"]["metadata_public"],
                json!({"synced_by": "hookgate", "nested": {"b": 2}})
            );
            assert_eq!(v["identity"]["traits"], json!({"plan": "free"}));
        }
    }

    #[test]
    fn bad_blocks_name_the_field() {
        let e = errors(json!({"rules": [
            {"pointer": "/identity/traits/email", "matches": "(", "message": {"id": 1, "text": "x"}},
            {"pointer": "identity/traits", "missing": true, "message": {"text": ""}},
            {"pointer": "/a~2", "equals": 1, "missing": true, "message": {"id": 1, "text": "t", "colour": 1}},
        ], "patch": {"traits": null, "metadata_admin": 3, "state": "gone", "credentials": {}}, "extra": 1}));
        let fields: Vec<&str> = e.iter().map(|(f, _)| f.as_str()).collect();
        for want in [
            "respond.extra",
            "respond.rules[0].matches",
            "respond.rules[1].pointer",
            "respond.rules[1].message.id",
            "respond.rules[1].message.text",
            "respond.rules[2].pointer",
            "respond.rules[2]",
            "respond.rules[2].message.colour",
            "respond.patch.credentials",
            "respond.patch.traits",
            "respond.patch.metadata_admin",
            "respond.patch.state",
        ] {
            assert!(fields.contains(&want), "{want} not in {e:#?}");
        }
        assert!(
            e.iter()
                .all(|(_, why)| !why.contains('\n') && !why.is_empty())
        );
        assert_eq!(errors(json!({}))[0].0, "respond");
        assert_eq!(errors(json!({"patch": {}}))[0].0, "respond.patch");
        assert_eq!(errors(json!("x"))[0].0, "respond");
    }

    #[test]
    fn rules_without_a_patch_store_as_before() {
        let r = respond(
            json!({"rules": [{"pointer": "/identity/traits/email", "missing": true,
            "message": {"id": 1, "text": "x"}}]}),
        );
        assert!(matches!(
            r.evaluate(&body(json!({"traits": {"email": "a"}}))),
            Outcome::Store
        ));
    }
}
