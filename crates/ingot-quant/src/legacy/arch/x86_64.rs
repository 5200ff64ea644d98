//! The x86-64 levels: the legacy row bodies compiled with AVX2 or AVX-512 enabled.
//!
//! Each level is a module of `#[target_feature]` wrappers around the same
//! `#[inline(always)]` bodies the scalar table calls, and a static table of safe function
//! pointers to them. [`table`] hands a table out only after `is_x86_feature_detected!` has
//! confirmed every feature its wrappers were compiled for: that check is what makes the calls
//! inside the table's functions sound.

use super::{Kernels, Level};

/// Defines one level: `$features` for `#[target_feature]`, the wrappers, and `TABLE`.
macro_rules! level {
    ($module:ident, $level:expr, $features:literal) => {
        mod $module {
            use crate::blocks::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1};
            use crate::legacy::arch::{Kernels, Level};
            use crate::legacy::{q4_0, q4_1, q5_0, q5_1, q8_0, q8_1};

            level!(@ref $features, q8_0_ref, q8_0::ref_row_body, BlockQ8_0);
            level!(@ref $features, q8_1_ref, q8_1::ref_row_body, BlockQ8_1);
            level!(@ref $features, q4_0_ref, q4_0::ref_row_body, BlockQ4_0);
            level!(@ref $features, q4_1_ref, q4_1::ref_row_body, BlockQ4_1);
            level!(@ref $features, q5_0_ref, q5_0::ref_row_body, BlockQ5_0);
            level!(@ref $features, q5_1_ref, q5_1::ref_row_body, BlockQ5_1);
            level!(@search $features, q4_0, q4_0::search_row_body, BlockQ4_0);
            level!(@search $features, q4_1, q4_1::search_row_body, BlockQ4_1);
            level!(@search $features, q5_0, q5_0::search_row_body, BlockQ5_0);
            level!(@search $features, q5_1, q5_1::search_row_body, BlockQ5_1);

            /// This level's generic bodies. Only [`super::table`] hands them out (directly or
            /// inside a table with hand-written kernels), after checking the CPU.
            pub(super) const GENERIC: Kernels = Kernels {
                level: $level,
                // SAFETY: the wrappers need `$features`; this table is only reachable
                // through `super::table`, which returns it only when
                // `is_x86_feature_detected!` confirmed each of those features (and so for
                // every call below).
                q8_0_ref: |x, o| unsafe { q8_0_ref(x, o) },
                // SAFETY: as above.
                q8_1_ref: |x, o| unsafe { q8_1_ref(x, o) },
                // SAFETY: as above.
                q4_0_ref: |x, o| unsafe { q4_0_ref(x, o) },
                // SAFETY: as above.
                q4_1_ref: |x, o| unsafe { q4_1_ref(x, o) },
                // SAFETY: as above.
                q5_0_ref: |x, o| unsafe { q5_0_ref(x, o) },
                // SAFETY: as above.
                q5_1_ref: |x, o| unsafe { q5_1_ref(x, o) },
                // SAFETY: as above.
                q4_0: |x, w, e, o| unsafe { q4_0(x, w, e, o) },
                // SAFETY: as above.
                q4_1: |x, w, e, o| unsafe { q4_1(x, w, e, o) },
                // SAFETY: as above.
                q5_0: |x, w, e, o| unsafe { q5_0(x, w, e, o) },
                // SAFETY: as above.
                q5_1: |x, w, e, o| unsafe { q5_1(x, w, e, o) },
            };
        }
    };
    (@ref $features:literal, $name:ident, $body:path, $block:ty) => {
        /// The body compiled for this level.
        ///
        /// # Safety
        /// The CPU must support this level's target features.
        #[target_feature(enable = $features)]
        unsafe fn $name(x: &[f32], out: &mut [$block]) {
            $body(x, out)
        }
    };
    (@search $features:literal, $name:ident, $body:path, $block:ty) => {
        /// The body compiled for this level.
        ///
        /// # Safety
        /// The CPU must support this level's target features.
        #[target_feature(enable = $features)]
        unsafe fn $name(
            x: &[f32],
            weights: Option<&[f32]>,
            effort: crate::legacy::Effort,
            out: &mut [$block],
        ) {
            $body(x, weights, effort, out)
        }
    };
}

level!(avx2, Level::Avx2, "avx2,fma");
level!(
    avx512,
    Level::Avx512,
    "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"
);

mod type0_avx512;
mod type1_avx512;

/// AVX2: the generic bodies.
static AVX2: Kernels = avx2::GENERIC;

/// AVX-512: hand-written type-0 kernels, the generic bodies for the rest.
static AVX512: Kernels = Kernels {
    // SAFETY: the kernels need the AVX-512 level's features; this table is only
    // reachable through `table`, which returns it only when `is_x86_feature_detected!`
    // confirmed each of them.
    q8_0_ref: |x, o| unsafe { type0_avx512::q8_0_ref(x, o) },
    // SAFETY: as above.
    q4_0_ref: |x, o| unsafe { type0_avx512::q4_0_ref(x, o) },
    // SAFETY: as above.
    q5_0_ref: |x, o| unsafe { type0_avx512::q5_0_ref(x, o) },
    // SAFETY: as above.
    q4_0: |x, w, e, o| unsafe { type0_avx512::q4_0(x, w, e, o) },
    // SAFETY: as above.
    q5_0: |x, w, e, o| unsafe { type0_avx512::q5_0(x, w, e, o) },
    // SAFETY: as above.
    q4_1: |x, w, e, o| unsafe { type1_avx512::q4_1(x, w, e, o) },
    // SAFETY: as above.
    q5_1: |x, w, e, o| unsafe { type1_avx512::q5_1(x, w, e, o) },
    ..avx512::GENERIC
};

/// The table of an x86-64 level, only if this CPU runs every feature it was compiled for.
pub(super) fn table(level: Level) -> Option<&'static Kernels> {
    let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
    match level {
        Level::Scalar => None,
        Level::Avx2 => avx2.then_some(&AVX2),
        Level::Avx512 => (avx2
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl"))
        .then_some(&AVX512),
    }
}
