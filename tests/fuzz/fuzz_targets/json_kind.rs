//! Fuzz target `json_kind`: see `hookgate::fuzz::json_kind`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::json_kind(data));
