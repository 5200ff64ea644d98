//! ingot's K-quant search: improve a complete quantization of one super-block on the exact
//! objective Σ w·(x − x̂)² (w = 1 without importance weights), accepting only changes that lower
//! it, so the result is never worse than the starting point (ggml's own quantization).
//!
//! A super-block is described by integer codes q, integer sub-block scales (and mins) and f16
//! super-block factors. With all but one group of unknowns fixed, each step solves its
//! sub-problem exactly or over a small candidate set:
//!
//! ```text
//! repeat until no step lowers the error (at most MAX_ROUNDS):
//!   B  for each sub-block j: for scale (and min) codes near the weighted least-squares optimum
//!      of the current codes (a per-type window of offsets, e.g. ±16 for Q6_K's 8-bit
//!      scales), and the current ones:
//!          re-round every code of the sub-block against them (exact for fixed scales, since
//!          the objective is separable per value) and keep the pair with the lowest error
//!   C  fit the super-block factors (d, or d and dmin) by weighted least squares given all
//!      integer codes and scales (x̂ is linear in them: x̂ = d·(sc·q) − dmin·m);
//!      try the f16 rounding of the fit and its f16 neighbours, re-round codes for each,
//!      keep the best (the current factors are a candidate, so the error never rises)
//! ```
//!
//! llama.cpp instead fixes the sub-block scales from a per-sub-block search, quantizes them to
//! 6 (or 4, 8) bits against a super-block scale chosen on the float scales, and re-rounds the
//! values once: it never re-fits the super-block factor to the integer scales and codes, nor
//! revisits the integer scales afterwards, which is where the gain here comes from.
//!
//! Every evaluation runs on all sub-blocks of the super-block at once, one sub-block per lane
//! (`xt[i][k]` = value `i` of sub-block `k`, transposed once per block): one candidate scale
//! (and min) per lane, every code re-rounded, the error accumulated per lane in value order.
//! Each lane keeps its best candidate with a strict `<` in candidate order, and the winning
//! codes are computed once at the end. The loops are plain per-lane IEEE operations over
//! fixed-size arrays, so the instruction-set levels (`arch`) vectorise them without changing a
//! bit of the result.
//!
//! Codes are rounded as floats: clamping `x/s` (or `(x + m)/s`) to the code range, then adding
//! and removing 1.5·2²³, rounds half to even like [`nearest_int`], exactly (the clamped value is
//! far below 2²²). The division is a multiplication by the lane's `1/s`, which can differ from
//! `x/s` in the last bit; a final check keeps the starting block if the result were ever worse
//! on the objective.

use super::lanes::F32x8;
use super::{f16_round, nearest_int};
use crate::blocks::QK_K;

/// Upper bound on B/C rounds; each round costs about (candidates + 10) × 256 value updates.
pub(crate) const MAX_ROUNDS: usize = 4;

/// The largest finite f16 value.
const F16_MAX: f32 = 65504.0;

/// 1.5·2²³: adding and subtracting it rounds an f32 of magnitude below 2²² to the nearest
/// integer, ties to even (the float form of [`nearest_int`]).
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Grid of a symmetric K-quant (Q3_K, Q6_K): x̂ = d·sc·q.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SymmetricFormat {
    /// Values per sub-block.
    pub sub_len: usize,
    /// Smallest code.
    pub qmin: i32,
    /// Largest code.
    pub qmax: i32,
    /// Smallest sub-block scale.
    pub scmin: i32,
    /// Largest sub-block scale.
    pub scmax: i32,
    /// Offsets from the least-squares scale code tried in step B (the opposite sign's
    /// neighbourhood is always tried too). Wide windows pay off: ggml's scales are often
    /// several codes away from the best ones once d is refitted.
    pub scale_offsets: &'static [i32],
}

/// One symmetric super-block: `d` holds an exact f16 value.
#[derive(Clone, Debug)]
pub(crate) struct SymmetricState<const NSUB: usize> {
    pub d: f32,
    pub sc: [i32; NSUB],
    pub q: [i32; QK_K],
}

/// Grid of an affine K-quant (Q2_K, Q4_K, Q5_K): x̂ = d·ls·q − dmin·lm.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AffineFormat {
    /// Values per sub-block.
    pub sub_len: usize,
    /// Largest code (codes start at 0).
    pub qmax: i32,
    /// Largest scale and min code (they start at 0).
    pub lmax: i32,
    /// Offsets from the least-squares scale code tried in step B.
    pub scale_offsets: &'static [i32],
    /// Offsets from the least-squares min code tried in step B.
    pub min_offsets: &'static [i32],
}

/// One affine super-block: `d` and `dmin` hold exact f16 values.
#[derive(Clone, Debug)]
pub(crate) struct AffineState<const NSUB: usize> {
    pub d: f32,
    pub dmin: f32,
    pub ls: [i32; NSUB],
    pub lm: [i32; NSUB],
    pub q: [i32; QK_K],
}

/// The f16 values adjacent to `v` (an exact f16 value) and `v` itself, finite ones only.
#[inline(always)]
fn f16_neighbours(v: f32) -> [f32; 5] {
    let h = half::f16::from_f32(v);
    let bits = h.to_bits();
    let step = |k: i32| {
        // Moving the bit pattern moves along the f16 number line within one sign; across
        // zero it would jump, so stay with the sign of v (0 maps to the smallest subnormals).
        let b = bits as i32 + k;
        if (0..0x7C00).contains(&(b & 0x7FFF)) && (b >> 15) == (bits as i32 >> 15) {
            half::f16::from_bits(b as u16).to_f32()
        } else {
            v
        }
    };
    [v, step(-1), step(1), step(-2), step(2)]
}

/// Lanes per evaluation: one AVX-512 vector, two AVX2 vectors. A super-block of 16 sub-blocks
/// fills them; one of 8 sub-blocks (Q4_K, Q5_K) is replicated twice, so each pass evaluates two
/// candidates.
const LANES: usize = 16;

/// Per-lane values.
type Lane = [f32; LANES];

/// One super-block transposed into lanes: `x[i][k]`, `w[i][k]` = value `i` of sub-block
/// `k % nsub` (`nsub` sub-blocks of `N` values, replicated `LANES / nsub` times). Without
/// importance weights `w` is all ones (the plain squared error), which keeps one code path for
/// both objectives.
struct Lanes<const N: usize> {
    x: [Lane; N],
    w: [Lane; N],
}

impl<const N: usize> Lanes<N> {
    #[inline(always)]
    fn new(x: &[f32], w: Option<&[f32]>) -> Self {
        Lanes {
            x: transpose(x),
            w: match w {
                Some(w) => transpose(w),
                None => [[1.0; LANES]; N],
            },
        }
    }

    /// Per lane: the error of codes re-rounded for x̂ = s·q − m (q in lo..=hi), and, when
    /// `codes` is given, those codes.
    #[inline(always)]
    fn eval<S: F32x8>(
        &self,
        v: S,
        s: &Lane,
        m: &Lane,
        lo: f32,
        hi: f32,
        mut codes: Option<&mut [Lane; N]>,
    ) -> Lane {
        // A zero scale gives code 0 everywhere (the product with inv = 0), as for ggml.
        let inv: Lane = std::array::from_fn(|k| if s[k] != 0.0 { 1.0 / s[k] } else { 0.0 });
        if N > 16 {
            // Sub-blocks of 32 values: the compiler pairs lanes the wrong way round for these
            // loops (two-lane vectors along the values), so spell out the vectors.
            return self.eval_vectors(v, s, m, &inv, lo, hi, codes);
        }
        let mut err = [0.0f32; LANES];
        for i in 0..N {
            let (xi, wi) = (&self.x[i], &self.w[i]);
            // Two passes over the lanes (round, then accumulate) keep both loops in the
            // shape the compiler turns into one vector operation per step.
            let mut li = [0.0f32; LANES];
            for k in 0..LANES {
                let t = (xi[k] + m[k]) * inv[k];
                let t = if t > lo { t } else { lo };
                let t = if t < hi { t } else { hi };
                li[k] = (t + ROUND_MAGIC) - ROUND_MAGIC;
            }
            for k in 0..LANES {
                let diff = xi[k] - (s[k] * li[k] - m[k]);
                err[k] += wi[k] * diff * diff;
            }
            if let Some(c) = codes.as_deref_mut() {
                c[i] = li;
            }
        }
        err
    }

    /// [`Self::eval`] in explicit eight-lane vectors of `v` (the same operations per lane).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn eval_vectors<S: F32x8>(
        &self,
        v: S,
        s: &Lane,
        m: &Lane,
        inv: &Lane,
        lo: f32,
        hi: f32,
        mut codes: Option<&mut [Lane; N]>,
    ) -> Lane {
        let (lo, hi, magic) = (v.splat(lo), v.splat(hi), v.splat(ROUND_MAGIC));
        let mut err = [0.0f32; LANES];
        for g in 0..LANES / 8 {
            let (sg, mg, ig) = (v.load(part(s, g)), v.load(part(m, g)), v.load(part(inv, g)));
            let mut e = v.splat(0.0);
            for i in 0..N {
                let x = v.load(part(&self.x[i], g));
                let w = v.load(part(&self.w[i], g));
                let t = v.mul(v.add(x, mg), ig);
                let t = v.min(v.max(t, lo), hi);
                let l = v.sub(v.add(t, magic), magic);
                if let Some(c) = codes.as_deref_mut() {
                    c[i][8 * g..8 * g + 8].copy_from_slice(&v.store(l));
                }
                let diff = v.sub(x, v.sub(v.mul(sg, l), mg));
                e = v.add(e, v.mul(v.mul(w, diff), diff));
            }
            err[8 * g..8 * g + 8].copy_from_slice(&v.store(e));
        }
        err
    }

    /// Per lane: the error of the given codes for x̂ = s·q − m.
    #[inline(always)]
    fn error_of(&self, s: &Lane, m: &Lane, q: &[Lane; N]) -> Lane {
        let mut err = [0.0f32; LANES];
        for i in 0..N {
            for k in 0..LANES {
                let diff = self.x[i][k] - (s[k] * q[i][k] - m[k]);
                err[k] += self.w[i][k] * diff * diff;
            }
        }
        err
    }
}

/// Lanes `8·g..8·g + 8` of `a`.
#[inline(always)]
fn part(a: &Lane, g: usize) -> &[f32; 8] {
    a[8 * g..8 * g + 8]
        .try_into()
        .expect("LANES is a multiple of 8")
}

/// `x[N·(k mod nsub) + i]` → `[i][k]`, `nsub = 256 / N`.
#[inline(always)]
fn transpose<const N: usize>(x: &[f32]) -> [Lane; N] {
    // Loops rather than nested `array::from_fn`: those closures are not always inlined, and a
    // call per element costs more than the refinement itself.
    let x = &x[..QK_K];
    let nsub = QK_K / N;
    let mut t = [[0.0f32; LANES]; N];
    for k in 0..LANES {
        let sub = &x[N * (k % nsub)..N * (k % nsub) + N];
        for i in 0..N {
            t[i][k] = sub[i];
        }
    }
    t
}

/// Codes in natural order (`q[N·k + i]`) → transposed, replicated floats.
#[inline(always)]
fn codes_in<const N: usize>(q: &[i32; QK_K]) -> [Lane; N] {
    let nsub = QK_K / N;
    let mut t = [[0.0f32; LANES]; N];
    for k in 0..LANES {
        let sub = &q[N * (k % nsub)..N * (k % nsub) + N];
        for i in 0..N {
            t[i][k] = sub[i] as f32;
        }
    }
    t
}

/// Transposed float codes (first replica) → natural order.
#[inline(always)]
fn codes_out<const N: usize>(qt: &[Lane; N], q: &mut [i32; QK_K]) {
    for i in 0..N {
        for k in 0..QK_K / N {
            q[N * k + i] = qt[i][k] as i32;
        }
    }
}

/// Lane `k` = `f · c[k mod NSUB]`.
#[inline(always)]
fn scaled<const NSUB: usize>(f: f32, c: &[i32; NSUB]) -> Lane {
    std::array::from_fn(|k| f * c[k % NSUB] as f32)
}

/// The sum of replica `r`'s lanes (its super-block error), in lane order.
#[inline(always)]
fn replica_sum<const NSUB: usize>(e: &Lane, r: usize) -> f32 {
    e[r * NSUB..(r + 1) * NSUB].iter().sum()
}

// ---------------------------------------------------------------- symmetric

/// Improves a symmetric super-block of 16 sub-blocks of 16 values in place (see the module
/// docs), in at most `max_rounds` rounds.
#[inline(always)]
pub(crate) fn refine_symmetric<S: F32x8>(
    v: S,
    fmt: &SymmetricFormat,
    x: &[f32],
    w: Option<&[f32]>,
    st: &mut SymmetricState<16>,
    max_rounds: usize,
) {
    const N: usize = 16;
    debug_assert_eq!(fmt.sub_len, N);
    let lanes = Lanes::<N>::new(x, w);
    let (lo, hi) = (fmt.qmin as f32, fmt.qmax as f32);
    let zero = [0.0f32; LANES];
    let mut qt = codes_in::<N>(&st.q);
    if !st.d.is_finite() {
        // Values beyond what an f16 super-block scale can reach (ggml writes inf here):
        // saturate at the largest finite f16 and re-round the codes, so the block stays finite.
        st.d = if st.d.is_nan() {
            0.0
        } else {
            F16_MAX.copysign(st.d)
        };
        lanes.eval(v, &scaled(st.d, &st.sc), &zero, lo, hi, Some(&mut qt));
    }
    let start = (st.d, st.sc, qt);
    let start_err = replica_sum::<16>(&lanes.error_of(&scaled(st.d, &st.sc), &zero, &qt), 0);
    let mut best = start_err;
    for _ in 0..max_rounds {
        let round_start = best;
        if st.d != 0.0 && st.d.is_finite() {
            // B: per sub-block scale search. Candidates around the continuous optimum for the
            // current codes, and the neighbourhood of the opposite sign (the asymmetric code
            // range makes the sign of the scale matter).
            let (mut sxq, mut sqq) = (zero, zero);
            for i in 0..N {
                for k in 0..LANES {
                    let q = qt[i][k];
                    sxq[k] += lanes.w[i][k] * lanes.x[i][k] * q;
                    sqq[k] += lanes.w[i][k] * q * q;
                }
            }
            let c0: [i32; 16] = std::array::from_fn(|k| {
                if sqq[k] > 0.0 {
                    nearest_int((sxq[k] / sqq[k] / st.d).clamp(-1e6, 1e6))
                } else {
                    st.sc[k]
                }
            });
            let mut cur = lanes.eval(v, &scaled(st.d, &st.sc), &zero, lo, hi, None);
            let mut best_sc = st.sc;
            let flips = [(-1, 0), (-1, -1), (-1, 1)];
            for (sign, o) in fmt.scale_offsets.iter().map(|&o| (1, o)).chain(flips) {
                let c: [i32; 16] =
                    std::array::from_fn(|k| (sign * c0[k] + o).clamp(fmt.scmin, fmt.scmax));
                let e = lanes.eval(v, &scaled(st.d, &c), &zero, lo, hi, None);
                for k in 0..LANES {
                    if e[k] < cur[k] {
                        cur[k] = e[k];
                        best_sc[k] = c[k];
                    }
                }
            }
            st.sc = best_sc;
            lanes.eval(v, &scaled(st.d, &st.sc), &zero, lo, hi, Some(&mut qt));
            best = replica_sum::<16>(&cur, 0);
        }
        // C: refit d to the integer scales and codes.
        let (mut sxa, mut saa) = (0.0f64, 0.0f64);
        for i in 0..N {
            for k in 0..LANES {
                let a = st.sc[k] as f64 * qt[i][k] as f64;
                sxa += (lanes.w[i][k] * lanes.x[i][k]) as f64 * a;
                saa += lanes.w[i][k] as f64 * a * a;
            }
        }
        if saa > 0.0 {
            let dfit = f16_round((sxa / saa) as f32);
            let mut best_d = st.d;
            for dc in f16_neighbours(dfit) {
                if dc == st.d || !dc.is_finite() {
                    continue;
                }
                let e = lanes.eval(v, &scaled(dc, &st.sc), &zero, lo, hi, None);
                let e = replica_sum::<16>(&e, 0);
                if e < best {
                    best = e;
                    best_d = dc;
                }
            }
            if best_d != st.d {
                st.d = best_d;
                lanes.eval(v, &scaled(st.d, &st.sc), &zero, lo, hi, Some(&mut qt));
            }
        }
        if best.partial_cmp(&round_start) != Some(std::cmp::Ordering::Less) {
            break;
        }
    }
    let end_err = replica_sum::<16>(&lanes.error_of(&scaled(st.d, &st.sc), &zero, &qt), 0);
    if end_err.partial_cmp(&start_err) == Some(std::cmp::Ordering::Greater) {
        (st.d, st.sc, qt) = start;
    }
    codes_out(&qt, &mut st.q);
}

// ---------------------------------------------------------------- affine

/// Improves an affine super-block (`NSUB` sub-blocks of `N` values, NSUB = 8 or 16) in place
/// (see the module docs), in at most `max_rounds` rounds. With 8 sub-blocks each evaluation
/// pass covers two candidates (one per replica), taken in candidate order.
#[inline(always)]
pub(crate) fn refine_affine<S: F32x8, const NSUB: usize, const N: usize>(
    v: S,
    fmt: &AffineFormat,
    x: &[f32],
    w: Option<&[f32]>,
    st: &mut AffineState<NSUB>,
    max_rounds: usize,
) {
    debug_assert!(fmt.sub_len == N && NSUB * N == QK_K && LANES.is_multiple_of(NSUB));
    let reps = LANES / NSUB;
    let lanes = Lanes::<N>::new(x, w);
    let (lo, hi) = (0.0f32, fmt.qmax as f32);
    let mut qt = codes_in::<N>(&st.q);
    if !st.d.is_finite() || !st.dmin.is_finite() {
        // Values beyond what an f16 super-block scale can reach (ggml writes inf here):
        // saturate at the largest finite f16 and re-round the codes, so the block stays finite.
        let sat = |v: f32| {
            if v.is_nan() {
                0.0
            } else {
                v.clamp(-F16_MAX, F16_MAX)
            }
        };
        st.d = sat(st.d);
        st.dmin = sat(st.dmin);
        let (s, m) = (scaled(st.d, &st.ls), scaled(st.dmin, &st.lm));
        lanes.eval(v, &s, &m, lo, hi, Some(&mut qt));
    }
    let start = (st.d, st.dmin, st.ls, st.lm, qt);
    let (s, m) = (scaled(st.d, &st.ls), scaled(st.dmin, &st.lm));
    let start_err = replica_sum::<NSUB>(&lanes.error_of(&s, &m, &qt), 0);
    let mut best = start_err;
    let (so, mo) = (fmt.scale_offsets, fmt.min_offsets);
    let n_cand = so.len() * mo.len();
    for _ in 0..max_rounds {
        let round_start = best;
        // B: per sub-block (scale, min) search around the weighted least-squares fit
        // x ≈ s·q − m of the current codes.
        let zero = [0.0f32; LANES];
        let (mut sw, mut sx, mut sq, mut sqq, mut sxq) = (zero, zero, zero, zero, zero);
        for i in 0..N {
            for k in 0..LANES {
                let (wi, xi, q) = (lanes.w[i][k], lanes.x[i][k], qt[i][k]);
                sw[k] += wi;
                sx[k] += wi * xi;
                sq[k] += wi * q;
                sqq[k] += wi * q * q;
                sxq[k] += wi * xi * q;
            }
        }
        let to_code = |v: f32, unit: f32, fallback: i32| {
            if unit != 0.0 && unit.is_finite() {
                nearest_int((v / unit).clamp(-1e6, 1e6))
            } else {
                fallback
            }
        };
        let mut c_s = [0i32; LANES];
        let mut c_m = [0i32; LANES];
        for k in 0..LANES {
            let (ls, lm) = (st.ls[k % NSUB], st.lm[k % NSUB]);
            let det = sw[k] * sqq[k] - sq[k] * sq[k];
            (c_s[k], c_m[k]) = if det > 0.0 {
                let s = (sw[k] * sxq[k] - sx[k] * sq[k]) / det;
                let b = (sqq[k] * sx[k] - sq[k] * sxq[k]) / det; // x ≈ s·q + b, so m = −b
                (to_code(s, st.d, ls), to_code(-b, st.dmin, lm))
            } else {
                (ls, lm)
            };
        }
        let (s_cur, m_cur) = (scaled(st.d, &st.ls), scaled(st.dmin, &st.lm));
        let e = lanes.eval(v, &s_cur, &m_cur, lo, hi, None);
        let mut cur: [f32; NSUB] = std::array::from_fn(|j| e[j]);
        let (mut bls, mut blm) = (st.ls, st.lm);
        for t0 in (0..n_cand).step_by(reps) {
            // Replica r tries candidate t0 + r (the last one again past the end: it cannot win
            // twice under the strict comparison).
            let mut off = [(0i32, 0i32); LANES];
            for (r, o) in off.iter_mut().enumerate().take(reps) {
                let t = (t0 + r).min(n_cand - 1);
                *o = (so[t / mo.len()], mo[t % mo.len()]);
            }
            let ls: [i32; LANES] =
                std::array::from_fn(|k| (c_s[k] + off[k / NSUB].0).clamp(0, fmt.lmax));
            let lm: [i32; LANES] =
                std::array::from_fn(|k| (c_m[k] + off[k / NSUB].1).clamp(0, fmt.lmax));
            let e = lanes.eval(v, &scaled(st.d, &ls), &scaled(st.dmin, &lm), lo, hi, None);
            for k in 0..LANES {
                let j = k % NSUB;
                if e[k] < cur[j] {
                    cur[j] = e[k];
                    bls[j] = ls[k];
                    blm[j] = lm[k];
                }
            }
        }
        st.ls = bls;
        st.lm = blm;
        let (s, m) = (scaled(st.d, &st.ls), scaled(st.dmin, &st.lm));
        lanes.eval(v, &s, &m, lo, hi, Some(&mut qt));
        best = cur.iter().sum();

        // C: refit (d, dmin) to the integer codes: x ≈ d·a − dmin·b, a = ls·q, b = lm.
        let (mut saa, mut sab, mut sbb, mut sxa, mut sxb) =
            (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for i in 0..N {
            for k in 0..NSUB {
                let b = st.lm[k] as f64;
                let a = st.ls[k] as f64 * qt[i][k] as f64;
                let wi = lanes.w[i][k] as f64;
                let xi = lanes.x[i][k] as f64;
                saa += wi * a * a;
                sab += wi * a * b;
                sbb += wi * b * b;
                sxa += wi * xi * a;
                sxb += wi * xi * b;
            }
        }
        // Normal equations for (d, e = −dmin): [saa sab; sab sbb]·[d; e] = [sxa; sxb].
        let det = saa * sbb - sab * sab;
        let fit = if det > 1e-12 * (saa * sbb).max(f64::MIN_POSITIVE) {
            Some((
                (sxa * sbb - sxb * sab) / det,
                -(saa * sxb - sab * sxa) / det,
            ))
        } else if saa > 0.0 {
            Some((sxa / saa, st.dmin as f64))
        } else {
            None
        };
        if let Some((dfit, mfit)) = fit {
            let dn = f16_neighbours(f16_round(dfit as f32));
            let mn = f16_neighbours(f16_round(mfit as f32));
            let mut cands = [(0.0f32, 0.0f32); 9];
            let mut n = 0;
            for &dc in &dn[..3] {
                for &mc in &mn[..3] {
                    if (dc != st.d || mc != st.dmin) && dc.is_finite() && mc.is_finite() {
                        cands[n] = (dc, mc);
                        n += 1;
                    }
                }
            }
            let (mut best_d, mut best_m) = (st.d, st.dmin);
            for t0 in (0..n).step_by(reps) {
                let pick = |k: usize| cands[(t0 + k / NSUB).min(n - 1)];
                let s: Lane = std::array::from_fn(|k| pick(k).0 * st.ls[k % NSUB] as f32);
                let m: Lane = std::array::from_fn(|k| pick(k).1 * st.lm[k % NSUB] as f32);
                let e = lanes.eval(v, &s, &m, lo, hi, None);
                for r in 0..reps {
                    let er = replica_sum::<NSUB>(&e, r);
                    if er < best {
                        best = er;
                        (best_d, best_m) = pick(r * NSUB);
                    }
                }
            }
            if (best_d, best_m) != (st.d, st.dmin) {
                (st.d, st.dmin) = (best_d, best_m);
                let (s, m) = (scaled(st.d, &st.ls), scaled(st.dmin, &st.lm));
                lanes.eval(v, &s, &m, lo, hi, Some(&mut qt));
            }
        }
        if best.partial_cmp(&round_start) != Some(std::cmp::Ordering::Less) {
            break;
        }
    }
    let (s, m) = (scaled(st.d, &st.ls), scaled(st.dmin, &st.lm));
    let end_err = replica_sum::<NSUB>(&lanes.error_of(&s, &m, &qt), 0);
    if end_err.partial_cmp(&start_err) == Some(std::cmp::Ordering::Greater) {
        (st.d, st.dmin, st.ls, st.lm, qt) = start;
    }
    codes_out(&qt, &mut st.q);
}
