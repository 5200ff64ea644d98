//! The quantization steps Q4_K and Q5_K share: eight sub-blocks of 32 values, x̂ = d·ls·q −
//! dmin·lm with 6-bit ls, lm packed by [`set_scale_min_k4`]. Only the code width (4 or 5 bits)
//! and ggml's search constants differ (llama.cpp `ggml-quants.c`: `quantize_row_q4_K_ref`,
//! `quantize_row_q5_K_ref`, `quantize_row_q4_K_impl`, `quantize_row_q5_K_impl`).

use half::f16;

use super::ggml_search::{make_qp_quants, AffineSearch};
use super::lanes::{self, F32x8};
use super::nearest_int;
use super::refine::{self, AffineFormat, AffineState};
use super::scales::{get_scale_min_k4, set_scale_min_k4};
use crate::blocks::{K_SCALE_SIZE, QK_K};

/// Super-block factors, packed scales and per-value codes (0..=nmax) of one block, before the
/// codes are bit-packed by the type module.
#[derive(Clone, Debug)]
pub(crate) struct Affine6 {
    pub d: f16,
    pub dmin: f16,
    pub scales: [u8; K_SCALE_SIZE],
    pub l: [u8; QK_K],
}

/// Re-rounds every value against the stored (f16) factors and packed 6-bit scales, as ggml does
/// after choosing them (sub-blocks whose scale is zero keep the codes of the search).
#[inline(always)]
fn requantize(x: &[f32], nmax: i32, b: &mut Affine6) {
    let d = b.d.to_f32();
    let dmin = b.dmin.to_f32();
    for j in 0..QK_K / 32 {
        let (sc, m) = get_scale_min_k4(j, &b.scales);
        let dj = d * sc as f32;
        if dj == 0.0 {
            continue;
        }
        let dm = dmin * m as f32;
        for i in 32 * j..32 * j + 32 {
            b.l[i] = nearest_int((x[i] + dm) / dj).clamp(0, nmax) as u8;
        }
    }
}

/// The codes of a lane search (`lt[i][k]`, value `i` of sub-block `k`) in value order.
#[inline(always)]
fn codes_from_lanes(lt: &[[f32; 8]; 32]) -> [u8; QK_K] {
    let mut l = [0u8; QK_K];
    for k in 0..8 {
        for i in 0..32 {
            l[32 * k + i] = lt[i][k] as u8;
        }
    }
    l
}

/// ggml's reference algorithm: `make_qkx2_quants` per sub-block with weights
/// av_x + |x| (av_x the sub-block's RMS), the largest scale and min each mapped to 63. The
/// eight sub-blocks are searched together, one per lane ([`lanes::affine_search`]).
#[inline(always)]
pub(crate) fn quantize_ref<S: F32x8>(s: S, x: &[f32], nmax: i32, search: AffineSearch) -> Affine6 {
    let xt = lanes::transpose_in::<8, 32>(x);
    let mut sum_x2 = [0f32; 8];
    for row in &xt {
        for k in 0..8 {
            sum_x2[k] += row[k] * row[k];
        }
    }
    let av_x: [f32; 8] = std::array::from_fn(|k| (sum_x2[k] / 32.0).sqrt());
    let mut wt = [[0f32; 8]; 32];
    for i in 0..32 {
        for k in 0..8 {
            wt[i][k] = av_x[k] + xt[i][k].abs();
        }
    }
    let mut lt = [[0f32; 8]; 32];
    let fit = lanes::affine_search::<S, 32, false>(s, nmax, &xt, &wt, &mut lt, search);
    let (scales, mins) = (fit.scale, fit.the_min);
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    for j in 0..8 {
        if scales[j] > max_scale {
            max_scale = scales[j];
        }
        if mins[j] > max_min {
            max_min = mins[j];
        }
    }
    let inv_scale = if max_scale > 0.0 {
        63.0 / max_scale
    } else {
        0.0
    };
    let inv_min = if max_min > 0.0 { 63.0 / max_min } else { 0.0 };
    // ggml stores nearest_int(..) in a uint8_t and then takes MIN(63, ..): the truncation to
    // eight bits is part of the reference behaviour.
    let ls: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_scale * scales[j]) as u8).min(63));
    let lm: [u8; 8] = std::array::from_fn(|j| (nearest_int(inv_min * mins[j]) as u8).min(63));
    let mut b = Affine6 {
        d: f16::from_f32(max_scale / 63.0),
        dmin: f16::from_f32(max_min / 63.0),
        scales: set_scale_min_k4(&ls, &lm),
        l: codes_from_lanes(&lt),
    };
    requantize(x, nmax, &mut b);
    b
}

/// ggml's importance-weighted algorithm (`quantize_row_q{4,5}_K_impl`): weights
/// qw·sqrt(σ² + x²) with σ² = 2·mean(x²), `make_qkx3_quants` per sub-block (all eight in
/// lanes), the eight scales and eight mins each quantized to 6 bits by `make_qp_quants`
/// weighted by the sub-block weight sums.
#[inline(always)]
pub(crate) fn quantize_ggml_weighted<S: F32x8>(s: S, x: &[f32], qw: &[f32], nmax: i32) -> Affine6 {
    let mut sum_x2 = 0.0f32;
    for &v in &x[..QK_K] {
        sum_x2 += v * v;
    }
    let sigma2 = 2.0 * sum_x2 / QK_K as f32;
    let search = AffineSearch {
        rmin: -0.9,
        rdelta: 0.05,
        nstep: 36,
        use_mad: false,
    };
    let xt = lanes::transpose_in::<8, 32>(x);
    let qwt = lanes::transpose_in::<8, 32>(qw);
    let mut wt = [[0f32; 8]; 32];
    for i in 0..32 {
        for k in 0..8 {
            wt[i][k] = qwt[i][k] * (sigma2 + xt[i][k] * xt[i][k]).sqrt();
        }
    }
    let mut sw = [0f32; 8];
    for row in &wt {
        for k in 0..8 {
            sw[k] += row[k];
        }
    }
    let mut lt = [[0f32; 8]; 32];
    let fit = lanes::affine_search::<S, 32, false>(s, nmax, &xt, &wt, &mut lt, search);
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    let d_block = make_qp_quants(63, &fit.scale, &mut ls, &sw);
    let m_block = make_qp_quants(63, &fit.the_min, &mut lm, &sw);
    let mut b = Affine6 {
        d: f16::from_f32(d_block),
        dmin: f16::from_f32(m_block),
        scales: set_scale_min_k4(&ls, &lm),
        l: codes_from_lanes(&lt),
    };
    requantize(x, nmax, &mut b);
    b
}

/// ingot's search: ggml's result for the same mode, improved by [`refine::refine_affine`] on
/// Σ w·(x − x̂)² (w = 1 without weights).
#[inline(always)]
pub(crate) fn quantize_best<S: F32x8>(
    s: S,
    x: &[f32],
    w: Option<&[f32]>,
    nmax: i32,
    ref_search: AffineSearch,
) -> Affine6 {
    let start = match w {
        Some(w) => quantize_ggml_weighted(s, x, w, nmax),
        None => quantize_ref(s, x, nmax, ref_search),
    };
    let mut st = AffineState::<8> {
        d: start.d.to_f32(),
        dmin: start.dmin.to_f32(),
        ls: std::array::from_fn(|j| get_scale_min_k4(j, &start.scales).0 as i32),
        lm: std::array::from_fn(|j| get_scale_min_k4(j, &start.scales).1 as i32),
        q: start.l.map(i32::from),
    };
    let fmt = AffineFormat {
        sub_len: 32,
        qmax: nmax,
        lmax: 63,
        // Wider windows lower the error further (Q4_K with ±4 × ±2: ratio 0.917) at a
        // proportional cost; Q4_K, the most used type, keeps a window that stays faster than
        // candle's imatrix quantizer, Q5_K takes the wide one.
        scale_offsets: if nmax > 15 {
            &[0, -1, 1, -2, 2, -3, 3, -4, 4]
        } else {
            &[0, -1, 1, -2, 2]
        },
        min_offsets: if nmax > 15 {
            &[0, -1, 1, -2, 2]
        } else {
            &[0, -1, 1]
        },
    };
    // Without importance weights one round keeps most of the gain at a fraction of the cost
    // (the no-imatrix path of Q4_K_M must keep up with llama-quantize).
    let rounds = if w.is_some() { refine::MAX_ROUNDS } else { 1 };
    refine::refine_affine::<_, 8, 32>(s, &fmt, x, w, &mut st, rounds);
    let ls: [u8; 8] = std::array::from_fn(|j| st.ls[j] as u8);
    let lm: [u8; 8] = std::array::from_fn(|j| st.lm[j] as u8);
    Affine6 {
        d: f16::from_f32(st.d),
        dmin: f16::from_f32(st.dmin),
        scales: set_scale_min_k4(&ls, &lm),
        l: st.q.map(|q| q as u8),
    }
}

/// What distinguishes Q4_K from Q5_K: the code width, ggml's reference search constants and the
/// bit packing of the codes.
pub(crate) trait Affine6Block: Sized {
    /// Largest code (15 or 31).
    const NMAX: i32;
    /// ggml's `make_qkx2_quants` parameters for the reference quantizer.
    const REF_SEARCH: AffineSearch;
    /// Packs a quantized block.
    fn pack(a: &Affine6) -> Self;
}

/// Row body of the reference quantizer (lengths checked by the caller).
#[inline(always)]
pub(crate) fn row_ref<S: F32x8, B: Affine6Block>(s: S, x: &[f32], out: &mut [B]) {
    for (b, xb) in out.iter_mut().zip(x.chunks_exact(QK_K)) {
        *b = B::pack(&quantize_ref(s, xb, B::NMAX, B::REF_SEARCH));
    }
}

/// Row body of llama.cpp's importance-weighted quantizer (lengths checked by the caller).
#[inline(always)]
pub(crate) fn row_ggml_weighted<S: F32x8, B: Affine6Block>(
    s: S,
    x: &[f32],
    w: &[f32],
    out: &mut [B],
) {
    for ((b, xb), wb) in out
        .iter_mut()
        .zip(x.chunks_exact(QK_K))
        .zip(w.chunks_exact(QK_K))
    {
        *b = B::pack(&quantize_ggml_weighted(s, xb, wb, B::NMAX));
    }
}

/// Row body of ingot's quantizer (lengths checked by the caller).
#[inline(always)]
pub(crate) fn row_best<S: F32x8, B: Affine6Block>(
    s: S,
    x: &[f32],
    w: Option<&[f32]>,
    out: &mut [B],
) {
    for (bi, (b, xb)) in out.iter_mut().zip(x.chunks_exact(QK_K)).enumerate() {
        let wb = w.map(|w| &w[bi * QK_K..(bi + 1) * QK_K]);
        *b = B::pack(&quantize_best(s, xb, wb, B::NMAX, B::REF_SEARCH));
    }
}
