//! Block layouts, byte for byte as ggml lays them out (`ggml-common.h` in llama.cpp; see
//! `formats/blocks.md` for the diagrams and sources).
//!
//! Every block is `#[repr(C)]` and `bytemuck::Pod`, so a tensor's bytes in a memory map can be
//! viewed as `&[BlockX]` without copying (ingot-format's checked cast). A compile-time assert
//! pins each size to ggml's; a mismatch is a build error, not a corrupt file.

use bytemuck::{Pod, Zeroable};
use half::f16;

/// Elements per block of the legacy ("type 0/1") formats.
pub const QK: usize = 32;
/// Elements per super-block of the K-quants.
pub const QK_K: usize = 256;
/// Bytes of packed 6-bit scales and mins in Q4_K and Q5_K (`K_SCALE_SIZE` in ggml).
pub const K_SCALE_SIZE: usize = 12;

/// Q8_0: 32 signed bytes and one f16 scale; x = d·q.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quants.
    pub qs: [i8; QK],
}

/// Q8_1: Q8_0 plus `s = d·Σq`, the activation type of the Q4_1/Q5_1 dot products.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8_1 {
    /// Scale.
    pub d: f16,
    /// d times the sum of the quants.
    pub s: f16,
    /// Quants.
    pub qs: [i8; QK],
}

/// Q4_0: 32 nibbles and one f16 scale; x = d·(q − 8). Element j is the low nibble of
/// `qs[j]` for j < 16 and the high nibble of `qs[j − 16]` otherwise.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4_0 {
    /// Scale.
    pub d: f16,
    /// Nibbles, two per byte (see the type doc for the order).
    pub qs: [u8; QK / 2],
}

/// Q4_1: 32 nibbles, f16 scale and min; x = d·q + m.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Nibbles, two per byte, in Q4_0's order.
    pub qs: [u8; QK / 2],
}

/// Q5_0: 32 five-bit values (low nibbles in `qs`, fifth bits in `qh`); x = d·(q − 16).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5_0 {
    /// Scale.
    pub d: f16,
    /// Fifth bits: bit j of the little-endian u32 is element j's high bit.
    pub qh: [u8; 4],
    /// Low nibbles, in Q4_0's order.
    pub qs: [u8; QK / 2],
}

/// Q5_1: Q5_0 with a min; x = d·q + m.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5_1 {
    /// Scale.
    pub d: f16,
    /// Minimum.
    pub m: f16,
    /// Fifth bits, as in Q5_0.
    pub qh: [u8; 4],
    /// Low nibbles, in Q4_0's order.
    pub qs: [u8; QK / 2],
}

/// Q2_K: 16 sub-blocks of 16 two-bit values, 4-bit scales and mins, f16 super scales.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ2K {
    /// Sub-block scales (low nibble) and mins (high nibble).
    pub scales: [u8; QK_K / 16],
    /// Two-bit quants.
    pub qs: [u8; QK_K / 4],
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
}

/// Q3_K: 16 sub-blocks of 16 three-bit values, 6-bit signed scales packed in 12 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ3K {
    /// High bits of the quants.
    pub hmask: [u8; QK_K / 8],
    /// Low two bits of the quants.
    pub qs: [u8; QK_K / 4],
    /// 6-bit scales, packed.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}

/// Q4_K: 8 sub-blocks of 32 four-bit values, 6-bit scales and mins packed in 12 bytes;
/// x = d·sc·q − dmin·m.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4K {
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
    /// 6-bit scales and mins, packed (`get_scale_min_k4`).
    pub scales: [u8; K_SCALE_SIZE],
    /// Four-bit quants.
    pub qs: [u8; QK_K / 2],
}

/// Q5_K: Q4_K plus a fifth bit per value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5K {
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
    /// 6-bit scales and mins, packed (`get_scale_min_k4`).
    pub scales: [u8; K_SCALE_SIZE],
    /// Fifth bits.
    pub qh: [u8; QK_K / 8],
    /// Low four bits.
    pub qs: [u8; QK_K / 2],
}

/// Q6_K: 16 sub-blocks of 16 six-bit values, 8-bit signed scales; `d` comes last.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ6K {
    /// Low four bits.
    pub ql: [u8; QK_K / 2],
    /// High two bits.
    pub qh: [u8; QK_K / 4],
    /// Sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: f16,
}

/// Q8_K: the activation type of the K-quant dot products: f32 scale, 256 signed bytes and the
/// sums of each group of 16 quants.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8K {
    /// Scale.
    pub d: f32,
    /// Quants.
    pub qs: [i8; QK_K],
    /// Sum of each group of 16 quants.
    pub bsums: [i16; QK_K / 16],
}

const _: () = assert!(size_of::<BlockQ8_0>() == 34);
const _: () = assert!(size_of::<BlockQ8_1>() == 36);
const _: () = assert!(size_of::<BlockQ4_0>() == 18);
const _: () = assert!(size_of::<BlockQ4_1>() == 20);
const _: () = assert!(size_of::<BlockQ5_0>() == 22);
const _: () = assert!(size_of::<BlockQ5_1>() == 24);
const _: () = assert!(size_of::<BlockQ2K>() == 84);
const _: () = assert!(size_of::<BlockQ3K>() == 110);
const _: () = assert!(size_of::<BlockQ4K>() == 144);
const _: () = assert!(size_of::<BlockQ5K>() == 176);
const _: () = assert!(size_of::<BlockQ6K>() == 210);
const _: () = assert!(size_of::<BlockQ8K>() == 292);
