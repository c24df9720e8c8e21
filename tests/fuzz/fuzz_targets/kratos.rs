//! Fuzz target `kratos`: see `hookgate::fuzz::kratos`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::kratos(data));
