//! The quantization steps Q4_K and Q5_K share: eight sub-blocks of 32 values, x̂ = d·ls·q −
//! dmin·lm with 6-bit ls, lm packed by [`set_scale_min_k4`]. Only the code width (4 or 5 bits)
//! and ggml's search constants differ (llama.cpp `ggml-quants.c`: `quantize_row_q4_K_ref`,
//! `quantize_row_q5_K_ref`, `quantize_row_q4_K_impl`, `quantize_row_q5_K_impl`).

use half::f16;

use super::ggml_search::{make_qkx2_quants, make_qkx3_quants, make_qp_quants, AffineSearch};
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

/// ggml's reference algorithm: `make_qkx2_quants` per sub-block with weights
/// av_x + |x| (av_x the sub-block's RMS), the largest scale and min each mapped to 63.
pub(crate) fn quantize_ref(x: &[f32], nmax: i32, search: AffineSearch) -> Affine6 {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let mut max_scale = 0.0f32;
    let mut max_min = 0.0f32;
    let mut weights = [0f32; 32];
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        let mut sum_x2 = 0.0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = (sum_x2 / 32.0).sqrt();
        for (w, &v) in weights.iter_mut().zip(xs) {
            *w = av_x + v.abs();
        }
        let (s, m) = make_qkx2_quants(nmax, xs, &weights, &mut l[32 * j..32 * j + 32], search);
        scales[j] = s;
        mins[j] = m;
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
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
        l,
    };
    requantize(x, nmax, &mut b);
    b
}

/// ggml's importance-weighted algorithm (`quantize_row_q{4,5}_K_impl`): weights
/// qw·sqrt(σ² + x²) with σ² = 2·mean(x²), `make_qkx3_quants` per sub-block, the eight scales
/// and eight mins each quantized to 6 bits by `make_qp_quants` weighted by the sub-block weight
/// sums.
pub(crate) fn quantize_ggml_weighted(x: &[f32], qw: &[f32], nmax: i32) -> Affine6 {
    let mut l = [0u8; QK_K];
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let mut sw = [0f32; 8];
    let mut sum_x2 = 0.0f32;
    for &v in &x[..QK_K] {
        sum_x2 += v * v;
    }
    let sigma2 = 2.0 * sum_x2 / QK_K as f32;
    let mut weights = [0f32; 32];
    let search = AffineSearch {
        rmin: -0.9,
        rdelta: 0.05,
        nstep: 36,
        use_mad: false,
    };
    for j in 0..8 {
        let xs = &x[32 * j..32 * j + 32];
        for i in 0..32 {
            weights[i] = qw[32 * j + i] * (sigma2 + xs[i] * xs[i]).sqrt();
        }
        let mut sumw = 0.0f32;
        for &w in &weights {
            sumw += w;
        }
        sw[j] = sumw;
        (scales[j], mins[j]) =
            make_qkx3_quants(nmax, xs, &weights, &mut l[32 * j..32 * j + 32], search);
    }
    let mut ls = [0u8; 8];
    let mut lm = [0u8; 8];
    let d_block = make_qp_quants(63, &scales, &mut ls, &sw);
    let m_block = make_qp_quants(63, &mins, &mut lm, &sw);
    let mut b = Affine6 {
        d: f16::from_f32(d_block),
        dmin: f16::from_f32(m_block),
        scales: set_scale_min_k4(&ls, &lm),
        l,
    };
    requantize(x, nmax, &mut b);
    b
}

/// ingot's search: ggml's result for the same mode, improved by [`refine::refine_affine`] on
/// Σ w·(x − x̂)² (w = 1 without weights).
pub(crate) fn quantize_best(
    x: &[f32],
    w: Option<&[f32]>,
    nmax: i32,
    ref_search: AffineSearch,
) -> Affine6 {
    let start = match w {
        Some(w) => quantize_ggml_weighted(x, w, nmax),
        None => quantize_ref(x, nmax, ref_search),
    };
    let mut st = AffineState::<8> {
        d: start.d.to_f32(),
        dmin: start.dmin.to_f32(),
        ls: std::array::from_fn(|j| get_scale_min_k4(j, &start.scales).0 as i32),
        lm: std::array::from_fn(|j| get_scale_min_k4(j, &start.scales).1 as i32),
        q: std::array::from_fn(|i| start.l[i] as i32),
    };
    let fmt = AffineFormat {
        sub_len: 32,
        qmax: nmax,
        lmax: 63,
    };
    refine::refine_affine(&fmt, x, w, &mut st);
    let ls: [u8; 8] = std::array::from_fn(|j| st.ls[j] as u8);
    let lm: [u8; 8] = std::array::from_fn(|j| st.lm[j] as u8);
    Affine6 {
        d: f16::from_f32(st.d),
        dmin: f16::from_f32(st.dmin),
        scales: set_scale_min_k4(&ls, &lm),
        l: std::array::from_fn(|i| st.q[i] as u8),
    }
}
