//! ingot's integrity keys. The writer hashes tensor bytes as they stream and stores the digests
//! in metadata under a namespace no other tool uses (llama.cpp and gguf-py ignore unknown keys):
//!
//! * [`TENSOR_XXH3_KEY`]: array of u64, one per tensor of the file in tensor-info order, the
//!   XXH3-64 (seed 0) of the tensor's bytes (without padding). Cheap, and names the tensor
//!   that changed.
//! * [`DATA_BLAKE3_KEY`]: string, the 64 lowercase hex digits of the BLAKE3 hash of the whole
//!   data section (from its aligned start to the end of the file, padding included), so any
//!   changed byte after the header is caught with a cryptographic hash.
//! * [`HEADER_BLAKE3_KEY`]: string, the 64 lowercase hex digits of the BLAKE3 hash of the
//!   header (bytes `0..data_offset`: fixed header, metadata, tensor infos, padding) with the
//!   encoded values of the three `ingot.integrity.*` keys replaced by zero bytes, so a changed
//!   metadata value, tensor shape, type or offset is caught even when the file still parses.
//!
//! All three are fixed-size, so the writer reserves them in the header and patches the data
//! digests in place once the data is written (the header digest is known before any data is
//! written, since it excludes the reserved values). In a split model every shard carries its
//! own three.

/// Metadata key prefix reserved for ingot's writer.
pub const RESERVED_PREFIX: &str = "ingot.integrity.";
/// Per-tensor XXH3-64 digests (array of u64, tensor-info order).
pub const TENSOR_XXH3_KEY: &str = "ingot.integrity.tensor_xxh3";
/// BLAKE3 of the data section (64 lowercase hex digits).
pub const DATA_BLAKE3_KEY: &str = "ingot.integrity.data_blake3";

/// BLAKE3 of the header with the reserved values zeroed (64 lowercase hex digits).
pub const HEADER_BLAKE3_KEY: &str = "ingot.integrity.header_blake3";

/// The header digest: BLAKE3 of `header` with the byte ranges `reserved` (ascending,
/// non-overlapping, inside `header`) fed as zeros.
pub(crate) fn header_digest(header: &[u8], reserved: &[std::ops::Range<u64>]) -> blake3::Hash {
    const ZEROS: [u8; 256] = [0; 256];
    let mut h = blake3::Hasher::new();
    let mut pos = 0usize;
    for r in reserved {
        let (start, end) = (r.start as usize, r.end as usize);
        h.update(header.get(pos..start).unwrap_or(&[]));
        let mut n = end.saturating_sub(start);
        while n > 0 {
            let k = n.min(ZEROS.len());
            h.update(&ZEROS[..k]);
            n -= k;
        }
        pos = end.max(pos);
    }
    h.update(header.get(pos..).unwrap_or(&[]));
    h.finalize()
}

/// XXH3-64 of `bytes`, as stored per tensor.
pub fn tensor_digest(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// Lowercase hex of a BLAKE3 hash.
pub(crate) fn hex(hash: &blake3::Hash) -> String {
    hash.to_hex().to_string()
}
