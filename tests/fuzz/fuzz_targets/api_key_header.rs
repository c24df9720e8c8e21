//! Fuzz target `api_key_header`: see `hookgate::fuzz::api_key_header`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::api_key_header(data));
