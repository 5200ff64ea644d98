//! Scale search for the legacy formats: ingot's quantizer behind every `quantize_row`.
//!
//! The objective, per 32-element block with importance weights w (all ones without an imatrix),
//! is the weighted squared error of what the file will really hold, f16 scales included:
//!
//! ```text
//! E = Σ_j w_j · (x_j − x̂_j)²,   x̂_j = d·L_j (type 0)   or   x̂_j = d·L_j + m (type 1)
//! ```
//!
//! **Type 0 (Q4_0, Q5_0; levels L ∈ [−n, n−1], n = 8 or 16)**: an exact sweep. Write d = σ/t
//! with σ = ±1 and t > 0 the inverse scale; then L_j(t) = clamp(round(σ·x_j·t)) and, for a
//! fixed assignment L, the best d is the weighted least-squares fit d = Σ w x L / Σ w L², which
//! leaves E = Σ w x² − (Σ w x L)² / Σ w L². As t grows, each L_j steps by one level at
//! t = (k + ½)/|x_j|, so every assignment reachable in a t-interval is visited by sorting those
//! breakpoints and updating the two sums in O(1) per step: the search is exhaustive over
//! scales in the interval instead of sampling 19 of them as ggml's `make_qx_quants` does. Both
//! signs σ are swept (the largest element mapped to −n, or to n − 1), over
//! t ∈ [(k − 1)/amax, (1.5·k + 2)/amax] where k is the level the largest element maps to, so the
//! largest element may also be clipped when its weight is small.
//!
//! **Type 1 (Q4_1, Q5_1; L ∈ [0, n], n = 15 or 31)**: two parameters, so a grid of inverse
//! scales t = (n + r)/(max − min) (r from −1 to 1 by ⅛), plus short grids over the range with
//! the lowest or the highest element left out (so a lightly weighted outlier can be clipped),
//! gives starting assignments; each is refined by alternating the weighted
//! least-squares fit of (d, m) for fixed L with nearest-level reassignment for fixed (d, m)
//! (Lloyd iterations: E never increases). Unlike ggml, m is not forced to be ≤ 0, so blocks of
//! positive values keep their offset.
//!
//! **f16 rounding**: the best unrounded scale (and min) is rounded to f16, the nearest f16
//! neighbours are tried too, each with its optimal (nearest-level) assignment, then one refit;
//! the candidate with the smallest *stored* error wins. Finally the result is compared with
//! ggml's reference block for the same input, so ingot's block is never worse than the
//! reference under the objective (row by row, and exactly 0 wherever the reference is exact).

use half::f16;

use super::round_half_away;
use crate::blocks::QK;
use crate::float::f32_to_f16_bits;

/// Capacity for a sweep's breakpoints (32 elements × at most 32 level steps each): the
/// scratch buffer a row allocates once.
pub(crate) const MAX_EVENTS: usize = QK * 32;

/// How far past the natural scale the sweeps go: the largest element may be scaled up to
/// `SWEEP_WIDE · k + 2` levels (and clipped), which pays when its weight is small. (Narrower
/// sweeps measured: 1.25·k + 1 cost ~2 % of the Q4_0/Q5_0 error gain on the golden rows.)
const SWEEP_WIDE: f32 = 1.5;

/// Largest finite f16, used instead of an overflowing scale (an f16 infinity would dequantize
/// to inf/NaN).
const F16_MAX_BITS: u16 = 0x7BFF;

/// The block weights to optimise for: the given ones, or all ones when there are none or when
/// they carry no information (all zero in this block).
#[inline]
pub(crate) fn block_weights(weights: Option<&[f32]>) -> [f32; QK] {
    let mut w = [1.0f32; QK];
    if let Some(src) = weights {
        let sum: f32 = src.iter().sum();
        if sum > 0.0 {
            w.copy_from_slice(src);
        }
    }
    w
}

/// f16 candidates near a scale: its rounding and the two neighbouring f16 values (same sign),
/// overflow replaced by the largest finite f16.
#[inline]
fn f16_neighbours(v: f32) -> [u16; 3] {
    let mut b = f32_to_f16_bits(v);
    let sign = b & 0x8000;
    if b & 0x7FFF > F16_MAX_BITS {
        b = sign | F16_MAX_BITS;
    }
    let mag = b & 0x7FFF;
    let up = if mag < F16_MAX_BITS { mag + 1 } else { mag };
    let down = mag.saturating_sub(1);
    [b, sign | up, sign | down]
}

/// Weighted squared error of a type-0 block as stored (q = L + n).
#[inline(always)]
pub(crate) fn error_type0(x: &[f32; QK], w: &[f32; QK], d_bits: u16, q: &[u8; QK], n: i32) -> f32 {
    let d = f16::from_bits(d_bits).to_f32();
    let mut e = 0.0f32;
    for j in 0..QK {
        let r = x[j] - (i32::from(q[j]) - n) as f32 * d;
        e += w[j] * r * r;
    }
    e
}

/// Weighted squared error of a type-1 block as stored.
#[inline(always)]
pub(crate) fn error_type1(
    x: &[f32; QK],
    w: &[f32; QK],
    d_bits: u16,
    m_bits: u16,
    q: &[u8; QK],
) -> f32 {
    let d = f16::from_bits(d_bits).to_f32();
    let m = f16::from_bits(m_bits).to_f32();
    let mut e = 0.0f32;
    for j in 0..QK {
        let r = x[j] - (f32::from(q[j]) * d + m);
        e += w[j] * r * r;
    }
    e
}

/// Nearest type-0 levels for a stored scale.
#[inline(always)]
fn assign_type0(x: &[f32; QK], d: f32, n: i32) -> [u8; QK] {
    let mut q = [n as u8; QK];
    if d != 0.0 {
        let id = 1.0 / d;
        for j in 0..QK {
            let l = round_half_away(x[j] * id).clamp(-n, n - 1);
            q[j] = (l + n) as u8;
        }
    }
    q
}

/// Nearest type-1 levels for a stored scale and min.
#[inline(always)]
fn assign_type1(x: &[f32; QK], d: f32, m: f32, n: i32) -> [u8; QK] {
    let mut q = [0u8; QK];
    if d > 0.0 {
        let id = 1.0 / d;
        for j in 0..QK {
            q[j] = round_half_away((x[j] - m) * id).clamp(0, n) as u8;
        }
    }
    q
}

/// The best assignment found by one type-0 sweep, as its two sums.
struct Sweep {
    sxl: f64,
    sll: f64,
}

/// Exhaustive sweep of the inverse scale t over [t_lo, t_hi] for values y with levels
/// [−n, n − 1]; keeps the assignment maximising (Σ w y L)² / Σ w L² with Σ w y L > 0.
fn sweep_type0(
    y: &[f32; QK],
    w: &[f32; QK],
    n: i32,
    (t_lo, t_hi): (f32, f32),
    events: &mut Vec<u32>,
) -> Option<Sweep> {
    let lo = -n;
    let hi = n - 1;
    let mut levels = [0i8; QK];
    let mut sxl = 0.0f64;
    let mut sll = 0.0f64;
    events.clear();
    for j in 0..QK {
        let l = round_half_away(y[j] * t_lo).clamp(lo, hi);
        levels[j] = l as i8;
        sxl += f64::from(w[j] * y[j]) * f64::from(l);
        sll += f64::from(w[j]) * f64::from(l * l);
        let ay = y[j].abs();
        if ay == 0.0 {
            continue;
        }
        let limit = if y[j] > 0.0 { hi } else { -lo };
        // Only steps away from zero happen as t grows (round(y·t) has y's sign): from level
        // |l| to the last one reached by t_hi.
        let inv = 1.0 / ay;
        let top = round_half_away(ay * t_hi).clamp(0, limit);
        for a in l.abs()..top {
            let t = (a as f32 + 0.5) * inv;
            // Positive f32s order like their bit patterns. The low 5 bits carry j instead
            // (a 2⁻¹⁸ relative reordering of near-simultaneous steps of different elements is
            // harmless: every prefix is still a valid assignment, and one element's steps are
            // 1/|y| apart).
            events.push((t.to_bits() & !0x1F) | j as u32);
        }
    }
    events.sort_unstable();

    let mut best: Option<Sweep> = None;
    let mut consider = |sxl: f64, sll: f64| {
        if sxl > 0.0 && sll > 0.0 {
            // sxl²/sll > best's, without a division per breakpoint (all terms positive).
            if best
                .as_ref()
                .is_none_or(|b| sxl * sxl * b.sll > b.sxl * b.sxl * sll)
            {
                best = Some(Sweep { sxl, sll });
            }
        }
    };
    consider(sxl, sll);
    for (i, &key) in events.iter().enumerate() {
        let j = (key & 0x1F) as usize;
        let old = i32::from(levels[j]);
        let step = if y[j] > 0.0 { 1 } else { -1 };
        let new = old + step;
        levels[j] = new as i8;
        sxl += f64::from(w[j] * y[j]) * f64::from(step);
        sll += f64::from(w[j]) * f64::from(new * new - old * old);
        // Evaluate once per distinct t (ties move together).
        let same_t_next = events.get(i + 1).is_some_and(|&k| k >> 5 == key >> 5);
        if !same_t_next {
            consider(sxl, sll);
        }
    }
    best
}

/// ingot's type-0 block: the best of the sweeps (after f16 rounding) and the reference block
/// `reference` = (d bits, q), under the weights `w`. Returns (d bits, q) with q = L + n.
pub(crate) fn quantize_type0(
    x: &[f32; QK],
    w: &[f32; QK],
    n: i32,
    reference: (u16, [u8; QK]),
    scratch: &mut Vec<u32>,
) -> (u16, [u8; QK]) {
    let mut best = reference;
    let mut best_err = error_type0(x, w, reference.0, &reference.1, n);
    if best_err == 0.0 {
        return best;
    }
    let (amax, max) = super::signed_absmax(x);
    if amax == 0.0 {
        return best;
    }
    let s = if max < 0.0 { -1.0f32 } else { 1.0 };
    // σ = −s: the largest element gets the extra level −n; σ = s: it maps to n − 1.
    let nf = n as f32;
    // (σ, lowest and highest level the largest element is scaled to).
    let sweeps = [
        (-s, nf - 1.0, SWEEP_WIDE * nf + 2.0),
        (s, nf - 2.0, SWEEP_WIDE * (nf - 1.0) + 2.0),
    ];
    for (sigma, k_lo, k_hi) in sweeps {
        let mut y = [0.0f32; QK];
        for j in 0..QK {
            y[j] = sigma * x[j];
        }
        let t_lo = k_lo / amax;
        let t_hi = k_hi / amax;
        let Some(sw) = sweep_type0(&y, w, n, (t_lo, t_hi), scratch) else {
            continue;
        };
        let d = (f64::from(sigma) * sw.sxl / sw.sll) as f32;
        let try_d = |d: f32, best: &mut (u16, [u8; QK]), best_err: &mut f32| {
            for bits in f16_neighbours(d) {
                let q = assign_type0(x, f16::from_bits(bits).to_f32(), n);
                let e = error_type0(x, w, bits, &q, n);
                if e < *best_err {
                    *best_err = e;
                    *best = (bits, q);
                }
            }
        };
        let before = best;
        try_d(d, &mut best, &mut best_err);
        if best != before {
            // One refit for the assignment the rounded scale produced.
            let (mut sxl, mut sll) = (0.0f64, 0.0f64);
            for j in 0..QK {
                let l = f64::from(i32::from(best.1[j]) - n);
                sxl += f64::from(w[j] * x[j]) * l;
                sll += f64::from(w[j]) * l * l;
            }
            if sll > 0.0 {
                try_d((sxl / sll) as f32, &mut best, &mut best_err);
            }
        }
    }
    best
}

/// Weighted least squares of (d, m) for fixed levels: minimises Σ w (x − d·L − m)².
/// `None` when the system is singular (all levels equal under the weights).
#[inline(always)]
fn fit_type1(x: &[f32; QK], w: &[f32; QK], q: &[u8; QK]) -> Option<(f32, f32)> {
    let (mut sw, mut sl, mut sll, mut sx, mut sxl) = (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for j in 0..QK {
        let wj = f64::from(w[j]);
        let l = f64::from(q[j]);
        let xj = f64::from(x[j]);
        sw += wj;
        sl += wj * l;
        sll += wj * l * l;
        sx += wj * xj;
        sxl += wj * xj * l;
    }
    let det = sw * sll - sl * sl;
    if det.is_nan() || det <= 1e-12 * sw * sll {
        return None;
    }
    let d = (sw * sxl - sl * sx) / det;
    let m = (sll * sx - sl * sxl) / det;
    (d > 0.0).then_some((d as f32, m as f32))
}

/// Unrounded weighted error of a type-1 candidate.
#[inline(always)]
fn raw_error_type1(x: &[f32; QK], w: &[f32; QK], d: f32, m: f32, q: &[u8; QK]) -> f32 {
    let mut e = 0.0f32;
    for j in 0..QK {
        let r = x[j] - (f32::from(q[j]) * d + m);
        e += w[j] * r * r;
    }
    e
}

/// Second smallest and second largest values (by position: the extremes themselves removed
/// once).
#[inline(always)]
fn second_extremes(x: &[f32; QK], min: f32, max: f32) -> (f32, f32) {
    let (mut lo, mut hi) = (f32::MAX, -f32::MAX);
    let (mut seen_min, mut seen_max) = (false, false);
    for &v in x {
        if v == min && !seen_min {
            seen_min = true;
        } else if v < lo {
            lo = v;
        }
        if v == max && !seen_max {
            seen_max = true;
        } else if v > hi {
            hi = v;
        }
    }
    (lo, hi)
}

/// ingot's type-1 block: grid + Lloyd refinement, f16 rounding search, and the reference block
/// `reference` = (d bits, m bits, q) as a floor. Returns (d bits, m bits, q), q ∈ [0, n].
pub(crate) fn quantize_type1(
    x: &[f32; QK],
    w: &[f32; QK],
    n: i32,
    reference: (u16, u16, [u8; QK]),
) -> (u16, u16, [u8; QK]) {
    let mut best = reference;
    let mut best_err = error_type1(x, w, reference.0, reference.1, &reference.2);
    if best_err == 0.0 {
        return best;
    }
    let (min, max) = super::min_max(x);
    let range = max - min;
    if range.is_nan() || range <= 0.0 {
        return best;
    }
    let nf = n as f32;
    let mut cand: Option<(f32, f32, f32)> = None; // (err, d, m)
                                                  // Starting grids: the full range, and the range without the single lowest or highest
                                                  // element (clipping one outlier can pay when it is not heavily weighted).
    let (min2, max2) = second_extremes(x, min, max);
    let starts = [
        (min, max, -1.0f32, 0.125f32, 17),
        (min2, max, -0.5, 0.25, 5),
        (min, max2, -0.5, 0.25, 5),
    ];
    let grid = starts.iter().flat_map(|&(lo, hi, r0, dr, count)| {
        (0..count).map(move |i| (lo, (nf + r0 + dr * i as f32) / (hi - lo)))
    });
    for (lo, iscale) in grid {
        if iscale.is_nan() || iscale <= 0.0 || iscale.is_infinite() {
            continue;
        }
        let mut q = [0u8; QK];
        for j in 0..QK {
            q[j] = round_half_away((x[j] - lo) * iscale).clamp(0, n) as u8;
        }
        let Some((mut d, mut m)) = fit_type1(x, w, &q) else {
            continue;
        };
        let mut err = raw_error_type1(x, w, d, m, &q);
        for _ in 0..3 {
            let q2 = assign_type1(x, d, m, n);
            if q2 == q {
                break;
            }
            let Some((d2, m2)) = fit_type1(x, w, &q2) else {
                break;
            };
            let e2 = raw_error_type1(x, w, d2, m2, &q2);
            if e2.is_nan() || e2 >= err {
                break;
            }
            (q, d, m, err) = (q2, d2, m2, e2);
        }
        if cand.is_none_or(|c| err < c.0) {
            cand = Some((err, d, m));
        }
    }
    let Some((_, d, m)) = cand else {
        return best;
    };
    let try_dm = |d: f32, m: f32, best: &mut (u16, u16, [u8; QK]), best_err: &mut f32| {
        let ms = f16_neighbours(m);
        for db in f16_neighbours(d) {
            let dd = f16::from_bits(db).to_f32();
            if dd.is_nan() || dd <= 0.0 {
                continue;
            }
            for &mb in &ms {
                let q = assign_type1(x, dd, f16::from_bits(mb).to_f32(), n);
                let e = error_type1(x, w, db, mb, &q);
                if e < *best_err {
                    *best_err = e;
                    *best = (db, mb, q);
                }
            }
        }
    };
    let before = best;
    try_dm(d, m, &mut best, &mut best_err);
    if best != before {
        if let Some((d2, m2)) = fit_type1(x, w, &best.2) {
            try_dm(d2, m2, &mut best, &mut best_err);
        }
    }
    best
}
