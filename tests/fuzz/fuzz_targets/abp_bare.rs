//! Fuzz target `abp_bare`: see `hookgate::fuzz::abp_bare`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::abp_bare(data));
