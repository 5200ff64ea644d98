//! Q2_K: 16 sub-blocks of 16 two-bit values; x = d·sc[j]·q − dmin·m[j] with 4-bit sc (low
//! nibble of `scales[j]`) and m (high nibble) and f16 d, dmin (llama.cpp `ggml-common.h`
//! `block_q2_K`; `ggml-quants.c` `quantize_row_q2_K_ref`, `quantize_row_q2_K_impl`,
//! `dequantize_row_q2_K`).
//!
//! Layout: value 128h + 32s + i (h in 0..2, s in 0..4, i in 0..32) is bits 2s..2s + 2 of
//! `qs[32h + i]`. Sub-block j covers values 16j..16j + 16.
//!
//! Reference algorithm: per sub-block `make_qkx2_quants(nmax = 3, rmin = −0.5, rdelta = 0.1,
//! nstep = 15, use_mad)` with weights |x|; the largest scale and min each map to 15; values
//! re-rounded against the stored factors. ingot's default starts from ggml's result for the
//! same mode and refines it ([`super::refine`]).

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::ggml_search::{make_qkx2_quants, make_qkx3_quants, make_qp_quants, AffineSearch};
use super::lanes::F32x8;
use super::refine::{self, AffineFormat, AffineState};
use super::{arch, check_row, check_weights, nearest_int};
use crate::blocks::QK_K;

/// Q2_K: 16 sub-blocks of 16 two-bit values, 4-bit scales and mins, f16 super scales.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct BlockQ2K {
    /// Sub-block scales (low nibble) and mins (high nibble).
    pub scales: [u8; QK_K / 16],
    /// Two-bit quants.
    pub qs: [u8; QK_K / 4],
    /// Super-block scale for the scales.
    pub d: f16,
    /// Super-block scale for the mins.
    pub dmin: f16,
}

const _: () = assert!(size_of::<BlockQ2K>() == 84);

const FORMAT: AffineFormat = AffineFormat {
    sub_len: 16,
    qmax: 3,
    lmax: 15,
    scale_offsets: &[0, -1, 1, -2, 2, -3, 3],
    min_offsets: &[0, -1, 1, -2, 2],
};

#[inline(always)]
fn pack(d: f16, dmin: f16, scales: &[u8; 16], l: &[u8; QK_K]) -> BlockQ2K {
    let mut b = BlockQ2K {
        scales: *scales,
        qs: [0; QK_K / 4],
        d,
        dmin,
    };
    for h in 0..2 {
        for i in 0..32 {
            let v = |s: usize| l[128 * h + 32 * s + i];
            b.qs[32 * h + i] = v(0) | (v(1) << 2) | (v(2) << 4) | (v(3) << 6);
        }
    }
    b
}

#[inline(always)]
fn unpack_codes(b: &BlockQ2K) -> [u8; QK_K] {
    std::array::from_fn(|idx| {
        let (h, s, i) = (idx / 128, (idx / 32) % 4, idx % 32);
        (b.qs[32 * h + i] >> (2 * s)) & 3
    })
}

/// Re-rounds every value against the stored factors and 4-bit scales, as ggml does.
#[inline(always)]
fn requantize(x: &[f32], d: f16, dmin: f16, scales: &[u8; 16], l: &mut [u8; QK_K]) {
    let (d, dmin) = (d.to_f32(), dmin.to_f32());
    for j in 0..16 {
        let dj = d * (scales[j] & 0xF) as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin * (scales[j] >> 4) as f32;
        for i in 16 * j..16 * j + 16 {
            l[i] = nearest_int((x[i] + dm) / dj).clamp(0, 3) as u8;
        }
    }
}

#[inline(always)]
fn quantize_block_ref(x: &[f32]) -> BlockQ2K {
    const Q4SCALE: f32 = 15.0;
    let search = AffineSearch {
        rmin: -0.5,
        rdelta: 0.1,
        nstep: 15,
        use_mad: true,
    };
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 16];
    let mut mins = [0f32; 16];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    let mut weights = [0f32; 16];
    for j in 0..16 {
        let xs = &x[16 * j..16 * j + 16];
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = v.abs();
        }
        (scales[j], mins[j]) =
            make_qkx2_quants(3, xs, &weights, &mut l[16 * j..16 * j + 16], search);
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let mut sc = [0u8; 16];
    let d = if max_scale > 0.0 {
        let iscale = Q4SCALE / max_scale;
        for j in 0..16 {
            // ggml stores the int into a uint8_t: eight-bit truncation is the reference.
            sc[j] = nearest_int(iscale * scales[j]) as u8;
        }
        f16::from_f32(max_scale / Q4SCALE)
    } else {
        f16::from_f32(0.0)
    };
    let dmin = if max_min > 0.0 {
        let iscale = Q4SCALE / max_min;
        for j in 0..16 {
            sc[j] |= (nearest_int(iscale * mins[j]) << 4) as u8;
        }
        f16::from_f32(max_min / Q4SCALE)
    } else {
        f16::from_f32(0.0)
    };
    requantize(x, d, dmin, &sc, &mut l);
    pack(d, dmin, &sc, &l)
}

/// ggml's importance-weighted algorithm (`quantize_row_q2_K_impl`).
#[inline(always)]
fn quantize_block_ggml_weighted(x: &[f32], qw: &[f32]) -> BlockQ2K {
    let search = AffineSearch {
        rmin: -0.9,
        rdelta: 0.05,
        nstep: 36,
        use_mad: false,
    };
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 16];
    let mut mins = [0f32; 16];
    let mut sw = [0f32; 16];
    let mut sumx2 = 0.0f32;
    for &v in &x[..QK_K] {
        sumx2 += v * v;
    }
    let sigma2 = sumx2 / QK_K as f32;
    let mut weights = [0f32; 16];
    for j in 0..16 {
        let xs = &x[16 * j..16 * j + 16];
        for i in 0..16 {
            weights[i] = qw[16 * j + i] * (sigma2 + xs[i] * xs[i]).sqrt();
        }
        for &w in &weights {
            sw[j] += w;
        }
        (scales[j], mins[j]) =
            make_qkx3_quants(3, xs, &weights, &mut l[16 * j..16 * j + 16], search);
    }
    let mut ls = [0u8; 16];
    let mut lm = [0u8; 16];
    let dm = make_qp_quants(15, &scales, &mut ls, &sw);
    let mm = make_qp_quants(15, &mins, &mut lm, &sw);
    let d = f16::from_f32(dm);
    let dmin = f16::from_f32(mm);
    let sc: [u8; 16] = std::array::from_fn(|j| ls[j] | (lm[j] << 4));
    requantize(x, d, dmin, &sc, &mut l);
    pack(d, dmin, &sc, &l)
}

/// Quantizes a row with ggml's reference algorithm (`quantize_row_q2_K_ref`), bit for bit.
///
/// # Panics
/// If `x.len() != out.len() * 256`.
pub fn quantize_row_ref(x: &[f32], out: &mut [BlockQ2K]) {
    check_row(x.len(), out.len());
    (arch::kernels().q2k_ref)(x, out)
}

/// The body of [`quantize_row_ref`] (lengths checked), compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_ref_body<S: F32x8>(_s: S, x: &[f32], out: &mut [BlockQ2K]) {
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        *b = quantize_block_ref(xb);
    }
}

/// Quantizes a row with llama.cpp's importance-weighted algorithm
/// (`quantize_row_q2_K_impl`, what `llama-quantize --imatrix` runs), so files can be
/// reproduced; [`quantize_row`] with the same weights is at least as accurate.
///
/// # Panics
/// If `x.len() != out.len() * 256` or `weights.len() != x.len()`.
pub fn quantize_row_ggml_weighted(x: &[f32], weights: &[f32], out: &mut [BlockQ2K]) {
    check_row(x.len(), out.len());
    check_weights(x.len(), Some(weights));
    for (bi, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
        *b = quantize_block_ggml_weighted(xb, &weights[bi * QK_K..(bi + 1) * QK_K]);
    }
}

/// ingot's Q2_K quantizer: with `Some(weights)` it minimises Σ w·(x − x̂)² per block, with
/// `None` the plain squared error; it starts from ggml's result for the same mode and only
/// accepts improvements (see [`super::refine`]).
///
/// # Panics
/// If `x.len() != out.len() * 256` or the weights have a different length than `x`.
pub fn quantize_row(x: &[f32], weights: Option<&[f32]>, out: &mut [BlockQ2K]) {
    check_row(x.len(), out.len());
    check_weights(x.len(), weights);
    (arch::kernels().q2k_best)(x, weights, out)
}

/// The body of [`quantize_row`] (lengths checked), compiled per instruction-set level.
#[inline(always)]
pub(crate) fn row_best_body<S: F32x8>(
    s: S,
    x: &[f32],
    weights: Option<&[f32]>,
    out: &mut [BlockQ2K],
) {
    for (bi, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
        let wb = weights.map(|w| &w[bi * QK_K..(bi + 1) * QK_K]);
        let start = match wb {
            Some(w) => quantize_block_ggml_weighted(xb, w),
            None => quantize_block_ref(xb),
        };
        let l = unpack_codes(&start);
        let mut st = AffineState::<16> {
            d: start.d.to_f32(),
            dmin: start.dmin.to_f32(),
            ls: std::array::from_fn(|j| (start.scales[j] & 0xF) as i32),
            lm: std::array::from_fn(|j| (start.scales[j] >> 4) as i32),
            q: std::array::from_fn(|i| l[i] as i32),
        };
        refine::refine_affine::<_, 16, 16>(s, &FORMAT, xb, wb, &mut st, refine::MAX_ROUNDS);
        let sc: [u8; 16] = std::array::from_fn(|j| (st.ls[j] | (st.lm[j] << 4)) as u8);
        let l: [u8; QK_K] = std::array::from_fn(|i| st.q[i] as u8);
        *b = pack(f16::from_f32(st.d), f16::from_f32(st.dmin), &sc, &l);
    }
}

/// Dequantizes a row: x = (d·sc)·q − (dmin·m) (`dequantize_row_q2_K`, same operation order).
///
/// # Panics
/// If `out.len() != blocks.len() * 256`.
pub fn dequantize_row(blocks: &[BlockQ2K], out: &mut [f32]) {
    check_row(out.len(), blocks.len());
    for (b, y) in blocks.iter().zip(out.chunks_exact_mut(QK_K)) {
        let d = b.d.to_f32();
        let min = b.dmin.to_f32();
        let l = unpack_codes(b);
        for j in 0..16 {
            let sc = b.scales[j];
            let dl = d * (sc & 0xF) as f32;
            let ml = min * (sc >> 4) as f32;
            for i in 16 * j..16 * j + 16 {
                y[i] = dl * l[i] as f32 - ml;
            }
        }
    }
}
