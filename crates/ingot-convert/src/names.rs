//! The tensor name map: Hugging Face names ↔ llama.cpp GGUF names, with the shape config.json
//! implies for each and whether llama.cpp permutes its rows.
//!
//! Source: gguf-py `tensor_mapping.py` (`TensorNameMap`, the `MODEL_TENSOR` → HF name table)
//! and `constants.py` (`TENSOR_NAMES`), as used by `convert_hf_to_gguf.py`.
//!
//! | Hugging Face                                   | GGUF                      |
//! |------------------------------------------------|---------------------------|
//! | `model.embed_tokens.weight`                    | `token_embd.weight`       |
//! | `model.layers.N.input_layernorm.weight`        | `blk.N.attn_norm.weight`  |
//! | `model.layers.N.self_attn.{q,k,v}_proj.*`      | `blk.N.attn_{q,k,v}.*`    |
//! | `model.layers.N.self_attn.o_proj.*`            | `blk.N.attn_output.*`     |
//! | `model.layers.N.post_attention_layernorm.weight` | `blk.N.ffn_norm.weight` |
//! | `model.layers.N.mlp.{gate,up,down}_proj.*`     | `blk.N.ffn_{gate,up,down}.*` |
//! | `model.norm.weight`                            | `output_norm.weight`      |
//! | `lm_head.weight`                               | `output.weight`           |

use std::collections::BTreeMap;

use crate::config::HfConfig;

/// One tensor the architecture knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Hugging Face name.
    pub hf: String,
    /// GGUF name.
    pub gguf: String,
    /// Shape implied by config.json, Hugging Face order (outermost first).
    pub shape: Vec<u64>,
    /// `Some(n)`: llama.cpp's rotary row permutation with `n` heads applies.
    pub permute_heads: Option<u32>,
    /// Must be present.
    pub required: bool,
}

/// Suffix of tensors that are buffers, not weights: never converted (llama.cpp skips them too).
pub const SKIPPED_SUFFIXES: [&str; 1] = [".rotary_emb.inv_freq"];

/// Every tensor name the architecture accepts, keyed by Hugging Face name.
pub fn tensor_specs(cfg: &HfConfig) -> BTreeMap<String, TensorSpec> {
    let e = u64::from(cfg.n_embd);
    let ff = u64::from(cfg.n_ff);
    let hd = u64::from(cfg.head_dim());
    let q = u64::from(cfg.n_head) * hd;
    let kv = u64::from(cfg.n_head_kv) * hd;
    let v = u64::from(cfg.vocab_size);
    let permute = cfg.arch.permutes_qk();
    let qkv_bias = cfg.arch.requires_qkv_bias();

    let mut out = BTreeMap::new();
    let mut add = |hf: String, gguf: String, shape: Vec<u64>, heads: Option<u32>, req: bool| {
        out.insert(
            hf.clone(),
            TensorSpec {
                hf,
                gguf,
                shape,
                permute_heads: heads,
                required: req,
            },
        );
    };
    add(
        "model.embed_tokens.weight".into(),
        "token_embd.weight".into(),
        vec![v, e],
        None,
        true,
    );
    add(
        "model.norm.weight".into(),
        "output_norm.weight".into(),
        vec![e],
        None,
        true,
    );
    add(
        "lm_head.weight".into(),
        "output.weight".into(),
        vec![v, e],
        None,
        !cfg.tie_word_embeddings,
    );
    let qh = permute.then_some(cfg.n_head);
    // llama.cpp's permute(w, n_head, n_head_kv) uses n_head_kv for K when they differ.
    let kh = permute.then_some(cfg.n_head_kv);
    for i in 0..cfg.n_layer {
        let hf = |s: &str| format!("model.layers.{i}.{s}");
        let gg = |s: &str| format!("blk.{i}.{s}");
        add(
            hf("input_layernorm.weight"),
            gg("attn_norm.weight"),
            vec![e],
            None,
            true,
        );
        add(
            hf("post_attention_layernorm.weight"),
            gg("ffn_norm.weight"),
            vec![e],
            None,
            true,
        );
        for (proj, name, rows, cols, heads) in [
            ("q_proj", "attn_q", q, e, qh),
            ("k_proj", "attn_k", kv, e, kh),
            ("v_proj", "attn_v", kv, e, None),
            ("o_proj", "attn_output", e, q, None),
        ] {
            add(
                hf(&format!("self_attn.{proj}.weight")),
                gg(&format!("{name}.weight")),
                vec![rows, cols],
                heads,
                true,
            );
            add(
                hf(&format!("self_attn.{proj}.bias")),
                gg(&format!("{name}.bias")),
                vec![rows],
                heads,
                qkv_bias && proj != "o_proj",
            );
        }
        for (proj, name, rows, cols) in [
            ("gate_proj", "ffn_gate", ff, e),
            ("up_proj", "ffn_up", ff, e),
            ("down_proj", "ffn_down", e, ff),
        ] {
            add(
                hf(&format!("mlp.{proj}.weight")),
                gg(&format!("{name}.weight")),
                vec![rows, cols],
                None,
                true,
            );
            add(
                hf(&format!("mlp.{proj}.bias")),
                gg(&format!("{name}.bias")),
                vec![rows],
                None,
                false,
            );
        }
    }
    out
}

/// Whether a Hugging Face tensor is skipped on purpose.
pub fn is_skipped(hf_name: &str) -> bool {
    SKIPPED_SUFFIXES.iter().any(|s| hf_name.ends_with(s))
}

/// Whether llama.cpp keeps a tensor in F32 whatever the output type: 1-D tensors, norms and
/// anything not named `*.weight` (`Model.prepare_tensors` in convert_hf_to_gguf.py).
pub fn always_f32(gguf_name: &str, n_dims: usize) -> bool {
    n_dims <= 1 || gguf_name.ends_with("_norm.weight") || !gguf_name.ends_with(".weight")
}
