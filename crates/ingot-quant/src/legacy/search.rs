//! Scale search for the legacy formats: ingot's quantizer behind every `quantize_row`.
//!
//! The objective, per 32-element block with importance weights w (all ones without an imatrix),
//! is the weighted squared error of what the file will really hold, f16 scales included:
//!
//! ```text
//! E = Σ_j w_j · (x_j − x̂_j)²,   x̂_j = d·L_j (type 0)   or   x̂_j = d·L_j + m (type 1)
//! ```
//!
//! The search is built to run in SIMD lanes: one lane per *candidate* in the first stage (so a
//! candidate's sums are accumulated element by element in its own lane, with no horizontal
//! reduction), one lane per *element* in the final stage.
//!
//! ```text
//! 1. candidates  c = 1..C: an inverse scale t_c (type 0: signed; type 1: with an origin lo_c)
//!    per element j, per lane c:  L = clamp(round(t_c·(x_j − lo_c)))
//!                                accumulate Σ w·x·L, Σ w·L² (type 1 also Σ w·L)
//!    per lane: the weighted least-squares fit for that assignment and its error
//!       type 0:  d = Σwxl / Σwll,               E = Σwx² − (Σwxl)² / Σwll
//!       type 1:  (d, m) from the 2×2 normal equations, E = Σwx² − d·Σwxl − m·Σwx
//! 2. the best lane's (d, m) → (type 1 only: Lloyd steps: nearest levels, refit)
//! 3. f16: the rounding of d (and m) and its neighbour on the other side of the exact value,
//!    each with its nearest-level assignment, scored by the error of the *stored* block;
//!    one refit for the winning assignment, scored again
//! 4. ggml's reference block for the same input is a candidate too, so ingot's block is never
//!    worse than the reference under the objective (row by row, and exactly 0 wherever the
//!    reference is exact)
//! ```
//!
//! **Type 0 (Q4_0, Q5_0; L ∈ [−n, n−1], n = 8 or 16)**: the candidates map the largest element
//! to level ∓k (both signs σ: onto the extra level −n, or onto n − 1), for k on a grid from
//! n − 1 to 1.5·n + 2, denser near n; k > n clips the largest element, which pays when its
//! weight is small. ggml's `make_qx_quants` tries 19 scales near k = n for one sign only.
//!
//! **Type 1 (Q4_1, Q5_1; L ∈ [0, n], n = 15 or 31)**: the candidates are t = (n + r)/(max − min)
//! with origin min (r from −1 to 1); with importance weights, also the range without the
//! single lowest or highest value (so a lightly weighted outlier can be clipped). Unlike ggml,
//! m is not forced to be ≤ 0, so blocks of positive values keep their offset.
//!
//! Rounding in the search stages is round-half-even through the 1.5·2²³ "magic" addition
//! (exact for |v| < 2²², and the clamp handles larger values); it only has to be consistent,
//! since every block is finally scored by the error it really stores.
//!
//! An earlier version swept the type-0 scale exhaustively (every breakpoint of every element,
//! sorted): on the golden rows it was ~2–4 % lower in error than this grid, at ~30× the cost.

// The lane loops index several fixed-size arrays by the same counter on purpose: that shape
// is what LLVM turns into whole-register operations.
#![allow(clippy::needless_range_loop)]

use crate::blocks::QK;
use crate::float::f32_to_f16_bits;

/// Candidates per group: one AVX-512 register (two AVX2 ones) of lanes.
pub(crate) const LANES: usize = 16;

/// Type-0 candidates with importance weights (half per sign).
pub(crate) const TYPE0_WEIGHTED: usize = 32;
/// Type-0 candidates for plain squared error.
pub(crate) const TYPE0_PLAIN: usize = 16;
/// Type-1 candidates with importance weights (half on the full range, a quarter clipping the
/// lowest value, a quarter the highest).
pub(crate) const TYPE1_WEIGHTED: usize = 32;
/// Type-1 candidates for plain squared error (full range only).
pub(crate) const TYPE1_PLAIN: usize = 16;

/// 1.5 · 2²³: adding and subtracting it rounds |v| < 2²² to the nearest integer (ties to even).
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Largest finite f16, used instead of an overflowing scale (an f16 infinity would dequantize
/// to inf/NaN).
const F16_MAX_BITS: u16 = 0x7BFF;

/// `max` as one `maxps` (the operands are never NaN where it is used for clamping).
#[inline(always)]
fn fmax(a: f32, b: f32) -> f32 {
    if a > b {
        a
    } else {
        b
    }
}

/// `min` as one `minps`.
#[inline(always)]
fn fmin(a: f32, b: f32) -> f32 {
    if a < b {
        a
    } else {
        b
    }
}

/// Nearest integer (ties to even) of |v| < 2²² in two additions; larger values stay large.
#[inline(always)]
fn round_fast(v: f32) -> f32 {
    (v + ROUND_MAGIC) - ROUND_MAGIC
}

/// Exact f16 → f32 (finite values only: the search never produces inf/NaN bits).
#[inline(always)]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    // f16 exponent and mantissa shifted into f32's fields, then scaled by 2^(127 − 15):
    // exact for normal and subnormal f16 values.
    let sign = u32::from(h & 0x8000) << 16;
    let v = f32::from_bits(u32::from(h & 0x7FFF) << 13) * f32::from_bits(0x7780_0000);
    f32::from_bits(v.to_bits() | sign)
}

/// The block weights to optimise for: the given ones, or `None` (plain squared error) when
/// there are none or when they carry no information (all zero in this block).
#[inline(always)]
pub(crate) fn block_weights(weights: Option<&[f32]>) -> Option<&[f32; QK]> {
    let w: &[f32; QK] = weights?.try_into().ok()?;
    let mut lanes = [0.0f32; 8];
    for c in w.chunks_exact(8) {
        for i in 0..8 {
            lanes[i] += c[i];
        }
    }
    (lanes.iter().sum::<f32>() > 0.0).then_some(w)
}

/// f16 candidates for an exact scale: its rounding, and the neighbour on the other side of
/// the exact value (the nearest f16 above or below it that the rounding is not). Overflow is
/// replaced by the largest finite f16.
#[inline(always)]
pub(crate) fn f16_pair(v: f32) -> [u16; 2] {
    let mut b = f32_to_f16_bits(v);
    let sign = b & 0x8000;
    if b & 0x7FFF > F16_MAX_BITS {
        b = sign | F16_MAX_BITS;
    }
    let mag = b & 0x7FFF;
    let rounded = f16_to_f32(b);
    // Away from zero if the rounding fell short of |v|, towards zero otherwise.
    let other = if rounded.abs() < v.abs() {
        (mag + 1).min(F16_MAX_BITS)
    } else {
        mag.saturating_sub(1)
    };
    [b, sign | other]
}

/// Σ of 16 lanes (fixed order).
#[inline(always)]
fn hsum(v: &[f32; LANES]) -> f32 {
    let mut h = [0.0f32; 8];
    for i in 0..8 {
        h[i] = v[i] + v[i + 8];
    }
    ((h[0] + h[4]) + (h[1] + h[5])) + ((h[2] + h[6]) + (h[3] + h[7]))
}

/// Maximum of G lanes (G a power of two, or a multiple of 16), folded in halves so it
/// vectorises.
#[inline(always)]
fn lane_max<const G: usize>(v: &[f32; G]) -> f32 {
    let mut m = [0.0f32; LANES];
    if G >= LANES {
        for h in 0..G / LANES {
            for i in 0..LANES {
                m[i] = fmax(m[i], v[h * LANES + i]);
            }
        }
    } else {
        m[..G].copy_from_slice(v);
    }
    let mut width = LANES.min(G) / 2;
    while width > 0 {
        for i in 0..width {
            m[i] = fmax(m[i], m[i + width]);
        }
        width /= 2;
    }
    m[0]
}

/// Weight of element j: 1 for plain squared error.
#[inline(always)]
fn wt(w: Option<&[f32; QK]>, j: usize) -> f32 {
    match w {
        Some(w) => w[j],
        None => 1.0,
    }
}

/// Per-element levels as f32 (exact small integers): the form the lane loops work on.
type Levels = [f32; QK];

/// Weighted squared error Σ w (x − (d·L + m))² of levels L, summed in 16 lanes.
#[inline(always)]
fn error_of(x: &[f32; QK], w: Option<&[f32; QK]>, d: f32, m: f32, l: &Levels) -> f32 {
    let mut e = [0.0f32; LANES];
    for h in 0..QK / LANES {
        for i in 0..LANES {
            let j = h * LANES + i;
            let r = x[j] - (l[j] * d + m);
            e[i] += wt(w, j) * r * r;
        }
    }
    hsum(&e)
}

/// Nearest levels in [lo, hi] for a stored scale and min, and the stored block's error.
#[inline(always)]
fn assign(
    x: &[f32; QK],
    w: Option<&[f32; QK]>,
    d: f32,
    m: f32,
    (lo, hi): (f32, f32),
) -> (f32, Levels) {
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut l = [0.0f32; QK];
    let mut e = [0.0f32; LANES];
    for h in 0..QK / LANES {
        for i in 0..LANES {
            let j = h * LANES + i;
            let v = fmin(fmax(round_fast((x[j] - m) * id), lo), hi);
            l[j] = v;
            let r = x[j] - (v * d + m);
            e[i] += wt(w, j) * r * r;
        }
    }
    (hsum(&e), l)
}

/// Stored levels q = L + offset as bytes.
#[inline(always)]
fn to_bytes(l: &Levels, offset: f32) -> [u8; QK] {
    let mut q = [0u8; QK];
    for j in 0..QK {
        q[j] = super::trunc_u8(l[j] + offset);
    }
    q
}

/// Levels L = q − offset as f32.
#[inline(always)]
fn from_bytes(q: &[u8; QK], offset: f32) -> Levels {
    let mut l = [0.0f32; QK];
    for j in 0..QK {
        l[j] = f32::from(q[j]) - offset;
    }
    l
}

/// Grid positions u ∈ [0, 1] of the type-0 candidates: the first G/2 for one sign, the rest
/// for the other, each half denser near 0 (k ≈ n), where most blocks' best scale lies.
const fn type0_grid<const G: usize>() -> [f32; G] {
    let half = G / 2;
    let mut g = [0.0f32; G];
    let mut i = 0;
    while i < G {
        let u = (i % half) as f32 / (half - 1) as f32;
        g[i] = u * u;
        i += 1;
    }
    g
}

/// ingot's type-0 block: the best grid candidate (after f16 rounding) and the reference block
/// `reference` = (d bits, q), under the weights `w` (`None`: plain squared error). `G` is the
/// number of candidates (half per sign); (amax, max) are the block's largest magnitude and
/// the signed element reaching it ([`super::signed_absmax`]). Returns (d bits, q), q = L + n.
#[inline(always)]
pub(crate) fn quantize_type0<const G: usize>(
    x: &[f32; QK],
    w: Option<&[f32; QK]>,
    n: i32,
    (amax, max): (f32, f32),
    reference: (u16, [u8; QK]),
) -> (u16, [u8; QK]) {
    let nf = n as f32;
    let ref_levels = from_bytes(&reference.1, nf);
    let ref_err = error_of(x, w, f16_to_f32(reference.0), 0.0, &ref_levels);
    if ref_err == 0.0 {
        return reference;
    }
    let Some(d) = type0_grid_scale::<G>(x, w, n, (amax, max)) else {
        return reference;
    };
    let range = (-nf, nf - 1.0);
    let mut best = (reference.0, ref_levels);
    let mut best_err = ref_err;
    if !try_type0(x, w, range, d, &mut best, &mut best_err) {
        return reference;
    }
    // With importance weights, one refit for the assignment the rounded scale produced (for
    // plain error it gains ~0.3 % of error for ~25 % of the time: skipped).
    if w.is_some() {
        let (mut a, mut b) = ([0.0f32; LANES], [0.0f32; LANES]);
        for h in 0..QK / LANES {
            for i in 0..LANES {
                let j = h * LANES + i;
                let wl = wt(w, j) * best.1[j];
                a[i] += wl * x[j];
                b[i] += wl * best.1[j];
            }
        }
        let (sxl, sll) = (hsum(&a), hsum(&b));
        if sll > 0.0 {
            try_type0(x, w, range, sxl / sll, &mut best, &mut best_err);
        }
    }
    (best.0, to_bytes(&best.1, nf))
}

/// The first stage of [`quantize_type0`]: the grid candidate with the best least-squares fit
/// (first on ties) and its scale Σwxl / Σwll; `None` for a zero block or when no candidate
/// fits (every score ≤ 0). Shared with the batched AVX-512 kernel, which does the other
/// stages for 16 blocks at once.
#[inline(always)]
pub(crate) fn type0_grid_scale<const G: usize>(
    x: &[f32; QK],
    w: Option<&[f32; QK]>,
    n: i32,
    (amax, max): (f32, f32),
) -> Option<f32> {
    let nf = n as f32;
    if amax == 0.0 {
        return None;
    }
    let s = if max < 0.0 { -1.0f32 } else { 1.0 };
    // Signed inverse scales: the largest element at −k (σ = −s, k ∈ [n − 1, 1.5n + 2]) or at
    // +k (σ = s, k ∈ [n − 2, 1.5(n − 1) + 2]).
    let grid = const { type0_grid::<G>() };
    let inv_amax = 1.0 / amax;
    let mut ids = [0.0f32; G];
    for (i, id) in ids.iter_mut().enumerate() {
        let (sigma, k_lo, k_hi) = if i < G / 2 {
            (-s, nf - 1.0, 1.5 * nf + 2.0)
        } else {
            (s, nf - 2.0, 1.5 * (nf - 1.0) + 2.0)
        };
        *id = sigma * (k_lo + (k_hi - k_lo) * grid[i]) * inv_amax;
    }
    let range = (-nf, nf - 1.0);
    let mut sxl = [0.0f32; G];
    let mut sll = [0.0f32; G];
    for j in 0..QK {
        let xj = x[j];
        let wj = wt(w, j);
        let wxj = wj * xj;
        for c in 0..G {
            let l = fmin(fmax(round_fast(xj * ids[c]), range.0), range.1);
            sxl[c] += wxj * l;
            sll[c] += (wj * l) * l;
        }
    }
    // The best lane: scores sxl²/sll in lanes, their maximum, then the first lane reaching it.
    let mut score = [0.0f32; G];
    for c in 0..G {
        score[c] = if sll[c] > 0.0 {
            sxl[c] * sxl[c] / sll[c]
        } else {
            0.0
        };
    }
    let top = lane_max(&score);
    if top <= 0.0 {
        return None;
    }
    let mut hits = 0u64;
    for c in 0..G {
        hits |= u64::from(score[c] == top) << c;
    }
    let c = hits.trailing_zeros() as usize % G;
    Some(sxl[c] / sll[c])
}

/// ingot's fast type-0 block for plain squared error: the reference assignment's
/// least-squares scale Σxl/Σll, its f16 pair with nearest levels, or the reference block if
/// none is better. One Lloyd step from ggml's block for ~⅓ of the grid search's time.
#[inline(always)]
pub(crate) fn refine_type0(x: &[f32; QK], n: i32, reference: (u16, [u8; QK])) -> (u16, [u8; QK]) {
    let nf = n as f32;
    let l = from_bytes(&reference.1, nf);
    let ref_err = error_of(x, None, f16_to_f32(reference.0), 0.0, &l);
    if ref_err == 0.0 {
        return reference;
    }
    let (mut a, mut b) = ([0.0f32; LANES], [0.0f32; LANES]);
    for h in 0..QK / LANES {
        for i in 0..LANES {
            let j = h * LANES + i;
            a[i] += x[j] * l[j];
            b[i] += l[j] * l[j];
        }
    }
    let (sxl, sll) = (hsum(&a), hsum(&b));
    if sll <= 0.0 {
        return reference;
    }
    let mut best = (reference.0, l);
    let mut best_err = ref_err;
    if !try_type0(
        x,
        None,
        (-nf, nf - 1.0),
        sxl / sll,
        &mut best,
        &mut best_err,
    ) {
        return reference;
    }
    (best.0, to_bytes(&best.1, nf))
}

/// Tries the f16 pair of an exact type-0 scale; whether one of them became the best.
#[inline(always)]
fn try_type0(
    x: &[f32; QK],
    w: Option<&[f32; QK]>,
    range: (f32, f32),
    d: f32,
    best: &mut (u16, Levels),
    best_err: &mut f32,
) -> bool {
    let mut improved = false;
    for bits in f16_pair(d) {
        let (e, l) = assign(x, w, f16_to_f32(bits), 0.0, range);
        if e < *best_err {
            *best_err = e;
            *best = (bits, l);
            improved = true;
        }
    }
    improved
}

/// Sums of a type-1 assignment: (Σw, Σw·L, Σw·L², Σw·x, Σw·x·L, Σw·x²) in f64.
#[inline(always)]
fn sums_type1(x: &[f32; QK], w: Option<&[f32; QK]>, l: &Levels) -> [f64; 6] {
    let mut s = [[0.0f32; LANES]; 6];
    for h in 0..QK / LANES {
        for i in 0..LANES {
            let j = h * LANES + i;
            let wj = wt(w, j);
            let (wl, wx) = (wj * l[j], wj * x[j]);
            s[0][i] += wj;
            s[1][i] += wl;
            s[2][i] += wl * l[j];
            s[3][i] += wx;
            s[4][i] += wx * l[j];
            s[5][i] += wx * x[j];
        }
    }
    s.map(|v| f64::from(hsum(&v)))
}

/// Weighted least squares of (d, m) from the sums of [`sums_type1`], and the fit's error.
/// `None` when the system is singular or the scale is not positive.
#[inline(always)]
fn fit_type1([sw, sl, sll, sx, sxl, sxx]: [f64; 6]) -> Option<(f32, f32, f64)> {
    let det = sw * sll - sl * sl;
    if det.is_nan() || det <= 1e-12 * sw * sll {
        return None;
    }
    let d = (sw * sxl - sl * sx) / det;
    let m = (sll * sx - sl * sxl) / det;
    (d > 0.0).then_some((d as f32, m as f32, sxx - d * sxl - m * sx))
}

/// ingot's type-1 block: candidate grid, Lloyd refinement of the best, f16 rounding search,
/// and the reference block `reference` = (d bits, m bits, q) as a floor. `G` is the number of
/// candidates (a multiple of 16; with weights, half of them clip an extreme value). Returns
/// (d bits, m bits, q), q ∈ [0, n].
#[inline(always)]
pub(crate) fn quantize_type1<const G: usize>(
    x: &[f32; QK],
    w: Option<&[f32; QK]>,
    n: i32,
    reference: (u16, u16, [u8; QK]),
) -> (u16, u16, [u8; QK]) {
    let nf = n as f32;
    let ref_levels = from_bytes(&reference.2, 0.0);
    let (ref_d, ref_m) = (f16_to_f32(reference.0), f16_to_f32(reference.1));
    let ref_err = error_of(x, w, ref_d, ref_m, &ref_levels);
    if ref_err == 0.0 {
        return reference;
    }
    let (min, max) = super::min_max(x);
    let range = max - min;
    if range.is_nan() || range <= 0.0 {
        return reference;
    }
    // Work relative to min (less cancellation in the f32 sums).
    let mut y = [0.0f32; QK];
    for j in 0..QK {
        y[j] = x[j] - min;
    }
    // Candidates (origin, inverse scale): the full range, r ∈ [−1, 1]; then, if G allows, the
    // range without the lowest / the highest value, r ∈ [−0.5, 0.5].
    let mut lo_c = [0.0f32; G];
    let mut t_c = [0.0f32; G];
    let full = if G > LANES { G / 2 } else { G };
    for i in 0..full {
        t_c[i] = (nf - 1.0 + 2.0 * i as f32 / (full - 1) as f32) / range;
    }
    if G > LANES {
        let (mut lo2, mut hi2) = ([f32::MAX; LANES], [-f32::MAX; LANES]);
        for h in 0..QK / LANES {
            for i in 0..LANES {
                let v = y[h * LANES + i];
                lo2[i] = fmin(lo2[i], if v > 0.0 { v } else { f32::MAX });
                hi2[i] = fmax(hi2[i], if v < range { v } else { -f32::MAX });
            }
        }
        let lo2 = lo2.iter().fold(f32::MAX, |a, &b| fmin(a, b));
        let hi2 = hi2.iter().fold(-f32::MAX, |a, &b| fmax(a, b));
        let q = (G - full) / 2;
        for i in 0..q {
            let r = -0.5 + i as f32 / (q - 1) as f32;
            if lo2 < range {
                lo_c[full + i] = lo2;
                t_c[full + i] = (nf + r) / (range - lo2);
            }
            if hi2 > 0.0 {
                t_c[full + q + i] = (nf + r) / hi2;
            }
        }
    }
    let mut lt = [0.0f32; G];
    for c in 0..G {
        lt[c] = lo_c[c] * t_c[c];
    }
    let mut sl = [0.0f32; G];
    let mut sll = [0.0f32; G];
    let mut sxl = [0.0f32; G];
    for j in 0..QK {
        let yj = y[j];
        let wj = wt(w, j);
        let wy = wj * yj;
        for c in 0..G {
            let l = fmin(fmax(round_fast(yj * t_c[c] - lt[c]), 0.0), nf);
            let wl = wj * l;
            sl[c] += wl;
            sll[c] += wl * l;
            sxl[c] += wy * l;
        }
    }
    let (mut sw, mut sx, mut sxx) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
    for h in 0..QK / LANES {
        for i in 0..LANES {
            let j = h * LANES + i;
            let wy = wt(w, j) * y[j];
            sw[i] += wt(w, j);
            sx[i] += wy;
            sxx[i] += wy * y[j];
        }
    }
    let (sw, sx, sxx) = (hsum(&sw), hsum(&sx), hsum(&sxx));
    let mut top: Option<(f32, f32, f32)> = None; // (err, d, m relative to min)
    for c in 0..G {
        let det = sw * sll[c] - sl[c] * sl[c];
        // Singular (or NaN) systems have no fit.
        if det.is_nan() || det <= 1e-6 * sw * sll[c] {
            continue;
        }
        let d = (sw * sxl[c] - sl[c] * sx) / det;
        let m = (sll[c] * sx - sl[c] * sxl[c]) / det;
        let e = sxx - d * sxl[c] - m * sx;
        if d > 0.0 && top.is_none_or(|t| e < t.0) {
            top = Some((e, d, m));
        }
    }
    let Some((_, mut d, m)) = top else {
        return reference;
    };
    let mut m = m + min;
    // Lloyd steps: nearest levels for (d, m), then the weighted least-squares refit.
    let mut err = f64::INFINITY;
    for _ in 0..2 {
        let (_, l) = assign(x, w, d, m, (0.0, nf));
        let Some((d2, m2, e2)) = fit_type1(sums_type1(x, w, &l)) else {
            break;
        };
        if e2.is_nan() || e2 >= err {
            break;
        }
        (d, m, err) = (d2, m2, e2);
    }
    let mut best = (reference.0, reference.1, ref_levels);
    let mut best_err = ref_err;
    if !try_type1(x, w, nf, d, m, &mut best, &mut best_err) {
        return reference;
    }
    // With importance weights, one refit for the winning assignment (plain error: skipped,
    // as for type 0).
    if w.is_some() {
        if let Some((d2, m2, _)) = fit_type1(sums_type1(x, w, &best.2)) {
            try_type1(x, w, nf, d2, m2, &mut best, &mut best_err);
        }
    }
    (best.0, best.1, to_bytes(&best.2, 0.0))
}

/// ingot's fast type-1 block for plain squared error: the least-squares (d, m) of the
/// reference assignment, its f16 pairs with nearest levels, or the reference block if none is
/// better (one Lloyd step from ggml's block).
#[inline(always)]
pub(crate) fn refine_type1(
    x: &[f32; QK],
    n: i32,
    reference: (u16, u16, [u8; QK]),
) -> (u16, u16, [u8; QK]) {
    let l = from_bytes(&reference.2, 0.0);
    let ref_err = error_of(
        x,
        None,
        f16_to_f32(reference.0),
        f16_to_f32(reference.1),
        &l,
    );
    if ref_err == 0.0 {
        return reference;
    }
    let Some((d, m, _)) = fit_type1(sums_type1(x, None, &l)) else {
        return reference;
    };
    let mut best = (reference.0, reference.1, l);
    let mut best_err = ref_err;
    if !try_type1(x, None, n as f32, d, m, &mut best, &mut best_err) {
        return reference;
    }
    (best.0, best.1, to_bytes(&best.2, 0.0))
}

/// Tries the f16 pairs of an exact type-1 scale and min; whether one became the best.
#[inline(always)]
fn try_type1(
    x: &[f32; QK],
    w: Option<&[f32; QK]>,
    nf: f32,
    d: f32,
    m: f32,
    best: &mut (u16, u16, Levels),
    best_err: &mut f32,
) -> bool {
    let ms = f16_pair(m);
    let mut improved = false;
    for db in f16_pair(d) {
        let dd = f16_to_f32(db);
        if dd <= 0.0 {
            continue;
        }
        for &mb in &ms {
            let (e, l) = assign(x, w, dd, f16_to_f32(mb), (0.0, nf));
            if e < *best_err {
                *best_err = e;
                *best = (db, mb, l);
                improved = true;
            }
        }
    }
    improved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_to_f32_is_exact_for_every_finite_f16() {
        for h in 0u16..=0xFFFF {
            if h & 0x7C00 == 0x7C00 {
                continue;
            }
            assert_eq!(
                f16_to_f32(h).to_bits(),
                half::f16::from_bits(h).to_f32().to_bits(),
                "{h:#06x}"
            );
        }
    }

    #[test]
    fn f16_pair_brackets_the_exact_value() {
        for v in [1.0e-3f32, 0.333_333, -2.7, 1.0, 7.0e4, -1.0e9, 3.0e-8] {
            let [a, b] = f16_pair(v);
            let (fa, fb) = (f16_to_f32(a), f16_to_f32(b));
            if v.abs() <= 65504.0 {
                assert_eq!(a, f32_to_f16_bits(v), "{v}: the rounding comes first");
                assert!(fa.min(fb) <= v && v <= fa.max(fb), "{v}: {fa} {fb}");
            } else {
                assert_eq!(a & 0x7FFF, F16_MAX_BITS, "{v}: overflow clamps");
            }
        }
    }
}
