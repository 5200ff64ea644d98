//! ingot-format: GGUF v2/v3 container: memory-mapped, validated reading and streaming, atomic writing.
#![deny(missing_docs)]
