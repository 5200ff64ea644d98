//! Slow (about a minute on 2 cores): llama.cpp's golden perplexity of SmolLM2 Q4_1 over
//! 40 windows of 512 tokens of wiki.test.raw. Kept in its own test binary so it runs in
//! parallel with the others; it uses llama.cpp's token ids so it does not depend on the
//! tokenizer, and computes logits only for the scored half of each window.

use ingot_format::GgufFile;
use ingot_infer::llama::LlamaModel;
use ingot_infer::perplexity::{perplexity, KlMode, PerplexityOptions};

/// `llama-perplexity -c 512 --chunks 40` on the same file (testdata/golden/README.md).
const GOLDEN_PPL: f64 = 22.5836;
const GOLDEN_PPL_ERR: f64 = 0.68431;

#[test]
fn smollm2_perplexity_matches_llama_cpp() {
    let file = GgufFile::open(ingot_tests::smollm2_path()).expect("opening SmolLM2");
    let model = LlamaModel::from_gguf(&file).expect("loading SmolLM2");
    let tokens: Vec<u32> = ingot_tests::read_i32(&ingot_tests::golden().join("smollm2/tokens.i32"))
        .into_iter()
        .map(|t| t as u32)
        .collect();
    let opts = PerplexityOptions {
        n_ctx: 512,
        max_chunks: Some(40),
        ..Default::default()
    };
    let res = perplexity(&model, &tokens, &opts, KlMode::None, |_| {}).expect("perplexity");
    eprintln!(
        "SmolLM2 Q4_1 PPL {:.4} ± {:.5} (llama.cpp {GOLDEN_PPL} ± {GOLDEN_PPL_ERR}), {:.1} tokens/s",
        res.ppl(),
        res.nll.ppl_error(),
        res.tokens_per_second()
    );
    assert_eq!(res.n_chunks, 40);
    assert_eq!(res.nll.count, 40 * 255);
    assert!(
        (res.ppl() / GOLDEN_PPL - 1.0).abs() < 0.005,
        "PPL {} vs {GOLDEN_PPL}",
        res.ppl()
    );
    assert!(
        (res.nll.ppl_error() / GOLDEN_PPL_ERR - 1.0).abs() < 0.02,
        "error {}",
        res.nll.ppl_error()
    );
}
