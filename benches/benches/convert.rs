//! Converting the tiny model (3.5 M parameters, F16 safetensors) to GGUF: F32, F16 and Q8_0.
//! Measures the whole path: config + tokenizer parsing, validation, permutation, element
//! conversion or quantization, and the atomic write.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ingot_convert::{convert, OutType};

fn bench_convert(c: &mut Criterion) {
    let dir = ingot_tests::testdata().join("tiny");
    let tmp = ingot_tests::temp_dir();
    let mut g = c.benchmark_group("convert_tiny");
    g.sample_size(10);
    // Bytes of safetensors data read.
    let input = std::fs::metadata(dir.join("model.safetensors"))
        .expect("testdata/tiny/model.safetensors")
        .len();
    g.throughput(Throughput::Bytes(input));
    for outtype in [OutType::F32, OutType::F16, OutType::Q8_0] {
        let out = tmp.path().join(format!("tiny-{}.gguf", outtype.name()));
        g.bench_function(outtype.name(), |b| {
            b.iter(|| convert(&dir, &out, outtype, |_| {}).expect("converting the tiny model"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_convert);
criterion_main!(benches);
