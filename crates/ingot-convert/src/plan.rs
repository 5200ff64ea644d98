//! Planning a conversion: config.json + tokenizer + safetensors headers → the GGUF metadata and
//! the list of output tensors (name, shape, type, source), all validated before anything is
//! written; then producing each tensor's bytes on demand.
//!
//! Metadata keys and their order follow `convert_hf_to_gguf.py` (`Model.prepare_metadata`):
//! `general.architecture`, `general.type`, `general.name`, `general.size_label`, the
//! hyperparameters (`Model.set_gguf_parameters` + `LlamaModel.set_gguf_parameters`), the
//! tokenizer, `general.quantization_version`.

use std::path::Path;

use bytemuck::Zeroable;
use half::{bf16, f16};
use ingot_quant::legacy::q8_0::{self, BlockQ8_0};

use crate::config::{Architecture, HfConfig};
use crate::error::{ConvertError, Result};
use crate::meta::{MetaValue, Metadata};
use crate::names::{always_f32, is_skipped, tensor_specs};
use crate::permute::permute_rows;
use crate::source::{Dtype, Shards, TensorEntry};
use crate::tokenizer::tokenizer_metadata;

/// `GGML_QUANT_VERSION`, written as `general.quantization_version`.
pub const GGML_QUANT_VERSION: u32 = 2;

/// The element type of the converted weights (`--outtype`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutType {
    /// Every tensor F32 (`LlamaFileType.ALL_F32`).
    F32,
    /// 2-D weights F16, norms and biases F32 (`MOSTLY_F16`).
    F16,
    /// 2-D weights BF16, norms and biases F32 (`MOSTLY_BF16`).
    Bf16,
    /// 2-D weights Q8_0 (F16 when a row is not a multiple of 32), norms and biases F32
    /// (`MOSTLY_Q8_0`).
    Q8_0,
}

impl OutType {
    /// `general.file_type` (llama.cpp `llama_ftype`).
    pub fn file_type(self) -> u32 {
        match self {
            OutType::F32 => 0,
            OutType::F16 => 1,
            OutType::Q8_0 => 7,
            OutType::Bf16 => 32,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OutType::F32 => "f32",
            OutType::F16 => "f16",
            OutType::Bf16 => "bf16",
            OutType::Q8_0 => "q8_0",
        }
    }
}

/// A tensor's GGML type in the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorType {
    /// GGML_TYPE_F32 (0).
    F32,
    /// GGML_TYPE_F16 (1).
    F16,
    /// GGML_TYPE_Q8_0 (8).
    Q8_0,
    /// GGML_TYPE_BF16 (30).
    Bf16,
}

impl TensorType {
    /// The GGML type id.
    pub fn ggml_id(self) -> u32 {
        match self {
            TensorType::F32 => 0,
            TensorType::F16 => 1,
            TensorType::Q8_0 => 8,
            TensorType::Bf16 => 30,
        }
    }

    /// The ingot-format type.
    pub fn ggml(self) -> ingot_format::GgmlType {
        match self {
            TensorType::F32 => ingot_format::GgmlType::F32,
            TensorType::F16 => ingot_format::GgmlType::F16,
            TensorType::Q8_0 => ingot_format::GgmlType::Q8_0,
            TensorType::Bf16 => ingot_format::GgmlType::BF16,
        }
    }

    /// Bytes for `n` elements (`n` a multiple of 32 for Q8_0).
    pub fn bytes_for(self, n: u64) -> u64 {
        match self {
            TensorType::F32 => n * 4,
            TensorType::F16 | TensorType::Bf16 => n * 2,
            TensorType::Q8_0 => n / 32 * 34,
        }
    }
}

/// One output tensor.
#[derive(Clone, Debug)]
pub struct PlannedTensor {
    /// Hugging Face name.
    pub hf_name: String,
    /// GGUF name.
    pub gguf_name: String,
    /// GGUF shape (ggml order: `ne[0]`, the row length, first).
    pub shape: Vec<u64>,
    /// Output type.
    pub ty: TensorType,
    /// Rotary permutation with this many heads, if any.
    pub permute_heads: Option<u32>,
    entry: TensorEntry,
}

impl PlannedTensor {
    /// Number of elements.
    pub fn n_elements(&self) -> u64 {
        self.shape.iter().product()
    }

    /// Bytes of the tensor's data in the output.
    pub fn out_bytes(&self) -> u64 {
        self.ty.bytes_for(self.n_elements())
    }
}

/// A validated conversion, ready to write.
pub struct Plan {
    /// Parsed config.json.
    pub config: HfConfig,
    /// GGUF metadata in file order.
    pub metadata: Metadata,
    /// Output tensors in file order (sorted by Hugging Face name, as llama.cpp reads a
    /// single-file model; independent of how the model is sharded).
    pub tensors: Vec<PlannedTensor>,
    shards: Shards,
}

impl Plan {
    /// Reads and validates the model directory: config, tokenizer, every tensor header.
    pub fn new(dir: &Path, outtype: OutType) -> Result<Plan> {
        let cfg_path = dir.join("config.json");
        if !cfg_path.is_file() {
            return Err(ConvertError::MissingFile { path: cfg_path });
        }
        let text =
            std::fs::read_to_string(&cfg_path).map_err(|e| ConvertError::io(&cfg_path, e))?;
        let config = HfConfig::parse(&text).map_err(|e| match e {
            ConvertError::Json { source, .. } => ConvertError::Json {
                path: cfg_path.clone(),
                source,
            },
            other => other,
        })?;
        let shards = Shards::open(dir)?;
        let specs = tensor_specs(&config);

        for name in shards.tensors.keys() {
            if !specs.contains_key(name) && !is_skipped(name) {
                return Err(ConvertError::UnexpectedTensor {
                    tensor: name.clone(),
                });
            }
        }
        for spec in specs.values() {
            if spec.required && !shards.tensors.contains_key(&spec.hf) {
                return Err(ConvertError::MissingTensor {
                    tensor: spec.hf.clone(),
                });
            }
        }
        let mut tensors = Vec::new();
        for (name, entry) in &shards.tensors {
            let Some(spec) = specs.get(name) else {
                continue;
            };
            if entry.shape != spec.shape {
                return Err(ConvertError::ShapeMismatch {
                    tensor: name.clone(),
                    expected: spec.shape.clone(),
                    found: entry.shape.clone(),
                });
            }
            let shape: Vec<u64> = entry.shape.iter().rev().copied().collect();
            let ty = if always_f32(&spec.gguf, shape.len()) {
                TensorType::F32
            } else {
                match outtype {
                    OutType::F32 => TensorType::F32,
                    OutType::F16 => TensorType::F16,
                    OutType::Bf16 => TensorType::Bf16,
                    // gguf-py raises QuantError for rows that are not whole blocks; the
                    // converter then falls back to F16.
                    OutType::Q8_0 if shape[0] % 32 == 0 => TensorType::Q8_0,
                    OutType::Q8_0 => TensorType::F16,
                }
            };
            tensors.push(PlannedTensor {
                hf_name: name.clone(),
                gguf_name: spec.gguf.clone(),
                shape,
                ty,
                permute_heads: spec.permute_heads,
                entry: entry.clone(),
            });
        }

        let mut metadata = Metadata::default();
        let arch = config.arch.gguf_name();
        metadata.set("general.architecture", MetaValue::Str(arch.into()));
        metadata.set("general.type", MetaValue::Str("model".into()));
        // gguf-py Metadata.load's heuristics: config.json `_name_or_path` when it looks like
        // `org/name`, else the directory's name; title-cased by `id_to_title`.
        let dir_name = dir
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "model".into());
        let (name, org) = match config.json.get("_name_or_path").and_then(|v| v.as_str()) {
            Some(id) if id.matches('/').count() <= 1 && !id.is_empty() => {
                match id.split_once('/') {
                    Some((org, name)) => (name.to_string(), Some(org.to_string())),
                    None => (id.to_string(), None),
                }
            }
            _ => (dir_name, None),
        };
        metadata.set("general.name", MetaValue::Str(id_to_title(&name)));
        if let Some(org) = org {
            metadata.set("general.organization", MetaValue::Str(id_to_title(&org)));
        }
        let total: u64 = tensors.iter().map(PlannedTensor::n_elements).sum();
        metadata.set("general.size_label", MetaValue::Str(size_label(total)));
        hyperparameters(&config, outtype, &mut metadata);
        // Current convert_hf_to_gguf.py writes the quantization version before the tokenizer.
        metadata.set(
            "general.quantization_version",
            MetaValue::U32(GGML_QUANT_VERSION),
        );
        tokenizer_metadata(dir, &config, &mut metadata)?;
        Ok(Plan {
            config,
            metadata,
            tensors,
            shards,
        })
    }

    /// The safetensors files the tensors come from (an entry's `shard` indexes this).
    pub fn shard_files(&self) -> &[std::path::PathBuf] {
        &self.shards.files
    }

    /// Where tensor `i`'s source bytes are.
    pub(crate) fn entry(&self, i: usize) -> &TensorEntry {
        &self.tensors[i].entry
    }

    /// The source tensor's element type.
    pub fn source_dtype(&self, i: usize) -> Dtype {
        self.tensors[i].entry.dtype
    }

    /// Produces tensor `i`'s output bytes: permuted (if the map says so) in the source element
    /// type, then converted to the output type (and quantized for Q8_0).
    pub fn tensor_data(&self, i: usize) -> Vec<u8> {
        let t = &self.tensors[i];
        let src = self.shards.bytes(&t.entry);
        let permuted;
        let src = match t.permute_heads {
            Some(heads) => {
                let row_bytes = if t.shape.len() >= 2 {
                    t.shape[0] as usize * t.entry.dtype.size()
                } else {
                    t.entry.dtype.size()
                };
                let mut dst = vec![0u8; src.len()];
                permute_rows(src, &mut dst, row_bytes, heads as usize);
                permuted = dst;
                &permuted[..]
            }
            None => src,
        };
        let bytes = convert_elements(src, t.entry.dtype, t.ty);
        if t.ty != TensorType::Q8_0 {
            return bytes;
        }
        // Q8_0 as gguf-py's `Q8_0.quantize_blocks`, which equals ggml's
        // `quantize_row_q8_0_ref` (d = amax/127, q = roundf(x/d)).
        let x: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut blocks = vec![BlockQ8_0::zeroed(); x.len() / 32];
        q8_0::quantize_row_ref(&x, &mut blocks);
        bytemuck::cast_slice(&blocks).to_vec()
    }
}

/// Converts little-endian elements of `from` into `to` (F32/F16/BF16; Q8_0 yields F32 for the
/// quantizer). Same type: the bytes are copied unchanged (llama.cpp's F16 → F16 and
/// BF16 → F32 → BF16 paths are both identities). Otherwise via f32, rounding to nearest even
/// (numpy `astype(float16)`; gguf-py `__compute_fp32_to_bf16`, which `half::bf16::from_f32`
/// matches, quieting NaNs the same way).
pub fn convert_elements(src: &[u8], from: Dtype, to: TensorType) -> Vec<u8> {
    match (from, to) {
        (Dtype::F32, TensorType::F32 | TensorType::Q8_0)
        | (Dtype::F16, TensorType::F16)
        | (Dtype::BF16, TensorType::Bf16) => return src.to_vec(),
        _ => {}
    }
    let values: Vec<f32> = match from {
        Dtype::F32 => src
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => src
            .chunks_exact(2)
            .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => src
            .chunks_exact(2)
            .map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
    };
    match to {
        TensorType::F32 | TensorType::Q8_0 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        TensorType::F16 => values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect(),
        TensorType::Bf16 => values
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect(),
    }
}

fn hyperparameters(c: &HfConfig, outtype: OutType, m: &mut Metadata) {
    let a = c.arch.gguf_name();
    let k = |s: &str| format!("{a}.{s}");
    m.set(k("block_count"), MetaValue::U32(c.n_layer));
    if let Some(n) = c.n_ctx {
        m.set(k("context_length"), MetaValue::U32(n));
    }
    m.set(k("embedding_length"), MetaValue::U32(c.n_embd));
    m.set(k("feed_forward_length"), MetaValue::U32(c.n_ff));
    m.set(k("attention.head_count"), MetaValue::U32(c.n_head));
    m.set(k("attention.head_count_kv"), MetaValue::U32(c.n_head_kv));
    if let Some(t) = c.rope_theta {
        m.set(k("rope.freq_base"), MetaValue::F32(t));
    }
    if let Some(e) = c.rms_eps {
        m.set(k("attention.layer_norm_rms_epsilon"), MetaValue::F32(e));
    }
    if let Some(hd) = c.head_dim_explicit {
        m.set(k("attention.key_length"), MetaValue::U32(hd));
        m.set(k("attention.value_length"), MetaValue::U32(hd));
    }
    m.set("general.file_type", MetaValue::U32(outtype.file_type()));
    if c.arch.writes_vocab_and_rope_dims() {
        m.set(k("vocab_size"), MetaValue::U32(c.vocab_size));
        m.set(k("rope.dimension_count"), MetaValue::U32(c.head_dim()));
        if let Some(f) = c.rope_linear_factor {
            m.set(k("rope.scaling.type"), MetaValue::Str("linear".into()));
            m.set(k("rope.scaling.factor"), MetaValue::F32(f));
        }
    }
    debug_assert!(matches!(
        c.arch,
        Architecture::Llama | Architecture::Mistral | Architecture::Qwen2
    ));
}

/// gguf-py `Metadata.id_to_title`: `-` becomes a space; each all-lowercase word that is not
/// a version (`v1.2`) or digit-led gets Python's `str.title()` (capitals after non-letters).
pub fn id_to_title(s: &str) -> String {
    s.trim()
        .replace('-', " ")
        .split_whitespace()
        .map(|w| {
            let cased = w.chars().any(|c| c.is_lowercase() || c.is_uppercase());
            let is_lower = cased && !w.chars().any(char::is_uppercase);
            let first_digit = w.chars().next().is_some_and(|c| c.is_ascii_digit());
            let version = w.strip_prefix('v').is_some_and(|r| {
                !r.is_empty()
                    && r.split('.')
                        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            });
            if !is_lower || first_digit || version {
                return w.to_string();
            }
            let mut out = String::with_capacity(w.len());
            let mut prev_cased = false;
            for c in w.chars() {
                let c_cased = c.is_lowercase() || c.is_uppercase();
                if c_cased && !prev_cased {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                prev_cased = c_cased;
            }
            out
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// gguf-py `size_label` / `model_weight_count_rounded_notation` (min_digits = 2).
pub fn size_label(n: u64) -> String {
    let x = n as f64;
    let (scaled, suffix) = if x > 1e12 {
        (x * 1e-12, "T")
    } else if x > 1e9 {
        (x * 1e-9, "B")
    } else if x > 1e6 {
        (x * 1e-6, "M")
    } else {
        (x * 1e-3, "K")
    };
    let int_digits = format!("{}", scaled.round_ties_even() as u64);
    let int_digits = int_digits.trim_start_matches('0').len();
    let fix = 2usize.saturating_sub(int_digits);
    format!("{scaled:.fix$}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_like_gguf_py() {
        assert_eq!(id_to_title("tiny"), "Tiny");
        assert_eq!(
            id_to_title("SmolLM2-135M-Instruct"),
            "SmolLM2 135M Instruct"
        );
        assert_eq!(id_to_title("llama3b-chat-v1.2"), "Llama3B Chat v1.2");
        assert_eq!(id_to_title("qwen2.5-7b"), "Qwen2.5 7b");
    }

    #[test]
    fn size_labels_like_gguf_py() {
        assert_eq!(size_label(3_541_248), "3.5M");
        assert_eq!(size_label(134_515_008), "135M");
        assert_eq!(size_label(7_241_732_096), "7.2B");
        assert_eq!(size_label(500), "0.50K");
    }

    #[test]
    fn element_conversions_round_to_nearest_even() {
        let x = [1.0f32, -2.5, 65504.0, 1.0e-8, f32::from_bits(0x3f80_1000)];
        let src: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        let h = convert_elements(&src, Dtype::F32, TensorType::F16);
        for (i, v) in x.iter().enumerate() {
            assert_eq!(
                u16::from_le_bytes([h[2 * i], h[2 * i + 1]]),
                f16::from_f32(*v).to_bits()
            );
        }
        let b = convert_elements(&src, Dtype::F32, TensorType::Bf16);
        // 0x3f801000: exactly halfway between bf16 0x3f80 and 0x3f81 → ties to even 0x3f80.
        assert_eq!(u16::from_le_bytes([b[8], b[9]]), 0x3f80);
        let back = convert_elements(&h, Dtype::F16, TensorType::F32);
        assert_eq!(
            f32::from_le_bytes([back[0], back[1], back[2], back[3]]),
            1.0
        );
    }
}
