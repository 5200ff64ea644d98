//! Q8_0: block layout.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::blocks::QK;

/// Q8_0: 32 signed bytes and one f16 scale; x = d·q.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale.
    pub d: f16,
    /// Quants.
    pub qs: [i8; QK],
}

const _: () = assert!(size_of::<BlockQ8_0>() == 34);
