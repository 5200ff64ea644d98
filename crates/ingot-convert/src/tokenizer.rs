//! `tokenizer.json` (+ `tokenizer_config.json`, `config.json`) → `tokenizer.*` GGUF keys.
//!
//! Byte-level BPE tokenizers (GPT-2, Llama 3, SmolLM, Qwen2, the tiny test model) become
//! `tokenizer.ggml.model = "gpt2"` exactly as `convert_hf_to_gguf.py` writes them
//! (`Model._set_vocab_gpt2` → `get_vocab_base`, then gguf-py's `SpecialVocab.add_to_gguf`):
//!
//! 1. `tokenizer.ggml.model`, `tokenizer.ggml.pre`, `tokenizer.ggml.tokens` (the byte-level
//!    strings, ids `0..vocab_size`, holes filled with `[PAD{id}]`), `tokenizer.ggml.token_type`
//!    (1 normal, 3 control = added tokens that are special or look like `<|...|>`,
//!    4 user-defined = other added tokens, 5 unused = holes);
//! 2. `tokenizer.ggml.merges` ("a b"; the newer `["a", "b"]` pair form is joined with a space,
//!    spaces inside a part written as U+0120);
//! 3. special token ids (bos, eos, unk, sep, pad, mask, in that type order; first from
//!    tokenizer_config.json's `*_token` looked up among `added_tokens`, then config.json's
//!    `*_token_id`), then `add_bos_token`/`add_eos_token`/`add_sep_token` (from a
//!    `TemplateProcessing`/`RobertaProcessing` post-processor, overridden by
//!    tokenizer_config.json), then `tokenizer.chat_template`.
//!
//! The pre-tokenizer name: llama.cpp hashes the token ids a reference tokenizer produces for a
//! check string (`get_vocab_base_pre`). Without running the Hugging Face tokenizer we recognise
//! the `pre_tokenizer` JSON structure of the same models instead ([`PRE_TOKENIZERS`]); anything
//! else is an error, as in llama.cpp.

use std::path::Path;

use serde_json::{json, Value as Json};

use crate::config::{Architecture, HfConfig};
use crate::error::{ConvertError, Result};
use crate::meta::{MetaValue, Metadata};

/// GGUF token types (llama.cpp `llama_token_type`, gguf-py `TokenType`).
pub mod token_type {
    /// An ordinary vocabulary entry.
    pub const NORMAL: i32 = 1;
    /// Unknown token.
    pub const UNKNOWN: i32 = 2;
    /// A special token that is never produced from text (BOS, EOS, `<|...|>`).
    pub const CONTROL: i32 = 3;
    /// An added token matched literally in text.
    pub const USER_DEFINED: i32 = 4;
    /// A filler id with no token.
    pub const UNUSED: i32 = 5;
    /// A byte-fallback token `<0xXX>`.
    pub const BYTE: i32 = 6;
}

const GPT2_REGEX_NAME: &str = "gpt-2";

/// Llama 3's split regex (tokenizer.json `pre_tokenizer.pretokenizers[0].pattern.Regex`).
const LLAMA3_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split regex (as Llama 3's but single digits).
const QWEN2_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizers recognised, as `(tokenizer.ggml.pre, canonical pre_tokenizer JSON)`.
/// Matching ignores `trim_offsets` (it affects offsets only, not tokens).
pub fn pre_tokenizers() -> Vec<(&'static str, Json)> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "use_regex": use_regex});
    let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
    vec![
        // GPT-2 (openai-community/gpt2): ByteLevel with GPT-2's own regex.
        (GPT2_REGEX_NAME, byte_level(true)),
        // Llama 3 (meta-llama/Meta-Llama-3-8B): llama.cpp "llama-bpe".
        (
            "llama-bpe",
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3_REGEX), byte_level(false)]}),
        ),
        // Qwen2 / Qwen1.5: llama.cpp "qwen2".
        (
            "qwen2",
            json!({"type": "Sequence", "pretokenizers": [split(QWEN2_REGEX), byte_level(false)]}),
        ),
        // SmolLM / SmolLM2 (HuggingFaceTB): llama.cpp "smollm".
        (
            "smollm",
            json!({"type": "Sequence", "pretokenizers": [
                {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        ),
    ]
}

/// Pre-tokenizer JSON with fields that do not change tokens removed, for comparison.
fn canonical_pre(j: &Json) -> Json {
    match j {
        Json::Object(m) => Json::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != "trim_offsets")
                .map(|(k, v)| (k.clone(), canonical_pre(v)))
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.iter().map(canonical_pre).collect()),
        other => other.clone(),
    }
}

/// The llama.cpp pre-tokenizer name for a tokenizer.json `pre_tokenizer`.
pub fn detect_pre(pre: &Json) -> Result<&'static str> {
    let c = canonical_pre(pre);
    pre_tokenizers()
        .into_iter()
        .find(|(_, j)| canonical_pre(j) == c)
        .map(|(n, _)| n)
        .ok_or_else(|| ConvertError::UnknownPreTokenizer {
            pre_tokenizer: pre.to_string(),
        })
}

fn read_json(path: &Path) -> Result<Option<Json>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| ConvertError::io(path, e))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ConvertError::Json {
            path: path.to_path_buf(),
            source: e,
        })
}

/// Whether a token's text looks like a control token (`Model.does_token_look_special`).
fn looks_special(t: &str) -> bool {
    matches!(t, "<pad>" | "<mask>" | "<2mass>" | "[@BOS@]")
        || (t.starts_with("<|") && t.ends_with("|>"))
        || (t.starts_with("<｜") && t.ends_with("｜>"))
        || (t.starts_with("<unused") && t.ends_with('>'))
}

struct AddedToken {
    id: u64,
    content: String,
    special: bool,
}

fn parse_added(tok: &Json) -> Result<Vec<AddedToken>> {
    let mut added = Vec::new();
    if let Some(list) = tok.get("added_tokens").and_then(Json::as_array) {
        for (k, a) in list.iter().enumerate() {
            let id = a.get("id").and_then(Json::as_u64);
            let content = a.get("content").and_then(Json::as_str);
            let (Some(id), Some(content)) = (id, content) else {
                return Err(ConvertError::field(
                    "tokenizer.json",
                    &format!("added_tokens[{k}]"),
                    "needs an integer `id` and a string `content`",
                ));
            };
            added.push(AddedToken {
                id,
                content: content.to_string(),
                special: a.get("special").and_then(Json::as_bool).unwrap_or(false),
            });
        }
    }
    Ok(added)
}

/// The SentencePiece path (`tokenizer.model` present): `_set_vocab_sentencepiece`.
fn sentencepiece_metadata(dir: &Path, cfg: &HfConfig, meta: &mut Metadata) -> Result<()> {
    let path = dir.join("tokenizer.model");
    let bytes = std::fs::read(&path).map_err(|e| ConvertError::io(&path, e))?;
    let pieces = crate::spm::parse_model(&bytes)?;
    let tc = read_json(&dir.join("tokenizer_config.json"))?;
    let added_json = read_json(&dir.join("added_tokens.json"))?;
    let (tokens, scores, types) = crate::spm::vocab(
        &pieces,
        cfg.vocab_size,
        added_json.as_ref(),
        tc.as_ref(),
        looks_special,
    )?;
    meta.set("tokenizer.ggml.model", MetaValue::Str("llama".into()));
    meta.set("tokenizer.ggml.pre", MetaValue::Str("default".into()));
    meta.set("tokenizer.ggml.tokens", MetaValue::StrArray(tokens));
    meta.set("tokenizer.ggml.scores", MetaValue::F32Array(scores));
    meta.set("tokenizer.ggml.token_type", MetaValue::I32Array(types));
    let tok = read_json(&dir.join("tokenizer.json"))?.unwrap_or(Json::Null);
    let added = parse_added(&tok)?;
    special_vocab(dir, &tok, tc.clone(), &added, cfg, meta)?;
    add_space_prefix(cfg, tc.as_ref(), meta);
    Ok(())
}

/// LlamaModel.set_vocab: `add_space_prefix` from tokenizer_config.json.
fn add_space_prefix(cfg: &HfConfig, tc: Option<&Json>, meta: &mut Metadata) {
    if matches!(cfg.arch, Architecture::Llama | Architecture::Mistral) {
        if let Some(b) = tc
            .and_then(|t| t.get("add_prefix_space"))
            .and_then(Json::as_bool)
        {
            meta.set("tokenizer.ggml.add_space_prefix", MetaValue::Bool(b));
        }
    }
}

/// Writes the `tokenizer.*` keys for the model in `dir` into `meta`: the SentencePiece path
/// when `tokenizer.model` exists (llama.cpp tries it first), else byte-level BPE from
/// tokenizer.json.
pub fn tokenizer_metadata(dir: &Path, cfg: &HfConfig, meta: &mut Metadata) -> Result<()> {
    if dir.join("tokenizer.model").is_file() {
        return sentencepiece_metadata(dir, cfg, meta);
    }
    let tok_path = dir.join("tokenizer.json");
    let tok = read_json(&tok_path)?.ok_or(ConvertError::MissingFile { path: tok_path })?;
    let tc = read_json(&dir.join("tokenizer_config.json"))?;
    const TF: &str = "tokenizer.json";

    let model = tok
        .get("model")
        .ok_or_else(|| ConvertError::field(TF, "model", "missing"))?;
    let mtype = model.get("type").and_then(Json::as_str).unwrap_or("");
    if mtype != "BPE" {
        return Err(ConvertError::UnsupportedTokenizer {
            reason: format!("model type `{mtype}` (only byte-level BPE is supported)"),
        });
    }
    if model.get("byte_fallback").and_then(Json::as_bool) == Some(true) {
        return Err(ConvertError::UnsupportedTokenizer {
            reason: "SentencePiece-style BPE with byte fallback needs its tokenizer.model".into(),
        });
    }
    let pre = detect_pre(tok.get("pre_tokenizer").unwrap_or(&Json::Null))?;

    // Vocabulary: model vocab plus added tokens (as Hugging Face's `tokenizer.vocab`).
    let vocab = model
        .get("vocab")
        .and_then(Json::as_object)
        .ok_or_else(|| ConvertError::field(TF, "model.vocab", "missing or not an object"))?;
    let added = parse_added(&tok)?;
    let n_vocab = u64::from(cfg.vocab_size);
    let mut by_id: Vec<Option<(String, i32)>> = vec![None; cfg.vocab_size as usize];
    for (text, id) in vocab {
        let id = id.as_u64().ok_or_else(|| {
            ConvertError::field(TF, &format!("model.vocab.{text}"), "not a token id")
        })?;
        put(&mut by_id, id, text, token_type::NORMAL, n_vocab)?;
    }
    for a in &added {
        let ty = if a.special || looks_special(&a.content) {
            token_type::CONTROL
        } else {
            token_type::USER_DEFINED
        };
        let text = if ty == token_type::USER_DEFINED {
            a.content.replace('\u{2581}', " ")
        } else {
            a.content.clone()
        };
        // An added token may repeat a vocabulary entry with the same id: it is then added.
        if let Some(Some((prev, _))) = by_id.get(a.id as usize) {
            if *prev != a.content {
                return Err(ConvertError::DuplicateTokenId {
                    id: a.id,
                    first: prev.clone(),
                    second: a.content.clone(),
                });
            }
            by_id[a.id as usize] = None;
        }
        put(&mut by_id, a.id, &text, ty, n_vocab)?;
    }
    let mut tokens = Vec::with_capacity(by_id.len());
    let mut types = Vec::with_capacity(by_id.len());
    for (i, slot) in by_id.into_iter().enumerate() {
        match slot {
            Some((t, ty)) => {
                tokens.push(t);
                types.push(ty);
            }
            None => {
                tokens.push(format!("[PAD{i}]"));
                types.push(token_type::UNUSED);
            }
        }
    }

    // Merges.
    let mut merges = Vec::new();
    if let Some(list) = model.get("merges").and_then(Json::as_array) {
        for (k, m) in list.iter().enumerate() {
            match m {
                Json::String(s) => merges.push(s.clone()),
                Json::Array(pair) if pair.len() == 2 => {
                    let part = |p: &Json| {
                        p.as_str().map(|s| {
                            s.chars()
                                .map(|c| if c == ' ' { '\u{120}' } else { c })
                                .collect::<String>()
                        })
                    };
                    match (part(&pair[0]), part(&pair[1])) {
                        (Some(a), Some(b)) => merges.push(format!("{a} {b}")),
                        _ => {
                            return Err(ConvertError::field(
                                TF,
                                &format!("model.merges[{k}]"),
                                "not a pair of strings",
                            ))
                        }
                    }
                }
                _ => {
                    return Err(ConvertError::field(
                        TF,
                        &format!("model.merges[{k}]"),
                        "neither \"a b\" nor [\"a\", \"b\"]",
                    ))
                }
            }
        }
    }

    meta.set("tokenizer.ggml.model", MetaValue::Str("gpt2".into()));
    meta.set("tokenizer.ggml.pre", MetaValue::Str(pre.into()));
    meta.set("tokenizer.ggml.tokens", MetaValue::StrArray(tokens));
    meta.set("tokenizer.ggml.token_type", MetaValue::I32Array(types));
    if !merges.is_empty() {
        meta.set("tokenizer.ggml.merges", MetaValue::StrArray(merges));
    }
    special_vocab(dir, &tok, tc.clone(), &added, cfg, meta)?;

    add_space_prefix(cfg, tc.as_ref(), meta);
    Ok(())
}

fn put(
    by_id: &mut [Option<(String, i32)>],
    id: u64,
    text: &str,
    ty: i32,
    n_vocab: u64,
) -> Result<()> {
    let slot = usize::try_from(id)
        .ok()
        .and_then(|i| by_id.get_mut(i))
        .ok_or_else(|| ConvertError::TokenIdOutOfRange {
            token: text.to_string(),
            id,
            n_vocab,
        })?;
    if let Some((prev, _)) = slot {
        return Err(ConvertError::DuplicateTokenId {
            id,
            first: prev.clone(),
            second: text.to_string(),
        });
    }
    *slot = Some((text.to_string(), ty));
    Ok(())
}

/// gguf-py `SpecialVocab` (load from tokenizer.json, tokenizer_config.json, config.json; then
/// `add_to_gguf` without the merges, which the caller wrote).
fn special_vocab(
    dir: &Path,
    tok: &Json,
    mut tc: Option<Json>,
    added: &[AddedToken],
    cfg: &HfConfig,
    meta: &mut Metadata,
) -> Result<()> {
    let mut types: Vec<&str> = vec!["bos", "eos", "unk", "sep", "pad", "cls", "mask"];
    let mut add: Vec<(&str, bool)> = Vec::new();
    let set_add = |add: &mut Vec<(&str, bool)>, typ: &'static str, v: bool| {
        if let Some(e) = add.iter_mut().find(|(t, _)| *t == typ) {
            e.1 = v;
        } else {
            add.push((typ, v));
        }
    };
    let tc_has = |tc: &Option<Json>| {
        tc.as_ref()
            .and_then(Json::as_object)
            .is_some_and(|m| !m.is_empty())
    };
    let get = |tc: &Option<Json>, k: &str| -> Option<Json> {
        tc.as_ref()
            .and_then(|t| t.get(k))
            .filter(|v| truthy(v))
            .cloned()
    };
    let mut sbos = get(&tc, "bos_token");
    let scls = get(&tc, "cls_token");
    let mut seos = get(&tc, "eos_token");
    let ssep = get(&tc, "sep_token");
    if sbos.is_none() && scls.is_some() && tc_has(&tc) {
        sbos = scls.clone();
        set_tc(&mut tc, "bos_token", sbos.clone());
    }
    if seos.is_none() && ssep.is_some() && tc_has(&tc) {
        seos = ssep.clone();
        set_tc(&mut tc, "eos_token", seos.clone());
    }
    if let Some(pp) = tok.get("post_processor").filter(|p| !p.is_null()) {
        let procs: Vec<&Json> = match pp.get("processors").and_then(Json::as_array) {
            Some(list) => list.iter().collect(),
            None => vec![pp],
        };
        for p in procs {
            match p.get("type").and_then(Json::as_str) {
                Some("RobertaProcessing") => {
                    set_add(&mut add, "bos", true);
                    set_add(&mut add, "eos", true);
                    set_add(&mut add, "sep", true);
                }
                Some("TemplateProcessing") => {
                    let empty = Vec::new();
                    let single = p.get("single").and_then(Json::as_array).unwrap_or(&empty);
                    let pair = p.get("pair").and_then(Json::as_array).unwrap_or(&empty);
                    let special_id = |e: &Json| -> Option<Json> {
                        e.get("SpecialToken")
                            .and_then(|s| s.get("id"))
                            .filter(|v| truthy(v))
                            .cloned()
                    };
                    let mut first = None;
                    let mut last = None;
                    if single.len() > 1 {
                        first = special_id(&single[0]);
                        if let Some(f) = &first {
                            if !tc_has(&tc) {
                                sbos = Some(f.clone());
                            }
                            let is = Some(f) == sbos.as_ref() || Some(f) == scls.as_ref();
                            set_add(&mut add, "bos", is);
                        }
                        last = special_id(&single[single.len() - 1]);
                        if let Some(l) = &last {
                            if !tc_has(&tc) {
                                seos = Some(l.clone());
                            } else if Some(l) != seos.as_ref() {
                                if !types.contains(&"eot") {
                                    types.push("eot");
                                    set_tc(&mut tc, "eot_token", seos.clone());
                                }
                                seos = Some(l.clone());
                                set_tc(&mut tc, "eos_token", seos.clone());
                            }
                            set_add(&mut add, "eos", Some(l) == seos.as_ref());
                        }
                    }
                    if !pair.is_empty() {
                        let start = usize::from(first.is_some() && special_id(&pair[0]) == first);
                        let stop = if last.is_some() && special_id(&pair[pair.len() - 1]) == last {
                            pair.len() - 1
                        } else {
                            pair.len()
                        };
                        let inner = pair.get(start..stop).unwrap_or(&[]);
                        if !inner.is_empty() {
                            let seq = |e: &Json| {
                                e.get("Sequence")
                                    .and_then(|s| s.get("id"))
                                    .and_then(Json::as_str)
                                    .map(str::to_string)
                            };
                            let a = seq(&inner[0]);
                            let b = seq(&inner[inner.len() - 1]);
                            if a.as_deref() == Some("A")
                                && b.as_deref() == Some("B")
                                && inner.len() > 2
                            {
                                let mid = &inner[1..inner.len() - 1];
                                let mut add_sep = false;
                                let is_sep =
                                    |e: &Option<Json>| e.is_some() && (*e == ssep || *e == seos);
                                let e0 = special_id(&mid[0]);
                                if is_sep(&e0) && last.is_none() {
                                    add_sep = true;
                                }
                                if mid.len() == 2 && is_sep(&special_id(&mid[1])) {
                                    add_sep = true;
                                }
                                set_add(&mut add, "sep", add_sep);
                                if add_sep && ssep.is_none() && tc_has(&tc) {
                                    set_tc(&mut tc, "sep_token", seos.clone());
                                }
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    let mut ids: Vec<(&str, u64)> = Vec::new();
    let n_vocab = u64::from(cfg.vocab_size);
    let set_id = |ids: &mut Vec<(&str, u64)>, typ: &'static str, id: u64| {
        if id < n_vocab && !ids.iter().any(|(t, _)| *t == typ) {
            ids.push((typ, id));
        }
    };
    let mut chat_template = None;
    if tc_has(&tc) {
        let t = tc.as_ref().expect("tc_has checked it is an object");
        let alt = dir.join("chat_template.jinja");
        chat_template = match t.get("chat_template") {
            Some(Json::String(s)) => Some(s.clone()),
            Some(_) => None,
            None if alt.is_file() => {
                Some(std::fs::read_to_string(&alt).map_err(|e| ConvertError::io(&alt, e))?)
            }
            None => None,
        };
        for typ in types.iter().copied() {
            let typ: &'static str = static_typ(typ);
            if let Some(b) = t.get(format!("add_{typ}_token")).and_then(Json::as_bool) {
                set_add(&mut add, typ, b);
            }
            let content = match t.get(format!("{typ}_token")) {
                Some(Json::String(s)) => s.clone(),
                Some(Json::Object(m)) => match m.get("content").and_then(Json::as_str) {
                    Some(s) => s.to_string(),
                    None => continue,
                },
                _ => continue,
            };
            if let Some(a) = added.iter().find(|a| a.content == content) {
                set_id(&mut ids, typ, a.id);
            }
        }
    }
    for typ in types.iter().copied() {
        if let Some(id) = cfg
            .json
            .get(format!("{typ}_token_id"))
            .and_then(Json::as_u64)
        {
            set_id(&mut ids, static_typ(typ), id);
        }
    }

    for (typ, id) in ids {
        let key = match typ {
            "bos" => "tokenizer.ggml.bos_token_id",
            "eos" => "tokenizer.ggml.eos_token_id",
            "unk" => "tokenizer.ggml.unknown_token_id",
            "sep" => "tokenizer.ggml.seperator_token_id",
            "pad" => "tokenizer.ggml.padding_token_id",
            "mask" => "tokenizer.ggml.mask_token_id",
            "eot" => "tokenizer.ggml.eot_token_id",
            _ => continue, // gguf-py has no writer for cls ids: skipped there too.
        };
        let id = u32::try_from(id).map_err(|_| ConvertError::OutOfRange {
            what: key.into(),
            value: id,
        })?;
        meta.set(key, MetaValue::U32(id));
    }
    for (typ, v) in add {
        let key = match typ {
            "bos" => "tokenizer.ggml.add_bos_token",
            "eos" => "tokenizer.ggml.add_eos_token",
            "sep" => "tokenizer.ggml.add_sep_token",
            _ => continue,
        };
        meta.set(key, MetaValue::Bool(v));
    }
    if let Some(t) = chat_template {
        meta.set("tokenizer.chat_template", MetaValue::Str(t));
    }
    Ok(())
}

fn static_typ(t: &str) -> &'static str {
    match t {
        "bos" => "bos",
        "eos" => "eos",
        "unk" => "unk",
        "sep" => "sep",
        "pad" => "pad",
        "cls" => "cls",
        "mask" => "mask",
        _ => "eot",
    }
}

/// Python truthiness of a JSON value (None, "", false, 0, {} and [] are false).
fn truthy(v: &Json) -> bool {
    match v {
        Json::Null => false,
        Json::Bool(b) => *b,
        Json::Number(n) => n.as_f64() != Some(0.0),
        Json::String(s) => !s.is_empty(),
        Json::Array(a) => !a.is_empty(),
        Json::Object(m) => !m.is_empty(),
    }
}

fn set_tc(tc: &mut Option<Json>, key: &str, v: Option<Json>) {
    if let Some(Json::Object(m)) = tc {
        m.insert(key.to_string(), v.unwrap_or(Json::Null));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_known_pre_tokenizers() {
        let gpt2 = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
        assert_eq!(detect_pre(&gpt2).unwrap(), "gpt-2");
        for (name, j) in pre_tokenizers() {
            assert_eq!(detect_pre(&j).unwrap(), name);
        }
        let odd = json!({"type": "Whitespace"});
        assert!(matches!(
            detect_pre(&odd),
            Err(ConvertError::UnknownPreTokenizer { .. })
        ));
    }

    #[test]
    fn special_looking_tokens() {
        assert!(looks_special("<|im_start|>"));
        assert!(looks_special("<unused12>"));
        assert!(!looks_special("hello"));
    }
}
