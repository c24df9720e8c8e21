//! Fuzz target `hmac`: see `hookgate::fuzz::hmac`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::hmac(data));
