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

/// How our logits compare with llama.cpp's golden ones.
struct Comparison {
    n_pos: usize,
    same_top: usize,
    max_abs_top: f32,
    max_abs_sampled: f32,
    mean_dlogp: f64,
    first_diff: Option<usize>,
}

/// Runs the first 64 golden tokens through SmolLM2 from an empty cache, `batch` tokens per
/// forward call, and compares every position with llama.cpp's logits.
fn compare_with_llama_cpp(batch: usize) -> Comparison {
    let file = GgufFile::open(ingot_tests::smollm2_path()).expect("opening SmolLM2");
    let model = LlamaModel::from_gguf(&file).expect("loading SmolLM2");
    let golden = read_compact(&ingot_tests::testdata().join("model/smollm2_logits_compact.bin"));
    let n_pos = golden.positions.len();
    assert_eq!(golden.n_vocab, model.config().n_vocab);
    let tokens = &golden_tokens()[..n_pos];
    let mut cache = model.new_cache(n_pos, KvPrecision::F16);
    let mut logits = Vec::new();
    for part in tokens.chunks(batch) {
        logits.extend(model.forward(&mut cache, part, 0, None).expect("forward"));
    }
    let nv = golden.n_vocab;

    let mut c = Comparison {
        n_pos,
        same_top: 0,
        max_abs_top: 0.0,
        max_abs_sampled: 0.0,
        mean_dlogp: 0.0,
        first_diff: None,
    };
    let (mut sum_dlogp, mut n_dlogp) = (0f64, 0usize);
    for (p, g) in golden.positions.iter().enumerate() {
        let row = &logits[p * nv..(p + 1) * nv];
        let (lse, top) = log_sum_exp(row);
        c.same_top += usize::from(top as u32 == g.top1);
        let mut row_diff = 0f32;
        for &(id, l) in &g.top {
            let ours = row[id as usize];
            row_diff = row_diff.max((ours - l).abs());
            let lp_gold = f64::from(l) - f64::from(g.lse);
            sum_dlogp += (f64::from(ours) - lse - lp_gold).abs();
            n_dlogp += 1;
        }
        for (i, &l) in g.sampled.iter().enumerate() {
            let d = (row[i * golden.stride] - l).abs();
            c.max_abs_sampled = c.max_abs_sampled.max(d);
            row_diff = row_diff.max(d);
        }
        if row_diff > 0.0 && c.first_diff.is_none() {
            c.first_diff = Some(p);
        }
        c.max_abs_top = c.max_abs_top.max(row_diff);
    }
    c.mean_dlogp = sum_dlogp / n_dlogp as f64;
    eprintln!(
        "SmolLM2 vs llama.cpp, {n_pos} positions in batches of {batch} ({} kernels): same top-1 \
         {}/{n_pos}, max |Δlogit| {:.6} (top-64 and sampled vocab {:.6}), mean |Δ log p| top-64 \
         {:.6}, first differing position {:?}",
        ingot_infer::kernels::kernels().level(),
        c.same_top,
        c.max_abs_top,
        c.max_abs_sampled,
        c.mean_dlogp,
        c.first_diff
    );
    c
}

/// The criterion: the same top-1 token as llama.cpp at >= 99% of positions (here:
/// all 64), for the 64 tokens decoded as one batch as llama.cpp did.
///
/// Any single-ulp difference anywhere in the pass is amplified: an int8 activation code
/// flips and that position's logits move by ~0.5. Measured 2026-11 with the batched (panel)
/// GEMM, which sums in another order than ggml: 64/64, max |Δlogit| 0.74, mean |Δ log p|
/// 0.082. Position 36 is a near-tie in llama.cpp itself (its top two logits are 0.055 apart)
/// and flipped before the attention numerics were matched (63/64).
#[test]
fn smollm2_logits_match_llama_cpp() {
    let c = compare_with_llama_cpp(64);
    assert!(
        c.same_top * 100 >= 99 * c.n_pos,
        "same top-1 at only {} of {} positions",
        c.same_top,
        c.n_pos
    );
    assert!(c.mean_dlogp < 0.15, "mean |Δ log p| {}", c.mean_dlogp);
    assert!(
        c.max_abs_top < 1.5 && c.max_abs_sampled < 1.5,
        "logits differ by more than 1.5"
    );
}

/// Bit-exactness of the forward pass itself: in batches of 4 tokens the matmuls take the
/// dot-product kernels, whose AVX-512 q4_1·q8_1 / q8_0·q8_0 sums run in ggml's order, and
/// everything else follows ggml's roundings (tiled flash attention with f32 Q and f16 K/V,
/// ggml_v_expf in softmax and SwiGLU, RMSNorm squares in f32, RoPE fused as GCC compiles it);
/// our attention does not depend on the batch size. Measured 2026-11: every logit of all 64
/// positions equal to llama.cpp's (max |Δ| 0.000000). Other kernel levels sum in another
/// order and are held to the noise level.
#[test]
fn smollm2_logits_bit_exact_with_dot_kernels() {
    let c = compare_with_llama_cpp(4);
    let bound = if ingot_infer::kernels::kernels().level() == ingot_infer::kernels::Level::Avx512 {
        1e-4
    } else {
        1.5
    };
    assert!(
        c.max_abs_top <= bound,
        "logits differ by {} > {bound}, first at position {:?}",
        c.max_abs_top,
        c.first_diff
    );
    assert_eq!(c.same_top, c.n_pos, "top-1 tokens");
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
    m.write_legacy(&dat_path).expect("writing dat");
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
