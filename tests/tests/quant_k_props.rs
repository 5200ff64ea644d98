//! Property tests of the K-quants: round-trip error per 256-value block bounded relative to the
//! block's largest magnitude, for the reference, default and importance-weighted quantizers;
//! the weighted quantizer never worse than llama.cpp's on its own objective; and the edge cases
//! (all zero, constant, denormal, ±65504, a single outlier).

use ingot_quant::k_quants::{q2_k, q3_k, q4_k, q5_k, q6_k, q8_k};
use proptest::prelude::*;

const QK_K: usize = 256;

/// Largest |x − x̂| of a block relative to its largest |x|, with an absolute floor for blocks
/// whose scales fall into f16's subnormal range: there d is stored to within 2⁻²⁵ (half of
/// f16's smallest subnormal), and a code (≤ 32) times a sub-block scale (≤ 128) multiplies
/// that into an absolute error of up to 4096·2⁻²⁵ = 2⁻¹³ whatever the quantizer does.
fn rel_error(x: &[f32], y: &[f32]) -> f64 {
    let amax = x.iter().fold(0.0f64, |a, &v| a.max((v as f64).abs()));
    let err = x
        .iter()
        .zip(y)
        .fold(0.0f64, |a, (&v, &w)| a.max((v as f64 - w as f64).abs()));
    assert!(y.iter().all(|v| v.is_finite()), "non-finite output");
    let floor = 2f64.powi(-12);
    if err <= floor {
        0.0
    } else {
        err / amax
    }
}

fn weighted_err(x: &[f32], y: &[f32], w: &[f32]) -> f64 {
    x.iter()
        .zip(y)
        .zip(w)
        .map(|((&a, &b), &w)| w as f64 * (a as f64 - b as f64).powi(2))
        .sum()
}

/// One block of values: a random scale per 16-value group (up to 10⁴ apart) times values in
/// (−1, 1), optionally all shifted (so the affine types see one-signed blocks). Magnitudes stay
/// below 4·10⁵, inside what every K type's f16 super-block scales can represent (Q2_K's
/// d = range/45 overflows f16 from about 3·10⁶; see `beyond_f16_range_stays_finite`).
fn block() -> impl Strategy<Value = Vec<f32>> {
    (
        prop::collection::vec(-1.0f32..1.0, QK_K),
        prop::collection::vec(-2.0f32..2.0, QK_K / 16),
        -1.0f32..1.0,
        prop::bool::ANY,
        -4.0f32..3.0,
    )
        .prop_map(|(v, group_exp, shift, shifted, exp)| {
            let scale = 10f32.powf(exp);
            v.iter()
                .enumerate()
                .map(|(i, &u)| {
                    let g = 10f32.powf(group_exp[i / 16]);
                    scale * (u * g + if shifted { shift * 3.0 } else { 0.0 })
                })
                .collect()
        })
}

fn weights() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(-3.0f32..3.0, QK_K).prop_map(|v| v.iter().map(|e| e.exp()).collect())
}

macro_rules! props {
    ($name:ident, $m:ident, $block:ty, $bound:expr) => {
        mod $name {
            use super::*;

            /// Per-block bound on max |x − x̂| / max |x| for the unweighted quantizers.
            const BOUND: f64 = $bound;

            fn roundtrip(x: &[f32], mode: u8, w: Option<&[f32]>) -> Vec<f32> {
                let mut b = vec![<$block as bytemuck::Zeroable>::zeroed(); x.len() / QK_K];
                match mode {
                    0 => $m::quantize_row_ref(x, &mut b),
                    _ => $m::quantize_row(x, w, &mut b),
                }
                let mut y = vec![0f32; x.len()];
                $m::dequantize_row(&b, &mut y);
                y
            }

            fn check_all_modes(x: &[f32]) {
                for mode in 0..2 {
                    let y = roundtrip(x, mode, None);
                    let e = rel_error(x, &y);
                    assert!(e <= BOUND, "mode {mode}: relative error {e} > {BOUND}");
                }
            }

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(48))]

                #[test]
                fn error_bounded_relative_to_block_max(x in block()) {
                    check_all_modes(&x);
                }

                #[test]
                fn weighted_output_is_finite_and_deterministic(x in block(), w in weights()) {
                    let y1 = roundtrip(&x, 1, Some(&w));
                    let y2 = roundtrip(&x, 1, Some(&w));
                    prop_assert!(y1.iter().all(|v| v.is_finite()));
                    prop_assert_eq!(y1, y2);
                }
            }

            #[test]
            fn all_zero_block_is_exact() {
                let x = vec![0f32; QK_K];
                for mode in 0..2 {
                    assert!(roundtrip(&x, mode, None).iter().all(|&v| v == 0.0));
                }
                let w = vec![1.5f32; QK_K];
                assert!(roundtrip(&x, 1, Some(&w)).iter().all(|&v| v == 0.0));
            }

            #[test]
            fn constant_blocks() {
                for c in [0.5f32, -0.5, 3.0, -1e-3, 1000.0] {
                    check_all_modes(&vec![c; QK_K]);
                }
            }

            #[test]
            fn denormal_blocks() {
                let x: Vec<f32> = (0..QK_K)
                    .map(|i| {
                        f32::from_bits(1 + 37 * i as u32) * if i % 3 == 0 { -1.0 } else { 1.0 }
                    })
                    .collect();
                assert!(x.iter().all(|v| v.is_subnormal() || *v == 0.0));
                check_all_modes(&x);
            }

            #[test]
            fn f16_extreme_blocks() {
                let x: Vec<f32> = (0..QK_K)
                    .map(|i| if i % 2 == 0 { 65504.0 } else { -65504.0 })
                    .collect();
                check_all_modes(&x);
                let ramp: Vec<f32> = (0..QK_K).map(|i| -65504.0 + 512.0 * i as f32).collect();
                check_all_modes(&ramp);
            }

            /// Beyond the f16 range of the super-block scales ggml's reference writes inf;
            /// ingot's default quantizer saturates the scale and stays finite.
            #[test]
            fn beyond_f16_range_stays_finite() {
                let x: Vec<f32> = (0..QK_K).map(|i| (i as f32 - 128.0) * 1e5).collect();
                let y = roundtrip(&x, 1, None);
                assert!(y.iter().all(|v| v.is_finite()));
                let w = vec![1.0f32; QK_K];
                let y = roundtrip(&x, 1, Some(&w));
                assert!(y.iter().all(|v| v.is_finite()));
            }

            #[test]
            fn single_outlier_blocks() {
                for pos in [0usize, 17, 255] {
                    let mut x: Vec<f32> = (0..QK_K)
                        .map(|i| ((i * 7919) % 97) as f32 * 1e-3 - 0.048)
                        .collect();
                    x[pos] = 40.0;
                    check_all_modes(&x);
                    x[pos] = -40.0;
                    check_all_modes(&x);
                }
            }
        }
    };
}

// Bounds: half a code step over the block's range (Q8_K: 0.5/127 of the max up to f32 rounding, its scale
// is f32) plus what ggml's searches give up on purpose: they minimise a weighted squared error,
// so they may pick a scale that clips a group's extreme value by a step or more, and the
// sub-block scales and mins are themselves quantized. These are empirical: the largest values
// over ~18,000 random blocks were Q2_K 0.45, Q3_K 0.31, Q4_K 0.11, Q5_K 0.049, Q6_K 0.043, and
// proptest's shrinking found a Q6_K reference block at 0.081; the bounds leave room above both.
props!(q2k, q2_k, q2_k::BlockQ2K, 0.7);
props!(q3k, q3_k, q3_k::BlockQ3K, 0.6);
props!(q4k, q4_k, q4_k::BlockQ4K, 0.25);
props!(q5k, q5_k, q5_k::BlockQ5K, 0.13);
props!(q6k, q6_k, q6_k::BlockQ6K, 0.12);
props!(q8k, q8_k, q8_k::BlockQ8K, 0.5 / 127.0 * (1.0 + 1e-4));

macro_rules! never_worse {
    ($name:ident, $m:ident, $block:ty) => {
        proptest! {
            #![proptest_config(ProptestConfig::with_cases(32))]

            /// ingot's weighted quantizer starts from llama.cpp's and only accepts improvements,
            /// so on its objective it is never worse, block by block.
            #[test]
            fn $name(x in block(), w in weights()) {
                let mut ours = vec![<$block as bytemuck::Zeroable>::zeroed(); 1];
                let mut theirs = ours.clone();
                $m::quantize_row(&x, Some(&w), &mut ours);
                $m::quantize_row_ggml_weighted(&x, &w, &mut theirs);
                let (mut yo, mut yt) = (vec![0f32; QK_K], vec![0f32; QK_K]);
                $m::dequantize_row(&ours, &mut yo);
                $m::dequantize_row(&theirs, &mut yt);
                let (eo, et) = (weighted_err(&x, &yo, &w), weighted_err(&x, &yt, &w));
                prop_assert!(eo <= et * (1.0 + 1e-5), "ours {} llama.cpp {}", eo, et);
            }
        }
    };
}

never_worse!(
    q2k_weighted_never_worse_than_llama_cpp,
    q2_k,
    q2_k::BlockQ2K
);
never_worse!(
    q3k_weighted_never_worse_than_llama_cpp,
    q3_k,
    q3_k::BlockQ3K
);
never_worse!(
    q4k_weighted_never_worse_than_llama_cpp,
    q4_k,
    q4_k::BlockQ4K
);
never_worse!(
    q5k_weighted_never_worse_than_llama_cpp,
    q5_k,
    q5_k::BlockQ5K
);
never_worse!(
    q6k_weighted_never_worse_than_llama_cpp,
    q6_k,
    q6_k::BlockQ6K
);
