//! Browser tests of the console (`/console`), in a test binary of their own: cargo runs test
//! binaries one after another, so chromium's CPU never competes with the API suite's
//! timing-sensitive tests (a 2 s request timeout, long polls) on a 2-core machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod browser;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;
#[allow(dead_code)]
#[path = "../api/sink.rs"]
mod sink;
