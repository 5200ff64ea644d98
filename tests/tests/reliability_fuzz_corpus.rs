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

/// The seeds are valid inputs that get past parsing, so the fuzzer starts from inputs that
/// reach the deep code (tensor views, tokenizer encoding, imatrix entries, shard tensors).
#[test]
fn seeds_reach_the_code_under_test() {
    let seeds = ingot_tests::workspace_root().join("fuzz").join("seeds");
    let files = |t: &str| fuzz_bodies::corpus_files(&seeds.join(t));
    for p in files("gguf") {
        ingot_format::GgufFile::from_bytes(std::fs::read(&p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    for p in files("tokenizer") {
        let f = ingot_format::GgufFile::from_bytes(std::fs::read(&p).unwrap()).unwrap();
        let tok = ingot_tokenizer::Tokenizer::from_gguf(&f)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(!tok.encode("Hello world", false, false).is_empty());
    }
    for p in files("imatrix") {
        let (im, _) = ingot_quant::imatrix::Imatrix::from_bytes(std::fs::read(&p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(!im.is_empty());
    }
    let st = files("safetensors");
    assert_eq!(st.len(), 2);
    for p in st {
        let data = std::fs::read(&p).unwrap();
        let (index, shard) = fuzz_bodies::split_safetensors_input(&data).unwrap();
        let dir = tempfile::tempdir().unwrap();
        fuzz_bodies::write_safetensors_dir(dir.path(), index, shard);
        let shards = ingot_convert::source::Shards::open(dir.path())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(shards.tensors.len(), 3);
    }
}
