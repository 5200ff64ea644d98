//! Q5_0: 32 values as 5-bit levels around zero with one f16 scale; x = d·(q − 16).
//!
//! Reference quantizer (ggml `quantize_row_q5_0_ref`): d = max / −16 with `max` the element of
//! largest magnitude (first on ties), q = min(31, trunc(x/d + 16.5)). ingot's quantizer:
//! [`super::search`] (type 0, n = 16).

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::{
    assert_row, assert_weights, pack_high_bits, pack_nibbles, search, signed_absmax, trunc_u8,
    unpack_five_bits,
};
use crate::blocks::QK;
use crate::float::f32_to_f16_bits;

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

/// Offset of the stored levels: q = L + 16, L ∈ [−16, 15].
const N: i32 = 16;

#[inline(always)]
fn reference_block(x: &[f32; QK], max: f32) -> (u16, [u8; QK]) {
    let d = max / -16.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // Two loops (the value, then the integer conversion): the shape that vectorises.
    let mut v = [0.0f32; QK];
    for j in 0..QK {
        v[j] = (x[j] * id + 16.5).min(31.0);
    }
    let mut q = [0u8; QK];
    for j in 0..QK {
        q[j] = trunc_u8(v[j]);
    }
    (f32_to_f16_bits(d), q)
}

#[inline(always)]
fn store(d_bits: u16, q: &[u8; QK]) -> BlockQ5_0 {
    BlockQ5_0 {
        d: f16::from_bits(d_bits),
        qh: pack_high_bits(q),
        qs: pack_nibbles(q),
    }
}

#[inline(always)]
fn block_of(x: &[f32]) -> &[f32; QK] {
    x.try_into().expect("chunks_exact yields QK values")
}

/// Quantizes a row exactly as ggml's `quantize_row_q5_0_ref` (also what llama-quantize writes
/// for Q5_0 without an imatrix).
///
/// # Panics
/// If `x.len() != out.len() · 32`.
pub fn quantize_row_ref(x: &[f32], out: &mut [BlockQ5_0]) {
    assert_row("q5_0::quantize_row_ref", x.len(), out.len());
    (super::arch::active().q5_0_ref)(x, out)
}

/// The reference row loop, compiled once per instruction-set level (see [`super::arch`]).
#[inline(always)]
pub(crate) fn ref_row_body(x: &[f32], out: &mut [BlockQ5_0]) {
    for (xb, o) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let xb = block_of(xb);
        let (d, q) = reference_block(xb, signed_absmax(xb).1);
        *o = store(d, &q);
    }
}

/// ingot's Q5_0 quantizer: minimises Σ w (x − x̂)² per block (see [`super::search`]); `None`
/// weights mean plain squared error. Never worse than the reference block under that objective.
///
/// # Panics
/// If `x.len() != out.len() · 32` or the weights' length differs from `x.len()`.
pub fn quantize_row(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ5_0]) {
    assert_row("q5_0::quantize_row", x.len(), out.len());
    assert_weights("q5_0::quantize_row", x.len(), weights);
    (super::arch::active().q5_0)(x, weights, out)
}

/// The search row loop, compiled once per instruction-set level (see [`super::arch`]).
#[inline(always)]
pub(crate) fn search_row_body(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ5_0]) {
    for (i, (xb, o)) in x.chunks_exact(QK).zip(out.iter_mut()).enumerate() {
        let xb = block_of(xb);
        let extremes = signed_absmax(xb);
        let reference = reference_block(xb, extremes.1);
        let (d, q) = match search::block_weights(weights.map(|w| &w[i * QK..(i + 1) * QK])) {
            Some(w) => search::quantize_type0::<{ search::TYPE0_WEIGHTED }>(
                xb,
                Some(w),
                N,
                extremes,
                reference,
            ),
            None => {
                search::quantize_type0::<{ search::TYPE0_PLAIN }>(xb, None, N, extremes, reference)
            }
        };
        *o = store(d, &q);
    }
}

/// Dequantizes a row: x = d·(q − 16).
///
/// # Panics
/// If `out.len() != blocks.len() · 32`.
pub fn dequantize_row(blocks: &[BlockQ5_0], out: &mut [f32]) {
    assert_row("q5_0::dequantize_row", out.len(), blocks.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        let q = unpack_five_bits(&b.qs, &b.qh);
        for (v, &l) in o.iter_mut().zip(&q) {
            *v = (i32::from(l) - N) as f32 * d;
        }
    }
}
