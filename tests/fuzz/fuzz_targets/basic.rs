//! Fuzz target `basic`: see `hookgate::fuzz::basic`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::basic(data));
