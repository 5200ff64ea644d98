//! Quantize throughput (MB/s of f32 input) for the legacy types Q8_0, Q4_0, Q4_1, Q5_0 and
//! Q5_1: ingot's reference quantizer (`ref`), its default without an imatrix (`default`: one
//! least-squares step from the reference), the thorough search without an imatrix
//! (`thorough`) and the search with importance weights (`weighted`), beside candle-core's
//! (`GgmlType::from_float`), on 1 thread and on all threads, measured in the same run. After
//! the criterion groups, a short summary prints the ingot / candle throughput ratios.
//!
//! candle has no importance-weighted legacy quantizer (its `from_float_imatrix` covers only
//! the K-quants), so the search rows are compared with candle's plain quantizer: they show what
//! the better accuracy costs. Q8_0 has no search (it is the reference in every mode).
//! `INGOT_QUANT_KERNEL=scalar|avx2|avx512` forces ingot's instruction-set level.

use std::hint::black_box;
use std::time::{Duration, Instant};

use candle_core::quantized::k_quants::{
    BlockQ4_0 as CandleQ4_0, BlockQ4_1 as CandleQ4_1, BlockQ5_0 as CandleQ5_0,
    BlockQ5_1 as CandleQ5_1, BlockQ8_0 as CandleQ8_0, GgmlType as CandleType,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ingot_format::GgmlType;
use ingot_quant::{quantize_tensor, row_bytes, QuantMode};
use rayon::prelude::*;

const ROWS: usize = 128;
const COLS: usize = 4096;

fn data() -> (Vec<f32>, Vec<f32>) {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    };
    let x = (0..ROWS * COLS)
        .map(|_| (next() + next() + next() + next() - 2.0) * 0.05)
        .collect();
    let w = (0..COLS).map(|_| (next() * 4.0).exp()).collect();
    (x, w)
}

fn one_thread() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("building a 1-thread pool")
}

/// One contender: a name and a closure quantizing the whole matrix once.
type Run<'a> = Box<dyn Fn() + Send + Sync + 'a>;

fn contenders<'a>(
    ty: GgmlType,
    x: &'a [f32],
    w: &'a [f32],
    pool1: &'a rayon::ThreadPool,
) -> Vec<(String, Run<'a>)> {
    let size = row_bytes(ty, COLS).expect("row bytes") * ROWS;
    let ingot = move |mode: QuantMode, weights: Option<&'a [f32]>| {
        move || {
            let mut out = vec![0u8; size];
            quantize_tensor("bench", ty, x, COLS, weights, mode, &mut out).expect("quantize");
            black_box(out);
        }
    };
    let mut v: Vec<(String, Run<'a>)> = Vec::new();
    for (threads, label) in [(1, "1t"), (0, "all")] {
        let on = move |f: Box<dyn Fn() + Send + Sync + 'a>| -> Run<'a> {
            if threads == 1 {
                Box::new(move || pool1.install(&f))
            } else {
                f
            }
        };
        v.push((
            format!("ingot_ref_{label}"),
            on(Box::new(ingot(QuantMode::Reference, None))),
        ));
        if ty != GgmlType::Q8_0 {
            v.push((
                format!("ingot_default_{label}"),
                on(Box::new(ingot(QuantMode::Default, None))),
            ));
            v.push((
                format!("ingot_thorough_{label}"),
                on(Box::new(ingot(QuantMode::Thorough, None))),
            ));
            v.push((
                format!("ingot_weighted_{label}"),
                on(Box::new(ingot(QuantMode::Default, Some(w)))),
            ));
        }
        let candle: Box<dyn Fn() + Send + Sync + 'a> = match ty {
            GgmlType::Q8_0 => candle_run::<CandleQ8_0>(x),
            GgmlType::Q4_0 => candle_run::<CandleQ4_0>(x),
            GgmlType::Q4_1 => candle_run::<CandleQ4_1>(x),
            GgmlType::Q5_0 => candle_run::<CandleQ5_0>(x),
            _ => candle_run::<CandleQ5_1>(x),
        };
        v.push((format!("candle_{label}"), on(candle)));
    }
    v
}

/// candle's row quantizer for one block type, rows in parallel like ingot's tensor quantizer.
fn candle_run<'a, B: CandleType + Send + Sync + 'a>(
    x: &'a [f32],
) -> Box<dyn Fn() + Send + Sync + 'a> {
    Box::new(move || {
        let mut out = vec![B::zeros(); ROWS * COLS / 32];
        out.par_chunks_mut(COLS / 32)
            .zip(x.par_chunks(COLS))
            .for_each(|(o, r)| B::from_float(r, o));
        black_box(out);
    })
}

/// The legacy types measured.
const TYPES: [GgmlType; 5] = [
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
];

fn bench_quantize(c: &mut Criterion) {
    let (x, w) = data();
    let pool1 = one_thread();
    for ty in TYPES {
        let mut g = c.benchmark_group(format!("quantize/{}", ty.name()));
        g.throughput(Throughput::Bytes((x.len() * 4) as u64));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(2));
        g.warm_up_time(Duration::from_millis(300));
        for (name, run) in contenders(ty, &x, &w, &pool1) {
            g.bench_function(BenchmarkId::from_parameter(&name), |b| b.iter(&run));
        }
        g.finish();
    }
    summary(&x, &w, &pool1);
}

/// MB/s (10⁶ bytes of f32 input per second) of one contender, timed for about 0.5 s.
fn mbps(run: &dyn Fn(), bytes: usize) -> f64 {
    run();
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_millis(500) || n < 3 {
        run();
        n += 1;
    }
    bytes as f64 * f64::from(n) / start.elapsed().as_secs_f64() / 1e6
}

fn summary(x: &[f32], w: &[f32], pool1: &rayon::ThreadPool) {
    println!(
        "\nquantize throughput summary (MB/s of f32 input; ratio = ingot / candle, same threads)"
    );
    for ty in TYPES {
        let runs = contenders(ty, x, w, pool1);
        let speeds: Vec<(String, f64)> = runs
            .iter()
            .map(|(name, run)| (name.clone(), mbps(run.as_ref(), x.len() * 4)))
            .collect();
        for label in ["1t", "all"] {
            let candle = speeds
                .iter()
                .find(|(n, _)| *n == format!("candle_{label}"))
                .map(|s| s.1)
                .unwrap_or(f64::NAN);
            for (name, s) in speeds
                .iter()
                .filter(|(n, _)| n.ends_with(label) && n.starts_with("ingot"))
            {
                println!(
                    "  {:5} {name:20} {s:9.1} MB/s   candle_{label} {candle:9.1} MB/s   ratio {:.2}",
                    ty.name(),
                    s / candle
                );
            }
        }
    }
}

criterion_group!(benches, bench_quantize);
criterion_main!(benches);
