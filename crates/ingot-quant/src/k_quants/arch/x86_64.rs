//! The x86-64 levels: the safe row bodies compiled inside `#[target_feature]` functions, with
//! the lane operations on AVX2 registers.
//!
//! Each level lives in its own private module whose functions are safe wrappers around a
//! `#[target_feature]` inner function; they are reachable only through [`table`], which hands
//! a level's table out only after `is_x86_feature_detected!` confirmed every feature the level
//! enables. [`Avx2`] is a token that can only be made after the same check, and its lane
//! operations use the AVX intrinsics. Those checks are what make the `unsafe` below sound.

use std::arch::x86_64::*;

use super::{Kernels, Level};
use crate::k_quants::lanes::F32x8;
use crate::k_quants::{q2_k, q3_k, q4_k, q5_k, q6_k};

/// Proof that the CPU supports AVX2 (and so AVX): the only constructor checks it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// The token, if this CPU has AVX2.
    pub(crate) fn new() -> Option<Avx2> {
        is_x86_feature_detected!("avx2").then_some(Avx2(()))
    }
}

/// Every method is one AVX instruction on eight lanes (the same IEEE operation the portable
/// implementation performs per lane).
// SAFETY (for every `unsafe` block in this impl): an `Avx2` value exists only if
// `is_x86_feature_detected!("avx2")` returned true, so the AVX/AVX2 intrinsics are supported;
// loads and stores go through `[f32; 8]` references, valid for 32 bytes.
impl F32x8 for Avx2 {
    type V = __m256;
    type M = __m256;
    #[inline(always)]
    fn splat(self, v: f32) -> __m256 {
        // SAFETY: see the impl comment (AVX available).
        unsafe { _mm256_set1_ps(v) }
    }
    #[inline(always)]
    fn load(self, a: &[f32; 8]) -> __m256 {
        // SAFETY: see the impl comment (AVX available; `a` holds 8 readable f32).
        unsafe { _mm256_loadu_ps(a.as_ptr()) }
    }
    #[inline(always)]
    fn store(self, v: __m256) -> [f32; 8] {
        let mut out = [0.0f32; 8];
        // SAFETY: see the impl comment (AVX available; `out` holds 8 writable f32).
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
        out
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment (AVX available).
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment (AVX available).
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment (AVX available).
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment (AVX available).
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment (AVX available). MINPS is `a < b ? a : b`.
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment (AVX available). MAXPS is `a > b ? a : b`.
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn abs(self, a: __m256) -> __m256 {
        // SAFETY: see the impl comment (AVX available). Clears the sign bit.
        unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), a) }
    }
    #[inline(always)]
    fn lt(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment (AVX available). Ordered, non-signalling `<`.
        unsafe { _mm256_cmp_ps::<_CMP_LT_OQ>(a, b) }
    }
    #[inline(always)]
    fn and(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment (AVX available).
        unsafe { _mm256_and_ps(a, b) }
    }
    #[inline(always)]
    fn select(self, m: __m256, a: __m256, b: __m256) -> __m256 {
        // SAFETY: see the impl comment (AVX available). BLENDV takes `a` where m's sign is set.
        unsafe { _mm256_blendv_ps(b, a, m) }
    }
    #[inline(always)]
    fn any(self, m: __m256) -> bool {
        // SAFETY: see the impl comment (AVX available).
        unsafe { _mm256_movemask_ps(m) != 0 }
    }
}

/// Defines, in the current module, a safe wrapper per body that runs it with `$features`.
macro_rules! wrappers {
    ($features:literal; $($name:ident => $body:path, ($($a:ident: $t:ty),*);)*) => { $(
        pub(super) fn $name($($a: $t),*) {
            #[target_feature(enable = $features)]
            fn inner(s: Avx2, $($a: $t),*) {
                $body(s, $($a),*)
            }
            let s = Avx2::new().expect("x86-64 tables are only handed out on AVX2 CPUs");
            // SAFETY: `inner` only requires the features named in `$features`; this wrapper is
            // private to its level module and only handed out by `table()` after
            // `is_x86_feature_detected!` confirmed each of them on this CPU.
            unsafe { inner(s, $($a),*) }
        }
    )* };
}

/// The table of one level module (`$level`, the module, then the body list).
macro_rules! module_table {
    ($level:expr, $module:ident; $($name:ident => $body:path, ($($a:ident: $t:ty),*);)*) => {
        Kernels { level: $level, $($name: $module::$name,)* }
    };
}

mod avx2 {
    use super::*;
    super::super::for_each_body!(wrappers { "avx2" });
}

mod avx512 {
    use super::*;
    super::super::for_each_body!(wrappers { "avx2,avx512f,avx512bw,avx512vl" });
}

static AVX2: Kernels = super::for_each_body!(module_table { Level::Avx2, avx2 });
static AVX512: Kernels = super::for_each_body!(module_table { Level::Avx512, avx512 });

/// The table of an x86-64 level, if this CPU has every feature the level enables.
pub(super) fn table(level: Level) -> Option<&'static Kernels> {
    let avx2 = is_x86_feature_detected!("avx2");
    match level {
        Level::Scalar => None,
        Level::Avx2 => avx2.then_some(&AVX2),
        Level::Avx512 => (avx2
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl"))
        .then_some(&AVX512),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k_quants::lanes::tests::{lanes_match_scalar, symmetric_lanes_match_scalar};

    #[test]
    fn avx2_lanes_match_scalar_search() {
        let Some(s) = Avx2::new() else {
            eprintln!("skipped: no AVX2");
            return;
        };
        #[target_feature(enable = "avx2")]
        fn run(s: Avx2) {
            lanes_match_scalar::<Avx2, 32, false>(s);
            lanes_match_scalar::<Avx2, 16, true>(s);
            symmetric_lanes_match_scalar(s);
        }
        // SAFETY: `Avx2::new` succeeded, so the CPU has AVX2.
        unsafe { run(s) }
    }
}
