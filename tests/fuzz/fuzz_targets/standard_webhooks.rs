//! Fuzz target `standard_webhooks`: see `hookgate::fuzz::standard_webhooks`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::standard_webhooks(data));
