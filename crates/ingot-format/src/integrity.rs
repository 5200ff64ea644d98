//! ingot's integrity keys. The writer hashes tensor bytes as they stream and stores the digests
//! in metadata under a namespace no other tool uses (llama.cpp and gguf-py ignore unknown keys):
//!
//! * [`TENSOR_XXH3_KEY`]: array of u64, one per tensor of the file in tensor-info order, the
//!   XXH3-64 (seed 0) of the tensor's bytes (without padding). Cheap, and names the tensor
//!   that changed.
//! * [`DATA_BLAKE3_KEY`]: string, the 64 lowercase hex digits of the BLAKE3 hash of the whole
//!   data section (from its aligned start to the end of the file, padding included), so any
//!   changed byte after the header is caught with a cryptographic hash.
//!
//! Both are fixed-size, so the writer reserves them in the header and patches them in place
//! once the data is written. In a split model every shard carries its own pair.

/// Metadata key prefix reserved for ingot's writer.
pub const RESERVED_PREFIX: &str = "ingot.integrity.";
/// Per-tensor XXH3-64 digests (array of u64, tensor-info order).
pub const TENSOR_XXH3_KEY: &str = "ingot.integrity.tensor_xxh3";
/// BLAKE3 of the data section (64 lowercase hex digits).
pub const DATA_BLAKE3_KEY: &str = "ingot.integrity.data_blake3";

/// XXH3-64 of `bytes`, as stored per tensor.
pub fn tensor_digest(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Lowercase hex of a BLAKE3 hash.
pub(crate) fn hex(hash: &blake3::Hash) -> String {
    hash.to_hex().to_string()
}
