//! Every block layout, re-exported from its family module; byte for byte as ggml lays them out (`ggml-common.h` in llama.cpp; see
//! `formats/blocks.md` for the diagrams and sources).
//!
//! Every block is `#[repr(C)]` and `bytemuck::Pod`, so a tensor's bytes in a memory map can be
//! viewed as `&[BlockX]` without copying (ingot-format's checked cast). A compile-time assert
//! pins each size to ggml's; a mismatch is a build error, not a corrupt file.

/// Elements per block of the legacy ("type 0/1") formats.
pub const QK: usize = 32;
/// Elements per super-block of the K-quants.
pub const QK_K: usize = 256;
/// Bytes of packed 6-bit scales and mins in Q4_K and Q5_K (`K_SCALE_SIZE` in ggml).
pub const K_SCALE_SIZE: usize = 12;

pub use crate::k_quants::{
    q2_k::BlockQ2K, q3_k::BlockQ3K, q4_k::BlockQ4K, q5_k::BlockQ5K, q6_k::BlockQ6K, q8_k::BlockQ8K,
};
pub use crate::legacy::{
    q4_0::BlockQ4_0, q4_1::BlockQ4_1, q5_0::BlockQ5_0, q5_1::BlockQ5_1, q8_0::BlockQ8_0,
    q8_1::BlockQ8_1,
};
