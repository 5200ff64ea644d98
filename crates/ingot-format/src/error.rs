//! The crate's one error type. Every variant carries what a reader of the message needs to find
//! the problem: the field or key, the byte offset in the file, the tensor name and the numbers.

use std::path::PathBuf;

/// Where a declaration problem was found: at a byte offset of a file being read, or in a
/// tensor declared to [`crate::GgufWriter`] (which has no file offset yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// Byte offset in the file being parsed.
    Offset(u64),
    /// A tensor declared to the writer.
    Declaration,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Offset(o) => write!(f, "at byte offset {o}"),
            At::Declaration => f.write_str("in a writer declaration"),
        }
    }
}

/// Everything that can go wrong reading, validating, writing or verifying a GGUF file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// An I/O operation on `path` failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("opening", "writing", ...).
        op: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The first four bytes are not `GGUF`.
    #[error(
        "not a GGUF file: first bytes are {:?} ({found:02x?}), expected \"GGUF\"",
        String::from_utf8_lossy(found)
    )]
    BadMagic {
        /// The bytes found at offset 0.
        found: [u8; 4],
    },
    /// The file was written big-endian (llama.cpp's rule: `version & 0xFFFF == 0` when read
    /// little-endian). ingot reads only little-endian files.
    #[error("big-endian GGUF file (version field reads {raw_version:#010x} little-endian); only little-endian files are supported")]
    BigEndian {
        /// The version field read little-endian.
        raw_version: u32,
    },
    /// GGUF version other than 2 or 3.
    #[error("unsupported GGUF version {version} (supported: 2, 3)")]
    UnsupportedVersion {
        /// The version in the header.
        version: u32,
    },
    /// The file ends inside a fixed-size field.
    #[error("file truncated reading {field} at byte offset {offset}: need {needed} bytes, {available} left")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Where it starts.
        offset: u64,
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// A string's length runs past the end of the file.
    #[error("{field}: string length {len} at byte offset {offset} runs past the end of the file ({remaining} bytes left)")]
    StringPastEnd {
        /// What the string is (a key, a value of a key, a tensor name).
        field: String,
        /// Offset of the length prefix.
        offset: u64,
        /// The length read.
        len: u64,
        /// Bytes left after the length prefix.
        remaining: u64,
    },
    /// An array's element count cannot fit in the rest of the file.
    #[error("{key}: array of {count} elements at byte offset {offset} needs at least {min_bytes} bytes, {remaining} left")]
    ArrayPastEnd {
        /// The key whose value is the array.
        key: String,
        /// Offset of the count.
        offset: u64,
        /// The count read.
        count: u64,
        /// Smallest possible byte size of that many elements (saturating).
        min_bytes: u64,
        /// Bytes left after the count.
        remaining: u64,
    },
    /// The key/value or tensor count in the header cannot fit in the rest of the file.
    #[error("{field} = {count} at byte offset {offset} cannot fit: each needs at least {min_each} bytes, {remaining} left")]
    CountPastEnd {
        /// `"n_kv"` or `"n_tensors"`.
        field: &'static str,
        /// Offset of the count.
        offset: u64,
        /// The count read.
        count: u64,
        /// Smallest possible size of one entry.
        min_each: u64,
        /// Bytes left after the header.
        remaining: u64,
    },
    /// A metadata value type id outside 0..=12.
    #[error("{key}: unknown value type {type_id} at byte offset {offset}")]
    UnknownValueType {
        /// The key being read.
        key: String,
        /// Offset of the type id.
        offset: u64,
        /// The id read.
        type_id: u32,
    },
    /// A tensor type id that ggml never assigned.
    #[error("tensor {tensor:?}: unknown ggml type id {type_id} at byte offset {offset}")]
    UnknownTensorType {
        /// The tensor.
        tensor: String,
        /// Offset of the type id.
        offset: u64,
        /// The id read.
        type_id: u32,
    },
    /// A tensor type id ggml has removed (4, 5, 31–33, 36–38).
    #[error("tensor {tensor:?}: ggml type id {type_id} ({name}) at byte offset {offset} was retired from ggml and is not supported")]
    RetiredTensorType {
        /// The tensor.
        tensor: String,
        /// Offset of the type id.
        offset: u64,
        /// The id read.
        type_id: u32,
        /// The retired type's old name.
        name: &'static str,
    },
    /// A tensor with 0 or more than 4 dimensions.
    #[error("tensor {tensor:?}: {n_dims} dimensions {at} (must be 1 to 4)")]
    BadDimCount {
        /// The tensor.
        tensor: String,
        /// Where.
        at: At,
        /// The dimension count.
        n_dims: u64,
    },
    /// A dimension of size 0.
    #[error("tensor {tensor:?}: dimension {axis} is 0 {at}")]
    ZeroDim {
        /// The tensor.
        tensor: String,
        /// Where.
        at: At,
        /// Which dimension (0 = ne[0]).
        axis: usize,
    },
    /// A dimension above `i64::MAX`, or a product of dimensions (element or byte count) that
    /// overflows `i64` (ggml stores both as `int64_t`).
    #[error("tensor {tensor:?}: dimensions {dims:?} overflow {at}")]
    DimOverflow {
        /// The tensor.
        tensor: String,
        /// Where.
        at: At,
        /// The dimensions read.
        dims: Vec<u64>,
    },
    /// `ne[0]` is not a multiple of the type's block size.
    #[error(
        "tensor {tensor:?}: ne[0] = {ne0} is not a multiple of {ty}'s block size {block_size} {at}"
    )]
    NotBlockMultiple {
        /// The tensor.
        tensor: String,
        /// Where.
        at: At,
        /// Its type.
        ty: crate::GgmlType,
        /// Elements per row.
        ne0: u64,
        /// Elements per block of `ty`.
        block_size: usize,
    },
    /// A tensor name longer than [`crate::MAX_TENSOR_NAME`] bytes.
    #[error("tensor name of {len} bytes {at} is longer than {max} bytes")]
    TensorNameTooLong {
        /// Where.
        at: At,
        /// The name's length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// `general.alignment` is zero or not a power of two.
    #[error("general.alignment = {alignment} {at} is not a non-zero power of two")]
    BadAlignment {
        /// Where.
        at: At,
        /// The value.
        alignment: u64,
    },
    /// A tensor's data offset is not a multiple of the alignment.
    #[error("tensor {tensor:?}: data offset {offset} (tensor info at byte {info_offset}) is not a multiple of the alignment {alignment}")]
    UnalignedTensor {
        /// The tensor.
        tensor: String,
        /// Offset of its tensor info.
        info_offset: u64,
        /// Its data offset, relative to the data section.
        offset: u64,
        /// The file's alignment.
        alignment: u64,
    },
    /// A tensor's bytes lie (partly) outside the data section.
    #[error("tensor {tensor:?}: bytes {offset}..{offset}+{size} (relative to the data section at {data_start}) exceed the data section of {data_len} bytes")]
    TensorOutOfBounds {
        /// The tensor.
        tensor: String,
        /// Its data offset, relative to the data section.
        offset: u64,
        /// Its byte size.
        size: u64,
        /// Absolute file offset of the data section.
        data_start: u64,
        /// Length of the data section.
        data_len: u64,
    },
    /// Two tensors' byte ranges overlap.
    #[error("tensors {first:?} (bytes {first_start}..{first_end}) and {second:?} (from byte {second_start}) overlap")]
    TensorOverlap {
        /// The tensor starting first.
        first: String,
        /// Its start (relative to the data section).
        first_start: u64,
        /// Its end.
        first_end: u64,
        /// The tensor starting inside it.
        second: String,
        /// Its start.
        second_start: u64,
    },
    /// A metadata key appears twice.
    #[error("duplicate metadata key {key:?} {at}")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Where the second copy is.
        at: At,
    },
    /// A tensor name appears twice.
    #[error("duplicate tensor name {tensor:?} {at}")]
    DuplicateTensor {
        /// The name.
        tensor: String,
        /// Where the second copy is.
        at: At,
    },
    /// A metadata key of length 0.
    #[error("empty metadata key {at}")]
    EmptyKey {
        /// Where.
        at: At,
    },
    /// A key, string value or tensor name that is not UTF-8.
    #[error("{field}: invalid UTF-8 at byte offset {offset} (valid up to byte {valid_up_to} of the string)")]
    InvalidUtf8 {
        /// What the string is.
        field: String,
        /// Offset of the string's bytes.
        offset: u64,
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// A bool value other than 0 or 1.
    #[error("{key}: bool byte {value} at byte offset {offset} is neither 0 nor 1")]
    InvalidBool {
        /// The key.
        key: String,
        /// Offset of the byte.
        offset: u64,
        /// The byte.
        value: u8,
    },
    /// Arrays nested deeper than [`crate::MAX_ARRAY_DEPTH`].
    #[error("{key}: arrays nested deeper than {max} at byte offset {offset}")]
    NestingTooDeep {
        /// The key.
        key: String,
        /// Offset of the innermost array header.
        offset: u64,
        /// The cap.
        max: usize,
    },
    /// A metadata key the caller asked for is absent.
    #[error("metadata key {key:?} is missing")]
    MissingKey {
        /// The key.
        key: String,
    },
    /// A metadata value has a different type than the caller asked for.
    #[error("metadata key {key:?} holds {found}, expected {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// What was asked for.
        expected: &'static str,
        /// What the file holds.
        found: &'static str,
    },
    /// An integer metadata value does not fit the requested integer type.
    #[error("metadata key {key:?} = {value} does not fit in {target}")]
    OutOfRange {
        /// The key.
        key: String,
        /// The value (as i128 so every integer type fits).
        value: i128,
        /// The requested type.
        target: &'static str,
    },
    /// A tensor's bytes cannot be viewed as blocks of the requested type.
    #[error("tensor {tensor:?}: {len} bytes at address alignment {addr_align} cannot be viewed as blocks of {block_bytes} bytes with alignment {block_align}")]
    BlockCast {
        /// The tensor.
        tensor: String,
        /// Its byte length.
        len: usize,
        /// Size of one block.
        block_bytes: usize,
        /// Alignment the block type needs.
        block_align: usize,
        /// Largest power of two dividing the data address (capped at 4096).
        addr_align: usize,
    },
    /// A shard of a split model is inconsistent with the others.
    #[error("split model {}: {field} is {found}, expected {expected}", path.display())]
    SplitMismatch {
        /// The shard.
        path: PathBuf,
        /// The key or property (`split.no`, `split.count`, `split.tensors.count`, ...).
        field: &'static str,
        /// Expected value.
        expected: u64,
        /// Value found.
        found: u64,
    },
    /// A file has `split.count > 1` but its name does not follow `PREFIX-NNNNN-of-MMMMM.gguf`,
    /// so the other shards cannot be found.
    #[error("{} has split.count = {count} but its name is not PREFIX-NNNNN-of-NNNNN.gguf", path.display())]
    SplitName {
        /// The file.
        path: PathBuf,
        /// Its `split.count`.
        count: u64,
    },
    /// The file has no ingot integrity keys, so there is nothing to verify against.
    #[error("no integrity keys ({key} missing): the file was not written by ingot's writer")]
    NoIntegrity {
        /// The first missing key.
        key: &'static str,
    },
    /// The integrity keys exist but are malformed (wrong type or length).
    #[error("integrity key {key} is malformed: {problem}")]
    BadIntegrityKey {
        /// The key.
        key: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// Recomputed hashes differ from the stored ones.
    #[error("integrity check failed: {} tensor(s) differ {tensors:?}{}{}", tensors.len(), if *data_section { ", data-section digest differs" } else { "" }, if *header { ", header digest differs (metadata or tensor infos changed)" } else { "" })]
    IntegrityMismatch {
        /// Every tensor whose xxh3 differs.
        tensors: Vec<String>,
        /// Whether the blake3 digest of the data section differs.
        data_section: bool,
        /// Whether the blake3 digest of the header (metadata and tensor infos, integrity
        /// values excluded) differs.
        header: bool,
    },
    /// Writer: a metadata key in ingot's reserved namespace while integrity keys are on.
    #[error("metadata key {key:?} is reserved for ingot's writer")]
    ReservedKey {
        /// The key.
        key: String,
    },
    /// Writer: a call in the wrong phase (e.g. declaring a tensor after data started).
    #[error("writer misuse: {what}")]
    WriterState {
        /// What was attempted.
        what: &'static str,
    },
    /// Writer: more or fewer bytes streamed for a tensor than its declared shape and type need.
    #[error("tensor {tensor:?}: {got} bytes written, declared size is {expected}")]
    TensorSizeMismatch {
        /// The tensor.
        tensor: String,
        /// Declared byte size.
        expected: u64,
        /// Bytes provided.
        got: u64,
    },
    /// Writer: `finish()` called before every declared tensor was written.
    #[error("finish() with {missing} of {total} tensors not written (next: {next:?})")]
    MissingTensorData {
        /// First tensor not written.
        next: String,
        /// How many were not written.
        missing: usize,
        /// How many were declared.
        total: usize,
    },
}

/// The crate's result type.
pub type Result<T, E = FormatError> = std::result::Result<T, E>;
