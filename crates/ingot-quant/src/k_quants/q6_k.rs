//! Q6_K: 16 sub-blocks of 16 six-bit values with signed 8-bit sub-block scales and one f16
//! super-block scale; x = d·sc[j]·(q − 32) (llama.cpp `ggml-common.h` `block_q6_K`,
//! `ggml-quants.c` `quantize_row_q6_K_ref`, `quantize_row_q6_K_impl`, `dequantize_row_q6_K`).
//!
//! Layout: value 128h + 32k + i (half h in 0..2, quarter k in 0..4, i in 0..32) keeps its
//! high two bits in bits 2k..2k + 2 of `qh[32h + i]` and its low four bits in
//! k = 0: the low nibble of `ql[64h + i]`, k = 1: the low nibble of `ql[64h + 32 + i]`,
//! k = 2: the high nibble of `ql[64h + i]`, k = 3: the high nibble of `ql[64h + 32 + i]`.
//! Sub-block j covers values 16j..16j + 16 and uses `scales[j]`.
//!
//! Reference algorithm: per sub-block `make_qx_quants(nmax = 32)` with weights x²; the scale of
//! largest magnitude maps to −128 (iscale = −128/max_scale, d = f16(1/iscale),
//! sc = min(127, nearest_int(iscale·scale))); values are then re-rounded against the stored
//! d·sc. ingot's default search starts there and refines (see [`super::refine`]).

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::ggml_search::GROUP_MAX_EPS;
use super::lanes;
use super::lanes::F32x8;
use super::refine::{self, SymmetricFormat, SymmetricState};
use super::{arch, check_row, check_weights, nearest_int};
use crate::blocks::QK_K;

/// Q6_K: 16 sub-blocks of 16 six-bit values, 8-bit signed scales; `d` comes last.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ6K {
    /// Low four bits.
    pub ql: [u8; QK_K / 2],
    /// High two bits.
    pub qh: [u8; QK_K / 4],
    /// Sub-block scales.
    pub scales: [i8; QK_K / 16],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(size_of::<BlockQ6K>() == 210);

/// The Q6_K grid for ingot's refinement: codes −32..=31, scales −128..=127 over 16 values.
pub(crate) const FORMAT: SymmetricFormat = SymmetricFormat {
    sub_len: 16,
    qmin: -32,
    qmax: 31,
    scmin: -128,
    scmax: 127,
    scale_offsets: &[
        0, -1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6, -7, 7, -8, 8, -10, 10, -12, 12, -16, 16,
    ],
};

/// Packs codes (0..=63, i.e. q + 32), scales and d into a block.
#[inline(always)]
fn pack(d: f16, scales: &[i8; 16], l: &[u8; QK_K]) -> BlockQ6K {
    let mut b = BlockQ6K::zeroed();
    b.d = d;
    b.scales = *scales;
    for h in 0..2 {
        for i in 0..32 {
            let v = |k: usize| l[128 * h + 32 * k + i];
            b.ql[64 * h + i] = (v(0) & 0xF) | ((v(2) & 0xF) << 4);
            b.ql[64 * h + 32 + i] = (v(1) & 0xF) | ((v(3) & 0xF) << 4);
            b.qh[32 * h + i] =
                (v(0) >> 4) | ((v(1) >> 4) << 2) | ((v(2) >> 4) << 4) | ((v(3) >> 4) << 6);
        }
    }
    b
}

/// The codes of a block (0..=63, value index order).
#[inline(always)]
pub(crate) fn unpack_codes(b: &BlockQ6K) -> [u8; QK_K] {
    let mut l = [0u8; QK_K];
    for h in 0..2 {
        for i in 0..32 {
            let ql0 = b.ql[64 * h + i];
            let ql1 = b.ql[64 * h + 32 + i];
            let qh = b.qh[32 * h + i];
            l[128 * h + i] = (ql0 & 0xF) | ((qh & 3) << 4);
            l[128 * h + 32 + i] = (ql1 & 0xF) | (((qh >> 2) & 3) << 4);
            l[128 * h + 64 + i] = (ql0 >> 4) | (((qh >> 4) & 3) << 4);
            l[128 * h + 96 + i] = (ql1 >> 4) | (((qh >> 6) & 3) << 4);
        }
    }
    l
}

/// Shared tail of the reference and ggml-imatrix paths: from per-sub-block scales to a block.
#[inline(always)]
fn finish_block(x: &[f32], scales: &[f32; 16], l: &mut [u8; QK_K]) -> BlockQ6K {
    let mut max_scale = 0.0f32;
    let mut max_abs_scale = 0.0f32;
    for &s in scales {
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = s;
        }
    }
    if max_abs_scale < GROUP_MAX_EPS {
        return BlockQ6K::zeroed();
    }
    let iscale = -128.0f32 / max_scale;
    let d = f16::from_f32(1.0 / iscale);
    let sc: [i8; 16] = std::array::from_fn(|j| nearest_int(iscale * scales[j]).min(127) as i8);
    let df = d.to_f32();
    for j in 0..16 {
        let dj = df * sc[j] as f32;
        if dj == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            l[i] = (nearest_int(x[i] / dj).clamp(-32, 31) + 32) as u8;
        }
    }
    pack(d, &sc, l)
}

/// The sixteen `make_qx_quants(32, ..)` scales of a block, eight sub-blocks per lane pass,
/// with weights x² (`None`, ggml's reference) or the importance weights.
#[inline(always)]
fn sub_block_scales<S: F32x8>(s: S, x: &[f32], w: Option<&[f32]>, l: &mut [u8; QK_K]) -> [f32; 16] {
    let mut scales = [0f32; 16];
    for half in 0..2 {
        let r = 128 * half..128 * half + 128;
        let xt = lanes::transpose_in::<8, 16>(&x[r.clone()]);
        let wt = match w {
            Some(w) => lanes::transpose_in::<8, 16>(&w[r]),
            None => xt.map(|row| row.map(|v| v * v)),
        };
        let mut codes = [[0u8; 16]; 8];
        let sc = lanes::symmetric_search::<S, 16>(s, 32, &xt, &wt, &mut codes);
        scales[8 * half..8 * half + 8].copy_from_slice(&sc);
        for (k, c) in codes.iter().enumerate() {
            let j = 128 * half + 16 * k;
            l[j..j + 16].copy_from_slice(c);
        }
    }
    scales
}

/// One block with ggml's reference algorithm, bit for bit.
#[inline(always)]
fn quantize_block_ref<S: F32x8>(s: S, x: &[f32]) -> BlockQ6K {
    let mut l = [0u8; QK_K];
    let scales = sub_block_scales(s, x, None, &mut l);
    finish_block(x, &scales, &mut l)
}

/// One block with ggml's importance-weighted algorithm (`quantize_row_q6_K_impl`): the same as
/// the reference with the importance weights in place of x² in the group search.
#[inline(always)]
fn quantize_block_ggml_weighted<S: F32x8>(s: S, x: &[f32], w: &[f32]) -> BlockQ6K {
    let mut l = [0u8; QK_K];
    let scales = sub_block_scales(s, x, Some(w), &mut l);
    finish_block(x, &scales, &mut l)
}

/// Quantizes a row with ggml's reference algorithm (`quantize_row_q6_K_ref`), bit for bit.
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_row_ref(x: &[f32], out: &mut [BlockQ6K]) {
    check_row(x.len(), out.len());
    (arch::kernels().q6k_ref)(x, out)
}

/// The body of [`quantize_row_ref`] (lengths checked), compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_ref_body<S: F32x8>(s: S, x: &[f32], out: &mut [BlockQ6K]) {
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        *b = quantize_block_ref(s, xb);
    }
}

#[inline(always)]
fn to_state(b: &BlockQ6K) -> SymmetricState<16> {
    let l = unpack_codes(b);
    SymmetricState {
        d: b.d.to_f32(),
        sc: std::array::from_fn(|j| b.scales[j] as i32),
        q: l.map(|c| c as i32 - 32),
    }
}

#[inline(always)]
fn from_state(s: &SymmetricState<16>) -> BlockQ6K {
    let sc: [i8; 16] = std::array::from_fn(|j| s.sc[j] as i8);
    let l: [u8; QK_K] = s.q.map(|q| (q + 32) as u8);
    pack(f16::from_f32(s.d), &sc, &l)
}

/// Quantizes a row with llama.cpp's importance-weighted algorithm
/// (`quantize_row_q6_K_impl`, what `llama-quantize --imatrix` runs), so files can be
/// reproduced; [`quantize_row`] with the same weights is at least as accurate.
///
/// # Panics
/// If `x.len() != out.len() * 256` or `weights.len() != x.len()`.
pub fn quantize_row_ggml_weighted(x: &[f32], weights: &[f32], out: &mut [BlockQ6K]) {
    check_row(x.len(), out.len());
    check_weights(x.len(), Some(weights));
    (arch::kernels().q6k_ggml_weighted)(x, weights, out)
}

/// The body of [`quantize_row_ggml_weighted`] (lengths checked), compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_ggml_weighted_body<S: F32x8>(
    s: S,
    x: &[f32],
    weights: &[f32],
    out: &mut [BlockQ6K],
) {
    for (bi, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
        *b = quantize_block_ggml_weighted(s, xb, &weights[bi * QK_K..(bi + 1) * QK_K]);
    }
}

/// ingot's Q6_K quantizer. With `Some(weights)` it minimises Σ w·(x − x̂)² per block; with
/// `None` the plain squared error. It starts from ggml's result for the same mode (the reference
/// quantizer, or `quantize_row_q6_K_impl` with weights) and improves it with
/// [`refine::refine_symmetric`], which only accepts changes that lower the error, so the result
/// is never worse than ggml's on the objective.
///
/// # Panics
/// If `x.len() != out.len() * 256` or the weights have a different length than `x`.
pub fn quantize_row(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ6K]) {
    check_row(x.len(), out.len());
    check_weights(x.len(), weights);
    (arch::kernels().q6k_best)(x, weights, out)
}

/// The body of [`quantize_row`] (lengths checked), compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_best_body<S: F32x8>(
    s: S,
    x: &[f32],
    weights: Option<&[f32]>,
    out: &mut [BlockQ6K],
) {
    for (bi, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
        let wb = weights.map(|w| &w[bi * QK_K..(bi + 1) * QK_K]);
        let start = match wb {
            Some(w) => quantize_block_ggml_weighted(s, xb, w),
            None => quantize_block_ref(s, xb),
        };
        let mut state = to_state(&start);
        // Without importance weights one round keeps most of the gain at a fraction of the cost
        // (the no-imatrix path of Q4_K_M/Q6_K must keep up with llama-quantize).
        let rounds = if wb.is_some() { refine::MAX_ROUNDS } else { 1 };
        refine::refine_symmetric(s, &FORMAT, xb, wb, &mut state, rounds);
        *b = from_state(&state);
    }
}

/// Dequantizes a row: x = d·sc·(q − 32) (`dequantize_row_q6_K`, same float operation order).
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize_row(blocks: &[BlockQ6K], out: &mut [f32]) {
    check_row(out.len(), blocks.len());
    for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        let l = unpack_codes(b);
        for (i, o) in y.iter_mut().enumerate() {
            *o = d * b.scales[i / 16] as f32 * (l[i] as i32 - 32) as f32;
        }
    }
}
