//! Q8_K: block layout.

use bytemuck::{Pod, Zeroable};

use crate::blocks::QK_K;

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

const _: () = assert!(size_of::<BlockQ8K>() == 292);
