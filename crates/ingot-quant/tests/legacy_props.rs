//! Property tests of the legacy block types: round-trip error bounds relative to the block's
//! largest magnitude, ingot's quantizer never worse than the reference, and edge-case blocks
//! (all zero, constant, denormal, ±65504, single outlier).
//!
//! Bounds, per element, with amax = max |x| over the block and r = 2⁻¹¹ the f16 relative
//! rounding of stored scales (plus `ABS` for f16 subnormal scales):
//! - Q8_0/Q8_1: amax·(1/254 + r)        (half a step of d = amax/127, plus d's rounding ·127)
//! - Q4_0: amax·(1/8 + 8r)              (the one level past +7 costs a whole step d = amax/8)
//! - Q5_0: amax·(1/16 + 16r)
//! - Q4_1: amax·(1/15 + 3r)             (half a step of d = range/15 ≤ 2·amax/15, m's rounding)
//! - Q5_1: amax·(1/31 + 3r)

use bytemuck::Zeroable;
use ingot_quant::legacy::{q4_0, q4_1, q5_0, q5_1, q8_0, q8_1};
use proptest::prelude::*;

const QK: usize = 32;
const R: f32 = 1.0 / 2048.0;
/// Absolute slack for subnormal f16 scales: 2⁻²⁵ per unit level, times at most 128 levels.
const ABS: f32 = 128.0 / 33_554_432.0;

type RoundTrip = fn(&[f32], bool, Option<&[f32]>) -> Vec<f32>;

macro_rules! round_trip_fn {
    ($m:ident, $b:ty) => {
        |x: &[f32], reference: bool, w: Option<&[f32]>| -> Vec<f32> {
            let mut blocks = vec![<$b>::zeroed(); x.len() / QK];
            if reference {
                $m::quantize_row_ref(x, &mut blocks);
            } else {
                $m::quantize_row(x, w, &mut blocks);
            }
            let mut out = vec![0.0; x.len()];
            $m::dequantize_row(&blocks, &mut out);
            out
        }
    };
}

/// (name, round trip, per-element bound as a multiple of amax) for every legacy type.
fn types() -> Vec<(&'static str, RoundTrip, f32)> {
    vec![
        (
            "q8_0",
            round_trip_fn!(q8_0, q8_0::BlockQ8_0),
            1.0 / 254.0 + 127.0 * R / 127.0 + R,
        ),
        (
            "q8_1",
            round_trip_fn!(q8_1, q8_1::BlockQ8_1),
            1.0 / 254.0 + 2.0 * R,
        ),
        (
            "q4_0",
            round_trip_fn!(q4_0, q4_0::BlockQ4_0),
            1.0 / 8.0 + 8.0 * R,
        ),
        (
            "q5_0",
            round_trip_fn!(q5_0, q5_0::BlockQ5_0),
            1.0 / 16.0 + 16.0 * R,
        ),
        (
            "q4_1",
            round_trip_fn!(q4_1, q4_1::BlockQ4_1),
            1.0 / 15.0 + 3.0 * R,
        ),
        (
            "q5_1",
            round_trip_fn!(q5_1, q5_1::BlockQ5_1),
            1.0 / 31.0 + 3.0 * R,
        ),
    ]
}

fn sse(x: &[f32], y: &[f32], w: Option<&[f32]>) -> f64 {
    x.iter()
        .zip(y)
        .enumerate()
        .map(|(j, (a, b))| {
            let r = f64::from(*a) - f64::from(*b);
            f64::from(w.map_or(1.0, |w| w[j])) * r * r
        })
        .sum()
}

/// Checks the reference bound per block and that ingot's quantizer is no worse than the
/// reference per block, plain and weighted.
fn check_all(x: &[f32], w: &[f32]) -> Result<(), TestCaseError> {
    for (name, rt, bound) in types() {
        let r = rt(x, true, None);
        let ours = rt(x, false, None);
        let ours_w = rt(x, false, Some(w));
        for (b, xb) in x.chunks_exact(QK).enumerate() {
            let amax = xb.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let limit = amax * bound * 1.000_01 + ABS;
            let s = b * QK..(b + 1) * QK;
            for (j, (&xv, &rv)) in xb.iter().zip(&r[s.clone()]).enumerate() {
                prop_assert!(
                    (xv - rv).abs() <= limit,
                    "{name} ref block {b} elem {j}: x {xv:e} x̂ {rv:e} amax {amax:e}"
                );
            }
            let e_ref = sse(xb, &r[s.clone()], None);
            let e_ours = sse(xb, &ours[s.clone()], None);
            prop_assert!(
                e_ours <= e_ref * (1.0 + 1e-5) + 1e-30,
                "{name} block {b}: default {e_ours:e} > reference {e_ref:e}"
            );
            let wb = &w[s.clone()];
            let e_ref_w = sse(xb, &r[s.clone()], Some(wb));
            let e_ours_w = sse(xb, &ours_w[s.clone()], Some(wb));
            prop_assert!(
                e_ours_w <= e_ref_w * (1.0 + 1e-5) + 1e-30,
                "{name} block {b}: weighted {e_ours_w:e} > reference {e_ref_w:e}"
            );
            for &v in &ours_w[s] {
                prop_assert!(v.is_finite(), "{name}: non-finite output");
            }
        }
    }
    Ok(())
}

/// Two blocks of values at a random scale (10^-7 … 10^4), sometimes with an outlier.
fn row() -> impl Strategy<Value = Vec<f32>> {
    (
        prop::collection::vec(-1.0f32..1.0, 2 * QK),
        -7i32..5,
        prop::option::of((0usize..2 * QK, -30.0f32..30.0)),
    )
        .prop_map(|(mut v, e, outlier)| {
            let s = 10f32.powi(e);
            for x in &mut v {
                *x *= s;
            }
            if let Some((i, o)) = outlier {
                v[i] = (o * s).clamp(-65504.0, 65504.0);
            }
            v
        })
}

fn weights() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(0.0f32..10.0, 2 * QK)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_within_bounds(x in row(), w in weights()) {
        check_all(&x, &w)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whole tensors (random row count and width) give the same bytes on 1 and 3 threads, for
    /// every legacy type and mode.
    #[test]
    fn tensor_bytes_independent_of_thread_count(
        rows in 1usize..24,
        blocks_per_row in 1usize..6,
        seed in any::<u32>(),
        weighted in any::<bool>(),
    ) {
        use ingot_format::GgmlType;
        use ingot_quant::{quantize_tensor_to_vec, QuantMode};
        let cols = blocks_per_row * QK;
        let x: Vec<f32> = (0..rows * cols)
            .map(|i| {
                let h = (i as u32 ^ seed).wrapping_mul(0x9E37_79B9).rotate_left(13);
                (h as f32 / u32::MAX as f32 - 0.5) * (1.0 + (i % 7) as f32)
            })
            .collect();
        let w: Vec<f32> = (0..cols).map(|c| 0.1 + ((c as u32 ^ seed) % 13) as f32).collect();
        let weights = weighted.then_some(&w[..]);
        let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().expect("pool");
        let (p1, p3) = (pool(1), pool(3));
        for ty in [GgmlType::Q8_0, GgmlType::Q8_1, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1] {
            for mode in [QuantMode::Reference, QuantMode::Default, QuantMode::Thorough] {
                let a = p1.install(|| quantize_tensor_to_vec("t", ty, &x, cols, weights, mode));
                let b = p3.install(|| quantize_tensor_to_vec("t", ty, &x, cols, weights, mode));
                prop_assert_eq!(a.expect("1 thread"), b.expect("3 threads"), "{} {:?}", ty.name(), mode);
            }
        }
    }
}

#[test]
fn edge_case_blocks() {
    let ones = vec![1.0f32; QK];
    let mut cases: Vec<(&str, Vec<f32>)> = vec![
        ("zero", vec![0.0; QK]),
        ("negative zero", vec![-0.0; QK]),
        ("constant +0.5", vec![0.5; QK]),
        ("constant -3.7", vec![-3.7; QK]),
        (
            "denormal",
            (0..QK)
                .map(|j| f32::from_bits(1 + j as u32 * 1000))
                .collect(),
        ),
        (
            "±denormal",
            (0..QK)
                .map(|j| f32::from_bits(j as u32 * 77) * if j % 2 == 0 { 1.0 } else { -1.0 })
                .collect(),
        ),
        ("+65504", vec![65504.0; QK]),
        ("-65504", vec![-65504.0; QK]),
        (
            "±65504",
            (0..QK)
                .map(|j| if j % 2 == 0 { 65504.0 } else { -65504.0 })
                .collect(),
        ),
    ];
    let mut outlier = vec![0.01f32; QK];
    outlier[17] = 1000.0;
    cases.push(("single outlier", outlier));
    let mut lone = vec![0.0f32; QK];
    lone[5] = -3.0;
    cases.push(("single non-zero", lone));
    for (what, x) in &cases {
        check_all(x, &ones).unwrap_or_else(|e| panic!("{what}: {e}"));
    }
    // Blocks the 4/5-bit formats represent exactly stay exact (the reference is exact on them,
    // so ingot's quantizers, never worse, must be too). Q8 scales amax/127 are not f16-exact,
    // so for Q8 only the zero block is.
    for (name, rt, _) in types() {
        let exact: &[&str] = match name {
            "q8_0" | "q8_1" => &["zero"],
            "q4_1" | "q5_1" => &["zero", "constant +0.5"],
            _ => &["zero", "constant +0.5", "single non-zero"],
        };
        for what in exact {
            let x = &cases.iter().find(|c| c.0 == *what).expect("case").1;
            for (mode, y) in [
                ("ref", rt(x, true, None)),
                ("default", rt(x, false, None)),
                ("weighted", rt(x, false, Some(&ones))),
            ] {
                assert_eq!(&y, x, "{name} {mode} {what}");
            }
        }
    }
}
