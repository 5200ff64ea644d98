//! Q3_K: 16 sub-blocks of 16 three-bit values with 6-bit signed sub-block scales and one f16
//! super-block scale; x = d·sc[j]·q, q in −4..=3 (llama.cpp `ggml-common.h` `block_q3_K`;
//! `ggml-quants.c` `quantize_row_q3_K_ref`, `quantize_row_q3_K_impl`, `dequantize_row_q3_K`).
//!
//! Layout: value v = 128h + 32s + i (h in 0..2, s in 0..4, i in 0..32) stores q + 4 as two low
//! bits (bits 2s..2s + 2 of `qs[32h + i]`) and a high bit (bit v / 32 of `hmask[v % 32]`).
//! The scales are packed by [`super::scales::set_scales_q3k`].
//!
//! Reference algorithm: per sub-block `make_q3_quants(nmax = 4)` (weights x², single-code
//! moves); the scale of largest magnitude maps to −32 (d = f16(max_scale/−32)); values
//! re-rounded against the stored d·sc. ingot's default refines ggml's result
//! ([`super::refine`]).

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::ggml_search::{make_q3_quants, make_qx_quants};
use super::lanes::F32x8;
use super::refine::{self, SymmetricFormat, SymmetricState};
use super::scales::{get_scales_q3k, set_scales_q3k};
use super::{arch, check_row, check_weights, nearest_int};
use crate::blocks::QK_K;

/// Q3_K: 16 sub-blocks of 16 three-bit values, 6-bit signed scales packed in 12 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ3K {
    /// High bits of the quants.
    pub hmask: [u8; QK_K / 8],
    /// Low two bits of the quants.
    pub qs: [u8; QK_K / 4],
    /// 6-bit scales, packed.
    pub scales: [u8; 12],
    /// Super-block scale.
    pub d: f16,
}

const _: () = assert!(size_of::<BlockQ3K>() == 110);

const FORMAT: SymmetricFormat = SymmetricFormat {
    sub_len: 16,
    qmin: -4,
    qmax: 3,
    scmin: -32,
    scmax: 31,
    scale_offsets: &[0, -1, 1, -2, 2, -3, 3, -4, 4, -6, 6],
};

/// Packs codes (0..=7, i.e. q + 4), packed scales and d into a block.
#[inline(always)]
fn pack(d: f16, scales: [u8; 12], l: &[u8; QK_K]) -> BlockQ3K {
    let mut b = BlockQ3K {
        hmask: [0; QK_K / 8],
        qs: [0; QK_K / 4],
        scales,
        d,
    };
    let mut low = [0u8; QK_K];
    for (v, &c) in l.iter().enumerate() {
        if c > 3 {
            b.hmask[v % 32] |= 1 << (v / 32);
        }
        low[v] = c & 3;
    }
    for h in 0..2 {
        for i in 0..32 {
            let v = |s: usize| low[128 * h + 32 * s + i];
            b.qs[32 * h + i] = v(0) | (v(1) << 2) | (v(2) << 4) | (v(3) << 6);
        }
    }
    b
}

/// The codes q + 4 (0..=7) of a block, in value order.
#[inline(always)]
fn unpack_codes(b: &BlockQ3K) -> [u8; QK_K] {
    std::array::from_fn(|v| {
        let (h, s, i) = (v / 128, (v / 32) % 4, v % 32);
        let low = (b.qs[32 * h + i] >> (2 * s)) & 3;
        let high = (b.hmask[v % 32] >> (v / 32)) & 1;
        low | (high << 2)
    })
}

/// Re-rounds every value against the stored d and packed scales, as ggml does.
#[inline(always)]
fn requantize(x: &[f32], b_d: f16, packed: &[u8; 12], l: &mut [u8; QK_K]) {
    let sc = get_scales_q3k(packed);
    let d_all = b_d.to_f32();
    for j in 0..16 {
        let d = d_all * sc[j] as f32;
        if d == 0.0 {
            continue;
        }
        for i in 16 * j..16 * j + 16 {
            l[i] = (nearest_int(x[i] / d).clamp(-4, 3) + 4) as u8;
        }
    }
}

#[inline(always)]
fn quantize_block_ref(x: &[f32]) -> BlockQ3K {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 16];
    let mut max_scale = 0.0f32;
    let mut amax = 0.0f32;
    for j in 0..16 {
        scales[j] = make_q3_quants(4, &x[16 * j..16 * j + 16], &mut l[16 * j..16 * j + 16]);
        if scales[j].abs() > amax {
            amax = scales[j].abs();
            max_scale = scales[j];
        }
    }
    let (d, packed) = if max_scale != 0.0 {
        let iscale = -32.0f32 / max_scale;
        let biased: [u8; 16] = std::array::from_fn(|j| {
            // ggml: int8_t l = nearest_int(..); l = MAX(-32, MIN(31, l)) + 32.
            ((nearest_int(iscale * scales[j]) as i8).clamp(-32, 31) + 32) as u8
        });
        (f16::from_f32(1.0 / iscale), set_scales_q3k(&biased))
    } else {
        (f16::from_f32(0.0), [0u8; 12])
    };
    requantize(x, d, &packed, &mut l);
    pack(d, packed, &l)
}

/// ggml's importance-weighted algorithm (`quantize_row_q3_K_impl`).
#[inline(always)]
fn quantize_block_ggml_weighted(x: &[f32], qw: &[f32]) -> BlockQ3K {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 16];
    let mut sw = [0f32; 16];
    let mut sumx2 = 0.0f32;
    for &v in &x[..QK_K] {
        sumx2 += v * v;
    }
    let sigma2 = 2.0 * sumx2 / QK_K as f32;
    let mut weight = [0f32; 16];
    for j in 0..16 {
        let xs = &x[16 * j..16 * j + 16];
        for i in 0..16 {
            weight[i] = qw[16 * j + i] * (sigma2 + xs[i] * xs[i]).sqrt();
        }
        let mut sumw = 0.0f32;
        for &w in &weight {
            sumw += w;
        }
        sw[j] = sumw;
        scales[j] = make_qx_quants(4, xs, &mut l[16 * j..16 * j + 16], Some(&weight));
    }
    let mut ls = [0u8; 16];
    let d_block = make_qx_quants(32, &scales, &mut ls, Some(&sw));
    let packed = set_scales_q3k(&ls);
    let d = f16::from_f32(d_block);
    requantize(x, d, &packed, &mut l);
    pack(d, packed, &l)
}

/// Quantizes a row with ggml's reference algorithm (`quantize_row_q3_K_ref`), bit for bit.
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_row_ref(x: &[f32], out: &mut [BlockQ3K]) {
    check_row(x.len(), out.len());
    (arch::kernels().q3k_ref)(x, out)
}

/// The body of [`quantize_row_ref`] (lengths checked), compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_ref_body<S: F32x8>(_s: S, x: &[f32], out: &mut [BlockQ3K]) {
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        *b = quantize_block_ref(xb);
    }
}

/// Quantizes a row with llama.cpp's importance-weighted algorithm
/// (`quantize_row_q3_K_impl`, what `llama-quantize --imatrix` runs), so files can be
/// reproduced; [`quantize_row`] with the same weights is at least as accurate.
///
/// # Panics
/// If `x.len() != out.len() * 256` or `weights.len() != x.len()`.
pub fn quantize_row_ggml_weighted(x: &[f32], weights: &[f32], out: &mut [BlockQ3K]) {
    check_row(x.len(), out.len());
    check_weights(x.len(), Some(weights));
    for (bi, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
        *b = quantize_block_ggml_weighted(xb, &weights[bi * QK_K..(bi + 1) * QK_K]);
    }
}

/// ingot's Q3_K quantizer: with `Some(weights)` it minimises Σ w·(x − x̂)² per block, with
/// `None` the plain squared error; it starts from ggml's result for the same mode and only
/// accepts improvements (see [`super::refine`]).
///
/// # Panics
/// If `x.len() != out.len() * 256` or the weights have a different length than `x`.
pub fn quantize_row(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ3K]) {
    check_row(x.len(), out.len());
    check_weights(x.len(), weights);
    (arch::kernels().q3k_best)(x, weights, out)
}

/// The body of [`quantize_row`] (lengths checked), compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_best_body<S: F32x8>(
    s: S,
    x: &[f32],
    weights: Option<&[f32]>,
    out: &mut [BlockQ3K],
) {
    for (bi, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
        let wb = weights.map(|w| &w[bi * QK_K..(bi + 1) * QK_K]);
        let start = match wb {
            Some(w) => quantize_block_ggml_weighted(xb, w),
            None => quantize_block_ref(xb),
        };
        let l = unpack_codes(&start);
        let sc = get_scales_q3k(&start.scales);
        let mut st = SymmetricState::<16> {
            d: start.d.to_f32(),
            sc: std::array::from_fn(|j| sc[j] as i32),
            q: std::array::from_fn(|i| l[i] as i32 - 4),
        };
        refine::refine_symmetric(s, &FORMAT, xb, wb, &mut st, refine::MAX_ROUNDS);
        let biased: [u8; 16] = std::array::from_fn(|j| (st.sc[j] + 32) as u8);
        let l: [u8; QK_K] = std::array::from_fn(|i| (st.q[i] + 4) as u8);
        *b = pack(f16::from_f32(st.d), set_scales_q3k(&biased), &l);
    }
}

/// Dequantizes a row: x = (d·sc)·q (`dequantize_row_q3_K`, same operation order).
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize_row(blocks: &[BlockQ3K], out: &mut [f32]) {
    check_row(out.len(), blocks.len());
    for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d_all = b.d.to_f32();
        let sc = get_scales_q3k(&b.scales);
        let l = unpack_codes(b);
        for j in 0..16 {
            let dl = d_all * sc[j] as f32;
            for i in 16 * j..16 * j + 16 {
                y[i] = dl * (l[i] as i32 - 4) as f32;
            }
        }
    }
}
