//! Q2_K: block layout.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::blocks::QK_K;

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

const _: () = assert!(size_of::<BlockQ2K>() == 84);
