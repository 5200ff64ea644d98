//! Conformance of every kernel level with ggml's golden vectors (`testdata/golden/blocks`):
//! activation quantization bit for bit, dequantization bit for bit, and dot products within
//! the tolerance `golden/README.md` states (1e-4 × Σ|w|·max|a|).

use bytemuck::{Pod, Zeroable};
use ingot_infer::kernels::{Dot, Kernels, Level};
use ingot_quant::blocks::*;
use ingot_tests::{golden, read_f32};

const ROWS: usize = 24;
const COLS: usize = 2048;
const ACT_ROWS: usize = 4;

fn levels() -> Vec<&'static Kernels> {
    Level::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .map(|l| Kernels::for_level(l).expect("supported level has a table"))
        .collect()
}

fn blocks<B: Pod + Zeroable>(name: &str) -> Vec<B> {
    let path = golden().join("blocks").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(bytes.len() % size_of::<B>(), 0, "{name}");
    let mut out = vec![B::zeroed(); bytes.len() / size_of::<B>()];
    bytemuck::cast_slice_mut::<B, u8>(&mut out).copy_from_slice(&bytes);
    out
}

fn f32s(name: &str) -> Vec<f32> {
    read_f32(&golden().join("blocks").join(name))
}

#[test]
fn activation_quantizers_match_ggml_bit_for_bit() {
    let x = f32s("activations.f32");
    assert_eq!(x.len(), ACT_ROWS * COLS);
    let want0: Vec<BlockQ8_0> = blocks("activations.q8_0.bin");
    let want1: Vec<BlockQ8_1> = blocks("activations.q8_1.bin");
    let wantk: Vec<BlockQ8K> = blocks("activations.q8_K.bin");
    for k in levels() {
        let mut q0 = vec![BlockQ8_0::zeroed(); want0.len()];
        k.quantize_q8_0.quantize(&x, &mut q0);
        let bad = q0.iter().zip(&want0).filter(|(a, b)| a != b).count();
        assert_eq!(
            bad,
            0,
            "{}: {bad} q8_0 blocks differ from ggml",
            k.variant()
        );

        let mut q1 = vec![BlockQ8_1::zeroed(); want1.len()];
        k.quantize_q8_1.quantize(&x, &mut q1);
        let bad = q1.iter().zip(&want1).filter(|(a, b)| a != b).count();
        assert_eq!(
            bad,
            0,
            "{}: {bad} q8_1 blocks differ from ggml",
            k.variant()
        );

        let mut qk = vec![BlockQ8K::zeroed(); wantk.len()];
        k.quantize_q8_k.quantize(&x, &mut qk);
        let bad = qk.iter().zip(&wantk).filter(|(a, b)| a != b).count();
        assert_eq!(
            bad,
            0,
            "{}: {bad} q8_K blocks differ from ggml",
            k.variant()
        );
    }
}

/// Checks one weight type's dot product (golden weights × golden activations) and its
/// dequantizer against ggml, for every level.
fn check_type<W: Pod + Zeroable + PartialEq, A: Pod + Zeroable>(
    ty: &str,
    act_file: &str,
    block: usize,
    dot: impl Fn(&Kernels) -> Dot<W, A>,
) {
    let w: Vec<W> = blocks(&format!("{ty}.ref.bin"));
    let a: Vec<A> = blocks(act_file);
    let deq = f32s(&format!("{ty}.ref.dequant.f32"));
    let x = f32s("activations.f32");
    let nb = COLS / block;
    assert_eq!(w.len(), ROWS * nb, "{ty}");
    assert_eq!(a.len(), ACT_ROWS * nb, "{ty}");
    let want = f32s(&format!("{ty}.vec_dot.f32"));
    assert_eq!(want.len(), ROWS * ACT_ROWS);
    for k in levels() {
        let d = dot(k);
        // Dequantization: bit for bit.
        let mut out = vec![0.0f32; COLS];
        for r in 0..ROWS {
            d.dequantize(&w[r * nb..(r + 1) * nb], &mut out);
            let row = &deq[r * COLS..(r + 1) * COLS];
            let bad = out
                .iter()
                .zip(row)
                .filter(|(p, q)| p.to_bits() != q.to_bits());
            assert_eq!(bad.count(), 0, "{}: {ty} dequant row {r}", k.variant());
        }
        // Dot products: within the stated tolerance.
        for r in 0..ROWS {
            let wsum: f64 = deq[r * COLS..(r + 1) * COLS]
                .iter()
                .map(|v| v.abs() as f64)
                .sum();
            let wr = &w[r * nb..(r + 1) * nb];
            let acts: Vec<&[A]> = (0..ACT_ROWS).map(|t| &a[t * nb..(t + 1) * nb]).collect();
            let x4 = d.dot_x4(wr, [acts[0], acts[1], acts[2], acts[3]]);
            for t in 0..ACT_ROWS {
                let amax = x[t * COLS..(t + 1) * COLS]
                    .iter()
                    .fold(0.0f64, |m, v| m.max(v.abs() as f64));
                let tol = 1e-4 * wsum * amax;
                let got = d.dot(wr, acts[t]) as f64;
                let exp = want[r * ACT_ROWS + t] as f64;
                assert!(
                    (got - exp).abs() <= tol,
                    "{}: {ty} row {r} act {t}: got {got}, ggml {exp}, tol {tol}",
                    k.variant()
                );
                let got4 = x4[t] as f64;
                assert!(
                    (got4 - exp).abs() <= tol,
                    "{}: {ty} x4 row {r} act {t}: got {got4}, ggml {exp}, tol {tol}",
                    k.variant()
                );
            }
        }
    }
}

#[test]
fn q8_0_matches_ggml() {
    check_type::<BlockQ8_0, BlockQ8_0>("q8_0", "activations.q8_0.bin", QK, |k| k.q8_0);
}

#[test]
fn q4_0_matches_ggml() {
    check_type::<BlockQ4_0, BlockQ8_0>("q4_0", "activations.q8_0.bin", QK, |k| k.q4_0);
}

#[test]
fn q4_1_matches_ggml() {
    check_type::<BlockQ4_1, BlockQ8_1>("q4_1", "activations.q8_1.bin", QK, |k| k.q4_1);
}

#[test]
fn q5_0_matches_ggml() {
    check_type::<BlockQ5_0, BlockQ8_0>("q5_0", "activations.q8_0.bin", QK, |k| k.q5_0);
}

#[test]
fn q5_1_matches_ggml() {
    check_type::<BlockQ5_1, BlockQ8_1>("q5_1", "activations.q8_1.bin", QK, |k| k.q5_1);
}

#[test]
fn q4_k_matches_ggml() {
    check_type::<BlockQ4K, BlockQ8K>("q4_k", "activations.q8_K.bin", QK_K, |k| k.q4_k);
}

#[test]
fn q5_k_matches_ggml() {
    check_type::<BlockQ5K, BlockQ8K>("q5_k", "activations.q8_K.bin", QK_K, |k| k.q5_k);
}

#[test]
fn q6_k_matches_ggml() {
    check_type::<BlockQ6K, BlockQ8K>("q6_k", "activations.q8_K.bin", QK_K, |k| k.q6_k);
}

/// ggml has no q8_K·q8_K `vec_dot`; the golden q8_K weights still pin the dequantizer, and the
/// dot is checked against an exact f64 evaluation of the same integer codes.
#[test]
fn q8_k_dequant_matches_ggml_and_dot_is_exact_sum() {
    let w: Vec<BlockQ8K> = blocks("q8_k.ref.bin");
    let a: Vec<BlockQ8K> = blocks("activations.q8_K.bin");
    let deq = f32s("q8_k.ref.dequant.f32");
    let nb = COLS / QK_K;
    for k in levels() {
        let mut out = vec![0.0f32; COLS];
        for r in 0..ROWS {
            let wr = &w[r * nb..(r + 1) * nb];
            k.q8_k.dequantize(wr, &mut out);
            let bad = out
                .iter()
                .zip(&deq[r * COLS..(r + 1) * COLS])
                .filter(|(p, q)| p.to_bits() != q.to_bits())
                .count();
            assert_eq!(bad, 0, "{}: q8_K dequant row {r}", k.variant());
            for t in 0..ACT_ROWS {
                let at = &a[t * nb..(t + 1) * nb];
                let (mut exact, mut mag) = (0.0f64, 0.0f64);
                for (x, y) in wr.iter().zip(at) {
                    let s: i64 =
                        x.qs.iter()
                            .zip(&y.qs)
                            .map(|(&p, &q)| p as i64 * q as i64)
                            .sum();
                    let m: i64 =
                        x.qs.iter()
                            .zip(&y.qs)
                            .map(|(&p, &q)| (p as i64 * q as i64).abs())
                            .sum();
                    exact += s as f64 * x.d as f64 * y.d as f64;
                    mag += m as f64 * (x.d as f64 * y.d as f64).abs();
                }
                let got = k.q8_k.dot(wr, at) as f64;
                assert!(
                    (got - exact).abs() <= 1e-5 * mag + 1e-30,
                    "{}: q8_K row {r} act {t}: {got} vs {exact}",
                    k.variant()
                );
            }
        }
    }
}
