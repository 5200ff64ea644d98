//! `config.json`: the architecture and the hyperparameters the GGUF `{arch}.*` keys carry.
//!
//! Field names and defaults follow `transformers`' `LlamaConfig`, `MistralConfig` and
//! `Qwen2Config`; which GGUF key each becomes follows llama.cpp's `convert_hf_to_gguf.py`
//! (`Model.set_gguf_parameters`, `LlamaModel.set_gguf_parameters`), see formats/convert.md.

use serde_json::Value as Json;

use crate::error::{ConvertError, Result};

const FILE: &str = "config.json";

/// A model family the converter handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Architecture {
    /// `LlamaForCausalLM` (Llama 1/2/3, SmolLM): GGUF architecture `llama`.
    Llama,
    /// `MistralForCausalLM`: converted exactly like Llama (llama.cpp registers it on
    /// `LlamaModel`), GGUF architecture `llama`.
    Mistral,
    /// `Qwen2ForCausalLM`: GGUF architecture `qwen2`, q/k/v biases, no rotary permutation.
    Qwen2,
}

impl Architecture {
    /// The `architectures[0]` names accepted, in the order they are listed in errors.
    pub const SUPPORTED: [&'static str; 3] =
        ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"];

    /// Parses a Hugging Face `architectures[0]` value.
    pub fn from_hf(name: &str) -> Result<Self> {
        match name {
            "LlamaForCausalLM" => Ok(Architecture::Llama),
            "MistralForCausalLM" => Ok(Architecture::Mistral),
            "Qwen2ForCausalLM" => Ok(Architecture::Qwen2),
            other => Err(ConvertError::UnsupportedArchitecture {
                found: other.to_string(),
                supported: Self::SUPPORTED.to_vec(),
            }),
        }
    }

    /// The Hugging Face class name.
    pub fn hf_name(self) -> &'static str {
        match self {
            Architecture::Llama => "LlamaForCausalLM",
            Architecture::Mistral => "MistralForCausalLM",
            Architecture::Qwen2 => "Qwen2ForCausalLM",
        }
    }

    /// The `model_type` written back to config.json on export.
    pub fn hf_model_type(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Mistral => "mistral",
            Architecture::Qwen2 => "qwen2",
        }
    }

    /// The value of `general.architecture` (and the prefix of the hyperparameter keys).
    pub fn gguf_name(self) -> &'static str {
        match self {
            Architecture::Llama | Architecture::Mistral => "llama",
            Architecture::Qwen2 => "qwen2",
        }
    }

    /// Whether llama.cpp permutes the rows of `q_proj`/`k_proj` (Hugging Face's rotary layout
    /// "rotate half" back to the original interleaved pairs, `LlamaModel.permute`).
    pub fn permutes_qk(self) -> bool {
        matches!(self, Architecture::Llama | Architecture::Mistral)
    }

    /// Whether q/k/v projections must carry biases.
    pub fn requires_qkv_bias(self) -> bool {
        matches!(self, Architecture::Qwen2)
    }

    /// Whether llama.cpp writes `{arch}.vocab_size` and `{arch}.rope.dimension_count`
    /// (`LlamaModel.set_gguf_parameters` does; `Qwen2Model` does not).
    pub fn writes_vocab_and_rope_dims(self) -> bool {
        matches!(self, Architecture::Llama | Architecture::Mistral)
    }
}

/// The hyperparameters read from config.json.
#[derive(Clone, Debug, PartialEq)]
pub struct HfConfig {
    /// The model family.
    pub arch: Architecture,
    /// `num_hidden_layers`.
    pub n_layer: u32,
    /// `hidden_size`.
    pub n_embd: u32,
    /// `intermediate_size`.
    pub n_ff: u32,
    /// `num_attention_heads`.
    pub n_head: u32,
    /// `num_key_value_heads` (defaults to `n_head`).
    pub n_head_kv: u32,
    /// `head_dim` as transformers' config class has it (always for Llama and Mistral, where it
    /// defaults to hidden/heads; only when given for Qwen2): llama.cpp then writes key/value
    /// lengths.
    pub head_dim_explicit: Option<u32>,
    /// `max_position_embeddings`.
    pub n_ctx: Option<u32>,
    /// `rope_theta`.
    pub rope_theta: Option<f32>,
    /// `rms_norm_eps`.
    pub rms_eps: Option<f32>,
    /// `vocab_size`.
    pub vocab_size: u32,
    /// `tie_word_embeddings` (`LlamaConfig`, `MistralConfig` and `Qwen2Config` default to false).
    pub tie_word_embeddings: bool,
    /// Linear rope scaling factor (`rope_scaling.type == "linear"`).
    pub rope_linear_factor: Option<f32>,
    /// The whole JSON, for the special token ids (`bos_token_id`, ...).
    pub json: Json,
}

impl HfConfig {
    /// Elements per attention head.
    pub fn head_dim(&self) -> u32 {
        self.head_dim_explicit.unwrap_or(self.n_embd / self.n_head)
    }

    /// Parses config.json's text, checking that every number the converter relies on is there
    /// and consistent (heads divide the width, the head dimension is even for rotary pairs).
    pub fn parse(text: &str) -> Result<Self> {
        let json: Json = serde_json::from_str(text).map_err(|e| ConvertError::Json {
            path: FILE.into(),
            source: e,
        })?;
        let arch_name = json
            .get("architectures")
            .and_then(|a| a.get(0))
            .and_then(Json::as_str)
            .ok_or_else(|| {
                ConvertError::field(FILE, "architectures", "missing or not a list of strings")
            })?;
        let arch = Architecture::from_hf(arch_name)?;
        let n_layer = req_u32(&json, "num_hidden_layers")?;
        let n_embd = req_u32(&json, "hidden_size")?;
        let n_ff = req_u32(&json, "intermediate_size")?;
        let n_head = req_u32(&json, "num_attention_heads")?;
        let n_head_kv = opt_u32(&json, "num_key_value_heads")?.unwrap_or(match arch {
            // transformers' MistralConfig defaults to 8 KV heads; the others to n_head.
            Architecture::Mistral => 8,
            _ => n_head,
        });
        let vocab_size = req_u32(&json, "vocab_size")?;
        let head_dim_explicit = opt_u32(&json, "head_dim")?;
        for (field, v) in [
            ("num_hidden_layers", n_layer),
            ("hidden_size", n_embd),
            ("intermediate_size", n_ff),
            ("num_attention_heads", n_head),
            ("num_key_value_heads", n_head_kv),
            ("vocab_size", vocab_size),
        ] {
            if v == 0 {
                return Err(ConvertError::field(FILE, field, "must be positive"));
            }
        }
        if n_head % n_head_kv != 0 {
            return Err(ConvertError::field(
                FILE,
                "num_key_value_heads",
                format!("{n_head_kv} does not divide num_attention_heads {n_head}"),
            ));
        }
        if head_dim_explicit.is_none() && n_embd % n_head != 0 {
            return Err(ConvertError::field(
                FILE,
                "num_attention_heads",
                format!("{n_head} does not divide hidden_size {n_embd}"),
            ));
        }
        let head_dim = head_dim_explicit.unwrap_or(n_embd / n_head);
        // LlamaConfig and MistralConfig always carry `head_dim` (defaulting to
        // hidden/heads), and llama.cpp reads config.json through AutoConfig, so it then writes
        // the key/value lengths; Qwen2Config has no such attribute.
        let head_dim_explicit = match arch {
            Architecture::Llama | Architecture::Mistral => Some(head_dim),
            Architecture::Qwen2 => head_dim_explicit,
        };
        if head_dim == 0 || head_dim % 2 != 0 {
            return Err(ConvertError::field(
                FILE,
                "head_dim",
                format!("{head_dim} must be positive and even (rotary pairs)"),
            ));
        }
        let tie_word_embeddings = match json.get("tie_word_embeddings") {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(_) => {
                return Err(ConvertError::field(
                    FILE,
                    "tie_word_embeddings",
                    "not a boolean",
                ))
            }
        };
        let rope_linear_factor = match json.get("rope_scaling") {
            Some(Json::Object(m)) if m.get("type").and_then(Json::as_str) == Some("linear") => {
                Some(opt_f32(&json["rope_scaling"], "factor")?.ok_or_else(|| {
                    ConvertError::field(FILE, "rope_scaling.factor", "missing for linear scaling")
                })?)
            }
            _ => None,
        };
        Ok(HfConfig {
            arch,
            n_layer,
            n_embd,
            n_ff,
            n_head,
            n_head_kv,
            head_dim_explicit,
            // Absent fields take transformers' config defaults, as llama.cpp sees them through
            // AutoConfig (LlamaConfig, MistralConfig, Qwen2Config).
            n_ctx: Some(
                opt_u32(&json, "max_position_embeddings")?.unwrap_or(match arch {
                    Architecture::Llama => 2048,
                    Architecture::Mistral => 4096 * 32,
                    Architecture::Qwen2 => 32768,
                }),
            ),
            rope_theta: Some(opt_f32(&json, "rope_theta")?.unwrap_or(10000.0)),
            rms_eps: Some(opt_f32(&json, "rms_norm_eps")?.unwrap_or(1e-6)),
            vocab_size,
            tie_word_embeddings,
            rope_linear_factor,
            json,
        })
    }
}

fn opt_u32(json: &Json, key: &str) -> Result<Option<u32>> {
    match json.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| ConvertError::field(FILE, key, format!("{v} is not a u32"))),
    }
}

fn req_u32(json: &Json, key: &str) -> Result<u32> {
    opt_u32(json, key)?.ok_or_else(|| ConvertError::field(FILE, key, "missing"))
}

fn opt_f32(json: &Json, key: &str) -> Result<Option<f32>> {
    match json.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|x| x.is_finite())
            .map(|x| Some(x as f32))
            .ok_or_else(|| ConvertError::field(FILE, key, format!("{v} is not a number"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"{"architectures":["LlamaForCausalLM"],"num_hidden_layers":2,
        "hidden_size":64,"intermediate_size":128,"num_attention_heads":4,
        "num_key_value_heads":2,"vocab_size":300,"rope_theta":10000.0,"rms_norm_eps":1e-5,
        "max_position_embeddings":128,"tie_word_embeddings":true}"#;

    #[test]
    fn parses_llama() {
        let c = HfConfig::parse(TINY).unwrap();
        assert_eq!(c.arch, Architecture::Llama);
        assert_eq!((c.n_layer, c.n_embd, c.n_head, c.n_head_kv), (2, 64, 4, 2));
        assert_eq!(c.head_dim(), 16);
        assert!(c.tie_word_embeddings);
        assert_eq!(c.n_ctx, Some(128));
    }

    #[test]
    fn unknown_architecture_lists_supported() {
        let text = TINY.replace("LlamaForCausalLM", "GPT2LMHeadModel");
        match HfConfig::parse(&text) {
            Err(ConvertError::UnsupportedArchitecture { found, supported }) => {
                assert_eq!(found, "GPT2LMHeadModel");
                assert_eq!(supported, Architecture::SUPPORTED.to_vec());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inconsistent_heads_rejected() {
        let text = TINY.replace("\"num_key_value_heads\":2", "\"num_key_value_heads\":3");
        assert!(matches!(
            HfConfig::parse(&text),
            Err(ConvertError::BadField { field, .. }) if field == "num_key_value_heads"
        ));
        let text = TINY.replace("\"hidden_size\":64", "\"hidden_size\":-1");
        assert!(matches!(
            HfConfig::parse(&text),
            Err(ConvertError::BadField { field, .. }) if field == "hidden_size"
        ));
    }
}
