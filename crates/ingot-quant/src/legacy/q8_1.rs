//! Q8_1: Q8_0 plus s = d·Σq, the activation type of the Q4_1/Q5_1 dot products.
//!
//! Reference quantizer (ggml `quantize_row_q8_1_ref`): as Q8_0 (d = amax/127,
//! q = roundf(x/d)), then s = f16(d · Σ q) with the unrounded d. Q8_1 is never a weight type in
//! files, so there is no importance-weighted mode: `quantize_row` is the reference.

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::{assert_row, assert_weights, round_to_i8};
use crate::blocks::QK;
use crate::float::f32_to_f16;

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

/// Quantizes a row exactly as ggml's `quantize_row_q8_1_ref`.
///
/// # Panics
/// If `x.len() != out.len() · 32`.
pub fn quantize_row_ref(x: &[f32], out: &mut [BlockQ8_1]) {
    assert_row("q8_1::quantize_row_ref", x.len(), out.len());
    (super::arch::active().q8_1_ref)(x, out)
}

/// The reference row loop, compiled once per instruction-set level (see [`super::arch`]).
#[inline(always)]
pub(crate) fn ref_row_body(x: &[f32], out: &mut [BlockQ8_1]) {
    for (xb, o) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let xb: &[f32; QK] = xb.try_into().expect("chunks_exact yields QK values");
        let d = super::q8_0::absmax(xb) / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut v = [0.0f32; QK];
        for (p, &xv) in v.iter_mut().zip(xb) {
            *p = xv * id;
        }
        let mut qs = [0i8; QK];
        for (q, &p) in qs.iter_mut().zip(&v) {
            *q = round_to_i8(p);
        }
        // An integer sum: any order gives the same value.
        let sum: i32 = qs.iter().map(|&q| i32::from(q)).sum();
        *o = BlockQ8_1 {
            d: f32_to_f16(d),
            s: f32_to_f16(sum as f32 * d),
            qs,
        };
    }
}

/// ingot's Q8_1 quantizer: the reference (an activation type has no imatrix; the weights'
/// length is checked, then they are ignored).
///
/// # Panics
/// If `x.len() != out.len() · 32` or the weights' length differs from `x.len()`.
pub fn quantize_row(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ8_1]) {
    assert_weights("q8_1::quantize_row", x.len(), weights);
    quantize_row_ref(x, out);
}

/// Dequantizes a row: x = d·q (`s` is redundant and not used).
///
/// # Panics
/// If `out.len() != blocks.len() · 32`.
pub fn dequantize_row(blocks: &[BlockQ8_1], out: &mut [f32]) {
    assert_row("q8_1::dequantize_row", out.len(), blocks.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (v, &q) in o.iter_mut().zip(&b.qs) {
            *v = f32::from(q) * d;
        }
    }
}
