//! The K-quants: 256-element super-blocks whose sub-blocks carry their own small integer scales
//! (and, for the "type-1" formats Q2_K/Q4_K/Q5_K, mins), themselves scaled by one or two f16
//! super-block factors.
//!
//! Each type module (`q2_k` … `q8_k`) holds the `#[repr(C)]` block, its scalar dequantizer,
//! ggml's reference quantizer reproduced bit for bit (`quantize_row_ref`) and ingot's default
//! quantizer (`quantize_row`, optionally importance-weighted). Shared pieces:
//! - [`scales`]: the 6-bit scale/min packing of Q4_K/Q5_K (`get_scale_min_k4` /
//!   `set_scale_min_k4`) and the 6-bit signed scale packing of Q3_K;
//! - [`ggml_search`]: ggml's scale searches (`make_qx_quants`, `make_q3_quants`,
//!   `make_qkx2_quants`, `make_qkx3_quants`, `make_qp_quants`), whose float operation order the
//!   reference mode must follow exactly;
//! - [`refine`]: ingot's search that improves a starting quantization by alternating exact
//!   code assignment, per-sub-block integer scale search and closed-form weighted least squares
//!   for the super-block factors.
//!
//! Sources: llama.cpp `ggml/src/ggml-quants.c` and `ggml/src/ggml-common.h` (see
//! `formats/k-quants.md` for the layouts and the citation of each fact).

// The searches index several parallel arrays (values, weights, codes) by the same position, as
// ggml's code does; iterator chains over four zipped slices would hide the correspondence with
// the source they must match bit for bit.
#![allow(clippy::needless_range_loop)]

mod affine6;
pub mod arch;
pub mod ggml_search;
mod lanes;
pub mod q2_k;
pub mod q3_k;
pub mod q4_k;
pub mod q5_k;
pub mod q6_k;
pub mod q8_k;
mod refine;
pub mod scales;

use half::f16;

/// Rounds to the nearest integer, ties to even, exactly as ggml's `nearest_int`: adding
/// 1.5·2²³ leaves the rounded integer in the low mantissa bits. Valid for |x| < 2²²; outside
/// that range the result is meaningless but never panics (the callers clamp it, and the
/// crate-level dispatch rejects non-finite input before it gets here).
#[inline(always)]
pub(crate) fn nearest_int(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    ((v.to_bits() & 0x007f_ffff) as i32) - 0x0040_0000
}

/// Rounds an f32 to f16 and back, as storing a scale in a block and reading it again does.
#[inline(always)]
pub(crate) fn f16_round(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// Checks the documented row/block size contract shared by every K-quant row function.
#[inline]
#[track_caller]
pub(crate) fn check_row(n_values: usize, n_blocks: usize) {
    assert!(
        n_values == n_blocks * crate::blocks::QK_K,
        "row of {n_values} values does not fill {n_blocks} blocks of {}",
        crate::blocks::QK_K
    );
}

/// Checks that importance weights, when given, have one entry per value.
#[inline]
#[track_caller]
pub(crate) fn check_weights(n_values: usize, weights: Option<&[f32]>) {
    if let Some(w) = weights {
        assert!(
            w.len() == n_values,
            "{} importance weights for a row of {n_values} values",
            w.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_ties_to_even() {
        assert_eq!(nearest_int(0.5), 0);
        assert_eq!(nearest_int(1.5), 2);
        assert_eq!(nearest_int(2.5), 2);
        assert_eq!(nearest_int(-0.5), 0);
        assert_eq!(nearest_int(-1.5), -2);
        assert_eq!(nearest_int(-3.7), -4);
        assert_eq!(nearest_int(4_194_303.0), 4_194_303);
        assert_eq!(nearest_int(-4_194_303.0), -4_194_303);
    }
}
