//! Fuzz target `kratos_respond`: see `hookgate::fuzz::kratos_respond`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::kratos_respond(data));
