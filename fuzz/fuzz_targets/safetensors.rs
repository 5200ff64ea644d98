//! libFuzzer entry point; the body is [`ingot_fuzz::safetensors`] (shared with the corpus replay test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ingot_fuzz::safetensors(data));
