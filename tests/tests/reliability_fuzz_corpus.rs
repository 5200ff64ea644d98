//! Replays the fuzz corpus as an ordinary stable test: every input under
//! `fuzz/{seeds,corpus,regressions}/<target>/` goes through the same target body libFuzzer
//! runs (`fuzz/src/lib.rs`, compiled in here through `#[path]`, so the logic is not
//! duplicated). A body panics on any violated invariant, so a finding that was fixed stays
//! fixed without libFuzzer or a nightly toolchain in CI. See `fuzz/README.md`.

#[path = "../../fuzz/src/lib.rs"]
mod fuzz_bodies;

/// Runs `body` over every committed input of `target` (at least the seeds must exist).
fn replay(target: &str, body: fn(&[u8])) {
    let fuzz = ingot_tests::workspace_root().join("fuzz");
    let mut n = 0;
    for kind in ["seeds", "corpus", "regressions"] {
        for path in fuzz_bodies::corpus_files(&fuzz.join(kind).join(target)) {
            let data = std::fs::read(&path).unwrap();
            let r = std::panic::catch_unwind(|| body(&data));
            assert!(
                r.is_ok(),
                "fuzz target {target} panics on {}",
                path.display()
            );
            n += 1;
        }
    }
    assert!(n >= 2, "{target}: only {n} inputs found under fuzz/");
}

#[test]
fn gguf_corpus() {
    replay("gguf", fuzz_bodies::gguf);
}

#[test]
fn imatrix_corpus() {
    replay("imatrix", fuzz_bodies::imatrix);
}

#[test]
fn safetensors_corpus() {
    replay("safetensors", fuzz_bodies::safetensors);
}

#[test]
fn tokenizer_corpus() {
    replay("tokenizer", fuzz_bodies::tokenizer);
}

#[test]
fn quant_corpus() {
    replay("quant", fuzz_bodies::quant);
}
