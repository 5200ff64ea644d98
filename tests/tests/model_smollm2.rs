//! The forward pass, perplexity and imatrix collection on the real llama.cpp file
//! SmolLM2-135M-Instruct.Q4_1.gguf, against llama.cpp's golden outputs
//! (testdata/golden/README.md). Token ids come from llama.cpp (`tokens.i32`), so these tests
//! check the model independently of our tokenizer.

use std::path::Path;

use ingot_format::GgufFile;
use ingot_infer::imatrix::{collect, ImatrixOptions};
use ingot_infer::llama::{KvPrecision, LlamaModel};
use ingot_infer::perplexity::log_sum_exp;

fn golden_tokens() -> Vec<u32> {
    ingot_tests::read_i32(&ingot_tests::golden().join("smollm2/tokens.i32"))
        .into_iter()
        .map(|t| u32::try_from(t).expect("token ids are non-negative"))
        .collect()
}

/// llama.cpp's logits for the first 64 golden tokens, compacted by
/// testdata/model/make_smollm2_logits_compact.py.
struct CompactLogits {
    n_vocab: usize,
    stride: usize,
    positions: Vec<CompactRow>,
}

struct CompactRow {
    top1: u32,
    lse: f32,
    top: Vec<(u32, f32)>,
    sampled: Vec<f32>,
}

fn read_compact(path: &Path) -> CompactLogits {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut o = 0;
    let mut u32_at = |b: &[u8]| {
        let v = u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        o += 4;
        v
    };
    let (n_pos, n_vocab, top_k, stride) = (u32_at(&b), u32_at(&b), u32_at(&b), u32_at(&b));
    let mut positions = Vec::new();
    for _ in 0..n_pos {
        let top1 = u32_at(&b);
        let lse = f32::from_bits(u32_at(&b));
        let top = (0..top_k)
            .map(|_| (u32_at(&b), f32::from_bits(u32_at(&b))))
            .collect();
        let sampled = (0..n_vocab / stride)
            .map(|_| f32::from_bits(u32_at(&b)))
            .collect();
        positions.push(CompactRow {
            top1,
            lse,
            top,
            sampled,
        });
    }
    assert_eq!(o, b.len(), "trailing bytes in {}", path.display());
    CompactLogits {
        n_vocab: n_vocab as usize,
        stride: stride as usize,
        positions,
    }
}

#[test]
fn smollm2_logits_match_llama_cpp() {
    let file = GgufFile::open(ingot_tests::smollm2_path()).expect("opening SmolLM2");
    let model = LlamaModel::from_gguf(&file).expect("loading SmolLM2");
    let golden = read_compact(&ingot_tests::testdata().join("model/smollm2_logits_compact.bin"));
    let n_pos = golden.positions.len();
    assert_eq!(golden.n_vocab, model.config().n_vocab);
    let tokens = &golden_tokens()[..n_pos];
    let mut cache = model.new_cache(n_pos, KvPrecision::F16);
    let logits = model.forward(&mut cache, tokens, 0, None).expect("forward");
    let nv = golden.n_vocab;

    let mut same_top = 0;
    let mut first_diff = None;
    let mut max_abs_top = 0f32;
    let mut max_abs_sampled = 0f32;
    let (mut sum_dlogp, mut n_dlogp) = (0f64, 0usize);
    for (p, g) in golden.positions.iter().enumerate() {
        let row = &logits[p * nv..(p + 1) * nv];
        let (lse, top) = log_sum_exp(row);
        same_top += usize::from(top as u32 == g.top1);
        let mut row_diff = 0f32;
        for &(id, l) in &g.top {
            let ours = row[id as usize];
            row_diff = row_diff.max((ours - l).abs());
            let lp_gold = f64::from(l) - f64::from(g.lse);
            sum_dlogp += (f64::from(ours) - lse - lp_gold).abs();
            n_dlogp += 1;
        }
        for (i, &l) in g.sampled.iter().enumerate() {
            max_abs_sampled = max_abs_sampled.max((row[i * golden.stride] - l).abs());
        }
        if row_diff > 0.0 && first_diff.is_none() {
            first_diff = Some(p);
        }
        max_abs_top = max_abs_top.max(row_diff);
    }
    let mean_dlogp = sum_dlogp / n_dlogp as f64;
    let level = ingot_infer::kernels::kernels().level();
    eprintln!(
        "SmolLM2 vs llama.cpp over {n_pos} positions ({level} kernels): same top-1 \
         {same_top}/{n_pos}, max |Δlogit| top-64 {max_abs_top:.6}, sampled vocab \
         {max_abs_sampled:.6}, mean |Δ log p| top-64 {mean_dlogp:.6}, first differing position \
         {first_diff:?}"
    );
    // The criterion: the same top-1 token at >= 99% of positions (here: all 64).
    assert!(
        same_top * 100 >= 99 * n_pos,
        "same top-1 at only {same_top} of {n_pos} positions"
    );
    // Why that holds: with the AVX-512 kernels every position is bit-identical to llama.cpp's
    // (measured 2026-11: max |Δlogit| 0.000000). The forward pass follows ggml's roundings
    // (tiled flash attention with f32 Q and f16 K/V, ggml_v_expf in softmax and SwiGLU, RMSNorm
    // squares in f32, RoPE fused as GCC compiles it) and our q4_1·q8_1 / q8_0·q8_0 dot products
    // sum in ggml's AVX-512 order. Any single-ulp difference anywhere is amplified: an int8
    // activation code flips and the logits of that position move by ~0.5 (before the attention
    // and RoPE fixes: 0.4-1.2 at 61 of 64 positions, and position 36, where llama.cpp's top two
    // logits are 0.055 apart, flipped). So on the AVX-512 path any difference is a regression;
    // other levels sum in another order and are held to the noise level.
    let bound = if level == ingot_infer::kernels::Level::Avx512 {
        1e-4
    } else {
        1.5
    };
    assert!(
        max_abs_top <= bound && max_abs_sampled <= bound,
        "logits differ by {max_abs_top} (top-64) / {max_abs_sampled} (sampled) > {bound}, \
         first at position {first_diff:?}"
    );
    assert!(mean_dlogp < 0.15, "mean |Δ log p| {mean_dlogp}");
}

/// Mean over columns of |ours − golden| / golden, per entry.
fn mean_rel(ours: &[f32], golden: &[f32]) -> f64 {
    assert_eq!(ours.len(), golden.len());
    let s: f64 = ours
        .iter()
        .zip(golden)
        .map(|(&a, &b)| {
            let (a, b) = (f64::from(a), f64::from(b));
            if b == 0.0 {
                a.abs()
            } else {
                ((a - b) / b).abs()
            }
        })
        .sum();
    s / ours.len() as f64
}

/// One `.dat` entry: name, ncall, values.
type DatEntry = (String, i32, Vec<f32>);

/// Parses llama.cpp's legacy imatrix: (name, ncall, values) per entry, then chunk count and
/// dataset name.
fn parse_dat(b: &[u8]) -> (Vec<DatEntry>, i32, String) {
    let mut o = 0;
    let i32_at = |o: &mut usize| {
        let v = i32::from_le_bytes(b[*o..*o + 4].try_into().expect("4 bytes"));
        *o += 4;
        v
    };
    let n = i32_at(&mut o);
    let mut entries = Vec::new();
    for _ in 0..n {
        let len = i32_at(&mut o) as usize;
        let name = String::from_utf8(b[o..o + len].to_vec()).expect("utf-8 name");
        o += len;
        let ncall = i32_at(&mut o);
        let nval = i32_at(&mut o) as usize;
        let vals = b[o..o + 4 * nval]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
            .collect();
        o += 4 * nval;
        entries.push((name, ncall, vals));
    }
    let chunks = i32_at(&mut o);
    let len = i32_at(&mut o) as usize;
    let ds = String::from_utf8(b[o..o + len].to_vec()).expect("utf-8 dataset");
    assert_eq!(o + len, b.len());
    (entries, chunks, ds)
}

#[test]
fn smollm2_imatrix_matches_llama_cpp() {
    let file = GgufFile::open(ingot_tests::smollm2_path()).expect("opening SmolLM2");
    let model = LlamaModel::from_gguf(&file).expect("loading SmolLM2");
    // calib.txt is the first 200,000 bytes of wiki.test.raw, far more than the 5,120 tokens the
    // golden run used, so its tokens are the first ones of tokens.i32.
    let tokens = &golden_tokens()[..10 * 512];
    let opts = ImatrixOptions {
        n_ctx: 512,
        max_chunks: Some(10),
        bos: None,
        process_output: false,
        dataset: "calib.txt".to_string(),
        kv_precision: KvPrecision::F16,
    };
    let run = collect(&model, tokens, &opts, |_| {}).expect("imatrix");
    let m = &run.imatrix;
    eprintln!(
        "imatrix run PPL {:.4} (llama-imatrix reported 25.6976)",
        run.nll.ppl()
    );
    assert!(
        (run.nll.ppl() / 25.6976 - 1.0).abs() < 0.01,
        "imatrix-run PPL {}",
        run.nll.ppl()
    );

    // GGUF format: same entries, counts, and sums within 1% (mean over columns).
    let gold = GgufFile::open(ingot_tests::golden().join("smollm2/imatrix.gguf"))
        .expect("golden imatrix.gguf");
    let dir = ingot_tests::temp_dir();
    let ours_path = dir.path().join("imatrix.gguf");
    m.write_gguf(&ours_path).expect("writing gguf imatrix");
    let ours = GgufFile::open(&ours_path).expect("reading our imatrix.gguf");
    assert_eq!(ours.get_str("general.type").expect("type"), "imatrix");
    assert_eq!(
        ours.get_u32("imatrix.chunk_count").expect("chunk_count"),
        10
    );
    assert_eq!(ours.get_u32("imatrix.chunk_size").expect("chunk_size"), 512);
    assert_eq!(
        ours.get_str_array("imatrix.datasets").expect("datasets"),
        vec!["calib.txt"]
    );
    let names = |f: &GgufFile| {
        f.tensors()
            .map(|t| t.name().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&ours), names(&gold), "tensor names and order");
    let f32s = |f: &GgufFile, n: &str| -> Vec<f32> {
        let b = f.tensor(n).unwrap_or_else(|| panic!("{n}")).bytes();
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    };
    let mut worst = (0.0f64, String::new());
    for t in gold.tensors() {
        let (a, b) = (f32s(&ours, t.name()), f32s(&gold, t.name()));
        if t.name().ends_with(".counts") {
            assert_eq!(a, b, "{}", t.name());
        } else {
            let r = mean_rel(&a, &b);
            if r > worst.0 {
                worst = (r, t.name().to_string());
            }
        }
    }
    eprintln!(
        "imatrix.gguf: worst mean relative difference {:.4}% ({})",
        100.0 * worst.0,
        worst.1
    );
    assert!(
        worst.0 < 0.01,
        "{} differs by {:.3}% on average",
        worst.1,
        100.0 * worst.0
    );

    // Legacy format: same layout as llama.cpp's file, values within 1%.
    let dat_path = dir.path().join("imatrix.dat");
    m.write_dat(&dat_path).expect("writing dat");
    let (ours, chunks, ds) = parse_dat(&std::fs::read(&dat_path).expect("reading dat"));
    let (gold, gchunks, gds) = parse_dat(
        &std::fs::read(ingot_tests::golden().join("smollm2/imatrix.dat")).expect("golden dat"),
    );
    assert_eq!((chunks, ds.as_str()), (gchunks, gds.as_str()));
    assert_eq!(ours.len(), gold.len());
    for ((n1, c1, v1), (n2, c2, v2)) in ours.iter().zip(&gold) {
        assert_eq!((n1, c1), (n2, c2));
        let r = mean_rel(v1, v2);
        assert!(r < 0.01, "{n1}: {:.3}%", 100.0 * r);
    }
}
