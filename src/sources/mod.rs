//! Sender kinds: what each sender's payload must look like, how a retry is recognised, and how
//! hookgate answers it.
//!
//! # Layout
//! - [`kind`]: [`Kind`], the one trait every kind implements (parse, accepted answer, refusal
//!   answer), and [`Registration`], how a kind is listed.
//! - [`registry`]: [`KINDS`], every kind by the name `kind:` takes. **A new kind is one file
//!   here and one line in that list**: its options, checks, parser and answers live in its file.
//! - one file per kind: [`kratos`], [`identus`], [`abp`].
//! - [`json`]: what every parser shares (depth limit, object check, field-naming errors).
//! - [`error`]: [`SourceError`], why a request was refused, and the problem+json answer.
//!
//! May call: `config` (a source block's options), `http` (answers), `store` (the projection
//! type a parser fills in). The request path that calls a kind is `crate::receive`.

pub mod abp;
pub mod error;
pub mod identus;
pub mod json;
pub mod kind;
pub mod kratos;
pub mod registry;

pub use error::SourceError;
pub use json::{MAX_JSON_DEPTH, valid_json};
pub use kind::{Builder, Kind, OptionError, Options, ParsedEvent, Registration, read_options};
pub use registry::{KINDS, build, check, registration};

#[cfg(test)]
mod tests;
