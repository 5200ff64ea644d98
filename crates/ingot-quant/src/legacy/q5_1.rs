//! Q5_1: 32 values as 5-bit levels with an f16 scale and an f16 offset; x = d·q + m.
//!
//! Reference quantizer (ggml `quantize_row_q5_1_ref`): m = min, d = (max − min)/31,
//! q = trunc((x − min)/d + 0.5). ingot's quantizer: [`super::search`] (type 1, n = 31).

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::{
    assert_row, assert_weights, min_max, pack_high_bits, pack_nibbles, search, trunc_u8,
    unpack_five_bits,
};
use crate::blocks::QK;
use crate::float::f32_to_f16_bits;

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

/// Highest level.
const N: i32 = 31;

#[inline(always)]
fn reference_block(x: &[f32; QK]) -> (u16, u16, [u8; QK]) {
    let (min, max) = min_max(x);
    let d = (max - min) / 31.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // Two loops (the value, then the integer conversion): the shape that vectorises.
    let mut v = [0.0f32; QK];
    for j in 0..QK {
        // C: (uint8_t)(x0 + 0.5f), no clamp; ≤ 31 up to rounding. The fifth bit keeps only
        // bit 4, the nibble bits 0–3, exactly like ggml's masks.
        v[j] = (x[j] - min) * id + 0.5;
    }
    let mut q = [0u8; QK];
    for j in 0..QK {
        q[j] = trunc_u8(v[j]) & 0x1F;
    }
    (f32_to_f16_bits(d), f32_to_f16_bits(min), q)
}

#[inline(always)]
fn store(d_bits: u16, m_bits: u16, q: &[u8; QK]) -> BlockQ5_1 {
    BlockQ5_1 {
        d: f16::from_bits(d_bits),
        m: f16::from_bits(m_bits),
        qh: pack_high_bits(q),
        qs: pack_nibbles(q),
    }
}

#[inline(always)]
fn block_of(x: &[f32]) -> &[f32; QK] {
    x.try_into().expect("chunks_exact yields QK values")
}

/// Quantizes a row exactly as ggml's `quantize_row_q5_1_ref` (also what llama-quantize writes
/// for Q5_1 without an imatrix).
///
/// # Panics
/// If `x.len() != out.len() · 32`.
pub fn quantize_row_ref(x: &[f32], out: &mut [BlockQ5_1]) {
    assert_row("q5_1::quantize_row_ref", x.len(), out.len());
    (super::arch::active().q5_1_ref)(x, out)
}

/// The reference row loop, compiled once per instruction-set level (see [`super::arch`]).
#[inline(always)]
pub(crate) fn ref_row_body(x: &[f32], out: &mut [BlockQ5_1]) {
    for (xb, o) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let (d, m, q) = reference_block(block_of(xb));
        *o = store(d, m, &q);
    }
}

/// ingot's Q5_1 quantizer: minimises Σ w (x − x̂)² per block (see [`super::search`]); `None`
/// weights mean plain squared error. Never worse than the reference block under that objective.
///
/// # Panics
/// If `x.len() != out.len() · 32` or the weights' length differs from `x.len()`.
pub fn quantize_row(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ5_1]) {
    assert_row("q5_1::quantize_row", x.len(), out.len());
    assert_weights("q5_1::quantize_row", x.len(), weights);
    (super::arch::active().q5_1)(x, weights, out)
}

/// The search row loop, compiled once per instruction-set level (see [`super::arch`]).
#[inline(always)]
pub(crate) fn search_row_body(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ5_1]) {
    for (i, (xb, o)) in x.chunks_exact(QK).zip(out.iter_mut()).enumerate() {
        let xb = block_of(xb);
        let reference = reference_block(xb);
        let (d, m, q) = match search::block_weights(weights.map(|w| &w[i * QK..(i + 1) * QK])) {
            Some(w) => {
                search::quantize_type1::<{ search::TYPE1_WEIGHTED }>(xb, Some(w), N, reference)
            }
            None => search::quantize_type1::<{ search::TYPE1_PLAIN }>(xb, None, N, reference),
        };
        *o = store(d, m, &q);
    }
}

/// Dequantizes a row: x = d·q + m.
///
/// # Panics
/// If `out.len() != blocks.len() · 32`.
pub fn dequantize_row(blocks: &[BlockQ5_1], out: &mut [f32]) {
    assert_row("q5_1::dequantize_row", out.len(), blocks.len());
    for (b, o) in blocks.iter().zip(out.chunks_exact_mut(QK)) {
        let d = b.d.to_f32();
        let m = b.m.to_f32();
        let q = unpack_five_bits(&b.qs, &b.qh);
        for (v, &l) in o.iter_mut().zip(&q) {
            *v = f32::from(l) * d + m;
        }
    }
}
