//! Q4_K: 8 sub-blocks of 32 four-bit values; x = d·sc[j]·q − dmin·m[j] with 6-bit sc, m packed
//! by [`set_scale_min_k4`](super::scales::set_scale_min_k4) and f16 d, dmin (llama.cpp
//! `ggml-common.h` `block_q4_K`; `ggml-quants.c` `quantize_row_q4_K_ref`,
//! `quantize_row_q4_K_impl`, `dequantize_row_q4_K`).
//!
//! Layout: value 64c + i (c in 0..4, i in 0..32) is the low nibble of `qs[32c + i]`, value
//! 64c + 32 + i its high nibble. Sub-block j covers values 32j..32j + 32.
//!
//! Reference algorithm: per sub-block `make_qkx2_quants(nmax = 15, rmin = −1, rdelta = 0.1,
//! nstep = 20)` with weights RMS + |x|; the largest scale and min map to 63; values re-rounded
//! against the stored factors. See [`super::affine6`] and [`super::refine`].

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::affine6::{self, Affine6, Affine6Block};
use super::ggml_search::AffineSearch;
use super::lanes::F32x8;
use super::scales::get_scale_min_k4;
use super::{arch, check_row, check_weights};
use crate::blocks::{K_SCALE_SIZE, QK_K};

/// Q4_K: 8 sub-blocks of 32 four-bit values, 6-bit scales and mins packed in 12 bytes;
/// x = d·sc·q − dmin·m.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ4K {
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
    /// 6-bit scales and mins, packed (`get_scale_min_k4`).
    pub scales: [u8; K_SCALE_SIZE],
    /// Four-bit quants.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(size_of::<BlockQ4K>() == 144);

const NMAX: i32 = 15;
const REF_SEARCH: AffineSearch = AffineSearch {
    rmin: -1.0,
    rdelta: 0.1,
    nstep: 20,
    use_mad: false,
};

impl Affine6Block for BlockQ4K {
    const NMAX: i32 = NMAX;
    const REF_SEARCH: AffineSearch = REF_SEARCH;

    #[inline(always)]
    fn pack(a: &Affine6) -> BlockQ4K {
        let mut b = BlockQ4K {
            d: a.d,
            dmin: a.dmin,
            scales: a.scales,
            qs: [0; QK_K / 2],
        };
        for c in 0..4 {
            for i in 0..32 {
                b.qs[32 * c + i] = a.l[64 * c + i] | (a.l[64 * c + 32 + i] << 4);
            }
        }
        b
    }
}

/// Quantizes a row with ggml's reference algorithm (`quantize_row_q4_K_ref`), bit for bit.
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_row_ref(x: &[f32], out: &mut [BlockQ4K]) {
    check_row(x.len(), out.len());
    (arch::kernels().q4k_ref)(x, out)
}

/// The body of [`quantize_row_ref`], compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_ref_body<S: F32x8>(s: S, x: &[f32], out: &mut [BlockQ4K]) {
    affine6::row_ref(s, x, out)
}

/// Quantizes a row with llama.cpp's importance-weighted algorithm
/// (`quantize_row_q4_K_impl`, what `llama-quantize --imatrix` runs), so files can be
/// reproduced; [`quantize_row`] with the same weights is at least as accurate.
///
/// # Panics
/// If `x.len() != out.len() * 256` or `weights.len() != x.len()`.
pub fn quantize_row_ggml_weighted(x: &[f32], weights: &[f32], out: &mut [BlockQ4K]) {
    check_row(x.len(), out.len());
    check_weights(x.len(), Some(weights));
    (arch::kernels().q4k_ggml_weighted)(x, weights, out)
}

/// The body of [`quantize_row_ggml_weighted`], compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_ggml_weighted_body<S: F32x8>(
    s: S,
    x: &[f32],
    weights: &[f32],
    out: &mut [BlockQ4K],
) {
    affine6::row_ggml_weighted(s, x, weights, out)
}

/// ingot's Q4_K quantizer: with `Some(weights)` it minimises Σ w·(x − x̂)² per block, with
/// `None` the plain squared error; it starts from ggml's result for the same mode and only
/// accepts improvements (see [`super::refine`]).
///
/// # Panics
/// If `x.len() != out.len() * 256` or the weights have a different length than `x`.
pub fn quantize_row(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ4K]) {
    check_row(x.len(), out.len());
    check_weights(x.len(), weights);
    (arch::kernels().q4k_best)(x, weights, out)
}

/// The body of [`quantize_row`], compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_best_body<S: F32x8>(
    s: S,
    x: &[f32],
    weights: Option<&[f32]>,
    out: &mut [BlockQ4K],
) {
    affine6::row_best(s, x, weights, out)
}

/// Dequantizes a row: x = (d·sc)·q − (dmin·m) (`dequantize_row_q4_K`, same operation order).
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize_row(blocks: &[BlockQ4K], out: &mut [f32]) {
    check_row(out.len(), blocks.len());
    for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        let min = b.dmin.to_f32();
        for c in 0..4 {
            let (sc1, m1) = get_scale_min_k4(2 * c, &b.scales);
            let (sc2, m2) = get_scale_min_k4(2 * c + 1, &b.scales);
            let (d1, m1) = (d * sc1 as f32, min * m1 as f32);
            let (d2, m2) = (d * sc2 as f32, min * m2 as f32);
            let q = &b.qs[32 * c..32 * c + 32];
            let y = &mut y[64 * c..64 * c + 64];
            for i in 0..32 {
                y[i] = d1 * (q[i] & 0xF) as f32 - m1;
                y[32 + i] = d2 * (q[i] >> 4) as f32 - m2;
            }
        }
    }
}
