//! Shared helpers for the quantize tests: a synthetic llama-shaped model written with
//! ingot-format's writer, a synthetic importance matrix, the `quantize` binary, and
//! dequantization of an output tensor.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use half::{bf16, f16};
use ingot_format::{Array, GgmlType, GgufFile, GgufWriter, Value};
use ingot_quant::imatrix::{Imatrix, ImatrixEntry};

/// Shape of a synthetic llama model.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    pub n_layer: u32,
    pub hidden: u64,
    pub ff: u64,
    pub kv: u64,
    pub vocab: u64,
    pub tied: bool,
    pub ty: GgmlType,
}

impl Spec {
    /// Small enough for fast tests, K-quant friendly (rows multiple of 256).
    pub fn small() -> Spec {
        Spec {
            n_layer: 4,
            hidden: 256,
            ff: 512,
            kv: 128,
            vocab: 384,
            tied: false,
            ty: GgmlType::F32,
        }
    }
}

/// xorshift64* with Box-Muller: deterministic normal samples without a rand dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

/// The tensors of a spec: (name, shape in ggml order, is a weight matrix).
pub fn tensor_list(s: &Spec) -> Vec<(String, Vec<u64>)> {
    let (h, ff, kv) = (s.hidden, s.ff, s.kv);
    let mut v = vec![("token_embd.weight".to_string(), vec![h, s.vocab])];
    for i in 0..s.n_layer {
        let b = |n: &str| format!("blk.{i}.{n}");
        v.push((b("attn_norm.weight"), vec![h]));
        v.push((b("attn_q.weight"), vec![h, h]));
        v.push((b("attn_k.weight"), vec![h, kv]));
        v.push((b("attn_v.weight"), vec![h, kv]));
        v.push((b("attn_output.weight"), vec![h, h]));
        v.push((b("ffn_norm.weight"), vec![h]));
        v.push((b("ffn_gate.weight"), vec![h, ff]));
        v.push((b("ffn_up.weight"), vec![h, ff]));
        v.push((b("ffn_down.weight"), vec![ff, h]));
    }
    v.push(("output_norm.weight".to_string(), vec![h]));
    if !s.tied {
        v.push(("output.weight".to_string(), vec![h, s.vocab]));
    }
    v
}

/// Values of one tensor: per-column scales times normal noise (norms are near 1).
pub fn tensor_values(name: &str, shape: &[u64], seed: u64) -> Vec<f32> {
    let n: u64 = shape.iter().product();
    let mut rng = Rng::new(
        seed ^ name
            .bytes()
            .fold(0u64, |a, b| a.wrapping_mul(131).wrapping_add(b as u64)),
    );
    if shape.len() == 1 {
        return (0..n).map(|_| 1.0 + 0.1 * rng.normal()).collect();
    }
    let cols = shape[0] as usize;
    let col_scale: Vec<f32> = (0..cols)
        .map(|_| 0.02 * (0.5 * rng.normal()).exp())
        .collect();
    (0..n as usize)
        .map(|i| col_scale[i % cols] * rng.normal())
        .collect()
}

/// Writes the model and returns each tensor's values as stored (after f16/bf16 rounding).
pub fn write_model(path: &Path, s: &Spec) -> Vec<(String, Vec<u64>, Vec<f32>)> {
    let mut w = GgufWriter::new(path);
    w.add_kv("general.architecture", "llama").unwrap();
    w.add_kv("general.name", "synthetic").unwrap();
    w.add_kv(
        "general.file_type",
        Value::U32(if s.ty == GgmlType::F32 { 0 } else { 1 }),
    )
    .unwrap();
    w.add_kv("llama.block_count", Value::U32(s.n_layer))
        .unwrap();
    w.add_kv("llama.embedding_length", Value::U32(s.hidden as u32))
        .unwrap();
    w.add_kv(
        "llama.attention.head_count",
        Value::U32((s.hidden / 64) as u32),
    )
    .unwrap();
    w.add_kv(
        "llama.attention.head_count_kv",
        Value::U32((s.kv / 64) as u32),
    )
    .unwrap();
    // A per-layer array, to check pruning trims it.
    let per_layer: Vec<u32> = (0..s.n_layer).map(|i| 1000 + i).collect();
    w.add_kv(
        "llama.feed_forward_length",
        Value::Array(Array::U32(per_layer)),
    )
    .unwrap();
    let list = tensor_list(s);
    for (name, shape) in &list {
        let ty = if shape.len() == 1 {
            GgmlType::F32
        } else {
            s.ty
        };
        w.add_tensor(name, shape, ty).unwrap();
    }
    let mut out = Vec::new();
    for (name, shape) in list {
        let mut vals = tensor_values(&name, &shape, 7);
        let ty = if shape.len() == 1 {
            GgmlType::F32
        } else {
            s.ty
        };
        let bytes: Vec<u8> = match ty {
            GgmlType::F32 => vals.iter().flat_map(|v| v.to_le_bytes()).collect(),
            GgmlType::F16 => {
                vals.iter_mut()
                    .for_each(|v| *v = f16::from_f32(*v).to_f32());
                vals.iter()
                    .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                    .collect()
            }
            GgmlType::BF16 => {
                vals.iter_mut()
                    .for_each(|v| *v = bf16::from_f32(*v).to_f32());
                vals.iter()
                    .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
                    .collect()
            }
            other => panic!("synthetic models are float, not {other:?}"),
        };
        w.write_tensor(&bytes).unwrap();
        out.push((name, shape, vals));
    }
    w.finish().unwrap();
    out
}

/// A synthetic importance matrix for a spec: strongly varying per-column weights
/// (log-normal), one entry per weight matrix (not token_embd, as llama-imatrix).
pub fn synthetic_imatrix(s: &Spec) -> Imatrix {
    let mut im = Imatrix::new(512);
    im.chunk_count = 3;
    im.datasets = vec!["synthetic.txt".into()];
    let mut rng = Rng::new(99);
    for (name, shape) in tensor_list(s) {
        if shape.len() < 2 || name == "token_embd.weight" {
            continue;
        }
        let cols = shape[0] as usize;
        let sums: Vec<f32> = (0..cols)
            .map(|_| 1536.0 * (1.5 * rng.normal()).exp())
            .collect();
        im.insert(
            name,
            ImatrixEntry {
                sums,
                counts: vec![1536.0],
                activation_sums: None,
            },
        )
        .unwrap();
    }
    im
}

/// Dequantizes (or decodes) a tensor of an output file to f32.
pub fn decode(file: &GgufFile, name: &str) -> Vec<f32> {
    let t = file
        .tensor(name)
        .unwrap_or_else(|| panic!("no tensor {name}"));
    let n = t.n_elements() as usize;
    let bytes = t.bytes();
    match t.ggml_type() {
        GgmlType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        GgmlType::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        GgmlType::BF16 => bytes
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        ty => {
            let mut out = vec![0f32; n];
            ingot_quant::dequantize_row(ty, bytes, &mut out).unwrap();
            out
        }
    }
}

/// Relative RMSE: sqrt(Σ(a−b)² / Σa²).
pub fn rel_rmse(a: &[f32], b: &[f32]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        num += (*x as f64 - *y as f64).powi(2);
        den += (*x as f64).powi(2);
    }
    (num / den.max(1e-30)).sqrt()
}

/// Σ_j w_j (a−b)² over every row, with w repeating per row.
pub fn weighted_err(a: &[f32], b: &[f32], w: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .enumerate()
        .map(|(i, (x, y))| w[i % w.len()] as f64 * (*x as f64 - *y as f64).powi(2))
        .sum()
}

/// The `quantize` binary of this build, (re)built once per test process with `cargo build`
/// (a no-op when up to date), so the tests never run a stale binary.
pub fn quantize_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/..")
            .to_path_buf();
        let target = dir.parent().expect("target/<profile>").to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "-q",
            "-p",
            "ingot-tools",
            "--bin",
            "quantize",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(ingot_tests::workspace_root());
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd
            .status()
            .expect("running cargo build for the quantize binary");
        assert!(status.success(), "building the quantize binary failed");
        let bin = dir.join("quantize");
        assert!(bin.is_file(), "{} missing", bin.display());
        bin
    })
    .clone()
}

/// Files in a directory (to check for temp litter).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
