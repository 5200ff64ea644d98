//! Forward-pass speed on SmolLM2-135M-Instruct.Q4_1 (the llama.cpp file as shipped), at 1 and
//! 2 threads, in the shapes llama-bench measures (ANCHORS.md): prompt processing of 512
//! tokens (one batch through GEMM, logits of the last row only) and generation (single-token
//! GEMV steps from a short prompt). Throughput is in tokens/s.
//!
//! llama.cpp's figures on this machine kind (ANCHORS.md, llama-bench pp128/tg32 for Q4_0 and
//! Q8_0; Q4_1 itself is not listed) are the reference the closing report compares against.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ingot_format::GgufFile;
use ingot_infer::llama::{KvPrecision, LlamaModel};

const PP_TOKENS: usize = 512;
const TG_PROMPT: usize = 16;
const TG_TOKENS: usize = 32;

fn tokens() -> Vec<u32> {
    ingot_tests::read_i32(&ingot_tests::golden().join("smollm2/tokens.i32"))
        .into_iter()
        .take(PP_TOKENS + TG_TOKENS)
        .map(|t| t as u32)
        .collect()
}

fn bench_model(c: &mut Criterion) {
    let file = GgufFile::open(ingot_tests::smollm2_path()).expect("opening SmolLM2");
    let model = LlamaModel::from_gguf(&file).expect("loading SmolLM2");
    let toks = tokens();
    let mut g = c.benchmark_group("smollm2_q4_1");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        g.throughput(Throughput::Elements(PP_TOKENS as u64));
        g.bench_function(format!("pp{PP_TOKENS}/t{threads}"), |b| {
            let mut cache = model.new_cache(PP_TOKENS, KvPrecision::F16);
            b.iter(|| {
                pool.install(|| {
                    cache.clear();
                    model
                        .forward(&mut cache, &toks[..PP_TOKENS], PP_TOKENS - 1, None)
                        .expect("forward")
                })
            })
        });
        g.throughput(Throughput::Elements(TG_TOKENS as u64));
        g.bench_function(format!("tg{TG_TOKENS}/t{threads}"), |b| {
            let mut cache = model.new_cache(TG_PROMPT + TG_TOKENS, KvPrecision::F16);
            // Only the single-token steps are timed, not the short prompt before them.
            b.iter_custom(|iters| {
                pool.install(|| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        cache.clear();
                        model
                            .forward(&mut cache, &toks[..TG_PROMPT], TG_PROMPT - 1, None)
                            .expect("prompt");
                        let start = Instant::now();
                        for &t in &toks[TG_PROMPT..TG_PROMPT + TG_TOKENS] {
                            std::hint::black_box(
                                model.forward(&mut cache, &[t], 0, None).expect("step"),
                            );
                        }
                        total += start.elapsed();
                    }
                    total
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_model);
criterion_main!(benches);
