//! `matmul` (GEMV and GEMM) against row-by-row dot products, at every kernel level, with one
//! and two threads, odd row counts and odd batch sizes; and each shape error by variant.
//!
//! Batches n ≥ 8 (K-quants: ≥ 24) go through the panel GEMM (repacked weights) where the level
//! has it, smaller ones through the dot micro-kernels: every output must agree with the GEMV's
//! dot product of the same quantized activations within 1e-5 · Σ|w| · max|x| (same integers,
//! different float summation order). n = 19 and 30 cover register-tile remainders, several
//! column tasks and the K-quant threshold. The same holds for weights packed once
//! (`PackedMatrix`), whose GEMV and small batches take their own paths; from the panel
//! threshold on, packed and per-call panels must agree bit for bit.

use bytemuck::{Pod, Zeroable};
use ingot_infer::kernels::{Dot, Kernels, Level, Quantize};
use ingot_infer::matmul::{
    matmul, matmul_with, MatmulScratch, PackedMatrix, QMatrix, WeightType, Weights,
};
use ingot_infer::InferError;
use ingot_quant::blocks::*;
use ingot_tests::golden;

const COLS: usize = 2048;

fn levels() -> Vec<&'static Kernels> {
    Level::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .map(|l| Kernels::for_level(l).unwrap())
        .collect()
}

/// Deterministic N(0,1)-ish values (sum of uniforms) without a rand dependency.
fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n)
        .map(|_| (0..4).map(|_| next()).sum::<f32>() * 1.7 - 3.4)
        .collect()
}

fn golden_bytes(ty: &str) -> Vec<u8> {
    std::fs::read(golden().join("blocks").join(format!("{ty}.ref.bin"))).unwrap()
}

fn to_blocks<B: Pod + Zeroable>(bytes: &[u8]) -> Vec<B> {
    let mut out = vec![B::zeroed(); bytes.len() / size_of::<B>()];
    bytemuck::cast_slice_mut::<B, u8>(&mut out).copy_from_slice(bytes);
    out
}

/// Runs matmul on the first `rows` golden rows of `ty` for several batch sizes and compares
/// every output with the kernel's own single dot product of the quantized activations.
fn check<W: Pod + Zeroable, A: Pod + Zeroable>(
    ty: WeightType,
    file: &str,
    dot: impl Fn(&Kernels) -> Dot<W, A>,
    quant: impl Fn(&Kernels) -> Quantize<A>,
) {
    let bytes = golden_bytes(file);
    let all: Vec<W> = to_blocks(&bytes);
    let block = ty.block_elems();
    let nb = COLS / block;
    let mut scratch = MatmulScratch::new();
    for k in levels() {
        for rows in [24usize, 17, 1] {
            let wblocks = &all[..rows * nb];
            let wbytes: &[u8] = bytemuck::cast_slice(wblocks);
            let m = QMatrix::with_type(ty, rows, COLS, wbytes).unwrap();
            for n in [1usize, 2, 4, 5, 8, 11, 19, 30] {
                let x = noise(n * COLS, (rows * 31 + n) as u64);
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let mut y = vec![f32::NAN; n * rows];
                    pool.install(|| matmul_with(k, &m, &x, n, &mut y, &mut scratch))
                        .unwrap();
                    // The same product with weights packed once (packing in the pool too).
                    let mut yp = vec![f32::NAN; n * rows];
                    let packed = pool.install(|| PackedMatrix::pack(&m));
                    assert_eq!(packed.is_some(), ty != WeightType::Q8K, "{}", ty.name());
                    if let Some(pm) = &packed {
                        assert_eq!((pm.rows(), pm.cols(), pm.weight_type()), (rows, COLS, ty));
                        pool.install(|| matmul_with(k, pm, &x, n, &mut yp, &mut scratch))
                            .unwrap();
                    }
                    for t in 0..n {
                        let mut a = vec![A::zeroed(); nb];
                        quant(k).quantize(&x[t * COLS..(t + 1) * COLS], &mut a);
                        let amax = x[t * COLS..(t + 1) * COLS]
                            .iter()
                            .fold(0.0f32, |m, v| m.max(v.abs()));
                        for r in 0..rows {
                            let wr = &wblocks[r * nb..(r + 1) * nb];
                            let want = dot(k).dot(wr, &a);
                            let mut deq = vec![0.0f32; COLS];
                            dot(k).dequantize(wr, &mut deq);
                            let wsum: f32 = deq.iter().map(|v| v.abs()).sum();
                            let tol = 1e-5 * wsum * amax + 1e-30;
                            let got = y[t * rows + r];
                            if n < 4 {
                                // GEMV: one-row dots or the four-row kernel, which is four
                                // one-row dots bit for bit.
                                assert_eq!(
                                    got.to_bits(),
                                    want.to_bits(),
                                    "GEMV {} {}: rows {rows} n {n} threads {threads} t {t} r {r}: {got} vs {want}",
                                    k.variant(),
                                    ty.name()
                                );
                            }
                            assert!(
                                (got - want).abs() <= tol,
                                "{} {}: rows {rows} n {n} threads {threads} t {t} r {r}: {got} vs {want}",
                                k.variant(),
                                ty.name()
                            );
                            if packed.is_some() {
                                let got = yp[t * rows + r];
                                assert!(
                                    (got - want).abs() <= tol,
                                    "packed {} {}: rows {rows} n {n} threads {threads} t {t} r {r}: {got} vs {want}",
                                    k.variant(),
                                    ty.name()
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn matmul_q8_0() {
    check(WeightType::Q8_0, "q8_0", |k| k.q8_0, |k| k.quantize_q8_0);
}
#[test]
fn matmul_q4_0() {
    check(WeightType::Q4_0, "q4_0", |k| k.q4_0, |k| k.quantize_q8_0);
}
#[test]
fn matmul_q4_1() {
    check(WeightType::Q4_1, "q4_1", |k| k.q4_1, |k| k.quantize_q8_1);
}
#[test]
fn matmul_q5_0() {
    check(WeightType::Q5_0, "q5_0", |k| k.q5_0, |k| k.quantize_q8_0);
}
#[test]
fn matmul_q5_1() {
    check(WeightType::Q5_1, "q5_1", |k| k.q5_1, |k| k.quantize_q8_1);
}
#[test]
fn matmul_q4_k() {
    check(WeightType::Q4K, "q4_k", |k| k.q4_k, |k| k.quantize_q8_k);
}
#[test]
fn matmul_q5_k() {
    check(WeightType::Q5K, "q5_k", |k| k.q5_k, |k| k.quantize_q8_k);
}
#[test]
fn matmul_q6_k() {
    check(WeightType::Q6K, "q6_k", |k| k.q6_k, |k| k.quantize_q8_k);
}
#[test]
fn matmul_q8_k() {
    check(WeightType::Q8K, "q8_k", |k| k.q8_k, |k| k.quantize_q8_k);
}

/// Float weights: f32 values from the golden input, stored as f32, f16 and bf16; compared
/// with an f64 evaluation.
#[test]
fn matmul_float_types_against_f64() {
    let w32 = ingot_tests::read_f32(&golden().join("blocks").join("input.f32"));
    let rows = 9; // odd, below one task
    let w32 = &w32[..rows * COLS];
    let w16: Vec<half::f16> = w32.iter().map(|&v| half::f16::from_f32(v)).collect();
    let wb16: Vec<half::bf16> = w32.iter().map(|&v| half::bf16::from_f32(v)).collect();
    let cases: [(WeightType, &[u8], Vec<f64>); 3] = [
        (
            WeightType::F32,
            bytemuck::cast_slice(w32),
            w32.iter().map(|&v| v as f64).collect(),
        ),
        (
            WeightType::F16,
            bytemuck::cast_slice(&w16),
            w16.iter().map(|v| v.to_f64()).collect(),
        ),
        (
            WeightType::BF16,
            bytemuck::cast_slice(&wb16),
            wb16.iter().map(|v| v.to_f64()).collect(),
        ),
    ];
    let mut scratch = MatmulScratch::new();
    for k in levels() {
        for (ty, bytes, wd) in &cases {
            let m = QMatrix::with_type(*ty, rows, COLS, bytes).unwrap();
            for n in [1usize, 3, 4, 7] {
                let x = noise(n * COLS, n as u64);
                let mut y = vec![0.0; n * rows];
                matmul_with(k, &m, &x, n, &mut y, &mut scratch).unwrap();
                for t in 0..n {
                    for r in 0..rows {
                        let (mut e, mut mag) = (0.0f64, 0.0f64);
                        for c in 0..COLS {
                            let p = wd[r * COLS + c] * x[t * COLS + c] as f64;
                            e += p;
                            mag += p.abs();
                        }
                        let got = y[t * rows + r] as f64;
                        assert!(
                            (got - e).abs() <= 1e-5 * mag,
                            "{} {}: n {n} t {t} r {r}: {got} vs {e}",
                            k.variant(),
                            ty.name()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn shape_errors_are_reported_by_variant() {
    let bytes = golden_bytes("q4_0");
    let nb = COLS / QK;
    let one_row = &bytes[..nb * size_of::<BlockQ4_0>()];
    assert!(matches!(
        QMatrix::with_type(WeightType::Q4_0, 1, COLS + 16, one_row),
        Err(InferError::RowNotBlockMultiple { cols, block: 32, .. }) if cols == COLS + 16
    ));
    assert!(matches!(
        QMatrix::with_type(WeightType::Q4_0, 2, COLS, one_row),
        Err(InferError::WeightSize { rows: 2, actual, .. }) if actual == one_row.len()
    ));
    assert!(matches!(
        QMatrix::with_type(WeightType::Q4_0, usize::MAX, COLS, one_row),
        Err(InferError::WeightSize {
            expected: usize::MAX,
            ..
        })
    ));
    // Misaligned: a u16 buffer is 2-aligned, so one byte in is odd.
    let mut words = vec![0u16; one_row.len() / 2 + 1];
    let raw: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    raw[1..1 + one_row.len()].copy_from_slice(one_row);
    assert!(matches!(
        QMatrix::with_type(WeightType::Q4_0, 1, COLS, &raw[1..1 + one_row.len()]),
        Err(InferError::Misaligned {
            align: 2,
            addr_mod: 1,
            ..
        })
    ));

    let m = QMatrix::with_type(WeightType::Q4_0, 1, COLS, one_row).unwrap();
    let mut scratch = MatmulScratch::new();
    let mut y = vec![0.0; 2];
    assert!(matches!(
        matmul(&m, &vec![0.0; COLS], 2, &mut y, &mut scratch),
        Err(InferError::ShapeMismatch { operand: "x", expected, actual }) if expected == 2 * COLS && actual == COLS
    ));
    assert!(matches!(
        matmul(&m, &vec![0.0; 2 * COLS], 2, &mut y[..1], &mut scratch),
        Err(InferError::ShapeMismatch {
            operand: "y",
            expected: 2,
            actual: 1
        })
    ));
    // The API-contract constructor maps GGML types and refuses those without kernels.
    let g = QMatrix::new(ingot_format::GgmlType::Q4_0, 1, COLS, one_row).unwrap();
    assert_eq!(g.weight_type(), WeightType::Q4_0);
    assert!(matches!(
        QMatrix::new(ingot_format::GgmlType::Q2_K, 1, COLS, one_row),
        Err(InferError::UnsupportedType { ty: "q2_K" })
    ));
    for &t in ingot_format::GgmlType::ALL {
        if let Some(w) = WeightType::from_ggml(t) {
            assert_eq!(w.name(), t.name());
            assert_eq!(w.block_elems(), t.block_size());
        }
    }
    // n = 0 is a no-op, not an error.
    matmul(&m, &[], 0, &mut [], &mut scratch).unwrap();
}

/// `matmul_multi` (activations quantized once for consecutive matrices of the same activation
/// type) must equal separate `matmul` calls bit for bit, for GEMV and both GEMM paths, and
/// reject a count mismatch by variant.
#[test]
fn matmul_multi_equals_separate_calls() {
    use ingot_infer::matmul::matmul_multi_with;
    let q41 = golden_bytes("q4_1");
    let q50 = golden_bytes("q5_0");
    let q4k = golden_bytes("q4_k");
    let rb = |ty: WeightType, bytes: &[u8], start: usize, rows: usize| {
        let per_row = bytes.len() / golden_rows(ty, bytes);
        bytes[start * per_row..(start + rows) * per_row].to_vec()
    };
    let a = rb(WeightType::Q4_1, &q41, 0, 17);
    let b = rb(WeightType::Q4_1, &q41, 3, 9);
    let c = rb(WeightType::Q4K, &q4k, 0, 16);
    let d = rb(WeightType::Q5_0, &q50, 1, 5);
    let ws = [
        QMatrix::with_type(WeightType::Q4_1, 17, COLS, &a).unwrap(),
        QMatrix::with_type(WeightType::Q4_1, 9, COLS, &b).unwrap(),
        QMatrix::with_type(WeightType::Q4K, 16, COLS, &c).unwrap(),
        QMatrix::with_type(WeightType::Q5_0, 5, COLS, &d).unwrap(),
    ];
    for k in levels() {
        for n in [1usize, 5, 12] {
            let x = noise(n * COLS, 99 + n as u64);
            let mut scratch = MatmulScratch::new();
            let mut want: Vec<Vec<f32>> = ws.iter().map(|w| vec![0.0; n * w.rows()]).collect();
            for (w, y) in ws.iter().zip(want.iter_mut()) {
                matmul_with(k, w, &x, n, y, &mut scratch).unwrap();
            }
            let mut got: Vec<Vec<f32>> = ws.iter().map(|w| vec![f32::NAN; n * w.rows()]).collect();
            let mut ys: Vec<&mut [f32]> = got.iter_mut().map(|v| v.as_mut_slice()).collect();
            matmul_multi_with(k, &ws, &x, n, &mut ys, &mut scratch).unwrap();
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                let same = g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{} n {n}: matrix {i} differs", k.variant());
            }
            let mut short: Vec<&mut [f32]> =
                got.iter_mut().take(2).map(|v| v.as_mut_slice()).collect();
            assert!(matches!(
                matmul_multi_with(k, &ws, &x, n, &mut short, &mut scratch),
                Err(InferError::ShapeMismatch {
                    operand: "ys",
                    expected: 4,
                    actual: 2
                })
            ));
        }
    }
}

/// Rows in a golden file of `ty` (each row has COLS elements).
fn golden_rows(ty: WeightType, bytes: &[u8]) -> usize {
    let block_bytes = match ty {
        WeightType::Q4_1 => size_of::<BlockQ4_1>(),
        WeightType::Q5_0 => size_of::<BlockQ5_0>(),
        WeightType::Q4K => size_of::<BlockQ4K>(),
        _ => unreachable!("not used"),
    };
    bytes.len() / (COLS / ty.block_elems() * block_bytes)
}

/// From the panel threshold on, a packed matmul is the per-call panel GEMM without the
/// repacking: equal bit for bit, at every level that has panel kernels. Packed matrices
/// reject wrong shapes like borrowed ones; float types and q8_K have no panels.
#[test]
fn packed_matches_per_call_panels_and_checks_shapes() {
    let cases = [
        (WeightType::Q4_0, "q4_0"),
        (WeightType::Q5_1, "q5_1"),
        (WeightType::Q8_0, "q8_0"),
        (WeightType::Q4K, "q4_k"),
        (WeightType::Q6K, "q6_k"),
    ];
    for k in levels().into_iter().filter(|k| k.panel_gemm().is_some()) {
        for (ty, file) in cases {
            let bytes = golden_bytes(file);
            let rows = 21;
            let nbytes = bytes.len() / golden_rows_any(ty, &bytes) * rows;
            let m = QMatrix::with_type(ty, rows, COLS, &bytes[..nbytes]).unwrap();
            let pm = PackedMatrix::pack(&m).unwrap();
            assert!(pm.size_bytes() >= nbytes, "panels hold at least the codes");
            let n = 30;
            let x = noise(n * COLS, 5);
            let mut scratch = MatmulScratch::new();
            let (mut a, mut b) = (vec![0.0; n * rows], vec![f32::NAN; n * rows]);
            matmul_with(k, &m, &x, n, &mut a, &mut scratch).unwrap();
            matmul_with(k, &pm, &x, n, &mut b, &mut scratch).unwrap();
            let same = a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits());
            assert!(
                same,
                "{} {}: packed differs from per-call panels",
                k.variant(),
                ty.name()
            );
        }
    }
    let bytes = golden_bytes("q4_0");
    let one_row = &bytes[..COLS / QK * size_of::<BlockQ4_0>()];
    let pm = PackedMatrix::pack(&QMatrix::with_type(WeightType::Q4_0, 1, COLS, one_row).unwrap())
        .unwrap();
    let mut scratch = MatmulScratch::new();
    let mut y = vec![0.0; 2];
    assert!(matches!(
        matmul(&pm, &vec![0.0; COLS], 2, &mut y, &mut scratch),
        Err(InferError::ShapeMismatch { operand: "x", expected, actual }) if expected == 2 * COLS && actual == COLS
    ));
    assert!(matches!(
        matmul(&pm, &vec![0.0; 2 * COLS], 2, &mut y[..1], &mut scratch),
        Err(InferError::ShapeMismatch {
            operand: "y",
            expected: 2,
            actual: 1
        })
    ));
    let f = vec![0u8; 4 * COLS];
    assert!(
        PackedMatrix::pack(&QMatrix::with_type(WeightType::F32, 1, COLS, &f).unwrap()).is_none()
    );
}

/// Rows in a golden block file of any quantized type used above.
fn golden_rows_any(ty: WeightType, bytes: &[u8]) -> usize {
    let block_bytes = match ty {
        WeightType::Q4_0 => size_of::<BlockQ4_0>(),
        WeightType::Q5_1 => size_of::<BlockQ5_1>(),
        WeightType::Q8_0 => size_of::<BlockQ8_0>(),
        WeightType::Q6K => size_of::<BlockQ6K>(),
        _ => return golden_rows(ty, bytes),
    };
    bytes.len() / (COLS / ty.block_elems() * block_bytes)
}
