//! The crate's one error type.

/// Everything that can go wrong while building a [`crate::Tokenizer`] from metadata, or while
/// decoding ids that are not in the vocabulary.
///
/// Encoding itself cannot fail: every inconsistency in the vocabulary is rejected when the
/// tokenizer is built, so `encode` has nothing left to report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenizerError {
    /// A `tokenizer.ggml.*` key is missing or has the wrong type.
    #[error("tokenizer metadata {key}: {source}")]
    Metadata {
        /// The key.
        key: String,
        /// What the GGUF reader found.
        source: ingot_format::FormatError,
    },
    /// `tokenizer.ggml.model` names a tokenizer we do not implement.
    #[error("unknown tokenizer model {model:?} (supported: \"gpt2\", \"llama\")")]
    UnknownModel {
        /// The value of `tokenizer.ggml.model`.
        model: String,
    },
    /// `tokenizer.ggml.pre` names a pre-tokenizer we do not implement.
    #[error("unknown pre-tokenizer type {pre:?} in tokenizer.ggml.pre")]
    UnknownPreTokenizer {
        /// The value of `tokenizer.ggml.pre`.
        pre: String,
    },
    /// The vocabulary has no tokens.
    #[error("tokenizer.ggml.tokens is empty")]
    EmptyVocab,
    /// More tokens than a llama.cpp token id (i32) can address.
    #[error(
        "tokenizer.ggml.tokens has {n_tokens} tokens, more than the {max} a token id can address"
    )]
    TooManyTokens {
        /// Number of tokens in the vocabulary.
        n_tokens: usize,
        /// The largest supported vocabulary.
        max: usize,
    },
    /// A per-token array (`token_type`, `scores`) does not have one entry per token.
    #[error("{key} has {actual} entries but tokenizer.ggml.tokens has {expected}")]
    LengthMismatch {
        /// The metadata key of the array.
        key: &'static str,
        /// Number of tokens.
        expected: usize,
        /// Number of entries in the array.
        actual: usize,
    },
    /// A `tokenizer.ggml.token_type` value outside GGUF's token types 0..=6.
    #[error("tokenizer.ggml.token_type[{id}] = {value} is not a known token type (0..=6)")]
    InvalidTokenType {
        /// The token whose type is invalid.
        id: u32,
        /// The stored value.
        value: i32,
    },
    /// Two tokens have the same text (llama.cpp refuses such vocabularies as well).
    #[error("duplicate token {text:?} at ids {first} and {second}")]
    DuplicateToken {
        /// The repeated text.
        text: String,
        /// The first id holding it.
        first: u32,
        /// The second id holding it.
        second: u32,
    },
    /// A `gpt2` vocabulary without `tokenizer.ggml.merges`.
    #[error("a gpt2 (BPE) tokenizer needs tokenizer.ggml.merges, which is missing")]
    MissingMerges,
    /// A merge rule without the space that separates its two parts.
    #[error("tokenizer.ggml.merges[{index}] = {merge:?} has no space separating two parts")]
    MalformedMerge {
        /// Index of the merge rule (its rank).
        index: usize,
        /// The rule's text.
        merge: String,
    },
    /// A merge rule whose part is not a token of the vocabulary.
    #[error("tokenizer.ggml.merges[{index}] = {merge:?} refers to {part:?}, which is not a token")]
    MergeUnknownToken {
        /// Index of the merge rule (its rank).
        index: usize,
        /// The rule's text.
        merge: String,
        /// The part that is not in the vocabulary.
        part: String,
    },
    /// A special-token id from the metadata is outside the vocabulary.
    #[error("{key} = {id} is outside the vocabulary of {n_vocab} tokens")]
    SpecialTokenOutOfRange {
        /// The metadata key (e.g. `tokenizer.ggml.bos_token_id`).
        key: &'static str,
        /// The stored id.
        id: u32,
        /// Vocabulary size.
        n_vocab: usize,
    },
    /// The metadata asks for a special token to be added but does not say which one.
    #[error("{flag} is true, but {key} is not set")]
    MissingSpecialToken {
        /// The flag (e.g. `tokenizer.ggml.add_bos_token`).
        flag: &'static str,
        /// The id key that is missing.
        key: &'static str,
    },
    /// A token id passed to [`crate::Tokenizer::try_decode`] is outside the vocabulary.
    #[error("token id {id} is outside the vocabulary of {n_vocab} tokens")]
    InvalidTokenId {
        /// The offending id.
        id: u32,
        /// Vocabulary size.
        n_vocab: usize,
    },
}
