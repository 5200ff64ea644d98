//! Hand-written AVX-512 kernels for the type-0 formats (Q4_0, Q5_0): ggml's reference block and
//! ingot's default block without weights ([`Effort::Fast`]), one 32-value block as two
//! 16-lane registers.
//!
//! The generic bodies (`q4_0::reference_block`, `search::refine_type0`) are auto-vectorised
//! poorly: the extremum search, the byte conversions and the nibble / fifth-bit packing stay
//! scalar, and every sum is reduced through memory. Here every step is a whole-register
//! operation:
//!
//! ```text
//! amax = max |x| (two registers, one reduction); max = first x with |x| = amax (bit mask)
//! reference: d = max / −n, q = floor(max(min(x/d + n + ½, 2n − 1), 0))
//! fast step: L = q − n; E_ref = Σ (x − L·d16)²; d* = Σ xL / Σ LL
//!            for each f16 neighbour d′ of d*: L′ = clamp(round(x/d′)), E′ = Σ (x − L′·d′)²
//!            keep the first strictly better
//! store: vpmovdb to bytes, nibbles by a 16-bit shift, Q5_0's fifth bits by vptestmd
//! ```
//!
//! Each float operation is the generic body's, lane by lane, in the same order (no fused
//! multiply-add; sums in [`hsum`]'s order, which is `search::hsum`'s), so the blocks are
//! byte-identical to the scalar table's; `arch::tests` checks that by name.
//!
//! No closures: a closure does not inherit the target features of the function around it.

use core::arch::x86_64::*;

use half::f16;

use crate::blocks::{BlockQ4_0, BlockQ5_0, BlockQ8_0, QK};
use crate::float::f32_to_f16_bits;
use crate::legacy::search::{f16_pair, f16_to_f32};
use crate::legacy::Effort;

/// One block: elements 0..16 in `lo`, 16..32 in `hi`.
#[derive(Clone, Copy)]
struct Halves {
    lo: __m512,
    hi: __m512,
}

/// Applies a two-operand register operation to both halves.
macro_rules! both {
    ($op:ident, $a:expr, $b:expr) => {{
        let (a, b) = ($a, $b);
        Halves {
            lo: $op(a.lo, b.lo),
            hi: $op(a.hi, b.hi),
        }
    }};
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn splat(v: f32) -> Halves {
    let s = _mm512_set1_ps(v);
    Halves { lo: s, hi: s }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn load(x: &[f32; QK]) -> Halves {
    // SAFETY: `x` holds 32 f32; both unaligned 16-value loads stay inside it.
    unsafe {
        Halves {
            lo: _mm512_loadu_ps(x.as_ptr()),
            hi: _mm512_loadu_ps(x.as_ptr().add(16)),
        }
    }
}

/// Σ of a block's 32 terms in `search::hsum`'s order: per lane (0 + t_j) + t_{j+16}, halves
/// folded 16 → 8 → 4, then (g0 + g1) + (g2 + g3).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn hsum(t: Halves) -> f32 {
    let v = _mm512_add_ps(_mm512_add_ps(_mm512_setzero_ps(), t.lo), t.hi);
    let h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps::<1>(v));
    let g = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps::<1>(h));
    // p0 = g0 + g1, p2 = g2 + g3.
    let p = _mm_add_ps(g, _mm_movehdup_ps(g));
    _mm_cvtss_f32(_mm_add_ss(p, _mm_movehl_ps(p, p)))
}

/// `legacy::signed_absmax`: (amax, the first element reaching it), (0, 0) for a zero block.
/// NaN never wins (`max_ps(a, b)` is `a > b ? a : b`, the generic loop's comparison).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn signed_absmax(x: &[f32; QK], v: Halves) -> (f32, f32) {
    let (alo, ahi) = (_mm512_abs_ps(v.lo), _mm512_abs_ps(v.hi));
    let m = _mm512_max_ps(ahi, _mm512_max_ps(alo, _mm512_setzero_ps()));
    // The lanes hold no NaN, so the reduction order does not matter.
    let amax = _mm512_reduce_max_ps(m);
    if amax == 0.0 {
        return (0.0, 0.0);
    }
    let a = _mm512_set1_ps(amax);
    let hits = u32::from(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(alo, a))
        | (u32::from(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(ahi, a)) << 16);
    (amax, x[hits.trailing_zeros() as usize % QK])
}

/// One half of ggml's reference levels: floor(max(min(x·id + n + ½, 2n − 1), 0)), which is
/// `trunc_u8((x·id + n + ½).min(2n − 1))` (a NaN product gives 2n − 1, as `f32::min` does).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn reference_half(x: __m512, id: __m512, offset: __m512, top: __m512) -> __m512 {
    let t = _mm512_min_ps(_mm512_add_ps(_mm512_mul_ps(x, id), offset), top);
    let c = _mm512_max_ps(t, _mm512_setzero_ps());
    _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(c)
}

/// ggml's reference block (`q4_0::reference_block` / `q5_0::reference_block`): the f16 bits of
/// d = max / −n and the stored levels q ∈ [0, 2n − 1] as f32.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn reference_block<const N: i32>(v: Halves, max: f32) -> (u16, Halves) {
    let nf = N as f32;
    let d = max / -nf;
    let id = _mm512_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
    let (offset, top) = (_mm512_set1_ps(nf + 0.5), _mm512_set1_ps(2.0 * nf - 1.0));
    let q = Halves {
        lo: reference_half(v.lo, id, offset, top),
        hi: reference_half(v.hi, id, offset, top),
    };
    (f32_to_f16_bits(d), q)
}

/// Σ (x − L·d)²: `search::error_of` without weights (its `+ 0` offset and `1 ·` weight change
/// no square).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn squared_error(x: Halves, l: Halves, d: f32) -> f32 {
    let r = both!(_mm512_sub_ps, x, both!(_mm512_mul_ps, l, splat(d)));
    hsum(both!(_mm512_mul_ps, r, r))
}

/// Nearest levels clamp(round(x·id), −n, n − 1) (`search::assign`, ties to even).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn nearest_levels<const N: i32>(x: Halves, id: f32) -> Halves {
    let magic = splat(crate::legacy::MAGIC);
    let r = both!(
        _mm512_sub_ps,
        both!(_mm512_add_ps, both!(_mm512_mul_ps, x, splat(id)), magic),
        magic
    );
    let r = both!(_mm512_max_ps, r, splat(-(N as f32)));
    both!(_mm512_min_ps, r, splat(N as f32 - 1.0))
}

/// ingot's default type-0 block without weights (`search::refine_type0` on the reference
/// block): (d bits, stored levels q = L + n as f32).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn fast_block<const N: i32>(x: &[f32; QK]) -> (u16, Halves) {
    let v = load(x);
    let (ref_bits, q) = reference_block::<N>(v, signed_absmax(x, v).1);
    let n = splat(N as f32);
    let l = both!(_mm512_sub_ps, q, n);
    let ref_err = squared_error(v, l, f16_to_f32(ref_bits));
    if ref_err == 0.0 {
        return (ref_bits, q);
    }
    let sxl = hsum(both!(_mm512_mul_ps, v, l));
    let sll = hsum(both!(_mm512_mul_ps, l, l));
    if sll <= 0.0 {
        return (ref_bits, q);
    }
    let mut best = (ref_bits, q);
    let mut best_err = ref_err;
    for bits in f16_pair(sxl / sll) {
        let d = f16_to_f32(bits);
        let l = nearest_levels::<N>(v, if d != 0.0 { 1.0 / d } else { 0.0 });
        let e = squared_error(v, l, d);
        if e < best_err {
            best_err = e;
            best = (bits, both!(_mm512_add_ps, l, n));
        }
    }
    best
}

/// Blocks per group of the batched default kernel: one per lane of a register.
const GROUP: usize = 16;

/// Reduces 16 per-block vectors at once: lane k of the result is the reduction of `t[k]`'s 16
/// lanes. With `SUM`, in `search::hsum`'s order (lanes i + 8, then i + 4, then
/// (g0 + g1) + (g2 + g3)); otherwise their maximum (NaN-free lanes, so any order).
///
/// Pairs of vectors are combined by taking the halves to add from each (`vshuff32x4`, then
/// `vshufps` within 128-bit lanes), so 16 reductions cost 15 additions and 30 shuffles
/// instead of 16 × 4 dependent ones. The last step leaves block m + 4p in lane 4m + p; one
/// permutation restores the order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn reduce16<const SUM: bool>(t: &[__m512; GROUP]) -> __m512 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    fn op<const SUM: bool>(a: __m512, b: __m512) -> __m512 {
        if SUM {
            _mm512_add_ps(a, b)
        } else {
            _mm512_max_ps(a, b)
        }
    }
    // 16 → 8 lanes per block: [a lanes 0..8 | b lanes 0..8] ∘ [a 8..16 | b 8..16].
    let mut p = [_mm512_setzero_ps(); 8];
    for (j, pj) in p.iter_mut().enumerate() {
        let (a, b) = (t[2 * j], t[2 * j + 1]);
        *pj = op::<SUM>(
            _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
            _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
        );
    }
    // 8 → 4: 128-bit lanes 0, 2 ∘ 1, 3 of each; block 4i + m in 128-bit lane m of q[i].
    let mut q = [_mm512_setzero_ps(); 4];
    for (i, qi) in q.iter_mut().enumerate() {
        let (a, b) = (p[2 * i], p[2 * i + 1]);
        *qi = op::<SUM>(
            _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b),
        );
    }
    // 4 → 2 → 1 within 128-bit lanes: [a0 ∘ a1, a2 ∘ a3, b0 ∘ b1, b2 ∘ b3].
    let s0 = op::<SUM>(
        _mm512_shuffle_ps::<0b10_00_10_00>(q[0], q[1]),
        _mm512_shuffle_ps::<0b11_01_11_01>(q[0], q[1]),
    );
    let s1 = op::<SUM>(
        _mm512_shuffle_ps::<0b10_00_10_00>(q[2], q[3]),
        _mm512_shuffle_ps::<0b11_01_11_01>(q[2], q[3]),
    );
    let r = op::<SUM>(
        _mm512_shuffle_ps::<0b10_00_10_00>(s0, s1),
        _mm512_shuffle_ps::<0b11_01_11_01>(s0, s1),
    );
    // Lane 4m + p holds block m + 4p: block k comes from lane 4(k mod 4) + k / 4.
    let order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_permutexvar_ps(order, r)
}

/// Per-lane terms of a block sum before the tree: (0 + t_lo) + t_hi, as `search::hsum`'s
/// accumulators.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn lane_terms(t: Halves) -> __m512 {
    _mm512_add_ps(_mm512_add_ps(_mm512_setzero_ps(), t.lo), t.hi)
}

/// `search::f16_to_f32` on 16 lanes of f16 bits (in 32-bit lanes), the same operations:
/// exact for finite f16; an infinity's bits give 2¹⁶ like the scalar function.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn f16_bits_to_f32(h: __m512i) -> __m512 {
    let sign = _mm512_slli_epi32::<16>(_mm512_and_si512(h, _mm512_set1_epi32(0x8000)));
    let mag = _mm512_slli_epi32::<13>(_mm512_and_si512(h, _mm512_set1_epi32(0x7FFF)));
    let v = _mm512_mul_ps(
        _mm512_castsi512_ps(mag),
        _mm512_set1_ps(f32::from_bits(0x7780_0000)),
    );
    _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v), sign))
}

/// ggml's f32 → f16 rounding of 16 finite-or-infinite lanes (NaN lanes give some NaN bits;
/// [`f16_pair16`] clamps them like the scalar path) as bits in 32-bit lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn f16_bits(v: __m512) -> __m512i {
    _mm512_cvtepu16_epi32(_mm512_cvtps_ph::<
        { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
    >(v))
}

/// `search::f16_pair` on 16 lanes: (the rounding clamped to ±65504, its neighbour on the other
/// side of the exact value).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn f16_pair16(v: __m512) -> (__m512i, __m512i) {
    let max_bits = _mm512_set1_epi32(0x7BFF);
    let b = f16_bits(v);
    let sign = _mm512_and_si512(b, _mm512_set1_epi32(0x8000));
    let mag = _mm512_and_si512(b, _mm512_set1_epi32(0x7FFF));
    let overflow = _mm512_cmpgt_epu32_mask(mag, max_bits);
    let b = _mm512_mask_mov_epi32(b, overflow, _mm512_or_si512(sign, max_bits));
    let mag = _mm512_min_epu32(mag, max_bits);
    let rounded = f16_bits_to_f32(b);
    let short = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(_mm512_abs_ps(rounded), _mm512_abs_ps(v));
    let up = _mm512_min_epu32(_mm512_add_epi32(mag, _mm512_set1_epi32(1)), max_bits);
    // saturating_sub(mag, 1)
    let down = _mm512_subs_epu16(mag, _mm512_set1_epi32(1));
    let other = _mm512_mask_mov_epi32(down, short, up);
    (b, _mm512_or_si512(sign, other))
}

/// 1/d where d ≠ 0, else 0 (the generic bodies' `if d != 0.0 { 1.0 / d } else { 0.0 }`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn inverse_or_zero(d: __m512) -> __m512 {
    let nonzero = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(d, _mm512_setzero_ps());
    _mm512_maskz_div_ps(nonzero, _mm512_set1_ps(1.0), d)
}

/// A candidate scale's nearest levels and its per-lane squared-error terms ([`lane_terms`]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn error_terms<const N: i32>(v: Halves, id: f32, d: f32) -> (Halves, __m512) {
    let l = nearest_levels::<N>(v, id);
    let r = both!(_mm512_sub_ps, v, both!(_mm512_mul_ps, l, splat(d)));
    (l, lane_terms(both!(_mm512_mul_ps, r, r)))
}

/// [`fast_block`] on 16 consecutive blocks (`x`: 512 values), with every per-block scalar step
/// (scale, inverse, f16 rounding, candidate choice) done once for all 16 in lanes and every
/// block sum through [`reduce16`]. Returns each block's (d bits, levels q as f32).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn fast_group<const N: i32>(x: &[f32], bits: &mut [u16; GROUP], q: &mut [Halves; GROUP]) {
    let zero = _mm512_setzero_ps();
    let nf = N as f32;
    let blocks: [&[f32; QK]; GROUP] = std::array::from_fn(|k| block_of(&x[k * QK..(k + 1) * QK]));
    let mut v = [Halves { lo: zero, hi: zero }; GROUP];
    let mut t = [zero; GROUP];
    for k in 0..GROUP {
        v[k] = load(blocks[k]);
        let (alo, ahi) = (_mm512_abs_ps(v[k].lo), _mm512_abs_ps(v[k].hi));
        t[k] = _mm512_max_ps(ahi, _mm512_max_ps(alo, zero));
    }
    // signed_absmax: the first element reaching each block's amax, +0 for a zero block.
    let amax = to_array(reduce16::<false>(&t));
    let mut max = [0.0f32; GROUP];
    for k in 0..GROUP {
        let a = _mm512_set1_ps(amax[k]);
        let hits = u32::from(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(_mm512_abs_ps(v[k].lo), a))
            | (u32::from(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(_mm512_abs_ps(v[k].hi), a)) << 16);
        let m = blocks[k][hits.trailing_zeros() as usize % QK];
        max[k] = if amax[k] == 0.0 { 0.0 } else { m };
    }
    // Reference blocks: d = max / −n, levels, and their sums.
    let d = _mm512_div_ps(from_array(&max), _mm512_set1_ps(-nf));
    let ref_bits = f16_bits(d);
    let id = to_array(inverse_or_zero(d));
    let dref = to_array(f16_bits_to_f32(ref_bits));
    let (offset, top) = (_mm512_set1_ps(nf + 0.5), _mm512_set1_ps(2.0 * nf - 1.0));
    let n = splat(nf);
    let (mut e, mut sxl, mut sll) = ([zero; GROUP], [zero; GROUP], [zero; GROUP]);
    for k in 0..GROUP {
        let idk = _mm512_set1_ps(id[k]);
        q[k] = Halves {
            lo: reference_half(v[k].lo, idk, offset, top),
            hi: reference_half(v[k].hi, idk, offset, top),
        };
        let l = both!(_mm512_sub_ps, q[k], n);
        let r = both!(_mm512_sub_ps, v[k], both!(_mm512_mul_ps, l, splat(dref[k])));
        e[k] = lane_terms(both!(_mm512_mul_ps, r, r));
        sxl[k] = lane_terms(both!(_mm512_mul_ps, v[k], l));
        sll[k] = lane_terms(both!(_mm512_mul_ps, l, l));
    }
    let ref_err = reduce16::<true>(&e);
    let sll = reduce16::<true>(&sll);
    let dstar = _mm512_div_ps(reduce16::<true>(&sxl), sll);
    // The f16 pair of the least-squares scale, each with its nearest levels and error.
    let (b1, b2) = f16_pair16(dstar);
    let (d1, d2) = (f16_bits_to_f32(b1), f16_bits_to_f32(b2));
    let (id1, id2) = (to_array(inverse_or_zero(d1)), to_array(inverse_or_zero(d2)));
    let (d1a, d2a) = (to_array(d1), to_array(d2));
    let mut l1 = [Halves { lo: zero, hi: zero }; GROUP];
    let mut l2 = l1;
    let mut e2 = [zero; GROUP];
    for k in 0..GROUP {
        (l1[k], e[k]) = error_terms::<N>(v[k], id1[k], d1a[k]);
        (l2[k], e2[k]) = error_terms::<N>(v[k], id2[k], d2a[k]);
    }
    let (err1, err2) = (reduce16::<true>(&e), reduce16::<true>(&e2));
    // refine_type0's choice: the reference when exact or when Σll ≤ 0, else the first
    // candidate strictly better than the best so far.
    let keep_ref = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(ref_err, zero)
        | _mm512_cmp_ps_mask::<_CMP_LE_OQ>(sll, zero);
    let take1 = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(err1, ref_err);
    let best_err = _mm512_mask_mov_ps(ref_err, take1, err1);
    let take2 = _mm512_cmp_ps_mask::<_CMP_LT_OQ>(err2, best_err) & !keep_ref;
    let take1 = take1 & !take2 & !keep_ref;
    let chosen = _mm512_mask_mov_epi32(_mm512_mask_mov_epi32(ref_bits, take1, b1), take2, b2);
    let chosen: [u32; GROUP] = to_array_u32(chosen);
    for k in 0..GROUP {
        bits[k] = chosen[k] as u16;
        if (take2 >> k) & 1 != 0 {
            q[k] = both!(_mm512_add_ps, l2[k], n);
        } else if (take1 >> k) & 1 != 0 {
            q[k] = both!(_mm512_add_ps, l1[k], n);
        }
    }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn to_array(v: __m512) -> [f32; GROUP] {
    let mut a = [0.0f32; GROUP];
    // SAFETY: `a` holds 16 f32, one unaligned 64-byte store.
    unsafe { _mm512_storeu_ps(a.as_mut_ptr(), v) };
    a
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn to_array_u32(v: __m512i) -> [u32; GROUP] {
    let mut a = [0u32; GROUP];
    // SAFETY: `a` holds 16 u32, one unaligned 64-byte store.
    unsafe { _mm512_storeu_si512(a.as_mut_ptr().cast(), v) };
    a
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn from_array(a: &[f32; GROUP]) -> __m512 {
    // SAFETY: `a` holds 16 f32, one unaligned 64-byte load.
    unsafe { _mm512_loadu_ps(a.as_ptr()) }
}

/// Levels in [0, 31] (integral f32) as 16 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn bytes_of(q: __m512) -> __m128i {
    _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(q))
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn store_qs(qs: &mut [u8; QK / 2], v: __m128i) {
    // SAFETY: `qs` is 16 bytes, one unaligned 16-byte store.
    unsafe { _mm_storeu_si128(qs.as_mut_ptr().cast(), v) }
}

/// Q4_0's block: element j in the low nibble of byte j, element j + 16 in its high nibble
/// (`legacy::pack_nibbles`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn store_q4_0(o: &mut BlockQ4_0, bits: u16, q: Halves) {
    // The high bytes are ≤ 15, so a 16-bit shift by 4 keeps every byte in its place.
    let qs = _mm_or_si128(bytes_of(q.lo), _mm_slli_epi16::<4>(bytes_of(q.hi)));
    o.d = f16::from_bits(bits);
    store_qs(&mut o.qs, qs);
}

/// Q5_0's block: nibbles as Q4_0, bit 4 of element j as bit j of `qh`
/// (`legacy::pack_high_bits`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn store_q5_0(o: &mut BlockQ5_0, bits: u16, q: Halves) {
    let (lo, hi) = (_mm512_cvttps_epi32(q.lo), _mm512_cvttps_epi32(q.hi));
    let bit4 = _mm512_set1_epi32(16);
    let qh = u32::from(_mm512_test_epi32_mask(lo, bit4))
        | (u32::from(_mm512_test_epi32_mask(hi, bit4)) << 16);
    let low = _mm_set1_epi8(0x0F);
    let (lo, hi) = (
        _mm_and_si128(_mm512_cvtepi32_epi8(lo), low),
        _mm_and_si128(_mm512_cvtepi32_epi8(hi), low),
    );
    o.d = f16::from_bits(bits);
    o.qh = qh.to_le_bytes();
    store_qs(&mut o.qs, _mm_or_si128(lo, _mm_slli_epi16::<4>(hi)));
}

#[inline]
fn block_of(x: &[f32]) -> &[f32; QK] {
    x.try_into().expect("chunks_exact yields QK values")
}

/// ingot's default type-0 row without weights: groups of 16 blocks through [`fast_group`], the
/// rest one by one through [`fast_block`] (the same result).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn fast_row<const N: i32, B>(x: &[f32], out: &mut [B], store: fn(&mut B, u16, Halves)) {
    let zero = _mm512_setzero_ps();
    let mut bits = [0u16; GROUP];
    let mut q = [Halves { lo: zero, hi: zero }; GROUP];
    let mut xg = x.chunks_exact(GROUP * QK);
    let mut og = out.chunks_exact_mut(GROUP);
    for (xs, os) in (&mut xg).zip(&mut og) {
        fast_group::<N>(xs, &mut bits, &mut q);
        for k in 0..GROUP {
            store(&mut os[k], bits[k], q[k]);
        }
    }
    for (xb, o) in xg.remainder().chunks_exact(QK).zip(og.into_remainder()) {
        let (bits, q) = fast_block::<N>(block_of(xb));
        store(o, bits, q);
    }
}

/// ggml's reference row (`quantize_row_q4_0_ref` / `quantize_row_q5_0_ref`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn ref_row<const N: i32, B>(x: &[f32], out: &mut [B], store: fn(&mut B, u16, Halves)) {
    for (xb, o) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let xb = block_of(xb);
        let v = load(xb);
        let (bits, q) = reference_block::<N>(v, signed_absmax(xb, v).1);
        store(o, bits, q);
    }
}

/// ggml's `quantize_row_q4_0_ref`.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn q4_0_ref(x: &[f32], out: &mut [BlockQ4_0]) {
    ref_row::<8, _>(x, out, store_q4_0);
}

/// ggml's `quantize_row_q5_0_ref`.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn q5_0_ref(x: &[f32], out: &mut [BlockQ5_0]) {
    ref_row::<16, _>(x, out, store_q5_0);
}

/// One half of ggml's Q8_0 levels: `round_to_i8(x·id)` (`roundf` clamped to [−128, 127],
/// NaN → 0) as 16 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn q8_0_half(x: __m512, id: __m512) -> __m128i {
    let v = _mm512_mul_ps(x, id);
    let number = _mm512_cmp_ps_mask::<_CMP_ORD_Q>(v, v);
    let c = _mm512_min_ps(
        _mm512_max_ps(v, _mm512_set1_ps(-128.0)),
        _mm512_set1_ps(127.0),
    );
    // roundf: truncate, then step away from zero when the exact remainder reaches ½.
    let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(c);
    let f = _mm512_sub_ps(c, t);
    let one = _mm512_set1_ps(1.0);
    let up = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(f, _mm512_set1_ps(0.5));
    let down = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(f, _mm512_set1_ps(-0.5));
    let q = _mm512_mask_sub_ps(_mm512_mask_add_ps(t, up, t, one), down, t, one);
    _mm512_cvtepi32_epi8(_mm512_maskz_cvttps_epi32(number, q))
}

/// Stores one Q8_0 block: the f16 bits of d and the levels of x·id.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn store_q8_0(o: &mut BlockQ8_0, bits: u16, v: Halves, id: f32) {
    let id = _mm512_set1_ps(id);
    o.d = f16::from_bits(bits);
    // SAFETY: `qs` is 32 bytes: two unaligned 16-byte stores inside it.
    unsafe {
        _mm_storeu_si128(o.qs.as_mut_ptr().cast(), q8_0_half(v.lo, id));
        _mm_storeu_si128(o.qs.as_mut_ptr().add(16).cast(), q8_0_half(v.hi, id));
    }
}

/// ggml's `quantize_row_q8_0_ref` (`q8_0::quantize_block_ref`): d = amax / 127, q = roundf(x/d);
/// groups of 16 blocks share one [`reduce16`] for their amax and do d, 1/d and the f16
/// rounding in lanes.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn q8_0_ref(x: &[f32], out: &mut [BlockQ8_0]) {
    let zero = _mm512_setzero_ps();
    let mut xg = x.chunks_exact(GROUP * QK);
    let mut og = out.chunks_exact_mut(GROUP);
    for (xs, os) in (&mut xg).zip(&mut og) {
        let mut v = [Halves { lo: zero, hi: zero }; GROUP];
        let mut t = [zero; GROUP];
        for k in 0..GROUP {
            v[k] = load(block_of(&xs[k * QK..(k + 1) * QK]));
            let (alo, ahi) = (_mm512_abs_ps(v[k].lo), _mm512_abs_ps(v[k].hi));
            t[k] = _mm512_max_ps(ahi, _mm512_max_ps(alo, zero));
        }
        let d = _mm512_div_ps(reduce16::<false>(&t), _mm512_set1_ps(127.0));
        let id = to_array(inverse_or_zero(d));
        let bits = to_array_u32(f16_bits(d));
        for k in 0..GROUP {
            store_q8_0(&mut os[k], bits[k] as u16, v[k], id[k]);
        }
    }
    for (xb, o) in xg.remainder().chunks_exact(QK).zip(og.into_remainder()) {
        let v = load(block_of(xb));
        let (alo, ahi) = (_mm512_abs_ps(v.lo), _mm512_abs_ps(v.hi));
        let amax = _mm512_reduce_max_ps(_mm512_max_ps(ahi, _mm512_max_ps(alo, zero)));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        store_q8_0(o, f32_to_f16_bits(d), v, id);
    }
}

/// ingot's Q4_0 quantizer: rows without weights in [`Effort::Fast`] here, the rest through the
/// generic body compiled for this level.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn q4_0(x: &[f32], weights: Option<&[f32]>, effort: Effort, out: &mut [BlockQ4_0]) {
    if weights.is_some() || effort != Effort::Fast {
        return crate::legacy::q4_0::search_row_body(x, weights, effort, out);
    }
    fast_row::<8, _>(x, out, store_q4_0);
}

/// ingot's Q5_0 quantizer (as [`q4_0`]).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn q5_0(x: &[f32], weights: Option<&[f32]>, effort: Effort, out: &mut [BlockQ5_0]) {
    if weights.is_some() || effort != Effort::Fast {
        return crate::legacy::q5_0::search_row_body(x, weights, effort, out);
    }
    fast_row::<16, _>(x, out, store_q5_0);
}
