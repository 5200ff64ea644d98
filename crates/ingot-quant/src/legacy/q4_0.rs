//! Q4_0: block layout.

use bytemuck::{Pod, Zeroable};
use half::f16;

use crate::blocks::QK;

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

const _: () = assert!(size_of::<BlockQ4_0>() == 18);
