//! The 256-bit kernel bodies shared by the AVX2 and AVX-512 levels: `#[inline(always)]`,
//! generic over [`Isa`] (how u8×i8 products are summed into i32 lanes), and compiled inside
//! the `#[target_feature]` wrappers of `avx2.rs` / `avx512.rs`.
//!
//! Every body is `unsafe`: callers must (1) run on a CPU with AVX2, FMA and F16C (plus the
//! Isa's own features), and (2) pass slices whose lengths were checked by the wrapper
//! (equal block counts; `out` of the right size). Loads read only inside the blocks' arrays.
//!
//! Integer products (ggml's approach, `ggml-cpu/arch/x86/quants.c`):
//! - signed × signed (q8_0, q4_0, q5_0, q8_K): `dpbusd(|w|, sign(a, w))`. Exact because
//!   activation codes are never −128 (see `scalar`), so negating one cannot overflow, and
//!   |w| ≤ 128 keeps AVX2's i16 pair sums ≤ 2·128·127 < 2¹⁵.
//! - unsigned × signed (q4_1, q5_1, the K-quants): `maddubs(code, a)` directly; codes ≤ 63
//!   keep pair sums < 2¹⁵.
//!
//! Each block's integer sum is then scaled in f32 lanes (`fmadd(d, cvt(sumi), acc)`) and the
//! lanes are added at the end: the float reduction order differs from the scalar loop's, the
//! integers do not.

use core::arch::x86_64::*;

use half::{bf16, f16};
use ingot_quant::blocks::{
    BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K, BlockQ8_0,
    BlockQ8_1, QK, QK_K,
};

use core::mem::size_of;

use super::prefetch_ahead;
use crate::kernels::scalar::{signed_absmax, unpack_scales_mins_k4};

/// How a level sums u8 × i8 products into i32 lanes.
pub(crate) trait Isa {
    /// `acc + Σ_{k<4} u[4i+k]·s[4i+k]` per i32 lane `i`. AVX2 (maddubs) needs every adjacent
    /// pair sum to fit in i16; VNNI has no such limit.
    ///
    /// # Safety
    /// The CPU must have the Isa's features.
    unsafe fn dpbusd(acc: __m256i, u: __m256i, s: __m256i) -> __m256i;
}

/// 32 bytes at `p`.
///
/// # Safety
/// `p` must be valid for 32 bytes; AVX.
#[inline(always)]
pub(crate) unsafe fn ld(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 32 readable bytes; loadu has no alignment requirement.
    unsafe { _mm256_loadu_si256(p.cast()) }
}

/// f16 → f32 with F16C.
///
/// # Safety
/// F16C.
#[inline(always)]
pub(crate) unsafe fn h2f(h: f16) -> f32 {
    // SAFETY: register-only intrinsics; the caller guarantees F16C. A broadcast, not
    // `cvtsi32_si128`: LLVM lowers the latter to `vpinsrw` into whatever register it picks,
    // which in q4_1's loop was the scalar accumulator — a false dependency that serialised
    // the loop (measured 2.2 GB/s).
    unsafe { _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(h.to_bits() as i16))) }
}

/// f32 → f16 (round to nearest even) with F16C.
///
/// # Safety
/// F16C.
#[inline(always)]
unsafe fn f2h(v: f32) -> f16 {
    // SAFETY: register-only intrinsics; the caller guarantees F16C.
    let bits =
        unsafe { _mm_extract_epi16::<0>(_mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set_ss(v))) };
    f16::from_bits(bits as u16)
}

/// Horizontal sum of 8 f32 lanes.
///
/// # Safety
/// AVX.
#[inline(always)]
pub(crate) unsafe fn hsum(v: __m256) -> f32 {
    // SAFETY: register-only intrinsics; the caller guarantees AVX.
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}

/// Horizontal sum of each of `M` vectors (the final step of the multi-row kernels).
///
/// # Safety
/// AVX.
#[inline(always)]
pub(crate) unsafe fn hsum_each<const M: usize>(v: &[__m256; M]) -> [f32; M] {
    let mut out = [0.0f32; M];
    for m in 0..M {
        // SAFETY: register-only; the caller guarantees AVX.
        out[m] = unsafe { hsum(v[m]) };
    }
    out
}

/// Horizontal sums of four vectors (explicit, not `array::map`: see `round32`).
///
/// # Safety
/// AVX.
#[inline(always)]
unsafe fn hsum4(v: &[__m256; 4]) -> [f32; 4] {
    // SAFETY: register-only; the caller guarantees AVX.
    unsafe { [hsum(v[0]), hsum(v[1]), hsum(v[2]), hsum(v[3])] }
}

/// Horizontal sum of 4 f32 lanes.
///
/// # Safety
/// SSE3.
#[inline(always)]
pub(crate) unsafe fn hsum128(s: __m128) -> f32 {
    // SAFETY: register-only intrinsics.
    unsafe {
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}

/// Horizontal sum of 8 i32 lanes.
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn hsum_i32(v: __m256i) -> i32 {
    // SAFETY: register-only intrinsics; the caller guarantees AVX2.
    unsafe {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01>(s));
        _mm_cvtsi128_si32(s)
    }
}

/// Σ w·a per i32 lane for signed w and a (a ≠ −128), via |w| and a with w's sign.
///
/// # Safety
/// AVX2 and the Isa's features.
#[inline(always)]
unsafe fn mul_i8<I: Isa>(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
    // SAFETY: register-only intrinsics; the caller guarantees the features.
    unsafe { I::dpbusd(acc, _mm256_abs_epi8(w), _mm256_sign_epi8(a, w)) }
}

/// The 32 nibbles of a legacy block in element order: low nibbles (elements 0..16) in the
/// low 128-bit lane, high nibbles (16..32) in the high lane.
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn nibbles(qs: &[u8; QK / 2]) -> __m256i {
    // SAFETY: `qs` is 16 readable bytes; the rest are register intrinsics under AVX2.
    unsafe {
        let b = _mm_loadu_si128(qs.as_ptr().cast());
        let m = _mm_set1_epi8(0x0f);
        let lo = _mm_and_si128(b, m);
        let hi = _mm_and_si128(_mm_srli_epi16::<4>(b), m);
        _mm256_set_m128i(hi, lo)
    }
}

/// Byte j = 0xFF if bit j of `bits` is set, else 0.
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn bits_to_bytes(bits: u32) -> __m256i {
    // SAFETY: register-only intrinsics; the caller guarantees AVX2.
    unsafe {
        let v = _mm256_set1_epi32(bits as i32);
        let idx = _mm256_setr_epi8(
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3,
            3, 3, 3,
        );
        let spread = _mm256_shuffle_epi8(v, idx);
        let m = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
        _mm256_cmpeq_epi8(_mm256_and_si256(spread, m), m)
    }
}

// ---------------------------------------------------------------------------------------
// Legacy weight decoders: signed codes (type 0: x = d·c) or unsigned codes (type 1:
// x = d·c + m), as one 256-bit vector of 32 bytes in element order.
// ---------------------------------------------------------------------------------------

/// A type-0 legacy block (q8_0, q4_0, q5_0): signed codes and a scale.
pub(crate) trait Type0: Sized {
    /// Signed codes, element order.
    ///
    /// # Safety
    /// AVX2.
    unsafe fn codes(&self) -> __m256i;
    /// The scale.
    ///
    /// # Safety
    /// F16C.
    unsafe fn scale(&self) -> f32;
}

impl Type0 for BlockQ8_0 {
    #[inline(always)]
    unsafe fn codes(&self) -> __m256i {
        // SAFETY: `qs` is 32 bytes.
        unsafe { ld(self.qs.as_ptr().cast()) }
    }
    #[inline(always)]
    unsafe fn scale(&self) -> f32 {
        // SAFETY: F16C per the trait contract.
        unsafe { h2f(self.d) }
    }
}

impl Type0 for BlockQ4_0 {
    #[inline(always)]
    unsafe fn codes(&self) -> __m256i {
        // SAFETY: AVX2 per the trait contract.
        unsafe { _mm256_sub_epi8(nibbles(&self.qs), _mm256_set1_epi8(8)) }
    }
    #[inline(always)]
    unsafe fn scale(&self) -> f32 {
        // SAFETY: F16C per the trait contract.
        unsafe { h2f(self.d) }
    }
}

impl Type0 for BlockQ5_0 {
    #[inline(always)]
    unsafe fn codes(&self) -> __m256i {
        // SAFETY: AVX2 per the trait contract. (nibble | 16·bit) − 16 = bit ? nibble :
        // nibble | 0xF0 (two's complement of nibble − 16).
        unsafe {
            let hi = bits_to_bytes(u32::from_le_bytes(self.qh));
            let neg = _mm256_andnot_si256(hi, _mm256_set1_epi8(0xF0u8 as i8));
            _mm256_or_si256(nibbles(&self.qs), neg)
        }
    }
    #[inline(always)]
    unsafe fn scale(&self) -> f32 {
        // SAFETY: F16C per the trait contract.
        unsafe { h2f(self.d) }
    }
}

/// A type-1 legacy block (q4_1, q5_1): unsigned codes, scale and min.
pub(crate) trait Type1: Sized {
    /// Unsigned codes, element order.
    ///
    /// # Safety
    /// AVX2.
    unsafe fn codes(&self) -> __m256i;
    /// (scale, min).
    ///
    /// # Safety
    /// F16C.
    unsafe fn scale_min(&self) -> (f32, f32);
}

impl Type1 for BlockQ4_1 {
    #[inline(always)]
    unsafe fn codes(&self) -> __m256i {
        // SAFETY: AVX2 per the trait contract.
        unsafe { nibbles(&self.qs) }
    }
    #[inline(always)]
    unsafe fn scale_min(&self) -> (f32, f32) {
        // SAFETY: F16C per the trait contract.
        unsafe { (h2f(self.d), h2f(self.m)) }
    }
}

impl Type1 for BlockQ5_1 {
    #[inline(always)]
    unsafe fn codes(&self) -> __m256i {
        // SAFETY: AVX2 per the trait contract.
        unsafe {
            let hi = bits_to_bytes(u32::from_le_bytes(self.qh));
            _mm256_or_si256(
                nibbles(&self.qs),
                _mm256_and_si256(hi, _mm256_set1_epi8(0x10)),
            )
        }
    }
    #[inline(always)]
    unsafe fn scale_min(&self) -> (f32, f32) {
        // SAFETY: F16C per the trait contract.
        unsafe { (h2f(self.d), h2f(self.m)) }
    }
}

/// Type-0 weights · q8_0: Σ_b d_w·d_a·Σ c·a, two blocks per iteration for ILP.
///
/// # Safety
/// See the module docs; `w.len() == a.len()`.
#[inline(always)]
pub(crate) unsafe fn dot_type0<I: Isa, W: Type0>(w: &[W], a: &[BlockQ8_0]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_type0_rows::<I, W, 1>([w], a, 0)[0] }
}

/// Four type-0 weight rows · one q8_0 row: each activation block loaded (and its scale
/// converted) once; row r's result is `dot_type0(w[r], a)` bit for bit. Each pair of weight
/// blocks read is followed by a prefetch of the bytes `ahead` further (0: none).
///
/// # Safety
/// See the module docs; every `w[r].len() == a.len()`.
#[inline(always)]
pub(crate) unsafe fn dot_type0_4rows<I: Isa, W: Type0>(
    w: [&[W]; 4],
    a: &[BlockQ8_0],
    ahead: usize,
) -> [f32; 4] {
    // SAFETY: forwarded contract.
    unsafe { dot_type0_rows::<I, W, 4>(w, a, ahead) }
}

/// `M` type-0 weight rows · one q8_0 row; every row goes through the same operations in the
/// same order whatever `M` is.
///
/// # Safety
/// See the module docs; all slices have the same length.
#[inline(always)]
unsafe fn dot_type0_rows<I: Isa, W: Type0, const M: usize>(
    w: [&[W]; M],
    a: &[BlockQ8_0],
    ahead: usize,
) -> [f32; M] {
    // SAFETY: features per the caller; every load is inside a block.
    unsafe {
        let zero = _mm256_setzero_si256();
        let mut acc0 = [_mm256_setzero_ps(); M];
        let mut acc1 = [_mm256_setzero_ps(); M];
        let pairs = a.len() / 2;
        for i in 0..pairs {
            let (y0, y1) = (&a[2 * i], &a[2 * i + 1]);
            let (a0, a1) = (ld(y0.qs.as_ptr().cast()), ld(y1.qs.as_ptr().cast()));
            let (dy0, dy1) = (h2f(y0.d), h2f(y1.d));
            for m in 0..M {
                let (x0, x1) = (&w[m][2 * i], &w[m][2 * i + 1]);
                prefetch_ahead((x0 as *const W).cast(), ahead, 2 * size_of::<W>());
                let s0 = mul_i8::<I>(zero, x0.codes(), a0);
                let s1 = mul_i8::<I>(zero, x1.codes(), a1);
                let d0 = _mm256_set1_ps(x0.scale() * dy0);
                let d1 = _mm256_set1_ps(x1.scale() * dy1);
                acc0[m] = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(s0), acc0[m]);
                acc1[m] = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(s1), acc1[m]);
            }
        }
        if a.len() % 2 == 1 {
            let y = &a[a.len() - 1];
            let (ay, dy) = (ld(y.qs.as_ptr().cast()), h2f(y.d));
            for m in 0..M {
                let x = &w[m][a.len() - 1];
                let s = mul_i8::<I>(zero, x.codes(), ay);
                let d = _mm256_set1_ps(x.scale() * dy);
                acc0[m] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc0[m]);
            }
        }
        let mut out = [0.0f32; M];
        for m in 0..M {
            out[m] = hsum(_mm256_add_ps(acc0[m], acc1[m]));
        }
        out
    }
}

/// Type-0 weights · four q8_0 rows, decoding each weight block once.
///
/// # Safety
/// See the module docs; every `a[t].len() == w.len()`.
#[inline(always)]
pub(crate) unsafe fn dot_type0_x4<I: Isa, W: Type0>(w: &[W], a: [&[BlockQ8_0]; 4]) -> [f32; 4] {
    // SAFETY: features per the caller; every load is inside a block.
    unsafe {
        let zero = _mm256_setzero_si256();
        let mut acc = [_mm256_setzero_ps(); 4];
        for (i, x) in w.iter().enumerate() {
            let c = x.codes();
            let ac = _mm256_abs_epi8(c);
            let dx = x.scale();
            for t in 0..4 {
                let y = &a[t][i];
                let s = I::dpbusd(zero, ac, _mm256_sign_epi8(ld(y.qs.as_ptr().cast()), c));
                let d = _mm256_set1_ps(dx * h2f(y.d));
                acc[t] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(s), acc[t]);
            }
        }
        hsum4(&acc)
    }
}

/// One type-1 block into (`acc`, `summ`).
///
/// # Safety
/// As [`dot_type1`].
#[inline(always)]
unsafe fn type1_step<I: Isa, W: Type1>(x: &W, y: &BlockQ8_1, acc: &mut __m256, summ: &mut f32) {
    // SAFETY: features per the caller; loads inside the blocks.
    unsafe {
        let s = I::dpbusd(_mm256_setzero_si256(), x.codes(), ld(y.qs.as_ptr().cast()));
        let (d, m) = x.scale_min();
        let dd = _mm256_set1_ps(d * h2f(y.d));
        *acc = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(s), *acc);
        *summ = m.mul_add(h2f(y.s), *summ);
    }
}

/// Type-1 weights · q8_1: Σ_b d_w·d_a·Σ c·a + m_w·s_a, two blocks per iteration with
/// independent accumulators (the `m·s` terms in two FMA chains, not one serial scalar sum).
/// A helper function, not a closure: closures do not inherit target features.
///
/// # Safety
/// See the module docs; `w.len() == a.len()`.
#[inline(always)]
pub(crate) unsafe fn dot_type1<I: Isa, W: Type1>(w: &[W], a: &[BlockQ8_1]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_type1_rows::<I, W, 1>([w], a, 0)[0] }
}

/// Four type-1 weight rows · one q8_1 row (the GEMV kernel); row r's result is
/// `dot_type1(w[r], a)` bit for bit. Each pair of weight blocks read is followed by a
/// prefetch of the bytes `ahead` further (0: none).
///
/// # Safety
/// See the module docs; every `w[r].len() == a.len()`.
#[inline(always)]
pub(crate) unsafe fn dot_type1_4rows<I: Isa, W: Type1>(
    w: [&[W]; 4],
    a: &[BlockQ8_1],
    ahead: usize,
) -> [f32; 4] {
    // SAFETY: forwarded contract.
    unsafe { dot_type1_rows::<I, W, 4>(w, a, ahead) }
}

/// `M` type-1 weight rows · one q8_1 row; every row goes through the same operations in the
/// same order whatever `M` is.
///
/// # Safety
/// See the module docs; all slices have the same length.
#[inline(always)]
unsafe fn dot_type1_rows<I: Isa, W: Type1, const M: usize>(
    w: [&[W]; M],
    a: &[BlockQ8_1],
    ahead: usize,
) -> [f32; M] {
    // SAFETY: features per the caller; every load is inside a block.
    unsafe {
        let (mut acc0, mut acc1) = ([_mm256_setzero_ps(); M], [_mm256_setzero_ps(); M]);
        let (mut summ0, mut summ1) = ([0.0f32; M], [0.0f32; M]);
        let pairs = a.len() / 2;
        for i in 0..pairs {
            for m in 0..M {
                let x = &w[m][2 * i..2 * i + 2];
                prefetch_ahead(x.as_ptr().cast(), ahead, 2 * size_of::<W>());
                type1_step::<I, W>(&x[0], &a[2 * i], &mut acc0[m], &mut summ0[m]);
                type1_step::<I, W>(&x[1], &a[2 * i + 1], &mut acc1[m], &mut summ1[m]);
            }
        }
        if a.len() % 2 == 1 {
            let last = a.len() - 1;
            for m in 0..M {
                type1_step::<I, W>(&w[m][last], &a[last], &mut acc0[m], &mut summ0[m]);
            }
        }
        let mut out = [0.0f32; M];
        for m in 0..M {
            out[m] = hsum(_mm256_add_ps(acc0[m], acc1[m])) + (summ0[m] + summ1[m]);
        }
        out
    }
}

/// Type-1 weights · four q8_1 rows.
///
/// # Safety
/// See the module docs; every `a[t].len() == w.len()`.
#[inline(always)]
pub(crate) unsafe fn dot_type1_x4<I: Isa, W: Type1>(w: &[W], a: [&[BlockQ8_1]; 4]) -> [f32; 4] {
    // SAFETY: features per the caller; every load is inside a block.
    unsafe {
        let zero = _mm256_setzero_si256();
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut summ = [0.0f32; 4];
        for (i, x) in w.iter().enumerate() {
            let c = x.codes();
            let (d, m) = x.scale_min();
            for t in 0..4 {
                let y = &a[t][i];
                let s = I::dpbusd(zero, c, ld(y.qs.as_ptr().cast()));
                let dd = _mm256_set1_ps(d * h2f(y.d));
                acc[t] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(s), acc[t]);
                summ[t] += m * h2f(y.s);
            }
        }
        let h = hsum4(&acc);
        [
            h[0] + summ[0],
            h[1] + summ[1],
            h[2] + summ[2],
            h[3] + summ[3],
        ]
    }
}

/// Stores 32 signed codes × `d` as f32.
///
/// # Safety
/// AVX2; `out` holds 32 values.
#[inline(always)]
unsafe fn store_scaled_i8(c: __m256i, d: __m256, out: &mut [f32]) {
    debug_assert!(out.len() >= 32);
    // SAFETY: AVX2; four 8-float stores inside `out[..32]`.
    unsafe {
        let lo = _mm256_castsi256_si128(c);
        let hi = _mm256_extracti128_si256::<1>(c);
        let parts = [lo, _mm_srli_si128::<8>(lo), hi, _mm_srli_si128::<8>(hi)];
        for (k, p) in parts.into_iter().enumerate() {
            let f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(p));
            _mm256_storeu_ps(out.as_mut_ptr().add(8 * k), _mm256_mul_ps(f, d));
        }
    }
}

/// Stores 32 unsigned codes as `code·d + m` (one FMA, like ggml's x86 build) as f32.
///
/// # Safety
/// AVX2 + FMA; `out` holds 32 values.
#[inline(always)]
unsafe fn store_fma_u8(c: __m256i, d: __m256, m: __m256, out: &mut [f32]) {
    debug_assert!(out.len() >= 32);
    // SAFETY: AVX2/FMA; four 8-float stores inside `out[..32]`.
    unsafe {
        let lo = _mm256_castsi256_si128(c);
        let hi = _mm256_extracti128_si256::<1>(c);
        let parts = [lo, _mm_srli_si128::<8>(lo), hi, _mm_srli_si128::<8>(hi)];
        for (k, p) in parts.into_iter().enumerate() {
            let f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(p));
            _mm256_storeu_ps(out.as_mut_ptr().add(8 * k), _mm256_fmadd_ps(f, d, m));
        }
    }
}

/// Type-0 dequantization: c·d.
///
/// # Safety
/// AVX2 + F16C; `out.len() == 32·w.len()`.
#[inline(always)]
pub(crate) unsafe fn dequant_type0<W: Type0>(w: &[W], out: &mut [f32]) {
    // SAFETY: features per the caller; sizes checked by the wrapper.
    unsafe {
        for (x, o) in w.iter().zip(out.chunks_exact_mut(QK)) {
            store_scaled_i8(x.codes(), _mm256_set1_ps(x.scale()), o);
        }
    }
}

/// Type-1 dequantization: c·d + m.
///
/// # Safety
/// AVX2 + FMA + F16C; `out.len() == 32·w.len()`.
#[inline(always)]
pub(crate) unsafe fn dequant_type1<W: Type1>(w: &[W], out: &mut [f32]) {
    // SAFETY: features per the caller; sizes checked by the wrapper.
    unsafe {
        for (x, o) in w.iter().zip(out.chunks_exact_mut(QK)) {
            let (d, m) = x.scale_min();
            store_fma_u8(x.codes(), _mm256_set1_ps(d), _mm256_set1_ps(m), o);
        }
    }
}

// ---------------------------------------------------------------------------------------
// K-quants.
// ---------------------------------------------------------------------------------------

/// bsums[2s] + bsums[2s+1]: the activation sums of a q8_K block's eight 32-element
/// sub-blocks, as i16 lanes. Depends on the activations only, so the multi-row kernels compute
/// it once per block for all rows.
///
/// # Safety
/// AVX2.
#[inline(always)]
pub(crate) unsafe fn bsum_pairs(y: &BlockQ8K) -> __m128i {
    // SAFETY: bsums is 32 bytes; AVX2.
    unsafe {
        let bs = ld(y.bsums.as_ptr().cast());
        _mm_hadd_epi16(
            _mm256_castsi256_si128(bs),
            _mm256_extracti128_si256::<1>(bs),
        )
    }
}

/// Σ_s m_s·(bsums[2s] + bsums[2s+1]) as 4 i32 lanes, from [`bsum_pairs`].
///
/// # Safety
/// AVX2.
#[inline(always)]
pub(crate) unsafe fn mins_dot(pairs: __m128i, m: &[u8; 8]) -> __m128i {
    // SAFETY: m is 8 bytes; AVX2.
    unsafe { _mm_madd_epi16(pairs, _mm_cvtepu8_epi16(_mm_loadl_epi64(m.as_ptr().cast()))) }
}

/// [d·y_d, dmin·y_d, d·y_d, dmin·y_d]: a K-quant block's two f16 super-block scales times the
/// activation scale with one conversion and one multiply (the same f32 products as one at a
/// time; the two f16 are adjacent in the block, so LLVM loads them as one dword).
///
/// # Safety
/// AVX + F16C.
#[inline(always)]
pub(crate) unsafe fn scale_pair(d: f16, dmin: f16, yd: __m128) -> __m128 {
    let bits = (u32::from(dmin.to_bits()) << 16 | u32::from(d.to_bits())) as i32;
    // SAFETY: register-only intrinsics; the caller guarantees F16C.
    unsafe { _mm_mul_ps(_mm_cvtph_ps(_mm_set1_epi32(bits)), yd) }
}

/// The 8 sub-block scales of a q4_K/q5_K block widened to words, in both 128-bit halves (the
/// source [`word_broadcast`] picks from).
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn scale_words(sc: &[u8; 8]) -> __m256i {
    // SAFETY: an 8-byte load inside `sc`; register intrinsics.
    unsafe { _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_loadl_epi64(sc.as_ptr().cast()))) }
}

/// `vpshufb` control broadcasting word `k` of each 128-bit half to all its words.
///
/// # Safety
/// AVX.
#[inline(always)]
unsafe fn word_broadcast(k: usize) -> __m256i {
    // SAFETY: register-only intrinsic.
    unsafe { _mm256_set1_epi16((0x0101 * k as i16 * 2) + 0x0100) }
}

/// One q4_K/q5_K super-block's Σ_s sc_s·Σ c·a as i32 lanes; `hbits` adds Q5_K's fifth bits.
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn q45k_block(
    qs: &[u8; QK_K / 2],
    qh: Option<&[u8; QK_K / 8]>,
    sc: &[u8; 8],
    y: &BlockQ8K,
) -> __m256i {
    // SAFETY: loads inside qs (128 B), qh (32 B), y.qs (256 B); AVX2.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let b4 = _mm256_set1_epi8(0x10);
        let mut hb = match qh {
            Some(h) => ld(h.as_ptr()),
            None => _mm256_setzero_si256(),
        };
        // The 8 scales widened to words in both 128-bit halves once; each sub-block's scale is
        // then one `vpshufb` broadcast instead of a scalar move and `vpbroadcastw`.
        let sc16 = scale_words(sc);
        let mut sumi = _mm256_setzero_si256();
        for j in 0..4 {
            let q = ld(qs.as_ptr().add(32 * j));
            let mut lo = _mm256_and_si256(q, m4);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
            if qh.is_some() {
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16::<4>(hb), b4));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16::<3>(hb), b4));
                hb = _mm256_srli_epi16::<2>(hb);
            }
            let plo = _mm256_maddubs_epi16(lo, ld(y.qs.as_ptr().add(64 * j).cast()));
            let phi = _mm256_maddubs_epi16(hi, ld(y.qs.as_ptr().add(64 * j + 32).cast()));
            let slo = _mm256_shuffle_epi8(sc16, word_broadcast(2 * j));
            let shi = _mm256_shuffle_epi8(sc16, word_broadcast(2 * j + 1));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, slo));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, shi));
        }
        sumi
    }
}

/// Shared q4_K / q5_K dot over `M` weight rows (one for the dot, four for the GEMV): every
/// row goes through the same operations in the same order whatever `M` is, and each weight
/// block read is followed by a prefetch of the bytes `ahead` further (0: none).
///
/// # Safety
/// AVX2 + FMA + F16C; equal lengths.
#[inline(always)]
unsafe fn dot_q45k<W, const M: usize>(
    w: [&[W]; M],
    a: &[BlockQ8K],
    ahead: usize,
    parts: impl Fn(
        &W,
    ) -> (
        &[u8; QK_K / 2],
        Option<&[u8; QK_K / 8]>,
        &[u8; 12],
        f16,
        f16,
    ),
) -> [f32; M] {
    // SAFETY: features per the caller; helpers load inside blocks.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); M];
        let mut accm = [_mm_setzero_ps(); M];
        for (i, y) in a.iter().enumerate() {
            let pairs = bsum_pairs(y);
            let yd = _mm_set1_ps(y.d);
            for m in 0..M {
                let x = &w[m][i];
                prefetch_ahead((x as *const W).cast(), ahead, size_of::<W>());
                let (qs, qh, scales, d, dmin) = parts(x);
                let (sc, mins) = unpack_scales_mins_k4(scales);
                // [d·y.d, dmin·y.d, …] with one conversion and one multiply (the same f32
                // products as one at a time).
                let dd = scale_pair(d, dmin, yd);
                let pm = mins_dot(pairs, &mins);
                accm[m] = _mm_fmadd_ps(_mm_movehdup_ps(dd), _mm_cvtepi32_ps(pm), accm[m]);
                let sumi = q45k_block(qs, qh, &sc, y);
                acc[m] =
                    _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc[m]);
            }
        }
        let mut out = [0.0f32; M];
        for m in 0..M {
            out[m] = hsum(acc[m]) - hsum128(accm[m]);
        }
        out
    }
}

/// Shared q4_K / q5_K four-column dot: each weight nibble vector decoded once.
///
/// # Safety
/// AVX2 + FMA + F16C; equal lengths.
#[inline(always)]
unsafe fn dot_q45k_x4<W>(
    w: &[W],
    a: [&[BlockQ8K]; 4],
    parts: impl Fn(
        &W,
    ) -> (
        &[u8; QK_K / 2],
        Option<&[u8; QK_K / 8]>,
        &[u8; 12],
        f16,
        f16,
    ),
) -> [f32; 4] {
    // SAFETY: features per the caller; loads inside blocks.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let b4 = _mm256_set1_epi8(0x10);
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut accm = [_mm_setzero_ps(); 4];
        for (i, x) in w.iter().enumerate() {
            let (qs, qh, scales, d, dmin) = parts(x);
            let (sc, m) = unpack_scales_mins_k4(scales);
            let sc16 = scale_words(&sc);
            let (d, dmin) = (h2f(d), h2f(dmin));
            let mut hb = match qh {
                Some(h) => ld(h.as_ptr()),
                None => _mm256_setzero_si256(),
            };
            let mut sumi = [_mm256_setzero_si256(); 4];
            for j in 0..4 {
                let q = ld(qs.as_ptr().add(32 * j));
                let mut lo = _mm256_and_si256(q, m4);
                let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
                if qh.is_some() {
                    lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16::<4>(hb), b4));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16::<3>(hb), b4));
                    hb = _mm256_srli_epi16::<2>(hb);
                }
                let slo = _mm256_shuffle_epi8(sc16, word_broadcast(2 * j));
                let shi = _mm256_shuffle_epi8(sc16, word_broadcast(2 * j + 1));
                for t in 0..4 {
                    let y = &a[t][i];
                    let plo = _mm256_maddubs_epi16(lo, ld(y.qs.as_ptr().add(64 * j).cast()));
                    let phi = _mm256_maddubs_epi16(hi, ld(y.qs.as_ptr().add(64 * j + 32).cast()));
                    let s =
                        _mm256_add_epi32(_mm256_madd_epi16(plo, slo), _mm256_madd_epi16(phi, shi));
                    sumi[t] = _mm256_add_epi32(sumi[t], s);
                }
            }
            for t in 0..4 {
                let y = &a[t][i];
                let pm = mins_dot(bsum_pairs(y), &m);
                accm[t] = _mm_fmadd_ps(_mm_set1_ps(dmin * y.d), _mm_cvtepi32_ps(pm), accm[t]);
                acc[t] =
                    _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            }
        }
        let h = hsum4(&acc);
        [
            h[0] - hsum128(accm[0]),
            h[1] - hsum128(accm[1]),
            h[2] - hsum128(accm[2]),
            h[3] - hsum128(accm[3]),
        ]
    }
}

#[inline(always)]
fn q4k_parts(x: &BlockQ4K) -> (&[u8; 128], Option<&[u8; 32]>, &[u8; 12], f16, f16) {
    (&x.qs, None, &x.scales, x.d, x.dmin)
}

#[inline(always)]
fn q5k_parts(x: &BlockQ5K) -> (&[u8; 128], Option<&[u8; 32]>, &[u8; 12], f16, f16) {
    (&x.qs, Some(&x.qh), &x.scales, x.d, x.dmin)
}

/// q4_K · q8_K.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q4k(w: &[BlockQ4K], a: &[BlockQ8K]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_q45k([w], a, 0, q4k_parts)[0] }
}

/// Four q4_K rows · one q8_K row (the GEMV kernel), with prefetch `ahead` bytes on.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q4k_4rows(w: [&[BlockQ4K]; 4], a: &[BlockQ8K], ahead: usize) -> [f32; 4] {
    // SAFETY: forwarded contract.
    unsafe { dot_q45k(w, a, ahead, q4k_parts) }
}

/// q4_K · four q8_K rows.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q4k_x4(w: &[BlockQ4K], a: [&[BlockQ8K]; 4]) -> [f32; 4] {
    // SAFETY: forwarded contract.
    unsafe { dot_q45k_x4(w, a, q4k_parts) }
}

/// q5_K · q8_K.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q5k(w: &[BlockQ5K], a: &[BlockQ8K]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_q45k([w], a, 0, q5k_parts)[0] }
}

/// Four q5_K rows · one q8_K row (the GEMV kernel), with prefetch `ahead` bytes on.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q5k_4rows(w: [&[BlockQ5K]; 4], a: &[BlockQ8K], ahead: usize) -> [f32; 4] {
    // SAFETY: forwarded contract.
    unsafe { dot_q45k(w, a, ahead, q5k_parts) }
}

/// q5_K · four q8_K rows.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q5k_x4(w: &[BlockQ5K], a: [&[BlockQ8K]; 4]) -> [f32; 4] {
    // SAFETY: forwarded contract.
    unsafe { dot_q45k_x4(w, a, q5k_parts) }
}

/// Q4_K / Q5_K dequantization: (d·sc)·c − dmin·m per sub-block, fused.
///
/// # Safety
/// AVX2 + FMA + F16C; `out.len() == 256·w.len()`.
#[inline(always)]
unsafe fn dequant_q45k<W>(
    w: &[W],
    out: &mut [f32],
    parts: impl Fn(
        &W,
    ) -> (
        &[u8; QK_K / 2],
        Option<&[u8; QK_K / 8]>,
        &[u8; 12],
        f16,
        f16,
    ),
) {
    // SAFETY: features per the caller; loads inside blocks, stores inside `out` chunks.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let b4 = _mm256_set1_epi8(0x10);
        for (x, o) in w.iter().zip(out.chunks_exact_mut(QK_K)) {
            let (qs, qh, scales, d, dmin) = parts(x);
            let (sc, m) = unpack_scales_mins_k4(scales);
            let (d, dmin) = (h2f(d), h2f(dmin));
            let mut hb = match qh {
                Some(h) => ld(h.as_ptr()),
                None => _mm256_setzero_si256(),
            };
            for j in 0..4 {
                let q = ld(qs.as_ptr().add(32 * j));
                let mut lo = _mm256_and_si256(q, m4);
                let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m4);
                if qh.is_some() {
                    lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16::<4>(hb), b4));
                    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16::<3>(hb), b4));
                    hb = _mm256_srli_epi16::<2>(hb);
                }
                for (k, c) in [lo, hi].into_iter().enumerate() {
                    let s = 2 * j + k;
                    let d1 = _mm256_set1_ps(d * sc[s] as f32);
                    let m1 = _mm256_set1_ps(-(dmin * m[s] as f32));
                    store_fma_u8(c, d1, m1, &mut o[32 * s..32 * s + 32]);
                }
            }
        }
    }
}

/// Q4_K dequantization.
///
/// # Safety
/// See [`dequant_q45k`].
#[inline(always)]
pub(crate) unsafe fn dequant_q4k(w: &[BlockQ4K], out: &mut [f32]) {
    // SAFETY: forwarded contract.
    unsafe { dequant_q45k(w, out, q4k_parts) }
}

/// Q5_K dequantization.
///
/// # Safety
/// See [`dequant_q45k`].
#[inline(always)]
pub(crate) unsafe fn dequant_q5k(w: &[BlockQ5K], out: &mut [f32]) {
    // SAFETY: forwarded contract.
    unsafe { dequant_q45k(w, out, q5k_parts) }
}

/// The four 32-code vectors (unsigned 0..63) of one 128-element half of a Q6_K block.
///
/// # Safety
/// AVX2; `h < 2`.
#[inline(always)]
unsafe fn q6k_half(x: &BlockQ6K, h: usize) -> [__m256i; 4] {
    // SAFETY: loads at ql[64h..64h+64], qh[32h..32h+32], inside the arrays for h < 2.
    unsafe {
        let m4 = _mm256_set1_epi8(0x0f);
        let ql0 = ld(x.ql.as_ptr().add(64 * h));
        let ql1 = ld(x.ql.as_ptr().add(64 * h + 32));
        let qh = ld(x.qh.as_ptr().add(32 * h));
        let h0 = _mm256_slli_epi16::<4>(_mm256_and_si256(qh, _mm256_set1_epi8(0x03)));
        let h1 = _mm256_slli_epi16::<2>(_mm256_and_si256(qh, _mm256_set1_epi8(0x0c)));
        let h2 = _mm256_and_si256(qh, _mm256_set1_epi8(0x30));
        let h3 = _mm256_srli_epi16::<2>(_mm256_and_si256(qh, _mm256_set1_epi8(0xc0u8 as i8)));
        [
            _mm256_or_si256(_mm256_and_si256(ql0, m4), h0),
            _mm256_or_si256(_mm256_and_si256(ql1, m4), h1),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql0), m4), h2),
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(ql1), m4), h3),
        ]
    }
}

/// The i16 scale vector for code vector k of half h: scale 8h+2k in the low lane,
/// 8h+2k+1 in the high lane.
///
/// # Safety
/// AVX2.
#[inline(always)]
unsafe fn q6k_scale_vec(s16: __m256i, pair: i32) -> __m256i {
    // SAFETY: register-only intrinsics; AVX2.
    unsafe {
        let both = _mm256_permutevar8x32_epi32(s16, _mm256_set1_epi32(pair));
        let shuf = _mm256_setr_epi8(
            0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2,
            3, 2, 3,
        );
        _mm256_shuffle_epi8(both, shuf)
    }
}

/// q6_K · q8_K: Σ sc·Σ c·a over unsigned codes, minus 32·Σ sc·bsum.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q6k(w: &[BlockQ6K], a: &[BlockQ8K]) -> f32 {
    // SAFETY: forwarded contract.
    unsafe { dot_q6k_rows::<1>([w], a, 0)[0] }
}

/// Four q6_K rows · one q8_K row (the GEMV kernel), with prefetch `ahead` bytes on.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q6k_4rows(w: [&[BlockQ6K]; 4], a: &[BlockQ8K], ahead: usize) -> [f32; 4] {
    // SAFETY: forwarded contract.
    unsafe { dot_q6k_rows::<4>(w, a, ahead) }
}

/// `M` q6_K rows · one q8_K row; every row goes through the same operations in the same
/// order whatever `M` is.
///
/// # Safety
/// See the module docs.
#[inline(always)]
unsafe fn dot_q6k_rows<const M: usize>(
    w: [&[BlockQ6K]; M],
    a: &[BlockQ8K],
    ahead: usize,
) -> [f32; M] {
    // SAFETY: features per the caller; loads inside blocks.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); M];
        for (i, y) in a.iter().enumerate() {
            let bsums = ld(y.bsums.as_ptr().cast());
            for m in 0..M {
                let x = &w[m][i];
                prefetch_ahead((x as *const BlockQ6K).cast(), ahead, size_of::<BlockQ6K>());
                let s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(x.scales.as_ptr().cast()));
                let corr = _mm256_madd_epi16(s16, bsums);
                let mut sumi =
                    _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<5>(corr));
                for h in 0..2 {
                    let v = q6k_half(x, h);
                    for (k, vk) in v.into_iter().enumerate() {
                        let p = _mm256_maddubs_epi16(
                            vk,
                            ld(y.qs.as_ptr().add(128 * h + 32 * k).cast()),
                        );
                        let sv = q6k_scale_vec(s16, (4 * h + k) as i32);
                        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, sv));
                    }
                }
                acc[m] = _mm256_fmadd_ps(
                    _mm256_set1_ps(h2f(x.d) * y.d),
                    _mm256_cvtepi32_ps(sumi),
                    acc[m],
                );
            }
        }
        hsum_each(&acc)
    }
}

/// q6_K · four q8_K rows.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q6k_x4(w: &[BlockQ6K], a: [&[BlockQ8K]; 4]) -> [f32; 4] {
    // SAFETY: features per the caller; loads inside blocks.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 4];
        for (i, x) in w.iter().enumerate() {
            let s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(x.scales.as_ptr().cast()));
            let mut sumi = [_mm256_setzero_si256(); 4];
            for (t, st) in sumi.iter_mut().enumerate() {
                let corr = _mm256_madd_epi16(s16, ld(a[t][i].bsums.as_ptr().cast()));
                *st = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32::<5>(corr));
            }
            for h in 0..2 {
                let v = q6k_half(x, h);
                for (k, vk) in v.into_iter().enumerate() {
                    let sv = q6k_scale_vec(s16, (4 * h + k) as i32);
                    for t in 0..4 {
                        let yq = ld(a[t][i].qs.as_ptr().add(128 * h + 32 * k).cast());
                        let p = _mm256_maddubs_epi16(vk, yq);
                        sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(p, sv));
                    }
                }
            }
            let d = h2f(x.d);
            for t in 0..4 {
                let dd = _mm256_set1_ps(d * a[t][i].d);
                acc[t] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(sumi[t]), acc[t]);
            }
        }
        hsum4(&acc)
    }
}

/// Q6_K dequantization: (d·sc)·(c − 32).
///
/// # Safety
/// AVX2 + F16C; `out.len() == 256·w.len()`.
#[inline(always)]
pub(crate) unsafe fn dequant_q6k(w: &[BlockQ6K], out: &mut [f32]) {
    // SAFETY: features per the caller; stores inside `out` chunks.
    unsafe {
        let m32 = _mm256_set1_epi8(32);
        for (x, o) in w.iter().zip(out.chunks_exact_mut(QK_K)) {
            let d = h2f(x.d);
            for h in 0..2 {
                let v = q6k_half(x, h);
                for (k, vk) in v.into_iter().enumerate() {
                    let c = _mm256_sub_epi8(vk, m32);
                    let base = 128 * h + 32 * k;
                    let g = base / 16;
                    let lo = _mm256_castsi256_si128(c);
                    let hi = _mm256_extracti128_si256::<1>(c);
                    for (gi, part) in [lo, hi].into_iter().enumerate() {
                        let ds = _mm256_set1_ps(d * x.scales[g + gi] as f32);
                        let p = o.as_mut_ptr().add(base + 16 * gi);
                        let f0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part));
                        let f1 =
                            _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128::<8>(part)));
                        _mm256_storeu_ps(p, _mm256_mul_ps(ds, f0));
                        _mm256_storeu_ps(p.add(8), _mm256_mul_ps(ds, f1));
                    }
                }
            }
        }
    }
}

/// q8_K · q8_K.
///
/// # Safety
/// See the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q8k<I: Isa>(w: &[BlockQ8K], a: &[BlockQ8K]) -> f32 {
    // SAFETY: features per the caller; loads inside blocks.
    unsafe {
        let mut acc = _mm256_setzero_ps();
        for (x, y) in w.iter().zip(a) {
            let mut s = _mm256_setzero_si256();
            for j in 0..QK_K / 32 {
                let xq = ld(x.qs.as_ptr().add(32 * j).cast());
                let yq = ld(y.qs.as_ptr().add(32 * j).cast());
                s = mul_i8::<I>(s, xq, yq);
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(x.d * y.d), _mm256_cvtepi32_ps(s), acc);
        }
        hsum(acc)
    }
}

/// Q8_K dequantization.
///
/// # Safety
/// AVX2; `out.len() == 256·w.len()`.
#[inline(always)]
pub(crate) unsafe fn dequant_q8k(w: &[BlockQ8K], out: &mut [f32]) {
    // SAFETY: features per the caller; loads inside blocks, stores inside chunks.
    unsafe {
        for (x, o) in w.iter().zip(out.chunks_exact_mut(QK_K)) {
            let d = _mm256_set1_ps(x.d);
            for j in 0..QK_K / 32 {
                let c = ld(x.qs.as_ptr().add(32 * j).cast());
                store_scaled_i8(c, d, &mut o[32 * j..32 * j + 32]);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Float weights.
// ---------------------------------------------------------------------------------------

/// A float weight element type loadable 8 at a time.
pub(crate) trait FloatW: Copy {
    /// Eight elements at `p` as f32.
    ///
    /// # Safety
    /// `p` valid for 8 elements; AVX2 + F16C.
    unsafe fn load8(p: *const Self) -> __m256;
    /// One element as f32.
    fn to_f32(self) -> f32;
}

impl FloatW for f32 {
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> __m256 {
        // SAFETY: 8 readable floats per the contract.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        self
    }
}

impl FloatW for f16 {
    #[inline(always)]
    unsafe fn load8(p: *const f16) -> __m256 {
        // SAFETY: 8 readable halves (16 bytes) per the contract; F16C.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}

impl FloatW for bf16 {
    #[inline(always)]
    unsafe fn load8(p: *const bf16) -> __m256 {
        // SAFETY: 8 readable bf16 (16 bytes) per the contract; AVX2. bf16 is the top half
        // of an f32.
        unsafe {
            let w = _mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast()));
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(w))
        }
    }
    #[inline(always)]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
}

/// Float weights · f32, four accumulators of 8 lanes, scalar tail.
///
/// # Safety
/// AVX2 + FMA + F16C; equal lengths.
#[inline(always)]
pub(crate) unsafe fn dot_float<W: FloatW>(w: &[W], a: &[f32]) -> f32 {
    // SAFETY: every 8-wide load starts at an index ≤ len − 8.
    unsafe {
        let n = w.len();
        let (wp, ap) = (w.as_ptr(), a.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (k, acc_k) in acc.iter_mut().enumerate() {
                let o = i + 8 * k;
                *acc_k = _mm256_fmadd_ps(W::load8(wp.add(o)), _mm256_loadu_ps(ap.add(o)), *acc_k);
            }
            i += 32;
        }
        while i + 8 <= n {
            acc[0] = _mm256_fmadd_ps(W::load8(wp.add(i)), _mm256_loadu_ps(ap.add(i)), acc[0]);
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut s = hsum(v);
        for j in i..n {
            s += w[j].to_f32() * a[j];
        }
        s
    }
}

/// Float weights · four f32 rows: each 8 weights converted once.
///
/// # Safety
/// AVX2 + FMA + F16C; equal lengths.
#[inline(always)]
pub(crate) unsafe fn dot_float_x4<W: FloatW>(w: &[W], a: [&[f32]; 4]) -> [f32; 4] {
    // SAFETY: every 8-wide load starts at an index ≤ len − 8.
    unsafe {
        let n = w.len();
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 8 <= n {
            let x = W::load8(w.as_ptr().add(i));
            for t in 0..4 {
                acc[t] = _mm256_fmadd_ps(x, _mm256_loadu_ps(a[t].as_ptr().add(i)), acc[t]);
            }
            i += 8;
        }
        let mut out = [0.0f32; 4];
        for (t, o) in out.iter_mut().enumerate() {
            *o = hsum(acc[t]);
            for j in i..n {
                *o += w[j].to_f32() * a[t][j];
            }
        }
        out
    }
}

/// Float weights → f32.
///
/// # Safety
/// AVX2 + F16C; equal lengths.
#[inline(always)]
pub(crate) unsafe fn dequant_float<W: FloatW>(w: &[W], out: &mut [f32]) {
    // SAFETY: 8-wide loads/stores start at indices ≤ len − 8.
    unsafe {
        let n = w.len();
        let mut i = 0;
        while i + 8 <= n {
            _mm256_storeu_ps(out.as_mut_ptr().add(i), W::load8(w.as_ptr().add(i)));
            i += 8;
        }
        for j in i..n {
            out[j] = w[j].to_f32();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Activation quantizers (bit-identical to `scalar`).
// ---------------------------------------------------------------------------------------

/// Max |x| over 8k floats at `p`.
///
/// # Safety
/// AVX; `p` valid for `8·k` floats, k ≥ 1.
#[inline(always)]
unsafe fn absmax(p: *const f32, k: usize) -> f32 {
    // SAFETY: loads within the 8k floats.
    unsafe {
        let sign = _mm256_set1_ps(-0.0);
        let mut m = _mm256_setzero_ps();
        for j in 0..k {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(p.add(8 * j))));
        }
        let s = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_max_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}

/// 32 floats at `p` times `mul`, rounded to nearest even, clamped to ±127, as 32 i8 in
/// order; also returns the i32 lanes' sum vector.
///
/// # Safety
/// AVX2; `p` valid for 32 floats.
#[inline(always)]
unsafe fn round32(p: *const f32, mul: __m256) -> (__m256i, __m256i) {
    // SAFETY: loads within the 32 floats; register intrinsics under AVX2.
    unsafe {
        // A loop, not `array::map`: a closure does not inherit the caller's target features,
        // so its intrinsics would become out-of-line calls (measured: 25% of a GEMM).
        let mut i = [_mm256_setzero_si256(); 4];
        for (k, ik) in i.iter_mut().enumerate() {
            *ik = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(p.add(8 * k)), mul));
        }
        let p01 = _mm256_packs_epi32(i[0], i[1]);
        let p23 = _mm256_packs_epi32(i[2], i[3]);
        let b = _mm256_packs_epi16(p01, p23);
        let b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        let b = _mm256_max_epi8(b, _mm256_set1_epi8(-127));
        let sum = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
        (b, sum)
    }
}

/// f32 → q8_0 (see `scalar::quantize_row_q8_0`).
///
/// # Safety
/// AVX2 + F16C; `x.len() == 32·out.len()`.
#[inline(always)]
pub(crate) unsafe fn quantize_q8_0(x: &[f32], out: &mut [BlockQ8_0]) {
    // SAFETY: each block reads its own 32 floats and writes its own 32 bytes.
    unsafe {
        for (xb, yb) in x.chunks_exact(QK).zip(out.iter_mut()) {
            let amax = absmax(xb.as_ptr(), 4);
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            yb.d = f2h(d);
            let (b, _) = round32(xb.as_ptr(), _mm256_set1_ps(id));
            _mm256_storeu_si256(yb.qs.as_mut_ptr().cast(), b);
        }
    }
}

/// f32 → q8_1 (see `scalar::quantize_row_q8_1`).
///
/// # Safety
/// AVX2 + F16C; `x.len() == 32·out.len()`.
#[inline(always)]
pub(crate) unsafe fn quantize_q8_1(x: &[f32], out: &mut [BlockQ8_1]) {
    // SAFETY: each block reads its own 32 floats and writes its own 32 bytes.
    unsafe {
        for (xb, yb) in x.chunks_exact(QK).zip(out.iter_mut()) {
            let amax = absmax(xb.as_ptr(), 4);
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            yb.d = f2h(d);
            let (b, _) = round32(xb.as_ptr(), _mm256_set1_ps(id));
            _mm256_storeu_si256(yb.qs.as_mut_ptr().cast(), b);
            // Sum the clamped codes (equal to the unclamped ones for finite input).
            let s16 = _mm256_madd_epi16(
                _mm256_maddubs_epi16(_mm256_set1_epi8(1), b),
                _mm256_set1_epi16(1),
            );
            yb.s = f2h(d * hsum_i32(s16) as f32);
        }
    }
}

/// f32 → q8_K (see `scalar::quantize_row_q8_k`).
///
/// # Safety
/// AVX2 + F16C; `x.len() == 256·out.len()`.
#[inline(always)]
pub(crate) unsafe fn quantize_q8_k(x: &[f32], out: &mut [BlockQ8K]) {
    // SAFETY: each block reads its own 256 floats and writes its own 256 bytes.
    unsafe {
        for (xb, yb) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
            let amax = absmax(xb.as_ptr(), QK_K / 8);
            if amax == 0.0 {
                yb.d = 0.0;
                yb.qs = [0; QK_K];
                yb.bsums = [0; QK_K / 16];
                continue;
            }
            // The first element of that magnitude fixes the sign (ggml's loop order).
            let max = match xb.iter().find(|v| v.abs() == amax) {
                Some(&v) => v,
                None => signed_absmax(xb).0,
            };
            let iscale = -127.0 / max;
            let mul = _mm256_set1_ps(iscale);
            for j in 0..QK_K / 32 {
                let (b, _) = round32(xb.as_ptr().add(32 * j), mul);
                _mm256_storeu_si256(yb.qs.as_mut_ptr().add(32 * j).cast(), b);
                let s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), b);
                // 16 i16 pair sums; groups of 16 bytes = 8 pairs per 128-bit lane.
                let lo = _mm256_castsi256_si128(s16);
                let hi = _mm256_extracti128_si256::<1>(s16);
                let h = _mm_hadd_epi16(lo, hi);
                let h = _mm_hadd_epi16(h, h);
                let h = _mm_hadd_epi16(h, h);
                yb.bsums[2 * j] = _mm_extract_epi16::<0>(h) as i16;
                yb.bsums[2 * j + 1] = _mm_extract_epi16::<1>(h) as i16;
            }
            yb.d = 1.0 / iscale;
        }
    }
}
