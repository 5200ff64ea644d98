//! Q8_0: 32 signed bytes with one f16 scale; x = d·q.
//!
//! Reference quantizer (ggml `quantize_row_q8_0_ref`): d = amax/127, q = round(x·(1/d)) with
//! rounding half away from zero (`roundf`). llama.cpp ignores importance weights for Q8_0
//! (`quantize_q8_0`), and so does ingot: at 8 bits the rounding error is already ~1/254 of the
//! block's range, and the scale search that pays off at 4–5 bits changes almost nothing here.

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::{assert_row, assert_weights, round_to_i8};
use crate::blocks::QK;
use crate::float::f32_to_f16;

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

/// Largest magnitude, lane-wise so it vectorises (a maximum of non-negative values does not
/// depend on the order; NaN never wins a `>` comparison).
#[inline(always)]
pub(crate) fn absmax(x: &[f32; QK]) -> f32 {
    let mut lanes = [0.0f32; 8];
    for c in x.chunks_exact(8) {
        for i in 0..8 {
            let a = c[i].abs();
            lanes[i] = if a > lanes[i] { a } else { lanes[i] };
        }
    }
    lanes.iter().fold(0.0f32, |m, &a| if a > m { a } else { m })
}

/// Quantizes one block as ggml's reference does.
#[inline(always)]
pub(crate) fn quantize_block_ref(x: &[f32; QK]) -> BlockQ8_0 {
    let d = absmax(x) / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // Two loops (the product, then the rounding): the shape that vectorises.
    let mut v = [0.0f32; QK];
    for (p, &xv) in v.iter_mut().zip(x) {
        *p = xv * id;
    }
    let mut qs = [0i8; QK];
    for (q, &p) in qs.iter_mut().zip(&v) {
        *q = round_to_i8(p);
    }
    BlockQ8_0 {
        d: f32_to_f16(d),
        qs,
    }
}

/// Quantizes a row exactly as ggml's `quantize_row_q8_0_ref` (which is also llama.cpp's
/// `quantize_q8_0`, with or without an imatrix).
///
/// # Panics
/// If `x.len() != out.len() · 32`.
pub fn quantize_row_ref(x: &[f32], out: &mut [BlockQ8_0]) {
    assert_row("q8_0::quantize_row_ref", x.len(), out.len());
    (super::arch::active().q8_0_ref)(x, out)
}

/// The reference row loop, compiled once per instruction-set level (see [`super::arch`]).
#[inline(always)]
pub(crate) fn ref_row_body(x: &[f32], out: &mut [BlockQ8_0]) {
    for (xb, o) in x.chunks_exact(QK).zip(out.iter_mut()) {
        *o = quantize_block_ref(xb.try_into().expect("chunks_exact yields QK values"));
    }
}

/// ingot's Q8_0 quantizer: the reference (weights are checked for length, then ignored; see
/// the module docs for why).
///
/// # Panics
/// If `x.len() != out.len() · 32` or the weights' length differs from `x.len()`.
pub fn quantize_row(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ8_0]) {
    assert_weights("q8_0::quantize_row", x.len(), weights);
    quantize_row_ref(x, out);
}

/// Dequantizes a row: x = d·q.
///
/// # Panics
/// If `out.len() != blocks.len() · 32`.
pub fn dequantize_row(blocks: &[BlockQ8_0], out: &mut [f32]) {
    assert_row("q8_0::dequantize_row", out.len(), blocks.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        for (v, &q) in o.iter_mut().zip(&b.qs) {
            *v = f32::from(q) * d;
        }
    }
}
