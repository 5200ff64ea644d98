//! Q4_K: block layout.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::blocks::{K_SCALE_SIZE, QK_K};

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

const _: () = assert!(size_of::<BlockQ4K>() == 144);
