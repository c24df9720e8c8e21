//! Fuzz target `abp_signature`: see `hookgate::fuzz::abp_signature`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::abp_signature(data));
