//! ingot-tokenizer: Tokenizers built from GGUF metadata: GPT-2 byte-level BPE and SentencePiece-style.
#![deny(missing_docs)]
