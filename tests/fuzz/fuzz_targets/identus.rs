//! Fuzz target `identus`: see `hookgate::fuzz::identus`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::identus(data));
