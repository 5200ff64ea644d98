//! GGUF → Hugging Face directory: the inverse of [`crate::convert`], so a model can go out and
//! come back.
//!
//! Writes `config.json` (from the `{arch}.*` keys), `model.safetensors` (tensors in their GGUF
//! element type, F32/F16/BF16 only; Q/K rows un-permuted for llama), `tokenizer.json` (a
//! byte-level BPE tokenizer from the `gpt2` tokenizer keys: vocabulary, merges, the
//! pre-tokenizer that [`crate::tokenizer::detect_pre`] maps back to the same `pre` name,
//! control/user-defined tokens as added tokens) and `tokenizer_config.json` (special tokens,
//! `add_*_token`, `chat_template`). Converting the result again gives the same tensor data.
//!
//! The directory is assembled under a temporary name beside `out_dir` and renamed into place
//! when complete.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ingot_format::{GgmlType, GgufFile};
use safetensors::tensor::TensorView as StView;
use serde_json::{json, Map, Value as Json};

use crate::config::{Architecture, HfConfig};
use crate::error::{ConvertError, Result};
use crate::names::tensor_specs;
use crate::permute::unpermute_rows;
use crate::tokenizer::{pre_tokenizers, token_type};

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// The Hugging Face architecture written to config.json.
    pub architecture: &'static str,
    /// Tensors written.
    pub n_tensors: usize,
    /// Parameters written.
    pub n_params: u64,
}

fn gguf_err(path: &Path) -> impl Fn(ingot_format::FormatError) -> ConvertError + '_ {
    move |e| ConvertError::Gguf {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Exports the GGUF file at `gguf` to a new Hugging Face directory `out_dir`.
pub fn export(gguf: &Path, out_dir: &Path) -> Result<ExportSummary> {
    let file = GgufFile::open(gguf).map_err(gguf_err(gguf))?;
    let ge = gguf_err(gguf);
    let arch_name = file.get_str("general.architecture").map_err(&ge)?;
    let arch = match arch_name {
        "llama" => Architecture::Llama,
        "qwen2" => Architecture::Qwen2,
        other => {
            return Err(ConvertError::UnsupportedExport {
                reason: format!("architecture `{other}` (supported: llama, qwen2)"),
            })
        }
    };
    let a = arch_name;
    let u32_key = |k: &str| file.get_u32(&format!("{a}.{k}")).map_err(&ge);
    let opt_u32 = |k: &str| file.get(&format!("{a}.{k}")).and_then(|v| v.as_integer());
    let opt_f32 = |k: &str| file.get_f32(&format!("{a}.{k}")).ok();
    let tokens = file.get_str_array("tokenizer.ggml.tokens").map_err(&ge)?;
    let n_head = u32_key("attention.head_count")?;
    let mut config = Map::new();
    config.insert("architectures".into(), json!([arch.hf_name()]));
    config.insert("model_type".into(), json!(arch.hf_model_type()));
    config.insert("hidden_size".into(), json!(u32_key("embedding_length")?));
    config.insert(
        "intermediate_size".into(),
        json!(u32_key("feed_forward_length")?),
    );
    config.insert("num_attention_heads".into(), json!(n_head));
    config.insert(
        "num_key_value_heads".into(),
        json!(opt_u32("attention.head_count_kv").unwrap_or(i128::from(n_head))),
    );
    config.insert("num_hidden_layers".into(), json!(u32_key("block_count")?));
    config.insert("vocab_size".into(), json!(tokens.len()));
    if let Some(n) = opt_u32("context_length") {
        config.insert("max_position_embeddings".into(), json!(n));
    }
    if let Some(t) = opt_f32("rope.freq_base") {
        config.insert("rope_theta".into(), json!(t));
    }
    if let Some(e) = opt_f32("attention.layer_norm_rms_epsilon") {
        config.insert("rms_norm_eps".into(), json!(e));
    }
    if let Some(k) = opt_u32("attention.key_length") {
        config.insert("head_dim".into(), json!(k));
    }
    let tied = file.tensor("output.weight").is_none();
    config.insert("tie_word_embeddings".into(), json!(tied));
    config.insert("hidden_act".into(), json!("silu"));
    for (typ, key) in SPECIAL_IDS {
        if let Ok(id) = file.get_u32(key) {
            config.insert(format!("{typ}_token_id"), json!(id));
        }
    }
    let dtype_name = match file.tensor("token_embd.weight").map(|t| t.ggml_type()) {
        Some(GgmlType::F16) => "float16",
        Some(GgmlType::BF16) => "bfloat16",
        _ => "float32",
    };
    config.insert("torch_dtype".into(), json!(dtype_name));
    let config_json = Json::Object(config);
    let cfg = HfConfig::parse(&config_json.to_string())?;

    // GGUF name → (HF name, permutation).
    let specs = tensor_specs(&cfg);
    let by_gguf: BTreeMap<&str, (&str, Option<u32>)> = specs
        .values()
        .map(|s| (s.gguf.as_str(), (s.hf.as_str(), s.permute_heads)))
        .collect();
    let mut out_tensors: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut n_params = 0u64;
    for view in file.tensor_views() {
        let name = view.name();
        let Some(&(hf, heads)) = by_gguf.get(name) else {
            return Err(ConvertError::UnsupportedExport {
                reason: format!("tensor `{name}` has no Hugging Face name"),
            });
        };
        let (dtype, elem) = match view.ggml_type() {
            GgmlType::F32 => (safetensors::Dtype::F32, 4),
            GgmlType::F16 => (safetensors::Dtype::F16, 2),
            GgmlType::BF16 => (safetensors::Dtype::BF16, 2),
            other => {
                return Err(ConvertError::UnsupportedExport {
                    reason: format!(
                        "tensor `{name}` is {} (export handles f32, f16, bf16)",
                        other.name()
                    ),
                })
            }
        };
        let shape: Vec<usize> = view
            .shape()
            .iter()
            .rev()
            .map(|&d| {
                usize::try_from(d).map_err(|_| ConvertError::OutOfRange {
                    what: format!("dimension of {name}"),
                    value: d,
                })
            })
            .collect::<Result<_>>()?;
        let expected = &specs[hf].shape;
        let found: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        if *expected != found {
            return Err(ConvertError::ShapeMismatch {
                tensor: name.to_string(),
                expected: expected.clone(),
                found,
            });
        }
        let src = view.bytes();
        let data = match heads {
            Some(h) => {
                let row_bytes = if shape.len() >= 2 {
                    shape[1] * elem
                } else {
                    elem
                };
                let mut dst = vec![0u8; src.len()];
                unpermute_rows(src, &mut dst, row_bytes, h as usize);
                dst
            }
            None => src.to_vec(),
        };
        n_params += view.n_elements();
        out_tensors.push((hf.to_string(), dtype, shape, data));
    }

    let tokenizer = tokenizer_files(&file, &tokens).map_err(|e| match e {
        ConvertError::Gguf { source, .. } => ConvertError::Gguf {
            path: gguf.to_path_buf(),
            source,
        },
        other => other,
    })?;

    // Assemble under a temporary name, then rename.
    let parent = match out_dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let base = out_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let tmp = parent.join(format!(".{base}.{}.tmp", std::process::id()));
    let guard = TempDir(tmp.clone(), false);
    std::fs::create_dir_all(&tmp).map_err(|e| ConvertError::io(&tmp, e))?;
    let write = |name: &str, text: String| {
        let p = tmp.join(name);
        std::fs::write(&p, text).map_err(|e| ConvertError::io(&p, e))
    };
    write("config.json", pretty(&config_json))?;
    write("tokenizer.json", pretty(&tokenizer.0))?;
    write("tokenizer_config.json", pretty(&tokenizer.1))?;
    let views: Vec<(String, StView<'_>)> = out_tensors
        .iter()
        .map(|(n, dt, shape, data)| {
            StView::new(*dt, shape.clone(), data)
                .map(|v| (n.clone(), v))
                .map_err(|e| ConvertError::Safetensors {
                    path: tmp.join("model.safetensors"),
                    source: e,
                })
        })
        .collect::<Result<_>>()?;
    let mut st_meta = std::collections::HashMap::new();
    st_meta.insert("format".to_string(), "pt".to_string());
    let st_path = tmp.join("model.safetensors");
    safetensors::serialize_to_file(views, Some(st_meta), &st_path).map_err(|e| {
        ConvertError::Safetensors {
            path: st_path.clone(),
            source: e,
        }
    })?;
    std::fs::rename(&tmp, out_dir).map_err(|e| ConvertError::io(out_dir, e))?;
    guard.disarm();
    Ok(ExportSummary {
        architecture: arch.hf_name(),
        n_tensors: out_tensors.len(),
        n_params,
    })
}

const SPECIAL_IDS: [(&str, &str); 6] = [
    ("bos", "tokenizer.ggml.bos_token_id"),
    ("eos", "tokenizer.ggml.eos_token_id"),
    ("unk", "tokenizer.ggml.unknown_token_id"),
    ("sep", "tokenizer.ggml.seperator_token_id"),
    ("pad", "tokenizer.ggml.padding_token_id"),
    ("mask", "tokenizer.ggml.mask_token_id"),
];

/// tokenizer.json and tokenizer_config.json for a `gpt2` tokenizer.
fn tokenizer_files(file: &GgufFile, tokens: &[&str]) -> Result<(Json, Json)> {
    let ge = |e| ConvertError::Gguf {
        path: PathBuf::new(),
        source: e,
    };
    let model = file.get_str("tokenizer.ggml.model").map_err(ge)?;
    if model != "gpt2" {
        return Err(ConvertError::UnsupportedExport {
            reason: format!("tokenizer model `{model}` (export handles gpt2)"),
        });
    }
    let pre_name = file.get_str("tokenizer.ggml.pre").map_err(ge)?;
    let pre = pre_tokenizers()
        .into_iter()
        .find(|(n, _)| *n == pre_name)
        .map(|(_, j)| j)
        .ok_or_else(|| ConvertError::UnsupportedExport {
            reason: format!("pre-tokenizer `{pre_name}`"),
        })?;
    let types = file
        .get_i32_array("tokenizer.ggml.token_type")
        .map_err(ge)?;
    if types.len() != tokens.len() {
        return Err(ConvertError::UnsupportedExport {
            reason: format!("{} token types for {} tokens", types.len(), tokens.len()),
        });
    }
    let merges: Vec<&str> = match file.get("tokenizer.ggml.merges") {
        Some(_) => file.get_str_array("tokenizer.ggml.merges").map_err(ge)?,
        None => Vec::new(),
    };
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (i, (&t, &ty)) in tokens.iter().zip(types).enumerate() {
        match ty {
            token_type::UNUSED => continue,
            token_type::CONTROL | token_type::USER_DEFINED => {
                let special = ty == token_type::CONTROL;
                added.push(
                    json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": !special, "special": special}),
                );
            }
            _ => {}
        }
        vocab.insert(t.to_string(), json!(i));
    }
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false, "vocab": vocab, "merges": merges
        }
    });
    let mut tc = Map::new();
    for (typ, key) in SPECIAL_IDS {
        if let Ok(id) = file.get_u32(key) {
            if let Some(t) = tokens.get(id as usize) {
                tc.insert(format!("{typ}_token"), json!(t));
            }
        }
    }
    for typ in ["bos", "eos", "sep"] {
        if let Ok(b) = file.get_bool(&format!("tokenizer.ggml.add_{typ}_token")) {
            tc.insert(format!("add_{typ}_token"), json!(b));
        }
    }
    if let Ok(t) = file.get_str("tokenizer.chat_template") {
        tc.insert("chat_template".into(), json!(t));
    }
    if let Ok(b) = file.get_bool("tokenizer.ggml.add_space_prefix") {
        tc.insert("add_prefix_space".into(), json!(b));
    }
    tc.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
    Ok((tokenizer, Json::Object(tc)))
}

fn pretty(j: &Json) -> String {
    let mut s = serde_json::to_string_pretty(j).expect("JSON values always serialise");
    s.push('\n');
    s
}

/// Removes a partly written export directory unless disarmed.
struct TempDir(PathBuf, bool);

impl TempDir {
    fn disarm(mut self) {
        self.1 = true;
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !self.1 {
            // Best effort: the error being returned is the one worth reporting.
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
