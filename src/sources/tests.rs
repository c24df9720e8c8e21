//! Tests of what every kind shares: the registry, JSON limits, error summaries.

use std::collections::HashSet;

use bytes::Bytes;
use http::HeaderMap;

use super::parse::{check_depth, sub_range};
use super::*;
use crate::config::SourceSettings;

#[test]
fn sub_range_finds_a_parsed_slice_in_the_body() {
    let body = br#"{"a":{"b":1}}"#;
    let inner = &std::str::from_utf8(body).unwrap()[5..12];
    let range = sub_range(body, inner).unwrap();
    assert_eq!(range, 5..12);
    assert_eq!(&body[range], br#"{"b":1}"#);
    assert_eq!(sub_range(body, "elsewhere"), None);
}

/// `depth` nested arrays around a number.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// Each sender's sample with `value` put where its format allows any JSON.
fn samples_with(value: &str) -> Vec<(&'static str, Result<ParsedEvent, SourceError>)> {
    let identity = include_str!("../../tests/fixtures/kratos_guide_identity.json").replacen(
        '{',
        &format!("{{\"extra\":{value},"),
        1,
    );
    let kratos_body = Bytes::from(format!("{{\"identity\":{identity}}}"));
    let identus_body = Bytes::from(
        include_str!("../../tests/fixtures/identus_connection.json").replacen(
            "\"data\":{",
            &format!("\"data\":{{\"extra\":{value},"),
            1,
        ),
    );
    let abp_body = Bytes::from(format!(
        "{{\"Id\":\"e1\",\"WebhookEvent\":\"Deep\",\"Attempt\":1,\"Data\":{value}}}"
    ));
    vec![
        ("kratos", kratos::parse(&HeaderMap::new(), &kratos_body)),
        ("identus", identus::parse(&identus_body)),
        ("abp", abp::parse(&abp_body, true, None)),
        (
            "abp bare",
            abp::parse(&Bytes::from(value.to_string()), false, None),
        ),
    ]
}

#[test]
fn json_nested_past_the_limit_is_a_422_naming_the_limit() {
    for (parser, outcome) in samples_with(&nested(MAX_JSON_DEPTH + 1)) {
        match outcome {
            Err(SourceError::Invalid { errors, .. }) => {
                assert!(
                    errors[0].detail.contains("nested deeper than 128 levels"),
                    "{parser}: {errors:?}"
                );
            }
            other => panic!("{parser}: {other:?}"),
        }
    }
    // Far past it (a stack overflow in a recursive parser without a limit).
    for (parser, outcome) in samples_with(&nested(100_000)) {
        assert!(
            matches!(outcome, Err(SourceError::Invalid { .. })),
            "{parser}: {outcome:?}"
        );
    }
}

#[test]
fn brackets_inside_strings_do_not_count_towards_the_depth() {
    let deep_text = format!("{{\"a\":\"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
    assert_eq!(check_depth(deep_text.as_bytes()), Ok(()));
    assert!(check_depth(nested(MAX_JSON_DEPTH).as_bytes()).is_ok());
    assert!(check_depth(nested(MAX_JSON_DEPTH + 1).as_bytes()).is_err());
    // Unbalanced or truncated input is left to the parser.
    assert_eq!(check_depth(b"]]]}}\"\\"), Ok(()));
}

#[test]
fn json_nested_within_the_limit_is_accepted() {
    // The value sits one or two levels down in each format.
    for (parser, outcome) in samples_with(&nested(MAX_JSON_DEPTH - 3)) {
        assert!(outcome.is_ok(), "{parser}: {outcome:?}");
    }
    // Broken JSON stays a 400.
    for (parser, outcome) in samples_with("[[[1,]]]") {
        assert!(
            matches!(outcome, Err(SourceError::Malformed(_))),
            "{parser}: {outcome:?}"
        );
    }
}

#[test]
fn a_summary_names_keys_that_are_plain_names_and_hides_the_others() {
    let e = SourceError::Invalid {
        code: None,
        hint: None,
        errors: vec![
            crate::http::problem::FieldError {
                pointer: "/identity/credentials/line\nbreak/version".into(),
                detail: "invalid".into(),
            },
            crate::http::problem::FieldError {
                pointer: "/data/connectionId".into(),
                detail: "invalid".into(),
            },
        ],
    };
    assert_eq!(
        e.summary(),
        "payload does not fit at /identity/credentials/*/version, /data/connectionId"
    );
}

#[test]
fn broken_json_is_a_400_whatever_else_is_wrong_with_it() {
    let deep_and_broken = format!("{}1", "[".repeat(MAX_JSON_DEPTH + 5));
    for body in [
        "1[",
        "\"state\"{}",
        "1e999\u{fe}",
        "[-1e999",
        deep_and_broken.as_str(),
    ] {
        let body = Bytes::from(body.to_string());
        for (parser, outcome) in [
            ("kratos", kratos::parse(&HeaderMap::new(), &body)),
            ("identus", identus::parse(&body)),
            ("abp", abp::parse(&body, true, None)),
        ] {
            assert!(
                matches!(outcome, Err(SourceError::Malformed(_))),
                "{parser} {body:?}: {outcome:?}"
            );
        }
    }
}

fn source(yaml: &str) -> SourceSettings {
    let mut block: SourceSettings = serde_json::from_value(serde_json::json!({
        "kind": "abp",
        "path": "/p",
        "verify": {"scheme": "none"},
    }))
    .unwrap();
    let extra: serde_json::Map<String, serde_json::Value> = serde_json::from_str(yaml).unwrap();
    for (k, v) in extra {
        if k == "kind" {
            block.kind = v.as_str().unwrap().to_string();
        } else {
            block.options.insert(k, v);
        }
    }
    block
}

fn errors(yaml: &str) -> Vec<(String, String)> {
    match build(&source(yaml)) {
        Ok(k) => panic!("{yaml}: built a `{}`", k.name()),
        Err(e) => e,
    }
}

#[test]
fn every_kind_is_registered_once_and_builds_without_options() {
    let names: HashSet<&str> = KINDS.iter().map(|k| k.name).collect();
    assert_eq!(names.len(), KINDS.len());
    for k in KINDS {
        let kind = (k.build)(&Options::new()).unwrap();
        assert_eq!(kind.name(), k.name);
    }
}

#[test]
fn an_unknown_kind_is_named_with_the_known_ones() {
    let e = errors(r#"{"kind": "github"}"#);
    assert_eq!(e[0].0, "kind");
    assert_eq!(
        e[0].1,
        "unknown variant `github`, expected one of `kratos`, `identus`, `abp`, `standard`, `json`"
    );
}

#[test]
fn options_a_kind_does_not_take_are_named_with_what_takes_them() {
    let e = errors(r#"{"kind": "identus", "events": ["A"], "pth": "/x"}"#);
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(
        e[0],
        ("events".into(), "only `abp` sources take `events`".into())
    );
    assert_eq!(e[1].0, "pth");
    assert!(
        e[1].1
            .starts_with("unknown field `pth`, expected one of `kind`, `path`, `verify`"),
        "{}",
        e[1].1
    );
}

#[test]
fn abp_options_are_read_and_checked() {
    let e = errors(r#"{"envelope": "maybe"}"#);
    assert_eq!(e[0].0, "envelope");
    let e = errors(r#"{"envelope": false, "events": ["A", " "]}"#);
    assert!(
        e.iter()
            .any(|(f, why)| f == "events" && why.contains("bare data")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|(f, why)| f == "events" && why.contains("must not be empty")),
        "{e:?}"
    );
    let e = errors(r#"{"events": "A"}"#);
    assert_eq!(e[0].0, "events");
    // Environment variables give strings: `envelope: "false"` is read as false.
    let bare = build(&source(r#"{"envelope": "false"}"#)).unwrap();
    let data = Bytes::from_static(b"[1,2]");
    assert!(
        bare.parse(&HeaderMap::new(), &data).is_ok(),
        "bare data is any JSON"
    );
    let enveloped = build(&source("{}")).unwrap();
    assert!(enveloped.parse(&HeaderMap::new(), &data).is_err());
}
