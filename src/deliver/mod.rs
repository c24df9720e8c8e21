//! Delivery: stored events handed on to the services that act on them (DESIGN.md "Delivery").
//!
//! # Layout
//! - [`attempt`]: what an attempt sends ([`attempt::Outgoing`]) and what came of it
//!   ([`attempt::Attempted`]), for every destination kind.
//! - [`sign`]: the signature headers of an outgoing request (`standard_webhooks`,
//!   `abp_signature`, `hmac`), made with the same code that verifies them.
//! - [`http`]: `kind: http`: one POST of the exact stored bytes.

pub mod attempt;
pub mod http;
pub mod sign;
