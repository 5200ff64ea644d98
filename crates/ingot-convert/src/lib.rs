//! ingot-convert: Hugging Face safetensors model directories to GGUF and back.
#![deny(missing_docs)]
