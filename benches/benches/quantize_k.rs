//! K-quant quantizer throughput (MB/s of f32 input, one thread), ingot beside candle-core in
//! the same run. Rows of 4096 values drawn like real weights (Gaussian-ish, a few outliers);
//! the importance weights are log-normal like an imatrix's.
//!
//! Pairs to compare: `ingot_ref` vs `candle_from_float` (both ggml's reference algorithm),
//! `ingot_weighted` vs `candle_imatrix` (candle ports ggml's `quantize_row_q4_K_impl`; ingot
//! refines that result further, so it does more work for lower error).

use std::hint::black_box;

use candle_core::quantized::k_quants::{BlockQ4K as CandleQ4K, GgmlType};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ingot_quant::k_quants::{q4_k, q6_k};

const COLS: usize = 4096;
const ROWS: usize = 16;

fn data() -> (Vec<f32>, Vec<f32>) {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 + 0.5) / (1u64 << 24) as f32
    };
    let mut x = Vec::with_capacity(ROWS * COLS);
    for i in 0..ROWS * COLS {
        // Sum of four uniforms: close enough to a Gaussian for a quantizer's workload.
        let g = (uniform() + uniform() + uniform() + uniform() - 2.0) * 0.05;
        x.push(if i % 211 == 7 { g * 15.0 } else { g });
    }
    let w = (0..COLS).map(|_| (3.0 * (uniform() - 0.5)).exp()).collect();
    (x, w)
}

fn bench_q4k(c: &mut Criterion) {
    // One thread: the quantizers are called directly, no rayon.
    let (x, w) = data();
    let nb = x.len() / 256;
    let mut g = c.benchmark_group("quantize_k/q4_k");
    g.throughput(Throughput::Bytes((x.len() * 4) as u64));
    g.sample_size(10);

    let mut ours = vec![<q4_k::BlockQ4K as bytemuck::Zeroable>::zeroed(); nb];
    g.bench_function("ingot_ref", |b| {
        b.iter(|| {
            for (xr, or) in x.chunks(COLS).zip(ours.chunks_mut(COLS / 256)) {
                q4_k::quantize_row_ref(black_box(xr), or);
            }
        })
    });
    g.bench_function("ingot_default", |b| {
        b.iter(|| {
            for (xr, or) in x.chunks(COLS).zip(ours.chunks_mut(COLS / 256)) {
                q4_k::quantize_row(black_box(xr), None, or);
            }
        })
    });
    g.bench_function("ingot_weighted", |b| {
        b.iter(|| {
            for (xr, or) in x.chunks(COLS).zip(ours.chunks_mut(COLS / 256)) {
                q4_k::quantize_row(black_box(xr), Some(&w), or);
            }
        })
    });
    g.bench_function("ingot_ggml_weighted", |b| {
        b.iter(|| {
            for (xr, or) in x.chunks(COLS).zip(ours.chunks_mut(COLS / 256)) {
                q4_k::quantize_row_ggml_weighted(black_box(xr), &w, or);
            }
        })
    });

    let mut theirs = vec![CandleQ4K::zeros(); nb];
    g.bench_function("candle_from_float", |b| {
        b.iter(|| CandleQ4K::from_float(black_box(&x), &mut theirs))
    });
    g.bench_function("candle_imatrix", |b| {
        b.iter(|| CandleQ4K::from_float_imatrix(black_box(&x), &mut theirs, &w, COLS))
    });
    g.finish();
}

fn bench_q6k(c: &mut Criterion) {
    let (x, w) = data();
    let nb = x.len() / 256;
    let mut g = c.benchmark_group("quantize_k/q6_k");
    g.throughput(Throughput::Bytes((x.len() * 4) as u64));
    g.sample_size(10);
    let mut ours = vec![<q6_k::BlockQ6K as bytemuck::Zeroable>::zeroed(); nb];
    g.bench_function("ingot_ref", |b| {
        b.iter(|| {
            for (xr, or) in x.chunks(COLS).zip(ours.chunks_mut(COLS / 256)) {
                q6_k::quantize_row_ref(black_box(xr), or);
            }
        })
    });
    g.bench_function("ingot_default", |b| {
        b.iter(|| {
            for (xr, or) in x.chunks(COLS).zip(ours.chunks_mut(COLS / 256)) {
                q6_k::quantize_row(black_box(xr), None, or);
            }
        })
    });
    g.bench_function("ingot_weighted", |b| {
        b.iter(|| {
            for (xr, or) in x.chunks(COLS).zip(ours.chunks_mut(COLS / 256)) {
                q6_k::quantize_row(black_box(xr), Some(&w), or);
            }
        })
    });
    g.finish();
}

/// Throughput ratios ingot ÷ candle measured interleaved (A, B, A, B, …), keeping each one's
/// fastest pass, so a machine whose load drifts during the run (shared CI runners) still
/// compares like with like; printed beside criterion's absolute figures.
fn interleaved_ratios(_c: &mut Criterion) {
    let (x, w) = data();
    let nb = x.len() / 256;
    let mut ours = vec![<q4_k::BlockQ4K as bytemuck::Zeroable>::zeroed(); nb];
    let mut theirs = vec![CandleQ4K::zeros(); nb];
    let time = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let mut t = [f64::INFINITY; 4];
    for _ in 0..30 {
        t[0] = t[0].min(time(&mut || {
            for (xr, or) in x.chunks(COLS).zip(ours.chunks_mut(COLS / 256)) {
                q4_k::quantize_row_ref(black_box(xr), or);
            }
        }));
        t[1] = t[1].min(time(&mut || {
            CandleQ4K::from_float(black_box(&x), &mut theirs)
        }));
        t[2] = t[2].min(time(&mut || {
            for (xr, or) in x.chunks(COLS).zip(ours.chunks_mut(COLS / 256)) {
                q4_k::quantize_row(black_box(xr), Some(&w), or);
            }
        }));
        t[3] = t[3].min(time(&mut || {
            CandleQ4K::from_float_imatrix(black_box(&x), &mut theirs, &w, COLS)
        }));
    }
    let mb = (x.len() * 4) as f64 / 1e6;
    println!(
        "quantize_k/q4_k interleaved, 1 thread: ingot ref {:.1} MB/s vs candle from_float {:.1} MB/s \
         (ratio {:.2}); ingot weighted {:.1} MB/s vs candle from_float_imatrix {:.1} MB/s (ratio {:.2})",
        mb / t[0],
        mb / t[1],
        t[1] / t[0],
        mb / t[2],
        mb / t[3],
        t[3] / t[2]
    );
}

criterion_group!(benches, interleaved_ratios, bench_q4k, bench_q6k);
criterion_main!(benches);
