//! [`KINDS`]: every kind hookgate knows, and building a source's kind from its block.

use std::sync::Arc;

use super::kind::{Kind, OptionError, Registration};
use super::{abp, identus, kratos};
use crate::config::{SOURCE_KEYS, Settings, SourceSettings};

/// Every kind hookgate knows. A new kind is its own file and one line here.
pub const KINDS: &[Registration] = &[kratos::KIND, identus::KIND, abp::KIND];

/// The registration of kind `name`.
pub fn registration(name: &str) -> Option<&'static Registration> {
    KINDS.iter().find(|k| k.name == name)
}

/// Builds a source's kind from its block.
///
/// # Errors
/// Every problem found, each naming its field under the block (`kind`, `events`, …): an unknown
/// kind, an option the kind does not take, or an option value it refuses.
pub fn build(source: &SourceSettings) -> Result<Arc<dyn Kind>, Vec<OptionError>> {
    let Some(reg) = registration(&source.kind) else {
        let names: Vec<String> = KINDS.iter().map(|k| format!("`{}`", k.name)).collect();
        return Err(vec![(
            "kind".into(),
            format!(
                "unknown variant `{}`, expected one of {}",
                source.kind,
                names.join(", ")
            ),
        )]);
    };
    let mut errors = Vec::new();
    for key in source.options.keys() {
        if reg.options.contains(&key.as_str()) {
            continue;
        }
        let takers: Vec<String> = KINDS
            .iter()
            .filter(|k| k.options.contains(&key.as_str()))
            .map(|k| format!("`{}`", k.name))
            .collect();
        let why = if takers.is_empty() {
            let mut expected: Vec<String> = SOURCE_KEYS.iter().map(|k| format!("`{k}`")).collect();
            expected.extend(reg.options.iter().map(|k| format!("`{k}`")));
            format!(
                "unknown field `{key}`, expected one of {}",
                expected.join(", ")
            )
        } else {
            format!("only {} sources take `{key}`", takers.join(" and "))
        };
        errors.push((key.clone(), why));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    (reg.build)(&source.options)
}

/// Checks every source's kind and options, as `serve` would build them.
pub fn check(settings: &Settings) -> Vec<String> {
    let mut errors = Vec::new();
    for (id, source) in &settings.sources {
        if let Err(e) = build(source) {
            errors.extend(
                e.into_iter()
                    .map(|(field, why)| format!("sources.{id}.{field}: {why}")),
            );
        }
    }
    errors
}
