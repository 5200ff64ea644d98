//! Q5_1: block layout.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::blocks::QK;

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

const _: () = assert!(size_of::<BlockQ5_1>() == 24);
