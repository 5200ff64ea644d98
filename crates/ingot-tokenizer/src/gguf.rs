//! Reading the `tokenizer.ggml.*` metadata of a GGUF file into [`VocabData`].

use crate::{keys, Tokenizer, TokenizerError, VocabData};
use ingot_format::{Array, FormatError, GgufFile};

fn meta(key: &str) -> impl FnOnce(FormatError) -> TokenizerError + '_ {
    move |source| TokenizerError::Metadata {
        key: key.to_owned(),
        source,
    }
}

/// `get(file, key)` if the key is present, `None` if absent, an error naming the key if present
/// with the wrong type.
fn optional<'f, T>(
    file: &'f GgufFile,
    key: &str,
    get: impl FnOnce(&'f GgufFile, &str) -> Result<T, FormatError>,
) -> Result<Option<T>, TokenizerError> {
    if file.get(key).is_none() {
        return Ok(None);
    }
    get(file, key).map(Some).map_err(meta(key))
}

fn strings(file: &GgufFile, key: &str) -> Result<Vec<String>, FormatError> {
    file.get_str_array(key)
        .map(|v| v.into_iter().map(str::to_owned).collect())
}

/// `tokenizer.ggml.scores`: f32, or i32 as llama.cpp also accepts.
fn scores(file: &GgufFile, key: &str) -> Result<Vec<f32>, FormatError> {
    match file.get_array(key)? {
        Array::I32(v) => Ok(v.iter().map(|&x| x as f32).collect()),
        _ => file.get_f32_array(key).map(<[f32]>::to_vec),
    }
}

impl VocabData {
    /// Reads the tokenizer metadata of `file`. Missing required keys (`tokenizer.ggml.model`,
    /// `tokenizer.ggml.tokens`) and keys of the wrong type are [`TokenizerError::Metadata`]
    /// errors naming the key; consistency is checked by [`Tokenizer::new`].
    pub fn from_gguf(file: &GgufFile) -> Result<VocabData, TokenizerError> {
        Ok(VocabData {
            model: file
                .get_str(keys::MODEL)
                .map_err(meta(keys::MODEL))?
                .to_owned(),
            pre: optional(file, keys::PRE, |f, k| f.get_str(k).map(str::to_owned))?,
            tokens: strings(file, keys::TOKENS).map_err(meta(keys::TOKENS))?,
            token_types: optional(file, keys::TOKEN_TYPE, |f, k| {
                f.get_i32_array(k).map(<[i32]>::to_vec)
            })?,
            scores: optional(file, keys::SCORES, scores)?,
            merges: optional(file, keys::MERGES, strings)?,
            bos_token_id: optional(file, keys::BOS_ID, GgufFile::get_u32)?,
            eos_token_id: optional(file, keys::EOS_ID, GgufFile::get_u32)?,
            unknown_token_id: optional(file, keys::UNK_ID, GgufFile::get_u32)?,
            padding_token_id: optional(file, keys::PAD_ID, GgufFile::get_u32)?,
            add_bos_token: optional(file, keys::ADD_BOS, GgufFile::get_bool)?,
            add_eos_token: optional(file, keys::ADD_EOS, GgufFile::get_bool)?,
            add_space_prefix: optional(file, keys::ADD_SPACE_PREFIX, GgufFile::get_bool)?,
        })
    }
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes (its `tokenizer.ggml.*` metadata).
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        Tokenizer::new(VocabData::from_gguf(file)?)
    }
}
