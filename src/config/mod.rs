//! Configuration: the typed `Settings` tree, how it is layered and how it is checked.
//!
//! Layers, later ones winning: the built-in defaults (serde `default`s below) →
//! `config/default.yaml` → `config/{HOOKGATE_ENV}.yaml` (or, instead of those two, the files given
//! with `--config`) → environment variables `HOOKGATE__SECTION__KEY`. After merging, `${VAR}` (and
//! `${VAR:-fallback}`) in any string is replaced by that environment variable; a missing one is an
//! error naming it. Unknown keys are rejected, and every error names the field it is about
//! (`sources.abp.verify.secrets: at least one secret is required`).
//!
//! # Layout
//! - [`types`]: the types of the tree, section by section.
//! - [`verify`]: a source's `verify` block, a tagged enum (`scheme`) read field by field so that
//!   every error still names its field.
//! - [`destinations`]: the `destinations` blocks, and the typed [`Destination`] delivery runs on.
//! - [`telemetry`]: the `telemetry` block (OpenTelemetry traces over OTLP/HTTP).
//! - [`de`]: how values are written (durations, sizes, secrets, lenient numbers and booleans).
//! - [`mod@load`]: the layers, `${VAR}` expansion and the one deserialization that names fields.
//! - [`redact`]: URLs with their credentials hidden, for logs and errors.
//! - [`validate`]: the checks types alone cannot make.
//! - this file only lists them and re-exports what users of the configuration need.
//!
//! This module depends on nothing else in hookgate. What a source's `kind` means, and which
//! further keys a kind takes, is for [`crate::sources`] to check (the kind's own file).

pub mod de;
pub mod destinations;
pub mod load;
pub mod redact;
pub mod telemetry;
pub mod types;
pub mod validate;
pub mod verify;

pub use de::{ByteSize, HumanDuration};
pub use destinations::{Destination, DestinationSettings, Signing, Target};
pub use load::{
    Draft, LoadOptions, load, load_from_str, read, read_draft, read_draft_from_str, read_from_str,
};
pub use telemetry::{OtlpSettings, TelemetrySettings};
pub use types::*;
pub use verify::{
    DEFAULT_TOLERANCE, HmacSettings, KeyLocation, Scheme, SchemeSettings, SignedPart,
    SignedTemplate, TimestampSettings, VerifySettings, standard_webhooks_key,
};
