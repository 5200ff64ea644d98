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
}
