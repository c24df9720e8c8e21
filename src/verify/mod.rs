//! Request verification: proving a request came from the sender before its body is trusted,
//! and (for outbound delivery) signing what hookgate sends the way a receiver checks it.
//!
//! # Layout
//! - [`verifier`]: [`Verifier`], one runtime value per source, built once from its `verify`
//!   block. Checking happens in two steps, so that nothing is read before the headers pass:
//!   [`Verifier::check_headers`], then [`Verifier::check_body`] over the exact bytes, which gives
//!   a [`VerifiedBody`]; nothing else can make one.
//! - one file per scheme: [`api_key`], [`basic`], [`bearer`], [`abp_signature`],
//!   [`standard_webhooks`] (Standard Webhooks' `v1` signature and timestamp, made and checked
//!   over the exact bytes; delivery signs with it too), [`hmac`] (a MAC in one header over the
//!   body or a template around it: GitHub, Shopify, Slack…).
//! - [`credential`]: what the schemes share ([`Failure`], [`SecretDigests`], header parsing,
//!   signed timestamps).
//!
//! Every failure is answered with the same 401 body ([`Verifier::unauthorized`]); the caller
//! logs the [`Failure`], which never holds the secret or the expected value.
//!
//! A leaf: it may call `config` (the `verify` block's types) and `http` (the 401 answer) only.

pub mod abp_signature;
pub mod api_key;
pub mod basic;
pub mod bearer;
pub mod credential;
pub mod hmac;
pub mod standard_webhooks;
pub mod verifier;

pub use credential::{Failure, SecretDigests};
pub use verifier::{HeadersChecked, VerifiedBody, Verifier};
