//! The crate's one error type, for every layer of it: row-level quantizers, plans, importance
//! matrices and the quantize pipeline.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use ingot_format::{FormatError, GgmlType};
use thiserror::Error;

/// Everything the crate can reject: the row-level entry points ([`crate::quantize_row`],
/// [`crate::dequantize_row`], [`crate::quantize_tensor`]), plans ([`crate::plan`]), importance
/// matrices ([`crate::imatrix`]) and the quantize pipeline ([`crate::pipeline`]). The per-type
/// row functions take already-validated sizes and panic on a caller bug instead; these errors
/// are for sizes and values that come from files or users.
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

    // ---- plans (`crate::plan`) ----
    /// The requested file type is not one ingot produces.
    #[error("unknown quantization type {name:?}; valid types: {valid}")]
    UnknownFileType {
        /// What was asked for.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// A ggml tensor type name (for `--tensor-type` and friends) is unknown.
    #[error("unknown tensor type {name:?}; valid types: {valid}")]
    UnknownTensorType {
        /// What was asked for.
        name: String,
        /// The valid names, comma-separated.
        valid: String,
    },
    /// A `--tensor-type` argument is not `PATTERN=TYPE` or its pattern is not a valid regex.
    #[error("bad tensor type override {arg:?}: {problem}")]
    BadTensorTypeOverride {
        /// The argument.
        arg: String,
        /// What is wrong.
        problem: String,
    },
    /// A layer to prune is outside the model.
    #[error("cannot prune layer {layer}: the model has {block_count} layers (0..{block_count})")]
    PruneOutOfRange {
        /// The layer asked for.
        layer: u32,
        /// Layers in the model.
        block_count: u32,
    },
    /// A layer appears twice in the prune list.
    #[error("layer {layer} is listed twice in the prune list")]
    PruneDuplicate {
        /// The repeated layer.
        layer: u32,
    },
    /// The prune list removes every layer.
    #[error("pruning all {block_count} layers would leave no model")]
    PruneAll {
        /// Layers in the model.
        block_count: u32,
    },
    /// Pruning was asked for but the model does not say how many blocks it has.
    #[error("cannot prune layers: the model has no {key} metadata")]
    NoBlockCount {
        /// The missing key.
        key: String,
    },
    /// A tensor name's block index is outside the model (MoE models, where the layer is parsed
    /// from the name).
    #[error("tensor {name}: cannot determine its layer in a model of {block_count} layers")]
    BadLayer {
        /// The tensor.
        name: String,
        /// Layers in the model.
        block_count: u32,
    },
    /// A tensor is already quantized and `--allow-requantize` was not given.
    #[error("tensor {name} is already quantized ({ty}); requantizing needs --allow-requantize")]
    RequantizeNotAllowed {
        /// The tensor.
        name: String,
        /// Its type name.
        ty: &'static str,
    },
    /// A tensor's size overflows.
    #[error("tensor {name}: shape {shape:?} with type {ty} overflows or is not a whole number of blocks")]
    BadShape {
        /// The tensor.
        name: String,
        /// Its shape.
        shape: Vec<u64>,
        /// The type whose size was being computed.
        ty: &'static str,
    },

    // ---- importance matrices (`crate::imatrix`) ----
    /// The legacy file ended before a field could be read.
    #[error("legacy imatrix truncated: {field} at offset {offset} needs {needed} bytes, {available} left")]
    ImatrixTruncated {
        /// Which field was being read.
        field: &'static str,
        /// Byte offset of the field.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes left in the file.
        available: usize,
    },
    /// A count or length field of a legacy imatrix holds an impossible value.
    #[error("legacy imatrix: {field} = {value} at offset {offset} is invalid")]
    ImatrixBadField {
        /// Which field.
        field: &'static str,
        /// The value read.
        value: i64,
        /// Byte offset of the field.
        offset: usize,
    },
    /// An imatrix entry name is not UTF-8.
    #[error("imatrix entry name at offset {offset} is not UTF-8")]
    ImatrixNameNotUtf8 {
        /// Byte offset of the name.
        offset: usize,
    },
    /// Two imatrix entries share a name.
    #[error("imatrix has two entries named {name}")]
    ImatrixDuplicateEntry {
        /// The repeated name.
        name: String,
    },
    /// Bytes follow the last field of a legacy imatrix.
    #[error("legacy imatrix has {extra} unexpected bytes after offset {offset}")]
    ImatrixTrailingBytes {
        /// Where the unexpected bytes start.
        offset: usize,
        /// How many there are.
        extra: usize,
    },
    /// The imatrix holds no entries.
    #[error("imatrix holds no entries")]
    ImatrixEmpty,
    /// A GGUF file is not an imatrix (`general.type` missing or different).
    #[error("GGUF file is not an imatrix: general.type is {found:?}")]
    NotImatrix {
        /// The `general.type` found, if any.
        found: Option<String>,
    },
    /// A GGUF imatrix entry lacks its sums or counts tensor, or they disagree.
    #[error("imatrix entry {name}: {problem}")]
    ImatrixBadEntry {
        /// The entry (weight) name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// A GGUF imatrix tensor is not F32.
    #[error("imatrix tensor {name} has type {ty}, expected f32")]
    ImatrixNotF32 {
        /// The tensor.
        name: String,
        /// Its type name.
        ty: &'static str,
    },
    /// An imatrix entry's per-column mean is NaN, infinite or negative.
    #[error(
        "imatrix entry {name}: value {value} at column {index} is not a finite non-negative number"
    )]
    ImatrixNonFinite {
        /// The entry (weight) name.
        name: String,
        /// Column index within the entry.
        index: usize,
        /// The offending value.
        value: f32,
    },
    /// An imatrix entry's length does not match the tensor it is applied to.
    #[error("imatrix entry {name} has {entry_len} values but the tensor needs {expected} (row length × experts)")]
    ImatrixLengthMismatch {
        /// The entry (weight) name.
        name: String,
        /// Values in the entry.
        entry_len: usize,
        /// Values the tensor needs.
        expected: usize,
    },

    // ---- the quantize pipeline (`crate::pipeline`) ----
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: Shared<std::io::Error>,
    },
    /// Parsing the input or an imatrix GGUF, or writing the output container, failed.
    #[error(transparent)]
    Format(Shared<FormatError>),
    /// A row-level quantizer or dequantizer rejected a tensor's data.
    #[error("tensor {tensor}: {source}")]
    InTensor {
        /// The tensor.
        tensor: String,
        /// The row-level error.
        #[source]
        source: Box<QuantError>,
    },
    /// A quantized tensor has no importance-matrix entry and one is required.
    #[error("no importance matrix entry for tensor {tensor} (--require-imatrix)")]
    MissingImatrix {
        /// The tensor (input name).
        tensor: String,
    },
    /// No entry of the importance matrix names a tensor of this model.
    #[error("none of the {entries} importance matrix entries names a tensor of this model: the imatrix is for another model")]
    ImatrixForAnotherModel {
        /// Entries in the imatrix.
        entries: usize,
    },
    /// A tensor of the input holds NaN or infinity.
    #[error("tensor {tensor}: row {row} holds a non-finite value ({value})")]
    NonFiniteInput {
        /// The tensor.
        tensor: String,
        /// The row.
        row: u64,
        /// The value.
        value: f32,
    },
    /// The source type cannot be decoded to f32.
    #[error("tensor {tensor}: cannot convert from type {ty}")]
    UnsupportedSource {
        /// The tensor.
        tensor: String,
        /// Its type name.
        ty: &'static str,
    },
    /// The target type cannot be encoded.
    #[error("tensor {tensor}: cannot write type {ty}")]
    UnsupportedTarget {
        /// The tensor.
        tensor: String,
        /// The type name.
        ty: &'static str,
    },
    /// A `--override-kv` argument is malformed.
    #[error("bad --override-kv {arg:?}: {problem}")]
    BadKvOverride {
        /// The argument.
        arg: String,
        /// What is wrong.
        problem: String,
    },
    /// The output would overwrite the input.
    #[error("output {} is the input file", path.display())]
    OutputIsInput {
        /// The path.
        path: PathBuf,
    },
    /// The output's directory does not exist.
    #[error("output directory {} does not exist", dir.display())]
    OutputDirMissing {
        /// The directory.
        dir: PathBuf,
    },
}

impl QuantError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> QuantError {
        QuantError::Io {
            path: path.into(),
            source: Shared::new(source),
        }
    }

    /// Attaches the tensor name to a row-level error.
    pub(crate) fn in_tensor(tensor: &str, source: QuantError) -> QuantError {
        QuantError::InTensor {
            tensor: tensor.to_owned(),
            source: Box::new(source),
        }
    }
}

impl From<FormatError> for QuantError {
    fn from(e: FormatError) -> QuantError {
        QuantError::Format(Shared::new(e))
    }
}

/// An error from a lower layer (the operating system, the container) held behind an [`Arc`],
/// so that [`QuantError`] stays `Clone` and `PartialEq` like the row-level errors it grew from
/// (their tests compare whole errors with `assert_eq!`). Two are equal when they are the same
/// error or render the same message; match on [`Shared::get`] to inspect the inner error.
#[derive(Debug)]
pub struct Shared<E>(Arc<E>);

impl<E> Clone for Shared<E> {
    fn clone(&self) -> Shared<E> {
        Shared(Arc::clone(&self.0))
    }
}

impl<E> Shared<E> {
    /// Wraps `e`.
    pub fn new(e: E) -> Shared<E> {
        Shared(Arc::new(e))
    }

    /// The inner error.
    pub fn get(&self) -> &E {
        &self.0
    }
}

impl<E: fmt::Display> fmt::Display for Shared<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<E: std::error::Error> std::error::Error for Shared<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl<E: fmt::Display> PartialEq for Shared<E> {
    fn eq(&self, other: &Shared<E>) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}
