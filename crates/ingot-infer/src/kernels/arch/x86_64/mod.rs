//! x86-64 kernels: AVX2 (+FMA, F16C) and AVX-512 (F/BW/VL, with VNNI when present).
//!
//! Both levels share the 256-bit bodies in [`simd`], compiled twice by [`simd_table!`]: once
//! inside `#[target_feature(enable = "avx2,fma,f16c")]` wrappers with maddubs-based integer
//! sums, once inside AVX-512 wrappers where `vpdpbusd` (AVX512-VNNI on 256-bit registers, one
//! instruction for maddubs + madd + add) does the u8×i8 sums. On Zen 4 and recent Xeons 512-bit
//! registers would only halve the instruction count of the same work; VNNI is where the win is.
//!
//! Each table is a `static` of safe function pointers; `table()` hands it out only after
//! `is_x86_feature_detected!` confirmed every feature its wrappers enable. Detection runs once
//! (the caller caches the chosen table in a `OnceLock`).

use super::super::{Kernels, Level};

mod avx2;
mod avx512;
pub(crate) mod panel512;
pub(crate) mod simd;
pub(crate) mod simd512;
pub(crate) mod simd512k;

/// The first missing feature of `level` on this CPU.
pub(crate) fn missing_feature(level: Level) -> Option<&'static str> {
    macro_rules! need {
        ($($f:tt),*) => {
            $( if !std::arch::is_x86_feature_detected!($f) { return Some($f); } )*
        };
    }
    match level {
        Level::Scalar => None,
        Level::Avx2 => {
            need!("avx2", "fma", "f16c");
            None
        }
        Level::Avx512 => {
            need!("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl");
            None
        }
    }
}

/// The table for `level` if this CPU runs it.
pub(crate) fn table(level: Level) -> Option<&'static Kernels> {
    if missing_feature(level).is_some() {
        return None;
    }
    match level {
        Level::Scalar => None,
        Level::Avx2 => Some(&avx2::TABLE),
        Level::Avx512 => {
            if std::arch::is_x86_feature_detected!("avx512vnni") {
                Some(&avx512::TABLE_VNNI)
            } else {
                Some(&avx512::TABLE)
            }
        }
    }
}

/// Defines, inside the invoking module, `#[target_feature]` wrappers for every kernel body in
/// [`simd`] with the given features and [`simd::Isa`] (the q8_0, q4_0 and q5_0 dots and x4 dots and the q4_1 dot are given
/// explicitly: the VNNI level takes them from [`simd512`]), safe entry points that check slice
/// lengths, and a `static $table: Kernels`.
///
/// Soundness: the safe entry points are private to the invoking module and reachable only
/// through `$table`, which [`table`] returns only when every feature in `$feat` was detected.
macro_rules! simd_table {
    (
        $table:ident, $feat:literal, $isa:ty, $level:expr, $variant:literal, $panel:expr,
        {
            q8_0: $q8_0_dot:expr, $q8_0_x4:expr $(, rows4 $q8_0_r4:expr)?;
            q4_0: $q4_0_dot:expr, $q4_0_x4:expr $(, rows4 $q4_0_r4:expr)?;
            q5_0: $q5_0_dot:expr, $q5_0_x4:expr $(, rows4 $q5_0_r4:expr)?;
            q4_1: $q4_1_dot:expr $(, rows4 $q4_1_r4:expr)?;
            q4_k: $q4_k_dot:expr $(, rows4 $q4_k_r4:expr)?;
            q6_k: $q6_k_dot:expr $(, rows4 $q6_k_r4:expr)?;
        }
    ) => {
        #[allow(unused_imports)]
        use half::{bf16, f16};
        #[allow(unused_imports)]
        use ingot_quant::blocks::{
            BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K, BlockQ8K,
            BlockQ8_0, BlockQ8_1, QK, QK_K,
        };
        use $crate::kernels::arch::x86_64::simd;
        use $crate::kernels::{Dot, Kernels, Quantize};

        /// One safe entry point: length checks, then the `#[target_feature]` wrapper.
        macro_rules! entry {
            (dot $name:ident, $w:ty, $a:ty, $body:expr) => {
                fn $name(w: &[$w], a: &[$a]) -> f32 {
                    assert_eq!(w.len(), a.len(), "dot of {} with {} blocks", w.len(), a.len());
                    #[target_feature(enable = $feat)]
                    unsafe fn tf(w: &[$w], a: &[$a]) -> f32 {
                        // SAFETY: features enabled on this function; lengths checked above.
                        unsafe { $body(w, a) }
                    }
                    // SAFETY: reachable only through the table, handed out after detection.
                    unsafe { tf(w, a) }
                }
            };
            (x4 $name:ident, $w:ty, $a:ty, $body:expr) => {
                fn $name(w: &[$w], a: [&[$a]; 4]) -> [f32; 4] {
                    for ai in a {
                        assert_eq!(w.len(), ai.len(), "dot of {} with {} blocks", w.len(), ai.len());
                    }
                    #[target_feature(enable = $feat)]
                    unsafe fn tf(w: &[$w], a: [&[$a]; 4]) -> [f32; 4] {
                        // SAFETY: features enabled on this function; lengths checked above.
                        unsafe { $body(w, a) }
                    }
                    // SAFETY: reachable only through the table, handed out after detection.
                    unsafe { tf(w, a) }
                }
            };
            (r4 $name:ident, $w:ty, $a:ty, $body:expr) => {
                fn $name(w: [&[$w]; 4], a: &[$a], ahead: usize) -> [f32; 4] {
                    for wr in w {
                        assert_eq!(wr.len(), a.len(), "dot of {} with {} blocks", wr.len(), a.len());
                    }
                    #[target_feature(enable = $feat)]
                    unsafe fn tf(w: [&[$w]; 4], a: &[$a], ahead: usize) -> [f32; 4] {
                        // SAFETY: features enabled on this function; lengths checked above.
                        unsafe { $body(w, a, ahead) }
                    }
                    // SAFETY: reachable only through the table, handed out after detection.
                    unsafe { tf(w, a, ahead) }
                }
            };
            (deq $name:ident, $w:ty, $per:expr, $body:expr) => {
                fn $name(w: &[$w], out: &mut [f32]) {
                    assert_eq!(w.len() * $per, out.len(), "dequantize {} blocks into {}", w.len(), out.len());
                    #[target_feature(enable = $feat)]
                    unsafe fn tf(w: &[$w], out: &mut [f32]) {
                        // SAFETY: features enabled on this function; lengths checked above.
                        unsafe { $body(w, out) }
                    }
                    // SAFETY: reachable only through the table, handed out after detection.
                    unsafe { tf(w, out) }
                }
            };
            (quant $name:ident, $a:ty, $per:expr, $body:expr) => {
                fn $name(x: &[f32], out: &mut [$a]) {
                    assert_eq!(x.len(), out.len() * $per, "quantize {} values into {} blocks", x.len(), out.len());
                    #[target_feature(enable = $feat)]
                    unsafe fn tf(x: &[f32], out: &mut [$a]) {
                        // SAFETY: features enabled on this function; lengths checked above.
                        unsafe { $body(x, out) }
                    }
                    // SAFETY: reachable only through the table, handed out after detection.
                    unsafe { tf(x, out) }
                }
            };
        }

        entry!(dot q8_0_dot, BlockQ8_0, BlockQ8_0, $q8_0_dot);
        entry!(x4 q8_0_x4, BlockQ8_0, BlockQ8_0, $q8_0_x4);
        entry!(deq q8_0_deq, BlockQ8_0, QK, simd::dequant_type0::<BlockQ8_0>);
        entry!(dot q4_0_dot, BlockQ4_0, BlockQ8_0, $q4_0_dot);
        entry!(x4 q4_0_x4, BlockQ4_0, BlockQ8_0, $q4_0_x4);
        entry!(deq q4_0_deq, BlockQ4_0, QK, simd::dequant_type0::<BlockQ4_0>);
        entry!(dot q5_0_dot, BlockQ5_0, BlockQ8_0, $q5_0_dot);
        entry!(x4 q5_0_x4, BlockQ5_0, BlockQ8_0, $q5_0_x4);
        entry!(deq q5_0_deq, BlockQ5_0, QK, simd::dequant_type0::<BlockQ5_0>);
        entry!(dot q4_1_dot, BlockQ4_1, BlockQ8_1, $q4_1_dot);
        entry!(x4 q4_1_x4, BlockQ4_1, BlockQ8_1, simd::dot_type1_x4::<$isa, BlockQ4_1>);
        entry!(deq q4_1_deq, BlockQ4_1, QK, simd::dequant_type1::<BlockQ4_1>);
        entry!(dot q5_1_dot, BlockQ5_1, BlockQ8_1, simd::dot_type1::<$isa, BlockQ5_1>);
        entry!(x4 q5_1_x4, BlockQ5_1, BlockQ8_1, simd::dot_type1_x4::<$isa, BlockQ5_1>);
        entry!(deq q5_1_deq, BlockQ5_1, QK, simd::dequant_type1::<BlockQ5_1>);
        entry!(dot q4_k_dot, BlockQ4K, BlockQ8K, $q4_k_dot);
        entry!(x4 q4_k_x4, BlockQ4K, BlockQ8K, simd::dot_q4k_x4);
        entry!(deq q4_k_deq, BlockQ4K, QK_K, simd::dequant_q4k);
        entry!(dot q5_k_dot, BlockQ5K, BlockQ8K, simd::dot_q5k);
        entry!(x4 q5_k_x4, BlockQ5K, BlockQ8K, simd::dot_q5k_x4);
        entry!(deq q5_k_deq, BlockQ5K, QK_K, simd::dequant_q5k);
        entry!(dot q6_k_dot, BlockQ6K, BlockQ8K, $q6_k_dot);
        entry!(x4 q6_k_x4, BlockQ6K, BlockQ8K, simd::dot_q6k_x4);
        entry!(deq q6_k_deq, BlockQ6K, QK_K, simd::dequant_q6k);
        entry!(dot q8_k_dot, BlockQ8K, BlockQ8K, simd::dot_q8k::<$isa>);
        entry!(deq q8_k_deq, BlockQ8K, QK_K, simd::dequant_q8k);
        $crate::kernels::x4_via_dot!(q8_k_x4, q8_k_dot, BlockQ8K, BlockQ8K);
        entry!(dot f16_dot, f16, f32, simd::dot_float::<f16>);
        entry!(x4 f16_x4, f16, f32, simd::dot_float_x4::<f16>);
        entry!(deq f16_deq, f16, 1, simd::dequant_float::<f16>);
        entry!(dot bf16_dot, bf16, f32, simd::dot_float::<bf16>);
        entry!(x4 bf16_x4, bf16, f32, simd::dot_float_x4::<bf16>);
        entry!(deq bf16_deq, bf16, 1, simd::dequant_float::<bf16>);
        entry!(dot f32_dot, f32, f32, simd::dot_float::<f32>);
        entry!(x4 f32_x4, f32, f32, simd::dot_float_x4::<f32>);
        entry!(deq f32_deq, f32, 1, simd::dequant_float::<f32>);

        /// `Some` four-row entry point when a body is given, else `None`.
        macro_rules! rows4 {
            (; $w:ty, $a:ty) => {
                None
            };
            ($body:expr; $w:ty, $a:ty) => {{
                entry!(r4 f, $w, $a, $body);
                Some(f)
            }};
        }
        entry!(quant quant_q8_0, BlockQ8_0, QK, simd::quantize_q8_0);
        entry!(quant quant_q8_1, BlockQ8_1, QK, simd::quantize_q8_1);
        entry!(quant quant_q8_k, BlockQ8K, QK_K, simd::quantize_q8_k);

        /// This module's kernel table (see [`simd_table!`] for why it is sound).
        pub(crate) static $table: Kernels = Kernels {
            level: $level,
            variant: $variant,
            q8_0: Dot { dot: q8_0_dot, dot_x4: q8_0_x4, dot_4rows: rows4!($($q8_0_r4)?; BlockQ8_0, BlockQ8_0), dequantize: q8_0_deq },
            q4_0: Dot { dot: q4_0_dot, dot_x4: q4_0_x4, dot_4rows: rows4!($($q4_0_r4)?; BlockQ4_0, BlockQ8_0), dequantize: q4_0_deq },
            q4_1: Dot { dot: q4_1_dot, dot_x4: q4_1_x4, dot_4rows: rows4!($($q4_1_r4)?; BlockQ4_1, BlockQ8_1), dequantize: q4_1_deq },
            q5_0: Dot { dot: q5_0_dot, dot_x4: q5_0_x4, dot_4rows: rows4!($($q5_0_r4)?; BlockQ5_0, BlockQ8_0), dequantize: q5_0_deq },
            q5_1: Dot { dot: q5_1_dot, dot_x4: q5_1_x4, dot_4rows: rows4!(simd::dot_type1_4rows::<$isa, BlockQ5_1>; BlockQ5_1, BlockQ8_1), dequantize: q5_1_deq },
            q4_k: Dot { dot: q4_k_dot, dot_x4: q4_k_x4, dot_4rows: rows4!($($q4_k_r4)?; BlockQ4K, BlockQ8K), dequantize: q4_k_deq },
            q5_k: Dot { dot: q5_k_dot, dot_x4: q5_k_x4, dot_4rows: rows4!(simd::dot_q5k_4rows; BlockQ5K, BlockQ8K), dequantize: q5_k_deq },
            q6_k: Dot { dot: q6_k_dot, dot_x4: q6_k_x4, dot_4rows: rows4!($($q6_k_r4)?; BlockQ6K, BlockQ8K), dequantize: q6_k_deq },
            q8_k: Dot { dot: q8_k_dot, dot_x4: q8_k_x4, dot_4rows: None, dequantize: q8_k_deq },
            f16: Dot { dot: f16_dot, dot_x4: f16_x4, dot_4rows: None, dequantize: f16_deq },
            bf16: Dot { dot: bf16_dot, dot_x4: bf16_x4, dot_4rows: None, dequantize: bf16_deq },
            f32: Dot { dot: f32_dot, dot_x4: f32_x4, dot_4rows: None, dequantize: f32_deq },
            quantize_q8_0: Quantize { f: quant_q8_0 },
            quantize_q8_1: Quantize { f: quant_q8_1 },
            quantize_q8_k: Quantize { f: quant_q8_k },
            panel: $panel,
        };
    };
}
pub(crate) use simd_table;

/// One `prefetcht1` per 64-byte line of the `len` bytes starting `ahead` bytes past `p`, for
/// the kernels that prefetch as they read (nothing when `ahead` is 0).
///
/// # Safety
/// None needed beyond SSE (x86-64 baseline): the address is formed with `wrapping_add` (no
/// pointer arithmetic out of bounds) and a prefetch reads nothing architecturally and never
/// faults, whatever the address.
#[inline(always)]
pub(crate) fn prefetch_ahead(p: *const u8, ahead: usize, len: usize) {
    use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
    if ahead == 0 {
        return;
    }
    let q = p.wrapping_add(ahead);
    for off in (0..len).step_by(64) {
        // SAFETY: a prefetch never faults and has no architectural effect (see above).
        unsafe { _mm_prefetch::<_MM_HINT_T1>(q.wrapping_add(off).cast()) }
    }
}

/// One `prefetcht1` (into L2, not L1: measured faster from DRAM than `prefetcht0`, whose
/// bursts compete with the kernel's own loads for L1 fill buffers) per 64-byte line of
/// `bytes`.
#[inline]
pub(crate) fn prefetch(bytes: &[u8]) {
    use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
    let p = bytes.as_ptr();
    for off in (0..bytes.len()).step_by(64) {
        // SAFETY: `p + off` lies inside `bytes`; a prefetch reads nothing architecturally
        // and never faults, and SSE is part of the x86-64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(p.add(off).cast()) }
    }
}
