//! Tokenizer speed: SmolLM2's tokenizer (`gpt2` BPE, `smollm` pre-tokenizer) encoding and
//! decoding the whole of WikiText-2's test split (1.29 MB, 304,830 tokens), as `perplexity`
//! does once per run, and building the tokenizer from the file's metadata.
//!
//! `cargo bench -p ingot-benches --bench tokenizer`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ingot_format::GgufFile;
use ingot_tokenizer::Tokenizer;
use std::time::Duration;

fn bench(c: &mut Criterion) {
    let file = GgufFile::open(ingot_tests::smollm2_path()).expect("opening SmolLM2");
    let tok = Tokenizer::from_gguf(&file).expect("SmolLM2 tokenizer");
    let text = std::fs::read_to_string(ingot_tests::wiki_test_raw()).expect("wiki.test.raw");
    let ids = tok.encode(&text, true, false);

    let mut g = c.benchmark_group("tokenizer");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("encode_wiki_test_smollm2", |b| {
        b.iter(|| tok.encode(std::hint::black_box(&text), true, false))
    });
    g.bench_function("decode_wiki_test_smollm2", |b| {
        b.iter(|| tok.decode(std::hint::black_box(&ids)))
    });
    g.throughput(Throughput::Elements(tok.n_vocab() as u64));
    g.bench_function("from_gguf_smollm2", |b| {
        b.iter(|| Tokenizer::from_gguf(std::hint::black_box(&file)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
