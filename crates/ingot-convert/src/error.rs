//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong converting a Hugging Face directory to GGUF or back.
///
/// Variants carry the file, field, tensor and numbers that explain them, so callers (and tests)
/// match on the variant rather than on message text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// Reading, writing, creating or renaming a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A file the model directory must contain is absent.
    #[error("{path}: required file is missing")]
    MissingFile {
        /// The missing file.
        path: PathBuf,
    },
    /// A JSON file (config.json, tokenizer.json, an index, ...) is not valid JSON.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error (with line and column).
        source: serde_json::Error,
    },
    /// A field is missing from a JSON file or has the wrong type or an impossible value.
    #[error("{file}: field `{field}`: {problem}")]
    BadField {
        /// The file name (config.json, tokenizer.json, ...).
        file: String,
        /// The field's JSON path.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// config.json names an architecture this converter does not handle.
    #[error("unsupported architecture `{found}` (supported: {})", supported.join(", "))]
    UnsupportedArchitecture {
        /// The `architectures[0]` value found.
        found: String,
        /// The architectures this converter supports.
        supported: Vec<&'static str>,
    },
    /// A safetensors file is truncated or malformed (the `safetensors` crate's check failed).
    #[error("{path}: invalid safetensors file: {source}")]
    Safetensors {
        /// The shard.
        path: PathBuf,
        /// The safetensors crate's error.
        source: safetensors::SafeTensorError,
    },
    /// A safetensors file given as a model is not the weights of the model in its directory.
    #[error("{}: not the weights of the model in {} (expected model.safetensors or a shard listed in model.safetensors.index.json)", file.display(), dir.display())]
    NotModelFile {
        /// The file given.
        file: PathBuf,
        /// Its directory.
        dir: PathBuf,
    },
    /// A shard listed in `model.safetensors.index.json` is absent.
    #[error("{path}: shard listed in the index is missing")]
    MissingShard {
        /// The missing shard.
        path: PathBuf,
    },
    /// The index says a tensor is in a shard that does not hold it.
    #[error("tensor `{tensor}`: index places it in {shard}, which does not contain it")]
    IndexMismatch {
        /// The tensor.
        tensor: String,
        /// The shard the index names.
        shard: String,
    },
    /// The same tensor name appears in two shards.
    #[error("tensor `{tensor}` appears in both {first} and {second}")]
    DuplicateTensor {
        /// The tensor.
        tensor: String,
        /// The first shard holding it.
        first: String,
        /// The second shard holding it.
        second: String,
    },
    /// A tensor the architecture needs is absent from every shard.
    #[error("tensor `{tensor}` is missing")]
    MissingTensor {
        /// The Hugging Face tensor name.
        tensor: String,
    },
    /// A tensor that the architecture's name map does not know.
    #[error("tensor `{tensor}` cannot be mapped to a GGUF name")]
    UnexpectedTensor {
        /// The Hugging Face tensor name.
        tensor: String,
    },
    /// A tensor's shape differs from what config.json implies.
    #[error("tensor `{tensor}`: shape {found:?} but config.json implies {expected:?}")]
    ShapeMismatch {
        /// The tensor (Hugging Face name, or GGUF name when exporting).
        tensor: String,
        /// The shape implied by the configuration (row-major, outermost first).
        expected: Vec<u64>,
        /// The shape found in the file.
        found: Vec<u64>,
    },
    /// A tensor's element type is not one the converter handles.
    #[error("tensor `{tensor}`: unsupported element type {dtype}")]
    UnsupportedDtype {
        /// The tensor.
        tensor: String,
        /// The element type's name.
        dtype: String,
    },
    /// tokenizer.json describes a tokenizer this converter cannot express in GGUF.
    #[error("tokenizer: {reason}")]
    UnsupportedTokenizer {
        /// What is not supported.
        reason: String,
    },
    /// The byte-level BPE pre-tokenizer is not one llama.cpp knows.
    #[error("tokenizer: pre-tokenizer not recognised: {pre_tokenizer}")]
    UnknownPreTokenizer {
        /// The `pre_tokenizer` JSON found.
        pre_tokenizer: String,
    },
    /// A token id is at or beyond the vocabulary size.
    #[error("tokenizer: token `{token}` has id {id}, but the vocabulary has {n_vocab} entries")]
    TokenIdOutOfRange {
        /// The token text.
        token: String,
        /// Its id.
        id: u64,
        /// The vocabulary size (config.json `vocab_size`).
        n_vocab: u64,
    },
    /// Two tokens share one id, or one id has no token and cannot be padded.
    #[error("tokenizer: id {id} is given to both `{first}` and `{second}`")]
    DuplicateTokenId {
        /// The id.
        id: u64,
        /// The first token.
        first: String,
        /// The second token.
        second: String,
    },
    /// The requested output type cannot be produced.
    #[error("output type {outtype} is not available: {reason}")]
    UnsupportedOutType {
        /// The output type asked for.
        outtype: String,
        /// Why.
        reason: String,
    },
    /// Reading or writing a GGUF file failed (ingot-format's error).
    #[error("{path}: {source}")]
    Gguf {
        /// The GGUF file.
        path: PathBuf,
        /// The format crate's error.
        source: ingot_format::FormatError,
    },
    /// A GGUF file cannot be exported to Hugging Face form.
    #[error("cannot export: {reason}")]
    UnsupportedExport {
        /// Why.
        reason: String,
    },
    /// A number does not fit the type that must hold it (a size overflow).
    #[error("{what}: value {value} out of range")]
    OutOfRange {
        /// What the number is.
        what: String,
        /// The value.
        value: u64,
    },
}

/// The crate's result type.
pub type Result<T, E = ConvertError> = std::result::Result<T, E>;

impl ConvertError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ConvertError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn field(file: &str, field: &str, problem: impl Into<String>) -> Self {
        ConvertError::BadField {
            file: file.to_string(),
            field: field.to_string(),
            problem: problem.into(),
        }
    }
}
