//! Fuzz target `standard`: see `hookgate::fuzz::standard`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::standard(data));
