//! Hand-written AVX-512 kernel for ingot's default type-1 block without weights (Q4_1, Q5_1,
//! [`Effort::Fast`]: `search::refine_type1` on ggml's reference block), 16 blocks at once in
//! the style of [`super::type0_avx512`]:
//!
//! ```text
//! per block (two registers): min, max; reference levels q; the sums of the fit
//! per lane (16 blocks):      d = (max − min)/n, 1/d, f16 bits; the 2×2 least squares in f64
//!                            (two registers of 8); the f16 pairs of (d, m)
//! per block:                 the 4 (d, m) candidates' nearest levels and errors
//! per lane:                  first candidate strictly better than the best so far
//! ```
//!
//! Same float operations as the generic body, in the same order (block sums through
//! `reduce16`, `search::hsum`'s order), so the bytes equal the scalar table's; tested by name.

use core::arch::x86_64::*;

use half::f16;

use super::type0_avx512::{
    block_of, both, f16_bits, f16_bits_to_f32, f16_pair16, five_bits, from_array, inverse_or_zero,
    lane_terms, load, nibbles, reduce16, splat, store_qs, to_array, to_array_u32, Halves, GROUP,
    MAX, MIN, SUM,
};
use crate::blocks::{BlockQ4_1, BlockQ5_1, QK};
use crate::legacy::arch::SearchRow;
use crate::legacy::Effort;

/// The best block so far of each lane: f16 bits of d and m, error and levels.
struct Best {
    d: __m512i,
    m: __m512i,
    err: __m512,
    l: [Halves; GROUP],
}

/// One half of ggml's reference levels for the highest level `NMAX`: Q4_1
/// `trunc_u8(((x − min)·id + ½).min(15))`, Q5_1 `trunc_u8((x − min)·id + ½) & 31`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn reference_half<const NMAX: i32>(x: __m512, min: __m512, id: __m512) -> __m512 {
    let t = _mm512_add_ps(
        _mm512_mul_ps(_mm512_sub_ps(x, min), id),
        _mm512_set1_ps(0.5),
    );
    let t = if NMAX == 15 {
        _mm512_min_ps(t, _mm512_set1_ps(15.0))
    } else {
        t
    };
    // trunc_u8: NaN and negatives → 0, saturating at 255, then truncation (floor here).
    let c = _mm512_max_ps(t, _mm512_setzero_ps());
    let c = _mm512_min_ps(c, _mm512_set1_ps(255.0));
    let q = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(c);
    if NMAX == 15 {
        q
    } else {
        let bits = _mm512_and_si512(_mm512_cvttps_epi32(q), _mm512_set1_epi32(0x1F));
        _mm512_cvtepi32_ps(bits)
    }
}

/// Per-lane squared-error terms of levels `l` at (d, m): r = x − (l·d + m), r·r.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn error_terms(v: Halves, l: Halves, d: f32, m: f32) -> __m512 {
    let fit = both!(_mm512_add_ps, both!(_mm512_mul_ps, l, splat(d)), splat(m));
    let r = both!(_mm512_sub_ps, v, fit);
    lane_terms(both!(_mm512_mul_ps, r, r))
}

/// The lower and upper 8 lanes of a vector as f64.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn widen(v: __m512) -> [__m512d; 2] {
    [
        _mm512_cvtps_pd(_mm512_castps512_ps256(v)),
        _mm512_cvtps_pd(_mm512_extractf32x8_ps::<1>(v)),
    ]
}

/// `search::fit_type1` on 16 lanes of f32 sums (Σ1 = 32): (d, m) as f32 and the lanes with a
/// fit (det neither NaN nor ≤ 1e−12·Σ1·Σll, d > 0).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn fit(sl: __m512, sll: __m512, sx: __m512, sxl: __m512) -> (__m512, __m512, __mmask16) {
    let (sl, sll, sx, sxl) = (widen(sl), widen(sll), widen(sx), widen(sxl));
    let sw = _mm512_set1_pd(32.0);
    let mut d = [_mm512_setzero_ps(); 2];
    let mut m = [_mm512_setzero_ps(); 2];
    let mut ok = [0u8; 2];
    for h in 0..2 {
        let det = _mm512_sub_pd(_mm512_mul_pd(sw, sll[h]), _mm512_mul_pd(sl[h], sl[h]));
        let floor = _mm512_mul_pd(_mm512_mul_pd(_mm512_set1_pd(1e-12), sw), sll[h]);
        // Not (NaN or det ≤ floor): det > floor, ordered.
        let valid = _mm512_cmp_pd_mask::<_CMP_GT_OQ>(det, floor)
            & _mm512_cmp_pd_mask::<_CMP_ORD_Q>(det, det);
        let dh = _mm512_div_pd(
            _mm512_sub_pd(_mm512_mul_pd(sw, sxl[h]), _mm512_mul_pd(sl[h], sx[h])),
            det,
        );
        let mh = _mm512_div_pd(
            _mm512_sub_pd(_mm512_mul_pd(sll[h], sx[h]), _mm512_mul_pd(sl[h], sxl[h])),
            det,
        );
        ok[h] = valid & _mm512_cmp_pd_mask::<_CMP_GT_OQ>(dh, _mm512_setzero_pd());
        d[h] = _mm512_castps256_ps512(_mm512_cvtpd_ps(dh));
        m[h] = _mm512_castps256_ps512(_mm512_cvtpd_ps(mh));
    }
    (
        _mm512_shuffle_f32x4::<0b01_00_01_00>(d[0], d[1]),
        _mm512_shuffle_f32x4::<0b01_00_01_00>(m[0], m[1]),
        u16::from(ok[0]) | (u16::from(ok[1]) << 8),
    )
}

/// `search::refine_type1` on ggml's reference blocks, for 16 consecutive blocks (`x`: 512
/// values): each block's (d bits, m bits, levels q as f32).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn fast_group<const NMAX: i32>(
    x: &[f32],
    d_bits: &mut [u16; GROUP],
    m_bits: &mut [u16; GROUP],
    q: &mut [Halves; GROUP],
) {
    let zero = _mm512_setzero_ps();
    let none = Halves { lo: zero, hi: zero };
    let blocks: [&[f32; QK]; GROUP] = std::array::from_fn(|k| block_of(&x[k * QK..(k + 1) * QK]));
    let mut v = [none; GROUP];
    let (mut lo, mut hi) = ([zero; GROUP], [zero; GROUP]);
    let (fmax, fmin) = (_mm512_set1_ps(f32::MAX), _mm512_set1_ps(-f32::MAX));
    for k in 0..GROUP {
        v[k] = load(blocks[k]);
        // min_max's lanes: `c < lo ? c : lo` from f32::MAX (NaN never enters), likewise max.
        lo[k] = _mm512_min_ps(v[k].hi, _mm512_min_ps(v[k].lo, fmax));
        hi[k] = _mm512_max_ps(v[k].hi, _mm512_max_ps(v[k].lo, fmin));
    }
    let (mut min, mut max) = (
        to_array(reduce16::<MIN>(&lo)),
        to_array(reduce16::<MAX>(&hi)),
    );
    for k in 0..GROUP {
        // A zero extreme may be −0 or +0 depending on the order: ggml's order decides.
        if min[k] == 0.0 || max[k] == 0.0 {
            (min[k], max[k]) = crate::legacy::min_max(blocks[k]);
        }
    }
    let (minv, maxv) = (from_array(&min), from_array(&max));
    let nf = NMAX as f32;
    let d = _mm512_div_ps(_mm512_sub_ps(maxv, minv), _mm512_set1_ps(nf));
    let id = to_array(inverse_or_zero(d));
    let ref_d = f16_bits(d);
    let ref_m = f16_bits(minv);
    let (dref, mref) = (
        to_array(f16_bits_to_f32(ref_d)),
        to_array(f16_bits_to_f32(ref_m)),
    );
    let mut l = [none; GROUP];
    let mut e = [zero; GROUP];
    let mut sums = [[zero; GROUP]; 4]; // Σl, Σl², Σx, Σxl
    let mut sxx = [zero; GROUP];
    for k in 0..GROUP {
        let (mk, idk) = (_mm512_set1_ps(min[k]), _mm512_set1_ps(id[k]));
        l[k] = Halves {
            lo: reference_half::<NMAX>(v[k].lo, mk, idk),
            hi: reference_half::<NMAX>(v[k].hi, mk, idk),
        };
        e[k] = error_terms(v[k], l[k], dref[k], mref[k]);
        sums[0][k] = lane_terms(l[k]);
        sums[1][k] = lane_terms(both!(_mm512_mul_ps, l[k], l[k]));
        sums[2][k] = lane_terms(v[k]);
        sums[3][k] = lane_terms(both!(_mm512_mul_ps, v[k], l[k]));
        sxx[k] = lane_terms(both!(_mm512_mul_ps, v[k], v[k]));
    }
    let mut best = Best {
        d: ref_d,
        m: ref_m,
        err: reduce16::<SUM>(&e),
        l,
    };
    let (dfit, mfit, fits) = fit(
        reduce16::<SUM>(&sums[0]),
        reduce16::<SUM>(&sums[1]),
        reduce16::<SUM>(&sums[2]),
        reduce16::<SUM>(&sums[3]),
    );
    let allow = fits & !_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(best.err, zero);
    // try_type1: d's f16 pair outer (skipping d ≤ 0), m's inner, first strictly better wins.
    let (d1, d2) = f16_pair16(dfit);
    let (m1, m2) = f16_pair16(mfit);
    for db in [d1, d2] {
        let dd = f16_bits_to_f32(db);
        let positive = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(dd, zero);
        let (ida, dda) = (to_array(inverse_or_zero(dd)), to_array(dd));
        for mb in [m1, m2] {
            let ma = to_array(f16_bits_to_f32(mb));
            let mut lc = [none; GROUP];
            for k in 0..GROUP {
                lc[k] = nearest_levels(v[k], ida[k], ma[k], nf);
                e[k] = error_terms(v[k], lc[k], dda[k], ma[k]);
            }
            let err = reduce16::<SUM>(&e);
            let take = allow & positive & _mm512_cmp_ps_mask::<_CMP_LT_OQ>(err, best.err);
            best.err = _mm512_mask_mov_ps(best.err, take, err);
            best.d = _mm512_mask_mov_epi32(best.d, take, db);
            best.m = _mm512_mask_mov_epi32(best.m, take, mb);
            for (k, lk) in lc.iter().enumerate() {
                if (take >> k) & 1 != 0 {
                    best.l[k] = *lk;
                }
            }
        }
    }
    let (bd, bm) = (to_array_u32(best.d), to_array_u32(best.m));
    for k in 0..GROUP {
        d_bits[k] = bd[k] as u16;
        m_bits[k] = bm[k] as u16;
        q[k] = best.l[k];
    }
}

/// Nearest levels clamp(round((x − m)·id), 0, n) (`search::assign`, ties to even).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn nearest_levels(v: Halves, id: f32, m: f32, nf: f32) -> Halves {
    let magic = splat(crate::legacy::MAGIC);
    let t = both!(_mm512_mul_ps, both!(_mm512_sub_ps, v, splat(m)), splat(id));
    let r = both!(_mm512_sub_ps, both!(_mm512_add_ps, t, magic), magic);
    let r = both!(_mm512_max_ps, r, splat(0.0));
    both!(_mm512_min_ps, r, splat(nf))
}

/// Q4_1's block: d, m, nibbles as Q4_0.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn store_q4_1(o: &mut BlockQ4_1, d: u16, m: u16, q: Halves) {
    o.d = f16::from_bits(d);
    o.m = f16::from_bits(m);
    store_qs(&mut o.qs, nibbles(q));
}

/// Q5_1's block: d, m, fifth bits and nibbles as Q5_0.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn store_q5_1(o: &mut BlockQ5_1, d: u16, m: u16, q: Halves) {
    let (qh, qs) = five_bits(q);
    o.d = f16::from_bits(d);
    o.m = f16::from_bits(m);
    o.qh = qh;
    store_qs(&mut o.qs, qs);
}

/// ingot's type-1 row: without weights in [`Effort::Fast`], groups of 16 blocks through
/// [`fast_group`]; the rest through `generic`, this level's compiled generic body.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn search_row<const NMAX: i32, B>(
    x: &[f32],
    weights: Option<&[f32]>,
    effort: Effort,
    out: &mut [B],
    store: fn(&mut B, u16, u16, Halves),
    generic: SearchRow<B>,
) {
    if weights.is_some() || effort != Effort::Fast {
        return generic(x, weights, effort, out);
    }
    let zero = _mm512_setzero_ps();
    let (mut d, mut m) = ([0u16; GROUP], [0u16; GROUP]);
    let mut q = [Halves { lo: zero, hi: zero }; GROUP];
    let mut xg = x.chunks_exact(GROUP * QK);
    let mut og = out.chunks_exact_mut(GROUP);
    for (xs, os) in (&mut xg).zip(&mut og) {
        fast_group::<NMAX>(xs, &mut d, &mut m, &mut q);
        for k in 0..GROUP {
            store(&mut os[k], d[k], m[k], q[k]);
        }
    }
    generic(xg.remainder(), None, effort, og.into_remainder());
}

/// ingot's Q4_1 quantizer ([`search_row`]).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn q4_1(x: &[f32], w: Option<&[f32]>, e: Effort, out: &mut [BlockQ4_1]) {
    let generic = super::avx512::GENERIC.q4_1;
    search_row::<15, _>(x, w, e, out, store_q4_1, generic);
}

/// ingot's Q5_1 quantizer ([`search_row`]).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn q5_1(x: &[f32], w: Option<&[f32]>, e: Effort, out: &mut [BlockQ5_1]) {
    let generic = super::avx512::GENERIC.q5_1;
    search_row::<31, _>(x, w, e, out, store_q5_1, generic);
}
