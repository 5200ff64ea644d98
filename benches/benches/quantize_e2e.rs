//! End-to-end quantize throughput through the library (`Prepared::write`): F16 input bytes per
//! second for Q8_0, Q4_0 and Q4_K_M, with and without an importance matrix, on a synthetic
//! llama-shaped F16 model of about 64 MB (kept small so the bench runs in seconds).
//!
//! The ≥ 1 GB, 2-thread, median-of-3 comparison with llama-quantize (../shared/ANCHORS.md) is
//! `benches/quantize/bench_e2e.sh`, which times the release binary on a warm page cache.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use half::f16;
use ingot_format::{GgmlType, GgufFile, GgufWriter, Value};
use ingot_quant::imatrix::{Imatrix, ImatrixEntry};
use ingot_quant::pipeline::{NoProgress, Prepared, QuantizeOptions};
use ingot_quant::plan::FileType;

const HIDDEN: u64 = 1024;
const FF: u64 = 2816;
const LAYERS: u32 = 4;
const VOCAB: u64 = 4096;

fn tensors() -> Vec<(String, Vec<u64>)> {
    let mut v = vec![("token_embd.weight".to_string(), vec![HIDDEN, VOCAB])];
    for i in 0..LAYERS {
        for (n, s) in [
            ("attn_norm.weight", vec![HIDDEN]),
            ("attn_q.weight", vec![HIDDEN, HIDDEN]),
            ("attn_k.weight", vec![HIDDEN, HIDDEN / 4]),
            ("attn_v.weight", vec![HIDDEN, HIDDEN / 4]),
            ("attn_output.weight", vec![HIDDEN, HIDDEN]),
            ("ffn_norm.weight", vec![HIDDEN]),
            ("ffn_gate.weight", vec![HIDDEN, FF]),
            ("ffn_up.weight", vec![HIDDEN, FF]),
            ("ffn_down.weight", vec![FF, HIDDEN]),
        ] {
            v.push((format!("blk.{i}.{n}"), s));
        }
    }
    v.push(("output_norm.weight".into(), vec![HIDDEN]));
    v.push(("output.weight".into(), vec![HIDDEN, VOCAB]));
    v
}

fn write_model(path: &std::path::Path) {
    let mut w = GgufWriter::new(path);
    w.add_kv("general.architecture", "llama").unwrap();
    w.add_kv("llama.block_count", Value::U32(LAYERS)).unwrap();
    let list = tensors();
    for (n, s) in &list {
        let ty = if s.len() == 1 {
            GgmlType::F32
        } else {
            GgmlType::F16
        };
        w.add_tensor(n, s, ty).unwrap();
    }
    let mut state = 0x1234_5678_9abc_def1u64;
    for (_, s) in &list {
        let n: u64 = s.iter().product();
        let bytes: Vec<u8> = if s.len() == 1 {
            (0..n).flat_map(|_| 1f32.to_le_bytes()).collect()
        } else {
            (0..n)
                .flat_map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                    f16::from_f32(u * 0.05).to_le_bytes()
                })
                .collect()
        };
        w.write_tensor(&bytes).unwrap();
    }
    w.finish().unwrap();
}

fn imatrix() -> Imatrix {
    let mut im = Imatrix::new(512);
    for (n, s) in tensors() {
        if s.len() == 2 && n != "token_embd.weight" {
            let sums = (0..s[0]).map(|j| 1.0 + (j % 17) as f32).collect();
            let e = ImatrixEntry {
                sums,
                counts: vec![1.0],
                activation_sums: None,
            };
            im.insert(n, e).unwrap();
        }
    }
    im
}

fn bench(c: &mut Criterion) {
    let dir = ingot_tests::temp_dir();
    let input = dir.path().join("in.gguf");
    write_model(&input);
    let file = GgufFile::open(&input).unwrap();
    let bytes = file.total_tensor_bytes();
    let out = dir.path().join("out.gguf");
    let mut g = c.benchmark_group("quantize_e2e");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes));
    for ft in [FileType::Q8_0, FileType::Q4_0, FileType::Q4_K_M] {
        for with in [false, true] {
            let opts = QuantizeOptions::new(ft);
            let im = with.then(imatrix);
            let p = Prepared::new(&file, im, &opts).unwrap();
            let id = format!("{ft}{}", if with { "+imatrix" } else { "" });
            g.bench_function(id, |b| b.iter(|| p.write(&out, &mut NoProgress).unwrap()));
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
