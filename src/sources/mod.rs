//! Sender kinds: what each sender's payload must look like, how a retry is recognised, and how
//! hookgate answers it.
//!
//! # Layout
//! - [`kind`]: [`Kind`], the one trait every kind implements (parse, accepted answer, refusal
//!   answer), and [`Registration`], how a kind is listed.
//! - this file: [`KINDS`], every kind by the name `kind:` takes, declared by one line,
//!   `kinds!(kratos, identus, abp, standard, json)`. **A new kind is one file here and its name in that line**:
//!   its options, checks, parser and answers live in its file. And [`build`], which makes a
//!   source's kind from its block.
//! - one file per kind: [`kratos`], [`identus`], [`abp`], [`standard`] (any Standard Webhooks
//!   sender), [`json`] (any JSON sender; dedupe key and event type from a header or a pointer).
//! - [`parse`]: what every parser shares (depth limit, object check, field-naming errors).
//! - [`error`]: [`SourceError`], why a request was refused, and the problem+json answer.
//! - [`kratos::respond`] (`kratos/respond.rs`): a kratos source's `respond` block, the rules and
//!   patch behind [`Kind::decide`]'s flow answers.
//!
//! May call: `config` (a source block's options), `http` (answers), `store` (the projection
//! type a parser fills in). The request path that calls a kind is `crate::receive`.

pub mod error;
pub mod kind;
pub mod parse;

use std::sync::Arc;

use crate::config::{SOURCE_KEYS, Settings, SourceSettings};

pub use error::SourceError;
pub use kind::{Builder, Kind, OptionError, Options, ParsedEvent, Registration, read_options};
pub use parse::{MAX_JSON_DEPTH, valid_json};

/// Declares each kind's module (`src/sources/{name}.rs`, which exports `KIND`) and lists it in
/// [`KINDS`], in order.
macro_rules! kinds {
    ($($kind:ident),* $(,)?) => {
        $(pub mod $kind;)*

        /// Every kind hookgate knows.
        pub const KINDS: &[Registration] = &[$($kind::KIND),*];
    };
}

kinds!(kratos, identus, abp, standard, json);

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
    build_kind(&source.kind, &source.options)
}

/// Builds kind `name` with `options` (the keys of a source block beyond the common ones).
///
/// # Errors
/// As [`build`].
pub fn build_kind(name: &str, options: &Options) -> Result<Arc<dyn Kind>, Vec<OptionError>> {
    let Some(reg) = registration(name) else {
        let names: Vec<String> = KINDS.iter().map(|k| format!("`{}`", k.name)).collect();
        return Err(vec![(
            "kind".into(),
            format!(
                "unknown variant `{name}`, expected one of {}",
                names.join(", ")
            ),
        )]);
    };
    let errors: Vec<OptionError> = options
        .keys()
        .filter(|key| !reg.options.contains(&key.as_str()))
        .map(|key| (key.clone(), not_taken(reg, key)))
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    (reg.build)(options)
}

/// Why `key` is wrong in a block of kind `reg`: which kinds take it, or which keys there are.
fn not_taken(reg: &Registration, key: &str) -> String {
    let takers: Vec<String> = KINDS
        .iter()
        .filter(|k| k.options.contains(&key))
        .map(|k| format!("`{}`", k.name))
        .collect();
    if !takers.is_empty() {
        return format!("only {} sources take `{key}`", takers.join(" and "));
    }
    let expected: Vec<String> = SOURCE_KEYS
        .iter()
        .chain(reg.options)
        .map(|k| format!("`{k}`"))
        .collect();
    format!(
        "unknown field `{key}`, expected one of {}",
        expected.join(", ")
    )
}

/// Builds source `id`'s kind; errors name their field in full (`sources.{id}.events: …`).
///
/// # Errors
/// As [`build`].
pub fn build_named(id: &str, source: &SourceSettings) -> Result<Arc<dyn Kind>, Vec<String>> {
    build(source).map_err(|errors| {
        errors
            .into_iter()
            .map(|(field, why)| format!("sources.{id}.{field}: {why}"))
            .collect()
    })
}

/// Checks every source's kind and options, as `serve` would build them.
pub fn check(settings: &Settings) -> Vec<String> {
    settings
        .sources
        .iter()
        .filter_map(|(id, source)| build_named(id, source).err())
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests;
