//! The crate's one error type.

use crate::kernels::Level;

/// Everything that can go wrong in ingot-infer. Variants carry the numbers and names that
/// explain them, so callers (and tests) can match on them instead of on message text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferError {
    /// `INGOT_KERNEL` holds something other than `scalar`, `avx2` or `avx512`.
    #[error("INGOT_KERNEL={value:?} is not a kernel level (expected scalar, avx2 or avx512)")]
    UnknownKernelLevel {
        /// The value found in the environment.
        value: String,
    },
    /// A kernel level was requested (by `INGOT_KERNEL` or by name) that this CPU cannot run.
    /// Never silently replaced by a lower level: a benchmark or test that asked for AVX-512
    /// must not measure the scalar code.
    #[error("kernel level {level} was requested but this CPU lacks {missing}")]
    KernelUnavailable {
        /// The level asked for.
        level: Level,
        /// The first missing CPU feature (or the architecture) that rules it out.
        missing: &'static str,
    },
    /// The weight type has no dot-product kernel.
    #[error("no matmul kernel for weight type {ty}")]
    UnsupportedType {
        /// ggml's name of the type.
        ty: &'static str,
    },
    /// A row length that is not a whole number of blocks.
    #[error(
        "weight type {ty}: {cols} elements per row is not a multiple of the block size {block}"
    )]
    RowNotBlockMultiple {
        /// ggml's name of the type.
        ty: &'static str,
        /// Elements per row.
        cols: usize,
        /// Elements per block.
        block: usize,
    },
    /// The weight bytes do not match rows × row bytes.
    #[error("{ty} weight matrix {rows}×{cols} needs {expected} bytes, got {actual}")]
    WeightSize {
        /// ggml's name of the type.
        ty: &'static str,
        /// Rows (GGUF ne\[1\]).
        rows: usize,
        /// Elements per row (GGUF ne\[0\]).
        cols: usize,
        /// rows × row bytes (saturating at `usize::MAX` on overflow).
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// Weight bytes not aligned for their block type (blocks hold f16/f32 fields; GGUF data
    /// is 32-byte aligned, so this means a slice was cut at an odd offset).
    #[error("{ty} weight data at address offset {addr_mod} is not aligned to {align} bytes")]
    Misaligned {
        /// ggml's name of the type.
        ty: &'static str,
        /// Required alignment.
        align: usize,
        /// Address modulo the alignment.
        addr_mod: usize,
    },
    /// A matmul operand has the wrong length.
    #[error("matmul {operand}: expected {expected} values, got {actual}")]
    ShapeMismatch {
        /// `"x"` (activations) or `"y"` (output).
        operand: &'static str,
        /// n × cols for x, n × rows for y.
        expected: usize,
        /// Length given.
        actual: usize,
    },
    /// `general.architecture` names a model family the forward pass does not implement.
    #[error("unsupported architecture {arch:?} (supported: llama, mistral, qwen2)")]
    UnsupportedArchitecture {
        /// The value of `general.architecture`.
        arch: String,
    },
    /// A tensor the architecture needs is absent from the file.
    #[error("missing tensor {name}")]
    MissingTensor {
        /// GGUF tensor name.
        name: String,
    },
    /// A tensor has a shape other than the configuration implies.
    #[error("tensor {name} has shape {found:?}, expected {expected:?} (ggml order)")]
    TensorShape {
        /// GGUF tensor name.
        name: String,
        /// Shape implied by the metadata.
        expected: Vec<u64>,
        /// Shape in the file.
        found: Vec<u64>,
    },
    /// A metadata value is present but unusable.
    #[error("metadata {key}: {reason}")]
    InvalidConfig {
        /// The GGUF key (or tensor) concerned.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Reading metadata failed (missing key, wrong type, out of range: the error names the key).
    #[error(transparent)]
    Format(#[from] ingot_format::FormatError),
    /// A tensor could not be dequantized (embedding rows, non-F32 norm vectors).
    #[error("dequantizing {name}: {source}")]
    Dequantize {
        /// GGUF tensor name.
        name: String,
        /// The quantization error.
        source: ingot_quant::QuantError,
    },
    /// A caller-supplied argument is out of range.
    #[error("invalid {name}: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The KV cache cannot hold the batch.
    #[error("context full: {needed} positions needed, the cache holds {capacity}")]
    ContextFull {
        /// Positions the batch would occupy.
        needed: usize,
        /// Cache capacity.
        capacity: usize,
    },
    /// A token id outside the vocabulary.
    #[error("token id {token} is outside the vocabulary of {n_vocab}")]
    TokenOutOfRange {
        /// The id.
        token: u32,
        /// Vocabulary size.
        n_vocab: usize,
    },
    /// Too few tokens for the requested evaluation.
    #[error("the text has {have} tokens; at least {need} are needed")]
    NotEnoughTokens {
        /// Tokens available.
        have: usize,
        /// Tokens needed.
        need: usize,
    },
    /// Reading or writing an output/base file failed.
    #[error("{what}: {source}")]
    Io {
        /// The operation.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A KL-divergence base file does not describe this run.
    #[error("KL base file: {field} is {found}, expected {expected}")]
    KlBaseMismatch {
        /// The header field.
        field: &'static str,
        /// Value this run needs.
        expected: u64,
        /// Value in the file.
        found: u64,
    },
    /// A KL-divergence base file was made from different tokens.
    #[error("KL base file: token {index} is {expected} in the base, {found} here")]
    KlBaseTokenMismatch {
        /// Position in the token stream.
        index: usize,
        /// Token in the base file.
        expected: u32,
        /// Token in this run.
        found: u32,
    },
    /// Building the importance matrix failed (an entry ingot_quant's [`Imatrix`] refuses).
    ///
    /// [`Imatrix`]: ingot_quant::imatrix::Imatrix
    #[error(transparent)]
    Imatrix(#[from] ingot_quant::QuantError),
}
