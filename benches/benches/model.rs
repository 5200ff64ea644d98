//! Forward-pass speed on SmolLM2-135M-Instruct, at 1 and 2 threads, in the shapes
//! llama-bench measures (ANCHORS.md): prompt processing of 512 tokens (one batch through
//! GEMM, logits of the last row only) and generation (single-token GEMV steps after a short
//! prompt), in tokens/s; plus one perplexity window (512 tokens, every logit scored, the
//! library's `perplexity` as the tool runs it) whose time × 40 is the golden-settings run.
//!
//! Models: the llama.cpp file as shipped (Q4_1), and the same file re-quantized by ingot's
//! quantize pipeline to Q8_0, Q4_0 and Q4_K_M (`quantize --allow-requantize`: every tensor
//! dequantized to f32, then quantized by the file type's plan). The re-quantized files are
//! made once per bench run, on first use, into a temporary directory; a filtered run
//! (`-- q8_0`) makes only what it measures. They are made with ggml's reference quantizers
//! (`reference_unweighted`, no imatrix): the bench times the forward pass, and the reference
//! quantizers are llama-quantize's own output and the fast ones.
//!
//! llama.cpp's figures on this machine kind (ANCHORS.md, llama-bench pp128/tg32) are
//! compared in benches/README.md ("Model").

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use ingot_format::GgufFile;
use ingot_infer::llama::{KvPrecision, LlamaModel};
use ingot_infer::perplexity::{perplexity, KlMode, PerplexityOptions};
use ingot_quant::pipeline::{NoProgress, Prepared, QuantizeOptions};
use ingot_quant::plan::FileType;

const PP_TOKENS: usize = 512;
const TG_PROMPT: usize = 16;
const TG_TOKENS: usize = 32;

/// The golden WikiText-2 tokens: enough for the prompt, the generation steps and the
/// perplexity window (which, as in llama.cpp, needs at least two windows of text).
fn tokens() -> Vec<u32> {
    ingot_tests::read_i32(&ingot_tests::golden().join("smollm2/tokens.i32"))
        .into_iter()
        .take((PP_TOKENS + TG_TOKENS).max(2 * PP_TOKENS))
        .map(|t| t as u32)
        .collect()
}

/// One model measured: the shipped file, or a re-quantization of it made on first use.
struct Variant {
    label: &'static str,
    requantize_to: Option<FileType>,
    file: OnceCell<GgufFile>,
}

impl Variant {
    fn new(label: &'static str, requantize_to: Option<FileType>) -> Self {
        Variant {
            label,
            requantize_to,
            file: OnceCell::new(),
        }
    }

    /// The mapped model file, re-quantizing the shipped one into `dir` the first time.
    fn file(&self, dir: &Path) -> &GgufFile {
        self.file.get_or_init(|| {
            let path = match self.requantize_to {
                None => ingot_tests::smollm2_path(),
                Some(ft) => requantize(dir, ft),
            };
            GgufFile::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
        })
    }
}

/// `quantize --allow-requantize SmolLM2-Q4_1 OUT TYPE` through the library pipeline.
fn requantize(dir: &Path, ft: FileType) -> PathBuf {
    let src = GgufFile::open(ingot_tests::smollm2_path()).expect("opening SmolLM2");
    let mut opts = QuantizeOptions::new(ft);
    opts.plan.allow_requantize = true;
    opts.reference_unweighted = true;
    let out = dir.join(format!("smollm2-{}.gguf", ft.name()));
    let summary = Prepared::new(&src, None, &opts)
        .and_then(|p| p.write(&out, &mut NoProgress))
        .unwrap_or_else(|e| panic!("re-quantizing SmolLM2 to {}: {e}", ft.name()));
    eprintln!(
        "re-quantized SmolLM2 Q4_1 -> {}: {:.1} MiB, {:.2} bits/weight, {:.1} s",
        ft.name(),
        summary.file_bytes as f64 / (1 << 20) as f64,
        summary.bits_per_weight(),
        summary.elapsed.as_secs_f64()
    );
    out
}

fn bench_variant(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    v: &Variant,
    dir: &Path,
    toks: &[u32],
) {
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        g.throughput(Throughput::Elements(PP_TOKENS as u64));
        g.bench_function(format!("{}/pp{PP_TOKENS}/t{threads}", v.label), |b| {
            let model = LlamaModel::from_gguf(v.file(dir)).expect("loading");
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
        g.bench_function(format!("{}/tg{TG_TOKENS}/t{threads}", v.label), |b| {
            let model = LlamaModel::from_gguf(v.file(dir)).expect("loading");
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
}

/// One window of the golden perplexity run (c = 512, 2 threads, the tool's settings): the
/// golden run is 40 such windows plus tokenizing the file (≈ 0.25 s) and mapping the model.
fn bench_perplexity_window(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    v: &Variant,
    dir: &Path,
    toks: &[u32],
) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("thread pool");
    g.throughput(Throughput::Elements(PP_TOKENS as u64));
    g.bench_function(format!("{}/ppl_window{PP_TOKENS}/t2", v.label), |b| {
        let file = v.file(dir);
        let model = LlamaModel::from_gguf(file).expect("loading");
        let tok = ingot_tokenizer::Tokenizer::from_gguf(file).expect("tokenizer");
        let opts = PerplexityOptions {
            n_ctx: PP_TOKENS,
            max_chunks: Some(1),
            bos: if tok.add_bos() { tok.bos() } else { None },
            kv_precision: KvPrecision::F16,
        };
        b.iter(|| {
            pool.install(|| {
                perplexity(&model, toks, &opts, KlMode::None, |_| {})
                    .expect("perplexity")
                    .ppl()
            })
        })
    });
}

fn bench_model(c: &mut Criterion) {
    let dir = ingot_tests::temp_dir();
    let toks = tokens();
    let variants = [
        Variant::new("q4_1", None),
        Variant::new("q8_0", Some(FileType::Q8_0)),
        Variant::new("q4_0", Some(FileType::Q4_0)),
        Variant::new("q4_k_m", Some(FileType::Q4_K_M)),
    ];
    let mut g = c.benchmark_group("smollm2");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(8))
        .warm_up_time(Duration::from_secs(1));
    for v in &variants {
        bench_variant(&mut g, v, dir.path(), &toks);
    }
    bench_perplexity_window(&mut g, &variants[0], dir.path(), &toks);
    g.finish();
}

criterion_group!(benches, bench_model);
criterion_main!(benches);
