//! Q8_K: the activation type of the K-quant dot products (llama.cpp `ggml-common.h`
//! `block_q8_K`, `ggml-quants.c` `quantize_row_q8_K_ref` / `dequantize_row_q8_K`).
//!
//! One f32 scale for 256 values, x = d·q with q in −128..=127, and the sum of each group of 16
//! quants (`bsums`) so a dot product can fold in a weight type's mins without touching the
//! quants again. Reference algorithm: the value of largest magnitude `max` maps to −127
//! (iscale = −127/max, q = min(127, nearest_int(iscale·x)), d = 1/iscale).

use bytemuck::{Pod, Zeroable};

use super::{check_row, check_weights, nearest_int};
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

/// Quantizes one block, bit-identical to ggml's `quantize_row_q8_K_ref`. An all-zero block
/// gets d = 0, zero quants and zero sums (ggml leaves `bsums` untouched there; zero is what a
/// zeroed buffer holds and what any dot product needs).
#[inline]
pub fn quantize_block_ref(x: &[f32; QK_K]) -> BlockQ8K {
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    let mut b = BlockQ8K::zeroed();
    if amax == 0.0 {
        return b;
    }
    let iscale = -127.0f32 / max;
    for (q, &v) in b.qs.iter_mut().zip(x) {
        *q = nearest_int(iscale * v).min(127) as i8;
    }
    for (s, g) in b.bsums.iter_mut().zip(b.qs.chunks_exact(16)) {
        *s = g.iter().map(|&q| q as i16).sum();
    }
    b.d = 1.0 / iscale;
    b
}

/// Quantizes a row with ggml's reference algorithm (`quantize_row_q8_K_ref`).
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_row_ref(x: &[f32], out: &mut [BlockQ8K]) {
    check_row(x.len(), out.len());
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        *b = quantize_block_ref(xb.try_into().expect("chunks_exact yields QK_K values"));
    }
}

/// ingot's default Q8_K quantizer: the reference algorithm. Q8_K is an activation type that is
/// produced on the fly for dot products and never stored in files, and its 8-bit round to
/// nearest is within half a step of every value, so importance weights are accepted for a
/// uniform API and not used (as in ggml).
///
/// # Panics
/// If `x.len() != out.len() * 256` or weights are given with a different length.
pub fn quantize_row(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ8K]) {
    check_weights(x.len(), weights);
    quantize_row_ref(x, out);
}

/// Dequantizes a row: x = d·q (`dequantize_row_q8_K`).
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize_row(blocks: &[BlockQ8K], out: &mut [f32]) {
    check_row(out.len(), blocks.len());
    for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        for (o, &q) in y.iter_mut().zip(&b.qs) {
            *o = b.d * q as f32;
        }
    }
}
