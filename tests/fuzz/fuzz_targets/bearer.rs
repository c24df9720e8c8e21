//! Fuzz target `bearer`: see `hookgate::fuzz::bearer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::bearer(data));
