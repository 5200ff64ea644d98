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

use super::{f16_round, nearest_int};
use crate::blocks::QK_K;

/// Upper bound on B/C rounds; each round costs about 2×(candidates × 256) value updates.
pub(crate) const MAX_ROUNDS: usize = 4;

/// The largest finite f16 value.
const F16_MAX: f32 = 65504.0;

/// Independent partial sums per error accumulation (a multiple of the SIMD width; divides
/// every sub-block length).
const LANES: usize = 8;

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

#[inline(always)]
fn weights_or_ones(w: Option<&[f32]>) -> [f32; QK_K] {
    match w {
        Some(w) => std::array::from_fn(|i| w[i]),
        None => [1.0; QK_K],
    }
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

// ---------------------------------------------------------------- symmetric

/// Rounds the codes of one symmetric sub-block for scale `s = d·sc` and returns its error.
#[inline(always)]
fn sym_codes(fmt: &SymmetricFormat, x: &[f32], w: &[f32], s: f32, q: &mut [i32]) -> f32 {
    let mut err = 0.0f32;
    if s == 0.0 {
        for i in 0..x.len() {
            q[i] = 0;
            err += w[i] * x[i] * x[i];
        }
        return err;
    }
    // Partial sums in LANES independent accumulators let the compiler vectorise the loop
    // (a single running f32 sum would force sequential adds); sub-blocks are 16 or 32 long.
    let inv = 1.0 / s;
    let mut acc = [0.0f32; LANES];
    for ((xc, wc), qc) in x
        .chunks_exact(LANES)
        .zip(w.chunks_exact(LANES))
        .zip(q.chunks_exact_mut(LANES))
    {
        for k in 0..LANES {
            let l = nearest_int(xc[k] * inv).clamp(fmt.qmin, fmt.qmax);
            qc[k] = l;
            let diff = xc[k] - s * l as f32;
            acc[k] += wc[k] * diff * diff;
        }
    }
    err + acc.iter().sum::<f32>()
}

#[inline(always)]
fn sym_error<const NSUB: usize>(
    fmt: &SymmetricFormat,
    x: &[f32],
    w: &[f32],
    s: &SymmetricState<NSUB>,
) -> f32 {
    let mut err = 0.0f32;
    for j in 0..NSUB {
        let sj = s.d * s.sc[j] as f32;
        for i in j * fmt.sub_len..(j + 1) * fmt.sub_len {
            let diff = x[i] - sj * s.q[i] as f32;
            err += w[i] * diff * diff;
        }
    }
    err
}

/// Improves a symmetric super-block in place (see the module docs), in at most `max_rounds`
/// rounds.
#[inline(always)]
pub(crate) fn refine_symmetric<const NSUB: usize>(
    fmt: &SymmetricFormat,
    x: &[f32],
    w: Option<&[f32]>,
    st: &mut SymmetricState<NSUB>,
    max_rounds: usize,
) {
    debug_assert_eq!(NSUB * fmt.sub_len, QK_K);
    let w = weights_or_ones(w);
    let n = fmt.sub_len;
    if !st.d.is_finite() {
        // Values beyond what an f16 super-block scale can reach (ggml writes inf here):
        // saturate at the largest finite f16 and re-round the codes, so the block stays finite.
        st.d = if st.d.is_nan() {
            0.0
        } else {
            F16_MAX.copysign(st.d)
        };
        for j in 0..NSUB {
            let r = j * n..(j + 1) * n;
            sym_codes(
                fmt,
                &x[r.clone()],
                &w[r.clone()],
                st.d * st.sc[j] as f32,
                &mut st.q[r],
            );
        }
    }
    let mut best = sym_error(fmt, x, &w, st);
    let mut qtmp = [0i32; 32];
    let mut qbest = [0i32; 32];
    for _ in 0..max_rounds {
        let start = best;
        if st.d != 0.0 && st.d.is_finite() {
            // B: per sub-block scale search.
            for j in 0..NSUB {
                let r = j * n..(j + 1) * n;
                let (xs, ws) = (&x[r.clone()], &w[r.clone()]);
                let mut cur = sym_codes(fmt, xs, ws, st.d * st.sc[j] as f32, &mut qbest[..n]);
                let mut best_sc = st.sc[j];
                // Continuous optimum for the current codes, and for codes of the opposite sign
                // convention (the asymmetric grid makes the sign of the scale matter).
                let (mut sxq, mut sqq) = (0.0f32, 0.0f32);
                for i in 0..n {
                    let q = st.q[j * n + i] as f32;
                    sxq += ws[i] * xs[i] * q;
                    sqq += ws[i] * q * q;
                }
                let c0 = if sqq > 0.0 {
                    nearest_int((sxq / sqq / st.d).clamp(-1e6, 1e6))
                } else {
                    st.sc[j]
                };
                for c in fmt
                    .scale_offsets
                    .iter()
                    .map(|o| c0 + o)
                    .chain([-c0, -c0 - 1, -c0 + 1])
                {
                    let c = c.clamp(fmt.scmin, fmt.scmax);
                    if c == best_sc {
                        continue;
                    }
                    let e = sym_codes(fmt, xs, ws, st.d * c as f32, &mut qtmp[..n]);
                    if e < cur {
                        cur = e;
                        best_sc = c;
                        qbest[..n].copy_from_slice(&qtmp[..n]);
                    }
                }
                st.sc[j] = best_sc;
                st.q[r].copy_from_slice(&qbest[..n]);
            }
            best = sym_error(fmt, x, &w, st);
        }
        // C: refit d to the integer scales and codes.
        let (mut sxa, mut saa) = (0.0f64, 0.0f64);
        for j in 0..NSUB {
            for i in j * n..(j + 1) * n {
                let a = (st.sc[j] * st.q[i]) as f64;
                sxa += (w[i] * x[i]) as f64 * a;
                saa += w[i] as f64 * a * a;
            }
        }
        if saa > 0.0 {
            let dfit = f16_round((sxa / saa) as f32);
            let mut cand_q = [0i32; QK_K];
            for dc in f16_neighbours(dfit).into_iter().chain([st.d]) {
                if dc == st.d || !dc.is_finite() {
                    continue;
                }
                let mut e = 0.0f32;
                for j in 0..NSUB {
                    let r = j * n..(j + 1) * n;
                    e += sym_codes(
                        fmt,
                        &x[r.clone()],
                        &w[r.clone()],
                        dc * st.sc[j] as f32,
                        &mut cand_q[r],
                    );
                }
                if e < best {
                    best = e;
                    st.d = dc;
                    st.q = cand_q;
                }
            }
        }
        if best.partial_cmp(&start) != Some(std::cmp::Ordering::Less) {
            break;
        }
    }
}

// ---------------------------------------------------------------- affine

/// Rounds the codes of one affine sub-block for scale `s` and offset `m` (x̂ = s·q − m) and
/// returns its error.
#[inline(always)]
fn aff_codes(qmax: i32, x: &[f32], w: &[f32], s: f32, m: f32, q: &mut [i32]) -> f32 {
    let mut err = 0.0f32;
    if s == 0.0 {
        for i in 0..x.len() {
            q[i] = 0;
            let diff = x[i] + m;
            err += w[i] * diff * diff;
        }
        return err;
    }
    let inv = 1.0 / s;
    let mut acc = [0.0f32; LANES];
    for ((xc, wc), qc) in x
        .chunks_exact(LANES)
        .zip(w.chunks_exact(LANES))
        .zip(q.chunks_exact_mut(LANES))
    {
        for k in 0..LANES {
            let l = nearest_int(((xc[k] + m) * inv).clamp(-1.0, qmax as f32 + 1.0)).clamp(0, qmax);
            qc[k] = l;
            let diff = xc[k] - (s * l as f32 - m);
            acc[k] += wc[k] * diff * diff;
        }
    }
    err + acc.iter().sum::<f32>()
}

#[inline(always)]
fn aff_error<const NSUB: usize>(
    fmt: &AffineFormat,
    x: &[f32],
    w: &[f32],
    s: &AffineState<NSUB>,
) -> f32 {
    let mut err = 0.0f32;
    for j in 0..NSUB {
        let sj = s.d * s.ls[j] as f32;
        let mj = s.dmin * s.lm[j] as f32;
        for i in j * fmt.sub_len..(j + 1) * fmt.sub_len {
            let diff = x[i] - (sj * s.q[i] as f32 - mj);
            err += w[i] * diff * diff;
        }
    }
    err
}

/// Improves an affine super-block in place (see the module docs), in at most `max_rounds`
/// rounds.
#[inline(always)]
pub(crate) fn refine_affine<const NSUB: usize>(
    fmt: &AffineFormat,
    x: &[f32],
    w: Option<&[f32]>,
    st: &mut AffineState<NSUB>,
    max_rounds: usize,
) {
    debug_assert_eq!(NSUB * fmt.sub_len, QK_K);
    let w = weights_or_ones(w);
    let n = fmt.sub_len;
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
        for j in 0..NSUB {
            let r = j * n..(j + 1) * n;
            let (s, m) = (st.d * st.ls[j] as f32, st.dmin * st.lm[j] as f32);
            aff_codes(fmt.qmax, &x[r.clone()], &w[r.clone()], s, m, &mut st.q[r]);
        }
    }
    let mut best = aff_error(fmt, x, &w, st);
    let mut qtmp = [0i32; 32];
    let mut qbest = [0i32; 32];
    for _ in 0..max_rounds {
        let start = best;
        // B: per sub-block (scale, min) search.
        for j in 0..NSUB {
            let r = j * n..(j + 1) * n;
            let (xs, ws) = (&x[r.clone()], &w[r.clone()]);
            let s_cur = st.d * st.ls[j] as f32;
            let m_cur = st.dmin * st.lm[j] as f32;
            let mut cur = aff_codes(fmt.qmax, xs, ws, s_cur, m_cur, &mut qbest[..n]);
            let (mut bls, mut blm) = (st.ls[j], st.lm[j]);
            // Weighted least squares for x ≈ s·q − m with the current codes.
            let (mut sw, mut sx, mut sq, mut sqq, mut sxq) =
                (0.0f32, 0.0f32, 0.0f32, 0.0f32, 0.0f32);
            for i in 0..n {
                let q = st.q[j * n + i] as f32;
                sw += ws[i];
                sx += ws[i] * xs[i];
                sq += ws[i] * q;
                sqq += ws[i] * q * q;
                sxq += ws[i] * xs[i] * q;
            }
            let det = sw * sqq - sq * sq;
            let (s_fit, m_fit) = if det > 0.0 {
                let s = (sw * sxq - sx * sq) / det;
                let b = (sqq * sx - sq * sxq) / det; // x ≈ s·q + b, so m = −b
                (s, -b)
            } else {
                (s_cur, m_cur)
            };
            let to_code = |v: f32, unit: f32, fallback: i32| {
                if unit != 0.0 && unit.is_finite() {
                    nearest_int((v / unit).clamp(-1e6, 1e6))
                } else {
                    fallback
                }
            };
            let c_s = to_code(s_fit, st.d, st.ls[j]);
            let c_m = to_code(m_fit, st.dmin, st.lm[j]);
            for &ds in fmt.scale_offsets {
                for &dm in fmt.min_offsets {
                    let ls = (c_s + ds).clamp(0, fmt.lmax);
                    let lm = (c_m + dm).clamp(0, fmt.lmax);
                    if ls == bls && lm == blm {
                        continue;
                    }
                    let e = aff_codes(
                        fmt.qmax,
                        xs,
                        ws,
                        st.d * ls as f32,
                        st.dmin * lm as f32,
                        &mut qtmp[..n],
                    );
                    if e < cur {
                        cur = e;
                        bls = ls;
                        blm = lm;
                        qbest[..n].copy_from_slice(&qtmp[..n]);
                    }
                }
            }
            st.ls[j] = bls;
            st.lm[j] = blm;
            st.q[r].copy_from_slice(&qbest[..n]);
        }
        best = aff_error(fmt, x, &w, st);

        // C: refit (d, dmin) to the integer codes: x ≈ d·a − dmin·b, a = ls·q, b = lm.
        let (mut saa, mut sab, mut sbb, mut sxa, mut sxb) =
            (0.0f64, 0.0f64, 0.0f64, 0.0f64, 0.0f64);
        for j in 0..NSUB {
            let b = st.lm[j] as f64;
            for i in j * n..(j + 1) * n {
                let a = (st.ls[j] * st.q[i]) as f64;
                let wi = w[i] as f64;
                let xi = x[i] as f64;
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
            let dfit = f16_round(dfit as f32);
            let mfit = f16_round(mfit as f32);
            let mut cand_q = [0i32; QK_K];
            let dn = f16_neighbours(dfit);
            let mn = f16_neighbours(mfit);
            for &dc in &dn[..3] {
                for &mc in &mn[..3] {
                    if (dc == st.d && mc == st.dmin) || !dc.is_finite() || !mc.is_finite() {
                        continue;
                    }
                    let mut e = 0.0f32;
                    for j in 0..NSUB {
                        let r = j * n..(j + 1) * n;
                        e += aff_codes(
                            fmt.qmax,
                            &x[r.clone()],
                            &w[r.clone()],
                            dc * st.ls[j] as f32,
                            mc * st.lm[j] as f32,
                            &mut cand_q[r],
                        );
                        if e.partial_cmp(&best) != Some(std::cmp::Ordering::Less) {
                            break;
                        }
                    }
                    if e < best {
                        best = e;
                        st.d = dc;
                        st.dmin = mc;
                        st.q = cand_q;
                    }
                }
            }
        }
        if best.partial_cmp(&start) != Some(std::cmp::Ordering::Less) {
            break;
        }
    }
}
