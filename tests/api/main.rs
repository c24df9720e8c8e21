//! Integration tests: the real application on port 0 (and the real binary for signals), over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abp;
mod admin;
mod broker;
mod cli;
mod delivery;
mod delivery_faults;
mod diagnostics;
mod faults;
mod feed;
mod fuzz_corpus;
mod grammar;
mod helpers;
mod hostile;
mod identus;
mod kratos;
mod layout;
mod limits;
mod operations;
mod properties;
mod replicas;
mod retention;
mod routes;
mod senders;
mod sink;
mod verification;
