//! Peer conformance of the legacy block types with the `gguf` Python package (gguf-py, the
//! reference implementation shipped with llama.cpp): on random tensors, our reference Q8_0 and
//! Q4_0 (and Q4_1, Q5_0, Q5_1) bytes equal `gguf.quants.quantize`'s, and `gguf.quants.dequantize`
//! of our bytes — from ingot's own (searched, importance-weighted) quantizer too — equals our
//! dequantization bit for bit.

use std::path::Path;
use std::process::Command;

use bytemuck::{Pod, Zeroable};
use ingot_quant::legacy::{q4_0, q4_1, q5_0, q5_1, q8_0};
use ingot_tests::{read_f32, temp_dir};

const ROWS: usize = 16;
const COLS: usize = 512;

/// Deterministic test data: xorshift64* → a mix of Gaussian-ish, uniform, heavy-tailed and
/// tiny/large-scale rows, with a few exact zeros and repeated values.
fn random_tensor(seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    };
    let mut x = Vec::with_capacity(ROWS * COLS);
    for r in 0..ROWS {
        let scale = 10f32.powi((r % 7) as i32 - 3);
        for c in 0..COLS {
            let u = next() * 2.0 - 1.0;
            let v = match r % 4 {
                0 => (next() + next() + next() + next() - 2.0) * scale,
                1 => u * scale,
                2 => u / (next() + 0.05) * scale * 0.1,
                _ => (u.abs() + 0.1) * scale,
            };
            x.push(if c % 97 == 0 { 0.0 } else { v });
        }
    }
    x
}

fn write_f32(path: &Path, x: &[f32]) {
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("writing f32 file");
}

/// For each type: gguf-py's quantization of x, and gguf-py's dequantization of our bytes.
const SCRIPT: &str = r#"
import sys, numpy as np
from gguf import GGMLQuantizationType as T, quants
d, rows, cols = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x = np.fromfile(f"{d}/x.f32", dtype=np.float32).reshape(rows, cols)
for name in sys.argv[4:]:
    t = getattr(T, name.upper())
    quants.quantize(x, t).tofile(f"{d}/{name}.gguf_py.bin")
    for which in ("ref", "ours"):
        ours = np.fromfile(f"{d}/{name}.{which}.bin", dtype=np.uint8).reshape(rows, -1)
        quants.dequantize(ours, t).astype(np.float32).tofile(f"{d}/{name}.{which}.gguf_py.f32")
"#;

struct Case {
    name: &'static str,
    ref_bytes: Vec<u8>,
    ours_bytes: Vec<u8>,
    ref_dequant: Vec<f32>,
    ours_dequant: Vec<f32>,
}

fn case<B: Pod + Zeroable>(
    name: &'static str,
    x: &[f32],
    w: &[f32],
    quantize_ref: fn(&[f32], &mut [B]),
    quantize: fn(&[f32], Option<&[f32]>, &mut [B]),
    dequantize: fn(&[B], &mut [f32]),
) -> Case {
    let mut r = vec![B::zeroed(); x.len() / 32];
    let mut o = vec![B::zeroed(); x.len() / 32];
    for ((xr, rr), or) in x
        .chunks_exact(COLS)
        .zip(r.chunks_exact_mut(COLS / 32))
        .zip(o.chunks_exact_mut(COLS / 32))
    {
        quantize_ref(xr, rr);
        quantize(xr, Some(w), or);
    }
    let mut rd = vec![0.0; x.len()];
    let mut od = vec![0.0; x.len()];
    dequantize(&r, &mut rd);
    dequantize(&o, &mut od);
    Case {
        name,
        ref_bytes: bytemuck::cast_slice(&r).to_vec(),
        ours_bytes: bytemuck::cast_slice(&o).to_vec(),
        ref_dequant: rd,
        ours_dequant: od,
    }
}

fn assert_same_f32(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert_eq!(x.to_bits(), y.to_bits(), "{what}: element {i}: {x} vs {y}");
    }
}

#[test]
fn legacy_types_agree_with_gguf_py() {
    let x = random_tensor(0x1234_5678_9abc_def1);
    let w: Vec<f32> = (0..COLS)
        .map(|c| 0.1 + ((c * 37) % 101) as f32 / 10.0)
        .collect();
    let cases = [
        case(
            "q8_0",
            &x,
            &w,
            q8_0::quantize_row_ref,
            q8_0::quantize_row,
            q8_0::dequantize_row,
        ),
        case(
            "q4_0",
            &x,
            &w,
            q4_0::quantize_row_ref,
            q4_0::quantize_row,
            q4_0::dequantize_row,
        ),
        case(
            "q4_1",
            &x,
            &w,
            q4_1::quantize_row_ref,
            q4_1::quantize_row,
            q4_1::dequantize_row,
        ),
        case(
            "q5_0",
            &x,
            &w,
            q5_0::quantize_row_ref,
            q5_0::quantize_row,
            q5_0::dequantize_row,
        ),
        case(
            "q5_1",
            &x,
            &w,
            q5_1::quantize_row_ref,
            q5_1::quantize_row,
            q5_1::dequantize_row,
        ),
    ];
    let dir = temp_dir();
    write_f32(&dir.path().join("x.f32"), &x);
    for c in &cases {
        std::fs::write(dir.path().join(format!("{}.ref.bin", c.name)), &c.ref_bytes)
            .expect("write");
        std::fs::write(
            dir.path().join(format!("{}.ours.bin", c.name)),
            &c.ours_bytes,
        )
        .expect("write");
    }
    let status = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(dir.path())
        .arg(ROWS.to_string())
        .arg(COLS.to_string())
        .args(cases.iter().map(|c| c.name))
        .status()
        .expect("running python3 (needs numpy and gguf: tests/requirements.txt)");
    assert!(status.success(), "gguf-py script failed: {status}");

    for c in &cases {
        let theirs =
            std::fs::read(dir.path().join(format!("{}.gguf_py.bin", c.name))).expect("read");
        assert_eq!(theirs.len(), c.ref_bytes.len(), "{}: sizes", c.name);
        if let Some(i) = theirs.iter().zip(&c.ref_bytes).position(|(a, b)| a != b) {
            panic!(
                "{}: gguf.quants.quantize differs from ours at byte {i}",
                c.name
            );
        }
        let p = dir.path();
        assert_same_f32(
            &format!("{} dequantize(ref)", c.name),
            &read_f32(&p.join(format!("{}.ref.gguf_py.f32", c.name))),
            &c.ref_dequant,
        );
        assert_same_f32(
            &format!("{} dequantize(ours)", c.name),
            &read_f32(&p.join(format!("{}.ours.gguf_py.f32", c.name))),
            &c.ours_dequant,
        );
    }
}
