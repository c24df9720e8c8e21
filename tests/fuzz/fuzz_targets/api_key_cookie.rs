//! Fuzz target `api_key_cookie`: see `hookgate::fuzz::api_key_cookie`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::api_key_cookie(data));
