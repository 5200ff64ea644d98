//! The crate's one error type.

use ingot_format::GgmlType;
use thiserror::Error;

/// Everything the crate-level entry points ([`crate::quantize_row`], [`crate::dequantize_row`],
/// [`crate::quantize_tensor`]) can reject. The per-type row functions take already-validated
/// sizes and panic on a caller bug instead; these errors are for sizes and values that come
/// from files or users.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum QuantError {
    /// The operation is not implemented for this tensor type.
    #[error("{op} is not supported for type {}", ty.name())]
    Unsupported {
        /// The type asked for.
        ty: GgmlType,
        /// "quantize" or "dequantize".
        op: &'static str,
    },
    /// A row's element count is not a whole number of blocks.
    #[error("{len} elements are not a multiple of {}'s block size {block_size}", ty.name())]
    PartialBlock {
        /// The type.
        ty: GgmlType,
        /// Elements given.
        len: usize,
        /// Elements per block of `ty`.
        block_size: usize,
    },
    /// The quantized buffer does not match the element count.
    #[error("{} data for {elements} elements needs {expected} bytes, got {actual}", ty.name())]
    ByteLength {
        /// The type.
        ty: GgmlType,
        /// Elements on the f32 side.
        elements: usize,
        /// Bytes required.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// Importance weights do not cover the row.
    #[error("{actual} importance weights for rows of {expected} elements")]
    WeightsLength {
        /// Elements per row.
        expected: usize,
        /// Weights given.
        actual: usize,
    },
    /// An importance weight is negative, NaN or infinite.
    #[error("importance weight {index} is {value} (must be finite and ≥ 0)")]
    InvalidWeight {
        /// Column of the bad weight.
        index: usize,
        /// Its value.
        value: f32,
    },
    /// The input row holds NaN or an infinity (row-level entry point).
    #[error("input element {index} is {value}")]
    NonFiniteValue {
        /// Index in the row.
        index: usize,
        /// The value.
        value: f32,
    },
    /// A tensor holds NaN or an infinity: nothing of it was written.
    #[error("tensor {tensor:?}: row {row}, column {column} is {value}")]
    NonFiniteTensor {
        /// Tensor name.
        tensor: String,
        /// Row index.
        row: usize,
        /// Column index within the row.
        column: usize,
        /// The value.
        value: f32,
    },
    /// The tensor's data is not a whole number of rows.
    #[error("tensor {tensor:?}: {len} elements are not whole rows of {n_per_row}")]
    TensorShape {
        /// Tensor name.
        tensor: String,
        /// Elements given.
        len: usize,
        /// Elements per row.
        n_per_row: usize,
    },
}
