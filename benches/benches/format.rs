//! Open + parse time of GGUF files (ingot-format): the real SmolLM2 file, a synthetic file with
//! 100,000 tensors, and the same 16-tensor layout with 1 MB vs 1 GB of tensor data, which shows
//! that opening never touches tensor data (the 1 GB file is sparse: it costs no disk or time to
//! build).

use std::fs::File;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ingot_format::{GgmlType, GgufFile, GgufWriter};

/// A file with `n` tiny f32 tensors, written by the streaming writer (integrity keys on).
fn many_tensors(dir: &Path, n: usize) -> PathBuf {
    let path = dir.join(format!("many-{n}.gguf"));
    let mut w = GgufWriter::new(&path);
    w.add_kv("general.architecture", "bench").unwrap();
    for i in 0..n {
        w.add_tensor(&format!("blk.{i}.weight"), &[8], GgmlType::F32)
            .unwrap();
    }
    let bytes = [0u8; 32];
    for _ in 0..n {
        w.write_tensor(&bytes).unwrap();
    }
    w.finish().unwrap();
    path
}

/// 16 f32 tensors sharing `total` bytes of data; the header is encoded here and the data
/// section is left as a hole (`set_len`), so a 1 GB file takes no time or disk to build.
fn sparse_file(dir: &Path, total: u64) -> PathBuf {
    const N: u64 = 16;
    let elems = total / N / 4;
    let path = dir.join(format!("sparse-{total}.gguf"));
    let mut h = Vec::new();
    let put_str = |h: &mut Vec<u8>, s: &str| {
        h.extend_from_slice(&(s.len() as u64).to_le_bytes());
        h.extend_from_slice(s.as_bytes());
    };
    h.extend_from_slice(b"GGUF");
    h.extend_from_slice(&3u32.to_le_bytes());
    h.extend_from_slice(&N.to_le_bytes());
    h.extend_from_slice(&1u64.to_le_bytes());
    put_str(&mut h, "general.architecture");
    h.extend_from_slice(&8u32.to_le_bytes());
    put_str(&mut h, "bench");
    for i in 0..N {
        put_str(&mut h, &format!("t{i}"));
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&elems.to_le_bytes());
        h.extend_from_slice(&GgmlType::F32.id().to_le_bytes());
        h.extend_from_slice(&(i * elems * 4).to_le_bytes());
    }
    h.resize(
        ingot_format::align_up(h.len() as u64, 32).unwrap() as usize,
        0,
    );
    let mut f = File::create(&path).unwrap();
    f.write_all(&h).unwrap();
    f.set_len(h.len() as u64 + N * elems * 4).unwrap();
    path
}

fn bench_open(c: &mut Criterion) {
    let dir = ingot_tests::temp_dir();
    let smollm2 = ingot_tests::smollm2_path();
    let many = many_tensors(dir.path(), 100_000);
    let small = sparse_file(dir.path(), 1 << 20);
    let large = sparse_file(dir.path(), 1 << 30);
    assert_eq!(
        GgufFile::open(&large).unwrap().total_tensor_bytes(),
        1 << 30
    );

    let mut g = c.benchmark_group("format_open");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    g.bench_function("smollm2_q4_1", |b| {
        b.iter(|| GgufFile::open(black_box(&smollm2)).unwrap())
    });
    g.bench_function("100k_tensors", |b| {
        b.iter(|| GgufFile::open(black_box(&many)).unwrap())
    });
    g.bench_function("16_tensors_1MB_data", |b| {
        b.iter(|| GgufFile::open(black_box(&small)).unwrap())
    });
    g.bench_function("16_tensors_1GB_data", |b| {
        b.iter(|| GgufFile::open(black_box(&large)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_open);
criterion_main!(benches);
