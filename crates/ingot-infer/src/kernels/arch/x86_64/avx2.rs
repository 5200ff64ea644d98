//! The AVX2 level: u8×i8 sums with `vpmaddubsw` + `vpmaddwd` (ggml's `mul_sum_us8_pairs`).

use core::arch::x86_64::*;

use super::simd::Isa;
use crate::kernels::Level;

/// AVX2 integer sums.
pub(crate) struct Avx2;

impl Isa for Avx2 {
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: register-only AVX2 intrinsics; the caller guarantees AVX2. Exact when every
        // adjacent pair u·s sum fits in i16 (see `simd` module docs).
        unsafe {
            let p16 = _mm256_maddubs_epi16(u, s);
            _mm256_add_epi32(acc, _mm256_madd_epi16(p16, _mm256_set1_epi16(1)))
        }
    }
}

super::simd_table!(
    TABLE,
    "avx2,fma,f16c",
    Avx2,
    Level::Avx2,
    "avx2",
    None,
    {
        q8_0: simd::dot_type0::<Avx2, BlockQ8_0>, simd::dot_type0_x4::<Avx2, BlockQ8_0>,
            rows4 simd::dot_type0_4rows::<Avx2, BlockQ8_0>;
        q4_0: simd::dot_type0::<Avx2, BlockQ4_0>, simd::dot_type0_x4::<Avx2, BlockQ4_0>,
            rows4 simd::dot_type0_4rows::<Avx2, BlockQ4_0>;
        q5_0: simd::dot_type0::<Avx2, BlockQ5_0>, simd::dot_type0_x4::<Avx2, BlockQ5_0>,
            rows4 simd::dot_type0_4rows::<Avx2, BlockQ5_0>;
        q4_1: simd::dot_type1::<Avx2, BlockQ4_1>,
            rows4 simd::dot_type1_4rows::<Avx2, BlockQ4_1>;
        q4_k: simd::dot_q4k, rows4 simd::dot_q4k_4rows;
        q6_k: simd::dot_q6k, rows4 simd::dot_q6k_4rows;
    }
);
