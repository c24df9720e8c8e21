//! Sender kinds: what each sender's payload must look like, how a retry is recognised, and how
//! hookgate answers it.
//!
//! # Layout
//! - [`kind`]: [`Kind`], the one trait every kind implements (parse, accepted answer, refusal
//!   answer), and [`Registration`], how a kind is listed.
//! - this file: [`KINDS`], every kind by the name `kind:` takes, declared by one line,
//!   `kinds!(kratos, identus, abp)`. **A new kind is one file here and its name in that line**:
//!   its options, checks, parser and answers live in its file. And [`build`], which makes a
//!   source's kind from its block.
//! - one file per kind: [`kratos`], [`identus`], [`abp`].
//! - [`json`]: what every parser shares (depth limit, object check, field-naming errors).
//! - [`error`]: [`SourceError`], why a request was refused, and the problem+json answer.
//!
//! May call: `config` (a source block's options), `http` (answers), `store` (the projection
//! type a parser fills in). The request path that calls a kind is `crate::receive`.

pub mod error;
pub mod json;
pub mod kind;

use std::sync::Arc;

use crate::config::{SOURCE_KEYS, Settings, SourceSettings};

pub use error::SourceError;
pub use json::{MAX_JSON_DEPTH, valid_json};
pub use kind::{Builder, Kind, OptionError, Options, ParsedEvent, Registration, read_options};

/// Declares each kind's module (`src/sources/{name}.rs`, which exports `KIND`) and lists it in
/// [`KINDS`], in order.
macro_rules! kinds {
    ($($kind:ident),* $(,)?) => {
        $(pub mod $kind;)*

        /// Every kind hookgate knows.
        pub const KINDS: &[Registration] = &[$($kind::KIND),*];
    };
}

kinds!(kratos, identus, abp);

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

#[cfg(test)]
mod tests;
