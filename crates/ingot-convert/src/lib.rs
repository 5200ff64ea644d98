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
pub mod export;
pub mod input;
pub mod meta;
pub mod names;
pub mod permute;
pub mod plan;
pub mod source;
pub mod spm;
pub mod tokenizer;

pub use config::{Architecture, HfConfig};
pub use error::{ConvertError, Result};
pub use export::{export, ExportSummary};
pub use input::HfInput;
pub use meta::{MetaValue, Metadata};
pub use plan::{OutType, Plan, PlannedTensor, TensorType};

use std::path::Path;

use ingot_format::{GgufWriter, WriterOptions};

/// What a finished conversion did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertSummary {
    /// `general.architecture`.
    pub architecture: &'static str,
    /// Tensors written.
    pub n_tensors: usize,
    /// Parameters (elements) written.
    pub n_params: u64,
    /// Metadata keys written.
    pub n_kv: usize,
    /// Bytes of tensor data (before alignment padding).
    pub data_bytes: u64,
}

/// Progress of a running conversion, reported after each tensor.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// GGUF name of the tensor just written.
    pub tensor: &'a str,
    /// Tensors done so far.
    pub done: usize,
    /// Tensors in all.
    pub total: usize,
    /// Output bytes of that tensor.
    pub bytes: u64,
}

/// Converts the Hugging Face model in `dir` to a GGUF file at `out`.
///
/// Everything is validated before writing starts; the file is written to a temporary name
/// beside `out` and renamed when complete, so on error nothing is left at `out`.
pub fn convert(
    dir: &Path,
    out: &Path,
    outtype: OutType,
    mut progress: impl FnMut(Progress<'_>),
) -> Result<ConvertSummary> {
    let plan = Plan::new(dir, outtype)?;
    let fe = |e| ConvertError::Gguf {
        path: out.to_path_buf(),
        source: e,
    };
    // No ingot.integrity.* keys: the file then has exactly the keys llama.cpp's converter
    // writes. Dropping the writer on an error path deletes its temporary file.
    let mut w = GgufWriter::with_options(
        out,
        WriterOptions {
            integrity: false,
            ..WriterOptions::default()
        },
    );
    for (k, v) in plan.metadata.iter() {
        w.add_kv(k, v.to_value()).map_err(fe)?;
    }
    for t in &plan.tensors {
        w.add_tensor(&t.gguf_name, &t.shape, t.ty.ggml())
            .map_err(fe)?;
    }
    let total = plan.tensors.len();
    for (i, t) in plan.tensors.iter().enumerate() {
        let bytes = plan.tensor_data(i);
        w.write_tensor(&bytes).map_err(fe)?;
        progress(Progress {
            tensor: &t.gguf_name,
            done: i + 1,
            total,
            bytes: bytes.len() as u64,
        });
    }
    w.finish().map_err(fe)?;
    Ok(ConvertSummary {
        architecture: plan.config.arch.gguf_name(),
        n_tensors: total,
        n_params: plan.tensors.iter().map(PlannedTensor::n_elements).sum(),
        n_kv: plan.metadata.len(),
        data_bytes: plan.tensors.iter().map(PlannedTensor::out_bytes).sum(),
    })
}
