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
use crate::legacy::arch::SearchRow;
use crate::legacy::search::{self, f16_pair, f16_to_f32};
use crate::legacy::Effort;

/// One block: elements 0..16 in `lo`, 16..32 in `hi`.
#[derive(Clone, Copy)]
pub(super) struct Halves {
    pub(super) lo: __m512,
    pub(super) hi: __m512,
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
pub(super) use both;

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn splat(v: f32) -> Halves {
    let s = _mm512_set1_ps(v);
    Halves { lo: s, hi: s }
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn load(x: &[f32; QK]) -> Halves {
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
pub(super) const GROUP: usize = 16;

/// [`reduce16`]: the sum, in `search::hsum`'s order.
pub(super) const SUM: u8 = 0;
/// [`reduce16`]: the maximum (of NaN-free lanes, so the order does not matter).
pub(super) const MAX: u8 = 1;
/// [`reduce16`]: the minimum (of NaN-free lanes).
pub(super) const MIN: u8 = 2;

/// Reduces 16 per-block vectors at once: lane k of the result is the reduction `OP` of
/// `t[k]`'s 16 lanes; sums in `search::hsum`'s order (lanes i + 8, then i + 4, then
/// (g0 + g1) + (g2 + g3)).
///
/// Pairs of vectors are combined by taking the halves to add from each (`vshuff32x4`, then
/// `vshufps` within 128-bit lanes), so 16 reductions cost 15 additions and 30 shuffles
/// instead of 16 × 4 dependent ones. The last step leaves block m + 4p in lane 4m + p; one
/// permutation restores the order.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn reduce16<const OP: u8>(t: &[__m512; GROUP]) -> __m512 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    fn op<const OP: u8>(a: __m512, b: __m512) -> __m512 {
        match OP {
            SUM => _mm512_add_ps(a, b),
            MAX => _mm512_max_ps(a, b),
            _ => _mm512_min_ps(a, b),
        }
    }
    // 16 → 8 lanes per block: [a lanes 0..8 | b lanes 0..8] ∘ [a 8..16 | b 8..16].
    let mut p = [_mm512_setzero_ps(); 8];
    for (j, pj) in p.iter_mut().enumerate() {
        let (a, b) = (t[2 * j], t[2 * j + 1]);
        *pj = op::<OP>(
            _mm512_shuffle_f32x4::<0b01_00_01_00>(a, b),
            _mm512_shuffle_f32x4::<0b11_10_11_10>(a, b),
        );
    }
    // 8 → 4: 128-bit lanes 0, 2 ∘ 1, 3 of each; block 4i + m in 128-bit lane m of q[i].
    let mut q = [_mm512_setzero_ps(); 4];
    for (i, qi) in q.iter_mut().enumerate() {
        let (a, b) = (p[2 * i], p[2 * i + 1]);
        *qi = op::<OP>(
            _mm512_shuffle_f32x4::<0b10_00_10_00>(a, b),
            _mm512_shuffle_f32x4::<0b11_01_11_01>(a, b),
        );
    }
    // 4 → 2 → 1 within 128-bit lanes: [a0 ∘ a1, a2 ∘ a3, b0 ∘ b1, b2 ∘ b3].
    let s0 = op::<OP>(
        _mm512_shuffle_ps::<0b10_00_10_00>(q[0], q[1]),
        _mm512_shuffle_ps::<0b11_01_11_01>(q[0], q[1]),
    );
    let s1 = op::<OP>(
        _mm512_shuffle_ps::<0b10_00_10_00>(q[2], q[3]),
        _mm512_shuffle_ps::<0b11_01_11_01>(q[2], q[3]),
    );
    let r = op::<OP>(
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
pub(super) fn lane_terms(t: Halves) -> __m512 {
    _mm512_add_ps(_mm512_add_ps(_mm512_setzero_ps(), t.lo), t.hi)
}

/// `search::f16_to_f32` on 16 lanes of f16 bits (in 32-bit lanes), the same operations:
/// exact for finite f16; an infinity's bits give 2¹⁶ like the scalar function.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn f16_bits_to_f32(h: __m512i) -> __m512 {
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
pub(super) fn f16_bits(v: __m512) -> __m512i {
    _mm512_cvtepu16_epi32(_mm512_cvtps_ph::<
        { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
    >(v))
}

/// `search::f16_pair` on 16 lanes: (the rounding clamped to ±65504, its neighbour on the other
/// side of the exact value).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn f16_pair16(v: __m512) -> (__m512i, __m512i) {
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
pub(super) fn inverse_or_zero(d: __m512) -> __m512 {
    let nonzero = _mm512_cmp_ps_mask::<_CMP_NEQ_UQ>(d, _mm512_setzero_ps());
    _mm512_maskz_div_ps(nonzero, _mm512_set1_ps(1.0), d)
}

/// Per-lane error terms of levels `l` at scale `d` ([`lane_terms`]): r² without weights,
/// (w·r)·r with (`search::error_of` / `search::assign`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn error_terms<const W: bool>(v: Halves, wv: Halves, l: Halves, d: f32) -> __m512 {
    let r = both!(_mm512_sub_ps, v, both!(_mm512_mul_ps, l, splat(d)));
    let wr = if W { both!(_mm512_mul_ps, wv, r) } else { r };
    lane_terms(both!(_mm512_mul_ps, wr, r))
}

/// The per-block inputs of a group: values, weights (unused without `W`) and the blocks.
struct Group<'a> {
    v: [Halves; GROUP],
    w: [Halves; GROUP],
    blocks: [&'a [f32; QK]; GROUP],
}

/// The best block so far of each lane: f16 bits, error and levels L.
struct Best {
    bits: __m512i,
    err: __m512,
    l: [Halves; GROUP],
}

/// `search::try_type0` on 16 blocks: the f16 pair of each lane's exact scale `d`, each with
/// its nearest levels, replacing the best where `allow` is set and the error is strictly
/// lower (the first of the pair first). Returns the lanes that improved.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn try_pair<const N: i32, const W: bool>(
    g: &Group,
    d: __m512,
    allow: __mmask16,
    best: &mut Best,
) -> __mmask16 {
    let (b1, b2) = f16_pair16(d);
    let mut improved = 0;
    for b in [b1, b2] {
        let d = f16_bits_to_f32(b);
        let (id, da) = (to_array(inverse_or_zero(d)), to_array(d));
        let mut l = [Halves {
            lo: _mm512_setzero_ps(),
            hi: _mm512_setzero_ps(),
        }; GROUP];
        let mut e = [_mm512_setzero_ps(); GROUP];
        for k in 0..GROUP {
            l[k] = nearest_levels::<N>(g.v[k], id[k]);
            e[k] = error_terms::<W>(g.v[k], g.w[k], l[k], da[k]);
        }
        let err = reduce16::<SUM>(&e);
        let take = allow & _mm512_cmp_ps_mask::<_CMP_LT_OQ>(err, best.err);
        best.err = _mm512_mask_mov_ps(best.err, take, err);
        best.bits = _mm512_mask_mov_epi32(best.bits, take, b);
        for (k, lk) in l.iter().enumerate() {
            if (take >> k) & 1 != 0 {
                best.l[k] = *lk;
            }
        }
        improved |= take;
    }
    improved
}

/// Loads 16 blocks (and their weights with `W`) and computes ggml's reference block of each:
/// the group, the reference as the best so far (with its error), and each block's
/// (amax, signed max) and Σxl, Σll of the reference levels (only used without weights).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn group_reference<'a, const N: i32, const W: bool>(
    x: &'a [f32],
    w: &[f32],
) -> (Group<'a>, Best, [(f32, f32); GROUP], __m512, __m512) {
    let zero = _mm512_setzero_ps();
    let nf = N as f32;
    let none = Halves { lo: zero, hi: zero };
    let mut g = Group {
        v: [none; GROUP],
        w: [none; GROUP],
        blocks: std::array::from_fn(|k| block_of(&x[k * QK..(k + 1) * QK])),
    };
    let mut t = [zero; GROUP];
    for k in 0..GROUP {
        g.v[k] = load(g.blocks[k]);
        if W {
            g.w[k] = load(block_of(&w[k * QK..(k + 1) * QK]));
        }
        let (alo, ahi) = (_mm512_abs_ps(g.v[k].lo), _mm512_abs_ps(g.v[k].hi));
        t[k] = _mm512_max_ps(ahi, _mm512_max_ps(alo, zero));
    }
    // signed_absmax: the first element reaching each block's amax, +0 for a zero block.
    let amax = to_array(reduce16::<MAX>(&t));
    let mut extremes = [(0.0f32, 0.0f32); GROUP];
    let mut max = [0.0f32; GROUP];
    for k in 0..GROUP {
        let a = _mm512_set1_ps(amax[k]);
        let hits = u32::from(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(
            _mm512_abs_ps(g.v[k].lo),
            a,
        )) | (u32::from(_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(
            _mm512_abs_ps(g.v[k].hi),
            a,
        )) << 16);
        let m = g.blocks[k][hits.trailing_zeros() as usize % QK];
        max[k] = if amax[k] == 0.0 { 0.0 } else { m };
        extremes[k] = (amax[k], max[k]);
    }
    // Reference blocks: d = max / −n, levels, error and sums.
    let d = _mm512_div_ps(from_array(&max), _mm512_set1_ps(-nf));
    let ref_bits = f16_bits(d);
    let id = to_array(inverse_or_zero(d));
    let dref = to_array(f16_bits_to_f32(ref_bits));
    let (offset, top) = (_mm512_set1_ps(nf + 0.5), _mm512_set1_ps(2.0 * nf - 1.0));
    let n = splat(nf);
    let mut l = [none; GROUP];
    let (mut e, mut sxl, mut sll) = ([zero; GROUP], [zero; GROUP], [zero; GROUP]);
    for k in 0..GROUP {
        let idk = _mm512_set1_ps(id[k]);
        let q = Halves {
            lo: reference_half(g.v[k].lo, idk, offset, top),
            hi: reference_half(g.v[k].hi, idk, offset, top),
        };
        l[k] = both!(_mm512_sub_ps, q, n);
        e[k] = error_terms::<W>(g.v[k], g.w[k], l[k], dref[k]);
        if !W {
            sxl[k] = lane_terms(both!(_mm512_mul_ps, g.v[k], l[k]));
            sll[k] = lane_terms(both!(_mm512_mul_ps, l[k], l[k]));
        }
    }
    let best = Best {
        bits: ref_bits,
        err: reduce16::<SUM>(&e),
        l,
    };
    let (sxl, sll) = if W {
        (zero, zero)
    } else {
        (reduce16::<SUM>(&sxl), reduce16::<SUM>(&sll))
    };
    (g, best, extremes, sxl, sll)
}

/// Each lane's (d bits, stored levels q = L + n) into the output arrays.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn finish<const N: i32>(best: &Best, bits: &mut [u16; GROUP], q: &mut [Halves; GROUP]) {
    let chosen = to_array_u32(best.bits);
    for k in 0..GROUP {
        bits[k] = chosen[k] as u16;
        q[k] = both!(_mm512_add_ps, best.l[k], splat(N as f32));
    }
}

/// [`fast_block`] on 16 consecutive blocks (`x`: 512 values), with every per-block scalar step
/// (scale, inverse, f16 rounding, candidate choice) done once for all 16 in lanes and every
/// block sum through [`reduce16`]. Returns each block's (d bits, levels q as f32).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn fast_group<const N: i32>(x: &[f32], bits: &mut [u16; GROUP], q: &mut [Halves; GROUP]) {
    let zero = _mm512_setzero_ps();
    let (g, mut best, _, sxl, sll) = group_reference::<N, false>(x, &[]);
    // refine_type0: the reference when exact or when Σll ≤ 0, else the least-squares step.
    let keep_ref = _mm512_cmp_ps_mask::<_CMP_EQ_OQ>(best.err, zero)
        | _mm512_cmp_ps_mask::<_CMP_LE_OQ>(sll, zero);
    try_pair::<N, false>(&g, _mm512_div_ps(sxl, sll), !keep_ref, &mut best);
    finish::<N>(&best, bits, q);
}

/// `search::quantize_type0::<TYPE0_WEIGHTED>` on 16 blocks that all have weights: the grid
/// stage block by block (`search::type0_grid_scale`, candidates in lanes), the reference,
/// the f16 pairs and the refit for all 16 in lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn weighted_group<const N: i32>(
    x: &[f32],
    w: &[f32],
    bits: &mut [u16; GROUP],
    q: &mut [Halves; GROUP],
) {
    let zero = _mm512_setzero_ps();
    let (g, mut best, extremes, _, _) = group_reference::<N, true>(x, w);
    let mut scale = [0.0f32; GROUP];
    let mut found: __mmask16 = 0;
    for k in 0..GROUP {
        let wk = block_of(&w[k * QK..(k + 1) * QK]);
        if let Some(d) = search::type0_grid_scale::<{ search::TYPE0_WEIGHTED }>(
            g.blocks[k],
            Some(wk),
            N,
            extremes[k],
        ) {
            scale[k] = d;
            found |= 1 << k;
        }
    }
    // The reference stays where it is exact, where no candidate fits, and where the best
    // candidate's f16 pair does not beat it; elsewhere one refit of the winning levels.
    let allow = found & !_mm512_cmp_ps_mask::<_CMP_EQ_OQ>(best.err, zero);
    let improved = try_pair::<N, true>(&g, from_array(&scale), allow, &mut best);
    let (mut a, mut b) = ([zero; GROUP], [zero; GROUP]);
    for k in 0..GROUP {
        let wl = both!(_mm512_mul_ps, g.w[k], best.l[k]);
        a[k] = lane_terms(both!(_mm512_mul_ps, wl, g.v[k]));
        b[k] = lane_terms(both!(_mm512_mul_ps, wl, best.l[k]));
    }
    let (sxl, sll) = (reduce16::<SUM>(&a), reduce16::<SUM>(&b));
    let fits = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(sll, zero);
    try_pair::<N, true>(
        &g,
        _mm512_div_ps(sxl, sll),
        allow & improved & fits,
        &mut best,
    );
    finish::<N>(&best, bits, q);
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn to_array(v: __m512) -> [f32; GROUP] {
    let mut a = [0.0f32; GROUP];
    // SAFETY: `a` holds 16 f32, one unaligned 64-byte store.
    unsafe { _mm512_storeu_ps(a.as_mut_ptr(), v) };
    a
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn to_array_u32(v: __m512i) -> [u32; GROUP] {
    let mut a = [0u32; GROUP];
    // SAFETY: `a` holds 16 u32, one unaligned 64-byte store.
    unsafe { _mm512_storeu_si512(a.as_mut_ptr().cast(), v) };
    a
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn from_array(a: &[f32; GROUP]) -> __m512 {
    // SAFETY: `a` holds 16 f32, one unaligned 64-byte load.
    unsafe { _mm512_loadu_ps(a.as_ptr()) }
}

/// Levels in [0, 31] (integral f32) as 16 bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn bytes_of(q: __m512) -> __m128i {
    _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(q))
}

#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn store_qs(qs: &mut [u8; QK / 2], v: __m128i) {
    // SAFETY: `qs` is 16 bytes, one unaligned 16-byte store.
    unsafe { _mm_storeu_si128(qs.as_mut_ptr().cast(), v) }
}

/// Levels in [0, 15] packed as ggml's nibbles: element j in the low nibble of byte j, element
/// j + 16 in its high nibble (`legacy::pack_nibbles`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn nibbles(q: Halves) -> __m128i {
    // The high bytes are ≤ 15, so a 16-bit shift by 4 keeps every byte in its place.
    _mm_or_si128(bytes_of(q.lo), _mm_slli_epi16::<4>(bytes_of(q.hi)))
}

/// Levels in [0, 31] as (fifth bits: bit 4 of element j as bit j, `legacy::pack_high_bits`;
/// the low nibbles as [`nibbles`]).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
pub(super) fn five_bits(q: Halves) -> ([u8; 4], __m128i) {
    let (lo, hi) = (_mm512_cvttps_epi32(q.lo), _mm512_cvttps_epi32(q.hi));
    let bit4 = _mm512_set1_epi32(16);
    let qh = u32::from(_mm512_test_epi32_mask(lo, bit4))
        | (u32::from(_mm512_test_epi32_mask(hi, bit4)) << 16);
    let low = _mm_set1_epi8(0x0F);
    let (lo, hi) = (
        _mm_and_si128(_mm512_cvtepi32_epi8(lo), low),
        _mm_and_si128(_mm512_cvtepi32_epi8(hi), low),
    );
    (qh.to_le_bytes(), _mm_or_si128(lo, _mm_slli_epi16::<4>(hi)))
}

/// Q4_0's block.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn store_q4_0(o: &mut BlockQ4_0, bits: u16, q: Halves) {
    o.d = f16::from_bits(bits);
    store_qs(&mut o.qs, nibbles(q));
}

/// Q5_0's block.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn store_q5_0(o: &mut BlockQ5_0, bits: u16, q: Halves) {
    let (qh, qs) = five_bits(q);
    o.d = f16::from_bits(bits);
    o.qh = qh;
    store_qs(&mut o.qs, qs);
}

#[inline]
pub(super) fn block_of(x: &[f32]) -> &[f32; QK] {
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
        let d = _mm512_div_ps(reduce16::<MAX>(&t), _mm512_set1_ps(127.0));
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

/// ingot's type-0 row (`q4_0` / `q5_0::search_row_body`): without weights in
/// [`Effort::Fast`], [`fast_row`]; with weights, groups of 16 blocks that all carry weights
/// through [`weighted_group`]; everything else through `generic`, this level's compiled
/// generic body (the same result).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
fn search_row<const N: i32, B>(
    x: &[f32],
    weights: Option<&[f32]>,
    effort: Effort,
    out: &mut [B],
    store: fn(&mut B, u16, Halves),
    generic: SearchRow<B>,
) {
    let Some(w) = weights else {
        return match effort {
            Effort::Fast => fast_row::<N, B>(x, out, store),
            Effort::Thorough => generic(x, None, effort, out),
        };
    };
    let zero = _mm512_setzero_ps();
    let mut bits = [0u16; GROUP];
    let mut q = [Halves { lo: zero, hi: zero }; GROUP];
    let mut xg = x.chunks_exact(GROUP * QK);
    let mut wg = w.chunks_exact(GROUP * QK);
    let mut og = out.chunks_exact_mut(GROUP);
    for ((xs, ws), os) in (&mut xg).zip(&mut wg).zip(&mut og) {
        let mut all_weighted = true;
        for wb in ws.chunks_exact(QK) {
            all_weighted &= search::block_weights(Some(wb)).is_some();
        }
        if !all_weighted {
            generic(xs, Some(ws), effort, os);
            continue;
        }
        weighted_group::<N>(xs, ws, &mut bits, &mut q);
        for k in 0..GROUP {
            store(&mut os[k], bits[k], q[k]);
        }
    }
    generic(
        xg.remainder(),
        Some(wg.remainder()),
        effort,
        og.into_remainder(),
    );
}

/// Defines the table entry of one type: [`search_row`] with its offset n, store and generic
/// body.
macro_rules! search_entry {
    ($name:ident, $n:literal, $block:ty, $store:ident) => {
        /// ingot's quantizer of this type ([`search_row`]).
        #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
        pub(super) fn $name(x: &[f32], w: Option<&[f32]>, e: Effort, out: &mut [$block]) {
            let generic = super::avx512::GENERIC.$name;
            search_row::<$n, _>(x, w, e, out, $store, generic);
        }
    };
}

search_entry!(q4_0, 8, BlockQ4_0, store_q4_0);
search_entry!(q5_0, 16, BlockQ5_0, store_q5_0);
