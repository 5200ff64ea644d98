//! Q5_K: Q4_K with a fifth bit per value; x = d·sc[j]·q − dmin·m[j], q in 0..=31 (llama.cpp
//! `ggml-common.h` `block_q5_K`; `ggml-quants.c` `quantize_row_q5_K_ref`,
//! `quantize_row_q5_K_impl`, `dequantize_row_q5_K`).
//!
//! Layout: value 64c + i (c in 0..4, i in 0..32) has its low four bits in the low nibble of
//! `qs[32c + i]` and its fifth bit in bit 2c of `qh[i]`; value 64c + 32 + i the high nibble and
//! bit 2c + 1. Sub-block j covers values 32j..32j + 32.
//!
//! Reference algorithm: as Q4_K with nmax = 31 and `make_qkx2_quants(rmin = −0.5,
//! rdelta = 0.1, nstep = 15)`. See [`super::affine6`] and [`super::refine`].

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::affine6::{self, Affine6, Affine6Block};
use super::ggml_search::AffineSearch;
use super::lanes::F32x8;
use super::scales::get_scale_min_k4;
use super::{arch, check_row, check_weights};
use crate::blocks::{K_SCALE_SIZE, QK_K};

/// Q5_K: Q4_K plus a fifth bit per value.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ5K {
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
    /// 6-bit scales and mins, packed (`get_scale_min_k4`).
    pub scales: [u8; K_SCALE_SIZE],
    /// Fifth bits.
    pub qh: [u8; QK_K / 8],
    /// Low four bits.
    pub qs: [u8; QK_K / 2],
}

const _: () = assert!(size_of::<BlockQ5K>() == 176);

const NMAX: i32 = 31;
const REF_SEARCH: AffineSearch = AffineSearch {
    rmin: -0.5,
    rdelta: 0.1,
    nstep: 15,
    use_mad: false,
};

impl Affine6Block for BlockQ5K {
    const NMAX: i32 = NMAX;
    const REF_SEARCH: AffineSearch = REF_SEARCH;

    #[inline(always)]
    fn pack(a: &Affine6) -> BlockQ5K {
        let mut b = BlockQ5K {
            d: a.d,
            dmin: a.dmin,
            scales: a.scales,
            qh: [0; QK_K / 8],
            qs: [0; QK_K / 2],
        };
        for c in 0..4 {
            for i in 0..32 {
                let l1 = a.l[64 * c + i];
                let l2 = a.l[64 * c + 32 + i];
                b.qs[32 * c + i] = (l1 & 0xF) | ((l2 & 0xF) << 4);
                b.qh[i] |= ((l1 >> 4) << (2 * c)) | ((l2 >> 4) << (2 * c + 1));
            }
        }
        b
    }
}

/// Quantizes a row with ggml's reference algorithm (`quantize_row_q5_K_ref`), bit for bit.
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_row_ref(x: &[f32], out: &mut [BlockQ5K]) {
    check_row(x.len(), out.len());
    (arch::kernels().q5k_ref)(x, out)
}

/// The body of [`quantize_row_ref`], compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_ref_body<S: F32x8>(s: S, x: &[f32], out: &mut [BlockQ5K]) {
    affine6::row_ref(s, x, out)
}

/// Quantizes a row with llama.cpp's importance-weighted algorithm
/// (`quantize_row_q5_K_impl`, what `llama-quantize --imatrix` runs), so files can be
/// reproduced; [`quantize_row`] with the same weights is at least as accurate.
///
/// # Panics
/// If `x.len() != out.len() * 256` or `weights.len() != x.len()`.
pub fn quantize_row_ggml_weighted(x: &[f32], weights: &[f32], out: &mut [BlockQ5K]) {
    check_row(x.len(), out.len());
    check_weights(x.len(), Some(weights));
    (arch::kernels().q5k_ggml_weighted)(x, weights, out)
}

/// The body of [`quantize_row_ggml_weighted`], compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_ggml_weighted_body<S: F32x8>(
    s: S,
    x: &[f32],
    weights: &[f32],
    out: &mut [BlockQ5K],
) {
    affine6::row_ggml_weighted(s, x, weights, out)
}

/// ingot's Q5_K quantizer: with `Some(weights)` it minimises Σ w·(x − x̂)² per block, with
/// `None` the plain squared error; it starts from ggml's result for the same mode and only
/// accepts improvements (see [`super::refine`]).
///
/// # Panics
/// If `x.len() != out.len() * 256` or the weights have a different length than `x`.
pub fn quantize_row(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ5K]) {
    check_row(x.len(), out.len());
    check_weights(x.len(), weights);
    (arch::kernels().q5k_best)(x, weights, out)
}

/// The body of [`quantize_row`], compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_best_body<S: F32x8>(
    s: S,
    x: &[f32],
    weights: Option<&[f32]>,
    out: &mut [BlockQ5K],
) {
    affine6::row_best(s, x, weights, out)
}

/// Dequantizes a row: x = (d·sc)·q − (dmin·m) (`dequantize_row_q5_K`, same operation order).
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize_row(blocks: &[BlockQ5K], out: &mut [f32]) {
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
                let h1 = ((b.qh[i] >> (2 * c)) & 1) << 4;
                let h2 = ((b.qh[i] >> (2 * c + 1)) & 1) << 4;
                y[i] = d1 * ((q[i] & 0xF) | h1) as f32 - m1;
                y[32 + i] = d2 * ((q[i] >> 4) | h2) as f32 - m2;
            }
        }
    }
}
