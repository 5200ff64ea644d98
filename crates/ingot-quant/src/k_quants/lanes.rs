//! ggml's affine sub-block search (`make_qkx2_quants` / `make_qkx3_quants`) run on `L`
//! independent sub-blocks at once, one sub-block per SIMD lane.
//!
//! Each lane performs exactly the operations of the scalar search
//! ([`super::ggml_search::make_qkx2_quants`]) in the same order (no reassociation, no fused
//! multiply-add: Rust never contracts `a * b + c`), so the result is bit-identical to it and
//! therefore to ggml. What differs is only the control flow: where the scalar code branches on
//! "this candidate is better", every lane computes the candidate and a per-lane mask selects
//! it. The data are transposed so that value `i` of all lanes is one contiguous `[f32; L]`:
//!
//! ```text
//! xt[i][k] = value i of sub-block k          (k < L, i < N)
//! per lane: min, max, Σw, Σwx over i; min = min(min, 0)
//!           iscale = nmax/(max − min); codes, best error
//!           for is in 0..=nstep:
//!               iscale = (rmin + rdelta·is + nmax)/(max − min)   (min: the lane's current one)
//!               codes l_i; Σwl, Σwl², Σwlx → least-squares (scale, min); error
//!               accept where error < best (per-lane select)
//! ```
//!
//! The bodies are `#[inline(always)]` over plain arrays: the `arch` module compiles them inside
//! `#[target_feature]` functions, where the lane loops become AVX2 / AVX-512 vectors, and the
//! baseline build compiles the same code for SSE2.

use super::ggml_search::AffineSearch;

/// Eight f32 lanes: the operations the lane searches need, each exactly one IEEE operation per
/// lane. [`Portable`] implements it on arrays; `arch` implements it on AVX2 registers behind a
/// token type that exists only when the CPU has AVX2.
pub(crate) trait F32x8: Copy {
    /// A vector of eight f32.
    type V: Copy;
    /// A per-lane condition.
    type M: Copy;
    /// All lanes `v`.
    fn splat(self, v: f32) -> Self::V;
    /// Loads eight values.
    fn load(self, a: &[f32; 8]) -> Self::V;
    /// Stores eight values.
    fn store(self, v: Self::V) -> [f32; 8];
    /// a + b.
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// a − b.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// a · b (never fused with a later add).
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// a / b.
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a < b ? a : b` per lane.
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a > b ? a : b` per lane.
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// |a|.
    fn abs(self, a: Self::V) -> Self::V;
    /// a < b.
    fn lt(self, a: Self::V, b: Self::V) -> Self::M;
    /// a and b.
    fn and(self, a: Self::M, b: Self::M) -> Self::M;
    /// `m ? a : b` per lane.
    fn select(self, m: Self::M, a: Self::V, b: Self::V) -> Self::V;
    /// Whether any lane of `m` is set.
    fn any(self, m: Self::M) -> bool;
}

/// [`F32x8`] on plain arrays (the baseline build; the compiler vectorises what it can).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Portable;

impl F32x8 for Portable {
    type V = [f32; 8];
    type M = [bool; 8];
    #[inline(always)]
    fn splat(self, v: f32) -> [f32; 8] {
        [v; 8]
    }
    #[inline(always)]
    fn load(self, a: &[f32; 8]) -> [f32; 8] {
        *a
    }
    #[inline(always)]
    fn store(self, v: [f32; 8]) -> [f32; 8] {
        v
    }
    #[inline(always)]
    fn add(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|k| a[k] + b[k])
    }
    #[inline(always)]
    fn sub(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|k| a[k] - b[k])
    }
    #[inline(always)]
    fn mul(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|k| a[k] * b[k])
    }
    #[inline(always)]
    fn div(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|k| a[k] / b[k])
    }
    #[inline(always)]
    fn min(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|k| if a[k] < b[k] { a[k] } else { b[k] })
    }
    #[inline(always)]
    fn max(self, a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|k| if a[k] > b[k] { a[k] } else { b[k] })
    }
    #[inline(always)]
    fn abs(self, a: [f32; 8]) -> [f32; 8] {
        a.map(f32::abs)
    }
    #[inline(always)]
    fn lt(self, a: [f32; 8], b: [f32; 8]) -> [bool; 8] {
        std::array::from_fn(|k| a[k] < b[k])
    }
    #[inline(always)]
    fn and(self, a: [bool; 8], b: [bool; 8]) -> [bool; 8] {
        std::array::from_fn(|k| a[k] && b[k])
    }
    #[inline(always)]
    fn select(self, m: [bool; 8], a: [f32; 8], b: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|k| if m[k] { a[k] } else { b[k] })
    }
    #[inline(always)]
    fn any(self, m: [bool; 8]) -> bool {
        m.iter().any(|&b| b)
    }
}

/// Result of [`affine_search`] for eight sub-blocks: per lane the scale and ggml's `the_min`
/// (a non-negative offset: x ≈ scale·l − the_min).
pub(crate) struct LaneFit {
    pub scale: [f32; 8],
    pub the_min: [f32; 8],
}

/// `make_qkx2_quants` (≡ `make_qkx3_quants` for finite input) on eight sub-blocks of `N`
/// values, transposed (`xt[i][k]` = value `i` of sub-block `k`). Writes the codes as floats
/// (0..=nmax) into `lt`. `MAD` selects the absolute-error criterion (`p.use_mad` must agree).
///
/// Codes are produced as floats: for finite input, clamping `iscale·(x − min)` to [0, nmax]
/// and then adding and removing 1.5·2²³ (round half to even) gives ggml's
/// `MAX(0, MIN(nmax, nearest_int(iscale·(x − min))))`.
#[inline(always)]
pub(crate) fn affine_search<S: F32x8, const N: usize, const MAD: bool>(
    s: S,
    nmax: i32,
    xt: &[[f32; 8]; N],
    wt: &[[f32; 8]; N],
    lt: &mut [[f32; 8]; N],
    p: AffineSearch,
) -> LaneFit {
    debug_assert_eq!(MAD, p.use_mad);
    let zero = s.splat(0.0);
    let nmaxv = s.splat(nmax as f32);
    let magic = s.splat(12_582_912.0);
    // Plain functions, not closures: a closure does not inherit the caller's
    // `#[target_feature]`s, so the intrinsics inside it would stay out-of-line calls.
    let code =
        |iscale: S::V, x: S::V, min: S::V| affine_code(s, iscale, x, min, zero, nmaxv, magic);
    let err = |diff: S::V| error_term::<S, MAD>(s, diff);
    let x0 = s.load(&xt[0]);
    let mut min = x0;
    let mut max = x0;
    let mut sum_w = s.load(&wt[0]);
    let mut sum_x = s.mul(sum_w, x0);
    for i in 1..N {
        let (x, w) = (s.load(&xt[i]), s.load(&wt[i]));
        // ggml: if (x < min) min = x; if (x > max) max = x.
        min = s.min(x, min);
        max = s.max(x, max);
        sum_w = s.add(sum_w, w);
        sum_x = s.add(sum_x, s.mul(w, x));
    }
    // ggml: if (min > 0) min = 0.
    min = s.select(s.lt(zero, min), zero, min);
    // Constant sub-blocks (max == min after including 0): ggml returns scale 0 and codes 0.
    // Their lanes run the search on NaN (never accepted) and are overwritten at the end.
    let constant = s.store(s.select(s.lt(min, max), zero, s.splat(1.0)));
    let range = s.sub(max, min);
    let iscale = s.div(nmaxv, range);
    let mut scale = s.div(s.splat(1.0), iscale);
    let mut best_error = zero;
    for i in 0..N {
        let (x, w) = (s.load(&xt[i]), s.load(&wt[i]));
        let l = code(iscale, x, min);
        lt[i] = s.store(l);
        let diff = s.sub(s.add(s.mul(scale, l), min), x);
        best_error = s.add(best_error, s.mul(w, err(diff)));
    }
    if p.nstep >= 1 {
        let mut laux = [[0.0f32; 8]; N];
        for is in 0..=p.nstep {
            let rel = s.splat(p.rmin + p.rdelta * is as f32 + nmax as f32);
            let iscale = s.div(rel, s.sub(max, min));
            let mut sum_l = zero;
            let mut sum_l2 = zero;
            let mut sum_xl = zero;
            for i in 0..N {
                let (x, w) = (s.load(&xt[i]), s.load(&wt[i]));
                let l = code(iscale, x, min);
                laux[i] = s.store(l);
                let wl = s.mul(w, l);
                sum_l = s.add(sum_l, wl);
                sum_l2 = s.add(sum_l2, s.mul(wl, l));
                sum_xl = s.add(sum_xl, s.mul(wl, x));
            }
            let d = s.sub(s.mul(sum_w, sum_l2), s.mul(sum_l, sum_l));
            let valid = s.lt(zero, d);
            let this_scale = s.div(s.sub(s.mul(sum_w, sum_xl), s.mul(sum_x, sum_l)), d);
            let this_min = s.div(s.sub(s.mul(sum_l2, sum_x), s.mul(sum_l, sum_xl)), d);
            let clamp = s.lt(zero, this_min);
            let this_min = s.select(clamp, zero, this_min);
            let this_scale = s.select(clamp, s.div(sum_xl, sum_l2), this_scale);
            let mut cur_error = zero;
            for i in 0..N {
                let (x, w) = (s.load(&xt[i]), s.load(&wt[i]));
                let l = s.load(&laux[i]);
                let diff = s.sub(s.add(s.mul(this_scale, l), this_min), x);
                cur_error = s.add(cur_error, s.mul(w, err(diff)));
            }
            let accept = s.and(valid, s.lt(cur_error, best_error));
            if s.any(accept) {
                for i in 0..N {
                    lt[i] = s.store(s.select(accept, s.load(&laux[i]), s.load(&lt[i])));
                }
                best_error = s.select(accept, cur_error, best_error);
                scale = s.select(accept, this_scale, scale);
                min = s.select(accept, this_min, min);
            }
        }
    }
    let mut scale = s.store(scale);
    let min = s.store(min);
    for k in 0..8 {
        if constant[k] != 0.0 {
            scale[k] = 0.0;
            for row in lt.iter_mut() {
                row[k] = 0.0;
            }
        }
    }
    LaneFit {
        scale,
        the_min: std::array::from_fn(|k| -min[k]),
    }
}

/// `make_qx_quants` (`rmse_type = 1`) on eight sub-blocks of `N` values, transposed, with
/// weights `wt` (x² for ggml's reference, the importance weights otherwise). Writes the codes
/// `l + nmax` (0..2·nmax) into `l_out[k][i]` for sub-block `k` and returns the scales.
///
/// For finite input, clamping `iscale·x` to [−nmax, nmax − 1] and rounding with 1.5·2²³ gives
/// ggml's `MAX(−nmax, MIN(nmax − 1, nearest_int(iscale·x)))` (the bounds are integers).
#[inline(always)]
pub(crate) fn symmetric_search<S: F32x8, const N: usize>(
    s: S,
    nmax: i32,
    xt: &[[f32; 8]; N],
    wt: &[[f32; 8]; N],
    l_out: &mut [[u8; N]; 8],
) -> [f32; 8] {
    let zero = s.splat(0.0);
    let magic = s.splat(12_582_912.0);
    let lo = s.splat(-(nmax as f32));
    let hi = s.splat((nmax - 1) as f32);
    let code = |iscale: S::V, x: S::V| symmetric_code(s, iscale, x, lo, hi, magic);
    let mut amax = zero;
    let mut max = zero;
    for row in xt {
        let x = s.load(row);
        let ax = s.abs(x);
        let m = s.lt(amax, ax);
        amax = s.select(m, ax, amax);
        max = s.select(m, x, max);
    }
    let nmaxf = nmax as f32;
    let mut lt = [[0.0f32; 8]; N];
    let mut laux = [[0.0f32; 8]; N];
    let mut scale = zero;
    let mut best = zero;
    // The first candidate (is = 0: −(nmax + 0)/max = −nmax/max exactly) is ggml's starting
    // point and is taken unconditionally; the others replace it where they fit better.
    for is in [
        0i32, -9, -8, -7, -6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ] {
        let iscale = s.div(s.splat(-(nmaxf + 0.1 * is as f32)), max);
        let mut sumlx = zero;
        let mut suml2 = zero;
        for i in 0..N {
            let (x, w) = (s.load(&xt[i]), s.load(&wt[i]));
            let l = code(iscale, x);
            laux[i] = s.store(l);
            sumlx = s.add(sumlx, s.mul(s.mul(w, x), l));
            suml2 = s.add(suml2, s.mul(s.mul(w, l), l));
        }
        if is == 0 {
            // ggml tests suml2 != 0; with weights ≥ 0 (the dispatch rejects others) that is
            // suml2 > 0.
            scale = s.select(s.lt(zero, suml2), s.div(sumlx, suml2), zero);
            best = s.mul(scale, sumlx);
            lt = laux;
            continue;
        }
        let accept = s.and(
            s.lt(zero, suml2),
            s.lt(s.mul(best, suml2), s.mul(sumlx, sumlx)),
        );
        if s.any(accept) {
            for i in 0..N {
                lt[i] = s.store(s.select(accept, s.load(&laux[i]), s.load(&lt[i])));
            }
            let sc = s.div(sumlx, suml2);
            scale = s.select(accept, sc, scale);
            best = s.select(accept, s.mul(sc, sumlx), best);
        }
    }
    let amax = s.store(amax);
    let mut scale = s.store(scale);
    for k in 0..8 {
        if amax[k] < super::ggml_search::GROUP_MAX_EPS {
            scale[k] = 0.0;
            l_out[k] = [0; N];
        } else {
            for i in 0..N {
                l_out[k][i] = (lt[i][k] as i32 + nmax) as u8;
            }
        }
    }
    scale
}

/// ggml's affine code `clamp(nearest_int(iscale·(x − min)), 0, nmax)` as a float.
#[inline(always)]
fn affine_code<S: F32x8>(
    s: S,
    iscale: S::V,
    x: S::V,
    min: S::V,
    zero: S::V,
    nmax: S::V,
    magic: S::V,
) -> S::V {
    let v = s.mul(iscale, s.sub(x, min));
    let v = s.min(s.max(v, zero), nmax);
    s.sub(s.add(v, magic), magic)
}

/// |diff| (`MAD`) or diff².
#[inline(always)]
fn error_term<S: F32x8, const MAD: bool>(s: S, diff: S::V) -> S::V {
    if MAD {
        s.abs(diff)
    } else {
        s.mul(diff, diff)
    }
}

/// ggml's symmetric code `clamp(nearest_int(iscale·x), lo, hi)` as a float.
#[inline(always)]
fn symmetric_code<S: F32x8>(s: S, iscale: S::V, x: S::V, lo: S::V, hi: S::V, magic: S::V) -> S::V {
    let v = s.min(s.max(s.mul(iscale, x), lo), hi);
    s.sub(s.add(v, magic), magic)
}

/// Transposes `L` consecutive sub-blocks of `N` values (`x[N·k + i]`) into lanes.
#[inline(always)]
pub(crate) fn transpose_in<const L: usize, const N: usize>(x: &[f32]) -> [[f32; L]; N] {
    // Loops rather than nested `array::from_fn`, whose closures are not always inlined.
    let x = &x[..L * N];
    let mut t = [[0.0f32; L]; N];
    for k in 0..L {
        for i in 0..N {
            t[i][k] = x[N * k + i];
        }
    }
    t
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::k_quants::ggml_search::{make_qkx2_quants, make_qx_quants};

    /// Checks [`affine_search`] with `s` against the scalar `make_qkx2_quants`, sub-block by
    /// sub-block, bit for bit.
    pub(crate) fn lanes_match_scalar<S: F32x8, const N: usize, const MAD: bool>(s: S) {
        let p = AffineSearch {
            rmin: -0.5,
            rdelta: 0.1,
            nstep: 15,
            use_mad: MAD,
        };
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut uniform = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 40) as f32 + 0.5) / (1u64 << 24) as f32 - 0.5
        };
        for round in 0..40 {
            let mut x: Vec<f32> = (0..8 * N).map(|_| uniform() * (1 + round) as f32).collect();
            // Lane 0 constant zero, lane 1 constant negative, lane 2 all positive.
            x[..N].fill(0.0);
            x[N..2 * N].fill(-0.3);
            for v in &mut x[2 * N..3 * N] {
                *v = v.abs() + 1.0;
            }
            let w: Vec<f32> = x.iter().map(|v| v.abs() + 0.01 * round as f32).collect();
            let xt = transpose_in::<8, N>(&x);
            let wt = transpose_in::<8, N>(&w);
            let mut lt = [[0.0f32; 8]; N];
            let fit = affine_search::<S, N, MAD>(s, 3 + round % 29, &xt, &wt, &mut lt, p);
            for k in 0..8 {
                let mut l = vec![0u8; N];
                let r = N * k..N * k + N;
                let (sc, mn) = make_qkx2_quants(3 + round % 29, &x[r.clone()], &w[r], &mut l, p);
                assert_eq!(
                    fit.scale[k].to_bits(),
                    sc.to_bits(),
                    "scale, lane {k} round {round}"
                );
                assert_eq!(
                    fit.the_min[k].to_bits(),
                    mn.to_bits(),
                    "min, lane {k} round {round}"
                );
                for i in 0..N {
                    assert_eq!(lt[i][k] as u8, l[i], "code {i}, lane {k} round {round}");
                }
            }
        }
    }

    /// Checks [`symmetric_search`] with `s` against the scalar `make_qx_quants`, bit for bit.
    pub(crate) fn symmetric_lanes_match_scalar<S: F32x8>(s: S) {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut uniform = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 40) as f32 + 0.5) / (1u64 << 24) as f32 - 0.5
        };
        for round in 0..40 {
            let mut x: Vec<f32> = (0..8 * 16)
                .map(|_| uniform() * (1 + round) as f32)
                .collect();
            x[..16].fill(0.0);
            x[16..32].fill(-0.3);
            x[40] = 1e-16;
            let weighted = round % 2 == 1;
            let w: Vec<f32> = if weighted {
                x.iter().map(|v| v.abs() + 0.01).collect()
            } else {
                x.iter().map(|v| v * v).collect()
            };
            let nmax = [32, 4, 31][round % 3];
            let xt = transpose_in::<8, 16>(&x);
            let wt = transpose_in::<8, 16>(&w);
            let mut l = [[0u8; 16]; 8];
            let sc = symmetric_search::<S, 16>(s, nmax, &xt, &wt, &mut l);
            for k in 0..8 {
                let r = 16 * k..16 * k + 16;
                let mut lr = [0u8; 16];
                let wk = weighted.then(|| &w[r.clone()]);
                let want = make_qx_quants(nmax, &x[r], &mut lr, wk);
                assert_eq!(
                    sc[k].to_bits(),
                    want.to_bits(),
                    "scale, lane {k} round {round}"
                );
                assert_eq!(l[k], lr, "codes, lane {k} round {round}");
            }
        }
    }

    #[test]
    fn portable_symmetric_lanes_match_scalar_search() {
        symmetric_lanes_match_scalar(Portable);
    }

    #[test]
    fn portable_lanes_match_scalar_search() {
        lanes_match_scalar::<Portable, 32, false>(Portable);
        lanes_match_scalar::<Portable, 16, true>(Portable);
        lanes_match_scalar::<Portable, 16, false>(Portable);
    }
}
