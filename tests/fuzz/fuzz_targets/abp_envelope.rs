//! Fuzz target `abp_envelope`: see `hookgate::fuzz::abp_envelope`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::abp_envelope(data));
