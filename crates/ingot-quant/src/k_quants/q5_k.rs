//! Q5_K: block layout.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::blocks::{K_SCALE_SIZE, QK_K};

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

const _: () = assert!(size_of::<BlockQ5K>() == 176);
