//! 512-bit q4_K and q6_K dot bodies for the AVX-512 VNNI level, for one or several weight
//! rows against one activation row.
//!
//! Why: the 256-bit bodies (`simd::dot_q4k`, `simd::dot_q6k`) spend most of their
//! instructions on per-32-byte bookkeeping (a scalar scale broadcast per sub-block, separate
//! `madd` and `add`), which held q4_K at ≈ 20 cycles per super-block, compute-bound even when
//! W streams from DRAM. Here each step covers 64 consecutive activation bytes:
//! - q4_K: each 64-byte load of nibbles gives two code vectors (low nibbles: sub-blocks 4h and
//!   4h+2; high nibbles: 4h+1 and 4h+3), one shift and two `and`s for 128 codes; the
//!   activations are rearranged to match once per super-block, shared by all rows. `d` and
//!   `dmin` are one dword: one conversion and one multiply for both;
//! - q6_K: 64 bytes of `ql` and the 32 bytes of `qh` broadcast to both halves give two code
//!   vectors per half super-block;
//! - the sub-block scales are one `vpermw` from the 8 (q4_K) or 16 (q6_K) scales widened
//!   once per super-block, and `vpdpwssd` does `madd` + `add`.
//!
//! The integer sums per super-block are exactly the 256-bit bodies' (whichever sub-block a half
//! holds, its i32 lane l covers that sub-block's elements 4l..4l+4, and the halves are added
//! into the same eight i32 lanes the 256-bit body accumulates; integer addition is exact in any
//! order), and the float
//! steps after them are the same operations in the same order, so every result equals the
//! 256-bit body's bit for bit (tested in `tests/kernels_simd.rs`).
//!
//! With several weight rows, each activation register is loaded once for all of them (the
//! GEMV's four-row micro-kernel); each row's result is its one-row result, bit for bit.
//!
//! Every body is `unsafe`: callers must run on a CPU with AVX2, FMA, F16C, AVX-512 F/BW/VL and
//! AVX512-VNNI, and pass slices whose lengths the wrapper checked (every `w[r].len() ==
//! a.len()`).

use core::arch::x86_64::*;
use core::mem::size_of;

use ingot_quant::blocks::{BlockQ4K, BlockQ6K, BlockQ8K};

use super::prefetch_ahead;
use super::simd::{bsum_pairs, h2f, hsum, hsum128, hsum_each, ld, mins_dot, scale_pair};
use crate::kernels::scalar::unpack_scales_mins_k4;

/// `vpermw` indices for q4_K code vector v = 2h + n (h: which 64 bytes of `qs`, n: low or high
/// nibbles): sub-block 4h + n's scale in the 16 words of the low half, 4h + n + 2's in the high
/// half (the 8 scales widened to words in the low 128 bits).
const Q4K_SCALE_IDX: [[i16; 32]; 4] = {
    let mut idx = [[0i16; 32]; 4];
    let mut v = 0;
    while v < 4 {
        let mut l = 0;
        while l < 32 {
            idx[v][l] = (4 * (v / 2) + v % 2 + 2 * (l / 16)) as i16;
            l += 1;
        }
        v += 1;
    }
    idx
};

/// `vpermw` indices for q6_K step c (64 activation bytes from 64c): the scales of its four
/// 16-element sub-blocks 4c..4c+4, one per 128-bit quarter.
const Q6K_SCALE_IDX: [[i16; 32]; 4] = {
    let mut idx = [[0i16; 32]; 4];
    let mut c = 0;
    while c < 4 {
        let mut l = 0;
        while l < 32 {
            idx[c][l] = (4 * c + l / 8) as i16;
            l += 1;
        }
        c += 1;
    }
    idx
};

/// 64 bytes at `p`.
///
/// # Safety
/// `p` valid for 64 bytes; AVX-512 F.
#[inline(always)]
unsafe fn ld64(p: *const u8) -> __m512i {
    // SAFETY: the caller guarantees 64 readable bytes; no alignment requirement.
    unsafe { _mm512_loadu_si512(p.cast()) }
}

/// 32 bytes at `p` in both halves of a register.
///
/// # Safety
/// `p` valid for 32 bytes; AVX-512 F.
#[inline(always)]
unsafe fn ld32x2(p: *const u8) -> __m512i {
    // SAFETY: the caller guarantees 32 readable bytes.
    unsafe { _mm512_broadcast_i64x4(ld(p)) }
}

/// `vpdpwssd` kept as one instruction: with generic tuning LLVM may split the intrinsic into
/// `vpmaddwd` + `vpaddd` to shorten the chain, which in the q6_K loops cost three extra uops per
/// row and super-block on the two busy ports (same i32 result either way). Measured in one
/// session: q6_K dot 27.3 → 29.0 GiB/s, GEMV 576×1536 26.8 → 27.8. The q4_K body keeps the
/// intrinsic: there the split did not happen in the four-row loop, and the asm barrier cost
/// its GEMV ≈ 9 % (20.9 → 19.0).
///
/// # Safety
/// AVX-512 F and AVX512-VNNI.
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dpwssd(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
    let mut acc = acc;
    // SAFETY: one register-only instruction the caller's CPU has (VNNI); no memory, stack or
    // flags touched.
    unsafe {
        core::arch::asm!(
            "vpdpwssd {acc}, {a}, {b}",
            acc = inout(zmm_reg) acc,
            a = in(zmm_reg) a,
            b = in(zmm_reg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    acc
}

/// The eight i32 lanes of the 256-bit bodies' sum: the low half plus the high half.
///
/// # Safety
/// AVX-512 F.
#[inline(always)]
unsafe fn fold(s: __m512i) -> __m256i {
    // SAFETY: register-only intrinsics.
    unsafe { _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64::<1>(s)) }
}

/// `R` q4_K rows · one q8_K row (see the module docs).
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q4k_rows<const R: usize>(
    w: [&[BlockQ4K]; R],
    a: &[BlockQ8K],
    ahead: usize,
) -> [f32; R] {
    // SAFETY: features per the caller; every load is inside a block (qs 128 B read as two
    // 64-byte halves, y.qs 256 B as eight 32-byte chunks, scales 8 B copied to a local).
    unsafe {
        let m4 = _mm512_set1_epi8(0x0f);
        let mut idx = [_mm512_setzero_si512(); 4];
        for (v, table) in idx.iter_mut().zip(&Q4K_SCALE_IDX) {
            *v = _mm512_loadu_si512(table.as_ptr().cast());
        }
        let mut acc = [_mm256_setzero_ps(); R];
        let mut accm = [_mm_setzero_ps(); R];
        for (i, y) in a.iter().enumerate() {
            // Activations in the code vectors' order: yq[2h + n] holds sub-blocks 4h + n and
            // 4h + n + 2 (32 bytes each), once per super-block for all rows.
            let mut yq = [_mm512_setzero_si512(); 4];
            for (v, y2) in yq.iter_mut().enumerate() {
                let lo = ld(y.qs.as_ptr().add(128 * (v / 2) + 32 * (v % 2)).cast());
                let hi = ld(y.qs.as_ptr().add(128 * (v / 2) + 32 * (v % 2) + 64).cast());
                *y2 = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi);
            }
            let pairs = bsum_pairs(y);
            let yd = _mm_set1_ps(y.d);
            for r in 0..R {
                let x = &w[r][i];
                prefetch_ahead((x as *const BlockQ4K).cast(), ahead, size_of::<BlockQ4K>());
                let (sc, m) = unpack_scales_mins_k4(&x.scales);
                let dd = scale_pair(x.d, x.dmin, yd);
                let pm = mins_dot(pairs, &m);
                accm[r] = _mm_fmadd_ps(_mm_movehdup_ps(dd), _mm_cvtepi32_ps(pm), accm[r]);
                let sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_set1_epi64x(
                    u64::from_le_bytes(sc) as i64,
                )));
                let mut sumi = _mm512_setzero_si512();
                for h in 0..2 {
                    // 64 bytes of nibbles: the low ones are sub-blocks 4h and 4h + 2 in element
                    // order, the high ones 4h + 1 and 4h + 3.
                    let q = ld64(x.qs.as_ptr().add(64 * h));
                    let c = [
                        _mm512_and_si512(q, m4),
                        _mm512_and_si512(_mm512_srli_epi16::<4>(q), m4),
                    ];
                    for (n, c) in c.into_iter().enumerate() {
                        let v = 2 * h + n;
                        let p = _mm512_maddubs_epi16(c, yq[v]);
                        let s = _mm512_permutexvar_epi16(idx[v], sc16);
                        sumi = _mm512_dpwssd_epi32(sumi, p, s);
                    }
                }
                acc[r] = _mm256_fmadd_ps(
                    _mm256_broadcastss_ps(dd),
                    _mm256_cvtepi32_ps(fold(sumi)),
                    acc[r],
                );
            }
        }
        let mut out = [0.0f32; R];
        for r in 0..R {
            out[r] = hsum(acc[r]) - hsum128(accm[r]);
        }
        out
    }
}

/// `R` q6_K rows · one q8_K row (see the module docs).
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q6k_rows<const R: usize>(
    w: [&[BlockQ6K]; R],
    a: &[BlockQ8K],
    ahead: usize,
) -> [f32; R] {
    // SAFETY: features per the caller; every load is inside a block (ql 128 B as two 64-byte
    // halves, qh 64 B as two 32-byte halves, scales 16 B, y.qs 256 B, y.bsums 32 B).
    unsafe {
        let m4 = _mm512_set1_epi8(0x0f);
        let (b2, b30) = (_mm512_set1_epi8(0x03), _mm512_set1_epi8(0x30));
        let mut idx = [_mm512_setzero_si512(); 4];
        for (v, table) in idx.iter_mut().zip(&Q6K_SCALE_IDX) {
            *v = _mm512_loadu_si512(table.as_ptr().cast());
        }
        let mut acc = [_mm256_setzero_ps(); R];
        for (i, y) in a.iter().enumerate() {
            let mut yq = [_mm512_setzero_si512(); 4];
            for (c, v) in yq.iter_mut().enumerate() {
                *v = ld64(y.qs.as_ptr().add(64 * c).cast());
            }
            let bsums = ld(y.bsums.as_ptr().cast());
            for r in 0..R {
                let x = &w[r][i];
                prefetch_ahead((x as *const BlockQ6K).cast(), ahead, size_of::<BlockQ6K>());
                let s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(x.scales.as_ptr().cast()));
                let corr = _mm256_madd_epi16(s16, bsums);
                let start = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<5>(corr));
                let s16 = _mm512_castsi256_si512(s16);
                let mut sumi = _mm512_setzero_si512();
                for h in 0..2 {
                    // Low half: ql[64h..64h+32] and qh's bits 0–1 / 4–5; high half:
                    // ql[64h+32..64h+64] and qh's bits 2–3 / 6–7 (shifted down by 2).
                    let ql = ld64(x.ql.as_ptr().add(64 * h));
                    let qh = ld32x2(x.qh.as_ptr().add(32 * h));
                    let qh = _mm512_mask_srli_epi16::<2>(qh, 0xFFFF_0000, qh);
                    let v01 = _mm512_or_si512(
                        _mm512_and_si512(ql, m4),
                        _mm512_slli_epi16::<4>(_mm512_and_si512(qh, b2)),
                    );
                    let v23 = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi16::<4>(ql), m4),
                        _mm512_and_si512(qh, b30),
                    );
                    let p01 = _mm512_maddubs_epi16(v01, yq[2 * h]);
                    let p23 = _mm512_maddubs_epi16(v23, yq[2 * h + 1]);
                    let sv01 = _mm512_permutexvar_epi16(idx[2 * h], s16);
                    let sv23 = _mm512_permutexvar_epi16(idx[2 * h + 1], s16);
                    sumi = dpwssd(sumi, p01, sv01);
                    sumi = dpwssd(sumi, p23, sv23);
                }
                let sumi = _mm256_add_epi32(start, fold(sumi));
                acc[r] = _mm256_fmadd_ps(
                    _mm256_set1_ps(h2f(x.d) * y.d),
                    _mm256_cvtepi32_ps(sumi),
                    acc[r],
                );
            }
        }
        hsum_each(&acc)
    }
}

/// q4_K · q8_K.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q4k(w: &[BlockQ4K], a: &[BlockQ8K]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_q4k_rows([w], a, 0)[0] }
}

/// Four q4_K rows · one q8_K row.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q4k_4rows(w: [&[BlockQ4K]; 4], a: &[BlockQ8K], ahead: usize) -> [f32; 4] {
    // SAFETY: forwarded contract.
    unsafe { dot_q4k_rows(w, a, ahead) }
}

/// q6_K · q8_K.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q6k(w: &[BlockQ6K], a: &[BlockQ8K]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_q6k_rows([w], a, 0)[0] }
}

/// Four q6_K rows · one q8_K row.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q6k_4rows(w: [&[BlockQ6K]; 4], a: &[BlockQ8K], ahead: usize) -> [f32; 4] {
    // SAFETY: forwarded contract.
    unsafe { dot_q6k_rows(w, a, ahead) }
}
