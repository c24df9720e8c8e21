//! Fuzz target `config_yaml`: see `hookgate::fuzz::config_yaml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hookgate::fuzz::config_yaml(data));
