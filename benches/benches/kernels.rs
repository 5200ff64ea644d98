//! Kernel benchmarks, with candle-core's quantized matmul measured in the same run.
//!
//! - `dot/<type>/<level>`: one weight row · one activation row over 64 rows of 4096 (≤ 280 KB
//!   of weights: in L2), 1 thread; throughput = weight bytes.
//! - `membw/<threads>t`: summing 1 GiB of u64 in eight lanes, the memory bandwidth the GEMV
//!   from DRAM is judged by.
//! - `gemv/<type>/<rows>x<cols>/<threads>t/{ingot,ingot-packed,candle}`: y = W·x, throughput =
//!   bytes of the original (ggml-layout) weights. `ingot` multiplies the borrowed matrix (the
//!   zero-copy default), `ingot-packed` a `PackedMatrix` (panels built once, as candle's
//!   `QMatMul` repacks q8_0/q4_K at load). 4096×4096 rotates through copies totalling 1 GiB
//!   for every library, so each call reads its weights from DRAM; the other shapes stay in L2.
//! - `gemm/<type>/<rows>x<cols>/n512/<threads>t/{ingot,ingot-packed,candle}`: batch of 512
//!   tokens, throughput = tokens.
//!
//! ingot is timed from inside its rayon pool, as inference calls it (entering a pool from
//! outside costs a thread wake-up per call, as much as a small GEMV).
//! Both libraries get identical weights: candle quantizes, ingot borrows candle's bytes.
//! candle-core 0.11's quantized matmul ignores the rayon pool it is called from: it runs on its
//! own process-wide pool of `CANDLE_NUM_THREADS` threads (else `RAYON_NUM_THREADS`, else the
//! physical cores), sized once. So a `<threads>t/candle` row is measured only when candle runs
//! that many threads: `CANDLE_NUM_THREADS=2` for the 2-thread rows; unset, the bench sets 1.
//! (Before this, the 1-thread candle rows silently used every core.)
//! K-quant types need rows of a multiple of 256, so the 576-column shape is skipped for them.
//!
//! Run: `cargo bench -p ingot-benches --bench kernels -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;
use std::sync::OnceLock;

use bytemuck::{Pod, Zeroable};
use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use ingot_infer::kernels::{Dot, Kernels, Level, Quantize};
use ingot_infer::matmul::{matmul_with, MatmulScratch, PackedMatrix, QMatrix, WeightType};
use ingot_quant::blocks::*;

const TYPES: [(WeightType, GgmlDType); 6] = [
    (WeightType::Q8_0, GgmlDType::Q8_0),
    (WeightType::Q4_0, GgmlDType::Q4_0),
    (WeightType::Q4_1, GgmlDType::Q4_1),
    (WeightType::Q5_0, GgmlDType::Q5_0),
    (WeightType::Q4K, GgmlDType::Q4K),
    (WeightType::Q6K, GgmlDType::Q6K),
];

fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0
        })
        .collect()
}

/// The threads candle-core's quantized kernels run on (see the module docs): the value of
/// `CANDLE_NUM_THREADS`, which this sets to 1 when unset. Must run before candle's first
/// quantized operation, which sizes its pool.
fn candle_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| {
        let set = std::env::var("CANDLE_NUM_THREADS")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&n| n > 0);
        set.unwrap_or_else(|| {
            std::env::set_var("CANDLE_NUM_THREADS", "1");
            1
        })
    })
}

/// Candle-quantized weights and their bytes (ggml layout).
fn quantized(rows: usize, cols: usize, dt: GgmlDType) -> (QTensor, Vec<u8>) {
    candle_threads();
    let w = Tensor::from_vec(
        noise(rows * cols, (rows * 7 + cols) as u64),
        (rows, cols),
        &Device::Cpu,
    )
    .expect("tensor");
    let q = QTensor::quantize(&w, dt).expect("candle quantize");
    let bytes = q.data().expect("candle data").to_vec();
    (q, bytes)
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

fn levels() -> Vec<&'static Kernels> {
    Level::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .map(|l| Kernels::for_level(l).expect("supported"))
        .collect()
}

fn bench_dot_type<W: Pod + Zeroable, A: Pod + Zeroable>(
    c: &mut Criterion,
    name: &str,
    dt: GgmlDType,
    block: usize,
    get: impl Fn(&Kernels) -> Dot<W, A>,
    quant: impl Fn(&Kernels) -> Quantize<A>,
) {
    const ROWS: usize = 64;
    const COLS: usize = 4096;
    let (_, bytes) = quantized(ROWS, COLS, dt);
    let mut w = vec![W::zeroed(); bytes.len() / size_of::<W>()];
    bytemuck::cast_slice_mut::<W, u8>(&mut w).copy_from_slice(&bytes);
    let nb = COLS / block;
    let x = noise(COLS, 3);
    let mut g = c.benchmark_group(format!("dot/{name}"));
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    for k in levels() {
        let mut a = vec![A::zeroed(); nb];
        quant(k).quantize(&x, &mut a);
        let d = get(k);
        g.bench_function(k.variant(), |b| {
            b.iter(|| {
                let mut s = 0.0f32;
                for r in 0..ROWS {
                    s += d.dot(black_box(&w[r * nb..(r + 1) * nb]), &a);
                }
                black_box(s)
            })
        });
    }
    g.finish();
}

fn dots(c: &mut Criterion) {
    bench_dot_type::<BlockQ8_0, BlockQ8_0>(
        c,
        "q8_0",
        GgmlDType::Q8_0,
        QK,
        |k| k.q8_0,
        |k| k.quantize_q8_0,
    );
    bench_dot_type::<BlockQ4_0, BlockQ8_0>(
        c,
        "q4_0",
        GgmlDType::Q4_0,
        QK,
        |k| k.q4_0,
        |k| k.quantize_q8_0,
    );
    bench_dot_type::<BlockQ4_1, BlockQ8_1>(
        c,
        "q4_1",
        GgmlDType::Q4_1,
        QK,
        |k| k.q4_1,
        |k| k.quantize_q8_1,
    );
    bench_dot_type::<BlockQ5_0, BlockQ8_0>(
        c,
        "q5_0",
        GgmlDType::Q5_0,
        QK,
        |k| k.q5_0,
        |k| k.quantize_q8_0,
    );
    bench_dot_type::<BlockQ4K, BlockQ8K>(
        c,
        "q4_K",
        GgmlDType::Q4K,
        QK_K,
        |k| k.q4_k,
        |k| k.quantize_q8_k,
    );
    bench_dot_type::<BlockQ6K, BlockQ8K>(
        c,
        "q6_K",
        GgmlDType::Q6K,
        QK_K,
        |k| k.q6_k,
        |k| k.quantize_q8_k,
    );
}

fn membw(c: &mut Criterion) {
    use rayon::prelude::*;
    let buf: Vec<u64> = (0..MEMORY_BYTES / 8).map(|i| i as u64).collect();
    let mut g = c.benchmark_group("membw");
    g.throughput(Throughput::Bytes((buf.len() * 8) as u64));
    g.sample_size(10);
    for threads in [1, 2] {
        let p = pool(threads);
        g.bench_function(format!("{threads}t"), |b| {
            p.install(|| {
                b.iter(|| {
                    buf.par_chunks(1 << 16)
                        .map(sum_lanes)
                        .reduce(|| 0, u64::wrapping_add)
                })
            })
        });
    }
    g.finish();
}

/// Wrapping sum in eight independent lanes, which LLVM turns into vector adds: a read loop
/// limited by memory, not by one dependent add per element.
fn sum_lanes(ch: &[u64]) -> u64 {
    let mut lanes = [0u64; 8];
    for v in ch.chunks_exact(8) {
        for (l, x) in lanes.iter_mut().zip(v) {
            *l = l.wrapping_add(*x);
        }
    }
    lanes.iter().fold(0, |a, &v| a.wrapping_add(v))
}

/// Bytes a "from memory" measurement streams through: far above the last-level cache
/// (≈ 32–64 MB here by a size sweep, although the VM reports 480 MiB).
const MEMORY_BYTES: usize = 1 << 30;

fn shapes(ty: WeightType) -> Vec<(usize, usize)> {
    [(1536usize, 576usize), (576, 1536), (4096, 4096)]
        .into_iter()
        .filter(|&(_, cols)| cols % ty.block_elems() == 0)
        .collect()
}

/// candle's matmul over `bytes` (ggml layout; candle repacks what it repacks at build).
fn candle_qmm(dt: GgmlDType, rows: usize, cols: usize, bytes: &[u8]) -> QMatMul {
    let q = qtensor_from_ggml(dt, bytes, vec![rows, cols], &Device::Cpu).expect("candle tensor");
    QMatMul::from_qtensor(q).expect("qmatmul")
}

fn gemv(c: &mut Criterion) {
    let k = ingot_infer::kernels::kernels();
    for (ty, dt) in TYPES {
        for (rows, cols) in shapes(ty) {
            let (_, bytes) = quantized(rows, cols, dt);
            // The large shape rotates through copies totalling MEMORY_BYTES per library, so
            // every call reads its weights from DRAM; the small ones stay in L2.
            let copies = if rows * cols >= 4096 * 4096 {
                MEMORY_BYTES.div_ceil(bytes.len())
            } else {
                1
            };
            let stores: Vec<Vec<u8>> = (0..copies).map(|_| bytes.clone()).collect();
            let mats: Vec<QMatrix<'_>> = stores
                .iter()
                .map(|b| QMatrix::with_type(ty, rows, cols, b).expect("matrix"))
                .collect();
            let x = noise(cols, 11);
            let xt = Tensor::from_vec(x.clone(), (1, cols), &Device::Cpu).expect("x");
            let mut g = c.benchmark_group(format!("gemv/{}/{rows}x{cols}", ty.name()));
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            if copies > 1 {
                g.sample_size(20);
            }
            for threads in [1, 2] {
                let p = pool(threads);
                let mut scratch = MatmulScratch::new();
                let mut y = vec![0.0f32; rows];
                let mut i = 0;
                // Timed from inside the pool, as inference calls it: entering a pool from
                // outside costs a thread wake-up per call, as much as a small GEMV itself.
                g.bench_function(BenchmarkId::new(format!("{threads}t"), "ingot"), |b| {
                    p.install(|| {
                        b.iter(|| {
                            i = (i + 1) % mats.len();
                            matmul_with(k, &mats[i], &x, 1, &mut y, &mut scratch).expect("matmul");
                            black_box(y[0])
                        })
                    })
                });
                if k.panel_gemm().is_some() {
                    let packed: Vec<PackedMatrix> = p.install(|| {
                        mats.iter()
                            .map(|m| PackedMatrix::pack(m).expect("packable"))
                            .collect()
                    });
                    g.bench_function(
                        BenchmarkId::new(format!("{threads}t"), "ingot-packed"),
                        |b| {
                            p.install(|| {
                                b.iter(|| {
                                    i = (i + 1) % packed.len();
                                    matmul_with(k, &packed[i], &x, 1, &mut y, &mut scratch)
                                        .expect("matmul");
                                    black_box(y[0])
                                })
                            })
                        },
                    );
                }
                if threads == candle_threads() {
                    let qmms: Vec<QMatMul> = stores
                        .iter()
                        .map(|b| candle_qmm(dt, rows, cols, b))
                        .collect();
                    // candle repacks lazily, on a matrix's first forward: do that for every
                    // copy before timing.
                    for q in &qmms {
                        q.forward(&xt).expect("candle");
                    }
                    g.bench_function(BenchmarkId::new(format!("{threads}t"), "candle"), |b| {
                        b.iter(|| {
                            i = (i + 1) % qmms.len();
                            black_box(qmms[i].forward(&xt).expect("candle"))
                        })
                    });
                }
            }
            g.finish();
        }
    }
}

fn gemm(c: &mut Criterion) {
    const N: usize = 512;
    let k = ingot_infer::kernels::kernels();
    for (ty, dt) in TYPES {
        for (rows, cols) in shapes(ty).into_iter().filter(|&(r, _)| r < 4096) {
            let (q, bytes) = quantized(rows, cols, dt);
            let m = QMatrix::with_type(ty, rows, cols, &bytes).expect("matrix");
            let qmm = QMatMul::from_qtensor(q).expect("qmatmul");
            let x = noise(N * cols, 13);
            let xt = Tensor::from_vec(x.clone(), (N, cols), &Device::Cpu).expect("x");
            let mut g = c.benchmark_group(format!("gemm/{}/{rows}x{cols}/n{N}", ty.name()));
            g.throughput(Throughput::Elements(N as u64));
            g.sample_size(10);
            // One iteration per sample: the slow peers take up to a second per call.
            g.sampling_mode(SamplingMode::Flat);
            for threads in [1, 2] {
                let p = pool(threads);
                let mut scratch = MatmulScratch::new();
                let mut y = vec![0.0f32; N * rows];
                g.bench_function(BenchmarkId::new(format!("{threads}t"), "ingot"), |b| {
                    p.install(|| {
                        b.iter(|| {
                            matmul_with(k, &m, &x, N, &mut y, &mut scratch).expect("matmul");
                            black_box(y[0])
                        })
                    })
                });
                if k.panel_gemm().is_some() {
                    let pm = p.install(|| PackedMatrix::pack(&m).expect("packable"));
                    g.bench_function(
                        BenchmarkId::new(format!("{threads}t"), "ingot-packed"),
                        |b| {
                            p.install(|| {
                                b.iter(|| {
                                    matmul_with(k, &pm, &x, N, &mut y, &mut scratch)
                                        .expect("matmul");
                                    black_box(y[0])
                                })
                            })
                        },
                    );
                }
                if threads == candle_threads() {
                    g.bench_function(BenchmarkId::new(format!("{threads}t"), "candle"), |b| {
                        b.iter(|| black_box(qmm.forward(&xt).expect("candle")))
                    });
                }
            }
            g.finish();
        }
    }
}

criterion_group!(benches, dots, membw, gemv, gemm);
criterion_main!(benches);
