//! Q6_K: block layout.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::blocks::QK_K;

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

const _: () = assert!(size_of::<BlockQ6K>() == 210);
