//! ingot-format: the GGUF container, v2 and v3, read and written byte-compatibly with
//! llama.cpp and the `gguf` Python package.
//!
//! * [`GgufFile`] memory-maps a file (or takes bytes), parses and validates the header,
//!   metadata and tensor infos into owned structures, and lends tensor data as
//!   [`TensorView`]s borrowed from the map. Opening never reads tensor data. A shard of a split
//!   model (`name-00001-of-00003.gguf`) opens as the whole model.
//! * [`GgufWriter`] streams a file: metadata and tensor infos first, with offsets precomputed
//!   from the declared shapes and types, then each tensor's bytes, hashed as they pass (xxh3 per
//!   tensor, blake3 over the data section, stored under `ingot.integrity.*`), into a temp file
//!   that is fsynced and renamed into place by [`GgufWriter::finish`].
//! * [`GgmlType`] is the table of every GGML tensor type.
//!
//! File bytes are hostile: every read is bounds-checked, every count is checked against the
//! bytes remaining before allocating, every arithmetic step on file values is checked, and every
//! problem is a [`FormatError`] variant naming the field, offset and numbers. Nothing reachable
//! from file bytes panics. See `formats/container.md` for the rules and their sources.
//!
//! ```no_run
//! use ingot_format::{GgufFile, GgmlType};
//! let file = GgufFile::open("model.gguf")?;
//! let n_layers = file.get_u32("llama.block_count")?;
//! let tokens = file.get_str_array("tokenizer.ggml.tokens")?;
//! let emb = file.tensor("token_embd.weight").expect("present");
//! assert_eq!(emb.ggml_type(), GgmlType::Q4_1);
//! let bytes: &[u8] = emb.bytes();
//! # let _ = (n_layers, tokens, bytes);
//! # Ok::<(), ingot_format::FormatError>(())
//! ```
#![deny(missing_docs)]

mod error;
mod file;
pub mod integrity;
mod map;
mod parse;
pub mod split;
mod types;
mod value;
mod writer;

pub use error::{At, FormatError, Result};
pub use file::{GgufFile, TensorView};
pub use parse::{align_up, TensorInfo, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};
pub use types::{GgmlType, QK_K};
pub use value::{Array, Value, ValueType};
pub use writer::{GgufWriter, SplitPolicy, WriterOptions};

/// Maximum tensor dimensions (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;
/// Longest tensor name accepted when reading, in bytes. ggml's `GGML_MAX_NAME` is 64 including
/// the terminating NUL, so llama.cpp itself accepts at most 63; [`GgufWriter`] enforces 63.
pub const MAX_TENSOR_NAME: usize = 64;
/// Longest tensor name the writer accepts, so llama.cpp can load every file we write.
pub const MAX_TENSOR_NAME_WRITE: usize = 63;
/// Deepest nesting of arrays accepted (an array of arrays of scalars has depth 2). llama.cpp
/// rejects nested arrays outright; gguf-py reads them. The cap bounds recursion on hostile input.
pub const MAX_ARRAY_DEPTH: usize = 8;
/// GGUF versions read. Version 1 (32-bit counts) is obsolete; v2 and v3 differ only in v3
/// allowing big-endian files, which are detected and rejected.
pub const SUPPORTED_VERSIONS: [u32; 2] = [2, 3];
/// The version [`GgufWriter`] writes.
pub const WRITE_VERSION: u32 = 3;

#[cfg(test)]
mod tests {
    /// Models are shared across rayon workers and writers are moved into worker threads.
    #[test]
    fn file_is_send_and_sync_and_writer_is_send() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>() {}
        send_sync::<crate::GgufFile>();
        send_sync::<crate::TensorView<'static>>();
        send::<crate::GgufWriter>();
        send_sync::<crate::FormatError>();
    }
}
