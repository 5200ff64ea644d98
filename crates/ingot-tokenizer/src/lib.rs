//! ingot-tokenizer: the tokenizers of GGUF files — GPT-2 byte-level BPE (`tokenizer.ggml.model =
//! gpt2`) and SentencePiece-style BPE with byte fallback (`llama`) — giving the token ids
//! llama.cpp gives.
//!
//! # What `encode` does (llama.cpp's `llama_vocab::impl::tokenize`)
//! 1. **Special tokens.** Control, unknown and user-defined tokens are cut out of the text first,
//!    longest text first (`tokenizer_st_partition`). Control and unknown tokens only when
//!    `parse_special` is true; user-defined tokens always.
//! 2. **Each remaining text fragment** is tokenized on its own:
//!    - `gpt2`: split into words by the pre-tokenizer of `tokenizer.ggml.pre` (see
//!      [`PreTokenizer`]), then each word's bytes are merged by merge rank.
//!    - `llama`: spaces become `▁`, a space is put in front of a fragment that starts the text or
//!      follows a special token when `add_space_prefix` (default true), then pairs are merged by
//!      score with byte fallback to `<0xNN>` tokens.
//! 3. **BOS/EOS.** With `add_special`, BOS goes first if the vocabulary adds BOS and EOS last if
//!    it adds EOS. Defaults follow llama.cpp: `llama` adds BOS; `gpt2` adds BOS only for the
//!    `llama-bpe` family; `tokenizer.ggml.add_bos_token` / `add_eos_token` override.
//!
//! # Decoding
//! [`Tokenizer::token_to_piece`] gives a token's bytes as llama.cpp's `token_to_piece` with
//! `special = true` (control tokens render as their text; unused/undefined tokens as nothing).
//! [`Tokenizer::decode`] concatenates pieces (dropping a leading space of the first piece when
//! the vocabulary adds a space prefix, as llama.cpp's detokenizer does) and replaces ids outside
//! the vocabulary and invalid UTF-8 with U+FFFD; [`Tokenizer::try_decode`] returns
//! [`TokenizerError::InvalidTokenId`] instead.
//!
//! # Example
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let file = ingot_format::GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let tok = ingot_tokenizer::Tokenizer::from_gguf(&file)?;
//! let ids = tok.encode("Hello world", true, false);
//! assert_eq!(tok.decode(&ids), "Hello world");
//! # Ok(())
//! # }
//! ```
//!
//! Details and sources: `formats/tokenizer.md`.
#![deny(missing_docs)]

mod bpe;
mod error;
mod gguf;
mod pretokenize;
mod spm;
mod unicode;

pub use error::TokenizerError;
pub use pretokenize::PreTokenizer;

use bpe::{pair_key, Bpe, BpeScratch, Merge, PairMap, NONE};
use spm::Spm;
use std::collections::HashMap;

/// Metadata key names, as in GGUF and llama.cpp (`LLM_KV_TOKENIZER_*`).
pub mod keys {
    /// `gpt2` or `llama`.
    pub const MODEL: &str = "tokenizer.ggml.model";
    /// Pre-tokenizer name.
    pub const PRE: &str = "tokenizer.ggml.pre";
    /// Token texts.
    pub const TOKENS: &str = "tokenizer.ggml.tokens";
    /// Token types (i32, see [`crate::TokenType`]).
    pub const TOKEN_TYPE: &str = "tokenizer.ggml.token_type";
    /// Token scores (f32).
    pub const SCORES: &str = "tokenizer.ggml.scores";
    /// BPE merge rules, `"left right"`, in rank order.
    pub const MERGES: &str = "tokenizer.ggml.merges";
    /// Beginning-of-sequence token id.
    pub const BOS_ID: &str = "tokenizer.ggml.bos_token_id";
    /// End-of-sequence token id.
    pub const EOS_ID: &str = "tokenizer.ggml.eos_token_id";
    /// Unknown token id.
    pub const UNK_ID: &str = "tokenizer.ggml.unknown_token_id";
    /// Padding token id.
    pub const PAD_ID: &str = "tokenizer.ggml.padding_token_id";
    /// Whether `encode` with `add_special` puts BOS first.
    pub const ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
    /// Whether `encode` with `add_special` puts EOS last.
    pub const ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
    /// Whether SentencePiece text gets a leading space.
    pub const ADD_SPACE_PREFIX: &str = "tokenizer.ggml.add_space_prefix";
}

/// GGUF token types (`tokenizer.ggml.token_type`; llama.cpp's `llama_token_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenType {
    /// 0: undefined.
    Undefined,
    /// 1: an ordinary token.
    Normal,
    /// 2: the unknown token.
    Unknown,
    /// 3: control (BOS, EOS, chat markers): matched in text only with `parse_special`.
    Control,
    /// 4: user-defined: always matched in text before tokenization.
    UserDefined,
    /// 5: unused.
    Unused,
    /// 6: a byte-fallback token `<0xNN>`.
    Byte,
}

impl TokenType {
    /// The type of a stored value, or `None` outside 0..=6.
    pub fn from_i32(v: i32) -> Option<TokenType> {
        Some(match v {
            0 => TokenType::Undefined,
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => return None,
        })
    }

    /// The stored value.
    pub fn as_i32(self) -> i32 {
        match self {
            TokenType::Undefined => 0,
            TokenType::Normal => 1,
            TokenType::Unknown => 2,
            TokenType::Control => 3,
            TokenType::UserDefined => 4,
            TokenType::Unused => 5,
            TokenType::Byte => 6,
        }
    }
}

/// Which algorithm a vocabulary uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelKind {
    /// `gpt2`: byte-level BPE with merge ranks.
    Bpe,
    /// `llama`: SentencePiece-style merges by score with byte fallback.
    Spm,
}

/// A vocabulary as plain data: the `tokenizer.ggml.*` metadata, without a file.
///
/// `None` fields take llama.cpp's defaults for the model type.
#[derive(Clone, Debug, Default)]
pub struct VocabData {
    /// `tokenizer.ggml.model`: `gpt2` or `llama`.
    pub model: String,
    /// `tokenizer.ggml.pre` (BPE only; `None` = llama.cpp's `default`).
    pub pre: Option<String>,
    /// `tokenizer.ggml.tokens`.
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type` (`None`: all normal).
    pub token_types: Option<Vec<i32>>,
    /// `tokenizer.ggml.scores` (`None`: all zero).
    pub scores: Option<Vec<f32>>,
    /// `tokenizer.ggml.merges` (required for BPE, ignored for SPM).
    pub merges: Option<Vec<String>>,
    /// `tokenizer.ggml.bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// `tokenizer.ggml.eos_token_id`.
    pub eos_token_id: Option<u32>,
    /// `tokenizer.ggml.unknown_token_id`.
    pub unknown_token_id: Option<u32>,
    /// `tokenizer.ggml.padding_token_id`.
    pub padding_token_id: Option<u32>,
    /// `tokenizer.ggml.add_bos_token`.
    pub add_bos_token: Option<bool>,
    /// `tokenizer.ggml.add_eos_token`.
    pub add_eos_token: Option<bool>,
    /// `tokenizer.ggml.add_space_prefix`.
    pub add_space_prefix: Option<bool>,
}

enum Engine {
    Bpe { bpe: Bpe, pre: PreTokenizer },
    Spm(Spm),
}

/// A tokenizer built from GGUF metadata (see the crate docs for what it does).
pub struct Tokenizer {
    engine: Engine,
    texts: Vec<Box<str>>,
    types: Vec<TokenType>,
    scores: Vec<f32>,
    text_to_id: HashMap<Box<[u8]>, u32>,
    /// Control, unknown and user-defined tokens, longest text first.
    special_order: Vec<u32>,
    piece_bytes: Vec<u8>,
    piece_offsets: Vec<usize>,
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("model", &self.model())
            .field("pre", &self.pre_tokenizer())
            .field("n_vocab", &self.n_vocab())
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("add_bos", &self.add_bos)
            .field("add_eos", &self.add_eos)
            .finish()
    }
}

/// Texts llama.cpp always marks as control tokens (its end-of-generation list).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<\u{ff5c}end\u{2581}of\u{2581}sentence\u{ff5c}>",
    "[e~[",
];

/// The largest vocabulary: llama.cpp's token ids are `i32`.
const MAX_TOKENS: usize = i32::MAX as usize;

impl Tokenizer {
    /// Builds a tokenizer from plain vocabulary data, validating it: unknown model or
    /// pre-tokenizer, per-token arrays of the wrong length, unknown token types, duplicate
    /// tokens, malformed merges or merges of non-tokens, and special ids outside the vocabulary
    /// are errors naming the field.
    pub fn new(data: VocabData) -> Result<Tokenizer, TokenizerError> {
        let VocabData {
            model,
            pre,
            tokens,
            token_types,
            scores,
            merges,
            bos_token_id,
            eos_token_id,
            unknown_token_id,
            padding_token_id,
            add_bos_token,
            add_eos_token,
            add_space_prefix,
        } = data;
        let kind = match model.as_str() {
            "gpt2" => ModelKind::Bpe,
            "llama" => ModelKind::Spm,
            _ => return Err(TokenizerError::UnknownModel { model }),
        };
        let pre_config = match kind {
            ModelKind::Bpe => Some(PreTokenizer::config(pre.as_deref()).ok_or_else(|| {
                TokenizerError::UnknownPreTokenizer {
                    pre: pre.clone().unwrap_or_default(),
                }
            })?),
            ModelKind::Spm => None,
        };
        let n = tokens.len();
        if n == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        if n > MAX_TOKENS {
            return Err(TokenizerError::TooManyTokens {
                n_tokens: n,
                max: MAX_TOKENS,
            });
        }
        let types = match token_types {
            None => vec![TokenType::Normal; n],
            Some(t) => {
                if t.len() != n {
                    return Err(TokenizerError::LengthMismatch {
                        key: keys::TOKEN_TYPE,
                        expected: n,
                        actual: t.len(),
                    });
                }
                t.iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        TokenType::from_i32(v).ok_or(TokenizerError::InvalidTokenType {
                            id: i as u32,
                            value: v,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        // llama.cpp (`llama_vocab::impl::load`) treats these end-of-generation texts as control
        // tokens even when the file says otherwise.
        let mut types = types;
        for (ty, text) in types.iter_mut().zip(&tokens) {
            if *ty != TokenType::Control && EOG_TEXTS.contains(&text.as_str()) {
                *ty = TokenType::Control;
            }
        }
        let scores = match scores {
            None => vec![0.0; n],
            Some(s) if s.len() == n => s,
            Some(s) => {
                return Err(TokenizerError::LengthMismatch {
                    key: keys::SCORES,
                    expected: n,
                    actual: s.len(),
                })
            }
        };
        // llama.cpp renames empty tokens to "[EMPTY_<id>]" and refuses duplicates.
        let texts: Vec<Box<str>> = tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                if t.is_empty() {
                    format!("[EMPTY_{i}]").into_boxed_str()
                } else {
                    t.into_boxed_str()
                }
            })
            .collect();
        let mut text_to_id: HashMap<Box<[u8]>, u32> = HashMap::with_capacity(n);
        for (i, t) in texts.iter().enumerate() {
            let id = i as u32;
            if let Some(&first) = text_to_id.get(t.as_bytes()) {
                return Err(TokenizerError::DuplicateToken {
                    text: t.to_string(),
                    first,
                    second: id,
                });
            }
            text_to_id.insert(t.as_bytes().into(), id);
        }

        // Special ids: defaults per model type (dropped if outside the vocabulary, as llama.cpp
        // does), metadata values must be inside it.
        let (def_bos, def_eos, def_unk) = match kind {
            ModelKind::Spm => (Some(1), Some(2), Some(0)),
            ModelKind::Bpe => (Some(11), Some(11), None),
        };
        let pick = |key: &'static str, given: Option<u32>, default: Option<u32>| match given {
            Some(id) if (id as usize) < n => Ok(Some(id)),
            Some(id) => Err(TokenizerError::SpecialTokenOutOfRange {
                key,
                id,
                n_vocab: n,
            }),
            None => Ok(default.filter(|&d| (d as usize) < n)),
        };
        let bos = pick(keys::BOS_ID, bos_token_id, def_bos)?;
        let eos = pick(keys::EOS_ID, eos_token_id, def_eos)?;
        let unk = pick(keys::UNK_ID, unknown_token_id, def_unk)?;
        let pad = pick(keys::PAD_ID, padding_token_id, None)?;
        let add_bos = add_bos_token.unwrap_or(match kind {
            ModelKind::Spm => true,
            ModelKind::Bpe => pre_config.is_some_and(|p| p.add_bos),
        });
        let add_eos = add_eos_token.unwrap_or(false);
        if add_bos && bos.is_none() {
            return Err(TokenizerError::MissingSpecialToken {
                flag: keys::ADD_BOS,
                key: keys::BOS_ID,
            });
        }
        if add_eos && eos.is_none() {
            return Err(TokenizerError::MissingSpecialToken {
                flag: keys::ADD_EOS,
                key: keys::EOS_ID,
            });
        }
        let add_space_prefix = match kind {
            ModelKind::Spm => add_space_prefix.unwrap_or(true),
            ModelKind::Bpe => add_space_prefix.unwrap_or(false),
        };

        let engine = match (kind, pre_config) {
            (ModelKind::Bpe, Some(pc)) => {
                let merges = merges.ok_or(TokenizerError::MissingMerges)?;
                Engine::Bpe {
                    bpe: build_bpe(&merges, &text_to_id, pc.ignore_merges)?,
                    pre: pc.kind,
                }
            }
            _ => Engine::Spm(build_spm(&text_to_id, unk)),
        };

        let mut special_order: Vec<u32> = (0..n as u32)
            .filter(|&id| {
                matches!(
                    types[id as usize],
                    TokenType::Control | TokenType::UserDefined | TokenType::Unknown
                )
            })
            .collect();
        special_order.sort_by_key(|&id| std::cmp::Reverse(texts[id as usize].len()));

        let mut tok = Tokenizer {
            engine,
            texts,
            types,
            scores,
            text_to_id,
            special_order,
            piece_bytes: Vec::new(),
            piece_offsets: Vec::new(),
            bos,
            eos,
            unk,
            pad,
            add_bos,
            add_eos,
            add_space_prefix,
        };
        tok.build_pieces();
        Ok(tok)
    }

    /// Precomputes every token's piece (llama.cpp's `cache_token_to_piece`).
    fn build_pieces(&mut self) {
        let mut bytes = Vec::new();
        let mut offsets = Vec::with_capacity(self.texts.len() + 1);
        offsets.push(0);
        let is_bpe = matches!(self.engine, Engine::Bpe { .. });
        for (text, &ty) in self.texts.iter().zip(&self.types) {
            match ty {
                TokenType::Control | TokenType::Unknown | TokenType::UserDefined => {
                    bytes.extend_from_slice(text.as_bytes())
                }
                TokenType::Normal if is_bpe => {
                    for c in text.chars() {
                        match unicode::char_to_byte(c) {
                            Some(b) => bytes.push(b),
                            // Outside the byte alphabet: keep the character itself.
                            None => {
                                let mut buf = [0u8; 4];
                                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                            }
                        }
                    }
                }
                TokenType::Normal => {
                    bytes.extend_from_slice(text.replace('\u{2581}', " ").as_bytes())
                }
                TokenType::Byte => match parse_byte_token(text) {
                    Some(b) => bytes.push(b),
                    None => bytes.extend_from_slice(text.as_bytes()),
                },
                TokenType::Unused | TokenType::Undefined => {}
            }
            offsets.push(bytes.len());
        }
        self.piece_bytes = bytes;
        self.piece_offsets = offsets;
    }

    /// Token ids of `text`, as llama.cpp's `llama_tokenize(vocab, text, add_special,
    /// parse_special)`: `add_special` adds BOS/EOS as the vocabulary asks, `parse_special` lets
    /// control tokens written in the text (e.g. `<|im_start|>`) become those tokens.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        let fragments = self.partition(text, parse_special);
        if add_special && self.add_bos {
            if let Some(bos) = self.bos {
                out.push(bos);
            }
        }
        match &self.engine {
            Engine::Bpe { bpe, pre } => {
                let mut scratch = BpeScratch::default();
                let mut pre_scratch = pretokenize::Scratch::default();
                let mut words = Vec::new();
                for frag in &fragments {
                    match *frag {
                        Fragment::Token(id) => out.push(id),
                        Fragment::Text(ref r) => {
                            let piece = &text[r.clone()];
                            words.clear();
                            pre.split_with(piece, &mut pre_scratch, &mut words);
                            for w in &words {
                                let word = &piece.as_bytes()[w.clone()];
                                bpe.encode_word(word, &self.text_to_id, &mut scratch, &mut out);
                            }
                        }
                    }
                }
            }
            Engine::Spm(spm) => {
                let mut prev_special = true;
                let mut buf = String::new();
                for frag in &fragments {
                    match *frag {
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                        Fragment::Text(ref r) => {
                            buf.clear();
                            if self.add_space_prefix && prev_special {
                                buf.push('\u{2581}');
                            }
                            for c in text[r.clone()].chars() {
                                buf.push(if c == ' ' { '\u{2581}' } else { c });
                            }
                            spm.encode(&buf, &self.text_to_id, &self.scores, &mut out);
                            prev_special = false;
                        }
                    }
                }
            }
        }
        if add_special && self.add_eos {
            if let Some(eos) = self.eos {
                out.push(eos);
            }
        }
        out
    }

    /// Cuts special tokens out of `text` (llama.cpp's `tokenizer_st_partition`).
    fn partition(&self, text: &str, parse_special: bool) -> Vec<Fragment> {
        let mut frags = Vec::new();
        if text.is_empty() {
            return frags;
        }
        frags.push(Fragment::Text(0..text.len()));
        for &id in &self.special_order {
            let ty = self.types[id as usize];
            if !parse_special && matches!(ty, TokenType::Control | TokenType::Unknown) {
                continue;
            }
            let pat = &*self.texts[id as usize];
            if !frags
                .iter()
                .any(|f| matches!(f, Fragment::Text(r) if text[r.clone()].contains(pat)))
            {
                continue;
            }
            let mut next = Vec::with_capacity(frags.len() + 2);
            for f in frags {
                match f {
                    Fragment::Token(_) => next.push(f),
                    Fragment::Text(r) => {
                        let mut cur = r.start;
                        while let Some(i) = text[cur..r.end].find(pat) {
                            if i > 0 {
                                next.push(Fragment::Text(cur..cur + i));
                            }
                            next.push(Fragment::Token(id));
                            cur += i + pat.len();
                        }
                        if cur < r.end {
                            next.push(Fragment::Text(cur..r.end));
                        }
                    }
                }
            }
            frags = next;
        }
        frags
    }

    /// The bytes token `id` stands for (empty for ids outside the vocabulary and for unused or
    /// undefined tokens). Control tokens give their text.
    pub fn token_to_piece(&self, id: u32) -> &[u8] {
        let i = id as usize;
        match (self.piece_offsets.get(i), self.piece_offsets.get(i + 1)) {
            (Some(&a), Some(&b)) => &self.piece_bytes[a..b],
            _ => &[],
        }
    }

    /// Concatenated pieces of `ids` as bytes; an id outside the vocabulary becomes `invalid`
    /// (`None`: stop with [`TokenizerError::InvalidTokenId`]).
    fn decode_into(&self, ids: &[u32], invalid: Option<&[u8]>) -> Result<Vec<u8>, TokenizerError> {
        // llama.cpp's `detokenize` strips it whatever the model type, when the vocabulary says
        // it adds a space prefix (BPE vocabularies default to not).
        let strip_space = self.add_space_prefix;
        let mut out = Vec::with_capacity(ids.len() * 4);
        for (k, &id) in ids.iter().enumerate() {
            if id as usize >= self.n_vocab() {
                match invalid {
                    Some(r) => out.extend_from_slice(r),
                    None => {
                        return Err(TokenizerError::InvalidTokenId {
                            id,
                            n_vocab: self.n_vocab(),
                        })
                    }
                }
                continue;
            }
            let mut piece = self.token_to_piece(id);
            // The leading space of the first piece is the one encoding added.
            if k == 0 && strip_space {
                piece = piece.strip_prefix(b" ").unwrap_or(piece);
            }
            out.extend_from_slice(piece);
        }
        Ok(out)
    }

    /// Concatenated pieces of `ids` as bytes (no UTF-8 repair), or
    /// [`TokenizerError::InvalidTokenId`] for the first id outside the vocabulary.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, TokenizerError> {
        self.decode_into(ids, None)
    }

    /// Text of `ids`; an error for an id outside the vocabulary. Invalid UTF-8 (a character
    /// split across a cut) becomes U+FFFD.
    pub fn try_decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.decode_bytes(ids)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Text of `ids`; ids outside the vocabulary and invalid UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes = self
            .decode_into(ids, Some("\u{FFFD}".as_bytes()))
            .expect("a replacement is given, so decoding cannot fail");
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// Number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        self.texts.len()
    }

    /// Beginning-of-sequence token.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    /// End-of-sequence token.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    /// Unknown token.
    pub fn unk(&self) -> Option<u32> {
        self.unk
    }

    /// Padding token.
    pub fn pad(&self) -> Option<u32> {
        self.pad
    }

    /// Whether `encode(.., add_special = true, ..)` puts BOS first.
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    /// Whether `encode(.., add_special = true, ..)` puts EOS last.
    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    /// The algorithm of this vocabulary.
    pub fn model(&self) -> ModelKind {
        match self.engine {
            Engine::Bpe { .. } => ModelKind::Bpe,
            Engine::Spm(_) => ModelKind::Spm,
        }
    }

    /// The pre-tokenizer (BPE only).
    pub fn pre_tokenizer(&self) -> Option<PreTokenizer> {
        match self.engine {
            Engine::Bpe { pre, .. } => Some(pre),
            Engine::Spm(_) => None,
        }
    }

    /// The stored text of token `id`.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.texts.get(id as usize).map(|t| &**t)
    }

    /// The type of token `id`.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.types.get(id as usize).copied()
    }

    /// The token whose stored text is `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.text_to_id.get(text.as_bytes()).copied()
    }
}

enum Fragment {
    Text(std::ops::Range<usize>),
    Token(u32),
}

/// `<0xNN>` → NN.
fn parse_byte_token(text: &str) -> Option<u8> {
    let hex = text.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}

fn build_bpe(
    merges: &[String],
    text_to_id: &HashMap<Box<[u8]>, u32>,
    ignore_merges: bool,
) -> Result<Bpe, TokenizerError> {
    let mut map = PairMap::default();
    map.reserve(merges.len());
    let mut joined = Vec::new();
    for (index, merge) in merges.iter().enumerate() {
        // llama.cpp splits at the first space after the first byte.
        let split = merge
            .as_bytes()
            .iter()
            .skip(1)
            .position(|&b| b == b' ')
            .map(|p| p + 1);
        let Some(at) = split else {
            return Err(TokenizerError::MalformedMerge {
                index,
                merge: merge.clone(),
            });
        };
        let (left, right) = (&merge[..at], &merge[at + 1..]);
        let id_of = |part: &str| {
            text_to_id.get(part.as_bytes()).copied().ok_or_else(|| {
                TokenizerError::MergeUnknownToken {
                    index,
                    merge: merge.clone(),
                    part: part.to_string(),
                }
            })
        };
        let (l, r) = (id_of(left)?, id_of(right)?);
        joined.clear();
        joined.extend_from_slice(left.as_bytes());
        joined.extend_from_slice(right.as_bytes());
        let merged = text_to_id.get(joined.as_slice()).copied().unwrap_or(NONE);
        // The first rule for a pair wins (llama.cpp's `bpe_ranks.emplace`).
        map.entry(pair_key(l, r)).or_insert(Merge {
            rank: index as u32,
            merged,
        });
    }
    let mut byte_token = [NONE; 256];
    let mut buf = Vec::new();
    for (b, slot) in byte_token.iter_mut().enumerate() {
        buf.clear();
        unicode::byte_encode(&[b as u8], &mut buf);
        *slot = text_to_id.get(buf.as_slice()).copied().unwrap_or(NONE);
    }
    Ok(Bpe {
        merges: map,
        byte_token,
        ignore_merges,
    })
}

fn build_spm(text_to_id: &HashMap<Box<[u8]>, u32>, unk: Option<u32>) -> Spm {
    let mut byte_token = [NONE; 256];
    for (b, slot) in byte_token.iter_mut().enumerate() {
        let hex = format!("<0x{b:02X}>");
        *slot = text_to_id
            .get(hex.as_bytes())
            .or_else(|| text_to_id.get([b as u8].as_slice()))
            .copied()
            .or(unk)
            .unwrap_or(NONE);
    }
    Spm { byte_token }
}
