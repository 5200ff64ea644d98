//! ingot-convert: Hugging Face safetensors model directories to GGUF and back.
//!
//! ```text
//! convert(dir, out):
//!   config.json        → Architecture + hyperparameters      (config)
//!   safetensors shards → mmap, validated headers              (source)
//!   name map + shapes  → every tensor checked against config  (names, plan)
//!   tokenizer.json     → tokenizer.* keys                     (tokenizer)
//!   for each tensor: rows permuted for rotary Q/K (llama, mistral), elements converted,
//!   streamed into ingot-format's GgufWriter (temp file + rename: nothing at `out` on error)
//! ```
//!
//! The output follows llama.cpp's `convert_hf_to_gguf.py` (key names, tensor names, the Q/K
//! permutation, type rules); formats/convert.md documents the mapping with its sources.
#![deny(missing_docs)]

pub mod config;
mod error;
pub mod meta;
pub mod names;
pub mod permute;
pub mod plan;
pub mod source;
pub mod tokenizer;

pub use config::{Architecture, HfConfig};
pub use error::{ConvertError, Result};
pub use meta::{MetaValue, Metadata};
pub use plan::{OutType, Plan, PlannedTensor, TensorType};
