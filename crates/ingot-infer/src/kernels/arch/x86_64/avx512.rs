//! The AVX-512 level: the shared bodies compiled with AVX-512 F/BW/VL enabled (EVEX encoding,
//! 32 vector registers) and, when the CPU has AVX512-VNNI, `vpdpbusd` for the u8×i8 sums.

use core::arch::x86_64::*;

use super::simd::Isa;

/// AVX-512 without VNNI: the AVX2 sums.
pub(crate) struct NoVnni;

impl Isa for NoVnni {
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: register-only AVX2 intrinsics; the caller guarantees AVX2.
        unsafe { <super::avx2::Avx2 as Isa>::dpbusd(acc, u, s) }
    }
}

/// AVX512-VNNI on 256-bit registers.
pub(crate) struct Vnni;

impl Isa for Vnni {
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, u: __m256i, s: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX512-VNNI and AVX512-VL. No intermediate
        // saturation: four u8·i8 products summed straight into i32.
        unsafe { _mm256_dpbusd_epi32(acc, u, s) }
    }
}

mod plain {
    use crate::kernels::Level;
    super::super::simd_table!(
        TABLE,
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl",
        super::NoVnni,
        Level::Avx512,
        "avx512",
        None,
        {
            q8_0: simd::dot_type0::<super::NoVnni, BlockQ8_0>,
                simd::dot_type0_x4::<super::NoVnni, BlockQ8_0>,
            rows4 simd::dot_type0_4rows::<super::NoVnni, BlockQ8_0>;
            q4_0: simd::dot_type0::<super::NoVnni, BlockQ4_0>,
                simd::dot_type0_x4::<super::NoVnni, BlockQ4_0>,
            rows4 simd::dot_type0_4rows::<super::NoVnni, BlockQ4_0>;
            q5_0: simd::dot_type0::<super::NoVnni, BlockQ5_0>,
                simd::dot_type0_x4::<super::NoVnni, BlockQ5_0>,
            rows4 simd::dot_type0_4rows::<super::NoVnni, BlockQ5_0>;
            q4_1: simd::dot_type1::<super::NoVnni, BlockQ4_1>,
            rows4 simd::dot_type1_4rows::<super::NoVnni, BlockQ4_1>;
            q4_k: simd::dot_q4k, rows4 simd::dot_q4k_4rows;
            q6_k: simd::dot_q6k, rows4 simd::dot_q6k_4rows;
        }
    );
}

mod vnni {
    use crate::kernels::arch::x86_64::{simd512, simd512k};
    use crate::kernels::Level;
    super::super::simd_table!(
        TABLE,
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        super::Vnni,
        Level::Avx512,
        "avx512-vnni",
        Some(crate::kernels::arch::x86_64::panel512::PANEL_VNNI),
        {
            q8_0: simd512::dot_type0::<BlockQ8_0>, simd512::dot_type0_x4::<BlockQ8_0>,
                rows4 simd512::dot_type0_4rows::<BlockQ8_0>;
            q4_0: simd512::dot_type0::<BlockQ4_0>, simd512::dot_type0_x4::<BlockQ4_0>,
                rows4 simd512::dot_type0_4rows::<BlockQ4_0>;
            q5_0: simd512::dot_type0::<BlockQ5_0>, simd512::dot_type0_x4::<BlockQ5_0>,
                rows4 simd512::dot_type0_4rows::<BlockQ5_0>;
            q4_1: simd512::dot_type1::<BlockQ4_1>, rows4 simd512::dot_type1_4rows::<BlockQ4_1>;
            q4_k: simd512k::dot_q4k, rows4 simd512k::dot_q4k_4rows;
            q6_k: simd512k::dot_q6k, rows4 simd512k::dot_q6k_4rows;
        }
    );
}

pub(crate) use plain::TABLE;
pub(crate) use vnni::TABLE as TABLE_VNNI;
