//! libFuzzer entry point; the body is [`ingot_fuzz::tokenizer`] (shared with the corpus replay test).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ingot_fuzz::tokenizer(data));
