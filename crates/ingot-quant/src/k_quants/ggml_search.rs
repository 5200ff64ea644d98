//! ggml's per-group scale searches, reproduced with the same float operation order so that the
//! reference quantizers built on them are bit-identical to llama.cpp (`ggml/src/ggml-quants.c`:
//! `make_qx_quants`, `make_q3_quants`, `make_qkx2_quants`, `make_qkx3_quants`,
//! `make_qp_quants`). Each takes a group `x`, writes one code per value into `l` and returns
//! the group scale (and, for the affine searches, the min as a non-negative offset).
//!
//! The importance-weighted paths of ingot start from these results and then improve them
//! (see [`super::refine`]), so they serve both modes.

use super::nearest_int;

/// Candidates evaluated together by the grid searches (one per SIMD lane).
const LANES: usize = 16;

/// ggml's `GROUP_MAX_EPS`: a group whose largest magnitude is below this is treated as zero.
pub const GROUP_MAX_EPS: f32 = 1e-15;

/// Symmetric search (`make_qx_quants` with `rmse_type = 1`): codes `l + nmax` in
/// `0..2·nmax`, value ≈ scale·(code − nmax). Tries 19 inverse scales −(nmax + 0.1·is)/max and
/// keeps the one maximising (Σwxl)²/Σwl² (the weighted least-squares fit), with weights
/// `w` or x² when `w` is `None`.
#[inline(always)]
pub fn make_qx_quants(nmax: i32, x: &[f32], l_out: &mut [u8], w: Option<&[f32]>) -> f32 {
    let n = x.len();
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out[..n].fill(0);
        return 0.0;
    }
    let weight = |i: usize| match w {
        Some(w) => w[i],
        None => x[i] * x[i],
    };
    let nmaxf = nmax as f32;
    let mut iscale = -nmaxf / max;
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
        l_out[i] = (l + nmax) as u8;
        let wi = weight(i);
        let lf = l as f32;
        sumlx += wi * x[i] * lf;
        suml2 += wi * lf * lf;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9i32..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmaxf + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for i in 0..n {
            let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
            let wi = weight(i);
            let lf = l as f32;
            sumlx += wi * x[i] * lf;
            suml2 += wi * lf * lf;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            for i in 0..n {
                let l = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
                l_out[i] = (l + nmax) as u8;
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Q3_K's reference group search (`make_q3_quants` with `do_rmse`): start from −nmax/max, then
/// up to five passes moving single codes to their best value under weights x² while the
/// weighted fit (Σwxl)²/Σwl² improves. Codes `l + nmax` in `0..2·nmax`.
#[inline(always)]
pub fn make_q3_quants(nmax: i32, x: &[f32], l_out: &mut [u8]) -> f32 {
    let n = x.len();
    let mut max = 0.0f32;
    let mut amax = 0.0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        l_out[..n].fill(0);
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut l = [0i32; 32];
    let l = &mut l[..n];
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for i in 0..n {
        let li = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
        l[i] = li;
        let w = x[i] * x[i];
        sumlx += w * x[i] * li as f32;
        suml2 += w * li as f32 * li as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for i in 0..n {
            let w = x[i] * x[i];
            let mut slx = sumlx - w * x[i] * l[i] as f32;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * l[i] as f32 * l[i] as f32;
                let new_l = nearest_int(x[i] * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != l[i] {
                    slx += w * x[i] * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        l[i] = new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for i in 0..n {
        l_out[i] = (l[i] + nmax) as u8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}

/// Parameters of ggml's affine grid search: inverse scales (rmin + rdelta·is + nmax)/(max − min)
/// for is in 0..=nstep.
#[derive(Clone, Copy, Debug)]
pub struct AffineSearch {
    /// Offset of the first candidate, in code units.
    pub rmin: f32,
    /// Step between candidates, in code units.
    pub rdelta: f32,
    /// Number of steps after the first.
    pub nstep: i32,
    /// Judge candidates by weighted absolute error instead of squared error.
    pub use_mad: bool,
}

/// `make_qkx2_quants`: affine codes in 0..=nmax, value ≈ scale·l − min. Returns
/// `(scale, min)` with `min ≥ 0` (ggml's `the_min`). For each candidate inverse scale, codes are
/// rounded and (scale, min) refitted by weighted least squares; the candidate with the lowest
/// weighted error wins.
pub fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    p: AffineSearch,
) -> (f32, f32) {
    if p.use_mad {
        affine_search::<true>(nmax, x, weights, l_out, p)
    } else {
        affine_search::<false>(nmax, x, weights, l_out, p)
    }
}

/// `make_qkx3_quants` (ggml's importance-weighted variant of [`make_qkx2_quants`]): the same
/// search, with codes computed from the clamped product so an extreme candidate cannot
/// overflow.
pub fn make_qkx3_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    p: AffineSearch,
) -> (f32, f32) {
    if p.use_mad {
        affine_search::<true>(nmax, x, weights, l_out, p)
    } else {
        affine_search::<false>(nmax, x, weights, l_out, p)
    }
}

/// The body of both affine searches (qkx2 rounds then clamps the codes, qkx3 clamps then
/// rounds: the same codes for finite input); `MAD` selects the absolute-error criterion at
/// compile time, so the lane loops stay branch-free.
#[inline(always)]
fn affine_search<const MAD: bool>(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l_out: &mut [u8],
    p: AffineSearch,
) -> (f32, f32) {
    let n = x.len();
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    // `max == min` in qkx2, `max <= min` in qkx3: the same for non-NaN input.
    if max <= min {
        l_out[..n].fill(0);
        return (0.0, -min);
    }
    let nmaxf = nmax as f32;
    let iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let err = |diff: f32| if MAD { diff.abs() } else { diff * diff };
    let mut best_error = 0.0f32;
    for i in 0..n {
        let l = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l_out[i] = l as u8;
        let diff = scale * l as f32 + min - x[i];
        best_error += weights[i] * err(diff);
    }
    if p.nstep < 1 {
        return (scale, -min);
    }
    // Candidates are evaluated LANES at a time, one per lane: each lane runs ggml's
    // per-candidate loop in ggml's order (bit-identical floats), the compiler turns the lane
    // loops into SIMD, and the choice is made in ggml's candidate order. In ggml a later
    // candidate depends on the min of the last accepted one, so when an acceptance changes
    // the min, the batch restarts at the next candidate.
    //
    // Codes are produced directly as floats: for 0 ≤ v ≤ nmax, (v + 1.5·2²³) − 1.5·2²³ is the
    // same round-half-to-even as `nearest_int`, and clamping v before rounding gives the same
    // code as clamping the integer after (for finite input, which the dispatch guarantees).
    // This holds for both qkx2 (round, then clamp) and qkx3 (clamp, then round).
    let code = |iscale: f32, xi: f32, min: f32| -> f32 {
        const MAGIC: f32 = 12_582_912.0;
        let v = (iscale * (xi - min)).max(0.0).min(nmaxf);
        (v + MAGIC) - MAGIC
    };
    let sum_wx2: f64 = (0..n)
        .map(|i| weights[i] as f64 * x[i] as f64 * x[i] as f64)
        .sum::<f64>()
        .abs();
    let mut is0 = 0;
    while is0 <= p.nstep {
        let min0 = min;
        let iscale: [f32; LANES] = std::array::from_fn(|k| {
            (p.rmin + p.rdelta * (is0 + k as i32) as f32 + nmaxf) / (max - min0)
        });
        let mut sum_l = [0.0f32; LANES];
        let mut sum_l2 = [0.0f32; LANES];
        let mut sum_xl = [0.0f32; LANES];
        for i in 0..n {
            let (xi, w) = (x[i], weights[i]);
            for k in 0..LANES {
                let lf = code(iscale[k], xi, min0);
                sum_l[k] += w * lf;
                sum_l2[k] += w * lf * lf;
                sum_xl[k] += w * lf * xi;
            }
        }
        let mut this_scale = [0.0f32; LANES];
        let mut this_min = [0.0f32; LANES];
        let mut valid = [false; LANES];
        for k in 0..LANES {
            let d = sum_w * sum_l2[k] - sum_l[k] * sum_l[k];
            valid[k] = d > 0.0 && is0 + (k as i32) <= p.nstep;
            if valid[k] {
                this_scale[k] = (sum_w * sum_xl[k] - sum_x * sum_l[k]) / d;
                this_min[k] = (sum_l2[k] * sum_x - sum_l[k] * sum_xl[k]) / d;
                if this_min[k] > 0.0 {
                    this_min[k] = 0.0;
                    this_scale[k] = sum_xl[k] / sum_l2[k];
                }
            }
        }
        // The exact (sequential f32) error decides, as in ggml. For squared error it is only
        // computed for candidates that can win: the same error expanded in the sums above,
        // in f64, is within ~1e-6·Σwx² of it, so a candidate whose expansion exceeds the
        // best by far more (1e-4·Σwx² + 1e-3·best) cannot be chosen by ggml either.
        let mut cur_error = [0.0f32; LANES];
        if MAD {
            for i in 0..n {
                let (xi, w) = (x[i], weights[i]);
                for k in 0..LANES {
                    let lf = code(iscale[k], xi, min0);
                    let diff = this_scale[k] * lf + this_min[k] - xi;
                    cur_error[k] += w * err(diff);
                }
            }
        }
        let mut next = is0 + LANES as i32;
        for k in 0..LANES {
            if !valid[k] {
                continue;
            }
            if !MAD {
                let (sc, mn) = (this_scale[k] as f64, this_min[k] as f64);
                let expanded = sc * sc * sum_l2[k] as f64
                    + mn * mn * sum_w as f64
                    + sum_wx2
                    + 2.0 * sc * mn * sum_l[k] as f64
                    - 2.0 * sc * sum_xl[k] as f64
                    - 2.0 * mn * sum_x as f64;
                if expanded > best_error as f64 * (1.0 + 1e-3) + 1e-4 * sum_wx2 {
                    continue;
                }
                let mut e = 0.0f32;
                for i in 0..n {
                    let lf = code(iscale[k], x[i], min0);
                    let diff = this_scale[k] * lf + this_min[k] - x[i];
                    e += weights[i] * err(diff);
                }
                cur_error[k] = e;
            }
            if cur_error[k] < best_error {
                for i in 0..n {
                    l_out[i] = code(iscale[k], x[i], min0) as u8;
                }
                best_error = cur_error[k];
                scale = this_scale[k];
                min = this_min[k];
                if min.to_bits() != min0.to_bits() {
                    next = is0 + k as i32 + 1;
                    break;
                }
            }
        }
        is0 = next;
    }
    (scale, -min)
}

/// `make_qp_quants`: quantizes non-negative values (sub-block scales or mins) to codes
/// 0..=nmax under weights `qw`, trying nine inverse scales around nmax/max and then up to five
/// passes of single-code moves that improve the weighted fit. Returns the scale.
#[inline(always)]
pub fn make_qp_quants(nmax: i32, x: &[f32], l_out: &mut [u8], qw: &[f32]) -> f32 {
    let n = x.len();
    let mut max = 0.0f32;
    for &v in x {
        max = max.max(v);
    }
    if max < GROUP_MAX_EPS {
        l_out[..n].fill(0);
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / max;
    let mut l = [0i32; 32];
    let l = &mut l[..n];
    for i in 0..n {
        l[i] = nearest_int(iscale * x[i]);
    }
    let scale = 1.0 / iscale;
    let mut best_mse = 0.0f32;
    for i in 0..n {
        let diff = x[i] - scale * l[i] as f32;
        best_mse += qw[i] * diff * diff;
    }
    for is in -4i32..=4 {
        if is == 0 {
            continue;
        }
        let iscale_is = (0.1 * is as f32 + nmaxf) / max;
        let scale_is = 1.0 / iscale_is;
        let mut mse = 0.0f32;
        for i in 0..n {
            let li = nearest_int(iscale_is * x[i]).min(nmax);
            let diff = x[i] - scale_is * li as f32;
            mse += qw[i] * diff * diff;
        }
        if mse < best_mse {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    let mut sumlx = 0.0f32;
    let mut suml2 = 0.0f32;
    for i in 0..n {
        let li = nearest_int(iscale * x[i]).min(nmax);
        l[i] = li;
        let w = qw[i];
        sumlx += w * x[i] * li as f32;
        suml2 += w * li as f32 * li as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for i in 0..n {
            let w = qw[i];
            let mut slx = sumlx - w * x[i] * l[i] as f32;
            let mut sl2 = suml2 - w * l[i] as f32 * l[i] as f32;
            if slx > 0.0 && sl2 > 0.0 {
                let new_l = nearest_int(x[i] * sl2 / slx).min(nmax);
                if new_l != l[i] {
                    slx += w * x[i] * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        l[i] = new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    for i in 0..n {
        // Codes are in 0..=nmax here for non-negative input; the clamp keeps a hostile
        // negative value from wrapping.
        l_out[i] = l[i].clamp(0, nmax) as u8;
    }
    if suml2 > 0.0 {
        sumlx / suml2
    } else {
        0.0
    }
}
