//! Q5_0: block layout.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::blocks::QK;

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

const _: () = assert!(size_of::<BlockQ5_0>() == 22);
