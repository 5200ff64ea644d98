//! Hyper-parameters of a llama-family model, read from GGUF metadata.
//!
//! Keys are llama.cpp's (`src/llama-arch.cpp`, `LLM_KV_*`), prefixed by the value of
//! `general.architecture`: `{arch}.embedding_length`, `{arch}.block_count`,
//! `{arch}.feed_forward_length`, `{arch}.attention.head_count`,
//! `{arch}.attention.head_count_kv` (default: head_count), `{arch}.attention.key_length`
//! (default: embedding / heads), `{arch}.attention.layer_norm_rms_epsilon`,
//! `{arch}.rope.freq_base` (default 10000), `{arch}.rope.dimension_count` (default: head
//! dim), `{arch}.rope.scaling.type` / `.factor` (only none/linear), `{arch}.context_length`,
//! and the vocabulary size from `{arch}.vocab_size` or the length of `tokenizer.ggml.tokens`.

use ingot_format::GgufFile;

use super::ops::RopeStyle;
use crate::InferError;

/// The architectures this forward pass implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// `llama` (also SmolLM2, TinyLlama, Llama 2/3).
    Llama,
    /// `mistral`: the llama graph under another name.
    Mistral,
    /// `qwen2`: llama with q/k/v biases and NEOX rope.
    Qwen2,
}

impl Arch {
    /// Parses `general.architecture`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(Self::Llama),
            "mistral" => Some(Self::Mistral),
            "qwen2" => Some(Self::Qwen2),
            _ => None,
        }
    }

    /// The GGUF key prefix (`general.architecture`'s value).
    pub fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Mistral => "mistral",
            Self::Qwen2 => "qwen2",
        }
    }

    /// How llama.cpp rotates Q/K for this architecture (`llama_model_rope_type`).
    pub fn rope_style(self) -> RopeStyle {
        match self {
            Self::Llama | Self::Mistral => RopeStyle::Normal,
            Self::Qwen2 => RopeStyle::Neox,
        }
    }
}

/// Model hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Architecture.
    pub arch: Arch,
    /// Vocabulary size (rows of the embedding and output matrices).
    pub n_vocab: usize,
    /// Hidden size.
    pub n_embd: usize,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Query heads.
    pub n_head: usize,
    /// Key/value heads (grouped-query attention when smaller than `n_head`).
    pub n_head_kv: usize,
    /// Elements per head.
    pub head_dim: usize,
    /// FFN inner size.
    pub n_ff: usize,
    /// Training context length (an upper bound for the KV cache by default).
    pub n_ctx_train: usize,
    /// RMSNorm epsilon.
    pub rms_eps: f32,
    /// RoPE frequency base.
    pub rope_base: f32,
    /// Rotated dimensions per head.
    pub n_rot: usize,
    /// Linear RoPE scaling (1 / factor), 1.0 without scaling.
    pub rope_freq_scale: f32,
}

fn usize_key(file: &GgufFile, key: &str) -> Result<usize, InferError> {
    let v = file.get_u32(key)?;
    usize::try_from(v).map_err(|_| InferError::InvalidConfig {
        key: key.to_string(),
        reason: "does not fit in usize",
    })
}

fn opt_usize_key(file: &GgufFile, key: &str) -> Result<Option<usize>, InferError> {
    if file.get(key).is_none() {
        return Ok(None);
    }
    usize_key(file, key).map(Some)
}

fn opt_f32_key(file: &GgufFile, key: &str) -> Result<Option<f32>, InferError> {
    if file.get(key).is_none() {
        return Ok(None);
    }
    Ok(Some(file.get_f32(key)?))
}

impl LlamaConfig {
    /// Reads the configuration, rejecting unknown architectures and inconsistent sizes.
    pub fn from_gguf(file: &GgufFile) -> Result<Self, InferError> {
        let arch_name = file.get_str("general.architecture")?;
        let arch =
            Arch::from_name(arch_name).ok_or_else(|| InferError::UnsupportedArchitecture {
                arch: arch_name.to_string(),
            })?;
        let p = arch.name();
        let key = |k: &str| format!("{p}.{k}");

        let n_embd = usize_key(file, &key("embedding_length"))?;
        let n_layer = usize_key(file, &key("block_count"))?;
        let n_ff = usize_key(file, &key("feed_forward_length"))?;
        let n_head = usize_key(file, &key("attention.head_count"))?;
        let n_head_kv = opt_usize_key(file, &key("attention.head_count_kv"))?.unwrap_or(n_head);
        let rms_eps = file.get_f32(&key("attention.layer_norm_rms_epsilon"))?;
        let rope_base = opt_f32_key(file, &key("rope.freq_base"))?.unwrap_or(10000.0);
        let n_ctx_train = opt_usize_key(file, &key("context_length"))?.unwrap_or(2048);

        let invalid =
            |k: String, reason: &'static str| InferError::InvalidConfig { key: k, reason };
        if n_embd == 0 || n_layer == 0 || n_ff == 0 {
            return Err(invalid(
                key("embedding_length"),
                "embedding, block count and FFN size must be non-zero",
            ));
        }
        if n_head == 0 || n_head_kv == 0 || n_head % n_head_kv != 0 {
            return Err(invalid(
                key("attention.head_count_kv"),
                "head counts must be non-zero and head_count a multiple of head_count_kv",
            ));
        }
        let head_dim = match opt_usize_key(file, &key("attention.key_length"))? {
            Some(d) => d,
            None if n_embd % n_head == 0 => n_embd / n_head,
            None => {
                return Err(invalid(
                    key("attention.head_count"),
                    "embedding_length is not a multiple of head_count",
                ))
            }
        };
        if let Some(v) = opt_usize_key(file, &key("attention.value_length"))? {
            if v != head_dim {
                return Err(invalid(
                    key("attention.value_length"),
                    "value_length differs from key_length",
                ));
            }
        }
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(invalid(
                key("attention.key_length"),
                "head dimension must be even and non-zero",
            ));
        }
        let n_rot = opt_usize_key(file, &key("rope.dimension_count"))?.unwrap_or(head_dim);
        if n_rot > head_dim || n_rot % 2 != 0 {
            return Err(invalid(
                key("rope.dimension_count"),
                "must be even and at most the head dimension",
            ));
        }
        let rope_freq_scale = match file.get(&key("rope.scaling.type")) {
            None => 1.0,
            Some(_) => match file.get_str(&key("rope.scaling.type"))? {
                "none" => 1.0,
                "linear" => {
                    let f = opt_f32_key(file, &key("rope.scaling.factor"))?.unwrap_or(1.0);
                    if !(f.is_finite() && f > 0.0) {
                        return Err(invalid(
                            key("rope.scaling.factor"),
                            "must be finite and positive",
                        ));
                    }
                    1.0 / f
                }
                _ => {
                    return Err(invalid(
                        key("rope.scaling.type"),
                        "only none and linear rope scaling are supported",
                    ))
                }
            },
        };
        if !(rms_eps.is_finite() && rms_eps >= 0.0 && rope_base.is_finite() && rope_base > 0.0) {
            return Err(invalid(
                key("rope.freq_base"),
                "epsilon and rope base must be finite and positive",
            ));
        }
        let n_vocab = match opt_usize_key(file, &key("vocab_size"))? {
            Some(n) => n,
            None => file.get_str_array("tokenizer.ggml.tokens")?.len(),
        };
        Ok(Self {
            arch,
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            head_dim,
            n_ff,
            n_ctx_train,
            rms_eps,
            rope_base,
            n_rot,
            rope_freq_scale,
        })
    }

    /// Elements of one token's query vector (`n_head × head_dim`).
    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// Elements of one token's key (or value) vector (`n_head_kv × head_dim`).
    pub fn kv_dim(&self) -> usize {
        self.n_head_kv * self.head_dim
    }
}
