//! Q8_1: block layout.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::blocks::QK;

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

const _: () = assert!(size_of::<BlockQ8_1>() == 36);
